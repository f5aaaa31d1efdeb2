//! Hooks for audit logging: the host learns of sign-ins, refusals, denials and sign-outs.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::HttpRequest;

use crate::error::{AuthError, TokenError};
use crate::id_token::Claims;
use crate::session::User;

/// What an [`AuthEvents`] hook returns: awaited before the response goes out, so an audit
/// row is durable when the user sees the page.
pub type EventFuture = Pin<Box<dyn Future<Output = ()>>>;

/// A finished [`EventFuture`], the default of every hook.
pub fn no_event() -> EventFuture {
    Box::pin(std::future::ready(()))
}

/// Hooks for audit logging; every method defaults to doing nothing. Read what you need from
/// the request synchronously, then return the write as the future.
pub trait AuthEvents: Send + Sync + 'static {
    /// A user signed in (the session is already rotated).
    fn signed_in(&self, _req: &HttpRequest, _user: &User) -> EventFuture {
        no_event()
    }
    /// A sign-in was refused; `claims` is set when the ID token itself was valid.
    fn sign_in_refused(
        &self,
        _req: &HttpRequest,
        _error: &AuthError,
        _claims: Option<&Claims>,
    ) -> EventFuture {
        no_event()
    }
    /// A signed-in user lacked the role `needed`.
    fn access_denied(&self, _req: &HttpRequest, _user: &User, _needed: &str) -> EventFuture {
        no_event()
    }
    /// A Bearer token was refused as not a usable access token (401 `invalid_token`);
    /// `claims` is set when its signature was valid. Anyone can cause this: rate-limit writes.
    /// (A valid token lacking the scope or role is reported through
    /// [`access_denied`](Self::access_denied).)
    fn bearer_refused(
        &self,
        _req: &HttpRequest,
        _error: &TokenError,
        _claims: Option<&Claims>,
    ) -> EventFuture {
        no_event()
    }
    /// A role re-check found other roles than the session held: `user` has the new ones,
    /// `previous` the old.
    fn roles_changed(&self, _req: &HttpRequest, _user: &User, _previous: &[String]) -> EventFuture {
        no_event()
    }
    /// A session ended at `/logout` (`user` is `None` when it was anonymous).
    fn signed_out(&self, _req: &HttpRequest, _user: Option<&User>) -> EventFuture {
        no_event()
    }
    /// The identity provider signed the user out (`channel`: `back-channel` or
    /// `front-channel`) and `ended` sessions went; `sub` and `sid` are what it named.
    fn provider_signed_out(
        &self,
        _req: &HttpRequest,
        _channel: &'static str,
        _sub: Option<&str>,
        _sid: Option<&str>,
        _ended: u64,
    ) -> EventFuture {
        no_event()
    }
    /// The module called the identity provider; `ok` is false for a transport error or a
    /// non-success answer. Synchronous and cheap: it is meant for metrics, not audit rows.
    fn idp_call(&self, _endpoint: IdpEndpoint, _elapsed: Duration, _ok: bool) {}
    /// The signing keys were fetched again (an unknown `kid`) and replaced the cached set.
    fn jwks_refreshed(&self) {}
}

/// Which provider endpoint an [`AuthEvents::idp_call`] went to: a fixed set, so it is safe
/// as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdpEndpoint {
    /// The discovery document (`.well-known/openid-configuration`).
    Discovery,
    /// The signing keys (`jwks_uri`).
    Jwks,
    /// The token endpoint (code redemption).
    Token,
}

impl IdpEndpoint {
    /// A short lowercase name: `discovery`, `jwks` or `token`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdpEndpoint::Discovery => "discovery",
            IdpEndpoint::Jwks => "jwks",
            IdpEndpoint::Token => "token",
        }
    }
}

/// An [`AuthEvents`] that relies on the module's own log lines only.
pub struct NoEvents;
impl AuthEvents for NoEvents {}
