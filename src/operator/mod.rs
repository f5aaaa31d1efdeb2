//! The command line: `serve`, `check-config`, `migrate` and the operator commands
//! (`sessions list|revoke`, `audit tail`), which act on the same store as the server.
//!
//! Parsing is `clap` (derive): nested subcommands, mutually exclusive flags and one usage
//! message per command come with it, and a usage error exits 2, as the contract says.
//! Exit codes of the operator commands: 0 done, 1 nothing matched or a problem, 2 usage.

mod audit_tail;
mod sessions;

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::db::audit::{EVENTS, NewEntry};
use crate::session_store::{RedisSessionStore, Sessions, SqlSessionStore};
use crate::settings::{Loaded, StoreKind};

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "rolegate",
    about = "OpenID Connect sign-in and app-role authorization (DemoApp server and operator commands)",
    after_help = "Settings: appsettings.json < appsettings.{APP_ENV}.json < APP__SECTION__KEY env vars.\n\
                  Operator commands exit 0 when done, 1 when nothing matched or on a problem, 2 on a usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (the default)
    Serve,
    /// Print the effective settings and every problem; exit 1 if any
    CheckConfig {
        /// Also fetch the provider's discovery document and keys and check them against the
        /// settings (issuer, client authentication, signing algorithms, sign-out, keys)
        #[arg(long)]
        online: bool,
    },
    /// Apply the database migrations
    Migrate,
    /// List or revoke signed-in sessions in the configured store (database or Redis)
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Read the audit log
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Signed-in sessions, most recently active first. HANDLE is the first 12 characters of
    /// the session's store id (a SHA-256 of the cookie's secret, so not a secret itself).
    List {
        /// Only the sessions of this user (the `sub` claim, as listed)
        #[arg(long, value_name = "SUB")]
        user: Option<String>,
        /// One JSON object a line, with the full id
        #[arg(long)]
        json: bool,
    },
    /// End sessions: the next request with their cookie is anonymous. Writes a
    /// `session_revoked` audit row, like the admin page.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["id", "user", "all"])))]
pub struct RevokeArgs {
    /// A handle or id from `sessions list` (any unique prefix of 8 or more characters)
    #[arg(long, value_name = "ID", value_parser = parse_id)]
    pub id: Option<String>,
    /// Every session of this user (the `sub` claim)
    #[arg(long, value_name = "SUB")]
    pub user: Option<String>,
    /// Every signed-in session of every user
    #[arg(long)]
    pub all: bool,
    /// Show the progress line even when stderr is not a terminal
    #[arg(long)]
    pub progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The latest audit rows, oldest first
    Tail(audit_tail::TailArgs),
}

/// Shortest id prefix `revoke --id` accepts.
const MIN_PREFIX: usize = 8;

/// A session handle or id: hex, [`MIN_PREFIX`] characters or more, lower-cased.
fn parse_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.len() < MIN_PREFIX || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "takes a handle or id from `rolegate sessions list` ({MIN_PREFIX} or more hex characters)"
        ));
    }
    Ok(text.to_ascii_lowercase())
}

/// How an operator command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    NothingMatched,
}

/// Runs an operator command; `serve`, `check-config` and `migrate` stay in `main.rs`.
pub async fn run(command: Command, loaded: Loaded) -> ExitCode {
    let result = match command {
        Command::Sessions(c) => sessions::run(c, &loaded).await,
        Command::Audit(AuditCommand::Tail(args)) => audit_tail::run(args, &loaded).await,
        Command::Serve | Command::CheckConfig { .. } | Command::Migrate => {
            unreachable!("handled by main")
        }
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NothingMatched) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Refuses to run on broken database or session settings; other problems (say, the
/// provider's) do not concern the operator commands.
fn check_store_settings(loaded: &Loaded) -> anyhow::Result<()> {
    let relevant: Vec<String> = loaded
        .problems
        .iter()
        .filter(|p| {
            p.key.starts_with("database.")
                || p.key.starts_with("session.redis_url")
                || p.key == "session.store"
        })
        .map(|p| format!("  - {p}"))
        .collect();
    if relevant.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("invalid settings:\n{}", relevant.join("\n"))
    }
}

/// The database pool, as the server opens it (no migrations: that is `rolegate migrate`).
async fn database(loaded: &Loaded) -> anyhow::Result<crate::db::Pool> {
    check_store_settings(loaded)?;
    let mut settings = loaded.settings.database.clone();
    settings.startup_wait_secs = 0;
    crate::db::connect(&settings).await
}

/// The server's session store, without the read cache (the server owns that); revocations on
/// SQLite are signalled to a running server (see `session_store/signal.rs`).
async fn session_store(loaded: &Loaded, pool: &crate::db::Pool) -> anyhow::Result<Sessions> {
    let s = &loaded.settings;
    Ok(match s.session.store {
        StoreKind::Redis => {
            Sessions::redis(RedisSessionStore::connect(&s.session.redis_url, Duration::ZERO).await?)
        }
        StoreKind::Database => {
            let sessions = Sessions::sql_uncached(SqlSessionStore::new(pool.clone()));
            match crate::db::sqlite_file(&s.database.url) {
                Some(file) => sessions.with_revocation_signal(&file),
                None => sessions,
            }
        }
    })
}

/// Who acted, for the audit rows of the operator commands: the login of the shell user.
fn operator_entry(event: crate::db::audit::Event, detail: String) -> NewEntry {
    let login = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    NewEntry {
        event,
        user_id: None,
        user_name: Some(format!("rolegate CLI ({})", printable(&login))),
        client_ip: None,
        request_id: None,
        detail,
    }
}

/// Text from the store (names, user agents: whatever the provider or a browser sent) made
/// safe for a terminal: control characters are escaped, so none can move the cursor or
/// forge a line.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Whether `event` is one rolegate writes.
fn known_event(event: &str) -> bool {
    EVENTS.contains(&event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert_eq!(printable("Alice Test"), "Alice Test");
        assert_eq!(printable("a\x1b[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
    }

    #[test]
    fn revoke_needs_exactly_one_target() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["rolegate", "sessions", "revoke"]).is_err());
        assert!(
            parse(&[
                "rolegate", "sessions", "revoke", "--id", "abc", "--user", "x"
            ])
            .is_err()
        );
        let err = parse(&["rolegate", "sessions", "revoke"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(parse(&["rolegate", "sessions", "revoke", "--user", "x"]).is_ok());
        assert!(parse(&["rolegate"]).unwrap().command.is_none());
    }
}
