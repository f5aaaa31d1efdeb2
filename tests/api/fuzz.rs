//! Fuzzing a running app: 10,000 generated callback queries and 1,000 malformed session
//! cookies. Nothing may answer 5xx, the app keeps answering, no session is created, and
//! `/healthz` is still 200 at the end. The generator is seeded: a failure prints its seed, and
//! `ROLEGATE_FUZZ_SEED=<seed>` replays it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, CookieJar, Key};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reqwest::header::{COOKIE, HeaderValue};

use crate::helpers::spawn_app_with;

/// The seed used unless `ROLEGATE_FUZZ_SEED` is set.
const DEFAULT_SEED: u64 = 0x5EED_0013_F022;
const CALLBACK_QUERIES: usize = 10_000;
const COOKIES: usize = 1_000;
/// Requests in flight at once: a few, on a 2-core machine.
const IN_FLIGHT: usize = 4;
/// The plain-http test app's session cookie.
const COOKIE_NAME: &str = "rolegate_session";
/// The paths each malformed cookie is sent to (the callback gets a generated query as well).
const COOKIE_PATHS: [&str; 4] = ["/", "/notes", "/api/me", "/getAToken"];

/// Characters a query can carry unescaped without the URL parser re-encoding them.
const RAW_QUERY_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$'()*,;:@/?+=&";

fn seed() -> u64 {
    std::env::var("ROLEGATE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

fn runner(seed: u64) -> TestRunner {
    let bytes: Vec<u8> = seed
        .to_le_bytes()
        .iter()
        .cycle()
        .take(32)
        .copied()
        .collect();
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

fn sample<S: Strategy>(strategy: &S, runner: &mut TestRunner) -> S::Value {
    strategy
        .new_tree(runner)
        .map(|tree| tree.current())
        .unwrap_or_else(|e| panic!("generator failed: {e}"))
}

/// A value's bytes, written raw when safe or as `%XX` (control bytes, high bytes, broken
/// UTF-8), plus broken escapes and values near and past the parser's limits.
fn query_value() -> impl Strategy<Value = String> {
    let byte = prop_oneof![
        6 => prop::sample::select(RAW_QUERY_CHARS.to_vec()),
        2 => 0u8..0x20,
        1 => Just(0x7fu8),
        2 => 0x80u8..=0xff,
        1 => prop::sample::select(b" #%&=+\"<>\\".to_vec()),
    ];
    prop_oneof![
        6 => (prop::collection::vec((byte, any::<bool>()), 0..40)).prop_map(|bytes| {
            bytes
                .into_iter()
                .map(|(b, raw)| {
                    if raw && RAW_QUERY_CHARS.contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        }),
        2 => prop::sample::select(vec![
            "%", "%%", "%G1", "%0", "%C3%28", "%ED%A0%80", "%F4%90%80%80", "%C0%AF", "%EF%BF%BD",
            "%E2%80%A8", "%C2%85", "%00", "%0D%0ASet-Cookie:%20x=1", "+", "%2B", "",
            "https://evil.example", "https%3A%2F%2Fevil.example",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec![1023usize, 1024, 1025, 8191, 8192, 8193, 16_500, 20_000])
            .prop_map(|n| "a".repeat(n)),
        2 => "[a-zA-Z0-9_-]{16,64}",
    ]
}

/// A parameter name: the ones the callback reads (so duplicates are common), ignored ones, junk.
fn query_key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "code", "state", "error", "error_description", "iss", "session_state",
        ])
        .prop_map(str::to_owned),
        2 => prop::sample::select(vec![
            "client_info", "c%6Fde", "st%61te", "%00", "code%00", "STATE", "", "%FF", "next",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_]{0,10}",
    ]
}

/// A whole callback query.
fn callback_query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            query_key(),
            prop::sample::select(vec!["=", "=", "=", "", "=="]),
            query_value(),
            prop::sample::select(vec!["&", "&", "&", "&&", ";"]),
        ),
        0..8,
    )
    .prop_map(|pairs| {
        let mut q = String::new();
        for (i, (k, eq, v, sep)) in pairs.into_iter().enumerate() {
            if i > 0 {
                q.push_str(sep);
            }
            q.push_str(&k);
            q.push_str(eq);
            q.push_str(&v);
        }
        q
    })
}

/// The kinds of malformed session cookie sent.
#[derive(Debug, Clone)]
enum BadCookie {
    /// Any bytes a header value can carry (visible ASCII, space, tab, obs-text).
    Bytes(Vec<u8>),
    /// Base64-looking junk of any length, padding or not.
    Base64(String),
    /// Very long (4 KiB to 16 KiB).
    Long(usize, u8),
    /// Encrypted with the app's key around a session id that does not exist.
    UnknownId(String),
    /// Encrypted with another key: a wrong signature.
    WrongKey(String, [u8; 64]),
    /// A correctly encrypted cookie with one character changed.
    Tampered(String, usize, u8),
    /// Several session cookies in one header, or a bare name.
    Odd(&'static str),
}

fn bad_cookie() -> impl Strategy<Value = BadCookie> {
    let header_byte = prop_oneof![
        8 => 0x21u8..=0x7e,
        1 => Just(b' '),
        1 => Just(b'\t'),
        2 => 0x80u8..=0xff,
    ];
    prop_oneof![
        3 => prop::collection::vec(header_byte, 0..200).prop_map(BadCookie::Bytes),
        3 => "[A-Za-z0-9+/_-]{0,120}={0,3}".prop_map(BadCookie::Base64),
        1 => (4096usize..16_384, prop::sample::select(b"aZ9+/=%.".to_vec()))
            .prop_map(|(n, c)| BadCookie::Long(n, c)),
        2 => "[A-Za-z0-9]{0,80}".prop_map(BadCookie::UnknownId),
        2 => ("[A-Za-z0-9]{32,64}", any::<[u8; 32]>()).prop_map(|(id, half)| {
            let mut key = [0u8; 64];
            key[..32].copy_from_slice(&half);
            key[32..].copy_from_slice(&half);
            BadCookie::WrongKey(id, key)
        }),
        2 => ("[A-Za-z0-9]{32,64}", any::<usize>(), prop::sample::select(b"A/+=x%".to_vec()))
            .prop_map(|(id, at, c)| BadCookie::Tampered(id, at, c)),
        1 => prop::sample::select(vec![
            "rolegate_session",
            "rolegate_session=",
            "rolegate_session=a; rolegate_session=b",
            "rolegate_session=\"quoted\"",
            "rolegate_session=%00%0d%0a",
            "=rolegate_session",
            ";;;rolegate_session=;;",
            "other=1; rolegate_session=x; rolegate_session=y; third=3",
        ])
        .prop_map(BadCookie::Odd),
    ]
}

/// Encrypts `value` the way actix-session does (private cookie) with `key`.
fn encrypted(value: &str, key: &Key) -> String {
    let mut jar = CookieJar::new();
    jar.private_mut(key)
        .add(Cookie::new(COOKIE_NAME, value.to_owned()));
    jar.get(COOKIE_NAME)
        .map(|c| c.value().to_owned())
        .unwrap_or_default()
}

/// The `Cookie` header for a malformed cookie, or `None` if it cannot be a header value.
fn cookie_header(cookie: &BadCookie, app_key: &Key) -> Option<HeaderValue> {
    let text = |value: String| format!("{COOKIE_NAME}={value}").into_bytes();
    let bytes = match cookie {
        BadCookie::Bytes(b) => {
            let mut v = format!("{COOKIE_NAME}=").into_bytes();
            v.extend_from_slice(b);
            v
        }
        BadCookie::Base64(s) => text(s.clone()),
        BadCookie::Long(n, c) => text((*c as char).to_string().repeat(*n)),
        BadCookie::UnknownId(id) => text(encrypted(id, app_key)),
        BadCookie::WrongKey(id, key) => text(encrypted(id, &Key::from(&key[..]))),
        BadCookie::Tampered(id, at, c) => {
            let mut value = encrypted(id, app_key).into_bytes();
            if !value.is_empty() {
                let at = at % value.len();
                value[at] = if value[at] == *c { b'B' } else { *c };
            }
            text(String::from_utf8_lossy(&value).into_owned())
        }
        BadCookie::Odd(s) => s.as_bytes().to_vec(),
    };
    HeaderValue::from_bytes(&bytes).ok()
}

/// One request to send: path with query, and the Cookie header if any.
struct Probe {
    path_and_query: String,
    cookie: Option<HeaderValue>,
}

/// What went wrong with a probe.
struct Failure {
    index: usize,
    what: String,
}

/// How many answers had each status, for the log: shows what the run exercised.
type Statuses = std::collections::BTreeMap<u16, usize>;

/// Sends every probe, `IN_FLIGHT` at a time, on one client; returns the failures (5xx, or no
/// answer at all) and the count of each status.
async fn send_all(
    client: &reqwest::Client,
    base: &str,
    probes: Vec<Probe>,
) -> (Vec<Failure>, Statuses) {
    let probes = Arc::new(probes);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, base, probes, next) = (
            client.clone(),
            base.to_owned(),
            probes.clone(),
            next.clone(),
        );
        tasks.spawn(async move {
            let mut failures = Vec::new();
            let mut statuses = Statuses::new();
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(probe) = probes.get(index) else {
                    break;
                };
                let Ok(mut url) = url::Url::parse(&base) else {
                    break;
                };
                let (path, query) = probe
                    .path_and_query
                    .split_once('?')
                    .map_or((probe.path_and_query.as_str(), None), |(p, q)| (p, Some(q)));
                url.set_path(path);
                url.set_query(query);
                let mut request = client.get(url);
                if let Some(cookie) = &probe.cookie {
                    request = request.header(COOKIE, cookie.clone());
                }
                let sent = request.send().await;
                if let Ok(response) = &sent {
                    *statuses.entry(response.status().as_u16()).or_default() += 1;
                }
                match sent {
                    Ok(response) if response.status().is_server_error() => {
                        let status = response.status();
                        let body = response.text().await.unwrap_or_default();
                        failures.push(Failure {
                            index,
                            what: format!(
                                "{status} for {:?} cookie {:?}: {}",
                                probe.path_and_query.chars().take(300).collect::<String>(),
                                probe.cookie,
                                body.chars().take(300).collect::<String>()
                            ),
                        });
                    }
                    Ok(response) => {
                        // Read the body so the connection is reused.
                        let _ = response.bytes().await;
                    }
                    Err(e) => failures.push(Failure {
                        index,
                        what: format!(
                            "no answer for {:?} cookie {:?}: {}",
                            probe.path_and_query.chars().take(300).collect::<String>(),
                            probe.cookie,
                            e.without_url()
                        ),
                    }),
                }
            }
            (failures, statuses)
        });
    }
    let mut failures = Vec::new();
    let mut statuses = Statuses::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((f, s)) => {
                failures.extend(f);
                for (status, n) in s {
                    *statuses.entry(status).or_default() += n;
                }
            }
            Err(e) => failures.push(Failure {
                index: usize::MAX,
                what: format!("a sender task failed: {e}"),
            }),
        }
    }
    failures.sort_by_key(|f| f.index);
    (failures, statuses)
}

async fn session_rows(pool: &rolegate::db::Pool) -> (i64, i64) {
    let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(pool)
        .await
        .unwrap_or(-1);
    let signed_in: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_sub IS NOT NULL")
            .fetch_one(pool)
            .await
            .unwrap_or(-1);
    (all, signed_in)
}

fn report(failures: &[Failure]) -> String {
    failures
        .iter()
        .take(5)
        .map(|f| {
            format!(
                "  #{}: {}",
                f.index,
                f.what.chars().take(800).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn fuzzed_callbacks_and_cookies_never_fail_nor_create_sessions() {
    let seed = seed();
    let replay = format!("seed {seed} (replay with ROLEGATE_FUZZ_SEED={seed})");
    let app = spawn_app_with(|env| {
        env.insert("APP__SERVER__RATE_LIMIT_PER_MINUTE".into(), "0".into());
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let pool = app.pool().await;
    let mut runner = runner(seed);
    let started = Instant::now();

    // 10,000 callback queries, without a cookie.
    let queries = callback_query();
    let probes: Vec<Probe> = (0..CALLBACK_QUERIES)
        .map(|_| Probe {
            path_and_query: format!("/getAToken?{}", sample(&queries, &mut runner)),
            cookie: None,
        })
        .collect();
    let before = session_rows(&pool).await;
    let (failures, callback_statuses) = send_all(&client, &app.address, probes).await;
    assert!(
        failures.is_empty(),
        "{} of {CALLBACK_QUERIES} callback queries failed, {replay}:\n{}",
        failures.len(),
        report(&failures)
    );
    let after = session_rows(&pool).await;
    assert_eq!(
        after, before,
        "callback queries created sessions (rows, signed in), {replay}"
    );
    assert_eq!(after.1, 0, "a signed-in session exists, {replay}");
    let callbacks_took = started.elapsed();

    // 1,000 malformed cookies, each to every cookie path (the callback with a query too).
    let app_key = Key::from(&[7u8; 64][..]);
    let cookies = bad_cookie();
    let mut probes = Vec::new();
    let mut unsendable = 0;
    for _ in 0..COOKIES {
        let cookie = sample(&cookies, &mut runner);
        let Some(header) = cookie_header(&cookie, &app_key) else {
            unsendable += 1;
            continue;
        };
        for path in COOKIE_PATHS {
            let path_and_query = if path == "/getAToken" {
                format!("{path}?{}", sample(&queries, &mut runner))
            } else {
                path.to_owned()
            };
            probes.push(Probe {
                path_and_query,
                cookie: Some(header.clone()),
            });
        }
    }
    assert!(
        unsendable < COOKIES / 20,
        "{unsendable} generated cookies were not header values"
    );
    let (failures, cookie_statuses) = send_all(&client, &app.address, probes).await;
    assert!(
        failures.is_empty(),
        "{} malformed-cookie requests failed, {replay}:\n{}",
        failures.len(),
        report(&failures)
    );
    let end = session_rows(&pool).await;
    assert_eq!(
        end.1, 0,
        "a malformed cookie led to a signed-in session, {replay}"
    );
    assert_eq!(
        end.0, before.0,
        "malformed cookies created session rows, {replay}"
    );

    let health = client
        .get(app.url("/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(
        health.ok(),
        Some(200),
        "/healthz after the fuzzing, {replay}"
    );
    eprintln!(
        "fuzz: {replay}: callbacks {callback_statuses:?} in {callbacks_took:?}; \
         cookies {cookie_statuses:?}; done at {:?}",
        started.elapsed()
    );
}
