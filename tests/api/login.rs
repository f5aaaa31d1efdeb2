//! The sign-in page, the happy path, and what a session looks like afterwards.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::fake_idp::CLIENT_ID;
use crate::helpers::{PUBLIC_URL, client_with, spawn_app, start_rolegate, started_from_page};

#[tokio::test]
async fn login_page_links_to_the_provider_with_state_nonce_and_pkce() {
    let app = spawn_app().await;
    let started = app.start_login("").await;
    let p = &started.params;
    assert_eq!(started.url.path(), "/authorize");
    assert!(started.url.as_str().starts_with(&app.idp.issuer));
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["client_id"], CLIENT_ID);
    assert_eq!(p["redirect_uri"], format!("{PUBLIC_URL}/getAToken"));
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["code_challenge"].len(), 43);
    let scopes: Vec<&str> = p["scope"].split(' ').collect();
    for s in ["openid", "profile", "email"] {
        assert!(scopes.contains(&s), "scope {s} in {scopes:?}");
    }
    assert!(started.state.len() >= 32 && started.nonce.len() >= 32);
    assert!(!p.contains_key("prompt"), "no prompt unless configured");

    let again = app.start_login("").await;
    assert_ne!(again.state, started.state);
    assert_ne!(again.nonce, started.nonce);
    assert_ne!(again.params["code_challenge"], p["code_challenge"]);
}

#[tokio::test]
async fn prompt_is_sent_when_configured() {
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("APP__AUTH__PROMPT".into(), "select_account".into());
    })
    .await;
    let started = app.start_login("").await;
    assert_eq!(started.params["prompt"], "select_account");
}

#[tokio::test]
async fn alice_signs_in_and_sees_her_page() {
    let app = spawn_app().await;
    let started = app.start_login("?next=/api/me").await;
    let claims = app.idp.claims("alice", &started.nonce);
    let response = app.finish_with_token(&started, app.idp.sign(&claims)).await;
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "/api/me");

    // The code was redeemed with the PKCE verifier and the secret, in a Basic header: the
    // fake provider is not Entra-shaped (tests/api/client_auth.rs covers each choice).
    let form = app.idp.last_token_form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "test-code");
    assert!(!form.contains_key("client_secret"));
    let basic = app.idp.state.lock().unwrap().last_token_auth_header.clone();
    assert!(basic.is_some_and(|h| h.starts_with("Basic ")));
    assert_eq!(form["redirect_uri"], format!("{PUBLIC_URL}/getAToken"));
    let digest = Sha256::digest(form["code_verifier"].as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    assert_eq!(challenge, started.params["code_challenge"]);

    let page = app.get("/").await;
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("id=\"user-name\">Alice Test<"), "{body}");
    assert!(body.contains("<li>DemoApp.Admin</li>"));
    assert!(body.contains("id=\"access-level\">Admin<"));
    assert!(body.contains("id=\"sign-out\""));

    let me: serde_json::Value = app.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["name"], "Alice Test");
    assert_eq!(me["roles"], serde_json::json!(["DemoApp.Admin"]));
    assert_eq!(me["oid"], "oid-alice");
    assert_eq!(me["tid"], crate::fake_idp::TENANT);
    assert_eq!(me["preferred_username"], "alice@rolegate.test");
    assert_eq!(me["sub"], "sub-alice-0001");
}

#[tokio::test]
async fn session_cookie_is_opaque_httponly_and_lax() {
    let app = spawn_app().await;
    let response = app.get("/login").await;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("rolegate_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain-http loopback public_url: {cookie}"
    );
    // Only an id: nothing of the state (state, nonce, verifier) is in the cookie.
    let body = response.text().await.unwrap();
    let started = started_from_page(&body);
    assert!(!cookie.contains(&started.state) && !cookie.contains(&started.nonce));
    assert!(cookie.len() < 200, "{cookie}");
}

#[tokio::test]
async fn https_public_url_gives_a_secure_host_prefixed_cookie() {
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert(
            "APP__SERVER__PUBLIC_URL".into(),
            "https://app.example.com".into(),
        );
    })
    .await;
    let response = app.get("/login").await;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-rolegate="))
        .expect("__Host- cookie");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let started = started_from_page(&response.text().await.unwrap());
    assert_eq!(
        started.params["redirect_uri"],
        "https://app.example.com/getAToken"
    );
}

#[tokio::test]
async fn session_id_is_rotated_at_sign_in() {
    let app = spawn_app().await;
    let started = app.start_login("").await;
    let before = app.session_cookie().expect("pre-sign-in session");
    let claims = app.idp.claims("bob", &started.nonce);
    app.finish_with_token(&started, app.idp.sign(&claims)).await;
    let after = app.session_cookie().expect("session after sign-in");
    assert_ne!(before, after, "session id must change at sign-in");
    assert!(app.is_signed_in().await);

    // A planted (fixated) pre-sign-in id is worthless afterwards.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(
        &format!("rolegate_session={before}"),
        &app.address.parse().unwrap(),
    );
    let attacker = client_with(jar);
    let response = attacker.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn next_brings_the_user_back_and_off_site_targets_become_root() {
    let app = spawn_app().await;
    for (next, expected) in [
        ("%2Fadmin%3Fx%3D1", "/admin?x=1"),
        ("%2F%2Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%2F%252F%252Fevil.example", "/"),
        ("javascript%3Aalert(1)", "/"),
        ("%2Fok%0d%0aSet-Cookie%3A%20x", "/"),
    ] {
        let started = app.start_login(&format!("?next={next}")).await;
        let claims = app.idp.claims("alice", &started.nonce);
        let response = app.finish_with_token(&started, app.idp.sign(&claims)).await;
        assert_eq!(response.status(), 302);
        assert_eq!(response.headers()["location"], expected, "next={next}");
    }
}

/// Several tabs may start a sign-in; whichever finishes first signs in. The others' states
/// end with that sign-in (see `hardening_auth::signing_in_drops_the_other_pending_sign_ins`).
#[tokio::test]
async fn two_tabs_can_start_a_sign_in_and_either_finishes_it() {
    let app = spawn_app().await;
    let tab1 = app.start_login("?next=/one").await;
    let _tab2 = app.start_login("?next=/two").await;
    let c1 = app.idp.claims("carol", &tab1.nonce);
    let r1 = app.finish_with_token(&tab1, app.idp.sign(&c1)).await;
    assert_eq!(r1.status(), 302, "{}", r1.text().await.unwrap());
    assert_eq!(r1.headers()["location"], "/one");
    assert!(app.is_signed_in().await);
}

#[tokio::test]
async fn spoofed_host_headers_do_not_change_redirect_urls() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/login"))
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .header("Forwarded", "host=evil.example;proto=https")
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    let started = started_from_page(&body);
    assert_eq!(
        started.params["redirect_uri"],
        format!("{PUBLIC_URL}/getAToken")
    );
    assert!(!body.contains("evil.example"));
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let app = spawn_app().await;
    app.sign_in("carol").await;
    // A second server on the same database and key: nothing lived only in memory.
    let second = start_rolegate(&app.env).await;
    let response = app
        .client
        .get(format!("{second}/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let me: serde_json::Value = response.json().await.unwrap();
    assert_eq!(me["name"], "Carol Test");
}

#[tokio::test]
async fn idle_sessions_end() {
    let app = spawn_app().await;
    app.sign_in("bob").await;
    // Pretend the last request was 9 hours ago (idle timeout 8 h).
    let old = crate::fake_idp::now() - 9 * 3600;
    edit_signed_in_state(&app, |map| {
        map.insert("rg.seen".into(), old.to_string());
    })
    .await;
    // A fresh process on the edited database (the running one caches what it wrote itself).
    let fresh = restarted(&app).await;
    let response = fresh.get("/").await;
    assert_eq!(response.status(), 302);
    assert!(!fresh.is_signed_in().await);
}

#[tokio::test]
async fn sessions_end_after_their_absolute_lifetime() {
    let app = spawn_app().await;
    app.sign_in("bob").await;
    edit_signed_in_state(&app, |map| {
        let mut user: serde_json::Value = serde_json::from_str(&map["rg.user"]).unwrap();
        user["signed_in_at"] = serde_json::json!(crate::fake_idp::now() - 25 * 3600);
        map.insert("rg.user".into(), user.to_string());
    })
    .await;
    assert!(!restarted(&app).await.is_signed_in().await);
}

#[tokio::test]
async fn signed_in_requests_do_not_call_the_provider_or_write_the_session() {
    let app = spawn_app().await;
    app.sign_in("alice").await;
    let discovery = app
        .idp
        .discovery_hits
        .load(std::sync::atomic::Ordering::SeqCst);
    let jwks = app.idp.jwks_hits.load(std::sync::atomic::Ordering::SeqCst);
    let pool = app.pool().await;
    let (updated_before,): (i64,) =
        sqlx::query_as("SELECT updated_at FROM sessions WHERE user_sub IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    for _ in 0..20 {
        assert_eq!(app.get("/").await.status(), 200);
    }
    let response = app.get("/").await;
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no cookie rewrite on reads"
    );
    assert_eq!(
        app.idp
            .discovery_hits
            .load(std::sync::atomic::Ordering::SeqCst),
        discovery
    );
    assert_eq!(
        app.idp.jwks_hits.load(std::sync::atomic::Ordering::SeqCst),
        jwks
    );
    assert_eq!(
        app.idp.token_hits.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let (updated_after,): (i64,) =
        sqlx::query_as("SELECT updated_at FROM sessions WHERE user_sub IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(updated_before, updated_after);
}

/// Rewrites the one signed-in session's stored state (portable across SQLite and PostgreSQL).
async fn edit_signed_in_state(
    app: &crate::helpers::TestApp,
    edit: impl FnOnce(&mut std::collections::HashMap<String, String>),
) {
    let pool = app.pool().await;
    let (id, state): (String, String) =
        sqlx::query_as("SELECT id, state FROM sessions WHERE user_sub IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut map: std::collections::HashMap<String, String> = serde_json::from_str(&state).unwrap();
    edit(&mut map);
    sqlx::query("UPDATE sessions SET state = $1 WHERE id = $2")
        .bind(serde_json::to_string(&map).unwrap())
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
}

/// The same browser talking to a new rolegate process on the same database and key.
async fn restarted(app: &crate::helpers::TestApp) -> crate::helpers::TestApp {
    let mut fresh = app.same_app_new_browser();
    fresh.client = app.client.clone();
    fresh.jar = app.jar.clone();
    fresh.address = start_rolegate(&app.env).await;
    fresh
}
