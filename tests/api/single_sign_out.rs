//! Single sign-out (issue 12, item 6): the identity provider ends rolegate's sessions through
//! OIDC back-channel logout (`POST /backchannel-logout`) or Entra's front-channel logout
//! (`GET /frontchannel-logout?iss=..&sid=..`). Every defect of a logout token is a 400 that
//! ends nothing.

use serde_json::{Value, json};

use crate::fake_idp::{CLIENT_ID, now};
use crate::helpers::{TestApp, spawn_app};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A valid logout token's claims for the cast's `sub` and `sid`; `extra` overrides, `null`
/// removes.
pub fn logout_claims(app: &TestApp, user: &str, sid: Option<&str>, extra: Value) -> Value {
    let mut claims = json!({
        "iss": app.idp.issuer,
        "aud": CLIENT_ID,
        "iat": now(),
        "jti": format!("jti-{}", rand_suffix()),
        "sub": format!("sub-{user}-0001"),
        "events": { EVENT: {} },
    });
    if let Some(sid) = sid {
        claims["sid"] = json!(sid);
    }
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Signs in as `user` with the provider session id `sid`.
pub async fn sign_in_with_sid(app: &TestApp, user: &str, sid: &str) {
    let started = app.start_login("").await;
    let mut claims = app.idp.claims(user, &started.nonce);
    claims["sid"] = json!(sid);
    let response = app.finish_with_token(&started, app.idp.sign(&claims)).await;
    assert_eq!(response.status(), 302, "sign-in as {user}");
}

/// POSTs `logout_token` to `address`'s back-channel route, as a provider does (no cookie).
pub async fn post_logout_token(address: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{address}/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

async fn provider_signed_out_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'provider_signed_out'")
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_logout_token_with_a_sid_ends_only_that_provider_session() {
    let first = spawn_app().await;
    sign_in_with_sid(&first, "alice", "sid-browser-1").await;
    let second = first.same_app_new_browser();
    sign_in_with_sid(&second, "alice", "sid-browser-2").await;

    let pool = first.pool().await;
    let sids: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT sid FROM sessions WHERE user_sub IS NOT NULL ORDER BY sid")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        sids,
        vec![
            (Some("sid-browser-1".to_owned()),),
            (Some("sid-browser-2".to_owned()),)
        ],
        "sessions are indexed by the provider's sid"
    );

    let token = first.idp.sign(&logout_claims(
        &first,
        "alice",
        Some("sid-browser-1"),
        json!({}),
    ));
    let response = post_logout_token(&first.address, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers().get("set-cookie").is_none());
    assert!(!first.is_signed_in().await, "that sid's session ended");
    assert!(
        second.is_signed_in().await,
        "the other provider session lives on"
    );
    assert_eq!(provider_signed_out_rows(&first).await, 1, "an audit row");
}

#[tokio::test]
async fn a_logout_token_with_only_sub_ends_every_session_of_that_user() {
    let alice = spawn_app().await;
    sign_in_with_sid(&alice, "alice", "sid-a").await;
    let alice_again = alice.same_app_new_browser();
    sign_in_with_sid(&alice_again, "alice", "sid-b").await;
    let bob = alice.same_app_new_browser();
    bob.sign_in("bob").await;

    let token = alice
        .idp
        .sign(&logout_claims(&alice, "alice", None, json!({})));
    assert_eq!(
        post_logout_token(&alice.address, &token).await.status(),
        200
    );
    assert!(!alice.is_signed_in().await);
    assert!(!alice_again.is_signed_in().await);
    assert!(bob.is_signed_in().await, "another user is untouched");
}

#[tokio::test]
async fn every_logout_token_defect_is_a_400_that_ends_nothing() {
    let app = spawn_app().await;
    sign_in_with_sid(&app, "alice", "sid-1").await;
    let valid = |extra: Value| logout_claims(&app, "alice", Some("sid-1"), extra);

    let good = app.idp.sign(&valid(json!({})));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    // A character in the middle: every one of its bits is part of the signature.
    let mut signature: Vec<char> = parts[2].chars().collect();
    signature[10] = if signature[10] == 'A' { 'B' } else { 'A' };
    parts[2] = signature.into_iter().collect();
    let bad_signature = parts.join(".");

    let cases: Vec<(&str, String)> = vec![
        ("bad signature", bad_signature),
        (
            "wrong aud",
            app.idp.sign(&valid(json!({"aud": "someone-else"}))),
        ),
        ("no events", app.idp.sign(&valid(json!({"events": null})))),
        (
            "another event",
            app.idp.sign(&valid(json!({"events": {"urn:other": {}}}))),
        ),
        (
            "nonce present",
            app.idp.sign(&valid(json!({"nonce": "n-1"}))),
        ),
        (
            "neither sid nor sub",
            app.idp.sign(&valid(json!({"sid": null, "sub": null}))),
        ),
        ("no jti", app.idp.sign(&valid(json!({"jti": null})))),
        ("no iat", app.idp.sign(&valid(json!({"iat": null})))),
        (
            "old iat",
            app.idp.sign(&valid(json!({"iat": now() - 3600}))),
        ),
        (
            "expired",
            app.idp.sign(&valid(json!({"exp": now() - 3600}))),
        ),
        (
            "wrong iss",
            app.idp.sign(&valid(json!({"iss": "https://evil.example"}))),
        ),
        (
            "unsigned",
            crate::fake_idp::unsigned("key-1", &valid(json!({}))),
        ),
        ("not a JWT", "not-a-token".to_owned()),
        ("empty", String::new()),
    ];
    for (name, token) in cases {
        let response = post_logout_token(&app.address, &token).await;
        assert_eq!(response.status(), 400, "{name}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{name}");
        assert!(app.is_signed_in().await, "{name} ended the session");
    }
    assert_eq!(provider_signed_out_rows(&app).await, 0);

    let no_form = reqwest::Client::new()
        .post(app.url("/backchannel-logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_form.status(), 400, "no form at all");
    let get = app.get("/backchannel-logout").await;
    assert!(
        get.status().is_client_error(),
        "GET is not a logout: {}",
        get.status()
    );
    assert!(app.is_signed_in().await);
}

#[tokio::test]
async fn a_replayed_logout_token_is_refused() {
    let app = spawn_app().await;
    sign_in_with_sid(&app, "alice", "sid-1").await;
    let token = app
        .idp
        .sign(&logout_claims(&app, "alice", None, json!({"jti": "once"})));
    assert_eq!(post_logout_token(&app.address, &token).await.status(), 200);
    assert!(!app.is_signed_in().await);

    // Signed in again: the same token, replayed, must not end the new session.
    sign_in_with_sid(&app, "alice", "sid-2").await;
    let replay = post_logout_token(&app.address, &token).await;
    assert_eq!(replay.status(), 400);
    let body: Value = replay.json().await.unwrap();
    assert!(
        body["error_description"].as_str().unwrap().contains("jti"),
        "{body}"
    );
    assert!(app.is_signed_in().await);
}

#[tokio::test]
async fn front_channel_logout_ends_that_sid_when_iss_matches() {
    let app = spawn_app().await;
    sign_in_with_sid(&app, "alice", "sid-front").await;
    let other = app.same_app_new_browser();
    sign_in_with_sid(&other, "bob", "sid-other").await;
    // Like Entra's hidden frame: no cookies of rolegate's are sent along.
    let frame = reqwest::Client::new();
    let front = |iss: &str, sid: &str| {
        let url = url::Url::parse_with_params(
            &app.url("/frontchannel-logout"),
            &[("iss", iss), ("sid", sid)],
        )
        .unwrap();
        frame.get(url).send()
    };

    let wrong = front("https://evil.example", "sid-front").await.unwrap();
    assert_eq!(wrong.status(), 400, "a wrong iss");
    assert!(app.is_signed_in().await);
    let missing = frame
        .get(app.url("/frontchannel-logout?sid=sid-front"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400, "no iss");
    let unknown = front(&app.idp.issuer, "sid-nobody").await.unwrap();
    assert_eq!(
        unknown.status(),
        200,
        "an unknown sid ends nothing, quietly"
    );
    assert!(app.is_signed_in().await);

    let ok = front(&app.idp.issuer, "sid-front").await.unwrap();
    assert_eq!(ok.status(), 200);
    let csp = ok.headers()["content-security-policy"].to_str().unwrap();
    let idp_origin = url::Url::parse(&app.idp.issuer)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert!(
        csp.contains(&format!("frame-ancestors {idp_origin}")),
        "{csp}"
    );
    assert!(
        ok.headers().get("x-frame-options").is_none(),
        "the provider may frame this route"
    );
    assert!(ok.headers().get("set-cookie").is_none());
    assert!(!app.is_signed_in().await, "that sid's session ended");
    assert!(other.is_signed_in().await, "another sid is untouched");

    // Every other page still refuses to be framed.
    assert_eq!(app.get("/login").await.headers()["x-frame-options"], "DENY");
}
