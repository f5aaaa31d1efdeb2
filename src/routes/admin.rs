//! The admin console: who is signed in right now.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use sqlx::SqlitePool;

use crate::auth::id_token::now;
use crate::auth::{Admin, RequireRole, User};
use crate::error::AppError;
use crate::templates::{Templates, base_context, format_time};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(admin));
}

#[derive(Serialize)]
struct SessionRow {
    name: String,
    preferred_username: String,
    roles: String,
    signed_in_at: String,
    last_active: String,
    expires_at: String,
}

async fn admin(
    req: HttpRequest,
    _admin: RequireRole<Admin>,
    pool: web::Data<SqlitePool>,
    templates: web::Data<Arc<Templates>>,
) -> Result<HttpResponse, AppError> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT state, updated_at, expires_at FROM sessions \
         WHERE expires_at > ? AND user_sub IS NOT NULL ORDER BY updated_at DESC LIMIT 200",
    )
    .bind(now())
    .fetch_all(pool.get_ref())
    .await?;
    let sessions: Vec<SessionRow> = rows
        .into_iter()
        .filter_map(|(state, updated_at, expires_at)| {
            let state: std::collections::HashMap<String, String> =
                serde_json::from_str(&state).ok()?;
            let user: User = serde_json::from_str(state.get("rg.user")?).ok()?;
            Some(SessionRow {
                name: user.name,
                preferred_username: user.preferred_username.unwrap_or_default(),
                roles: user.roles.join(", "),
                signed_in_at: format_time(user.signed_in_at),
                last_active: format_time(updated_at),
                expires_at: format_time(expires_at),
            })
        })
        .collect();
    let mut ctx = base_context(&req);
    ctx.insert("sessions", &sessions);
    Ok(templates.page(StatusCode::OK, "admin.html", &ctx))
}
