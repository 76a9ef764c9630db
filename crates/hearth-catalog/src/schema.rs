//! Tables owned by the catalog.

use hearth_store::Migration;

/// Domain name under which the catalog's migrations are recorded.
pub const DOMAIN: &str = "catalog";

/// The catalog's schema steps, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
    version: 1,
    name: "libraries_items_files_problems",
    sql: r#"
CREATE TABLE libraries (
    id INTEGER PRIMARY KEY,
    root BLOB NOT NULL UNIQUE,
    added_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;

-- One row per indexed media file. `id` is random and opaque: requests
-- address items by it, never by path.
CREATE TABLE items (
    id TEXT PRIMARY KEY,
    library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    rel_path BLOB NOT NULL,
    display_path TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('video', 'audio', 'image')),
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    duration_ms INTEGER,
    width INTEGER,
    height INTEGER,
    artist TEXT,
    album TEXT,
    probe TEXT NOT NULL,
    missing INTEGER NOT NULL DEFAULT 0,
    added_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;
CREATE UNIQUE INDEX items_path ON items(library_id, rel_path);
CREATE INDEX items_sha256 ON items(sha256);
CREATE INDEX items_kind_title ON items(kind, title);

-- Every regular file the scanner has seen, with the stat fields that decide
-- whether it must be read again.
CREATE TABLE files (
    library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    rel_path BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('item', 'ignored', 'problem')),
    item_id TEXT REFERENCES items(id) ON DELETE SET NULL,
    scan_generation INTEGER NOT NULL,
    PRIMARY KEY (library_id, rel_path)
) STRICT;

-- Entries the scanner could not index, with the reason shown to users.
CREATE TABLE problems (
    library_id INTEGER NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    rel_path BLOB NOT NULL,
    display_path TEXT NOT NULL,
    category TEXT NOT NULL,
    -- 'error': the entry was skipped. 'warning': it was indexed anyway.
    severity TEXT NOT NULL CHECK (severity IN ('error', 'warning')),
    reason TEXT NOT NULL,
    scan_generation INTEGER NOT NULL,
    first_seen INTEGER NOT NULL DEFAULT (unixepoch()),
    last_seen INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (library_id, rel_path, category)
) STRICT;

CREATE TABLE play_state (
    item_id TEXT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    position_ms INTEGER NOT NULL CHECK (position_ms >= 0),
    completed INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;
"#,
}, Migration {
    version: 2,
    name: "files_item_index",
    // Move detection and the end-of-scan orphan check look files up by item.
    sql: "CREATE INDEX files_item ON files(item_id);",
},
Migration {
    version: 3,
    name: "item_ratings",
    // A content rating set by an admin (such as PG-13) and the youngest age
    // it suits, which listings filter on. NULL means unrated.
    sql: "ALTER TABLE items ADD COLUMN rating TEXT;
          ALTER TABLE items ADD COLUMN rating_age INTEGER CHECK (rating_age BETWEEN 0 AND 18);",
},
Migration {
    version: 4,
    name: "play_state_per_user",
    // Play state belongs to a user (their did:key), not to the household:
    // one user must not read or move another's position. Positions saved
    // before users existed move to the key 'household', which no user has.
    sql: r#"
CREATE TABLE user_play_state (
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_key TEXT NOT NULL,
    position_ms INTEGER NOT NULL CHECK (position_ms >= 0),
    completed INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (item_id, user_key)
) STRICT;
INSERT INTO user_play_state (item_id, user_key, position_ms, completed, updated_at)
    SELECT item_id, 'household', position_ms, completed, updated_at FROM play_state;
DROP TABLE play_state;
"#,
}];
