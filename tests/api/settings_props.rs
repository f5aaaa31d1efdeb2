//! Property tests of list and URL settings read from the environment: `server.trusted_proxies`,
//! `auth.scopes`, `server.public_url` and `auth.authority`, loaded the way the binary loads
//! them (repo files, Development, generated `APP__...` values).

use std::collections::BTreeSet;

use proptest::prelude::*;
use rolegate::settings::{self, Loaded};

/// What `APP__AUTH__CLIENT_SECRET` holds; it must never show up in what loading reports.
const MARKER: &str = "Sekr1t-MARKER-5a7c";

/// Cases for the property. Loading reads and parses the settings files every time, which is far
/// slower than a pure parser; see the README note in the report for the timing.
const CASES: u32 = 10_000;

/// The settings keys the generated variables set.
const SET_KEYS: [(&str, &str); 4] = [
    ("APP__SERVER__TRUSTED_PROXIES", "server.trusted_proxies"),
    ("APP__AUTH__SCOPES", "auth.scopes"),
    ("APP__SERVER__PUBLIC_URL", "server.public_url"),
    ("APP__AUTH__AUTHORITY", "auth.authority"),
];

/// An item of a proxy list: valid, out of range, open to all, or junk.
fn proxy_item() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "10.0.0.0/8", "fd00::/8", "127.0.0.1", "::1", "192.168.1.10/32", "0.0.0.0/0", "::/0",
            "300.1.1.1/33", "10.0.0.0/99", "1.2.3", "fe80::1%eth0", "[::1]", "::ffff:10.0.0.1",
            "10.0.0.0/", "/8", "*", "localhost", "", "\"10.0.0.1\"", "10.0.0.1,", "١٢٣.1.1.1",
        ])
        .prop_map(str::to_owned),
        2 => (any::<[u8; 4]>(), 0u8..40).prop_map(|(a, p)| {
            format!("{}.{}.{}.{}/{p}", a[0], a[1], a[2], a[3])
        }),
        1 => (any::<[u16; 8]>(), 0u16..140).prop_map(|(a, p)| {
            let parts: Vec<String> = a.iter().map(|x| format!("{x:x}")).collect();
            format!("{}/{p}", parts.join(":"))
        }),
        1 => ".{0,12}",
    ]
}

/// A scope: real ones, odd ones, junk.
fn scope_item() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "openid", "profile", "email", "offline_access", "api://rolegate/.default", "OPENID",
            "open id", "", "\"openid\"", "openid\n", "a\u{0}b", "https://graph.microsoft.com/User.Read",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

/// A list setting in the forms people write: comma/space lists, JSON arrays (well formed or
/// not), brackets, odd separators, or any text at all.
fn list_text(item: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (
            prop::collection::vec(item.clone(), 0..6),
            prop::sample::select(vec![",", ", ", " ", ";", "\n", ",,", "\t"]),
        )
            .prop_map(|(items, sep)| items.join(sep)),
        3 => prop::collection::vec(item.clone(), 0..6)
            .prop_map(|items| serde_json::to_string(&items).unwrap_or_default()),
        1 => prop::collection::vec(item, 0..4).prop_map(|items| format!("[{}]", items.join(","))),
        1 => prop::sample::select(vec![
            "[", "]", "[]", "{}", "null", "[null]", "[1,2]", "[[\"10.0.0.0/8\"]]", "{\"a\":1}",
            "[\"openid\",", "\"openid\"", "true",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,40}",
    ]
}

/// A URL-ish value: scheme, userinfo, host, port, path, query, fragment, each often wrong.
fn url_text() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "https://",
        "http://",
        "HTTPS://",
        "ftp://",
        "javascript:",
        "https:",
        "https:///",
        "//",
        "",
        "file://",
        "https:\\\\",
    ]);
    let userinfo = prop::sample::select(vec!["", "", "", "user@", "user:pass@", "@", "a:b:c@"]);
    let host = prop::sample::select(vec![
        "app.example.com",
        "127.0.0.1",
        "localhost",
        "[::1]",
        "[::1",
        "::1",
        "10.0.0.1",
        "login.microsoftonline.com",
        "xn--nxasmq6b.example",
        "exämple.com",
        "",
        ".",
        "a..b",
        "999.999.999.999",
        "0x7f.1",
        "host with space",
        "%68ost",
        "evil.example#@good.example",
    ]);
    let port = prop::sample::select(vec![
        "",
        "",
        ":443",
        ":8000",
        ":0",
        ":65535",
        ":65536",
        ":99999999999",
        ":",
        ":abc",
    ]);
    let path = prop::sample::select(vec![
        "",
        "",
        "/",
        "/v2.0",
        "/{tenantid}/v2.0",
        "/common/v2.0",
        "/sub/path",
        "/%2e%2e/",
        "/a b",
        "/\u{0}",
        "/../..",
        "?x=1",
        "#frag",
        "/?q=%ZZ",
        "//double",
    ]);
    prop_oneof![
        6 => (scheme, userinfo, host, port, path)
            .prop_map(|(s, u, h, p, pa)| format!("{s}{u}{h}{p}{pa}")),
        1 => (".{0,8}", ".{0,24}").prop_map(|(a, b)| format!("{a}://{b}")),
        1 => ".{0,30}",
        1 => (1usize..3000).prop_map(|n| format!("https://{}.example", "a".repeat(n))),
    ]
}

/// An indexed form of a list key, as ASP.NET writes list elements in the environment.
fn indexed_key() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["APP__SERVER__TRUSTED_PROXIES", "APP__AUTH__SCOPES"]),
        prop::sample::select(vec!["0", "1", "2", "10", "x", ""]),
    )
        .prop_map(|(key, index)| format!("{key}__{index}"))
}

/// The four values, each present or absent (absent keeps the Development file's value).
fn settings_env() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        prop::option::weighted(0.8, list_text(proxy_item().boxed())),
        prop::option::weighted(0.8, list_text(scope_item().boxed())),
        prop::option::weighted(0.8, url_text()),
        prop::option::weighted(0.8, url_text()),
        prop::sample::select(vec![
            "", "", "\u{0}", " ", "\n", "\"", "\\", "%", "{", "${X}",
        ]),
        prop::collection::vec((indexed_key(), proxy_item()), 0..3),
    )
        .prop_map(|(proxies, scopes, public, authority, around, indexed)| {
            let mut env = Vec::new();
            for (key, value) in SET_KEYS
                .iter()
                .map(|(k, _)| *k)
                .zip([proxies, scopes, public, authority])
            {
                if let Some(v) = value {
                    env.push((key.to_owned(), v));
                }
            }
            // ASP.NET-style indexed keys (`APP__SERVER__TRUSTED_PROXIES__0`), alone or beside
            // the plain key.
            env.extend(indexed);
            // The secret, sometimes wrapped in characters a message might quote or escape.
            env.push((
                "APP__AUTH__CLIENT_SECRET".to_owned(),
                format!("{around}{MARKER}{around}"),
            ));
            env
        })
}

fn load(env: &[(String, String)]) -> Loaded {
    let map = env.iter().cloned().collect();
    settings::load(std::path::Path::new("."), Some("Development"), map)
}

/// The settings key of a problem key that names an element (`authorization.rules[2]`).
fn base_key(key: &str) -> &str {
    key.split('[').next().unwrap_or(key)
}

/// Checks one loaded result: the invariant of the property.
fn check(env: &[(String, String)], loaded: &Loaded) -> Result<(), TestCaseError> {
    // Every key loading read is in the check-config report: those are the known keys.
    let known: BTreeSet<&str> = loaded.entries.iter().map(|e| e.key.as_str()).collect();
    let set: BTreeSet<&str> = SET_KEYS
        .iter()
        .filter(|(var, _)| env.iter().any(|(k, _)| k.starts_with(var)))
        .map(|(_, key)| *key)
        .collect();
    for p in &loaded.problems {
        let key = base_key(&p.key);
        prop_assert!(
            set.contains(key) || known.contains(key),
            "problem keyed {:?} is neither set nor a known key: {}",
            p.key,
            p
        );
        // Neither the marker nor its debug-escaped form (a value quoted with {:?}).
        prop_assert!(
            !p.to_string().contains(MARKER) && !p.message.contains(MARKER),
            "a problem echoes the client secret: {}",
            p
        );
    }
    for e in &loaded.entries {
        prop_assert!(
            !e.value.contains(MARKER) && !e.origin.contains(MARKER),
            "check-config shows the client secret: {} = {}",
            e.key,
            e.value
        );
    }
    let secret = loaded
        .entries
        .iter()
        .find(|e| e.key == "auth.client_secret");
    prop_assert!(secret.is_some_and(|e| e.value == "******** (set)"));
    prop_assert!(
        !format!("{:?}", loaded.problems).contains(MARKER),
        "the problems' Debug form holds the client secret"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Invariant: loading never panics; every problem is keyed by a key that was set or one
    /// loading knows (it appears in the check-config report); the client secret appears in no
    /// problem and no check-config entry.
    #[test]
    fn list_and_url_settings_never_panic_nor_leak_the_secret(env in settings_env()) {
        let loaded = load(&env);
        check(&env, &loaded)?;
    }
}

/// Whether any problem or check-config entry of `loaded` holds `secret`.
fn leaks(loaded: &Loaded, secret: &str) -> Vec<String> {
    let mut found: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| p.to_string())
        .filter(|p| p.contains(secret))
        .collect();
    found.extend(
        loaded
            .entries
            .iter()
            .filter(|e| e.value.contains(secret))
            .map(|e| format!("check-config {} = {}", e.key, e.value)),
    );
    found
}

/// Found while fuzzing the settings: a secret that is not read as text (an indexed/nested
/// environment key such as `APP__AUTH__CLIENT_SECRET__0`, or an array or object in
/// appsettings*.json) was quoted whole in the "cannot be read as text" problem.
#[test]
fn a_secret_that_is_not_text_is_not_echoed() {
    for (key, value) in [
        ("APP__AUTH__CLIENT_SECRET__0", MARKER),
        ("APP__AUTH__CLIENT_SECRET__VALUE", MARKER),
        ("APP__SESSION__KEY__0", MARKER),
    ] {
        let env = vec![(key.to_owned(), value.to_owned())];
        let found = leaks(&load(&env), MARKER);
        assert!(found.is_empty(), "{key} echoed: {found:?}");
    }
    let dir = crate::helpers::temp_dir();
    for body in [
        format!(r#"{{"auth": {{"client_secret": ["{MARKER}"]}}}}"#),
        format!(r#"{{"auth": {{"client_secret": {{"value": "{MARKER}"}}}}}}"#),
        format!(r#"{{"session": {{"key": ["{MARKER}"]}}}}"#),
    ] {
        std::fs::write(dir.join("appsettings.json"), &body).unwrap();
        let loaded = settings::load(&dir, Some("Production"), Default::default());
        let found = leaks(&loaded, MARKER);
        assert!(found.is_empty(), "{body} echoed: {found:?}");
    }
}
