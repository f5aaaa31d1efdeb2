//! The admin console: sessions with revoke, audit log with filters, chart; and the dashboard scope.

use crate::helpers::{TestApp, spawn_app};

/// event, user_id, user_name, client_ip, request_id, detail
type AuditRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

async fn session_ids(app: &TestApp, sub: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM sessions WHERE user_sub = $1")
        .bind(sub)
        .fetch_all(&app.pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_sees_sessions_and_a_revoked_session_is_refused_at_once() {
    let app = spawn_app().await;
    let alice = app.same_app_new_browser();
    alice.sign_in("alice").await;
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    assert!(bob.is_signed_in().await);

    let page = alice.page("/admin").await;
    assert!(page.contains("data-user=\"bob@rolegate.test\""));
    assert!(page.contains("127.0.0.1"), "client IP shown");
    assert!(page.contains("<svg"), "chart rendered server-side");

    let ids = session_ids(&app, "sub-bob-0001").await;
    assert_eq!(ids.len(), 1);
    // Without the CSRF token nothing happens.
    let refused = alice
        .client
        .post(alice.url(&format!("/admin/sessions/{}/revoke", ids[0])))
        .form(&[("csrf_token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(bob.is_signed_in().await);

    let done = alice
        .post_csrf(&format!("/admin/sessions/{}/revoke", ids[0]))
        .await;
    assert_eq!(done.status(), 303);
    assert!(
        !bob.is_signed_in().await,
        "refused on the very next request"
    );
    assert_eq!(bob.get("/notes").await.status(), 302);
}

#[tokio::test]
async fn revoke_all_ends_every_session_of_a_user_and_only_admins_may() {
    let app = spawn_app().await;
    let alice = app.same_app_new_browser();
    alice.sign_in("alice").await;
    let carol1 = app.same_app_new_browser();
    carol1.sign_in("carol").await;
    let carol2 = app.same_app_new_browser();
    carol2.sign_in("carol").await;
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;

    let denied = bob.post_csrf("/admin/users/sub-carol-0001/revoke").await;
    assert_eq!(denied.status(), 403);
    assert!(carol1.is_signed_in().await);

    let done = alice.post_csrf("/admin/users/sub-carol-0001/revoke").await;
    assert_eq!(done.status(), 303);
    assert!(!carol1.is_signed_in().await && !carol2.is_signed_in().await);
    assert!(bob.is_signed_in().await && alice.is_signed_in().await);
}

#[tokio::test]
async fn every_event_is_audited_with_user_ip_and_request_id() {
    let app = spawn_app().await;
    let alice = app.same_app_new_browser();
    alice.sign_in("alice").await; // sign_in
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    bob.get("/admin").await; // access_denied
    let dave = app.same_app_new_browser();
    let started = dave.start_login("").await;
    let claims = dave.idp.claims("dave", &started.nonce);
    dave.finish_with_token(&started, dave.idp.sign(&claims))
        .await; // sign_in_refused
    let forged = app.same_app_new_browser();
    forged.start_login("").await;
    forged.callback("code=x&state=forged").await; // sign_in_refused (state mismatch)
    let token = alice.csrf().await;
    alice
        .client
        .post(alice.url("/notes"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("title", "audited"),
            ("body", ""),
        ])
        .send()
        .await
        .unwrap(); // note_created
    let (note_id,): (String,) = sqlx::query_as("SELECT id FROM notes")
        .fetch_one(&app.pool().await)
        .await
        .unwrap();
    alice.post_csrf(&format!("/notes/{note_id}/delete")).await; // note_deleted
    alice.post_csrf("/admin/users/sub-bob-0001/revoke").await; // session_revoked
    alice.sign_out().await; // sign_out
    let carol = app.same_app_new_browser();
    carol.sign_in("carol").await;
    let logout = app.idp.sign(&crate::single_sign_out::logout_claims(
        &app,
        "carol",
        None,
        serde_json::json!({"jti": "audited-logout"}),
    ));
    let ended = crate::single_sign_out::post_logout_token(&app.address, &logout).await;
    assert_eq!(ended.status(), 200); // provider_signed_out

    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT event, user_id, user_name, client_ip, request_id, detail FROM audit_log ORDER BY id",
    )
    .fetch_all(&app.pool().await)
    .await
    .unwrap();
    let find = |event: &str| rows.iter().filter(|r| r.0 == event).collect::<Vec<_>>();
    // roles_changed needs a role re-check at the IdP: tests/api/live_roles.rs writes and checks it.
    for event in crate::EVENTS.iter().filter(|e| **e != "roles_changed") {
        assert!(!find(event).is_empty(), "no {event} row in {rows:?}");
    }
    for row in &rows {
        assert_eq!(row.3.as_deref(), Some("127.0.0.1"), "client ip: {row:?}");
        assert!(
            row.4.as_deref().is_some_and(|r| !r.is_empty()),
            "request id: {row:?}"
        );
    }
    let refused = find("sign_in_refused");
    assert!(
        refused
            .iter()
            .any(|r| r.5.starts_with("no_role") && r.2.as_deref() == Some("Dave Test"))
    );
    assert!(refused.iter().any(|r| r.5.starts_with("state_mismatch")));
    let denied = find("access_denied");
    assert!(denied[0].5.contains("/admin") && denied[0].5.contains("DemoApp.Admin"));
    assert_eq!(find("sign_in")[0].1.as_deref(), Some("oid-alice"));
    assert_eq!(find("sign_out")[0].2.as_deref(), Some("Alice Test"));
}

#[tokio::test]
async fn audit_filters_and_chart_on_the_admin_page() {
    let app = spawn_app().await;
    let alice = app.same_app_new_browser();
    alice.sign_in("alice").await;
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    bob.get("/admin").await;

    let only_denied = alice.page("/admin?event=access_denied").await;
    assert!(only_denied.contains("class=\"event-access_denied\""));
    assert!(!only_denied.contains("class=\"event-sign_in\""));
    let by_user = alice.page("/admin?user=bob").await;
    let audit_table = &by_user[by_user.find("id=\"audit\"").unwrap()..];
    assert!(audit_table.contains("Bob Test") && !audit_table.contains("Alice Test"));
    let today = time::OffsetDateTime::now_utc().date();
    let in_range = alice.page(&format!("/admin?from={today}&to={today}")).await;
    assert!(in_range.contains("class=\"event-sign_in\""));
    let past = alice.page("/admin?from=2001-01-01&to=2001-01-02").await;
    assert!(!past.contains("class=\"event-"));
    assert_eq!(alice.get("/admin?from=yesterday").await.status(), 400);
    assert_eq!(alice.get("/admin?event=nonsense").await.status(), 400);
    assert!(
        only_denied.contains("<svg") && only_denied.contains("access denied"),
        "chart legend"
    );
}

#[tokio::test]
async fn the_dashboard_scope_guards_every_file() {
    let app = spawn_app().await;
    let files = [
        "/dash/",
        "/dash/index.html",
        "/dash/dash.js",
        "/dash/dash.css",
        "/dash/missing.txt",
    ];
    for path in files {
        let response = app.get(path).await;
        assert_eq!(response.status(), 302, "anonymous {path}");
    }
    // The folder is not reachable through /static either.
    for path in ["/static/dash/index.html", "/static/dash/dash.js"] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
    // A Bearer caller without an app role is refused on the API the dashboard uses.
    let roleless = crate::bearer::access_token(&app, serde_json::json!([]));
    let response = reqwest::Client::new()
        .get(app.url("/api/notes"))
        .bearer_auth(roleless)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let carol = app.same_app_new_browser();
    carol.sign_in("carol").await;
    for (path, status) in [
        ("/dash/", 200),
        ("/dash/index.html", 200),
        ("/dash/dash.js", 200),
        ("/dash/dash.css", 200),
        ("/dash/missing.txt", 404),
    ] {
        assert_eq!(carol.get(path).await.status(), status, "carol {path}");
    }
    assert!(carol.page("/dash/").await.contains("id=\"dash\""));
}

#[tokio::test]
async fn hammering_a_forbidden_page_writes_one_audit_row_a_minute() {
    let app = spawn_app().await;
    app.sign_in("bob").await;
    for _ in 0..10 {
        assert_eq!(app.get("/admin").await.status(), 403);
    }
    app.get("/admin?tab=2").await; // same path, query ignored
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'access_denied'")
            .fetch_one(&app.pool().await)
            .await
            .unwrap();
    assert_eq!(rows, 1);
}

/// The chart reads the hourly rollup, which every audit write keeps equal to the log, and the
/// retention purge drops the hours it empties.
#[tokio::test]
async fn the_chart_rollup_counts_every_audit_row_and_is_purged_with_the_log() {
    let app = spawn_app().await;
    app.sign_in("alice").await;
    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    bob.get("/admin").await; // access_denied
    let pool = app.pool().await;
    let by_event = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let mut rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            rows.sort();
            rows
        }
    };
    let log = by_event("SELECT event, COUNT(*) FROM audit_log GROUP BY event").await;
    let rollup =
        by_event("SELECT event, CAST(SUM(count) AS BIGINT) FROM audit_hourly GROUP BY event").await;
    assert_eq!(rollup, log);
    assert!(
        log.iter().any(|(e, n)| e == "sign_in" && *n == 2),
        "{log:?}"
    );
    assert!(log.iter().any(|(e, _)| e == "access_denied"), "{log:?}");

    let page = app.page("/admin").await;
    let totals = &page[page.find("class=\"totals\"").expect("chart totals row")..];
    assert!(
        totals.contains("<td>2</td>"),
        "two sign-ins in the chart: {}",
        &totals[..200.min(totals.len())]
    );

    let future = rolegate::clock::now() + 7_200;
    rolegate::db::audit::purge_older_than(&pool, future)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "every hour before the cutoff is gone");
}

/// The page's sessions table and audit rows are kept for a second (`src/admin_views.rs`), yet
/// a write this instance makes shows on the very next view; the table holds nothing of the
/// viewer, and the pager keeps the filter percent-encoded.
#[tokio::test]
async fn the_kept_admin_parts_follow_this_instances_writes() {
    let app = spawn_app().await;
    let alice = app.same_app_new_browser();
    alice.sign_in("alice").await;
    let first = alice.page("/admin").await;
    assert!(!first.contains("data-user=\"bob@rolegate.test\""));

    let bob = app.same_app_new_browser();
    bob.sign_in("bob").await;
    bob.get("/admin").await; // access_denied
    let page = alice.page("/admin").await;
    assert!(
        page.contains("data-user=\"bob@rolegate.test\""),
        "a sign-in shows at once"
    );
    assert!(
        page.contains("class=\"event-access_denied\""),
        "a new audit row shows at once"
    );
    // One CSRF form for every revoke button, carrying the viewer's token.
    let token = alice.csrf().await;
    assert!(page.contains(&format!(
        "<form method=\"post\" id=\"revoke\" hidden><input type=\"hidden\" name=\"csrf_token\" value=\"{token}\"></form>"
    )));
    let sessions = page
        .split("<table id=\"sessions\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("sessions table");
    assert!(!sessions.contains("csrf_token") && !sessions.contains(&token));
    assert!(sessions.contains("form=\"revoke\" formaction=\"/admin/users/sub-bob-0001/revoke\""));

    let ids = session_ids(&app, "sub-bob-0001").await;
    let done = alice
        .post_csrf(&format!("/admin/sessions/{}/revoke", ids[0]))
        .await;
    assert_eq!(done.status(), 303);
    let after = alice.page("/admin").await;
    assert!(
        !after.contains("data-user=\"bob@rolegate.test\""),
        "a revoke shows at once"
    );
    assert!(after.contains("class=\"event-session_revoked\""));

    let paged = alice.page("/admin?user=a%26b%23c&page=2").await;
    assert!(
        paged.contains("/admin?event=&amp;user=a%26b%23c&amp;from=&amp;to=&amp;page=1"),
        "the Newer link keeps the filter as one value"
    );
}
