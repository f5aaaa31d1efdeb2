//! Graceful shutdown of the real binary: SIGTERM during a slow sign-in callback.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fake_idp::{FakeIdp, TokenReply};
use crate::helpers::{Started, base_env, client_with, started_from_page, temp_dir};

/// The binary started with `env` (APP_ENV=Test) and the port it logged.
pub fn start_binary(env: &std::collections::HashMap<String, String>) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .envs(env)
        .env("APP_ENV", "Test")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("rolegate starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("[rolegate] {line}");
            if let Some(port) = line.split("port=").nth(1).and_then(|p| {
                p.split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
            }) && let Some(tx) = tx.take()
            {
                let _ = tx.send(port);
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("rolegate logged its port");
    (child, port)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test]
async fn sigterm_lets_the_slow_sign_in_finish_refuses_new_connections_and_exits_0() {
    let idp = FakeIdp::start().await;
    let db_dir = temp_dir();
    let mut env = base_env(&idp, &db_dir);
    env.insert("APP__AUTH__HTTP_TIMEOUT_SECS".into(), "10".into());
    env.insert("APP__SERVER__SHUTDOWN_TIMEOUT_SECS".into(), "8".into());
    let (mut child, port) = start_binary(&env);
    let base = format!("http://127.0.0.1:{port}");
    let client = client_with(std::sync::Arc::new(reqwest::cookie::Jar::default()));

    let page = client.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let started: Started = started_from_page(&page.text().await.unwrap());
    let claims = idp.claims("carol", &started.nonce);
    idp.reply(TokenReply::Delayed(
        Duration::from_secs(2),
        idp.sign(&claims),
    ));
    let callback = {
        let client = client.clone();
        let url = format!("{base}/getAToken?code=c&state={}", started.state);
        tokio::spawn(async move { client.get(url).send().await })
    };
    // The callback now waits on the provider's token endpoint.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let sent_at = Instant::now();
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        fresh.is_err(),
        "a new connection after SIGTERM is refused: {fresh:?}"
    );

    let response = callback
        .await
        .unwrap()
        .expect("the in-flight callback got its answer");
    assert_eq!(response.status(), 302, "the sign-in completed normally");
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(8)))
        .await
        .unwrap()
        .expect("exited within the shutdown timeout");
    assert!(status.success(), "exit status {status:?}");
    assert!(sent_at.elapsed() < Duration::from_secs(8));

    // The sign-in's audit row, written after SIGTERM, is in the database.
    let pool = rolegate::db::connect(&rolegate::settings::DatabaseSettings {
        url: env["APP__DATABASE__URL"].clone(),
        max_connections: 1,
        startup_wait_secs: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT user_id FROM audit_log WHERE event = 'sign_in'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
}
