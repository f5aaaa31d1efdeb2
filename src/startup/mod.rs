//! Builds the server from settings: binds first (port 0 in tests), then runs the full app
//! (`wiring`), or in Development with broken settings the page that lists them (`misconfigured`).

mod keys;
mod misconfigured;
mod wiring;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use anyhow::Context as _;

pub use keys::session_key;

use crate::settings::{Loaded, Problem};
use crate::templates::Templates;

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    /// What to finish after the server stops (none for the configuration page).
    drain: Option<Drain>,
    /// `/metrics` on `metrics.port`, when set; stopped once the main server has stopped.
    metrics: Option<Server>,
}

/// What a graceful shutdown finishes once the last in-flight request is done.
pub struct Drain {
    pub audit: crate::audit::Audit,
    pub pool: crate::db::Pool,
    /// `server.shutdown_timeout_secs`, also the most the audit flush may take.
    pub timeout: Duration,
}

impl Drain {
    /// Flushes the audit writer, then closes the database pool; logs each step.
    async fn run(self) {
        let left = self.audit.flush(self.timeout).await;
        if left == 0 {
            tracing::info!("shutdown: audit log flushed");
        } else {
            tracing::error!(
                unwritten = left,
                "shutdown: audit rows still unwritten at the timeout"
            );
        }
        self.pool.close().await;
        tracing::info!("shutdown: database pool closed");
    }
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
        let (server, drain, metrics) = if problems.is_empty() {
            let wired = wiring::server(settings, listener, templates).await?;
            (wired.server, Some(wired.drain), wired.metrics)
        } else if settings.is_development() {
            tracing::warn!(
                count = problems.len(),
                "settings are incomplete; serving the configuration page"
            );
            for p in &problems {
                tracing::warn!("{p}");
            }
            (
                misconfigured::server(problems, listener, templates)?,
                None,
                None,
            )
        } else {
            anyhow::bail!("invalid settings:\n{}", list(&problems));
        };
        Ok(Application {
            port,
            server,
            drain,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from outside (tests, signal handling).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// On SIGTERM or SIGINT (Ctrl-C): stop accepting connections and let in-flight requests
    /// finish within `server.shutdown_timeout_secs` (then [`Self::run_until_stopped`] drains).
    /// A second signal stops at once. For the binary; tests stop through [`Self::handle`].
    pub fn stop_on_signals(&self) {
        let handle = self.server.handle();
        let timeout = self.drain.as_ref().map(|d| d.timeout.as_secs());
        tokio::spawn(async move {
            let signal = match shutdown_signal().await {
                Ok(name) => name,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for shutdown signals");
                    return;
                }
            };
            tracing::info!(
                signal,
                timeout_secs = timeout,
                "shutdown: no new connections; waiting for in-flight requests"
            );
            let graceful = handle.clone();
            tokio::spawn(async move { graceful.stop(true).await });
            if let Ok(name) = shutdown_signal().await {
                tracing::warn!(signal = name, "shutdown: second signal, stopping now");
                handle.stop(false).await;
            }
        });
    }

    /// Runs until stopped, then finishes the shutdown: audit rows flushed, database closed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let started = Instant::now();
        let metrics = self.metrics.map(|server| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let result = self.server.await;
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        if let Some(drain) = self.drain {
            tracing::info!(
                uptime_secs = started.elapsed().as_secs(),
                "shutdown: server stopped, in-flight requests done"
            );
            drain.run().await;
        }
        result
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits for SIGTERM or SIGINT and names it.
async fn shutdown_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => Ok("SIGTERM"),
            _ = int.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok("Ctrl-C")
    }
}
