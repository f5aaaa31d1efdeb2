//! OpenID Connect sign-in and app-role authorization for Actix-web, Entra ID first.
//!
//! The module signs people in with the authorization code flow (PKCE S256, state, nonce),
//! validates the ID token itself (keys from the provider's JWKS, `iss`, `aud`, `azp`, `exp`,
//! `nbf`, `iat`, `nonce`), and keeps the user in the server-side session: the cookie holds only
//! an opaque id, rotated at sign-in. Roles come from the token (`roles` claim, or groups mapped
//! to roles) and form an ordered hierarchy in which each level implies the ones below it.
//!
//! # Mounting
//!
//! 1. Build an [`AuthConfig`] (every optional value has a default) and an [`Auth`] from it.
//! 2. Wrap the app in an [`actix_session::SessionMiddleware`] over a server-side store
//!    ([`MemoryStore`] for one process; a database or Redis store for several).
//! 3. Call [`Auth::configure`]: it registers `{base_path}/login`, the callback
//!    (`{base_path}/getAToken`) and `{base_path}/logout` (`GET`: a "Sign out?" page; `POST` with
//!    the session's [`csrf::token`] as form field `csrf_token`: signs out).
//!    With [`Auth::with_session_end`] (the store implements [`SessionEnd`]; [`MemoryStore`]
//!    does) it also mounts `{base_path}/backchannel-logout` and `{base_path}/frontchannel-logout`,
//!    so signing out at the provider ends the sessions here too.
//! 4. Protect routes in any of three ways, which compose (all that apply must allow):
//!    an extractor on a handler ([`CurrentUser`], [`MaybeUser`], [`RequireRole<Write>`]);
//!    [`RequireRoleLayer`] on a scope; or route rules in the configuration, enforced by
//!    [`Auth::route_rules`].
//!
//! ```no_run
//! use actix_session::SessionMiddleware;
//! use actix_web::{App, HttpServer, cookie::Key, web};
//! use rolegate_auth::{Auth, AuthConfig, CurrentUser, DefaultPages, MemoryStore, NoEvents};
//! use rolegate_auth::{Read, RequireRole, RequireRoleLayer, Role, Write};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AuthConfig::builder(
//!     "https://login.microsoftonline.com/<tenant-id>/v2.0",
//!     "<client-id>",
//!     "https://app.example.com",
//! )
//! .client_secret(std::env::var("CLIENT_SECRET")?)
//! .build()?;
//! let auth = Auth::new(config, DefaultPages, NoEvents)?;
//! let (store, key) = (MemoryStore::new(), Key::generate());
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(auth.route_rules())
//!         .wrap(SessionMiddleware::new(store.clone(), key.clone()))
//!         .configure(|cfg| auth.configure(cfg))
//!         .route("/", web::get().to(|u: CurrentUser| async move { format!("Hello {}", u.name) }))
//!         .route("/edit", web::post().to(|_: RequireRole<Write>| async { "saved" }))
//!         .service(web::scope("/reports").wrap(RequireRoleLayer::new(Read::NAME)))
//! })
//! .bind(("127.0.0.1", 8000))?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! Anonymous callers of a guarded page are sent to the sign-in page (`302`, with a same-site
//! `next`); callers under the API prefix, or asking for JSON, get `401` JSON; signed-in callers
//! without the role get `403`. Nothing on a signed-in request calls the identity provider.
//!
//! Your own role names: set [`AuthConfigBuilder::roles`] (lowest first) and declare markers
//! with [`app_role!`], or test a named role with [`User::has_role`]. Pages come from the host
//! through [`AuthPages`] ([`DefaultPages`] until you have templates); audit events go out
//! through [`AuthEvents`].

#![deny(missing_docs)]

mod access_token;
mod caller;
mod client_auth;
mod client_credential;
mod config;
mod consent;
pub mod csrf;
mod error;
mod events;
mod extract;
mod flow;
mod handlers;
mod http;
mod id_token;
mod issuer;
mod live_roles;
mod log_safe;
mod memory_store;
mod metadata;
mod middleware;
mod pages;
mod provider_check;
mod redirect;
mod reject;
mod roles;
mod rules;
mod session;
mod single_sign_out;
mod tenant;
mod token_cache;
mod token_keys;
mod user_tokens;

#[cfg(test)]
mod proptests;

use std::sync::{Arc, OnceLock};

use actix_web::web;

pub use client_auth::{CLIENT_AUTH_METHODS, ClientAuthMethod};
pub use client_credential::{
    CERTIFICATE_FILE_FIELD, CertificateError, CertificatePart, ClientCertificate, ClientCredential,
    PRIVATE_KEY_FILE_FIELD,
};
pub use config::B2cPolicies;
pub use config::{
    AuthConfig, AuthConfigBuilder, ConfigError, ConfigProblem, DEFAULT_API_SCOPE, DEFAULT_ROLES,
    DownstreamApi,
};
pub use consent::claims_challenge;
pub use error::{AuthError, TokenError};
pub use events::{AuthEvents, EventFuture, IdpEndpoint, NoEvents, no_event};
pub use extract::{CurrentUser, MaybeUser, RequireRole};
pub use id_token::{Audience, Claims};
pub use log_safe::Escaped;
pub use memory_store::MemoryStore;
pub use metadata::{ProviderStatus, is_loopback_host, is_secure_or_loopback};
pub use middleware::{RequireRoleLayer, RouteRules};
pub use pages::{AuthPages, DefaultPages, LoginPage, SignOutPage};
pub use provider_check::{ProviderReport, check_provider};
pub use reject::{ErrorBody, json_error, wants_json};
pub use roles::{Admin, Read, Role, RoleClaim, RoleHierarchy, RoleSource, Write};
pub use rules::{Access, RuleProblem, RuleSet, RuleSpec};
pub use session::{SESSION_SEEN_KEY, SESSION_USER_KEY, SessionIds, User, resolved_user};
pub use single_sign_out::{
    BACKCHANNEL_EVENT, EndFuture, FirstUseFuture, LogoutTokenError, SessionEnd,
};
pub use tenant::{ANY_TENANT, expected_issuer};
pub use token_keys::{TokenKey, TokenKeys};
pub use user_tokens::{Downstream, TokenFor, UserTokenError};

use metadata::{Provider, ProviderHandle};

/// The configured module. Cheap to clone; share one across workers.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    http: reqwest::Client,
    provider: ProviderHandle,
    pages: Box<dyn AuthPages>,
    events: Arc<dyn AuthEvents>,
    tokens: token_cache::TokenCache,
    flights: user_tokens::Flights,
    downstream_http: reqwest::Client,
    /// How the host ends sessions the provider signed out (single sign-out).
    session_end: OnceLock<Arc<dyn SessionEnd>>,
    seen_logout_tokens: single_sign_out::SeenTokens,
}

impl Auth {
    /// Builds the module; fails only if the HTTP client for the provider cannot be created.
    pub fn new(
        config: AuthConfig,
        pages: impl AuthPages,
        events: impl AuthEvents,
    ) -> Result<Auth, reqwest::Error> {
        let http = http::provider_client(config.http_timeout)?;
        let downstream_http = http::provider_client(config.http_timeout)?;
        Ok(Auth {
            inner: Arc::new(Inner {
                config,
                http,
                provider: ProviderHandle::new(),
                pages: Box::new(pages),
                events: Arc::new(events),
                tokens: token_cache::TokenCache::new(10_000),
                flights: user_tokens::Flights::default(),
                downstream_http,
                session_end: OnceLock::new(),
                seen_logout_tokens: single_sign_out::SeenTokens::default(),
            }),
        })
    }

    /// Enables single sign-out: [`Auth::configure`] then also mounts
    /// `{base_path}/backchannel-logout` (OIDC Back-Channel Logout, `POST logout_token`) and
    /// `{base_path}/frontchannel-logout` (Entra's front-channel logout URL), which end
    /// sessions through `end`. Call it before `configure`; a second call is ignored.
    pub fn with_session_end(self, end: impl SessionEnd) -> Auth {
        if self.inner.session_end.set(Arc::new(end)).is_err() {
            tracing::warn!("with_session_end called twice; the first store stays");
        }
        self
    }

    /// Registers the module's state and routes: `{base_path}/login`, the callback and
    /// `{base_path}/logout`. Call it on the `App` (or the scope that carries the session).
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let config = self.config();
        cfg.app_data(self.clone())
            .route(config.login_path(), web::get().to(handlers::login))
            .route(config.redirect_path(), web::get().to(handlers::callback))
            .route(config.logout_path(), web::get().to(handlers::logout_page))
            .route(config.logout_path(), web::post().to(handlers::logout));
        if self.single_sign_out() {
            cfg.route(
                config.backchannel_logout_path(),
                web::post().to(single_sign_out::back_channel),
            )
            .route(
                config.frontchannel_logout_path(),
                web::get().to(single_sign_out::front_channel),
            );
        }
        if config.b2c.edit_profile.is_some() {
            cfg.route(
                &config.profile_edit_path(),
                web::get().to(handlers::profile_edit),
            );
        }
    }

    /// The middleware that enforces the configured route rules. Wrap it inside the session
    /// middleware (`.wrap(auth.route_rules()).wrap(SessionMiddleware::new(..))`).
    pub fn route_rules(&self) -> RouteRules {
        RouteRules::new(self.clone())
    }

    /// Discovers the provider ahead of the first sign-in; failure is logged and retried later.
    pub async fn warm_up(&self) {
        let _ = self.provider().await;
    }

    /// Whether discovery has succeeded (no network call).
    pub fn provider_ready(&self) -> bool {
        self.inner.provider.cached().is_some()
    }

    /// Where discovery stands, telling a provider that is down from settings that do not fit
    /// it (no network call): readiness probes report the second as a configuration fault.
    pub fn provider_status(&self) -> ProviderStatus {
        self.inner.provider.status()
    }

    /// The configuration the module runs with.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The rule table, most specific first, then the default: one line each, for reports.
    pub fn rule_table(&self) -> Vec<String> {
        self.inner.config.rules().table()
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn tokens(&self) -> &token_cache::TokenCache {
        &self.inner.tokens
    }

    pub(crate) fn flights(&self) -> &user_tokens::Flights {
        &self.inner.flights
    }

    /// Whether single sign-out is enabled (no clone: the route rules ask on every request).
    pub(crate) fn single_sign_out(&self) -> bool {
        self.inner.session_end.get().is_some()
    }

    pub(crate) fn session_end(&self) -> Option<Arc<dyn SessionEnd>> {
        self.inner.session_end.get().cloned()
    }

    pub(crate) fn seen_logout_tokens(&self) -> &single_sign_out::SeenTokens {
        &self.inner.seen_logout_tokens
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
            .get(&self.inner.config, &self.inner.http, &self.inner.events)
            .await
    }
}
