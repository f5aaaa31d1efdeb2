//! Logging: one line per request (no query strings, so codes and tokens never reach the log),
//! request ids, and the security headers every response carries.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing_subscriber::EnvFilter;

use crate::net::TrustedProxies;

/// Installs the subscriber; `RUST_LOG` overrides `log.filter`.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .try_init();
}

/// The id of the current request, also sent back as `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Logs method, path, status, latency, client IP and request id once the response is ready.
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = oauth2::CsrfToken::new_random_len(9).into_secret();
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.path().to_owned();
    let client_ip = req
        .app_data::<TrustedProxies>()
        .and_then(|p| p.client_ip(req.request()))
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    // Every line logged while the request runs (guards, the auth module, handlers, audit
    // writes) carries its id through this span.
    let span = tracing::info_span!("request", request_id = %id);
    let result = tracing::Instrument::instrument(next.call(req), span.clone()).await;
    let _entered = span.enter();
    let latency_us = started.elapsed().as_micros() as u64;
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            tracing::info!(%method, %path, status, latency_us, %client_ip, "request");
            if let Ok(value) = HeaderValue::from_str(&id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), value);
            }
            Ok(response)
        }
        Err(err) => {
            let status = err.as_response_error().status_code().as_u16();
            tracing::warn!(%method, %path, status, latency_us, %client_ip, error = %err, "request failed");
            Err(err)
        }
    }
}

/// Content-Security-Policy: no inline script or style, no framing, forms post only here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The security headers for every response.
pub fn security_headers(https: bool) -> actix_web::middleware::DefaultHeaders {
    let headers = actix_web::middleware::DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        // The callback URL carries the authorization code: never leak it in a Referer.
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"));
    if https {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}
