//! Layered settings, validation that lists every problem, and the Development config page.

use std::collections::HashMap;

use rolegate::settings;
use rolegate::startup::Application;

fn write(dir: &std::path::Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

fn env(pairs: &[(&str, &str)]) -> config::Map<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn later_layers_win_and_origins_are_reported() {
    let dir = crate::helpers::temp_dir();
    write(
        &dir,
        "appsettings.json",
        r#"{"server": {"port": 1000, "host": "0.0.0.0"}, "auth": {"client_id": "from-base", "scopes": ["openid"]}}"#,
    );
    write(
        &dir,
        "appsettings.Staging.json",
        r#"{"server": {"port": 2000}, "auth": {"client_id": "from-staging"}}"#,
    );
    let loaded = settings::load(&dir, Some("Staging"), env(&[("APP__SERVER__PORT", "3000")]));
    let s = &loaded.settings;
    assert_eq!(s.env, "Staging");
    assert_eq!(s.server.port, 3000, "env beats both files");
    assert_eq!(s.auth.client_id, "from-staging", "env file beats base file");
    assert_eq!(s.server.host, "0.0.0.0", "base file value kept");
    assert_eq!(s.auth.scopes, vec!["openid"]);
    let origin = |key: &str| {
        loaded
            .entries
            .iter()
            .find(|e| e.key == key)
            .unwrap()
            .origin
            .clone()
    };
    assert_eq!(origin("server.port"), "env APP__SERVER__PORT");
    assert_eq!(origin("auth.client_id"), "appsettings.Staging.json");
    assert_eq!(origin("server.host"), "appsettings.json");
    assert_eq!(origin("auth.redirect_path"), "default");
}

#[test]
fn app_env_defaults_to_production() {
    let dir = crate::helpers::temp_dir();
    let loaded = settings::load(&dir, None, env(&[]));
    assert_eq!(loaded.settings.env, "Production");
    assert!(!loaded.settings.is_development());
}

#[test]
fn every_problem_is_listed_at_once() {
    let dir = crate::helpers::temp_dir();
    let loaded = settings::load(
        &dir,
        Some("Production"),
        env(&[
            ("APP__SERVER__PORT", "eighty"),
            ("APP__SERVER__PUBLIC_URL", "http://app.example.com"),
            ("APP__SERVER__TRUSTED_PROXIES", "10.0.0.0/8, 300.1.1.1/33"),
            ("APP__AUTH__AUTHORITY", "http://idp.example.com"),
            ("APP__AUTH__REDIRECT_PATH", "/"),
        ]),
    );
    let keys: Vec<&str> = loaded.problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "server.port",
        "server.public_url",
        "server.trusted_proxies",
        "auth.authority",
        "auth.client_id",
        "auth.client_secret",
        "auth.redirect_path",
        "session.key",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    let text: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter().any(|t| t.contains("APP__AUTH__CLIENT_SECRET")),
        "says how to fix: {text:?}"
    );
}

#[test]
fn more_bad_values_are_caught() {
    let dir = crate::helpers::temp_dir();
    let cases: Vec<(&str, &str, &str)> = vec![
        ("APP__AUTH__AUTHORITY", "not a url", "auth.authority"),
        (
            "APP__AUTH__REDIRECT_PATH",
            "getAToken",
            "auth.redirect_path",
        ),
        ("APP__AUTH__REDIRECT_PATH", "//evil", "auth.redirect_path"),
        ("APP__AUTH__REDIRECT_PATH", "/login", "auth.redirect_path"),
        ("APP__SERVER__PORT", "70000", "server.port"),
        (
            "APP__SERVER__PUBLIC_URL",
            "https://app.example.com/sub",
            "server.public_url",
        ),
        ("APP__SESSION__KEY", "c2hvcnQ=", "session.key"),
        (
            "APP__SESSION__KEY_FILE",
            "/nonexistent/key",
            "session.key_file",
        ),
        ("APP__AUTH__PROMPT", "always", "auth.prompt"),
        ("APP__AUTH__SCOPES", "profile email", "auth.scopes"),
        ("APP__DATABASE__URL", "mysql://x", "database.url"),
    ];
    for (var, value, key) in cases {
        let loaded = settings::load(&dir, Some("Production"), env(&[(var, value)]));
        assert!(
            loaded.problems.iter().any(|p| p.key == key),
            "{var}={value} should flag {key}: {:?}",
            loaded.problems
        );
    }
}

#[test]
fn secrets_never_appear_in_the_report() {
    let dir = crate::helpers::temp_dir();
    let secret = "super-secret-value-xyz";
    let key = crate::helpers::session_key_b64();
    let loaded = settings::load(
        &dir,
        Some("Production"),
        env(&[
            ("APP__AUTH__CLIENT_SECRET", secret),
            ("APP__SESSION__KEY", &key),
        ]),
    );
    let report = format!("{:?} {:?}", loaded.entries, loaded.problems);
    assert!(!report.contains(secret));
    assert!(!report.contains(&key));
}

#[test]
fn the_shipped_development_settings_are_complete() {
    let loaded = settings::load(std::path::Path::new("."), Some("Development"), env(&[]));
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let loaded = settings::load(std::path::Path::new("."), Some("Production"), env(&[]));
    assert!(!loaded.problems.is_empty(), "production needs real values");
}

#[tokio::test]
async fn production_refuses_to_start_with_bad_settings() {
    let dir = crate::helpers::temp_dir();
    let loaded = settings::load(&dir, Some("Production"), env(&[("APP__SERVER__PORT", "0")]));
    let err = match Application::build(loaded).await {
        Ok(_) => panic!("must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("auth.client_id") && err.contains("auth.authority"),
        "{err}"
    );
}

#[tokio::test]
async fn development_serves_the_almost_there_page() {
    let dir = crate::helpers::temp_dir();
    let mut vars: HashMap<&str, &str> = HashMap::new();
    vars.insert("APP__SERVER__PORT", "0");
    vars.insert("APP__SERVER__HOST", "127.0.0.1");
    let loaded = settings::load(
        &dir,
        Some("Development"),
        vars.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    assert!(!loaded.problems.is_empty());
    let app = Application::build(loaded)
        .await
        .expect("development starts anyway");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    for path in ["/", "/login", "/getAToken?code=x"] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("Almost there"), "{path}");
        assert!(body.contains("auth.client_id") && body.contains("APP__AUTH__CLIENT_ID"));
    }
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
}
