//! OpenID Connect sign-in and app-role authorization for Actix-web, liftable as one module.
//!
//! It depends only on actix-web, actix-session, oauth2, jsonwebtoken, reqwest, serde,
//! thiserror and tracing. Mount it in three steps:
//!
//! ```ignore
//! let auth = Auth::new(config, Arc::new(MyPages), Arc::new(NoEvents))?;
//! App::new()
//!     .wrap(SessionMiddleware::new(store, key))   // any actix-session store
//!     .configure(|cfg| auth.configure(cfg))        // /login, the callback, /logout
//!     .route("/", web::get().to(|u: RequireRole<Write>| async move { u.name.clone() }))
//! ```
//!
//! Pages come from the host through [`AuthPages`]; audit events go out through [`AuthEvents`].

pub mod config;
pub mod error;
pub mod flow;
pub mod guard;
pub mod handlers;
pub mod http;
pub mod id_token;
pub mod metadata;
pub mod redirect;
pub mod roles;
pub mod session;
pub mod token_cache;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};

pub use config::AuthConfig;
pub use error::{AuthError, TokenError};
pub use guard::{CurrentUser, MaybeUser, RequireRole, RequireRoleLayer};
pub use roles::{AccessLevel, Admin, Read, Role, Write};
pub use session::User;

pub use id_token::Claims;
use metadata::{Provider, ProviderHandle};

/// What the sign-in page shows.
pub struct LoginPage {
    /// The provider's authorization URL for this sign-in (state, nonce, PKCE included).
    pub sign_in_url: String,
    /// The user has just signed out.
    pub signed_out: bool,
    /// Where the user goes after signing in (already checked to be same-site).
    pub next: String,
}

/// Pages the module shows, rendered by the host (rolegate uses Tera).
pub trait AuthPages: Send + Sync + 'static {
    fn login(&self, req: &HttpRequest, page: &LoginPage) -> HttpResponse;
    /// A failed sign-in; the status is `error.status()`.
    fn auth_error(&self, req: &HttpRequest, error: &AuthError) -> HttpResponse;
    /// 403 for a signed-in user without the role `needed`.
    fn forbidden(&self, req: &HttpRequest, user: &User, needed: AccessLevel) -> HttpResponse;
}

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
    fn signed_in(&self, _req: &HttpRequest, _user: &User) -> EventFuture {
        no_event()
    }
    fn sign_in_refused(
        &self,
        _req: &HttpRequest,
        _error: &AuthError,
        _claims: Option<&Claims>,
    ) -> EventFuture {
        no_event()
    }
    fn access_denied(&self, _req: &HttpRequest, _user: &User, _needed: AccessLevel) -> EventFuture {
        no_event()
    }
    fn signed_out(&self, _req: &HttpRequest, _user: Option<&User>) -> EventFuture {
        no_event()
    }
}

/// An [`AuthEvents`] that only relies on the module's own log lines.
pub struct NoEvents;
impl AuthEvents for NoEvents {}

/// The configured module. Cheap to clone; share one across workers.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    http: reqwest::Client,
    provider: ProviderHandle,
    pages: Arc<dyn AuthPages>,
    events: Arc<dyn AuthEvents>,
    tokens: token_cache::TokenCache,
}

impl Auth {
    pub fn new(
        config: AuthConfig,
        pages: Arc<dyn AuthPages>,
        events: Arc<dyn AuthEvents>,
    ) -> Result<Auth, reqwest::Error> {
        let http = http::provider_client(config.http_timeout)?;
        Ok(Auth {
            inner: Arc::new(Inner {
                config,
                http,
                provider: ProviderHandle::new(),
                pages,
                events,
                tokens: token_cache::TokenCache::new(10_000),
            }),
        })
    }

    /// Registers the module's state and routes: `/login`, the redirect path, `/logout`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.clone())
            .route(self.config().login_path(), web::get().to(handlers::login))
            .route(
                self.config().redirect_path(),
                web::get().to(handlers::callback),
            )
            .route("/logout", web::get().to(handlers::logout));
    }

    /// Discovers the provider ahead of the first sign-in; failure is logged and retried later.
    pub async fn warm_up(&self) {
        let _ = self.provider().await;
    }

    /// Whether discovery has succeeded (no network call).
    pub fn provider_ready(&self) -> bool {
        self.inner.provider.cached().is_some()
    }

    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn tokens(&self) -> &token_cache::TokenCache {
        &self.inner.tokens
    }

    pub(crate) fn pages(&self) -> &dyn AuthPages {
        self.inner.pages.as_ref()
    }

    pub(crate) fn events(&self) -> &dyn AuthEvents {
        self.inner.events.as_ref()
    }

    pub(crate) async fn provider(&self) -> Result<Arc<Provider>, AuthError> {
        self.inner
            .provider
            .get(&self.inner.config, &self.inner.http)
            .await
    }
}
