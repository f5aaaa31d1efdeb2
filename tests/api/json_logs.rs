//! `log.format = json` on the real binary: every line a JSON object with the request fields,
//! and no cookie, client secret, code or token in any of them.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::cookie::CookieStore;

use crate::fake_idp::{CLIENT_SECRET, FakeIdp, TokenReply};
use crate::helpers::{base_env, client_with, load_settings, started_from_page, temp_dir};

/// Collects the lines of `stream` into `lines`.
fn collect(stream: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            eprintln!("[rolegate] {line}");
            lines.lock().unwrap().push(line);
        }
    });
}

fn parsed(lines: &Mutex<Vec<String>>) -> Vec<serde_json::Value> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_request_fields_and_no_secrets() {
    let idp = FakeIdp::start().await;
    let db_dir = temp_dir();
    let mut env = base_env(&idp, &db_dir);
    env.insert("APP__LOG__FORMAT".into(), "json".into());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .envs(&env)
        .env("APP_ENV", "Test")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rolegate starts");
    let lines = Arc::new(Mutex::new(Vec::new()));
    collect(child.stdout.take().unwrap(), lines.clone());
    collect(child.stderr.take().unwrap(), lines.clone());
    let mut port = None;
    for _ in 0..200 {
        port = parsed(&lines)
            .iter()
            .find(|l| l["message"] == "rolegate listening")
            .and_then(|l| l["port"].as_u64());
        if port.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base = format!(
        "http://127.0.0.1:{}",
        port.expect("a listening line with the port")
    );

    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = client_with(jar.clone());
    let page = client.get(format!("{base}/login")).send().await.unwrap();
    let started = started_from_page(&page.text().await.unwrap());
    let id_token = idp.sign(&idp.claims("alice", &started.nonce));
    idp.reply(TokenReply::IdToken(id_token.clone()));
    let code = "code-value-that-must-not-be-logged";
    let callback = client
        .get(format!(
            "{base}/getAToken?code={code}&state={}",
            started.state
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 302);
    assert_eq!(
        client
            .get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let cookie = jar
        .cookies(&base.parse().unwrap())
        .and_then(|h| h.to_str().ok().map(str::to_owned))
        .and_then(|h| {
            h.split("; ")
                .find_map(|c| c.strip_prefix("rolegate_session=").map(str::to_owned))
        })
        .expect("a session cookie");

    // Let the last request line be written, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let all = parsed(&lines);
    assert!(all.len() > 5, "{all:?}");
    for line in &all {
        for field in ["time", "level", "message"] {
            assert!(line.get(field).is_some(), "{field} missing: {line}");
        }
    }
    let request = |route: &str| {
        all.iter()
            .find(|l| l["message"] == "request" && l["route"] == route)
            .unwrap_or_else(|| panic!("a request line for {route}: {all:?}"))
    };
    let home = request("/");
    assert_eq!(home["status"], 200, "{home}");
    assert_eq!(home["user_id"], "sub-alice-0001", "{home}");
    assert_eq!(home["client_ip"], "127.0.0.1", "{home}");
    assert!(home["latency_us"].is_u64(), "{home}");
    assert_eq!(home["level"], "INFO");
    let request_id = home["request_id"].as_str().expect("request_id");
    assert!(!request_id.is_empty());
    let callback_line = request("/getAToken");
    assert_eq!(callback_line["status"], 302, "{callback_line}");
    assert_eq!(
        callback_line["path"], "/getAToken",
        "no query string: {callback_line}"
    );
    // The sign-in's own lines carry the callback's request id.
    let callback_id = &callback_line["request_id"];
    assert!(
        all.iter()
            .filter(|l| &l["request_id"] == callback_id)
            .count()
            > 1,
        "{all:?}"
    );

    let text = lines.lock().unwrap().join("\n");
    for (what, secret) in [
        ("session cookie", cookie.as_str()),
        ("client secret", CLIENT_SECRET),
        ("id_token", id_token.as_str()),
        ("authorization code", code),
    ] {
        assert!(!text.contains(secret), "the {what} is in the log");
    }
    // No line carries a JWT-looking value either (header.payload.signature).
    assert!(!text.contains("eyJ"), "a JWT-like value in the log");
}

#[test]
fn an_unknown_log_format_is_a_settings_problem_naming_the_choices() {
    let mut env = std::collections::HashMap::new();
    env.insert("APP__LOG__FORMAT".to_owned(), "yaml".to_owned());
    let problems = load_settings("Test", &env).problems;
    let problem = problems
        .iter()
        .find(|p| p.key == "log.format")
        .expect("log.format named");
    assert!(problem.message.contains("\"text\""), "{problem}");
    assert!(problem.message.contains("\"json\""), "{problem}");
    assert!(
        problem.to_string().contains("APP__LOG__FORMAT"),
        "{problem}"
    );
    env.insert("APP__LOG__FORMAT".to_owned(), "JSON".to_owned());
    assert!(
        !load_settings("Test", &env)
            .problems
            .iter()
            .any(|p| p.key == "log.format")
    );
}
