//! `authorization.role_claim` and the display name (issue 14, items 3 and 5): roles from a
//! string, a list, Keycloak's `realm_access.roles` / `resource_access.{client_id}.roles`, mapped
//! groups; any other type refused with a page naming the claim and the type.

use serde_json::{Value, json};

use crate::fake_idp::{CLIENT_ID, TENANT};
use crate::helpers::{TestApp, base_env, load_settings, reason_of, spawn_app_with, temp_dir};

const GROUP: &str = "7d1f9a9e-0000-4000-8000-00000000beef";

/// rolegate with `authorization.role_claim` set (None = unset) and the group map when given.
async fn app_reading(claim: Option<&str>, group_roles: Option<Value>) -> TestApp {
    spawn_app_with(|env| {
        if let Some(claim) = claim {
            env.insert("APP__AUTHORIZATION__ROLE_CLAIM".into(), claim.into());
        }
        if let Some(map) = group_roles {
            env.insert("APP__AUTHORIZATION__GROUP_ROLES".into(), map.to_string());
        }
    })
    .await
}

/// Signs in as `user` with the cast's claims, minus `remove`, plus `extra`.
async fn sign_in_with(
    app: &TestApp,
    user: &str,
    remove: &[&str],
    extra: Value,
) -> reqwest::Response {
    let started = app.start_login("").await;
    let mut claims = app.idp.claims(user, &started.nonce);
    let object = claims.as_object_mut().unwrap();
    for key in remove {
        object.remove(*key);
    }
    for (k, v) in extra.as_object().unwrap() {
        object.insert(k.clone(), v.clone());
    }
    app.finish_with_token(&started, app.idp.sign(&claims)).await
}

async fn me(app: &TestApp) -> Value {
    app.get("/api/me").await.json().await.unwrap()
}

/// `sign_in_refused` audit details, waiting for the write-behind.
async fn refused_details(app: &TestApp) -> Vec<String> {
    let pool = app.pool().await;
    for _ in 0..50 {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT detail FROM audit_log WHERE event = 'sign_in_refused' ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if !rows.is_empty() {
            return rows.into_iter().map(|r| r.0).collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn a_single_role_string_is_a_one_element_list() {
    let app = app_reading(None, None).await;
    let response = sign_in_with(&app, "bob", &["roles"], json!({"roles": "DemoApp.Write"})).await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let got = me(&app).await;
    assert_eq!(got["roles"], json!(["DemoApp.Write"]));
    assert_eq!(got["access_level"], "Write");

    let list = app.same_app_new_browser();
    let response = sign_in_with(&list, "x", &[], json!({"roles": ["DemoApp.Read", "Other"]})).await;
    assert_eq!(response.status(), 302);
    assert_eq!(me(&list).await["roles"], json!(["DemoApp.Read", "Other"]));
}

#[tokio::test]
async fn keycloak_realm_roles() {
    let app = app_reading(Some("realm_access.roles"), None).await;
    let response = sign_in_with(
        &app,
        "carol",
        &[],
        json!({"realm_access": {"roles": ["offline_access", "DemoApp.Admin"]}}),
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let got = me(&app).await;
    assert_eq!(got["roles"], json!(["offline_access", "DemoApp.Admin"]));
    assert_eq!(got["access_level"], "Admin", "the roles claim is not read");
}

#[tokio::test]
async fn keycloak_client_roles_under_the_client_id() {
    let app = app_reading(Some("resource_access.{client_id}.roles"), None).await;
    let response = sign_in_with(
        &app,
        "alice",
        &["roles"],
        json!({"resource_access": {
            CLIENT_ID: {"roles": ["DemoApp.Write"]},
            "other-client": {"roles": ["DemoApp.Admin"]}
        }}),
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    assert_eq!(me(&app).await["roles"], json!(["DemoApp.Write"]));

    // No entry for this client: no role, the usual refusal.
    let other = app.same_app_new_browser();
    let refused = sign_in_with(
        &other,
        "alice",
        &[],
        json!({"resource_access": {"other-client": {"roles": ["DemoApp.Admin"]}}}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        reason_of(&refused.text().await.unwrap()).as_deref(),
        Some("no_role")
    );
}

#[tokio::test]
async fn groups_claim_named_explicitly_uses_the_group_map() {
    let app = app_reading(Some("groups"), Some(json!({ GROUP: "DemoApp.Write" }))).await;
    let response = sign_in_with(&app, "carol", &[], json!({"groups": [GROUP, "other"]})).await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let got = me(&app).await;
    assert_eq!(got["roles"], json!(["DemoApp.Write"]));
    assert_eq!(got["access_level"], "Write");
}

#[tokio::test]
async fn a_number_is_refused_with_a_page_naming_claim_and_type() {
    let app = app_reading(None, None).await;
    let response = sign_in_with(&app, "alice", &[], json!({"roles": 7})).await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("role_claim_type"));
    assert!(body.contains("roles as a number"), "{body}");
    assert!(body.contains("authorization.role_claim"), "{body}");
    assert!(!app.is_signed_in().await, "no session");
    let details = refused_details(&app).await;
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("role_claim_type:") && d.contains("a number")),
        "{details:?}"
    );

    // An object on the path, and a list holding a non-string, likewise.
    let keycloak = app_reading(Some("realm_access.roles"), None).await;
    for (shape, found) in [
        (
            json!({"realm_access": "DemoApp.Admin"}),
            "realm_access as a string",
        ),
        (json!({"realm_access": {"roles": {"a": 1}}}), "an object"),
        (
            json!({"realm_access": {"roles": ["DemoApp.Admin", 1]}}),
            "a list holding a number",
        ),
    ] {
        let browser = keycloak.same_app_new_browser();
        let response = sign_in_with(&browser, "alice", &[], shape.clone()).await;
        assert_eq!(response.status(), 403, "{shape}");
        let body = response.text().await.unwrap();
        assert_eq!(
            reason_of(&body).as_deref(),
            Some("role_claim_type"),
            "{shape}"
        );
        assert!(body.contains(found), "{shape}: {body}");
        assert!(!browser.is_signed_in().await, "{shape}");
    }
}

#[tokio::test]
async fn a_delegated_bearer_token_uses_the_role_claim() {
    let app = spawn_app_with(|env| {
        let root = env["APP__AUTH__AUTHORITY"].clone();
        env.insert(
            "APP__AUTH__AUTHORITY".into(),
            format!("{root}/{TENANT}/v2.0"),
        );
        env.insert(
            "APP__AUTHORIZATION__ROLE_CLAIM".into(),
            "realm_access.roles".into(),
        );
    })
    .await;
    let mut claims = app
        .idp
        .access_v2_claims(TENANT, "access_as_user", json!(["DemoApp.Admin"]));
    claims["realm_access"] = json!({"roles": "DemoApp.Read"});
    let call = |claims: Value| {
        let token = app.idp.sign(&claims);
        app.client.get(app.url("/api/me")).bearer_auth(token).send()
    };
    let ok: Value = call(claims.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(ok["roles"], json!(["DemoApp.Read"]), "{ok}");

    claims["realm_access"] = json!({"roles": 3});
    let refused = call(claims).await.unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("realm_access.roles"), "{challenge}");
    assert!(challenge.contains("a number"), "{challenge}");
}

#[tokio::test]
async fn an_invalid_role_claim_is_a_settings_problem() {
    let idp = crate::fake_idp::FakeIdp::start().await;
    let dir = temp_dir();
    let problems = |claim: &str| {
        let mut env = base_env(&idp, &dir);
        env.insert("APP__AUTHORIZATION__ROLE_CLAIM".into(), claim.into());
        load_settings("Test", &env).problems
    };
    for bad in ["realm_access..roles", ".roles", "{tenant}.roles", "sub"] {
        let found = problems(bad);
        let problem = found
            .iter()
            .find(|p| p.key == "authorization.role_claim")
            .unwrap_or_else(|| panic!("{bad}: {found:?}"));
        assert!(
            problem.message.contains("e.g."),
            "{bad}: {}",
            problem.message
        );
    }
    assert!(problems("resource_access.{client_id}.roles").is_empty());
}

#[tokio::test]
async fn display_name_falls_back_to_username_then_email_then_sub() {
    let app = app_reading(None, None).await;
    let cases: [(&[&str], Value, &str); 3] = [
        (&["name"], json!({}), "bob@rolegate.test"),
        (
            &["name", "preferred_username"],
            json!({"email": "bob@mail.test"}),
            "bob@mail.test",
        ),
        (
            &["name", "preferred_username"],
            json!({"name": " "}),
            "sub-bob-0001",
        ),
    ];
    for (remove, extra, shown) in cases {
        let browser = app.same_app_new_browser();
        let response = sign_in_with(&browser, "bob", remove, extra).await;
        assert_eq!(response.status(), 302, "{shown}");
        assert_eq!(me(&browser).await["name"], shown);
        let page = browser.get("/").await.text().await.unwrap();
        assert!(
            page.contains(&format!("<span id=\"user-name\">{shown}</span>")),
            "{page}"
        );
    }
}
