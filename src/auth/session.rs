//! The typed view of the server-side session: the signed-in user and pending sign-ins.
//!
//! Everything lives in the session store; the cookie holds only the opaque session id.

use std::sync::Arc;

use actix_session::Session;
use serde::{Deserialize, Serialize};

use super::id_token::Claims;
use super::roles::AccessLevel;

const USER_KEY: &str = "rg.user";
const ID_TOKEN_KEY: &str = "rg.idt";
const SEEN_KEY: &str = "rg.seen";
const PENDING_KEY: &str = "rg.pending";

/// Sign-ins one browser may have in flight at once (tabs); older ones are dropped.
const MAX_PENDING: usize = 5;

/// How stale `last seen` may get before it is written again: keeps the hot path write-free.
pub const SEEN_WRITE_INTERVAL_SECS: i64 = 60;

/// A signed-in user, as handlers see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub sub: String,
    pub oid: Option<String>,
    pub tid: Option<String>,
    pub name: String,
    pub preferred_username: Option<String>,
    pub email: Option<String>,
    /// The token's `roles`, exactly as sent.
    pub roles: Vec<String>,
    /// The highest app role held; `None` only for Bearer callers without an app role.
    pub level: Option<AccessLevel>,
    pub sid: Option<String>,
    /// Unix time of sign-in (0 for Bearer callers).
    pub signed_in_at: i64,
    /// Unix time the ID (or access) token expires.
    pub token_expires_at: i64,
    /// Authenticated by a Bearer token on this request, not by a browser session (so no
    /// CSRF token applies).
    #[serde(default, skip_serializing)]
    pub bearer: bool,
}

impl User {
    pub fn from_claims(claims: &Claims, signed_in_at: i64) -> User {
        let roles = claims.roles.clone().unwrap_or_default();
        User {
            sub: claims.sub.clone(),
            oid: claims.oid.clone(),
            tid: claims.tid.clone(),
            name: claims
                .name
                .clone()
                .or_else(|| claims.preferred_username.clone())
                .unwrap_or_else(|| claims.sub.clone()),
            preferred_username: claims.preferred_username.clone(),
            email: claims.email.clone(),
            level: AccessLevel::from_roles(&roles),
            roles,
            sid: claims.sid.clone(),
            signed_in_at,
            token_expires_at: claims.exp,
            bearer: false,
        }
    }

    pub fn has(&self, needed: AccessLevel) -> bool {
        self.level.is_some_and(|l| l.allows(needed))
    }
}

/// What must survive the round trip to the provider for one sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
    pub created_at: i64,
}

/// Data kept for sign-out (`id_token_hint`, `logout_hint`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutHints {
    pub id_token: String,
    pub login_hint: Option<String>,
}

/// Typed access to the session entries the auth module owns.
pub struct AuthSession<'a>(pub &'a Session);

impl AuthSession<'_> {
    pub fn user(&self) -> Option<User> {
        self.0.get::<User>(USER_KEY).ok().flatten()
    }

    pub fn last_seen(&self) -> Option<i64> {
        self.0.get::<i64>(SEEN_KEY).ok().flatten()
    }

    pub fn touch(&self, now: i64) {
        let _ = self.0.insert(SEEN_KEY, now);
    }

    pub fn logout_hints(&self) -> Option<LogoutHints> {
        self.0.get::<LogoutHints>(ID_TOKEN_KEY).ok().flatten()
    }

    /// Stores a new pending sign-in, keeping at most [`MAX_PENDING`] (newest win).
    pub fn push_pending(
        &self,
        pending: PendingLogin,
        now: i64,
        ttl_secs: i64,
    ) -> Result<(), String> {
        let mut all = self.pending();
        all.retain(|p| now - p.created_at <= ttl_secs);
        all.push(pending);
        if all.len() > MAX_PENDING {
            let excess = all.len() - MAX_PENDING;
            all.drain(..excess);
        }
        self.0.insert(PENDING_KEY, all).map_err(|e| e.to_string())
    }

    /// Removes and returns the pending sign-in for `state`: each can be used once.
    pub fn take_pending(&self, state: &str) -> Option<PendingLogin> {
        let mut all = self.pending();
        let index = all.iter().position(|p| p.state == state)?;
        let found = all.remove(index);
        if all.is_empty() {
            self.0.remove(PENDING_KEY);
        } else {
            let _ = self.0.insert(PENDING_KEY, all);
        }
        Some(found)
    }

    pub fn has_pending(&self) -> bool {
        self.0.contains_key(PENDING_KEY)
    }

    fn pending(&self) -> Vec<PendingLogin> {
        self.0
            .get::<Vec<PendingLogin>>(PENDING_KEY)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Signs the user in and rotates the session id, so an id planted before sign-in
    /// (session fixation) is worthless afterwards.
    pub fn sign_in(&self, user: &User, hints: &LogoutHints, now: i64) -> Result<(), String> {
        self.0.insert(USER_KEY, user).map_err(|e| e.to_string())?;
        self.0
            .insert(ID_TOKEN_KEY, hints)
            .map_err(|e| e.to_string())?;
        self.0.insert(SEEN_KEY, now).map_err(|e| e.to_string())?;
        self.0.renew();
        Ok(())
    }

    /// Drops an empty pre-sign-in session so failed callbacks leave nothing behind.
    pub fn discard_if_empty(&self) {
        if self.0.entries().is_empty() {
            self.0.purge();
        }
    }
}

/// The request's resolved caller, cached in request extensions so guards and extractors
/// read the session once.
#[derive(Clone)]
pub(crate) struct Resolved(pub Option<Arc<User>>);
