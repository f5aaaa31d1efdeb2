//! actix-session's `SessionStore` over the SQL database (SQLite or PostgreSQL): sessions survive restarts, can be listed and
//! revoked, and rows are keyed by a hash of the cookie's id.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use crate::db::Pool;
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use sha2::{Digest, Sha256};

use crate::auth::id_token::now;

type State = HashMap<String, String>;

/// Sessions in the `sessions` table of the configured database.
#[derive(Clone)]
pub struct SqlSessionStore {
    pool: Pool,
}

impl SqlSessionStore {
    pub fn new(pool: Pool) -> Self {
        SqlSessionStore { pool }
    }

    /// Deletes expired rows; returns how many went.
    pub async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Purges expired rows every `every` until the process ends.
    pub fn spawn_purger(&self, every: StdDuration) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match store.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired sessions removed"),
                    Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
                }
            }
        });
    }

    /// Number of live sessions (for the benchmark and the admin page).
    pub async fn count_active(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expires_at > $1")
            .bind(now())
            .fetch_one(&self.pool)
            .await
    }
}

/// Row id for a cookie key: a leaked table cannot be turned back into cookies.
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

/// The signed-in subject, kept in its own column so sessions can be listed and revoked per user.
fn user_sub(state: &State) -> Option<String> {
    let raw = state.get("rg.user")?;
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    value.get("sub")?.as_str().map(str::to_owned)
}

impl SessionStore for SqlSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM sessions WHERE id = $1 AND expires_at > $2")
                .bind(row_id(key))
                .bind(now())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| LoadError::Other(e.into()))?;
        match row {
            None => Ok(None),
            Some((state,)) => serde_json::from_str(&state)
                .map(Some)
                .map_err(|e| LoadError::Deserialization(e.into())),
        }
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let body = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key = new_key().map_err(SaveError::Other)?;
        let now = now();
        sqlx::query(
            "INSERT INTO sessions (id, state, user_sub, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row_id(&key))
        .bind(body)
        .bind(user_sub(&state))
        .bind(now)
        .bind(now)
        .bind(expires_at(ttl))
        .execute(&self.pool)
        .await
        .map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let body =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let done = sqlx::query(
            "UPDATE sessions SET state = $1, user_sub = $2, updated_at = $3, expires_at = $4 \
             WHERE id = $5 AND expires_at > $6",
        )
        .bind(body)
        .bind(user_sub(&state))
        .bind(now())
        .bind(expires_at(ttl))
        .bind(row_id(&key))
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(|e| UpdateError::Other(e.into()))?;
        if done.rows_affected() == 1 {
            return Ok(key);
        }
        if user_sub(&state).is_some() {
            // Revoked or expired while this request ran: a signed-in session is never
            // brought back; the cookie now points at nothing and the next request is anonymous.
            tracing::info!("session vanished during the request; not recreating it");
            return Ok(key);
        }
        self.save(state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        })
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        sqlx::query("UPDATE sessions SET expires_at = $1 WHERE id = $2")
            .bind(expires_at(ttl))
            .bind(row_id(key))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(row_id(key))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A signed-in session as the admin page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActiveSession {
    /// The row id (a hash of the cookie's id: safe to show and to post back).
    pub id: String,
    pub user_sub: String,
    pub user: crate::auth::User,
    pub client: crate::audit::ClientInfo,
    pub last_seen: i64,
    pub expires_at: i64,
}

/// Live signed-in sessions, most recently active first.
pub async fn list_active(pool: &Pool, limit: i64) -> Result<Vec<ActiveSession>, sqlx::Error> {
    let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, user_sub, state, updated_at, expires_at FROM sessions \
         WHERE expires_at > $1 AND user_sub IS NOT NULL ORDER BY updated_at DESC LIMIT $2",
    )
    .bind(now())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, user_sub, state, updated_at, expires_at)| {
            let state: State = serde_json::from_str(&state).ok()?;
            let user = serde_json::from_str(state.get("rg.user")?).ok()?;
            let client = state
                .get(crate::audit::CLIENT_KEY)
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_default();
            let last_seen = state
                .get("rg.seen")
                .and_then(|s| s.parse().ok())
                .unwrap_or(updated_at);
            Some(ActiveSession {
                id,
                user_sub,
                user,
                client,
                last_seen,
                expires_at,
            })
        })
        .collect())
}

/// Deletes one session by row id; returns its user's sub when there was one.
pub async fn revoke(pool: &Pool, id: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("DELETE FROM sessions WHERE id = $1 RETURNING user_sub")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(sub,)| sub.unwrap_or_default()))
}

/// Deletes every session of one user; returns how many went.
pub async fn revoke_user(pool: &Pool, user_sub: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_sub = $1")
        .bind(user_sub)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
