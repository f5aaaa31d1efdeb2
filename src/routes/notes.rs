//! Notes: everyone with Read lists them, Write creates, Admin deletes.

use std::sync::Arc;

use crate::db::Pool;
use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::audit::Audit;
use crate::csrf::{self, CsrfForm};
use crate::db::notes::{self, NewNote, Note};
use crate::error::AppError;
use crate::notes::{NotesError, Via};
use crate::templates::{Templates, base_context, format_time};
use rolegate_auth::{Admin, Read, RequireRole, User, Write};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/notes", web::get().to(list))
        .route("/notes", web::post().to(create))
        .route("/notes/{id}/delete", web::post().to(delete));
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    page: Option<i64>,
}

impl PageQuery {
    pub fn page_or_first(self) -> i64 {
        self.page.unwrap_or(1).clamp(1, 1_000_000)
    }
}

#[derive(Deserialize)]
struct NoteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

/// A note as the page shows it.
#[derive(Serialize)]
struct NoteView {
    id: String,
    title: String,
    body: String,
    author_name: String,
    created_at: String,
}

impl From<Note> for NoteView {
    fn from(n: Note) -> Self {
        NoteView {
            id: n.id,
            title: n.title,
            body: n.body,
            author_name: n.author_name,
            created_at: format_time(n.created_at),
        }
    }
}

/// The form's values and errors when re-rendered after a failed post.
#[derive(Serialize, Default)]
struct FormState {
    title: String,
    body: String,
    errors: Vec<(String, String)>,
}

struct Deps<'a> {
    req: &'a HttpRequest,
    user: &'a User,
    session: &'a Session,
    pool: &'a Pool,
    templates: &'a Templates,
}

async fn render(
    deps: Deps<'_>,
    page: i64,
    form: FormState,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let (list, more) = notes::page(deps.pool, page).await?;
    let mut ctx = base_context(deps.req);
    ctx.insert(
        "notes",
        &list.into_iter().map(NoteView::from).collect::<Vec<_>>(),
    );
    ctx.insert("page", &page);
    ctx.insert("more", &more);
    ctx.insert("can_write", &deps.user.is::<Write>());
    ctx.insert("can_delete", &deps.user.is::<Admin>());
    ctx.insert("csrf_token", &csrf::token(deps.session));
    ctx.insert("form", &form);
    ctx.insert("title_max", &notes::TITLE_MAX);
    ctx.insert("body_max", &notes::BODY_MAX);
    Ok(deps.templates.page(status, "notes.html", &ctx))
}

async fn list(
    user: RequireRole<Read>,
    req: HttpRequest,
    session: Session,
    query: web::Query<PageQuery>,
    pool: web::Data<Pool>,
    templates: web::Data<Arc<Templates>>,
) -> Result<HttpResponse, AppError> {
    let page = query.into_inner().page_or_first();
    let deps = Deps {
        req: &req,
        user: &user,
        session: &session,
        pool: &pool,
        templates: &templates,
    };
    render(deps, page, FormState::default(), StatusCode::OK).await
}

pub fn check_csrf(
    req: &HttpRequest,
    session: &Session,
    presented: &str,
    user: &User,
) -> Result<(), AppError> {
    csrf::check(req, session, Some(presented), user)
        .then_some(())
        .ok_or(AppError::Csrf)
}

async fn create(
    user: RequireRole<Write>,
    req: HttpRequest,
    session: Session,
    form: web::Form<NoteForm>,
    pool: web::Data<Pool>,
    audit: web::Data<Audit>,
    templates: web::Data<Arc<Templates>>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &session, &form.csrf_token, &user)?;
    let submitted = NewNote {
        title: form.title.clone(),
        body: form.body.clone(),
    };
    match crate::notes::create(&pool, &audit, &req, &user, submitted, Via::Page).await {
        Ok(_) => Ok(see_other("/notes")),
        Err(NotesError::Invalid(errors)) => {
            let state = FormState {
                title: form.title.trim().to_owned(),
                body: form.body.trim_end().to_owned(),
                errors: errors.into_iter().map(|(f, m)| (f.to_owned(), m)).collect(),
            };
            let deps = Deps {
                req: &req,
                user: &user,
                session: &session,
                pool: &pool,
                templates: &templates,
            };
            render(deps, 1, state, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete(
    user: RequireRole<Admin>,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
    pool: web::Data<Pool>,
    audit: web::Data<Audit>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &session, &form.csrf_token, &user)?;
    let id = path.into_inner();
    crate::notes::delete(&pool, &audit, &req, &user, &id, Via::Page).await?;
    Ok(see_other("/notes"))
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}
