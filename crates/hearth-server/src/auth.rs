//! The coarse permission level that handlers check, derived from the
//! caller's session by [`crate::access::authenticate`]: household admins
//! (and host commands on the admin socket) are [`Role::Admin`], every other
//! household role is [`Role::Member`].

/// Permission level of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = AccessLevel)]
pub enum Role {
    /// Sees everything, including photo locations; may start scans.
    Admin,
    /// Browses and plays, but never receives photo locations.
    Member,
}
