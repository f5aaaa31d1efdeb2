//! Floods: anonymous sign-in starts cannot grow the session store or evict real sessions, the
//! auth routes are rate-limited per client IP, and the audit log cannot be flooded or kept
//! forever.

use std::time::Instant;

use reqwest::redirect::Policy;

use crate::helpers::{TestApp, reason_of, spawn_app_with, start_rolegate_app};

/// 15 minutes: the longest an anonymous session may live.
const ANONYMOUS_TTL_SECS: i64 = 15 * 60;

fn now() -> i64 {
    rolegate::clock::now()
}

/// A client that keeps no cookies: every request is a new anonymous visitor.
fn cookieless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

/// Rate limit off (the flood below would hit it), everything else as shipped.
async fn unlimited() -> TestApp {
    spawn_app_with(|env| {
        env.insert("APP__SERVER__RATE_LIMIT_PER_MINUTE".into(), "0".into());
        env.insert("APP__SERVER__TRUSTED_PROXIES".into(), "127.0.0.1/32".into());
    })
    .await
}

#[tokio::test]
async fn ten_thousand_cookieless_logins_leave_only_short_lived_rows() {
    let app = unlimited().await;
    let alice = app.same_app_new_browser();
    alice.sign_in("alice").await;

    let url = app.url("/login");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, url) = (cookieless(), url.clone());
        tasks.spawn(async move {
            for _ in 0..2_500 {
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let after = now();

    let anonymous = count(&app, "SELECT COUNT(*) FROM sessions WHERE user_sub IS NULL").await;
    assert_eq!(anonymous, 10_000, "one row per cookie-less sign-in start");
    let long_lived: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions WHERE user_sub IS NULL AND expires_at > $1",
    )
    .bind(after + ANONYMOUS_TTL_SECS)
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert_eq!(long_lived, 0, "anonymous rows live at most 15 minutes");
    let signed_in = count(
        &app,
        "SELECT COUNT(*) FROM sessions WHERE user_sub IS NOT NULL",
    )
    .await;
    assert_eq!(signed_in, 1);
    assert!(alice.is_signed_in().await, "the real session still works");

    if rolegate::db::is_sqlite(&app.env["APP__DATABASE__URL"]) {
        // Served from the in-process cache: it answers even with the row gone behind the app's
        // back (only this process writes SQLite, so that never happens for real).
        sqlx::query("DELETE FROM sessions WHERE user_sub IS NOT NULL")
            .execute(&app.pool().await)
            .await
            .unwrap();
        assert!(
            alice.is_signed_in().await,
            "alice's session is still in the cache after the flood"
        );
    }
}

/// The cache holds signed-in sessions only: an anonymous session (a pending sign-in) is read
/// from the store every time, so a flood of them cannot fill the cache.
#[tokio::test]
async fn anonymous_sessions_are_not_served_from_the_cache() {
    let app = unlimited().await;
    let started = app.start_login("").await;
    // Behind the app's back: were the pending sign-in cached, the callback would still find it.
    sqlx::query("DELETE FROM sessions WHERE user_sub IS NULL")
        .execute(&app.pool().await)
        .await
        .unwrap();
    let claims = app.idp.claims("carol", &started.nonce);
    let response = app.finish_with_token(&started, app.idp.sign(&claims)).await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert_eq!(
        reason_of(&body).as_deref(),
        Some("state_mismatch"),
        "{body}"
    );
    assert!(!app.is_signed_in().await);
}

#[tokio::test]
async fn the_sixth_auth_request_from_one_ip_is_refused_with_retry_after() {
    let app = spawn_app_with(|env| {
        env.insert("APP__SERVER__RATE_LIMIT_PER_MINUTE".into(), "5".into());
        env.insert("APP__SERVER__TRUSTED_PROXIES".into(), "127.0.0.1/32".into());
    })
    .await;
    let client = cookieless();
    let from =
        |ip: &'static str, path: &str| client.get(app.url(path)).header("X-Forwarded-For", ip);
    for i in 0..5 {
        let response = from("198.51.100.7", "/login").send().await.unwrap();
        assert_eq!(response.status(), 200, "request {}", i + 1);
    }
    let rows = count(&app, "SELECT COUNT(*) FROM sessions").await;

    let refused = from("198.51.100.7", "/login").send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    assert!(refused.headers().get("set-cookie").is_none(), "no session");
    assert!(refused.text().await.unwrap().contains("Too many requests"));

    let json = from("198.51.100.7", "/login")
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 429);
    assert!(json.headers().contains_key("retry-after"));
    let body: serde_json::Value = json.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");

    // One allowance for the three auth routes, judged on the routed path.
    for path in ["/getAToken?code=x&state=y", "/logout", "/%6Cogin"] {
        let response = from("198.51.100.7", path).send().await.unwrap();
        assert_eq!(response.status(), 429, "{path}");
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions").await,
        rows,
        "refused requests write no session"
    );
    // Other routes are not limited, and other clients have their own allowance.
    let me = from("198.51.100.7", "/api/me").send().await.unwrap();
    assert_eq!(me.status(), 401);
    let other = from("198.51.100.8", "/login").send().await.unwrap();
    assert_eq!(other.status(), 200, "another client IP");
}

#[tokio::test]
async fn refused_callbacks_and_anonymous_sign_outs_write_at_most_ten_rows_per_ip_a_minute() {
    let app = unlimited().await;
    let client = cookieless();
    let began = Instant::now();
    for i in 0..50 {
        let path = if i % 2 == 0 {
            "/getAToken?code=x&state=forged"
        } else {
            "/logout"
        };
        let response = client
            .get(app.url(path))
            .header("X-Forwarded-For", "198.51.100.7")
            .send()
            .await
            .unwrap();
        // GET /logout only shows the "Sign out?" page (200) since sign-out is a POST with the
        // session's CSRF token; the refused callbacks alone exceed the per-IP allowance.
        assert!([400, 200].contains(&response.status().as_u16()), "{path}");
    }
    let elapsed = began.elapsed().as_secs() as i64;
    let written: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE client_ip = '198.51.100.7' \
         AND event IN ('sign_in_refused', 'sign_out')",
    )
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    // Ten at once, then one every six seconds.
    let limit = rolegate::audit::ANONYMOUS_ROWS_PER_MINUTE.get() as i64;
    assert!(
        written >= limit && written <= limit + elapsed / 6,
        "{written} rows for 50 anonymous events"
    );

    let other = client
        .get(app.url("/getAToken?code=x&state=forged"))
        .header("X-Forwarded-For", "198.51.100.8")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    let theirs = count(
        &app,
        "SELECT COUNT(*) FROM audit_log WHERE client_ip = '198.51.100.8'",
    )
    .await;
    assert_eq!(theirs, 1, "another client IP is still audited");
}

#[tokio::test]
async fn denials_are_counted_per_route_pattern_not_per_path() {
    let app = unlimited().await;
    app.sign_in("carol").await;
    let token = app.csrf().await;
    for id in 1..=20 {
        let response = app
            .client
            .post(app.url(&format!("/notes/{id}/delete")))
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "carol may not delete");
    }
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE event = 'access_denied'")
            .fetch_all(&app.pool().await)
            .await
            .unwrap();
    assert_eq!(
        details.len(),
        1,
        "one row per route pattern a minute: {details:?}"
    );
    assert!(
        details[0].contains("/notes/1/delete")
            && details[0].contains("/notes/{id}/delete")
            && details[0].contains("DemoApp.Admin"),
        "{details:?}"
    );
    // Another route pattern is another row.
    assert_eq!(app.get("/admin").await.status(), 403);
    assert_eq!(app.get("/admin").await.status(), 403);
    let rows = count(
        &app,
        "SELECT COUNT(*) FROM audit_log WHERE event = 'access_denied'",
    )
    .await;
    assert_eq!(rows, 2);
}

async fn insert_audit_row(pool: &rolegate::db::Pool, id: &str, at: i64) {
    sqlx::query(
        "INSERT INTO audit_log (id, at, event, user_id, user_name, client_ip, request_id, detail) \
         VALUES ($1, $2, 'sign_in', NULL, NULL, NULL, NULL, 'seeded')",
    )
    .bind(id)
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
}

async fn audit_ids(pool: &rolegate::db::Pool) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM audit_log")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn purge_older_than_deletes_old_rows_and_keeps_new_ones() {
    let app = unlimited().await;
    app.sign_in("alice").await; // a sign_in row written now
    let pool = app.pool().await;
    insert_audit_row(&pool, "old", now() - 100 * 86_400).await;
    insert_audit_row(&pool, "recent", now() - 10 * 86_400).await;

    let purged = rolegate::db::audit::purge_older_than(&pool, now() - 90 * 86_400)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let ids = audit_ids(&pool).await;
    assert!(!ids.contains(&"old".to_owned()));
    assert!(ids.contains(&"recent".to_owned()));
    assert_eq!(ids.len(), 2, "the sign-in row stays: {ids:?}");
}

/// The maintenance task runs at start-up: a second instance on the same database applies
/// `audit.retention_days` (90 by default) at once.
#[tokio::test]
async fn the_maintenance_task_applies_audit_retention() {
    let app = unlimited().await;
    let pool = app.pool().await;
    insert_audit_row(&pool, "old", now() - 100 * 86_400).await;
    insert_audit_row(&pool, "recent", now() - 10 * 86_400).await;
    let (_address, second) = start_rolegate_app(&app.env).await;
    let mut ids = audit_ids(&pool).await;
    for _ in 0..50 {
        if !ids.contains(&"old".to_owned()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        ids = audit_ids(&pool).await;
    }
    second.stop(true).await;
    assert!(!ids.contains(&"old".to_owned()), "old row purged: {ids:?}");
    assert!(ids.contains(&"recent".to_owned()));
}
