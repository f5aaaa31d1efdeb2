//! Liveness and dependencies. The handler only reads flags a background task keeps fresh, so it
//! stays the cheapest route in the binary (the benchmark's ceiling).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, web};

use crate::db::Pool;
use crate::session_store::Sessions;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/livez", web::get().to(livez))
        .route("/readyz", web::get().to(readyz));
}

/// Whether each dependency answered its last probe.
#[derive(Debug)]
pub struct Health {
    database: AtomicBool,
    sessions: AtomicBool,
    session_store: &'static str,
}

impl Health {
    /// Probes the database and the session store every `every`, logging each change.
    /// A failed probe also counts as a database or session store error in `metrics`.
    pub fn spawn(
        pool: Pool,
        sessions: Sessions,
        every: Duration,
        metrics: Option<crate::metrics::Metrics>,
    ) -> Arc<Health> {
        let health = Arc::new(Health {
            database: AtomicBool::new(true),
            sessions: AtomicBool::new(true),
            session_store: sessions.name(),
        });
        let watched = health.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                // A hung dependency counts as down: each probe gets one second.
                let probe = Duration::from_secs(1);
                let db = tokio::time::timeout(probe, crate::db::ping(&pool))
                    .await
                    .unwrap_or(false);
                let store = tokio::time::timeout(probe, sessions.ping())
                    .await
                    .unwrap_or(false);
                if let Some(m) = &metrics {
                    if !db {
                        m.database_error();
                    }
                    if !store {
                        m.session_store_error();
                    }
                }
                for (name, flag, up) in [
                    ("database", &watched.database, db),
                    (watched.session_store, &watched.sessions, store),
                ] {
                    if flag.swap(up, Ordering::Relaxed) != up {
                        if up {
                            tracing::info!(dependency = name, "dependency is back");
                        } else {
                            tracing::error!(dependency = name, "dependency is down");
                        }
                    }
                }
            }
        });
        health
    }
}

async fn healthz(health: web::Data<Arc<Health>>) -> HttpResponse {
    let db = health.database.load(Ordering::Relaxed);
    let store = health.sessions.load(Ordering::Relaxed);
    if db && store {
        return HttpResponse::Ok()
            .content_type("application/json")
            .body(r#"{"status":"ok"}"#);
    }
    let state = |up: bool| if up { "up" } else { "down" };
    HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "status": "degraded",
        "database": state(db),
        "session_store": { "kind": health.session_store, "status": state(store) },
    }))
}

/// Liveness: the process answers; no dependency is consulted, so a database outage never
/// gets the pod restarted.
async fn livez() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Readiness: discovery and keys loaded, database and session store answering their last
/// probe. 503 names each part that is not ready, and says when the identity provider answers
/// but does not fit the settings (a configuration fault, not an outage).
async fn readyz(health: web::Data<Arc<Health>>, req: actix_web::HttpRequest) -> HttpResponse {
    use rolegate_auth::ProviderStatus;
    let auth = req.app_data::<rolegate_auth::Auth>();
    let status = auth.map_or(ProviderStatus::Unavailable, |a| a.provider_status());
    if status != ProviderStatus::Ready
        && let Some(auth) = auth.cloned()
    {
        // Try again in the background (spaced by the discovery retry): a pod kept out of
        // traffic would otherwise never meet the request that discovers the provider.
        actix_web::rt::spawn(async move { auth.warm_up().await });
    }
    let provider = match status {
        ProviderStatus::Ready => serde_json::json!({ "status": "ready" }),
        ProviderStatus::Unavailable => serde_json::json!({ "status": "unavailable" }),
        ProviderStatus::Misconfigured { reason } => {
            serde_json::json!({ "status": "misconfigured", "reason": reason })
        }
    };
    let checks = [
        ("identity_provider", status == ProviderStatus::Ready),
        ("database", health.database.load(Ordering::Relaxed)),
        ("session_store", health.sessions.load(Ordering::Relaxed)),
    ];
    let not_ready: Vec<&str> = checks
        .iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| *name)
        .collect();
    if not_ready.is_empty() {
        return HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }));
    }
    HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "status": "not_ready",
        "not_ready": not_ready,
        "identity_provider": provider,
    }))
}
