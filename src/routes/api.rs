//! JSON API. Works with the session cookie or a Bearer access token.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::auth::CurrentUser;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/me", web::get().to(me));
}

#[derive(Serialize)]
struct Me<'a> {
    sub: &'a str,
    name: &'a str,
    preferred_username: Option<&'a str>,
    roles: &'a [String],
    tid: Option<&'a str>,
    oid: Option<&'a str>,
    access_level: Option<&'static str>,
}

async fn me(user: CurrentUser) -> HttpResponse {
    let u = &user.0;
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Me {
            sub: &u.sub,
            name: &u.name,
            preferred_username: u.preferred_username.as_deref(),
            roles: &u.roles,
            tid: u.tid.as_deref(),
            oid: u.oid.as_deref(),
            access_level: u.level.map(|l| l.label()),
        })
}
