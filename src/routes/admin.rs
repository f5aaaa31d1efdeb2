//! The admin console: active sessions with revoke, the audit log with filters, and a chart.

use std::sync::Arc;

use crate::db::Pool;
use actix_session::{Session, SessionExt};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use tera::Context;

use crate::admin_views::{AdminViews, Part};
use crate::audit::Audit;
use crate::chart::Rendered;
use crate::clock::now;
use crate::csrf::{self, CsrfForm};
use crate::db::audit::{self as audit_db, EVENTS, Filter};
use crate::error::AppError;
use crate::routes::notes::{check_csrf, see_other};
use crate::session_store::Sessions;
use crate::templates::{Templates, base_context, format_time, url_path};
use rolegate_auth::{Admin, RequireRole};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(admin))
        .route(
            "/admin/sessions/{id}/revoke",
            web::post().to(revoke_session),
        )
        .route("/admin/users/{sub}/revoke", web::post().to(revoke_user));
}

/// Sessions the page lists: the most recently active ones (`rolegate sessions list` shows all).
/// A page, not the whole table: with 100,000 sessions the page stays one indexed read.
const ADMIN_SESSIONS: i64 = 50;

#[derive(Deserialize)]
struct AdminQuery {
    #[serde(default)]
    event: String,
    #[serde(default)]
    user: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<i64>,
}

/// A session row; the two revoke URLs are built here, percent-encoded, because the id and
/// above all the `sub` (any string the provider sends) must stay one path segment each.
#[derive(Serialize)]
struct SessionView {
    revoke_url: String,
    revoke_user_url: String,
    name: String,
    preferred_username: String,
    roles: String,
    signed_in_at: String,
    last_seen: String,
    client_ip: String,
    user_agent: String,
}

#[derive(Serialize)]
struct EntryView {
    at: String,
    event: String,
    user: String,
    client_ip: String,
    request_id: String,
    detail: String,
}

/// Parses a `YYYY-MM-DD` date into the unix time of its start (UTC).
fn day_start(text: &str, key: &str) -> Result<Option<i64>, AppError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text.trim(), &format)
        .map(|d| Some(d.midnight().assume_utc().unix_timestamp()))
        .map_err(|_| AppError::BadRequest(format!("{key} must be a date like 2026-11-23")))
}

async fn admin(
    _admin: RequireRole<Admin>,
    req: HttpRequest,
    query: web::Query<AdminQuery>,
    pool: web::Data<Pool>,
    sessions: web::Data<Sessions>,
    templates: web::Data<Arc<Templates>>,
    views: web::Data<AdminViews>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    if !q.event.is_empty() && !EVENTS.contains(&q.event.as_str()) {
        return Err(AppError::BadRequest(format!("unknown event {:?}", q.event)));
    }
    let filter = Filter {
        event: q.event.clone(),
        user: q.user.trim().to_owned(),
        from: day_start(&q.from, "from")?,
        to: day_start(&q.to, "to")?.map(|t| t + 86_400),
    };
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let sessions_part = sessions_table(&views, &sessions, &templates).await?;
    let audit_part = audit_rows(&views, filter, page, &pool, &templates).await?;
    let chart = views.chart.get(&pool, now()).await?;
    let chart_rows = chart_rows(&views, &chart, &templates)?;

    let mut ctx = base_context(&req);
    ctx.insert("sessions_html", &*sessions_part.html);
    ctx.insert("audit_rows_html", &*audit_part.html);
    ctx.insert("chart_rows_html", &*chart_rows.html);
    ctx.insert("more", &audit_part.flag);
    ctx.insert("page", &page);
    ctx.insert("events", &EVENTS);
    ctx.insert(
        "filter",
        &serde_json::json!({"event": q.event, "user": q.user, "from": q.from, "to": q.to}),
    );
    // The pager's links keep the filter, percent-encoded (a user filter may hold `&` or `#`).
    let pager_query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("event", &q.event)
        .append_pair("user", &q.user)
        .append_pair("from", &q.from)
        .append_pair("to", &q.to)
        .finish();
    ctx.insert("pager_query", &pager_query);
    ctx.insert("chart_svg", &chart.svg);
    // The page's one revoke form (`base_context` puts the same token in the navbar's form).
    ctx.insert("csrf_token", &csrf::token(&req.get_session()));
    Ok(templates.page(StatusCode::OK, "admin.html", &ctx))
}

/// The sessions table (`templates/admin/sessions.html`), rendered again only when stale.
async fn sessions_table(
    views: &AdminViews,
    sessions: &Sessions,
    templates: &Templates,
) -> Result<Part, AppError> {
    // The stamp is read before the query: a write that lands during it makes the part stale.
    let stamp = crate::session_store::changes();
    if let Some(part) = views.sessions.fresh(&(), stamp) {
        return Ok(part);
    }
    let rows: Vec<SessionView> = sessions
        .list_active(ADMIN_SESSIONS)
        .await?
        .into_iter()
        .map(|s| SessionView {
            revoke_url: url_path(&["admin", "sessions", &s.id, "revoke"]),
            revoke_user_url: url_path(&["admin", "users", &s.user_sub, "revoke"]),
            name: s.user.name.clone(),
            preferred_username: s.user.preferred_username.clone().unwrap_or_default(),
            roles: s.user.roles.join(", "),
            signed_in_at: format_time(s.user.signed_in_at),
            last_seen: format_time(s.last_seen),
            client_ip: s.client.ip,
            user_agent: s.client.user_agent,
        })
        .collect();
    let capped = rows.len() as i64 >= ADMIN_SESSIONS;
    let mut ctx = Context::new();
    ctx.insert("sessions_capped", &capped);
    ctx.insert("sessions", &rows);
    let part = Part::new(
        templates.fragment("admin/sessions.html", &ctx)?,
        false,
        stamp,
    );
    views.sessions.keep((), part.clone());
    Ok(part)
}

/// One page of audit rows (`templates/admin/audit_rows.html`); `flag` says whether an older
/// page exists.
async fn audit_rows(
    views: &AdminViews,
    filter: Filter,
    page: i64,
    pool: &Pool,
    templates: &Templates,
) -> Result<Part, AppError> {
    let stamp = audit_db::writes();
    let key = (filter, page);
    if let Some(part) = views.audit.fresh(&key, stamp) {
        return Ok(part);
    }
    let (entries, more) = audit_db::search(pool, &key.0, page).await?;
    let entries: Vec<EntryView> = entries
        .into_iter()
        .map(|e| EntryView {
            at: format_time(e.at),
            event: e.event,
            user: match (e.user_name, e.user_id) {
                (Some(n), Some(id)) => format!("{n} ({id})"),
                (Some(n), None) => n,
                (None, Some(id)) => id,
                (None, None) => String::new(),
            },
            client_ip: e.client_ip.unwrap_or_default(),
            request_id: e.request_id.unwrap_or_default(),
            detail: e.detail,
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("entries", &entries);
    let part = Part::new(
        templates.fragment("admin/audit_rows.html", &ctx)?,
        more,
        stamp,
    );
    views.audit.keep(key, part.clone());
    Ok(part)
}

/// The chart table's rows (`templates/admin/chart_rows.html`) for one chart rendering.
fn chart_rows(
    views: &AdminViews,
    chart: &Arc<Rendered>,
    templates: &Templates,
) -> Result<Part, AppError> {
    if let Some(part) = views.chart_rows.fresh(&chart.serial, 0) {
        return Ok(part);
    }
    let mut ctx = Context::new();
    ctx.insert("chart_table", &chart.table);
    let part = Part::new(templates.fragment("admin/chart_rows.html", &ctx)?, false, 0);
    views.chart_rows.keep(chart.serial, part.clone());
    Ok(part)
}

async fn revoke_session(
    admin: RequireRole<Admin>,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
    sessions: web::Data<Sessions>,
    audit: web::Data<Audit>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &session, &form.csrf_token, &admin)?;
    let id = path.into_inner();
    let sub = sessions.revoke(&id).await?.ok_or(AppError::NotFound)?;
    audit
        .record(
            &req,
            crate::db::audit::Event::SessionRevoked,
            Some(&admin),
            audit_db::one_session_revoked(&id, &sub),
        )
        .await;
    Ok(see_other("/admin"))
}

async fn revoke_user(
    admin: RequireRole<Admin>,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
    sessions: web::Data<Sessions>,
    audit: web::Data<Audit>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &session, &form.csrf_token, &admin)?;
    // `web::Path` has percent-decoded the segment: this is the `sub` exactly as stored.
    let sub = path.into_inner();
    let count = sessions.revoke_user(&sub).await?;
    audit
        .record(
            &req,
            crate::db::audit::Event::SessionRevoked,
            Some(&admin),
            audit_db::user_sessions_revoked(count, &sub),
        )
        .await;
    Ok(see_other("/admin"))
}
