//! The rejection policy: what a caller who may not pass sees, and the one "JSON or page" rule.
//!
//! Anonymous callers of pages go to the sign-in page; API callers (and anyone asking for JSON)
//! get 401 JSON with a `WWW-Authenticate` challenge; signed-in callers without the role get 403.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::Auth;
use crate::caller::routed_path;
use crate::error::TokenError;
use crate::id_token::Claims;
use crate::session::User;

/// The API prefix assumed when no [`Auth`] is registered on the app.
pub(crate) const DEFAULT_API_PREFIX: &str = "/api/";

/// Why a request was not let through.
#[derive(Debug)]
pub(crate) enum Rejection {
    Anonymous,
    /// Not a usable access token (401 `invalid_token`); `claims` when its signature was valid.
    InvalidBearer {
        error: TokenError,
        claims: Option<Box<Claims>>,
    },
    /// A valid access token without this API's scope or an app role (403
    /// `insufficient_scope`).
    InsufficientScope {
        user: Arc<User>,
        needed: String,
        detail: String,
    },
    Forbidden {
        user: Arc<User>,
        needed: String,
    },
    /// A route rule says nobody may pass.
    Denied,
    /// Code names a role the hierarchy does not have: a deployment error, never a grant.
    UnknownRole(String),
    ProviderUnavailable,
    NotConfigured,
    /// The roles are due for a re-check: the browser goes through this silent authorization
    /// request first and comes back.
    Redirect(String),
    /// The session was ended at a role re-check; the error says why.
    SessionEnded(crate::error::AuthError),
}

/// The error body of every JSON answer: `{"error": "<code>", "detail": "<what to do>"}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// A stable machine-readable code.
    pub error: &'a str,
    /// A sentence for the developer or user.
    pub detail: &'a str,
}

/// A JSON error answer in the shape of [`ErrorBody`], never cached.
pub fn json_error(status: StatusCode, error: &str, detail: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ErrorBody { error, detail })
}

/// Whether the caller wants JSON rather than a page: the routed path is under the API prefix,
/// or the `Accept` header asks for `application/json`. Every guard, the rules and rolegate's own
/// error handlers use this one rule.
pub fn wants_json(req: &HttpRequest) -> bool {
    let prefix = req
        .app_data::<Auth>()
        .map(|a| a.config().api_prefix())
        .unwrap_or(DEFAULT_API_PREFIX);
    routed_path(req).starts_with(prefix)
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"))
}

fn with_challenge(mut response: HttpResponse, challenge: &'static str) -> HttpResponse {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static(challenge),
    );
    response
}

/// A JSON error with its RFC 6750 challenge: `Bearer error="..", error_description=".."`.
fn bearer_error(status: StatusCode, error: &'static str, description: &str) -> HttpResponse {
    let mut response = json_error(status, error, description);
    let value = format!(
        "Bearer error=\"{error}\", error_description=\"{}\"",
        challenge_text(description)
    );
    let value = header::HeaderValue::from_str(&value)
        .unwrap_or_else(|_| header::HeaderValue::from_static("Bearer"));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
    response
}

/// RFC 6750 allows only printable ASCII without `"` and `\\` in `error_description`: those
/// two become `'`, anything else outside the range is dropped, and the text is capped.
fn challenge_text(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '"' | '\\' => Some('\''),
            ' '..='~' => Some(c),
            _ => None,
        })
        .take(300)
        .collect()
}

/// Turns a rejection into the response the caller should see.
pub(crate) async fn respond(req: &HttpRequest, auth: &Auth, rejection: Rejection) -> HttpResponse {
    let json = wants_json(req);
    match rejection {
        Rejection::Anonymous if json => with_challenge(
            json_error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Sign in, or send a valid Bearer access token.",
            ),
            "Bearer",
        ),
        Rejection::Anonymous => {
            let target = req
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str())
                .unwrap_or("/");
            let next: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
            HttpResponse::Found()
                .insert_header((
                    header::LOCATION,
                    format!("{}?next={next}", auth.config().login_path()),
                ))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Rejection::InvalidBearer { error, claims } => {
            auth.events()
                .bearer_refused(req, &error, claims.as_deref())
                .await;
            bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                &error.bearer_description(),
            )
        }
        Rejection::InsufficientScope {
            user,
            needed,
            detail,
        } => {
            log_access_denied(&user.sub, &needed, routed_path(req));
            auth.events().access_denied(req, &user, &needed).await;
            bearer_error(StatusCode::FORBIDDEN, "insufficient_scope", &detail)
        }
        Rejection::Forbidden { user, needed } => {
            log_access_denied(&user.sub, &needed, routed_path(req));
            auth.events().access_denied(req, &user, &needed).await;
            if user.bearer {
                bearer_error(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    &format!("this needs the app role {needed}"),
                )
            } else if json {
                json_error(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    &format!("This needs the app role {needed}."),
                )
            } else {
                auth.pages().forbidden(req, &user, &needed)
            }
        }
        Rejection::Denied => {
            log_rule_denied(routed_path(req));
            if json {
                json_error(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "Nobody may use this address.",
                )
            } else {
                auth.pages().denied(req)
            }
        }
        Rejection::UnknownRole(name) => {
            tracing::error!(role = %name, "a guard names a role that is not in the configured hierarchy; add it to the roles or fix the guard");
            misconfigured(json)
        }
        Rejection::ProviderUnavailable => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            "The identity provider is unreachable; try again shortly.",
        ),
        Rejection::NotConfigured => {
            tracing::error!("rolegate-auth used without Auth::configure");
            misconfigured(json)
        }
        Rejection::Redirect(location) => HttpResponse::Found()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        // A page that says why, with a link to sign in: never a redirect back into sign-in.
        Rejection::SessionEnded(error) if json => {
            json_error(error.status(), error.reason(), &error.advice())
        }
        Rejection::SessionEnded(error) => auth.pages().auth_error(req, &error),
    }
}

/// `sub` comes from a token and the path from the request line (percent-decoded, so `%0A` is
/// a newline): both Debug-formatted. `needed` is the host's own role name.
fn log_access_denied(sub: &str, needed: &str, path: &str) {
    tracing::info!(sub = ?sub, needed = %needed, path = ?path, "access denied");
}

/// The path is the caller's: Debug-formatted.
fn log_rule_denied(path: &str) {
    tracing::info!(path = ?path, "denied by route rule");
}

fn misconfigured(json: bool) -> HttpResponse {
    if json {
        json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "misconfigured",
            "The application's authorization is misconfigured; the log names the cause.",
        )
    } else {
        HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body("This page's authorization is misconfigured; the server log names the cause.")
    }
}

#[cfg(test)]
mod tests {
    use crate::log_safe::captured;

    #[test]
    fn challenge_text_is_a_safe_quoted_string() {
        assert_eq!(super::challenge_text("a \"b\" \\c\r\nd é"), "a 'b' 'cd ");
        let long = "x".repeat(1000);
        assert_eq!(super::challenge_text(&long).len(), 300);
        let response = super::bearer_error(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "invalid_token",
            "bad \"one\"\n",
        );
        assert_eq!(
            response
                .headers()
                .get(actix_web::http::header::WWW_AUTHENTICATE)
                .unwrap(),
            "Bearer error=\"invalid_token\", error_description=\"bad 'one'\""
        );
    }

    #[test]
    fn hostile_paths_and_subs_stay_on_one_log_line() {
        let path = "/reports/x\nINFO signed in sub=\"admin\"";
        for out in [
            captured(|| super::log_access_denied("s\r\nu", "DemoApp.Read", path)),
            captured(|| super::log_rule_denied(path)),
        ] {
            assert_eq!(out.lines().count(), 1, "{out}");
            assert!(out.contains(r"/reports/x\nINFO"), "{out}");
        }
    }
}
