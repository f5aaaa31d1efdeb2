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
