//! Server-side sessions for actix-session: in the SQL database (default) or in Redis
//! (`session.store`), listable and revocable for the admin page.
//!
//! Store rows are keyed by the SHA-256 of the cookie's session key: a leaked table or Redis
//! dump cannot be turned back into cookies.

mod cache;
mod redis;
mod signal;
mod sql;

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use self::redis::RedisSessionStore;
pub use self::sql::SqlSessionStore;
use crate::audit::ClientInfo;
use crate::clock::now;
use rolegate_auth::{SessionIds, User};

/// Writes of signed-in sessions this process made (sign-ins, changes, sign-outs, revokes): the
/// admin page's kept sessions table is stale once it moves (`crate::admin_views`).
static CHANGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many signed-in session writes this process has made so far (see [`CHANGES`]).
pub fn changes() -> u64 {
    CHANGES.load(std::sync::atomic::Ordering::Acquire)
}

/// Counts one write, after it is done.
fn changed() {
    CHANGES.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

type State = HashMap<String, String>;

/// Prefix of every store error, so a failed dependency can be told apart from a bug.
pub const UNAVAILABLE: &str = "session store unavailable";

fn unavailable(what: &str, e: impl std::fmt::Display) -> anyhow::Error {
    crate::metrics::count_session_store_error();
    anyhow::anyhow!("{UNAVAILABLE}: {what}: {e}")
}

fn row_id(key: &SessionKey) -> String {
    format!("{:x}", Sha256::digest(key.as_ref().as_bytes()))
}

fn new_key() -> Result<SessionKey, anyhow::Error> {
    let random = oauth2::CsrfToken::new_random_len(32);
    SessionKey::try_from(random.secret().clone()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn expires_at(ttl: &Duration) -> i64 {
    now().saturating_add(ttl.whole_seconds())
}

/// How long a session without a signed-in user lives at most. It holds only pending sign-ins
/// (which the auth crate expires after 10 minutes), and anyone can create one per request, so
/// a flood of cookie-less `/login` requests leaves nothing long-lived behind.
pub const ANONYMOUS_TTL: Duration = Duration::minutes(15);

/// The expiry of a row: the session TTL when signed in, else at most
/// [`ANONYMOUS_TTL`].
fn expiry_of(signed_in: bool, ttl: &Duration) -> i64 {
    if signed_in {
        expires_at(ttl)
    } else {
        expires_at(&(*ttl).min(ANONYMOUS_TTL))
    }
}

/// New expiries for a TTL extension, when the backend knows whether the row is signed in.
pub(crate) struct Expiry {
    signed_in: i64,
    anonymous: i64,
}

/// The signed-in subject, indexed so sessions can be listed and revoked per user.
fn user_sub(state: &State) -> Option<String> {
    SessionIds::of(state).sub
}

/// A signed-in session as the admin page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveSession {
    /// The row id (a hash of the cookie's id: safe to show and to post back).
    pub id: String,
    pub user_sub: String,
    pub user: User,
    pub client: ClientInfo,
    pub last_seen: i64,
    pub expires_at: i64,
}

fn to_active(id: String, state: &State, updated_at: i64, expires_at: i64) -> Option<ActiveSession> {
    let user: User = serde_json::from_str(state.get(rolegate_auth::SESSION_USER_KEY)?).ok()?;
    let client = state
        .get(crate::audit::CLIENT_KEY)
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let last_seen = state
        .get(rolegate_auth::SESSION_SEEN_KEY)
        .and_then(|s| s.parse().ok())
        .unwrap_or(updated_at);
    Some(ActiveSession {
        id,
        user_sub: user.sub.clone(),
        user,
        client,
        last_seen,
        expires_at,
    })
}

/// A store failure for the admin routes: which dependency and why.
#[derive(Debug, thiserror::Error)]
#[error("{UNAVAILABLE}: {0}")]
pub struct StoreError(String);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        crate::metrics::count_session_store_error();
        StoreError(format!("the database: {e}"))
    }
}

impl From<::redis::RedisError> for StoreError {
    fn from(e: ::redis::RedisError) -> Self {
        crate::metrics::count_session_store_error();
        StoreError(format!("Redis: {e}"))
    }
}

/// Where sessions are kept.
#[derive(Clone)]
enum Backend {
    Sql(SqlSessionStore),
    Redis(RedisSessionStore),
}

/// The configured store, with an in-process read cache when this process is the only writer
/// (SQLite). Every write, revoke and purge goes through here and updates the cache, so a
/// revoked session is refused on its very next request.
#[derive(Clone)]
pub struct Sessions {
    backend: Backend,
    cache: Option<std::sync::Arc<cache::Cache>>,
    /// SQLite: revocations by other processes on the same file (see `signal.rs`).
    signal: Option<std::sync::Arc<signal::Signal>>,
}

impl Sessions {
    /// Sessions in the SQL database; `single_process` (SQLite) enables the read cache.
    pub fn sql(store: SqlSessionStore, single_process: bool) -> Self {
        Sessions {
            backend: Backend::Sql(store),
            cache: single_process.then(|| std::sync::Arc::new(cache::Cache::new(50_000))),
            signal: None,
        }
    }

    /// Shares revocations with other processes on the SQLite file `db` (the server and the
    /// operator CLI): each revocation is signalled, and a signalled one drops the cache.
    pub fn with_revocation_signal(mut self, db: &std::path::Path) -> Self {
        self.signal = Some(std::sync::Arc::new(signal::Signal::beside(db)));
        self
    }

    /// Sessions without the read cache: for a process that is not the only writer.
    pub fn sql_uncached(store: SqlSessionStore) -> Self {
        Sessions::sql(store, false)
    }

    /// After a revocation: count it for the admin page and let other processes on the same
    /// SQLite file know.
    fn signal_revoked(&self) {
        changed();
        if let Some(signal) = &self.signal {
            signal.notify();
        }
    }

    /// Before serving from the cache: drop it if another process revoked sessions.
    fn drop_cache_if_signalled(&self) {
        if let (Some(cache), Some(signal)) = (&self.cache, &self.signal)
            && signal.changed()
        {
            tracing::info!("sessions revoked by another process; session cache dropped");
            cache.clear();
        }
    }

    /// Sessions in Redis, shared by every instance (no local cache: others may write).
    pub fn redis(store: RedisSessionStore) -> Self {
        Sessions {
            backend: Backend::Redis(store),
            cache: None,
            signal: None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self.backend {
            Backend::Sql(_) => "database",
            Backend::Redis(_) => "redis",
        }
    }

    pub async fn list_active(&self, limit: i64) -> Result<Vec<ActiveSession>, StoreError> {
        Ok(match &self.backend {
            Backend::Sql(s) => s.list_active(limit).await?,
            Backend::Redis(s) => s.list_active(limit).await?,
        })
    }

    /// Deletes one session by id; `None` when there was none.
    ///
    /// The cache is told *after* the row is gone (even if the delete failed), so no request
    /// that read the row before can cache it again (see `cache.rs`).
    pub async fn revoke(&self, id: &str) -> Result<Option<String>, StoreError> {
        let done = match &self.backend {
            Backend::Sql(s) => s.revoke(id).await.map_err(StoreError::from),
            Backend::Redis(s) => s.revoke(id).await.map_err(StoreError::from),
        };
        if let Some(cache) = &self.cache {
            cache.revoke(id);
        }
        self.signal_revoked();
        done
    }

    /// Deletes every session of `sub`; returns how many went. Final like [`Self::revoke`].
    pub async fn revoke_user(&self, sub: &str) -> Result<u64, StoreError> {
        let done = match &self.backend {
            Backend::Sql(s) => s.revoke_user(sub).await.map_err(StoreError::from),
            Backend::Redis(s) => s.revoke_user(sub).await.map_err(StoreError::from),
        };
        if let Some(cache) = &self.cache {
            cache.revoke_user(sub);
        }
        self.signal_revoked();
        done
    }

    /// Deletes every session signed in under the provider's session `sid` (of `sub` only,
    /// when given); returns how many went. Final like [`Self::revoke`].
    pub async fn revoke_sid(&self, sid: &str, sub: Option<&str>) -> Result<u64, StoreError> {
        let done = match &self.backend {
            Backend::Sql(s) => s.revoke_sid(sid, sub).await.map_err(StoreError::from),
            Backend::Redis(s) => s.revoke_sid(sid, sub).await.map_err(StoreError::from),
        };
        if let (Some(cache), Ok(ids)) = (&self.cache, &done) {
            for id in ids {
                cache.revoke(id);
            }
        }
        self.signal_revoked();
        done.map(|ids| ids.len() as u64)
    }

    /// Records a logout token's replay key until `until`; `false` when another instance (or
    /// this one) already did. Only Redis is shared by every instance; the SQL stores leave the
    /// check to each process (the auth crate keeps its own record).
    pub async fn first_use(&self, key: &str, until: i64) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sql(_) => Ok(true),
            Backend::Redis(s) => s.first_use(key, until).await.map_err(StoreError::from),
        }
    }

    pub async fn count_active(&self) -> Result<i64, StoreError> {
        Ok(match &self.backend {
            Backend::Sql(s) => s.count_active().await?,
            Backend::Redis(s) => s.count_active().await?,
        })
    }

    pub async fn ping(&self) -> bool {
        match &self.backend {
            Backend::Sql(s) => s.ping().await,
            Backend::Redis(s) => s.ping().await,
        }
    }

    /// Removes expired sessions (and cache entries); returns how many rows went.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        if let Some(cache) = &self.cache {
            cache.purge_expired(now());
        }
        Ok(match &self.backend {
            Backend::Sql(s) => s.purge_expired().await?,
            Backend::Redis(s) => s.purge_expired().await?,
        })
    }
}

/// One stored session as the backends write it.
pub(crate) struct Row<'a> {
    /// Hash of the cookie's key.
    id: &'a str,
    /// The state as JSON.
    body: &'a str,
    user_sub: Option<&'a str>,
    /// The provider's session id of a signed-in session.
    sid: Option<&'a str>,
    /// Unix seconds.
    expires_at: i64,
}

/// Runs one storage primitive on whichever backend is configured; a failure names it.
macro_rules! backend {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sql($store) => $call.await.map_err(|e| unavailable("the database", e)),
            Backend::Redis($store) => $call.await.map_err(|e| unavailable("Redis", e)),
        }
    };
}

impl Sessions {
    /// Caches a signed-in state written under `ticket`; anonymous states are never cached.
    fn cache_put(
        &self,
        ticket: Option<cache::Ticket>,
        id: &str,
        state: &State,
        sub: Option<&str>,
        expires_at: i64,
    ) {
        if let (Some(cache), Some(ticket), Some(sub)) = (&self.cache, ticket, sub) {
            cache.put(ticket, id, state, sub, expires_at);
        }
    }

    async fn insert(&self, state: &State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let body = serde_json::to_string(state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key = new_key().map_err(SaveError::Other)?;
        let id = row_id(&key);
        let ids = SessionIds::of(state);
        let sub = ids.sub;
        let row = Row {
            id: &id,
            body: &body,
            user_sub: sub.as_deref(),
            sid: ids.sid.as_deref(),
            expires_at: expiry_of(sub.is_some(), ttl),
        };
        let ticket = self.cache.as_ref().map(|c| c.ticket());
        backend!(self, s => s.insert(&row)).map_err(SaveError::Other)?;
        self.cache_put(ticket, &id, state, sub.as_deref(), row.expires_at);
        if sub.is_some() {
            changed();
        }
        Ok(key)
    }
}

/// Keys, (de)serialisation and the revoke-safe update policy live here, once for every backend.
impl SessionStore for Sessions {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        let id = row_id(key);
        self.drop_cache_if_signalled();
        if let Some(state) = self.cache.as_ref().and_then(|c| c.get(&id, now())) {
            return Ok(Some(state));
        }
        let raw = backend!(self, s => s.load(&id)).map_err(LoadError::Other)?;
        raw.map(|raw| serde_json::from_str(&raw).map_err(|e| LoadError::Deserialization(e.into())))
            .transpose()
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        self.insert(&state, ttl).await
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let body =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let id = row_id(&key);
        let ids = SessionIds::of(&state);
        let sub = ids.sub;
        let row = Row {
            id: &id,
            body: &body,
            user_sub: sub.as_deref(),
            sid: ids.sid.as_deref(),
            expires_at: expiry_of(sub.is_some(), ttl),
        };
        if let Some(cache) = &self.cache {
            cache.remove(&id);
        }
        let ticket = self.cache.as_ref().map(|c| c.ticket());
        if backend!(self, s => s.replace(&row)).map_err(UpdateError::Other)? {
            self.cache_put(ticket, &id, &state, sub.as_deref(), row.expires_at);
            if sub.is_some() {
                changed();
            }
            return Ok(key);
        }
        if sub.is_some() {
            // Revoked or expired while this request ran: a signed-in session is never brought
            // back; the cookie now points at nothing and the next request is anonymous.
            tracing::info!("session vanished during the request; not recreating it");
            return Ok(key);
        }
        self.insert(&state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        })
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let id = row_id(key);
        if let Some(cache) = &self.cache {
            cache.remove(&id);
        }
        let expiry = Expiry {
            signed_in: expires_at(ttl),
            anonymous: expires_at(&(*ttl).min(ANONYMOUS_TTL)),
        };
        backend!(self, s => s.extend(&id, &expiry))
    }

    /// Sign-out and renewal: as final as an admin's revoke.
    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        let id = row_id(key);
        let done = backend!(self, s => s.remove(&id));
        if let Some(cache) = &self.cache {
            cache.revoke(&id);
        }
        changed();
        done
    }
}

/// Single sign-out ends sessions through the same revocations the admin page uses.
impl rolegate_auth::SessionEnd for Sessions {
    fn end_sid(&self, sid: String, sub: Option<String>) -> rolegate_auth::EndFuture {
        let me = self.clone();
        Box::pin(async move {
            me.revoke_sid(&sid, sub.as_deref())
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn end_sub(&self, sub: String) -> rolegate_auth::EndFuture {
        let me = self.clone();
        Box::pin(async move { me.revoke_user(&sub).await.map_err(|e| e.to_string()) })
    }

    fn first_use(&self, key: String, until: i64) -> rolegate_auth::FirstUseFuture {
        let me = self.clone();
        Box::pin(async move { me.first_use(&key, until).await.map_err(|e| e.to_string()) })
    }
}
