//! What the auth module needs to know, already validated by the host's settings.

use std::time::Duration;

use url::Url;

/// Sign-in configuration. Build it from your settings; every URL here is absolute and derived
/// from the configured public URL, never from request headers.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// OIDC issuer; discovery is read from `{authority}/.well-known/openid-configuration`.
    pub authority: Url,
    pub client_id: String,
    pub client_secret: String,
    /// Where the provider sends the browser back (`public_url` + `redirect_path`).
    pub redirect_url: Url,
    /// Where the provider sends the browser after sign-out (`public_url` + `/login`).
    pub post_logout_redirect_url: Url,
    pub scopes: Vec<String>,
    /// Optional `prompt` parameter (`select_account`, `login`, ...).
    pub prompt: Option<String>,
    /// Tenants accepted when the issuer is Entra's multi-tenant `{tenantid}` template; empty = any.
    pub allowed_tenants: Vec<String>,
    /// Expected `aud` of Bearer access tokens on the API.
    pub api_audience: String,
    /// Path prefix where a Bearer token is accepted and anonymous callers get 401 JSON.
    pub api_prefix: String,
    /// Minimum time between two JWKS refetches triggered by an unknown `kid`.
    pub jwks_refresh_cooldown: Duration,
    /// Minimum time between two discovery attempts while the provider is unreachable.
    pub discovery_retry: Duration,
    /// Connect and total timeout of every call to the provider.
    pub http_timeout: Duration,
    /// Clock skew accepted on `exp`, `nbf` and `iat`, in seconds.
    pub clock_leeway_secs: u64,
    /// How long a started sign-in can be completed.
    pub pending_ttl: Duration,
    /// A session ends after this long without a request.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, whatever the activity.
    pub absolute_timeout: Duration,
}

impl AuthConfig {
    /// The path of the callback route (`/getAToken` by default).
    pub fn redirect_path(&self) -> &str {
        self.redirect_url.path()
    }

    /// The path of the sign-in page.
    pub fn login_path(&self) -> &str {
        "/login"
    }
}
