//! Prometheus metrics: one registry per app, a middleware counting requests by route pattern,
//! the auth module's events counted by [`MeteredEvents`], and `GET /metrics`.
//!
//! Every label value comes from a bounded set (route patterns, method names, the crate's
//! reason codes, configured role names, provider endpoints), never from the caller's text.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use rolegate_auth::{AuthError, AuthEvents, Claims, EventFuture, IdpEndpoint, TokenError, User};

use crate::session_store::Sessions;

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// How long the active-session count is reused before the store is asked again.
const SESSIONS_CACHED_FOR: Duration = Duration::from_secs(5);

/// The app's metrics; cheap to clone (one shared registry).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    sign_ins: IntCounter,
    sign_in_refusals: IntCounterVec,
    access_denials: IntCounterVec,
    active_sessions: IntGauge,
    idp_requests: IntCounterVec,
    idp_duration: HistogramVec,
    idp_errors: IntCounterVec,
    jwks_refreshes: IntCounter,
    session_store_errors: IntCounter,
    database_errors: IntCounter,
    /// When the active-session gauge was last refreshed.
    sessions_counted: Mutex<Option<Instant>>,
}

/// Registers `collector` and hands it back.
fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

impl Metrics {
    /// A fresh registry with every rolegate metric (fails only on a duplicate name, a bug).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let r = Registry::new();
        let counter = |name: &str, help: &str| register(&r, IntCounter::new(name, help)?);
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&r, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let histogram_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                HistogramVec::new(HistogramOpts::new(name, help), labels)?,
            )
        };
        let inner = Inner {
            http_requests: counter_vec(
                "rolegate_http_requests_total",
                "HTTP requests by matched route pattern, method and status.",
                &["route", "method", "status"],
            )?,
            http_duration: histogram_vec(
                "rolegate_http_request_duration_seconds",
                "HTTP request latency by matched route pattern and method.",
                &["route", "method"],
            )?,
            sign_ins: counter("rolegate_sign_ins_total", "Completed sign-ins.")?,
            sign_in_refusals: counter_vec(
                "rolegate_sign_in_refusals_total",
                "Refused sign-ins by reason code.",
                &["reason"],
            )?,
            access_denials: counter_vec(
                "rolegate_access_denials_total",
                "Signed-in requests refused for lack of a role, by the role needed.",
                &["role"],
            )?,
            active_sessions: register(
                &r,
                IntGauge::new(
                    "rolegate_active_sessions",
                    "Signed-in sessions in the session store (refreshed at most every 5 s).",
                )?,
            )?,
            idp_requests: counter_vec(
                "rolegate_idp_requests_total",
                "Calls to the identity provider by endpoint.",
                &["endpoint"],
            )?,
            idp_duration: histogram_vec(
                "rolegate_idp_request_duration_seconds",
                "Latency of identity provider calls by endpoint.",
                &["endpoint"],
            )?,
            idp_errors: counter_vec(
                "rolegate_idp_errors_total",
                "Identity provider calls that failed or got a non-success answer, by endpoint.",
                &["endpoint"],
            )?,
            jwks_refreshes: counter(
                "rolegate_jwks_refreshes_total",
                "Signing key sets fetched again for an unknown kid.",
            )?,
            session_store_errors: counter(
                "rolegate_session_store_errors_total",
                "Failed session store operations.",
            )?,
            database_errors: counter(
                "rolegate_database_errors_total",
                "Failed database operations (queries, audit writes, health probes).",
            )?,
            sessions_counted: Mutex::new(None),
            registry: r,
        };
        // Known label sets start at 0, so a dashboard sees the series before the first event.
        for endpoint in [
            IdpEndpoint::Discovery,
            IdpEndpoint::Jwks,
            IdpEndpoint::Token,
        ] {
            inner.idp_requests.with_label_values(&[endpoint.as_str()]);
            inner.idp_errors.with_label_values(&[endpoint.as_str()]);
        }
        Ok(Metrics(Arc::new(inner)))
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.0.registry.gather(), &mut out) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    pub fn database_error(&self) {
        self.0.database_errors.inc();
    }

    pub fn session_store_error(&self) {
        self.0.session_store_errors.inc();
    }

    fn request(&self, route: &str, method: &str, status: StatusCode, elapsed: Duration) {
        // `as_str` is the code's digits without formatting a String on every request.
        self.0
            .http_requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.0
            .http_duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    /// Refreshes the active-session gauge when its value is older than 5 s.
    pub async fn refresh_active_sessions(&self, sessions: &Sessions) {
        {
            let Ok(mut counted) = self.0.sessions_counted.lock() else {
                return;
            };
            if counted.is_some_and(|at| at.elapsed() < SESSIONS_CACHED_FOR) {
                return;
            }
            // Set before asking, so concurrent scrapes do not all query the store.
            *counted = Some(Instant::now());
        }
        match sessions.count_active().await {
            Ok(n) => self.0.active_sessions.set(n),
            Err(e) => tracing::warn!(error = %e, "could not count active sessions"),
        }
    }
}

tokio::task_local! {
    /// The metrics of the app serving the current request, for code that has no request at
    /// hand (error conversions, the session store) and would otherwise need one threaded in.
    static CURRENT: Metrics;
}

/// The current request's metrics, if this runs inside one.
pub fn current() -> Option<Metrics> {
    CURRENT.try_with(Metrics::clone).ok()
}

/// Counts a database error against the current request's app (no-op outside a request).
pub fn count_database_error() {
    let _ = CURRENT.try_with(Metrics::database_error);
}

/// Counts a session store error against the current request's app (no-op outside a request).
pub fn count_session_store_error() {
    let _ = CURRENT.try_with(Metrics::session_store_error);
}

/// A method label from a fixed set: anyone can send any method name.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route label: the matched pattern (`/notes/{id}/delete`), never the raw path.
pub fn route_label(req: &HttpRequest) -> std::rc::Rc<str> {
    use actix_web::HttpMessage as _;
    // Metrics and the request log both need it: matched once, kept in the request (matching
    // the resource map twice cost about 1.5 % of a signed-in page).
    if let Some(RouteLabel(label)) = req.extensions().get::<RouteLabel>() {
        return label.clone();
    }
    let label: std::rc::Rc<str> = req
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED.to_owned())
        .into();
    req.extensions_mut().insert(RouteLabel(label.clone()));
    label
}

/// A request's [`route_label`], once computed.
struct RouteLabel(std::rc::Rc<str>);

/// Counts every request by route pattern, method and status, with its latency; runs the
/// request with the app's metrics as [`CURRENT`].
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(metrics) = req
        .app_data::<web::Data<Metrics>>()
        .map(|m| m.get_ref().clone())
    else {
        return next.call(req).await;
    };
    let started = Instant::now();
    let route = route_label(req.request());
    let method = method_label(req.method());
    let result = CURRENT.scope(metrics.clone(), next.call(req)).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    metrics.request(&route, method, status, started.elapsed());
    result
}

/// `GET /metrics`: the registry in Prometheus text format. Needs no session.
pub async fn metrics_page(
    metrics: web::Data<Metrics>,
    sessions: web::Data<Sessions>,
) -> HttpResponse {
    metrics.refresh_active_sessions(&sessions).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

/// Mounts `GET /metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics_page));
}

/// An [`AuthEvents`] that counts each event, then hands it to the wrapped hooks (the audit log).
pub struct MeteredEvents<E> {
    pub metrics: Metrics,
    pub inner: E,
}

impl<E: AuthEvents> AuthEvents for MeteredEvents<E> {
    fn signed_in(&self, req: &HttpRequest, user: &User) -> EventFuture {
        self.metrics.0.sign_ins.inc();
        self.inner.signed_in(req, user)
    }

    fn sign_in_refused(
        &self,
        req: &HttpRequest,
        error: &AuthError,
        claims: Option<&Claims>,
    ) -> EventFuture {
        self.metrics
            .0
            .sign_in_refusals
            .with_label_values(&[error.reason()])
            .inc();
        self.inner.sign_in_refused(req, error, claims)
    }

    fn access_denied(&self, req: &HttpRequest, user: &User, needed: &str) -> EventFuture {
        // `needed` is a configured role name (code guards or route rules): a bounded set.
        self.metrics
            .0
            .access_denials
            .with_label_values(&[needed])
            .inc();
        self.inner.access_denied(req, user, needed)
    }

    fn bearer_refused(
        &self,
        req: &HttpRequest,
        error: &TokenError,
        claims: Option<&Claims>,
    ) -> EventFuture {
        self.inner.bearer_refused(req, error, claims)
    }

    fn signed_out(&self, req: &HttpRequest, user: Option<&User>) -> EventFuture {
        self.inner.signed_out(req, user)
    }

    fn roles_changed(&self, req: &HttpRequest, user: &User, previous: &[String]) -> EventFuture {
        self.inner.roles_changed(req, user, previous)
    }

    fn provider_signed_out(
        &self,
        req: &HttpRequest,
        channel: &'static str,
        sub: Option<&str>,
        sid: Option<&str>,
        ended: u64,
    ) -> EventFuture {
        self.inner
            .provider_signed_out(req, channel, sub, sid, ended)
    }

    fn idp_call(&self, endpoint: IdpEndpoint, elapsed: Duration, ok: bool) {
        let label = [endpoint.as_str()];
        self.metrics.0.idp_requests.with_label_values(&label).inc();
        self.metrics
            .0
            .idp_duration
            .with_label_values(&label)
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.metrics.0.idp_errors.with_label_values(&label).inc();
        }
        self.inner.idp_call(endpoint, elapsed, ok);
    }

    fn jwks_refreshed(&self) {
        self.metrics.0.jwks_refreshes.inc();
        self.inner.jwks_refreshed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_known_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"X-ANYTHING-123").unwrap();
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn every_metric_is_registered_and_rendered() {
        let m = Metrics::new().unwrap();
        m.0.sign_ins.inc();
        m.request(
            "/notes/{id}/delete",
            "POST",
            StatusCode::FORBIDDEN,
            Duration::from_millis(3),
        );
        let text = m.render();
        for name in [
            "rolegate_http_requests_total",
            "rolegate_http_request_duration_seconds_bucket",
            "rolegate_sign_ins_total 1",
            "rolegate_active_sessions 0",
            "rolegate_idp_requests_total{endpoint=\"token\"} 0",
            "rolegate_idp_errors_total{endpoint=\"jwks\"} 0",
            "rolegate_jwks_refreshes_total 0",
            "rolegate_session_store_errors_total 0",
            "rolegate_database_errors_total 0",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
