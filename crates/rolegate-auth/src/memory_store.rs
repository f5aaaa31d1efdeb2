//! An in-process session store, for examples, tests and single-instance development.
//!
//! Sessions vanish on restart and are not shared between processes; use a database or Redis
//! store in production. Like any server-side store, the cookie holds only a random id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

type State = HashMap<String, String>;
type Entries = HashMap<String, (State, Instant)>;

/// Sessions in a mutex-guarded map; expired entries are dropped as they are met and on insert.
#[derive(Clone, Default)]
pub struct MemoryStore {
    entries: Arc<Mutex<Entries>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many unexpired sessions the store holds.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .map(|e| e.values().filter(|(_, until)| *until > now).count())
            .unwrap_or(0)
    }

    /// Whether the store holds no unexpired session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Entries>, anyhow::Error> {
        self.entries
            .lock()
            .map_err(|_| anyhow::anyhow!("memory session store poisoned"))
    }
}

fn until(ttl: &Duration) -> Instant {
    let secs = u64::try_from(ttl.whole_seconds()).unwrap_or(0);
    Instant::now() + StdDuration::from_secs(secs)
}

fn new_key() -> Result<SessionKey, anyhow::Error> {
    let random = oauth2::CsrfToken::new_random_len(32);
    SessionKey::try_from(random.into_secret()).map_err(|e| anyhow::anyhow!("{e}"))
}

impl SessionStore for MemoryStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        let mut entries = self.lock().map_err(LoadError::Other)?;
        match entries.get(key.as_ref()) {
            Some((state, until)) if *until > Instant::now() => Ok(Some(state.clone())),
            Some(_) => {
                entries.remove(key.as_ref());
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let key = new_key().map_err(SaveError::Other)?;
        let mut entries = self.lock().map_err(SaveError::Other)?;
        let now = Instant::now();
        entries.retain(|_, (_, until)| *until > now);
        entries.insert(key.as_ref().to_owned(), (state, until(ttl)));
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let state = {
            let mut entries = self.lock().map_err(UpdateError::Other)?;
            match entries.get_mut(key.as_ref()) {
                Some(entry) => {
                    *entry = (state, until(ttl));
                    return Ok(key);
                }
                // Ended while this request ran (sign-out elsewhere, single sign-out): a
                // signed-in session is never brought back under a new id.
                None if state.contains_key(crate::SESSION_USER_KEY) => return Ok(key),
                None => state,
            }
        };
        self.save(state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        })
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        if let Some(entry) = self.lock()?.get_mut(key.as_ref()) {
            entry.1 = until(ttl);
        }
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        self.lock()?.remove(key.as_ref());
        Ok(())
    }
}

impl MemoryStore {
    /// Removes every session whose user `matches`; returns how many went.
    fn end_where(
        &self,
        matches: impl Fn(Option<&str>, Option<&str>) -> bool,
    ) -> Result<u64, String> {
        let mut entries = self.lock().map_err(|e| e.to_string())?;
        let before = entries.len();
        entries.retain(|_, (state, _)| {
            let ids = crate::SessionIds::of(state);
            !matches(ids.sub.as_deref(), ids.sid.as_deref())
        });
        Ok((before - entries.len()) as u64)
    }
}

/// Single sign-out for one process: [`crate::Auth::with_session_end`]`(store.clone())`.
impl crate::SessionEnd for MemoryStore {
    fn end_sid(&self, sid: String, sub: Option<String>) -> crate::EndFuture {
        let ended = self.end_where(|s, d| {
            d == Some(sid.as_str()) && sub.as_deref().is_none_or(|want| s == Some(want))
        });
        Box::pin(std::future::ready(ended))
    }

    fn end_sub(&self, sub: String) -> crate::EndFuture {
        let ended = self.end_where(|s, _| s == Some(sub.as_str()));
        Box::pin(std::future::ready(ended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionEnd;

    fn signed_in(sub: &str, sid: &str) -> State {
        let user = serde_json::json!({"sub": sub, "sid": sid}).to_string();
        HashMap::from([(crate::SESSION_USER_KEY.to_owned(), user)])
    }

    #[actix_web::test]
    async fn single_sign_out_ends_by_sid_or_by_sub_and_nothing_comes_back() {
        let store = MemoryStore::new();
        let ttl = Duration::minutes(5);
        let a1 = store.save(signed_in("alice", "s1"), &ttl).await.unwrap();
        store.save(signed_in("alice", "s2"), &ttl).await.unwrap();
        store.save(signed_in("bob", "s3"), &ttl).await.unwrap();
        assert_eq!(store.end_sid("s1".into(), Some("bob".into())).await, Ok(0));
        assert_eq!(store.end_sid("s1".into(), None).await, Ok(1));
        assert_eq!(store.len(), 2);
        // A request that read the ended session cannot write it back.
        let raw = a1.as_ref().to_owned();
        let back = store
            .update(a1, signed_in("alice", "s1"), &ttl)
            .await
            .unwrap();
        assert_eq!(back.as_ref(), raw);
        assert!(store.load(&back).await.unwrap().is_none());
        assert_eq!(store.len(), 2);
        assert_eq!(store.end_sub("alice".into()).await, Ok(1));
        assert_eq!(store.len(), 1, "bob stays");
    }
}
