//! Per-client-IP rate limits on governor's keyed GCRA limiter: the sign-in, callback and
//! sign-out routes (`server.rate_limit_per_minute`), and the audit log's anonymous events.
//!
//! Memory stays bounded: the maintenance task calls [`PerIp::retain_recent`] (which drops every
//! client whose allowance is full again), and a limiter that reaches its key cap does the same
//! at once, at most once a second. IPv6 clients are keyed by their /64, the block one host gets.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tera::Context;

use crate::net::TrustedProxies;
use crate::templates::Templates;

/// Client keys a limiter holds before it prunes on the spot.
const MAX_KEYS: usize = 100_000;

/// The key of a client: its IPv4 address, or the /64 of its IPv6 address (a host can pick any
/// address in its /64, so per-address keys would let one host mint unlimited allowances).
fn client_key(ip: Option<IpAddr>) -> IpAddr {
    match ip {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Some(v4) => v4,
        // No peer address (not a TCP connection): one shared allowance.
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// A keyed limiter of `n` requests a minute per client (bursts of up to `n`).
pub struct PerIp {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    /// Unix seconds of the last on-the-spot prune.
    pruned_at: AtomicI64,
}

impl PerIp {
    /// `None` when `per_minute` is 0 (no limit).
    pub fn per_minute(per_minute: u32) -> Option<PerIp> {
        NonZeroU32::new(per_minute).map(PerIp::new)
    }

    /// `per_minute` requests a minute per client.
    pub fn new(per_minute: NonZeroU32) -> PerIp {
        PerIp {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
            pruned_at: AtomicI64::new(0),
        }
    }

    /// Counts one request of `ip`; `Err` with how long until the next one is allowed.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        if self.limiter.len() >= MAX_KEYS {
            let now = crate::clock::now();
            let last = self.pruned_at.load(Ordering::Relaxed);
            if now > last
                && self
                    .pruned_at
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.retain_recent();
            }
        }
        self.limiter
            .check_key(&client_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets every client whose allowance is full again (they are indistinguishable from new).
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Clients currently remembered.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// Counts refusals and writes one log line a minute at most, so a flood does not turn into a
/// flood of log lines.
#[derive(Default)]
pub struct Tally {
    count: AtomicU64,
    /// Unix seconds of the last line.
    logged_at: AtomicI64,
}

/// Seconds between two lines of one [`Tally`].
const TALLY_EVERY_SECS: i64 = 60;

impl Tally {
    /// Counts one refusal of `ip`; logs the count (with `what` as the message) if the last
    /// line is a minute old.
    pub fn note(&self, what: &'static str, ip: Option<IpAddr>) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = crate::clock::now();
        let last = self.logged_at.load(Ordering::Relaxed);
        if now - last >= TALLY_EVERY_SECS
            && self
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.report(what, ip);
        }
    }

    /// Logs the refusals counted since the last line, if any (the maintenance task calls this
    /// so the tail of a flood is reported too).
    pub fn report(&self, what: &'static str, last_ip: Option<IpAddr>) {
        let n = self.count.swap(0, Ordering::Relaxed);
        if n > 0 {
            tracing::warn!(
                refused = n,
                last_client_ip = ?last_ip,
                "{what}"
            );
        }
    }
}

/// The limit on the auth routes, shared with the middleware through app data.
#[derive(Clone)]
pub struct AuthRoutesLimit(Option<Arc<AuthInner>>);

struct AuthInner {
    per_ip: PerIp,
    per_minute: u32,
    paths: [String; 3],
    proxies: TrustedProxies,
    refused: Tally,
}

/// What the log lines of the auth-route limit say.
const AUTH_ROUTES: &str = "requests to the sign-in, callback and sign-out routes refused: over the per-client-IP rate limit";

impl AuthRoutesLimit {
    /// `per_minute` requests a minute per client IP to `paths`; 0 turns the limit off.
    pub fn new(per_minute: u32, paths: [&str; 3], proxies: TrustedProxies) -> Self {
        AuthRoutesLimit(PerIp::per_minute(per_minute).map(|per_ip| {
            Arc::new(AuthInner {
                per_ip,
                per_minute,
                paths: paths.map(str::to_owned),
                proxies,
                refused: Tally::default(),
            })
        }))
    }

    /// For the maintenance task: prune clients and log the refusals not yet reported.
    pub fn maintain(&self) {
        if let Some(inner) = &self.0 {
            inner.per_ip.retain_recent();
            inner.refused.report(AUTH_ROUTES, None);
        }
    }

    /// `Err(retry after)` when this request is over the limit.
    fn check(&self, req: &HttpRequest) -> Result<(), Duration> {
        let Some(inner) = &self.0 else {
            return Ok(());
        };
        // The path as routing matched it (percent-decoded), so `/%6Cogin` counts as `/login`.
        let path = req.match_info().as_str();
        if !inner.paths.iter().any(|p| p == path) {
            return Ok(());
        }
        let ip = inner.proxies.client_ip(req);
        inner.per_ip.check(ip).inspect_err(|_| {
            inner.refused.note(AUTH_ROUTES, ip);
        })
    }
}

/// Whole seconds to wait, at least 1 (a `Retry-After: 0` invites an immediate retry).
fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The 429 answer: JSON or a page (by `rolegate_auth::wants_json`), with `Retry-After`.
fn too_many_requests(req: &HttpRequest, per_minute: u32, wait: Duration) -> HttpResponse {
    let secs = retry_after_secs(wait);
    let status = StatusCode::TOO_MANY_REQUESTS;
    let detail = format!(
        "Too many sign-in requests from your address (the limit is {per_minute} a minute). \
         Try again in {secs} seconds."
    );
    let mut response = if rolegate_auth::wants_json(req) {
        rolegate_auth::json_error(status, "rate_limited", &detail)
    } else {
        match Templates::global() {
            Some(t) => {
                let mut ctx = Context::new();
                ctx.insert("title", "Too many requests");
                ctx.insert("message", &detail);
                ctx.insert("status", &status.as_u16());
                t.page(status, "error.html", &ctx)
            }
            None => HttpResponse::build(status)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(detail),
        }
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    response
}

/// Middleware (`from_fn`) over the session scope: refuses an auth-route request over the
/// limit before the session is loaded, so a refused request costs no store round trip.
pub async fn limit_auth_routes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refused = req.app_data::<AuthRoutesLimit>().and_then(|limit| {
        let inner = limit.0.as_ref()?;
        limit
            .check(req.request())
            .err()
            .map(|wait| (inner.per_minute, wait))
    });
    match refused {
        Some((per_minute, wait)) => {
            let response = too_many_requests(req.request(), per_minute, wait);
            Ok(req.into_response(response).map_into_right_body())
        }
        None => Ok(next.call(req).await?.map_into_left_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_slash_64_and_mapped_v4_is_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(Some(a)), client_key(Some(b)));
        assert_ne!(client_key(Some(a)), client_key(Some(c)));
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(
            client_key(Some(mapped)),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_client_over_its_allowance_waits_and_others_do_not() {
        let limit = PerIp::per_minute(3).unwrap();
        let one = Some("198.51.100.7".parse().unwrap());
        let two = Some("198.51.100.8".parse().unwrap());
        for _ in 0..3 {
            assert!(limit.check(one).is_ok());
        }
        let wait = limit.check(one).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20));
        assert_eq!(retry_after_secs(wait), wait.as_secs_f64().ceil() as u64);
        assert!(limit.check(two).is_ok());
        assert!(PerIp::per_minute(0).is_none(), "0 is off");
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    }
}
