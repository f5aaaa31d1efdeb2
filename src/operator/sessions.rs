//! `rolegate sessions list [--user SUB]` and `rolegate sessions revoke (--id | --user | --all)`.

use serde_json::json;

use super::{
    Outcome, RevokeArgs, SessionsCommand, database, operator_entry, printable, session_store,
};
use crate::db::audit::{self, Event};
use crate::progress::Progress;
use crate::session_store::{ActiveSession, Sessions};
use crate::settings::Loaded;
use crate::templates::format_time;

/// Characters of the store id shown as the session's handle (as in the audit rows).
pub const HANDLE_LEN: usize = 12;
/// Sessions read at most at once.
const LIST_LIMIT: i64 = 100_000;
/// Sessions revoked per round by `revoke --all`.
const BATCH: i64 = 500;

pub async fn run(command: SessionsCommand, loaded: &Loaded) -> anyhow::Result<Outcome> {
    let pool = database(loaded).await?;
    let store = session_store(loaded, &pool).await?;
    let outcome = match command {
        SessionsCommand::List { user, json } => list(&store, user.as_deref(), json).await,
        SessionsCommand::Revoke(args) => revoke(&store, &pool, args).await,
    };
    pool.close().await;
    outcome
}

fn handle(id: &str) -> &str {
    id.get(..HANDLE_LEN).unwrap_or(id)
}

async fn list(store: &Sessions, user: Option<&str>, json: bool) -> anyhow::Result<Outcome> {
    let sessions: Vec<ActiveSession> = store
        .list_active(LIST_LIMIT)
        .await?
        .into_iter()
        .filter(|s| user.is_none_or(|u| s.user_sub == u))
        .collect();
    if sessions.is_empty() {
        match user {
            Some(u) => eprintln!("no signed-in sessions of {}", printable(u)),
            None => eprintln!("no signed-in sessions"),
        }
        return Ok(Outcome::NothingMatched);
    }
    if json {
        for s in &sessions {
            let line = json!({
                "handle": handle(&s.id),
                "id": s.id,
                "user_sub": s.user_sub,
                "name": s.user.name,
                "preferred_username": s.user.preferred_username,
                "roles": s.user.roles,
                "signed_in_at": s.user.signed_in_at,
                "last_seen": s.last_seen,
                "expires_at": s.expires_at,
                "client_ip": s.client.ip,
                "user_agent": s.client.user_agent,
            });
            println!("{line}");
        }
        return Ok(Outcome::Done);
    }
    let rows: Vec<[String; 6]> = sessions
        .iter()
        .map(|s| {
            [
                handle(&s.id).to_owned(),
                printable(&s.user_sub),
                printable(&s.user.name),
                printable(&s.user.roles.join(",")),
                format_time(s.last_seen),
                printable(&s.client.ip),
            ]
        })
        .collect();
    let header = ["HANDLE", "USER", "NAME", "ROLES", "LAST SEEN", "IP"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    eprintln!("{} session(s)", rows.len());
    Ok(Outcome::Done)
}

async fn revoke(
    store: &Sessions,
    pool: &crate::db::Pool,
    args: RevokeArgs,
) -> anyhow::Result<Outcome> {
    if let Some(prefix) = args.id {
        return revoke_one(store, pool, &prefix).await;
    }
    if let Some(sub) = args.user {
        let count = store.revoke_user(&sub).await?;
        // Written even when nothing went, like the admin page: the action is recorded.
        audit::insert(
            pool,
            &operator_entry(
                Event::SessionRevoked,
                audit::user_sessions_revoked(count, &sub),
            ),
        )
        .await?;
        println!("revoked {count} session(s) of {}", printable(&sub));
        return Ok(if count == 0 {
            Outcome::NothingMatched
        } else {
            Outcome::Done
        });
    }
    revoke_all(store, pool, args.progress).await
}

async fn revoke_one(
    store: &Sessions,
    pool: &crate::db::Pool,
    prefix: &str,
) -> anyhow::Result<Outcome> {
    let matches: Vec<ActiveSession> = store
        .list_active(LIST_LIMIT)
        .await?
        .into_iter()
        .filter(|s| s.id.starts_with(prefix))
        .collect();
    let session = match matches.as_slice() {
        [] => {
            eprintln!("no signed-in session has the id {prefix}");
            return Ok(Outcome::NothingMatched);
        }
        [one] => one,
        many => {
            let handles: Vec<&str> = many.iter().map(|s| handle(&s.id)).collect();
            anyhow::bail!(
                "{prefix} matches {} sessions ({}); give more characters",
                many.len(),
                handles.join(", ")
            );
        }
    };
    let Some(sub) = store.revoke(&session.id).await? else {
        eprintln!(
            "session {} ended before it could be revoked",
            handle(&session.id)
        );
        return Ok(Outcome::NothingMatched);
    };
    audit::insert(
        pool,
        &operator_entry(
            Event::SessionRevoked,
            audit::one_session_revoked(&session.id, &sub),
        ),
    )
    .await?;
    println!(
        "revoked session {} of {}",
        handle(&session.id),
        printable(&sub)
    );
    Ok(Outcome::Done)
}

/// Every signed-in session, in batches with a progress line; bounded by the count at the
/// start, so sign-ins during the run cannot keep it going.
async fn revoke_all(
    store: &Sessions,
    pool: &crate::db::Pool,
    forced: bool,
) -> anyhow::Result<Outcome> {
    let total = u64::try_from(store.count_active().await?).unwrap_or(0);
    let mut progress = Progress::stderr("revoking sessions", Some(total), forced);
    let mut revoked = 0u64;
    'rounds: while progress.done() < total {
        let batch = store.list_active(BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for session in batch {
            if progress.done() >= total {
                break 'rounds;
            }
            if store.revoke(&session.id).await?.is_some() {
                revoked += 1;
            }
            progress.add(1);
        }
    }
    progress.finish();
    audit::insert(
        pool,
        &operator_entry(
            Event::SessionRevoked,
            format!("all {revoked} session(s) of every user"),
        ),
    )
    .await?;
    println!("revoked {revoked} session(s)");
    Ok(if revoked == 0 {
        Outcome::NothingMatched
    } else {
        Outcome::Done
    })
}
