//! `rolegate check-config --online` against a real (in-process) provider, and the same
//! mismatches at run time: a configuration page and a failing readiness probe, not "unreachable".

use std::collections::HashMap;

use crate::fake_idp::FakeIdp;
use crate::helpers::{base_env, reason_of, spawn_app_custom, spawn_app_with, temp_dir};

struct Checked {
    ok: bool,
    stdout: String,
}

/// Runs `check-config --online` against `idp` with `extra` settings on top of the test base.
/// Off the runtime's thread: the fake provider answers from this test's runtime meanwhile.
async fn check_online(idp: &FakeIdp, extra: &[(&str, String)]) -> Checked {
    let mut env: HashMap<String, String> = base_env(idp, &temp_dir());
    for (k, v) in extra {
        env.insert((*k).to_owned(), v.clone());
    }
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rolegate"))
            .args(["check-config", "--online"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("APP_ENV", "Test")
            .envs(&env)
            .output()
    })
    .await
    .expect("join")
    .expect("run rolegate");
    Checked {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

fn problems(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- identity provider: "))
        .collect()
}

#[tokio::test]
async fn online_check_reports_what_the_provider_offers_against_the_settings() {
    let idp = FakeIdp::start().await;
    let checked = check_online(&idp, &[]).await;
    let out = &checked.stdout;
    assert!(checked.ok, "{out}");
    for line in [
        format!("discovery: {}/.well-known/openid-configuration", idp.issuer),
        format!("issuer: {} (the authority itself)", idp.issuer),
        // Not Entra-shaped, both listed: auto keeps the OIDC default.
        "client authentication: auto picks client_secret_basic; the provider lists \
         client_secret_post, client_secret_basic"
            .to_owned(),
        "signing: the provider offers RS256; rolegate accepts RS256".to_owned(),
        format!("sign-out: end_session_endpoint {}/logout", idp.issuer),
        format!("keys: 1 usable of 1 in {}/jwks", idp.issuer),
    ] {
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains("no problems found"), "{out}");
    assert!(!out.contains(crate::fake_idp::CLIENT_SECRET), "no secret");
}

#[tokio::test]
async fn an_issuer_that_differs_from_the_authority_is_a_problem_naming_the_value_to_set() {
    let idp = FakeIdp::start().await;
    idp.override_issuer("https://sts.example/tenant/v2.0");
    let checked = check_online(&idp, &[]).await;
    assert!(!checked.ok, "{}", checked.stdout);
    let found = problems(&checked.stdout);
    assert_eq!(found.len(), 1, "{}", checked.stdout);
    assert!(found[0].starts_with("issuer: "), "{found:?}");
    assert!(
        found[0].contains("auth.issuer = \"https://sts.example/tenant/v2.0\""),
        "{found:?}"
    );
    // The other findings are still reported.
    assert!(
        checked.stdout.contains("keys: 1 usable of 1"),
        "{}",
        checked.stdout
    );
}

#[tokio::test]
async fn an_authority_where_no_discovery_lives_is_a_settings_problem_not_an_outage() {
    let idp = FakeIdp::start().await;
    let authority = format!("{}/api", idp.issuer);
    let checked = check_online(&idp, &[("APP__AUTH__AUTHORITY", authority.clone())]).await;
    assert!(!checked.ok);
    let found = problems(&checked.stdout);
    assert_eq!(found.len(), 1, "{}", checked.stdout);
    assert!(found[0].contains("answered 404"), "{found:?}");
    assert!(found[0].contains("set auth.authority"), "{found:?}");
    assert!(!found[0].contains("unreachable"), "{found:?}");
}

#[tokio::test]
async fn an_unreachable_provider_is_one_problem_saying_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let idp = FakeIdp::start().await;
    let checked = check_online(
        &idp,
        &[("APP__AUTH__AUTHORITY", format!("http://127.0.0.1:{port}"))],
    )
    .await;
    assert!(!checked.ok);
    let found = problems(&checked.stdout);
    assert_eq!(found.len(), 1, "{}", checked.stdout);
    assert!(found[0].contains("unreachable"), "{found:?}");
}

#[tokio::test]
async fn methods_algorithms_sign_out_and_keys_that_do_not_fit_are_each_reported() {
    let idp = FakeIdp::start().await;
    idp.state.lock().unwrap().auth_methods = Some(vec!["client_secret_post".into()]);
    idp.state.lock().unwrap().end_session = false;
    idp.advertise_algs(Some(&["HS256"]));
    idp.publish(vec![
        crate::fake_idp::SigningKey::oct("k", b"0123456789abcdef").jwk,
    ]);
    let checked = check_online(
        &idp,
        &[(
            "APP__AUTH__CLIENT_AUTH_METHOD",
            "client_secret_basic".to_owned(),
        )],
    )
    .await;
    let out = &checked.stdout;
    assert!(!checked.ok, "{out}");
    let found = problems(out);
    assert_eq!(found.len(), 2, "{out}");
    assert!(
        found[0].starts_with("signing: the provider signs ID tokens with HS256"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("keys: ") && found[1].contains("holds 1 key(s), none usable"),
        "{found:?}"
    );
    let warnings: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("warning: "))
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains(
            "the provider does not list client_secret_basic; if the token call is refused"
        ) && w.contains("auth.client_auth_method")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("no end_session_endpoint")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn settings_problems_skip_the_online_check_and_are_listed() {
    let idp = FakeIdp::start().await;
    let checked = check_online(&idp, &[("APP__AUTH__CLIENT_ID", String::new())]).await;
    assert!(!checked.ok);
    assert!(
        checked.stdout.contains("online check skipped"),
        "{}",
        checked.stdout
    );
    assert!(
        checked.stdout.contains("auth.client_id"),
        "{}",
        checked.stdout
    );
}

async fn readyz(app: &crate::helpers::TestApp) -> (u16, serde_json::Value) {
    let response = app.get("/readyz").await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("readyz is JSON"))
}

#[tokio::test]
async fn at_run_time_an_authority_without_discovery_is_a_configuration_page_and_not_ready() {
    let app = spawn_app_with(|env| {
        let root = env["APP__AUTH__AUTHORITY"].clone();
        env.insert("APP__AUTH__AUTHORITY".into(), format!("{root}/api"));
    })
    .await;
    let page = app.get("/login").await;
    assert_eq!(page.status(), 503);
    let body = page.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("provider_mismatch"));
    assert!(body.contains("auth.authority"), "{body}");
    assert!(!body.contains("unreachable"), "{body}");

    let (status, ready) = readyz(&app).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(
        ready["identity_provider"]["status"], "misconfigured",
        "{ready}"
    );
    assert_eq!(
        ready["identity_provider"]["reason"], "provider_mismatch",
        "{ready}"
    );
}

#[tokio::test]
async fn at_run_time_a_wrong_issuer_makes_readiness_fail_as_misconfigured() {
    let app = spawn_app_custom(
        |idp| idp.override_issuer("https://sts.example/tenant/v2.0"),
        |_| {},
    )
    .await;
    let mut last = (0, serde_json::Value::Null);
    // The start-up discovery runs in the background: wait for its verdict.
    for _ in 0..50 {
        last = readyz(&app).await;
        if last.1["identity_provider"]["status"] == "misconfigured" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 503, "{}", last.1);
    assert_eq!(last.1["identity_provider"]["reason"], "provider_mismatch");
    assert!(
        last.1["not_ready"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "identity_provider")
    );
}

#[tokio::test]
async fn readiness_recovers_without_a_sign_in_once_the_provider_answers() {
    // Discovery fails at start-up (nothing listens); a readiness probe alone retries it.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let app = spawn_app_with(|env| {
        env.insert(
            "APP__AUTH__AUTHORITY".into(),
            format!("http://127.0.0.1:{port}"),
        );
    })
    .await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503);
    assert_eq!(body["identity_provider"]["status"], "unavailable", "{body}");
    let _idp = FakeIdp::start_on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap()).await;
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..50 {
        last = readyz(&app).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 200, "{}", last.1);
}
