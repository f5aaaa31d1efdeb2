//! Route rules as data: the operator lists path patterns with the role or access each needs,
//! plus a default for every other path, and the middleware asks [`RuleSet::required`] per request.
//!
//! Patterns are `/`-separated segments: a literal, `*` (exactly one non-empty segment) or a
//! final `**` (zero or more segments). Request paths arrive percent-decoded and normalised;
//! a trailing `/` on them is ignored (except for `/` itself). Matching is case-sensitive.
//!
//! The most specific matching rule wins, compared in order: more literal segments; then no
//! `**`; then more `*` segments (with the first two equal, that is the longer, narrower
//! pattern); then having a method list. So `/reports/2024` > `/reports/*` > `/reports/**` >
//! `/**`, and a rule matching a strict subset of another's paths is never shadowed by it.

use serde::Deserialize;
use std::cmp::Reverse;
use std::fmt;

/// The methods a rule may name; anything else is almost certainly a typo.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// What a request must satisfy, so the middleware can let it through, sign in, or refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not, e.g. public assets.
    Anonymous,
    /// Any signed-in user, whatever their roles.
    SignedIn,
    /// Nobody: the path is switched off.
    Deny,
    /// A signed-in user holding this role (or one implying it in the hierarchy).
    Role(String),
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::Anonymous => f.write_str("anonymous"),
            Access::SignedIn => f.write_str("signed in"),
            Access::Deny => f.write_str("deny"),
            Access::Role(role) => write!(f, "role {role}"),
        }
    }
}

/// One rule as the operator writes it in settings, kept raw so every mistake can be reported.
///
/// Unknown fields are rejected: a typo such as `"method"` would otherwise silently widen
/// the rule to every method.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Path pattern, e.g. `/reports/**`.
    pub path: String,
    /// Role required; exclusive with `access`.
    #[serde(default)]
    pub role: Option<String>,
    /// `anonymous`, `signed_in` or `deny`; exclusive with `role`.
    #[serde(default)]
    pub access: Option<String>,
    /// Methods the rule applies to (any case); empty means every method. `GET` also covers `HEAD`.
    #[serde(default)]
    pub methods: Vec<String>,
}

impl RuleSpec {
    /// A rule that needs `role` (or a role above it) on `path`, for every method.
    pub fn role(path: impl Into<String>, role: impl Into<String>) -> RuleSpec {
        RuleSpec {
            path: path.into(),
            role: Some(role.into()),
            access: None,
            methods: Vec::new(),
        }
    }
}

/// One pattern segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    One,
    Rest,
}

/// Sort key, compared field by field, greater = more specific: more literals, then no `**`,
/// then more `*`, then having a method list. With literals and `**` equal, more `*` means a
/// longer, narrower pattern (`/files/*/**` inside `/files/**`), so a rule whose matches are a
/// strict subset of another's always wins over it and is never dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    literals: usize,
    no_rest: bool,
    stars: usize,
    has_methods: bool,
}

/// A checked rule, ready to match requests without allocating.
#[derive(Debug, Clone)]
pub struct Rule {
    pattern: String,
    segments: Vec<Seg>,
    methods: Vec<&'static str>,
    access: Access,
    index: usize,
    key: Specificity,
}

/// The checked rule table, most specific rule first, so the first match wins.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    default: Access,
}

/// Something wrong in the rules, phrased so the operator knows what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// Position of the rule in the configured list (0-based); `None` when about the whole table.
    pub index: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "rules[{i}]: {}", self.message),
            None => write!(f, "rules: {}", self.message),
        }
    }
}

/// Parses "signed_in" | "anonymous" | "deny" (exact, lowercase): the `default` setting and a
/// rule's `access` are spelled the same way.
pub fn parse_default(text: &str) -> Option<Access> {
    match text {
        "signed_in" => Some(Access::SignedIn),
        "anonymous" => Some(Access::Anonymous),
        "deny" => Some(Access::Deny),
        _ => None,
    }
}

impl RuleSet {
    /// Checks every rule and returns ALL problems at once, so one edit round fixes the file.
    ///
    /// `known_role` says whether a role exists in the configured hierarchy (exact match).
    /// Equally specific rules that can match the same request with different access are a
    /// problem; exact duplicates with the same access are harmless and accepted.
    pub fn new(
        specs: &[RuleSpec],
        default: Access,
        known_role: impl Fn(&str) -> bool,
    ) -> Result<RuleSet, Vec<RuleProblem>> {
        let mut problems = Vec::new();
        if let Access::Role(role) = &default
            && !known_role(role)
        {
            let message = format!(
                "default role {role:?} is not in the role hierarchy; fix it or add the role"
            );
            problems.push(RuleProblem {
                index: None,
                message,
            });
        }
        let mut rules = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            match check(index, spec, &known_role) {
                Ok(rule) => rules.push(rule),
                Err(errs) => problems.extend(errs.into_iter().map(|m| RuleProblem {
                    index: Some(index),
                    message: format!("path {:?}: {m}", spec.path),
                })),
            }
        }
        // Stable sort: equally specific rules keep their list order.
        rules.sort_by_key(|r| Reverse(r.key));
        for (i, a) in rules.iter().enumerate() {
            for b in rules[i + 1..].iter().take_while(|b| b.key == a.key) {
                let clash = a.access != b.access
                    && overlap(&a.segments, &b.segments)
                    && METHODS
                        .iter()
                        .any(|m| method_matches(&a.methods, m) && method_matches(&b.methods, m));
                if clash {
                    problems.push(RuleProblem {
                        index: Some(b.index),
                        message: format!(
                            "{} ties with rules[{}] {}: both are equally specific, can match \
                             the same request and require different access; make one more \
                             specific (a literal instead of \"*\", or a method list) or give \
                             both the same access",
                            describe(b),
                            a.index,
                            describe(a)
                        ),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(RuleSet { rules, default })
        } else {
            problems.sort_by_key(|p| p.index);
            Err(problems)
        }
    }

    /// An empty table whose default is `default`, for apps that configure no rules.
    pub fn allow_default(default: Access) -> RuleSet {
        RuleSet {
            rules: Vec::new(),
            default,
        }
    }

    /// The access required for `method` on `path`: the most specific matching rule, else the
    /// default. Called on every request, so it does not allocate. `method` is compared exactly
    /// (HTTP methods are case-sensitive); a `GET` rule also answers `HEAD`, which is GET
    /// without a body.
    pub fn required(&self, method: &str, path: &str) -> &Access {
        self.decide(method, path).0
    }

    /// Like [`RuleSet::required`], plus the matching rule's pattern for logs and metrics
    /// (`None` when the default applied), in one scan.
    pub fn decide(&self, method: &str, path: &str) -> (&Access, Option<&str>) {
        match self
            .rules
            .iter()
            .find(|r| method_matches(&r.methods, method) && path_matches(&r.segments, path))
        {
            Some(rule) => (&rule.access, Some(&rule.pattern)),
            None => (&self.default, None),
        }
    }

    /// One aligned line per rule (methods, pattern, requirement), most specific first, then the
    /// default, so `rolegate check-config` shows the operator what will actually apply.
    pub fn table(&self) -> Vec<String> {
        let rows: Vec<_> = (self.rules.iter())
            .map(|r| (method_column(&r.methods), r.pattern.as_str(), &r.access))
            .chain([("*".to_string(), "(any other path)", &self.default)])
            .collect();
        let mw = rows.iter().map(|r| r.0.chars().count()).fold(8, usize::max);
        let pw = rows
            .iter()
            .map(|r| r.1.chars().count())
            .fold(22, usize::max);
        rows.iter()
            .map(|(m, p, a)| format!("{m:<mw$} {p:<pw$} {a}"))
            .collect()
    }

    /// Whether the table has no rules, so the default decides everything.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

const BOTH: &str = "has both \"role\" and \"access\"; keep \"role\" to require a role, \
                    or \"access\" for anonymous/signed_in/deny";
const NEITHER: &str = "has neither \"role\" nor \"access\"; add \"role\": \"<role name>\" \
                       or \"access\": \"anonymous\" | \"signed_in\" | \"deny\"";
const EMPTY_ROLE: &str =
    "role is empty; name a role from the hierarchy, or use \"access\": \"signed_in\"";

/// Checks one spec, collecting every problem in it.
fn check(
    index: usize,
    spec: &RuleSpec,
    known_role: &impl Fn(&str) -> bool,
) -> Result<Rule, Vec<String>> {
    let mut errs = Vec::new();
    let segments = parse_pattern(&spec.path, &mut errs);
    let access = match (&spec.role, &spec.access) {
        (Some(_), Some(_)) => Err(BOTH.to_string()),
        (None, None) => Err(NEITHER.to_string()),
        (Some(role), None) if role.is_empty() => Err(EMPTY_ROLE.to_string()),
        (Some(role), None) if !known_role(role) => Err(format!(
            "role {role:?} is not in the role hierarchy; fix the name (exact: case and spaces \
             count) or add the role to the hierarchy"
        )),
        (Some(role), None) => Ok(Access::Role(role.clone())),
        (None, Some(text)) => parse_default(text).ok_or_else(|| {
            format!(
                "access {text:?} is not valid; use \"anonymous\", \"signed_in\" or \"deny\" \
                 (or \"role\" to require a role)"
            )
        }),
    };
    let access = access.map_err(|e| errs.push(e)).ok();
    let mut methods = Vec::new();
    for m in &spec.methods {
        match METHODS.iter().find(|k| k.eq_ignore_ascii_case(m)) {
            Some(k) if !methods.contains(k) => methods.push(*k),
            Some(_) => {}
            None => errs.push(format!(
                "method {m:?} is not valid; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS \
                 (GET also covers HEAD), or no list for every method"
            )),
        }
    }
    match access {
        Some(access) if errs.is_empty() => {
            let key = Specificity {
                literals: segments.iter().filter(|s| matches!(s, Seg::Lit(_))).count(),
                no_rest: !segments.contains(&Seg::Rest),
                stars: segments.iter().filter(|s| **s == Seg::One).count(),
                has_methods: !methods.is_empty(),
            };
            Ok(Rule {
                pattern: spec.path.clone(),
                segments,
                methods,
                access,
                index,
                key,
            })
        }
        _ => Err(errs),
    }
}

/// Parses a pattern into segments, pushing a message (with a fix) for each bad form.
fn parse_pattern(path: &str, errs: &mut Vec<String>) -> Vec<Seg> {
    let Some(rest) = path.strip_prefix('/') else {
        errs.push(match path {
            "" => "path is empty; write \"/\" for the root only or \"/**\" for every path".into(),
            _ => format!("path must start with \"/\"; write \"/{path}\""),
        });
        return Vec::new();
    };
    if rest.is_empty() {
        return Vec::new();
    }
    let rest = rest.strip_suffix('/').map_or(rest, |trimmed| {
        errs.push(format!(
            "drop the trailing \"/\" (write \"/{trimmed}\"); requests match with or without it"
        ));
        trimmed
    });
    let parts: Vec<&str> = rest.split('/').collect();
    let mut segs = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match parse_segment(part, i + 1 == parts.len()) {
            Ok(seg) => segs.push(seg),
            Err(e) if !errs.contains(&e) => errs.push(e),
            Err(_) => {}
        }
    }
    segs
}

/// One pattern segment, or what is wrong with it.
fn parse_segment(part: &str, last: bool) -> Result<Seg, String> {
    Err(match part {
        "**" if last => return Ok(Seg::Rest),
        "*" => return Ok(Seg::One),
        p if !p.is_empty() && !p.contains('*') && p != "." && p != ".." => {
            return Ok(Seg::Lit(p.to_string()));
        }
        "" => "has an empty segment (\"//\"); remove the extra \"/\"".to_string(),
        "." | ".." => format!(
            "segment {part:?} is not allowed; requests are normalised before matching, \
             so write the path without it"
        ),
        "**" => "\"**\" may only be the last segment; use \"*\" for exactly one segment, \
                 or end the pattern with \"/**\""
            .to_string(),
        _ => format!(
            "segment {part:?} mixes \"*\" with text; globs match whole segments: \
             use \"*\" for one segment or a final \"**\" for any rest"
        ),
    })
}

/// Whether a rule's method list covers `method` (empty = any; GET covers HEAD).
fn method_matches(methods: &[&str], method: &str) -> bool {
    methods.is_empty()
        || methods
            .iter()
            .any(|m| *m == method || (*m == "GET" && method == "HEAD"))
}

/// Whether a request path matches the segments; one trailing `/` on the path is ignored.
fn path_matches(segments: &[Seg], path: &str) -> bool {
    let p = path.strip_prefix('/').unwrap_or(path);
    let p = p.strip_suffix('/').unwrap_or(p);
    let mut parts = p.split('/');
    if p.is_empty() {
        parts.next(); // "" splits into one empty item: the root has no segments
    }
    for seg in segments {
        match (seg, parts.next()) {
            (Seg::Rest, _) => return true,
            (Seg::One, Some(part)) if !part.is_empty() => {}
            (Seg::Lit(lit), Some(part)) if lit == part => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}

/// Whether some path matches both patterns (`**` is only ever last, so segment-wise is exact).
fn overlap(a: &[Seg], b: &[Seg]) -> bool {
    match (a.split_first(), b.split_first()) {
        (Some((Seg::Rest, _)), _) | (_, Some((Seg::Rest, _))) | (None, None) => true,
        (Some((Seg::Lit(x), ra)), Some((Seg::Lit(y), rb))) => x == y && overlap(ra, rb),
        (Some((_, ra)), Some((_, rb))) => overlap(ra, rb),
        _ => false,
    }
}

/// The table's method column: `*` for any method, else e.g. `GET,POST`.
fn method_column(methods: &[&str]) -> String {
    if methods.is_empty() {
        "*".to_string()
    } else {
        methods.join(",")
    }
}

/// A rule for a message, e.g. `"/reports/**" (GET, role DemoApp.Read)`.
fn describe(rule: &Rule) -> String {
    let methods = rule.methods.join(",");
    let methods = if methods.is_empty() {
        "any method"
    } else {
        &methods
    };
    format!("{:?} ({methods}, {})", rule.pattern, rule.access)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, role: Option<&str>, access: Option<&str>, methods: &[&str]) -> RuleSpec {
        let methods = methods.iter().map(|m| m.to_string()).collect();
        RuleSpec {
            path: path.into(),
            role: role.map(Into::into),
            access: access.map(Into::into),
            methods,
        }
    }
    fn role(path: &str, r: &str) -> RuleSpec {
        spec(path, Some(r), None, &[])
    }
    fn access(path: &str, a: &str) -> RuleSpec {
        spec(path, None, Some(a), &[])
    }
    fn build(specs: &[RuleSpec]) -> Result<RuleSet, Vec<RuleProblem>> {
        RuleSet::new(specs, Access::SignedIn, |r| r.starts_with("DemoApp."))
    }
    fn problems(specs: &[RuleSpec]) -> Vec<RuleProblem> {
        build(specs).expect_err("invalid rules")
    }
    /// Whitespace-separated words of each non-blank line of a test table.
    fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
        let lines = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>());
        lines.filter(|words| !words.is_empty())
    }
    /// Asserts each `METHOD PATH expected access` line of `cases`.
    fn expect(specs: &[RuleSpec], cases: &str) {
        let set = build(specs).expect("valid rules");
        for row in rows(cases) {
            let got = set.required(row[0], row[1]).to_string();
            assert_eq!(got, row[2..].join(" "), "{row:?}");
        }
    }

    #[test]
    fn single_star_matches_exactly_one_non_empty_segment() {
        let cases = "
            GET /public/a.css  anonymous
            GET /public/a.css/ anonymous
            GET /public        signed in
            GET /public/       signed in
            GET /public/a/b    signed in";
        expect(&[access("/public/*", "anonymous")], cases);
    }

    #[test]
    fn trailing_double_star_matches_zero_or_more_segments() {
        let cases = "
            GET /reports     deny
            GET /reports/    deny
            GET /reports/a   deny
            GET /reports/a/b deny
            GET /reportsx    signed in
            GET /Reports     signed in
            GET /            signed in";
        expect(&[access("/reports/**", "deny")], cases);
    }

    #[test]
    fn exact_root_and_everything() {
        let cases = "
            GET /a/b   anonymous
            GET /a/b/  anonymous
            GET /a     signed in
            GET /a/b/c signed in
            GET /      deny
            GET /x     signed in";
        expect(&[access("/a/b", "anonymous"), access("/", "deny")], cases);
        expect(
            &[access("/**", "deny")],
            "GET / deny \n POST /a deny \n PUT /a/b/c/ deny",
        );
    }

    #[test]
    fn methods_are_case_insensitive_in_spec_and_get_covers_head() {
        let cases = "
            GET    /x anonymous
            HEAD   /x anonymous
            POST   /x anonymous
            DELETE /x signed in
            get    /x signed in";
        expect(
            &[spec("/x", None, Some("anonymous"), &["get", "Post"])],
            cases,
        );
        let head_only = [spec("/x", None, Some("deny"), &["HEAD"])];
        expect(&head_only, "GET /x signed in \n HEAD /x deny");
    }

    #[test]
    fn most_specific_wins() {
        let set = build(&[
            access("/**", "deny"),
            role("/reports/**", "DemoApp.Read"),
            role("/reports/*", "DemoApp.Write"),
            access("/reports/2024", "anonymous"),
            role("/a/**", "DemoApp.Read"),
            role("/a/*/c", "DemoApp.Write"),
            role("/files/**", "DemoApp.Read"),
            role("/files/*/**", "DemoApp.Write"),
        ])
        .expect("valid");
        let cases = "
            /reports/2024    /reports/2024
            /reports/2023    /reports/*
            /reports         /reports/**
            /reports/2023/q1 /reports/**
            /other           /**
            /a/b/c           /a/*/c
            /a/b/d           /a/**
            /files           /files/**
            /files/x/y       /files/*/**";
        for row in rows(cases) {
            assert_eq!(set.decide("GET", row[0]).1, Some(row[1]), "{row:?}");
        }
    }

    #[test]
    fn method_rule_beats_method_less_rule_on_same_path() {
        let specs = [
            role("/x", "DemoApp.Read"),
            spec("/x", Some("DemoApp.Write"), None, &["POST"]),
        ];
        expect(
            &specs,
            "POST /x role DemoApp.Write \n GET /x role DemoApp.Read",
        );
    }

    #[test]
    fn default_applies_when_nothing_matches() {
        let set =
            RuleSet::new(&[access("/a", "anonymous")], Access::Deny, |_| true).expect("valid");
        assert_eq!(set.decide("GET", "/b"), (&Access::Deny, None));
        assert_eq!(set.decide("GET", "/a"), (&Access::Anonymous, Some("/a")));
        let empty = RuleSet::allow_default(Access::Anonymous);
        assert!(empty.is_empty() && !set.is_empty());
        assert_eq!(empty.required("GET", "/anything"), &Access::Anonymous);
    }

    #[test]
    fn parse_default_is_exact() {
        assert_eq!(parse_default("signed_in"), Some(Access::SignedIn));
        assert_eq!(parse_default("anonymous"), Some(Access::Anonymous));
        assert_eq!(parse_default("deny"), Some(Access::Deny));
        assert_eq!(parse_default("Deny").or(parse_default("signed-in")), None);
    }

    #[test]
    fn bad_pattern_forms_are_problems_with_hints() {
        for (path, hint) in [
            ("reports", "must start with"),
            ("", "path is empty"),
            ("/a*b", "mixes"),
            ("/x/**/y", "last segment"),
            ("/a//b", "empty segment"),
            ("/a/", "trailing"),
            ("/a/../b", "normalised"),
            ("/./a", "normalised"),
        ] {
            let p = problems(&[access(path, "anonymous")]);
            assert_eq!(p.len(), 1, "{path}: {p:?}");
            assert_eq!(p[0].index, Some(0));
            assert!(p[0].message.contains(hint), "{path}: {}", p[0].message);
        }
    }

    #[test]
    fn role_and_access_problems() {
        let p = problems(&[
            spec("/a", Some("DemoApp.Read"), Some("deny"), &[]),
            spec("/b", None, None, &[]),
            access("/c", "public"),
            role("/d", "Other.Read"),
            role("/e", ""),
            role("/f", "demoapp.read"),
        ]);
        assert_eq!(
            p.iter().map(|p| p.index).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5].map(Some)
        );
        assert!(p[0].message.contains("both") && p[1].message.contains("neither"));
        assert!(
            p[2].message
                .contains("\"anonymous\", \"signed_in\" or \"deny\"")
        );
        let unknown = p[3].to_string();
        assert!(
            unknown.starts_with("rules[3]: ")
                && unknown.contains("/d")
                && unknown.contains("Other.Read")
        );
        assert!(p[4].message.contains("empty"));
    }

    #[test]
    fn bad_method_is_a_problem() {
        let p = problems(&[spec("/a", None, Some("deny"), &["GET", "FETCH"])]);
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("\"FETCH\"") && p[0].message.contains("OPTIONS"));
    }

    #[test]
    fn all_problems_are_returned_at_once() {
        let p = problems(&[
            access("/a*", "x"),
            role("/ok", "DemoApp.Read"),
            access("b", "anonymous"),
            role("/c", "Nope"),
        ]);
        assert_eq!(
            p.iter().filter_map(|p| p.index).collect::<Vec<_>>(),
            [0, 0, 2, 3]
        );
        let p = RuleSet::new(&[access("x", "deny")], Access::Role("Nope".into()), |_| {
            false
        })
        .expect_err("bad");
        assert_eq!(p.len(), 2);
        assert!(p[0].index.is_none() && p[0].to_string().starts_with("rules: default role"));
    }

    #[test]
    fn equally_specific_overlapping_rules_with_different_access_conflict() {
        let p = problems(&[role("/a/*", "DemoApp.Read"), role("/*/b", "DemoApp.Write")]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].index, Some(1));
        let m = &p[0].message;
        assert!(
            m.contains("rules[0]")
                && m.contains("\"/a/*\"")
                && m.contains("\"/*/b\"")
                && m.contains("same access")
        );
        // HEAD on one, GET on the other: a HEAD request matches both.
        let specs = [
            spec("/x", None, Some("deny"), &["HEAD"]),
            spec("/x", None, Some("anonymous"), &["get"]),
        ];
        assert_eq!(problems(&specs).len(), 1);
    }

    #[test]
    fn non_conflicts() {
        let ok = |specs: &[RuleSpec]| assert!(build(specs).is_ok(), "{specs:?}");
        ok(&[role("/a/*", "DemoApp.Read"), role("/a/b", "DemoApp.Write")]); // different specificity
        ok(&[role("/a/*", "DemoApp.Read"), role("/b/*", "DemoApp.Write")]); // no common path
        ok(&[
            role("/a/*", "DemoApp.Read"),
            role("/*/b/c", "DemoApp.Write"),
        ]);
        ok(&[
            spec("/x", None, Some("deny"), &["POST"]),
            spec("/x", None, Some("anonymous"), &["GET"]),
        ]);
        ok(&[
            role("/a/*", "DemoApp.Read"),
            role("/*/b", "DemoApp.Read"),
            role("/a/*", "DemoApp.Read"),
        ]);
    }

    #[test]
    fn overlap_is_segment_wise() {
        let segs = |p: &str| parse_pattern(p, &mut Vec::new());
        assert!(overlap(&segs("/a/**"), &segs("/a")));
        assert!(overlap(&segs("/**"), &segs("/")));
        assert!(overlap(&segs("/*/c"), &segs("/a/**")));
        assert!(!overlap(&segs("/a/*"), &segs("/a")));
        assert!(!overlap(&segs("/a/**"), &segs("/b/**")));
        assert!(!overlap(&segs("/"), &segs("/*")));
    }

    #[test]
    fn table_lists_rules_most_specific_first_then_default() {
        let set = build(&[
            access("/public/*", "anonymous"),
            spec("/reports/**", Some("DemoApp.Read"), None, &["GET"]),
            spec("/admin", None, Some("deny"), &["post", "PUT"]),
        ])
        .expect("valid");
        let want = [
            "*        /public/*              anonymous",
            "POST,PUT /admin                 deny",
            "GET      /reports/**            role DemoApp.Read",
            "*        (any other path)       signed in",
        ];
        assert_eq!(set.table(), want);
    }
}
