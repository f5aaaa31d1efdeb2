//! Who gets through: anonymous callers, roles, JSON vs pages, security headers.

use crate::helpers::spawn_app;

#[tokio::test]
async fn anonymous_html_goes_to_login_with_next() {
    let app = spawn_app().await;
    for (path, next) in [("/", "%2F"), ("/admin?tab=audit", "%2Fadmin%3Ftab%3Daudit")] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 302, "{path}");
        assert_eq!(
            response.headers()["location"],
            format!("/login?next={next}")
        );
    }
}

#[tokio::test]
async fn anonymous_api_and_json_callers_get_401_json() {
    let app = spawn_app().await;
    let response = app.get("/api/me").await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");

    let response = app
        .client
        .get(app.url("/"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn admin_page_follows_the_role_hierarchy() {
    for (user, status) in [("alice", 200), ("bob", 403), ("carol", 403)] {
        let app = spawn_app().await;
        app.sign_in(user).await;
        let response = app.get("/admin").await;
        assert_eq!(response.status(), status, "{user}");
        let body = response.text().await.unwrap();
        if status == 403 {
            assert!(body.contains("id=\"forbidden\""));
            assert!(body.contains("DemoApp.Admin"), "names the role needed");
        } else {
            assert!(body.contains("id=\"admin\""));
            assert!(
                body.contains("alice@rolegate.test"),
                "lists the active session"
            );
        }
    }
}

#[tokio::test]
async fn forbidden_on_the_api_is_json() {
    let app = spawn_app().await;
    app.sign_in("carol").await;
    let response = app
        .client
        .get(app.url("/admin"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
}

#[tokio::test]
async fn every_page_carries_security_headers() {
    let app = spawn_app().await;
    for path in ["/login", "/healthz", "/nope", "/", "/static/css/site.css"] {
        let response = app.get(path).await;
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert!(!csp.contains("unsafe-inline"), "{path}");
        // Forms post here; the sign-out form's redirect may go to the provider only.
        let origin = app.idp.issuer.trim_end_matches('/');
        let origin = &origin[..origin[8..].find('/').map_or(origin.len(), |i| i + 8)];
        assert!(
            csp.contains(&format!("form-action 'self' {origin};")),
            "{path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h.contains_key("x-request-id"), "{path}");
    }
}

#[tokio::test]
async fn health_static_and_not_found() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let css = app.get("/static/css/site.css").await;
    assert_eq!(css.status(), 200);
    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("id=\"not-found\""));
    let api_missing = app.get("/api/nothing").await;
    assert_eq!(api_missing.status(), 404);
    let body: serde_json::Value = api_missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}
