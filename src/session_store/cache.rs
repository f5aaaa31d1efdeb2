//! In-process read cache of signed-in session states, for a store that only this process
//! writes.
//!
//! Signed-in requests then need no database round trip (a thread hop per query on SQLite).
//! Entries carry their expiry; the cache is bounded and simply stops admitting when full.
//! Anonymous sessions (a pending sign-in, nothing else) are never cached: anyone can make
//! them by the thousand, and they must not crowd out the sessions of signed-in users.
//!
//! Revocation is final. A write that may fill the cache takes a [`Ticket`] *before* it
//! touches the backend; a revocation (revoke, revoke-all, sign-out) stamps the id or the user
//! *after* the backend row is gone. [`Cache::put`] refuses a ticket older than a stamp, so a
//! request that read or wrote the row before the revoke cannot bring it back afterwards, in
//! whatever order the two interleave.

use std::collections::HashMap;
use std::sync::RwLock;

use super::State;

/// Stamps remembered at most; past this every stamp is forgotten at once and every
/// outstanding ticket becomes void (a few cache misses instead of unbounded memory).
const MAX_STAMPS: usize = 10_000;

struct Entry {
    state: State,
    user_sub: String,
    expires_at: i64,
}

/// Proof of when a write began, relative to revocations: see [`Cache::ticket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Bumped by every revocation and by forgetting the stamps.
    generation: u64,
    /// Tickets below this were issued before stamps that are now forgotten: refused.
    floor: u64,
    /// Row id -> generation of its revocation.
    revoked_ids: HashMap<String, u64>,
    /// User sub -> generation of its last revoke-all.
    revoked_subs: HashMap<String, u64>,
}

impl Inner {
    fn stamp(&mut self) -> u64 {
        if self.revoked_ids.len() + self.revoked_subs.len() >= MAX_STAMPS {
            self.forget_stamps();
        }
        self.generation += 1;
        self.generation
    }

    fn forget_stamps(&mut self) {
        self.generation += 1;
        self.floor = self.generation;
        self.revoked_ids.clear();
        self.revoked_subs.clear();
    }

    fn admits(&self, ticket: Ticket, id: &str, user_sub: &str) -> bool {
        let newer = |stamp: Option<&u64>| stamp.is_some_and(|g| *g > ticket.0);
        ticket.0 >= self.floor
            && !newer(self.revoked_ids.get(id))
            && !newer(self.revoked_subs.get(user_sub))
    }
}

/// The cache; share one per process.
pub struct Cache {
    inner: RwLock<Inner>,
    capacity: usize,
}

impl Cache {
    /// A cache that admits at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Cache {
            inner: RwLock::new(Inner::default()),
            capacity,
        }
    }

    /// Taken before reading or writing the backend row whose state may then be [`put`](Self::put).
    pub fn ticket(&self) -> Ticket {
        Ticket(self.inner.read().map(|i| i.generation).unwrap_or(0))
    }

    /// The cached state of `id`, unless absent or expired.
    pub fn get(&self, id: &str, now: i64) -> Option<State> {
        let inner = self.inner.read().ok()?;
        let entry = inner.entries.get(id)?;
        (entry.expires_at > now).then(|| entry.state.clone())
    }

    /// Caches a signed-in state, unless `id` or its user was revoked after `ticket` was taken,
    /// or the cache is full. Returns whether it was admitted.
    pub fn put(
        &self,
        ticket: Ticket,
        id: &str,
        state: &State,
        user_sub: &str,
        expires_at: i64,
    ) -> bool {
        let Ok(mut inner) = self.inner.write() else {
            return false;
        };
        if !inner.admits(ticket, id, user_sub) {
            return false;
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(id) {
            return false;
        }
        inner.entries.insert(
            id.to_owned(),
            Entry {
                state: state.clone(),
                user_sub: user_sub.to_owned(),
                expires_at,
            },
        );
        true
    }

    /// Drops the entry (its state is about to change); later puts are still admitted.
    pub fn remove(&self, id: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.entries.remove(id);
        }
    }

    /// `id` was deleted from the backend: drop it and refuse puts of tickets taken before now.
    pub fn revoke(&self, id: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.entries.remove(id);
            let generation = inner.stamp();
            inner.revoked_ids.insert(id.to_owned(), generation);
        }
    }

    /// Every session of `sub` was deleted from the backend: drop them and refuse puts of
    /// tickets taken before now (a sign-in after this is admitted again).
    pub fn revoke_user(&self, sub: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.entries.retain(|_, e| e.user_sub != sub);
            let generation = inner.stamp();
            inner.revoked_subs.insert(sub.to_owned(), generation);
        }
    }

    /// Drops every entry and voids every outstanding ticket: another process revoked
    /// sessions this cache cannot name.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.entries.clear();
            inner.forget_stamps();
        }
    }

    /// Drops expired entries and the revocation stamps (writes in flight just miss the cache).
    pub fn purge_expired(&self, now: i64) {
        if let Ok(mut inner) = self.inner.write() {
            inner.entries.retain(|_, e| e.expires_at > now);
            inner.forget_stamps();
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
        let t = cache.ticket();
        assert!(cache.put(t, "a", &state(), "alice", 100));
        assert!(cache.put(t, "b", &state(), "bob", 100));
        assert!(!cache.put(t, "c", &state(), "carol", 100), "full");
        assert!(cache.get("a", 50).is_some());
        assert!(cache.get("a", 100).is_none(), "expired");
        assert!(cache.get("c", 50).is_none(), "full: not admitted");
        cache.revoke_user("alice");
        assert!(cache.get("a", 50).is_none());
        cache.remove("b");
        assert!(cache.get("b", 50).is_none());
    }

    /// A load (or an update) read the row, then the admin revoked it, then the request tried
    /// to cache what it had read: the revoked id must not be served.
    #[test]
    fn a_put_that_began_before_a_revoke_is_refused() {
        let cache = Cache::new(10);
        let ticket = cache.ticket(); // the request reads the backend row ...
        cache.revoke("a"); // ... the admin deletes the row and the entry ...
        assert!(!cache.put(ticket, "a", &state(), "alice", 100)); // ... the request caches
        assert!(
            cache.get("a", 50).is_none(),
            "revoked id served from the cache"
        );
        // A request that starts after the revoke finds no row and caches nothing; another
        // id of the same user is unaffected.
        assert!(cache.put(ticket, "b", &state(), "alice", 100));
    }

    /// The same race against revoke-all; a sign-in that starts after it is cached again.
    #[test]
    fn a_put_that_began_before_a_revoke_all_is_refused() {
        let cache = Cache::new(10);
        let before = cache.ticket();
        assert!(cache.put(before, "a", &state(), "alice", 100));
        let racing = cache.ticket(); // a sign-in writes its row for alice ...
        cache.revoke_user("alice"); // ... revoke-all deletes every alice row ...
        assert!(!cache.put(racing, "n", &state(), "alice", 100)); // ... then caches
        assert!(cache.get("a", 50).is_none() && cache.get("n", 50).is_none());
        assert!(
            cache.put(racing, "x", &state(), "bob", 100),
            "other users unaffected"
        );
        let after = cache.ticket();
        assert!(
            cache.put(after, "m", &state(), "alice", 100),
            "a later sign-in"
        );
        assert!(cache.get("m", 50).is_some());
    }

    /// Forgetting stamps (maintenance, or too many of them) voids every older ticket, so it
    /// can never reopen a race.
    #[test]
    fn forgotten_stamps_void_older_tickets() {
        let cache = Cache::new(10);
        let ticket = cache.ticket();
        cache.revoke("a");
        cache.purge_expired(0);
        assert!(!cache.put(ticket, "a", &state(), "alice", 100));
        assert!(!cache.put(ticket, "b", &state(), "bob", 100));
        assert!(cache.put(cache.ticket(), "b", &state(), "bob", 100));

        let ticket = cache.ticket();
        for i in 0..MAX_STAMPS + 1 {
            cache.revoke(&format!("r{i}"));
        }
        let inner = cache.inner.read().unwrap();
        assert!(inner.revoked_ids.len() <= MAX_STAMPS, "bounded");
        drop(inner);
        assert!(!cache.put(ticket, "r0", &state(), "alice", 100));
    }
}
