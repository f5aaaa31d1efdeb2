//! Sessions in the SQL database (SQLite or PostgreSQL): they survive restarts and can be listed
//! and revoked.

use super::{ActiveSession, Expiry, Row, State, to_active};
use crate::clock::now;
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

    /// Deletes the sessions of one provider session (of `user_sub` only, when given);
    /// returns their row ids.
    pub async fn revoke_sid(
        &self,
        sid: &str,
        user_sub: Option<&str>,
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = match user_sub {
            Some(sub) => {
                sqlx::query_as("DELETE FROM sessions WHERE sid = $1 AND user_sub = $2 RETURNING id")
                    .bind(sid)
                    .bind(sub)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as("DELETE FROM sessions WHERE sid = $1 RETURNING id")
                    .bind(sid)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub async fn ping(&self) -> bool {
        crate::db::ping(&self.pool).await
    }
}

/// Storage primitives for [`super::Sessions`], which owns keys, (de)serialisation and policy.
impl SqlSessionStore {
    pub(super) async fn load(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM sessions WHERE id = $1 AND expires_at > $2")
                .bind(id)
                .bind(now())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(state,)| state))
    }

    pub(super) async fn insert(&self, row: &Row<'_>) -> Result<(), sqlx::Error> {
        let now = now();
        sqlx::query(
            "INSERT INTO sessions (id, state, user_sub, sid, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.id)
        .bind(row.body)
        .bind(row.user_sub)
        .bind(row.sid)
        .bind(now)
        .bind(now)
        .bind(row.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Overwrites a live row; `false` when it is gone (revoked or expired).
    pub(super) async fn replace(&self, row: &Row<'_>) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE sessions SET state = $1, user_sub = $2, sid = $3, updated_at = $4, \
             expires_at = $5 WHERE id = $6 AND expires_at > $7",
        )
        .bind(row.body)
        .bind(row.user_sub)
        .bind(row.sid)
        .bind(now())
        .bind(row.expires_at)
        .bind(row.id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves a row's expiry; an anonymous row (no user) gets the shorter one.
    pub(super) async fn extend(&self, id: &str, expiry: &Expiry) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sessions SET expires_at = CASE WHEN user_sub IS NULL THEN $1 ELSE $2 END \
             WHERE id = $3",
        )
        .bind(expiry.anonymous)
        .bind(expiry.signed_in)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn remove(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
