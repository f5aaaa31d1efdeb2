//! Bearer tokens checked as access tokens (issue 11, item 5): Entra v1 and v2 shapes,
//! delegated scopes, app-only roles, and the RFC 6750 answers for everything else.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::fake_idp::{CLIENT_ID, TENANT};
use crate::helpers::{TestApp, load_settings, spawn_app_with};

const FOREIGN: &str = "f4b71c2e-9d3a-4b6f-8e1c-7a2b3c4d5e6f";

const ID_TOKEN: &str = "Bearer error=\"invalid_token\", error_description=\"an ID token is not an access token; request an access token for this API's scope (auth.api_scopes)\"";
const NO_SCOPE_OR_ROLES: &str = "Bearer error=\"invalid_token\", error_description=\"the token carries neither a delegated scope (scp, auth.api_scopes) nor app roles (roles)\"";
const MISSING_SCOPE: &str = "Bearer error=\"insufficient_scope\", error_description=\"the token's scopes (scp) include none of this API's scopes: access_as_user (auth.api_scopes)\"";
const WRONG_AUDIENCE: &str = "Bearer error=\"invalid_token\", error_description=\"the token's audience (aud) is not this API (auth.api_audiences)\"";
const WRONG_ISSUER: &str = "Bearer error=\"invalid_token\", error_description=\"the token's issuer is not the configured authority or its tenant (auth.authority)\"";
const FOREIGN_TENANT: &str = "Bearer error=\"invalid_token\", error_description=\"the token's tenant (tid) f4b71c2e-9d3a-4b6f-8e1c-7a2b3c4d5e6f is not allowed (auth.allowed_tenants)\"";

/// rolegate on the home tenant's Entra-shaped authority `/{TENANT}/v2.0`.
async fn tenant_app(tweak: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    spawn_app_with(|env| {
        let root = env["APP__AUTH__AUTHORITY"].clone();
        env.insert(
            "APP__AUTH__AUTHORITY".into(),
            format!("{root}/{TENANT}/v2.0"),
        );
        tweak(env);
    })
    .await
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    claims: &Value,
) -> reqwest::Response {
    let token = app.idp.sign(claims);
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(token);
    if method == reqwest::Method::POST {
        request = request.json(&json!({"title": "from a daemon", "body": "hello"}));
    }
    request.send().await.unwrap()
}

async fn me(app: &TestApp, claims: &Value) -> reqwest::Response {
    call(app, reqwest::Method::GET, "/api/me", claims).await
}

/// `GET /api/me` with an already signed token (one `call` would sign with the first key).
async fn me_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Status, exact challenge and the JSON body's `error` of a refused call.
async fn assert_refused(response: reqwest::Response, status: u16, challenge: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        challenge,
        "{what}"
    );
    assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
    let body: Value = response.json().await.unwrap();
    let code = challenge.split('"').nth(1).unwrap();
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(body["detail"].is_string(), "{what}: {body}");
}

async fn audit_rows(app: &TestApp) -> Vec<(Option<String>, String)> {
    sqlx::query_as(
        "SELECT user_id, detail FROM audit_log WHERE event = 'access_denied' ORDER BY id",
    )
    .fetch_all(&app.pool().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_id_token_as_bearer_is_401_invalid_token_and_audited() {
    let app = tenant_app(|_| {}).await;
    let mut id_token = app.idp.claims("alice", "nonce-1");
    id_token["iss"] = json!(app.idp.tenant_authority(TENANT));
    assert_refused(me(&app, &id_token).await, 401, ID_TOKEN, "with nonce").await;

    // Without a nonce (a refreshed ID token), roles but no calling client: still an ID token.
    let mut no_nonce = id_token.clone();
    no_nonce.as_object_mut().unwrap().remove("nonce");
    assert_refused(me(&app, &no_nonce).await, 401, ID_TOKEN, "roles, no azp").await;
    // With azp = this app itself and no idtyp app: an ID token too.
    no_nonce["azp"] = json!(CLIENT_ID);
    assert_refused(me(&app, &no_nonce).await, 401, ID_TOKEN, "azp = client").await;
    // Neither scp nor roles.
    let mut bare = app.idp.claims("erin", "n");
    bare["iss"] = json!(app.idp.tenant_authority(TENANT));
    bare.as_object_mut().unwrap().remove("nonce");
    assert_refused(
        me(&app, &bare).await,
        401,
        NO_SCOPE_OR_ROLES,
        "no scp, no roles",
    )
    .await;

    assert!(
        app.session_cookie().is_none(),
        "no session from a refused token"
    );
    let rows = audit_rows(&app).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[0].0.as_deref(), Some("oid-alice"));
    assert!(
        rows[0]
            .1
            .contains("GET /api/me: Bearer token refused (id_token_as_bearer)"),
        "{rows:?}"
    );
    assert!(rows[3].1.contains("(no_scope_or_roles)"), "{rows:?}");
    // The token itself is never written down.
    let token = app.idp.sign(&id_token);
    let signature = token.rsplit('.').next().unwrap();
    assert!(rows.iter().all(|(_, d)| !d.contains(signature)));
}

#[tokio::test]
async fn v2_and_v1_access_tokens_are_accepted() {
    let app = tenant_app(|_| {}).await;
    let v2 = app
        .idp
        .access_v2_claims(TENANT, "access_as_user", json!(["DemoApp.Read"]));
    let response = me(&app, &v2).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "Alice Test");
    assert_eq!(body["app_only"], false);
    assert_eq!(body["azp"], "rolegate-spa");
    assert_eq!(body["roles"], json!(["DemoApp.Read"]));

    let v1 = app
        .idp
        .access_v1_claims(TENANT, "User.Read access_as_user", json!(["DemoApp.Write"]));
    let response = me(&app, &v1).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["azp"], "rolegate-spa", "appid stands in for azp");
    assert_eq!(body["tid"], TENANT);
    let response = call(&app, reqwest::Method::GET, "/api/notes", &v1).await;
    assert_eq!(
        response.status(),
        200,
        "the roles count as for a signed-in user"
    );

    // A v1 token with the v2 issuer, a v2 token with the v1 issuer, an unknown version.
    let mut v1_with_v2_iss = v1.clone();
    v1_with_v2_iss["iss"] = v2["iss"].clone();
    let mut v2_with_v1_iss = v2.clone();
    v2_with_v1_iss["iss"] = v1["iss"].clone();
    let mut v1_public_cloud = v1.clone();
    v1_public_cloud["iss"] = json!(format!("https://sts.windows.net/{TENANT}/"));
    for (what, claims) in [
        ("v1 with v2 iss", &v1_with_v2_iss),
        ("v2 with v1 iss", &v2_with_v1_iss),
        ("sts.windows.net off the public cloud", &v1_public_cloud),
    ] {
        assert_refused(me(&app, claims).await, 401, WRONG_ISSUER, what).await;
    }
    let mut v3 = v2.clone();
    v3["ver"] = json!("3.0");
    assert_refused(
        me(&app, &v3).await,
        401,
        "Bearer error=\"invalid_token\", error_description=\"the token's version (ver) is not 1.0 or 2.0\"",
        "ver 3.0",
    )
    .await;
}

#[tokio::test]
async fn an_access_token_without_the_scope_is_403_insufficient_scope() {
    let app = tenant_app(|_| {}).await;
    let claims = app
        .idp
        .access_v2_claims(TENANT, "User.Read Notes.Read", json!(["DemoApp.Admin"]));
    assert_refused(
        me(&app, &claims).await,
        403,
        MISSING_SCOPE,
        "no access_as_user",
    )
    .await;
    // Refused again (nothing cached), and audited as a denial of that user.
    assert_refused(me(&app, &claims).await, 403, MISSING_SCOPE, "again").await;
    let rows = audit_rows(&app).await;
    assert_eq!(
        rows.len(),
        1,
        "one row a minute per user and route: {rows:?}"
    );
    assert_eq!(rows[0].0.as_deref(), Some("oid-alice"));
    assert!(
        rows[0].1.contains("needs the scope access_as_user"),
        "{rows:?}"
    );

    // The scopes are a setting.
    let app = tenant_app(|env| {
        env.insert(
            "APP__AUTH__API_SCOPES".into(),
            "Notes.Read, Notes.Write".into(),
        );
    })
    .await;
    let claims = app
        .idp
        .access_v2_claims(TENANT, "User.Read Notes.Read", json!(["DemoApp.Admin"]));
    assert_eq!(me(&app, &claims).await.status(), 200);
    let default_scope =
        app.idp
            .access_v2_claims(TENANT, "access_as_user", json!(["DemoApp.Admin"]));
    let response = me(&app, &default_scope).await;
    assert_eq!(response.status(), 403);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("include none of this API's scopes: Notes.Read, Notes.Write")
    );
}

#[tokio::test]
async fn a_delegated_token_without_the_role_gets_insufficient_scope() {
    let app = tenant_app(|_| {}).await;
    let claims = app
        .idp
        .access_v2_claims(TENANT, "access_as_user", json!(["DemoApp.Read"]));
    assert_eq!(me(&app, &claims).await.status(), 200);
    assert_refused(
        call(&app, reqwest::Method::POST, "/api/notes", &claims).await,
        403,
        "Bearer error=\"insufficient_scope\", error_description=\"this needs the app role DemoApp.Write\"",
        "Read user posting",
    )
    .await;
}

#[tokio::test]
async fn app_only_tokens_are_gated_by_the_role_hierarchy() {
    let app = tenant_app(|_| {}).await;
    let reader = app
        .idp
        .app_only_claims(TENANT, "rolegate-daemon", json!(["DemoApp.Read"]));
    for _ in 0..2 {
        // The second call is answered from the token cache, with the same caller.
        let response = me(&app, &reader).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["app_only"], true, "{body}");
        assert_eq!(body["name"], "rolegate-daemon");
        assert_eq!(body["azp"], "rolegate-daemon");
        assert!(body["access_level"].is_string(), "{body}");
    }
    assert_eq!(
        call(&app, reqwest::Method::GET, "/api/notes", &reader)
            .await
            .status(),
        200
    );
    assert_refused(
        call(&app, reqwest::Method::POST, "/api/notes", &reader).await,
        403,
        "Bearer error=\"insufficient_scope\", error_description=\"this needs the app role DemoApp.Write\"",
        "Read app posting",
    )
    .await;

    // Admin implies Write: the daemon may post, without a CSRF token (no cookie).
    let admin = app
        .idp
        .app_only_claims(TENANT, "rolegate-daemon-admin", json!(["DemoApp.Admin"]));
    let response = call(&app, reqwest::Method::POST, "/api/notes", &admin).await;
    assert_eq!(response.status(), 201);

    // v1 app-only (appid, no idtyp) works too.
    let mut v1 = reader.clone();
    v1["ver"] = json!("1.0");
    v1["iss"] = json!(format!("{}/{TENANT}/", app.idp.issuer));
    v1["aud"] = json!(format!("api://{CLIENT_ID}"));
    let obj = v1.as_object_mut().unwrap();
    obj.remove("azp");
    obj.remove("idtyp");
    obj.insert("appid".into(), json!("rolegate-daemon-v1"));
    let response = me(&app, &v1).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["name"],
        "rolegate-daemon-v1"
    );

    // Roles outside the hierarchy grant nothing: 403; no roles at all: not an API token, 401.
    let foreign_roles = app
        .idp
        .app_only_claims(TENANT, "rolegate-daemon", json!(["Mail.Send"]));
    let response = me(&app, &foreign_roles).await;
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\", error_description=\"the application's app roles (roles) include none of this API's roles: "),
        "{challenge}"
    );
    for roles in [json!(null), json!([])] {
        let no_roles = app
            .idp
            .app_only_claims(TENANT, "rolegate-daemon-norole", roles.clone());
        assert_refused(
            me(&app, &no_roles).await,
            401,
            NO_SCOPE_OR_ROLES,
            &roles.to_string(),
        )
        .await;
    }
}

#[tokio::test]
async fn bearer_tokens_of_a_foreign_tenant_are_refused() {
    // Single tenant: another tenant's issuer is not this authority's.
    let app = tenant_app(|_| {}).await;
    for claims in [
        app.idp
            .access_v2_claims(FOREIGN, "access_as_user", json!(["DemoApp.Admin"])),
        app.idp
            .access_v1_claims(FOREIGN, "access_as_user", json!(["DemoApp.Admin"])),
        app.idp
            .app_only_claims(FOREIGN, "evil-daemon", json!(["DemoApp.Admin"])),
    ] {
        assert_refused(me(&app, &claims).await, 401, WRONG_ISSUER, "single tenant").await;
    }
    // Multi-tenant: the issuer template fits any tenant, the allow-list decides.
    let app = tenant_app(|env| {
        env.insert(
            "APP__AUTH__AUTHORITY".into(),
            env["APP__AUTH__AUTHORITY"].replace(TENANT, "organizations"),
        );
        env.insert(
            "APP__AUTH__ALLOWED_TENANTS".into(),
            format!("[\"{TENANT}\"]"),
        );
    })
    .await;
    for (claims, what) in [
        (
            app.idp
                .access_v2_claims(FOREIGN, "access_as_user", json!(["DemoApp.Admin"])),
            "v2",
        ),
        (
            app.idp
                .access_v1_claims(FOREIGN, "access_as_user", json!(["DemoApp.Admin"])),
            "v1",
        ),
        (
            app.idp
                .app_only_claims(FOREIGN, "evil-daemon", json!(["DemoApp.Admin"])),
            "app",
        ),
    ] {
        assert_refused(me(&app, &claims).await, 401, FOREIGN_TENANT, what).await;
    }
    for claims in [
        app.idp
            .access_v2_claims(TENANT, "access_as_user", json!(["DemoApp.Read"])),
        app.idp
            .access_v1_claims(TENANT, "access_as_user", json!(["DemoApp.Read"])),
        app.idp
            .app_only_claims(TENANT, "rolegate-daemon", json!(["DemoApp.Read"])),
    ] {
        assert_eq!(
            me(&app, &claims).await.status(),
            200,
            "home tenant: {claims}"
        );
    }
}

#[tokio::test]
async fn the_audience_must_be_one_of_api_audiences() {
    let app = tenant_app(|_| {}).await;
    let good = app
        .idp
        .access_v2_claims(TENANT, "access_as_user", json!(["DemoApp.Read"]));
    for aud in [json!(CLIENT_ID), json!(format!("api://{CLIENT_ID}"))] {
        let mut c = good.clone();
        c["aud"] = aud.clone();
        assert_eq!(me(&app, &c).await.status(), 200, "{aud}");
    }
    for aud in [
        json!("api://someone-else"),
        json!("00000003-0000-0000-c000-000000000000"),
        json!([CLIENT_ID, "https://graph.microsoft.com"]),
    ] {
        let mut c = good.clone();
        c["aud"] = aud.clone();
        assert_refused(me(&app, &c).await, 401, WRONG_AUDIENCE, &aud.to_string()).await;
    }

    // An explicit list replaces the defaults.
    let app = tenant_app(|env| {
        env.insert(
            "APP__AUTH__API_AUDIENCES".into(),
            "[\"api://rolegate-api\"]".into(),
        );
    })
    .await;
    let good = app
        .idp
        .access_v2_claims(TENANT, "access_as_user", json!(["DemoApp.Read"]));
    assert_refused(
        me(&app, &good).await,
        401,
        WRONG_AUDIENCE,
        "client id not listed",
    )
    .await;
    let mut listed = good.clone();
    listed["aud"] = json!("api://rolegate-api");
    assert_eq!(me(&app, &listed).await.status(), 200);
}

#[tokio::test]
async fn api_audience_is_a_deprecated_alias_added_to_the_list() {
    let app = tenant_app(|env| {
        env.insert(
            "APP__AUTH__API_AUDIENCE".into(),
            "https://api.rolegate.test".into(),
        );
    })
    .await;
    let mut custom = app
        .idp
        .access_v2_claims(TENANT, "access_as_user", json!(["DemoApp.Read"]));
    assert_eq!(me(&app, &custom).await.status(), 200, "the defaults stay");
    custom["aud"] = json!("https://api.rolegate.test");
    assert_eq!(me(&app, &custom).await.status(), 200, "the alias is added");

    let loaded = load_settings("Test", &app.env);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let notices = rolegate::settings::deprecations(&loaded.settings);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].contains("auth.api_audience is deprecated"),
        "{notices:?}"
    );
    assert!(notices[0].contains("auth.api_audiences"), "{notices:?}");
    let config = rolegate::settings::auth_config(&loaded.settings).unwrap();
    assert_eq!(
        config.api_audiences(),
        [
            CLIENT_ID.to_owned(),
            format!("api://{CLIENT_ID}"),
            "https://api.rolegate.test".to_owned()
        ]
    );
    // Without the old key there is nothing to warn about.
    let mut env = app.env.clone();
    env.remove("APP__AUTH__API_AUDIENCE");
    assert!(rolegate::settings::deprecations(&load_settings("Test", &env).settings).is_empty());
}

#[test]
fn bad_api_scopes_and_audiences_are_settings_problems() {
    let idp_env = |extra: &[(&str, &str)]| {
        let mut env: HashMap<String, String> = [
            ("APP__SERVER__PUBLIC_URL", "http://127.0.0.1:18443"),
            ("APP__AUTH__AUTHORITY", "http://127.0.0.1:9/t/v2.0"),
            ("APP__AUTH__CLIENT_ID", CLIENT_ID),
            ("APP__AUTH__CLIENT_SECRET", "s"),
            ("APP__SESSION__KEY", &crate::helpers::session_key_b64()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        load_settings("Test", &env).problems
    };
    assert!(idp_env(&[]).is_empty(), "{:?}", idp_env(&[]));
    let problems = idp_env(&[("APP__AUTH__API_SCOPES", "[\"api://x/access_as_user read\"]")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "auth.api_scopes");
    let problems = idp_env(&[("APP__AUTH__API_SCOPES", "[]")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("at least one scope"),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_token_checked_while_the_keys_are_unreachable_is_503_not_invalid_token() {
    let app = tenant_app(|env| {
        env.insert("APP__AUTH__JWKS_REFRESH_COOLDOWN_SECS".into(), "0".into());
    })
    .await;
    let claims = app
        .idp
        .access_v2_claims(TENANT, "access_as_user", json!(["DemoApp.Read"]));
    // Signed with a key the provider has not published yet, so the keys must be refetched,
    // and the JWKS endpoint is down.
    app.idp.state.lock().unwrap().jwks_status = Some(503);
    let token = crate::fake_idp::sign_with(
        &app.idp.key2.encoding,
        Some("key-2"),
        jsonwebtoken::Algorithm::RS256,
        &claims,
    );
    let response = me_with(&app, &token).await;
    assert_eq!(response.status(), 503);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        !challenge.as_deref().unwrap_or("").contains("invalid_token"),
        "a good token must not be called invalid during an outage: {challenge:?}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "provider_unavailable", "{body}");

    // Once the provider is back with the key, the same token is accepted.
    {
        let mut state = app.idp.state.lock().unwrap();
        state.jwks_status = None;
        state.published.push(app.idp.key2.jwk.clone());
    }
    let response = me_with(&app, &token).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}
