//! `Authorization: Bearer` on the API: same issuer and keys, an audience of `auth.api_audiences`
//! and the `access_as_user` scope (Entra shapes and refusals in detail: `api_tokens.rs`).

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::fake_idp::{CLIENT_ID, now, sign_with};
use crate::helpers::{TestApp, spawn_app};

fn access_claims(app: &TestApp, roles: serde_json::Value) -> serde_json::Value {
    json!({
        "iss": app.idp.issuer,
        "aud": format!("api://{CLIENT_ID}"),
        "sub": "sub-alice-0001",
        "exp": now() + 3600,
        "iat": now(),
        "nbf": now(),
        "tid": crate::fake_idp::TENANT,
        "oid": "oid-alice",
        "name": "Alice Test",
        "preferred_username": "alice@rolegate.test",
        "roles": roles,
        "scp": "access_as_user",
    })
}

/// A signed access token for rolegate's API with these roles.
pub fn access_token(app: &TestApp, roles: serde_json::Value) -> String {
    app.idp.sign(&access_claims(app, roles))
}

async fn me_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_valid_access_token_works_without_a_session() {
    let app = spawn_app().await;
    let token = app.idp.sign(&access_claims(&app, json!(["DemoApp.Admin"])));
    let response = me_with(&app, &token).await;
    assert_eq!(response.status(), 200);
    let me: serde_json::Value = response.json().await.unwrap();
    assert_eq!(me["name"], "Alice Test");
    assert_eq!(me["roles"], json!(["DemoApp.Admin"]));
    assert!(
        app.session_cookie().is_none(),
        "bearer calls create no session"
    );
}

#[tokio::test]
async fn bad_access_tokens_get_401_invalid_token() {
    let app = spawn_app().await;
    let good = access_claims(&app, json!(["DemoApp.Read"]));
    // The client id is a default audience (Entra v2), so an ID token is told by its shape.
    let mut id_token = good.clone();
    id_token["aud"] = json!(CLIENT_ID);
    id_token["nonce"] = json!("nonce-1");
    id_token.as_object_mut().unwrap().remove("scp");
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 600);
    let mut other_issuer = good.clone();
    other_issuer["iss"] = json!("https://evil.example");
    let cases = [
        ("ID token", app.idp.sign(&id_token)),
        ("expired", app.idp.sign(&expired)),
        ("other issuer", app.idp.sign(&other_issuer)),
        (
            "foreign key",
            sign_with(
                &app.idp.key2.encoding,
                Some("key-1"),
                Algorithm::RS256,
                &good,
            ),
        ),
        ("alg none", crate::fake_idp::unsigned("key-1", &good)),
        ("garbage", "garbage".to_owned()),
    ];
    for (name, token) in cases {
        let response = me_with(&app, &token).await;
        assert_eq!(response.status(), 401, "{name}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("invalid_token"), "{name}: {challenge}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
}

#[tokio::test]
async fn bearer_tokens_are_ignored_outside_the_api() {
    let app = spawn_app().await;
    let token = app.idp.sign(&access_claims(&app, json!(["DemoApp.Admin"])));
    let response = app
        .client
        .get(app.url("/admin"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "pages need a browser session");
}
