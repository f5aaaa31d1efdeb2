//! Development with incomplete settings: every page says what to fill in (503).

use std::net::TcpListener;
use std::sync::Arc;

use actix_files::Files;
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::settings::Problem;
use crate::telemetry::{log_requests, security_headers};
use crate::templates::{Templates, base_context};

pub fn server(
    problems: Vec<Problem>,
    listener: TcpListener,
    templates: Arc<Templates>,
) -> anyhow::Result<Server> {
    let problems = web::Data::new(problems);
    let templates = web::Data::new(templates);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(security_headers(false, None))
            .wrap(from_fn(log_requests))
            .app_data(problems.clone())
            .app_data(templates.clone())
            .service(Files::new("/static", "static"))
            .route("/healthz", web::get().to(health))
            .default_service(web::to(page))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

async fn health() -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "misconfigured"}))
}

async fn page(
    req: HttpRequest,
    problems: web::Data<Vec<Problem>>,
    templates: web::Data<Arc<Templates>>,
) -> HttpResponse {
    let mut ctx = base_context(&req);
    let items: Vec<serde_json::Value> = problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "key": p.key,
                "message": p.message,
                "env": crate::settings::env_var(&p.key),
            })
        })
        .collect();
    ctx.insert("problems", &items);
    templates.page(StatusCode::SERVICE_UNAVAILABLE, "config_error.html", &ctx)
}
