//! Deny-by-default access decisions, recorded in the audit table.
//!
//! A [`Policy`] is an ordered list of [`Rule`]s. A request is allowed only
//! when a paired, approved device and an authenticated user make it and
//! some rule matches the user's role and the action and passes all of its
//! conditions: device list, source network, local time of day and the
//! item's rating. Anything else is denied, with the reason of the first
//! rule that matched role and action but failed a condition, or "no rule
//! allows" when none matched.
//!
//! [`PolicyEngine::decide`] records every decision, allowed or denied, in the
//! audit table before returning it. If the record cannot be written, it
//! returns an error and the caller denies the request.

mod network;
mod rating;

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

pub use self::network::{InvalidNetwork, IpNetwork};
pub use self::rating::{ContentRating, UnknownRating};
use crate::audit::{AuditError, AuditEvent, AuditLog};
use crate::clock::Clock;
use crate::did::Did;
use crate::role::Role;
use crate::session::Session;

/// Minutes in a day.
const DAY_MINUTES: u16 = 24 * 60;

/// Something a request tries to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// List or search the library; items above a role's rating limit are
    /// filtered by the catalog, not by this decision.
    BrowseLibrary,
    /// Read an item's details or artwork.
    ViewItem,
    /// Stream or download an item.
    PlayItem,
    /// Create, change or disable users.
    ManageUsers,
    /// Approve, rename or revoke devices.
    ManageDevices,
    /// Change the access policy.
    ManagePolicy,
    /// Read the audit log.
    ReadAudit,
    /// Run the server: scans, key rotation, links with other nodes, the
    /// connection list.
    ManageServer,
}

impl Action {
    /// Returns the name stored in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::BrowseLibrary => "browse_library",
            Action::ViewItem => "view_item",
            Action::PlayItem => "play_item",
            Action::ManageUsers => "manage_users",
            Action::ManageDevices => "manage_devices",
            Action::ManagePolicy => "manage_policy",
            Action::ReadAudit => "read_audit",
            Action::ManageServer => "manage_server",
        }
    }

    /// Returns whether the action targets one media item, so a rating limit applies.
    pub fn is_item_action(self) -> bool {
        matches!(self, Action::ViewItem | Action::PlayItem)
    }

    /// Every action.
    pub const ALL: [Action; 8] = [
        Action::BrowseLibrary,
        Action::ViewItem,
        Action::PlayItem,
        Action::ManageUsers,
        Action::ManageDevices,
        Action::ManagePolicy,
        Action::ReadAudit,
        Action::ManageServer,
    ];
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A local time-of-day window, in minutes after midnight. A window whose
/// end is before its start runs past midnight (for example 22:00–06:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// First allowed minute, 0–1439.
    pub start: u16,
    /// First minute no longer allowed, 0–1439.
    pub end: u16,
}

impl TimeWindow {
    /// Creates a window from `start_hour:start_minute` up to, not
    /// including, `end_hour:end_minute`.
    ///
    /// # Panics
    ///
    /// Panics when an hour is above 23 or a minute above 59.
    pub const fn hours(start_hour: u16, start_minute: u16, end_hour: u16, end_minute: u16) -> Self {
        assert!(
            start_hour < 24 && end_hour < 24 && start_minute < 60 && end_minute < 60,
            "invalid time of day"
        );
        Self {
            start: start_hour * 60 + start_minute,
            end: end_hour * 60 + end_minute,
        }
    }

    /// Returns whether `minute` (after local midnight) is inside the window.
    pub fn contains(&self, minute: u16) -> bool {
        if self.start <= self.end {
            self.start <= minute && minute < self.end
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

impl fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}–{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// One allow rule. It applies to requests whose role and action it lists;
/// every condition that is set must hold for it to allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Name shown in decision reasons.
    pub name: String,
    /// Roles the rule applies to.
    pub roles: Vec<Role>,
    /// Actions the rule allows.
    pub actions: Vec<Action>,
    /// Oldest minimum age of an item rating allowed, for item actions.
    /// `None` allows every rating.
    pub max_rating_age: Option<u8>,
    /// Local time window in which the rule allows; `None` for all day.
    pub hours: Option<TimeWindow>,
    /// Source networks the request must come from; empty allows any source.
    pub networks: Vec<IpNetwork>,
    /// Devices the request must come from; `None` allows any approved device.
    pub devices: Option<Vec<Did>>,
}

/// An ordered list of allow rules and the household's time zone offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The household's offset from UTC in minutes (for example 60 for
    /// UTC+01:00), for time-of-day rules.
    pub utc_offset_minutes: i32,
    /// The rules, tried in order.
    pub rules: Vec<Rule>,
}

/// A request to decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The authenticated user's did:key and role; `None` when no user is authenticated.
    pub user: Option<(Did, Role)>,
    /// The device the request came from; `None` when it is not a paired device.
    pub device: Option<DeviceContext>,
    /// Action the request attempts.
    pub action: Action,
    /// Target of the action, such as an item id, recorded in the audit.
    pub resource: String,
    /// The item's rating, for item actions; `None` counts as unrated.
    pub rating: Option<ContentRating>,
    /// The address the request came from.
    pub source: IpAddr,
}

/// Requesting device and its approval state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceContext {
    /// The device's did:key.
    pub did: Did,
    /// Whether an admin approved it and it is not revoked.
    pub approved: bool,
}

/// The outcome of a policy evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why, naming the rule or the failed condition.
    pub reason: String,
}

impl RequestContext {
    /// Builds the context of a request in an authenticated session.
    pub fn from_session(
        session: &Session,
        action: Action,
        resource: impl Into<String>,
        rating: Option<ContentRating>,
        source: IpAddr,
    ) -> Self {
        Self {
            user: Some((session.user_did.clone(), session.role)),
            device: Some(DeviceContext {
                did: session.device_did.clone(),
                approved: true,
            }),
            action,
            resource: resource.into(),
            rating,
            source,
        }
    }
}

impl Policy {
    /// Returns the default household policy, with every rule limited to home
    /// LAN networks:
    ///
    /// - admins: every action, any time;
    /// - adults: browse, view and play any rating, any time;
    /// - teens: ratings up to age 14 (PG-13, TV-14), 06:00–22:00;
    /// - children: ratings up to age 7 (G, TV-Y, TV-Y7, TV-G), 07:00–20:00.
    pub fn household_default(utc_offset_minutes: i32) -> Self {
        let viewing = vec![Action::BrowseLibrary, Action::ViewItem, Action::PlayItem];
        let rule = |name: &str, role, actions, max_rating_age, hours| Rule {
            name: name.to_owned(),
            roles: vec![role],
            actions,
            max_rating_age,
            hours,
            networks: IpNetwork::home_lan(),
            devices: None,
        };

        Self {
            utc_offset_minutes,
            rules: vec![
                rule("admins", Role::Admin, Action::ALL.to_vec(), None, None),
                rule("adults", Role::Adult, viewing.clone(), None, None),
                rule(
                    "teens",
                    Role::Teen,
                    viewing.clone(),
                    Some(14),
                    Some(TimeWindow::hours(6, 0, 22, 0)),
                ),
                rule(
                    "children",
                    Role::Child,
                    viewing,
                    Some(7),
                    Some(TimeWindow::hours(7, 0, 20, 0)),
                ),
            ],
        }
    }

    /// Decides on `context` at `now` (Unix seconds), without recording.
    pub fn evaluate(&self, context: &RequestContext, now: i64) -> Decision {
        let Some(device) = &context.device else {
            return deny(
                "unknown device: the request does not come from a paired device".to_owned(),
            );
        };
        if !device.approved {
            return deny(format!("device {} is not approved", device.did));
        }
        let Some((_, role)) = &context.user else {
            return deny("no authenticated user".to_owned());
        };

        let minute = self.local_minute(now);
        let mut first_failure = None;
        for rule in &self.rules {
            if !rule.roles.contains(role) || !rule.actions.contains(&context.action) {
                continue;
            }
            match rule.failed_condition(context, device, minute) {
                None => {
                    return Decision {
                        allowed: true,
                        reason: format!(
                            "rule '{}' allows {} for role {role}",
                            rule.name, context.action
                        ),
                    };
                }
                Some(failure) => {
                    first_failure.get_or_insert(failure);
                }
            }
        }

        deny(
            first_failure
                .unwrap_or_else(|| format!("no rule allows {} for role {role}", context.action)),
        )
    }

    /// Returns the local minute after midnight at `now`.
    fn local_minute(&self, now: i64) -> u16 {
        let local = now + i64::from(self.utc_offset_minutes) * 60;
        let minute = local.div_euclid(60).rem_euclid(i64::from(DAY_MINUTES));
        u16::try_from(minute).expect("a minute of the day is below 1440")
    }
}

impl Rule {
    /// Returns the reason the first unmet condition gives, or `None` when all hold.
    fn failed_condition(
        &self,
        context: &RequestContext,
        device: &DeviceContext,
        minute: u16,
    ) -> Option<String> {
        if let Some(devices) = &self.devices
            && !devices.contains(&device.did)
        {
            return Some(format!(
                "rule '{}' does not list device {}",
                self.name, device.did
            ));
        }

        if !self.networks.is_empty()
            && !self
                .networks
                .iter()
                .any(|network| network.contains(context.source))
        {
            return Some(format!(
                "rule '{}' does not allow source address {}",
                self.name, context.source
            ));
        }

        if let Some(hours) = self.hours
            && !hours.contains(minute)
        {
            return Some(format!(
                "rule '{}' allows this only {hours} local time; it is {:02}:{:02}",
                self.name,
                minute / 60,
                minute % 60
            ));
        }

        if let Some(max_age) = self.max_rating_age
            && context.action.is_item_action()
        {
            let rating = context.rating.unwrap_or(ContentRating::Unrated);
            if rating.min_age() > max_age {
                return Some(format!(
                    "rule '{}' allows ratings up to age {max_age}; {} is for age {}",
                    self.name,
                    rating,
                    rating.min_age()
                ));
            }
        }
        None
    }
}

/// Evaluates the current policy and records each decision.
pub struct PolicyEngine {
    policy: RwLock<Arc<Policy>>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
}

impl PolicyEngine {
    /// Creates an engine that records decisions in `audit`.
    pub fn new(policy: Policy, audit: AuditLog, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy: RwLock::new(Arc::new(policy)),
            audit,
            clock,
        }
    }

    /// Replaces the policy; decisions from now on use the new one.
    pub fn set_policy(&self, policy: Policy) {
        *self
            .policy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(policy);
    }

    /// Decides on `context` and records the decision with its reason.
    ///
    /// # Errors
    ///
    /// Returns [`AuditError`] when the decision cannot be recorded; the
    /// caller must then deny the request.
    pub fn decide(&self, context: &RequestContext) -> Result<Decision, AuditError> {
        let now = self.clock.now();
        let policy = self
            .policy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let decision = policy.evaluate(context, now);

        self.audit.record(&AuditEvent {
            time: now,
            subject: context.user.as_ref().map(|(did, _)| did.to_string()),
            device: context.device.as_ref().map(|device| device.did.to_string()),
            action: context.action.as_str().to_owned(),
            resource: context.resource.clone(),
            allowed: decision.allowed,
            reason: decision.reason.clone(),
            source: context.source,
        })?;
        Ok(decision)
    }

    /// Returns the audit log decisions are recorded in.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Returns the highest rating age any rule lets `role` view, for
    /// filtering listings: `None` when some rule sets no limit, `Some(0)`
    /// when no rule lets the role view items at all.
    pub fn max_rating_age(&self, role: Role) -> Option<u8> {
        let policy = self.policy.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let limits = policy
            .rules
            .iter()
            .filter(|rule| rule.roles.contains(&role) && rule.actions.contains(&Action::ViewItem))
            .map(|rule| rule.max_rating_age);
        let mut highest = Some(0u8);
        for limit in limits {
            highest = match (highest, limit) {
                (_, None) | (None, _) => None,
                (Some(a), Some(b)) => Some(a.max(b)),
            };
        }
        highest
    }
}

impl fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}

fn deny(reason: String) -> Decision {
    Decision {
        allowed: false,
        reason,
    }
}

#[cfg(test)]
mod tests;
