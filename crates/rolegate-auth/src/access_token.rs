//! Bearer tokens checked as access tokens for this API (RFC 6750), in Entra's shapes.
//!
//! The signature, issuer, tenant and time checks are the sign-in ones (`id_token.rs`); what
//! is added here is what makes a token an *access* token for *this* API: an audience from
//! `api_audiences`, and either a delegated scope from `api_scopes` (`scp`) or app roles
//! (app-only tokens from the client-credentials grant). That rule is what keeps an ID token,
//! whose `aud` is the client id too, from passing as an API credential.
//!
//! Entra `ver` 1.0 tokens carry the issuer `{instance}{tid}/` (`https://sts.windows.net/{tid}/`
//! on the public cloud) and `appid` instead of `azp`; tokens without `ver` (other providers)
//! follow the 2.0 rules.

use url::Url;

use crate::config::AuthConfig;
use crate::error::TokenError;
use crate::id_token::{self, Claims, Expectations, now};
use crate::issuer::IssuerRule;
use crate::metadata::Provider;
use crate::roles::{RoleClaim, RoleReadError, RoleSource};
use crate::session::User;

/// Entra's public-cloud instance host, whose v1 tokens come from `sts.windows.net`.
const PUBLIC_CLOUD_HOST: &str = "login.microsoftonline.com";

/// What kind of access token a verified token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A user's token (`scp` holds a configured scope).
    Delegated,
    /// An application's own token (client credentials): app roles, no user.
    App {
        /// The calling client (`azp`, or `appid` in v1).
        client: String,
    },
}

/// Why a Bearer token was not accepted.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Not a usable access token for this API: 401 `invalid_token`. `claims` is set when the
    /// signature was valid (for the audit row).
    Invalid {
        error: TokenError,
        claims: Option<Box<Claims>>,
    },
    /// A valid access token that does not grant this API: 403 `insufficient_scope`.
    Insufficient {
        user: Box<User>,
        /// What the token lacks, short (for the audit row).
        needed: String,
        detail: String,
    },
}

impl Refusal {
    fn invalid(error: TokenError) -> Refusal {
        Refusal::Invalid {
            error,
            claims: None,
        }
    }
}

/// Verifies `token` and turns it into the caller it speaks for.
pub(crate) async fn accept(
    token: &str,
    provider: &Provider,
    http: &reqwest::Client,
    config: &AuthConfig,
) -> Result<User, Refusal> {
    let expect = Expectations {
        audiences: &config.api_audiences,
        authorized_party: None,
        nonce: None,
        allowed_tenants: &config.allowed_tenants,
        leeway_secs: config.clock_leeway_secs,
    };
    let claims = id_token::verify_signature(token, provider, http, &expect)
        .await
        .map_err(Refusal::invalid)?;
    let with_claims = |error| Refusal::Invalid {
        error,
        claims: Some(Box::new(claims.clone())),
    };
    let issuer = &provider.issuer;
    let checked = match claims.ver.as_deref() {
        None | Some("2.0") => None,
        Some("1.0") => {
            let mut v2 = claims.clone();
            v2.iss = v2_issuer_of_v1(&claims, issuer, &config.authority).map_err(with_claims)?;
            Some(v2)
        }
        Some(other) => {
            let shown: String = other.chars().take(8).collect();
            return Err(with_claims(TokenError::UnsupportedVersion(shown)));
        }
    };
    // The sign-in rules for issuer and tenant, on the 2.0 form of the issuer.
    id_token::check_claims(checked.as_ref().unwrap_or(&claims), issuer, &expect, now())
        .map_err(with_claims)?;
    let kind = classify(&claims, &config.client_id, &config.api_scopes).map_err(|e| match e {
        Classified::Invalid(error) => with_claims(error),
        Classified::MissingScope => Refusal::Insufficient {
            user: Box::new(caller(&claims, &Kind::Delegated, Vec::new(), config)),
            needed: format!("the scope {}", config.api_scopes.join(" or ")),
            detail: format!(
                "the token's scopes (scp) include none of this API's scopes: {} (auth.api_scopes)",
                config.api_scopes.join(", ")
            ),
        },
    })?;
    let roles = match &kind {
        // An application holds no groups: its app roles are the `roles` claim.
        // Entra app-only tokens always carry app roles in `roles`, whatever role_claim says.
        Kind::App { .. } => RoleSource::claim(RoleClaim::roles())
            .read(&claims)
            .map_err(|e| with_claims(read_error(e)))?,
        // A user's token: the same role claim (and group map) as sign-in.
        Kind::Delegated => config
            .role_source
            .read(&claims)
            .map_err(|e| with_claims(read_error(e)))?,
    };
    let user = caller(&claims, &kind, roles, config);
    if matches!(kind, Kind::App { .. }) && user.role().is_none() {
        let detail = format!(
            "the application's app roles (roles) include none of this API's roles: {}",
            config.roles.describe()
        );
        return Err(Refusal::Insufficient {
            user: Box::new(user),
            needed: format!("an app role of {}", config.roles.describe()),
            detail,
        });
    }
    Ok(user)
}

/// The token error for roles that cannot be read.
fn read_error(e: RoleReadError) -> TokenError {
    e.token_error().unwrap_or_else(|| {
        TokenError::InvalidClaims("groups overage: the token lists no groups".into())
    })
}

/// The caller a verified token speaks for, ranked in the configured hierarchy.
fn caller(claims: &Claims, kind: &Kind, roles: Vec<String>, config: &AuthConfig) -> User {
    let mut user = User::from_claims(claims, roles, 0);
    user.sid = None;
    user.bearer = true;
    user.azp = claims.azp.clone().or_else(|| claims.appid.clone());
    if let Kind::App { client } = kind {
        user.app_only = true;
        user.name = client.clone();
        user.preferred_username = None;
        user.email = None;
    }
    user.rank_in(&config.roles);
    user
}

/// Why [`classify`] refused a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Classified {
    /// Not an access token for an API at all (401).
    Invalid(TokenError),
    /// A delegated token without a configured scope (403).
    MissingScope,
}

/// Tells an access token from an ID token, and a user's token from an application's, on
/// signature-checked claims.
///
/// - `nonce`, `at_hash` or `c_hash`: an ID token.
/// - `scp` (or RFC 9068 `scope` when `scp` is absent) present: delegated; it must hold one of
///   `api_scopes`.
/// - no scopes: app-only; it must carry app roles and name its calling client (`azp` or
///   `appid`, which every Entra access token does and ID tokens do not). A token naming this
///   app itself as the caller must say `idtyp` `app`, since an ID token may carry `azp`.
pub(crate) fn classify(
    claims: &Claims,
    client_id: &str,
    api_scopes: &[String],
) -> Result<Kind, Classified> {
    if claims.nonce.is_some() || claims.at_hash.is_some() || claims.c_hash.is_some() {
        return Err(Classified::Invalid(TokenError::IdTokenAsBearer));
    }
    let idtyp = claims.idtyp.as_deref();
    let scopes: Vec<&str> = claims
        .scp
        .as_deref()
        .or(claims.scope.as_deref())
        .unwrap_or("")
        .split_ascii_whitespace()
        .collect();
    if !scopes.is_empty() {
        if idtyp == Some("app") {
            return Err(Classified::Invalid(TokenError::InvalidClaims(
                "an app-only token (idtyp app) must not carry delegated scopes".into(),
            )));
        }
        if !scopes.iter().any(|s| api_scopes.iter().any(|a| a == s)) {
            return Err(Classified::MissingScope);
        }
        return Ok(Kind::Delegated);
    }
    // A wrongly typed `roles` counts as present, so the caller hears which type was refused.
    let has_roles = match &claims.roles {
        None => false,
        Some(serde_json::Value::Array(r)) => !r.is_empty(),
        Some(_) => true,
    };
    if !has_roles || idtyp == Some("user") {
        return Err(Classified::Invalid(TokenError::NoScopeOrRoles));
    }
    let client = claims
        .azp
        .as_deref()
        .or(claims.appid.as_deref())
        .map(str::trim)
        .filter(|c| !c.is_empty());
    match client {
        None => Err(Classified::Invalid(TokenError::IdTokenAsBearer)),
        Some(c) if c == client_id && idtyp != Some("app") => {
            Err(Classified::Invalid(TokenError::IdTokenAsBearer))
        }
        Some(c) => Ok(Kind::App {
            client: c.to_owned(),
        }),
    }
}

/// The 2.0 issuer a `ver` 1.0 token stands for, so the sign-in issuer and tenant rules apply
/// unchanged. The v1 issuer is `{authority origin}/{tid}/` (and `https://sts.windows.net/{tid}/`
/// on the public cloud); the sign-in issuer, its `{tenantid}` filled with the token's `tid`,
/// must name that same tenant, so a single-tenant authority accepts only its own tenant.
pub(crate) fn v2_issuer_of_v1(
    claims: &Claims,
    issuer: &IssuerRule,
    authority: &Url,
) -> Result<String, TokenError> {
    let tid = claims
        .tid
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TokenError::MissingClaim("tid".into()))?;
    let v2 = issuer.expected_for(Some(tid))?;
    let names_tenant = Url::parse(&v2)
        .ok()
        .and_then(|u| u.path_segments().map(|mut s| s.any(|seg| seg == tid)))
        .unwrap_or(false);
    if !names_tenant {
        return Err(TokenError::WrongIssuer);
    }
    let origin = authority.origin().ascii_serialization();
    let own = format!("{origin}/{tid}/");
    let sts = format!("https://sts.windows.net/{tid}/");
    let public_cloud = authority.host_str() == Some(PUBLIC_CLOUD_HOST);
    if claims.iss == own || (public_cloud && claims.iss == sts) {
        Ok(v2)
    } else {
        Err(TokenError::WrongIssuer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLIENT: &str = "11111111-aaaa-bbbb-cccc-000000000001";
    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn claims(value: serde_json::Value) -> Claims {
        let mut base = json!({
            "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
            "sub": "s", "aud": CLIENT, "exp": 2_000, "tid": TID, "ver": "2.0",
        });
        for (k, v) in value.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn scopes() -> Vec<String> {
        vec!["access_as_user".into()]
    }

    fn kind(value: serde_json::Value) -> Result<Kind, Classified> {
        classify(&claims(value), CLIENT, &scopes())
    }

    #[test]
    fn a_delegated_token_needs_a_configured_scope() {
        assert_eq!(
            kind(json!({"scp": "User.Read access_as_user", "azp": "spa"})),
            Ok(Kind::Delegated)
        );
        assert_eq!(
            kind(json!({"scp": "User.Read", "azp": "spa"})),
            Err(Classified::MissingScope)
        );
        // RFC 9068's `scope` counts when there is no `scp`; scopes match exactly.
        assert_eq!(
            kind(json!({"scope": "openid access_as_user"})),
            Ok(Kind::Delegated)
        );
        assert_eq!(
            kind(json!({"scp": "Access_As_User"})),
            Err(Classified::MissingScope)
        );
    }

    #[test]
    fn id_tokens_are_told_apart() {
        let id = TokenError::IdTokenAsBearer;
        for c in [
            json!({"nonce": "n", "scp": "access_as_user"}),
            json!({"at_hash": "h", "roles": ["DemoApp.Read"], "azp": "daemon"}),
            json!({"c_hash": "h"}),
            // Roles but no calling client: a sign-in token, not an application's.
            json!({"roles": ["DemoApp.Admin"]}),
            // Our own client as the caller, without idtyp app: an ID token with azp.
            json!({"roles": ["DemoApp.Admin"], "azp": CLIENT}),
        ] {
            assert_eq!(kind(c.clone()), Err(Classified::Invalid(id.clone())), "{c}");
        }
        assert_eq!(
            kind(json!({})),
            Err(Classified::Invalid(TokenError::NoScopeOrRoles))
        );
        assert_eq!(
            kind(json!({"scp": "  ", "roles": []})),
            Err(Classified::Invalid(TokenError::NoScopeOrRoles))
        );
    }

    #[test]
    fn app_only_tokens_need_roles_and_a_caller() {
        assert_eq!(
            kind(json!({"roles": ["DemoApp.Read"], "azp": "daemon", "idtyp": "app"})),
            Ok(Kind::App {
                client: "daemon".into()
            })
        );
        assert_eq!(
            kind(json!({"roles": ["DemoApp.Read"], "appid": "daemon-v1", "ver": "1.0"})),
            Ok(Kind::App {
                client: "daemon-v1".into()
            })
        );
        assert_eq!(
            kind(json!({"roles": ["DemoApp.Read"], "azp": CLIENT, "idtyp": "app"})),
            Ok(Kind::App {
                client: CLIENT.into()
            })
        );
        assert_eq!(
            kind(json!({"azp": "daemon", "idtyp": "app"})),
            Err(Classified::Invalid(TokenError::NoScopeOrRoles))
        );
        assert_eq!(
            kind(json!({"roles": ["DemoApp.Read"], "azp": "d", "idtyp": "user"})),
            Err(Classified::Invalid(TokenError::NoScopeOrRoles))
        );
        assert!(matches!(
            kind(json!({"scp": "access_as_user", "idtyp": "app"})),
            Err(Classified::Invalid(TokenError::InvalidClaims(_)))
        ));
    }

    #[test]
    fn v1_issuers_map_to_the_sign_in_issuer() {
        let public = Url::parse("https://login.microsoftonline.com/organizations/v2.0").unwrap();
        let template = &IssuerRule::for_tests("https://login.microsoftonline.com/{tenantid}/v2.0");
        let v2 = format!("https://login.microsoftonline.com/{TID}/v2.0");
        for iss in [
            format!("https://sts.windows.net/{TID}/"),
            format!("https://login.microsoftonline.com/{TID}/"),
        ] {
            let c = claims(json!({"iss": iss, "ver": "1.0"}));
            assert_eq!(v2_issuer_of_v1(&c, template, &public), Ok(v2.clone()));
        }
        for iss in [
            format!("https://sts.windows.net/{TID}"),
            "https://sts.windows.net/other-tenant/".to_owned(),
            format!("https://evil.example/{TID}/"),
        ] {
            let c = claims(json!({"iss": iss, "ver": "1.0"}));
            assert_eq!(
                v2_issuer_of_v1(&c, template, &public),
                Err(TokenError::WrongIssuer),
                "{iss}"
            );
        }
        // A single-tenant authority takes v1 tokens of its own tenant only.
        let single = Url::parse(&v2).unwrap();
        let other = claims(json!({"iss": "https://sts.windows.net/t2/", "tid": "t2"}));
        assert_eq!(
            v2_issuer_of_v1(&other, &IssuerRule::for_tests(&v2), &single),
            Err(TokenError::WrongIssuer)
        );
        // sts.windows.net is the public cloud's only; a sovereign cloud uses its own host.
        let gov = Url::parse(&format!("https://login.microsoftonline.us/{TID}/v2.0")).unwrap();
        let c = claims(json!({"iss": format!("https://sts.windows.net/{TID}/")}));
        assert_eq!(
            v2_issuer_of_v1(&c, &IssuerRule::for_tests(gov.as_str()), &gov),
            Err(TokenError::WrongIssuer)
        );
        let c = claims(json!({"iss": format!("https://login.microsoftonline.us/{TID}/")}));
        assert!(v2_issuer_of_v1(&c, &IssuerRule::for_tests(gov.as_str()), &gov).is_ok());
        // An issuer without a tenant in its path cannot vouch for v1 tokens.
        let root = Url::parse("https://idp.example").unwrap();
        let c = claims(json!({"iss": format!("https://idp.example/{TID}/")}));
        assert_eq!(
            v2_issuer_of_v1(&c, &IssuerRule::for_tests("https://idp.example"), &root),
            Err(TokenError::WrongIssuer)
        );
        let no_tid = claims(json!({"tid": ""}));
        assert_eq!(
            v2_issuer_of_v1(&no_tid, template, &public),
            Err(TokenError::MissingClaim("tid".into()))
        );
    }
}
