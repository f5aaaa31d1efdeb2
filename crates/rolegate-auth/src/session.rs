//! The typed view of the server-side session: the signed-in user and pending sign-ins.
//!
//! Everything lives in the session store; the cookie holds only the opaque session id.

use std::sync::Arc;

use actix_session::Session;
use serde::{Deserialize, Serialize};

use crate::id_token::Claims;
use crate::roles::{Role, RoleHierarchy};

/// The session entry that holds the signed-in [`User`] as JSON: for session stores that index
/// or list sessions by user.
pub const SESSION_USER_KEY: &str = "rg.user";
/// The session entry that holds the unix time of the last request (written at most once a minute).
pub const SESSION_SEEN_KEY: &str = "rg.seen";
const USER_KEY: &str = SESSION_USER_KEY;
const SEEN_KEY: &str = SESSION_SEEN_KEY;
const ID_TOKEN_KEY: &str = "rg.idt";
const PENDING_KEY: &str = "rg.pending";

/// Sign-ins one browser may have in flight at once (tabs); older ones are dropped.
const MAX_PENDING: usize = 5;

/// How stale `last seen` may get before it is written again: keeps the hot path write-free.
pub(crate) const SEEN_WRITE_INTERVAL_SECS: i64 = 60;

/// A signed-in user (or Bearer caller), as handlers see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// The token's `sub` (pairwise in Entra: differs per app).
    pub sub: String,
    /// Entra's object id: stable across apps of the tenant.
    pub oid: Option<String>,
    /// Entra's tenant id.
    pub tid: Option<String>,
    /// Display name (`name`, else `preferred_username`, else `email`, else `sub`).
    pub name: String,
    /// The sign-in name (`preferred_username`).
    pub preferred_username: Option<String>,
    /// The `email` claim, when the provider sends it.
    pub email: Option<String>,
    /// The app role values this user holds (from the configured role source), exactly as sent.
    pub roles: Vec<String>,
    /// The provider's session id, for sign-out.
    pub sid: Option<String>,
    /// Unix time of sign-in (0 for Bearer callers).
    pub signed_in_at: i64,
    /// Unix time the ID (or access) token expires.
    pub token_expires_at: i64,
    /// Authenticated by a Bearer token on this request, not by a browser session (so no
    /// CSRF token applies).
    #[serde(default, skip_serializing)]
    pub bearer: bool,
    /// An application calling with its own app-only token (client credentials): no person
    /// is behind it; `name` is the calling client's id.
    #[serde(default, skip_serializing)]
    pub app_only: bool,
    /// The client that obtained the Bearer token (`azp`, or `appid` in v1 tokens).
    #[serde(default, skip_serializing)]
    pub azp: Option<String>,
    /// Where the user stands in the configured hierarchy, computed on every request from
    /// `roles`, so a changed hierarchy takes effect without new sign-ins.
    #[serde(skip)]
    level: Option<Level>,
}

/// A position in a [`RoleHierarchy`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Level {
    rank: usize,
    hierarchy: RoleHierarchy,
}

impl User {
    pub(crate) fn from_claims(claims: &Claims, roles: Vec<String>, signed_in_at: i64) -> User {
        User {
            sub: claims.sub.clone(),
            oid: claims.oid.clone(),
            tid: claims.tid.clone(),
            name: claims.display_name().to_owned(),
            preferred_username: claims.preferred_username.clone(),
            email: claims.email.clone(),
            roles,
            sid: claims.sid.clone(),
            signed_in_at,
            token_expires_at: claims.exp,
            bearer: false,
            app_only: false,
            azp: None,
            level: None,
        }
    }

    /// Places the user in `hierarchy` (done by the module on every request).
    pub(crate) fn rank_in(&mut self, hierarchy: &RoleHierarchy) {
        self.level = hierarchy.highest(&self.roles).map(|rank| Level {
            rank,
            hierarchy: hierarchy.clone(),
        });
    }

    /// The id to key your data by: Entra's `oid` (the same in every app of the tenant), else `sub`.
    pub fn stable_id(&self) -> &str {
        self.oid.as_deref().unwrap_or(&self.sub)
    }

    /// The highest app role value held, if any.
    pub fn role(&self) -> Option<&str> {
        let level = self.level.as_ref()?;
        level.hierarchy.name(level.rank)
    }

    /// Whether the user holds `role` or a role above it. An unknown name grants nothing.
    pub fn has_role(&self, role: &str) -> bool {
        self.level.as_ref().is_some_and(|level| {
            level
                .hierarchy
                .rank(role)
                .is_some_and(|needed| level.rank >= needed)
        })
    }

    /// Whether the user holds at least the role marker `R` (`user.is::<Write>()`).
    pub fn is<R: Role>(&self) -> bool {
        self.has_role(R::NAME)
    }
}

/// What must survive the round trip to the provider for one sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
    pub created_at: i64,
    /// The B2C policy this request was started with, when not the sign-in one: its code is
    /// redeemed at that policy's token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Data kept for sign-out (`id_token_hint`, `logout_hint`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogoutHints {
    pub id_token: String,
    pub login_hint: Option<String>,
}

/// Typed access to the session entries the auth module owns.
pub(crate) struct AuthSession<'a>(pub &'a Session);

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

    fn pending(&self) -> Vec<PendingLogin> {
        self.0
            .get::<Vec<PendingLogin>>(PENDING_KEY)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Signs the user in and rotates the session id, so an id planted before sign-in
    /// (session fixation) is worthless afterwards. The session starts clean: other pending
    /// sign-ins and every entry set before sign-in (the host's CSRF token included) are dropped,
    /// so nothing an attacker planted or learned in the anonymous session carries over.
    pub fn sign_in(&self, user: &User, hints: &LogoutHints, now: i64) -> Result<(), String> {
        self.0.clear();
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

/// The caller a guard or extractor already resolved on this request, without reading the
/// session again (for page layouts that show who is signed in).
pub fn resolved_user(req: &actix_web::HttpRequest) -> Option<Arc<User>> {
    use actix_web::HttpMessage;
    req.extensions().get::<Resolved>().and_then(|r| r.0.clone())
}

#[cfg(test)]
mod tests {
    use actix_session::{SessionExt, SessionStatus};
    use actix_web::test::TestRequest;

    use super::*;

    fn pending(state: &str) -> PendingLogin {
        PendingLogin {
            state: state.into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            next: "/".into(),
            created_at: 100,
            policy: None,
        }
    }

    #[test]
    fn sign_in_starts_a_clean_session() {
        let req = TestRequest::default().to_http_request();
        let session = req.get_session();
        let typed = AuthSession(&session);
        session
            .insert("app.csrf", "planted-before-sign-in")
            .unwrap();
        session.insert("app.other", 1).unwrap();
        typed.push_pending(pending("tab-1"), 100, 600).unwrap();
        typed.push_pending(pending("tab-2"), 100, 600).unwrap();
        let done = typed.take_pending("tab-2").unwrap();
        assert_eq!(done.state, "tab-2");

        let claims: Claims = serde_json::from_value(serde_json::json!({
            "iss": "https://idp.example", "sub": "s", "aud": "c", "exp": 2_000,
        }))
        .unwrap();
        let user = User::from_claims(&claims, vec![], 100);
        let hints = LogoutHints {
            id_token: "t".into(),
            login_hint: None,
        };
        typed.sign_in(&user, &hints, 100).unwrap();

        let mut keys: Vec<String> = session.entries().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, [ID_TOKEN_KEY, SEEN_KEY, USER_KEY]);
        assert!(
            typed.take_pending("tab-1").is_none(),
            "other sign-ins dropped"
        );
        assert_eq!(session.status(), SessionStatus::Renewed, "id rotated");
    }
}
