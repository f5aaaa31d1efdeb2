//! Which Entra tenants may sign in: `allowed_tenants`, checked on every ID and access token.
//!
//! A multi-tenant authority (`/organizations`, `/common`, or any issuer with the `{tenantid}`
//! template) lets every Entra tenant in the world sign in, and a foreign tenant's admin can give
//! themselves any app role there. So such an authority needs an explicit policy: a list of
//! tenant ids, or `*` to let every tenant in on purpose. A single-tenant authority needs none:
//! its issuer already names the one tenant.

use url::Url;

use crate::error::{AuthError, TokenError};
use crate::metadata::TENANT_PLACEHOLDER;

/// The `allowed_tenants` value that lets every tenant in.
pub const ANY_TENANT: &str = "*";

/// Path tenants of an Entra authority that accept accounts of every tenant.
const MULTI_TENANT_PATHS: [&str; 2] = ["organizations", "common"];

/// The tenants a token may come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum TenantPolicy {
    /// `allowed_tenants` empty: the issuer pins the tenant (single-tenant authorities only).
    #[default]
    Unset,
    /// `["*"]`: every tenant, explicitly.
    Any,
    /// These tenant ids (GUIDs, lower case).
    Only(Vec<String>),
}

impl TenantPolicy {
    /// Reads the configured list; each problem is a sentence for the `allowed_tenants` field.
    pub(crate) fn parse(values: &[String]) -> Result<TenantPolicy, Vec<String>> {
        let values: Vec<&str> = values
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Ok(TenantPolicy::Unset);
        }
        if values.contains(&ANY_TENANT) {
            return if values.len() == 1 {
                Ok(TenantPolicy::Any)
            } else {
                Err(vec![
                    "\"*\" lets every tenant in, so it must be the only entry; list either \"*\" or tenant ids"
                        .to_owned(),
                ])
            };
        }
        let mut ids = Vec::new();
        let mut problems = Vec::new();
        for v in values {
            match normalise_guid(v) {
                Some(id) if !ids.contains(&id) => ids.push(id),
                Some(_) => {}
                None => problems.push(format!(
                    "{v:?} is not a tenant id; use the Directory (tenant) ID GUID shown on the \
                     tenant's Overview page, e.g. 5b0f3a1e-7c2d-4e8f-9a6b-1d2c3e4f5a60 (a domain \
                     name never matches the token's tid)"
                )),
            }
        }
        if problems.is_empty() {
            Ok(TenantPolicy::Only(ids))
        } else {
            Err(problems)
        }
    }

    /// Whether a token with this `tid` may pass, under a provider whose discovered issuer is
    /// `issuer`. An unset policy under a `{tenantid}` issuer refuses every token: discovery
    /// already refuses that provider, this keeps a direct caller safe too.
    pub(crate) fn check(&self, tid: Option<&str>, issuer: &str) -> Result<(), TokenError> {
        let tid = tid.map(str::trim).filter(|t| !t.is_empty());
        let refused = || TokenError::TenantNotAllowed(tid.and_then(normalise_guid));
        match self {
            TenantPolicy::Unset if issuer.contains(TENANT_PLACEHOLDER) => Err(refused()),
            TenantPolicy::Unset | TenantPolicy::Any => Ok(()),
            TenantPolicy::Only(ids) => match tid.and_then(normalise_guid) {
                Some(t) if ids.contains(&t) => Ok(()),
                _ => Err(refused()),
            },
        }
    }

    /// Refuses a discovered multi-tenant issuer when no tenant policy is set.
    pub(crate) fn admit_issuer(&self, issuer: &str) -> Result<(), AuthError> {
        if *self == TenantPolicy::Unset && issuer.contains(TENANT_PLACEHOLDER) {
            return Err(AuthError::TenantPolicyMissing {
                issuer: issuer.chars().take(200).collect(),
            });
        }
        Ok(())
    }

    /// One line for operators: which tenants may sign in.
    pub fn describe(&self) -> String {
        match self {
            TenantPolicy::Unset => "the authority's own tenant (allowed_tenants unset)".into(),
            TenantPolicy::Any => "every Entra tenant (allowed_tenants = [\"*\"])".into(),
            TenantPolicy::Only(ids) => ids.join(", "),
        }
    }
}

/// Whether the authority's first path segment is `organizations` or `common`.
pub(crate) fn is_multi_tenant_authority(authority: &Url) -> bool {
    authority
        .path_segments()
        .and_then(|mut s| s.next())
        .is_some_and(|first| {
            MULTI_TENANT_PATHS
                .iter()
                .any(|m| first.eq_ignore_ascii_case(m))
        })
}

/// The issuer rolegate expects for `authority` before discovery: for `/organizations` and
/// `/common` Entra's `{tenantid}` template, otherwise the authority itself.
pub fn expected_issuer(authority: &Url) -> String {
    let text = authority.as_str().trim_end_matches('/');
    if !is_multi_tenant_authority(authority) {
        return text.to_owned();
    }
    let mut url = authority.clone();
    let rest: Vec<String> = authority
        .path_segments()
        .map(|s| s.skip(1).map(str::to_owned).collect())
        .unwrap_or_default();
    url.set_path("");
    let mut out = url.as_str().trim_end_matches('/').to_owned();
    out.push('/');
    out.push_str(TENANT_PLACEHOLDER);
    for seg in rest.iter().filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
    }
    out
}

/// A GUID in its canonical 8-4-4-4-12 form, lower case; `None` for anything else.
pub(crate) fn normalise_guid(text: &str) -> Option<String> {
    let t = text.trim();
    let groups: Vec<&str> = t.split('-').collect();
    let shape_ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    shape_ok.then(|| t.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "5b0f3a1e-7c2d-4e8f-9a6b-1d2c3e4f5a60";
    const FABRIKAM: &str = "f4b71c2e-9d3a-4b6f-8e1c-7a2b3c4d5e6f";
    const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parse_reads_unset_star_and_guids() {
        assert_eq!(TenantPolicy::parse(&[]), Ok(TenantPolicy::Unset));
        assert_eq!(TenantPolicy::parse(&list(&[" "])), Ok(TenantPolicy::Unset));
        assert_eq!(TenantPolicy::parse(&list(&["*"])), Ok(TenantPolicy::Any));
        assert_eq!(
            TenantPolicy::parse(&list(&[&HOME.to_uppercase(), HOME])),
            Ok(TenantPolicy::Only(vec![HOME.to_owned()]))
        );
        let err = TenantPolicy::parse(&list(&["*", HOME])).unwrap_err();
        assert!(err[0].contains("only entry"), "{err:?}");
        let err = TenantPolicy::parse(&list(&["contoso.onmicrosoft.com", "x"])).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].contains("\"contoso.onmicrosoft.com\" is not a tenant id"));
    }

    #[test]
    fn only_lets_listed_tenants_in_case_insensitively() {
        let p = TenantPolicy::Only(vec![HOME.to_owned()]);
        assert_eq!(p.check(Some(HOME), TEMPLATE), Ok(()));
        assert_eq!(p.check(Some(&HOME.to_uppercase()), TEMPLATE), Ok(()));
        assert_eq!(
            p.check(Some(FABRIKAM), TEMPLATE),
            Err(TokenError::TenantNotAllowed(Some(FABRIKAM.to_owned())))
        );
        // A tid that is no GUID is refused and never echoed.
        assert_eq!(
            p.check(Some("evil\"\r\n"), TEMPLATE),
            Err(TokenError::TenantNotAllowed(None))
        );
        assert_eq!(
            p.check(None, TEMPLATE),
            Err(TokenError::TenantNotAllowed(None))
        );
    }

    #[test]
    fn star_lets_every_tenant_in_and_unset_only_a_pinned_issuer() {
        assert_eq!(TenantPolicy::Any.check(Some(FABRIKAM), TEMPLATE), Ok(()));
        let single = format!("https://login.microsoftonline.com/{HOME}/v2.0");
        assert_eq!(TenantPolicy::Unset.check(Some(HOME), &single), Ok(()));
        assert_eq!(
            TenantPolicy::Unset.check(Some(FABRIKAM), TEMPLATE),
            Err(TokenError::TenantNotAllowed(Some(FABRIKAM.to_owned())))
        );
    }

    #[test]
    fn a_template_issuer_without_a_policy_is_refused_at_discovery() {
        let err = TenantPolicy::Unset.admit_issuer(TEMPLATE).unwrap_err();
        assert_eq!(err.reason(), "tenant_policy_missing");
        assert!(err.to_string().contains("allowed_tenants"), "{err}");
        assert!(TenantPolicy::Any.admit_issuer(TEMPLATE).is_ok());
        assert!(
            TenantPolicy::Only(vec![HOME.into()])
                .admit_issuer(TEMPLATE)
                .is_ok()
        );
        assert!(
            TenantPolicy::Unset
                .admit_issuer("https://login.microsoftonline.com/t/v2.0")
                .is_ok()
        );
    }

    #[test]
    fn multi_tenant_authorities_and_their_issuer() {
        let url = |s: &str| Url::parse(s).unwrap();
        for a in [
            "https://login.microsoftonline.com/organizations/v2.0",
            "https://login.microsoftonline.com/Common/v2.0/",
        ] {
            assert!(is_multi_tenant_authority(&url(a)), "{a}");
            assert_eq!(expected_issuer(&url(a)), TEMPLATE);
        }
        let single = format!("https://login.microsoftonline.com/{HOME}/v2.0");
        assert!(!is_multi_tenant_authority(&url(&single)));
        assert_eq!(expected_issuer(&url(&format!("{single}/"))), single);
        assert!(!is_multi_tenant_authority(&url("http://127.0.0.1:9400")));
        assert_eq!(
            expected_issuer(&url("http://127.0.0.1:9400/organizations/v2.0")),
            "http://127.0.0.1:9400/{tenantid}/v2.0"
        );
    }
}
