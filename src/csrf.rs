//! CSRF tokens bound to the session: every form carries one, every cookie-authenticated write
//! must present it (form field `csrf_token` or header `X-CSRF-Token`).

use actix_session::Session;
use actix_web::HttpRequest;
use serde::Deserialize;

use rolegate_auth::User;

use crate::telemetry::Escaped;

/// The session's token, created on first use: the auth crate's, so the navbar's Sign out
/// form (`POST /logout`) and the app's own forms carry the same one.
pub fn token(session: &Session) -> String {
    rolegate_auth::csrf::token(session)
}

/// Whether `presented` is the session's token (constant-time comparison).
pub fn verify(session: &Session, presented: Option<&str>) -> bool {
    rolegate_auth::csrf::verify(session, presented)
}

/// A form that carries nothing but the token (delete and revoke buttons).
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

/// Verifies `presented` and logs a refusal; callers map `false` to their own error type.
pub fn check(req: &HttpRequest, session: &Session, presented: Option<&str>, user: &User) -> bool {
    let ok = verify(session, presented);
    if !ok {
        // `sub` is a claim and the path the caller's text: both escaped, so neither can end
        // this line and forge another.
        tracing::warn!(
            sub = ?user.sub,
            method = %Escaped(req.method()),
            path = ?req.path(),
            "CSRF token missing or wrong"
        );
    }
    ok
}
