//! Issue 12 items 1 and 5: tokens kept sealed in the session row, refreshed when roles are
//! due; roles re-read from the refreshed ID token; refusals and outages end the session or not.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::fake_idp::RefreshMode;
use crate::helpers::{TestApp, reason_of, spawn_app_with, start_rolegate};

/// Roles are re-checked on every request (max age 0).
async fn recheck_every_request(grace_minutes: u64) -> TestApp {
    spawn_app_with(|env| {
        env.insert("APP__AUTH__ROLES_MAX_AGE_MINUTES".into(), "0".into());
        env.insert(
            "APP__AUTH__ROLES_GRACE_MINUTES".into(),
            grace_minutes.to_string(),
        );
    })
    .await
}

async fn me(app: &TestApp) -> (u16, Value) {
    let response = app.get("/api/me").await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn session_rows(app: &TestApp) -> Vec<String> {
    let pool = app.pool().await;
    sqlx::query_scalar("SELECT state FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn fresh_roles_cost_no_provider_call() {
    let app = spawn_app_with(|_| {}).await;
    app.sign_in("alice").await;
    for _ in 0..3 {
        assert_eq!(me(&app).await.0, 200);
    }
    assert_eq!(app.idp.refresh_count(), 0, "no refresh before the max age");
}

#[tokio::test]
async fn a_removed_role_stops_working_on_the_request_that_rechecks() {
    let app = recheck_every_request(15).await;
    app.sign_in("alice").await;
    assert_eq!(app.get("/admin").await.status(), 200);
    app.idp.refresh_roles(&["DemoApp.Read"]);
    assert_eq!(app.get("/admin").await.status(), 403, "Admin removed");
    let (status, body) = me(&app).await;
    assert_eq!(status, 200);
    assert_eq!(body["roles"], serde_json::json!(["DemoApp.Read"]));
    let pool = app.pool().await;
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE event = 'roles_changed'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        details.len(),
        1,
        "one audit row for one change: {details:?}"
    );
    assert!(details[0].contains("before=DemoApp.Admin after=DemoApp.Read"));
}

#[tokio::test]
async fn the_rotated_refresh_token_is_stored_and_used_next() {
    let app = recheck_every_request(15).await;
    app.sign_in("bob").await;
    assert_eq!(me(&app).await.0, 200);
    assert_eq!(me(&app).await.0, 200);
    let forms = app.idp.state.lock().unwrap().refresh.forms.clone();
    assert_eq!(forms.len(), 2);
    assert_eq!(forms[0]["refresh_token"], "refresh-token-secret-0001");
    assert_eq!(
        forms[1]["refresh_token"], "refresh-token-secret-0002",
        "the second refresh sends the token the first one rotated in"
    );
    assert!(forms[0]["scope"].contains("offline_access"));
}

#[tokio::test]
async fn twenty_parallel_requests_cause_one_refresh() {
    let app = recheck_every_request(15).await;
    app.sign_in("alice").await;
    app.idp.state.lock().unwrap().refresh.delay = Duration::from_millis(600);
    let requests = (0..20).map(|_| {
        let (client, url) = (app.client.clone(), app.url("/api/me"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
    });
    for status in futures_join(requests).await {
        assert_eq!(status, 200);
    }
    assert_eq!(app.idp.refresh_count(), 1, "one refresh for 20 requests");
    assert!(app.is_signed_in().await);
}

async fn futures_join(handles: impl Iterator<Item = tokio::task::JoinHandle<u16>>) -> Vec<u16> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn invalid_grant_ends_the_session_with_a_page_saying_why() {
    let app = recheck_every_request(15).await;
    app.sign_in("carol").await;
    app.idp.refresh_mode(RefreshMode::InvalidGrant);
    let page = app.get("/notes").await;
    assert_eq!(page.status(), 401);
    let body = page.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("session_revoked"));
    assert!(!body.contains("refresh-token-secret"));
    assert!(!app.is_signed_in().await, "the session is gone");
    // Not a loop: the next page is the ordinary way to sign in.
    assert_eq!(app.get("/notes").await.status(), 302);
}

#[tokio::test]
async fn an_unreachable_provider_keeps_roles_within_the_grace_period() {
    let app = recheck_every_request(15).await;
    app.sign_in("alice").await;
    app.idp.refresh_mode(RefreshMode::Down);
    let (status, body) = me(&app).await;
    assert_eq!(status, 200);
    assert_eq!(body["roles"], serde_json::json!(["DemoApp.Admin"]));
    assert_eq!(app.get("/admin").await.status(), 200);
    assert_eq!(
        app.idp.refresh_count(),
        1,
        "retried later, not on every request"
    );
    // The provider is back: the next due re-check works (forced by a zero max age and retry).
    app.idp.refresh_mode(RefreshMode::Rotate);
    assert!(app.is_signed_in().await);
}

#[tokio::test]
async fn an_unreachable_provider_past_the_grace_period_ends_the_session() {
    let app = recheck_every_request(0).await;
    app.sign_in("alice").await;
    app.idp.refresh_mode(RefreshMode::Down);
    let (status, body) = me(&app).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "role_check_unavailable");
    app.idp.refresh_mode(RefreshMode::Rotate);
    assert!(!app.is_signed_in().await);
}

#[tokio::test]
async fn tokens_are_unreadable_in_the_raw_session_row() {
    let app = recheck_every_request(15).await;
    app.sign_in("alice").await;
    assert_eq!(me(&app).await.0, 200, "a refresh stores new tokens");
    let id_token = app.idp.last_id_token();
    let rows = session_rows(&app).await;
    assert_eq!(rows.len(), 1);
    for secret in [
        "refresh-token-secret",
        "access-token-secret",
        "opaque-access-token",
        &id_token,
        id_token.split('.').nth(1).unwrap(),
    ] {
        assert!(!rows[0].contains(secret), "{secret} in the session row");
    }
    assert!(rows[0].contains("rg.tok"), "{}", rows[0]);
}

fn key_b64(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn key_id(byte: u8) -> String {
    rolegate_auth::TokenKey::from_bytes([byte; 32])
        .id()
        .to_owned()
}

#[tokio::test]
async fn rotated_token_keys_read_old_sessions_and_seal_with_the_new_key() {
    let app = spawn_app_with(|env| {
        env.insert("APP__SESSION__TOKEN_KEY".into(), key_b64(1));
        env.insert("APP__AUTH__ROLES_MAX_AGE_MINUTES".into(), "0".into());
    })
    .await;
    app.sign_in("alice").await;
    let before = session_rows(&app).await.join("");
    assert!(before.contains(&format!("v1.{}.", key_id(1))));

    // A second instance on the same database: new key, the old one kept for reading.
    let mut env = app.env.clone();
    env.insert("APP__SESSION__TOKEN_KEY".into(), key_b64(2));
    env.insert("APP__SESSION__TOKEN_KEYS_PREVIOUS".into(), key_b64(1));
    env.insert("APP__AUTH__ROLES_MAX_AGE_MINUTES".into(), "0".into());
    let address = start_rolegate(&env).await;
    let response = app.via(&address).get("/api/me").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.idp.refresh_count(),
        1,
        "the old key opened the refresh token"
    );
    let after = session_rows(&app).await.join("");
    assert!(after.contains(&format!("v1.{}.", key_id(2))), "{after}");
    assert!(!after.contains(&key_id(1)));
}

#[tokio::test]
async fn a_key_dropped_from_the_rotation_leaves_no_tokens_and_no_panic() {
    let app = spawn_app_with(|env| {
        env.insert("APP__SESSION__TOKEN_KEY".into(), key_b64(3));
        env.insert("APP__AUTH__ROLES_MAX_AGE_MINUTES".into(), "0".into());
    })
    .await;
    app.sign_in("alice").await;
    let mut env = app.env.clone();
    env.insert("APP__SESSION__TOKEN_KEY".into(), key_b64(4));
    env.insert("APP__AUTH__ROLES_MAX_AGE_MINUTES".into(), "0".into());
    let address = start_rolegate(&env).await;
    // An API request cannot be sent through a silent sign-in: roles are kept within grace.
    let response = app.via(&address).get("/api/me").await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.idp.refresh_count(), 0, "no refresh token could be read");
    // A page request goes through the silent re-check instead.
    let page = app.via(&address).get("/notes").await;
    assert_eq!(page.status(), 302);
    let location = page.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("prompt=none"), "{location}");
}

/// No refresh token: a page request past the max age goes through `prompt=none`.
async fn silent_app() -> TestApp {
    let app = spawn_app_with(|env| {
        env.insert("APP__AUTH__ROLES_MAX_AGE_MINUTES".into(), "0".into());
    })
    .await;
    app.idp.state.lock().unwrap().refresh.issue_refresh_tokens = false;
    app.sign_in("alice").await;
    app
}

fn silent_request(response: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    location.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn without_a_refresh_token_the_recheck_is_a_silent_request_back_to_the_page() {
    let app = silent_app().await;
    let q = silent_request(&app.get("/notes?page=2").await);
    assert_eq!(q["prompt"], "none");
    assert_eq!(app.idp.refresh_count(), 0);
    // The provider answers silently with an ID token holding fewer roles.
    let mut claims = app.idp.claims("alice", &q["nonce"]);
    claims["roles"] = serde_json::json!(["DemoApp.Read"]);
    app.idp
        .reply(crate::fake_idp::TokenReply::IdToken(app.idp.sign(&claims)));
    let back = app
        .callback(&format!("code=silent-code&state={}", q["state"]))
        .await;
    assert_eq!(back.status(), 302);
    assert_eq!(
        back.headers()["location"],
        "/notes?page=2",
        "back to the same page"
    );
    assert_eq!(app.get("/admin").await.status(), 403, "Admin is gone");
    assert_eq!(app.get("/notes").await.status(), 200, "no loop right after");
    let pool = app.pool().await;
    let changed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'roles_changed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn login_required_from_the_silent_request_ends_the_session_with_a_page() {
    let app = silent_app().await;
    let q = silent_request(&app.get("/notes").await);
    let page = app
        .callback(&format!("error=login_required&state={}", q["state"]))
        .await;
    assert_eq!(page.status(), 401);
    let body = page.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("sign_in_required"));
    assert!(!app.is_signed_in().await);
}
