//! actix-session's `SessionStore` over SQLite: sessions survive restarts, can be listed and
//! revoked, and rows are keyed by a hash of the cookie's id.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use crate::auth::id_token::now;

type State = HashMap<String, String>;

/// Sessions in the `sessions` table.
#[derive(Clone)]
pub struct SqliteSessionStore {
    pool: SqlitePool,
}

impl SqliteSessionStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteSessionStore { pool }
    }

    /// Deletes expired rows; returns how many went.
    pub async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
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
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expires_at > ?")
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

impl SessionStore for SqliteSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM sessions WHERE id = ? AND expires_at > ?")
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
             VALUES (?, ?, ?, ?, ?, ?)",
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
            "UPDATE sessions SET state = ?, user_sub = ?, updated_at = ?, expires_at = ? \
             WHERE id = ? AND expires_at > ?",
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
        sqlx::query("UPDATE sessions SET expires_at = ? WHERE id = ?")
            .bind(expires_at(ttl))
            .bind(row_id(key))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(row_id(key))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
