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
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

pub use crate::settings::LogFormat;

use crate::net::TrustedProxies;

/// Installs the text subscriber; `RUST_LOG` overrides `log.filter`.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_test_writer()
        .try_init();
}

/// Keeps the log writer's thread running; dropping it flushes every buffered line. Hold it
/// until the process is done (`main` does).
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Installs the subscriber in `log.format` with a non-blocking writer: request threads hand
/// each line to a writer thread instead of waiting on stdout. It is not lossy: only when
/// 128k lines are waiting (stdout stalled) does a request wait, so no line is dropped.
/// `RUST_LOG` overrides `log.filter`.
pub fn init_with(filter: &str, format: LogFormat) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("rolegate-log")
        .finish(std::io::stdout());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .try_init(),
    };
    LogGuard(guard)
}

/// `log.format = json`: one flat JSON object a line, `time`, `level`, `target`, `message`,
/// then the fields of the enclosing spans (`request_id`) and of the event (`route`, `status`,
/// `latency_us`, `client_ip`, `user_id`, ...). Only what the code logs goes in: the request
/// line never carries a query string, cookie or header.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut line = serde_json::Map::new();
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("time".into(), time.into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("target".into(), event.metadata().target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                // With `JsonFields`, a span's recorded fields are a JSON object's text.
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(serde_json::Value::Object(map)) =
                        serde_json::from_str::<serde_json::Value>(fields.as_str())
                {
                    line.extend(map);
                }
            }
        }
        // Every line has a message, even from crates whose events carry only fields (sqlx).
        line.insert("message".into(), "".into());
        event.record(&mut JsonVisitor(&mut line));
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Copies an event's fields into the JSON line, keeping numbers and booleans typed.
struct JsonVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    /// `?text` and `%Escaped(..)` values arrive quoted for text lines; JSON escapes on its own,
    /// so a quoted value without escapes loses its quotes, one with escapes keeps them visible.
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        let plain = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|t| !t.contains('\\') && !t.contains('"'))
            .map(str::to_owned);
        self.0
            .insert(field.name().into(), plain.unwrap_or(text).into());
    }
}

/// The one escaping wrapper for untrusted values in log lines (the auth crate's).
pub use rolegate_auth::Escaped;

/// The id of the current request, also sent back as `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Logs method, path, route pattern, status, latency, client IP, request id and the signed-in
/// user's `sub` once the response is ready. The path is escaped ([`Escaped`]): it is the
/// caller's text.
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = oauth2::CsrfToken::new_random_len(9).into_secret();
    req.extensions_mut().insert(RequestId(id.clone()));
    if !tracing::enabled!(tracing::Level::INFO) {
        return quiet(req, next, id, started).await;
    }
    let method = req.method().clone();
    let path = req.path().to_owned();
    let route = crate::metrics::route_label(req.request());
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
    match &result {
        Ok(response) => {
            let status = response.status().as_u16();
            let user_id = user_id(response.request());
            tracing::info!(%method, %path, %route, status, latency_us, %client_ip, %user_id, "request");
        }
        Err(err) => {
            let status = err.as_response_error().status_code().as_u16();
            // An `Err` carries no request, so no resolved user either.
            let user_id = "";
            let error = Escaped(err);
            tracing::warn!(%method, %path, %route, status, latency_us, %client_ip, %user_id, %error, "request failed");
        }
    }
    with_request_id(result, &id)
}

/// [`log_requests`] when the filter drops info lines (`log.filter = warn`): no request line to
/// build, so nothing of it is computed; a failed request is still logged at warn.
async fn quiet<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
    id: String,
    started: Instant,
) -> Result<ServiceResponse<B>, Error> {
    let method = req.method().clone();
    let path = req.path().to_owned();
    let route = crate::metrics::route_label(req.request());
    let result = next.call(req).await;
    if let Err(err) = &result {
        let status = err.as_response_error().status_code().as_u16();
        let latency_us = started.elapsed().as_micros() as u64;
        let (method, path, error) = (Escaped(method), Escaped(path), Escaped(err));
        tracing::warn!(request_id = %id, %method, %path, %route, status, latency_us, %error, "request failed");
    }
    with_request_id(result, &id)
}

/// Puts `x-request-id` on the answer, a response or an error's (see [`WithHeaders`]).
fn with_request_id<B>(
    result: Result<ServiceResponse<B>, Error>,
    id: &str,
) -> Result<ServiceResponse<B>, Error> {
    let name = HeaderName::from_static("x-request-id");
    let value = HeaderValue::from_str(id).ok();
    match result {
        Ok(mut response) => {
            if let Some(value) = value {
                response.headers_mut().insert(name, value);
            }
            Ok(response)
        }
        Err(err) => {
            let headers = value.map(|v| vec![(name, v)]).unwrap_or_default();
            Err(WithHeaders::wrap(err, Rc::new(headers)))
        }
    }
}

/// The `sub` of the caller a guard or extractor resolved on this request (an id, not a
/// secret), escaped; empty when anonymous or never resolved.
fn user_id(req: &actix_web::HttpRequest) -> String {
    rolegate_auth::resolved_user(req)
        .map(|u| Escaped(u.sub.as_str()).to_string())
        .unwrap_or_default()
}

/// Content-Security-Policy: no inline script or style, no framing, forms post only here, and
/// to the identity provider's origin (`sign_out_origin`): sign-out is a POST form whose answer
/// redirects to the provider's end-session endpoint, and `form-action` covers that redirect.
pub fn csp(sign_out_origin: Option<&str>) -> String {
    let form_action = match sign_out_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
    )
}

/// The origin (`scheme://host[:port]`) of `url`, for a CSP source; `None` for an opaque origin.
pub fn origin_of(url: &url::Url) -> Option<String> {
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The security headers, in the order they are added.
fn security_header_list(
    https: bool,
    sign_out_origin: Option<&str>,
) -> Vec<(HeaderName, HeaderValue)> {
    let csp = HeaderValue::from_str(&csp(sign_out_origin)).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'self'; form-action 'self'; frame-ancestors 'none'")
    });
    let mut headers = vec![
        (HeaderName::from_static("content-security-policy"), csp),
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
/// A response that brings its own CSP (the front-channel logout route, which the identity
/// provider frames) keeps its `frame-ancestors`: `X-Frame-Options: DENY` would override it.
fn add_missing(target: &mut HeaderMap, headers: &[(HeaderName, HeaderValue)]) {
    let own_csp = target.contains_key(actix_web::http::header::CONTENT_SECURITY_POLICY);
    for (name, value) in headers {
        if own_csp && name == actix_web::http::header::X_FRAME_OPTIONS {
            continue;
        }
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
pub fn security_headers(https: bool, sign_out_origin: Option<&str>) -> SecurityHeaders {
    SecurityHeaders {
        headers: Rc::new(security_header_list(https, sign_out_origin)),
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
