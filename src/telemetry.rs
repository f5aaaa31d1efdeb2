//! Logging: one line per request (no query strings, so codes and tokens never reach the log),
//! request ids, untrusted values escaped so they cannot forge log lines, and the security
//! headers every response carries, error responses included.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError};
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

/// The one escaping wrapper for untrusted values in log lines (the auth crate's).
pub use rolegate_auth::Escaped;

/// The id of the current request, also sent back as `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Logs method, path, status, latency, client IP and request id once the response is ready.
/// The path is escaped ([`Escaped`]): it is the caller's text.
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
    let method = Escaped(method);
    let path = Escaped(path);
    let request_id = HeaderValue::from_str(&id).ok();
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            tracing::info!(%method, %path, status, latency_us, %client_ip, "request");
            if let Some(value) = request_id {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), value);
            }
            Ok(response)
        }
        Err(err) => {
            let status = err.as_response_error().status_code().as_u16();
            let error = Escaped(&err);
            tracing::warn!(%method, %path, status, latency_us, %client_ip, %error, "request failed");
            let headers = request_id
                .map(|v| vec![(HeaderName::from_static("x-request-id"), v)])
                .unwrap_or_default();
            Err(WithHeaders::wrap(err, Rc::new(headers)))
        }
    }
}

/// Content-Security-Policy: no inline script or style, no framing, forms post only here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The security headers, in the order they are added.
fn security_header_list(https: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CSP),
        ),
        (
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
        (
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ),
        // The callback URL carries the authorization code: never leak it in a Referer.
        (
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    if https {
        headers.push((
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    headers
}

/// Inserts each header the response does not set itself (a handler may choose its own).
fn add_missing(target: &mut HeaderMap, headers: &[(HeaderName, HeaderValue)]) {
    for (name, value) in headers {
        if !target.contains_key(name) {
            target.insert(name.clone(), value.clone());
        }
    }
}

/// The security headers (CSP, nosniff, frame, referrer and opener policy, HSTS when `https`)
/// on every response, including those made from errors.
///
/// `actix_web::middleware::DefaultHeaders` only touches `Ok` responses, so a middleware error
/// (a session store that is down, raised by actix-session and `crate::error::store_errors`)
/// became a page without them. An `Err` carries no request, so it cannot be turned into a
/// `ServiceResponse` here; instead it is wrapped in [`WithHeaders`], whose response is the
/// original error's response plus these headers, which is what the server sends.
pub fn security_headers(https: bool) -> SecurityHeaders {
    SecurityHeaders {
        headers: Rc::new(security_header_list(https)),
    }
}

/// The middleware built by [`security_headers`].
#[derive(Clone)]
pub struct SecurityHeaders {
    headers: Rc<Vec<(HeaderName, HeaderValue)>>,
}

impl<S, B> Transform<S, ServiceRequest> for SecurityHeaders
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = SecurityHeadersService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SecurityHeadersService {
            service,
            headers: self.headers.clone(),
        }))
    }
}

/// The service [`SecurityHeaders`] wraps around the app.
pub struct SecurityHeadersService<S> {
    service: S,
    headers: Rc<Vec<(HeaderName, HeaderValue)>>,
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for SecurityHeadersService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = LocalFuture<Result<ServiceResponse<B>, Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let headers = self.headers.clone();
        let fut = self.service.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(mut response) => {
                    add_missing(response.headers_mut(), &headers);
                    Ok(response)
                }
                Err(err) => Err(WithHeaders::wrap(err, headers)),
            }
        })
    }
}

/// An error whose response is the wrapped error's response plus some headers: how a
/// middleware adds headers to an `Err`, which the server turns into a response later.
pub struct WithHeaders {
    inner: Error,
    headers: Rc<Vec<(HeaderName, HeaderValue)>>,
}

impl WithHeaders {
    /// `err` as an error whose response also carries `headers`.
    pub fn wrap(err: Error, headers: Rc<Vec<(HeaderName, HeaderValue)>>) -> Error {
        WithHeaders {
            inner: err,
            headers,
        }
        .into()
    }
}

impl fmt::Debug for WithHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for WithHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl ResponseError for WithHeaders {
    fn status_code(&self) -> StatusCode {
        self.inner.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.inner.error_response();
        add_missing(response.headers_mut(), &self.headers);
        response
    }
}
