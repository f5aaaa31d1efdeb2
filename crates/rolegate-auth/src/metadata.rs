//! Provider discovery and the signing-key cache.
//!
//! Discovery runs lazily and is retried after a cool-down while the provider is down, so
//! rolegate starts without it and recovers by itself. Keys are fetched once and refetched only
//! for an unknown `kid`, at most once per cool-down, so forged tokens cannot make us hammer the
//! provider.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use url::Url;

use crate::config::AuthConfig;
use crate::error::{AuthError, TokenError};
use crate::events::{AuthEvents, IdpEndpoint};
use crate::id_token::accepted_algorithms;
use crate::issuer::{IssuerRule, IssuerSettings};
use crate::log_safe::Escaped;

/// The parts of the discovery document rolegate uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    #[serde(default)]
    pub end_session_endpoint: Option<Url>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// What the provider says it signs ID tokens with; narrows the asymmetric allow-list.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
}

/// Entra's multi-tenant issuers carry this placeholder, replaced by the token's `tid`.
pub(crate) const TENANT_PLACEHOLDER: &str = "{tenantid}";

impl ProviderMetadata {
    /// Checks that every endpoint uses https (loopback excepted), so a tampered document
    /// cannot downgrade the flow. The issuer is `issuer.rs`'s to judge.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (name, url) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("jwks_uri", &self.jwks_uri),
        ] {
            if !is_secure_or_loopback(url) {
                return Err(format!("{name} must use https: {url}"));
            }
        }
        if !self.code_challenge_methods_supported.is_empty()
            && !self
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256")
        {
            return Err("the provider does not support PKCE S256".to_owned());
        }
        Ok(())
    }
}

/// https, or plain http on a loopback host (local development and tests only): the rule for
/// every URL the module talks to, exported so hosts can check their own settings the same way.
pub fn is_secure_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback_host(url),
        _ => false,
    }
}

/// Whether the URL's host is `localhost` or a loopback address.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The type of a key (its JWK `kty`, and curve for EC): a token's `alg` must belong to it, so
/// a key published for one family is never used to verify another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// `kty: RSA`: RS256/384/512, PS256/384/512.
    Rsa,
    /// `kty: EC`, `crv: P-256`: ES256.
    EcP256,
    /// `kty: EC`, `crv: P-384`: ES384.
    EcP384,
}

impl KeyKind {
    /// The kind of an asymmetric key rolegate can use; `None` for symmetric (`oct`) keys, which
    /// would let anyone holding the shared secret forge tokens, and for curves it cannot verify.
    fn of(jwk: &Jwk) -> Option<KeyKind> {
        match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Some(KeyKind::Rsa),
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => Some(KeyKind::EcP256),
                EllipticCurve::P384 => Some(KeyKind::EcP384),
                _ => None,
            },
            // oct, OKP (EdDSA is not allowed) and whatever jsonwebtoken adds later.
            _ => None,
        }
    }

    /// Whether a token signed with `alg` may be verified with a key of this kind.
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (KeyKind::Rsa, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (KeyKind::EcP256, ES256)
                | (KeyKind::EcP384, ES384)
        )
    }
}

/// A verification key from the JWKS, decoded once.
pub(crate) struct CachedKey {
    pub key: DecodingKey,
    /// The `alg` the JWK pins, if any; a token must then use exactly it.
    pub alg: Option<Algorithm>,
    /// The key's type; a token's `alg` must fit it.
    pub kind: KeyKind,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<CachedKey>>,
    /// Keys without a `kid`, usable only when the set has exactly one key.
    only_key: Option<Arc<CachedKey>>,
    /// How many keys of the document can verify a token, and how many it held.
    usable: usize,
    published: usize,
}

/// JWKS cache with a rate-limited refetch on unknown `kid`.
pub(crate) struct KeyCache {
    jwks_uri: Url,
    keys: RwLock<KeySet>,
    last_fetch: RwLock<Instant>,
    refresh: tokio::sync::Mutex<()>,
    cooldown: std::time::Duration,
    events: Arc<dyn AuthEvents>,
}

impl KeyCache {
    async fn fetch(
        http: &reqwest::Client,
        jwks_uri: &Url,
        events: &dyn AuthEvents,
    ) -> Result<KeySet, String> {
        let started = Instant::now();
        let result = Self::fetch_untimed(http, jwks_uri).await;
        events.idp_call(IdpEndpoint::Jwks, started.elapsed(), result.is_ok());
        result
    }

    async fn fetch_untimed(http: &reqwest::Client, jwks_uri: &Url) -> Result<KeySet, String> {
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let response = http
            .get(jwks_uri.clone())
            .send()
            .await
            .map_err(|e| format!("GET {jwks_uri}: {}", describe_reqwest(&e)))?;
        if !response.status().is_success() {
            return Err(format!("GET {jwks_uri}: status {}", response.status()));
        }
        let raw: RawSet = response
            .json()
            .await
            .map_err(|e| format!("JWKS at {jwks_uri} is not a key set: {e}"))?;
        Ok(key_set(raw.keys))
    }

    /// The key for `kid`; refetches the set once per cool-down when the kid is unknown.
    pub(crate) async fn key_for(
        &self,
        http: &reqwest::Client,
        kid: Option<&str>,
    ) -> Result<Arc<CachedKey>, TokenError> {
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        let _guard = self.refresh.lock().await;
        // Another request may have refreshed while we waited.
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        let since = self
            .last_fetch
            .read()
            .map(|t| t.elapsed())
            .unwrap_or_default();
        if since < self.cooldown {
            return Err(TokenError::UnknownKey);
        }
        *self
            .last_fetch
            .write()
            .map_err(|_| TokenError::KeysUnavailable("key cache poisoned".into()))? =
            Instant::now();
        tracing::info!(jwks_uri = %self.jwks_uri, "unknown key id, refetching the provider's keys");
        let set = Self::fetch(http, &self.jwks_uri, self.events.as_ref())
            .await
            .map_err(TokenError::KeysUnavailable)?;
        if let Ok(mut keys) = self.keys.write() {
            *keys = set;
        }
        self.events.jwks_refreshed();
        self.lookup(kid).ok_or(TokenError::UnknownKey)
    }

    fn lookup(&self, kid: Option<&str>) -> Option<Arc<CachedKey>> {
        let keys = self.keys.read().ok()?;
        match kid {
            Some(kid) => keys.by_kid.get(kid).cloned(),
            None => keys.only_key.clone(),
        }
    }
}

/// The usable keys of a JWKS. Keys that cannot verify an allowed token are dropped here: ones
/// that do not parse, encryption keys, symmetric (`oct`) keys and unsupported curves.
fn key_set(values: Vec<serde_json::Value>) -> KeySet {
    let mut set = KeySet {
        published: values.len(),
        ..KeySet::default()
    };
    let mut usable = Vec::new();
    for value in values {
        // A key we cannot parse (unknown kty, encryption key) is skipped, not fatal.
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Some(kind) = KeyKind::of(&jwk) else {
            tracing::info!(
                kid = ?jwk.common.key_id,
                "ignoring a key of the provider's key set: not an RSA or P-256/P-384 EC key"
            );
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| Algorithm::try_from(a).ok());
        let cached = Arc::new(CachedKey { key, alg, kind });
        if let Some(kid) = jwk.common.key_id.clone() {
            set.by_kid.insert(kid, cached.clone());
        }
        usable.push(cached);
    }
    set.usable = usable.len();
    if usable.len() == 1 {
        set.only_key = usable.pop();
    }
    set
}

/// The JWKS at `jwks_uri` as `(usable, published)` key counts, for the online settings check.
pub(crate) async fn count_keys(
    http: &reqwest::Client,
    jwks_uri: &Url,
) -> Result<(usize, usize), String> {
    KeyCache::fetch_untimed(http, jwks_uri)
        .await
        .map(|set| (set.usable, set.published))
}

/// A discovered provider: its metadata and keys.
pub(crate) struct Provider {
    pub metadata: ProviderMetadata,
    pub keys: KeyCache,
    /// The algorithms tokens may use: the provider's advertised ones within the allow-list.
    pub algorithms: Vec<Algorithm>,
    /// The host's hooks, told of each provider call.
    pub events: Arc<dyn AuthEvents>,
    /// What `iss` tokens must carry (from the discovery issuer and the settings).
    pub issuer: IssuerRule,
}

/// Lazily discovered provider, shared by all workers.
pub(crate) struct ProviderHandle {
    current: RwLock<Option<Arc<Provider>>>,
    last_attempt: tokio::sync::Mutex<Option<(Instant, AuthError)>>,
    /// The last discovery failure's reason when it was a settings mismatch, for readiness
    /// probes (read without waiting on a discovery in flight).
    mismatch: RwLock<Option<&'static str>>,
}

impl ProviderHandle {
    pub(crate) fn new() -> Self {
        ProviderHandle {
            current: RwLock::new(None),
            last_attempt: tokio::sync::Mutex::new(None),
            mismatch: RwLock::new(None),
        }
    }

    /// The provider, discovering it first if needed. While it is unreachable, attempts are
    /// spaced by `config.discovery_retry` and the last error is returned in between.
    pub(crate) async fn get(
        &self,
        config: &AuthConfig,
        http: &reqwest::Client,
        events: &Arc<dyn AuthEvents>,
    ) -> Result<Arc<Provider>, AuthError> {
        if let Some(p) = self.cached() {
            return Ok(p);
        }
        let mut last = self.last_attempt.lock().await;
        if let Some(p) = self.cached() {
            return Ok(p);
        }
        if let Some((at, err)) = last.as_ref()
            && at.elapsed() < config.discovery_retry
        {
            return Err(err.clone());
        }
        let discovered = discover(config, http, events)
            .await
            .map_err(|failure| failure.error())
            // A multi-tenant issuer with no tenant policy would let every tenant in.
            .and_then(|p| {
                config
                    .allowed_tenants
                    .admit_issuer(&p.metadata.issuer)
                    .map(|()| p)
            });
        match discovered {
            Ok(provider) => {
                let provider = Arc::new(provider);
                if let Ok(mut current) = self.current.write() {
                    *current = Some(provider.clone());
                }
                *last = None;
                self.set_mismatch(None);
                tracing::info!(issuer = ?provider.issuer.describe(), "identity provider discovered");
                Ok(provider)
            }
            Err(err) => {
                tracing::warn!(
                    reason = err.reason(),
                    error = %Escaped(&err),
                    "identity provider discovery failed"
                );
                self.set_mismatch(err.is_settings_mismatch().then(|| err.reason()));
                *last = Some((Instant::now(), err.clone()));
                Err(err)
            }
        }
    }

    /// The provider if already discovered; never calls out.
    pub(crate) fn cached(&self) -> Option<Arc<Provider>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// Where discovery stands; never calls out.
    pub(crate) fn status(&self) -> ProviderStatus {
        if self.cached().is_some() {
            return ProviderStatus::Ready;
        }
        match self.mismatch.read().ok().and_then(|m| *m) {
            Some(reason) => ProviderStatus::Misconfigured { reason },
            None => ProviderStatus::Unavailable,
        }
    }

    fn set_mismatch(&self, reason: Option<&'static str>) {
        if let Ok(mut m) = self.mismatch.write() {
            *m = reason;
        }
    }
}

impl Default for ProviderHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// Where discovery stands, for readiness probes ([`crate::Auth::provider_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderStatus {
    /// Discovery and keys are loaded.
    Ready,
    /// Not tried yet, or the provider did not answer (retried on the next sign-in).
    Unavailable,
    /// The provider answered but does not fit the settings (discovery location, issuer,
    /// tenant policy): it stays so until the settings or the provider change.
    Misconfigured {
        /// The error's reason code, as on the configuration page (`provider_mismatch`, ...).
        reason: &'static str,
    },
}

/// Why discovery failed: the provider (retried, 503) or a setting that must change.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    Unavailable(String),
    Settings(String),
}

impl From<String> for Failure {
    fn from(reason: String) -> Failure {
        Failure::Unavailable(reason)
    }
}

impl Failure {
    pub(crate) fn error(&self) -> AuthError {
        match self {
            Failure::Unavailable(e) => AuthError::ProviderUnavailable(e.clone()),
            Failure::Settings(e) => AuthError::ProviderMismatch(e.clone()),
        }
    }
}

async fn discover(
    config: &AuthConfig,
    http: &reqwest::Client,
    events: &Arc<dyn AuthEvents>,
) -> Result<Provider, Failure> {
    let started = Instant::now();
    let metadata = fetch_metadata(config, http).await;
    events.idp_call(IdpEndpoint::Discovery, started.elapsed(), metadata.is_ok());
    let metadata = metadata?;
    metadata.check()?;
    let issuer = IssuerRule::from_discovery(
        &metadata.issuer,
        &IssuerSettings {
            authority: &config.authority,
            configured: config.issuer.as_deref(),
            b2c_policies: &config.b2c.all(),
        },
    )
    .map_err(Failure::Settings)?;
    let algorithms = accepted_algorithms(metadata.id_token_signing_alg_values_supported.as_deref());
    if algorithms.is_empty() {
        return Err(Failure::Unavailable(format!(
            "the provider signs ID tokens only with {:?}, none of which is an allowed \
             asymmetric algorithm",
            metadata
                .id_token_signing_alg_values_supported
                .as_deref()
                .unwrap_or_default()
        )));
    }
    warn_unlisted_method(config, &metadata);
    let keys = KeyCache::fetch(http, &metadata.jwks_uri, events.as_ref()).await?;
    Ok(Provider {
        issuer,
        algorithms,
        events: events.clone(),
        keys: KeyCache {
            jwks_uri: metadata.jwks_uri.clone(),
            keys: RwLock::new(keys),
            last_fetch: RwLock::new(Instant::now()),
            refresh: tokio::sync::Mutex::new(()),
            cooldown: config.jwks_refresh_cooldown,
            events: events.clone(),
        },
        metadata,
    })
}

/// An explicit `auth.client_auth_method` that discovery does not list still gets used (some
/// providers list less than they accept), but the operator is told at discovery.
fn warn_unlisted_method(config: &AuthConfig, metadata: &ProviderMetadata) {
    let method = config.client_auth_method;
    let listed = &metadata.token_endpoint_auth_methods_supported;
    if method != crate::ClientAuthMethod::Auto
        && !listed.is_empty()
        && !listed.iter().any(|m| m == method.as_str())
    {
        tracing::warn!(
            method = method.as_str(),
            listed = ?listed,
            "auth.client_auth_method is not among discovery's token_endpoint_auth_methods_supported; using it anyway"
        );
    }
}

/// The discovery document, fetched and parsed (not yet checked). A 4xx answer or a body that
/// is not a discovery document means the authority points at the wrong place (a settings
/// mismatch, shown as such); no answer or a 5xx is the provider being down (retried).
pub(crate) async fn fetch_metadata(
    config: &AuthConfig,
    http: &reqwest::Client,
) -> Result<ProviderMetadata, Failure> {
    let url = discovery_url(&config.authority);
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| Failure::Unavailable(format!("GET {url}: {}", describe_reqwest(&e))))?;
    let status = response.status();
    let wrong_place = |what: String| {
        Failure::Settings(format!(
            "{what}, so auth.authority ({}) is not where this provider publishes its \
             discovery; set auth.authority to the provider's issuer URL (the one that serves \
             /.well-known/openid-configuration, often with a path such as /realms/<name> or \
             /api/oidc)",
            config.authority
        ))
    };
    let settings_status = status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
    if settings_status {
        return Err(wrong_place(format!("GET {url} answered {status}")));
    }
    if !status.is_success() {
        return Err(Failure::Unavailable(format!("GET {url}: status {status}")));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::Unavailable(format!("GET {url}: {}", describe_reqwest(&e))))?;
    serde_json::from_slice::<ProviderMetadata>(&body).map_err(|e| {
        wrong_place(format!(
            "GET {url} answered 200 but not with a discovery document ({})",
            Escaped(&e.to_string())
        ))
    })
}

/// Where the discovery document of `authority` lives (OIDC Discovery 4).
pub(crate) fn discovery_url(authority: &Url) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        authority.as_str().trim_end_matches('/')
    )
}

/// A short reason for a failed provider call, without the URL's query (which may hold a code).
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_decode() {
        "invalid response body".to_owned()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(set: &KeySet) -> Vec<(String, KeyKind)> {
        let mut v: Vec<_> = set
            .by_kid
            .iter()
            .map(|(k, c)| (k.clone(), c.kind))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn symmetric_and_unusable_keys_are_dropped_from_the_key_set() {
        let b64 = "AQAB";
        let xy = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let set = key_set(vec![
            json!({"kty": "RSA", "kid": "rsa", "n": b64, "e": b64}),
            json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNoYXJlZC13aXRoLWFueW9uZQ"}),
            json!({"kty": "EC", "kid": "p256", "crv": "P-256", "x": xy, "y": xy}),
            json!({"kty": "EC", "kid": "p384", "crv": "P-384", "x": xy, "y": xy}),
            json!({"kty": "EC", "kid": "p521", "crv": "P-521", "x": xy, "y": xy}),
            json!({"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": xy}),
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": b64, "e": b64}),
        ]);
        assert_eq!(
            kinds(&set),
            vec![
                ("p256".to_owned(), KeyKind::EcP256),
                ("p384".to_owned(), KeyKind::EcP384),
                ("rsa".to_owned(), KeyKind::Rsa),
            ]
        );
    }

    #[test]
    fn an_oct_key_does_not_hide_the_only_usable_key() {
        let set = key_set(vec![
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
        ]);
        assert_eq!(set.only_key.map(|k| k.kind), Some(KeyKind::Rsa));
    }

    #[test]
    fn key_kinds_fit_only_their_algorithm_family_and_curve() {
        use Algorithm::*;
        for alg in [RS256, RS384, RS512, PS256, PS384, PS512] {
            assert!(KeyKind::Rsa.fits(alg), "{alg:?}");
            assert!(!KeyKind::EcP256.fits(alg) && !KeyKind::EcP384.fits(alg));
        }
        assert!(KeyKind::EcP256.fits(ES256) && !KeyKind::EcP256.fits(ES384));
        assert!(KeyKind::EcP384.fits(ES384) && !KeyKind::EcP384.fits(ES256));
        for alg in [ES256, ES384, HS256, HS384, HS512, EdDSA] {
            assert!(!KeyKind::Rsa.fits(alg), "{alg:?}");
        }
    }
}
