//! Tenant safety and Entra-style authority settings (issue 11, items 2 and 3): a multi-tenant
//! authority needs `auth.allowed_tenants`, `*` is an explicit opt-in, a refused tenant gets the
//! tenant page (sign-in) or a 401 naming it (Bearer), and `auth.instance` + `auth.tenant_id`
//! give the authority.

use std::collections::HashMap;
use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};
use rolegate::settings;
use rolegate::startup::Application;
use serde_json::{Value, json};

use crate::fake_idp::TENANT;
use crate::helpers::{TestApp, load_settings, reason_of, spawn_app_with};

const FOREIGN: &str = "f4b71c2e-9d3a-4b6f-8e1c-7a2b3c4d5e6f";

/// rolegate on the fake provider's `/organizations/v2.0`, with `allowed_tenants` (None = unset).
async fn organizations_app(allowed: Option<&str>) -> TestApp {
    spawn_app_with(|env| {
        let root = env["APP__AUTH__AUTHORITY"].clone();
        env.insert(
            "APP__AUTH__AUTHORITY".into(),
            format!("{root}/organizations/v2.0"),
        );
        if let Some(allowed) = allowed {
            env.insert("APP__AUTH__ALLOWED_TENANTS".into(), allowed.into());
        }
    })
    .await
}

/// An ID token of `user` issued by `tid`'s issuer for the started sign-in.
fn id_token_of(app: &TestApp, user: &str, tid: &str, nonce: &str) -> String {
    let mut claims = app.idp.claims(user, nonce);
    claims["tid"] = json!(tid);
    claims["iss"] = json!(app.idp.tenant_authority(tid));
    app.idp.sign(&claims)
}

/// `(event, user_id, detail)` of the `sign_in_refused` rows, waiting for the write-behind.
async fn refused_rows(app: &TestApp, at_least: usize) -> Vec<(Option<String>, String)> {
    let pool = app.pool().await;
    for _ in 0..50 {
        let rows: Vec<(Option<String>, String)> = sqlx::query_as(
            "SELECT user_id, detail FROM audit_log WHERE event = 'sign_in_refused' ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if rows.len() >= at_least {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Vec::new()
}

async fn session_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_sub IS NOT NULL")
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_foreign_tenant_is_refused_at_sign_in_with_the_tenant_page() {
    // Upper case in the setting: tenant ids compare as GUIDs.
    let app = organizations_app(Some(&TENANT.to_uppercase())).await;
    let started = app.start_login("").await;
    let response = app
        .finish_with_token(
            &started,
            id_token_of(&app, "alice", FOREIGN, &started.nonce),
        )
        .await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("tenant_not_allowed"));
    assert!(body.contains(FOREIGN), "the page names the tenant: {body}");
    assert!(
        body.contains("auth.allowed_tenants"),
        "the page names the setting"
    );
    assert!(app.session_cookie().is_none(), "no session cookie");
    assert!(!app.is_signed_in().await);
    assert_eq!(session_rows(&app).await, 0, "no signed-in session row");
    let rows = refused_rows(&app, 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].1.starts_with("tenant_not_allowed:") && rows[0].1.contains(FOREIGN),
        "{rows:?}"
    );

    // The home tenant signs in through the same authority.
    let started = app.start_login("").await;
    let response = app
        .finish_with_token(&started, id_token_of(&app, "alice", TENANT, &started.nonce))
        .await;
    assert_eq!(response.status(), 302);
    let me: Value = app.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["tid"], TENANT);
}

#[tokio::test]
async fn a_foreign_tenant_bearer_token_is_401_naming_the_tenant() {
    let app = organizations_app(Some(TENANT)).await;
    let claims = app
        .idp
        .access_v2_claims(FOREIGN, "access_as_user", json!(["DemoApp.Admin"]));
    let response = app
        .client
        .get(app.url("/api/notes"))
        .bearer_auth(app.idp.sign(&claims))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer error=\"invalid_token\", error_description=\"the token's tenant (tid) {FOREIGN} is not allowed (auth.allowed_tenants)\""
        )
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    // A tid that is no GUID is refused without being echoed into the header.
    let mut odd = claims.clone();
    odd["tid"] = json!("not-a-guid");
    odd["iss"] = json!(app.idp.tenant_authority("not-a-guid"));
    let response = app
        .client
        .get(app.url("/api/notes"))
        .bearer_auth(app.idp.sign(&odd))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("the token's tenant (tid) is not allowed")
            && !challenge.contains("not-a-guid"),
        "{challenge}"
    );
}

#[tokio::test]
async fn star_lets_every_tenant_in_explicitly_and_warns() {
    let app = organizations_app(Some("[\"*\"]")).await;
    let started = app.start_login("").await;
    let response = app
        .finish_with_token(
            &started,
            id_token_of(&app, "alice", FOREIGN, &started.nonce),
        )
        .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let me: Value = app.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["tid"], FOREIGN);

    let loaded = load_settings("Test", &app.env);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let warnings = settings::warnings(&loaded.settings);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("auth.allowed_tenants is [\"*\"]")
                && w.contains("every Entra tenant")),
        "{warnings:?}"
    );
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("APP__SERVER__PORT", "0"),
        ("APP__SERVER__HOST", "127.0.0.1"),
        ("APP__SERVER__PUBLIC_URL", "https://app.example"),
        ("APP__AUTH__CLIENT_ID", "client"),
        ("APP__AUTH__CLIENT_SECRET", "secret-value-1"),
        (
            "APP__SESSION__KEY",
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw==",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in pairs {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// Loads `pairs` from an empty directory (no shipped appsettings files).
fn load_in_empty_dir(app_env: &str, pairs: &[(&str, &str)]) -> settings::Loaded {
    let dir = crate::helpers::temp_dir();
    settings::load(
        &dir,
        Some(app_env),
        env(pairs).into_iter().collect::<config::Map<_, _>>(),
    )
}

fn problem<'a>(loaded: &'a settings::Loaded, key: &str) -> Option<&'a str> {
    loaded
        .problems
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.message.as_str())
}

#[test]
fn a_multi_tenant_authority_without_allowed_tenants_is_a_settings_problem() {
    for authority in [
        "https://login.microsoftonline.com/organizations/v2.0",
        "https://login.microsoftonline.com/common/v2.0",
    ] {
        let loaded = load_in_empty_dir("Production", &[("APP__AUTH__AUTHORITY", authority)]);
        let message = problem(&loaded, "auth.allowed_tenants")
            .unwrap_or_else(|| panic!("{authority}: {:?}", loaded.problems));
        assert!(
            message.contains("multi-tenant") && message.contains("[\"*\"]"),
            "{message}"
        );
    }
    // Derived from auth.tenant_id too; a list or "*" is fine; junk entries are named.
    let loaded = load_in_empty_dir("Production", &[("APP__AUTH__TENANT_ID", "organizations")]);
    assert!(
        problem(&loaded, "auth.allowed_tenants").is_some(),
        "{:?}",
        loaded.problems
    );
    for ok in [TENANT, "*"] {
        let loaded = load_in_empty_dir(
            "Production",
            &[
                ("APP__AUTH__TENANT_ID", "common"),
                ("APP__AUTH__ALLOWED_TENANTS", ok),
            ],
        );
        assert!(loaded.problems.is_empty(), "{ok}: {:?}", loaded.problems);
    }
    let loaded = load_in_empty_dir(
        "Production",
        &[
            ("APP__AUTH__TENANT_ID", "organizations"),
            ("APP__AUTH__ALLOWED_TENANTS", "contoso.onmicrosoft.com"),
        ],
    );
    assert!(
        problem(&loaded, "auth.allowed_tenants").is_some_and(|m| m.contains("is not a tenant id")),
        "{:?}",
        loaded.problems
    );
    let loaded = load_in_empty_dir(
        "Production",
        &[
            ("APP__AUTH__TENANT_ID", TENANT),
            ("APP__AUTH__ALLOWED_TENANTS", &format!("*,{TENANT}")),
        ],
    );
    assert!(
        problem(&loaded, "auth.allowed_tenants").is_some_and(|m| m.contains("only entry")),
        "{:?}",
        loaded.problems
    );
}

#[tokio::test]
async fn production_refuses_to_start_with_an_open_multi_tenant_authority() {
    let loaded = load_in_empty_dir(
        "Production",
        &[(
            "APP__AUTH__AUTHORITY",
            "https://login.microsoftonline.com/organizations/v2.0",
        )],
    );
    let err = match Application::build(loaded).await {
        Ok(_) => panic!("must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("auth.allowed_tenants") && err.contains("multi-tenant"),
        "{err}"
    );
}

#[tokio::test]
async fn development_shows_the_open_multi_tenant_authority_on_the_almost_there_page() {
    let loaded = load_in_empty_dir(
        "Development",
        &[
            ("APP__AUTH__TENANT_ID", "organizations"),
            ("APP__SERVER__PUBLIC_URL", "http://127.0.0.1:8000"),
        ],
    );
    assert_eq!(
        loaded
            .problems
            .iter()
            .map(|p| p.key.as_str())
            .collect::<Vec<_>>(),
        ["auth.allowed_tenants"]
    );
    let app = Application::build(loaded)
        .await
        .expect("development starts anyway");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let response = reqwest::get(format!("{base}/login")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(body.contains("Almost there"), "{body}");
    assert!(
        body.contains("auth.allowed_tenants") && body.contains("APP__AUTH__ALLOWED_TENANTS"),
        "{body}"
    );
}

#[test]
fn instance_and_tenant_id_give_the_authority_and_authority_wins() {
    let loaded = load_in_empty_dir("Production", &[("APP__AUTH__TENANT_ID", TENANT)]);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let auth = &loaded.settings.auth;
    assert_eq!(
        auth.authority.as_ref().unwrap().as_str(),
        format!("https://login.microsoftonline.com/{TENANT}/v2.0")
    );
    assert!(auth.authority_derived);

    // A sovereign cloud's instance, with or without its trailing slash.
    for instance in [
        "https://login.microsoftonline.us/",
        "https://login.microsoftonline.us",
    ] {
        let loaded = load_in_empty_dir(
            "Production",
            &[
                ("APP__AUTH__INSTANCE", instance),
                ("APP__AUTH__TENANT_ID", TENANT),
            ],
        );
        assert_eq!(
            loaded.settings.auth.authority.as_ref().unwrap().as_str(),
            format!("https://login.microsoftonline.us/{TENANT}/v2.0")
        );
    }

    // auth.authority wins, and the ignored keys are pointed out.
    let explicit = format!("https://login.microsoftonline.com/{FOREIGN}/v2.0");
    let loaded = load_in_empty_dir(
        "Production",
        &[
            ("APP__AUTH__AUTHORITY", &explicit),
            ("APP__AUTH__TENANT_ID", TENANT),
        ],
    );
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(
        loaded.settings.auth.authority.as_ref().unwrap().as_str(),
        explicit
    );
    assert!(!loaded.settings.auth.authority_derived);
    let warnings = settings::warnings(&loaded.settings);
    assert!(
        warnings.iter().any(|w| w.contains("auth.tenant_id")),
        "{warnings:?}"
    );
    let config = settings::auth_config(&loaded.settings).unwrap();
    assert_eq!(config.authority().as_str(), explicit);
}

#[test]
fn neither_authority_nor_tenant_id_is_one_problem_naming_both() {
    let loaded = load_in_empty_dir("Production", &[]);
    let authority: Vec<&settings::Problem> = loaded
        .problems
        .iter()
        .filter(|p| p.key == "auth.authority")
        .collect();
    assert_eq!(authority.len(), 1, "{:?}", loaded.problems);
    assert!(
        authority[0].message.contains("auth.tenant_id")
            && authority[0].message.contains("auth.instance"),
        "{}",
        authority[0].message
    );
    // A bad instance or tenant id is named, without a second "authority is missing".
    let loaded = load_in_empty_dir(
        "Production",
        &[
            ("APP__AUTH__INSTANCE", "http://login.example.com/"),
            ("APP__AUTH__TENANT_ID", "a/b"),
        ],
    );
    let keys: Vec<&str> = loaded.problems.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"auth.instance"), "{keys:?}");
    assert!(keys.contains(&"auth.tenant_id"), "{keys:?}");
    assert!(!keys.contains(&"auth.authority"), "{keys:?}");
    assert!(problem(&loaded, "auth.instance").unwrap().contains("https"));
}

fn check_config(pairs: &[(&str, &str)]) -> (bool, String) {
    let dir = crate::helpers::temp_dir();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .arg("check-config")
        .current_dir(&dir)
        .env("APP_ENV", "Production")
        .envs(env(pairs))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn check_config_prints_the_derived_authority_the_issuer_and_the_star_warning() {
    let (ok, stdout) = check_config(&[
        ("APP__AUTH__TENANT_ID", "organizations"),
        ("APP__AUTH__ALLOWED_TENANTS", "*"),
    ]);
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains(
            "authority: https://login.microsoftonline.com/organizations/v2.0 (from auth.instance + auth.tenant_id)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("issuer expected: https://login.microsoftonline.com/{tenantid}/v2.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: auth.allowed_tenants is [\"*\"]"),
        "{stdout}"
    );

    let (ok, stdout) = check_config(&[("APP__AUTH__TENANT_ID", TENANT)]);
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "issuer expected: https://login.microsoftonline.com/{TENANT}/v2.0\n"
        )),
        "{stdout}"
    );

    // Without allowed tenants: the problem, and a failing exit status.
    let (ok, stdout) = check_config(&[("APP__AUTH__TENANT_ID", "common")]);
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("  - auth.allowed_tenants: is empty"),
        "{stdout}"
    );
    assert!(stdout.contains("{tenantid}"), "{stdout}");
}

/// A provider whose discovery at `/contoso/v2.0` has a `{tenantid}` issuer though the path
/// names no multi-tenant alias: only discovery can tell, and the crate must refuse it.
async fn template_provider(jwks_and_token_from: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let doc = json!({
        "issuer": format!("{base}/{{tenantid}}/v2.0"),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{jwks_and_token_from}/token"),
        "jwks_uri": format!("{jwks_and_token_from}/jwks"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let server = HttpServer::new(move || {
        let doc = doc.clone();
        App::new().route(
            "/contoso/v2.0/.well-known/openid-configuration",
            web::get().to(move || {
                let doc = doc.clone();
                async move { HttpResponse::Ok().json(doc) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("{base}/contoso/v2.0")
}

#[tokio::test]
async fn a_discovered_template_issuer_without_a_tenant_policy_is_refused() {
    let idp = crate::fake_idp::FakeIdp::start().await;
    let authority = template_provider(&idp.issuer).await;
    let app = spawn_app_with(|env| {
        env.insert("APP__AUTH__AUTHORITY".into(), authority.clone());
    })
    .await;
    let response = app.get("/login").await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("tenant_policy_missing"));
    assert!(body.contains("auth.allowed_tenants"), "{body}");
    assert!(app.session_cookie().is_none());

    // With a policy the same provider is accepted.
    let app = spawn_app_with(|env| {
        env.insert("APP__AUTH__AUTHORITY".into(), authority.clone());
        env.insert("APP__AUTH__ALLOWED_TENANTS".into(), TENANT.into());
    })
    .await;
    assert_eq!(app.get("/login").await.status(), 200);
}
