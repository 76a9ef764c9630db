//! The devices table: pairing, approval, revocation.

use rusqlite::{OptionalExtension as _, params};
use tracing::info;

use super::{UserError, UserId, UserStore};
use crate::credential::MAX_DEVICE_NAME_LEN;
use crate::device_key::DeviceKey;
use crate::did::Did;

/// Row id of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub i64);

/// A paired device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Row id.
    pub id: DeviceId,
    /// The device's public key and did:key.
    pub key: DeviceKey,
    /// Display name, such as "living room TV".
    pub name: String,
    /// The user the device belongs to.
    pub user_id: UserId,
    /// Whether an admin approved the pairing.
    pub approved: bool,
    /// Pairing time in Unix seconds.
    pub created_at: i64,
    /// Revocation time in Unix seconds; a revoked device stays revoked.
    pub revoked_at: Option<i64>,
    /// Time of the last authenticated request in Unix seconds.
    pub last_seen: Option<i64>,
}

impl UserStore {
    /// Records a device that `user` is pairing. It cannot open sessions
    /// until [`UserStore::approve_device`].
    ///
    /// # Errors
    ///
    /// Returns [`UserError::InvalidDeviceName`], [`UserError::UserNotFound`]
    /// or [`UserError::DidTaken`] when the key is already paired.
    pub fn register_device(
        &self,
        user: UserId,
        name: &str,
        key: &DeviceKey,
    ) -> Result<Device, UserError> {
        validate_device_name(name)?;
        let (algorithm, public_key) = key.to_stored();
        let now = self.clock.now();

        let conn = self.store.get()?;
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)",
            [user.0],
            |row| row.get(0),
        )?;
        if !exists {
            return Err(UserError::UserNotFound { id: user });
        }
        conn.execute(
            "INSERT INTO devices (did, key_algorithm, public_key, name, user_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![key.did().as_str(), algorithm, public_key, name, user.0, now],
        )
        .map_err(|error| match error.to_string().contains("devices.did") {
            true => UserError::DidTaken { did: key.did().to_string() },
            false => UserError::Sqlite(error),
        })?;
        let id = DeviceId(conn.last_insert_rowid());

        info!(device = id.0, user = user.0, did = %key.did(), "device registered");
        Ok(Device {
            id,
            key: key.clone(),
            name: name.to_owned(),
            user_id: user,
            approved: false,
            created_at: now,
            revoked_at: None,
            last_seen: None,
        })
    }

    /// Approves a registered device.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::DeviceNotFound`] or [`UserError::DeviceRevoked`].
    pub fn approve_device(&self, id: DeviceId) -> Result<(), UserError> {
        let device = self.device(id)?.ok_or(UserError::DeviceNotFound { id })?;
        if device.revoked_at.is_some() {
            return Err(UserError::DeviceRevoked { id });
        }

        let conn = self.store.get()?;
        conn.execute(
            "UPDATE devices SET approved = 1 WHERE id = ?1 AND revoked_at IS NULL",
            [id.0],
        )?;
        info!(device = id.0, "device approved");
        Ok(())
    }

    /// Revokes a device for good: its sessions end on their next request and
    /// it can never open another. Revoking a revoked device does nothing.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::DeviceNotFound`].
    pub fn revoke_device(&self, id: DeviceId) -> Result<(), UserError> {
        let now = self.clock.now();
        let conn = self.store.get()?;
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1)",
            [id.0],
            |row| row.get(0),
        )?;
        if !exists {
            return Err(UserError::DeviceNotFound { id });
        }
        conn.execute(
            "UPDATE devices SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            params![now, id.0],
        )?;

        self.revocations.revoke_device(id);
        info!(device = id.0, "device revoked");
        Ok(())
    }

    /// Renames a device, such as "living room TV".
    ///
    /// # Errors
    ///
    /// Returns [`UserError::InvalidDeviceName`] or [`UserError::DeviceNotFound`].
    pub fn rename_device(&self, id: DeviceId, name: &str) -> Result<(), UserError> {
        validate_device_name(name)?;
        let conn = self.store.get()?;
        let changed = conn.execute("UPDATE devices SET name = ?1 WHERE id = ?2", params![name, id.0])?;
        if changed == 0 {
            return Err(UserError::DeviceNotFound { id });
        }
        info!(device = id.0, "device renamed");
        Ok(())
    }

    /// Records an authenticated request from the device now.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::Store`] or [`UserError::Sqlite`] on database failure.
    pub fn touch_device(&self, id: DeviceId) -> Result<(), UserError> {
        let conn = self.store.get()?;
        conn.execute(
            "UPDATE devices SET last_seen = ?1 WHERE id = ?2",
            params![self.clock.now(), id.0],
        )?;
        Ok(())
    }

    /// Returns the device with `id`.
    ///
    /// # Errors
    ///
    /// Returns [`UserError::CorruptRow`] for a malformed stored key, or a
    /// database error.
    pub fn device(&self, id: DeviceId) -> Result<Option<Device>, UserError> {
        self.query_device("id = ?1", id.0)
    }

    /// Returns the device with the did:key `did`.
    ///
    /// # Errors
    ///
    /// As [`UserStore::device`].
    pub fn device_by_did(&self, did: &Did) -> Result<Option<Device>, UserError> {
        self.query_device("did = ?1", did.as_str())
    }

    /// Returns the devices of `user`, by id.
    ///
    /// # Errors
    ///
    /// As [`UserStore::device`].
    pub fn devices_of(&self, user: UserId) -> Result<Vec<Device>, UserError> {
        let conn = self.store.get()?;
        let mut statement = conn.prepare(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = ?1 ORDER BY id"
        ))?;
        let rows = statement.query_map([user.0], read_device_row)?;

        let mut devices = Vec::new();
        for row in rows {
            devices.push(row?.into_device()?);
        }
        Ok(devices)
    }

    fn query_device(
        &self,
        condition: &str,
        value: impl rusqlite::ToSql,
    ) -> Result<Option<Device>, UserError> {
        let conn = self.store.get()?;
        let row = conn
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE {condition}"),
                [value],
                read_device_row,
            )
            .optional()?;
        row.map(DeviceRow::into_device).transpose()
    }
}

/// Columns of a device row, in [`read_device_row`] order.
const DEVICE_COLUMNS: &str = "id, did, key_algorithm, public_key, name, user_id, approved, created_at, revoked_at, last_seen";

struct DeviceRow {
    id: i64,
    did: String,
    key_algorithm: String,
    public_key: Vec<u8>,
    name: String,
    user_id: i64,
    approved: bool,
    created_at: i64,
    revoked_at: Option<i64>,
    last_seen: Option<i64>,
}

fn read_device_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        id: row.get(0)?,
        did: row.get(1)?,
        key_algorithm: row.get(2)?,
        public_key: row.get(3)?,
        name: row.get(4)?,
        user_id: row.get(5)?,
        approved: row.get(6)?,
        created_at: row.get(7)?,
        revoked_at: row.get(8)?,
        last_seen: row.get(9)?,
    })
}

impl DeviceRow {
    fn into_device(self) -> Result<Device, UserError> {
        let corrupt = |column, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
            UserError::CorruptRow {
                table: "devices",
                id: self.id,
                column,
                source,
            }
        };
        let key = DeviceKey::from_stored(&self.key_algorithm, &self.public_key)
            .map_err(|error| corrupt("public_key", Some(Box::new(error))))?;
        // The did column is the lookup index; it must name the stored key.
        if key.did().as_str() != self.did {
            return Err(corrupt("did", None));
        }

        Ok(Device {
            id: DeviceId(self.id),
            key,
            name: self.name,
            user_id: UserId(self.user_id),
            approved: self.approved,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            last_seen: self.last_seen,
        })
    }
}

fn validate_device_name(name: &str) -> Result<(), UserError> {
    let invalid = |problem| UserError::InvalidDeviceName { problem };
    if name.trim().is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_DEVICE_NAME_LEN {
        return Err(invalid("longer than 128 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("contains a control character"));
    }
    Ok(())
}
