//! Sessions in Redis, shared by every rolegate instance, with TTLs enforced by Redis.
//!
//! Keys: `rolegate:s:{id}` holds the state with a Redis TTL; for signed-in sessions
//! `rolegate:u:{sub}` (a set of ids) lets revoke-all work without scanning, and the sorted set
//! `rolegate:active` (id -> expiry) lets the admin page list sessions; `rolegate:sid:{sid}` (a
//! set of ids) lets single sign-out find a provider session's sessions, and
//! `rolegate:jti:{iss}|{jti}` remembers accepted logout tokens on every instance.

use std::time::Duration as StdDuration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{ActiveSession, Expiry, Row, State, to_active, user_sub};
use crate::clock::now;

const ACTIVE: &str = "rolegate:active";

fn state_key(id: &str) -> String {
    format!("rolegate:s:{id}")
}

fn user_key(sub: &str) -> String {
    format!("rolegate:u:{sub}")
}

fn sid_key(sid: &str) -> String {
    format!("rolegate:sid:{sid}")
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

    async fn write(&self, row: &Row<'_>, only_existing: bool) -> Result<bool, redis::RedisError> {
        let mut conn = self.conn.clone();
        let mut set = redis::cmd("SET");
        set.arg(state_key(row.id))
            .arg(row.body)
            .arg("EXAT")
            .arg(row.expires_at);
        if only_existing {
            set.arg("XX");
        }
        let written: Option<String> = set.query_async(&mut conn).await?;
        if written.is_none() {
            return Ok(false);
        }
        if let Some(sub) = row.user_sub {
            let mut pipe = redis::pipe();
            pipe.atomic()
                .sadd(user_key(sub), row.id)
                .ignore()
                .expire_at(user_key(sub), row.expires_at)
                .ignore()
                .zadd(ACTIVE, row.id, row.expires_at)
                .ignore();
            if let Some(sid) = row.sid {
                pipe.sadd(sid_key(sid), row.id)
                    .ignore()
                    .expire_at(sid_key(sid), row.expires_at)
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
        }
        Ok(true)
    }

    /// Deletes one session and its index entries; returns its state if it existed.
    async fn take(&self, id: &str) -> Result<Option<State>, redis::RedisError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GETDEL")
            .arg(state_key(id))
            .query_async(&mut conn)
            .await?;
        let state: Option<State> = raw.and_then(|r| serde_json::from_str(&r).ok());
        let mut pipe = redis::pipe();
        pipe.zrem(ACTIVE, id).ignore();
        let ids = state
            .as_ref()
            .map(rolegate_auth::SessionIds::of)
            .unwrap_or_default();
        if let Some(sub) = &ids.sub {
            pipe.srem(user_key(sub), id).ignore();
        }
        if let Some(sid) = &ids.sid {
            pipe.srem(sid_key(sid), id).ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
        Ok(state)
    }

    pub async fn revoke(&self, id: &str) -> Result<Option<String>, redis::RedisError> {
        Ok(self
            .take(id)
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

    /// Deletes the sessions of one provider session (of `sub` only, when given); returns
    /// their ids. Each goes through [`Self::take`], so every index forgets it.
    pub async fn revoke_sid(
        &self,
        sid: &str,
        sub: Option<&str>,
    ) -> Result<Vec<String>, redis::RedisError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.smembers(sid_key(sid)).await?;
        let mut ended = Vec::new();
        for id in ids {
            if let Some(sub) = sub {
                let raw: Option<String> = conn.get(state_key(&id)).await?;
                let owner = raw
                    .and_then(|r| serde_json::from_str::<State>(&r).ok())
                    .and_then(|s| user_sub(&s));
                if owner.as_deref() != Some(sub) {
                    continue;
                }
            }
            if self.take(&id).await?.is_some() {
                ended.push(id);
            }
        }
        Ok(ended)
    }

    /// `SET NX` of a logout token's replay key until `until`: `false` when it was there.
    pub async fn first_use(&self, key: &str, until: i64) -> Result<bool, redis::RedisError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("rolegate:jti:{key}"))
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(until)
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
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

/// Storage primitives for [`super::Sessions`], which owns keys, (de)serialisation and policy.
impl RedisSessionStore {
    pub(super) async fn load(&self, id: &str) -> Result<Option<String>, redis::RedisError> {
        let mut conn = self.conn.clone();
        conn.get(state_key(id)).await
    }

    pub(super) async fn insert(&self, row: &Row<'_>) -> Result<(), redis::RedisError> {
        self.write(row, false).await.map(|_| ())
    }

    /// Overwrites a live entry; `false` when it is gone (revoked or expired).
    pub(super) async fn replace(&self, row: &Row<'_>) -> Result<bool, redis::RedisError> {
        self.write(row, true).await
    }

    /// Moves an entry's TTL; signed-in entries are the ones indexed in [`ACTIVE`], the others
    /// get the shorter anonymous TTL.
    pub(super) async fn extend(&self, id: &str, expiry: &Expiry) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        let signed_in: Option<f64> = conn.zscore(ACTIVE, id).await?;
        let at = match signed_in {
            Some(_) => expiry.signed_in,
            None => expiry.anonymous,
        };
        let _: bool = conn.expire_at(state_key(id), at).await?;
        Ok(())
    }

    pub(super) async fn remove(&self, id: &str) -> Result<(), redis::RedisError> {
        self.take(id).await.map(|_| ())
    }
}
