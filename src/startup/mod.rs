//! Builds the server from settings: binds first (port 0 in tests), then runs the full app
//! (`wiring`), or in Development with broken settings the page that lists them (`misconfigured`).

mod keys;
mod misconfigured;
mod wiring;

use std::net::TcpListener;

use actix_web::dev::Server;
use anyhow::Context as _;

pub use keys::session_key;

use crate::settings::{Loaded, Problem};
use crate::templates::Templates;

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
            wiring::server(settings, listener, templates).await?
        } else if settings.is_development() {
            tracing::warn!(
                count = problems.len(),
                "settings are incomplete; serving the configuration page"
            );
            for p in &problems {
                tracing::warn!("{p}");
            }
            misconfigured::server(problems, listener, templates)?
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
