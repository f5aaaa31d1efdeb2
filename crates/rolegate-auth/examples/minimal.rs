//! The smallest app behind rolegate-auth: sign-in, one page per protection style, in-memory
//! sessions. With `dev/idp` running: `AUTHORITY=http://127.0.0.1:9400 CLIENT_ID=rolegate-dev
//! CLIENT_SECRET=rolegate-dev-secret cargo run -p rolegate-auth --example minimal`.

use actix_session::SessionMiddleware;
use actix_web::{App, HttpServer, cookie::Key, web};
use rolegate_auth::{Auth, AuthConfig, CurrentUser, DefaultPages, MemoryStore, NoEvents};
use rolegate_auth::{RequireRole, RuleSpec, Write};

/// The auth module from three settings; `/reports/**` needs `DemoApp.Read` by rule.
pub fn auth(
    authority: &str,
    id: &str,
    secret: &str,
    public_url: &str,
) -> Result<Auth, Box<dyn std::error::Error + Send + Sync>> {
    let config = AuthConfig::builder(authority, id, public_url)
        .client_secret(secret)
        .rules(vec![RuleSpec::role("/reports/**", "DemoApp.Read")])
        .build()?;
    Ok(Auth::new(config, DefaultPages, NoEvents)?)
}

/// The routes: an extractor guard, a role guard, and a page only a rule protects.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/",
        web::get().to(|u: CurrentUser| async move { format!("Hello {}", u.name) }),
    )
    .route(
        "/write",
        web::get().to(|u: RequireRole<Write>| async move { format!("{} may write", u.name) }),
    )
    .route("/reports", web::get().to(|| async { "reports" }));
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let (authority, id, secret) = (var("AUTHORITY"), var("CLIENT_ID"), var("CLIENT_SECRET"));
    let auth =
        auth(&authority, &id, &secret, "http://127.0.0.1:8000").map_err(std::io::Error::other)?;
    let (store, key) = (MemoryStore::new(), Key::generate());
    // Single sign-out: the provider's back- and front-channel logouts end sessions here.
    let auth = auth.with_session_end(store.clone());
    HttpServer::new(move || {
        App::new()
            .wrap(auth.route_rules())
            .wrap(SessionMiddleware::new(store.clone(), key.clone()))
            .configure(|cfg| auth.configure(cfg))
            .configure(routes)
    })
    .bind(("127.0.0.1", 8000))?
    .run()
    .await
}
