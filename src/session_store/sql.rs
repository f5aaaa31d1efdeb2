//! actix-session's `SessionStore` in the SQL database (SQLite or PostgreSQL): sessions survive
//! restarts, can be listed and revoked, and rows are keyed by a hash of the cookie's id.

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

use super::{ActiveSession, State, expires_at, new_key, row_id, to_active, unavailable, user_sub};
use crate::auth::id_token::now;
use crate::db::Pool;

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

    /// Number of live signed-in sessions.
    pub async fn count_active(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE expires_at > $1 AND user_sub IS NOT NULL",
        )
        .bind(now())
        .fetch_one(&self.pool)
        .await
    }

    /// Live signed-in sessions, most recently active first.
    pub async fn list_active(&self, limit: i64) -> Result<Vec<ActiveSession>, sqlx::Error> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT id, state, updated_at, expires_at FROM sessions \
             WHERE expires_at > $1 AND user_sub IS NOT NULL ORDER BY updated_at DESC LIMIT $2",
        )
        .bind(now())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, state, updated_at, expires_at)| {
                let state: State = serde_json::from_str(&state).ok()?;
                to_active(id, &state, updated_at, expires_at)
            })
            .collect())
    }

    /// Deletes one session by row id; returns its user's sub when there was one.
    pub async fn revoke(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("DELETE FROM sessions WHERE id = $1 RETURNING user_sub")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(sub,)| sub.unwrap_or_default()))
    }

    /// Deletes every session of one user; returns how many went.
    pub async fn revoke_user(&self, user_sub: &str) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_sub = $1")
            .bind(user_sub)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn ping(&self) -> bool {
        crate::db::ping(&self.pool).await
    }
}

impl SessionStore for SqlSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM sessions WHERE id = $1 AND expires_at > $2")
                .bind(row_id(key))
                .bind(now())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| LoadError::Other(unavailable("the database", e)))?;
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
        .map_err(|e| SaveError::Other(unavailable("the database", e)))?;
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
        .map_err(|e| UpdateError::Other(unavailable("the database", e)))?;
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
            .await
            .map_err(|e| unavailable("the database", e))?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(row_id(key))
            .execute(&self.pool)
            .await
            .map_err(|e| unavailable("the database", e))?;
        Ok(())
    }
}
