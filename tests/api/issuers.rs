//! Issuers that differ from the authority (`auth.issuer`, Entra External ID, Azure AD B2C) and
//! the B2C policies (`/profile/edit`, the AADB2C90118 password reset).

use serde_json::json;

use crate::callback::assert_refused;
use crate::helpers::{Started, TestApp, reason_of, spawn_app_custom, started_from_page};

const EXT_TID: &str = "e7a1d3c5-2b4f-4a6e-9c8d-0f1e2d3c4b5a";
const B2C_TID: &str = "b2c0ffee-1a2b-4c3d-8e4f-5a6b7c8d9e0f";
const B2C_DOMAIN: &str = "rolegateb2c.onmicrosoft.com";
const SIGN_IN: &str = "B2C_1_signupsignin";
const PROFILE: &str = "B2C_1_profileedit";
const RESET: &str = "B2C_1_passwordreset";

/// An app whose provider names `issuer` in discovery; `env` adds settings.
async fn app_with_issuer(
    issuer: impl Fn(&str) -> String,
    env: impl Fn(&str) -> Vec<(&'static str, String)>,
) -> TestApp {
    spawn_app_custom(
        |idp| idp.override_issuer(&issuer(&idp.issuer)),
        |e| {
            let root = e["APP__AUTH__AUTHORITY"].clone();
            for (k, v) in env(&root) {
                e.insert(k.to_owned(), v);
            }
        },
    )
    .await
}

/// `http://localhost:{port}` of the fake provider.
fn localhost(root: &str) -> String {
    root.replace("127.0.0.1", "localhost")
}

async fn sign_in_with(
    app: &TestApp,
    claims: impl Fn(&Started) -> serde_json::Value,
) -> reqwest::Response {
    let started = app.start_login("").await;
    let token = app.idp.sign(&claims(&started));
    app.finish_with_token(&started, token).await
}

#[tokio::test]
async fn a_configured_issuer_is_accepted_and_a_token_of_the_authority_refused() {
    let app = app_with_issuer(
        |root| format!("{root}/sts"),
        |root| vec![("APP__AUTH__ISSUER", format!("{root}/sts"))],
    )
    .await;
    let issuer = format!("{}/sts", app.idp.issuer);
    let ok = sign_in_with(&app, |s| {
        let mut c = app.idp.claims("alice", &s.nonce);
        c["iss"] = json!(issuer);
        c
    })
    .await;
    assert_eq!(ok.status(), 302, "{}", ok.text().await.unwrap());
    assert!(app.is_signed_in().await);

    let other = app.same_app_new_browser();
    let refused = sign_in_with(&other, |s| other.idp.claims("alice", &s.nonce)).await;
    assert_refused(&other, refused, 400, "wrong_issuer").await;
}

#[tokio::test]
async fn a_wrong_configured_issuer_is_refused_at_discovery_naming_the_value_to_set() {
    let app = app_with_issuer(
        |root| format!("{root}/sts"),
        |root| vec![("APP__AUTH__ISSUER", format!("{root}/elsewhere"))],
    )
    .await;
    let page = app.get("/login").await;
    assert_eq!(page.status(), 503);
    let body = page.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("provider_mismatch"));
    let set = format!("auth.issuer = \"{}/sts\"", app.idp.issuer);
    assert!(
        unescape(&body).contains(&set),
        "the page names the value to set: {body}"
    );
    assert!(!app.is_signed_in().await);
}

#[tokio::test]
async fn an_issuer_that_is_not_the_authority_is_refused_at_discovery_naming_auth_issuer() {
    let app = app_with_issuer(|_| "https://sts.example/tenant/v2.0".to_owned(), |_| vec![]).await;
    let page = app.get("/login").await;
    assert_eq!(page.status(), 503);
    let body = page.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("provider_mismatch"));
    assert!(
        unescape(&body).contains("auth.issuer = \"https://sts.example/tenant/v2.0\""),
        "{body}"
    );
    // No sign-in link, so no sign-in can start.
    assert!(!body.contains("id=\"sign-in\""));
}

/// The page text with the entities HTML escaping uses turned back.
fn unescape(body: &str) -> String {
    body.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

fn external_issuer(root: &str) -> String {
    let port = root.rsplit(':').next().unwrap();
    format!("http://{EXT_TID}.localhost:{port}/{EXT_TID}/v2.0")
}

#[tokio::test]
async fn the_external_id_issuer_is_accepted_for_its_tenant_and_a_foreign_tid_refused() {
    let app = app_with_issuer(external_issuer, |root| {
        vec![(
            "APP__AUTH__AUTHORITY",
            format!("{}/{EXT_TID}/v2.0", localhost(root)),
        )]
    })
    .await;
    let issuer = external_issuer(&app.idp.issuer);
    let ok = sign_in_with(&app, |s| {
        let mut c = app.idp.claims("bob", &s.nonce);
        c["iss"] = json!(issuer);
        c["tid"] = json!(EXT_TID);
        c
    })
    .await;
    assert_eq!(ok.status(), 302, "{}", ok.text().await.unwrap());
    let me: serde_json::Value = app.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["tid"], EXT_TID);

    let other = app.same_app_new_browser();
    let refused = sign_in_with(&other, |s| {
        let mut c = other.idp.claims("alice", &s.nonce);
        c["iss"] = json!(issuer);
        c["tid"] = json!(B2C_TID);
        c
    })
    .await;
    assert_refused(&other, refused, 400, "issuer_tenant_mismatch").await;
}

fn b2c_issuer(root: &str) -> String {
    format!("{}/{B2C_TID}/v2.0/", localhost(root))
}

fn b2c_authority(root: &str) -> String {
    format!("{}/{B2C_DOMAIN}/{SIGN_IN}/v2.0", localhost(root))
}

/// A B2C app; `policies` are (setting, policy) pairs of `auth.b2c`.
async fn b2c_app(policies: &'static [(&'static str, &'static str)]) -> TestApp {
    app_with_issuer(b2c_issuer, move |root| {
        let mut env = vec![("APP__AUTH__AUTHORITY", b2c_authority(root))];
        for (key, policy) in policies {
            env.push((*key, (*policy).to_owned()));
        }
        env
    })
    .await
}

fn b2c_claims(app: &TestApp, user: &str, nonce: &str, tfp: &str) -> serde_json::Value {
    let mut c = app.idp.claims(user, nonce);
    c["iss"] = json!(b2c_issuer(&app.idp.issuer));
    c["tid"] = json!(B2C_TID);
    c["tfp"] = json!(tfp);
    c
}

const EDIT: &str = "APP__AUTH__B2C__EDIT_PROFILE_POLICY";
const RESET_KEY: &str = "APP__AUTH__B2C__RESET_PASSWORD_POLICY";

#[tokio::test]
async fn the_b2c_issuer_with_its_trailing_slash_and_tfp_is_accepted_and_other_policies_refused() {
    let app = b2c_app(&[]).await;
    let started = app.start_login("").await;
    assert!(
        started
            .url
            .path()
            .ends_with(&format!("/{B2C_DOMAIN}/{SIGN_IN}/oauth2/v2.0/authorize")),
        "{}",
        started.url
    );
    let ok = app
        .finish_with_token(
            &started,
            app.idp.sign(&b2c_claims(
                &app,
                "carol",
                &started.nonce,
                "b2c_1_signupsignin",
            )),
        )
        .await;
    assert_eq!(ok.status(), 302, "{}", ok.text().await.unwrap());

    // A policy this app does not use (here the profile policy, unconfigured) is refused.
    let other = app.same_app_new_browser();
    let refused = sign_in_with(&other, |s| b2c_claims(&other, "alice", &s.nonce, PROFILE)).await;
    assert_refused(&other, refused, 400, "policy_not_allowed").await;
    // Without the trailing slash the issuer is not B2C's.
    let third = app.same_app_new_browser();
    let refused = sign_in_with(&third, |s| {
        let mut c = b2c_claims(&third, "alice", &s.nonce, SIGN_IN);
        c["iss"] = json!(b2c_issuer(&third.idp.issuer).trim_end_matches('/'));
        c
    })
    .await;
    assert_refused(&third, refused, 400, "wrong_issuer").await;
}

#[tokio::test]
async fn profile_edit_starts_the_edit_profile_policy_and_refreshes_the_user() {
    let app = b2c_app(&[(EDIT, PROFILE)]).await;
    let first = sign_in_with(&app, |s| b2c_claims(&app, "bob", &s.nonce, SIGN_IN)).await;
    assert_eq!(first.status(), 302);

    let edit = app.get("/profile/edit").await;
    assert_eq!(edit.status(), 302);
    let location = url::Url::parse(edit.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .path()
            .ends_with(&format!("/{B2C_DOMAIN}/{PROFILE}/oauth2/v2.0/authorize")),
        "{location}"
    );
    let params: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    for p in ["state", "nonce", "code_challenge"] {
        assert!(params.contains_key(p), "{p} in {location}");
    }
    let mut claims = b2c_claims(&app, "bob", &params["nonce"], PROFILE);
    claims["name"] = json!("Bob Renamed");
    let done = app
        .finish_with_token(
            &Started {
                url: location.clone(),
                state: params["state"].clone(),
                nonce: params["nonce"].clone(),
                params: params.clone(),
            },
            app.idp.sign(&claims),
        )
        .await;
    assert_eq!(done.status(), 302, "{}", done.text().await.unwrap());
    assert_eq!(
        app.idp.last_token_path().as_deref(),
        Some(format!("/{B2C_DOMAIN}/{PROFILE}/oauth2/v2.0/token").as_str()),
        "the code is redeemed at the profile policy's token endpoint"
    );
    let me: serde_json::Value = app.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["name"], "Bob Renamed");

    // Anonymous: to the sign-in page first.
    let anonymous = app.same_app_new_browser().get("/profile/edit").await;
    assert_eq!(anonymous.status(), 302);
    assert_eq!(
        anonymous.headers()["location"],
        "/login?next=%2Fprofile%2Fedit"
    );
}

#[tokio::test]
async fn profile_edit_is_404_without_an_edit_profile_policy() {
    let app = b2c_app(&[]).await;
    let first = sign_in_with(&app, |s| b2c_claims(&app, "bob", &s.nonce, SIGN_IN)).await;
    assert_eq!(first.status(), 302);
    assert_eq!(app.get("/profile/edit").await.status(), 404);
}

const FORGOT: &str =
    "error=access_denied&error_description=AADB2C90118%3A+The+user+has+forgotten+their+password.";

#[tokio::test]
async fn aadb2c90118_starts_the_reset_password_policy_with_fresh_state() {
    let app = b2c_app(&[(RESET_KEY, RESET)]).await;
    let started = app.start_login("?next=/notes").await;
    let reset = app
        .callback(&format!("{FORGOT}&state={}", started.state))
        .await;
    assert_eq!(reset.status(), 302);
    let location = url::Url::parse(reset.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .path()
            .ends_with(&format!("/{B2C_DOMAIN}/{RESET}/oauth2/v2.0/authorize")),
        "{location}"
    );
    let params: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_ne!(params["state"], started.state, "a fresh state");
    assert_ne!(params["nonce"], started.nonce, "a fresh nonce");
    assert_ne!(params["code_challenge"], started.params["code_challenge"]);
    assert!(!app.is_signed_in().await);

    // The reset policy's callback signs in, to the original `next`.
    let fresh = Started {
        url: location.clone(),
        state: params["state"].clone(),
        nonce: params["nonce"].clone(),
        params: params.clone(),
    };
    let done = app
        .finish_with_token(
            &fresh,
            app.idp
                .sign(&b2c_claims(&app, "carol", &fresh.nonce, RESET)),
        )
        .await;
    assert_eq!(done.status(), 302, "{}", done.text().await.unwrap());
    assert_eq!(done.headers()["location"], "/notes");
    // The old state was used up.
    let replay = app
        .callback(&format!("{FORGOT}&state={}", started.state))
        .await;
    assert_eq!(replay.status(), 400);
}

#[tokio::test]
async fn aadb2c90118_without_a_reset_policy_is_the_error_page() {
    let app = b2c_app(&[]).await;
    let started = app.start_login("").await;
    let response = app
        .callback(&format!("{FORGOT}&state={}", started.state))
        .await;
    assert_refused(&app, response, 400, "provider_error").await;
}

/// The page of a sign-in link is an ordinary login page for B2C too.
#[tokio::test]
async fn the_login_page_of_a_b2c_authority_links_the_sign_in_policy() {
    let app = b2c_app(&[(EDIT, PROFILE), (RESET_KEY, RESET)]).await;
    let body = app.get("/login").await.text().await.unwrap();
    let started = started_from_page(&body);
    assert!(started.url.path().contains(SIGN_IN), "{}", started.url);
}
