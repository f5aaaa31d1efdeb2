//! Layered, typed settings: `appsettings.json` < `appsettings.{APP_ENV}.json` < `APP__SECTION__KEY`.
//!
//! Every key is read on its own so that one bad value does not hide the others: loading
//! always yields settings (with defaults where a value was unusable) plus the full list of
//! problems, and where each value came from for `rolegate check-config`.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use config::{Config, Environment, File, FileFormat, Map, Value};
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::metadata::secure_or_loopback;

/// Keys whose values are never printed.
const SECRET_KEYS: [&str; 2] = ["auth.client_secret", "session.key"];

/// Keys that are URLs which may carry a password.
const URL_KEYS: [&str; 2] = ["database.url", "session.redis_url"];

/// Bytes of the session cookie key (actix requires at least 64).
pub const SESSION_KEY_LEN: usize = 64;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `APP_ENV`, `Production` when unset.
    pub env: String,
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub database: DatabaseSettings,
    pub session: SessionSettings,
    pub log: LogSettings,
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
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub authority: Option<Url>,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_path: String,
    pub scopes: Vec<String>,
    pub prompt: Option<String>,
    pub allowed_tenants: Vec<String>,
    pub api_audience: String,
    pub jwks_refresh_cooldown_secs: u64,
    pub discovery_retry_secs: u64,
    pub http_timeout_secs: u64,
    pub clock_leeway_secs: u64,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// How long start-up waits for an unreachable PostgreSQL before giving up.
    pub startup_wait_secs: u64,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `database` (the SQL database, also spelled `sqlite`) or `redis`.
    pub store: String,
    pub redis_url: String,
    /// The cookie key, from `session.key` or `session.key_file`.
    pub key: Option<Vec<u8>>,
    pub key_file: Option<PathBuf>,
    pub idle_timeout_minutes: u64,
    pub absolute_timeout_minutes: u64,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub filter: String,
}

impl Settings {
    pub fn is_development(&self) -> bool {
        self.env.eq_ignore_ascii_case("development")
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
    format!("APP__{}", key.replace('.', "__").to_ascii_uppercase())
}

/// Loads from the files in `dir`, the given `APP_ENV` and environment variables.
pub fn load(dir: &Path, app_env: Option<&str>, env: Map<String, String>) -> Loaded {
    let env_name = app_env
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .unwrap_or("Production")
        .to_owned();
    let mut problems = Vec::new();
    let builder = Config::builder()
        .add_source(
            File::from(dir.join("appsettings.json"))
                .format(FileFormat::Json)
                .required(false),
        )
        .add_source(
            File::from(dir.join(format!("appsettings.{env_name}.json")))
                .format(FileFormat::Json)
                .required(false),
        )
        .add_source(
            Environment::with_prefix("APP")
                .prefix_separator("__")
                .separator("__")
                .source(Some(env)),
        );
    let config = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            problems.push(Problem {
                key: "appsettings".into(),
                message: format!("cannot read the settings files: {e}"),
            });
            Config::default()
        }
    };
    let mut reader = Reader {
        config: &config,
        problems,
        entries: Vec::new(),
    };
    let settings = read(&mut reader, &env_name);
    let mut problems = reader.problems;
    validate(&settings, &mut problems);
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

struct Reader<'a> {
    config: &'a Config,
    problems: Vec<Problem>,
    entries: Vec<Entry>,
}

impl Reader<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Notes the effective value of `key` and where it came from.
    fn record(&mut self, key: &str, raw: Option<&Value>, effective: String) {
        let origin = match raw.and_then(|v| v.origin()) {
            None => "default".to_owned(),
            Some(o) if o.contains("environment") => format!("env {}", env_var(key)),
            Some(o) => Path::new(o)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| o.to_owned()),
        };
        let value = if effective.is_empty() {
            "(unset)".to_owned()
        } else if SECRET_KEYS.contains(&key) {
            "******** (set)".to_owned()
        } else if URL_KEYS.contains(&key) {
            mask_url_password(&effective)
        } else {
            effective
        };
        self.entries.push(Entry {
            key: key.into(),
            value,
            origin,
        });
    }

    /// The raw value with its origin (`Config::get` would drop the origin).
    fn raw(&self, key: &str) -> Option<Value> {
        key.rsplit_once('.')
            .and_then(|(section, leaf)| self.config.get_table(section).ok()?.remove(leaf))
    }

    /// A typed value, or `default` with a problem when present but unusable.
    fn get<T: DeserializeOwned + fmt::Display>(&mut self, key: &str, default: T, hint: &str) -> T {
        let raw = self.raw(key);
        let value = match &raw {
            None => default,
            Some(v) if v.to_string().is_empty() => default,
            Some(v) => match v.clone().try_deserialize::<T>() {
                Ok(t) => t,
                Err(_) => {
                    self.problem(key, format!("{:?} cannot be read as {hint}", v.to_string()));
                    default
                }
            },
        };
        self.record(key, raw.as_ref(), value.to_string());
        value
    }

    fn string(&mut self, key: &str, default: &str) -> String {
        self.get::<String>(key, default.to_owned(), "text")
            .trim()
            .to_owned()
    }

    /// A list from a JSON array, or from a comma/space separated string (env vars).
    fn list(&mut self, key: &str, default: &[&str]) -> Vec<String> {
        let raw = self.raw(key);
        let items: Vec<String> = match &raw {
            None => default.iter().map(|s| s.to_string()).collect(),
            Some(raw) => match raw.clone().into_array() {
                Ok(values) => values.into_iter().map(|v| v.to_string()).collect(),
                Err(_) => raw
                    .to_string()
                    .split([',', ' '])
                    .map(str::to_owned)
                    .collect(),
            },
        };
        let items: Vec<String> = items
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        self.record(key, raw.as_ref(), format!("[{}]", items.join(", ")));
        items
    }
}

fn read(r: &mut Reader<'_>, env_name: &str) -> Settings {
    let development = env_name.eq_ignore_ascii_case("development");
    let host = r.string("server.host", "127.0.0.1");
    let port = r.get::<u16>("server.port", 8000, "a port number (0-65535)");
    let public_url_text = r.string("server.public_url", "");
    if public_url_text.is_empty() {
        r.problem(
            "server.public_url",
            "is missing; set it to the address users browse to, e.g. https://app.example.com (it is the only source of redirect URLs)",
        );
    }
    let public_url = parse_url(r, "server.public_url", &public_url_text)
        .unwrap_or_else(|| fallback_url(&host, port));
    let trusted_proxies = r
        .list("server.trusted_proxies", &[])
        .into_iter()
        .filter_map(|item| match parse_net(&item) {
            Some(net) => Some(net),
            None => {
                r.problem(
                    "server.trusted_proxies",
                    format!("{item:?} is not an IP address or CIDR range such as 10.0.0.0/8"),
                );
                None
            }
        })
        .collect();

    let workers = r.get("server.workers", 0usize, "a whole number");
    let authority_text = r.string("auth.authority", "");
    let authority = parse_url(r, "auth.authority", &authority_text);
    let client_id = r.string("auth.client_id", "");
    let client_secret = r.get::<String>("auth.client_secret", String::new(), "text");
    let redirect_path = r.string("auth.redirect_path", "/getAToken");
    let scopes = r.list("auth.scopes", &["openid", "profile", "email"]);
    let prompt = Some(r.string("auth.prompt", "")).filter(|p| !p.is_empty());
    let allowed_tenants = r.list("auth.allowed_tenants", &[]);
    let api_audience = Some(r.string("auth.api_audience", ""))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| format!("api://{client_id}"));
    let jwks_refresh_cooldown_secs = r.get(
        "auth.jwks_refresh_cooldown_secs",
        30u64,
        "a number of seconds",
    );
    let discovery_retry_secs = r.get("auth.discovery_retry_secs", 5u64, "a number of seconds");
    let http_timeout_secs = r.get("auth.http_timeout_secs", 10u64, "a number of seconds");
    let clock_leeway_secs = r.get("auth.clock_leeway_secs", 60u64, "a number of seconds");

    let database_url = r.string("database.url", "sqlite://data/rolegate.db?mode=rwc");
    let max_connections = r.get("database.max_connections", 8u32, "a whole number");
    let startup_wait_secs = r.get("database.startup_wait_secs", 120u64, "a number of seconds");

    let store = r.string("session.store", "database").to_ascii_lowercase();
    let redis_url = r.get::<String>("session.redis_url", String::new(), "text");
    let key_text = r.get::<String>("session.key", String::new(), "text");
    let key_file_text = r.string(
        "session.key_file",
        if development { "data/session.key" } else { "" },
    );
    let key_file = Some(key_file_text)
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    let key = if !key_text.trim().is_empty() {
        match decode_key(&key_text) {
            Ok(k) => Some(k),
            Err(msg) => {
                r.problem("session.key", msg);
                None
            }
        }
    } else {
        None
    };
    let idle_timeout_minutes = r.get(
        "session.idle_timeout_minutes",
        480u64,
        "a number of minutes",
    );
    let absolute_timeout_minutes = r.get(
        "session.absolute_timeout_minutes",
        1440u64,
        "a number of minutes",
    );

    let filter = r.string(
        "log.filter",
        if development {
            "rolegate=debug,info"
        } else {
            "info"
        },
    );

    Settings {
        env: env_name.to_owned(),
        server: ServerSettings {
            host,
            port,
            public_url,
            trusted_proxies,
            workers,
        },
        auth: AuthSettings {
            authority,
            client_id,
            client_secret,
            redirect_path,
            scopes,
            prompt,
            allowed_tenants,
            api_audience,
            jwks_refresh_cooldown_secs,
            discovery_retry_secs,
            http_timeout_secs,
            clock_leeway_secs,
        },
        database: DatabaseSettings {
            url: database_url,
            max_connections,
            startup_wait_secs,
        },
        session: SessionSettings {
            store,
            redis_url,
            key,
            key_file,
            idle_timeout_minutes,
            absolute_timeout_minutes,
        },
        log: LogSettings { filter },
    }
}

fn parse_url(r: &mut Reader<'_>, key: &str, text: &str) -> Option<Url> {
    if text.is_empty() {
        return None;
    }
    match Url::parse(text) {
        Ok(url) if url.host().is_some() && matches!(url.scheme(), "http" | "https") => Some(url),
        _ => {
            r.problem(key, format!("{text:?} is not an absolute http(s) URL"));
            None
        }
    }
}

fn fallback_url(host: &str, port: u16) -> Url {
    Url::parse(&format!("http://{host}:{port}/"))
        .unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("static URL parses"))
}

fn parse_net(item: &str) -> Option<IpNet> {
    item.parse::<IpNet>()
        .ok()
        .or_else(|| item.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Decodes a base64 session key of at least [`SESSION_KEY_LEN`] bytes.
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

fn mask_url_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("********"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Cross-field and semantic checks; pushes every problem found.
fn validate(s: &Settings, problems: &mut Vec<Problem>) {
    let key_unreadable = problems.iter().any(|p| p.key == "session.key");
    let public_unusable = problems.iter().any(|p| p.key == "server.public_url");
    let mut add = |key: &str, message: String| {
        problems.push(Problem {
            key: key.into(),
            message,
        })
    };

    if s.server.host.is_empty() {
        add(
            "server.host",
            "is empty; use 127.0.0.1 for local runs or 0.0.0.0 in a container".into(),
        );
    }
    let public = &s.server.public_url;
    if public_unusable {
        // Already reported while reading.
    } else if !secure_or_loopback(public) {
        add(
            "server.public_url",
            format!("{public} must use https (plain http is only allowed on localhost/127.0.0.1)"),
        );
    }
    if public.path() != "/" || public.query().is_some() || public.fragment().is_some() {
        add(
            "server.public_url",
            format!(
                "{public} must be a bare origin such as https://app.example.com (no path, query or fragment)"
            ),
        );
    }

    match &s.auth.authority {
        None => add(
            "auth.authority",
            "is missing; set it to your OpenID issuer, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0".into(),
        ),
        Some(a) if !secure_or_loopback(a) => add(
            "auth.authority",
            format!("{a} must use https (plain http is only allowed on localhost/127.0.0.1)"),
        ),
        Some(a) if a.query().is_some() || a.fragment().is_some() => {
            add("auth.authority", format!("{a} must not have a query or fragment"))
        }
        Some(_) => {}
    }
    if s.auth.client_id.is_empty() {
        add(
            "auth.client_id",
            "is missing; use the Application (client) ID of your app registration".into(),
        );
    }
    if s.auth.client_secret.trim().is_empty() {
        add(
            "auth.client_secret",
            "is missing; create a client secret under Certificates & secrets and set it (never in appsettings.json)".into(),
        );
    }
    let rp = &s.auth.redirect_path;
    if rp == "/"
        || !rp.starts_with('/')
        || rp.starts_with("//")
        || rp.contains(['?', '#', ' ', '\\'])
    {
        add(
            "auth.redirect_path",
            format!("{rp:?} must be a path starting with / and not / itself, e.g. /getAToken"),
        );
    } else if ["/login", "/logout", "/healthz"].contains(&rp.as_str())
        || rp.starts_with("/api/")
        || rp.starts_with("/static/")
    {
        add(
            "auth.redirect_path",
            format!("{rp:?} clashes with one of rolegate's own routes"),
        );
    }
    if !s.auth.scopes.iter().any(|sc| sc == "openid") {
        add("auth.scopes", "must include \"openid\"".into());
    }
    if let Some(p) = &s.auth.prompt
        && !["none", "login", "consent", "select_account"].contains(&p.as_str())
    {
        add(
            "auth.prompt",
            format!("{p:?} must be one of none, login, consent, select_account"),
        );
    }
    if !(1..=10).contains(&s.auth.http_timeout_secs) {
        add(
            "auth.http_timeout_secs",
            "must be between 1 and 10 seconds".into(),
        );
    }
    if s.auth.clock_leeway_secs > 300 {
        add(
            "auth.clock_leeway_secs",
            "must be at most 300 seconds".into(),
        );
    }

    let db = &s.database.url;
    if !(db.starts_with("sqlite:")
        || db.starts_with("postgres://")
        || db.starts_with("postgresql://"))
    {
        add(
            "database.url",
            "must be sqlite://path?mode=rwc or postgres://user:password@host/db".into(),
        );
    }
    if s.database.max_connections == 0 {
        add("database.max_connections", "must be at least 1".into());
    }

    match s.session.store.as_str() {
        "database" | "sqlite" => {}
        "redis"
            if s.session.redis_url.starts_with("redis://")
                || s.session.redis_url.starts_with("rediss://") => {}
        "redis" => add(
            "session.redis_url",
            "must be set to redis://host:6379 (or rediss:// for TLS) when session.store is redis"
                .into(),
        ),
        other => add(
            "session.store",
            format!("{other:?} must be \"database\" or \"redis\""),
        ),
    }
    if s.session.key.is_none() && !key_unreadable {
        match &s.session.key_file {
            None => add(
                "session.key",
                "is missing; set session.key to a base64 secret of 64+ bytes (`openssl rand -base64 64`) or session.key_file to a file holding one".into(),
            ),
            Some(path) if !s.is_development() && !path.exists() => add(
                "session.key_file",
                format!("{} does not exist; create it with `openssl rand -base64 64 > {}`", path.display(), path.display()),
            ),
            Some(_) => {}
        }
    }
    if s.session.idle_timeout_minutes == 0 || s.session.absolute_timeout_minutes == 0 {
        add(
            "session.idle_timeout_minutes",
            "timeouts must be greater than 0".into(),
        );
    } else if s.session.idle_timeout_minutes > s.session.absolute_timeout_minutes {
        add(
            "session.idle_timeout_minutes",
            "must not exceed session.absolute_timeout_minutes".into(),
        );
    }
}
