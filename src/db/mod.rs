//! Database pool and migrations: SQLite or PostgreSQL through sqlx's `Any` driver, one code
//! path and one set of migrations (portable types, `$n` placeholders).

use std::str::FromStr;
use std::sync::Once;
use std::time::{Duration, Instant};

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::settings::DatabaseSettings;

pub mod audit;
pub mod notes;

/// The pool every query runs on.
pub type Pool = sqlx::AnyPool;

/// Whether a URL names SQLite (otherwise PostgreSQL).
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The file of a SQLite URL (`None` for PostgreSQL or an in-memory database).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !is_sqlite(url) {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    (!file.as_os_str().is_empty() && file.to_str() != Some(":memory:")).then(|| file.to_owned())
}

/// Opens the pool. SQLite: creates the file and its folder, WAL mode. PostgreSQL: waits for the
/// server (logging each failed attempt) up to `database.startup_wait_secs`.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Pool> {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);

    let sqlite = is_sqlite(&settings.url);
    if sqlite {
        let options = SqliteConnectOptions::from_str(&settings.url)
            .map_err(|e| anyhow::anyhow!("database.url is not a valid SQLite URL: {e}"))?;
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("cannot create the database folder {}: {e}", dir.display())
            })?;
        }
    }
    let options = AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // The default pings every connection before each query: a second round trip (and, for
        // SQLite, a thread hop) on every request. A dead connection fails its query instead.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    // Lets checkpoints shrink the WAL file instead of keeping its peak size.
                    conn.execute("PRAGMA journal_size_limit = 67108864").await?;
                }
                Ok(())
            })
        });

    let started = Instant::now();
    let mut attempt = 0u32;
    let pool = loop {
        attempt += 1;
        match options.clone().connect(&settings.url).await {
            Ok(pool) => break pool,
            Err(e) if !sqlite && started.elapsed().as_secs() < settings.startup_wait_secs => {
                tracing::warn!(attempt, error = %e, "database unreachable; retrying in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("cannot connect to the database: {e}")),
        }
    };
    if sqlite {
        // Persistent for the file; readers no longer block the writer.
        pool.execute("PRAGMA journal_mode = WAL").await?;
    }
    Ok(pool)
}

/// Applies `migrations/` (embedded at build time).
pub async fn migrate(pool: &Pool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}

/// Folds the SQLite WAL back into the database and truncates it (no-op on PostgreSQL);
/// long runs of readers can otherwise keep the WAL growing.
pub async fn checkpoint(pool: &Pool, url: &str) {
    if is_sqlite(url)
        && let Err(e) = pool.execute("PRAGMA wal_checkpoint(TRUNCATE)").await
    {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

/// Cheap liveness probe used by `/healthz`.
pub async fn ping(pool: &Pool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

/// `LIMIT` and `OFFSET` for 1-based `page`: one row more than `size`, to know if more follow.
pub fn page_window(page: i64, size: i64) -> (i64, i64) {
    (size + 1, (page.max(1) - 1) * size)
}

/// Cuts the extra row fetched by [`page_window`] off; `true` when there is a next page.
pub fn split_page<T>(mut rows: Vec<T>, size: i64) -> (Vec<T>, bool) {
    let more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    (rows, more)
}

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
