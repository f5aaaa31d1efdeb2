//! Row 0 of `bench/run.sh`: a bare actix-web 4 handler (`GET /` → `ok`), nothing else, with the
//! same worker count rule as rolegate (`BARE_WORKERS`, else one per core), so every other row
//! can be read as a fraction of what actix-web itself does on this machine.
//!
//! `cargo build --release --example bare`, then `target/release/examples/bare 127.0.0.1:8080`.

use actix_web::{App, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let workers = std::env::var("BARE_WORKERS")
        .ok()
        .and_then(|w| w.parse::<usize>().ok())
        .filter(|w| *w > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    HttpServer::new(|| App::new().route("/", web::get().to(|| async { "ok" })))
        .workers(workers)
        .bind(addr)?
        .run()
        .await
}
