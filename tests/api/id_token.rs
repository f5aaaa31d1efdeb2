//! Every ID-token check, each with a token that fails only that check.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::callback::assert_refused;
use crate::fake_idp::{FakeIdp, PUBLIC_PEM_KEY_1, now, sign_with, unsigned};
use crate::helpers::spawn_app;

type Forge = fn(&FakeIdp, Value) -> String;
type Change = Box<dyn Fn(Value) -> Value>;
type Case = (&'static str, Change, Forge, &'static str);

fn edit(mut claims: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    f(claims.as_object_mut().unwrap());
    claims
}

#[tokio::test]
async fn every_bad_id_token_is_refused_with_its_reason() {
    let app = spawn_app().await;
    let signed: Forge = |idp, c| idp.sign(&c);
    let cases: Vec<Case> = vec![
        (
            "signature by another key under the trusted kid",
            Box::new(|c| c),
            |idp, c| sign_with(&idp.key2.encoding, Some("key-1"), Algorithm::RS256, &c),
            "bad_signature",
        ),
        (
            "unknown kid",
            Box::new(|c| c),
            |idp, c| {
                sign_with(
                    &idp.key2.encoding,
                    Some("key-unknown"),
                    Algorithm::RS256,
                    &c,
                )
            },
            "unknown_key",
        ),
        (
            "alg none",
            Box::new(|c| c),
            |_, c| unsigned("key-1", &c),
            "disallowed_algorithm",
        ),
        (
            "HS256 signed with the public key",
            Box::new(|c| c),
            |_, c| {
                sign_with(
                    &EncodingKey::from_secret(PUBLIC_PEM_KEY_1),
                    Some("key-1"),
                    Algorithm::HS256,
                    &c,
                )
            },
            "disallowed_algorithm",
        ),
        (
            // Discovery advertises RS256 only (pins: see hardening_auth).
            "RS384, which discovery does not advertise",
            Box::new(|c| c),
            |idp, c| sign_with(&idp.key1.encoding, Some("key-1"), Algorithm::RS384, &c),
            "disallowed_algorithm",
        ),
        (
            "wrong iss",
            Box::new(|c| {
                edit(c, |m| {
                    m.insert("iss".into(), json!("https://evil.example"));
                })
            }),
            signed,
            "wrong_issuer",
        ),
        (
            "iss with trailing slash",
            Box::new(|c| {
                let iss = format!("{}/", c["iss"].as_str().unwrap());
                edit(c, |m| {
                    m.insert("iss".into(), json!(iss));
                })
            }),
            signed,
            "wrong_issuer",
        ),
        (
            "missing iss",
            Box::new(|c| {
                edit(c, |m| {
                    m.remove("iss");
                })
            }),
            signed,
            "missing_claim",
        ),
        (
            "wrong aud",
            Box::new(|c| {
                edit(c, |m| {
                    m.insert("aud".into(), json!("another-app"));
                })
            }),
            signed,
            "wrong_audience",
        ),
        (
            "missing aud",
            Box::new(|c| {
                edit(c, |m| {
                    m.remove("aud");
                })
            }),
            signed,
            "missing_claim",
        ),
        (
            "untrusted extra audience",
            Box::new(|c| {
                edit(c, |m| {
                    m.insert(
                        "aud".into(),
                        json!([crate::fake_idp::CLIENT_ID, "other-app"]),
                    );
                    m.insert("azp".into(), json!(crate::fake_idp::CLIENT_ID));
                })
            }),
            signed,
            "untrusted_audience",
        ),
        (
            "azp of another client",
            Box::new(|c| {
                edit(c, |m| {
                    m.insert("azp".into(), json!("other-app"));
                })
            }),
            signed,
            "wrong_azp",
        ),
        (
            "expired",
            Box::new(|c| {
                edit(c, |m| {
                    m.insert("exp".into(), json!(now() - 600));
                })
            }),
            signed,
            "token_expired",
        ),
        (
            "missing exp",
            Box::new(|c| {
                edit(c, |m| {
                    m.remove("exp");
                })
            }),
            signed,
            "missing_claim",
        ),
        (
            "nbf in the future",
            Box::new(|c| {
                edit(c, |m| {
                    m.insert("nbf".into(), json!(now() + 600));
                })
            }),
            signed,
            "token_not_yet_valid",
        ),
        (
            "iat in the future",
            Box::new(|c| {
                edit(c, |m| {
                    m.insert("iat".into(), json!(now() + 600));
                })
            }),
            signed,
            "token_issued_in_future",
        ),
        (
            "missing iat",
            Box::new(|c| {
                edit(c, |m| {
                    m.remove("iat");
                })
            }),
            signed,
            "missing_claim",
        ),
        (
            "wrong nonce",
            Box::new(|c| {
                edit(c, |m| {
                    m.insert("nonce".into(), json!("attacker-nonce"));
                })
            }),
            signed,
            "nonce_mismatch",
        ),
        (
            "missing nonce",
            Box::new(|c| {
                edit(c, |m| {
                    m.remove("nonce");
                })
            }),
            signed,
            "nonce_mismatch",
        ),
        (
            "missing sub",
            Box::new(|c| {
                edit(c, |m| {
                    m.remove("sub");
                })
            }),
            signed,
            "missing_claim",
        ),
        (
            "empty sub",
            Box::new(|c| {
                edit(c, |m| {
                    m.insert("sub".into(), json!(""));
                })
            }),
            signed,
            "missing_claim",
        ),
        // Roles that are not strings: refused as `role_claim_type` (403), see role_claim.rs.
        (
            "not a JWT",
            Box::new(|c| c),
            |_, _| "not.a.jwt".to_owned(),
            "malformed_token",
        ),
    ];
    for (name, change, forge, reason) in cases {
        let started = app.start_login("").await;
        let claims = change(app.idp.claims("alice", &started.nonce));
        let token = forge(&app.idp, claims);
        let response = app.finish_with_token(&started, token).await;
        assert_eq!(response.status(), 400, "{name}");
        let body = response.text().await.unwrap();
        assert_eq!(
            crate::helpers::reason_of(&body).as_deref(),
            Some(reason),
            "{name}"
        );
        assert!(!app.is_signed_in().await, "{name}: no session");
    }
}

#[tokio::test]
async fn a_nonce_from_another_sign_in_is_refused() {
    let app = spawn_app().await;
    let first = app.start_login("").await;
    let second = app.start_login("").await;
    // The token carries tab 1's nonce but completes tab 2's state.
    let claims = app.idp.claims("alice", &first.nonce);
    let response = app.finish_with_token(&second, app.idp.sign(&claims)).await;
    assert_refused(&app, response, 400, "nonce_mismatch").await;
}

#[tokio::test]
async fn users_without_an_app_role_are_refused() {
    let app = spawn_app().await;
    for (user, roles) in [
        ("dave", Some(json!([]))),
        ("erin", None),
        ("mallory", Some(json!(["demoapp.admin"]))),
        ("mallory", Some(json!(["DemoApp.Admin "]))),
        ("mallory", Some(json!(["OtherApp.Admin"]))),
        ("mallory", Some(json!(["DemoApp.ADMIN", "Admin"]))),
    ] {
        let started = app.start_login("").await;
        let mut claims = app.idp.claims(user, &started.nonce);
        match roles {
            Some(r) => claims["roles"] = r,
            None => {
                claims.as_object_mut().unwrap().remove("roles");
            }
        }
        let response = app.finish_with_token(&started, app.idp.sign(&claims)).await;
        assert_eq!(response.status(), 403, "{user}");
        let body = response.text().await.unwrap();
        assert_eq!(crate::helpers::reason_of(&body).as_deref(), Some("no_role"));
        assert!(
            body.contains("DemoApp.Read"),
            "the page says which roles grant access"
        );
        assert!(!app.is_signed_in().await);
    }
    let pool = app.pool().await;
    let signed_in: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_sub IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(signed_in, 0);
}
