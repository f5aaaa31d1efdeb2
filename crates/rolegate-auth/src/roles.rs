//! App roles as data: an ordered hierarchy (each level implies the ones below it), where the
//! roles come from, and typed markers for guards.
//!
//! Role values match exactly, case and whitespace included, so look-alikes such as
//! `demoapp.admin` or `DemoApp.Admin ` grant nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::error::TokenError;
use crate::id_token::Claims;

/// The ordered app role values, lowest first. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleHierarchy {
    names: Arc<[String]>,
}

impl RoleHierarchy {
    /// Checks the list: at least one name, none empty, no duplicates, and no two that differ
    /// only by case or spaces (a sure sign of a typo that would silently grant nothing).
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Result<Self, Vec<String>> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let mut errors = Vec::new();
        if names.is_empty() {
            errors.push(
                "is empty; list the app role values lowest first, e.g. [\"DemoApp.Read\", \"DemoApp.Write\", \"DemoApp.Admin\"]"
                    .to_owned(),
            );
        }
        let mut seen: HashMap<String, &str> = HashMap::new();
        for name in &names {
            if name.trim().is_empty() {
                errors.push("holds an empty role name; remove it".to_owned());
                continue;
            }
            if name.trim() != name {
                errors.push(format!(
                    "{name:?} has leading or trailing spaces; role values match exactly, so remove them"
                ));
            }
            let folded: String = name
                .chars()
                .filter(|c| !c.is_whitespace())
                .flat_map(char::to_lowercase)
                .collect();
            match seen.get(&folded) {
                Some(first) if *first == name => {
                    errors.push(format!("lists {name:?} twice; keep one"))
                }
                Some(first) => errors.push(format!(
                    "{first:?} and {name:?} differ only by case or spaces; tokens match exactly, keep the one your app registration uses"
                )),
                None => {
                    seen.insert(folded, name);
                }
            }
        }
        if errors.is_empty() {
            Ok(RoleHierarchy {
                names: names.into(),
            })
        } else {
            Err(errors)
        }
    }

    /// The default DemoApp hierarchy, used where a configuration could not be read.
    pub(crate) fn fallback() -> Self {
        RoleHierarchy {
            names: crate::config::DEFAULT_ROLES.map(String::from).into(),
        }
    }

    /// The role values, lowest first.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `name` is one of the levels (exact match).
    pub fn contains(&self, name: &str) -> bool {
        self.rank(name).is_some()
    }

    /// The position of `name`, 0 = lowest.
    pub fn rank(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The highest level among `roles`, or `None` when none of them is an app role here.
    pub fn highest<S: AsRef<str>>(&self, roles: &[S]) -> Option<usize> {
        roles.iter().filter_map(|r| self.rank(r.as_ref())).max()
    }

    /// The role value at `rank`.
    pub fn name(&self, rank: usize) -> Option<&str> {
        self.names.get(rank).map(String::as_str)
    }

    /// `DemoApp.Admin > DemoApp.Write > DemoApp.Read`, for `check-config` and messages.
    pub fn describe(&self) -> String {
        self.names
            .iter()
            .rev()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" > ")
    }
}

/// The claim app roles are read from: a claim name or a dotted path into nested objects
/// (`roles`, `groups`, `realm_access.roles`, `resource_access.{client_id}.roles`).
///
/// A top-level claim named exactly like the whole text wins over the dotted walk, so
/// namespaced claims such as `https://example.com/roles` work too. The value must be a list of
/// strings or a single string (a one-element list); an absent or `null` claim grants nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleClaim {
    /// The path with `{client_id}` filled in, as shown in messages.
    path: String,
    segments: Vec<String>,
}

/// Standard claims rolegate reads as typed values: never a role list, so never a role claim.
const NOT_ROLE_CLAIMS: [&str; 26] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "nonce",
    "azp",
    "tid",
    "oid",
    "name",
    "preferred_username",
    "email",
    "sid",
    "login_hint",
    "_claim_names",
    "hasgroups",
    "scp",
    "scope",
    "ver",
    "appid",
    "idtyp",
    "at_hash",
    "c_hash",
    "tfp",
    "acr",
];

impl RoleClaim {
    /// The default: Entra's `roles` claim.
    pub fn roles() -> RoleClaim {
        RoleClaim {
            path: "roles".to_owned(),
            segments: vec!["roles".to_owned()],
        }
    }

    /// Entra's `groups` claim (the default when a group → role map is set).
    pub fn groups() -> RoleClaim {
        RoleClaim {
            path: "groups".to_owned(),
            segments: vec!["groups".to_owned()],
        }
    }

    /// Checks `text` (non-empty names separated by dots, no spaces, `{client_id}` the only
    /// placeholder) and fills `{client_id}` in; the error says how to fix it.
    pub fn parse(text: &str, client_id: &str) -> Result<RoleClaim, String> {
        const EXAMPLES: &str = "e.g. \"roles\", \"groups\", \"realm_access.roles\" or \"resource_access.{client_id}.roles\"";
        if text.trim().is_empty() {
            return Err(format!(
                "is empty; name the claim that holds the app roles, {EXAMPLES}"
            ));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{text:?} holds spaces; claim names have none, {EXAMPLES}"
            ));
        }
        let mut segments = Vec::new();
        for part in text.split('.') {
            if part.is_empty() {
                return Err(format!(
                    "{text:?} has an empty name between dots; write names separated by single dots, {EXAMPLES}"
                ));
            }
            let filled = part.replace("{client_id}", client_id);
            if filled.contains('{') || filled.contains('}') {
                return Err(format!(
                    "{text:?} has a placeholder other than {{client_id}}; write the claim names out, {EXAMPLES}"
                ));
            }
            segments.push(filled);
        }
        if let [first, ..] = segments.as_slice()
            && NOT_ROLE_CLAIMS.contains(&first.as_str())
        {
            return Err(format!(
                "{text:?} starts at the standard claim {first:?}, which never holds app roles; {EXAMPLES}"
            ));
        }
        Ok(RoleClaim {
            path: segments.join("."),
            segments,
        })
    }

    /// The path, `{client_id}` filled in.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The role values the claim holds (`None` when absent), or why it cannot be read.
    pub(crate) fn read(&self, claims: &Claims) -> Result<Option<Vec<String>>, RoleReadError> {
        if let Some(value) = claims.claim(&self.path) {
            return self.values(value, &self.path);
        }
        let Some((first, rest)) = self.segments.split_first() else {
            return Ok(None);
        };
        let mut at = first.clone();
        let Some(mut value) = claims.claim(first) else {
            return Ok(None);
        };
        for name in rest {
            value = match value {
                Value::Null => return Ok(None),
                Value::Object(map) => match map.get(name) {
                    Some(v) => v,
                    None => return Ok(None),
                },
                other => {
                    return Err(RoleReadError::WrongType {
                        claim: self.path.clone(),
                        at,
                        found: type_name(other),
                        expected: "an object",
                    });
                }
            };
            at = format!("{at}.{name}");
        }
        self.values(value, &at)
    }

    fn values(&self, value: &Value, at: &str) -> Result<Option<Vec<String>>, RoleReadError> {
        let wrong = |found| RoleReadError::WrongType {
            claim: self.path.clone(),
            at: at.to_owned(),
            found,
            expected: "a list of strings or a single string",
        };
        match value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(vec![s.clone()])),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong(match other {
                        Value::Null => "a list holding null",
                        Value::Bool(_) => "a list holding a boolean",
                        Value::Number(_) => "a list holding a number",
                        Value::Array(_) => "a list holding a list",
                        _ => "a list holding an object",
                    })),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            other => Err(wrong(type_name(other))),
        }
    }
}

/// A JSON type as a message names it.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Where a user's app roles come from: a claim ([`RoleClaim`], default `roles`), its values
/// used as role values or, with a group → role map, mapped (Entra `groups` and group ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSource {
    claim: RoleClaim,
    map: Option<Arc<HashMap<String, String>>>,
}

impl Default for RoleSource {
    fn default() -> Self {
        RoleSource {
            claim: RoleClaim::roles(),
            map: None,
        }
    }
}

/// Why roles could not be read from a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoleReadError {
    /// The token names more groups than it can carry (`_claim_names.groups`, `hasgroups`).
    GroupsOverage,
    /// The role claim (or an object on its path, `at`) has a type that holds no roles.
    WrongType {
        claim: String,
        at: String,
        found: &'static str,
        expected: &'static str,
    },
}

impl RoleReadError {
    /// The token error for a wrong type; `None` for overage (which has its own page).
    pub(crate) fn token_error(&self) -> Option<TokenError> {
        match self {
            RoleReadError::GroupsOverage => None,
            RoleReadError::WrongType {
                claim,
                at,
                found,
                expected,
            } => Some(TokenError::RoleClaimType {
                claim: claim.clone(),
                at: at.clone(),
                found,
                expected,
            }),
        }
    }
}

impl RoleSource {
    /// Roles straight from `claim`'s values.
    pub fn claim(claim: RoleClaim) -> RoleSource {
        RoleSource { claim, map: None }
    }

    /// Checks a group → role map (ids non-empty, every role in `roles`): roles then come from
    /// the `groups` claim's ids; [`RoleSource::with_claim`] reads the ids from another claim.
    pub fn groups(
        map: &[(String, String)],
        roles: &RoleHierarchy,
    ) -> Result<RoleSource, Vec<String>> {
        let mut errors = Vec::new();
        let mut out = HashMap::new();
        if map.is_empty() {
            errors.push("is empty; map group object ids to role values, e.g. {\"<group-guid>\": \"DemoApp.Write\"}".to_owned());
        }
        for (group, role) in map {
            if group.trim().is_empty() || group.trim() != group {
                errors.push(format!("{group:?} is not a group object id"));
            }
            if !roles.contains(role) {
                errors.push(format!(
                    "group {group} maps to {role:?}, which is not in the hierarchy ({})",
                    roles.describe()
                ));
            }
            out.insert(group.clone(), role.clone());
        }
        if errors.is_empty() {
            Ok(RoleSource {
                claim: RoleClaim::groups(),
                map: Some(Arc::new(out)),
            })
        } else {
            Err(errors)
        }
    }

    /// The same mapping (if any), read from `claim`.
    pub fn with_claim(self, claim: RoleClaim) -> RoleSource {
        RoleSource { claim, ..self }
    }

    /// The claim roles are read from.
    pub fn role_claim(&self) -> &RoleClaim {
        &self.claim
    }

    /// The app role values a token grants, in the order first seen, without duplicates when
    /// mapped from groups.
    pub(crate) fn read(&self, claims: &Claims) -> Result<Vec<String>, RoleReadError> {
        // Entra leaves `groups` out for size and says so; only that claim has an overage.
        if self.claim.path() == "groups" && claims.groups_overage() {
            return Err(RoleReadError::GroupsOverage);
        }
        let values = self.claim.read(claims)?.unwrap_or_default();
        let Some(map) = &self.map else {
            return Ok(values);
        };
        let mut seen = BTreeSet::new();
        Ok(values
            .iter()
            .filter_map(|g| map.get(g))
            .filter(|r| seen.insert(r.as_str()))
            .cloned()
            .collect())
    }

    /// `the token's roles claim` or `the token's groups claim (3 groups mapped)`, for
    /// `check-config`.
    pub fn describe(&self) -> String {
        match &self.map {
            None => format!("the token's {} claim", self.claim.path()),
            Some(map) => format!(
                "the token's {} claim ({} groups mapped)",
                self.claim.path(),
                map.len()
            ),
        }
    }
}

/// A typed role marker for [`crate::RequireRole`]: the type names the role value needed.
///
/// Declare your own with [`app_role!`](crate::app_role): `app_role!(pub Editor = "Contoso.Editor");`
pub trait Role: 'static {
    /// The role value, exactly as in the app registration and the token.
    const NAME: &'static str;
}

/// Declares a role marker type for [`crate::RequireRole`].
///
/// ```
/// rolegate_auth::app_role!(
///     /// May edit documents.
///     pub Editor = "Contoso.Editor"
/// );
/// use rolegate_auth::Role;
/// assert_eq!(Editor::NAME, "Contoso.Editor");
/// ```
#[macro_export]
macro_rules! app_role {
    ($(#[$meta:meta])* $vis:vis $name:ident = $value:literal) => {
        $(#[$meta])*
        $vis struct $name;
        impl $crate::Role for $name {
            const NAME: &'static str = $value;
        }
    };
}

app_role!(
    /// Needs `DemoApp.Read` or a role above it (default hierarchy).
    pub Read = "DemoApp.Read"
);
app_role!(
    /// Needs `DemoApp.Write` or a role above it (default hierarchy).
    pub Write = "DemoApp.Write"
);
app_role!(
    /// Needs `DemoApp.Admin` (default hierarchy).
    pub Admin = "DemoApp.Admin"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn h(names: &[&str]) -> RoleHierarchy {
        RoleHierarchy::new(names.iter().copied()).unwrap()
    }

    #[test]
    fn one_level() {
        let r = h(&["App.User"]);
        assert_eq!(r.highest(&["App.User"]), Some(0));
        assert_eq!(r.highest(&["App.Admin"]), None);
    }

    #[test]
    fn three_levels_highest_wins() {
        let r = h(&crate::config::DEFAULT_ROLES);
        assert_eq!(r.highest(&["DemoApp.Read", "DemoApp.Admin"]), Some(2));
        assert_eq!(r.highest(&["DemoApp.Write"]), Some(1));
        assert_eq!(r.describe(), "DemoApp.Admin > DemoApp.Write > DemoApp.Read");
    }

    #[test]
    fn five_levels() {
        let r = h(&["L1", "L2", "L3", "L4", "L5"]);
        assert_eq!(r.highest(&["L3", "L1"]), Some(2));
        assert_eq!(r.highest(&["L5"]), Some(4));
        assert!(r.rank("L4").unwrap() > r.rank("L2").unwrap());
    }

    #[test]
    fn look_alikes_grant_nothing() {
        let r = h(&crate::config::DEFAULT_ROLES);
        for role in [
            "demoapp.admin",
            "DemoApp.Admin ",
            " DemoApp.Admin",
            "OtherApp.Admin",
            "DemoApp.Administrator",
            "DemoApp",
            "",
        ] {
            assert_eq!(r.highest(&[role]), None, "{role:?}");
        }
        assert_eq!(r.highest::<&str>(&[]), None);
    }

    #[test]
    fn refuses_bad_lists() {
        assert!(RoleHierarchy::new(Vec::<String>::new()).is_err());
        assert!(RoleHierarchy::new(["A", ""]).is_err());
        assert!(RoleHierarchy::new(["A", "A"]).is_err());
        assert!(RoleHierarchy::new(["App.Read", "app.read"]).is_err());
        assert!(RoleHierarchy::new(["App.Read", "App. Read"]).is_err());
        assert!(RoleHierarchy::new(["App.Read "]).is_err());
        let errors = RoleHierarchy::new(["A", "a", "", "B", "B"]).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    fn claims(json: serde_json::Value) -> Claims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn groups_map_to_roles() {
        let r = h(&crate::config::DEFAULT_ROLES);
        let map = vec![
            ("g-read".to_owned(), "DemoApp.Read".to_owned()),
            ("g-write".to_owned(), "DemoApp.Write".to_owned()),
            ("g-write-2".to_owned(), "DemoApp.Write".to_owned()),
        ];
        let source = RoleSource::groups(&map, &r).unwrap();
        let c = claims(serde_json::json!({"groups": ["other", "g-write", "g-write-2", "g-read"]}));
        assert_eq!(
            source.read(&c).unwrap(),
            vec!["DemoApp.Write".to_owned(), "DemoApp.Read".to_owned()]
        );
        let none = claims(serde_json::json!({"roles": ["DemoApp.Admin"]}));
        assert!(
            source.read(&none).unwrap().is_empty(),
            "roles claim ignored"
        );
        assert!(
            RoleSource::groups(&[("g".into(), "DemoApp.Boss".into())], &r).is_err(),
            "unknown role"
        );
    }

    #[test]
    fn groups_overage_is_detected() {
        let r = h(&crate::config::DEFAULT_ROLES);
        let source =
            RoleSource::groups(&[("g".to_owned(), "DemoApp.Read".to_owned())], &r).unwrap();
        let over = claims(serde_json::json!({
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}
        }));
        assert_eq!(source.read(&over), Err(RoleReadError::GroupsOverage));
        let implicit = claims(serde_json::json!({"hasgroups": true}));
        assert_eq!(source.read(&implicit), Err(RoleReadError::GroupsOverage));
        assert!(
            RoleSource::default().read(&over).is_ok(),
            "overage does not matter to the roles claim"
        );
    }

    fn path(text: &str) -> RoleClaim {
        RoleClaim::parse(text, "my.client").unwrap()
    }

    fn list(v: &[&str]) -> Result<Option<Vec<String>>, RoleReadError> {
        Ok(Some(v.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn role_claim_paths_parse_and_fill_the_client_id() {
        assert_eq!(path("roles"), RoleClaim::roles());
        assert_eq!(path("realm_access.roles").path(), "realm_access.roles");
        let client = path("resource_access.{client_id}.roles");
        assert_eq!(client.path(), "resource_access.my.client.roles");
        assert_eq!(client.segments, ["resource_access", "my.client", "roles"]);
        for bad in [
            "",
            " ",
            ".roles",
            "roles.",
            "a..b",
            "realm access.roles",
            "{tenant}.roles",
            "roles\n",
            "sub",
            "email.x",
            "{client_id",
        ] {
            let err = RoleClaim::parse(bad, "c").unwrap_err();
            assert!(err.contains("e.g."), "{bad:?}: {err}");
        }
    }

    #[test]
    fn role_claim_reads_each_shape() {
        let c = claims(serde_json::json!({
            "roles": "DemoApp.Read",
            "groups": ["g1", "g2"],
            "realm_access": {"roles": ["DemoApp.Write", "offline_access"]},
            "resource_access": {"my.client": {"roles": ["DemoApp.Admin"]}, "other": {"roles": ["X"]}},
            "https://example.com/roles": ["DemoApp.Read"],
            "num": 7,
            "deep": {"roles": {"a": 1}},
            "mixed": ["DemoApp.Read", 3],
            "flat": "text",
            "nul": null,
        }));
        assert_eq!(path("roles").read(&c), list(&["DemoApp.Read"]));
        assert_eq!(path("groups").read(&c), list(&["g1", "g2"]));
        assert_eq!(
            path("realm_access.roles").read(&c),
            list(&["DemoApp.Write", "offline_access"])
        );
        assert_eq!(
            path("resource_access.{client_id}.roles").read(&c),
            list(&["DemoApp.Admin"])
        );
        assert_eq!(
            path("https://example.com/roles").read(&c),
            list(&["DemoApp.Read"])
        );
        for absent in [
            "missing",
            "realm_access.other",
            "missing.roles",
            "nul",
            "nul.roles",
        ] {
            assert_eq!(path(absent).read(&c), Ok(None), "{absent}");
        }
        let wrong = |p: &str| match path(p).read(&c) {
            Err(RoleReadError::WrongType { at, found, .. }) => (at, found),
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(wrong("num"), ("num".into(), "a number"));
        assert_eq!(wrong("deep.roles"), ("deep.roles".into(), "an object"));
        assert_eq!(wrong("mixed"), ("mixed".into(), "a list holding a number"));
        assert_eq!(wrong("flat.roles"), ("flat".into(), "a string"));
        assert_eq!(wrong("realm_access"), ("realm_access".into(), "an object"));
    }

    #[test]
    fn group_map_applies_to_the_configured_claim() {
        let r = h(&crate::config::DEFAULT_ROLES);
        let map = vec![("/admins".to_owned(), "DemoApp.Admin".to_owned())];
        let source = RoleSource::groups(&map, &r)
            .unwrap()
            .with_claim(path("realm_access.groups"));
        let c = claims(serde_json::json!({
            "realm_access": {"groups": ["/admins", "/other"]},
            "hasgroups": true,
        }));
        assert_eq!(source.read(&c), Ok(vec!["DemoApp.Admin".to_owned()]));
        assert!(source.describe().contains("realm_access.groups"));
        let string_roles = claims(serde_json::json!({"roles": "DemoApp.Read"}));
        assert_eq!(
            RoleSource::default().read(&string_roles),
            Ok(vec!["DemoApp.Read".to_owned()])
        );
    }

    proptest::proptest! {
        /// Invariant: any valid path reads back the list put at that path, whatever surrounds it.
        #[test]
        fn any_path_finds_its_list(
            names in proptest::collection::vec("[a-z_]{1,8}", 1..4),
            roles in proptest::collection::vec(".{0,8}", 0..4),
        ) {
            let mut value = serde_json::json!(roles.clone());
            for name in names.iter().rev() {
                value = serde_json::json!({ name.clone(): value, "noise!": 1 });
            }
            let Some(c) = serde_json::from_value::<Claims>(value).ok() else { return Ok(()) };
            let Ok(claim) = RoleClaim::parse(&names.join("."), "c") else { return Ok(()) };
            proptest::prop_assert_eq!(claim.read(&c), Ok(Some(roles)));
        }
    }
}
