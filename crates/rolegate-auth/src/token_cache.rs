//! Verified Bearer tokens, remembered until they expire (at most five minutes), so an API
//! client sending the same token again costs a map lookup instead of an RSA verification.
//!
//! Keyed by the whole token string: only a byte-identical token, already fully validated, hits.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::session::User;

/// Longest a verified token is trusted without checking it again.
const MAX_AGE_SECS: i64 = 300;

pub(crate) struct TokenCache {
    entries: RwLock<HashMap<String, (Arc<User>, i64)>>,
    capacity: usize,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        TokenCache {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    pub(crate) fn get(&self, token: &str, now: i64) -> Option<Arc<User>> {
        let entries = self.entries.read().ok()?;
        let (user, until) = entries.get(token)?;
        (*until > now).then(|| user.clone())
    }

    /// Remembers a validated token until `min(exp, now + 5 min)`.
    pub(crate) fn put(&self, token: &str, user: Arc<User>, exp: i64, now: i64) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.capacity {
                return;
            }
        }
        entries.insert(token.to_owned(), (user, exp.min(now + MAX_AGE_SECS)));
    }
}
