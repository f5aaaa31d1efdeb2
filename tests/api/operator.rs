//! The operator commands of the real binary (`sessions list|revoke`, `audit tail`) against
//! the server's own store: SQLite, and Redis at `ROLEGATE_TEST_REDIS` (skipped without it
//! unless `ROLEGATE_REQUIRE_SERVICES` is set).

use std::collections::HashMap;
use std::process::{Command, Output};

use crate::helpers::{TestApp, spawn_app_with};

/// Runs `rolegate ARGS` with the app's settings.
fn rolegate(env: &HashMap<String, String>, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(args)
        .envs(env)
        .env("APP_ENV", "Test")
        .output()
        .expect("rolegate runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A sub no other test (nor another run on a shared Redis) uses.
fn unique_sub(user: &str) -> String {
    format!(
        "sub-{user}-{}",
        oauth2::CsrfToken::new_random_len(6).secret()
    )
}

/// Signs in as `user` with the subject `sub`.
async fn sign_in_with_sub(app: &TestApp, user: &str, sub: &str) {
    let started = app.start_login("").await;
    let mut claims = app.idp.claims(user, &started.nonce);
    claims["sub"] = serde_json::json!(sub);
    let response = app.finish_with_token(&started, app.idp.sign(&claims)).await;
    assert_eq!(response.status(), 302, "sign-in as {user}");
}

async fn sqlite_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

async fn redis_app() -> Option<TestApp> {
    let Ok(url) = std::env::var("ROLEGATE_TEST_REDIS") else {
        assert!(
            std::env::var("ROLEGATE_REQUIRE_SERVICES").is_err(),
            "ROLEGATE_TEST_REDIS is required (dev/services)"
        );
        eprintln!("skipped: ROLEGATE_TEST_REDIS not set");
        return None;
    };
    Some(
        spawn_app_with(move |env| {
            env.insert("APP__SESSION__STORE".into(), "redis".into());
            env.insert("APP__SESSION__REDIS_URL".into(), url);
        })
        .await,
    )
}

/// The JSON lines of `sessions list --user SUB --json`.
fn listed(app: &TestApp, sub: &str) -> Vec<serde_json::Value> {
    let out = rolegate(&app.env, &["sessions", "list", "--user", sub, "--json"]);
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

async fn revoked_rows(app: &TestApp) -> Vec<(Option<String>, String)> {
    sqlx::query_as("SELECT user_name, detail FROM audit_log WHERE event = 'session_revoked'")
        .fetch_all(&app.pool().await)
        .await
        .unwrap()
}

/// list, --user, revoke --id and revoke --user on one store.
async fn list_and_revoke(app: TestApp) {
    let carol = unique_sub("carol");
    let bob = unique_sub("bob");
    sign_in_with_sub(&app, "carol", &carol).await;
    let bob_browser = app.same_app_new_browser();
    sign_in_with_sub(&bob_browser, "bob", &bob).await;
    let bob_second = app.same_app_new_browser();
    sign_in_with_sub(&bob_second, "bob", &bob).await;

    let all = rolegate(&app.env, &["sessions", "list"]);
    assert_eq!(all.status.code(), Some(0), "{}", stderr(&all));
    let table = stdout(&all);
    assert!(table.starts_with("HANDLE"), "{table}");
    assert!(table.contains(&carol) && table.contains(&bob), "{table}");
    let cookie = app.session_cookie().expect("a session cookie");
    assert!(!table.contains(&cookie), "the cookie secret is never shown");

    let carol_rows = listed(&app, &carol);
    assert_eq!(carol_rows.len(), 1, "--user filters: {carol_rows:?}");
    assert_eq!(carol_rows[0]["name"], "Carol Test");
    assert_eq!(listed(&app, &bob).len(), 2);
    let none = rolegate(&app.env, &["sessions", "list", "--user", "sub-nobody-x"]);
    assert_eq!(none.status.code(), Some(1), "nothing matched");

    // revoke --id with the handle the list showed.
    let handle = carol_rows[0]["handle"].as_str().unwrap().to_owned();
    assert_eq!(handle.len(), 12);
    assert!(app.is_signed_in().await);
    let done = rolegate(&app.env, &["sessions", "revoke", "--id", &handle]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(
        !app.is_signed_in().await,
        "the revoked cookie is anonymous at once"
    );
    assert!(listed(&app, &carol).is_empty());
    let again = rolegate(&app.env, &["sessions", "revoke", "--id", &handle]);
    assert_eq!(again.status.code(), Some(1), "already gone");

    // revoke --user ends both of bob's sessions.
    let done = rolegate(&app.env, &["sessions", "revoke", "--user", &bob]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(stdout(&done).contains("revoked 2 session(s)"));
    assert!(!bob_browser.is_signed_in().await && !bob_second.is_signed_in().await);

    let rows = revoked_rows(&app).await;
    assert!(
        rows.iter()
            .any(|(_, d)| *d == format!("session {handle}… of {carol}")),
        "the admin page's row for one session: {rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(who, d)| *d == format!("all 2 session(s) of {bob}")
                && who
                    .as_deref()
                    .is_some_and(|w| w.starts_with("rolegate CLI"))),
        "the admin page's row for a user, by the CLI: {rows:?}"
    );
}

#[tokio::test]
async fn sessions_list_and_revoke_on_sqlite() {
    list_and_revoke(sqlite_app().await).await;
}

#[tokio::test]
async fn sessions_list_and_revoke_on_redis() {
    if let Some(app) = redis_app().await {
        list_and_revoke(app).await;
    }
}

async fn tail(app: TestApp) {
    let sub = unique_sub("alice"); // its audit rows carry the stable id, not the sub
    sign_in_with_sub(&app, "alice", &sub).await;
    assert_eq!(app.sign_out().await.status(), 302);
    let pool = app.pool().await;
    // An old row that --since must leave out.
    sqlx::query("UPDATE audit_log SET at = at - 7200 WHERE event = 'sign_out'")
        .execute(&pool)
        .await
        .unwrap();

    let out = rolegate(&app.env, &["audit", "tail", "--event", "sign_in", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["event"] == "sign_in"),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r["user_name"] == "Alice Test"),
        "{rows:?}"
    );

    let all = stdout(&rolegate(&app.env, &["audit", "tail"]));
    assert!(all.contains("sign_in") && all.contains("sign_out"), "{all}");
    let recent = rolegate(&app.env, &["audit", "tail", "--since", "1h"]);
    assert_eq!(recent.status.code(), Some(0));
    assert!(stdout(&recent).contains("sign_in") && !stdout(&recent).contains("sign_out"));
    let none = rolegate(
        &app.env,
        &["audit", "tail", "--event", "sign_out", "--since", "1h"],
    );
    assert_eq!(none.status.code(), Some(1), "nothing matched");
}

#[tokio::test]
async fn audit_tail_filters_by_event_and_since_on_sqlite() {
    tail(sqlite_app().await).await;
}

#[tokio::test]
async fn audit_tail_filters_by_event_and_since_on_redis() {
    if let Some(app) = redis_app().await {
        tail(app).await;
    }
}

#[tokio::test]
async fn bad_usage_exits_2_with_a_message() {
    let env = HashMap::new();
    for args in [
        &["sessions", "revoke"][..],
        &["sessions", "revoke", "--id", "abcdef12", "--user", "x"],
        &["sessions", "revoke", "--id", "short"],
        &["sessions", "frobnicate"],
        &["audit", "tail", "--event", "nope"],
        &["audit", "tail", "--since", "yesterday"],
        &["no-such-command"],
    ] {
        let out = rolegate(&env, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error:") && err.contains("--help"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let help = rolegate(&env, &["sessions", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("revoke"));
}

/// `audit tail --follow` prints rows written after it started, and Ctrl-C ends it with 0.
#[tokio::test]
async fn audit_tail_follow_prints_new_rows_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let app = sqlite_app().await;
    sign_in_with_sub(&app, "alice", &unique_sub("alice")).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["audit", "tail", "--follow", "--json", "--event", "sign_in"])
        .envs(&app.env)
        .env("APP_ENV", "Test")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rolegate runs");
    let (lines_tx, lines) = std::sync::mpsc::channel::<serde_json::Value>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = lines_tx.send(serde_json::from_str(&line).expect("a JSON line"));
        }
    });
    let next = |what: &str| {
        lines
            .recv_timeout(std::time::Duration::from_secs(15))
            .unwrap_or_else(|_| panic!("no line for {what}"))
    };
    let first = next("the existing row");
    assert_eq!(first["user_name"], "Alice Test", "{first}");

    // A row written while it follows shows up within its one-second poll.
    let bob = app.same_app_new_browser();
    sign_in_with_sub(&bob, "bob", &unique_sub("bob")).await;
    let second = next("the new row");
    assert_eq!(second["event"], "sign_in");
    assert_eq!(second["user_name"], "Bob Test", "{second}");
    // A sign-out is another event, filtered out.
    assert_eq!(bob.sign_out().await.status(), 302);

    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends --follow cleanly");
    assert!(
        lines.try_iter().all(|row| row["event"] == "sign_in"),
        "only the followed event is printed"
    );
}
