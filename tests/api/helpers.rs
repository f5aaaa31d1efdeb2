//! `spawn_app()`: rolegate on port 0 against the fake provider, and a cookie-keeping client.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use rolegate::settings::{self, Loaded};
use rolegate::startup::Application;
use url::Url;

use crate::fake_idp::{CLIENT_ID, CLIENT_SECRET, FakeIdp, TokenReply};

pub const PUBLIC_URL: &str = "http://127.0.0.1:18443";

pub struct TestApp {
    pub address: String,
    pub idp: FakeIdp,
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub db_dir: PathBuf,
    pub env: HashMap<String, String>,
}

/// A sign-in started at `/login`: what the authorization URL carried.
pub struct Started {
    pub url: Url,
    pub params: HashMap<String, String>,
    pub state: String,
    pub nonce: String,
}

pub fn session_key_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode([7u8; 64])
}

/// The environment for a test app: everything comes through `APP__...` variables.
pub fn base_env(idp: &FakeIdp, db_dir: &std::path::Path) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for (k, v) in [
        ("APP__SERVER__HOST", "127.0.0.1".to_owned()),
        ("APP__SERVER__PORT", "0".to_owned()),
        ("APP__SERVER__WORKERS", "1".to_owned()),
        ("APP__SERVER__PUBLIC_URL", PUBLIC_URL.to_owned()),
        ("APP__AUTH__AUTHORITY", idp.issuer.clone()),
        ("APP__AUTH__CLIENT_ID", CLIENT_ID.to_owned()),
        ("APP__AUTH__CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("APP__AUTH__HTTP_TIMEOUT_SECS", "2".to_owned()),
        ("APP__AUTH__DISCOVERY_RETRY_SECS", "0".to_owned()),
        ("APP__AUTH__JWKS_REFRESH_COOLDOWN_SECS", "30".to_owned()),
        (
            "APP__DATABASE__URL",
            format!("sqlite://{}/rolegate.db?mode=rwc", db_dir.display()),
        ),
        ("APP__DATABASE__MAX_CONNECTIONS", "4".to_owned()),
        ("APP__SESSION__KEY", session_key_b64()),
    ] {
        env.insert(k.to_owned(), v);
    }
    env
}

/// With `ROLEGATE_TEST_DB=postgres`, a fresh database on `ROLEGATE_TEST_POSTGRES` for each app,
/// so the whole suite runs on PostgreSQL as well as SQLite.
pub async fn postgres_database() -> Option<String> {
    if std::env::var("ROLEGATE_TEST_DB").ok()? != "postgres" {
        return None;
    }
    let admin = std::env::var("ROLEGATE_TEST_POSTGRES")
        .expect("ROLEGATE_TEST_POSTGRES for ROLEGATE_TEST_DB=postgres");
    Some(create_postgres_database(&admin).await)
}

/// Creates an empty database next to `admin_url`'s and returns its URL.
pub async fn create_postgres_database(admin_url: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("rg_{}_{}_{nanos:x}", std::process::id(), n);
    let pool = rolegate::db::connect(&rolegate::settings::DatabaseSettings {
        url: admin_url.to_owned(),
        max_connections: 1,
        startup_wait_secs: 0,
        ..Default::default()
    })
    .await
    .expect("PostgreSQL admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut url = Url::parse(admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rolegate-test-{}",
        oauth2::CsrfToken::new_random_len(9).secret()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads settings the way the binary does, from the repo's files plus `env`.
pub fn load_settings(app_env: &str, env: &HashMap<String, String>) -> Loaded {
    let map = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    settings::load(std::path::Path::new("."), Some(app_env), map)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    spawn_app_custom(|_| {}, tweak).await
}

/// Sets the provider up before rolegate discovers it, then tweaks rolegate's environment.
pub async fn spawn_app_custom(
    setup_idp: impl FnOnce(&FakeIdp),
    tweak: impl FnOnce(&mut HashMap<String, String>),
) -> TestApp {
    init_logs();
    let idp = FakeIdp::start().await;
    setup_idp(&idp);
    let db_dir = temp_dir();
    let mut env = base_env(&idp, &db_dir);
    if let Some(url) = postgres_database().await {
        env.insert("APP__DATABASE__URL".into(), url);
    }
    tweak(&mut env);
    let address = start_rolegate(&env).await;
    let jar = Arc::new(Jar::default());
    TestApp {
        address,
        idp,
        client: client_with(jar.clone()),
        jar,
        db_dir,
        env,
    }
}

/// Starts rolegate with `env` (Test environment) and returns its base address.
pub async fn start_rolegate(env: &HashMap<String, String>) -> String {
    start_rolegate_app(env).await.0
}

/// Like [`start_rolegate`], also returning the handle that stops it.
pub async fn start_rolegate_app(
    env: &HashMap<String, String>,
) -> (String, actix_web::dev::ServerHandle) {
    let loaded = load_settings("Test", env);
    assert!(
        loaded.problems.is_empty(),
        "settings problems: {:?}",
        loaded.problems
    );
    let app = Application::build(loaded).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    (address, handle)
}

pub fn client_with(jar: Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_provider(jar)
        .build()
        .unwrap()
}

fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        rolegate::telemetry::init("debug");
    }
}

impl TestApp {
    /// Another browser (own cookie jar) on the same rolegate and provider.
    pub fn same_app_new_browser(&self) -> TestApp {
        let jar = Arc::new(Jar::default());
        TestApp {
            address: self.address.clone(),
            idp: self.idp.clone(),
            client: client_with(jar.clone()),
            jar,
            db_dir: self.db_dir.clone(),
            env: self.env.clone(),
        }
    }

    /// The same browser (client and cookie jar) talking to another instance at `address`.
    pub fn via(&self, address: &str) -> TestApp {
        let mut other = self.same_app_new_browser();
        other.client = self.client.clone();
        other.jar = self.jar.clone();
        other.address = address.to_owned();
        other
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// The body of `GET path`, whatever its status.
    pub async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    /// `GET /login[?next=..]` and the authorization URL from its sign-in link.
    pub async fn start_login(&self, query: &str) -> Started {
        let response = self.get(&format!("/login{query}")).await;
        assert_eq!(response.status(), 200, "login page");
        let body = response.text().await.unwrap();
        started_from_page(&body)
    }

    pub async fn callback(&self, query: &str) -> reqwest::Response {
        self.get(&format!("/getAToken?{query}")).await
    }

    /// Completes a started sign-in with an ID token signed over `claims`.
    pub async fn finish_with_token(&self, started: &Started, token: String) -> reqwest::Response {
        self.idp.reply(TokenReply::IdToken(token));
        self.callback(&format!("code=test-code&state={}", started.state))
            .await
    }

    /// Full sign-in as one of the cast; asserts it worked.
    pub async fn sign_in(&self, user: &str) {
        let started = self.start_login("").await;
        let claims = self.idp.claims(user, &started.nonce);
        let response = self
            .finish_with_token(&started, self.idp.sign(&claims))
            .await;
        assert_eq!(
            response.status(),
            302,
            "sign-in as {user}: {}",
            response.text().await.unwrap()
        );
    }

    /// The session cookie's value, if the jar holds one.
    pub fn session_cookie(&self) -> Option<String> {
        let url: Url = self.address.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|c| c.strip_prefix("rolegate_session=").map(str::to_owned))
    }

    /// The CSRF token of this client's session, as `/api/me` hands it to cookie clients.
    pub async fn csrf(&self) -> String {
        let me: serde_json::Value = self.get("/api/me").await.json().await.unwrap();
        me["csrf_token"]
            .as_str()
            .expect("csrf_token for cookie sessions")
            .to_owned()
    }

    /// Signs out as the "Sign out?" page does: GET `path` for its form's token, then POST it.
    pub async fn sign_out_at(&self, path: &str) -> reqwest::Response {
        let page = self.get(path).await.text().await.unwrap();
        let token = page
            .split("name=\"csrf_token\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a csrf_token field on the sign-out page")
            .to_owned();
        self.post_token(path, &token).await
    }

    /// [`TestApp::sign_out_at`] `/logout`.
    pub async fn sign_out(&self) -> reqwest::Response {
        self.sign_out_at("/logout").await
    }

    /// POSTs a form that carries only this session's CSRF token (delete and revoke buttons).
    pub async fn post_csrf(&self, path: &str) -> reqwest::Response {
        let token = self.csrf().await;
        self.post_token(path, &token).await
    }

    /// POSTs a form holding only `csrf_token` = `token`.
    async fn post_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(&[("csrf_token", token)])
            .send()
            .await
            .unwrap()
    }

    /// Polls `path` every 100 ms for up to 10 s until it answers `status`.
    pub async fn wait_for(&self, path: &str, status: u16) -> Option<reqwest::Response> {
        for _ in 0..100 {
            let response = self.get(path).await;
            if response.status() == status {
                return Some(response);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    }

    /// Whether this client is treated as signed in (`/api/me` answers 200).
    pub async fn is_signed_in(&self) -> bool {
        self.get("/api/me").await.status() == 200
    }

    /// A pool on the app's own database (SQLite file or PostgreSQL).
    pub async fn pool(&self) -> rolegate::db::Pool {
        rolegate::db::connect(&rolegate::settings::DatabaseSettings {
            url: self.env["APP__DATABASE__URL"].clone(),
            max_connections: 1,
            startup_wait_secs: 0,
            ..Default::default()
        })
        .await
        .unwrap()
    }
}

/// Reads the `href` of `<a id="sign-in">` and parses the authorization request.
pub fn started_from_page(body: &str) -> Started {
    let marker = "id=\"sign-in\"";
    let at = body.find(marker).expect("sign-in link on the page");
    let rest = &body[at..];
    let href_start = rest.find("href=\"").expect("href") + 6;
    let href_end = rest[href_start..].find('"').unwrap() + href_start;
    let href = rest[href_start..href_end].replace("&amp;", "&");
    let url = Url::parse(&href).expect("absolute sign-in URL");
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    Started {
        state: params["state"].clone(),
        nonce: params["nonce"].clone(),
        params,
        url,
    }
}

/// The `data-reason` of an auth error page.
pub fn reason_of(body: &str) -> Option<String> {
    let at = body.find("data-reason=\"")? + 13;
    let end = body[at..].find('"')? + at;
    Some(body[at..end].to_owned())
}
