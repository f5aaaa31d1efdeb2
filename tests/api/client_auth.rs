//! `auth.client_auth_method` (issue 14 item 1): `auto` picks post for Entra-shaped authorities
//! and Basic elsewhere, explicit methods are used as set, a method the credential cannot do is
//! a settings problem, and `invalid_client` / `unauthorized_client` is a configuration page.

use base64::Engine;
use serde_json::json;

use crate::fake_idp::{CLIENT_ID, CLIENT_SECRET, TENANT, TokenReply};
use crate::helpers::{TestApp, load_settings, reason_of, spawn_app_custom, spawn_app_with};

fn basic_header() -> String {
    let pair = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn used_basic(app: &TestApp) -> bool {
    let header = app.idp.state.lock().unwrap().last_token_auth_header.clone();
    let form = app.idp.last_token_form();
    header.as_deref() == Some(basic_header().as_str()) && !form.contains_key("client_secret")
}

fn used_post(app: &TestApp) -> bool {
    let header = app.idp.state.lock().unwrap().last_token_auth_header.clone();
    let form = app.idp.last_token_form();
    header.is_none() && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
}

#[tokio::test]
async fn auto_uses_basic_for_a_provider_that_is_not_entra() {
    let app = spawn_app_with(|_| {}).await;
    app.sign_in("alice").await;
    assert!(used_basic(&app), "{:?}", app.idp.last_token_form());
}

#[tokio::test]
async fn auto_uses_post_when_discovery_lists_only_post() {
    let app = spawn_app_custom(
        |idp| idp.state.lock().unwrap().auth_methods = Some(vec!["client_secret_post".into()]),
        |_| {},
    )
    .await;
    app.sign_in("alice").await;
    assert!(used_post(&app));
}

#[tokio::test]
async fn auto_uses_post_for_an_entra_shaped_authority() {
    let app = spawn_app_with(|env| {
        let root = env["APP__AUTH__AUTHORITY"].clone();
        env.insert(
            "APP__AUTH__AUTHORITY".into(),
            format!("{root}/{TENANT}/v2.0"),
        );
    })
    .await;
    let started = app.start_login("").await;
    let mut claims = app.idp.claims("alice", &started.nonce);
    claims["tid"] = json!(TENANT);
    claims["iss"] = json!(app.idp.tenant_authority(TENANT));
    let response = app.finish_with_token(&started, app.idp.sign(&claims)).await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    assert!(used_post(&app));
}

#[tokio::test]
async fn explicit_methods_are_used_as_set() {
    let post = spawn_app_with(|env| {
        env.insert(
            "APP__AUTH__CLIENT_AUTH_METHOD".into(),
            "client_secret_post".into(),
        );
    })
    .await;
    post.sign_in("alice").await;
    assert!(used_post(&post));

    // Not listed by discovery: a warning at discovery, but still used.
    let basic = spawn_app_custom(
        |idp| idp.state.lock().unwrap().auth_methods = Some(vec!["client_secret_post".into()]),
        |env| {
            env.insert(
                "APP__AUTH__CLIENT_AUTH_METHOD".into(),
                "client_secret_basic".into(),
            );
        },
    )
    .await;
    basic.sign_in("alice").await;
    assert!(used_basic(&basic));
}

#[tokio::test]
async fn a_method_the_credential_cannot_do_is_a_settings_problem() {
    let idp = crate::fake_idp::FakeIdp::start().await;
    let idp_env = |method: &str| {
        let mut env = crate::helpers::base_env(&idp, &crate::helpers::temp_dir());
        env.insert("APP__AUTH__CLIENT_AUTH_METHOD".into(), method.into());
        env
    };
    for (method, needle) in [
        ("private_key_jwt", "client certificate"),
        ("client_secret_jwt", "not a client authentication method"),
    ] {
        let loaded = load_settings("Test", &idp_env(method));
        let problem = loaded
            .problems
            .iter()
            .find(|p| p.key == "auth.client_auth_method")
            .unwrap_or_else(|| panic!("{method}: {:?}", loaded.problems));
        assert!(problem.message.contains(needle), "{}", problem.message);
    }
}

#[tokio::test]
async fn invalid_client_is_a_configuration_page_naming_the_method_and_setting() {
    for code in ["invalid_client", "unauthorized_client"] {
        let app = spawn_app_with(|_| {}).await;
        let started = app.start_login("").await;
        app.idp
            .reply(TokenReply::Raw(401, json!({ "error": code }).to_string()));
        let response = app
            .callback(&format!("code=test-code&state={}", started.state))
            .await;
        assert_eq!(response.status(), 503, "{code}");
        let body = response.text().await.unwrap();
        assert_eq!(reason_of(&body).as_deref(), Some("client_auth_rejected"));
        for needle in [
            code,
            "client_secret_basic",
            "client_secret_post, client_secret_basic",
            "auth.client_auth_method",
        ] {
            assert!(body.contains(needle), "{needle} missing: {body}");
        }
        assert!(!body.contains(CLIENT_SECRET));
        assert!(!app.is_signed_in().await);
    }
}
