//! Hardening of the sign-in path (issue 13, items 1, 4, 6 and 10): rejected codes are the
//! caller's fault, paths are judged as routed, keys and algorithms must fit, and sign-in starts
//! a clean session.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::callback::assert_refused;
use crate::fake_idp::{SigningKey, TokenReply, ec_p256, ec_p384, sign_with};
use crate::helpers::{TestApp, reason_of, spawn_app, spawn_app_custom};

// ---- 1. Bogus authorization codes are the caller's fault ----

#[tokio::test]
async fn a_code_the_provider_rejects_is_a_400_asking_to_start_again() {
    let app = spawn_app().await;
    for body in [
        r#"{"error":"invalid_grant","error_description":"AADSTS54005: code already redeemed"}"#,
        r#"{"error":"invalid_request"}"#,
    ] {
        let started = app.start_login("").await;
        app.idp.reply(TokenReply::Raw(400, body.into()));
        let response = app
            .callback(&format!("code=bogus&state={}", started.state))
            .await;
        assert_eq!(response.status(), 400, "{body}");
        let page = response.text().await.unwrap();
        assert_eq!(reason_of(&page).as_deref(), Some("code_rejected"), "{page}");
        assert!(page.contains("sign-in code was not accepted"), "{page}");
        assert!(page.contains("Start again"), "{page}");
        assert!(
            !page.contains("AADSTS54005"),
            "the provider's text is not shown"
        );
        assert!(!app.is_signed_in().await);
    }
}

// ---- 4. Paths are judged as routed ----

#[tokio::test]
async fn an_encoded_api_path_gets_401_json_not_a_redirect() {
    let app = spawn_app().await;
    let response = app.get("/%61pi/me").await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");
}

#[tokio::test]
async fn a_bearer_token_is_honoured_on_an_encoded_api_path() {
    let app = spawn_app().await;
    let token = crate::bearer::access_token(&app, json!(["DemoApp.Read"]));
    let response = app
        .client
        .get(app.url("/%61pi/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["name"], "Alice Test");
}

// ---- 6. Keys and algorithms ----

/// Starts a sign-in and completes it with `forge(claims)`.
async fn finish(app: &TestApp, forge: impl FnOnce(&Value) -> String) -> reqwest::Response {
    let started = app.start_login("").await;
    let claims = app.idp.claims("alice", &started.nonce);
    app.finish_with_token(&started, forge(&claims)).await
}

/// An app whose provider advertises `algs` and publishes `keys`.
async fn app_with(algs: &'static [&'static str], keys: Vec<SigningKey>, unpinned: bool) -> TestApp {
    spawn_app_custom(
        move |idp| {
            idp.advertise_algs(Some(algs));
            let jwks = keys
                .iter()
                .map(|k| {
                    if unpinned {
                        k.unpinned_jwk()
                    } else {
                        k.jwk.clone()
                    }
                })
                .collect();
            idp.publish(jwks);
        },
        |_| {},
    )
    .await
}

#[tokio::test]
async fn algorithms_the_provider_does_not_advertise_are_refused() {
    // Discovery advertises only RS256; key 1 is published without an alg pin, so only the
    // advertised list stands between a PS256/RS384 token and acceptance.
    let key1 = crate::fake_idp::FakeIdp::start().await.key1;
    let app = app_with(&["RS256"], vec![key1.clone()], true).await;
    for alg in [Algorithm::PS256, Algorithm::RS384] {
        let response = finish(&app, |c| sign_with(&key1.encoding, Some("key-1"), alg, c)).await;
        assert_refused(&app, response, 400, "disallowed_algorithm").await;
    }
    let ok = finish(&app, |c| {
        sign_with(&key1.encoding, Some("key-1"), Algorithm::RS256, c)
    })
    .await;
    assert_eq!(ok.status(), 302, "RS256 is advertised");

    // The same PS256 token is fine once the provider advertises PS256: an intersection, not
    // a fixed list.
    let app = app_with(&["RS256", "PS256", "HS256"], vec![key1.clone()], true).await;
    // Advertising HS256 does not make it acceptable.
    let hs = finish(&app, |c| {
        sign_with(
            &EncodingKey::from_secret(b"shared"),
            Some("key-1"),
            Algorithm::HS256,
            c,
        )
    })
    .await;
    assert_refused(&app, hs, 400, "disallowed_algorithm").await;
    let ok = finish(&app, |c| {
        sign_with(&key1.encoding, Some("key-1"), Algorithm::PS256, c)
    })
    .await;
    assert_eq!(ok.status(), 302, "{}", ok.text().await.unwrap());
}

#[tokio::test]
async fn a_provider_advertising_only_symmetric_algorithms_is_unusable() {
    let app = spawn_app_custom(|idp| idp.advertise_algs(Some(&["HS256", "none"])), |_| {}).await;
    let response = app.get("/login").await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("provider_unavailable"));
    assert!(!body.contains("id=\"sign-in\""), "no sign-in link");
}

#[tokio::test]
async fn a_key_pinned_to_one_algorithm_refuses_another_advertised_one() {
    let key1 = crate::fake_idp::FakeIdp::start().await.key1;
    let app = app_with(&["RS256", "RS384"], vec![key1.clone()], false).await;
    let response = finish(&app, |c| {
        sign_with(&key1.encoding, Some("key-1"), Algorithm::RS384, c)
    })
    .await;
    assert_refused(&app, response, 400, "algorithm_mismatch").await;
}

#[tokio::test]
async fn an_ec_key_never_verifies_an_rsa_token() {
    let key1 = crate::fake_idp::FakeIdp::start().await.key1;
    let ec = ec_p256("ec-1");
    let app = app_with(&["RS256", "ES256"], vec![key1.clone(), ec.clone()], true).await;
    // RS256 header naming the EC key's kid.
    let response = finish(&app, |c| {
        sign_with(&key1.encoding, Some("ec-1"), Algorithm::RS256, c)
    })
    .await;
    assert_refused(&app, response, 400, "algorithm_mismatch").await;
    // ES256 with the RSA key's kid.
    let response = finish(&app, |c| {
        sign_with(&ec.encoding, Some("key-1"), Algorithm::ES256, c)
    })
    .await;
    assert_refused(&app, response, 400, "algorithm_mismatch").await;
    // The EC key does verify ES256.
    let ok = finish(&app, |c| {
        sign_with(&ec.encoding, Some("ec-1"), Algorithm::ES256, c)
    })
    .await;
    assert_eq!(ok.status(), 302, "{}", ok.text().await.unwrap());
}

#[tokio::test]
async fn an_ec_key_verifies_only_its_own_curve() {
    let p256 = ec_p256("ec-256");
    let p384 = ec_p384("ec-384");
    let app = app_with(&["ES256", "ES384"], vec![p256.clone(), p384.clone()], true).await;
    // ES384, signed with the P-384 key, but naming the P-256 key.
    let response = finish(&app, |c| {
        sign_with(&p384.encoding, Some("ec-256"), Algorithm::ES384, c)
    })
    .await;
    assert_refused(&app, response, 400, "algorithm_mismatch").await;
    let ok = finish(&app, |c| {
        sign_with(&p384.encoding, Some("ec-384"), Algorithm::ES384, c)
    })
    .await;
    assert_eq!(ok.status(), 302, "{}", ok.text().await.unwrap());
}

#[tokio::test]
async fn oct_keys_are_dropped_from_the_key_set() {
    let secret = b"a-shared-secret-the-provider-should-never-publish";
    let oct = SigningKey::oct("hmac-1", secret);
    let key1 = crate::fake_idp::FakeIdp::start().await.key1;
    let mut rsa_without_kid = key1.jwk.clone();
    rsa_without_kid.common.key_id = None;
    let app = spawn_app_custom(
        |idp| {
            idp.advertise_algs(Some(&["RS256", "HS256"]));
            idp.publish(vec![rsa_without_kid, oct.jwk.clone()]);
        },
        |_| {},
    )
    .await;
    // An HS256 token signed with the published secret.
    let response = finish(&app, |c| {
        sign_with(&oct.encoding, Some("hmac-1"), Algorithm::HS256, c)
    })
    .await;
    assert_refused(&app, response, 400, "disallowed_algorithm").await;
    // The oct key's kid is not a key at all.
    let response = finish(&app, |c| {
        sign_with(&key1.encoding, Some("hmac-1"), Algorithm::RS256, c)
    })
    .await;
    assert_refused(&app, response, 400, "unknown_key").await;
    // With the oct key gone, the RSA key is the set's only key, so a kid-less token uses it.
    let ok = finish(&app, |c| {
        sign_with(&key1.encoding, None, Algorithm::RS256, c)
    })
    .await;
    assert_eq!(ok.status(), 302, "{}", ok.text().await.unwrap());
}

// ---- 10. Sign-in starts clean ----

#[tokio::test]
async fn signing_in_drops_the_other_pending_sign_ins() {
    let app = spawn_app().await;
    let tab1 = app.start_login("?next=/one").await;
    let tab2 = app.start_login("?next=/two").await;
    let claims = app.idp.claims("carol", &tab2.nonce);
    let done = app.finish_with_token(&tab2, app.idp.sign(&claims)).await;
    assert_eq!(done.status(), 302);
    assert_eq!(done.headers()["location"], "/two");

    let claims = app.idp.claims("alice", &tab1.nonce);
    let late = app.finish_with_token(&tab1, app.idp.sign(&claims)).await;
    assert_eq!(late.status(), 400);
    let body = late.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("state_mismatch"));
    let me: Value = app.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["name"], "Carol Test", "still the user who signed in");
}

#[tokio::test]
async fn signing_in_again_issues_a_new_csrf_token() {
    let app = spawn_app().await;
    app.sign_in("alice").await;
    let before = app.csrf().await;
    assert_eq!(app.csrf().await, before, "stable within a session");
    app.sign_in("bob").await;
    let after = app.csrf().await;
    assert_ne!(
        after, before,
        "the session's CSRF token is renewed at sign-in"
    );

    // The old token no longer authorises a write.
    let response = app
        .client
        .post(app.url("/api/notes"))
        .header("X-CSRF-Token", before)
        .json(&json!({"title": "t", "body": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}
