//! actix-session's `SessionStore` on Redis, shared by every rolegate instance.
//!
//! Keys: `rolegate:s:{id}` holds the state with a Redis TTL; for signed-in sessions
//! `rolegate:u:{sub}` (a set of ids) lets revoke-all work without scanning, and the sorted set
//! `rolegate:active` (id -> expiry) lets the admin page list sessions.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{ActiveSession, State, expires_at, new_key, row_id, to_active, unavailable, user_sub};
use crate::auth::id_token::now;

const ACTIVE: &str = "rolegate:active";

fn state_key(id: &str) -> String {
    format!("rolegate:s:{id}")
}

fn user_key(sub: &str) -> String {
    format!("rolegate:u:{sub}")
}

#[derive(Clone)]
pub struct RedisSessionStore {
    conn: ConnectionManager,
}

impl RedisSessionStore {
    /// Connects, waiting up to `wait` for Redis to come up (one log line per failed attempt).
    pub async fn connect(url: &str, wait: StdDuration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("session.redis_url is invalid: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(StdDuration::from_secs(2)))
            .set_response_timeout(Some(StdDuration::from_secs(2)))
            .set_number_of_retries(1);
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(conn) => return Ok(RedisSessionStore { conn }),
                Err(e) if started.elapsed() < wait => {
                    tracing::warn!(attempt, error = %e, "Redis unreachable; retrying in 2 s");
                    tokio::time::sleep(StdDuration::from_secs(2)).await;
                }
                Err(e) => return Err(anyhow::anyhow!("cannot connect to Redis: {e}")),
            }
        }
    }

    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }

    async fn write(
        &self,
        id: &str,
        state: &State,
        ttl: &Duration,
        only_existing: bool,
    ) -> Result<bool, redis::RedisError> {
        let body = serde_json::to_string(state).unwrap_or_default();
        let secs = ttl.whole_seconds().max(1) as u64;
        let mut conn = self.conn.clone();
        let mut set = redis::cmd("SET");
        set.arg(state_key(id)).arg(body).arg("EX").arg(secs);
        if only_existing {
            set.arg("XX");
        }
        let written: Option<String> = set.query_async(&mut conn).await?;
        if written.is_none() {
            return Ok(false);
        }
        if let Some(sub) = user_sub(state) {
            redis::pipe()
                .atomic()
                .sadd(user_key(&sub), id)
                .ignore()
                .expire(user_key(&sub), secs as i64)
                .ignore()
                .zadd(ACTIVE, id, expires_at(ttl))
                .ignore()
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok(true)
    }

    /// Deletes one session and its index entries; returns its state if it existed.
    async fn remove(&self, id: &str) -> Result<Option<State>, redis::RedisError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GETDEL")
            .arg(state_key(id))
            .query_async(&mut conn)
            .await?;
        let state: Option<State> = raw.and_then(|r| serde_json::from_str(&r).ok());
        let mut pipe = redis::pipe();
        pipe.zrem(ACTIVE, id).ignore();
        if let Some(sub) = state.as_ref().and_then(user_sub) {
            pipe.srem(user_key(&sub), id).ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
        Ok(state)
    }

    pub async fn revoke(&self, id: &str) -> Result<Option<String>, redis::RedisError> {
        Ok(self
            .remove(id)
            .await?
            .map(|s| user_sub(&s).unwrap_or_default()))
    }

    pub async fn revoke_user(&self, sub: &str) -> Result<u64, redis::RedisError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.smembers(user_key(sub)).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = ids.iter().map(|id| state_key(id)).collect();
        let (deleted,): (u64,) = redis::pipe()
            .atomic()
            .del(&keys)
            .zrem(ACTIVE, &ids)
            .ignore()
            .del(user_key(sub))
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(deleted)
    }

    pub async fn list_active(&self, limit: i64) -> Result<Vec<ActiveSession>, redis::RedisError> {
        let mut conn = self.conn.clone();
        let now = now();
        let _: () = conn.zrembyscore(ACTIVE, "-inf", now).await?;
        let ids: Vec<(String, i64)> = conn
            .zrevrange_withscores(ACTIVE, 0, (limit.max(1) - 1) as isize)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|(id, _)| state_key(id)).collect();
        let states: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        Ok(ids
            .into_iter()
            .zip(states)
            .filter_map(|((id, expires), raw)| {
                let state: State = serde_json::from_str(&raw?).ok()?;
                to_active(id, &state, expires, expires)
            })
            .collect())
    }

    pub async fn count_active(&self) -> Result<i64, redis::RedisError> {
        let mut conn = self.conn.clone();
        conn.zcount(ACTIVE, now(), "+inf").await
    }

    pub async fn purge_expired(&self) -> Result<u64, redis::RedisError> {
        let mut conn = self.conn.clone();
        conn.zrembyscore(ACTIVE, "-inf", now()).await
    }
}

impl SessionStore for RedisSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = conn
            .get(state_key(&row_id(key)))
            .await
            .map_err(|e| LoadError::Other(unavailable("Redis", e)))?;
        match raw {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<HashMap<String, String>>(&raw)
                .map(Some)
                .map_err(|e| LoadError::Deserialization(e.into())),
        }
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = new_key().map_err(SaveError::Other)?;
        self.write(&row_id(&key), &state, ttl, false)
            .await
            .map_err(|e| SaveError::Other(unavailable("Redis", e)))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let written = self
            .write(&row_id(&key), &state, ttl, true)
            .await
            .map_err(|e| UpdateError::Other(unavailable("Redis", e)))?;
        if written {
            return Ok(key);
        }
        if user_sub(&state).is_some() {
            tracing::info!("session vanished during the request; not recreating it");
            return Ok(key);
        }
        self.save(state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        })
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let mut conn = self.conn.clone();
        let id = row_id(key);
        let _: bool = conn
            .expire(state_key(&id), ttl.whole_seconds().max(1))
            .await
            .map_err(|e| unavailable("Redis", e))?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        self.remove(&row_id(key))
            .await
            .map_err(|e| unavailable("Redis", e))?;
        Ok(())
    }
}
