//! App roles as data: an ordered hierarchy (each level implies the ones below it), where the
//! roles come from, and typed markers for guards.
//!
//! Role values match exactly, case and whitespace included, so look-alikes such as
//! `demoapp.admin` or `DemoApp.Admin ` grant nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

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

/// Where a user's app roles come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RoleSource {
    /// The token's `roles` claim (Entra app roles): the default.
    #[default]
    RolesClaim,
    /// The `groups` claim, mapped by group object id to role values.
    Groups(Arc<HashMap<String, String>>),
}

/// Why roles could not be read from a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoleReadError {
    /// The token names more groups than it can carry (`_claim_names.groups`, `hasgroups`).
    GroupsOverage,
}

impl RoleSource {
    /// Checks a group → role map: ids non-empty, every role in `roles`.
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
            Ok(RoleSource::Groups(Arc::new(out)))
        } else {
            Err(errors)
        }
    }

    /// The app role values a token grants, in the order first seen, without duplicates.
    pub(crate) fn read(&self, claims: &Claims) -> Result<Vec<String>, RoleReadError> {
        match self {
            RoleSource::RolesClaim => Ok(claims.roles.clone().unwrap_or_default()),
            RoleSource::Groups(map) => {
                if claims.groups_overage() {
                    return Err(RoleReadError::GroupsOverage);
                }
                let mut seen = BTreeSet::new();
                Ok(claims
                    .groups
                    .iter()
                    .flatten()
                    .filter_map(|g| map.get(g))
                    .filter(|r| seen.insert(r.as_str()))
                    .cloned()
                    .collect())
            }
        }
    }

    /// `roles claim` or `groups claim (3 groups mapped)`, for `check-config`.
    pub fn describe(&self) -> String {
        match self {
            RoleSource::RolesClaim => "the token's roles claim".to_owned(),
            RoleSource::Groups(map) => {
                format!("the token's groups claim ({} groups mapped)", map.len())
            }
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
            RoleSource::RolesClaim.read(&over).is_ok(),
            "overage does not matter to the roles claim"
        );
    }
}
