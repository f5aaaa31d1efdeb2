//! Database pool and migrations (SQLite through sqlx).

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::settings::DatabaseSettings;

/// Opens the pool, creating the SQLite file (and its folder) when needed.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(&settings.url)
        .map_err(|e| anyhow::anyhow!("database.url is not a valid SQLite URL: {e}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    if let Some(dir) = options.get_filename().parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the database folder {}: {e}", dir.display())
        })?;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(settings.max_connections)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies `migrations/` (embedded at build time).
pub async fn migrate(pool: &SqlitePool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}

pub mod audit;
pub mod notes;

/// A row id that sorts by creation time (microsecond hex prefix) and ends in randomness, so it
/// needs no database sequence and orders rows created in the same second.
pub fn new_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!(
        "{micros:014x}{}",
        oauth2::CsrfToken::new_random_len(8).secret()
    )
}
