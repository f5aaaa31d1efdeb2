//! Hardening, the app's half (issue 13, items 5, 9 and 12): hostile claim values stay inert in
//! URLs and log lines, every response carries the security headers (error and outage pages
//! included), and form and JSON bodies have their own limits, answered 413 naming them.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, test as actix_test, web};
use rolegate::error::AppError;
use rolegate::settings;
use rolegate::startup::Application;
use rolegate::telemetry::{Escaped, log_requests, security_headers};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// The `sub` of the hostile user: a path separator, a query, a fragment and a line separator.
const HOSTILE_SUB: &str = "a/b?c#d\u{2028}e";

/// The security headers every response must carry (no HSTS: the test apps are http).
const SECURITY_HEADERS: [&str; 5] = [
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cross-origin-opener-policy",
];

pub(crate) fn assert_security_headers(headers: &reqwest::header::HeaderMap, what: &str) {
    for name in SECURITY_HEADERS {
        assert!(headers.contains_key(name), "{what}: missing {name}");
    }
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
}

/// Signs a new browser of `app` in as `user` with `sub` and `preferred_username` replaced.
async fn sign_in_as(app: &TestApp, user: &str, sub: &str, username: &str) -> TestApp {
    let browser = app.same_app_new_browser();
    let started = browser.start_login("").await;
    let mut claims = browser.idp.claims(user, &started.nonce);
    claims["sub"] = json!(sub);
    claims["preferred_username"] = json!(username);
    let response = browser
        .finish_with_token(&started, browser.idp.sign(&claims))
        .await;
    assert_eq!(response.status(), 302, "sign-in with sub {sub:?}");
    browser
}

/// The `action` of the form with class `form_class` in the admin row of `username`.
fn row_action(page: &str, username: &str, form_class: &str) -> String {
    let row_start = page
        .find(&format!("data-user=\"{username}\""))
        .unwrap_or_else(|| panic!("a row for {username}"));
    let row = &page[row_start..];
    let row = &row[..row.find("</tr>").expect("end of row")];
    let button = row.find(form_class).expect("the form's button");
    let action_at = row[..button].rfind("action=\"").expect("an action") + 8;
    let end = row[action_at..].find('"').expect("end of action") + action_at;
    row[action_at..end].replace("&amp;", "&")
}

async fn sessions_of(app: &TestApp, sub: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_sub = $1")
        .bind(sub)
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

// ---- item 5: hostile values in URLs ----

#[tokio::test]
async fn a_hostile_sub_gets_a_percent_encoded_revoke_all_form_that_revokes_exactly_that_user() {
    let app = spawn_app().await;
    let admin = app.same_app_new_browser();
    admin.sign_in("alice").await;
    let hostile = sign_in_as(&app, "carol", HOSTILE_SUB, "hostile@rolegate.test").await;
    // Users whose `sub` is what a raw URL would cut the hostile one down to.
    let prefix_a = sign_in_as(&app, "carol", "a", "prefix-a@rolegate.test").await;
    let prefix_ab = sign_in_as(&app, "carol", "a/b", "prefix-ab@rolegate.test").await;

    let page = admin.get("/admin").await.text().await.unwrap();
    let action = row_action(&page, "hostile@rolegate.test", "revoke-user");
    assert_eq!(action, "/admin/users/a%2Fb%3Fc%23d%E2%80%A8e/revoke");
    let session_action = row_action(&page, "hostile@rolegate.test", "revoke-session");
    assert!(
        session_action.starts_with("/admin/sessions/") && session_action.ends_with("/revoke"),
        "{session_action}"
    );

    let done = admin.post_csrf(&action).await;
    assert_eq!(done.status(), 303, "the encoded action reaches revoke-all");
    assert!(
        !hostile.is_signed_in().await,
        "the hostile user is signed out"
    );
    assert_eq!(sessions_of(&app, HOSTILE_SUB).await, 0);
    for (other, sub) in [(&prefix_a, "a"), (&prefix_ab, "a/b")] {
        assert!(other.is_signed_in().await, "{sub:?} keeps its session");
        assert_eq!(sessions_of(&app, sub).await, 1, "{sub:?}");
    }
    assert!(admin.is_signed_in().await);

    // The audit entry names the decoded `sub`.
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE event = 'session_revoked'")
            .fetch_all(&app.pool().await)
            .await
            .unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(details[0].contains(HOSTILE_SUB), "{details:?}");

    // The per-session form of another row works through its built URL as well.
    let page = admin.get("/admin").await.text().await.unwrap();
    let session_action = row_action(&page, "prefix-ab@rolegate.test", "revoke-session");
    assert_eq!(admin.post_csrf(&session_action).await.status(), 303);
    assert!(!prefix_ab.is_signed_in().await);
    assert!(prefix_a.is_signed_in().await);
}

// ---- item 5: hostile values in log lines ----

/// A log sink shared with a `tracing` subscriber installed for the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A forged line an attacker would like to see in the log.
const FORGED: &str = "\nINFO forged: admin signed in\u{2028}INFO forged too";

#[test]
fn escaped_values_cannot_end_a_log_line() {
    let shown = Escaped(format!("x{FORGED}\r\u{1b}[31m\u{202e}")).to_string();
    assert_eq!(
        shown,
        "\"x\\nINFO forged: admin signed in\\u{2028}INFO forged too\\r\\u{1b}[31m\\u{202e}\""
    );
    assert!(!shown.chars().any(|c| c.is_control() || c == '\u{2028}'));
}

#[actix_web::test]
async fn the_csrf_warning_escapes_a_hostile_sub() {
    let captured = Captured::default();
    let _guard = captured.install();
    let user: rolegate_auth::User = serde_json::from_value(json!({
        "sub": format!("evil{FORGED}"),
        "oid": null, "tid": null, "name": "Evil", "preferred_username": null, "email": null,
        "roles": [], "sid": null, "signed_in_at": 0, "token_expires_at": 0,
    }))
    .unwrap();
    let req = actix_test::TestRequest::post()
        .uri("/notes")
        .to_http_request();
    let session = actix_session::SessionExt::get_session(&req);
    assert!(!rolegate::csrf::check(&req, &session, Some("x"), &user));
    let lines = captured.lines();
    assert_eq!(lines.len(), 1, "one line: {lines:#?}");
    assert!(
        lines[0].contains("CSRF token missing or wrong"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(r#"sub="evil\nINFO forged: admin signed in\u{2028}INFO forged too""#),
        "{}",
        lines[0]
    );
}

/// A middleware that fails the way actix-session does when its store is down.
async fn failing_middleware(
    _req: actix_web::dev::ServiceRequest,
    _next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    Err(AppError::BadRequest(format!("bad input{FORGED}")).into())
}

#[actix_web::test]
async fn the_request_log_escapes_errors_and_a_middleware_error_keeps_the_headers() {
    let captured = Captured::default();
    let _guard = captured.install();
    let app = actix_test::init_service(
        App::new()
            .wrap(security_headers(true, None))
            .wrap(from_fn(log_requests))
            .service(
                web::scope("/failing")
                    .wrap(from_fn(failing_middleware))
                    .default_service(web::to(HttpResponse::Ok)),
            )
            .route(
                "/handler",
                web::get().to(|| async {
                    Err::<HttpResponse, _>(AppError::BadRequest(format!("bad input{FORGED}")))
                }),
            ),
    )
    .await;

    // An error raised by a middleware, as the session layer raises a store outage.
    let req = actix_test::TestRequest::get()
        .uri("/failing/x")
        .to_request();
    // It stays an `Err` through the middleware; the server sends its `error_response()`.
    let Err(err) = actix_test::try_call_service(&app, req).await else {
        panic!("a middleware error stays an Err");
    };
    let response = err.error_response();
    assert_eq!(response.status(), 400);
    for name in SECURITY_HEADERS
        .iter()
        .copied()
        .chain(["strict-transport-security", "x-request-id"])
    {
        assert!(
            response.headers().contains_key(name),
            "middleware error: {name}"
        );
    }

    // An error returned by a handler.
    let req = actix_test::TestRequest::get().uri("/handler").to_request();
    let response = actix_test::call_service(&app, req).await;
    assert_eq!(response.status(), 400);
    for name in SECURITY_HEADERS {
        assert!(
            response.headers().contains_key(name),
            "handler error: {name}"
        );
    }

    let lines = captured.lines();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line.contains(" WARN ") || line.contains(" INFO ") || line.contains(" ERROR "),
            "every line is a real log line with a level: {line:?}"
        );
        assert!(!line.starts_with("INFO forged"), "forged line: {line:?}");
        assert!(!line.contains('\u{2028}'), "raw line separator: {line:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("request failed") && l.contains(r"bad input\nINFO forged")),
        "{lines:#?}"
    );
}

// ---- item 9: security headers on every response (the store-outage 503 page and JSON are
// checked in scale_out::sessions_survive_a_redis_restart_and_outages_are_503) ----

#[tokio::test]
async fn the_almost_there_page_has_the_security_headers() {
    let dir = crate::helpers::temp_dir();
    let vars: HashMap<String, String> = [
        ("APP__SERVER__PORT", "0"),
        ("APP__SERVER__HOST", "127.0.0.1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let loaded = settings::load(&dir, Some("Development"), vars.into_iter().collect());
    assert!(!loaded.problems.is_empty());
    let app = Application::build(loaded)
        .await
        .expect("development starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    for path in ["/", "/notes", "/static/nope.css", "/healthz"] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_security_headers(response.headers(), path);
    }
    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("Almost there"));
}

#[tokio::test]
async fn not_found_and_too_large_answers_have_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/no-such-page",
        "/api/no-such-endpoint",
        "/static/no-such.css",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_security_headers(response.headers(), path);
    }
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    let token = bob.csrf().await;
    let body = "x".repeat(17 * 1024);
    let form = bob
        .client
        .post(bob.url("/notes"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("title", "t"),
            ("body", &body),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 413);
    assert_security_headers(form.headers(), "413 form");
    let json = bob
        .client
        .post(bob.url("/api/notes"))
        .header("X-CSRF-Token", &token)
        .json(&json!({"title": "t", "body": "x".repeat(65 * 1024)}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 413);
    assert_security_headers(json.headers(), "413 JSON");
}

// ---- item 12: body limits ----

async fn note_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

/// Posts a URL-encoded note form of exactly `size` bytes: a valid note (`title`, `body`, all
/// ASCII letters, so nothing is percent-encoded) padded with an ignored `pad` field.
async fn post_form_of_size(
    app: &TestApp,
    token: &str,
    title: &str,
    body: &str,
    size: usize,
) -> reqwest::Response {
    let mut form = format!("csrf_token={token}&title={title}&body={body}&pad=");
    assert!(form.len() <= size, "the note alone is {} bytes", form.len());
    form.push_str(&"p".repeat(size - form.len()));
    assert_eq!(form.len(), size);
    app.client
        .post(app.url("/notes"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
}

/// Posts a JSON note of exactly `size` bytes, padded with trailing whitespace.
async fn post_json_of_size(
    app: &TestApp,
    token: &str,
    title: &str,
    body: &str,
    size: usize,
) -> reqwest::Response {
    let mut text = json!({"title": title, "body": body}).to_string();
    assert!(text.len() <= size);
    text.push_str(&" ".repeat(size - text.len()));
    app.client
        .post(app.url("/api/notes"))
        .header("X-CSRF-Token", token)
        .header("Content-Type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_form_over_16_kb_is_a_413_page_naming_the_limit() {
    let app = spawn_app().await;
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    let token = bob.csrf().await;
    let response = post_form_of_size(&bob, &token, "t", "x", 17 * 1024).await;
    assert_eq!(response.status(), 413);
    assert!(
        response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"))
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("The request is too large"), "{page}");
    assert!(page.contains("16 KB"), "{page}");
    // One byte over is refused too.
    let response = post_form_of_size(&bob, &token, "t", "x", 16 * 1024 + 1).await;
    assert_eq!(response.status(), 413);
    assert_eq!(note_count(&app).await, 0);
}

#[tokio::test]
async fn a_json_body_over_64_kb_is_a_413_json_naming_the_limit() {
    let app = spawn_app().await;
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    let token = bob.csrf().await;
    let response = post_json_of_size(&bob, &token, "t", "x", 65 * 1024).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_large", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("64 KB"), "{body}");
    let response = post_json_of_size(&bob, &token, "t", "x", 64 * 1024 + 1).await;
    assert_eq!(response.status(), 413);
    assert_eq!(note_count(&app).await, 0);
}

#[tokio::test]
async fn bodies_at_the_limits_are_accepted() {
    let app = spawn_app().await;
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    let token = bob.csrf().await;
    // The largest valid note, ASCII: 200-character title and 10,000-character body.
    let title = "t".repeat(200);
    let body = "b".repeat(10_000);
    let form = post_form_of_size(&bob, &token, &title, &body, 16 * 1024).await;
    assert_eq!(form.status(), 303, "a 16 KB form with the largest note");
    let json = post_json_of_size(&bob, &token, &title, &body, 64 * 1024).await;
    assert_eq!(
        json.status(),
        201,
        "a 64 KB JSON body with the largest note"
    );
    // The largest note of non-ASCII text still fits the JSON limit (3 bytes a character).
    let json = post_json_of_size(
        &bob,
        &token,
        &"€".repeat(200),
        &"€".repeat(10_000),
        64 * 1024,
    )
    .await;
    assert_eq!(json.status(), 201, "10,000 three-byte characters as JSON");
    assert_eq!(note_count(&app).await, 3);
}
