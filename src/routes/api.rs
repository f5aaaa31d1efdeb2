//! JSON API. Works with the session cookie or a Bearer access token; cookie-authenticated
//! writes must send the session's CSRF token in `X-CSRF-Token`.

use crate::db::Pool;
use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::audit::Audit;
use crate::csrf;
use crate::db::notes::{self, NewNote};
use crate::error::ApiError;
use crate::notes::Via;
use crate::routes::notes::PageQuery;
use rolegate_auth::{Admin, CurrentUser, Read, RequireRole, User, Write};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/me", web::get().to(me))
        .route("/api/notes", web::get().to(list))
        .route("/api/notes", web::post().to(create))
        .route("/api/notes/{id}", web::delete().to(delete));
}

#[derive(Serialize)]
struct Me<'a> {
    sub: &'a str,
    name: &'a str,
    preferred_username: Option<&'a str>,
    roles: &'a [String],
    tid: Option<&'a str>,
    oid: Option<&'a str>,
    access_level: Option<&'a str>,
    /// An application's own token (client credentials), not a person.
    app_only: bool,
    /// The client that obtained the Bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    azp: Option<&'a str>,
    /// For cookie-authenticated clients: the token their writes must send.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

async fn me(user: CurrentUser, session: Session) -> HttpResponse {
    let u = &user.0;
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Me {
            sub: &u.sub,
            name: &u.name,
            preferred_username: u.preferred_username.as_deref(),
            roles: &u.roles,
            tid: u.tid.as_deref(),
            oid: u.oid.as_deref(),
            access_level: u.role().map(|_| crate::templates::access_label(u)),
            app_only: u.app_only,
            azp: u.azp.as_deref(),
            csrf_token: (!u.bearer).then(|| csrf::token(&session)),
        })
}

async fn list(
    _user: RequireRole<Read>,
    query: web::Query<PageQuery>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, ApiError> {
    let page = query.into_inner().page_or_first();
    let (notes, more) = notes::page(&pool, page).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "notes": notes, "page": page, "more": more })))
}

/// Bearer callers carry no ambient credential, so only cookie sessions need the token.
fn check_csrf(req: &HttpRequest, session: &Session, user: &User) -> Result<(), ApiError> {
    if user.bearer {
        return Ok(());
    }
    let presented = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok());
    csrf::check(req, session, presented, user)
        .then_some(())
        .ok_or_else(ApiError::csrf)
}

async fn create(
    user: RequireRole<Write>,
    req: HttpRequest,
    session: Session,
    body: web::Json<NewNote>,
    pool: web::Data<Pool>,
    audit: web::Data<Audit>,
) -> Result<HttpResponse, ApiError> {
    check_csrf(&req, &session, &user)?;
    let note =
        crate::notes::create(&pool, &audit, &req, &user, body.into_inner(), Via::Api).await?;
    Ok(HttpResponse::Created().json(note))
}

async fn delete(
    user: RequireRole<Admin>,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    pool: web::Data<Pool>,
    audit: web::Data<Audit>,
) -> Result<HttpResponse, ApiError> {
    check_csrf(&req, &session, &user)?;
    let id = path.into_inner();
    crate::notes::delete(&pool, &audit, &req, &user, &id, Via::Api).await?;
    Ok(HttpResponse::NoContent().finish())
}
