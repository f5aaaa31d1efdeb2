//! The certificate credential (`auth.client_certificate.*`): the token call carries a
//! `private_key_jwt` assertion instead of a secret, and bad files are settings problems.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

use crate::fake_idp::{CLIENT_ID, CLIENT_SECRET};
use crate::helpers::{load_settings, spawn_app_with};

const CERT_FILE: &str = "APP__AUTH__CLIENT_CERTIFICATE__CERTIFICATE_FILE";
const KEY_FILE: &str = "APP__AUTH__CLIENT_CERTIFICATE__PRIVATE_KEY_FILE";
const CERT_KEY: &str = "auth.client_certificate.certificate_file";
const KEY_KEY: &str = "auth.client_certificate.private_key_file";

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// base64url SHA-256 of the DER certificate, computed here independently of rolegate.
fn thumbprint(pem_file: &str) -> String {
    let pem = std::fs::read_to_string(fixture(pem_file)).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// Settings that use the certificate (and no secret) with the given files.
fn with_certificate(env: &mut HashMap<String, String>, cert: &str, key: &str) {
    env.insert("APP__AUTH__CLIENT_SECRET".into(), String::new());
    env.insert(CERT_FILE.into(), fixture(cert));
    env.insert(KEY_FILE.into(), fixture(key));
}

/// Enough settings to load without a provider: only the credential varies.
fn base_env() -> HashMap<String, String> {
    let mut env = HashMap::new();
    for (k, v) in [
        ("APP__SERVER__PUBLIC_URL", "http://127.0.0.1:18443"),
        ("APP__AUTH__AUTHORITY", "http://127.0.0.1:9/t/v2.0"),
        ("APP__AUTH__CLIENT_ID", CLIENT_ID),
        ("APP__AUTH__CLIENT_SECRET", CLIENT_SECRET),
        ("APP__SESSION__KEY", &crate::helpers::session_key_b64()),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    env
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// 2026-01-22T00:00:00Z: ten days before `client-cert-soon.pem`'s notAfter (2026-02-01).
const TEN_DAYS_BEFORE_SOON: u64 = 1_769_040_000;

#[tokio::test]
async fn the_token_call_carries_a_private_key_jwt_and_no_secret() {
    let app =
        spawn_app_with(|env| with_certificate(env, "client-cert.pem", "client-key.pem")).await;
    app.sign_in("alice").await;
    let form = app.idp.last_token_form();
    assert!(!form.contains_key("client_secret"), "no secret: {form:?}");
    assert!(
        app.idp
            .state
            .lock()
            .unwrap()
            .last_token_auth_header
            .is_none(),
        "no HTTP Basic credentials"
    );
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["grant_type"], "authorization_code");
    // A second sign-in (another browser) gets its own assertion.
    app.same_app_new_browser().sign_in("bob").await;

    let assertions = app.idp.client_assertions();
    assert_eq!(assertions.len(), 2);
    let public =
        DecodingKey::from_rsa_pem(&std::fs::read(fixture("client-cert.pub.pem")).unwrap()).unwrap();
    let now = crate::fake_idp::now();
    for a in &assertions {
        assert_eq!(
            a.assertion_type.as_deref(),
            Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
        assert_eq!(a.header["alg"], "RS256");
        assert_eq!(a.header["x5t#S256"], thumbprint("client-cert.pem"));
        assert!(a.header.get("x5t").is_none(), "no SHA-1 thumbprint");
        let c = &a.claims;
        assert_eq!(c["aud"], app.idp.token_endpoint());
        assert_eq!(c["iss"], CLIENT_ID);
        assert_eq!(c["sub"], CLIENT_ID);
        assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16), "{c}");
        let (iat, nbf, exp) = (
            c["iat"].as_i64().unwrap(),
            c["nbf"].as_i64().unwrap(),
            c["exp"].as_i64().unwrap(),
        );
        assert!((now - 60..=now + 5).contains(&iat), "iat {iat} now {now}");
        assert!(nbf <= iat);
        assert!(exp > iat && exp - iat <= 600, "at most 10 minutes: {c}");

        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[app.idp.token_endpoint()]);
        v.set_issuer(&[CLIENT_ID]);
        v.sub = Some(CLIENT_ID.into());
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        jsonwebtoken::decode::<serde_json::Value>(&a.raw, &public, &v)
            .expect("signed with the certificate's key");
    }
    assert_ne!(
        assertions[0].claims["jti"], assertions[1].claims["jti"],
        "jti is unique per token call"
    );
}

#[tokio::test]
async fn a_pkcs1_key_signs_too() {
    let app =
        spawn_app_with(|env| with_certificate(env, "client-cert.pem", "client-key-pkcs1.pem"))
            .await;
    app.sign_in("carol").await;
    let a = &app.idp.client_assertions()[0];
    assert_eq!(a.header["x5t#S256"], thumbprint("client-cert.pem"));
}

/// The problems of loading `env` at `now`, keyed by settings key.
fn problems_at(env: &HashMap<String, String>, now: SystemTime) -> Vec<(String, String)> {
    let map = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    rolegate::settings::load_at(std::path::Path::new("."), Some("Test"), map, now)
        .problems
        .into_iter()
        .map(|p| (p.key.clone(), p.to_string()))
        .collect()
}

fn problems(env: &HashMap<String, String>) -> Vec<(String, String)> {
    problems_at(env, at(TEN_DAYS_BEFORE_SOON))
}

/// The one problem of `env`, which must be keyed `key`; returns its text.
fn only_problem(env: &HashMap<String, String>, key: &str) -> String {
    let found = problems(env);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, key, "{found:?}");
    found[0].1.clone()
}

#[test]
fn a_key_of_another_certificate_is_a_settings_error() {
    let mut env = base_env();
    with_certificate(&mut env, "client-cert.pem", "client-other-key.pem");
    let text = only_problem(&env, KEY_KEY);
    assert!(
        text.contains("does not belong to the certificate"),
        "{text}"
    );
    assert!(
        text.contains(KEY_FILE),
        "says which variable to fix: {text}"
    );
    let key = std::fs::read_to_string(fixture("client-other-key.pem")).unwrap();
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!text.contains(line), "no key material in the problem");
    }
}

#[test]
fn an_expired_certificate_is_a_settings_error() {
    let mut env = base_env();
    with_certificate(&mut env, "client-cert-expired.pem", "client-key.pem");
    let text = only_problem(&env, CERT_KEY);
    assert!(text.contains("expired on 2021-01-01T00:00:00Z"), "{text}");
    assert!(
        text.contains(&thumbprint("client-cert-expired.pem")),
        "{text}"
    );
    // The same certificate the second before notAfter still loads.
    let before = at(1_609_459_199);
    assert!(problems_at(&env, before).is_empty());
    assert!(!problems_at(&env, at(1_609_459_200)).is_empty());
}

#[test]
fn secret_and_certificate_together_is_a_settings_error_naming_both() {
    let mut env = base_env();
    with_certificate(&mut env, "client-cert.pem", "client-key.pem");
    env.insert("APP__AUTH__CLIENT_SECRET".into(), CLIENT_SECRET.into());
    let text = only_problem(&env, "auth.client_secret");
    for key in [CERT_KEY, KEY_KEY, "auth.client_secret"] {
        assert!(text.contains(key), "{key} in {text}");
    }
    assert!(!text.contains(CLIENT_SECRET), "the secret is not echoed");
}

#[test]
fn one_certificate_setting_without_the_other_is_a_settings_error() {
    let mut env = base_env();
    env.insert("APP__AUTH__CLIENT_SECRET".into(), String::new());
    env.insert(CERT_FILE.into(), fixture("client-cert.pem"));
    let text = only_problem(&env, KEY_KEY);
    assert!(text.contains(CERT_KEY) && text.contains("both"), "{text}");

    let mut env = base_env();
    env.insert("APP__AUTH__CLIENT_SECRET".into(), String::new());
    env.insert(KEY_FILE.into(), fixture("client-key.pem"));
    let text = only_problem(&env, CERT_KEY);
    assert!(text.contains(KEY_KEY), "{text}");
}

#[test]
fn no_credential_names_both_options() {
    let mut env = base_env();
    env.insert("APP__AUTH__CLIENT_SECRET".into(), "  ".into());
    let text = only_problem(&env, "auth.client_secret");
    assert!(
        text.contains("client_certificate.certificate_file"),
        "{text}"
    );
    assert!(text.contains("APP__AUTH__CLIENT_SECRET"), "{text}");
}

#[test]
fn unreadable_and_malformed_files_name_their_key() {
    let mut env = base_env();
    with_certificate(&mut env, "client-cert.pem", "client-key.pem");
    env.insert(CERT_FILE.into(), "/nonexistent/client-cert.pem".into());
    let text = only_problem(&env, CERT_KEY);
    assert!(text.contains("/nonexistent/client-cert.pem"), "{text}");

    let dir = crate::helpers::temp_dir();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a pem file").unwrap();
    let mut env = base_env();
    with_certificate(&mut env, "client-cert.pem", "client-key.pem");
    env.insert(KEY_FILE.into(), garbage.display().to_string());
    let text = only_problem(&env, KEY_KEY);
    assert!(text.contains("PEM private key"), "{text}");

    let mut env = base_env();
    with_certificate(&mut env, "client-cert.pem", "client-key-encrypted.pem");
    assert!(only_problem(&env, KEY_KEY).contains("encrypted"));
    let mut env = base_env();
    with_certificate(&mut env, "client-cert-ec.pem", "client-key-ec.pem");
    assert!(only_problem(&env, CERT_KEY).contains("not RSA"));
}

#[test]
fn a_certificate_near_expiry_is_a_warning_not_a_problem() {
    let mut env = base_env();
    with_certificate(&mut env, "client-cert-soon.pem", "client-key.pem");
    let map = |env: &HashMap<String, String>| env.clone().into_iter().collect();
    let now = at(TEN_DAYS_BEFORE_SOON);
    let loaded =
        rolegate::settings::load_at(std::path::Path::new("."), Some("Test"), map(&env), now);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let warnings = rolegate::settings::warnings_at(&loaded.settings, now);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with(CERT_KEY), "{warnings:?}");
    assert!(warnings[0].contains("in 10 day(s)"), "{warnings:?}");
    assert!(warnings[0].contains("2026-02-01T00:00:00Z"), "{warnings:?}");
    // 31 days before notAfter: no warning yet.
    let early = at(TEN_DAYS_BEFORE_SOON - 21 * 86_400);
    assert!(rolegate::settings::warnings_at(&loaded.settings, early).is_empty());
    // A secret-only configuration never warns.
    let plain = load_settings("Test", &base_env());
    assert!(rolegate::settings::warnings_at(&plain.settings, now).is_empty());
}

#[test]
fn check_config_shows_the_certificate_but_never_the_key() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .arg("check-config")
        .env("APP_ENV", "Development")
        .env("APP__AUTH__CLIENT_SECRET", "")
        // appsettings.Development.json pins client_secret_post for the dev IdP's secret client.
        .env("APP__AUTH__CLIENT_AUTH_METHOD", "auto")
        .env(CERT_FILE, fixture("client-cert.pem"))
        .env(KEY_FILE, fixture("client-key.pem"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("certificate CN=rolegate-test-client"),
        "{stdout}"
    );
    assert!(stdout.contains(&thumbprint("client-cert.pem")), "{stdout}");
    assert!(stdout.contains("notAfter 2126-01-01T00:00:00Z"), "{stdout}");
    assert!(
        stdout.contains(CERT_KEY) && stdout.contains(KEY_KEY),
        "{stdout}"
    );
    let key = std::fs::read_to_string(fixture("client-key.pem")).unwrap();
    assert!(!stdout.contains("PRIVATE KEY"));
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!stdout.contains(line), "no key material in check-config");
    }
}
