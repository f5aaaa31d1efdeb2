//! rolegate's own pages and API, one file per area.

pub mod admin;
pub mod api;
pub mod health;
pub mod home;
pub mod notes;
pub mod profile;
pub mod reports;

use std::sync::Arc;

use actix_files::Files;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::templates::{Templates, base_context};
use rolegate_auth::{MaybeUser, Read, RequireRoleLayer, Role};

/// Registers the session-backed routes of this crate (the auth routes come from
/// `Auth::configure`; `/healthz` and `/static` are mounted outside the session layer).
pub fn configure(cfg: &mut web::ServiceConfig) {
    home::configure(cfg);
    api::configure(cfg);
    admin::configure(cfg);
    notes::configure(cfg);
    reports::configure(cfg);
    profile::configure(cfg);
    dash(cfg);
}

/// 404 page for any unknown route (JSON under `/api/`).
pub async fn not_found(
    req: HttpRequest,
    _user: MaybeUser,
    templates: web::Data<Arc<Templates>>,
) -> HttpResponse {
    if rolegate_auth::wants_json(&req) {
        return rolegate_auth::json_error(StatusCode::NOT_FOUND, "not_found", "No such endpoint.");
    }
    let mut ctx = base_context(&req);
    ctx.insert("title", "Page not found");
    templates.page(StatusCode::NOT_FOUND, "not_found.html", &ctx)
}

/// Where the dashboard's files live; `/static` never serves this folder.
pub const DASH_DIR: &str = "static/dash";

/// `/dash/`: a static dashboard, every file behind the Read role (one wrap guards them all).
fn dash(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/dash")
            .wrap(RequireRoleLayer::new(Read::NAME))
            .service(Files::new("/", DASH_DIR).index_file("index.html")),
    );
}

/// Public assets under `/static`, without the guarded dashboard folder.
pub fn static_files() -> Files {
    Files::new("/static", "static").path_filter(|path, _| !path.starts_with("dash"))
}
