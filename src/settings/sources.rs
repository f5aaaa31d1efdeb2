//! Where values come from: `appsettings.json` < `appsettings.{APP_ENV}.json` < `APP__SECTION__KEY`,
//! and a reader that takes each key on its own, noting its origin and any problem.

use std::fmt;
use std::path::Path;

use config::{Config, Environment, File, FileFormat, Map, Value};
use serde::de::DeserializeOwned;

use super::{Entry, Problem, env_var};

/// Keys whose values are never printed.
const SECRET_KEYS: [&str; 2] = ["auth.client_secret", "session.key"];

/// Keys that are URLs which may carry a password.
const URL_KEYS: [&str; 2] = ["database.url", "session.redis_url"];

/// The three layers, merged; an unreadable file is a problem, not a crash.
pub(super) fn layered(
    dir: &Path,
    env_name: &str,
    env: Map<String, String>,
) -> (Config, Vec<Problem>) {
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
    match builder.build() {
        Ok(c) => (c, Vec::new()),
        Err(e) => (
            Config::default(),
            vec![Problem {
                key: "appsettings".into(),
                message: format!("cannot read the settings files: {e}"),
            }],
        ),
    }
}

/// Reads typed values one key at a time.
pub(super) struct Reader<'a> {
    pub config: &'a Config,
    pub problems: Vec<Problem>,
    pub entries: Vec<Entry>,
}

impl Reader<'_> {
    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Notes the effective value of `key` and where it came from.
    pub fn record(&mut self, key: &str, raw: Option<&Value>, effective: String) {
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
    pub fn get<T: DeserializeOwned + fmt::Display>(
        &mut self,
        key: &str,
        default: T,
        hint: &str,
    ) -> T {
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

    pub fn string(&mut self, key: &str, default: &str) -> String {
        self.get::<String>(key, default.to_owned(), "text")
            .trim()
            .to_owned()
    }

    /// A list from a JSON array, or from a comma/space separated string (env vars).
    pub fn list(&mut self, key: &str, default: &[&str]) -> Vec<String> {
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

    /// A structured value (list of objects, map): from the files as JSON, or from an
    /// environment variable holding JSON text. `summary` renders it for `check-config`.
    pub fn structured<T: DeserializeOwned>(
        &mut self,
        key: &str,
        default: T,
        hint: &str,
        summary: impl Fn(&T) -> String,
    ) -> T {
        let raw = self.raw(key);
        let value = match &raw {
            None => default,
            Some(v) => {
                let parsed = match v.clone().into_string() {
                    Ok(text) if text.trim().is_empty() => Ok(None),
                    Ok(text) => serde_json::from_str::<T>(&text)
                        .map(Some)
                        .map_err(|e| e.to_string()),
                    Err(_) => v
                        .clone()
                        .try_deserialize::<T>()
                        .map(Some)
                        .map_err(|e| e.to_string()),
                };
                match parsed {
                    Ok(Some(t)) => t,
                    Ok(None) => default,
                    Err(e) => {
                        self.problem(key, format!("cannot be read as {hint}: {e}"));
                        default
                    }
                }
            }
        };
        let shown = summary(&value);
        self.record(key, raw.as_ref(), shown);
        value
    }
}

fn mask_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("********"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
