//! Live roles: after `roles_max_age` the next request re-reads the roles from a refreshed ID
//! token (or, without a refresh token, a silent `prompt=none` authorization request). While the
//! roles are fresh the check is one timestamp comparison: no provider call, no decryption.

use std::time::Instant;

use actix_session::Session;
use actix_web::HttpRequest;

use crate::Auth;
use crate::error::AuthError;
use crate::flow::{self, BeginOptions};
use crate::log_safe::Escaped;
use crate::redirect::safe_next;
use crate::session::{AuthSession, LiveState, User};
use crate::user_tokens::{self, UserTokenError};

/// While the provider is unreachable, a re-check is tried again at most this often.
const RETRY_SECS: i64 = 30;
/// A silent re-check is not repeated sooner than this, whatever the max age (no redirect loop).
pub(crate) const MIN_SILENT_INTERVAL_SECS: i64 = 60;

/// What the request does after the check.
pub(crate) enum Checked {
    /// Go on with this user (roles fresh, re-read, or kept within the grace period).
    Go(User),
    /// Send the browser through a silent authorization request first.
    Redirect(String),
    /// The session was ended for this reason.
    Ended(AuthError),
}

/// The live state of a session signed in now; `silent` when that sign-in was itself a silent
/// re-check, which is not repeated for a minute whatever the max age (no redirect loop).
pub(crate) fn initial(auth: &Auth, refreshable: bool, silent: bool, now: i64) -> LiveState {
    let max_age = auth.config().roles_max_age.as_secs() as i64;
    LiveState {
        due_at: now + due_in(max_age, refreshable || !silent),
        failing_since: None,
        refreshable,
        lock_id: oauth2::CsrfToken::new_random_len(16).secret().clone(),
    }
}

fn due_in(max_age: i64, refreshable: bool) -> i64 {
    if refreshable {
        max_age
    } else {
        max_age.max(MIN_SILENT_INTERVAL_SECS)
    }
}

/// Re-checks `user`'s roles when they are due.
pub(crate) async fn check(
    req: &HttpRequest,
    auth: &Auth,
    session: &Session,
    user: User,
    now: i64,
) -> Checked {
    let typed = AuthSession(session);
    let config = auth.config();
    let max_age = config.roles_max_age.as_secs() as i64;
    let live = typed.live().unwrap_or_else(|| LiveState {
        due_at: user.signed_in_at + max_age,
        failing_since: None,
        refreshable: false,
        lock_id: oauth2::CsrfToken::new_random_len(16).secret().clone(),
    });
    if now < live.due_at {
        return Checked::Go(user);
    }
    if !live.refreshable {
        return silent(req, auth, &typed, user, live, now).await;
    }
    let started = Instant::now();
    match user_tokens::refreshed(auth, &typed, &live, started, &config.scopes, Some(&user)).await {
        Ok(result) => {
            let Some(fresh) = result.user else {
                return Checked::Go(user);
            };
            if let Err(e) = typed.store_tokens(&config.token_keys, &result.tokens) {
                tracing::error!(error = %Escaped(&e), "could not store the refreshed tokens");
            }
            let _ = typed.set_user(&fresh);
            typed.set_live(&LiveState {
                due_at: now + max_age,
                failing_since: None,
                ..live
            });
            if fresh.roles != user.roles {
                tracing::info!(sub = ?fresh.sub, before = ?user.roles, after = ?fresh.roles, "roles changed at the identity provider");
                auth.events().roles_changed(req, &fresh, &user.roles).await;
            }
            Checked::Go(fresh)
        }
        Err(UserTokenError::ProviderUnavailable(why)) => {
            tracing::warn!(reason = "provider_unavailable", sub = ?user.sub, error = %Escaped(&why), "roles not re-checked: the identity provider is unreachable");
            grace(auth, &typed, session, user, live, now)
        }
        Err(UserTokenError::NoRefreshToken) => {
            // The tokens are unreadable (a key dropped from the rotation): check silently.
            let live = LiveState {
                refreshable: false,
                ..live
            };
            typed.set_live(&live);
            silent(req, auth, &typed, user, live, now).await
        }
        Err(err) => {
            tracing::warn!(reason = err.reason(), sub = ?user.sub, error = %Escaped(&err), "session ended at the role re-check");
            session.purge();
            Checked::Ended(match err {
                UserTokenError::InvalidIdToken(e) => AuthError::InvalidIdToken(e),
                UserTokenError::RefreshRejected(code) => AuthError::SessionRevoked(code),
                other => AuthError::SessionRevoked(other.reason().to_owned()),
            })
        }
    }
}

/// The provider could not answer: keep the roles until the grace period ends.
fn grace(
    auth: &Auth,
    typed: &AuthSession<'_>,
    session: &Session,
    user: User,
    live: LiveState,
    now: i64,
) -> Checked {
    let grace = auth.config().roles_grace.as_secs() as i64;
    let since = live.failing_since.unwrap_or(now);
    if now - since >= grace {
        tracing::warn!(reason = "role_check_unavailable", sub = ?user.sub, "session ended: roles not re-checked within auth.roles_grace_minutes");
        session.purge();
        return Checked::Ended(AuthError::RoleCheckUnavailable);
    }
    typed.set_live(&LiveState {
        due_at: (now + RETRY_SECS).min(since + grace),
        failing_since: Some(since),
        ..live
    });
    Checked::Go(user)
}

/// No refresh token: a page request goes through `prompt=none` and comes back to the same
/// page; other requests keep the roles until the grace period past the due time ends.
async fn silent(
    req: &HttpRequest,
    auth: &Auth,
    typed: &AuthSession<'_>,
    user: User,
    live: LiveState,
    now: i64,
) -> Checked {
    let navigable = req.method() == actix_web::http::Method::GET && !crate::wants_json(req);
    if !navigable {
        // Still due, so the next page request re-checks; until then the roles last for the
        // grace period past the due time. No write: this stays a timestamp comparison.
        let since = live.failing_since.unwrap_or(live.due_at);
        if now - since >= auth.config().roles_grace.as_secs() as i64 {
            tracing::warn!(reason = "role_check_unavailable", sub = ?user.sub, "session ended: roles not re-checked within auth.roles_grace_minutes");
            typed.0.purge();
            return Checked::Ended(AuthError::RoleCheckUnavailable);
        }
        return Checked::Go(user);
    }
    let provider = match auth.provider().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(
                reason = e.reason(),
                "silent role re-check: provider unavailable"
            );
            return grace(auth, typed, typed.0, user, live, now);
        }
    };
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let config = auth.config();
    let (url, pending) = flow::begin_with(
        config,
        &provider,
        safe_next(target),
        now,
        BeginOptions {
            prompt: Some("none"),
            ..BeginOptions::default()
        },
    );
    if let Err(e) = typed.push_pending(pending, now, config.pending_ttl.as_secs() as i64) {
        tracing::error!(error = %Escaped(&e), "could not store the silent re-check");
        return Checked::Go(user);
    }
    tracing::info!(sub = ?user.sub, "roles due: silent re-check (prompt=none)");
    Checked::Redirect(url.to_string())
}
