//! `/reports`: notes per author. The handler has no guard of its own: the route rule
//! `/reports/**` in `appsettings.json` is what protects it (the third way to guard a route).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use rolegate_auth::MaybeUser;

use crate::db::Pool;
use crate::error::AppError;
use crate::templates::{Templates, base_context};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports", web::get().to(index));
}

async fn index(
    req: HttpRequest,
    _user: MaybeUser,
    pool: web::Data<Pool>,
    templates: web::Data<Arc<Templates>>,
) -> Result<HttpResponse, AppError> {
    let rows = crate::db::notes::count_by_author(&pool).await?;
    let mut ctx = base_context(&req);
    ctx.insert("rows", &rows);
    Ok(templates.page(StatusCode::OK, "reports.html", &ctx))
}
