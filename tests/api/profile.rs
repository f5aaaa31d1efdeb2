//! The DemoApp's Graph pages against the fake provider and an in-process Graph (issue 12,
//! items 2-4): the user's token is fetched once and cached, a missing consent sends the
//! browser through the provider with the added scope and back, a declined consent is a page
//! that keeps the session, and a claims challenge restarts sign-in with its claims.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use serde_json::{Value, json};
use url::Url;

use crate::fake_idp::RefreshMode;
use crate::helpers::{TestApp, reason_of, spawn_app_with};

/// What the fake Graph answers.
#[derive(Clone, Copy, PartialEq)]
enum GraphMode {
    Ok,
    /// 401 with Entra's claims challenge (continuous access evaluation).
    ClaimsChallenge,
}

#[derive(Clone)]
struct Graph {
    mode: Arc<Mutex<GraphMode>>,
    /// The `Authorization` header of every call.
    seen: Arc<Mutex<Vec<String>>>,
}

const CLAIMS: &str = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;

async fn graph_call(g: web::Data<Graph>, req: HttpRequest) -> HttpResponse {
    let authz = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    g.seen.lock().unwrap().push(authz);
    if *g.mode.lock().unwrap() == GraphMode::ClaimsChallenge {
        let encoded = base64::engine::general_purpose::STANDARD.encode(CLAIMS);
        return HttpResponse::Unauthorized()
            .insert_header((
                "www-authenticate",
                format!(
                    r#"Bearer realm="", error="insufficient_claims", error_description="claims challenge", claims="{encoded}""#
                ),
            ))
            .finish();
    }
    match req.path() {
        "/v1.0/me" => HttpResponse::Ok().json(json!({
            "displayName": "Alice from Graph", "jobTitle": "Platform owner",
            "userPrincipalName": "alice@rolegate.test", "businessPhones": [], "id": "oid-alice"
        })),
        "/v1.0/me/events" => {
            HttpResponse::Ok().json(json!({"value": [{"subject": "Roles review"}]}))
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

async fn start_graph() -> (String, Graph) {
    let graph = Graph {
        mode: Arc::new(Mutex::new(GraphMode::Ok)),
        seen: Arc::default(),
    };
    let data = graph.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(data.clone()))
            .default_service(web::to(graph_call))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    (address, graph)
}

async fn app_with_graph() -> (TestApp, Graph) {
    let (address, graph) = start_graph().await;
    let app = spawn_app_with(|env| {
        env.insert(
            "APP__DOWNSTREAM_APIS__GRAPH__BASE_URL".into(),
            format!("{address}/v1.0"),
        );
    })
    .await;
    (app, graph)
}

fn location(response: &reqwest::Response) -> Url {
    Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &Url) -> std::collections::HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn the_profile_reads_graph_with_the_users_token_once_fetched_then_cached() {
    let (app, graph) = app_with_graph().await;
    app.sign_in("alice").await;
    let page = app.get("/profile").await;
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("Alice from Graph"), "{body}");
    assert!(body.contains("Platform owner"));
    assert!(
        !body.contains("access-token-secret"),
        "no token in the page"
    );
    assert_eq!(
        app.idp.refresh_count(),
        1,
        "one refresh got the User.Read token"
    );
    assert_eq!(
        app.idp.state.lock().unwrap().refresh.forms[0]["scope"],
        "User.Read"
    );

    assert_eq!(app.get("/profile").await.status(), 200);
    assert_eq!(app.idp.refresh_count(), 1, "the cached token is used again");
    let seen = graph.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[0].starts_with("Bearer access-token-secret-"),
        "{seen:?}"
    );
    assert_eq!(seen[0], seen[1], "the same token both times");
}

#[tokio::test]
async fn a_missing_consent_goes_through_the_provider_with_the_added_scope_and_back() {
    let (app, _graph) = app_with_graph().await;
    app.sign_in("bob").await;
    app.idp.refresh_mode(RefreshMode::ConsentRequired);

    let asked = app.get("/profile/events?week=2").await;
    assert_eq!(asked.status(), 302);
    let to = location(&asked);
    assert!(to.as_str().starts_with(&app.idp.issuer), "{to}");
    let q = query(&to);
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert!(scopes.contains(&"Calendars.Read"), "{scopes:?}");
    assert!(
        scopes.contains(&"openid"),
        "the sign-in's scopes too: {scopes:?}"
    );
    assert_eq!(q["login_hint"], "bob@rolegate.test");
    assert!(q.contains_key("code_challenge") && q.contains_key("nonce"));

    // The provider comes back with a code: the user is signed in with the new token and lands
    // on the page that asked.
    let started = crate::helpers::Started {
        state: q["state"].clone(),
        nonce: q["nonce"].clone(),
        params: q.clone(),
        url: to.clone(),
    };
    let claims = app.idp.claims("bob", &started.nonce);
    let back = app.finish_with_token(&started, app.idp.sign(&claims)).await;
    assert_eq!(back.status(), 302);
    assert_eq!(back.headers()["location"], "/profile/events?week=2");
    let events = app.get("/profile/events?week=2").await;
    assert_eq!(events.status(), 200);
    assert!(events.text().await.unwrap().contains("Roles review"));
}

#[tokio::test]
async fn a_declined_consent_is_a_403_page_and_the_session_stays() {
    let (app, _graph) = app_with_graph().await;
    app.sign_in("carol").await;
    app.idp.refresh_mode(RefreshMode::ConsentRequired);
    let asked = app.get("/profile/events").await;
    assert_eq!(asked.status(), 302);
    let state = query(&location(&asked))["state"].clone();

    let declined = app
        .callback(&format!(
            "error=consent_required&error_description=AADSTS65004%3A+User+declined&state={state}"
        ))
        .await;
    assert_eq!(declined.status(), 403);
    assert!(
        declined.headers().get("location").is_none(),
        "no redirect: no loop"
    );
    let body = declined.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("consent_declined"));
    assert!(
        body.contains("Calendars.Read"),
        "the page names the permission"
    );
    assert!(app.is_signed_in().await, "the session is kept");

    // Asked again at once, the same consent is not sent round again.
    let again = app.get("/profile/events").await;
    assert_eq!(again.status(), 403);
    let body = again.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("consent_not_granted"));

    // API callers cannot follow a redirect: JSON 403.
    let json = app
        .client
        .get(app.url("/profile/events"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 403);
    let body: Value = json.json().await.unwrap();
    assert!(
        body["error"] == "consent_required" || body["error"] == "consent_not_granted",
        "{body}"
    );
}

#[tokio::test]
async fn a_claims_challenge_restarts_sign_in_with_its_claims() {
    let (app, graph) = app_with_graph().await;
    app.sign_in("alice").await;
    *graph.mode.lock().unwrap() = GraphMode::ClaimsChallenge;
    let asked = app.get("/profile").await;
    assert_eq!(asked.status(), 302);
    let q = query(&location(&asked));
    let claims: Value = serde_json::from_str(&q["claims"]).unwrap();
    assert_eq!(
        claims,
        serde_json::from_str::<Value>(CLAIMS).unwrap(),
        "the decoded challenge"
    );
    assert!(
        q["scope"].split(' ').any(|s| s == "User.Read"),
        "{}",
        q["scope"]
    );
}

#[tokio::test]
async fn without_downstream_apis_graph_the_profile_says_so() {
    let app = spawn_app_with(|env| {
        env.insert("APP__DOWNSTREAM_APIS".into(), "{}".into());
    })
    .await;
    app.sign_in("carol").await;
    let page = app.get("/profile").await;
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("downstream_apis.graph"));
}
