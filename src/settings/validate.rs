//! Checks of values against each other. The auth section is checked by the auth crate's own
//! builder, so the rules for what the module accepts live in one place.

use std::time::Duration;

use rolegate_auth::{Admin, AuthConfig, Read, Role, Write};

use super::{Problem, Settings, StoreKind};

/// Routes of rolegate's own that the auth routes must not shadow.
const APP_ROUTES: [&str; 3] = ["/healthz", "/api/", "/static/"];

/// The auth crate's configuration from settings, or the problems keyed by settings key.
pub fn auth_config(s: &Settings) -> Result<AuthConfig, Vec<Problem>> {
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
    .base_path(a.base_path.clone())
    .redirect_path(a.redirect_path.clone())
    .scopes(a.scopes.clone())
    .prompt(a.prompt.clone())
    .allowed_tenants(a.allowed_tenants.clone())
    .api_audience(Some(a.api_audience.clone()))
    .jwks_refresh_cooldown(Duration::from_secs(a.jwks_refresh_cooldown_secs))
    .discovery_retry(Duration::from_secs(a.discovery_retry_secs))
    .http_timeout(Duration::from_secs(a.http_timeout_secs))
    .clock_leeway_secs(a.clock_leeway_secs)
    .idle_timeout(Duration::from_secs(s.session.idle_timeout_minutes * 60))
    .absolute_timeout(Duration::from_secs(s.session.absolute_timeout_minutes * 60))
    .roles(z.roles.clone())
    .rules(z.rules.clone())
    .default_access(z.default.clone())
    // The DemoApp's handlers guard notes and the admin console with these.
    .code_roles([Read::NAME, Write::NAME, Admin::NAME]);
    if let Some(map) = &z.group_roles {
        builder = builder.group_roles(map.clone());
    }
    builder.build().map_err(|e| {
        e.problems
            .into_iter()
            .map(|p| Problem {
                key: settings_key(&p.field),
                message: p.message,
            })
            .collect()
    })
}

/// The settings key of an auth builder field.
fn settings_key(field: &str) -> String {
    let leaf = field.split('[').next().unwrap_or(field);
    match leaf {
        "public_url" => "server.public_url".to_owned(),
        "idle_timeout" => "session.idle_timeout_minutes".to_owned(),
        "roles" | "group_roles" | "rules" | "default" => format!("authorization.{field}"),
        _ => format!("auth.{field}"),
    }
}

/// Cross-field and semantic checks; pushes every problem found, one per key at most from the
/// auth builder when reading already reported that key.
pub(super) fn validate(s: &Settings, problems: &mut Vec<Problem>) {
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

    if let Err(auth_problems) = auth_config(s) {
        for p in auth_problems {
            if !problems.iter().any(|q| q.key == p.key) {
                found.push(p);
            }
        }
    }
    problems.extend(found);
}
