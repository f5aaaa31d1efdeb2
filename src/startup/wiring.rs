//! The full app: database, session store, auth module, middleware order and routes.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_web::cookie::{SameSite, time::Duration as CookieDuration};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use rolegate_auth::{Auth, is_loopback_host};
use url::Url;

use crate::audit::{Audit, AuditEvents};
use crate::metrics::{MeteredEvents, Metrics};
use crate::net::TrustedProxies;
use crate::rate_limit::{AuthRoutesLimit, limit_auth_routes};
use crate::routes::health::Health;
use crate::session_store::{RedisSessionStore, Sessions, SqlSessionStore};
use crate::settings::{Settings, StoreKind};
use crate::telemetry::{log_requests, security_headers};
use crate::templates::{Templates, TeraPages};

/// What the maintenance task looks after.
struct Maintenance {
    store: Sessions,
    pool: crate::db::Pool,
    database_url: String,
    /// `audit.retention_days`; 0 keeps every row.
    retention_days: u32,
    audit: Audit,
    limit: AuthRoutesLimit,
}

/// At start-up and then every five minutes: drop expired sessions and audit rows past their
/// retention, prune the rate limiters, and keep the SQLite WAL from growing (not at start-up:
/// a `TRUNCATE` checkpoint blocks writers, and the first requests arrive right then).
fn spawn_maintenance(m: Maintenance) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        let mut first = true;
        loop {
            tick.tick().await;
            match m.store.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired sessions removed"),
                Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
            }
            if m.retention_days > 0 {
                let cutoff = crate::clock::now() - i64::from(m.retention_days) * 86_400;
                match crate::db::audit::purge_older_than(&m.pool, cutoff).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        purged = n,
                        days = m.retention_days,
                        "old audit rows removed"
                    ),
                    Err(e) => tracing::warn!(error = %e, "could not purge old audit rows"),
                }
            }
            m.audit.maintain();
            m.limit.maintain();
            if !std::mem::take(&mut first) {
                crate::db::checkpoint(&m.pool, &m.database_url).await;
            }
        }
    });
}

fn cookie_is_secure(public_url: &Url) -> bool {
    public_url.scheme() == "https" || !is_loopback_host(public_url)
}

async fn session_store(settings: &Settings, pool: &crate::db::Pool) -> anyhow::Result<Sessions> {
    Ok(match settings.session.store {
        StoreKind::Redis => Sessions::redis(
            RedisSessionStore::connect(
                &settings.session.redis_url,
                Duration::from_secs(settings.database.startup_wait_secs),
            )
            .await?,
        ),
        StoreKind::Database => {
            let sessions = Sessions::sql(
                SqlSessionStore::new(pool.clone()),
                crate::db::is_sqlite(&settings.database.url),
            );
            match crate::db::sqlite_file(&settings.database.url) {
                Some(file) => sessions.with_revocation_signal(&file),
                None => sessions,
            }
        }
    })
}

/// The running server and what a graceful shutdown must finish after it stops.
pub struct Wired {
    pub server: Server,
    pub drain: super::Drain,
    /// `/metrics` on its own listener (`metrics.port`), stopped after the main server.
    pub metrics: Option<Server>,
}

/// `/metrics` alone on `metrics.port` (nothing else is served there).
fn metrics_server(
    settings: &Settings,
    metrics: web::Data<Metrics>,
    sessions: web::Data<Sessions>,
) -> anyhow::Result<Server> {
    let (host, port) = (settings.server.host.as_str(), settings.metrics.port);
    let listener = TcpListener::bind((host, port))
        .with_context(|| format!("cannot listen for /metrics on {host}:{port} (metrics.port)"))?;
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .app_data(sessions.clone())
            .configure(crate::metrics::configure)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

pub async fn server(
    settings: Settings,
    listener: TcpListener,
    templates: Arc<Templates>,
) -> anyhow::Result<Wired> {
    let pool = crate::db::connect(&settings.database).await?;
    crate::db::migrate(&pool)
        .await
        .context("database migrations failed")?;
    let store = session_store(&settings, &pool).await?;
    let metrics = web::Data::new(Metrics::new().context("metrics registry")?);
    let health = web::Data::new(Health::spawn(
        pool.clone(),
        store.clone(),
        Duration::from_secs(2),
        Some(metrics.get_ref().clone()),
    ));
    let sessions_data = web::Data::new(store.clone());
    let key = super::keys::session_key(&settings)?;
    let proxies = TrustedProxies(settings.server.trusted_proxies.clone());
    let audit = web::Data::new(Audit::new(pool.clone(), proxies.clone()));
    let token_keys = super::keys::token_keys(&settings)?;
    let config = crate::settings::auth_config_with_keys(&settings, token_keys)
        .map_err(|problems| anyhow::anyhow!("invalid settings:\n{}", super::list(&problems)))?;
    for notice in crate::settings::notices(&settings, std::time::SystemTime::now()) {
        tracing::warn!("{notice}");
    }
    if let Some(cert) = config.client_certificate() {
        tracing::info!(
            subject = %cert.subject(),
            thumbprint = %cert.thumbprint(),
            not_after = %cert.not_after_text(),
            "token calls use the client certificate (private_key_jwt)"
        );
    }
    let limit = AuthRoutesLimit::new(
        settings.server.rate_limit_per_minute,
        [
            config.login_path(),
            config.redirect_path(),
            config.logout_path(),
        ],
        proxies.clone(),
    );
    spawn_maintenance(Maintenance {
        store: store.clone(),
        pool: pool.clone(),
        database_url: settings.database.url.clone(),
        retention_days: settings.audit.retention_days,
        audit: audit.get_ref().clone(),
        limit: limit.clone(),
    });
    let auth = Auth::new(
        config,
        TeraPages(templates.clone()),
        MeteredEvents {
            metrics: metrics.get_ref().clone(),
            inner: AuditEvents(audit.get_ref().clone()),
        },
    )?
    .with_session_end(store.clone());
    {
        let auth = auth.clone();
        tokio::spawn(async move { auth.warm_up().await });
    }

    // The sign-out form's answer redirects to the provider: CSP form-action must allow its origin.
    let sign_out_origin = crate::telemetry::origin_of(auth.config().authority());
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
    let drain = super::Drain {
        audit: audit.get_ref().clone(),
        pool: pool.clone(),
        timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
    };
    let pool = web::Data::new(pool);
    let templates = web::Data::new(templates);
    let admin_views = web::Data::new(crate::admin_views::AdminViews::default());
    let metrics_on_main = settings.metrics.enabled && settings.metrics.port == 0;
    let metrics_apart = if settings.metrics.enabled && settings.metrics.port != 0 {
        Some(metrics_server(
            &settings,
            metrics.clone(),
            sessions_data.clone(),
        )?)
    } else {
        None
    };

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
        // session store, so they stay cheap and answer even while it is down. Inside it, the
        // route rules run after the session is loaded and before any handler. The auth-route
        // rate limit is the outermost layer of the scope: a refused request loads no session.
        App::new()
            .wrap(from_fn(crate::metrics::record_requests))
            .wrap(security_headers(https, sign_out_origin.as_deref()))
            .wrap(from_fn(log_requests))
            .app_data(auth.clone())
            .app_data(proxies.clone())
            .app_data(pool.clone())
            .app_data(templates.clone())
            .app_data(admin_views.clone())
            .app_data(audit.clone())
            .app_data(health.clone())
            .app_data(sessions_data.clone())
            .app_data(limit.clone())
            .app_data(metrics.clone())
            .configure(crate::error::extractor_configs)
            .configure(crate::routes::health::configure)
            // Outside the session and rate-limit layers: a scrape never touches either.
            .configure(|cfg| {
                if metrics_on_main {
                    crate::metrics::configure(cfg);
                }
            })
            .service(crate::routes::static_files())
            .service(
                web::scope("")
                    .wrap(auth.route_rules())
                    .wrap(sessions)
                    .wrap(from_fn(crate::error::store_errors))
                    .wrap(from_fn(limit_auth_routes))
                    .configure(|cfg| auth.configure(cfg))
                    .configure(crate::routes::configure)
                    .default_service(web::to(crate::routes::not_found)),
            )
    })
    .workers(workers)
    // Signals are handled by `Application::stop_on_signals` (SIGINT is graceful there too).
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout_secs)
    .listen(listener)?
    .run();
    Ok(Wired {
        server,
        drain,
        metrics: metrics_apart,
    })
}
