//! An in-process OpenID provider for rejection tests: discovery, JWKS, token endpoint.
//! Each test decides what the token endpoint answers and signs its own tokens.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "rolegate-test";
pub const CLIENT_SECRET: &str = "test-secret-value-123";
pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";

const KEY_1: &[u8] = include_bytes!("fixtures/idp-key-1.pem");
const KEY_2: &[u8] = include_bytes!("fixtures/idp-key-2.pem");
/// Test-only EC keys (PKCS#8), for the key-type and curve checks.
const EC_P256: &[u8] = b"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg16mZ4HVc72eTpAAK
9SaVqgbgQII28Mg1MCAgGkjHB3+hRANCAARCPTlTFANRfb6/9k0xvItPtGASPkga
jFnice7GfAlZebp1zkBLoA9lNHpCY7N0XHo4py2EJxgZVKmVd02k4j2P
-----END PRIVATE KEY-----
";
const EC_P384: &[u8] = b"-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDQexmyGgZFIOII2Tm1
mpz+N56yMFaalM1xYhdxN3MDaL/Xw8K31aFlAgFL7C4gjQShZANiAAQ1+c0O3Msd
SoNt8mxv0/qjJZYddBYnjKgR3GQDSudqdI7CXOwFPhaC0eBzUeftwPIFDqhzgzZr
f33O+9XaYqmbLg7Vkc9wuBYMszNB0Kz1NwhVlMfLZIHMe4rTLKl7r3E=
-----END PRIVATE KEY-----
";

/// What the token endpoint does with the next code redemption.
#[derive(Clone)]
pub enum TokenReply {
    /// 200 with this ID token.
    IdToken(String),
    /// 200 with a well-formed response that lacks `id_token`.
    NoIdToken,
    /// This status and raw body.
    Raw(u16, String),
    /// Never answer within the client's timeout.
    Hang,
    /// 200 with this ID token, after a delay (a slow provider).
    Delayed(Duration, String),
}

#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
}

impl SigningKey {
    fn new(kid: &str, pem: &[u8]) -> SigningKey {
        let encoding = EncodingKey::from_rsa_pem(pem).expect("fixture key parses");
        Self::with_jwk(kid, encoding, Algorithm::RS256)
    }

    /// An EC key (`alg` ES256 for P-256, ES384 for P-384), its JWK pinned to `alg`.
    pub fn ec(kid: &str, pem: &[u8], alg: Algorithm) -> SigningKey {
        let encoding = EncodingKey::from_ec_pem(pem).expect("fixture EC key parses");
        Self::with_jwk(kid, encoding, alg)
    }

    /// A symmetric key published as a JWK (`kty: oct`): what a provider must never hand out.
    pub fn oct(kid: &str, secret: &[u8]) -> SigningKey {
        Self::with_jwk(kid, EncodingKey::from_secret(secret), Algorithm::HS256)
    }

    fn with_jwk(kid: &str, encoding: EncodingKey, alg: Algorithm) -> SigningKey {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("jwk");
        jwk.common.key_id = Some(kid.to_owned());
        SigningKey {
            kid: kid.to_owned(),
            encoding,
            jwk,
        }
    }

    /// The JWK without an `alg` pin, so only the key type limits what it verifies.
    pub fn unpinned_jwk(&self) -> Jwk {
        let mut jwk = self.jwk.clone();
        jwk.common.key_algorithm = None;
        jwk
    }
}

/// The P-256 test key (ES256).
pub fn ec_p256(kid: &str) -> SigningKey {
    SigningKey::ec(kid, EC_P256, Algorithm::ES256)
}

/// The P-384 test key (ES384).
pub fn ec_p384(kid: &str) -> SigningKey {
    SigningKey::ec(kid, EC_P384, Algorithm::ES384)
}

pub struct IdpState {
    pub reply: TokenReply,
    /// Keys published in the JWKS.
    pub published: Vec<Jwk>,
    pub end_session: bool,
    pub iss_param_supported: bool,
    /// `id_token_signing_alg_values_supported` in discovery; `None` leaves the field out.
    pub signing_algs: Option<Vec<String>>,
    pub last_token_form: Option<HashMap<String, String>>,
    pub last_token_auth_header: Option<String>,
    /// When set, the JWKS endpoint answers with this status and no keys (a provider outage).
    pub jwks_status: Option<u16>,
    /// Every `client_assertion` the token endpoint received, decoded (not verified).
    pub client_assertions: Vec<ClientAssertion>,
    /// The issuer every discovery document names instead of its own (External ID, B2C,
    /// mismatch tests); `None` = the document's own issuer.
    pub issuer_override: Option<String>,
    /// The path of the last token request (B2C policies have their own token endpoints).
    pub last_token_path: Option<String>,
    /// `token_endpoint_auth_methods_supported` to advertise instead of post + basic
    /// (`Some(vec![])` leaves the field out).
    pub auth_methods: Option<Vec<String>>,
    /// The refresh-token grant (`grant_type=refresh_token`).
    pub refresh: RefreshState,
}

/// What the token endpoint does with `grant_type=refresh_token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshMode {
    /// Rotate: the sent refresh token must be the live one; a new one replaces it.
    Rotate,
    /// `400 invalid_grant` (a disabled user, a revoked grant).
    InvalidGrant,
    /// Entra's consent answer: `invalid_grant` with AADSTS65001 (for the owner's consent tests).
    #[allow(dead_code)]
    ConsentRequired,
    /// `503 temporarily_unavailable` (the provider is down).
    Down,
}

/// The refresh side of the fake: one live refresh token per sign-in, rotated on every use.
pub struct RefreshState {
    pub mode: RefreshMode,
    /// Refresh tokens that are still accepted.
    pub live: Vec<String>,
    pub issued: u64,
    /// Delay before answering a refresh (so parallel requests overlap).
    pub delay: Duration,
    /// The ID token claims of the last code redemption: refreshes re-issue them.
    pub last_id_claims: Option<Value>,
    /// Roles the next refreshed ID tokens carry instead (`Some(vec![])` = none).
    pub roles: Option<Vec<String>>,
    /// `expires_in` of issued access tokens.
    pub expires_in: i64,
    /// Whether code redemptions hand out a refresh token.
    pub issue_refresh_tokens: bool,
    /// Every refresh request's form, oldest first.
    pub forms: Vec<HashMap<String, String>>,
}

/// A `private_key_jwt` client assertion as the token endpoint received it.
#[derive(Clone, Debug)]
pub struct ClientAssertion {
    /// The compact JWT, for signature checks.
    pub raw: String,
    pub header: Value,
    pub claims: Value,
    pub assertion_type: Option<String>,
}

#[derive(Clone)]
pub struct FakeIdp {
    pub issuer: String,
    pub state: Arc<Mutex<IdpState>>,
    pub jwks_hits: Arc<AtomicUsize>,
    pub token_hits: Arc<AtomicUsize>,
    pub discovery_hits: Arc<AtomicUsize>,
    pub key1: SigningKey,
    pub key2: SigningKey,
}

impl FakeIdp {
    pub async fn start() -> FakeIdp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake idp");
        Self::start_on(listener).await
    }

    pub async fn start_on(listener: TcpListener) -> FakeIdp {
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let key1 = SigningKey::new("key-1", KEY_1);
        let key2 = SigningKey::new("key-2", KEY_2);
        let state = Arc::new(Mutex::new(IdpState {
            reply: TokenReply::Raw(500, "no reply configured".into()),
            published: vec![key1.jwk.clone()],
            end_session: true,
            iss_param_supported: false,
            signing_algs: Some(vec!["RS256".to_owned()]),
            last_token_form: None,
            last_token_auth_header: None,
            jwks_status: None,
            client_assertions: Vec::new(),
            issuer_override: None,
            last_token_path: None,
            auth_methods: None,
            refresh: RefreshState {
                mode: RefreshMode::Rotate,
                live: Vec::new(),
                issued: 0,
                delay: Duration::ZERO,
                last_id_claims: None,
                roles: None,
                expires_in: 3600,
                issue_refresh_tokens: true,
                forms: Vec::new(),
            },
        }));
        let jwks_hits = Arc::new(AtomicUsize::new(0));
        let token_hits = Arc::new(AtomicUsize::new(0));
        let discovery_hits = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            key: key1.encoding.clone(),
            issuer: issuer.clone(),
            state: state.clone(),
            jwks_hits: jwks_hits.clone(),
            token_hits: token_hits.clone(),
            discovery_hits: discovery_hits.clone(),
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route(
                    "/{tenant}/v2.0/.well-known/openid-configuration",
                    web::get().to(tenant_discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/token", web::post().to(token))
                .route(
                    "/{domain}/{policy}/v2.0/.well-known/openid-configuration",
                    web::get().to(b2c_discovery),
                )
                .route(
                    "/{domain}/{policy}/oauth2/v2.0/token",
                    web::post().to(token),
                )
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        FakeIdp {
            issuer,
            state,
            jwks_hits,
            token_hits,
            discovery_hits,
            key1,
            key2,
        }
    }

    /// How many refresh-token grants the token endpoint received.
    pub fn refresh_count(&self) -> usize {
        self.state.lock().unwrap().refresh.forms.len()
    }

    /// Sets what refreshes answer.
    pub fn refresh_mode(&self, mode: RefreshMode) {
        self.state.lock().unwrap().refresh.mode = mode;
    }

    /// The roles refreshed ID tokens carry from now on.
    pub fn refresh_roles(&self, roles: &[&str]) {
        self.state.lock().unwrap().refresh.roles =
            Some(roles.iter().map(|r| (*r).to_owned()).collect());
    }

    pub fn reply(&self, reply: TokenReply) {
        self.state.lock().unwrap().reply = reply;
    }

    pub fn publish(&self, keys: Vec<Jwk>) {
        self.state.lock().unwrap().published = keys;
    }

    /// What discovery advertises as ID token signing algorithms (before rolegate discovers).
    pub fn advertise_algs(&self, algs: Option<&[&str]>) {
        self.state.lock().unwrap().signing_algs =
            algs.map(|a| a.iter().map(|s| (*s).to_owned()).collect());
    }

    /// The client assertions received so far, oldest first.
    pub fn client_assertions(&self) -> Vec<ClientAssertion> {
        self.state.lock().unwrap().client_assertions.clone()
    }

    /// The token endpoint's URL: the `aud` a client assertion must carry.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    pub fn last_token_form(&self) -> HashMap<String, String> {
        self.state
            .lock()
            .unwrap()
            .last_token_form
            .clone()
            .unwrap_or_default()
    }

    /// Claims as the bundled cast gets them: `alice` Admin, `bob` Write, `carol` Read,
    /// `dave` an empty roles array, `erin` no roles claim at all.
    pub fn claims(&self, user: &str, nonce: &str) -> Value {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": format!("sub-{user}-0001"),
            "exp": now + 3600,
            "iat": now,
            "nbf": now,
            "nonce": nonce,
            "tid": TENANT,
            "oid": format!("oid-{user}"),
            "name": format!("{} Test", capitalise(user)),
            "preferred_username": format!("{user}@rolegate.test"),
            "sid": "sid-1",
        });
        let roles = match user {
            "alice" => Some(vec!["DemoApp.Admin"]),
            "bob" => Some(vec!["DemoApp.Write"]),
            "carol" => Some(vec!["DemoApp.Read"]),
            "dave" => Some(vec![]),
            _ => None,
        };
        if let Some(roles) = roles {
            claims["roles"] = json!(roles);
        }
        claims
    }

    /// Every discovery document names `issuer` from now on (before rolegate discovers).
    pub fn override_issuer(&self, issuer: &str) {
        self.state.lock().unwrap().issuer_override = Some(issuer.to_owned());
    }

    /// The path of the last token request.
    pub fn last_token_path(&self) -> Option<String> {
        self.state.lock().unwrap().last_token_path.clone()
    }

    /// The ID token the token endpoint answers with now (after a sign-in: that sign-in's).
    pub fn last_id_token(&self) -> String {
        match self.state.lock().unwrap().reply.clone() {
            TokenReply::IdToken(t) => t,
            _ => panic!("the token endpoint answers no ID token"),
        }
    }

    /// Signs `claims` with key 1 (RS256, kid `key-1`).
    pub fn sign(&self, claims: &Value) -> String {
        sign_with(
            &self.key1.encoding,
            Some(&self.key1.kid),
            Algorithm::RS256,
            claims,
        )
    }
}

/// Entra-shaped access tokens for rolegate's own API (`tests/api/api_tokens.rs`).
impl FakeIdp {
    /// The Entra-shaped authority of `tenant` (a tenant id, `organizations` or `common`).
    pub fn tenant_authority(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.issuer)
    }

    /// A v2 delegated token: `aud` = client id, `scp`, `azp`, `ver` 2.0, for `tid`.
    pub fn access_v2_claims(&self, tid: &str, scp: &str, roles: Value) -> Value {
        let now = now();
        json!({
            "iss": format!("{}/{tid}/v2.0", self.issuer),
            "aud": CLIENT_ID,
            "sub": "sub-alice-api",
            "exp": now + 3600, "iat": now, "nbf": now,
            "tid": tid,
            "oid": "oid-alice",
            "name": "Alice Test",
            "preferred_username": "alice@rolegate.test",
            "roles": roles,
            "scp": scp,
            "azp": "rolegate-spa",
            "azpacr": "0",
            "ver": "2.0",
        })
    }

    /// A v1 delegated token: `iss` `{instance}{tid}/`, `aud` `api://{client_id}`, `appid`.
    pub fn access_v1_claims(&self, tid: &str, scp: &str, roles: Value) -> Value {
        let now = now();
        json!({
            "iss": format!("{}/{tid}/", self.issuer),
            "aud": format!("api://{CLIENT_ID}"),
            "sub": "sub-alice-api",
            "exp": now + 3600, "iat": now, "nbf": now,
            "tid": tid,
            "oid": "oid-alice",
            "name": "Alice Test",
            "upn": "alice@rolegate.test",
            "roles": roles,
            "scp": scp,
            "appid": "rolegate-spa",
            "appidacr": "0",
            "ver": "1.0",
        })
    }

    /// An app-only v2 token (client credentials) of `client`: `roles`, `idtyp` app, no `scp`;
    /// `roles` null leaves the claim out.
    pub fn app_only_claims(&self, tid: &str, client: &str, roles: Value) -> Value {
        let now = now();
        let mut claims = json!({
            "iss": format!("{}/{tid}/v2.0", self.issuer),
            "aud": CLIENT_ID,
            "sub": format!("sp-{client}"),
            "oid": format!("sp-{client}"),
            "exp": now + 3600, "iat": now, "nbf": now,
            "tid": tid,
            "azp": client,
            "azpacr": "1",
            "idtyp": "app",
            "ver": "2.0",
        });
        if !roles.is_null() {
            claims["roles"] = roles;
        }
        claims
    }
}

pub fn sign_with(key: &EncodingKey, kid: Option<&str>, alg: Algorithm, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

/// A JWT with `alg: none` and an empty signature.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    )
}

/// The public half of fixture key 1 as PEM: what an attacker uses as an HMAC secret.
pub const PUBLIC_PEM_KEY_1: &[u8] = include_bytes!("fixtures/idp-key-1.pub.pem");

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[derive(Clone)]
struct Shared {
    key: EncodingKey,
    issuer: String,
    state: Arc<Mutex<IdpState>>,
    jwks_hits: Arc<AtomicUsize>,
    token_hits: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
}

async fn discovery(s: web::Data<Shared>) -> HttpResponse {
    discovery_for(&s, &s.issuer)
}

/// Entra's shape: `/{tid}/v2.0` has that issuer; `/organizations/v2.0` and `/common/v2.0`
/// the literal `{tenantid}` template. Keys and endpoints stay at the root.
async fn tenant_discovery(s: web::Data<Shared>, tenant: web::Path<String>) -> HttpResponse {
    let tenant = match tenant.as_str() {
        "organizations" | "common" => "{tenantid}",
        t => t,
    };
    discovery_for(&s, &format!("{}/{tenant}/v2.0", s.issuer))
}

/// B2C's shape: `/{domain}/{policy}/v2.0` with the policy in every endpoint's path.
async fn b2c_discovery(s: web::Data<Shared>, path: web::Path<(String, String)>) -> HttpResponse {
    let (domain, policy) = path.into_inner();
    let mut doc = discovery_doc(&s, &format!("{}/{domain}/{policy}/v2.0", s.issuer));
    let base = format!("{}/{domain}/{policy}/oauth2/v2.0", s.issuer);
    doc["authorization_endpoint"] = json!(format!("{base}/authorize"));
    doc["token_endpoint"] = json!(format!("{base}/token"));
    HttpResponse::Ok().json(doc)
}

fn discovery_for(s: &Shared, issuer: &str) -> HttpResponse {
    HttpResponse::Ok().json(discovery_doc(s, issuer))
}

fn discovery_doc(s: &Shared, issuer: &str) -> Value {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let state = s.state.lock().unwrap();
    let issuer = state.issuer_override.as_deref().unwrap_or(issuer);
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{}/authorize", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "jwks_uri": format!("{}/jwks", s.issuer),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "authorization_response_iss_parameter_supported": state.iss_param_supported,
    });
    if let Some(methods) = &state.auth_methods {
        doc["token_endpoint_auth_methods_supported"] = json!(methods);
        if methods.is_empty() {
            doc.as_object_mut()
                .map(|o| o.remove("token_endpoint_auth_methods_supported"));
        }
    }
    if let Some(algs) = &state.signing_algs {
        doc["id_token_signing_alg_values_supported"] = json!(algs);
    }
    if state.end_session {
        doc["end_session_endpoint"] = json!(format!("{}/logout", s.issuer));
    }
    doc
}

/// Splits a JWT into its header and claims as JSON (`null` where a part does not decode).
fn decode_assertion(raw: &str, assertion_type: Option<String>) -> ClientAssertion {
    let part = |i: usize| -> Value {
        raw.split('.')
            .nth(i)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null)
    };
    ClientAssertion {
        raw: raw.to_owned(),
        header: part(0),
        claims: part(1),
        assertion_type,
    }
}

async fn jwks(s: web::Data<Shared>) -> HttpResponse {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let (keys, status) = {
        let state = s.state.lock().unwrap();
        (state.published.clone(), state.jwks_status)
    };
    if let Some(status) = status {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .finish();
    }
    HttpResponse::Ok().json(JwkSet { keys })
}

async fn token(
    s: web::Data<Shared>,
    req: actix_web::HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    s.token_hits.fetch_add(1, Ordering::SeqCst);
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        return refresh_grant(&s, form.into_inner()).await;
    }
    let reply = {
        let mut state = s.state.lock().unwrap();
        let form = form.into_inner();
        if let Some(raw) = form.get("client_assertion") {
            state.client_assertions.push(decode_assertion(
                raw,
                form.get("client_assertion_type").cloned(),
            ));
        }
        state.last_token_form = Some(form);
        state.last_token_path = Some(req.path().to_owned());
        state.last_token_auth_header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let reply = state.reply.clone();
        if let TokenReply::IdToken(id_token) = &reply {
            state.refresh.last_id_claims = jwt_claims(id_token);
        }
        reply
    };
    match reply {
        TokenReply::IdToken(id_token) => {
            let mut body = json!({
                "access_token": "opaque-access-token",
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
            });
            let mut state = s.state.lock().unwrap();
            if state.refresh.issue_refresh_tokens {
                body["refresh_token"] = json!(issue_refresh_token(&mut state.refresh));
                body["expires_in"] = json!(state.refresh.expires_in);
            }
            HttpResponse::Ok().json(body)
        }
        TokenReply::NoIdToken => HttpResponse::Ok().json(json!({
            "access_token": "opaque-access-token",
            "token_type": "Bearer",
            "expires_in": 3600,
        })),
        TokenReply::Raw(status, body) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                .content_type("application/json")
                .body(body)
        }
        TokenReply::Delayed(delay, id_token) => {
            tokio::time::sleep(delay).await;
            HttpResponse::Ok().json(json!({
                "access_token": "opaque-access-token",
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
            }))
        }
        TokenReply::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            HttpResponse::Ok().finish()
        }
    }
}

fn jwt_claims(raw: &str) -> Option<Value> {
    let part = raw.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn issue_refresh_token(refresh: &mut RefreshState) -> String {
    refresh.issued += 1;
    let token = format!("refresh-token-secret-{:04}", refresh.issued);
    refresh.live = vec![token.clone()];
    token
}

/// `grant_type=refresh_token`: the sent token must be the live one; it is rotated, and the
/// answer carries a new access token and an ID token re-issued from the sign-in's claims.
async fn refresh_grant(s: &Shared, form: HashMap<String, String>) -> HttpResponse {
    let (mode, delay) = {
        let mut state = s.state.lock().unwrap();
        state.refresh.forms.push(form.clone());
        (state.refresh.mode.clone(), state.refresh.delay)
    };
    let error = |status: u16, code: &str, description: &str| {
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .json(json!({"error": code, "error_description": description}))
    };
    match mode {
        RefreshMode::Down => return error(503, "temporarily_unavailable", "down"),
        RefreshMode::InvalidGrant => {
            return error(400, "invalid_grant", "AADSTS50173: the grant was revoked");
        }
        RefreshMode::ConsentRequired => {
            return error(
                400,
                "invalid_grant",
                "AADSTS65001: The user or administrator has not consented",
            );
        }
        RefreshMode::Rotate => {}
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut state = s.state.lock().unwrap();
    let sent = form.get("refresh_token").cloned().unwrap_or_default();
    if !state.refresh.live.contains(&sent) {
        return error(
            400,
            "invalid_grant",
            "AADSTS70008: the refresh token was used already",
        );
    }
    let rotated = issue_refresh_token(&mut state.refresh);
    let n = state.refresh.issued;
    let mut body = json!({
        "access_token": format!("access-token-secret-{n:04}"),
        "token_type": "Bearer",
        "expires_in": state.refresh.expires_in,
        "refresh_token": rotated,
    });
    if let Some(scope) = form.get("scope") {
        body["scope"] = json!(scope);
    }
    if let Some(mut claims) = state.refresh.last_id_claims.clone() {
        let now = now();
        claims["iat"] = json!(now);
        claims["nbf"] = json!(now);
        claims["exp"] = json!(now + 3600);
        if let Some(o) = claims.as_object_mut() {
            o.remove("nonce");
        }
        if let Some(roles) = &state.refresh.roles {
            claims["roles"] = json!(roles);
        }
        body["id_token"] = json!(sign_with(&s.key, Some("key-1"), Algorithm::RS256, &claims));
    }
    HttpResponse::Ok().json(body)
}
