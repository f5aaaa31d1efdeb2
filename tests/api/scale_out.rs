//! Several instances sharing Redis sessions (and PostgreSQL data when available): sign-ins that
//! hop instances, revokes seen everywhere, instance and Redis restarts.
//!
//! Each test runs its own `redis-server` child (append-only, fsync always) so it can kill and
//! restart it. Without `redis-server` the tests are skipped, unless `ROLEGATE_REQUIRE_SERVICES=1`
//! (set by dev/test and CI), where that is a failure.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{
    TestApp, create_postgres_database, spawn_app_with, start_rolegate_app, temp_dir,
};

pub struct RedisChild {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisChild {
    /// Starts a private Redis, or `None` (test skipped) when the binary is missing.
    pub fn start() -> Option<RedisChild> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !found {
            assert!(
                std::env::var("ROLEGATE_REQUIRE_SERVICES").is_err(),
                "redis-server is required (apt-get install redis-server)"
            );
            eprintln!("skipped: redis-server not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = RedisChild {
            port,
            dir: temp_dir(),
            child: None,
        };
        redis.restart();
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and data folder, and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not come up");
    }

    /// Kills it hard (SIGKILL): only what was fsynced survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Environment for instances sharing `redis` and one database (PostgreSQL when
/// `ROLEGATE_TEST_POSTGRES` is set, else a shared SQLite file).
async fn shared(redis: &RedisChild) -> TestApp {
    let pg = match std::env::var("ROLEGATE_TEST_POSTGRES") {
        Ok(admin) => Some(create_postgres_database(&admin).await),
        Err(_) => None,
    };
    let url = redis.url();
    spawn_app_with(move |env| {
        env.insert("APP__SESSION__STORE".into(), "redis".into());
        env.insert("APP__SESSION__REDIS_URL".into(), url);
        if let Some(pg) = pg {
            env.insert("APP__DATABASE__URL".into(), pg);
        }
    })
    .await
}

#[tokio::test]
async fn a_sign_in_started_on_a_completes_on_b() {
    let Some(redis) = RedisChild::start() else {
        return;
    };
    let a = shared(&redis).await;
    let (b_addr, _b) = start_rolegate_app(&a.env).await;
    let b = a.via(&b_addr);

    let started = a.start_login("?next=/notes").await;
    let claims = a.idp.claims("carol", &started.nonce);
    let response = b.finish_with_token(&started, a.idp.sign(&claims)).await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    assert_eq!(response.headers()["location"], "/notes");
    assert!(a.is_signed_in().await && b.is_signed_in().await);
    assert_eq!(b.get("/notes").await.status(), 200);

    // The pending sign-in was single-use across instances too.
    let replay = a.callback(&format!("code=x&state={}", started.state)).await;
    assert_eq!(replay.status(), 400);
}

#[tokio::test]
async fn a_revoke_on_b_is_refused_on_a() {
    let Some(redis) = RedisChild::start() else {
        return;
    };
    let bob_on_a = shared(&redis).await;
    let (b_addr, _b) = start_rolegate_app(&bob_on_a.env).await;
    bob_on_a.sign_in("bob").await;
    let alice_on_b = bob_on_a.same_app_new_browser().via(&b_addr);
    alice_on_b.sign_in("alice").await;

    let admin = alice_on_b.get("/admin").await.text().await.unwrap();
    assert!(
        admin.contains("data-user=\"bob@rolegate.test\""),
        "B lists A's sessions"
    );
    let done = alice_on_b
        .post_csrf("/admin/users/sub-bob-0001/revoke")
        .await;
    assert_eq!(done.status(), 303);
    assert!(
        !bob_on_a.is_signed_in().await,
        "A refuses the revoked session at once"
    );
    assert!(alice_on_b.is_signed_in().await);
}

#[tokio::test]
async fn killing_an_instance_loses_no_session() {
    let Some(redis) = RedisChild::start() else {
        return;
    };
    let seed = shared(&redis).await;
    let (a_addr, a) = start_rolegate_app(&seed.env).await;
    let (b_addr, _b) = start_rolegate_app(&seed.env).await;
    let on_a = seed.via(&a_addr);
    on_a.sign_in("alice").await;
    a.stop(false).await;
    assert!(
        on_a.client.get(on_a.url("/api/me")).send().await.is_err(),
        "A is gone"
    );
    let on_b = seed.via(&b_addr);
    assert!(on_b.is_signed_in().await, "B carries on with the session");
    let (c_addr, _c) = start_rolegate_app(&seed.env).await;
    assert!(
        seed.via(&c_addr).is_signed_in().await,
        "and so does a new instance"
    );
}

#[tokio::test]
async fn sessions_survive_a_redis_restart_and_outages_are_503() {
    let Some(mut redis) = RedisChild::start() else {
        return;
    };
    let app = shared(&redis).await;
    app.sign_in("carol").await;
    assert!(app.is_signed_in().await);

    redis.kill();
    let page = app.get("/notes").await;
    assert_eq!(page.status(), 503);
    // Raised inside middleware, yet the error page carries every security header.
    crate::hardening_app::assert_security_headers(page.headers(), "503 page");
    assert!(page.headers().contains_key("x-request-id"));
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("session store is not answering")
    );
    let api = app.get("/api/me").await;
    assert_eq!(api.status(), 503);
    crate::hardening_app::assert_security_headers(api.headers(), "503 JSON");
    let text = api.text().await.unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
    assert_eq!(body["error"], "unavailable");
    let health: serde_json::Value = app
        .wait_for("/healthz", 503)
        .await
        .expect("/healthz reports the outage")
        .json()
        .await
        .unwrap();
    assert_eq!(health["session_store"]["kind"], "redis");
    assert_eq!(health["session_store"]["status"], "down");
    assert_eq!(health["database"], "up");

    redis.restart();
    let back = app.wait_for("/api/me", 200).await.is_some();
    assert!(back, "service resumed by itself and the session persisted");
    let me: serde_json::Value = app.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["name"], "Carol Test");
}

#[tokio::test]
async fn start_up_waits_for_redis() {
    let Some(mut redis) = RedisChild::start() else {
        return;
    };
    redis.kill();
    let seed = shared_env_only(&redis).await;
    let starting = tokio::spawn(async move { start_rolegate_app(&seed).await });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!starting.is_finished(), "still waiting for Redis");
    redis.restart();
    let (address, _handle) = tokio::time::timeout(Duration::from_secs(20), starting)
        .await
        .expect("started once Redis was back")
        .unwrap();
    let health = reqwest::get(format!("{address}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}

async fn shared_env_only(redis: &RedisChild) -> std::collections::HashMap<String, String> {
    let idp = crate::fake_idp::FakeIdp::start().await;
    let mut env = crate::helpers::base_env(&idp, &temp_dir());
    env.insert("APP__SESSION__STORE".into(), "redis".into());
    env.insert("APP__SESSION__REDIS_URL".into(), redis.url());
    env
}

/// The Redis TTLs of the session entries, keyed by whether the entry holds a signed-in user.
async fn session_ttls(redis: &RedisChild) -> Vec<(bool, i64)> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("rolegate:s:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut ttls = Vec::new();
    for key in keys {
        let state: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        ttls.push((state.contains(rolegate_auth::SESSION_USER_KEY), ttl));
    }
    ttls
}

#[tokio::test]
async fn anonymous_sessions_live_at_most_fifteen_minutes_in_redis() {
    let Some(redis) = RedisChild::start() else {
        return;
    };
    let app = shared(&redis).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(
            client.get(app.url("/login")).send().await.unwrap().status(),
            200
        );
    }
    let signed_in = app.same_app_new_browser();
    signed_in.sign_in("carol").await;

    let ttls = session_ttls(&redis).await;
    let anonymous: Vec<i64> = ttls.iter().filter(|t| !t.0).map(|t| t.1).collect();
    assert_eq!(anonymous.len(), 3, "{ttls:?}");
    assert!(
        anonymous.iter().all(|ttl| (1..=15 * 60).contains(ttl)),
        "anonymous TTLs {ttls:?}"
    );
    let users: Vec<i64> = ttls.iter().filter(|t| t.0).map(|t| t.1).collect();
    assert_eq!(users.len(), 1, "{ttls:?}");
    assert!(users[0] > 15 * 60, "signed-in keeps the idle TTL: {ttls:?}");
}

#[tokio::test]
async fn a_back_channel_logout_received_by_b_ends_the_session_used_on_a() {
    let Some(redis) = RedisChild::start() else {
        return;
    };
    let on_a = shared(&redis).await;
    let (b_addr, _b) = start_rolegate_app(&on_a.env).await;
    use crate::single_sign_out::{logout_claims, sign_in_with_sid};
    sign_in_with_sid(&on_a, "alice", "sid-a").await;
    let also_on_a = on_a.same_app_new_browser();
    sign_in_with_sid(&also_on_a, "alice", "sid-other").await;

    // A sid-only token, as Entra-like providers with session_required send it.
    let claims = logout_claims(
        &on_a,
        "alice",
        Some("sid-a"),
        serde_json::json!({"sub": null, "jti": "jti-shared-1"}),
    );
    let token = on_a.idp.sign(&claims);
    let done = crate::single_sign_out::post_logout_token(&b_addr, &token).await;
    assert_eq!(done.status(), 200, "{}", done.text().await.unwrap());
    assert!(!on_a.is_signed_in().await, "A refuses the session B ended");
    assert!(also_on_a.is_signed_in().await, "another sid lives on");

    let replay = crate::single_sign_out::post_logout_token(&on_a.address, &token).await;
    assert_eq!(
        replay.status(),
        400,
        "the jti is remembered on every instance"
    );

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let left: Vec<String> = redis::cmd("SMEMBERS")
        .arg("rolegate:sid:sid-a")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        left.is_empty(),
        "the sid index forgets ended sessions: {left:?}"
    );
    let other: Vec<String> = redis::cmd("SMEMBERS")
        .arg("rolegate:sid:sid-other")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
}

#[tokio::test]
async fn tokens_are_unreadable_in_the_raw_redis_entry() {
    let Some(redis) = RedisChild::start() else {
        return;
    };
    let app = shared(&redis).await;
    app.sign_in("alice").await;
    let id_token = app.idp.last_id_token();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("rolegate:s:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut signed_in = 0;
    for key in keys {
        let raw: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !raw.contains("rg.user") {
            continue;
        }
        signed_in += 1;
        for secret in [
            "refresh-token-secret",
            "opaque-access-token",
            id_token.as_str(),
            id_token.split('.').nth(1).unwrap(),
        ] {
            assert!(!raw.contains(secret), "{secret} in the Redis entry {key}");
        }
        assert!(raw.contains("rg.tok"), "the sealed tokens are there: {raw}");
    }
    assert_eq!(signed_in, 1);
}
