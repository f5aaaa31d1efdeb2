//! `rolegate audit tail [--event E] [--since 1h] [-n N] [--follow] [--json]`.

use std::time::Duration;

use clap::Args;

use super::{Outcome, database, known_event, printable};
use crate::clock::now;
use crate::db::audit::{self, Entry};
use crate::settings::Loaded;

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Only this event (sign_in, sign_in_refused, access_denied, sign_out, session_revoked,
    /// note_created, note_deleted)
    #[arg(long, value_name = "EVENT", value_parser = parse_event)]
    pub event: Option<String>,
    /// Only rows this recent: 90s, 15m, 1h, 7d, or a time like 2026-12-01 or
    /// 2026-12-01T09:30:00Z
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<i64>,
    /// How many rows at most (the newest)
    #[arg(short = 'n', long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub lines: i64,
    /// Keep printing new rows as they are written (until Ctrl-C)
    #[arg(short, long)]
    pub follow: bool,
    /// One JSON object a line
    #[arg(long)]
    pub json: bool,
}

fn parse_event(text: &str) -> Result<String, String> {
    if known_event(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not an audit event; one of {}",
            crate::db::audit::EVENTS.join(", ")
        ))
    }
}

/// A duration back from now (`90s`, `15m`, `1h`, `7d`) or an absolute UTC time, as unix
/// seconds.
pub fn parse_since(text: &str) -> Result<i64, String> {
    since_at(text.trim(), now())
}

fn since_at(text: &str, now: i64) -> Result<i64, String> {
    let bad = || {
        format!(
            "{text:?} is neither a duration like 90s, 15m, 1h, 7d nor a time like 2026-12-01 or 2026-12-01T09:30:00Z"
        )
    };
    if let Some(unit) = text.chars().last().filter(char::is_ascii_alphabetic)
        && let Ok(n) = text[..text.len() - 1].parse::<u32>()
    {
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        return Ok(now - i64::from(n) * secs);
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(text, &day) {
        return Ok(date.midnight().assume_utc().unix_timestamp());
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| bad())
}

pub async fn run(args: TailArgs, loaded: &Loaded) -> anyhow::Result<Outcome> {
    let pool = database(loaded).await?;
    let event = args.event.unwrap_or_default();
    let since = args.since.unwrap_or(0);
    let rows = audit::tail(&pool, &event, since, "", args.lines).await?;
    let mut last = rows.last().map(|r| r.id.clone()).unwrap_or_default();
    for row in &rows {
        print_row(row, args.json);
    }
    if !args.follow {
        pool.close().await;
        if rows.is_empty() {
            eprintln!("no audit rows matched");
            return Ok(Outcome::NothingMatched);
        }
        return Ok(Outcome::Done);
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                for row in audit::tail(&pool, &event, since, &last, 1000).await? {
                    print_row(&row, args.json);
                    last = row.id;
                }
            }
        }
    }
    pool.close().await;
    Ok(Outcome::Done)
}

fn print_row(row: &Entry, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(row) {
            println!("{line}");
        }
        return;
    }
    let at = time::OffsetDateTime::from_unix_timestamp(row.at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| row.at.to_string());
    let user = match (&row.user_name, &row.user_id) {
        (Some(n), Some(id)) => format!("{n} ({id})"),
        (Some(n), None) => n.clone(),
        (None, Some(id)) => id.clone(),
        (None, None) => "-".to_owned(),
    };
    println!(
        "{at}  {:<15}  {}  ip={}  req={}  {}",
        row.event,
        printable(&user),
        printable(row.client_ip.as_deref().unwrap_or("-")),
        printable(row.request_id.as_deref().unwrap_or("-")),
        printable(&row.detail)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(since_at("90s", 1000), Ok(910));
        assert_eq!(since_at("1h", 10_000), Ok(6400));
        assert_eq!(since_at("2d", 200_000), Ok(200_000 - 172_800));
        assert_eq!(since_at("2026-12-01", 0), Ok(1_796_083_200));
        assert_eq!(since_at("2026-12-01T00:00:10Z", 0), Ok(1_796_083_210));
        for bad in ["", "h", "1y", "-1h", "yesterday", "2026-13-01"] {
            assert!(since_at(bad, 0).is_err(), "{bad}");
        }
    }
}
