//! Users and devices in the household database, and password login.
//!
//! [`UserStore`] owns the `users`, `devices` and `login_throttle` tables
//! (migration domain [`crate::schema::DOMAIN`]). Revoking a device or
//! disabling a user writes the database and then the shared
//! [`RevocationRegistry`], which ends the sessions on their next request.

mod devices;
mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use hearth_store::{Store, StoreError};
use rusqlite::{OptionalExtension as _, TransactionBehavior, params};
use tracing::{info, warn};

pub use self::devices::{Device, DeviceId};
use self::throttle::Blocked;
pub use self::throttle::{ThrottlePolicy, ThrottleRule};
use crate::audit::{AuditError, AuditEvent, AuditLog};
use crate::clock::Clock;
use crate::did::{Did, DidError};
use crate::password::{PasswordError, PasswordHasher};
use crate::role::Role;
use crate::schema;
use crate::session::RevocationRegistry;

/// Maximum user name length, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Row id of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// A household member. The password hash stays in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// The user's did:key.
    pub did: Did,
    /// Display and login name.
    pub name: String,
    /// Role for policy decisions.
    pub role: Role,
    /// Creation time in Unix seconds.
    pub created_at: i64,
    /// Whether the account is disabled (no login, no sessions).
    pub disabled: bool,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Login name, unique regardless of case.
    pub name: &'a str,
    /// The user's did:key, from the key the user will hold (a passkey or
    /// their first device).
    pub did: Did,
    /// Role.
    pub role: Role,
    /// Initial password; `None` for a passkey-only user.
    pub password: Option<&'a str>,
}

/// The users and devices tables.
pub struct UserStore {
    store: Arc<Store>,
    hasher: PasswordHasher,
    clock: Arc<dyn Clock>,
    throttle: ThrottlePolicy,
    revocations: Arc<RevocationRegistry>,
    audit: AuditLog,
}

impl UserStore {
    /// Runs the access migrations, then loads disabled users and revoked
    /// devices into `revocations` so they stay blocked after a restart.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::Store`] when a migration fails.
    pub fn open(
        store: Arc<Store>,
        hasher: PasswordHasher,
        clock: Arc<dyn Clock>,
        revocations: Arc<RevocationRegistry>,
    ) -> Result<Self, UserError> {
        store.migrate(schema::DOMAIN, schema::MIGRATIONS)?;
        let audit = AuditLog::new(store.clone());
        let users = Self {
            store,
            hasher,
            clock,
            throttle: ThrottlePolicy::default(),
            revocations,
            audit,
        };

        users.load_revocations()?;
        Ok(users)
    }

    /// Replaces the default login throttle policy.
    pub fn with_throttle_policy(mut self, policy: ThrottlePolicy) -> Self {
        self.throttle = policy;
        self
    }

    /// Creates the first user, an admin, when the household has no users yet.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::AlreadySetUp`] when any user exists, and the
    /// errors of [`UserStore::create_user`].
    pub fn create_first_admin(
        &self,
        name: &str,
        did: Did,
        password: &str,
    ) -> Result<User, UserError> {
        let new = NewUser {
            name,
            did,
            role: Role::Admin,
            password: Some(password),
        };
        self.insert_user(&new, true)
    }

    /// Creates a user.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::InvalidName`], [`UserError::NameTaken`],
    /// [`UserError::DidTaken`] or a [`UserError::Password`] for a password
    /// that breaks the length rules.
    pub fn create_user(&self, new: &NewUser<'_>) -> Result<User, UserError> {
        self.insert_user(new, false)
    }

    /// Sets a new password.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::UserNotFound`] or a [`UserError::Password`].
    pub fn set_password(&self, id: UserId, password: &str) -> Result<(), UserError> {
        let hash = self.hasher.hash(password)?;
        let conn = self.store.get()?;
        let changed = conn.execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            params![hash, id.0],
        )?;
        expect_one(changed, UserError::UserNotFound { id })
    }

    /// Changes a user's role and ends the user's sessions, which carry the old role.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::UserNotFound`] or [`UserError::LastAdmin`] when
    /// this would leave the household without an enabled admin.
    pub fn set_role(&self, id: UserId, role: Role) -> Result<(), UserError> {
        let mut conn = self.store.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if role != Role::Admin {
            ensure_other_admin(&tx, id)?;
        }
        let changed = tx.execute(
            "UPDATE users SET role = ?1 WHERE id = ?2",
            params![role.as_str(), id.0],
        )?;
        expect_one(changed, UserError::UserNotFound { id })?;
        tx.commit()?;

        self.revocations.end_sessions_of_user(id);
        info!(user = id.0, role = %role, "user role changed");
        Ok(())
    }

    /// Disables a user: no more logins, and every session ends on its next request.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::UserNotFound`] or [`UserError::LastAdmin`].
    pub fn disable_user(&self, id: UserId) -> Result<(), UserError> {
        let mut conn = self.store.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        ensure_other_admin(&tx, id)?;
        let changed = tx.execute("UPDATE users SET disabled = 1 WHERE id = ?1", [id.0])?;
        expect_one(changed, UserError::UserNotFound { id })?;
        tx.commit()?;

        self.revocations.revoke_user(id);
        info!(user = id.0, "user disabled");
        Ok(())
    }

    /// Enables a disabled user again.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::UserNotFound`].
    pub fn enable_user(&self, id: UserId) -> Result<(), UserError> {
        let conn = self.store.get()?;
        let changed = conn.execute("UPDATE users SET disabled = 0 WHERE id = ?1", [id.0])?;
        expect_one(changed, UserError::UserNotFound { id })?;

        self.revocations.unblock_user(id);
        info!(user = id.0, "user enabled");
        Ok(())
    }

    /// Checks a name and password from `source`, with throttling, and
    /// records the attempt in the audit table.
    ///
    /// Unknown names, users without a password, disabled users and wrong
    /// passwords all return [`LoginError::InvalidCredentials`] after one
    /// Argon2 verification, so neither the error nor its timing reveals
    /// which case it was. A successful login with an outdated hash
    /// replaces the hash with one made with the current parameters.
    ///
    /// # Errors
    ///
    /// Returns [`LoginError::Throttled`] or [`LoginError::Locked`] without
    /// checking the password, [`LoginError::InvalidCredentials`], or
    /// [`LoginError::Store`].
    pub fn login(&self, name: &str, password: &str, source: IpAddr) -> Result<User, LoginError> {
        let now = self.clock.now();
        let account_key = throttle::account_key(&name_key(name));
        let source_key = throttle::source_key(source);

        let blocked = {
            let mut conn = self.store.get().map_err(UserError::from)?;
            throttle::begin_attempt(&mut conn, &self.throttle, &account_key, &source_key, now)?
        };
        if let Some(blocked) = blocked {
            let (error, reason) = match blocked {
                Blocked::Throttled(wait) => (
                    LoginError::Throttled { retry_after: wait },
                    "login throttled",
                ),
                Blocked::Locked(wait) => {
                    (LoginError::Locked { retry_after: wait }, "login locked out")
                }
            };
            self.audit_login(now, None, source, false, reason)?;
            return Err(error);
        }

        let row = self.password_row(name)?;
        let verified = match &row {
            Some((_, Some(hash))) => self
                .hasher
                .verify(password, hash)
                .map_err(UserError::from)?,
            _ => {
                self.hasher.verify_dummy(password);
                false
            }
        };

        match row {
            Some((user, Some(hash))) if verified && !user.disabled => {
                let conn = self.store.get().map_err(UserError::from)?;
                throttle::record_success(&conn, &account_key, &source_key)?;
                drop(conn);
                if self.hasher.needs_rehash(&hash) {
                    self.set_password_hash(user.id, password)?;
                }
                self.audit_login(now, Some(&user), source, true, "password verified")?;
                Ok(user)
            }
            row => {
                let user = row.map(|(user, _)| user);
                warn!(source = %source, known_user = user.is_some(), "login failed");
                self.audit_login(
                    now,
                    user.as_ref(),
                    source,
                    false,
                    "invalid name or password",
                )?;
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    /// Returns the user with `id`.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::Store`] or [`UserError::Sqlite`] on database
    /// failure and [`UserError::CorruptRow`] for a malformed row.
    pub fn user(&self, id: UserId) -> Result<Option<User>, UserError> {
        let conn = self.store.get()?;
        let row = conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [id.0],
                read_user_row,
            )
            .optional()?;
        row.map(UserRow::into_user).transpose()
    }

    /// Returns the user named `name`, compared case-insensitively.
    ///
    /// # Errors
    ///
    /// As [`UserStore::user`].
    pub fn user_by_name(&self, name: &str) -> Result<Option<User>, UserError> {
        Ok(self.password_row(name)?.map(|(user, _)| user))
    }

    /// Returns every user, by id.
    ///
    /// # Errors
    ///
    /// As [`UserStore::user`].
    pub fn users(&self) -> Result<Vec<User>, UserError> {
        let conn = self.store.get()?;
        let mut statement =
            conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))?;
        let rows = statement.query_map([], read_user_row)?;

        let mut users = Vec::new();
        for row in rows {
            users.push(row?.into_user()?);
        }
        Ok(users)
    }

    /// Returns the audit log on the same database.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    fn insert_user(&self, new: &NewUser<'_>, first_admin: bool) -> Result<User, UserError> {
        let name = validate_name(new.name)?;
        let hash = new
            .password
            .map(|password| self.hasher.hash(password))
            .transpose()?;
        let now = self.clock.now();

        let mut conn = self.store.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if first_admin {
            let users: i64 = tx.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))?;
            if users > 0 {
                return Err(UserError::AlreadySetUp);
            }
        }
        tx.execute(
            "INSERT INTO users (did, name, name_key, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![new.did.as_str(), name, name_key(name), new.role.as_str(), hash, now],
        )
        .map_err(|error| unique_violation(error, name, new.did.as_str()))?;
        let id = UserId(tx.last_insert_rowid());
        tx.commit()?;

        info!(user = id.0, role = %new.role, "user created");
        Ok(User {
            id,
            did: new.did.clone(),
            name: name.to_owned(),
            role: new.role,
            created_at: now,
            disabled: false,
        })
    }

    fn set_password_hash(&self, id: UserId, password: &str) -> Result<(), UserError> {
        let hash = self.hasher.hash(password)?;
        let conn = self.store.get()?;
        conn.execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            params![hash, id.0],
        )?;
        Ok(())
    }

    /// Reads a user and the stored password hash by name.
    fn password_row(&self, name: &str) -> Result<Option<(User, Option<String>)>, UserError> {
        let conn = self.store.get()?;
        let row = conn
            .query_row(
                &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE name_key = ?1"),
                [name_key(name)],
                |row| Ok((read_user_row(row)?, row.get::<_, Option<String>>(6)?)),
            )
            .optional()?;

        match row {
            Some((user, hash)) => Ok(Some((user.into_user()?, hash))),
            None => Ok(None),
        }
    }

    fn audit_login(
        &self,
        time: i64,
        user: Option<&User>,
        source: IpAddr,
        allowed: bool,
        reason: &str,
    ) -> Result<(), LoginError> {
        let event = AuditEvent {
            time,
            subject: user.map(|user| user.did.to_string()),
            device: None,
            action: "login".to_owned(),
            resource: user.map_or_else(
                || "user:(unknown)".to_owned(),
                |user| format!("user:{}", user.name),
            ),
            allowed,
            reason: reason.to_owned(),
            source,
        };
        self.audit.record(&event).map_err(LoginError::Audit)?;
        Ok(())
    }

    fn load_revocations(&self) -> Result<(), UserError> {
        let conn = self.store.get()?;

        let mut disabled = conn.prepare("SELECT id FROM users WHERE disabled = 1")?;
        for id in disabled.query_map([], |row| row.get(0))? {
            self.revocations.revoke_user(UserId(id?));
        }
        let mut revoked = conn.prepare("SELECT id FROM devices WHERE revoked_at IS NOT NULL")?;
        for id in revoked.query_map([], |row| row.get(0))? {
            self.revocations.revoke_device(DeviceId(id?));
        }
        Ok(())
    }
}

impl std::fmt::Debug for UserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserStore")
            .field("database", &self.store.path())
            .field("throttle", &self.throttle)
            .finish_non_exhaustive()
    }
}

/// Error from the users and devices tables.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The database could not be opened or migrated.
    #[error("failed to open or migrate the access tables")]
    Store(#[from] StoreError),

    /// A query failed.
    #[error("access table query failed")]
    Sqlite(#[from] rusqlite::Error),

    /// A password could not be hashed or checked.
    #[error(transparent)]
    Password(#[from] PasswordError),

    /// The user name breaks the naming rules.
    #[error("invalid user name {name:?}: {problem}")]
    InvalidName {
        /// The name given.
        name: String,
        /// The rule broken.
        problem: &'static str,
    },

    /// Another user has this name (compared case-insensitively).
    #[error("user name {name:?} is taken")]
    NameTaken {
        /// The name given.
        name: String,
    },

    /// Another user or device has this did:key.
    #[error("did:key {did} is already registered")]
    DidTaken {
        /// The did:key given.
        did: String,
    },

    /// First-run setup was requested but users exist.
    #[error("the household already has users; sign in as an admin to add more")]
    AlreadySetUp,

    /// The change would leave no enabled admin.
    #[error("user {id} is the last enabled admin; make another user admin first", id = id.0)]
    LastAdmin {
        /// The user.
        id: UserId,
    },

    /// No user has this id.
    #[error("user {id} not found", id = id.0)]
    UserNotFound {
        /// The id.
        id: UserId,
    },

    /// No device has this id.
    #[error("device {id} not found", id = id.0)]
    DeviceNotFound {
        /// The id.
        id: DeviceId,
    },

    /// The device is revoked and cannot be approved again.
    #[error("device {id} is revoked; pair it again as a new device", id = id.0)]
    DeviceRevoked {
        /// The id.
        id: DeviceId,
    },

    /// The device name is empty or too long.
    #[error("invalid device name: {problem}")]
    InvalidDeviceName {
        /// The rule broken.
        problem: &'static str,
    },

    /// A stored row has a value this build cannot read.
    #[error("malformed {table} row {id}: invalid {column}")]
    CorruptRow {
        /// Table.
        table: &'static str,
        /// Row id.
        id: i64,
        /// Column with the bad value.
        column: &'static str,
        /// The underlying parse error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Error from a login attempt.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The name or password is wrong, or the account cannot log in with a password.
    #[error("invalid name or password")]
    InvalidCredentials,

    /// Too many recent failures: wait before the next attempt.
    #[error("too many failed logins; retry in {retry_after} s")]
    Throttled {
        /// Seconds to wait.
        retry_after: i64,
    },

    /// Locked out after repeated failures.
    #[error(
        "login locked after repeated failures; retry in {retry_after} s or sign in with a passkey"
    )]
    Locked {
        /// Seconds until the lockout ends.
        retry_after: i64,
    },

    /// The attempt could not be recorded in the audit table, so it was denied.
    #[error("failed to record the login attempt")]
    Audit(#[source] AuditError),

    /// The database failed.
    #[error("login failed on a database error")]
    Store(#[from] UserError),
}

/// Columns of a user row, in [`read_user_row`] order.
const USER_COLUMNS: &str = "id, did, name, role, created_at, disabled";

/// A user row before its text columns are parsed.
struct UserRow {
    id: i64,
    did: String,
    name: String,
    role: String,
    created_at: i64,
    disabled: bool,
}

fn read_user_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get(0)?,
        did: row.get(1)?,
        name: row.get(2)?,
        role: row.get(3)?,
        created_at: row.get(4)?,
        disabled: row.get(5)?,
    })
}

impl UserRow {
    fn into_user(self) -> Result<User, UserError> {
        let corrupt = |column, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
            UserError::CorruptRow {
                table: "users",
                id: self.id,
                column,
                source,
            }
        };
        let did = Did::parse(&self.did)
            .map_err(|error: DidError| corrupt("did", Some(Box::new(error))))?;
        let role = self
            .role
            .parse()
            .map_err(|error: crate::role::UnknownRole| corrupt("role", Some(Box::new(error))))?;

        Ok(User {
            id: UserId(self.id),
            did,
            name: self.name,
            role,
            created_at: self.created_at,
            disabled: self.disabled,
        })
    }
}

/// Checks a new user name: 1 to 64 characters, no control characters, no
/// leading or trailing white space.
fn validate_name(name: &str) -> Result<&str, UserError> {
    let invalid = |problem| UserError::InvalidName {
        name: name.chars().take(MAX_NAME_CHARS).collect(),
        problem,
    };

    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("longer than 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("contains a control character"));
    }
    if name.chars().any(is_invisible_format) {
        return Err(invalid("contains an invisible or text-direction character"));
    }
    if name.trim() != name {
        return Err(invalid("starts or ends with white space"));
    }
    Ok(name)
}

/// Returns whether `c` is a zero-width or text-direction formatting
/// character, which would let one name look like another in a list.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Returns the case-insensitive key of a name.
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Fails with `LastAdmin` when `id` is the only enabled admin.
fn ensure_other_admin(tx: &rusqlite::Transaction<'_>, id: UserId) -> Result<(), UserError> {
    let is_enabled_admin: bool = tx
        .query_row(
            "SELECT role = 'admin' AND disabled = 0 FROM users WHERE id = ?1",
            [id.0],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(false);
    if !is_enabled_admin {
        return Ok(());
    }

    let other_admins: i64 = tx.query_row(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?1",
        [id.0],
        |row| row.get(0),
    )?;
    if other_admins == 0 {
        return Err(UserError::LastAdmin { id });
    }
    Ok(())
}

fn expect_one(changed: usize, not_found: UserError) -> Result<(), UserError> {
    if changed == 0 { Err(not_found) } else { Ok(()) }
}

/// Maps a UNIQUE violation on users to the field that collided.
fn unique_violation(error: rusqlite::Error, name: &str, did: &str) -> UserError {
    let message = error.to_string();
    if message.contains("users.name_key") {
        UserError::NameTaken {
            name: name.to_owned(),
        }
    } else if message.contains("users.did") {
        UserError::DidTaken {
            did: did.to_owned(),
        }
    } else {
        UserError::Sqlite(error)
    }
}

#[cfg(test)]
mod tests;
