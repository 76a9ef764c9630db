//! The household's media library.
//!
//! The catalog scans library folders into SQLite items, each addressed by a
//! random opaque id so that no path from a request ever reaches the
//! filesystem. Scans are incremental: a file whose size, mtime and inode are
//! unchanged is not read again, a removed file's item is marked missing, and
//! a moved file is recognised by its SHA-256 and keeps its id and play state.
//! Every entry that cannot be indexed (symlink loops, dangling symlinks,
//! unreadable, empty, truncated or non-media files with media names) is
//! recorded as a [`Problem`] with its reason, and the scan goes on.
//!
//! A [`watch::LibraryWatcher`] rescans a library shortly after its files
//! change while the server runs.

mod error;
mod id;
mod items;
mod scan;
mod schema;
pub mod watch;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hearth_store::Store;
use rusqlite::OptionalExtension;

pub use error::CatalogError;
pub use id::is_valid_item_id;
pub use items::{Facets, Item, ItemQuery, ItemSummary, MAX_PAGE_SIZE, MediaFile, Page, PlayState, Problem, SortKey};
pub use scan::{ScanConfig, ScanPhase, ScanProgress, ScanSummary};

/// A library folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// Row id.
    pub id: i64,
    /// Canonical absolute path of the folder.
    pub root: PathBuf,
}

/// The media library: libraries, items, problems and play state.
pub struct Catalog {
    store: Arc<Store>,
    config: ScanConfig,
    /// Held for the duration of a scan, so the watcher and an API request
    /// never scan at the same time.
    scan_lock: Mutex<()>,
}

impl Catalog {
    /// Returns the database the catalog lives in, shared with other domains.
    pub fn store(&self) -> Arc<Store> {
        Arc::clone(&self.store)
    }

    /// Opens the catalog on `store`, running its migrations and initialising
    /// GStreamer.
    pub fn open(store: Arc<Store>, config: ScanConfig) -> Result<Self, CatalogError> {
        store.migrate(schema::DOMAIN, schema::MIGRATIONS)?;
        hearth_media::init()?;
        Ok(Self { store, config, scan_lock: Mutex::new(()) })
    }

    /// Registers a library folder (idempotent) and returns it.
    pub fn add_library(&self, root: &Path) -> Result<Library, CatalogError> {
        let bad = |reason: String| CatalogError::BadLibrary { path: root.to_owned(), reason };
        let canonical = root.canonicalize().map_err(|e| bad(e.to_string()))?;
        if !canonical.is_dir() {
            return Err(bad("not a folder".into()));
        }

        let conn = self.store.get()?;
        let bytes = canonical.as_os_str().as_bytes();
        conn.execute("INSERT INTO libraries (root) VALUES (?1) ON CONFLICT (root) DO NOTHING", [bytes])?;
        let id = conn.query_row("SELECT id FROM libraries WHERE root = ?1", [bytes], |row| row.get(0))?;
        Ok(Library { id, root: canonical })
    }

    /// Lists the registered library folders.
    pub fn libraries(&self) -> Result<Vec<Library>, CatalogError> {
        let conn = self.store.get()?;
        let mut stmt = conn.prepare("SELECT id, root FROM libraries ORDER BY id")?;
        let rows = stmt.query_map([], |row| {
            let root: Vec<u8> = row.get(1)?;
            Ok(Library { id: row.get(0)?, root: PathBuf::from(std::ffi::OsStr::from_bytes(&root)) })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Returns the number of present (not missing) items of each library, by id.
    pub fn library_item_counts(&self) -> Result<std::collections::HashMap<i64, u64>, CatalogError> {
        let conn = self.store.get()?;
        let mut stmt = conn.prepare("SELECT library_id, COUNT(*) FROM items WHERE missing = 0 GROUP BY library_id")?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets library `id` with its items, their play state and problems;
    /// the files stay where they are. Returns false for an unknown id.
    pub fn remove_library(&self, id: i64) -> Result<bool, CatalogError> {
        let _guard = self.scan_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let conn = self.store.get()?;
        Ok(conn.execute("DELETE FROM libraries WHERE id = ?1", [id])? > 0)
    }

    /// Scans every library, one after the other, and returns the totals.
    pub fn scan_all(&self, on_progress: &(dyn Fn(&ScanProgress) + Sync)) -> Result<ScanSummary, CatalogError> {
        let mut total = ScanSummary::default();
        for library in self.libraries()? {
            total.absorb(&self.scan_library(&library, on_progress)?);
        }
        Ok(total)
    }

    /// Scans one library. A library folder that has gone (an unmounted disk)
    /// is not scanned, so its items are not all marked missing at once.
    pub fn scan_library(
        &self,
        library: &Library,
        on_progress: &(dyn Fn(&ScanProgress) + Sync),
    ) -> Result<ScanSummary, CatalogError> {
        let _guard = self.scan_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !library.root.is_dir() {
            return Err(CatalogError::BadLibrary {
                path: library.root.clone(),
                reason: "folder is missing; is the disk mounted?".into(),
            });
        }

        tracing::info!(library = %library.root.display(), "scan started");
        let summary = scan::scan_library(&self.store, library.id, &library.root, &self.config, on_progress)?;
        tracing::info!(
            library = %library.root.display(),
            added = summary.added,
            updated = summary.updated,
            moved = summary.moved,
            missing = summary.missing,
            unchanged = summary.unchanged,
            problems = summary.problems,
            elapsed_ms = summary.elapsed_ms,
            "scan finished"
        );
        Ok(summary)
    }

    /// Returns the years and genres of the items suitable for `max_age`.
    pub fn facets(&self, max_age: Option<u8>) -> Result<Facets, CatalogError> {
        items::facets(&*self.store.get()?, max_age)
    }

    /// Returns one page of items matching `query`.
    pub fn items(&self, query: &ItemQuery) -> Result<Page<ItemSummary>, CatalogError> {
        items::list(&*self.store.get()?, query)
    }

    /// Returns one item with all its metadata, or None for an unknown id.
    pub fn item(&self, id: &str) -> Result<Option<Item>, CatalogError> {
        if !is_valid_item_id(id) {
            return Ok(None);
        }
        items::get(&*self.store.get()?, id)
    }

    /// Returns the file behind an item, or None when the id is unknown or
    /// the file is missing.
    pub fn media_file(&self, id: &str) -> Result<Option<MediaFile>, CatalogError> {
        if !is_valid_item_id(id) {
            return Ok(None);
        }
        items::media_file(&*self.store.get()?, id)
    }

    /// Lists every recorded scan problem, by library and path.
    pub fn problems(&self) -> Result<Vec<Problem>, CatalogError> {
        items::problems(&*self.store.get()?)
    }

    /// Saves `user`'s playback position of an item (`user` is an opaque key
    /// such as the user's did:key). Returns false for an unknown item.
    pub fn set_play_state(&self, id: &str, user: &str, position_ms: u64, completed: bool) -> Result<bool, CatalogError> {
        if !is_valid_item_id(id) {
            return Ok(false);
        }
        items::set_play_state(&*self.store.get()?, id, user, position_ms, completed)
    }

    /// Returns the items `user` started and has not finished, latest first
    /// (continue watching), limited to those suitable for `max_age`.
    pub fn in_progress(&self, user: &str, max_age: Option<u8>, limit: u32) -> Result<Vec<(ItemSummary, PlayState)>, CatalogError> {
        items::in_progress(&*self.store.get()?, user, max_age, limit)
    }

    /// Returns `user`'s playback position of an item, if one was saved.
    pub fn play_state(&self, id: &str, user: &str) -> Result<Option<PlayState>, CatalogError> {
        if !is_valid_item_id(id) {
            return Ok(None);
        }
        items::play_state(&*self.store.get()?, id, user)
    }

    /// Sets an item's content rating (`label`, such as `PG-13`, and the
    /// youngest age it suits), or clears it with `None`. Returns false for
    /// an unknown item.
    pub fn set_rating(&self, id: &str, rating: Option<(&str, u8)>) -> Result<bool, CatalogError> {
        if !is_valid_item_id(id) {
            return Ok(false);
        }
        items::set_rating(&*self.store.get()?, id, rating)
    }

    /// Returns an item's kind, its rating label and the age it counts as in
    /// filtered listings, or None for an unknown item.
    pub fn item_rating(&self, id: &str) -> Result<Option<(hearth_media::MediaKind, Option<String>, u8)>, CatalogError> {
        if !is_valid_item_id(id) {
            return Ok(None);
        }
        items::rating(&*self.store.get()?, id)
    }

    /// Number of items that are not missing.
    pub fn item_count(&self) -> Result<u64, CatalogError> {
        let conn = self.store.get()?;
        let count: Option<i64> = conn.query_row("SELECT COUNT(*) FROM items WHERE missing = 0", [], |r| r.get(0)).optional()?;
        Ok(count.unwrap_or(0) as u64)
    }
}
