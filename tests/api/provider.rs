//! Discovery and keys: start without the provider, recover, and refetch keys sparingly.

use std::net::TcpListener;
use std::sync::atomic::Ordering;

use jsonwebtoken::Algorithm;

use crate::fake_idp::{FakeIdp, sign_with};
use crate::helpers::{
    base_env, client_with, reason_of, spawn_app, spawn_app_with, start_rolegate, temp_dir,
};

#[tokio::test]
async fn starts_without_the_provider_and_recovers_when_it_is_back() {
    // Reserve a port for the provider, then free it so nothing listens there yet.
    let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);

    let placeholder = FakeIdp::start().await; // only for the env's shape
    let mut env = base_env(&placeholder, &temp_dir());
    env.insert(
        "APP__AUTH__AUTHORITY".into(),
        format!("http://127.0.0.1:{port}"),
    );
    let address = start_rolegate(&env).await;
    let client = client_with(Default::default());

    let response = client.get(format!("{address}/login")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("provider_unavailable"));
    assert_eq!(
        client
            .get(format!("{address}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let _idp = FakeIdp::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap()).await;
    let response = client.get(format!("{address}/login")).send().await.unwrap();
    assert_eq!(response.status(), 200, "recovered without a restart");
}

#[tokio::test]
async fn unknown_kids_refetch_the_keys_at_most_once_per_cooldown() {
    let app = spawn_app().await;
    app.start_login("").await; // discovery done
    let before = app.idp.jwks_hits.load(Ordering::SeqCst);
    for i in 0..15 {
        let started = app.start_login("").await;
        let claims = app.idp.claims("alice", &started.nonce);
        let forged = sign_with(
            &app.idp.key2.encoding,
            Some(&format!("forged-{i}")),
            Algorithm::RS256,
            &claims,
        );
        let response = app.finish_with_token(&started, forged).await;
        assert_eq!(response.status(), 400);
    }
    let fetched = app.idp.jwks_hits.load(Ordering::SeqCst) - before;
    assert!(
        fetched <= 1,
        "JWKS fetched {fetched} times for 15 forged tokens"
    );
}

#[tokio::test]
async fn key_rollover_is_picked_up() {
    let app = spawn_app_with(|env| {
        env.insert("APP__AUTH__JWKS_REFRESH_COOLDOWN_SECS".into(), "0".into());
    })
    .await;
    app.sign_in("alice").await;
    // The provider rolls over to key 2.
    app.idp.publish(vec![app.idp.key2.jwk.clone()]);
    let started = app.start_login("").await;
    let claims = app.idp.claims("bob", &started.nonce);
    let token = sign_with(
        &app.idp.key2.encoding,
        Some("key-2"),
        Algorithm::RS256,
        &claims,
    );
    let response = app.finish_with_token(&started, token).await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let me: serde_json::Value = app.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["name"], "Bob Test");
}
