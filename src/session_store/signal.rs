//! Revocations made by another process on the same SQLite database (the operator CLI).
//!
//! The server keeps a read cache of SQLite sessions (see `cache.rs`), which a row deleted by
//! another process would not reach. So every revocation also rewrites a small file next to
//! the database, and the server compares its modification time before serving from the cache:
//! a change drops the whole cache, and the next request reads the database.
//!
//! A `stat` on every cached request cost about 4 % of a signed-in page (a syscall each), so an
//! inotify watch on the folder (the `notify` crate) bumps a counter when the file changes and
//! `changed` looks at the file only then. Where no watch can be set up, it stats every time,
//! as before.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use notify::Watcher as _;

/// The signal file of one SQLite database.
pub struct Signal {
    path: PathBuf,
    /// The modification time this process last saw (or caused).
    seen: Mutex<Option<SystemTime>>,
    /// Bumped by the watch on every event for the file; `None` without a watch.
    events: Option<Arc<AtomicU64>>,
    /// The value of `events` when the file was last looked at.
    looked_at: AtomicU64,
    /// Keeps the watch (and its thread) alive.
    _watch: Option<notify::RecommendedWatcher>,
}

impl Signal {
    /// The signal of the database file `db`: `{db}-revoked` beside it.
    pub fn beside(db: &Path) -> Signal {
        let mut name = db.as_os_str().to_owned();
        name.push("-revoked");
        let path = PathBuf::from(name);
        let (events, watch) = match watch(&path) {
            Ok((events, watch)) => (Some(events), Some(watch)),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot watch the revocation signal file; checking it on every cached request instead");
                (None, None)
            }
        };
        let seen = Mutex::new(modified(&path));
        Signal {
            path,
            seen,
            looked_at: AtomicU64::new(events.as_ref().map_or(0, |e| e.load(Ordering::Acquire))),
            events,
            _watch: watch,
        }
    }

    /// Whether another process revoked sessions since the last call.
    pub fn changed(&self) -> bool {
        if let Some(events) = &self.events {
            let now = events.load(Ordering::Acquire);
            if self.looked_at.swap(now, Ordering::AcqRel) == now {
                return false;
            }
        }
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

/// Watches the file's folder (the file may not exist yet) and counts the file's events.
fn watch(path: &Path) -> notify::Result<(Arc<AtomicU64>, notify::RecommendedWatcher)> {
    let events = Arc::new(AtomicU64::new(0));
    let name = path.file_name().map(|n| n.to_owned());
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let counter = events.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // An error or an event for the file: look at it on the next request.
        let ours = event.map_or(true, |e| {
            e.paths.iter().any(|p| p.file_name() == name.as_deref())
        });
        if ours {
            counter.fetch_add(1, Ordering::AcqRel);
        }
    })?;
    watcher.watch(&folder, notify::RecursiveMode::NonRecursive)?;
    Ok((events, watcher))
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
        // The watch reports the write on its own thread, within microseconds.
        let seen = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            server.changed()
        });
        assert!(seen, "the other process's revocation is seen");
        assert!(!server.changed(), "once");
        server.notify();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!server.changed(), "its own is not");
        assert!(server.events.is_some(), "inotify is used here");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
