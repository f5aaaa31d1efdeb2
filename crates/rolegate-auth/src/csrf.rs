//! CSRF tokens bound to the session, shared by the module's sign-out form and the host's own
//! forms: every cookie-authenticated write presents the session's token (form field
//! `csrf_token`, or a header the host chooses).

use actix_session::Session;

/// The session entry holding the token; sign-in starts a clean session, so the token of an
/// anonymous session never survives into a signed-in one.
const KEY: &str = "rg.csrf";

/// The session's token, created on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(KEY) {
        return token;
    }
    let token = oauth2::CsrfToken::new_random_len(32).into_secret();
    let _ = session.insert(KEY, &token);
    token
}

/// Whether `presented` is the session's token (constant-time comparison). A session without a
/// token accepts nothing.
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

#[cfg(test)]
mod tests {
    use actix_session::SessionExt;
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn only_the_sessions_own_token_verifies() {
        let req = TestRequest::default().to_http_request();
        let session = req.get_session();
        assert!(!verify(&session, Some("anything")), "no token yet");
        let t = token(&session);
        assert_eq!(token(&session), t, "stable within a session");
        assert!(verify(&session, Some(&t)));
        assert!(!verify(&session, None));
        assert!(!verify(&session, Some("")));
        assert!(!verify(&session, Some(&t[1..])));
        let mut wrong = t.clone();
        wrong.replace_range(..1, if t.starts_with('a') { "b" } else { "a" });
        assert!(!verify(&session, Some(&wrong)));
    }
}
