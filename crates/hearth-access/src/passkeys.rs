//! Each user's passkeys (WebAuthn credentials): the sign-in beside the
//! password.
//!
//! [`PasskeyStore`] owns the `passkeys` table (migration domain
//! [`crate::schema::DOMAIN`]). It stores what the server's WebAuthn library
//! serialises for a credential as opaque text, so this crate does not
//! depend on that library; the server registers and verifies, and this
//! store keeps the rows, looks them up by credential id, and records each
//! use with its signature counter.

use std::sync::Arc;

use hearth_store::{Store, StoreError};
use rusqlite::{OptionalExtension as _, TransactionBehavior, params};
use tracing::info;

use crate::clock::Clock;
use crate::schema;
use crate::users::UserId;

/// Most passkeys one user may hold.
pub const MAX_PASSKEYS_PER_USER: i64 = 32;
/// Longest credential id, in bytes (WebAuthn Level 3 caps it at 1023).
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;
/// Longest passkey name, in characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;

/// Row id of a passkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PasskeyId(pub i64);

/// One stored passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// Row id.
    pub id: PasskeyId,
    /// The user who registered it.
    pub user_id: UserId,
    /// The authenticator's credential id.
    pub credential_id: Vec<u8>,
    /// The credential as the server's WebAuthn library serialises it.
    pub passkey: String,
    /// Name the user chose, such as "phone".
    pub name: String,
    /// Registration time in Unix seconds.
    pub created_at: i64,
    /// Time of the last accepted sign-in in Unix seconds.
    pub last_used: Option<i64>,
    /// Signature counter of the last accepted assertion.
    pub counter: u32,
}

/// A passkey to store.
#[derive(Debug, Clone)]
pub struct NewPasskey<'a> {
    /// The user who registered it.
    pub user_id: UserId,
    /// The authenticator's credential id, 1 to 1023 bytes.
    pub credential_id: &'a [u8],
    /// The serialised credential.
    pub passkey: &'a str,
    /// Name, 1 to 64 characters without control characters.
    pub name: &'a str,
    /// Signature counter at registration.
    pub counter: u32,
}

/// The passkeys table.
pub struct PasskeyStore {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
}

impl PasskeyStore {
    /// Runs the access migrations (a no-op once `UserStore::open` ran
    /// them) and opens the table.
    ///
    /// # Errors
    ///
    /// Returns [`PasskeyError::Store`] when a migration fails.
    pub fn open(store: Arc<Store>, clock: Arc<dyn Clock>) -> Result<Self, PasskeyError> {
        store.migrate(schema::DOMAIN, schema::MIGRATIONS)?;
        Ok(Self { store, clock })
    }

    /// Stores a newly registered passkey.
    ///
    /// # Errors
    ///
    /// Returns [`PasskeyError::InvalidName`], [`PasskeyError::InvalidCredentialId`],
    /// [`PasskeyError::CredentialTaken`] when any user already registered
    /// this credential, [`PasskeyError::TooMany`] at the per-user limit, and
    /// [`PasskeyError::UserNotFound`].
    pub fn add(&self, new: &NewPasskey<'_>) -> Result<StoredPasskey, PasskeyError> {
        validate_name(new.name)?;
        if new.credential_id.is_empty() || new.credential_id.len() > MAX_CREDENTIAL_ID_LEN {
            return Err(PasskeyError::InvalidCredentialId { len: new.credential_id.len() });
        }
        let now = self.clock.now();

        let mut conn = self.store.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user_exists: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)", [new.user_id.0], |row| row.get(0))?;
        if !user_exists {
            return Err(PasskeyError::UserNotFound { id: new.user_id });
        }
        let held: i64 =
            tx.query_row("SELECT COUNT(*) FROM passkeys WHERE user_id = ?1", [new.user_id.0], |row| row.get(0))?;
        if held >= MAX_PASSKEYS_PER_USER {
            return Err(PasskeyError::TooMany { limit: MAX_PASSKEYS_PER_USER });
        }
        tx.execute(
            "INSERT INTO passkeys (user_id, credential_id, passkey, name, created_at, counter) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![new.user_id.0, new.credential_id, new.passkey, new.name, now, new.counter],
        )
        .map_err(|error| match error.to_string().contains("passkeys.credential_id") {
            true => PasskeyError::CredentialTaken,
            false => PasskeyError::Sqlite(error),
        })?;
        let id = PasskeyId(tx.last_insert_rowid());
        tx.commit()?;

        info!(passkey = id.0, user = new.user_id.0, "passkey registered");
        Ok(StoredPasskey {
            id,
            user_id: new.user_id,
            credential_id: new.credential_id.to_vec(),
            passkey: new.passkey.to_owned(),
            name: new.name.to_owned(),
            created_at: now,
            last_used: None,
            counter: new.counter,
        })
    }

    /// Records an accepted sign-in: the updated credential, its counter and
    /// the time.
    ///
    /// # Errors
    ///
    /// Returns [`PasskeyError::NotFound`] when the passkey was deleted meanwhile.
    pub fn record_use(&self, id: PasskeyId, passkey: &str, counter: u32) -> Result<(), PasskeyError> {
        let conn = self.store.get()?;
        let changed = conn.execute(
            "UPDATE passkeys SET passkey = ?1, counter = MAX(counter, ?2), last_used = ?3 WHERE id = ?4",
            params![passkey, counter, self.clock.now(), id.0],
        )?;
        if changed == 0 {
            return Err(PasskeyError::NotFound { id });
        }
        Ok(())
    }

    /// Deletes a passkey of `user`. A passkey of another user counts as
    /// not found, so nobody learns which ids exist.
    ///
    /// # Errors
    ///
    /// Returns [`PasskeyError::NotFound`].
    pub fn delete(&self, user: UserId, id: PasskeyId) -> Result<(), PasskeyError> {
        let conn = self.store.get()?;
        let changed = conn.execute("DELETE FROM passkeys WHERE id = ?1 AND user_id = ?2", params![id.0, user.0])?;
        if changed == 0 {
            return Err(PasskeyError::NotFound { id });
        }
        info!(passkey = id.0, user = user.0, "passkey deleted");
        Ok(())
    }

    /// Returns the passkeys of `user`, oldest first.
    ///
    /// # Errors
    ///
    /// Returns [`PasskeyError::Store`], [`PasskeyError::Sqlite`] or
    /// [`PasskeyError::CorruptRow`].
    pub fn list(&self, user: UserId) -> Result<Vec<StoredPasskey>, PasskeyError> {
        let conn = self.store.get()?;
        let mut statement =
            conn.prepare(&format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = ?1 ORDER BY id"))?;
        let rows = statement.query_map([user.0], read_row)?;

        let mut passkeys = Vec::new();
        for row in rows {
            passkeys.push(row??);
        }
        Ok(passkeys)
    }

    /// Returns the passkey with this credential id, whoever holds it.
    ///
    /// # Errors
    ///
    /// As [`PasskeyStore::list`].
    pub fn by_credential_id(&self, credential_id: &[u8]) -> Result<Option<StoredPasskey>, PasskeyError> {
        let conn = self.store.get()?;
        let row = conn
            .query_row(
                &format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = ?1"),
                [credential_id],
                read_row,
            )
            .optional()?;
        row.transpose()
    }
}

impl std::fmt::Debug for PasskeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyStore").field("database", &self.store.path()).finish_non_exhaustive()
    }
}

/// Error from the passkeys table.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The database could not be opened or migrated.
    #[error("failed to open or migrate the passkeys table")]
    Store(#[from] StoreError),

    /// A query failed.
    #[error("passkeys table query failed")]
    Sqlite(#[from] rusqlite::Error),

    /// The name breaks the naming rules.
    #[error("invalid passkey name: {problem}")]
    InvalidName {
        /// The rule broken.
        problem: &'static str,
    },

    /// The credential id is empty or too long.
    #[error("invalid credential id of {len} bytes: expected 1 to 1023")]
    InvalidCredentialId {
        /// Its length in bytes.
        len: usize,
    },

    /// A passkey with this credential id is already registered.
    #[error("this passkey is already registered")]
    CredentialTaken,

    /// The user already has the most passkeys allowed.
    #[error("at most {limit} passkeys per user; delete one first")]
    TooMany {
        /// The limit.
        limit: i64,
    },

    /// No user has this id.
    #[error("user {id} not found", id = id.0)]
    UserNotFound {
        /// The id.
        id: UserId,
    },

    /// No passkey has this id (for this user).
    #[error("passkey {id} not found", id = id.0)]
    NotFound {
        /// The id.
        id: PasskeyId,
    },

    /// A stored row has a value this build cannot read.
    #[error("malformed passkeys row {id}: invalid {column}")]
    CorruptRow {
        /// Row id.
        id: i64,
        /// Column with the bad value.
        column: &'static str,
    },
}

/// Columns of a passkey row, in [`read_row`] order.
const PASSKEY_COLUMNS: &str = "id, user_id, credential_id, passkey, name, created_at, last_used, counter";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredPasskey, PasskeyError>> {
    let id: i64 = row.get(0)?;
    let counter: i64 = row.get(7)?;
    let Ok(counter) = u32::try_from(counter) else {
        return Ok(Err(PasskeyError::CorruptRow { id, column: "counter" }));
    };
    Ok(Ok(StoredPasskey {
        id: PasskeyId(id),
        user_id: UserId(row.get(1)?),
        credential_id: row.get(2)?,
        passkey: row.get(3)?,
        name: row.get(4)?,
        created_at: row.get(5)?,
        last_used: row.get(6)?,
        counter,
    }))
}

fn validate_name(name: &str) -> Result<(), PasskeyError> {
    let invalid = |problem| PasskeyError::InvalidName { problem };
    if name.trim().is_empty() {
        return Err(invalid("empty"));
    }
    if name.chars().count() > MAX_PASSKEY_NAME_CHARS {
        return Err(invalid("longer than 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("contains a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hearth_store::Store;

    use super::*;
    use crate::clock::ManualClock;
    use crate::device_key::tests::p256_signing_key;
    use crate::did::Did;
    use crate::password::{PasswordHasher, PasswordParams};
    use crate::role::Role;
    use crate::session::RevocationRegistry;
    use crate::users::{NewUser, UserStore};

    const START: i64 = 1_750_000_000;

    struct Fixture {
        _dir: tempfile::TempDir,
        clock: Arc<ManualClock>,
        users: UserStore,
        passkeys: PasskeyStore,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let clock = Arc::new(ManualClock::new(START));
            let store = Store::open(&dir.path().join("hearth.sqlite3")).unwrap();
            let hasher = PasswordHasher::new(PasswordParams::INSECURE_FOR_TESTS, 2).unwrap();
            let users =
                UserStore::open(Arc::clone(&store), hasher, clock.clone(), Arc::new(RevocationRegistry::new())).unwrap();
            let passkeys = PasskeyStore::open(store, clock.clone()).unwrap();
            Self { _dir: dir, clock, users, passkeys }
        }

        fn user(&self, name: &str, seed: u8) -> UserId {
            let new = NewUser {
                name,
                did: Did::from_p256(p256_signing_key(seed).verifying_key()),
                role: Role::Adult,
                password: None,
            };
            self.users.create_user(&new).unwrap().id
        }
    }

    fn new_passkey<'a>(user_id: UserId, credential_id: &'a [u8], name: &'a str) -> NewPasskey<'a> {
        NewPasskey { user_id, credential_id, passkey: r#"{"cred":"opaque"}"#, name, counter: 0 }
    }

    #[test]
    fn added_passkey_is_listed_and_found_by_credential() {
        let fixture = Fixture::new();
        let alice = fixture.user("alice", 1);

        let added = fixture.passkeys.add(&new_passkey(alice, b"credential-1", "phone")).unwrap();

        assert_eq!(fixture.passkeys.list(alice).unwrap(), vec![added.clone()]);
        assert_eq!(fixture.passkeys.by_credential_id(b"credential-1").unwrap(), Some(added.clone()));
        assert_eq!(fixture.passkeys.by_credential_id(b"credential-2").unwrap(), None);
        assert_eq!(added.created_at, START);
        assert_eq!(added.last_used, None);
    }

    #[test]
    fn credential_registered_twice_is_rejected_even_for_another_user() {
        let fixture = Fixture::new();
        let alice = fixture.user("alice", 1);
        let bob = fixture.user("bob", 2);
        fixture.passkeys.add(&new_passkey(alice, b"shared", "phone")).unwrap();

        let again = fixture.passkeys.add(&new_passkey(bob, b"shared", "laptop"));

        assert!(matches!(again, Err(PasskeyError::CredentialTaken)), "{again:?}");
        assert!(fixture.passkeys.list(bob).unwrap().is_empty());
    }

    #[test]
    fn record_use_keeps_the_highest_counter_and_the_time() {
        let fixture = Fixture::new();
        let alice = fixture.user("alice", 1);
        let added = fixture.passkeys.add(&new_passkey(alice, b"credential", "phone")).unwrap();

        fixture.clock.advance(60);
        fixture.passkeys.record_use(added.id, r#"{"cred":"updated"}"#, 7).unwrap();
        fixture.passkeys.record_use(added.id, r#"{"cred":"updated"}"#, 3).unwrap();

        let stored = fixture.passkeys.by_credential_id(b"credential").unwrap().unwrap();
        assert_eq!(stored.counter, 7);
        assert_eq!(stored.last_used, Some(START + 60));
        assert_eq!(stored.passkey, r#"{"cred":"updated"}"#);
    }

    #[test]
    fn delete_removes_only_the_owners_passkey() {
        let fixture = Fixture::new();
        let alice = fixture.user("alice", 1);
        let bob = fixture.user("bob", 2);
        let added = fixture.passkeys.add(&new_passkey(alice, b"credential", "phone")).unwrap();

        let by_bob = fixture.passkeys.delete(bob, added.id);
        assert!(matches!(by_bob, Err(PasskeyError::NotFound { .. })), "{by_bob:?}");
        fixture.passkeys.delete(alice, added.id).unwrap();

        assert!(fixture.passkeys.list(alice).unwrap().is_empty());
        assert_eq!(fixture.passkeys.by_credential_id(b"credential").unwrap(), None);
        let twice = fixture.passkeys.delete(alice, added.id);
        assert!(matches!(twice, Err(PasskeyError::NotFound { .. })), "{twice:?}");
    }

    #[test]
    fn bad_names_credential_ids_and_unknown_users_are_rejected() {
        let fixture = Fixture::new();
        let alice = fixture.user("alice", 1);
        let long_name = "x".repeat(MAX_PASSKEY_NAME_CHARS + 1);
        let long_id = vec![1u8; MAX_CREDENTIAL_ID_LEN + 1];

        for name in ["", "   ", "tab\there", long_name.as_str()] {
            let result = fixture.passkeys.add(&new_passkey(alice, b"credential", name));
            assert!(matches!(result, Err(PasskeyError::InvalidName { .. })), "{name:?}: {result:?}");
        }
        for id in [&b""[..], &long_id[..]] {
            let result = fixture.passkeys.add(&new_passkey(alice, id, "phone"));
            assert!(matches!(result, Err(PasskeyError::InvalidCredentialId { .. })), "{result:?}");
        }
        let unknown = fixture.passkeys.add(&new_passkey(UserId(999), b"credential", "phone"));
        assert!(matches!(unknown, Err(PasskeyError::UserNotFound { .. })), "{unknown:?}");
    }

    #[test]
    fn passkeys_per_user_are_capped() {
        let fixture = Fixture::new();
        let alice = fixture.user("alice", 1);
        for index in 0..MAX_PASSKEYS_PER_USER {
            let id = format!("credential-{index}");
            fixture.passkeys.add(&new_passkey(alice, id.as_bytes(), "key")).unwrap();
        }

        let one_more = fixture.passkeys.add(&new_passkey(alice, b"one-more", "key"));

        assert!(matches!(one_more, Err(PasskeyError::TooMany { limit: MAX_PASSKEYS_PER_USER })), "{one_more:?}");
    }

    #[test]
    fn passkeys_go_with_their_user() {
        let fixture = Fixture::new();
        let alice = fixture.user("alice", 1);
        fixture.passkeys.add(&new_passkey(alice, b"credential", "phone")).unwrap();

        let conn = fixture.passkeys.store.get().unwrap();
        conn.execute("DELETE FROM users WHERE id = ?1", [alice.0]).unwrap();
        drop(conn);

        assert_eq!(fixture.passkeys.by_credential_id(b"credential").unwrap(), None);
    }
}
