//! The audit log: who did what, when, from where.

use crate::db::Pool;
use serde::Serialize;

use crate::clock::now;

/// The events rolegate records; stored as their snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    SignIn,
    SignInRefused,
    AccessDenied,
    SignOut,
    SessionRevoked,
    NoteCreated,
    NoteDeleted,
    /// A role re-check found other roles than the session held.
    RolesChanged,
    /// The identity provider signed the user out (back- or front-channel logout).
    ProviderSignedOut,
}

impl Event {
    pub const ALL: [Event; 9] = [
        Event::SignIn,
        Event::SignInRefused,
        Event::AccessDenied,
        Event::SignOut,
        Event::SessionRevoked,
        Event::NoteCreated,
        Event::NoteDeleted,
        Event::RolesChanged,
        Event::ProviderSignedOut,
    ];

    /// The name stored in `audit_log.event` and used in the admin filter.
    pub const fn name(self) -> &'static str {
        match self {
            Event::SignIn => "sign_in",
            Event::SignInRefused => "sign_in_refused",
            Event::AccessDenied => "access_denied",
            Event::SignOut => "sign_out",
            Event::SessionRevoked => "session_revoked",
            Event::NoteCreated => "note_created",
            Event::NoteDeleted => "note_deleted",
            Event::RolesChanged => "roles_changed",
            Event::ProviderSignedOut => "provider_signed_out",
        }
    }
}

/// Every event name, for filters and tests.
pub const EVENTS: [&str; 9] = [
    Event::SignIn.name(),
    Event::SignInRefused.name(),
    Event::AccessDenied.name(),
    Event::SignOut.name(),
    Event::SessionRevoked.name(),
    Event::NoteCreated.name(),
    Event::NoteDeleted.name(),
    Event::RolesChanged.name(),
    Event::ProviderSignedOut.name(),
];

#[derive(Debug, Clone)]
pub struct NewEntry {
    pub event: Event,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Entry {
    pub id: String,
    pub at: i64,
    pub event: String,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

/// Audit writes (and purges) this process made: the admin chart's cache is stale once it moves.
static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many audit writes and purges this process has made so far (see [`WRITES`]).
pub fn writes() -> u64 {
    WRITES.load(std::sync::atomic::Ordering::Acquire)
}

/// Writes one row and counts it in the hourly rollup (the admin chart's source), in one
/// transaction so the chart and the log never disagree.
pub async fn insert(pool: &Pool, entry: &NewEntry) -> Result<(), sqlx::Error> {
    let at = now();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO audit_log (id, at, event, user_id, user_name, client_ip, request_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(crate::db::new_id())
    .bind(at)
    .bind(entry.event.name())
    .bind(&entry.user_id)
    .bind(&entry.user_name)
    .bind(&entry.client_ip)
    .bind(&entry.request_id)
    .bind(&entry.detail)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_hourly (event, hour, count) VALUES ($1, $2, 1) \
         ON CONFLICT (event, hour) DO UPDATE SET count = audit_hourly.count + 1",
    )
    .bind(entry.event.name())
    .bind(at / 3600 * 3600)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    WRITES.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    Ok(())
}

/// The `detail` of a `session_revoked` row for one session (the admin page and the CLI):
/// the first 12 characters of the row id, the handle `rolegate sessions list` shows.
pub fn one_session_revoked(id: &str, sub: &str) -> String {
    let short: String = id.chars().take(12).collect();
    format!("session {short}… of {sub}")
}

/// The `detail` of a `session_revoked` row for every session of one user.
pub fn user_sessions_revoked(count: u64, sub: &str) -> String {
    format!("all {count} session(s) of {sub}")
}

/// The newest `limit` rows of `event` (empty = any) written at or after `since` and with an
/// id above `after` (empty = any), oldest first: `rolegate audit tail`.
pub async fn tail(
    pool: &Pool,
    event: &str,
    since: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let mut rows: Vec<Entry> = sqlx::query_as(
        "SELECT id, at, event, user_id, user_name, client_ip, request_id, detail FROM audit_log \
         WHERE ($1 = '' OR event = $1) AND at >= $2 AND id > $3 \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(event)
    .bind(since)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.reverse();
    Ok(rows)
}

/// Deletes the rows written before `cutoff` (unix seconds): `audit.retention_days`.
/// Returns how many went.
pub async fn purge_older_than(pool: &Pool, cutoff: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM audit_log WHERE at < $1")
        .bind(cutoff)
        .execute(pool)
        .await?;
    // Hours wholly before the cutoff have no rows left.
    sqlx::query("DELETE FROM audit_hourly WHERE hour + 3600 <= $1")
        .bind(cutoff)
        .execute(pool)
        .await?;
    WRITES.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    Ok(done.rows_affected())
}

/// Filters of the admin page; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Deserialize, Serialize)]
pub struct Filter {
    #[serde(default)]
    pub event: String,
    /// Matches the user id or name, case-insensitively, as a substring.
    #[serde(default)]
    pub user: String,
    /// Unix seconds, inclusive.
    #[serde(skip)]
    pub from: Option<i64>,
    /// Unix seconds, exclusive.
    #[serde(skip)]
    pub to: Option<i64>,
}

pub const PAGE_SIZE: i64 = 50;

/// One page of entries matching `filter`, newest first, and whether more follow.
pub async fn search(
    pool: &Pool,
    filter: &Filter,
    page: i64,
) -> Result<(Vec<Entry>, bool), sqlx::Error> {
    let (limit, offset) = crate::db::page_window(page, PAGE_SIZE);
    let user = format!("%{}%", filter.user.to_lowercase());
    let rows: Vec<Entry> = sqlx::query_as(
        "SELECT id, at, event, user_id, user_name, client_ip, request_id, detail FROM audit_log \
         WHERE ($1 = '' OR event = $1) \
           AND ($2 = '%%' OR lower(coalesce(user_id, '')) LIKE $2 OR lower(coalesce(user_name, '')) LIKE $2) \
           AND at >= $3 AND at < $4 \
         ORDER BY at DESC, id DESC LIMIT $5 OFFSET $6",
    )
    .bind(&filter.event)
    .bind(user)
    .bind(filter.from.unwrap_or(0))
    .bind(filter.to.unwrap_or(i64::MAX))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok(crate::db::split_page(rows, PAGE_SIZE))
}

/// Counts of the charted events per hour from the hour holding `since` (unix seconds):
/// `(event, hour_start, count)`, read from the rollup (a few hundred rows, whatever the log's size).
pub async fn hourly(pool: &Pool, since: i64) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event, hour, count FROM audit_hourly \
         WHERE hour >= $1 AND event IN ('sign_in', 'sign_in_refused', 'access_denied')",
    )
    .bind(since / 3600 * 3600)
    .fetch_all(pool)
    .await
}
