//! CSRF tokens bound to the session: every form carries one, every cookie-authenticated write
//! must present it (form field `csrf_token` or header `X-CSRF-Token`).

use actix_session::Session;

const KEY: &str = "app.csrf";

/// The session's token, created on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(KEY) {
        return token;
    }
    let token = oauth2::CsrfToken::new_random_len(32).into_secret();
    let _ = session.insert(KEY, &token);
    token
}

/// Whether `presented` is the session's token (constant-time comparison).
pub fn verify(session: &Session, presented: Option<&str>) -> bool {
    let (Ok(Some(expected)), Some(presented)) = (session.get::<String>(KEY), presented) else {
        return false;
    };
    expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
