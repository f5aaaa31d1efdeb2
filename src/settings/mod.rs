//! Layered, typed settings: `appsettings.json` < `appsettings.{APP_ENV}.json` < `APP__SECTION__KEY`.
//!
//! Every key is read on its own so that one bad value does not hide the others: loading
//! always yields settings (with defaults where a value was unusable) plus the full list of
//! problems, and where each value came from for `rolegate check-config`.
//!
//! `sources` merges the layers, `schema` defines every key with its one default, `validate`
//! checks values against each other (the auth section through the auth crate's own builder).

mod certificate;
mod schema;
mod sources;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine;
use config::Map;
use ipnet::IpNet;
use rolegate_auth::{ClientCertificate, RuleSpec};
use url::Url;

pub use certificate::{EXPIRY_WARNING_DAYS, warnings_at};
pub use schema::DEFAULT_INSTANCE;
pub use validate::{auth_config, auth_config_at, auth_config_with_keys, deprecations, warnings};

/// Every notice about settings that work but should change, for `check-config` and the
/// start-up log alike: deprecated keys, risky choices, then the client certificate's dates.
pub fn notices(s: &Settings, now: SystemTime) -> Vec<String> {
    let mut all = deprecations(s);
    all.extend(warnings(s));
    all.extend(warnings_at(s, now));
    all
}

/// Bytes of the session cookie key (actix requires at least 64).
pub const SESSION_KEY_LEN: usize = 64;

/// `APP_ENV`: decides which settings file is layered in and how strict start-up is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEnv {
    /// The default: broken settings stop start-up.
    Production,
    /// Local runs: broken settings serve a page that lists them; keys may be generated.
    Development,
    /// Any other name (`Staging`, `Test`): strict like Production, with its own file.
    Other(String),
}

impl AppEnv {
    /// Parses `APP_ENV`; unset or blank is Production. Case-insensitive for the two known names.
    pub fn parse(value: Option<&str>) -> AppEnv {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => AppEnv::Production,
            Some(v) if v.eq_ignore_ascii_case("production") => AppEnv::Production,
            Some(v) if v.eq_ignore_ascii_case("development") => AppEnv::Development,
            Some(v) => AppEnv::Other(v.to_owned()),
        }
    }

    /// The name used in `appsettings.{name}.json`.
    pub fn name(&self) -> &str {
        match self {
            AppEnv::Production => "Production",
            AppEnv::Development => "Development",
            AppEnv::Other(name) => name,
        }
    }
}

impl fmt::Display for AppEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<&str> for AppEnv {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// Where sessions are kept (`session.store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The SQL database of `database.url` (also spelled `sqlite`).
    Database,
    /// Redis at `session.redis_url`, shared by every instance.
    Redis,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `APP_ENV`, Production when unset.
    pub env: AppEnv,
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub authorization: AuthorizationSettings,
    pub database: DatabaseSettings,
    pub session: SessionSettings,
    pub audit: AuditSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
    /// `downstream_apis.<name>`: APIs called on the user's behalf.
    pub downstream_apis: std::collections::HashMap<String, DownstreamApiSettings>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// External base URL: the only source of absolute URLs.
    pub public_url: Url,
    pub trusted_proxies: Vec<IpNet>,
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Requests a minute one client IP may make to the sign-in, callback and sign-out routes;
    /// 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// After SIGTERM or Ctrl-C, how long in-flight requests may take to finish before their
    /// connections are dropped.
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The effective authority: `auth.authority`, else `{auth.instance}{auth.tenant_id}/v2.0`.
    pub authority: Option<Url>,
    /// `auth.instance`: the cloud's sign-in origin (default the public cloud).
    pub instance: String,
    /// `auth.tenant_id`: with `instance`, gives the authority when `auth.authority` is unset.
    pub tenant_id: String,
    /// Whether `authority` came from `instance` + `tenant_id`.
    pub authority_derived: bool,
    pub client_id: String,
    pub client_secret: String,
    /// `auth.client_certificate.certificate_file` (PEM); empty = unset.
    pub client_certificate_file: String,
    /// `auth.client_certificate.private_key_file` (PEM, PKCS#8 or PKCS#1 RSA); empty = unset.
    pub client_private_key_file: String,
    /// The certificate credential, when both files are set and load (replaces the secret).
    pub client_certificate: Option<ClientCertificate>,
    /// `auth.client_auth_method`: how the token call authenticates (default `auto`).
    pub client_auth_method: rolegate_auth::ClientAuthMethod,
    /// Prefix of the sign-in, callback and sign-out routes (empty = at the root).
    pub base_path: String,
    pub redirect_path: String,
    pub scopes: Vec<String>,
    pub prompt: Option<String>,
    pub allowed_tenants: Vec<String>,
    /// Accepted `aud` of Bearer tokens; empty = the client id and `api://{client_id}`.
    pub api_audiences: Vec<String>,
    /// Deprecated single audience, added to `api_audiences`; empty = unset.
    pub api_audience: String,
    /// Scopes of which a delegated Bearer token must hold one.
    pub api_scopes: Vec<String>,
    pub jwks_refresh_cooldown_secs: u64,
    pub discovery_retry_secs: u64,
    pub http_timeout_secs: u64,
    pub clock_leeway_secs: u64,
    /// `auth.issuer`: the issuer to expect when discovery's is not the authority; empty = unset.
    pub issuer: String,
    /// `auth.b2c.*_policy`: Azure AD B2C user flows; empty = unset.
    pub b2c_sign_up_sign_in_policy: String,
    pub b2c_edit_profile_policy: String,
    pub b2c_reset_password_policy: String,
    /// `auth.roles_max_age_minutes`: roles older than this are re-checked (0 = every request).
    pub roles_max_age_minutes: u64,
    /// `auth.roles_grace_minutes`: roles kept this long while the provider is unreachable.
    pub roles_grace_minutes: u64,
}

/// `authorization.*`: roles, where they come from, and route rules.
#[derive(Debug, Clone)]
pub struct AuthorizationSettings {
    /// App role values, lowest first.
    pub roles: Vec<String>,
    /// Group object id → role value; when set, roles come from the `groups` claim.
    pub group_roles: Option<HashMap<String, String>>,
    /// The claim (name or dotted path) roles are read from; empty = `roles`, or `groups`
    /// with `group_roles`.
    pub role_claim: String,
    pub rules: Vec<RuleSpec>,
    /// `signed_in`, `anonymous` or `deny`, for paths no rule names.
    pub default: String,
}

#[derive(Debug, Clone, Default)]
pub struct DatabaseSettings {
    pub url: String,
    /// Allows a non-loopback PostgreSQL without TLS outside Development (session rows hold
    /// tokens, so TLS is required by default).
    pub allow_plaintext: bool,
    pub max_connections: u32,
    /// How long start-up waits for an unreachable PostgreSQL before giving up.
    pub startup_wait_secs: u64,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub store: StoreKind,
    pub redis_url: String,
    /// Allows `redis://` to a non-loopback host outside Development.
    pub allow_plaintext: bool,
    /// The cookie key, from `session.key` or `session.key_file`.
    pub key: Option<Vec<u8>>,
    pub key_file: Option<PathBuf>,
    /// `session.token_key`: seals the tokens kept in sessions (else derived from the cookie key).
    pub token_key: Option<[u8; 32]>,
    /// `session.token_key_file`: a file holding the token key (base64).
    pub token_key_file: Option<PathBuf>,
    /// `session.token_keys_previous`: keys still accepted for reading after a rotation.
    pub token_keys_previous: Vec<[u8; 32]>,
    pub idle_timeout_minutes: u64,
    pub absolute_timeout_minutes: u64,
}

/// `audit.*`: how long the audit log keeps rows.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Rows older than this are purged by the maintenance task; 0 keeps them forever.
    pub retention_days: u32,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub filter: String,
    /// `log.format`: `text` for people, `json` for a log pipeline.
    pub format: LogFormat,
}

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line: time, level, message and the event's fields.
    Json,
}

/// `metrics.*`: the Prometheus endpoint.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` at all.
    pub enabled: bool,
    /// Serve it on this port only (not on `server.port`); 0 = on the main port.
    pub port: u16,
}

impl Settings {
    pub fn is_development(&self) -> bool {
        self.env == AppEnv::Development
    }
}

/// One problem with the settings: the key, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (set \"{}\" in appsettings*.json or {})",
            self.key,
            self.message,
            self.key,
            env_var(&self.key)
        )
    }
}

/// One effective value and where it came from, for `check-config`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub origin: String,
}

/// The outcome of loading: usable settings, every problem, and the provenance report.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub problems: Vec<Problem>,
    pub entries: Vec<Entry>,
}

/// The environment variable that sets `key` (`auth.client_id` -> `APP__AUTH__CLIENT_ID`).
pub fn env_var(key: &str) -> String {
    let key = key.split('[').next().unwrap_or(key);
    format!("APP__{}", key.replace('.', "__").to_ascii_uppercase())
}

/// Loads from the files in `dir`, the given `APP_ENV` and environment variables.
pub fn load(dir: &Path, app_env: Option<&str>, env: Map<String, String>) -> Loaded {
    load_at(dir, app_env, env, SystemTime::now())
}

/// [`load`] with the clock given (a client certificate must not be expired at `now`).
pub fn load_at(
    dir: &Path,
    app_env: Option<&str>,
    env: Map<String, String>,
    now: SystemTime,
) -> Loaded {
    let app_env = AppEnv::parse(app_env);
    let (config, problems) = sources::layered(dir, app_env.name(), env);
    let mut reader = sources::Reader {
        config: &config,
        problems,
        entries: Vec::new(),
    };
    let settings = schema::read(&mut reader, app_env);
    let mut problems = reader.problems;
    validate::validate(&settings, &mut problems, now);
    Loaded {
        settings,
        problems,
        entries: reader.entries,
    }
}

/// Loads from the working directory, `APP_ENV` and the process environment.
pub fn load_from_process() -> Loaded {
    let env: Map<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("APP__"))
        .collect();
    let app_env = std::env::var("APP_ENV").ok();
    load(Path::new("."), app_env.as_deref(), env)
}

fn parse_net(item: &str) -> Option<IpNet> {
    item.parse::<IpNet>()
        .ok()
        .or_else(|| item.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Decodes a base64 session key of at least [`SESSION_KEY_LEN`] bytes.
/// A token key: base64 of exactly 32 bytes.
pub fn decode_token_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| {
            "is not valid base64; generate one with `openssl rand -base64 32`".to_owned()
        })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "is {} bytes long; it must be exactly 32 (`openssl rand -base64 32`)",
            bytes.len()
        )
    })
}

/// One `downstream_apis.<name>` entry (Microsoft.Identity.Web's `DownstreamApis` shape).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DownstreamApiSettings {
    /// Every call goes to this URL + the handler's path.
    #[serde(default)]
    pub base_url: String,
    /// The delegated scopes: a list, or one string separated by spaces or commas.
    #[serde(default)]
    pub scopes: ScopeList,
}

/// Scopes as a list or as one string (an environment variable).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(from = "ScopeForm")]
pub struct ScopeList(pub Vec<String>);

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ScopeForm {
    One(String),
    Many(Vec<String>),
}

impl From<ScopeForm> for ScopeList {
    fn from(form: ScopeForm) -> ScopeList {
        let items = match form {
            ScopeForm::One(text) => vec![text],
            ScopeForm::Many(items) => items,
        };
        ScopeList(
            items
                .iter()
                .flat_map(|s| s.split([' ', ',', '\t']))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

pub fn decode_key(text: &str) -> Result<Vec<u8>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| {
            "is not valid base64; generate one with `openssl rand -base64 64`".to_owned()
        })?;
    if bytes.len() < SESSION_KEY_LEN {
        return Err(format!(
            "is {} bytes long; it must be at least {SESSION_KEY_LEN} (`openssl rand -base64 64`)",
            bytes.len()
        ));
    }
    Ok(bytes)
}
