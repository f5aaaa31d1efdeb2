//! The pages the module shows, through a trait the host implements, and plain defaults.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};

use crate::error::AuthError;
use crate::session::User;

/// What the sign-in page shows.
pub struct LoginPage {
    /// The provider's authorization URL for this sign-in (state, nonce, PKCE included).
    pub sign_in_url: String,
    /// The user has just signed out.
    pub signed_out: bool,
    /// Where the user goes after signing in (already checked to be same-site).
    pub next: String,
}

/// What the "Sign out?" page (`GET {base_path}/logout`) shows: a form that POSTs to `action`
/// with `csrf_token`, so only this page (or the host's own Sign out button) can sign out.
pub struct SignOutPage {
    /// The form's target (`{base_path}/logout`).
    pub action: String,
    /// The session's CSRF token ([`crate::csrf::token`]), for the hidden `csrf_token` field.
    pub csrf_token: String,
    /// Whether anyone is signed in in this browser.
    pub signed_in: bool,
}

/// Pages the module shows. Implement it to use your own templates (rolegate uses Tera), or
/// use [`DefaultPages`].
pub trait AuthPages: Send + Sync + 'static {
    /// The sign-in page: a link to `page.sign_in_url`.
    fn login(&self, req: &HttpRequest, page: &LoginPage) -> HttpResponse;
    /// A failed sign-in; the status is `error.status()`.
    fn auth_error(&self, req: &HttpRequest, error: &AuthError) -> HttpResponse;
    /// 403 for a signed-in user without the role `needed`.
    fn forbidden(&self, req: &HttpRequest, user: &User, needed: &str) -> HttpResponse;
    /// 403 for a path a route rule denies to everyone.
    fn denied(&self, req: &HttpRequest) -> HttpResponse {
        DefaultPages.denied(req)
    }
    /// The "Sign out?" page: a form posting `csrf_token` to `page.action`.
    fn sign_out(&self, req: &HttpRequest, page: &SignOutPage) -> HttpResponse {
        DefaultPages.sign_out(req, page)
    }
}

/// Plain, accessible HTML pages (one heading, a `main` landmark, a language, no scripts), so a
/// host can sign users in before it has templates of its own.
pub struct DefaultPages;

impl AuthPages for DefaultPages {
    fn login(&self, _req: &HttpRequest, page: &LoginPage) -> HttpResponse {
        let notice = if page.signed_out {
            r#"<p role="status">You have signed out.</p>"#
        } else {
            ""
        };
        let body = format!(
            r#"{notice}<p><a id="sign-in" href="{}">Sign in</a> with your organisation's account.</p>"#,
            escape(&page.sign_in_url)
        );
        html(StatusCode::OK, "Sign in", &body)
    }

    fn auth_error(&self, _req: &HttpRequest, error: &AuthError) -> HttpResponse {
        let detail = error
            .provider_detail()
            .map(|d| format!("<p>The provider said: <code>{}</code></p>", escape(&d)))
            .unwrap_or_default();
        let body = format!(
            r#"<p data-reason="{}">{}</p>{detail}<p><a href="login">Back to sign-in</a></p>"#,
            error.reason(),
            escape(&error.advice())
        );
        html(error.status(), error.title(), &body)
    }

    fn forbidden(&self, _req: &HttpRequest, user: &User, needed: &str) -> HttpResponse {
        let body = format!(
            "<p>This page needs the app role <strong>{}</strong>. You are signed in as {}.</p>",
            escape(needed),
            escape(&user.name)
        );
        html(StatusCode::FORBIDDEN, "You may not open this page", &body)
    }

    fn denied(&self, _req: &HttpRequest) -> HttpResponse {
        html(
            StatusCode::FORBIDDEN,
            "This page is closed",
            "<p>Nobody may open this address.</p>",
        )
    }

    fn sign_out(&self, _req: &HttpRequest, page: &SignOutPage) -> HttpResponse {
        let question = if page.signed_in {
            "Sign out of this application and of your organisation's account?"
        } else {
            r#"You are not signed in here. Sign out of your organisation's account at the identity provider?"#
        };
        let body = format!(
            r#"<p>{question}</p><form method="post" action="{}"><input type="hidden" name="csrf_token" value="{}"><button id="confirm-sign-out" type="submit">Sign out</button></form>"#,
            escape(&page.action),
            escape(&page.csrf_token)
        );
        html(StatusCode::OK, "Sign out?", &body)
    }
}

fn html(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let title = escape(title);
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>\n"
        ))
}

/// Escapes text for HTML content and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
