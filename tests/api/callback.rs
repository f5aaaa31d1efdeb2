//! Callback failures: each is an explanatory page with a 4xx/5xx status and no session.

use crate::fake_idp::TokenReply;
use crate::helpers::{TestApp, reason_of, spawn_app, spawn_app_custom};

/// Asserts an error page with `status` and `reason`, and that nobody is signed in.
pub async fn assert_refused(app: &TestApp, response: reqwest::Response, status: u16, reason: &str) {
    assert_eq!(response.status(), status, "status for {reason}");
    let body = response.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some(reason), "page: {body}");
    assert!(
        body.contains("href=\"/login\""),
        "the page offers a way back"
    );
    assert!(!app.is_signed_in().await, "no session after {reason}");
}

#[tokio::test]
async fn missing_state_is_refused() {
    let app = spawn_app().await;
    app.start_login("").await;
    let response = app.callback("code=abc").await;
    assert_refused(&app, response, 400, "state_missing").await;
    assert_eq!(
        app.idp.token_hits.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn mismatched_state_is_refused_before_the_code_is_redeemed() {
    let app = spawn_app().await;
    app.start_login("").await;
    let response = app.callback("code=abc&state=not-the-one").await;
    assert_refused(&app, response, 400, "state_mismatch").await;
    assert_eq!(
        app.idp.token_hits.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn state_from_another_browser_is_refused_and_creates_no_session() {
    let app = spawn_app().await;
    let started = app.start_login("").await;
    let other = spawn_app().await; // a fresh browser that never started a sign-in
    let response = other
        .client
        .get(app.url(&format!("/getAToken?code=abc&state={}", started.state)))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("set-cookie").is_none() || {
            let c = response.headers()["set-cookie"].to_str().unwrap();
            c.contains("Max-Age=0") || !c.starts_with("rolegate_session=")
        }
    );
    assert_eq!(response.status(), 400);
    assert_eq!(
        reason_of(&response.text().await.unwrap()).as_deref(),
        Some("state_mismatch")
    );
}

#[tokio::test]
async fn a_state_works_once() {
    let app = spawn_app().await;
    let started = app.start_login("").await;
    let claims = app.idp.claims("alice", &started.nonce);
    let first = app.finish_with_token(&started, app.idp.sign(&claims)).await;
    assert_eq!(first.status(), 302);
    app.sign_out().await;
    let replay = app
        .callback(&format!("code=test-code&state={}", started.state))
        .await;
    assert_refused(&app, replay, 400, "state_mismatch").await;
}

#[tokio::test]
async fn provider_error_is_shown_with_its_description() {
    let app = spawn_app().await;
    let started = app.start_login("").await;
    let response = app
        .callback(&format!(
            "error=access_denied&error_description=The+user+cancelled+%3Cb%3E&state={}",
            started.state
        ))
        .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert_eq!(reason_of(&body).as_deref(), Some("provider_error"));
    assert!(
        body.contains("access_denied: The user cancelled &lt;b&gt;"),
        "escaped: {body}"
    );
    assert!(!app.is_signed_in().await);
}

/// A rejected code is the caller's (400 `code_rejected`, see `hardening_auth`); everything
/// else the token endpoint does wrong is the provider's or the deployment's.
#[tokio::test]
async fn token_endpoint_failures_are_bad_gateway_or_timeout() {
    let app = spawn_app().await;
    let cases = [
        (
            TokenReply::Raw(400, r#"{"error":"invalid_grant"}"#.into()),
            400,
            "code_rejected",
        ),
        (
            TokenReply::Raw(401, r#"{"error":"invalid_client"}"#.into()),
            503,
            "client_auth_rejected",
        ),
        (
            TokenReply::Raw(500, "<html>oops</html>".into()),
            502,
            "token_endpoint_failed",
        ),
        (
            TokenReply::Raw(500, r#"{"error":"invalid_grant"}"#.into()),
            502,
            "token_endpoint_failed",
        ),
        (
            TokenReply::Raw(503, r#"{"error":"temporarily_unavailable"}"#.into()),
            502,
            "token_endpoint_failed",
        ),
        (
            TokenReply::Raw(429, r#"{"error":"invalid_request"}"#.into()),
            502,
            "token_endpoint_failed",
        ),
        (
            TokenReply::Raw(200, "this is not json".into()),
            502,
            "token_endpoint_failed",
        ),
        (
            TokenReply::Raw(200, r#"{"access_token":1}"#.into()),
            502,
            "token_endpoint_failed",
        ),
        (TokenReply::NoIdToken, 502, "missing_id_token"),
        (TokenReply::Hang, 504, "token_endpoint_timeout"),
    ];
    for (reply, status, reason) in cases {
        let started = app.start_login("").await;
        app.idp.reply(reply);
        let response = app
            .callback(&format!("code=c&state={}", started.state))
            .await;
        assert_refused(&app, response, status, reason).await;
    }
}

#[tokio::test]
async fn garbage_query_strings_get_a_4xx_never_a_5xx() {
    let app = spawn_app().await;
    let started = app.start_login("").await;
    let s = &started.state;
    let huge = "a".repeat(20_000);
    for query in [
        format!("code=a&code=b&state={s}"),
        format!("code=a&state={s}&state={s}"),
        format!("code=%00&state={s}"),
        format!("code=%FF%FE%FD&state={s}"),
        format!("code=a%0d%0aX:1&state={s}"),
        format!("code={huge}&state={s}"),
        "state=%FF".to_owned(),
        "code=&state=".to_owned(),
        "%%%%&&&==".to_owned(),
    ] {
        let response = app.callback(&query).await;
        let status = response.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{status} for {}",
            &query[..query.len().min(60)]
        );
    }
    assert!(!app.is_signed_in().await);
}

#[tokio::test]
async fn iss_parameter_must_name_the_issuer() {
    let app = spawn_app().await;
    let started = app.start_login("").await;
    let response = app
        .callback(&format!(
            "code=c&state={}&iss=https%3A%2F%2Fevil.example",
            started.state
        ))
        .await;
    assert_refused(&app, response, 400, "issuer_mismatch").await;

    // When the provider promises to send iss (RFC 9207), its absence is refused too.
    let app2 = spawn_app_custom(
        |idp| idp.state.lock().unwrap().iss_param_supported = true,
        |_| {},
    )
    .await;
    let started = app2.start_login("").await;
    let response = app2
        .callback(&format!("code=c&state={}", started.state))
        .await;
    assert_refused(&app2, response, 400, "issuer_mismatch").await;

    let started = app2.start_login("").await;
    let claims = app2.idp.claims("alice", &started.nonce);
    app2.idp.reply(TokenReply::IdToken(app2.idp.sign(&claims)));
    let iss: String = url::form_urlencoded::byte_serialize(app2.idp.issuer.as_bytes()).collect();
    let ok = app2
        .callback(&format!("code=c&state={}&iss={iss}", started.state))
        .await;
    assert_eq!(ok.status(), 302);
}
