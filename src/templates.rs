//! Tera pages, loaded once at start-up, and rolegate's implementation of the auth module's pages.

use std::sync::{Arc, OnceLock};

use crate::error::AppError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use rolegate_auth::{
    Admin, Auth, AuthError, AuthPages, LoginPage, SignOutPage, User, resolved_user,
};
use tera::{Context, Tera};

/// The compiled templates.
pub struct Templates {
    tera: Tera,
}

static GLOBAL: OnceLock<Arc<Templates>> = OnceLock::new();

impl Templates {
    /// Loads `templates/**/*.html` from `dir`; a syntax error fails start-up.
    pub fn load(dir: &str) -> anyhow::Result<Arc<Templates>> {
        if let Some(t) = GLOBAL.get() {
            return Ok(t.clone());
        }
        let mut tera = Tera::new();
        tera.load_from_glob(&format!("{dir}/**/*.html"))
            .map_err(|e| anyhow::anyhow!("cannot load templates from {dir}/: {e}"))?;
        let templates = Arc::new(Templates { tera });
        Ok(GLOBAL.get_or_init(|| templates).clone())
    }

    /// The templates loaded at start-up, for error pages built outside a handler.
    pub fn global() -> Option<Arc<Templates>> {
        GLOBAL.get().cloned()
    }

    /// Renders `name`, a part of a page (`templates/admin/*.html`), to HTML text.
    pub fn fragment(&self, name: &'static str, ctx: &Context) -> Result<String, AppError> {
        self.render(name, ctx).ok_or(AppError::Render(name))
    }

    /// Renders `name`; a failure is logged here, once for pages and parts.
    fn render(&self, name: &str, ctx: &Context) -> Option<String> {
        self.tera
            .render(name, ctx)
            .inspect_err(|e| tracing::error!(template = name, error = %e, "template render failed"))
            .ok()
    }

    /// Renders `name` as an HTML response; a render failure is logged and becomes a bare 500.
    pub fn page(&self, status: StatusCode, name: &str, ctx: &Context) -> HttpResponse {
        match self.render(name, ctx) {
            Some(body) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(body),
            None => HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal error while rendering the page."),
        }
    }
}

/// The context every page starts from: the signed-in user, if any, for the navbar.
pub fn base_context(req: &HttpRequest) -> Context {
    let mut ctx = Context::new();
    // The auth routes may live under `auth.base_path`; links follow them.
    let (login, logout) = req
        .app_data::<Auth>()
        .map(|a| (a.config().login_path(), a.config().logout_path()))
        .unwrap_or(("/login", "/logout"));
    ctx.insert("login_path", login);
    ctx.insert("logout_path", logout);
    if let Some(user) = resolved_user(req) {
        // The navbar's Sign out button is a form: POST /logout with this session's token.
        if !user.bearer {
            use actix_session::SessionExt;
            ctx.insert("csrf_token", &crate::csrf::token(&req.get_session()));
        }
        ctx.insert("user", &*user);
        ctx.insert("access_level", access_label(&user));
        ctx.insert("is_admin", &user.is::<Admin>());
    }
    ctx
}

/// The short name of the user's highest role (`DemoApp.Write` → `Write`), for pages.
pub fn access_label(user: &User) -> &str {
    user.role()
        .map(|r| r.rsplit_once('.').map_or(r, |(_, last)| last))
        .unwrap_or("")
}

/// Pages shown by the auth module, rendered with Tera.
pub struct TeraPages(pub Arc<Templates>);

impl AuthPages for TeraPages {
    fn login(&self, req: &HttpRequest, page: &LoginPage) -> HttpResponse {
        let mut ctx = base_context(req);
        ctx.insert("sign_in_url", &page.sign_in_url);
        ctx.insert("signed_out", &page.signed_out);
        ctx.insert("next", &page.next);
        self.0.page(StatusCode::OK, "login.html", &ctx)
    }

    fn sign_out(&self, req: &HttpRequest, page: &SignOutPage) -> HttpResponse {
        let mut ctx = base_context(req);
        ctx.insert("action", &page.action);
        ctx.insert("csrf_token", &page.csrf_token);
        ctx.insert("signed_in", &page.signed_in);
        self.0.page(StatusCode::OK, "sign_out.html", &ctx)
    }

    fn auth_error(&self, req: &HttpRequest, error: &AuthError) -> HttpResponse {
        let mut ctx = base_context(req);
        ctx.insert("title", error.title());
        ctx.insert("advice", &error.advice());
        ctx.insert("reason", error.reason());
        ctx.insert("status", &error.status().as_u16());
        if let Some(detail) = error.provider_detail() {
            ctx.insert("provider_detail", &detail);
        }
        self.0.page(error.status(), "auth_error.html", &ctx)
    }

    fn forbidden(&self, req: &HttpRequest, user: &User, needed: &str) -> HttpResponse {
        let mut ctx = base_context(req);
        ctx.insert("user", user);
        ctx.insert("needed_role", needed);
        self.0.page(StatusCode::FORBIDDEN, "forbidden.html", &ctx)
    }

    fn denied(&self, req: &HttpRequest) -> HttpResponse {
        let mut ctx = base_context(req);
        ctx.insert("title", "This page is closed");
        ctx.insert("message", "Nobody may open this address.");
        ctx.insert("status", &403);
        self.0.page(StatusCode::FORBIDDEN, "error.html", &ctx)
    }
}

/// An absolute path built from raw segments, each percent-encoded, so a claim or id used as a
/// segment stays one segment: `["admin", "users", "a/b?c#d"]` gives `/admin/users/a%2Fb%3Fc%23d`
/// (actix decodes it back in `web::Path`). A `.` or `..` segment is left out (a browser would
/// resolve it), so such a URL matches no route rather than another one.
pub fn url_path(segments: &[&str]) -> String {
    let Ok(mut url) = url::Url::parse("http://localhost/") else {
        return "/".to_owned();
    };
    if let Ok(mut path) = url.path_segments_mut() {
        path.clear().extend(segments);
    }
    url.path().to_owned()
}

/// Formats a unix time as `2026-11-23 18:34 UTC` (Tera 2 has no date filter).
pub fn format_time(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::url_path;

    #[test]
    fn segments_are_percent_encoded_and_stay_single_segments() {
        assert_eq!(
            url_path(&["admin", "users", "a/b?c#d\u{2028}e", "revoke"]),
            "/admin/users/a%2Fb%3Fc%23d%E2%80%A8e/revoke"
        );
        assert_eq!(
            url_path(&["x", "50% \\ \"<>", "y"]),
            "/x/50%25%20%5C%20%22%3C%3E/y"
        );
        assert_eq!(url_path(&["x", "%2e%2e", "y"]), "/x/%252e%252e/y");
        assert_eq!(url_path(&["x", "..", "y"]), "/x/y");
        assert_eq!(url_path(&["plain-id_1.~"]), "/plain-id_1.~");
    }
}
