//! Single sign-out: the identity provider ends the sessions it started here.
//!
//! - OIDC Back-Channel Logout 1.0 (Keycloak, Okta, Auth0, node `oidc-provider`): the provider
//!   POSTs a signed `logout_token` to `{base_path}/backchannel-logout`, server to server.
//! - OIDC Front-Channel Logout 1.0 (Entra ID): the provider's sign-out page loads
//!   `{base_path}/frontchannel-logout?iss=..&sid=..` in a hidden frame. rolegate's cookies are
//!   third-party there (and `SameSite=Lax` keeps them home), so the route ends sessions by
//!   `sid` alone; it is the only route the provider may frame.
//!
//! Sessions live in the host's store, so the host says how to end them ([`SessionEnd`]); both
//! routes are mounted only once it has ([`crate::Auth::with_session_end`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use jsonwebtoken::decode_header;

use crate::Auth;
use crate::config::AuthConfig;
use crate::error::TokenError;
use crate::id_token::{self, Claims, Expectations, now};
use crate::issuer::IssuerRule;
use crate::log_safe::Escaped;
use crate::metadata::Provider;

/// What [`SessionEnd::end_sid`] and [`SessionEnd::end_sub`] return: how many sessions ended,
/// or why the store could not say.
pub type EndFuture = Pin<Box<dyn Future<Output = Result<u64, String>>>>;

/// What [`SessionEnd::first_use`] returns: whether the key was new, or why the store failed.
pub type FirstUseFuture = Pin<Box<dyn Future<Output = Result<bool, String>>>>;

/// How the host's session store ends sessions the provider signed out. Take owned values, so
/// a store can move clones of itself into the future.
pub trait SessionEnd: Send + Sync + 'static {
    /// Ends every session signed in under the provider's session id `sid` (and of `sub`, when
    /// given): every instance must refuse them from their next request on.
    fn end_sid(&self, sid: String, sub: Option<String>) -> EndFuture;
    /// Ends every session of `sub`.
    fn end_sub(&self, sub: String) -> EndFuture;
    /// Records `key` (a logout token's issuer and `jti`) until Unix time `until`; `false` when
    /// it was already recorded. Each process already refuses a `jti` it has seen; a store
    /// shared by several instances makes that hold across them. The default keeps nothing.
    fn first_use(&self, _key: String, _until: i64) -> FirstUseFuture {
        Box::pin(std::future::ready(Ok(true)))
    }
}

/// The event a logout token must hold (Back-Channel Logout 1.0, 2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How old a logout token may be (`iat`), and how long its `jti` is remembered after.
const MAX_AGE_SECS: i64 = 600;

/// How many `jti`s one process remembers at most.
const SEEN_CAPACITY: usize = 100_000;

/// Why a logout token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    /// The token failed a check it shares with ID tokens (signature, `iss`, `aud`, tenant).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The header's `typ` names another kind of token.
    #[error("the token's type is not logout+jwt")]
    WrongType,
    /// No `events` object holding the back-channel logout event.
    #[error("the token has no back-channel logout event (events)")]
    NoEvent,
    /// A `nonce` is there: it is an ID token, which must never pass as a logout token.
    #[error("the token carries a nonce, so it is not a logout token")]
    NoncePresent,
    /// Neither `sid` nor `sub`: there is nothing to end.
    #[error("the token names neither sid nor sub")]
    NoSubject,
    /// Issued more than ten minutes ago.
    #[error("the token was issued too long ago (iat)")]
    TooOld,
    /// Its `jti` was accepted before.
    #[error("the token's jti was already used (a replay)")]
    Replayed,
}

impl LogoutTokenError {
    /// Stable machine-readable code, for logs and tests.
    pub fn reason(&self) -> &'static str {
        match self {
            LogoutTokenError::Token(e) => e.reason(),
            LogoutTokenError::WrongType => "logout_token_type",
            LogoutTokenError::NoEvent => "logout_event_missing",
            LogoutTokenError::NoncePresent => "logout_nonce_present",
            LogoutTokenError::NoSubject => "logout_subject_missing",
            LogoutTokenError::TooOld => "logout_token_too_old",
            LogoutTokenError::Replayed => "logout_token_replayed",
        }
    }
}

/// What a valid logout token asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Logout {
    pub sid: Option<String>,
    pub sub: Option<String>,
    /// `iss` and `jti`: the replay key.
    pub replay_key: String,
}

/// The `jti`s this process accepted, each until it would be too old anyway.
#[derive(Default)]
pub(crate) struct SeenTokens(Mutex<HashMap<String, i64>>);

impl SeenTokens {
    /// Records `key` until `until`; `false` when it is already recorded. Full, it forgets the
    /// expired entries first, then the one closest to expiry.
    fn first_use(&self, key: &str, until: i64, now: i64) -> bool {
        let Ok(mut seen) = self.0.lock() else {
            return false;
        };
        if seen.get(key).is_some_and(|&t| t > now) {
            return false;
        }
        if seen.len() >= SEEN_CAPACITY {
            seen.retain(|_, t| *t > now);
        }
        if seen.len() >= SEEN_CAPACITY
            && let Some(oldest) = seen.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
        {
            seen.remove(&oldest);
        }
        seen.insert(key.to_owned(), until);
        true
    }

    /// Forgets `key` again: the logout it came with failed, so the provider may retry.
    fn forget(&self, key: &str) {
        if let Ok(mut seen) = self.0.lock() {
            seen.remove(key);
        }
    }
}

/// Verifies a logout token's signature and claims (Back-Channel Logout 1.0, 2.6), all but
/// the replay check.
pub(crate) async fn verify(
    token: &str,
    provider: &Provider,
    http: &reqwest::Client,
    config: &AuthConfig,
) -> Result<Logout, LogoutTokenError> {
    // `logout+jwt` is the type the spec recommends; `JWT` and none are what providers send.
    if let Ok(header) = decode_header(token)
        && let Some(typ) = header.typ.as_deref()
        && !["logout+jwt", "jwt", "application/logout+jwt"]
            .contains(&typ.to_ascii_lowercase().as_str())
    {
        return Err(LogoutTokenError::WrongType);
    }
    let expect = expectations(config);
    let claims =
        id_token::verify_signature_requiring(token, provider, http, &expect, &["iss", "aud"])
            .await?;
    check(&claims, &provider.issuer, &expect, now())
}

fn expectations(config: &AuthConfig) -> Expectations<'_> {
    Expectations {
        audiences: std::slice::from_ref(&config.client_id),
        authorized_party: None,
        nonce: None,
        allowed_tenants: &config.allowed_tenants,
        leeway_secs: config.clock_leeway_secs,
    }
}

/// The claim checks, on signature-checked claims.
fn check(
    claims: &Claims,
    issuer: &IssuerRule,
    expect: &Expectations<'_>,
    now: i64,
) -> Result<Logout, LogoutTokenError> {
    id_token::check_audiences(claims, expect.audiences)?;
    issuer.check(claims)?;
    expect
        .allowed_tenants
        .check(claims.tid.as_deref(), issuer.discovered())?;
    let leeway = i64::try_from(expect.leeway_secs).unwrap_or(0);
    match claims.iat {
        None => return Err(TokenError::MissingClaim("iat".into()).into()),
        Some(iat) if iat > now + leeway => return Err(TokenError::IssuedInFuture.into()),
        Some(iat) if iat < now - MAX_AGE_SECS - leeway => return Err(LogoutTokenError::TooOld),
        Some(_) => {}
    }
    let jti = claims
        .claim("jti")
        .and_then(|v| v.as_str())
        .filter(|j| !j.trim().is_empty())
        .ok_or_else(|| TokenError::MissingClaim("jti".into()))?;
    let event = claims
        .claim("events")
        .and_then(|e| e.as_object())
        .and_then(|e| e.get(BACKCHANNEL_EVENT));
    if !event.is_some_and(|e| e.is_object()) {
        return Err(LogoutTokenError::NoEvent);
    }
    if claims.nonce.is_some() {
        return Err(LogoutTokenError::NoncePresent);
    }
    let present = |v: &str| (!v.trim().is_empty()).then(|| v.to_owned());
    let sub = present(&claims.sub);
    let sid = claims.sid.as_deref().and_then(present);
    if sub.is_none() && sid.is_none() {
        return Err(LogoutTokenError::NoSubject);
    }
    Ok(Logout {
        sid,
        sub,
        replay_key: format!("{}|{jti}", claims.iss),
    })
}

/// The back-channel request: `logout_token`, form-encoded.
#[derive(serde::Deserialize)]
pub(crate) struct BackChannelForm {
    #[serde(default)]
    logout_token: String,
}

/// `POST {base_path}/backchannel-logout`: 200 when the sessions ended, 400 with a JSON reason
/// otherwise (Back-Channel Logout 1.0, 2.8). Never cached, never sets a cookie.
pub(crate) async fn back_channel(
    req: HttpRequest,
    form: Option<web::Form<BackChannelForm>>,
) -> HttpResponse {
    let Some((auth, end)) = context(&req) else {
        return HttpResponse::NotFound().finish();
    };
    let token = form
        .map(|f| f.into_inner().logout_token)
        .unwrap_or_default();
    if token.is_empty() {
        tracing::warn!(
            reason = "logout_token_missing",
            "back-channel logout refused"
        );
        return refused("the request has no logout_token");
    }
    let provider = match auth.provider().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(reason = e.reason(), error = %Escaped(&e), "back-channel logout: provider unavailable");
            return refused("the identity provider's keys are unavailable; retry later");
        }
    };
    let logout = match verify(&token, &provider, auth.http(), auth.config()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(reason = e.reason(), error = %Escaped(&e), "back-channel logout refused");
            return refused(&e.to_string());
        }
    };
    let until = now() + MAX_AGE_SECS + auth.config().clock_leeway_secs as i64;
    let seen = auth.seen_logout_tokens();
    let shared = end.first_use(logout.replay_key.clone(), until);
    if !seen.first_use(&logout.replay_key, until, now()) || !matches!(shared.await, Ok(true)) {
        let e = LogoutTokenError::Replayed;
        tracing::warn!(reason = e.reason(), "back-channel logout refused");
        return refused(&e.to_string());
    }
    let ended = match (&logout.sid, &logout.sub) {
        (Some(sid), sub) => end.end_sid(sid.clone(), sub.clone()).await,
        (None, Some(sub)) => end.end_sub(sub.clone()).await,
        (None, None) => Ok(0),
    };
    match ended {
        Ok(n) => {
            tracing::info!(sid = ?logout.sid, sub = ?logout.sub, ended = n, "signed out at the identity provider (back-channel)");
            auth.events()
                .provider_signed_out(
                    &req,
                    "back-channel",
                    logout.sub.as_deref(),
                    logout.sid.as_deref(),
                    n,
                )
                .await;
            no_store(&mut HttpResponse::Ok()).finish()
        }
        Err(e) => {
            seen.forget(&logout.replay_key);
            tracing::error!(reason = "session_store_unavailable", error = %Escaped(&e), "back-channel logout: sessions could not be ended");
            refused("the sessions could not be ended; retry later")
        }
    }
}

/// The front-channel request's query.
#[derive(serde::Deserialize)]
pub(crate) struct FrontChannelQuery {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sid: String,
}

/// `GET {base_path}/frontchannel-logout?iss=..&sid=..`: ends that `sid`'s sessions when `iss`
/// is the provider's. The answer may be framed by the provider's origin only.
pub(crate) async fn front_channel(
    req: HttpRequest,
    query: Option<web::Query<FrontChannelQuery>>,
) -> HttpResponse {
    let Some((auth, end)) = context(&req) else {
        return HttpResponse::NotFound().finish();
    };
    let frame = frame_ancestors(auth.config());
    let answer = |mut r: actix_web::HttpResponseBuilder, text: &str| {
        no_store(&mut r)
            .insert_header((header::CONTENT_SECURITY_POLICY, frame.clone()))
            .content_type("text/plain; charset=utf-8")
            .body(text.to_owned())
    };
    let (iss, sid) = query
        .map(|q| {
            let q = q.into_inner();
            (q.iss, q.sid)
        })
        .unwrap_or_default();
    if iss.is_empty() || sid.trim().is_empty() {
        tracing::warn!(
            reason = "frontchannel_params_missing",
            "front-channel logout refused: iss and sid are required"
        );
        return answer(HttpResponse::BadRequest(), "iss and sid are required");
    }
    let provider = match auth.provider().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(reason = e.reason(), error = %Escaped(&e), "front-channel logout: provider unavailable");
            return answer(
                HttpResponse::ServiceUnavailable(),
                "identity provider unavailable",
            );
        }
    };
    if let Err(e) = accepts_issuer(&provider.issuer, auth.config(), &iss) {
        tracing::warn!(reason = e.reason(), iss = ?iss, "front-channel logout refused");
        return answer(
            HttpResponse::BadRequest(),
            "iss is not this application's identity provider",
        );
    }
    match end.end_sid(sid.clone(), None).await {
        Ok(n) => {
            tracing::info!(sid = ?sid, ended = n, "signed out at the identity provider (front-channel)");
            auth.events()
                .provider_signed_out(&req, "front-channel", None, Some(&sid), n)
                .await;
            answer(HttpResponse::Ok(), "signed out")
        }
        Err(e) => {
            tracing::error!(reason = "session_store_unavailable", error = %Escaped(&e), "front-channel logout: sessions could not be ended");
            answer(
                HttpResponse::ServiceUnavailable(),
                "sessions could not be ended",
            )
        }
    }
}

/// Whether a front-channel `iss` is one of the provider's (tenant templates included) and
/// its tenant may sign in.
fn accepts_issuer(issuer: &IssuerRule, config: &AuthConfig, iss: &str) -> Result<(), TokenError> {
    let tid = issuer.tenant_of(iss)?;
    config
        .allowed_tenants
        .check(tid.as_deref(), issuer.discovered())
}

/// `frame-ancestors` for the provider's origin: only its sign-out page may frame the route.
fn frame_ancestors(config: &AuthConfig) -> String {
    let origin = config.authority.origin().ascii_serialization();
    format!("default-src 'none'; frame-ancestors {origin}")
}

fn context(req: &HttpRequest) -> Option<(&Auth, std::sync::Arc<dyn SessionEnd>)> {
    let auth = req.app_data::<Auth>()?;
    Some((auth, auth.session_end()?))
}

fn no_store(r: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    r.insert_header((header::CACHE_CONTROL, "no-store"))
}

/// A 400 answer in the spec's shape (OAuth 2.0 error JSON).
fn refused(description: &str) -> HttpResponse {
    no_store(&mut HttpResponse::BadRequest()).json(serde_json::json!({
        "error": "invalid_request",
        "error_description": description,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::TenantPolicy;
    use serde_json::json;

    const ISS: &str = "https://idp.example/t1/v2.0";

    fn claims(extra: serde_json::Value) -> Claims {
        let mut base = json!({
            "iss": ISS, "aud": "client", "iat": 1_000, "jti": "j1", "sid": "s1", "sub": "u1",
            "events": { BACKCHANNEL_EVENT: {} }
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn run(c: &Claims) -> Result<Logout, LogoutTokenError> {
        static CLIENT: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["client".to_owned()]);
        let tenants = TenantPolicy::Unset;
        let expect = Expectations {
            audiences: &CLIENT,
            authorized_party: None,
            nonce: None,
            allowed_tenants: &tenants,
            leeway_secs: 60,
        };
        check(c, &IssuerRule::for_tests(ISS), &expect, 1_000)
    }

    #[test]
    fn a_valid_token_names_its_sid_and_sub() {
        let out = run(&claims(json!({}))).unwrap();
        assert_eq!(out.sid.as_deref(), Some("s1"));
        assert_eq!(out.sub.as_deref(), Some("u1"));
        assert_eq!(out.replay_key, format!("{ISS}|j1"));
        let sid_only = run(&claims(json!({"sub": null}))).unwrap();
        assert_eq!((sid_only.sid.as_deref(), sid_only.sub), (Some("s1"), None));
    }

    #[test]
    fn every_defect_is_refused_with_its_reason() {
        let cases = [
            (json!({"events": null}), "logout_event_missing"),
            (json!({"events": {"other": {}}}), "logout_event_missing"),
            (
                json!({"events": {BACKCHANNEL_EVENT: "yes"}}),
                "logout_event_missing",
            ),
            (json!({"nonce": "n"}), "logout_nonce_present"),
            (json!({"sid": null, "sub": null}), "logout_subject_missing"),
            (json!({"sid": " ", "sub": ""}), "logout_subject_missing"),
            (json!({"jti": null}), "missing_claim"),
            (json!({"iat": null}), "missing_claim"),
            (json!({"iat": 1_000 - 601 - 60}), "logout_token_too_old"),
            (json!({"iat": 1_000 + 61}), "token_issued_in_future"),
            (json!({"aud": ["client", "other"]}), "untrusted_audience"),
            (
                json!({"iss": "https://evil.example/t1/v2.0"}),
                "wrong_issuer",
            ),
        ];
        for (extra, reason) in cases {
            let got = run(&claims(extra.clone()))
                .map(drop)
                .map_err(|e| e.reason());
            assert_eq!(got, Err(reason), "{extra}");
        }
    }

    #[test]
    fn a_jti_is_accepted_once_until_it_expires() {
        let seen = SeenTokens::default();
        assert!(seen.first_use("k", 100, 10));
        assert!(!seen.first_use("k", 100, 50));
        assert!(
            seen.first_use("k", 200, 101),
            "forgotten once it would be too old anyway"
        );
        seen.forget("k");
        assert!(
            seen.first_use("k", 300, 102),
            "a failed logout may be retried"
        );
    }
}
