//! Roles, role sources and route rules as settings; the auth crate mounted in a bare app.

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_web::{App, HttpServer, cookie::Key, web};
use reqwest::cookie::Jar;
use rolegate_auth::{
    Auth, AuthConfig, CurrentUser, DefaultPages, MemoryStore, NoEvents, RequireRole, RuleSpec,
};
use serde_json::json;

use crate::fake_idp::{CLIENT_ID, CLIENT_SECRET, FakeIdp};
use crate::helpers::{PUBLIC_URL, TestApp, client_with, load_settings, spawn_app, spawn_app_with};

#[allow(dead_code)] // `main` is the example's own entry point
#[path = "../../crates/rolegate-auth/examples/minimal.rs"]
mod minimal;

rolegate_auth::app_role!(
    /// The higher of the two custom levels.
    Editor = "Contoso.Editor"
);

/// Signs in as `user` with exactly `roles` (or `groups`) in the ID token.
async fn sign_in_with(app: &TestApp, user: &str, extra: serde_json::Value) -> reqwest::Response {
    let started = app.start_login("").await;
    let mut claims = app.idp.claims(user, &started.nonce);
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    app.finish_with_token(&started, app.idp.sign(&claims)).await
}

#[tokio::test]
async fn a_page_protected_only_by_a_rule() {
    let app = spawn_app().await;
    let anonymous = app.get("/reports").await;
    assert_eq!(anonymous.status(), 302);
    assert_eq!(anonymous.headers()["location"], "/login?next=%2Freports");
    app.sign_in("carol").await;
    let page = app.get("/reports").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("id=\"notes-by-author\"")
    );
}

#[tokio::test]
async fn rules_are_judged_on_the_routed_path_and_answer_json_on_request() {
    let app = spawn_app_with(|env| {
        env.insert(
            "APP__AUTHORIZATION__RULES".into(),
            json!([{"path": "/reports/**", "role": "DemoApp.Write"}]).to_string(),
        );
    })
    .await;
    app.sign_in("carol").await;
    for path in ["/reports", "/%72eports", "/reports/"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 403, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("DemoApp.Write"), "{path}: {body}");
    }
    let json = app
        .client
        .get(app.url("/reports"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 403);
    let body: serde_json::Value = json.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    assert_eq!(bob.get("/reports").await.status(), 200);
}

#[tokio::test]
async fn rules_and_code_guards_must_both_allow() {
    let app = spawn_app_with(|env| {
        env.insert(
            "APP__AUTHORIZATION__RULES".into(),
            json!([
                {"path": "/notes/**", "access": "anonymous"},
                {"path": "/admin", "role": "DemoApp.Read"},
                {"path": "/", "access": "deny", "methods": ["POST"]}
            ])
            .to_string(),
        );
    })
    .await;
    assert_eq!(
        app.get("/notes").await.status(),
        302,
        "the code guard still asks for Read"
    );
    app.sign_in("carol").await;
    assert_eq!(
        app.get("/admin").await.status(),
        403,
        "the code guard still asks for Admin"
    );
    assert_eq!(app.get("/notes").await.status(), 200);
    let post = app.client.post(app.url("/")).send().await.unwrap();
    assert_eq!(post.status(), 403, "denied by rule before routing");
}

#[tokio::test]
async fn default_deny_closes_every_path_no_rule_names_but_not_sign_in() {
    let app = spawn_app_with(|env| {
        env.insert("APP__AUTHORIZATION__DEFAULT".into(), "deny".into());
        env.insert(
            "APP__AUTHORIZATION__RULES".into(),
            json!([{"path": "/", "access": "signed_in"}, {"path": "/api/**", "access": "signed_in"}])
                .to_string(),
        );
    })
    .await;
    assert_eq!(app.get("/notes").await.status(), 403);
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.sign_in("alice").await;
    assert_eq!(app.get("/").await.status(), 200);
    assert_eq!(app.get("/api/me").await.status(), 200);
    assert_eq!(app.get("/notes").await.status(), 403, "even for an admin");
    assert_eq!(app.sign_out().await.status(), 302, "sign-out stays open");
}

#[test]
fn bad_roles_and_rules_are_every_one_reported_with_their_key() {
    let mut env = std::collections::HashMap::new();
    env.insert(
        "APP__AUTHORIZATION__ROLES".into(),
        "DemoApp.Read,DemoApp.Write,DemoApp.Admin,demoapp.admin".into(),
    );
    env.insert(
        "APP__AUTHORIZATION__RULES".into(),
        json!([
            {"path": "/a/**", "role": "DemoApp.Raed"},
            {"path": "/b", "access": "everyone"},
            {"path": "/c/*", "role": "DemoApp.Read"},
            {"path": "/*/d", "role": "DemoApp.Write"}
        ])
        .to_string(),
    );
    env.insert("APP__AUTHORIZATION__DEFAULT".into(), "nobody".into());
    let loaded = load_settings("Development", &env);
    let keys: Vec<&str> = loaded.problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "authorization.roles",
        "authorization.rules[0]",
        "authorization.rules[1]",
        "authorization.rules[3]",
        "authorization.default",
    ] {
        assert!(
            keys.contains(&key),
            "{key} missing from {:?}",
            loaded.problems
        );
    }
    let text: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
    assert!(text.iter().any(|t| t.contains("DemoApp.Raed")), "{text:?}");
    assert!(
        text.iter().any(|t| t.contains("APP__AUTHORIZATION__RULES")),
        "{text:?}"
    );

    // The DemoApp's own guards name DemoApp.*: a hierarchy without them is refused at start-up.
    let mut env = std::collections::HashMap::new();
    env.insert(
        "APP__AUTHORIZATION__ROLES".into(),
        "Contoso.Viewer,Contoso.Editor".into(),
    );
    env.insert("APP__AUTHORIZATION__RULES".into(), "[]".into());
    let loaded = load_settings("Development", &env);
    assert!(
        loaded
            .problems
            .iter()
            .any(|p| p.key == "authorization.roles" && p.message.contains("DemoApp.Write")),
        "{:?}",
        loaded.problems
    );
}

#[test]
fn check_config_prints_the_hierarchy_and_the_rule_table() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .arg("check-config")
        .env("APP_ENV", "Development")
        .env(
            "APP__AUTHORIZATION__RULES",
            json!([{"path": "/reports/**", "role": "DemoApp.Read", "methods": ["GET"]}])
                .to_string(),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("DemoApp.Admin > DemoApp.Write > DemoApp.Read"),
        "{stdout}"
    );
    assert!(stdout.contains("/reports/**"), "{stdout}");
    assert!(stdout.contains("role DemoApp.Read"), "{stdout}");
}

#[tokio::test]
async fn groups_map_to_roles_and_overage_is_refused_with_the_fix() {
    let app = spawn_app_with(|env| {
        env.insert(
            "APP__AUTHORIZATION__GROUP_ROLES".into(),
            json!({"7d1f9a9e-0000-4000-8000-00000000beef": "DemoApp.Write"}).to_string(),
        );
    })
    .await;
    let response = sign_in_with(
        &app,
        "carol",
        json!({"roles": ["DemoApp.Admin"], "groups": ["other", "7d1f9a9e-0000-4000-8000-00000000beef"]}),
    )
    .await;
    assert_eq!(response.status(), 302);
    let me: serde_json::Value = app.get("/api/me").await.json().await.unwrap();
    assert_eq!(
        me["roles"],
        json!(["DemoApp.Write"]),
        "the roles claim is not the source"
    );
    assert_eq!(me["access_level"], "Write");

    let other = app.same_app_new_browser();
    let refused = sign_in_with(
        &other,
        "bob",
        json!({"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert_eq!(
        crate::helpers::reason_of(&body).as_deref(),
        Some("groups_overage")
    );
    assert!(body.contains("app roles instead of groups"), "{body}");
    assert!(!other.is_signed_in().await);
}

/// A bare actix `App` around the crate alone (no Tera, no database), on `idp`.
fn bare_app(idp: FakeIdp, auth: Auth, routes: fn(&mut web::ServiceConfig)) -> TestApp {
    let (store, key) = (MemoryStore::new(), Key::generate());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(auth.route_rules())
            .wrap(SessionMiddleware::new(store.clone(), key.clone()))
            .configure(|cfg| auth.configure(cfg))
            .configure(routes)
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    let jar = Arc::new(Jar::default());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        idp,
        client: client_with(jar.clone()),
        jar,
        db_dir: std::env::temp_dir(),
        env: Default::default(),
    }
}

fn contoso_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/",
        web::get().to(|u: CurrentUser| async move { format!("{} {:?}", u.name, u.role()) }),
    )
    .route(
        "/edit",
        web::get().to(|u: RequireRole<Editor>| async move { format!("{} edits", u.name) }),
    )
    .route("/reports", web::get().to(|| async { "reports" }));
}

#[tokio::test]
async fn custom_role_names_end_to_end_in_a_bare_app() {
    let idp = FakeIdp::start().await;
    let config = AuthConfig::builder(&idp.issuer, CLIENT_ID, PUBLIC_URL)
        .client_secret(CLIENT_SECRET)
        .roles(["Contoso.Viewer", "Contoso.Editor"])
        .rules(vec![RuleSpec::role("/reports/**", "Contoso.Viewer")])
        .code_roles([<Editor as rolegate_auth::Role>::NAME])
        .discovery_retry(std::time::Duration::ZERO)
        .build()
        .expect("valid config");
    let app = bare_app(
        idp,
        Auth::new(config, DefaultPages, NoEvents).unwrap(),
        contoso_routes,
    );

    assert_eq!(
        app.get("/reports").await.status(),
        302,
        "rule-only page, anonymous"
    );
    let viewer = sign_in_with(&app, "carol", json!({"roles": ["Contoso.Viewer"]})).await;
    assert_eq!(viewer.status(), 302);
    assert_eq!(app.get("/reports").await.status(), 200);
    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains("Some(\"Contoso.Viewer\")"), "{home}");
    let edit = app.get("/edit").await;
    assert_eq!(edit.status(), 403);
    assert!(edit.text().await.unwrap().contains("Contoso.Editor"));

    let editor = app.same_app_new_browser();
    let response = sign_in_with(&editor, "bob", json!({"roles": ["Contoso.Editor"]})).await;
    assert_eq!(response.status(), 302);
    assert_eq!(editor.get("/edit").await.status(), 200);
    assert_eq!(
        editor.get("/reports").await.status(),
        200,
        "Editor implies Viewer"
    );

    // The default DemoApp names mean nothing in this app: refused at sign-in.
    let other = app.same_app_new_browser();
    let refused = sign_in_with(
        &other,
        "alice",
        json!({"roles": ["DemoApp.Admin", "contoso.editor"]}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert_eq!(crate::helpers::reason_of(&body).as_deref(), Some("no_role"));
    assert!(body.contains("Contoso.Viewer, Contoso.Editor"), "{body}");
}

#[tokio::test]
async fn the_minimal_example_runs_in_a_bare_app() {
    let idp = FakeIdp::start().await;
    let auth = minimal::auth(&idp.issuer, CLIENT_ID, CLIENT_SECRET, PUBLIC_URL).unwrap();
    let app = bare_app(idp, auth, minimal::routes);
    assert_eq!(app.get("/").await.status(), 302);
    assert_eq!(app.get("/reports").await.status(), 302);
    app.sign_in("carol").await;
    assert_eq!(app.get("/").await.text().await.unwrap(), "Hello Carol Test");
    assert_eq!(app.get("/reports").await.status(), 200);
    let write = app.get("/write").await;
    assert_eq!(write.status(), 403);
    assert!(write.text().await.unwrap().contains("DemoApp.Write"));
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    assert_eq!(
        bob.get("/write").await.text().await.unwrap(),
        "Bob Test may write"
    );
    assert_eq!(bob.sign_out().await.status(), 302);
    assert_eq!(bob.get("/").await.status(), 302, "signed out");
}

#[tokio::test]
async fn auth_routes_follow_the_base_path() {
    let app = spawn_app_with(|env| {
        env.insert("APP__AUTH__BASE_PATH".into(), "/auth".into());
    })
    .await;
    let anonymous = app.get("/").await;
    assert_eq!(anonymous.headers()["location"], "/auth/login?next=%2F");
    assert_eq!(app.get("/login").await.status(), 404, "nothing at the root");
    let page = app.get("/auth/login").await;
    assert_eq!(page.status(), 200);
    let started = crate::helpers::started_from_page(&page.text().await.unwrap());
    assert_eq!(
        started.params["redirect_uri"],
        format!("{PUBLIC_URL}/auth/getAToken")
    );
    let claims = app.idp.claims("carol", &started.nonce);
    app.idp
        .reply(crate::fake_idp::TokenReply::IdToken(app.idp.sign(&claims)));
    let callback = app
        .get(&format!("/auth/getAToken?code=c&state={}", started.state))
        .await;
    assert_eq!(callback.status(), 302);
    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains("action=\"/auth/logout\""), "{home}");
    let logout = app.sign_out_at("/auth/logout").await;
    assert_eq!(logout.status(), 302);
    assert!(!app.is_signed_in().await);
}
