//! The typed view of the server-side session: the signed-in user and pending sign-ins.
//!
//! Everything lives in the session store; the cookie holds only the opaque session id.

use std::sync::Arc;

use actix_session::Session;
use serde::{Deserialize, Serialize};

use crate::id_token::Claims;
use crate::roles::{Role, RoleHierarchy};
use crate::token_keys::TokenKeys;

/// The session entry that holds the signed-in [`User`] as JSON: for session stores that index
/// or list sessions by user.
pub const SESSION_USER_KEY: &str = "rg.user";
/// The session entry that holds the unix time of the last request (written at most once a minute).
pub const SESSION_SEEN_KEY: &str = "rg.seen";
const USER_KEY: &str = SESSION_USER_KEY;
const SEEN_KEY: &str = SESSION_SEEN_KEY;
/// The sealed [`TokenSet`] (AES-256-GCM, see `token_keys.rs`).
const TOKENS_KEY: &str = "rg.tok";
/// The plain [`LiveState`]: when roles are next re-checked. Read on every request, so it holds
/// timestamps only and needs no decryption.
const LIVE_KEY: &str = "rg.live";
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
    /// The `prompt` sent (`none` for a silent role re-check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// An incremental consent (or claims challenge): the scopes it added. A refusal at the
    /// provider is then a "permission not granted" page, the session kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Vec<String>>,
}

/// Data kept for sign-out (`id_token_hint`, `logout_hint`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogoutHints {
    pub id_token: String,
    pub login_hint: Option<String>,
}

/// Everything secret the session keeps, stored sealed under the token key only.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct TokenSet {
    /// The raw ID token, for `id_token_hint` at sign-out.
    pub id_token: String,
    #[serde(default)]
    pub login_hint: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// One access token per scope set asked for, newest first.
    #[serde(default)]
    pub access: Vec<AccessToken>,
}

impl std::fmt::Debug for TokenSet {
    // Never the tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("access", &self.access.len())
            .finish()
    }
}

/// An access token and what it is good for.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct AccessToken {
    pub token: String,
    /// The scopes asked for and the scopes granted, together: a request is served by the first
    /// token that covers every scope it names.
    pub scopes: Vec<String>,
    pub expires_at: i64,
}

/// At most this many access tokens (scope sets) per session; the oldest is dropped.
const MAX_ACCESS_TOKENS: usize = 8;

impl TokenSet {
    /// A token covering `scopes` that is valid for `skew_secs` more.
    pub fn access_for(&self, scopes: &[String], now: i64, skew_secs: i64) -> Option<&AccessToken> {
        self.access
            .iter()
            .find(|t| t.expires_at - skew_secs > now && scopes.iter().all(|s| t.scopes.contains(s)))
    }

    /// Keeps `token`, replacing one for the same scopes.
    pub fn put_access(&mut self, token: AccessToken) {
        self.access.retain(|t| t.scopes != token.scopes);
        self.access.insert(0, token);
        self.access.truncate(MAX_ACCESS_TOKENS);
    }

    pub fn hints(&self) -> LogoutHints {
        LogoutHints {
            id_token: self.id_token.clone(),
            login_hint: self.login_hint.clone(),
        }
    }
}

/// When the session's roles are next re-checked, in plain timestamps (the hot path compares one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LiveState {
    /// Unix time from which the next request re-checks the roles.
    pub due_at: i64,
    /// When a re-check first failed because the provider was unreachable (grace runs from it).
    #[serde(default)]
    pub failing_since: Option<i64>,
    /// Whether a refresh token is kept; without one the re-check is a `prompt=none` request.
    pub refreshable: bool,
    /// A random id naming this session for the per-process single-flight lock.
    pub lock_id: String,
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

    pub fn logout_hints(&self, keys: &TokenKeys) -> Option<LogoutHints> {
        self.tokens(keys).map(|t| t.hints())
    }

    /// The sealed tokens; a value no configured key opens (a dropped key, tampering) counts
    /// as no tokens, logged with the key id only.
    pub fn tokens(&self, keys: &TokenKeys) -> Option<TokenSet> {
        let sealed = self.0.get::<String>(TOKENS_KEY).ok().flatten()?;
        let plain = match keys.open(&sealed) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::warn!(reason = "tokens_unreadable", error = %e, "the session's tokens cannot be decrypted; treated as absent");
                return None;
            }
        };
        match serde_json::from_slice(&plain) {
            Ok(set) => Some(set),
            Err(_) => {
                tracing::warn!(
                    reason = "tokens_unreadable",
                    "the session's tokens do not parse; treated as absent"
                );
                None
            }
        }
    }

    pub fn store_tokens(&self, keys: &TokenKeys, set: &TokenSet) -> Result<(), String> {
        let plain = serde_json::to_vec(set).map_err(|e| e.to_string())?;
        self.0
            .insert(TOKENS_KEY, keys.seal(&plain))
            .map_err(|e| e.to_string())
    }

    pub fn live(&self) -> Option<LiveState> {
        self.0.get::<LiveState>(LIVE_KEY).ok().flatten()
    }

    pub fn set_live(&self, live: &LiveState) {
        let _ = self.0.insert(LIVE_KEY, live);
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
    pub fn sign_in(
        &self,
        user: &User,
        tokens: &TokenSet,
        keys: &TokenKeys,
        live: &LiveState,
        now: i64,
    ) -> Result<(), String> {
        self.0.clear();
        self.0.insert(USER_KEY, user).map_err(|e| e.to_string())?;
        self.store_tokens(keys, tokens)?;
        self.0.insert(LIVE_KEY, live).map_err(|e| e.to_string())?;
        self.0.insert(SEEN_KEY, now).map_err(|e| e.to_string())?;
        self.0.renew();
        Ok(())
    }

    /// Replaces the stored user (roles re-read at a re-check).
    pub fn set_user(&self, user: &User) -> Result<(), String> {
        self.0.insert(USER_KEY, user).map_err(|e| e.to_string())
    }

    /// Drops an empty pre-sign-in session so failed callbacks leave nothing behind.
    pub fn discard_if_empty(&self) {
        if self.0.entries().is_empty() {
            self.0.purge();
        }
    }
}

/// What a server-side store indexes a session by, read from its stored user with one parse:
/// the user's `sub` (list and revoke per user) and the provider's `sid` (single sign-out).
/// Both `None` for an anonymous session.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SessionIds {
    /// The signed-in user's `sub`.
    pub sub: Option<String>,
    /// The identity provider's session id, when the ID token had one.
    pub sid: Option<String>,
}

impl SessionIds {
    /// The ids of a session's state (actix-session's key-value map).
    pub fn of(state: &std::collections::HashMap<String, String>) -> SessionIds {
        #[derive(Deserialize)]
        struct Ids {
            sub: Option<String>,
            sid: Option<String>,
        }
        state
            .get(USER_KEY)
            .and_then(|raw| serde_json::from_str::<Ids>(raw).ok())
            .map(|ids| SessionIds {
                sub: ids.sub,
                sid: ids.sid.filter(|s| !s.is_empty()),
            })
            .unwrap_or_default()
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
            prompt: None,
            consent: None,
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
        let keys = TokenKeys::ephemeral();
        let tokens = TokenSet {
            id_token: "id-token-text".into(),
            refresh_token: Some("refresh-token-text".into()),
            ..TokenSet::default()
        };
        let live = LiveState {
            due_at: 200,
            failing_since: None,
            refreshable: true,
            lock_id: "l".into(),
        };
        typed.sign_in(&user, &tokens, &keys, &live, 100).unwrap();

        let mut names: Vec<String> = session.entries().keys().cloned().collect();
        names.sort();
        assert_eq!(names, [LIVE_KEY, SEEN_KEY, TOKENS_KEY, USER_KEY]);
        let raw = format!("{:?}", session.entries());
        assert!(!raw.contains("refresh-token-text") && !raw.contains("id-token-text"));
        assert_eq!(
            typed.tokens(&keys).unwrap().refresh_token.as_deref(),
            Some("refresh-token-text")
        );
        assert!(
            typed.tokens(&TokenKeys::ephemeral()).is_none(),
            "another key reads nothing"
        );
        assert!(
            typed.take_pending("tab-1").is_none(),
            "other sign-ins dropped"
        );
        assert_eq!(session.status(), SessionStatus::Renewed, "id rotated");
    }
}
