//! In-process read cache of session states, for a store that only this process writes.
//!
//! Signed-in requests then need no database round trip (a thread hop per query on SQLite).
//! Entries carry their expiry; the cache is bounded and simply stops admitting when full.

use std::collections::HashMap;
use std::sync::RwLock;

use super::State;

struct Entry {
    state: State,
    user_sub: Option<String>,
    expires_at: i64,
}

pub struct Cache {
    entries: RwLock<HashMap<String, Entry>>,
    capacity: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached state of `id`, unless absent or expired.
    pub fn get(&self, id: &str, now: i64) -> Option<State> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(id)?;
        (entry.expires_at > now).then(|| entry.state.clone())
    }

    pub fn put(&self, id: &str, state: &State, user_sub: Option<&str>, expires_at: i64) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(id) {
            return;
        }
        entries.insert(
            id.to_owned(),
            Entry {
                state: state.clone(),
                user_sub: user_sub.map(str::to_owned),
                expires_at,
            },
        );
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(id);
        }
    }

    pub fn remove_user(&self, sub: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, e| e.user_sub.as_deref() != Some(sub));
        }
    }

    pub fn purge_expired(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, e| e.expires_at > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State::from([("k".to_owned(), "v".to_owned())])
    }

    #[test]
    fn expiry_removal_and_capacity() {
        let cache = Cache::new(2);
        cache.put("a", &state(), Some("alice"), 100);
        cache.put("b", &state(), Some("bob"), 100);
        cache.put("c", &state(), None, 100);
        assert!(cache.get("a", 50).is_some());
        assert!(cache.get("a", 100).is_none(), "expired");
        assert!(cache.get("c", 50).is_none(), "full: not admitted");
        cache.remove_user("alice");
        assert!(cache.get("a", 50).is_none());
        cache.remove("b");
        assert!(cache.get("b", 50).is_none());
    }
}
