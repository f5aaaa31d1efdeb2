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

/// The problems of loading `pairs` from an empty directory under `app_env`.
fn problems_for(app_env: &str, pairs: &[(&str, &str)]) -> Vec<settings::Problem> {
    let dir = crate::helpers::temp_dir();
    settings::load(&dir, Some(app_env), env(pairs)).problems
}

fn problem_for<'a>(problems: &'a [settings::Problem], key: &str) -> Option<&'a str> {
    problems
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.message.as_str())
}

#[test]
fn a_token_key_and_a_token_key_file_together_are_a_problem() {
    let key = format!("{}=", "A".repeat(43));
    let both = problems_for(
        "Production",
        &[
            ("APP__SESSION__TOKEN_KEY", &key),
            ("APP__SESSION__TOKEN_KEY_FILE", "/run/secrets/token-key"),
        ],
    );
    let message = problem_for(&both, "session.token_key_file").expect("refused");
    assert!(message.contains("session.token_key"), "{message}");
    assert!(!message.contains(&key), "no key in {message}");
    let one = problems_for("Production", &[("APP__SESSION__TOKEN_KEY", &key)]);
    assert_eq!(problem_for(&one, "session.token_key_file"), None);
}

#[test]
fn plaintext_database_off_loopback_is_refused_outside_development() {
    let remote = "postgres://app:hunter2@db.example.com:5432/app";
    let refused = [
        remote.to_owned(),
        format!("{remote}?sslmode=prefer"),
        format!("{remote}?sslmode=disable"),
        format!("{remote}?sslmode=require&sslmode=disable"),
        "postgresql://app@10.0.0.5/app".to_owned(),
        "postgres://app@localhost/app?host=db.example.com".to_owned(),
    ];
    for url in &refused {
        let problems = problems_for("Production", &[("APP__DATABASE__URL", url)]);
        let message = problem_for(&problems, "database.url")
            .unwrap_or_else(|| panic!("{url} should be refused: {problems:?}"));
        assert!(
            message.contains("sslmode=verify-full")
                && message.contains("database.allow_plaintext")
                && message.contains("tokens"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "no password in {message}");
        for (app_env, extra) in [
            ("Production", ("APP__DATABASE__ALLOW_PLAINTEXT", "true")),
            ("Development", ("APP__LOG__FILTER", "info")),
        ] {
            let problems = problems_for(app_env, &[("APP__DATABASE__URL", url), extra]);
            assert_eq!(
                problem_for(&problems, "database.url"),
                None,
                "{url} {extra:?}"
            );
        }
    }
    let accepted = [
        format!("{remote}?sslmode=require"),
        format!("{remote}?sslmode=verify-ca"),
        format!("{remote}?application_name=x&sslmode=VERIFY-FULL"),
        "postgres://app@localhost/app".to_owned(),
        "postgres://app@127.0.0.2:5432/app".to_owned(),
        "postgres://app@[::1]/app".to_owned(),
        "postgres://app@db.example.com/app?host=/var/run/postgresql".to_owned(),
    ];
    for url in &accepted {
        let problems = problems_for("Staging", &[("APP__DATABASE__URL", url)]);
        assert_eq!(problem_for(&problems, "database.url"), None, "{url}");
    }
}

#[test]
fn plaintext_redis_off_loopback_is_refused_outside_development() {
    let redis = |url: &'static str| {
        [
            ("APP__SESSION__STORE", "redis"),
            ("APP__SESSION__REDIS_URL", url),
        ]
    };
    let problems = problems_for("Production", &redis("redis://:pw@cache.example.com:6379"));
    let message = problem_for(&problems, "session.redis_url").expect("plaintext Redis refused");
    assert!(
        message.contains("rediss://")
            && message.contains("session.allow_plaintext")
            && message.contains("tokens")
            && !message.contains("pw@"),
        "{message}"
    );
    for url in [
        "rediss://cache.example.com:6380",
        "redis://127.0.0.1:6379",
        "redis://localhost:6379/0",
        "redis://[::1]:6379",
    ] {
        let problems = problems_for("Test", &redis(url));
        assert_eq!(problem_for(&problems, "session.redis_url"), None, "{url}");
    }
    let mut allowed = redis("redis://cache.example.com:6379").to_vec();
    allowed.push(("APP__SESSION__ALLOW_PLAINTEXT", "true"));
    assert_eq!(
        problem_for(&problems_for("Production", &allowed), "session.redis_url"),
        None
    );
    let problems = problems_for("Development", &redis("redis://cache.example.com:6379"));
    assert_eq!(problem_for(&problems, "session.redis_url"), None);
}

#[test]
fn tunables_out_of_bounds_name_the_key_and_the_range() {
    // A remote authority: the provider floors apply to it.
    let authority = ("APP__AUTH__AUTHORITY", "https://login.example.com/t/v2.0");
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        (
            "APP__SERVER__TRUSTED_PROXIES",
            "10.0.0.0/8, 0.0.0.0/0",
            "server.trusted_proxies",
            "prefix length 1 or more",
        ),
        (
            "APP__SERVER__TRUSTED_PROXIES",
            "::/0",
            "server.trusted_proxies",
            "prefix length 1 or more",
        ),
        (
            "APP__AUTH__JWKS_REFRESH_COOLDOWN_SECS",
            "4",
            "auth.jwks_refresh_cooldown_secs",
            "between 5 and 3600 seconds",
        ),
        (
            "APP__AUTH__DISCOVERY_RETRY_SECS",
            "0",
            "auth.discovery_retry_secs",
            "between 5 and 3600 seconds",
        ),
        (
            "APP__AUTH__HTTP_TIMEOUT_SECS",
            "31",
            "auth.http_timeout_secs",
            "between 1 and 30 seconds",
        ),
        (
            "APP__AUTH__HTTP_TIMEOUT_SECS",
            "0",
            "auth.http_timeout_secs",
            "between 1 and 30 seconds",
        ),
        (
            "APP__SESSION__ABSOLUTE_TIMEOUT_MINUTES",
            "43201",
            "session.absolute_timeout_minutes",
            "at most 30 days",
        ),
        (
            "APP__SERVER__RATE_LIMIT_PER_MINUTE",
            "100001",
            "server.rate_limit_per_minute",
            "between 1 and 100000",
        ),
        (
            "APP__AUDIT__RETENTION_DAYS",
            "3651",
            "audit.retention_days",
            "between 1 and 3650 days",
        ),
    ];
    for (var, value, key, range) in cases {
        let problems = problems_for("Production", &[authority, (var, value)]);
        let message = problem_for(&problems, key)
            .unwrap_or_else(|| panic!("{var}={value} should flag {key}: {problems:?}"));
        assert!(message.contains(range), "{key}: {message}");
    }
    // Both timeouts over 30 days: the idle one is refused for its bound, not only for
    // exceeding the absolute one.
    let problems = problems_for(
        "Production",
        &[
            ("APP__SESSION__IDLE_TIMEOUT_MINUTES", "43201"),
            ("APP__SESSION__ABSOLUTE_TIMEOUT_MINUTES", "43201"),
        ],
    );
    let message = problem_for(&problems, "session.idle_timeout_minutes").expect("idle bound");
    assert!(message.contains("at most 30 days"), "{message}");
}

#[test]
fn tunables_at_their_bounds_are_accepted() {
    let keys = [
        "server.trusted_proxies",
        "auth.jwks_refresh_cooldown_secs",
        "auth.discovery_retry_secs",
        "auth.http_timeout_secs",
        "session.idle_timeout_minutes",
        "session.absolute_timeout_minutes",
        "server.rate_limit_per_minute",
        "audit.retention_days",
    ];
    for pairs in [
        [
            ("APP__AUTH__AUTHORITY", "https://login.example.com/t/v2.0"),
            (
                "APP__SERVER__TRUSTED_PROXIES",
                "10.0.0.0/8 fd00::/8 192.0.2.1",
            ),
            ("APP__AUTH__JWKS_REFRESH_COOLDOWN_SECS", "5"),
            ("APP__AUTH__DISCOVERY_RETRY_SECS", "3600"),
            ("APP__AUTH__HTTP_TIMEOUT_SECS", "30"),
            ("APP__SESSION__IDLE_TIMEOUT_MINUTES", "43200"),
            ("APP__SESSION__ABSOLUTE_TIMEOUT_MINUTES", "43200"),
            ("APP__SERVER__RATE_LIMIT_PER_MINUTE", "100000"),
            ("APP__AUDIT__RETENTION_DAYS", "3650"),
        ],
        [
            // A loopback authority is a local provider (the test suite's fake, dev/idp):
            // retrying at once cannot hammer a real one.
            ("APP__AUTH__AUTHORITY", "http://127.0.0.1:9400"),
            ("APP__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
            ("APP__AUTH__JWKS_REFRESH_COOLDOWN_SECS", "0"),
            ("APP__AUTH__DISCOVERY_RETRY_SECS", "0"),
            ("APP__AUTH__HTTP_TIMEOUT_SECS", "1"),
            ("APP__SESSION__IDLE_TIMEOUT_MINUTES", "1"),
            ("APP__SERVER__RATE_LIMIT_PER_MINUTE", "0"),
            ("APP__AUDIT__RETENTION_DAYS", "0"),
            ("APP__LOG__FILTER", "info"),
        ],
    ] {
        let problems = problems_for("Production", &pairs);
        for key in keys {
            assert_eq!(problem_for(&problems, key), None, "{key}: {pairs:?}");
        }
    }
}

#[test]
fn huge_session_timeouts_are_refused_without_overflow() {
    let max = u64::MAX.to_string();
    let problems = problems_for(
        "Production",
        &[
            ("APP__SESSION__IDLE_TIMEOUT_MINUTES", &max),
            ("APP__SESSION__ABSOLUTE_TIMEOUT_MINUTES", &max),
        ],
    );
    let message = problem_for(&problems, "session.absolute_timeout_minutes").expect("refused");
    assert!(message.contains("at most 30 days"), "{message}");
}

/// The effective value and origin `check-config` prints for `key`.
fn shown(loaded: &settings::Loaded, key: &str) -> (String, String) {
    let e = loaded
        .entries
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("{key} not reported"));
    (e.value.clone(), e.origin.clone())
}

#[test]
fn list_settings_accept_a_json_array_in_the_environment() {
    let dir = crate::helpers::temp_dir();
    let loaded = settings::load(
        &dir,
        Some("Production"),
        env(&[
            (
                "APP__SERVER__TRUSTED_PROXIES",
                r#"["10.0.0.0/8","fd00::/8"]"#,
            ),
            (
                "APP__AUTH__SCOPES",
                r#" ["openid", "profile", "api://x/.default"] "#,
            ),
            (
                "APP__AUTH__ALLOWED_TENANTS",
                r#"["11111111-2222-3333-4444-555555555555","aaaaaaaa-2222-3333-4444-555555555555"]"#,
            ),
            (
                "APP__AUTHORIZATION__ROLES",
                r#"["DemoApp.Read","DemoApp.Write","DemoApp.Admin"]"#,
            ),
        ]),
    );
    let s = &loaded.settings;
    let nets: Vec<String> = s
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["10.0.0.0/8", "fd00::/8"]);
    assert_eq!(s.auth.scopes, ["openid", "profile", "api://x/.default"]);
    assert_eq!(
        s.auth.allowed_tenants,
        [
            "11111111-2222-3333-4444-555555555555",
            "aaaaaaaa-2222-3333-4444-555555555555"
        ]
    );
    assert_eq!(
        s.authorization.roles,
        ["DemoApp.Read", "DemoApp.Write", "DemoApp.Admin"]
    );
    for key in [
        "server.trusted_proxies",
        "auth.scopes",
        "auth.allowed_tenants",
        "authorization.roles",
    ] {
        assert_eq!(problem_for(&loaded.problems, key), None, "{key}");
    }
    assert_eq!(
        shown(&loaded, "server.trusted_proxies"),
        (
            "[10.0.0.0/8, fd00::/8]".to_owned(),
            "env APP__SERVER__TRUSTED_PROXIES (JSON array)".to_owned()
        )
    );
}

#[test]
fn list_settings_accept_a_comma_or_space_list_in_the_environment() {
    let dir = crate::helpers::temp_dir();
    let loaded = settings::load(
        &dir,
        Some("Production"),
        env(&[
            ("APP__SERVER__TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8"),
            ("APP__AUTH__SCOPES", "openid profile\temail"),
        ]),
    );
    assert_eq!(loaded.settings.server.trusted_proxies.len(), 2);
    assert_eq!(loaded.settings.auth.scopes, ["openid", "profile", "email"]);
    assert_eq!(
        shown(&loaded, "server.trusted_proxies"),
        (
            "[10.0.0.0/8, fd00::/8]".to_owned(),
            "env APP__SERVER__TRUSTED_PROXIES (comma/space list)".to_owned()
        )
    );
}

#[test]
fn list_settings_accept_indexed_keys_in_index_order() {
    // The repository's appsettings.json sets `trusted_proxies: []`; indexed keys replace it.
    let loaded = settings::load(
        std::path::Path::new("."),
        Some("Production"),
        env(&[
            ("APP__SERVER__TRUSTED_PROXIES__10", "192.168.0.0/16"),
            ("APP__SERVER__TRUSTED_PROXIES__1", "fd00::/8"),
            ("APP__SERVER__TRUSTED_PROXIES__0", "10.0.0.0/8"),
            ("APP__SERVER__TRUSTED_PROXIES__2", "172.16.0.0/12"),
            ("APP__AUTH__SCOPES__0", "openid"),
            ("APP__AUTH__SCOPES__1", "profile"),
            (
                "APP__AUTH__ALLOWED_TENANTS__0",
                "11111111-2222-3333-4444-555555555555",
            ),
            ("APP__AUTHORIZATION__ROLES__0", "DemoApp.Read"),
            ("APP__AUTHORIZATION__ROLES__1", "DemoApp.Write"),
            ("APP__AUTHORIZATION__ROLES__2", "DemoApp.Admin"),
        ]),
    );
    let s = &loaded.settings;
    let nets: Vec<String> = s
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        nets,
        ["10.0.0.0/8", "fd00::/8", "172.16.0.0/12", "192.168.0.0/16"]
    );
    assert_eq!(s.auth.scopes, ["openid", "profile"]);
    assert_eq!(
        s.auth.allowed_tenants,
        ["11111111-2222-3333-4444-555555555555"]
    );
    assert_eq!(
        s.authorization.roles,
        ["DemoApp.Read", "DemoApp.Write", "DemoApp.Admin"]
    );
    for key in [
        "server.trusted_proxies",
        "auth.scopes",
        "auth.allowed_tenants",
        "authorization.roles",
    ] {
        assert_eq!(problem_for(&loaded.problems, key), None, "{key}");
    }
    let (value, origin) = shown(&loaded, "server.trusted_proxies");
    assert_eq!(
        value,
        "[10.0.0.0/8, fd00::/8, 172.16.0.0/12, 192.168.0.0/16]"
    );
    assert_eq!(
        origin,
        "env APP__SERVER__TRUSTED_PROXIES__0, APP__SERVER__TRUSTED_PROXIES__1, \
         APP__SERVER__TRUSTED_PROXIES__2, APP__SERVER__TRUSTED_PROXIES__10 (indexed)"
    );
}

#[test]
fn unreadable_list_settings_are_problems_naming_the_key() {
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        (
            "APP__AUTH__ALLOWED_TENANTS",
            r#"["tenant-1","#,
            "auth.allowed_tenants",
            "not a valid JSON array",
        ),
        (
            "APP__AUTH__SCOPES",
            r#"["openid" "profile"]"#,
            "auth.scopes",
            "not a valid JSON array",
        ),
        (
            "APP__AUTHORIZATION__ROLES",
            r#"[{"name": "A"}]"#,
            "authorization.roles",
            "not text",
        ),
        (
            "APP__SERVER__TRUSTED_PROXIES__FIRST",
            "10.0.0.0/8",
            "server.trusted_proxies",
            "APP__SERVER__TRUSTED_PROXIES__FIRST is not an indexed entry",
        ),
        (
            "APP__AUTH__ALLOWED_TENANTS__0__NAME",
            "t",
            "auth.allowed_tenants",
            "not text",
        ),
    ];
    for (var, value, key, why) in cases {
        let problems = problems_for("Production", &[(var, value)]);
        let message = problem_for(&problems, key)
            .unwrap_or_else(|| panic!("{var}={value} should flag {key}: {problems:?}"));
        assert!(message.contains(why), "{var}: {message}");
    }
    let problems = problems_for(
        "Production",
        &[
            ("APP__AUTH__SCOPES__0", "openid"),
            ("APP__AUTH__SCOPES__00", "profile"),
        ],
    );
    assert!(
        problem_for(&problems, "auth.scopes").is_some_and(|m| m.contains("given twice")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn development_with_a_json_array_list_serves_the_app() {
    let dir = crate::helpers::temp_dir();
    let db = format!("sqlite://{}/rolegate.db?mode=rwc", dir.display());
    let key = crate::helpers::session_key_b64();
    // The shipped Development settings name a local provider; the fake stands in for it.
    let idp = crate::fake_idp::FakeIdp::start().await;
    let loaded = settings::load(
        std::path::Path::new("."),
        Some("Development"),
        env(&[
            (
                "APP__SERVER__TRUSTED_PROXIES",
                r#"["10.0.0.0/8","fd00::/8"]"#,
            ),
            ("APP__SERVER__PORT", "0"),
            ("APP__AUTH__AUTHORITY", &idp.issuer),
            ("APP__AUTH__CLIENT_ID", crate::fake_idp::CLIENT_ID),
            ("APP__AUTH__CLIENT_SECRET", crate::fake_idp::CLIENT_SECRET),
            ("APP__DATABASE__URL", &db),
            ("APP__SESSION__KEY", &key),
        ]),
    );
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.settings.server.trusted_proxies.len(), 2);
    let app = Application::build(loaded).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    for path in ["/", "/login"] {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("Almost there"), "{path}: {body}");
    }
}

#[test]
fn downstream_apis_are_read_from_the_files_and_the_environment() {
    let dir = crate::helpers::temp_dir();
    write(
        &dir,
        "appsettings.json",
        r#"{"downstream_apis": {"graph": {"base_url": "https://graph.microsoft.com/v1.0", "scopes": ["User.Read"]}}}"#,
    );
    let from_file = settings::load(&dir, Some("Production"), env(&[]));
    let graph = &from_file.settings.downstream_apis["graph"];
    assert_eq!(graph.base_url, "https://graph.microsoft.com/v1.0");
    assert_eq!(graph.scopes.0, vec!["User.Read"]);
    assert_eq!(shown(&from_file, "downstream_apis").1, "appsettings.json");

    // One key from a variable, the rest from the file; a new API from variables alone.
    let layered = settings::load(
        &dir,
        Some("Production"),
        env(&[
            (
                "APP__DOWNSTREAM_APIS__GRAPH__SCOPES",
                "User.Read Calendars.Read",
            ),
            (
                "APP__DOWNSTREAM_APIS__BILLING__BASE_URL",
                "https://billing.example/api",
            ),
            (
                "APP__DOWNSTREAM_APIS__BILLING__SCOPES",
                "api://billing/read",
            ),
        ]),
    );
    let apis = &layered.settings.downstream_apis;
    assert_eq!(apis["graph"].base_url, "https://graph.microsoft.com/v1.0");
    assert_eq!(apis["graph"].scopes.0, vec!["User.Read", "Calendars.Read"]);
    assert_eq!(apis["billing"].scopes.0, vec!["api://billing/read"]);

    // JSON text in one variable replaces the section.
    let json = settings::load(
        &dir,
        Some("Production"),
        env(&[(
            "APP__DOWNSTREAM_APIS",
            r#"{"crm": {"base_url": "https://crm.example", "scopes": ["api://crm/.default"]}}"#,
        )]),
    );
    let apis = &json.settings.downstream_apis;
    assert_eq!(apis.keys().collect::<Vec<_>>(), vec!["crm"]);
}
