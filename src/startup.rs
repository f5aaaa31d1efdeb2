//! Builds the server from settings: binds first (port 0 in tests), then runs.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_files::Files;
use actix_session::SessionMiddleware;
use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use base64::Engine;
use url::Url;

use crate::audit::{Audit, AuditEvents};
use crate::auth::metadata::is_loopback_host;
use crate::auth::{Auth, AuthConfig};
use crate::net::TrustedProxies;
use crate::routes::health::Health;
use crate::session_store::{RedisSessionStore, Sessions, SqlSessionStore};
use crate::settings::{Loaded, Problem, SESSION_KEY_LEN, Settings, decode_key};
use crate::telemetry::{log_requests, security_headers};
use crate::templates::{Templates, TeraPages, base_context};

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Builds the full app, or in Development with broken settings the "almost there" app.
    /// In any other environment broken settings are an error listing every problem.
    pub async fn build(loaded: Loaded) -> anyhow::Result<Application> {
        let Loaded {
            settings, problems, ..
        } = loaded;
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let templates = Templates::load("templates")?;
        let server = if problems.is_empty() {
            full_server(settings, listener, templates).await?
        } else if settings.is_development() {
            tracing::warn!(
                count = problems.len(),
                "settings are incomplete; serving the configuration page"
            );
            for p in &problems {
                tracing::warn!("{p}");
            }
            config_error_server(problems, listener, templates)?
        } else {
            anyhow::bail!("invalid settings:\n{}", list(&problems));
        };
        Ok(Application { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from outside (tests, signal handling).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Translates settings into the auth module's configuration.
pub fn auth_config(s: &Settings) -> anyhow::Result<AuthConfig> {
    let public = &s.server.public_url;
    let authority = s
        .auth
        .authority
        .clone()
        .context("auth.authority is missing")?;
    Ok(AuthConfig {
        authority,
        client_id: s.auth.client_id.clone(),
        client_secret: s.auth.client_secret.clone(),
        redirect_url: public.join(&s.auth.redirect_path)?,
        post_logout_redirect_url: public.join("/login")?,
        scopes: s.auth.scopes.clone(),
        prompt: s.auth.prompt.clone(),
        allowed_tenants: s.auth.allowed_tenants.clone(),
        api_audience: s.auth.api_audience.clone(),
        api_prefix: "/api/".to_owned(),
        jwks_refresh_cooldown: Duration::from_secs(s.auth.jwks_refresh_cooldown_secs),
        discovery_retry: Duration::from_secs(s.auth.discovery_retry_secs),
        http_timeout: Duration::from_secs(s.auth.http_timeout_secs),
        clock_leeway_secs: s.auth.clock_leeway_secs,
        pending_ttl: Duration::from_secs(10 * 60),
        idle_timeout: Duration::from_secs(s.session.idle_timeout_minutes * 60),
        absolute_timeout: Duration::from_secs(s.session.absolute_timeout_minutes * 60),
    })
}

/// The cookie key: `session.key`, else `session.key_file` (created in Development).
pub fn session_key(s: &Settings) -> anyhow::Result<Key> {
    let bytes = match (&s.session.key, &s.session.key_file) {
        (Some(key), _) => key.clone(),
        (None, Some(path)) => read_or_create_key_file(path, s.is_development())?,
        (None, None) => anyhow::bail!("session.key or session.key_file must be set"),
    };
    Ok(Key::from(&bytes[..]))
}

fn read_or_create_key_file(path: &Path, may_create: bool) -> anyhow::Result<Vec<u8>> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read session.key_file {}", path.display()))?;
        return decode_key(&text)
            .map_err(|m| anyhow::anyhow!("session.key_file {}: {m}", path.display()));
    }
    anyhow::ensure!(
        may_create,
        "session.key_file {} does not exist",
        path.display()
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = Key::generate();
    let bytes = key.master()[..SESSION_KEY_LEN].to_vec();
    std::fs::write(
        path,
        base64::engine::general_purpose::STANDARD.encode(&bytes),
    )
    .with_context(|| format!("cannot write session.key_file {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    tracing::info!(path = %path.display(), "generated a development session key");
    Ok(bytes)
}

/// Every five minutes: drop expired sessions, and keep the SQLite WAL from growing.
fn spawn_maintenance(store: Sessions, pool: crate::db::Pool, database_url: String) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        loop {
            tick.tick().await;
            match store.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired sessions removed"),
                Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
            }
            crate::db::checkpoint(&pool, &database_url).await;
        }
    });
}

fn cookie_is_secure(public_url: &Url) -> bool {
    public_url.scheme() == "https" || !is_loopback_host(public_url)
}

async fn full_server(
    settings: Settings,
    listener: TcpListener,
    templates: Arc<Templates>,
) -> anyhow::Result<Server> {
    let pool = crate::db::connect(&settings.database).await?;
    crate::db::migrate(&pool)
        .await
        .context("database migrations failed")?;
    let store = match settings.session.store.as_str() {
        "redis" => Sessions::redis(
            RedisSessionStore::connect(
                &settings.session.redis_url,
                Duration::from_secs(settings.database.startup_wait_secs),
            )
            .await?,
        ),
        _ => Sessions::sql(
            SqlSessionStore::new(pool.clone()),
            crate::db::is_sqlite(&settings.database.url),
        ),
    };
    spawn_maintenance(store.clone(), pool.clone(), settings.database.url.clone());
    let health = web::Data::new(Health::spawn(
        pool.clone(),
        store.clone(),
        Duration::from_secs(2),
    ));
    let sessions_data = web::Data::new(store.clone());
    let key = session_key(&settings)?;
    let proxies = TrustedProxies(settings.server.trusted_proxies.clone());
    let audit = web::Data::new(Audit::new(pool.clone(), proxies.clone()));
    let auth = Auth::new(
        auth_config(&settings)?,
        Arc::new(TeraPages(templates.clone())),
        Arc::new(AuditEvents(audit.get_ref().clone())),
    )?;
    {
        let auth = auth.clone();
        tokio::spawn(async move { auth.warm_up().await });
    }

    let secure = cookie_is_secure(&settings.server.public_url);
    let cookie_name = if secure {
        "__Host-rolegate"
    } else {
        "rolegate_session"
    };
    let idle = CookieDuration::minutes(settings.session.idle_timeout_minutes as i64);
    let https = settings.server.public_url.scheme() == "https";
    let workers = match settings.server.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    };
    let pool = web::Data::new(pool);
    let templates = web::Data::new(templates);

    let server = HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(store.clone(), key.clone())
            .cookie_name(cookie_name.to_owned())
            .cookie_secure(secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/".to_owned())
            .session_lifecycle(
                PersistentSession::default()
                    .session_ttl(idle)
                    .session_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
            )
            .build();
        // Health and static assets sit outside the session layer: they never touch the
        // session store, so they stay cheap and answer even while it is down.
        App::new()
            .wrap(security_headers(https))
            .wrap(from_fn(log_requests))
            .app_data(proxies.clone())
            .app_data(pool.clone())
            .app_data(templates.clone())
            .app_data(audit.clone())
            .app_data(health.clone())
            .app_data(sessions_data.clone())
            .configure(crate::error::extractor_configs)
            .configure(crate::routes::health::configure)
            .service(crate::routes::static_files())
            .service(
                web::scope("")
                    .wrap(sessions)
                    .wrap(from_fn(crate::error::store_errors))
                    .configure(|cfg| auth.configure(cfg))
                    .configure(crate::routes::configure)
                    .default_service(web::to(crate::routes::not_found)),
            )
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Development with incomplete settings: every page says what to fill in (503).
fn config_error_server(
    problems: Vec<Problem>,
    listener: TcpListener,
    templates: Arc<Templates>,
) -> anyhow::Result<Server> {
    let problems = web::Data::new(problems);
    let templates = web::Data::new(templates);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(security_headers(false))
            .wrap(from_fn(log_requests))
            .app_data(problems.clone())
            .app_data(templates.clone())
            .service(Files::new("/static", "static"))
            .route("/healthz", web::get().to(config_health))
            .default_service(web::to(config_page))
    })
    .workers(1)
    .listen(listener)?
    .run();
    Ok(server)
}

async fn config_health() -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "misconfigured"}))
}

async fn config_page(
    req: HttpRequest,
    problems: web::Data<Vec<Problem>>,
    templates: web::Data<Arc<Templates>>,
) -> HttpResponse {
    let mut ctx = base_context(&req);
    let items: Vec<serde_json::Value> = problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "key": p.key,
                "message": p.message,
                "env": crate::settings::env_var(&p.key),
            })
        })
        .collect();
    ctx.insert("problems", &items);
    templates.page(StatusCode::SERVICE_UNAVAILABLE, "config_error.html", &ctx)
}
