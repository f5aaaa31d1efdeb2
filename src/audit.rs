//! Audit trail: rolegate's [`AuthEvents`] hook and the writer the routes share.
//!
//! A failed audit write is logged and never fails the user's request.

use crate::db::Pool;
use std::collections::HashMap;

use actix_session::SessionExt;
use actix_web::{HttpMessage, HttpRequest};
use serde::{Deserialize, Serialize};

use crate::db::audit::{self, Event, NewEntry};
use crate::net::TrustedProxies;
use crate::telemetry::RequestId;
use rolegate_auth::{AuthError, AuthEvents, Claims, EventFuture, User};

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
    /// Last `access_denied` row per (user, path): a user hammering a forbidden page writes
    /// one row a minute, not one per request.
    denied: std::sync::Arc<std::sync::Mutex<HashMap<(String, String), i64>>>,
}

/// At most one `access_denied` row per user and path in this many seconds.
const DENIED_EVERY_SECS: i64 = 60;

impl Audit {
    pub fn new(pool: Pool, proxies: TrustedProxies) -> Self {
        Audit {
            pool,
            proxies,
            denied: Default::default(),
        }
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

    pub async fn write(&self, entry: NewEntry) {
        if let Err(e) = audit::insert(&self.pool, &entry).await {
            tracing::error!(event = entry.event.name(), error = %e, "could not write the audit log");
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

    /// Whether this denial is the first for (user, path) within [`DENIED_EVERY_SECS`].
    fn first_denial(&self, user: &User, path: &str) -> bool {
        let now = crate::clock::now();
        let Ok(mut seen) = self.denied.lock() else {
            return true;
        };
        if seen.len() > 10_000 {
            seen.retain(|_, at| now - *at < DENIED_EVERY_SECS);
        }
        let key = (user.sub.clone(), path.to_owned());
        match seen.get(&key) {
            Some(at) if now - *at < DENIED_EVERY_SECS => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
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
        if let Some(c) = claims {
            entry.user_id = Some(c.stable_id().to_owned());
            entry.user_name = c.name.clone().or_else(|| c.preferred_username.clone());
        }
        self.0.later(entry)
    }

    fn access_denied(&self, req: &HttpRequest, user: &User, needed: &str) -> EventFuture {
        if !self.0.first_denial(user, req.path()) {
            return rolegate_auth::no_event();
        }
        let detail = format!("{} {} needs {}", req.method(), req.path(), needed);
        self.0
            .later(self.0.entry(req, Event::AccessDenied, Some(user), detail))
    }

    fn signed_out(&self, req: &HttpRequest, user: Option<&User>) -> EventFuture {
        self.0
            .later(self.0.entry(req, Event::SignOut, user, String::new()))
    }
}
