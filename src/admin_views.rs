//! The admin page's three big parts (sessions table, audit rows, chart table), kept as rendered
//! HTML for a second.
//!
//! Reading 50 sessions and 50 audit rows through sqlx-sqlite's worker thread and rendering them
//! with Tera cost about 1 ms of CPU per `/admin` view (bench/README.md, "/admin profile"). The
//! parts hold nothing of the viewer (the revoke buttons submit the page's one CSRF form), so
//! admins can share them. A part is used again only while it is under a second old *and* this
//! process has written nothing it shows since (the stamp: `session_store::changes()` or
//! `db::audit::writes()`, read before the query), so an admin sees their own revoke at once;
//! writes made by another instance show within a second. While one request renders a part
//! again, the others show the previous one (see [`Parts::fresh`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a part may be shown again without asking the database.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// While one request renders a part again, the others show the one before for at most this long
/// (only when nothing was written since: the stamp still matches).
const STALE_WHILE_RENDERING: Duration = Duration::from_secs(5);

/// At most this many audit filter views are kept; the map is emptied when full.
const MAX_VIEWS: usize = 64;

/// A rendered part and what it was rendered from.
#[derive(Clone)]
pub struct Part {
    pub html: Arc<str>,
    /// Audit rows: whether an older page exists (false for the other parts).
    pub flag: bool,
    stamp: u64,
    at: Instant,
    /// A request is rendering it again (see [`Parts::fresh`]).
    rendering: bool,
}

impl Part {
    /// A part rendered from data read after `stamp` was taken.
    pub fn new(html: String, flag: bool, stamp: u64) -> Part {
        Part {
            html: html.into(),
            flag,
            stamp,
            at: Instant::now(),
            rendering: false,
        }
    }
}

/// Rendered parts by key.
pub struct Parts<K>(Mutex<HashMap<K, Part>>);

impl<K> Default for Parts<K> {
    fn default() -> Self {
        Parts(Mutex::new(HashMap::new()))
    }
}

impl<K: Hash + Eq> Parts<K> {
    /// The part for `key` when it is fresh for `stamp`; `None` tells the caller to render it.
    ///
    /// When a part is only old (nothing written since), the first caller gets `None` and the
    /// others keep the old part until that caller's [`Parts::keep`]: without it, every request
    /// of the second in which it went stale queried and rendered at once (`/admin` p99 of
    /// 50 ms under 32 connections).
    pub fn fresh(&self, key: &K, stamp: u64) -> Option<Part> {
        let mut parts = self.0.lock().ok()?;
        let part = parts.get_mut(key).filter(|p| p.stamp == stamp)?;
        let age = part.at.elapsed();
        if age < FRESH_FOR || (part.rendering && age < STALE_WHILE_RENDERING) {
            return Some(part.clone());
        }
        part.rendering = true;
        None
    }

    /// Keeps `part` for `key`.
    pub fn keep(&self, key: K, part: Part) {
        if let Ok(mut parts) = self.0.lock() {
            if parts.len() >= MAX_VIEWS && !parts.contains_key(&key) {
                parts.clear();
            }
            parts.insert(key, part);
        }
    }
}

/// The admin page's kept parts and its chart, one per process (app data).
#[derive(Default)]
pub struct AdminViews {
    pub chart: crate::chart::ChartCache,
    pub sessions: Parts<()>,
    /// Keyed by the filter and the page.
    pub audit: Parts<(crate::db::audit::Filter, i64)>,
    /// Keyed by the chart rendering it shows (`chart::Rendered::serial`).
    pub chart_rows: Parts<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_fresh_only_for_its_stamp_and_key() {
        let parts: Parts<u8> = Parts::default();
        parts.keep(1, Part::new("<tr>".into(), true, 7));
        let got = parts.fresh(&1, 7).expect("fresh");
        assert_eq!(&*got.html, "<tr>");
        assert!(got.flag);
        assert!(parts.fresh(&1, 8).is_none(), "a write since makes it stale");
        assert!(parts.fresh(&2, 7).is_none());
    }

    #[test]
    fn a_part_goes_stale_after_a_second() {
        let parts: Parts<u8> = Parts::default();
        let mut part = Part::new(String::new(), false, 0);
        part.at -= FRESH_FOR;
        parts.keep(1, part);
        assert!(parts.fresh(&1, 0).is_none());
    }

    #[test]
    fn one_caller_renders_an_old_part_while_the_others_keep_it() {
        let parts: Parts<u8> = Parts::default();
        let mut part = Part::new("old".into(), false, 3);
        part.at -= FRESH_FOR;
        parts.keep(1, part);
        assert!(parts.fresh(&1, 3).is_none(), "the first caller renders");
        assert_eq!(&*parts.fresh(&1, 3).expect("the old part").html, "old");
        assert!(parts.fresh(&1, 4).is_none(), "never after a write");
        parts.keep(1, Part::new("new".into(), false, 3));
        assert_eq!(&*parts.fresh(&1, 3).expect("the new part").html, "new");
    }

    #[test]
    fn an_abandoned_render_frees_the_old_part_after_a_while() {
        let parts: Parts<u8> = Parts::default();
        let mut part = Part::new(String::new(), false, 0);
        part.at -= STALE_WHILE_RENDERING;
        part.rendering = true;
        parts.keep(1, part);
        assert!(parts.fresh(&1, 0).is_none());
    }

    #[test]
    fn the_map_stays_bounded() {
        let parts: Parts<usize> = Parts::default();
        for k in 0..(MAX_VIEWS * 3) {
            parts.keep(k, Part::new(String::new(), false, 0));
        }
        assert!(parts.0.lock().unwrap().len() <= MAX_VIEWS);
        assert!(parts.fresh(&(MAX_VIEWS * 3 - 1), 0).is_some());
    }
}
