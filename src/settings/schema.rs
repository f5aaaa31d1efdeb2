//! Every key rolegate reads, each with its one default (README's settings table mirrors this).

use std::collections::HashMap;
use std::path::PathBuf;

use rolegate_auth::{DEFAULT_ROLES, RuleSpec};
use url::Url;

use super::sources::Reader;
use super::*;

pub(super) fn read(r: &mut Reader<'_>, env: AppEnv) -> Settings {
    let development = env == AppEnv::Development;
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
    let rate_limit_per_minute = r.get(
        "server.rate_limit_per_minute",
        300u32,
        "a whole number of requests (0 = off)",
    );
    let shutdown_timeout_secs = r.get("server.shutdown_timeout_secs", 30u64, "a number of seconds");

    let authority_text = r.string("auth.authority", "");
    let instance = r.string("auth.instance", DEFAULT_INSTANCE);
    let tenant_id = r.string("auth.tenant_id", "");
    let authority = if authority_text.is_empty() {
        derived_authority(r, &instance, &tenant_id)
    } else {
        parse_url(r, "auth.authority", &authority_text)
    };
    let client_id = r.string("auth.client_id", "");
    let client_secret = r.get::<String>("auth.client_secret", String::new(), "text");
    let certificate = super::certificate::read(r, &client_secret);
    let client_auth_method = match r.string("auth.client_auth_method", "auto").parse() {
        Ok(method) => method,
        Err(why) => {
            r.problem("auth.client_auth_method", why);
            rolegate_auth::ClientAuthMethod::Auto
        }
    };
    let base_path = r.string("auth.base_path", "");
    let redirect_path = r.string("auth.redirect_path", "/getAToken");
    let scopes = r.list(
        "auth.scopes",
        &["openid", "profile", "email", "offline_access"],
    );
    let prompt = Some(r.string("auth.prompt", "")).filter(|p| !p.is_empty());
    let allowed_tenants = r.list("auth.allowed_tenants", &[]);
    let api_audiences = r.list("auth.api_audiences", &[]);
    let api_audience = r.string("auth.api_audience", "");
    let api_scopes = r.list("auth.api_scopes", &[rolegate_auth::DEFAULT_API_SCOPE]);
    let jwks_refresh_cooldown_secs = r.get(
        "auth.jwks_refresh_cooldown_secs",
        30u64,
        "a number of seconds",
    );
    let discovery_retry_secs = r.get("auth.discovery_retry_secs", 5u64, "a number of seconds");
    let http_timeout_secs = r.get("auth.http_timeout_secs", 10u64, "a number of seconds");
    let clock_leeway_secs = r.get("auth.clock_leeway_secs", 60u64, "a number of seconds");
    let issuer = r.string("auth.issuer", "");
    let roles_max_age_minutes = r.get(
        "auth.roles_max_age_minutes",
        60u64,
        "a number of minutes (0 = re-check on every request)",
    );
    let roles_grace_minutes = r.get("auth.roles_grace_minutes", 15u64, "a number of minutes");
    let downstream_apis = r.structured::<HashMap<String, DownstreamApiSettings>>(
        "downstream_apis",
        HashMap::new(),
        "an object of API name to {\"base_url\", \"scopes\"}",
        |m| {
            let mut apis: Vec<_> = m.iter().collect();
            apis.sort_by_key(|(name, _)| name.as_str());
            apis.iter()
                .map(|(name, api)| {
                    format!("{name} → {} ({})", api.base_url, api.scopes.0.join(" "))
                })
                .collect::<Vec<_>>()
                .join("; ")
        },
    );
    let b2c_sign_up_sign_in_policy = r.string("auth.b2c.sign_up_sign_in_policy", "");
    let b2c_edit_profile_policy = r.string("auth.b2c.edit_profile_policy", "");
    let b2c_reset_password_policy = r.string("auth.b2c.reset_password_policy", "");

    let roles = r.list("authorization.roles", &DEFAULT_ROLES);
    let group_roles = r.structured::<Option<HashMap<String, String>>>(
        "authorization.group_roles",
        None,
        "an object of group object id to role value",
        |m| match m {
            None => String::new(),
            Some(m) => format!("{} groups mapped", m.len()),
        },
    );
    let role_claim = r.string("authorization.role_claim", "");
    let rules = r.structured::<Vec<RuleSpec>>(
        "authorization.rules",
        Vec::new(),
        "a list of {\"path\", \"role\" or \"access\", \"methods\"} objects",
        |rules| format!("{} rules", rules.len()),
    );
    let default = r.string("authorization.default", "anonymous");

    let database_url = r.string("database.url", "sqlite://data/rolegate.db?mode=rwc");
    let max_connections = r.get("database.max_connections", 8u32, "a whole number");
    let startup_wait_secs = r.get("database.startup_wait_secs", 120u64, "a number of seconds");
    let database_plaintext = r.get("database.allow_plaintext", false, "true or false");

    let store_text = r.string("session.store", "database").to_ascii_lowercase();
    let store = match store_text.as_str() {
        "database" | "sqlite" => StoreKind::Database,
        "redis" => StoreKind::Redis,
        other => {
            r.problem(
                "session.store",
                format!("{other:?} must be \"database\" or \"redis\""),
            );
            StoreKind::Database
        }
    };
    let redis_url = r.get::<String>("session.redis_url", String::new(), "text");
    let session_plaintext = r.get("session.allow_plaintext", false, "true or false");
    let key_text = r.get::<String>("session.key", String::new(), "text");
    let key_file_text = r.string(
        "session.key_file",
        if development { "data/session.key" } else { "" },
    );
    let key_file = Some(key_file_text)
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    let key = if key_text.trim().is_empty() {
        None
    } else {
        decode_key(&key_text)
            .map_err(|msg| r.problem("session.key", msg))
            .ok()
    };
    let token_key = token_key(r, "session.token_key");
    let token_key_file = Some(r.string("session.token_key_file", ""))
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    if token_key.is_some() && token_key_file.is_some() {
        // Two sources of one key: whichever won, a rotation made in the other would be ignored.
        r.problem(
            "session.token_key_file",
            "is set together with session.token_key; set only one of them",
        );
    }
    let token_keys_previous = r
        .list("session.token_keys_previous", &[])
        .into_iter()
        .filter_map(|text| match decode_token_key(&text) {
            Ok(key) => Some(key),
            Err(msg) => {
                r.problem("session.token_keys_previous", format!("an entry {msg}"));
                None
            }
        })
        .collect();
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

    let retention_days = r.get("audit.retention_days", 90u32, "a whole number of days");

    let filter = r.string(
        "log.filter",
        if development {
            "rolegate=debug,rolegate_auth=debug,info"
        } else {
            "info"
        },
    );

    let format_text = r.string("log.format", "text").to_ascii_lowercase();
    let format = match format_text.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            r.problem(
                "log.format",
                format!("{other:?} must be \"text\" (lines for people) or \"json\" (one JSON object a line)"),
            );
            LogFormat::Text
        }
    };

    let metrics_enabled = r.get("metrics.enabled", true, "true or false");
    let metrics_port = r.get::<u16>(
        "metrics.port",
        0,
        "a port number (1-65535), or 0 to serve /metrics on server.port",
    );

    Settings {
        env,
        server: ServerSettings {
            host,
            port,
            public_url,
            trusted_proxies,
            workers,
            rate_limit_per_minute,
            shutdown_timeout_secs,
        },
        auth: AuthSettings {
            authority_derived: authority_text.is_empty() && authority.is_some(),
            authority,
            instance,
            tenant_id,
            client_id,
            client_secret,
            client_certificate_file: certificate.certificate_file,
            client_private_key_file: certificate.private_key_file,
            client_certificate: certificate.certificate,
            client_auth_method,
            base_path,
            redirect_path,
            scopes,
            prompt,
            allowed_tenants,
            api_audiences,
            api_audience,
            api_scopes,
            jwks_refresh_cooldown_secs,
            discovery_retry_secs,
            http_timeout_secs,
            clock_leeway_secs,
            issuer,
            b2c_sign_up_sign_in_policy,
            b2c_edit_profile_policy,
            b2c_reset_password_policy,
            roles_max_age_minutes,
            roles_grace_minutes,
        },
        downstream_apis,
        authorization: AuthorizationSettings {
            roles,
            group_roles,
            role_claim,
            rules,
            default,
        },
        database: DatabaseSettings {
            url: database_url,
            allow_plaintext: database_plaintext,
            max_connections,
            startup_wait_secs,
        },
        session: SessionSettings {
            store,
            redis_url,
            allow_plaintext: session_plaintext,
            key,
            key_file,
            token_key,
            token_key_file,
            token_keys_previous,
            idle_timeout_minutes,
            absolute_timeout_minutes,
        },
        audit: AuditSettings { retention_days },
        log: LogSettings { filter, format },
        metrics: MetricsSettings {
            enabled: metrics_enabled,
            port: metrics_port,
        },
    }
}

/// A token key setting (base64 of 32 bytes); a wrong one is a problem naming `key`.
fn token_key(r: &mut Reader<'_>, key: &str) -> Option<[u8; 32]> {
    let text = r.get::<String>(key, String::new(), "text");
    if text.trim().is_empty() {
        return None;
    }
    decode_token_key(&text)
        .map_err(|msg| r.problem(key, msg))
        .ok()
}

/// Parses a URL; an unusable one is a problem here, whether it must be https is checked later.
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

/// Entra's public cloud, the default `auth.instance` (Microsoft.Identity.Web's `Instance`).
pub const DEFAULT_INSTANCE: &str = "https://login.microsoftonline.com/";

/// `{instance}{tenant_id}/v2.0`, the authority Microsoft's libraries build from `Instance` and
/// `TenantId`; with neither `auth.authority` nor `auth.tenant_id` set, one problem names both.
fn derived_authority(r: &mut Reader<'_>, instance: &str, tenant_id: &str) -> Option<Url> {
    if tenant_id.is_empty() {
        r.problem(
            "auth.authority",
            "is missing, and so is auth.tenant_id: set auth.tenant_id to your Directory (tenant) ID \
             (the authority becomes auth.instance + tenant id + /v2.0, auth.instance defaulting to \
             https://login.microsoftonline.com/), or set auth.authority to your OpenID issuer, \
             e.g. https://login.microsoftonline.com/<tenant-id>/v2.0",
        );
        return None;
    }
    let mut ok = true;
    if tenant_id.contains(['/', '?', '#', '\\', '{', '}'])
        || tenant_id.contains(char::is_whitespace)
    {
        r.problem(
            "auth.tenant_id",
            format!(
                "{tenant_id:?} must be a tenant id (GUID), a domain such as contoso.onmicrosoft.com, \
                 or organizations / common, without slashes"
            ),
        );
        ok = false;
    }
    let instance_url = match Url::parse(instance) {
        Ok(u)
            if u.host().is_some()
                && rolegate_auth::is_secure_or_loopback(&u)
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Some(u)
        }
        _ => {
            r.problem(
                "auth.instance",
                format!(
                    "{instance:?} must be an https URL such as {DEFAULT_INSTANCE} (plain http only \
                     on localhost), with no query or fragment"
                ),
            );
            None
        }
    };
    let instance_url = instance_url.filter(|_| ok)?;
    let base = instance_url.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/{tenant_id}/v2.0")).ok()
}

fn fallback_url(host: &str, port: u16) -> Url {
    Url::parse(&format!("http://{host}:{port}/"))
        .unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("static URL parses"))
}
