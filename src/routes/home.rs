//! The signed-in home page: who you are, your roles, the token claims that matter.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::templates::{Templates, base_context};
use rolegate_auth::CurrentUser;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index));
}

async fn index(
    req: HttpRequest,
    user: CurrentUser,
    templates: web::Data<Arc<Templates>>,
) -> HttpResponse {
    let user = &user.0;
    let mut ctx = base_context(&req);
    ctx.insert(
        "signed_in_at",
        &crate::templates::format_time(user.signed_in_at),
    );
    ctx.insert(
        "token_expires_at",
        &crate::templates::format_time(user.token_expires_at),
    );
    templates.page(StatusCode::OK, "index.html", &ctx)
}
