//! The authorization code flow: start a sign-in, then complete it from the callback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields, HttpClientError, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::client_auth::{self, ClientAuthMethod};
use crate::client_credential::{ClientCredential, JWT_BEARER, unix_secs};
use crate::config::AuthConfig;
use crate::error::AuthError;
use crate::id_token::{self, Claims, Expectations};
use crate::metadata::{Provider, TENANT_PLACEHOLDER, describe_reqwest};
use crate::session::PendingLogin;

/// oauth2's standard token response drops `id_token`; this keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdTokenFields {
    #[serde(default)]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenFields {}

type OidcTokenResponse = StandardTokenResponse<IdTokenFields, BasicTokenType>;
type OidcClient<A = EndpointNotSet, T = EndpointNotSet> = Client<
    BasicErrorResponse,
    OidcTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    A,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    T,
>;

/// The oauth2 client, at the endpoints of `policy` (B2C) when given. With a certificate it has
/// no secret, so oauth2 puts only `client_id` in the body and [`redeem`] adds the assertion.
fn client(
    config: &AuthConfig,
    provider: &Provider,
    policy: Option<&str>,
) -> OidcClient<EndpointSet, EndpointSet> {
    let method = auth_method(config, provider);
    let endpoint = |url: &Url| match policy {
        Some(p) => policy_url(url, config.b2c.sign_up_sign_in.as_deref(), p),
        None => url.clone(),
    };
    let client = OidcClient::new(ClientId::new(config.client_id.clone()))
        .set_auth_uri(AuthUrl::from_url(endpoint(
            &provider.metadata.authorization_endpoint,
        )))
        .set_token_uri(TokenUrl::from_url(endpoint(
            &provider.metadata.token_endpoint,
        )))
        .set_redirect_uri(RedirectUrl::from_url(config.redirect_url.clone()));
    match &config.credential {
        ClientCredential::Secret(secret) => {
            let auth_type = if method == ClientAuthMethod::ClientSecretPost {
                AuthType::RequestBody
            } else {
                AuthType::BasicAuth
            };
            client
                .set_client_secret(ClientSecret::new(secret.clone()))
                .set_auth_type(auth_type)
        }
        ClientCredential::Certificate(_) => client.set_auth_type(AuthType::RequestBody),
    }
}

/// The method this provider's token calls use (`auth.client_auth_method`, `auto` resolved).
pub(crate) fn auth_method(config: &AuthConfig, provider: &Provider) -> ClientAuthMethod {
    client_auth::choose(
        config.client_auth_method,
        &config.credential,
        &config.authority,
        &provider.metadata.token_endpoint_auth_methods_supported,
    )
}

/// The `private_key_jwt` parameters of one token call, when the credential is a certificate.
/// `aud` is the token endpoint the code is redeemed at (a B2C policy's own, when one is used).
fn assertion_params(
    config: &AuthConfig,
    token_endpoint: &Url,
) -> Result<Vec<(&'static str, String)>, AuthError> {
    let ClientCredential::Certificate(cert) = &config.credential else {
        return Ok(Vec::new());
    };
    let now = unix_secs(std::time::SystemTime::now());
    let assertion = cert
        .assertion(&config.client_id, token_endpoint.as_str(), now)
        .map_err(|e| AuthError::ClientAssertion(e.to_string()))?;
    Ok(vec![
        ("client_assertion_type", JWT_BEARER.to_owned()),
        ("client_assertion", assertion),
    ])
}

/// B2C: the endpoint of another policy. Each policy has its own endpoints, which are the
/// sign-in policy's with the policy path segment swapped (`/{domain}/{policy}/oauth2/v2.0/…`);
/// an endpoint without that segment selects the policy with `?p=` instead, as B2C also accepts.
pub(crate) fn policy_url(url: &Url, sign_in_policy: Option<&str>, policy: &str) -> Url {
    let mut out = url.clone();
    let segments: Option<Vec<String>> = url.path_segments().map(|s| s.map(str::to_owned).collect());
    if let (Some(from), Some(segments)) = (sign_in_policy, segments)
        && segments.iter().any(|s| s.eq_ignore_ascii_case(from))
    {
        if let Ok(mut path) = out.path_segments_mut() {
            path.clear().extend(segments.iter().map(|s| {
                if s.eq_ignore_ascii_case(from) {
                    policy
                } else {
                    s.as_str()
                }
            }));
        }
        return out;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "p")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    out.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("p", policy);
    out
}

/// Builds the authorization URL with fresh state, nonce and PKCE S256 challenge.
pub(crate) fn begin(
    config: &AuthConfig,
    provider: &Provider,
    next: String,
    now: i64,
) -> (Url, PendingLogin) {
    begin_policy(config, provider, next, now, None)
}

/// How an authorization request differs from the plain sign-in: a `prompt` (`none` for the
/// silent role re-check), or added scopes, a `login_hint` and a claims challenge for
/// incremental consent.
#[derive(Debug, Clone, Default)]
pub(crate) struct BeginOptions<'a> {
    pub prompt: Option<&'a str>,
    pub policy: Option<&'a str>,
    /// Scopes asked for beyond `auth.scopes` (incremental consent).
    pub extra_scopes: &'a [String],
    pub login_hint: Option<&'a str>,
    /// The `claims` request parameter (JSON), from a claims challenge.
    pub claims: Option<&'a str>,
}

/// [`begin`] with options: the general form every authorization request goes through.
pub(crate) fn begin_with(
    config: &AuthConfig,
    provider: &Provider,
    next: String,
    now: i64,
    options: BeginOptions<'_>,
) -> (Url, PendingLogin) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = CsrfToken::new_random_len(32);
    let client = client(config, provider, options.policy);
    let added = options
        .extra_scopes
        .iter()
        .filter(|s| !config.scopes.contains(s))
        .cloned();
    let mut request = client
        .authorize_url(|| CsrfToken::new_random_len(32))
        .add_scopes(config.scopes.iter().cloned().chain(added).map(Scope::new))
        .add_extra_param("nonce", nonce.secret().clone())
        .set_pkce_challenge(challenge);
    let prompt = options.prompt.map(str::to_owned).or(config.prompt.clone());
    if let Some(prompt) = &prompt {
        request = request.add_extra_param("prompt", prompt.clone());
    }
    if let Some(hint) = options.login_hint {
        request = request.add_extra_param("login_hint", hint.to_owned());
    }
    if let Some(claims) = options.claims {
        request = request.add_extra_param("claims", claims.to_owned());
    }
    let consent = (!options.extra_scopes.is_empty() || options.claims.is_some())
        .then(|| options.extra_scopes.to_vec());
    let (url, state) = request.url();
    let pending = PendingLogin {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        next,
        created_at: now,
        policy: options.policy.map(str::to_owned),
        prompt: options.prompt.map(str::to_owned),
        consent,
    };
    (url, pending)
}

/// [`begin`] for a B2C policy other than sign-in (profile edit, password reset): a new
/// authorization request with its own state, nonce and PKCE, at that policy's endpoint.
pub(crate) fn begin_policy(
    config: &AuthConfig,
    provider: &Provider,
    next: String,
    now: i64,
    policy: Option<&str>,
) -> (Url, PendingLogin) {
    begin_with(
        config,
        provider,
        next,
        now,
        BeginOptions {
            policy,
            ..BeginOptions::default()
        },
    )
}

/// The callback's query, parsed strictly: duplicates, control characters, invalid UTF-8 and
/// oversized values are refused before anything else looks at them.
#[derive(Debug, Default)]
pub(crate) struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub iss: Option<String>,
}

const MAX_QUERY_LEN: usize = 16 * 1024;

impl CallbackParams {
    pub(crate) fn parse(query: &str) -> Result<CallbackParams, AuthError> {
        if query.len() > MAX_QUERY_LEN {
            return Err(AuthError::BadCallback("the query string is too long"));
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let limit = match key.as_ref() {
                "code" | "error_description" => 8 * 1024,
                "state" | "error" | "iss" => 1024,
                // Other parameters (session_state, client_info, ...) are ignored.
                _ => continue,
            };
            if value.len() > limit {
                return Err(AuthError::BadCallback("a parameter is too long"));
            }
            if value.contains('\u{FFFD}') {
                return Err(AuthError::BadCallback("a parameter is not valid UTF-8"));
            }
            let allow_spaces = key == "error_description";
            if value
                .chars()
                .any(|c| c.is_control() || (!allow_spaces && c.is_whitespace()))
            {
                return Err(AuthError::BadCallback(
                    "a parameter holds control characters",
                ));
            }
            if seen.insert(key.into_owned(), value.into_owned()).is_some() {
                return Err(AuthError::BadCallback("a parameter appears twice"));
            }
        }
        let mut take = |k: &str| seen.remove(k).filter(|v| !v.is_empty());
        Ok(CallbackParams {
            code: take("code"),
            state: take("state"),
            error: take("error"),
            error_description: take("error_description"),
            iss: take("iss"),
        })
    }
}

/// RFC 9207: when the provider sends `iss` it must be ours; when it promises to, it must.
pub(crate) fn check_iss_param(provider: &Provider, iss: Option<&str>) -> Result<(), AuthError> {
    let issuer = &provider.metadata.issuer;
    match iss {
        Some(iss) if issuer.contains(TENANT_PLACEHOLDER) => {
            let (prefix, suffix) = issuer
                .split_once(TENANT_PLACEHOLDER)
                .unwrap_or((issuer.as_str(), ""));
            if iss.starts_with(prefix)
                && iss.ends_with(suffix)
                && iss.len() > prefix.len() + suffix.len()
            {
                Ok(())
            } else {
                Err(AuthError::IssuerMismatch)
            }
        }
        Some(iss) if iss == issuer => Ok(()),
        Some(_) => Err(AuthError::IssuerMismatch),
        None if provider
            .metadata
            .authorization_response_iss_parameter_supported =>
        {
            Err(AuthError::IssuerMismatch)
        }
        None => Ok(()),
    }
}

/// The provider's HTTP client, keeping the status of the last answer: oauth2 drops the status
/// of an error answer, and it decides whose fault a refusal is.
struct StatusRecording<'a> {
    http: &'a reqwest::Client,
    status: AtomicU16,
}

impl<'a> StatusRecording<'a> {
    fn new(http: &'a reqwest::Client) -> Self {
        StatusRecording {
            http,
            status: AtomicU16::new(0),
        }
    }

    /// The last answer's HTTP status; 0 before any answer.
    fn status(&self) -> u16 {
        self.status.load(Ordering::Relaxed)
    }
}

impl<'c> AsyncHttpClient<'c> for StatusRecording<'_> {
    type Error = HttpClientError<reqwest::Error>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, Self::Error>> + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.http.call(request).await?;
            self.status
                .store(response.status().as_u16(), Ordering::Relaxed);
            Ok(response)
        })
    }
}

/// Redeems the code (with the PKCE verifier and the client secret or a certificate assertion)
/// and validates the ID token.
/// Returns the raw ID token too, for `id_token_hint` at sign-out.
pub(crate) async fn redeem(
    config: &AuthConfig,
    provider: &Provider,
    http: &reqwest::Client,
    pending: &PendingLogin,
    code: String,
) -> Result<(Claims, Granted), AuthError> {
    let recording = StatusRecording::new(http);
    let started = std::time::Instant::now();
    let client = client(config, provider, pending.policy.as_deref());
    let token_endpoint = client.token_uri().url().clone();
    let mut request = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
    for (name, value) in assertion_params(config, &token_endpoint)? {
        request = request.add_extra_param(name, value);
    }
    let response = request.request_async(&recording).await;
    provider.events.idp_call(
        crate::events::IdpEndpoint::Token,
        started.elapsed(),
        response.is_ok(),
    );
    let response = response.map_err(|e| {
        client_auth_refusal(map_token_error(e, recording.status()), config, provider)
    })?;
    // An incremental consent asked for more than the sign-in's scopes: its token covers them.
    let mut asked = config.scopes.clone();
    for extra in pending.consent.iter().flatten() {
        if !asked.contains(extra) {
            asked.push(extra.clone());
        }
    }
    let granted =
        Granted::from_response(&response, &asked, unix_secs(std::time::SystemTime::now()));
    let raw = granted.id_token.clone().ok_or(AuthError::MissingIdToken)?;
    let claims = id_token::validate(
        &raw,
        provider,
        http,
        &Expectations {
            audiences: std::slice::from_ref(&config.client_id),
            authorized_party: Some(&config.client_id),
            nonce: Some(&pending.nonce),
            allowed_tenants: &config.allowed_tenants,
            leeway_secs: config.clock_leeway_secs,
        },
    )
    .await?;
    Ok((claims, granted))
}

/// What a token call handed out; secret, so Debug shows no token.
pub(crate) struct Granted {
    pub access_token: String,
    pub expires_at: i64,
    /// The scopes asked for and those the answer lists.
    pub scopes: Vec<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

/// An access token without `expires_in` is trusted for this long.
const DEFAULT_EXPIRES_IN_SECS: i64 = 600;

impl Granted {
    fn from_response(response: &OidcTokenResponse, asked: &[String], now: i64) -> Granted {
        use oauth2::TokenResponse as _;
        let mut scopes: Vec<String> = asked.to_vec();
        for s in response.scopes().into_iter().flatten() {
            if !scopes.iter().any(|have| have == s.as_str()) {
                scopes.push(s.to_string());
            }
        }
        let expires_in = response.expires_in().map_or(DEFAULT_EXPIRES_IN_SECS, |d| {
            d.as_secs().min(86_400 * 7) as i64
        });
        Granted {
            access_token: response.access_token().secret().clone(),
            expires_at: now + expires_in,
            scopes,
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            id_token: response.extra_fields().id_token.clone(),
        }
    }
}

/// Why a refresh-token grant failed, sorted by what the session must do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefreshFailure {
    /// `invalid_grant`: the refresh token is dead; the session must end.
    Rejected(String),
    /// The user must consent (or interact) first: `consent_required`, `interaction_required`,
    /// or Entra's `invalid_grant` with AADSTS65001.
    ConsentRequired(String),
    /// The provider could not be reached or failed (5xx, 429, timeout): try again later.
    Unavailable(String),
    /// Another refusal (`invalid_scope`, `invalid_client`, an unreadable answer).
    Failed(String),
}

/// The refresh-token grant (RFC 6749 section 6), with `scopes` (Entra issues an access token
/// for any resource the user consented to this way).
pub(crate) async fn refresh(
    config: &AuthConfig,
    provider: &Provider,
    http: &reqwest::Client,
    refresh_token: &str,
    scopes: &[String],
) -> Result<Granted, RefreshFailure> {
    let recording = StatusRecording::new(http);
    let started = std::time::Instant::now();
    let client = client(config, provider, None);
    let token_endpoint = client.token_uri().url().clone();
    let token = oauth2::RefreshToken::new(refresh_token.to_owned());
    let mut request = client
        .exchange_refresh_token(&token)
        .add_scopes(scopes.iter().cloned().map(Scope::new));
    for (name, value) in assertion_params(config, &token_endpoint)
        .map_err(|e| RefreshFailure::Failed(e.reason().to_owned()))?
    {
        request = request.add_extra_param(name, value);
    }
    let response = request.request_async(&recording).await;
    provider.events.idp_call(
        crate::events::IdpEndpoint::Token,
        started.elapsed(),
        response.is_ok(),
    );
    let now = unix_secs(std::time::SystemTime::now());
    response
        .map(|r| Granted::from_response(&r, scopes, now))
        .map_err(|e| refresh_failure(e, recording.status()))
}

/// Sorts a failed refresh; the provider's description is read for Entra's consent code only
/// and never kept.
fn refresh_failure(
    err: RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>,
    status: u16,
) -> RefreshFailure {
    match err {
        RequestTokenError::ServerResponse(body) => {
            let code: String = body.error().as_ref().chars().take(64).collect();
            let description = body.error_description().map_or("", String::as_str);
            if matches!(code.as_str(), "consent_required" | "interaction_required")
                || (code == "invalid_grant" && description.contains("AADSTS65001"))
            {
                RefreshFailure::ConsentRequired(code)
            } else if status >= 500
                || status == 429
                || matches!(code.as_str(), "server_error" | "temporarily_unavailable")
            {
                RefreshFailure::Unavailable(format!("status {status}, error {code}"))
            } else if code == "invalid_grant" {
                RefreshFailure::Rejected(code)
            } else {
                RefreshFailure::Failed(code)
            }
        }
        RequestTokenError::Request(HttpClientError::Reqwest(e)) => {
            RefreshFailure::Unavailable(describe_reqwest(&e))
        }
        RequestTokenError::Request(_) => RefreshFailure::Unavailable("request failed".into()),
        RequestTokenError::Parse(e, _) if (500..600).contains(&status) || status == 429 => {
            RefreshFailure::Unavailable(format!("status {status}, unreadable at {}", e.path()))
        }
        RequestTokenError::Parse(e, _) => {
            RefreshFailure::Failed(format!("unreadable token response at {}", e.path()))
        }
        RequestTokenError::Other(msg) => RefreshFailure::Failed(msg.chars().take(120).collect()),
    }
}

/// `invalid_client` / `unauthorized_client` name the client authentication as the cause: a
/// configuration refusal that says which method was used and which discovery lists.
fn client_auth_refusal(err: AuthError, config: &AuthConfig, provider: &Provider) -> AuthError {
    match err {
        AuthError::TokenRejected(code)
            if matches!(code.as_str(), "invalid_client" | "unauthorized_client") =>
        {
            AuthError::ClientAuthRejected {
                code,
                method: auth_method(config, provider).as_str(),
                offered: client_auth::describe_listed(
                    &provider.metadata.token_endpoint_auth_methods_supported,
                ),
            }
        }
        other => other,
    }
}

/// OAuth error codes about the application's registration or settings, not the code: the
/// user cannot fix them by starting again.
const CLIENT_ERRORS: [&str; 4] = [
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
];

/// Sorts a failed code redemption by whose fault it is: an OAuth error answer with a 4xx status
/// about the code (`invalid_grant`, `invalid_request`, ...) is the caller's (400); one about the
/// application is a deployment problem (502); 5xx, 429, garbage and transport errors are the
/// provider's (502), a timeout 504.
fn map_token_error(
    err: RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>,
    status: u16,
) -> AuthError {
    match err {
        RequestTokenError::ServerResponse(body) => {
            let code: String = body.error().as_ref().chars().take(64).collect();
            let provider_trouble =
                matches!(code.as_str(), "server_error" | "temporarily_unavailable");
            if CLIENT_ERRORS.contains(&code.as_str()) {
                AuthError::TokenRejected(code)
            } else if (400..500).contains(&status) && status != 429 && !provider_trouble {
                AuthError::CodeRejected(code)
            } else {
                AuthError::TokenEndpointFailed(format!("status {status}, error {code}"))
            }
        }
        RequestTokenError::Request(HttpClientError::Reqwest(e)) if e.is_timeout() => {
            AuthError::TokenEndpointTimeout
        }
        RequestTokenError::Request(HttpClientError::Reqwest(e)) => {
            AuthError::TokenEndpointFailed(describe_reqwest(&e))
        }
        RequestTokenError::Request(_) => AuthError::TokenEndpointFailed("request failed".into()),
        // The body may hold tokens: never put it in the error.
        RequestTokenError::Parse(e, _) => {
            AuthError::TokenEndpointFailed(format!("unreadable token response at {}", e.path()))
        }
        RequestTokenError::Other(msg) => {
            AuthError::TokenEndpointFailed(msg.chars().take(120).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::basic::BasicErrorResponseType;

    fn oauth_error(
        code: &str,
    ) -> RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse> {
        let kind =
            serde_json::from_value::<BasicErrorResponseType>(serde_json::json!(code)).unwrap();
        RequestTokenError::ServerResponse(BasicErrorResponse::new(kind, None, None))
    }

    #[test]
    fn refused_codes_are_the_callers_fault_and_outages_the_providers() {
        let reason = |code: &str, status: u16| map_token_error(oauth_error(code), status).reason();
        assert_eq!(reason("invalid_grant", 400), "code_rejected");
        assert_eq!(reason("invalid_request", 400), "code_rejected");
        assert_eq!(reason("AADSTS54005", 400), "code_rejected");
        assert_eq!(reason("invalid_client", 401), "token_rejected");
        assert_eq!(reason("unauthorized_client", 400), "token_rejected");
        assert_eq!(reason("invalid_grant", 500), "token_endpoint_failed");
        assert_eq!(reason("invalid_grant", 429), "token_endpoint_failed");
        assert_eq!(
            reason("temporarily_unavailable", 400),
            "token_endpoint_failed"
        );
        assert_eq!(
            map_token_error(oauth_error("invalid_grant"), 400).status(),
            400
        );
    }

    #[test]
    fn refresh_failures_are_sorted_by_what_the_session_must_do() {
        let with = |code: &str, description: Option<&str>, status: u16| {
            let kind =
                serde_json::from_value::<BasicErrorResponseType>(serde_json::json!(code)).unwrap();
            let body = BasicErrorResponse::new(kind, description.map(str::to_owned), None);
            refresh_failure(RequestTokenError::ServerResponse(body), status)
        };
        assert!(matches!(
            with("invalid_grant", None, 400),
            RefreshFailure::Rejected(_)
        ));
        assert!(matches!(
            with(
                "invalid_grant",
                Some("AADSTS65001: The user has not consented"),
                400
            ),
            RefreshFailure::ConsentRequired(_)
        ));
        assert!(matches!(
            with("interaction_required", None, 400),
            RefreshFailure::ConsentRequired(_)
        ));
        assert!(matches!(
            with("invalid_grant", None, 503),
            RefreshFailure::Unavailable(_)
        ));
        assert!(matches!(
            with("temporarily_unavailable", None, 400),
            RefreshFailure::Unavailable(_)
        ));
        assert!(matches!(
            with("invalid_scope", None, 400),
            RefreshFailure::Failed(_)
        ));
    }

    #[test]
    fn policy_endpoints_swap_the_policy_segment_or_add_p() {
        let url = |s: &str| Url::parse(s).unwrap();
        let authorize = url(
            "https://c.b2clogin.com/c.onmicrosoft.com/B2C_1_signupsignin/oauth2/v2.0/authorize",
        );
        assert_eq!(
            policy_url(&authorize, Some("b2c_1_SignUpSignIn"), "B2C_1_profileedit").as_str(),
            "https://c.b2clogin.com/c.onmicrosoft.com/B2C_1_profileedit/oauth2/v2.0/authorize"
        );
        let query = url("https://c.b2clogin.com/c.onmicrosoft.com/oauth2/v2.0/token?p=B2C_1_si");
        assert_eq!(
            policy_url(&query, Some("B2C_1_signupsignin"), "B2C_1_reset").as_str(),
            "https://c.b2clogin.com/c.onmicrosoft.com/oauth2/v2.0/token?p=B2C_1_reset"
        );
    }

    #[test]
    fn callback_query_is_parsed_strictly() {
        let ok = CallbackParams::parse("code=abc&state=xyz&session_state=1").unwrap();
        assert_eq!(ok.code.as_deref(), Some("abc"));
        assert_eq!(ok.state.as_deref(), Some("xyz"));
        for bad in [
            "code=a&code=b&state=s",
            "state=a&state=b",
            "code=%00&state=s",
            "code=a&state=%FF%FE",
            "code=a%0d%0a&state=s",
        ] {
            assert!(CallbackParams::parse(bad).is_err(), "{bad}");
        }
        let huge = format!("code={}&state=s", "a".repeat(20_000));
        assert!(CallbackParams::parse(&huge).is_err());
    }
}
