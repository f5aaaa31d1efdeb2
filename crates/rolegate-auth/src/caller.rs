//! Who is calling: a valid Bearer token under the API prefix, else the session's user.
//!
//! The answer is cached on the request, so guards, rules and extractors read the session once,
//! and nothing here calls the provider for a session user.

use std::sync::Arc;

use actix_session::SessionExt;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest};

use crate::Auth;
use crate::access_token::{self, Refusal};
use crate::id_token::now;
use crate::live_roles::{self, Checked};
use crate::log_safe::Escaped;
use crate::reject::Rejection;
use crate::session::{AuthSession, Resolved, SEEN_WRITE_INTERVAL_SECS, User};

/// The path exactly as the router matched it (percent-decoded except `%2F`, `%25`, `%2B`), so
/// rules and the JSON decision see what routing saw: `/%61pi/me` is `/api/me`.
pub(crate) fn routed_path(req: &HttpRequest) -> &str {
    req.match_info().as_str()
}

/// The caller, or `None` when anonymous.
pub(crate) async fn resolve(
    req: &HttpRequest,
    auth: &Auth,
) -> Result<Option<Arc<User>>, Rejection> {
    if let Some(Resolved(user)) = req.extensions().get::<Resolved>() {
        return Ok(user.clone());
    }
    let user = match bearer_token(req, auth) {
        Some(token) => Some(bearer_user(auth, &token).await?),
        None => session_user(req, auth).await?.map(Arc::new),
    };
    req.extensions_mut().insert(Resolved(user.clone()));
    Ok(user)
}

fn bearer_token(req: &HttpRequest, auth: &Auth) -> Option<String> {
    if !routed_path(req).starts_with(auth.config().api_prefix()) {
        return None;
    }
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

async fn bearer_user(auth: &Auth, token: &str) -> Result<Arc<User>, Rejection> {
    let now = now();
    if let Some(user) = auth.tokens().get(token, now) {
        return Ok(user);
    }
    let provider = auth
        .provider()
        .await
        .map_err(|_| Rejection::ProviderUnavailable)?;
    let user = access_token::accept(token, &provider, auth.http(), auth.config())
        .await
        .map_err(|refusal| match refusal {
            // The token may be fine: the provider's keys could not be fetched. A 401 would make
            // the client drop a good token, so this is the provider outage it is (503).
            Refusal::Invalid {
                error: error @ crate::TokenError::KeysUnavailable(_),
                ..
            } => {
                tracing::warn!(error = %Escaped(&error), "bearer token not checked: the provider's keys are unavailable");
                Rejection::ProviderUnavailable
            }
            Refusal::Invalid { error, claims } => {
                log_bearer_refused(&error);
                Rejection::InvalidBearer { error, claims }
            }
            Refusal::Insufficient {
                user,
                needed,
                detail,
            } => {
                log_insufficient(&user, &detail);
                Rejection::InsufficientScope {
                    user: Arc::new(*user),
                    needed,
                    detail,
                }
            }
        })?;
    let user = Arc::new(user);
    // Only accepted tokens are remembered: a refused one is checked (and refused) again.
    auth.tokens()
        .put(token, user.clone(), user.token_expires_at, now);
    Ok(user)
}

/// `sub` and the client id come from the token: Debug-formatted.
fn log_insufficient(user: &User, detail: &str) {
    tracing::info!(
        reason = "insufficient_scope",
        sub = ?user.sub,
        azp = ?user.azp,
        app_only = user.app_only,
        detail = %detail,
        "bearer token refused"
    );
}

/// Anyone can send a Bearer token, so its header (`alg`) and claims in the error are escaped.
fn log_bearer_refused(e: &crate::TokenError) {
    tracing::warn!(reason = e.reason(), error = %Escaped(e), "bearer token refused");
}

/// The session's user, unless the session has gone idle or outlived its absolute lifetime;
/// roles past `roles_max_age` are re-checked first (see `live_roles.rs`).
async fn session_user(req: &HttpRequest, auth: &Auth) -> Result<Option<User>, Rejection> {
    let session = req.get_session();
    let typed = AuthSession(&session);
    let Some(user) = typed.user() else {
        return Ok(None);
    };
    let config = auth.config();
    let now = now();
    let seen = typed.last_seen().unwrap_or(user.signed_in_at);
    let idle = now - seen > config.idle_timeout.as_secs() as i64;
    let too_old = now - user.signed_in_at > config.absolute_timeout.as_secs() as i64;
    if idle || too_old {
        tracing::info!(
            sub = ?user.sub,
            reason = if idle { "idle" } else { "absolute" },
            "session expired"
        );
        session.purge();
        return Ok(None);
    }
    if now - seen >= SEEN_WRITE_INTERVAL_SECS {
        typed.touch(now);
    }
    let mut user = match live_roles::check(req, auth, &session, user, now).await {
        Checked::Go(user) => user,
        Checked::Redirect(url) => return Err(Rejection::Redirect(url)),
        Checked::Ended(error) => return Err(Rejection::SessionEnded(error)),
    };
    user.rank_in(&config.roles);
    Ok(Some(user))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_forged_alg_header_cannot_start_a_log_line() {
        let err = crate::TokenError::DisallowedAlgorithm("x\nERROR forged".into());
        let out = crate::log_safe::captured(|| super::log_bearer_refused(&err));
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains(r"x\nERROR forged"), "{out}");
    }
}
