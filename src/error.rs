//! Errors mapped to HTTP in one place: [`AppError`] renders a page, [`ApiError`] renders the
//! API's stable JSON shape `{"error": "...", "detail": "..."}` (the auth crate's `ErrorBody`).
//! Which of the two a caller gets is decided by `rolegate_auth::wants_json`, everywhere.

use actix_web::error::{JsonPayloadError, QueryPayloadError, UrlencodedError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use tera::Context;

use crate::telemetry::Escaped;
use crate::templates::Templates;

/// A failed page request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The form body is over [`FORM_LIMIT`].
    #[error("form body over the {} KB limit", FORM_LIMIT / 1024)]
    TooLarge,
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A dependency (database, Redis) is down; the message names it.
    #[error("{0}")]
    Unavailable(String),
    /// A part of a page failed to render (the template and Tera's reason are logged).
    #[error("template {0} failed to render")]
    Render(&'static str),
}

impl From<sqlx::Error> for AppError {
    /// Counted in `rolegate_database_errors_total` on the way.
    fn from(e: sqlx::Error) -> Self {
        crate::metrics::count_database_error();
        AppError::Database(e)
    }
}

impl From<crate::session_store::StoreError> for AppError {
    fn from(e: crate::session_store::StoreError) -> Self {
        AppError::Unavailable(e.to_string())
    }
}

impl From<crate::notes::NotesError> for AppError {
    fn from(e: crate::notes::NotesError) -> Self {
        use crate::notes::NotesError;
        match e {
            NotesError::NotFound => AppError::NotFound,
            NotesError::Database(e) => e.into(),
            NotesError::Invalid(errors) => AppError::BadRequest(join_field_errors(&errors)),
        }
    }
}

impl From<crate::notes::NotesError> for ApiError {
    fn from(e: crate::notes::NotesError) -> Self {
        use crate::notes::NotesError;
        match e {
            NotesError::NotFound => ApiError::not_found(),
            NotesError::Database(e) => e.into(),
            NotesError::Invalid(errors) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                join_field_errors(&errors),
            ),
        }
    }
}

fn join_field_errors(errors: &crate::db::notes::FieldErrors) -> String {
    errors
        .iter()
        .map(|(f, m)| format!("{f}: {m}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl From<crate::session_store::StoreError> for ApiError {
    fn from(e: crate::session_store::StoreError) -> Self {
        tracing::error!(error = %Escaped(&e), "session store error");
        ApiError::unavailable("The session store is unavailable; try again shortly.")
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Database(_) | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %Escaped(self), "request failed");
        } else {
            tracing::warn!(error = %Escaped(self), "request refused");
        }
        let (template, title, message) = match self {
            AppError::NotFound => ("not_found.html", "Page not found", "There is nothing at this address.".to_owned()),
            AppError::Csrf => (
                "error.html",
                "This form has expired",
                "The form was missing its security token or it did not match your session. Go back, reload the page and try again.".to_owned(),
            ),
            AppError::BadRequest(why) => ("error.html", "The request could not be understood", why.clone()),
            AppError::TooLarge => (
                "error.html",
                "The request is too large",
                format!("A form may send at most {} KB. Shorten the text and try again.", FORM_LIMIT / 1024),
            ),
            AppError::Database(_) => (
                "error.html",
                "The database is unavailable",
                "Please try again in a minute. If it keeps happening, tell the administrator.".to_owned(),
            ),
            AppError::Unavailable(_) => (
                "error.html",
                "A service rolegate needs is unavailable",
                "The session store is not answering. Please try again in a minute; nothing you did caused this.".to_owned(),
            ),
            AppError::Render(_) => (
                "error.html",
                "The page could not be shown",
                "Something went wrong on our side while building this page. Please tell the administrator.".to_owned(),
            ),
        };
        match Templates::global() {
            Some(t) => {
                let mut ctx = Context::new();
                ctx.insert("title", title);
                ctx.insert("message", &message);
                ctx.insert("status", &status.as_u16());
                t.page(status, template, &ctx)
            }
            None => HttpResponse::build(status).body(title),
        }
    }
}

/// A failed API request.
#[derive(Debug, thiserror::Error)]
#[error("{error}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            detail: detail.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such note.")
    }

    pub fn unavailable(detail: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Cookie-authenticated writes need the X-CSRF-Token header (see csrf_token in /api/me).",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        crate::metrics::count_database_error();
        tracing::error!(error = %Escaped(&e), "database error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The database is unavailable.",
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        rolegate_auth::json_error(self.status, self.error, &self.detail)
    }
}

/// Largest form body (URL-encoded) accepted: 16 KB, so no form post costs much to read. A
/// note of 10,000 ASCII characters with a 200-character title fits; browsers percent-encode
/// other characters at 6 to 12 bytes each, so a form note of non-ASCII text is refused (413)
/// well before 10,000 characters: the JSON API takes those.
pub const FORM_LIMIT: usize = 16 * 1024;

/// Largest JSON body accepted: 64 KB, room for a note of 10,000 characters of UTF-8 text, or
/// of BMP characters written as `\uXXXX` escapes (60,000 bytes).
pub const JSON_LIMIT: usize = 64 * 1024;

/// Extractor settings whose errors use the shapes above instead of actix's plain text.
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(FORM_LIMIT)
            .error_handler(form_error),
    )
    .app_data(web::QueryConfig::default().error_handler(query_error))
    .app_data(
        web::JsonConfig::default()
            .limit(JSON_LIMIT)
            .error_handler(json_error),
    );
}

fn form_error(err: UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    match err {
        UrlencodedError::Overflow { .. } => AppError::TooLarge.into(),
        other => AppError::BadRequest(format!("The form could not be read: {other}")).into(),
    }
}

fn query_error(err: QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    if rolegate_auth::wants_json(req) {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("Invalid query: {err}"),
        )
        .into()
    } else {
        AppError::BadRequest(format!("Invalid query string: {err}")).into()
    }
}

fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json.",
        ),
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "The body is larger than the {} KB ({JSON_LIMIT} bytes) limit.",
                    JSON_LIMIT / 1024
                ),
            )
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
        }
        other => ApiError::new(StatusCode::BAD_REQUEST, "bad_json", other.to_string()),
    };
    api.into()
}

/// Turns a session-store failure raised inside actix-session (a bare 500 otherwise) into a 503
/// page or JSON that says which dependency is down.
pub async fn store_errors(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let json = rolegate_auth::wants_json(req.request());
    match next.call(req).await {
        Err(e) if e.to_string().contains(crate::session_store::UNAVAILABLE) => {
            tracing::error!(error = %Escaped(&e), "session store unavailable");
            Err(if json {
                ApiError::unavailable("The session store is unavailable; try again shortly.").into()
            } else {
                AppError::Unavailable(e.to_string()).into()
            })
        }
        other => other,
    }
}
