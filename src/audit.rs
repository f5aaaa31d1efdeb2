//! Audit trail: rolegate's [`AuthEvents`] hook and the writer the routes share.
//!
//! A failed audit write is logged and never fails the user's request.

use crate::db::Pool;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_session::SessionExt;
use actix_web::{HttpMessage, HttpRequest};
use serde::{Deserialize, Serialize};

use crate::db::audit::{self, Event, NewEntry};
use crate::net::TrustedProxies;
use crate::rate_limit::{PerIp, Tally};
use crate::telemetry::RequestId;
use rolegate_auth::{AuthError, AuthEvents, Claims, EventFuture, TokenError, User};

/// Session entry with where the user signed in from, shown on the admin page.
pub const CLIENT_KEY: &str = "app.client";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

#[derive(Clone)]
pub struct Audit {
    pool: Pool,
    proxies: TrustedProxies,
    /// Last `access_denied` row per (user, route pattern): a user hammering a forbidden page
    /// writes one row a minute, not one per request or per id in the path.
    denied: Arc<Mutex<Denials>>,
    /// Rows of anonymous events (refused callbacks without claims, anonymous sign-outs) per
    /// client IP: anyone can cause them, so they must not be able to fill the table.
    anonymous: Arc<PerIp>,
    /// Events not written because of the two limits above, reported in a log line.
    suppressed: Arc<Tally>,
    /// The runtime the writes run on (the one that built the app, not a worker's): a write
    /// goes on even when its request is dropped, e.g. cut off at the shutdown timeout.
    runtime: Option<tokio::runtime::Handle>,
    /// Writes not finished yet, which [`Audit::flush`] waits for at shutdown.
    pending: Arc<Pending>,
}

/// A count of writes in flight and a wake-up for when it drops to zero.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Held by one write while it runs.
struct PendingWrite(Arc<Pending>);

impl Pending {
    fn start(self: &Arc<Self>) -> PendingWrite {
        self.count.fetch_add(1, Ordering::SeqCst);
        PendingWrite(self.clone())
    }

    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// At most one `access_denied` row per user and route pattern in this many seconds.
const DENIED_EVERY_SECS: i64 = 60;
/// (user, pattern) pairs the denial limiter remembers at most.
const DENIED_KEYS: usize = 10_000;
/// Rows of anonymous events one client IP may cause a minute.
pub const ANONYMOUS_ROWS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(10).unwrap();
/// The route key of a request that matched no route (the default service).
const UNMATCHED: &str = "(unmatched)";
/// What the log line of suppressed events says.
const SUPPRESSED: &str = "audit events not written: anonymous events over 10 per client IP a \
                          minute, or repeats of an access denial within its minute";

/// When each (user, route pattern) last wrote an `access_denied` row; bounded.
struct Denials {
    seen: HashMap<(String, String), i64>,
    capacity: usize,
}

impl Denials {
    fn new(capacity: usize) -> Self {
        Denials {
            seen: HashMap::new(),
            capacity,
        }
    }

    /// Whether a denial of `key` at `now` should be written. When the map is full it first
    /// drops the pairs whose minute is over; if it is still full, a new pair is refused (not
    /// written) rather than letting the map grow.
    fn first(&mut self, key: (String, String), now: i64) -> bool {
        if let Some(at) = self.seen.get_mut(&key) {
            if now - *at < DENIED_EVERY_SECS {
                return false;
            }
            *at = now;
            return true;
        }
        if self.seen.len() >= self.capacity {
            self.seen.retain(|_, at| now - *at < DENIED_EVERY_SECS);
            if self.seen.len() >= self.capacity {
                return false;
            }
        }
        self.seen.insert(key, now);
        true
    }
}

impl Audit {
    pub fn new(pool: Pool, proxies: TrustedProxies) -> Self {
        Audit {
            pool,
            proxies,
            denied: Arc::new(Mutex::new(Denials::new(DENIED_KEYS))),
            anonymous: Arc::new(PerIp::new(ANONYMOUS_ROWS_PER_MINUTE)),
            suppressed: Arc::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            pending: Arc::default(),
        }
    }

    /// Waits until every queued or running write is in the database, at most `timeout`;
    /// returns how many were still unfinished (0 when flushed).
    pub async fn flush(&self, timeout: Duration) -> usize {
        let _ = tokio::time::timeout(timeout, self.pending.idle()).await;
        self.pending.count.load(Ordering::SeqCst)
    }

    /// For the maintenance task: forget idle clients and report what was not written.
    pub fn maintain(&self) {
        self.anonymous.retain_recent();
        if let Ok(mut denied) = self.denied.lock() {
            let now = crate::clock::now();
            denied.seen.retain(|_, at| now - *at < DENIED_EVERY_SECS);
        }
        self.suppressed.report(SUPPRESSED, None);
    }

    /// Whether an anonymous event of this request's client may still be written.
    fn admit_anonymous(&self, req: &HttpRequest) -> bool {
        let ip = self.proxies.client_ip(req);
        let admitted = self.anonymous.check(ip).is_ok();
        if !admitted {
            self.suppressed.note(SUPPRESSED, ip);
        }
        admitted
    }

    pub fn client_ip(&self, req: &HttpRequest) -> Option<String> {
        self.proxies.client_ip(req).map(|ip| ip.to_string())
    }

    /// Builds an entry from the request (IP, request id) and the acting user.
    pub fn entry(
        &self,
        req: &HttpRequest,
        event: Event,
        user: Option<&User>,
        detail: String,
    ) -> NewEntry {
        NewEntry {
            event,
            user_id: user.map(|u| u.stable_id().to_owned()),
            user_name: user.map(|u| u.name.clone()),
            client_ip: self.client_ip(req),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
            detail,
        }
    }

    /// Writes the row on the app's runtime and waits for it, so the row is durable when the
    /// response goes out, and is still written if the request is dropped meanwhile.
    pub async fn write(&self, entry: NewEntry) {
        let pool = self.pool.clone();
        let running = self.pending.start();
        // Taken here: the write runs on another task, outside the request's metrics scope.
        let metrics = crate::metrics::current();
        let insert = async move {
            let _running = running;
            if let Err(e) = audit::insert(&pool, &entry).await {
                if let Some(m) = &metrics {
                    m.database_error();
                }
                tracing::error!(event = entry.event.name(), error = %e, "could not write the audit log");
            }
        };
        match &self.runtime {
            Some(runtime) => {
                let _ = runtime.spawn(insert).await;
            }
            None => insert.await,
        }
    }

    pub async fn record(
        &self,
        req: &HttpRequest,
        event: Event,
        user: Option<&User>,
        detail: String,
    ) {
        let entry = self.entry(req, event, user, detail);
        self.write(entry).await;
    }

    /// Whether this denial is the first for (user, route pattern) within [`DENIED_EVERY_SECS`].
    fn first_denial(&self, req: &HttpRequest, user: &User, route: &str) -> bool {
        let first = match self.denied.lock() {
            Ok(mut denied) => {
                denied.first((user.sub.clone(), route.to_owned()), crate::clock::now())
            }
            Err(_) => true,
        };
        if !first {
            self.suppressed
                .note(SUPPRESSED, self.proxies.client_ip(req));
        }
        first
    }

    fn later(&self, entry: NewEntry) -> EventFuture {
        let audit = self.clone();
        Box::pin(async move { audit.write(entry).await })
    }
}

/// The auth module's events, written to the audit log.
pub struct AuditEvents(pub Audit);

impl AuthEvents for AuditEvents {
    fn signed_in(&self, req: &HttpRequest, user: &User) -> EventFuture {
        let client = ClientInfo {
            ip: self.0.client_ip(req).unwrap_or_default(),
            user_agent: req
                .headers()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(200).collect())
                .unwrap_or_default(),
        };
        let _ = req.get_session().insert(CLIENT_KEY, client);
        let level = user.role().unwrap_or("none");
        self.0.later(self.0.entry(
            req,
            Event::SignIn,
            Some(user),
            format!("signed in with {level}"),
        ))
    }

    fn sign_in_refused(
        &self,
        req: &HttpRequest,
        error: &AuthError,
        claims: Option<&Claims>,
    ) -> EventFuture {
        let mut entry = self.0.entry(
            req,
            Event::SignInRefused,
            None,
            format!("{}: {error}", error.reason()),
        );
        match claims {
            Some(c) => {
                entry.user_id = Some(c.stable_id().to_owned());
                entry.user_name = c
                    .name
                    .clone()
                    .or_else(|| c.preferred_username.clone())
                    .or_else(|| c.email.clone());
            }
            None if !self.0.admit_anonymous(req) => return rolegate_auth::no_event(),
            None => {}
        }
        self.0.later(entry)
    }

    fn access_denied(&self, req: &HttpRequest, user: &User, needed: &str) -> EventFuture {
        let route = req.match_pattern();
        let route = route.as_deref().unwrap_or(UNMATCHED);
        if !self.0.first_denial(req, user, route) {
            return rolegate_auth::no_event();
        }
        let detail = if route == req.path() {
            format!("{} {} needs {}", req.method(), req.path(), needed)
        } else {
            format!(
                "{} {} (route {route}) needs {needed}",
                req.method(),
                req.path()
            )
        };
        self.0
            .later(self.0.entry(req, Event::AccessDenied, Some(user), detail))
    }

    /// Anyone can send a token, so these rows are limited per client IP like anonymous ones,
    /// whether or not the token's signature (and so its user) was valid.
    fn bearer_refused(
        &self,
        req: &HttpRequest,
        error: &TokenError,
        claims: Option<&Claims>,
    ) -> EventFuture {
        if !self.0.admit_anonymous(req) {
            return rolegate_auth::no_event();
        }
        let mut entry = self.0.entry(
            req,
            Event::AccessDenied,
            None,
            format!(
                "{} {}: Bearer token refused ({}): {}",
                req.method(),
                req.path(),
                error.reason(),
                error.bearer_description()
            ),
        );
        if let Some(c) = claims {
            entry.user_id = Some(c.stable_id().to_owned());
            entry.user_name = c
                .name
                .clone()
                .or_else(|| c.preferred_username.clone())
                .or_else(|| c.azp.clone().or_else(|| c.appid.clone()));
        }
        self.0.later(entry)
    }

    fn roles_changed(&self, req: &HttpRequest, user: &User, previous: &[String]) -> EventFuture {
        // Role values are the app's own names, but they come from a token: kept short.
        let list = |roles: &[String]| -> String {
            roles
                .iter()
                .map(|r| r.chars().take(64).collect::<String>())
                .collect::<Vec<_>>()
                .join(",")
        };
        let detail = format!("before={} after={}", list(previous), list(&user.roles));
        self.0
            .later(self.0.entry(req, Event::RolesChanged, Some(user), detail))
    }

    /// Only a validly signed logout token, or a front-channel request naming a live `sid`,
    /// gets here with sessions to end; front-channel requests that end nothing are anyone's
    /// to send, so they are limited like anonymous rows.
    fn provider_signed_out(
        &self,
        req: &HttpRequest,
        channel: &'static str,
        sub: Option<&str>,
        _sid: Option<&str>,
        ended: u64,
    ) -> EventFuture {
        if ended == 0 && sub.is_none() && !self.0.admit_anonymous(req) {
            return rolegate_auth::no_event();
        }
        let mut entry = self.0.entry(
            req,
            Event::ProviderSignedOut,
            None,
            format!("{channel}: {ended} session(s) ended"),
        );
        entry.user_id = sub.map(|s| s.chars().take(128).collect());
        self.0.later(entry)
    }

    fn signed_out(&self, req: &HttpRequest, user: Option<&User>) -> EventFuture {
        if user.is_none() && !self.0.admit_anonymous(req) {
            return rolegate_auth::no_event();
        }
        self.0
            .later(self.0.entry(req, Event::SignOut, user, String::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: &str, route: &str) -> (String, String) {
        (user.to_owned(), route.to_owned())
    }

    #[test]
    fn one_denial_row_a_minute_per_user_and_route() {
        let mut d = Denials::new(10);
        assert!(d.first(key("bob", "/admin"), 1000));
        assert!(!d.first(key("bob", "/admin"), 1059));
        assert!(d.first(key("bob", "/notes/{id}/delete"), 1059));
        assert!(d.first(key("carol", "/admin"), 1059));
        assert!(d.first(key("bob", "/admin"), 1060), "a minute later");
    }

    #[test]
    fn the_denial_map_is_bounded_and_refuses_new_keys_when_full() {
        let mut d = Denials::new(3);
        for user in ["a", "b", "c"] {
            assert!(d.first(key(user, "/admin"), 1000));
        }
        assert!(
            !d.first(key("d", "/admin"), 1010),
            "full of live keys: refused"
        );
        assert_eq!(d.seen.len(), 3);
        assert!(d.first(key("d", "/admin"), 1060), "expired keys dropped");
        assert_eq!(d.seen.len(), 1);
    }
}
