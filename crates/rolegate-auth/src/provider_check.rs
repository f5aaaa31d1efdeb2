//! The online settings check (`rolegate check-config --online`): discovery and the key set
//! fetched once, outside any cache, and compared with the configuration, so a mismatch is
//! found before the first user meets it. It runs the same rules sign-in runs.

use crate::AuthConfig;
use crate::client_auth::{self, ClientAuthMethod};
use crate::id_token::accepted_algorithms;
use crate::issuer::{IssuerRule, IssuerSettings};
use crate::metadata::{self, Failure};

/// What the online check found: `facts` describe the provider, `warnings` work but deserve a
/// look, `problems` break sign-in (each names the setting to change).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderReport {
    /// One line each: what the provider offers and what rolegate will use.
    pub facts: Vec<String>,
    /// Works, but may not do what is expected.
    pub warnings: Vec<String>,
    /// Sign-in cannot work until these change.
    pub problems: Vec<String>,
}

/// Fetches the authority's discovery document and key set and checks them against `config`
/// the way sign-in would. Never fails: an unreachable provider is itself a problem.
pub async fn check_provider(config: &AuthConfig) -> ProviderReport {
    let mut report = ProviderReport::default();
    let http = match crate::http::provider_client(config.http_timeout) {
        Ok(http) => http,
        Err(e) => {
            report
                .problems
                .push(format!("cannot build the HTTP client: {e}"));
            return report;
        }
    };
    let url = metadata::discovery_url(&config.authority);
    let doc = match metadata::fetch_metadata(config, &http).await {
        Ok(doc) => doc,
        Err(Failure::Settings(why)) => {
            report.problems.push(format!("discovery: {why}"));
            return report;
        }
        Err(Failure::Unavailable(why)) => {
            report.problems.push(format!(
                "discovery: the identity provider is unreachable ({why}); check auth.authority \
                 and that this machine can reach it"
            ));
            return report;
        }
    };
    report.facts.push(format!("discovery: {url}"));
    if let Err(why) = doc.check() {
        report.problems.push(format!("discovery: {why}"));
    }

    match IssuerRule::from_discovery(
        &doc.issuer,
        &IssuerSettings {
            authority: &config.authority,
            configured: config.issuer.as_deref(),
            b2c_policies: &config.b2c.all(),
        },
    ) {
        Ok(rule) => {
            let same =
                doc.issuer.trim_end_matches('/') == config.authority.as_str().trim_end_matches('/');
            report.facts.push(if same {
                format!("issuer: {} (the authority itself)", rule.describe())
            } else {
                format!(
                    "issuer: {} (differs from the authority {}; accepted)",
                    rule.describe(),
                    config.authority
                )
            });
        }
        Err(why) => report.problems.push(format!("issuer: {why}")),
    }
    if let Err(e) = config.allowed_tenants.admit_issuer(&doc.issuer) {
        report.problems.push(format!("tenants: {e}"));
    }

    let listed = &doc.token_endpoint_auth_methods_supported;
    let used = client_auth::choose(
        config.client_auth_method,
        &config.credential,
        &config.authority,
        listed,
    );
    let how = if config.client_auth_method == ClientAuthMethod::Auto {
        format!("auto picks {used}")
    } else {
        format!("{used} (set)")
    };
    report.facts.push(format!(
        "client authentication: {how}; the provider lists {}",
        client_auth::describe_listed(listed)
    ));
    let listed_or_default = if listed.is_empty() {
        used == ClientAuthMethod::ClientSecretBasic
    } else {
        listed.iter().any(|m| m == used.as_str())
    };
    if !listed_or_default {
        report.warnings.push(format!(
            "client authentication: the provider does not list {used}; if the token call is \
             refused (invalid_client, unauthorized_client), set auth.client_auth_method to the \
             method the client is registered with ({})",
            client_auth::describe_listed(listed)
        ));
    }

    let offered = doc.id_token_signing_alg_values_supported.as_deref();
    let accepted = accepted_algorithms(offered);
    let offered_text = offered.map_or_else(|| "nothing listed".to_owned(), |o| o.join(", "));
    if accepted.is_empty() {
        report.problems.push(format!(
            "signing: the provider signs ID tokens with {offered_text}, none of which rolegate \
             accepts (RS256/384/512, PS256/384/512, ES256/384); configure the client at the \
             provider to sign with RS256"
        ));
    } else {
        let names: Vec<String> = accepted.iter().map(|a| format!("{a:?}")).collect();
        report.facts.push(format!(
            "signing: the provider offers {offered_text}; rolegate accepts {}",
            names.join(", ")
        ));
    }

    match &doc.end_session_endpoint {
        Some(end) => report
            .facts
            .push(format!("sign-out: end_session_endpoint {end}")),
        None => report.warnings.push(
            "sign-out: the provider has no end_session_endpoint, so signing out ends only \
             rolegate's session, not the one at the provider"
                .to_owned(),
        ),
    }

    match metadata::count_keys(&http, &doc.jwks_uri).await {
        Ok((0, published)) => report.problems.push(format!(
            "keys: the key set at {} holds {published} key(s), none usable to verify tokens \
             (RSA or P-256/P-384 EC signing keys)",
            doc.jwks_uri
        )),
        Ok((usable, published)) => report.facts.push(format!(
            "keys: {usable} usable of {published} in {}",
            doc.jwks_uri
        )),
        Err(why) => report.problems.push(format!("keys: {why}")),
    }
    report
}
