//! Household roles.

use std::fmt;
use std::str::FromStr;

/// The role of a household member, which policy rules match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Manages users, devices, policy and the audit log.
    Admin,
    /// Watches anything the policy allows adults; no administration.
    Adult,
    /// Teenager: rating limit and curfew in the default policy.
    Teen,
    /// Child: strict rating limit and early curfew in the default policy.
    Child,
}

impl Role {
    /// Every role, most privileged first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Adult, Role::Teen, Role::Child];

    /// Returns the lowercase name stored in the database and in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Adult => "adult",
            Role::Teen => "teen",
            Role::Child => "child",
        }
    }

    /// Returns the byte that encodes the role in a credential (never 0,
    /// which means "no role").
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Role::Admin => 1,
            Role::Adult => 2,
            Role::Teen => 3,
            Role::Child => 4,
        }
    }

    /// Decodes a credential role byte; 0 and unknown values return `None`.
    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Role::Admin),
            2 => Some(Role::Adult),
            3 => Some(Role::Teen),
            4 => Some(Role::Child),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error from parsing a role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {found:?}: expected admin, adult, teen or child")]
pub struct UnknownRole {
    /// The text that was parsed.
    pub found: String,
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| UnknownRole {
                found: text.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }

    #[test]
    fn role_bytes_round_trip_and_zero_is_none() {
        for role in Role::ALL {
            assert_eq!(Role::from_byte(role.to_byte()), Some(role));
        }
        assert_eq!(Role::from_byte(0), None);
        assert_eq!(Role::from_byte(5), None);
    }

    #[test]
    fn role_parse_is_case_sensitive() {
        assert!("Admin".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
    }
}
