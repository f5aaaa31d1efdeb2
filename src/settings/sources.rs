//! Where values come from: `appsettings.json` < `appsettings.{APP_ENV}.json` < `APP__SECTION__KEY`,
//! and a reader that takes each key on its own, noting its origin and any problem.

use std::fmt;
use std::path::Path;

use config::{Config, Environment, File, FileFormat, Map, Value, ValueKind};
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
        let origin = origin(key, raw);
        self.note(key, origin, effective);
    }

    fn note(&mut self, key: &str, origin: String, effective: String) {
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
    /// A section's key (`auth.authority`), or a whole top-level section (`downstream_apis`).
    fn raw(&self, key: &str) -> Option<Value> {
        match key.rsplit_once('.') {
            Some((section, leaf)) => self.config.get_table(section).ok()?.remove(leaf),
            // Read as a table, so each leaf keeps its origin (file or variable) for check-config.
            // A variable holding JSON text replaces the whole section.
            None => match self.config.get_table(key) {
                Ok(t) => Some(Value::new(None, ValueKind::Table(t))),
                Err(_) => self.config.get::<Value>(key).ok(),
            },
        }
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
                    // A secret or a URL with a password must not be echoed, whatever its shape.
                    let shown = if SECRET_KEYS.contains(&key) || URL_KEYS.contains(&key) {
                        "the value".to_owned()
                    } else {
                        format!("{:?}", v.to_string())
                    };
                    self.problem(key, format!("{shown} cannot be read as {hint}"));
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

    /// A list in any of its forms (see [`list_items`]); an unreadable one is a problem naming
    /// the key, and the default is used meanwhile.
    pub fn list(&mut self, key: &str, default: &[&str]) -> Vec<String> {
        let raw = self.raw(key);
        let defaults = || default.iter().map(|s| s.to_string()).collect();
        let (items, form) = match raw.as_ref().map(|raw| list_items(key, raw)) {
            None => (defaults(), None),
            Some(Ok((items, form))) => (items, Some(form)),
            Some(Err(message)) => {
                self.problem(key, message);
                (defaults(), None)
            }
        };
        let items: Vec<String> = items
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let mut origin = origin(key, raw.as_ref());
        if let Some(form) = form.filter(|_| origin.starts_with("env ")) {
            origin = format!("{origin} ({form})");
        }
        self.note(key, origin, format!("[{}]", items.join(", ")));
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

/// Where a value came from: `default`, `env APP__…` or the file name. Indexed keys
/// (`APP__KEY__0`, `__1`) form a table that has no origin of its own; its items have one.
fn origin(key: &str, raw: Option<&Value>) -> String {
    let Some(raw) = raw else {
        return "default".to_owned();
    };
    let from = |o: &str| {
        if o.contains("environment") {
            None
        } else {
            Some(
                Path::new(o)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| o.to_owned()),
            )
        }
    };
    if let ValueKind::Table(table) = &raw.kind {
        let mut subkeys: Vec<&String> = table.keys().collect();
        subkeys.sort_by_key(|k| (k.parse::<u64>().unwrap_or(u64::MAX), k.as_str()));
        // Nested tables (`downstream_apis.graph.base_url`): the first leaf read from a file.
        fn file_of(v: &Value, from: &dyn Fn(&str) -> Option<String>) -> Option<String> {
            v.origin().and_then(from).or_else(|| match &v.kind {
                ValueKind::Table(t) => t.values().find_map(|v| file_of(v, from)),
                _ => None,
            })
        }
        let file = table.values().find_map(|v| file_of(v, &from));
        return match file {
            Some(file) => file,
            None if subkeys.is_empty() => "default".to_owned(),
            None => {
                let vars: Vec<String> = subkeys
                    .iter()
                    .map(|k| format!("{}__{}", env_var(key), k.to_ascii_uppercase()))
                    .collect();
                format!("env {}", vars.join(", "))
            }
        };
    }
    match raw.origin() {
        None => "default".to_owned(),
        Some(o) => from(o).unwrap_or_else(|| format!("env {}", env_var(key))),
    }
}

/// The items of a list value and the name of its form. Files give a JSON array. An
/// environment variable gives text: a JSON array when it starts with `[`
/// (`'["10.0.0.0/8","fd00::/8"]'`), else a comma/space separated list. ASP.NET-style indexed
/// variables (`APP__KEY__0`, `APP__KEY__1`) arrive as a table keyed "0", "1", ordered by index.
/// JSON that does not parse, a non-numeric index or an item that is not text is an error.
fn list_items(key: &str, raw: &Value) -> Result<(Vec<String>, &'static str), String> {
    match &raw.kind {
        ValueKind::Array(values) => Ok((scalars(values.iter())?, "array")),
        ValueKind::Table(table) => {
            let mut indexed = std::collections::BTreeMap::new();
            for (sub, value) in table {
                let index = sub.parse::<u64>().map_err(|_| {
                    format!(
                        "{}__{} is not an indexed entry; number them {}__0, {}__1, …",
                        env_var(key),
                        sub.to_ascii_uppercase(),
                        env_var(key),
                        env_var(key)
                    )
                })?;
                if indexed.insert(index, value).is_some() {
                    return Err(format!("index {index} is given twice"));
                }
            }
            Ok((scalars(indexed.into_values())?, "indexed"))
        }
        ValueKind::String(text) if text.trim_start().starts_with('[') => {
            let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
                format!(
                    "is not a valid JSON array ({e}); a value starting with [ is read as JSON, e.g. [\"a\",\"b\"], or write a comma-separated list"
                )
            })?;
            let items = values
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    serde_json::Value::String(s) => Ok(s),
                    serde_json::Value::Number(_) | serde_json::Value::Bool(_) => Ok(v.to_string()),
                    _ => Err(format!("item {i} of the JSON array is not text: {v}")),
                })
                .collect::<Result<_, _>>()?;
            Ok((items, "JSON array"))
        }
        _ => Ok((
            raw.to_string()
                .split(|c: char| c == ',' || c.is_whitespace())
                .map(str::to_owned)
                .collect(),
            "comma/space list",
        )),
    }
}

/// List items must be text (numbers and booleans are taken as written).
fn scalars<'a>(values: impl Iterator<Item = &'a Value>) -> Result<Vec<String>, String> {
    values
        .enumerate()
        .map(|(i, v)| match &v.kind {
            ValueKind::Table(_) | ValueKind::Array(_) | ValueKind::Nil => {
                Err(format!("item {i} is not text: {v}"))
            }
            _ => Ok(v.to_string()),
        })
        .collect()
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
