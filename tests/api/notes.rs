//! Notes, the JSON API and CSRF: every role x action pair, validation and refusals.

use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

async fn post_note(app: &TestApp, token: &str, title: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url("/notes"))
        .form(&[("csrf_token", token), ("title", title), ("body", body)])
        .send()
        .await
        .unwrap()
}

async fn note_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

async fn audit_count(app: &TestApp, event: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = $1")
        .bind(event)
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

/// Signs `user` in on a fresh client of the same app.
async fn as_user(app: &TestApp, user: &str) -> TestApp {
    let other = app.same_app_new_browser();
    other.sign_in(user).await;
    other
}

#[tokio::test]
async fn every_role_and_action_pair() {
    let app = spawn_app().await;
    let alice = as_user(&app, "alice").await;
    let bob = as_user(&app, "bob").await;
    let carol = as_user(&app, "carol").await;

    // Read: everyone with a role lists notes.
    for who in [&alice, &bob, &carol] {
        assert_eq!(who.get("/notes").await.status(), 200);
        assert_eq!(who.get("/api/notes").await.status(), 200);
    }
    // Write: bob and alice can post, carol cannot.
    for (who, status) in [(&alice, 303), (&bob, 303), (&carol, 403)] {
        let token = who.csrf().await;
        let response = post_note(who, &token, "hello", "body").await;
        assert_eq!(response.status(), status);
        let api = who
            .client
            .post(who.url("/api/notes"))
            .header("X-CSRF-Token", &token)
            .json(&json!({"title": "via api", "body": ""}))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), if status == 303 { 201 } else { 403 });
    }
    assert_eq!(note_count(&app).await, 4);

    // Delete: only alice.
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM notes")
        .fetch_all(&app.pool().await)
        .await
        .unwrap();
    for (who, status) in [(&carol, 403), (&bob, 403), (&alice, 303)] {
        let response = who.post_csrf(&format!("/notes/{}/delete", ids[0].0)).await;
        assert_eq!(response.status(), status);
    }
    for (who, status) in [(&carol, 403), (&bob, 403), (&alice, 204)] {
        let token = who.csrf().await;
        let response = who
            .client
            .delete(who.url(&format!("/api/notes/{}", ids[1].0)))
            .header("X-CSRF-Token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }
    assert_eq!(note_count(&app).await, 2);
    assert_eq!(audit_count(&app, "note_created").await, 4);
    assert_eq!(audit_count(&app, "note_deleted").await, 2);
    assert!(audit_count(&app, "access_denied").await >= 6);
}

#[tokio::test]
async fn pages_show_only_the_controls_a_role_allows() {
    let app = spawn_app().await;
    let bob = as_user(&app, "bob").await;
    let token = bob.csrf().await;
    post_note(&bob, &token, "Bob's note <script>", "text").await;

    let carol = as_user(&app, "carol").await;
    let page = carol.get("/notes").await.text().await.unwrap();
    assert!(
        page.contains("Bob&#39;s note &lt;script&gt;")
            || page.contains("Bob's note &lt;script&gt;"),
        "escaped"
    );
    assert!(!page.contains("id=\"note-form\"") && page.contains("id=\"read-only\""));
    assert!(!page.contains("delete-note"));

    let page = bob.get("/notes").await.text().await.unwrap();
    assert!(page.contains("id=\"note-form\"") && !page.contains("delete-note"));

    let alice = as_user(&app, "alice").await;
    let page = alice.get("/notes").await.text().await.unwrap();
    assert!(page.contains("id=\"note-form\"") && page.contains("delete-note"));
}

#[tokio::test]
async fn csrf_is_required_for_cookie_writes_but_not_for_bearer() {
    let app = spawn_app().await;
    let alice = as_user(&app, "alice").await;
    let token = alice.csrf().await;
    for bad in ["", "wrong-token", &token[..token.len() - 1]] {
        let response = post_note(&alice, bad, "t", "b").await;
        assert_eq!(response.status(), 403, "token {bad:?}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("This form has expired")
        );
    }
    let missing = alice
        .client
        .post(alice.url("/notes"))
        .form(&[("title", "t")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 403);
    let api = alice
        .client
        .post(alice.url("/api/notes"))
        .json(&json!({"title": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 403);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"], "csrf");
    // Another session's token does not work either.
    let other = as_user(&app, "alice").await;
    let foreign = other.csrf().await;
    assert_eq!(post_note(&alice, &foreign, "t", "b").await.status(), 403);
    assert_eq!(note_count(&app).await, 0);

    // Bearer callers carry no ambient credential: no CSRF token needed.
    let bearer = crate::bearer::access_token(&app, json!(["DemoApp.Write"]));
    let response = reqwest::Client::new()
        .post(app.url("/api/notes"))
        .bearer_auth(bearer)
        .json(&json!({"title": "from a script"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(note_count(&app).await, 1);
}

#[tokio::test]
async fn invalid_notes_are_re_rendered_with_errors_and_not_stored() {
    let app = spawn_app().await;
    let bob = as_user(&app, "bob").await;
    let token = bob.csrf().await;
    let long_title = "x".repeat(201);
    let long_body = "y".repeat(10_001);
    for (title, body, field) in [
        ("", "b", "title"),
        ("   ", "b", "title"),
        (long_title.as_str(), "b", "title"),
        ("ok", long_body.as_str(), "body"),
    ] {
        let response = post_note(&bob, &token, title, body).await;
        assert_eq!(response.status(), 422);
        let page = response.text().await.unwrap();
        assert!(page.contains(&format!("data-field=\"{field}\"")), "{field}");
    }
    // Exactly at the limits is fine.
    let title = "é".repeat(200);
    let body = "b".repeat(10_000);
    assert_eq!(post_note(&bob, &token, &title, &body).await.status(), 303);
    assert_eq!(note_count(&app).await, 1);
}

#[tokio::test]
async fn api_errors_have_a_stable_json_shape() {
    let app = spawn_app().await;
    let alice = as_user(&app, "alice").await;
    let token = alice.csrf().await;
    let send = |body: reqwest::Body, ctype: &'static str| {
        alice
            .client
            .post(alice.url("/api/notes"))
            .header("X-CSRF-Token", &token)
            .header("Content-Type", ctype)
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Body, &str, u16)> = vec![
        ("{not json".into(), "application/json", 400),
        (r#"{"title": 5}"#.into(), "application/json", 422),
        (r#"{"title": ""}"#.into(), "application/json", 422),
        (r#"{"title": "t"}"#.into(), "text/plain", 415),
        (
            format!(r#"{{"title": "t", "body": "{}"}}"#, "z".repeat(70_000)).into(),
            "application/json",
            413,
        ),
    ];
    for (body, ctype, status) in cases {
        let response = send(body, ctype).await.unwrap();
        assert_eq!(response.status(), status, "{ctype} -> {status}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert!(
            json["error"].is_string() && json["detail"].is_string(),
            "{json}"
        );
    }
    let missing = alice
        .client
        .delete(alice.url("/api/notes/nope"))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let json: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(json["error"], "not_found");
    assert_eq!(app.get("/api/notes").await.status(), 401, "anonymous");
    assert_eq!(note_count(&app).await, 0);
}

#[tokio::test]
async fn unknown_note_is_a_404_page_and_paging_works() {
    let app = spawn_app().await;
    let alice = as_user(&app, "alice").await;
    let token = alice.csrf().await;
    let response = alice.post_csrf("/notes/does-not-exist/delete").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("id=\"not-found\""));

    for i in 0..23 {
        post_note(&alice, &token, &format!("note {i}"), "").await;
    }
    let first: serde_json::Value = alice.get("/api/notes").await.json().await.unwrap();
    assert_eq!(first["notes"].as_array().unwrap().len(), 20);
    assert_eq!(first["more"], true);
    let second: serde_json::Value = alice.get("/api/notes?page=2").await.json().await.unwrap();
    assert_eq!(second["notes"].as_array().unwrap().len(), 3);
    assert_eq!(second["more"], false);
    let page = alice.get("/notes?page=2").await.text().await.unwrap();
    assert!(
        page.contains("note 0") && !page.contains("note 22"),
        "oldest on page 2"
    );
    assert_eq!(alice.get("/notes?page=abc").await.status(), 400);
}
