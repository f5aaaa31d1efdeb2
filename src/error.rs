//! Application errors mapped to HTTP in one place: a page for browsers, JSON for the API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use tera::Context;

use crate::templates::Templates;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let (template, title) = match self {
            AppError::NotFound => ("not_found.html", "Page not found"),
            AppError::Database(_) => ("error.html", "The database is unavailable"),
        };
        match Templates::global() {
            Some(t) => {
                let mut ctx = Context::new();
                ctx.insert("title", title);
                ctx.insert("status", &status.as_u16());
                t.page(status, template, &ctx)
            }
            None => HttpResponse::build(status).body(title),
        }
    }
}
