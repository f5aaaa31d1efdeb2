//! ID token and access token validation (OpenID Connect Core 3.1.3.7, RFC 9068).
//!
//! jsonwebtoken checks the signature, `exp`, `nbf` and that `aud` contains the expected value;
//! everything it leaves out (`iss` templates, tenants, extra audiences, `azp`, `iat`, `nonce`)
//! is checked here.

use jsonwebtoken::{Algorithm, Validation, decode, decode_header, errors::ErrorKind};
use serde::Deserialize;

use crate::error::TokenError;
use crate::issuer::IssuerRule;
use crate::metadata::Provider;
use crate::tenant::TenantPolicy;

/// Asymmetric algorithms only: never `none`, never HS* (an HMAC "signed" with the public key).
const ALLOWED_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The algorithms tokens of a provider may use: the allow-list, narrowed to what the provider's
/// discovery document advertises (`id_token_signing_alg_values_supported`) when it says.
/// Names rolegate does not know, `none` and HS* never make it in.
pub(crate) fn accepted_algorithms(advertised: Option<&[String]>) -> Vec<Algorithm> {
    match advertised {
        Some(names) if !names.is_empty() => ALLOWED_ALGORITHMS
            .into_iter()
            .filter(|alg| {
                names
                    .iter()
                    .any(|n| n.parse::<Algorithm>().ok() == Some(*alg))
            })
            .collect(),
        _ => ALLOWED_ALGORITHMS.to_vec(),
    }
}

/// The claims rolegate reads from a verified token; unknown claims are ignored.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // standard claim names (OpenID Connect Core 2, 5.1; Entra's oid/tid)
pub struct Claims {
    // Presence of iss, sub, aud and exp is enforced by jsonwebtoken's required claims, which
    // runs after deserialisation; defaults here let that check report the missing claim.
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub aud: Audience,
    #[serde(default)]
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub tid: Option<String>,
    #[serde(default)]
    pub oid: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// App roles as sent (Entra: a list of strings); read through the configured role
    /// claim ([`crate::RoleClaim`]), which also accepts a single string.
    #[serde(default)]
    pub roles: Option<serde_json::Value>,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub login_hint: Option<String>,
    /// Group object ids (Entra `groups` claim), when the app registration emits them.
    #[serde(default)]
    pub groups: Option<serde_json::Value>,
    /// Distributed claims: Entra names `groups` here when a user is in too many groups.
    #[serde(default, rename = "_claim_names")]
    pub claim_names: Option<serde_json::Map<String, serde_json::Value>>,
    /// Entra's overage marker in implicit-flow tokens.
    #[serde(default)]
    pub hasgroups: Option<bool>,
    /// Delegated scopes of an access token, space-separated (never in an ID token).
    #[serde(default)]
    pub scp: Option<String>,
    /// RFC 9068's space-separated scopes, read when `scp` is absent.
    #[serde(default)]
    pub scope: Option<String>,
    /// The token format version (Entra: `1.0` or `2.0`).
    #[serde(default)]
    pub ver: Option<String>,
    /// The calling client of a v1 access token (`azp` in v2).
    #[serde(default)]
    pub appid: Option<String>,
    /// Entra's token type marker: `app` for app-only access tokens, `user` otherwise.
    #[serde(default)]
    pub idtyp: Option<String>,
    /// Hash of the access token beside an ID token: only ID tokens carry it.
    #[serde(default)]
    pub at_hash: Option<String>,
    /// Hash of the code beside an ID token (hybrid flow): only ID tokens carry it.
    #[serde(default)]
    pub c_hash: Option<String>,
    /// Azure AD B2C: the policy (user flow) that issued the token.
    #[serde(default)]
    pub tfp: Option<String>,
    /// Azure AD B2C's other name for the policy claim (`tfp` when configured so).
    #[serde(default)]
    pub acr: Option<String>,
    /// Every other claim, as sent: where a role claim such as `realm_access.roles` is found.
    #[serde(flatten)]
    pub(crate) other: OtherClaims,
}

/// The claims [`Claims`] does not name. A claim written twice is refused, as serde refuses a
/// named one twice, so no second value can hide behind the first.
#[derive(Debug, Clone, Default)]
pub(crate) struct OtherClaims(serde_json::Map<String, serde_json::Value>);

impl<'de> Deserialize<'de> for OtherClaims {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Unique;
        impl<'de> serde::de::Visitor<'de> for Unique {
            type Value = OtherClaims;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("claims")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<OtherClaims, A::Error> {
                let mut map = serde_json::Map::new();
                while let Some(key) = m.next_key::<String>()? {
                    let value = m.next_value::<serde_json::Value>()?;
                    if map.insert(key, value).is_some() {
                        return Err(serde::de::Error::custom("a claim is written twice"));
                    }
                }
                Ok(OtherClaims(map))
            }
        }
        d.deserialize_map(Unique)
    }
}

impl Claims {
    /// A claim by name, as sent: `roles`, `groups` or any claim this type does not name.
    pub fn claim(&self, name: &str) -> Option<&serde_json::Value> {
        match name {
            "roles" => self.roles.as_ref(),
            "groups" => self.groups.as_ref(),
            _ => self.other.0.get(name),
        }
    }

    /// What pages show: `name`, else `preferred_username`, else `email`, else `sub` (blank
    /// values skipped), so a user who declined the profile scope is not shown an opaque id.
    pub fn display_name(&self) -> &str {
        [&self.name, &self.preferred_username, &self.email]
            .into_iter()
            .filter_map(|v| v.as_deref())
            .find(|v| !v.trim().is_empty())
            .unwrap_or(&self.sub)
    }

    /// Entra's `oid` (the same in every app of the tenant), else `sub`.
    pub fn stable_id(&self) -> &str {
        self.oid.as_deref().unwrap_or(&self.sub)
    }

    /// Whether the token says its `groups` claim was left out for size (groups overage).
    pub fn groups_overage(&self) -> bool {
        self.hasgroups == Some(true)
            || self
                .claim_names
                .as_ref()
                .is_some_and(|names| names.contains_key("groups"))
    }
}

/// `aud` is a string or an array of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Default for Audience {
    fn default() -> Self {
        Audience::Many(Vec::new())
    }
}

impl Audience {
    /// Every audience, as a slice.
    pub fn values(&self) -> &[String] {
        match self {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(v) => v,
        }
    }
}

/// What a token must satisfy beyond its signature.
pub(crate) struct Expectations<'a> {
    /// Every accepted `aud`: the token must name one and no other.
    pub audiences: &'a [String],
    /// The client id, checked against `azp` when present (ID tokens).
    pub authorized_party: Option<&'a str>,
    /// The nonce stored for this sign-in (ID tokens); `None` for access tokens.
    pub nonce: Option<&'a str>,
    /// The tenants a token may come from (`allowed_tenants`).
    pub allowed_tenants: &'a TenantPolicy,
    pub leeway_secs: u64,
}

/// Verifies `token` against the provider's keys and `expect`.
pub(crate) async fn validate(
    token: &str,
    provider: &Provider,
    http: &reqwest::Client,
    expect: &Expectations<'_>,
) -> Result<Claims, TokenError> {
    let claims = verify_signature(token, provider, http, expect).await?;
    check_claims(&claims, &provider.issuer, expect, now())?;
    Ok(claims)
}

/// The signature, algorithm, `exp`, `nbf` and presence checks (jsonwebtoken's part); the
/// claims still need [`check_claims`].
pub(crate) async fn verify_signature(
    token: &str,
    provider: &Provider,
    http: &reqwest::Client,
    expect: &Expectations<'_>,
) -> Result<Claims, TokenError> {
    verify_signature_requiring(token, provider, http, expect, &["exp", "iss", "aud", "sub"]).await
}

/// [`verify_signature`] with another set of claims that must be present: a logout token has
/// no `sub` or `exp` of necessity (Back-Channel Logout 1.0, 2.4). `exp` and `nbf` are still
/// checked when sent.
pub(crate) async fn verify_signature_requiring(
    token: &str,
    provider: &Provider,
    http: &reqwest::Client,
    expect: &Expectations<'_>,
    required: &[&str],
) -> Result<Claims, TokenError> {
    // A header jsonwebtoken cannot parse is often an algorithm it does not know (`none`).
    let header = decode_header(token).map_err(|_| match header_alg(token) {
        Some(alg) => TokenError::DisallowedAlgorithm(alg),
        None => TokenError::Malformed,
    })?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) || !provider.algorithms.contains(&header.alg) {
        return Err(TokenError::DisallowedAlgorithm(format!("{:?}", header.alg)));
    }
    let key = provider.keys.key_for(http, header.kid.as_deref()).await?;
    // An RSA key never verifies an ES* token and vice versa, nor a P-384 key an ES256 one.
    if !key.kind.fits(header.alg) || key.alg.is_some_and(|pinned| pinned != header.alg) {
        return Err(TokenError::AlgorithmMismatch);
    }

    let mut validation = Validation::new(header.alg);
    validation.leeway = expect.leeway_secs;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_audience(expect.audiences);
    validation.set_required_spec_claims(required);
    Ok(decode::<Claims>(token, &key.key, &validation)
        .map_err(|e| map_jwt_error(e.kind()))?
        .claims)
}

/// The checks jsonwebtoken does not do, on already signature-checked claims.
pub(crate) fn check_claims(
    claims: &Claims,
    issuer: &IssuerRule,
    expect: &Expectations<'_>,
    now: i64,
) -> Result<(), TokenError> {
    if claims.sub.trim().is_empty() {
        return Err(TokenError::MissingClaim("sub".into()));
    }
    check_audiences(claims, expect.audiences)?;
    if let Some(client_id) = expect.authorized_party {
        match &claims.azp {
            Some(azp) if azp != client_id => return Err(TokenError::WrongAuthorizedParty),
            None if claims.aud.values().len() > 1 => return Err(TokenError::WrongAuthorizedParty),
            _ => {}
        }
    }

    issuer.check(claims)?;
    expect
        .allowed_tenants
        .check(claims.tid.as_deref(), issuer.discovered())?;

    let leeway = i64::try_from(expect.leeway_secs).unwrap_or(0);
    match claims.iat {
        Some(iat) if iat > now + leeway => return Err(TokenError::IssuedInFuture),
        None if expect.nonce.is_some() => return Err(TokenError::MissingClaim("iat".into())),
        _ => {}
    }

    if let Some(expected_nonce) = expect.nonce {
        match claims.nonce.as_deref() {
            Some(n) if constant_time_eq(n.as_bytes(), expected_nonce.as_bytes()) => {}
            _ => return Err(TokenError::NonceMismatch),
        }
    }
    Ok(())
}

/// `aud` is present and every value in it is trusted (jsonwebtoken only checks that one is).
pub(crate) fn check_audiences(claims: &Claims, trusted: &[String]) -> Result<(), TokenError> {
    if claims.aud.values().is_empty() {
        return Err(TokenError::MissingClaim("aud".into()));
    }
    if claims.aud.values().iter().any(|a| !trusted.contains(a)) {
        return Err(TokenError::UntrustedAudience);
    }
    Ok(())
}

fn map_jwt_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAlgorithm => TokenError::AlgorithmMismatch,
        ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
        ErrorKind::InvalidClaimFormat(c) => TokenError::InvalidClaims(c.clone()),
        ErrorKind::Json(e) => TokenError::InvalidClaims(e.to_string()),
        _ => TokenError::Malformed,
    }
}

/// The raw `alg` of a header jsonwebtoken cannot parse (`none`, unknown names), for the log.
pub(crate) fn header_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let first = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let alg = value.get("alg")?.as_str()?;
    Some(alg.chars().take(16).collect())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Unix seconds now; 0 if the clock is before 1970.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "https://idp.example/t1/v2.0", "sub": "s", "aud": "client",
            "exp": 2_000, "iat": 1_000, "nonce": "n1", "tid": "t1"
        }))
        .unwrap()
    }

    fn expect<'a>(tenants: &'a TenantPolicy) -> Expectations<'a> {
        static CLIENT: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["client".to_owned()]);
        Expectations {
            audiences: &CLIENT,
            authorized_party: Some("client"),
            nonce: Some("n1"),
            allowed_tenants: tenants,
            leeway_secs: 60,
        }
    }

    #[test]
    fn accepted_algorithms_are_the_intersection_with_discovery() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            accepted_algorithms(Some(&names(&["RS256"]))),
            vec![Algorithm::RS256]
        );
        assert_eq!(
            accepted_algorithms(Some(&names(&["HS256", "none", "ES256", "EdDSA", "bogus"]))),
            vec![Algorithm::ES256]
        );
        assert!(accepted_algorithms(Some(&names(&["HS256", "none"]))).is_empty());
        assert_eq!(accepted_algorithms(None), ALLOWED_ALGORITHMS.to_vec());
        assert_eq!(accepted_algorithms(Some(&[])), ALLOWED_ALGORITHMS.to_vec());
    }

    #[test]
    fn entra_tenant_template_uses_tid_and_the_tenant_policy() {
        const HOME: &str = "5b0f3a1e-7c2d-4e8f-9a6b-1d2c3e4f5a60";
        const OTHER: &str = "f4b71c2e-9d3a-4b6f-8e1c-7a2b3c4d5e6f";
        let template = &IssuerRule::for_tests("https://idp.example/{tenantid}/v2.0");
        let mut c = claims();
        c.tid = Some(HOME.into());
        c.iss = format!("https://idp.example/{HOME}/v2.0");
        let any = TenantPolicy::Any;
        assert!(check_claims(&c, template, &expect(&any), 1_000).is_ok());
        let mut wrong_iss = c.clone();
        wrong_iss.tid = Some(OTHER.into());
        assert_eq!(
            check_claims(&wrong_iss, template, &expect(&any), 1_000),
            Err(TokenError::WrongIssuer)
        );
        let home_only = TenantPolicy::Only(vec![HOME.to_owned()]);
        assert!(check_claims(&c, template, &expect(&home_only), 1_000).is_ok());
        let mut foreign = c.clone();
        foreign.tid = Some(OTHER.into());
        foreign.iss = format!("https://idp.example/{OTHER}/v2.0");
        assert_eq!(
            check_claims(&foreign, template, &expect(&home_only), 1_000),
            Err(TokenError::TenantNotAllowed(Some(OTHER.to_owned())))
        );
        // No policy under a template issuer: nobody (discovery refuses such a provider too).
        assert_eq!(
            check_claims(&c, template, &expect(&TenantPolicy::Unset), 1_000),
            Err(TokenError::TenantNotAllowed(Some(HOME.to_owned())))
        );
    }

    #[test]
    fn extra_audience_needs_trust_and_azp() {
        let mut c = claims();
        c.aud = Audience::Many(vec!["client".into(), "other".into()]);
        c.azp = Some("client".into());
        assert_eq!(
            check_claims(
                &c,
                &IssuerRule::for_tests("https://idp.example/t1/v2.0"),
                &expect(&TenantPolicy::Unset),
                1_000
            ),
            Err(TokenError::UntrustedAudience)
        );
    }
}
