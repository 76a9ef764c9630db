//! The one SQLite database of a Hearth household.
//!
//! [`Store`] opens the database file with WAL journaling, foreign keys on and
//! a busy timeout, hands out pooled connections, and runs each domain crate's
//! migrations at start. Each domain crate owns its tables: it passes its own
//! [`Migration`] list under its own domain name and never reads another
//! crate's tables.
//!
//! Migrations run in one transaction each, so a process killed mid-migration
//! leaves the previous schema intact. A database written by a newer Hearth
//! (a migration version this build does not know) is refused rather than
//! silently used.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

/// Idle connections kept for reuse; more may be open at once under load.
const MAX_IDLE_CONNECTIONS: usize = 8;
/// How long a writer waits for another writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors from opening, migrating or using the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database folder or file could not be created.
    #[error("failed to create {path}: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite could not open the file or set it up.
    #[error("failed to open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A migration failed; the transaction was rolled back.
    #[error("migration {domain} v{version} ({name}) failed: {source}")]
    Migration {
        /// The domain crate that owns the migration.
        domain: &'static str,
        /// The migration's version.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database has a schema version this build does not know.
    #[error(
        "database {path} has {domain} schema v{found}, newer than v{known} known to this build; \
         upgrade Hearth or restore a backup"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The domain whose schema is too new.
        domain: &'static str,
        /// The newest version recorded in the database.
        found: u32,
        /// The newest version this build supports.
        known: u32,
    },
    /// A query failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// One schema step of a domain crate.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version, starting at 1 and increasing by one.
    pub version: u32,
    /// A short name for logs and errors.
    pub name: &'static str,
    /// The SQL to run, possibly several statements.
    pub sql: &'static str,
}

/// The database: its path and a pool of open connections.
pub struct Store {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and records the
    /// migration bookkeeping table.
    pub fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir { path: parent.to_owned(), source })?;
        }
        restrict_to_owner(path)?;
        let store = Self { path: path.to_owned(), idle: Mutex::new(Vec::new()) };

        let conn = store.connect()?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 domain TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 name TEXT NOT NULL,
                 applied_at INTEGER NOT NULL DEFAULT (unixepoch()),
                 PRIMARY KEY (domain, version)
             ) STRICT;",
        )
        .map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        store.release(conn);
        Ok(Arc::new(store))
    }

    /// Applies the migrations of `domain` that the database lacks, in order,
    /// each in its own transaction.
    pub fn migrate(&self, domain: &'static str, migrations: &[Migration]) -> Result<(), StoreError> {
        let mut conn = self.get()?;
        let known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
        let found: u32 = conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE domain = ?1",
            [domain],
            |row| row.get(0),
        )?;
        if found > known {
            return Err(StoreError::TooNew { path: self.path.clone(), domain, found, known });
        }

        for migration in migrations.iter().filter(|m| m.version > found) {
            let wrap = |source| StoreError::Migration { domain, version: migration.version, name: migration.name, source };
            let tx = conn.transaction().map_err(wrap)?;
            tx.execute_batch(migration.sql).map_err(wrap)?;
            tx.execute(
                "INSERT INTO schema_migrations (domain, version, name) VALUES (?1, ?2, ?3)",
                params![domain, migration.version, migration.name],
            )
            .map_err(wrap)?;
            tx.commit().map_err(wrap)?;
            tracing::info!(domain, version = migration.version, name = migration.name, "migration applied");
        }
        Ok(())
    }

    /// Takes a connection from the pool, opening a new one if none is idle.
    pub fn get(&self) -> Result<PooledConnection<'_>, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect()?,
        };
        Ok(PooledConnection { store: self, conn: Some(conn) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let open_err = |source| StoreError::Open { path: self.path.clone(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(open_err)?;

        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(open_err)?;
        Ok(conn)
    }

    fn release(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }
}

/// Creates the database file with mode 0600, or narrows an existing one to
/// it, before SQLite opens it. SQLite gives the WAL and shared-memory files
/// the same mode, so the catalog (which contains photo locations) is readable
/// by its owner only.
fn restrict_to_owner(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let open_err = |source| StoreError::CreateDir { path: path.to_owned(), source };
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(open_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(open_err)
}

/// A connection borrowed from the [`Store`]; it returns to the pool on drop.
pub struct PooledConnection<'a> {
    store: &'a Store,
    conn: Option<Connection>,
}

impl Deref for PooledConnection<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("connection is present until drop")
    }
}

impl DerefMut for PooledConnection<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("connection is present until drop")
    }
}

impl Drop for PooledConnection<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A connection left inside a transaction (a panic mid-write) is
            // dropped instead of reused, which rolls the transaction back.
            if conn.is_autocommit() {
                self.store.release(conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTES: [Migration; 2] = [
        Migration { version: 1, name: "notes", sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);" },
        Migration { version: 2, name: "notes_author", sql: "ALTER TABLE notes ADD COLUMN author TEXT;" },
    ];

    #[test]
    fn open_sets_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db/hearth.sqlite3")).unwrap();
        let conn = store.get().unwrap();

        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(fk, 1);
    }

    #[test]
    fn database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.sqlite3");
        let store = Store::open(&path).unwrap();
        store.get().unwrap().execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);").unwrap();

        for file in ["hearth.sqlite3", "hearth.sqlite3-wal"] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
        }
    }

    #[test]
    fn migrations_apply_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.sqlite3");
        let store = Store::open(&path).unwrap();
        store.migrate("notes", &NOTES[..1]).unwrap();
        store.migrate("notes", &NOTES).unwrap();
        store.migrate("notes", &NOTES).unwrap();

        let conn = store.get().unwrap();
        conn.execute("INSERT INTO notes (body, author) VALUES ('a', 'b')", []).unwrap();
        let applied: i64 = conn.query_row("SELECT COUNT(*) FROM schema_migrations WHERE domain = 'notes'", [], |r| r.get(0)).unwrap();
        assert_eq!(applied, 2);
    }

    #[test]
    fn failed_migration_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hearth.sqlite3")).unwrap();
        let broken = [Migration { version: 1, name: "half", sql: "CREATE TABLE a (x INTEGER); CREATE TABLE a (y INTEGER);" }];

        let err = store.migrate("broken", &broken).unwrap_err();

        assert!(matches!(err, StoreError::Migration { version: 1, .. }), "{err}");
        let conn = store.get().unwrap();
        let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'a'", [], |r| r.get(0)).unwrap();
        assert_eq!(tables, 0, "the first statement of a failed migration was kept");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hearth.sqlite3")).unwrap();
        store.migrate("notes", &NOTES).unwrap();

        let err = store.migrate("notes", &NOTES[..1]).unwrap_err();

        assert!(matches!(err, StoreError::TooNew { found: 2, known: 1, .. }), "{err}");
    }
}
