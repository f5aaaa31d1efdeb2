//! `/livez` and `/readyz`: liveness never consults a dependency, readiness names what is missing.

use crate::helpers::{spawn_app, spawn_app_with};

async fn readyz(app: &crate::helpers::TestApp) -> (u16, serde_json::Value) {
    let response = app.get("/readyz").await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("readyz is JSON"))
}

#[tokio::test]
async fn readyz_turns_ready_once_discovery_and_keys_are_loaded() {
    let app = spawn_app().await;
    assert_eq!(app.get("/livez").await.status().as_u16(), 200);
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..50 {
        last = readyz(&app).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 200, "{}", last.1);
    assert_eq!(last.1["status"], "ready");
}

#[tokio::test]
async fn readyz_names_the_identity_provider_when_discovery_is_not_loaded() {
    // A closed port: discovery can never succeed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = spawn_app_with(|env| {
        env.insert(
            "APP__AUTH__AUTHORITY".into(),
            format!("http://127.0.0.1:{port}/"),
        );
    })
    .await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    let missing = body["not_ready"].as_array().expect("a list");
    assert!(missing.iter().any(|m| m == "identity_provider"), "{body}");
    // Liveness does not care.
    assert_eq!(app.get("/livez").await.status().as_u16(), 200);
}

/// PostgreSQL at `ROLEGATE_TEST_POSTGRES` (dev/services), or `None` (skipped) unless
/// `ROLEGATE_REQUIRE_SERVICES` is set.
fn postgres_admin_url() -> Option<String> {
    match std::env::var("ROLEGATE_TEST_POSTGRES") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("ROLEGATE_REQUIRE_SERVICES").is_err(),
                "ROLEGATE_TEST_POSTGRES is required (dev/services)"
            );
            eprintln!("skipped: ROLEGATE_TEST_POSTGRES not set");
            None
        }
    }
}

#[tokio::test]
async fn readyz_names_the_database_when_it_stops_answering_and_livez_stays_200() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let url = crate::helpers::create_postgres_database(&admin).await;
    let app = spawn_app_with({
        let url = url.clone();
        move |env| {
            env.insert("APP__DATABASE__URL".into(), url);
        }
    })
    .await;
    let ready = app.wait_for("/readyz", 200).await;
    assert!(ready.is_some(), "ready before the outage");

    // The database goes away under the running app: its connections are cut and every
    // reconnect is refused ("database does not exist").
    let name = url::Url::parse(&url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let pool = rolegate::db::connect(&rolegate::settings::DatabaseSettings {
        url: admin,
        max_connections: 1,
        startup_wait_secs: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    // The session store (same database) may be seen down a probe earlier: wait for both.
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..100 {
        last = readyz(&app).await;
        let named = last.1["not_ready"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m == "database"));
        if last.0 == 503 && named {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = last;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready", "{body}");
    let missing = body["not_ready"].as_array().expect("a list");
    assert!(missing.iter().any(|m| m == "database"), "{body}");
    assert_eq!(
        app.get("/livez").await.status().as_u16(),
        200,
        "liveness does not care"
    );
    let health: serde_json::Value = app.get("/healthz").await.json().await.unwrap();
    assert_eq!(health["database"], "down", "{health}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let errors = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rolegate_database_errors_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("database errors counter");
    assert!(errors >= 1.0, "failed probes counted: {metrics}");
}
