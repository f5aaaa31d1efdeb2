//! Which `iss` a token must carry, decided once at discovery.
//!
//! Normally the discovery issuer is the authority itself (or Entra's `{tenantid}` template on
//! the authority's host). Two Microsoft products publish another issuer, and are recognised
//! only for their own authority's tenant:
//! - Entra External ID: authority `https://{name}.ciamlogin.com/{tenant}[/v2.0]`, issuer
//!   `https://{tid}.ciamlogin.com/{tid}/v2.0`; a token's `tid` must be that `{tid}`.
//! - Azure AD B2C: authority `https://{name}.b2clogin.com/{domain}/{policy}/v2.0`, issuer
//!   `https://{name}.b2clogin.com/{tid}/v2.0/` (trailing slash); a token's `tfp` (or `acr`)
//!   must name a configured policy.
//!
//! For a loopback http authority (the dev IdP, tests) `localhost` stands in for the Microsoft
//! host; never for a real one. Any other difference is refused with the `auth.issuer` value
//! that would accept it, so trusting another issuer is always an explicit setting.

use url::Url;

use crate::error::TokenError;
use crate::id_token::Claims;
use crate::metadata::TENANT_PLACEHOLDER;

/// The issuer rule of a discovered provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IssuerRule {
    /// The discovery document's issuer (may hold `{tenantid}`).
    issuer: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `iss` must equal the issuer.
    Exact,
    /// Entra multi-tenant: `{tenantid}` replaced by the token's `tid`.
    Template,
    /// External ID: `iss` exact and `tid` equal to the issuer's tenant.
    ExternalId { tenant: String },
    /// B2C: `iss` exact, `tid` (when sent) the issuer's tenant, `tfp`/`acr` one of `policies`.
    B2c {
        tenant: String,
        policies: Vec<String>,
    },
}

/// What the configuration says about issuers: [`IssuerRule::from_discovery`]'s input.
pub(crate) struct IssuerSettings<'a> {
    pub authority: &'a Url,
    /// `auth.issuer`: the exact issuer to expect, when set.
    pub configured: Option<&'a str>,
    /// The B2C policies whose tokens are accepted (besides the authority's own).
    pub b2c_policies: &'a [String],
}

impl IssuerRule {
    /// The discovery document's issuer, as published (a template keeps `{tenantid}`).
    pub(crate) fn discovered(&self) -> &str {
        &self.issuer
    }

    /// The rule for a discovery issuer, or why it is refused, naming the setting to change.
    pub(crate) fn from_discovery(
        discovered: &str,
        settings: &IssuerSettings<'_>,
    ) -> Result<IssuerRule, String> {
        let authority = settings.authority;
        let rule = |kind| IssuerRule {
            issuer: discovered.to_owned(),
            kind,
        };
        if let Some(configured) = settings.configured {
            if discovered != configured {
                return Err(format!(
                    "the discovery issuer {discovered} differs from auth.issuer {configured}; \
                     if the discovery issuer is right, set auth.issuer = \"{discovered}\""
                ));
            }
            let kind = recognise(discovered, authority, settings.b2c_policies)
                .or_else(|| external_id_tenant(discovered, authority).map(external))
                .unwrap_or(if discovered.contains(TENANT_PLACEHOLDER) {
                    Kind::Template
                } else {
                    Kind::Exact
                });
            return Ok(rule(kind));
        }
        let trimmed = discovered.trim_end_matches('/');
        let expected = authority.as_str().trim_end_matches('/');
        if trimmed == expected {
            return Ok(rule(Kind::Exact));
        }
        if discovered.contains(TENANT_PLACEHOLDER) {
            let url = Url::parse(&discovered.replace(TENANT_PLACEHOLDER, "tenant"))
                .map_err(|_| "the discovery issuer is not a URL".to_owned())?;
            if url.origin() != authority.origin() {
                return Err(format!(
                    "the discovery issuer {discovered} is not on the authority's host {expected}; \
                     if that issuer is right, set auth.issuer = \"{discovered}\""
                ));
            }
            return Ok(rule(Kind::Template));
        }
        recognise(discovered, authority, settings.b2c_policies)
            .map(rule)
            .ok_or_else(|| {
                format!(
                    "the discovery issuer {discovered} differs from the configured authority \
                     {expected} and is not the External ID or B2C issuer of that authority's \
                     tenant; if it is the issuer you expect, set auth.issuer = \"{discovered}\""
                )
            })
    }

    /// Checks a token's `iss` (and the tenant or policy its issuer shape requires).
    pub(crate) fn check(&self, claims: &Claims) -> Result<(), TokenError> {
        let tid = claims.tid.as_deref().filter(|t| !t.is_empty());
        if claims.iss != self.expected_for(tid)? {
            return Err(TokenError::WrongIssuer);
        }
        match &self.kind {
            Kind::Exact | Kind::Template => Ok(()),
            Kind::ExternalId { tenant } => match tid {
                Some(t) if t.eq_ignore_ascii_case(tenant) => Ok(()),
                Some(_) => Err(TokenError::IssuerTenantMismatch),
                None => Err(TokenError::MissingClaim("tid".into())),
            },
            Kind::B2c { tenant, policies } => {
                if tid.is_some_and(|t| !t.eq_ignore_ascii_case(tenant)) {
                    return Err(TokenError::IssuerTenantMismatch);
                }
                let policy = claims
                    .tfp
                    .as_deref()
                    .or(claims.acr.as_deref())
                    .ok_or_else(|| TokenError::MissingClaim("tfp".into()))?;
                if policies.iter().any(|p| p.eq_ignore_ascii_case(policy)) {
                    Ok(())
                } else {
                    let shown: String = policy.chars().take(64).collect();
                    Err(TokenError::PolicyNotAllowed(shown))
                }
            }
        }
    }

    /// The exact issuer a token of tenant `tid` must carry.
    pub(crate) fn expected_for(&self, tid: Option<&str>) -> Result<String, TokenError> {
        if self.kind == Kind::Template {
            let tid = tid.ok_or_else(|| TokenError::MissingClaim("tid".into()))?;
            Ok(self.issuer.replace(TENANT_PLACEHOLDER, tid))
        } else {
            Ok(self.issuer.clone())
        }
    }

    /// The tenant a bare `iss` names, for front-channel logout (no token to read `tid` from):
    /// the `{tenantid}` segment under a template, `None` for an issuer that pins its tenant.
    /// Any other `iss` is refused.
    pub(crate) fn tenant_of(&self, iss: &str) -> Result<Option<String>, TokenError> {
        if self.kind != Kind::Template {
            return if iss == self.issuer {
                Ok(None)
            } else {
                Err(TokenError::WrongIssuer)
            };
        }
        let (prefix, suffix) = self
            .issuer
            .split_once(TENANT_PLACEHOLDER)
            .ok_or(TokenError::WrongIssuer)?;
        iss.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .map(|t| Some(t.to_owned()))
            .ok_or(TokenError::WrongIssuer)
    }

    /// One line for the start-up log: the issuer and the shape it was accepted as.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Exact => self.issuer.clone(),
            Kind::Template => format!("{} (multi-tenant template)", self.issuer),
            Kind::ExternalId { tenant } => {
                format!("{} (External ID, tenant {tenant})", self.issuer)
            }
            Kind::B2c { policies, .. } => {
                format!("{} (B2C, policies {})", self.issuer, policies.join(", "))
            }
        }
    }
}

#[cfg(test)]
impl IssuerRule {
    /// The rule discovery gives an issuer equal to the authority (or its template).
    pub(crate) fn for_tests(issuer: &str) -> IssuerRule {
        let kind = if issuer.contains(TENANT_PLACEHOLDER) {
            Kind::Template
        } else {
            Kind::Exact
        };
        IssuerRule {
            issuer: issuer.to_owned(),
            kind,
        }
    }
}

fn external(tenant: String) -> Kind {
    Kind::ExternalId { tenant }
}

/// The External ID or B2C shape of `issuer` for this authority, if it is one.
fn recognise(issuer: &str, authority: &Url, b2c_policies: &[String]) -> Option<Kind> {
    if let Some(tenant) = external_id_tenant(issuer, authority) {
        // The authority may name the tenant by id; then it must be the issuer's.
        let named = first_segment(authority);
        if named.is_some_and(|s| is_guid(s) && !s.eq_ignore_ascii_case(&tenant)) {
            return None;
        }
        return Some(external(tenant));
    }
    let (_, policy) = b2c_authority(authority)?;
    let issuer_url = Url::parse(issuer).ok()?;
    if issuer_url.origin() != authority.origin() || issuer_url.query().is_some() {
        return None;
    }
    let segments: Vec<&str> = issuer_url.path_segments()?.collect();
    match segments.as_slice() {
        [tid, "v2.0", ""] if is_guid(tid) => {
            let mut policies = vec![policy.to_owned()];
            for p in b2c_policies {
                if !policies.iter().any(|q| q.eq_ignore_ascii_case(p)) {
                    policies.push(p.clone());
                }
            }
            Some(Kind::B2c {
                tenant: (*tid).to_owned(),
                policies,
            })
        }
        _ => None,
    }
}

/// `{tid}` when `issuer` is `{scheme}://{tid}.{base}[:port]/{tid}/v2.0`, `{base}` being
/// `ciamlogin.com` for an https authority on `*.ciamlogin.com`, or `localhost` for a loopback
/// http authority, on the authority's scheme and port.
fn external_id_tenant(issuer: &str, authority: &Url) -> Option<String> {
    let base = host_suffix(authority, "ciamlogin.com")?;
    let url = Url::parse(issuer).ok()?;
    if url.scheme() != authority.scheme()
        || url.port_or_known_default() != authority.port_or_known_default()
        || url.query().is_some()
    {
        return None;
    }
    let host = url.host_str()?;
    let tid = host.strip_suffix(&format!(".{base}"))?;
    if !is_guid(tid) || url.path() != format!("/{tid}/v2.0") {
        return None;
    }
    Some(tid.to_owned())
}

/// The base domain shapes of `microsoft` (e.g. `ciamlogin.com`) are recognised under: that,
/// for an https authority on a subdomain of it; `localhost` for a loopback http authority.
fn host_suffix(authority: &Url, microsoft: &'static str) -> Option<&'static str> {
    let host = authority.host_str()?.to_ascii_lowercase();
    match authority.scheme() {
        "https" if host.ends_with(&format!(".{microsoft}")) => Some(microsoft),
        "http" if host == "localhost" => Some("localhost"),
        _ => None,
    }
}

/// `(domain, policy)` of a B2C authority `{scheme}://{name}.b2clogin.com/{domain}/{policy}[/v2.0]`
/// (`localhost` for a loopback http authority); the policy is a user flow (`B2C_1_…`) or a
/// custom policy (`B2C_1A_…`).
pub(crate) fn b2c_authority(authority: &Url) -> Option<(&str, &str)> {
    host_suffix(authority, "b2clogin.com")?;
    let mut segments = authority.path_segments()?.filter(|s| !s.is_empty());
    let domain = segments.next()?;
    let policy = segments.next()?;
    let rest: Vec<&str> = segments.collect();
    let policy_like = policy.len() > 6 && policy[..6].eq_ignore_ascii_case("b2c_1_")
        || policy.len() > 7 && policy[..7].eq_ignore_ascii_case("b2c_1a_");
    (policy_like && (rest.is_empty() || rest == ["v2.0"])).then_some((domain, policy))
}

fn first_segment(url: &Url) -> Option<&str> {
    url.path_segments()?.find(|s| !s.is_empty())
}

/// `8-4-4-4-12` hex digits.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "e7a1d3c5-2b4f-4a6e-9c8d-0f1e2d3c4b5a";
    const B2C_TID: &str = "b2c0ffee-1a2b-4c3d-8e4f-5a6b7c8d9e0f";

    fn rule(issuer: &str, authority: &str, configured: Option<&str>) -> Result<IssuerRule, String> {
        let authority = Url::parse(authority).unwrap();
        IssuerRule::from_discovery(
            issuer,
            &IssuerSettings {
                authority: &authority,
                configured,
                b2c_policies: &["B2C_1_passwordreset".to_owned()],
            },
        )
    }

    fn claims(iss: &str, tid: &str, tfp: Option<&str>) -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": iss, "sub": "s", "aud": "c", "exp": 1, "tid": tid, "tfp": tfp,
        }))
        .unwrap()
    }

    #[test]
    fn the_authority_and_its_template_are_accepted_as_before() {
        let a = "https://login.microsoftonline.com/organizations/v2.0";
        let r = rule("https://login.microsoftonline.com/{tenantid}/v2.0", a, None).unwrap();
        assert_eq!(r.kind, Kind::Template);
        let t = "https://login.microsoftonline.com/t1/v2.0";
        assert!(r.check(&claims(t, "t1", None)).is_ok());
        assert_eq!(
            r.check(&claims(t, "t2", None)),
            Err(TokenError::WrongIssuer)
        );
        assert!(rule("https://evil.example/{tenantid}/v2.0", a, None).is_err());
        assert_eq!(rule(t, &format!("{t}/"), None).unwrap().kind, Kind::Exact);
    }

    #[test]
    fn external_id_is_recognised_for_its_own_tenant_only() {
        let iss = format!("https://{TID}.ciamlogin.com/{TID}/v2.0");
        for a in [
            format!("https://contoso.ciamlogin.com/{TID}/v2.0"),
            "https://contoso.ciamlogin.com/contoso.onmicrosoft.com".to_owned(),
            "https://contoso.ciamlogin.com/".to_owned(),
        ] {
            let r = rule(&iss, &a, None).unwrap();
            assert!(r.check(&claims(&iss, TID, None)).is_ok(), "{a}");
            assert_eq!(
                r.check(&claims(&iss, B2C_TID, None)),
                Err(TokenError::IssuerTenantMismatch)
            );
        }
        // Another tenant's id in the authority, another host, http on a real host: refused.
        let other = format!("https://contoso.ciamlogin.com/{B2C_TID}/v2.0");
        assert!(
            rule(&iss, &other, None)
                .unwrap_err()
                .contains("auth.issuer")
        );
        assert!(rule(&iss, "https://login.microsoftonline.com/x/v2.0", None).is_err());
        let http = format!("http://{TID}.ciamlogin.com/{TID}/v2.0");
        assert!(rule(&http, "https://contoso.ciamlogin.com/", None).is_err());
        // Loopback: localhost stands in for ciamlogin.com, same port.
        let dev = format!("http://{TID}.localhost:9400/{TID}/v2.0");
        let dev_a = format!("http://localhost:9400/{TID}/v2.0");
        assert!(rule(&dev, &dev_a, None).is_ok());
        assert!(rule(&dev, &format!("http://localhost:9401/{TID}/v2.0"), None).is_err());
        assert!(rule(&dev, &format!("http://127.0.0.1:9400/{TID}/v2.0"), None).is_err());
    }

    #[test]
    fn b2c_is_recognised_with_its_trailing_slash_and_policies() {
        let a = "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signupsignin/v2.0";
        let iss = format!("https://contoso.b2clogin.com/{B2C_TID}/v2.0/");
        let r = rule(&iss, a, None).unwrap();
        for ok in [
            "B2C_1_signupsignin",
            "b2c_1_signupsignin",
            "B2C_1_passwordreset",
        ] {
            assert!(r.check(&claims(&iss, B2C_TID, Some(ok))).is_ok(), "{ok}");
        }
        assert_eq!(
            r.check(&claims(&iss, B2C_TID, Some("B2C_1_other"))),
            Err(TokenError::PolicyNotAllowed("B2C_1_other".into()))
        );
        assert_eq!(
            r.check(&claims(&iss, B2C_TID, None)),
            Err(TokenError::MissingClaim("tfp".into()))
        );
        // Without the slash, on another host, or a non-GUID tenant: not the B2C shape.
        let no_slash = format!("https://contoso.b2clogin.com/{B2C_TID}/v2.0");
        assert!(rule(&no_slash, a, None).is_err());
        assert!(
            rule(
                &format!("https://other.b2clogin.com/{B2C_TID}/v2.0/"),
                a,
                None
            )
            .is_err()
        );
        assert!(rule("https://contoso.b2clogin.com/contoso/v2.0/", a, None).is_err());
    }

    #[test]
    fn a_configured_issuer_must_be_exactly_the_discovered_one() {
        let a = "https://idp.example/realm";
        let iss = "https://sts.example/realm";
        let err = rule(iss, a, None).unwrap_err();
        assert!(
            err.contains("auth.issuer = \"https://sts.example/realm\""),
            "{err}"
        );
        let r = rule(iss, a, Some(iss)).unwrap();
        assert!(r.check(&claims(iss, "t", None)).is_ok());
        assert_eq!(
            r.check(&claims("https://idp.example/realm", "t", None)),
            Err(TokenError::WrongIssuer)
        );
        let err = rule(iss, a, Some("https://sts.example/other")).unwrap_err();
        assert!(
            err.contains("set auth.issuer = \"https://sts.example/realm\""),
            "{err}"
        );
    }

    #[test]
    fn a_bare_iss_names_its_template_tenant_or_nothing() {
        let template = IssuerRule::for_tests("https://login.example/{tenantid}/v2.0");
        assert_eq!(
            template.tenant_of("https://login.example/t-1/v2.0"),
            Ok(Some("t-1".to_owned()))
        );
        for wrong in [
            "https://login.example//v2.0",
            "https://login.example/a/b/v2.0",
            "https://evil.example/t-1/v2.0",
            "https://login.example/t-1/v2.0/x",
        ] {
            assert_eq!(
                template.tenant_of(wrong),
                Err(TokenError::WrongIssuer),
                "{wrong}"
            );
        }
        let exact = IssuerRule::for_tests("https://idp.example");
        assert_eq!(exact.tenant_of("https://idp.example"), Ok(None));
        assert_eq!(
            exact.tenant_of("https://idp.example/"),
            Err(TokenError::WrongIssuer)
        );
    }

    #[test]
    fn guids_are_recognised() {
        assert!(is_guid(TID));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(!is_guid("e7a1d3c5-2b4f-4a6e-9c8d-0f1e2d3c4b5"));
    }
}
