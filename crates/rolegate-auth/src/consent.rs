//! Incremental consent and claims challenges: when a handler needs scopes the user has not
//! granted (or an API answers with a claims challenge), the browser goes through a new
//! authorization request that adds them and comes back to the same page.
//!
//! A refusal at the provider comes back as a "permission not granted" page (the callback knows
//! the request was a consent from its pending entry) and the session stays as it was. A request
//! for the same scopes that comes back without them is not repeated for a while, so a provider
//! that silently withholds a scope cannot send the browser round in circles.

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;

use crate::Auth;
use crate::error::AuthError;
use crate::flow::{self, BeginOptions};
use crate::id_token::now;
use crate::log_safe::Escaped;
use crate::redirect::safe_next;
use crate::session::AuthSession;
use crate::user_tokens::UserTokenError;

/// The session key of the last consent request: which scopes, when.
const ASKED_KEY: &str = "rg.consent";

/// How long a consent request for the same scopes is not repeated.
const REPEAT_AFTER_SECS: i64 = 120;

/// The largest claims challenge accepted (decoded JSON); Entra's are a few hundred bytes.
const MAX_CLAIMS_LEN: usize = 4096;

#[derive(serde::Serialize, serde::Deserialize)]
struct Asked {
    key: String,
    at: i64,
}

/// The scopes as the consent pages name them.
pub(crate) fn describe(scopes: &[String]) -> String {
    if scopes.is_empty() {
        "what the API asked for (a claims challenge)".to_owned()
    } else {
        scopes.join(", ")
    }
}

/// The `claims` of a claims challenge in a response's `WWW-Authenticate` header (Entra's
/// continuous access evaluation and Conditional Access: `Bearer error="insufficient_claims",
/// claims="<base64 JSON>"`), decoded and checked to be a JSON object.
pub fn claims_challenge(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| auth_param(v, "claims"))
        .and_then(|encoded| decode_claims(&encoded))
}

/// One `name="value"` (or `name=value`) parameter of a challenge.
fn auth_param(challenge: &str, name: &str) -> Option<String> {
    let mut rest = challenge;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().last();
        let after = &rest[at + name.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let Some(value) = after.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        return Some(match value.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or_default().to_owned(),
            None => value
                .split([',', ' '])
                .next()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    None
}

fn decode_claims(encoded: &str) -> Option<String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let trimmed = encoded.trim();
    let bytes = STANDARD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
        .ok()?;
    if bytes.len() > MAX_CLAIMS_LEN {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.is_object().then(|| value.to_string())
}

/// The last consent request, read before a sign-in clears the session, so a consent that came
/// back without its scopes is still known afterwards ([`restore_asked`]).
pub(crate) fn take_asked(session: &Session) -> Option<serde_json::Value> {
    session.get::<serde_json::Value>(ASKED_KEY).ok().flatten()
}

/// Puts the consent request back after the sign-in that answered it.
pub(crate) fn restore_asked(session: &Session, asked: Option<serde_json::Value>) {
    if let Some(asked) = asked {
        let _ = session.insert(ASKED_KEY, asked);
    }
}

impl Auth {
    /// Sends the browser through an authorization request that adds `scopes` to the sign-in's
    /// (and carries `claims`, from [`claims_challenge`]), with the user's `login_hint`, back
    /// to this page. JSON callers get 403 `consent_required` instead (they cannot follow).
    pub async fn challenge(
        &self,
        req: &HttpRequest,
        session: &Session,
        scopes: &[String],
        claims: Option<&str>,
    ) -> HttpResponse {
        let described = describe(scopes);
        if crate::wants_json(req) || req.path().starts_with(self.config().api_prefix()) {
            return crate::reject::json_error(
                StatusCode::FORBIDDEN,
                "consent_required",
                &format!("the user must consent to {described}; open the page in a browser"),
            );
        }
        let now = now();
        let key = format!("{}|{}", scopes.join(" "), claims.unwrap_or_default());
        let recently = session
            .get::<Asked>(ASKED_KEY)
            .ok()
            .flatten()
            .is_some_and(|a| a.key == key && now - a.at < REPEAT_AFTER_SECS);
        if recently {
            let err = AuthError::ConsentNotGranted(described);
            tracing::warn!(
                reason = err.reason(),
                "consent asked again at once; not repeating it"
            );
            return self.pages().auth_error(req, &err);
        }
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(reason = e.reason(), error = %Escaped(&e), "consent: provider unavailable");
                return self.pages().auth_error(req, &e);
            }
        };
        let typed = AuthSession(session);
        let hint = typed
            .tokens(&self.config().token_keys)
            .and_then(|t| t.login_hint)
            .or_else(|| typed.user().and_then(|u| u.preferred_username));
        let next = if req.method() == actix_web::http::Method::GET {
            safe_next(req.uri().path_and_query().map_or("/", |pq| pq.as_str()))
        } else {
            "/".to_owned()
        };
        let (url, pending) = flow::begin_with(
            self.config(),
            &provider,
            next,
            now,
            BeginOptions {
                extra_scopes: scopes,
                login_hint: hint.as_deref(),
                claims,
                ..BeginOptions::default()
            },
        );
        let ttl = self.config().pending_ttl.as_secs() as i64;
        let stored = typed.push_pending(pending, now, ttl).and_then(|()| {
            session
                .insert(ASKED_KEY, Asked { key, at: now })
                .map_err(|e| e.to_string())
        });
        if let Err(e) = stored {
            let err = AuthError::Session(e);
            tracing::error!(error = %Escaped(&err), "could not store the consent request");
            return self.pages().auth_error(req, &err);
        }
        tracing::info!(scopes = %described, claims = claims.is_some(), "incremental consent: sending the browser to the identity provider");
        HttpResponse::Found()
            .insert_header((header::LOCATION, url.to_string()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    }

    /// What a page handler answers for a [`UserTokenError`]: the consent or claims challenge
    /// round trip when the user can fix it in the browser, the sign-in page when the session
    /// has ended, else the error as JSON with its status. `None` means "render your own page".
    pub async fn recover(
        &self,
        req: &HttpRequest,
        session: &Session,
        err: &UserTokenError,
    ) -> Option<HttpResponse> {
        match err {
            UserTokenError::ConsentRequired { scopes } => {
                Some(self.challenge(req, session, scopes, None).await)
            }
            UserTokenError::ClaimsChallenge { scopes, claims } => {
                Some(self.challenge(req, session, scopes, Some(claims)).await)
            }
            UserTokenError::NotSignedIn
            | UserTokenError::NoRefreshToken
            | UserTokenError::RefreshRejected(_)
            | UserTokenError::InvalidIdToken(_)
                if !crate::wants_json(req) =>
            {
                // The same answer as an anonymous caller of a guarded page gets.
                Some(crate::reject::respond(req, self, crate::reject::Rejection::Anonymous).await)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(WWW_AUTHENTICATE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn an_entra_claims_challenge_is_decoded() {
        let json = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        let h = headers(&format!(
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="{encoded}""#
        ));
        let got: serde_json::Value = serde_json::from_str(&claims_challenge(&h).unwrap()).unwrap();
        assert_eq!(got["access_token"]["nbf"]["essential"], true);
    }

    #[test]
    fn anything_else_is_no_challenge() {
        let not_object = base64::engine::general_purpose::STANDARD.encode("[1,2]");
        for value in [
            r#"Bearer error="invalid_token""#.to_owned(),
            r#"Bearer error="insufficient_claims", claims="not base64!""#.to_owned(),
            format!(r#"Bearer claims="{not_object}""#),
            r#"Bearer xclaims="e30=""#.to_owned(),
        ] {
            assert_eq!(claims_challenge(&headers(&value)), None, "{value}");
        }
        assert_eq!(
            claims_challenge(&headers(r#"Bearer claims=e30="#)),
            Some("{}".to_owned())
        );
        let huge = base64::engine::general_purpose::STANDARD
            .encode(format!(r#"{{"a":"{}"}}"#, "x".repeat(5000)));
        assert_eq!(
            claims_challenge(&headers(&format!(r#"Bearer claims="{huge}""#))),
            None
        );
    }
}
