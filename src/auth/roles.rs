//! App roles and their hierarchy: Admin implies Write implies Read.
//!
//! Roles come from the token's `roles` claim and match exactly (case and whitespace
//! included), so look-alikes such as `demoapp.admin` or `DemoApp.Admin ` grant nothing.

use serde::{Deserialize, Serialize};

/// The access a user has, ordered so that a higher level includes every lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AccessLevel {
    Read,
    Write,
    Admin,
}

impl AccessLevel {
    pub const ALL: [AccessLevel; 3] = [AccessLevel::Read, AccessLevel::Write, AccessLevel::Admin];

    /// The app role value as it appears in the token and in the app registration.
    pub fn role_name(self) -> &'static str {
        match self {
            AccessLevel::Read => "DemoApp.Read",
            AccessLevel::Write => "DemoApp.Write",
            AccessLevel::Admin => "DemoApp.Admin",
        }
    }

    /// Short label for pages (`Read`, `Write`, `Admin`).
    pub fn label(self) -> &'static str {
        match self {
            AccessLevel::Read => "Read",
            AccessLevel::Write => "Write",
            AccessLevel::Admin => "Admin",
        }
    }

    /// The highest level granted by a token's roles, or `None` when it holds no app role.
    pub fn from_roles<S: AsRef<str>>(roles: &[S]) -> Option<AccessLevel> {
        roles
            .iter()
            .filter_map(|role| {
                AccessLevel::ALL
                    .into_iter()
                    .find(|level| level.role_name() == role.as_ref())
            })
            .max()
    }

    /// Whether this level includes `needed`.
    pub fn allows(self, needed: AccessLevel) -> bool {
        self >= needed
    }
}

/// A role marker for [`crate::auth::RequireRole`]; the type names the level needed.
pub trait Role: 'static {
    const LEVEL: AccessLevel;
}

/// Needs `DemoApp.Read` (or anything above it).
pub struct Read;
/// Needs `DemoApp.Write` or `DemoApp.Admin`.
pub struct Write;
/// Needs `DemoApp.Admin`.
pub struct Admin;

impl Role for Read {
    const LEVEL: AccessLevel = AccessLevel::Read;
}
impl Role for Write {
    const LEVEL: AccessLevel = AccessLevel::Write;
}
impl Role for Admin {
    const LEVEL: AccessLevel = AccessLevel::Admin;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_role_wins() {
        assert_eq!(
            AccessLevel::from_roles(&["DemoApp.Read", "DemoApp.Admin"]),
            Some(AccessLevel::Admin)
        );
        assert_eq!(
            AccessLevel::from_roles(&["DemoApp.Write"]),
            Some(AccessLevel::Write)
        );
        assert_eq!(
            AccessLevel::from_roles(&["DemoApp.Read"]),
            Some(AccessLevel::Read)
        );
    }

    #[test]
    fn look_alikes_grant_nothing() {
        for role in [
            "demoapp.admin",
            "DemoApp.Admin ",
            " DemoApp.Admin",
            "OtherApp.Admin",
            "DemoApp.Administrator",
            "DemoApp",
            "",
        ] {
            assert_eq!(AccessLevel::from_roles(&[role]), None, "{role:?}");
        }
        assert_eq!(AccessLevel::from_roles::<&str>(&[]), None);
    }

    #[test]
    fn hierarchy() {
        assert!(AccessLevel::Admin.allows(AccessLevel::Write));
        assert!(AccessLevel::Admin.allows(AccessLevel::Read));
        assert!(AccessLevel::Write.allows(AccessLevel::Read));
        assert!(!AccessLevel::Write.allows(AccessLevel::Admin));
        assert!(!AccessLevel::Read.allows(AccessLevel::Write));
    }
}
