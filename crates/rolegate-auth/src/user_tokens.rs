//! Access tokens for downstream APIs on the user's behalf: cached in the sealed session,
//! refreshed with the refresh token shortly before they expire, one refresh per session at a time.
//!
//! Single-flight is per process: parallel requests of one session on this instance share one
//! refresh (a lock keyed by the session's random lock id); two instances behind a load
//! balancer may each refresh once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use url::Url;

use crate::Auth;
use crate::error::TokenError;
use crate::flow::{self, RefreshFailure};
use crate::id_token::{self, Expectations, now};
use crate::log_safe::Escaped;
use crate::session::{AccessToken, AuthSession, LiveState, TokenSet, User};

/// An access token is refreshed this long before it expires, so it cannot expire in flight.
pub(crate) const EXPIRY_SKEW_SECS: i64 = 120;
/// Lock entries nobody holds are dropped after this long (their latest result goes with them).
const SLOT_KEEP: Duration = Duration::from_secs(60);

/// What a handler asks a token for: a configured downstream API, or scopes.
#[derive(Debug, Clone, Copy)]
pub enum TokenFor<'a> {
    /// `downstream_apis.<name>`: its configured scopes.
    Api(&'a str),
    /// These delegated scopes (e.g. `["User.Read"]`).
    Scopes(&'a [String]),
}

/// Why no access token could be had. [`UserTokenError::ConsentRequired`] carries the scopes,
/// so a host can send the browser through an authorization request that adds them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserTokenError {
    /// No signed-in browser session (anonymous, or a Bearer caller).
    #[error("no signed-in session")]
    NotSignedIn,
    /// The code names a downstream API the settings do not have.
    #[error("the downstream API {0} is not configured (downstream_apis.{0})")]
    UnknownApi(String),
    /// The session keeps no refresh token (the provider issued none, or it is unreadable).
    #[error("the session has no refresh token; sign in again")]
    NoRefreshToken,
    /// The user must consent to these scopes first (`consent_required`,
    /// `interaction_required`, Entra's AADSTS65001).
    #[error("the user has not consented to the scopes {}", .scopes.join(" "))]
    ConsentRequired {
        /// The scopes asked for.
        scopes: Vec<String>,
    },
    /// The provider refused the refresh token (`invalid_grant`); the session was ended.
    #[error("the identity provider refused the refresh token ({0}); the session has ended")]
    RefreshRejected(String),
    /// The provider could not be reached or failed; try again later.
    #[error("the identity provider is unreachable: {0}")]
    ProviderUnavailable(String),
    /// The provider refused the request for another reason (`invalid_scope`, ...).
    #[error("the token request failed: {0}")]
    RefreshFailed(String),
    /// The refreshed ID token failed validation or names another user; the session was ended.
    #[error("the refreshed ID token was rejected: {0}")]
    InvalidIdToken(TokenError),
    /// The downstream API asked for more claims (`WWW-Authenticate: Bearer
    /// error="insufficient_claims", claims=..`): [`Auth::recover`] restarts sign-in with them.
    #[error("the downstream API sent a claims challenge")]
    ClaimsChallenge {
        /// The scopes the refused token was for.
        scopes: Vec<String>,
        /// The decoded `claims` (JSON), for the authorization request's `claims` parameter.
        claims: String,
    },
    /// The downstream API could not be reached.
    #[error("the downstream API is unreachable: {0}")]
    DownstreamUnavailable(String),
    /// The path given to a downstream call would leave the API's base URL.
    #[error("the downstream path is not under the API's base URL")]
    BadPath,
    /// The session could not be written.
    #[error("the session could not be written: {0}")]
    Session(String),
}

impl UserTokenError {
    /// The HTTP status a handler answers with when it passes the error on.
    pub fn status(&self) -> StatusCode {
        match self {
            UserTokenError::NotSignedIn
            | UserTokenError::NoRefreshToken
            | UserTokenError::RefreshRejected(_)
            | UserTokenError::InvalidIdToken(_) => StatusCode::UNAUTHORIZED,
            UserTokenError::ConsentRequired { .. } => StatusCode::FORBIDDEN,
            UserTokenError::ClaimsChallenge { .. } => StatusCode::UNAUTHORIZED,
            UserTokenError::DownstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
            UserTokenError::ProviderUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            UserTokenError::RefreshFailed(_) => StatusCode::BAD_GATEWAY,
            UserTokenError::UnknownApi(_)
            | UserTokenError::BadPath
            | UserTokenError::Session(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn reason(&self) -> &'static str {
        match self {
            UserTokenError::NotSignedIn => "not_signed_in",
            UserTokenError::UnknownApi(_) => "unknown_downstream_api",
            UserTokenError::NoRefreshToken => "no_refresh_token",
            UserTokenError::ConsentRequired { .. } => "consent_required",
            UserTokenError::ClaimsChallenge { .. } => "claims_challenge",
            UserTokenError::DownstreamUnavailable(_) => "downstream_unavailable",
            UserTokenError::RefreshRejected(_) => "refresh_rejected",
            UserTokenError::ProviderUnavailable(_) => "provider_unavailable",
            UserTokenError::RefreshFailed(_) => "refresh_failed",
            UserTokenError::InvalidIdToken(e) => e.reason(),
            UserTokenError::BadPath => "bad_downstream_path",
            UserTokenError::Session(_) => "session_error",
        }
    }

    /// Whether the session was ended because of this error.
    pub fn ended_session(&self) -> bool {
        matches!(
            self,
            UserTokenError::RefreshRejected(_) | UserTokenError::InvalidIdToken(_)
        )
    }
}

impl ResponseError for UserTokenError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }
    fn error_response(&self) -> HttpResponse {
        // The text names codes and settings only, never a token.
        crate::reject::json_error(self.status(), self.reason(), &self.to_string())
    }
}

/// The result of one refresh, shared with the requests that waited for it.
#[derive(Clone)]
pub(crate) struct Refreshed {
    at: Instant,
    pub tokens: TokenSet,
    /// The user with roles re-read from the new ID token (role re-checks only).
    pub user: Option<User>,
}

#[derive(Default)]
struct Slot {
    latest: Option<Refreshed>,
}

/// One session's refresh lock and when it was last used.
type Held = (Arc<tokio::sync::Mutex<Slot>>, Instant);

/// The per-process single-flight locks, one per session lock id.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Held>>,
}

impl Flights {
    fn slot(&self, id: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 128 {
            map.retain(|_, (slot, used)| Arc::strong_count(slot) > 1 || used.elapsed() < SLOT_KEEP);
        }
        let entry = map
            .entry(id.to_owned())
            .or_insert_with(|| (Arc::default(), Instant::now()));
        entry.1 = Instant::now();
        entry.0.clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// One refresh for the session of `live`, shared: a request that waited while another refreshed
/// (`started` before that refresh finished) takes its result. With `user`, the new ID token is
/// validated like at sign-in, must name the same `sub` and `tid`, and its roles are read.
pub(crate) async fn refreshed(
    auth: &Auth,
    typed: &AuthSession<'_>,
    live: &LiveState,
    started: Instant,
    scopes: &[String],
    user: Option<&User>,
) -> Result<Refreshed, UserTokenError> {
    let slot = auth.flights().slot(&live.lock_id);
    let mut guard = slot.lock().await;
    let now = now();
    if let Some(latest) = &guard.latest {
        let covers = latest
            .tokens
            .access_for(scopes, now, EXPIRY_SKEW_SECS)
            .is_some();
        let fresh = latest.at >= started;
        if (user.is_some() && fresh && latest.user.is_some()) || (user.is_none() && covers) {
            return Ok(latest.clone());
        }
    }
    let keys = &auth.config().token_keys;
    let base = match &guard.latest {
        Some(latest) => latest.tokens.clone(),
        None => typed.tokens(keys).ok_or(UserTokenError::NoRefreshToken)?,
    };
    let refresh_token = base
        .refresh_token
        .clone()
        .ok_or(UserTokenError::NoRefreshToken)?;
    let provider = auth
        .provider()
        .await
        .map_err(|e| UserTokenError::ProviderUnavailable(e.reason().to_owned()))?;
    let config = auth.config();
    let granted = flow::refresh(config, &provider, auth.http(), &refresh_token, scopes)
        .await
        .map_err(|failure| match failure {
            RefreshFailure::Rejected(code) => UserTokenError::RefreshRejected(code),
            RefreshFailure::ConsentRequired(_) => UserTokenError::ConsentRequired {
                scopes: scopes.to_vec(),
            },
            RefreshFailure::Unavailable(why) => UserTokenError::ProviderUnavailable(why),
            RefreshFailure::Failed(why) => UserTokenError::RefreshFailed(why),
        })?;
    let mut tokens = base;
    if let Some(rotated) = granted.refresh_token.clone() {
        tokens.refresh_token = Some(rotated);
    }
    tokens.put_access(AccessToken {
        token: granted.access_token.clone(),
        scopes: granted.scopes.clone(),
        expires_at: granted.expires_at,
    });
    let mut updated = None;
    if let Some(user) = user {
        // No ID token in the answer: the roles cannot be re-read, which is an unusable answer.
        let raw = granted.id_token.clone().ok_or_else(|| {
            UserTokenError::RefreshFailed("no id_token in the refresh answer".into())
        })?;
        let claims = id_token::validate(
            &raw,
            &provider,
            auth.http(),
            &Expectations {
                audiences: std::slice::from_ref(&config.client_id),
                authorized_party: Some(&config.client_id),
                nonce: None,
                allowed_tenants: &config.allowed_tenants,
                leeway_secs: config.clock_leeway_secs,
            },
        )
        .await
        .map_err(|e| match e {
            TokenError::KeysUnavailable(why) => UserTokenError::ProviderUnavailable(why),
            other => UserTokenError::InvalidIdToken(other),
        })?;
        if claims.sub != user.sub || claims.tid != user.tid {
            return Err(UserTokenError::InvalidIdToken(TokenError::InvalidClaims(
                "the refreshed ID token names another user (sub or tid changed)".into(),
            )));
        }
        let roles = config
            .role_source
            .read(&claims)
            .map_err(|e| match e.token_error() {
                Some(err) => UserTokenError::InvalidIdToken(err),
                None => UserTokenError::RefreshFailed("groups overage at refresh".into()),
            })?;
        let mut fresh = user.clone();
        fresh.roles = roles;
        fresh.token_expires_at = claims.exp;
        fresh.rank_in(&config.roles);
        tokens.id_token = raw;
        updated = Some(fresh);
    }
    let result = Refreshed {
        at: Instant::now(),
        tokens,
        user: updated,
    };
    guard.latest = Some(result.clone());
    tracing::debug!(key_id = keys.current_id(), "tokens refreshed");
    Ok(result)
}

impl Auth {
    /// A valid access token of the signed-in user for `want`: the cached one while it has more
    /// than two minutes left, else one from the refresh-token grant (the rotated refresh token
    /// is stored). A refused refresh token ends the session.
    pub async fn access_token(
        &self,
        req: &HttpRequest,
        session: &Session,
        want: TokenFor<'_>,
    ) -> Result<String, UserTokenError> {
        let scopes: Vec<String> = match want {
            TokenFor::Api(name) => self
                .config()
                .downstream_apis
                .get(name)
                .ok_or_else(|| UserTokenError::UnknownApi(name.to_owned()))?
                .scopes
                .clone(),
            TokenFor::Scopes(scopes) => scopes.to_vec(),
        };
        let user = crate::caller::resolve(req, self)
            .await
            .ok()
            .flatten()
            .filter(|u| !u.bearer)
            .ok_or(UserTokenError::NotSignedIn)?;
        let typed = AuthSession(session);
        let live = typed.live().ok_or(UserTokenError::NoRefreshToken)?;
        let keys = &self.config().token_keys;
        if let Some(set) = typed.tokens(keys)
            && let Some(token) = set.access_for(&scopes, now(), EXPIRY_SKEW_SECS)
        {
            return Ok(token.token.clone());
        }
        match refreshed(self, &typed, &live, Instant::now(), &scopes, None).await {
            Ok(result) => {
                typed
                    .store_tokens(keys, &result.tokens)
                    .map_err(UserTokenError::Session)?;
                result
                    .tokens
                    .access_for(&scopes, now(), 0)
                    .map(|t| t.token.clone())
                    .ok_or_else(|| UserTokenError::RefreshFailed("the answer has expired".into()))
            }
            Err(err) => {
                tracing::warn!(reason = err.reason(), sub = ?user.sub, error = %Escaped(&err), "no access token for the user");
                if err.ended_session() {
                    session.purge();
                }
                Err(err)
            }
        }
    }

    /// A client for the downstream API `name` carrying the user's access token for it.
    pub async fn downstream(
        &self,
        req: &HttpRequest,
        session: &Session,
        name: &str,
    ) -> Result<Downstream, UserTokenError> {
        self.downstream_for(req, session, name, None).await
    }

    /// [`Auth::downstream`] with a token for other `scopes` than the API's configured ones
    /// (a page that needs more, e.g. `Calendars.Read` beside `User.Read`).
    pub async fn downstream_for(
        &self,
        req: &HttpRequest,
        session: &Session,
        name: &str,
        scopes: Option<&[String]>,
    ) -> Result<Downstream, UserTokenError> {
        let api = self
            .config()
            .downstream_apis
            .get(name)
            .ok_or_else(|| UserTokenError::UnknownApi(name.to_owned()))?
            .clone();
        let scopes = scopes.map_or(api.scopes, <[String]>::to_vec);
        let token = self
            .access_token(req, session, TokenFor::Scopes(&scopes))
            .await?;
        Ok(Downstream {
            http: self.inner.downstream_http.clone(),
            base: api.base_url,
            token,
            scopes,
        })
    }
}

/// Calls one downstream API with the user's Bearer token. Redirects are not followed (the
/// token must not travel elsewhere).
#[derive(Clone)]
pub struct Downstream {
    http: reqwest::Client,
    base: Url,
    token: String,
    scopes: Vec<String>,
}

impl std::fmt::Debug for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstream")
            .field("base", &self.base.as_str())
            .finish()
    }
}

impl Downstream {
    /// `method` on `base_url` + `path`, with `Authorization: Bearer`; add a body and send it.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, UserTokenError> {
        let url = join_under(&self.base, path).ok_or(UserTokenError::BadPath)?;
        Ok(self.http.request(method, url).bearer_auth(&self.token))
    }

    /// `GET base_url + path`.
    pub fn get(&self, path: &str) -> Result<reqwest::RequestBuilder, UserTokenError> {
        self.request(reqwest::Method::GET, path)
    }

    /// Sends a request built here. A `401` with a claims challenge becomes
    /// [`UserTokenError::ClaimsChallenge`] (hand it to [`Auth::recover`]); any other answer is
    /// the caller's to read.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UserTokenError> {
        let response = request
            .send()
            .await
            .map_err(|e| UserTokenError::DownstreamUnavailable(without_url(&e)))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED
            && let Some(claims) = crate::consent::claims_challenge(response.headers())
        {
            tracing::info!(base = %self.base, "the downstream API sent a claims challenge");
            return Err(UserTokenError::ClaimsChallenge {
                scopes: self.scopes.clone(),
                claims,
            });
        }
        Ok(response)
    }
}

/// A transport error's text without the URL (it may carry a query string).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_owned()
}

/// `base` + `path`, refused unless it stays on the same origin and under the base path.
fn join_under(base: &Url, path: &str) -> Option<Url> {
    if path.contains('\\') || path.contains("://") {
        return None;
    }
    let text = format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let url = Url::parse(&text).ok()?;
    let base_path = base.path().trim_end_matches('/');
    let same_origin = url.origin() == base.origin();
    let under = url.path() == base_path || url.path().starts_with(&format!("{base_path}/"));
    (same_origin && under && !path.split(['/', '?']).any(|s| s == ".." || s == "%2e%2e"))
        .then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downstream_paths_stay_under_the_base_url() {
        let base = Url::parse("https://graph.example/v1.0").unwrap();
        assert_eq!(
            join_under(&base, "/me").unwrap().as_str(),
            "https://graph.example/v1.0/me"
        );
        assert_eq!(
            join_under(&base, "me?$select=id").unwrap().as_str(),
            "https://graph.example/v1.0/me?$select=id"
        );
        for bad in [
            "/../admin",
            "//evil.example/x",
            "https://evil.example/",
            "\\evil",
            "@evil.example",
        ] {
            let joined = join_under(&base, bad);
            assert!(
                joined.as_ref().is_none_or(
                    |u| u.host_str() == Some("graph.example") && u.path().starts_with("/v1.0/")
                ),
                "{bad} -> {joined:?}"
            );
        }
        assert!(join_under(&base, "/../admin").is_none());
    }

    #[test]
    fn the_lock_map_keeps_held_slots_and_drops_idle_ones() {
        let flights = Flights::default();
        let held = flights.slot("held");
        for i in 0..200 {
            let _ = flights.slot(&format!("s{i}"));
        }
        assert!(
            Arc::ptr_eq(&held, &flights.slot("held")),
            "one lock per session id"
        );
        assert!(flights.len() <= 201);
    }

    #[test]
    fn errors_name_no_token_and_map_to_statuses() {
        let consent = UserTokenError::ConsentRequired {
            scopes: vec!["User.Read".into()],
        };
        assert_eq!(consent.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            UserTokenError::ProviderUnavailable("x".into()).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(UserTokenError::RefreshRejected("invalid_grant".into()).ended_session());
    }
}
