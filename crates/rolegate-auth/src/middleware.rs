//! Middleware: [`RequireRoleLayer`] guards one scope by role; [`RouteRules`] enforces the
//! configured route rules on everything it wraps.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpRequest};

use crate::Auth;
use crate::caller::routed_path;
use crate::extract::{LocalFuture, require};
use crate::reject::{Rejection, respond};
use crate::rules::Access;

/// What a wrapped request must satisfy.
#[derive(Clone)]
enum Check {
    /// One role for every route of the scope.
    Role(&'static str),
    /// The configured rule table; the [`Auth`] is held because the scope's app data is not
    /// reachable from middleware that wraps the scope itself.
    Rules(Auth),
}

/// Guards every route of a scope by role:
/// `web::scope("/dash").wrap(RequireRoleLayer::new(Read::NAME))`.
#[derive(Clone)]
pub struct RequireRoleLayer {
    check: Check,
}

impl RequireRoleLayer {
    /// Requires `role` (a value of the hierarchy, e.g. `Read::NAME`) or one above it.
    pub fn new(role: &'static str) -> Self {
        RequireRoleLayer {
            check: Check::Role(role),
        }
    }
}

/// Enforces `authorization.rules` and the default on every request it wraps; the module's own
/// sign-in, callback and sign-out routes always pass. Build it with [`Auth::route_rules`] and
/// wrap it inside the session middleware. Rules and code guards compose: both must allow.
#[derive(Clone)]
pub struct RouteRules {
    check: Check,
}

impl RouteRules {
    pub(crate) fn new(auth: Auth) -> Self {
        RouteRules {
            check: Check::Rules(auth),
        }
    }
}

macro_rules! transform {
    ($ty:ty) => {
        impl<S, B> Transform<S, ServiceRequest> for $ty
        where
            S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
            B: 'static,
        {
            type Response = ServiceResponse<EitherBody<B>>;
            type Error = Error;
            type Transform = CheckMiddleware<S>;
            type InitError = ();
            type Future = Ready<Result<Self::Transform, ()>>;

            fn new_transform(&self, service: S) -> Self::Future {
                ready(Ok(CheckMiddleware {
                    service: Rc::new(service),
                    check: self.check.clone(),
                }))
            }
        }
    };
}
transform!(RequireRoleLayer);
transform!(RouteRules);

/// The service behind both middlewares.
#[doc(hidden)]
pub struct CheckMiddleware<S> {
    service: Rc<S>,
    check: Check,
}

/// Whether `req` may pass `check`; the caller is resolved only when the check needs one.
async fn allowed(check: &Check, req: &HttpRequest) -> Result<(), (Option<Auth>, Rejection)> {
    let reject = |auth: &Auth, r| (Some(auth.clone()), r);
    match check {
        Check::Role(role) => {
            let auth = req
                .app_data::<Auth>()
                .ok_or((None, Rejection::NotConfigured))?;
            require(req, auth, Some(role))
                .await
                .map(drop)
                .map_err(|r| reject(auth, r))
        }
        Check::Rules(auth) => {
            let config = auth.config();
            let path = routed_path(req);
            if path == config.login_path()
                || path == config.redirect_path()
                || path == config.logout_path()
                || (auth.single_sign_out()
                    && (path == config.backchannel_logout_path()
                        || path == config.frontchannel_logout_path()))
            {
                return Ok(());
            }
            let needed = match config.rules().required(req.method().as_str(), path) {
                Access::Anonymous => return Ok(()),
                Access::Deny => return Err(reject(auth, Rejection::Denied)),
                Access::SignedIn => None,
                Access::Role(name) => Some(name.as_str()),
            };
            require(req, auth, needed)
                .await
                .map(drop)
                .map_err(|r| reject(auth, r))
        }
    }
}

impl<S, B> Service<ServiceRequest> for CheckMiddleware<S>
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
        let check = self.check.clone();
        Box::pin(async move {
            let http = req.request().clone();
            let outcome = match allowed(&check, &http).await {
                Ok(()) => Ok(()),
                Err((Some(auth), rejection)) => Err(respond(&http, &auth, rejection).await),
                Err((None, rejection)) => Err(respond_unconfigured(rejection)),
            };
            // Routing below needs the only reference to the request.
            drop(http);
            match outcome {
                Ok(()) => service.call(req).await.map(|r| r.map_into_left_body()),
                Err(response) => Ok(req.into_response(response).map_into_right_body()),
            }
        })
    }
}

fn respond_unconfigured(rejection: Rejection) -> actix_web::HttpResponse {
    tracing::error!(
        ?rejection,
        "RequireRoleLayer used on an app without Auth::configure"
    );
    actix_web::HttpResponse::InternalServerError().finish()
}
