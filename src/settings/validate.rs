//! Checks of values against each other. The auth section is checked by the auth crate's own
//! builder, so the rules for what the module accepts live in one place.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rolegate_auth::{Admin, AuthConfig, Read, Role, Write};
use url::Url;

use super::{Problem, Settings, StoreKind};

/// Routes of rolegate's own that the auth routes must not shadow.
const APP_ROUTES: [&str; 3] = ["/healthz", "/api/", "/static/"];

/// The auth crate's configuration from settings, or the problems keyed by settings key.
pub fn auth_config(s: &Settings) -> Result<AuthConfig, Vec<Problem>> {
    auth_config_at(s, SystemTime::now())
}

/// [`auth_config`] with the keys that seal session tokens (the server passes them; checks
/// without them use a throw-away key).
pub fn auth_config_with_keys(
    s: &Settings,
    keys: rolegate_auth::TokenKeys,
) -> Result<AuthConfig, Vec<Problem>> {
    build_auth_config(s, SystemTime::now(), Some(keys))
}

/// [`auth_config`] with the clock given (the client certificate must not be expired at `now`).
pub fn auth_config_at(s: &Settings, now: SystemTime) -> Result<AuthConfig, Vec<Problem>> {
    build_auth_config(s, now, None)
}

fn build_auth_config(
    s: &Settings,
    now: SystemTime,
    keys: Option<rolegate_auth::TokenKeys>,
) -> Result<AuthConfig, Vec<Problem>> {
    let a = &s.auth;
    let z = &s.authorization;
    let mut builder = AuthConfig::builder(
        a.authority
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        a.client_id.clone(),
        s.server.public_url.to_string(),
    )
    .client_secret(a.client_secret.clone())
    .client_certificate(a.client_certificate.clone())
    .client_auth_method(a.client_auth_method)
    .base_path(a.base_path.clone())
    .redirect_path(a.redirect_path.clone())
    .scopes(a.scopes.clone())
    .prompt(a.prompt.clone())
    .allowed_tenants(a.allowed_tenants.clone())
    .api_audiences(a.api_audiences.clone())
    .api_scopes(a.api_scopes.clone())
    .jwks_refresh_cooldown(Duration::from_secs(a.jwks_refresh_cooldown_secs))
    .discovery_retry(Duration::from_secs(a.discovery_retry_secs))
    .http_timeout(Duration::from_secs(a.http_timeout_secs))
    .clock_leeway_secs(a.clock_leeway_secs)
    .idle_timeout(minutes(s.session.idle_timeout_minutes))
    .absolute_timeout(minutes(s.session.absolute_timeout_minutes))
    .roles_max_age(minutes(a.roles_max_age_minutes))
    .roles_grace(minutes(a.roles_grace_minutes))
    .roles(z.roles.clone())
    .rules(z.rules.clone())
    .default_access(z.default.clone())
    // The DemoApp's handlers guard notes and the admin console with these.
    .code_roles([Read::NAME, Write::NAME, Admin::NAME]);
    if !a.api_audience.trim().is_empty() {
        #[allow(deprecated)] // still honoured; `deprecations` tells the operator
        {
            builder = builder.api_audience(Some(a.api_audience.clone()));
        }
    }
    if let Some(map) = &z.group_roles {
        builder = builder.group_roles(map.clone());
    }
    if !z.role_claim.is_empty() {
        builder = builder.role_claim(z.role_claim.clone());
    }
    if let Some(keys) = keys {
        builder = builder.token_keys(keys);
    }
    let mut apis: Vec<_> = s.downstream_apis.iter().collect();
    apis.sort_by_key(|(name, _)| name.as_str());
    for (name, api) in apis {
        builder = builder.downstream_api(name.clone(), api.base_url.clone(), api.scopes.0.clone());
    }
    let set = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    builder = builder
        .issuer(set(&a.issuer))
        .b2c_policies(rolegate_auth::B2cPolicies {
            sign_up_sign_in: set(&a.b2c_sign_up_sign_in_policy),
            edit_profile: set(&a.b2c_edit_profile_policy),
            reset_password: set(&a.b2c_reset_password_policy),
        });
    builder.build_at(now).map_err(|e| {
        e.problems
            .into_iter()
            .map(|p| Problem {
                key: settings_key(&p.field),
                message: p.message,
            })
            .collect()
    })
}

/// Settings that still work but should be changed, one sentence each (check-config and the
/// start-up log show them).
pub fn deprecations(s: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    if !s.auth.api_audience.trim().is_empty() {
        out.push(format!(
            "auth.api_audience is deprecated: its value {:?} is added to auth.api_audiences; \
             move it there (APP__AUTH__API_AUDIENCES)",
            s.auth.api_audience.trim()
        ));
    }
    out
}

/// Settings that work but let more in than most deployments want, or that are ignored, one
/// sentence each (check-config and the start-up log show them beside the deprecations).
pub fn warnings(s: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let tenants: Vec<&str> = s.auth.allowed_tenants.iter().map(|t| t.trim()).collect();
    if tenants == [rolegate_auth::ANY_TENANT] {
        out.push(
            "auth.allowed_tenants is [\"*\"]: every Entra tenant may sign in, and an admin of any \
             tenant can give themselves this app's roles there; list your tenant ids instead \
             unless this is a public multi-tenant app"
                .to_owned(),
        );
    }
    if !s.auth.authority_derived && !s.auth.tenant_id.is_empty() {
        out.push(format!(
            "auth.authority is set, so auth.tenant_id ({:?}) and auth.instance are ignored; \
             remove one or the other",
            s.auth.tenant_id
        ));
    }
    out
}

/// A settings value in minutes; saturating, so a huge value is refused by the builder's bound
/// instead of overflowing.
fn minutes(m: u64) -> Duration {
    Duration::from_secs(m.saturating_mul(60))
}

/// The settings key of an auth builder field.
fn settings_key(field: &str) -> String {
    let leaf = field.split('[').next().unwrap_or(field);
    match leaf {
        "public_url" => "server.public_url".to_owned(),
        "idle_timeout" => "session.idle_timeout_minutes".to_owned(),
        "absolute_timeout" => "session.absolute_timeout_minutes".to_owned(),
        "roles" | "group_roles" | "rules" | "default" => format!("authorization.{field}"),
        "role_claim" => "authorization.role_claim".to_owned(),
        _ if field.starts_with("downstream_apis.") => field.to_owned(),
        _ => format!("auth.{field}"),
    }
}

/// Cross-field and semantic checks; pushes every problem found, one per key at most from the
/// auth builder when reading already reported that key.
pub(super) fn validate(s: &Settings, problems: &mut Vec<Problem>, now: SystemTime) {
    let key_unreadable = problems.iter().any(|p| p.key == "session.key");
    let mut found = Vec::new();
    let mut add = |key: &str, message: String| {
        found.push(Problem {
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
    let rp = format!(
        "{}{}",
        s.auth.base_path.trim_end_matches('/'),
        s.auth.redirect_path
    );
    if APP_ROUTES
        .iter()
        .any(|r| rp == r.trim_end_matches('/') || rp.starts_with(r))
    {
        add(
            "auth.redirect_path",
            format!("{rp:?} clashes with one of rolegate's own routes"),
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
    if !s.is_development() {
        transport(s, &mut add);
    }
    bounds(s, &mut add);
    metrics(s, &mut add);

    if s.session.store == StoreKind::Redis
        && !(s.session.redis_url.starts_with("redis://")
            || s.session.redis_url.starts_with("rediss://"))
    {
        add(
            "session.redis_url",
            "must be set to redis://host:6379 (or rediss:// for TLS) when session.store is redis"
                .into(),
        );
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

    // A bad auth.instance or auth.tenant_id already says why there is no authority.
    let derivation_failed = problems
        .iter()
        .any(|q| q.key == "auth.instance" || q.key == "auth.tenant_id");
    if let Err(auth_problems) = auth_config_at(s, now) {
        for p in auth_problems {
            if derivation_failed && p.key == "auth.authority" {
                continue;
            }
            // A certificate file that did not load is reported under its own key already.
            let echo = p.key == "auth.client_secret" && super::certificate::failed(problems);
            if !echo && !problems.iter().any(|q| q.key == p.key) {
                found.push(p);
            }
        }
    }
    problems.extend(found);
}

/// Highest `server.rate_limit_per_minute`: above it the limit protects nothing.
const MAX_RATE_LIMIT_PER_MINUTE: u32 = 100_000;
/// Highest `server.shutdown_timeout_secs`: past it an orchestrator kills the process anyway.
pub const MAX_SHUTDOWN_TIMEOUT_SECS: u64 = 3600;
/// Highest `audit.retention_days` (ten years); 0 keeps rows forever.
const MAX_RETENTION_DAYS: u32 = 3650;

/// Ranges of values that are legal but unsafe or meaningless.
fn bounds(s: &Settings, add: &mut impl FnMut(&str, String)) {
    for net in s
        .server
        .trusted_proxies
        .iter()
        .filter(|n| n.prefix_len() == 0)
    {
        add(
            "server.trusted_proxies",
            format!(
                "{net} trusts every address to set X-Forwarded-For, so any client could choose its IP; list your proxies' addresses or ranges (prefix length 1 or more, e.g. 10.0.0.0/8)"
            ),
        );
    }
    if s.server.rate_limit_per_minute > MAX_RATE_LIMIT_PER_MINUTE {
        add(
            "server.rate_limit_per_minute",
            format!(
                "must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE} requests a minute, or 0 to turn the limit off"
            ),
        );
    }
    if !(1..=MAX_SHUTDOWN_TIMEOUT_SECS).contains(&s.server.shutdown_timeout_secs) {
        add(
            "server.shutdown_timeout_secs",
            format!(
                "must be between 1 and {MAX_SHUTDOWN_TIMEOUT_SECS} seconds: how long in-flight requests may run after SIGTERM (keep it below your orchestrator's kill grace period, e.g. Kubernetes' terminationGracePeriodSeconds)"
            ),
        );
    }
    if s.audit.retention_days > MAX_RETENTION_DAYS {
        add(
            "audit.retention_days",
            format!(
                "must be between 1 and {MAX_RETENTION_DAYS} days (10 years), or 0 to keep rows forever"
            ),
        );
    }
}

/// A separate metrics listener must not be the main one.
fn metrics(s: &Settings, add: &mut impl FnMut(&str, String)) {
    if s.metrics.enabled && s.metrics.port != 0 && s.metrics.port == s.server.port {
        add(
            "metrics.port",
            format!(
                "is {} like server.port; choose another port for /metrics, or 0 to serve it on server.port",
                s.metrics.port
            ),
        );
    }
}

/// Outside Development, the database and the Redis session store must use TLS unless they are
/// on this machine or `allow_plaintext` says the network is trusted: session rows hold tokens.
fn transport(s: &Settings, add: &mut impl FnMut(&str, String)) {
    let db = &s.database.url;
    if !s.database.allow_plaintext
        && (db.starts_with("postgres://") || db.starts_with("postgresql://"))
    {
        match Url::parse(db) {
            Err(e) => add("database.url", format!("is not a valid URL: {e}")),
            Ok(url) => {
                let (host, tls) = postgres_transport(&url);
                if !tls && !is_local(&host) {
                    add(
                        "database.url",
                        format!(
                            "connects to PostgreSQL on {host} without TLS, and session rows hold tokens: add ?sslmode=verify-full (or verify-ca, require) to the URL, or set database.allow_plaintext to true if that network is trusted"
                        ),
                    );
                }
            }
        }
    }
    if s.session.store == StoreKind::Redis
        && !s.session.allow_plaintext
        && let Ok(url) = Url::parse(&s.session.redis_url)
        && url.scheme() == "redis"
    {
        let host = url.host_str().unwrap_or_default();
        if !is_local(host) {
            add(
                "session.redis_url",
                format!(
                    "connects to Redis on {host} without TLS, and session rows hold tokens: use rediss:// (TLS), or set session.allow_plaintext to true if that network is trusted"
                ),
            );
        }
    }
}

/// The host a PostgreSQL URL reaches and whether it demands TLS. As in sqlx, a `host` or
/// `hostaddr` in the query overrides the authority and the last `sslmode` counts; only
/// `require`, `verify-ca` and `verify-full` refuse a plaintext connection.
fn postgres_transport(url: &Url) -> (String, bool) {
    let mut host = url.host_str().unwrap_or_default().to_owned();
    let mut tls = false;
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "host" | "hostaddr" => host = value.into_owned(),
            "sslmode" | "ssl-mode" => {
                tls = ["require", "verify-ca", "verify-full"]
                    .iter()
                    .any(|m| value.eq_ignore_ascii_case(m));
            }
            _ => {}
        }
    }
    (host, tls)
}

/// `localhost`, a loopback address (127.0.0.0/8, ::1, ::ffff:127.x), a Unix socket path, or no
/// host at all (the driver's local default): traffic that never leaves the machine.
fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.starts_with('/') || host.to_ascii_lowercase().starts_with("%2f") {
        return true;
    }
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}
