//! Revocations made by another process on the same SQLite database (the operator CLI).
//!
//! The server keeps a read cache of SQLite sessions (see `cache.rs`), which a row deleted by
//! another process would not reach. So every revocation also rewrites a small file next to
//! the database, and the server checks its modification time before serving from the cache:
//! a change drops the whole cache, and the next request reads the database. One `stat` a
//! cached request; SQLite is on this machine, so the file is too.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The signal file of one SQLite database.
pub struct Signal {
    path: PathBuf,
    /// The modification time this process last saw (or caused).
    seen: Mutex<Option<SystemTime>>,
}

impl Signal {
    /// The signal of the database file `db`: `{db}-revoked` beside it.
    pub fn beside(db: &Path) -> Signal {
        let mut name = db.as_os_str().to_owned();
        name.push("-revoked");
        let path = PathBuf::from(name);
        let seen = Mutex::new(modified(&path));
        Signal { path, seen }
    }

    /// Whether another process revoked sessions since the last call.
    pub fn changed(&self) -> bool {
        let now = modified(&self.path);
        match self.seen.lock() {
            Ok(mut seen) if *seen != now => {
                *seen = now;
                true
            }
            Ok(_) => false,
            Err(_) => true,
        }
    }

    /// Tells the other processes that sessions were revoked; this one does not react to it.
    pub fn notify(&self) {
        let stamp = format!("{:?}\n", SystemTime::now());
        if let Err(e) = std::fs::write(&self.path, stamp) {
            tracing::warn!(file = %self.path.display(), error = %e, "could not write the revocation signal file");
        }
        if let Ok(mut seen) = self.seen.lock() {
            *seen = modified(&self.path);
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_from_another_process_is_seen_once_and_ones_own_is_not() {
        let dir = std::env::temp_dir().join(format!("rg-signal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("x.db");
        let server = Signal::beside(&db);
        let cli = Signal::beside(&db);
        assert!(!server.changed());
        cli.notify();
        assert!(server.changed(), "the other process's revocation is seen");
        assert!(!server.changed(), "once");
        server.notify();
        assert!(!server.changed(), "its own is not");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
