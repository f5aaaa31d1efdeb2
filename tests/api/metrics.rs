//! `GET /metrics`: names and exact values after a scripted session, labels by route pattern,
//! `metrics.enabled`, `metrics.port`, and no session needed.

use crate::helpers::{TestApp, load_settings, reason_of, spawn_app, spawn_app_with};

/// `/metrics` from a client with no cookies at all.
async fn scrape(base: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

/// The value of the sample `series` (name with its labels, exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn metrics_count_sign_ins_refusals_denials_and_requests_by_route_pattern() {
    let alice = spawn_app().await;
    alice.sign_in("alice").await;
    // Admin on two notes that do not exist: raw ids in the path, one route pattern.
    for id in ["123", "456"] {
        let response = alice.post_csrf(&format!("/notes/{id}/delete")).await;
        assert!(response.status().as_u16() < 500, "{}", response.status());
    }

    let carol = alice.same_app_new_browser();
    carol.sign_in("carol").await;
    assert_eq!(
        carol.get("/admin").await.status(),
        403,
        "carol is Read only"
    );

    let stranger = alice.same_app_new_browser();
    let refused = stranger.callback("code=c&state=forged").await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let reason = reason_of(&refused.text().await.unwrap()).expect("a reason code on the page");

    assert_eq!(stranger.get("/no/such/page/789").await.status(), 404);

    let (status, content_type, text) = scrape(&alice.address).await;
    assert_eq!(status, 200, "no session needed");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(
        sample(&text, "rolegate_sign_ins_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"rolegate_access_denials_total{role="DemoApp.Admin"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"rolegate_sign_in_refusals_total{{reason="{reason}"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        text.matches("rolegate_sign_in_refusals_total{").count(),
        1,
        "one refusal reason only: {text}"
    );
    assert!(
        text.contains(r#"rolegate_http_requests_total{method="POST",route="/notes/{id}/delete","#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"rolegate_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"rolegate_http_request_duration_seconds_bucket{method="GET",route="/admin","#
        ),
        "{text}"
    );
    // Only the route label's value, not the sample values (a sum may well contain 123).
    let routes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("route=\"").nth(1)?.split('"').next())
        .collect();
    assert!(routes.contains(&"/notes/{id}/delete"), "{routes:?}");
    for raw in ["123", "456", "789", "/no/such"] {
        assert!(
            !routes.iter().any(|r| r.contains(raw)),
            "raw path {raw} in a route label: {routes:?}"
        );
    }
    assert_eq!(
        sample(&text, r#"rolegate_idp_requests_total{endpoint="token"}"#),
        Some(2.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"rolegate_idp_requests_total{endpoint="discovery"}"#
        ) >= Some(1.0)
    );
    assert!(sample(&text, r#"rolegate_idp_requests_total{endpoint="jwks"}"#) >= Some(1.0));
    assert_eq!(
        sample(&text, r#"rolegate_idp_errors_total{endpoint="token"}"#),
        Some(0.0)
    );
    assert!(
        text.contains("rolegate_idp_request_duration_seconds_count{endpoint=\"token\"} 2"),
        "{text}"
    );
    assert_eq!(
        sample(&text, "rolegate_active_sessions"),
        Some(2.0),
        "{text}"
    );
    for name in [
        "rolegate_jwks_refreshes_total",
        "rolegate_session_store_errors_total",
        "rolegate_database_errors_total",
    ] {
        assert_eq!(sample(&text, name), Some(0.0), "{name}: {text}");
    }
}

#[tokio::test]
async fn metrics_needs_no_session_and_sets_no_cookie() {
    let app = spawn_app().await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "a scrape creates no session"
    );
    assert!(app.session_cookie().is_none());
}

#[tokio::test]
async fn metrics_enabled_false_answers_404() {
    let app = spawn_app_with(|env| {
        env.insert("APP__METRICS__ENABLED".into(), "false".into());
    })
    .await;
    assert_eq!(scrape(&app.address).await.0, 404);
}

#[tokio::test]
async fn metrics_port_serves_metrics_and_the_main_port_does_not() {
    let port = free_port();
    let app: TestApp = spawn_app_with(|env| {
        env.insert("APP__METRICS__PORT".into(), port.to_string());
    })
    .await;
    let (status, _, text) = scrape(&format!("http://127.0.0.1:{port}")).await;
    assert_eq!(status, 200);
    assert!(text.contains("rolegate_sign_ins_total 0"), "{text}");
    assert_eq!(scrape(&app.address).await.0, 404, "not on the main port");
    let other = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404, "only /metrics on the metrics port");
}

#[test]
fn metrics_port_equal_to_server_port_is_a_settings_problem() {
    let idp_env = |server: &str, metrics: &str| {
        let mut env = std::collections::HashMap::new();
        env.insert("APP__SERVER__PORT".to_owned(), server.to_owned());
        env.insert("APP__METRICS__PORT".to_owned(), metrics.to_owned());
        load_settings("Test", &env).problems
    };
    let problems = idp_env("9000", "9000");
    let problem = problems
        .iter()
        .find(|p| p.key == "metrics.port")
        .expect("metrics.port named");
    assert!(problem.message.contains("server.port"), "{problem}");
    assert!(
        problem.to_string().contains("APP__METRICS__PORT"),
        "{problem}"
    );
    assert!(
        !idp_env("9000", "9001")
            .iter()
            .any(|p| p.key == "metrics.port")
    );
    assert!(!idp_env("9000", "0").iter().any(|p| p.key == "metrics.port"));
}
