//! Sign-out ends the server-side session first, then goes to the provider.

use crate::fake_idp::CLIENT_ID;
use crate::helpers::{PUBLIC_URL, spawn_app, spawn_app_custom};

#[tokio::test]
async fn logout_deletes_the_session_and_redirects_to_end_session() {
    let app = spawn_app().await;
    app.sign_in("alice").await;
    let cookie = app.session_cookie().unwrap();
    let response = app.sign_out().await;
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/logout");
    assert!(location.as_str().starts_with(&app.idp.issuer));
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["post_logout_redirect_uri"], format!("{PUBLIC_URL}/login"));
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["id_token_hint"].split('.').count(), 3);

    assert!(!app.is_signed_in().await);
    assert_eq!(app.get("/").await.status(), 302);
    let pool = app.pool().await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_sub IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the row is gone, not just the cookie");

    // The old cookie, replayed, is worthless.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(
        &format!("rolegate_session={cookie}"),
        &app.address.parse().unwrap(),
    );
    let replay = crate::helpers::client_with(jar)
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);

    // Back on the sign-in page, the user is told they signed out, once.
    let page = app.get("/login").await.text().await.unwrap();
    assert!(page.contains("id=\"signed-out\""));
    let again = app.get("/login").await.text().await.unwrap();
    assert!(!again.contains("id=\"signed-out\""));
}

#[tokio::test]
async fn logout_without_end_session_lands_on_login() {
    let app = spawn_app_custom(|idp| idp.state.lock().unwrap().end_session = false, |_| {}).await;
    app.sign_in("bob").await;
    let response = app.sign_out().await;
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "/login");
    assert!(!app.is_signed_in().await);
    let page = app.get("/login").await.text().await.unwrap();
    assert!(page.contains("id=\"signed-out\""));
}

/// Issue 14 item 2: the end-session redirect carries `state`, checked on the way back.
fn logout_query(response: &reqwest::Response) -> std::collections::HashMap<String, String> {
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    location.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn logout_sends_state_and_checks_it_on_return() {
    let app = spawn_app().await;
    app.sign_in("alice").await;
    let response = app.sign_out().await;
    let q = logout_query(&response);
    let state = q["state"].clone();
    assert!(state.len() >= 20, "a random state: {state}");
    assert_eq!(q["client_id"], CLIENT_ID);

    // The provider comes back with the same state: the signed-out notice.
    let page = app.get(&format!("/login?state={state}")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("id=\"signed-out\""));

    // A forged state: still signed out, the plain sign-in page, no redirect anywhere.
    app.sign_in("alice").await;
    let again = logout_query(&app.sign_out().await);
    assert_ne!(again["state"], state, "fresh per sign-out");
    let forged = app.get("/login?state=forged-state").await;
    assert_eq!(forged.status(), 200);
    assert!(!forged.text().await.unwrap().contains("id=\"signed-out\""));
    assert!(!app.is_signed_in().await);
}

#[tokio::test]
async fn logout_without_a_hint_still_round_trips() {
    let app = spawn_app().await;
    // dave is refused at sign-in (no role): no ID token to hint with.
    let started = app.start_login("").await;
    let claims = app.idp.claims("dave", &started.nonce);
    let refused = app.finish_with_token(&started, app.idp.sign(&claims)).await;
    assert_eq!(refused.status(), 403);
    let response = app.sign_out().await;
    assert_eq!(response.status(), 302);
    let q = logout_query(&response);
    assert!(!q.contains_key("id_token_hint") && !q.contains_key("logout_hint"));
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["post_logout_redirect_uri"], format!("{PUBLIC_URL}/login"));
    let page = app.get(&format!("/login?state={}", q["state"])).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("id=\"signed-out\""));
}

/// Issue 12 item 7: a GET (a link or an image on another site) never signs out, and a POST
/// needs this session's CSRF token.
#[tokio::test]
async fn get_logout_shows_a_form_and_signs_nobody_out() {
    let app = spawn_app().await;
    app.sign_in("alice").await;
    let page = app.get("/logout").await;
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("method=\"post\""), "{body}");
    assert!(body.contains("name=\"csrf_token\""), "{body}");
    assert!(app.is_signed_in().await, "GET /logout signed nobody out");
    assert_eq!(app.get("/").await.status(), 200);
}

#[tokio::test]
async fn post_logout_without_or_with_a_wrong_csrf_token_is_refused() {
    let app = spawn_app().await;
    app.sign_in("alice").await;
    let bare = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(bare.status(), 403);
    let wrong = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let text = wrong.text().await.unwrap();
    assert!(text.contains("sign_out_unconfirmed"), "{text}");
    // Another session's token is just as wrong.
    let other = app.same_app_new_browser();
    other.sign_in("bob").await;
    let theirs = other.csrf().await;
    let cross = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", theirs.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(
        app.is_signed_in().await,
        "still signed in after three refused sign-outs"
    );
    // The page's own form works.
    assert_eq!(app.sign_out().await.status(), 302);
    assert!(!app.is_signed_in().await);
}

/// `logout_hint` goes to the provider when the ID token had `login_hint` (Entra's shape).
#[tokio::test]
async fn logout_hint_is_sent_when_the_token_had_login_hint() {
    let app = spawn_app().await;
    let started = app.start_login("").await;
    let mut claims = app.idp.claims("alice", &started.nonce);
    claims["login_hint"] = serde_json::json!("O.hint-of-alice");
    let done = app.finish_with_token(&started, app.idp.sign(&claims)).await;
    assert_eq!(done.status(), 302);
    let q = logout_query(&app.sign_out().await);
    assert_eq!(q["logout_hint"], "O.hint-of-alice");
}
