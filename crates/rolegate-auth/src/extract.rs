//! Extractors to put on handlers: [`CurrentUser`], [`MaybeUser`], [`RequireRole<R>`].

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::{Error, FromRequest, HttpRequest};

use crate::Auth;
use crate::caller::resolve;
use crate::reject::{Rejection, respond};
use crate::roles::Role;
use crate::session::User;

pub(crate) type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// The signed-in caller, checked against `needed` when given.
pub(crate) async fn require(
    req: &HttpRequest,
    auth: &Auth,
    needed: Option<&str>,
) -> Result<Arc<User>, Rejection> {
    let user = resolve(req, auth).await?.ok_or(Rejection::Anonymous)?;
    match needed {
        Some(name) if !auth.config().roles().contains(name) => {
            Err(Rejection::UnknownRole(name.to_owned()))
        }
        Some(name) if !user.has_role(name) => Err(Rejection::Forbidden {
            user,
            needed: name.to_owned(),
        }),
        _ => Ok(user),
    }
}

/// Runs `check` with the app's [`Auth`], turning a rejection into the error response.
async fn extract<T, F, Fut>(req: HttpRequest, check: F) -> Result<T, Error>
where
    F: FnOnce(HttpRequest, Auth) -> Fut,
    Fut: Future<Output = Result<T, Rejection>>,
{
    let Some(auth) = req.app_data::<Auth>().cloned() else {
        let response = respond_without_auth();
        return Err(InternalError::from_response("auth not configured", response).into());
    };
    match check(req.clone(), auth.clone()).await {
        Ok(value) => Ok(value),
        Err(rejection) => {
            let response = respond(&req, &auth, rejection).await;
            Err(InternalError::from_response("request not authorized", response).into())
        }
    }
}

fn respond_without_auth() -> actix_web::HttpResponse {
    tracing::error!("rolegate-auth extractor used without Auth::configure on the app");
    actix_web::HttpResponse::InternalServerError().finish()
}

/// The signed-in caller; anonymous requests are turned away (302 to sign-in, or 401 JSON).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Arc<User>);

impl std::ops::Deref for CurrentUser {
    type Target = User;
    fn deref(&self) -> &User {
        &self.0
    }
}

impl FromRequest for CurrentUser {
    type Error = Error;
    type Future = LocalFuture<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(extract(req.clone(), |req, auth| async move {
            require(&req, &auth, None).await.map(CurrentUser)
        }))
    }
}

/// The caller if signed in; never rejects for being anonymous.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Arc<User>>);

impl FromRequest for MaybeUser {
    type Error = Error;
    type Future = LocalFuture<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(extract(req.clone(), |req, auth| async move {
            resolve(&req, &auth).await.map(MaybeUser)
        }))
    }
}

/// The signed-in caller, who holds role `R` or one above it (`RequireRole<Write>`).
pub struct RequireRole<R: Role> {
    /// The caller.
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
        Box::pin(extract(req.clone(), |req, auth| async move {
            require(&req, &auth, Some(R::NAME))
                .await
                .map(|user| RequireRole {
                    user,
                    _role: PhantomData,
                })
        }))
    }
}
