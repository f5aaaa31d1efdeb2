//! Extractors and the scope middleware that decide who may see a route.
//!
//! Put [`CurrentUser`], [`MaybeUser`] or [`RequireRole<R>`] on a handler, or wrap a scope in
//! [`RequireRoleLayer`]. Anonymous callers of HTML routes go to the sign-in page; API callers
//! (and anyone asking for JSON) get 401 JSON; signed-in callers without the role get 403.

use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_session::SessionExt;
use actix_web::body::EitherBody;
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::error::InternalError;
use actix_web::http::{StatusCode, header};
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse};

use super::Auth;
use super::error::TokenError;
use super::id_token::{self, Expectations, now};
use super::roles::{AccessLevel, Role};
use super::session::{AuthSession, Resolved, SEEN_WRITE_INTERVAL_SECS, User};

/// Why a request was not let through.
#[derive(Debug)]
pub enum Rejection {
    Anonymous,
    InvalidBearer(TokenError),
    Forbidden {
        user: Arc<User>,
        needed: AccessLevel,
    },
    ProviderUnavailable,
    NotConfigured,
}

/// Finds the caller: a valid Bearer token on the API, else the session's user. The result is
/// cached on the request, and nothing here calls the provider for a session user.
pub async fn resolve(req: &HttpRequest) -> Result<Option<Arc<User>>, Rejection> {
    if let Some(Resolved(user)) = req.extensions().get::<Resolved>() {
        return Ok(user.clone());
    }
    let auth = req.app_data::<Auth>().ok_or(Rejection::NotConfigured)?;
    let user = match bearer_token(req, auth) {
        Some(token) => Some(bearer_user(auth, &token).await?),
        None => session_user(req, auth).map(Arc::new),
    };
    req.extensions_mut().insert(Resolved(user.clone()));
    Ok(user)
}

fn bearer_token(req: &HttpRequest, auth: &Auth) -> Option<String> {
    if !req.path().starts_with(&auth.config().api_prefix) {
        return None;
    }
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

async fn bearer_user(auth: &Auth, token: &str) -> Result<Arc<User>, Rejection> {
    let now = now();
    if let Some(user) = auth.tokens().get(token, now) {
        return Ok(user);
    }
    let config = auth.config();
    let provider = auth
        .provider()
        .await
        .map_err(|_| Rejection::ProviderUnavailable)?;
    let claims = id_token::validate(
        token,
        &provider,
        auth.http(),
        &Expectations {
            audience: &config.api_audience,
            authorized_party: None,
            nonce: None,
            allowed_tenants: &config.allowed_tenants,
            leeway_secs: config.clock_leeway_secs,
        },
    )
    .await
    .map_err(|e| {
        tracing::warn!(reason = e.reason(), error = %e, "bearer token refused");
        Rejection::InvalidBearer(e)
    })?;
    let mut user = User::from_claims(&claims, 0);
    user.sid = None;
    user.bearer = true;
    let user = Arc::new(user);
    auth.tokens().put(token, user.clone(), claims.exp, now);
    Ok(user)
}

/// The session's user, unless the session has gone idle or outlived its absolute lifetime.
fn session_user(req: &HttpRequest, auth: &Auth) -> Option<User> {
    let session = req.get_session();
    let typed = AuthSession(&session);
    let user = typed.user()?;
    let config = auth.config();
    let now = now();
    let seen = typed.last_seen().unwrap_or(user.signed_in_at);
    let idle = now - seen > config.idle_timeout.as_secs() as i64;
    let too_old = now - user.signed_in_at > config.absolute_timeout.as_secs() as i64;
    if idle || too_old {
        tracing::info!(
            sub = %user.sub,
            reason = if idle { "idle" } else { "absolute" },
            "session expired"
        );
        session.purge();
        return None;
    }
    if now - seen >= SEEN_WRITE_INTERVAL_SECS {
        typed.touch(now);
    }
    Some(user)
}

/// Whether the caller wants JSON rather than a page.
pub fn wants_json(req: &HttpRequest, auth: &Auth) -> bool {
    prefers_json(req.path(), req.headers(), &auth.config().api_prefix)
}

/// The rule behind [`wants_json`], for code that has no `Auth` at hand (middleware).
pub fn prefers_json(
    path: &str,
    headers: &actix_web::http::header::HeaderMap,
    api_prefix: &str,
) -> bool {
    path.starts_with(api_prefix)
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"))
}

/// Turns a rejection into the response the caller should see.
pub async fn reject(req: &HttpRequest, rejection: Rejection) -> HttpResponse {
    let Some(auth) = req.app_data::<Auth>() else {
        tracing::error!("auth module used without Auth::configure");
        return HttpResponse::InternalServerError().finish();
    };
    let json = wants_json(req, auth);
    match rejection {
        Rejection::Anonymous if json => json_error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Sign in, or send a valid Bearer access token.",
            Some("Bearer"),
        ),
        Rejection::Anonymous => {
            let target = req
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str())
                .unwrap_or("/");
            let next: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
            HttpResponse::Found()
                .insert_header((
                    header::LOCATION,
                    format!("{}?next={next}", auth.config().login_path()),
                ))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Rejection::InvalidBearer(e) => json_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            e.reason(),
            Some("Bearer error=\"invalid_token\""),
        ),
        Rejection::Forbidden { user, needed } => {
            tracing::info!(sub = %user.sub, needed = needed.role_name(), path = %req.path(), "access denied");
            auth.events().access_denied(req, &user, needed).await;
            if json {
                json_error(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    &format!("This needs the app role {}.", needed.role_name()),
                    None,
                )
            } else {
                auth.pages().forbidden(req, &user, needed)
            }
        }
        Rejection::ProviderUnavailable => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            "The identity provider is unreachable; try again shortly.",
            None,
        ),
        Rejection::NotConfigured => {
            tracing::error!("auth module used without Auth::configure");
            HttpResponse::InternalServerError().finish()
        }
    }
}

fn json_error(
    status: StatusCode,
    error: &str,
    detail: &str,
    challenge: Option<&str>,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if let Some(challenge) = challenge {
        response.insert_header((header::WWW_AUTHENTICATE, challenge.to_owned()));
    }
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": error, "detail": detail }))
}

async fn rejected(req: &HttpRequest, rejection: Rejection) -> Error {
    InternalError::from_response("request not authorized", reject(req, rejection).await).into()
}

async fn require(req: &HttpRequest, needed: Option<AccessLevel>) -> Result<Arc<User>, Rejection> {
    let user = resolve(req).await?.ok_or(Rejection::Anonymous)?;
    match needed {
        Some(needed) if !user.has(needed) => Err(Rejection::Forbidden { user, needed }),
        _ => Ok(user),
    }
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// The signed-in caller; anonymous requests are turned away.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Arc<User>);

impl FromRequest for CurrentUser {
    type Error = Error;
    type Future = LocalFuture<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match require(&req, None).await {
                Ok(user) => Ok(CurrentUser(user)),
                Err(r) => Err(rejected(&req, r).await),
            }
        })
    }
}

/// The caller if signed in; never rejects for being anonymous.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Arc<User>>);

impl FromRequest for MaybeUser {
    type Error = Error;
    type Future = LocalFuture<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match resolve(&req).await {
                Ok(user) => Ok(MaybeUser(user)),
                Err(r) => Err(rejected(&req, r).await),
            }
        })
    }
}

/// The signed-in caller, who holds role `R` or one above it (`RequireRole<Write>`).
pub struct RequireRole<R: Role> {
    pub user: Arc<User>,
    _role: PhantomData<R>,
}

impl<R: Role> std::ops::Deref for RequireRole<R> {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

impl<R: Role> FromRequest for RequireRole<R> {
    type Error = Error;
    type Future = LocalFuture<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match require(&req, Some(R::LEVEL)).await {
                Ok(user) => Ok(RequireRole {
                    user,
                    _role: PhantomData,
                }),
                Err(r) => Err(rejected(&req, r).await),
            }
        })
    }
}

/// Middleware that guards every route of a scope by role:
/// `web::scope("/dash").wrap(RequireRoleLayer::new(AccessLevel::Read))`.
#[derive(Clone, Copy)]
pub struct RequireRoleLayer {
    needed: AccessLevel,
}

impl RequireRoleLayer {
    pub fn new(needed: AccessLevel) -> Self {
        RequireRoleLayer { needed }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireRoleLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireRoleMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireRoleMiddleware {
            service: Rc::new(service),
            needed: self.needed,
        }))
    }
}

pub struct RequireRoleMiddleware<S> {
    service: Rc<S>,
    needed: AccessLevel,
}

impl<S, B> Service<ServiceRequest> for RequireRoleMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalFuture<Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let needed = self.needed;
        Box::pin(async move {
            let http = req.request().clone();
            match require(&http, Some(needed)).await {
                Ok(_) => {
                    // Routing below needs the only reference to the request.
                    drop(http);
                    service.call(req).await.map(|r| r.map_into_left_body())
                }
                Err(rejection) => {
                    let response = reject(&http, rejection).await;
                    drop(http);
                    Ok(req.into_response(response).map_into_right_body())
                }
            }
        })
    }
}
