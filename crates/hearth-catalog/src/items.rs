//! Reading items, problems and play state.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hearth_media::{MediaKind, Probe};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::CatalogError;

/// Largest page a listing returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemSummary {
    /// Opaque random id.
    pub id: String,
    /// Video, audio or image.
    pub kind: MediaKind,
    /// Title from the tags, else the file name.
    pub title: String,
    /// Content type the stream is served with.
    pub mime: String,
    /// File size in bytes.
    pub size: u64,
    /// Duration in milliseconds (video and audio).
    pub duration_ms: Option<u64>,
    /// Width in pixels (video and images).
    pub width: Option<u32>,
    /// Height in pixels (video and images).
    pub height: Option<u32>,
    /// Artist tag (audio).
    pub artist: Option<String>,
    /// Album tag (audio).
    pub album: Option<String>,
    /// Whether the file has disappeared from the library.
    pub missing: bool,
    /// When the item was first indexed, in seconds since the Unix epoch.
    pub added_at: i64,
    /// Whether a thumbnail can be made: always for video and images, for
    /// audio only with embedded cover art.
    pub has_thumbnail: bool,
    /// Content rating an admin set, such as `PG-13`; `None` when unrated.
    pub rating: Option<String>,
    /// Genre tag, such as `Jazz`.
    pub genre: Option<String>,
    /// Year of the date tag.
    pub year: Option<u16>,
}

/// Everything known about one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Item {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: ItemSummary,
    /// Path relative to its library folder, decoded lossily for display.
    pub path: String,
    /// SHA-256 of the file's content, lowercase hex.
    pub sha256: String,
    /// Probe result: container, streams, tags, image and EXIF data.
    pub probe: Probe,
    /// The caller's playback position saved last time; the catalog leaves
    /// it empty, and the API fills in the caller's own.
    pub play_state: Option<PlayState>,
}

impl Item {
    /// Removes the GPS position from the EXIF data. Done for every client
    /// that is not an admin, because a photo's location reveals where the family lives.
    pub fn redact_location(&mut self) {
        if let Some(exif) = self.probe.image.as_mut().and_then(|image| image.exif.as_mut()) {
            exif.gps = None;
        }
    }
}

/// Playback position of an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlayState {
    /// Position in milliseconds.
    pub position_ms: u64,
    /// Whether the item was watched or heard to the end.
    pub completed: bool,
    /// Last update, in seconds since the Unix epoch.
    pub updated_at: i64,
}

/// A file the scanner could not index, or indexed with a warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// The library folder.
    pub library: String,
    /// Path relative to the library folder, decoded lossily for display.
    pub path: String,
    /// Machine-readable cause: symlink_loop, dangling_symlink, unreadable,
    /// empty, not_media, corrupt, timeout, changed, vanished, name_not_utf8.
    pub category: String,
    /// `error` (skipped) or `warning` (indexed anyway).
    pub severity: String,
    /// Explanation for people: the fault and the fix.
    pub reason: String,
    /// First time the problem was seen, in seconds since the Unix epoch.
    pub first_seen: i64,
    /// Latest scan that saw it, in seconds since the Unix epoch.
    pub last_seen: i64,
}

/// A file ready to stream.
#[derive(Debug, Clone)]
pub struct MediaFile {
    /// Absolute path on disk.
    pub path: PathBuf,
    /// Content type.
    pub mime: String,
    /// SHA-256 of the content at the last scan.
    pub sha256: String,
    /// Probe result.
    pub probe: Probe,
}

/// Sort keys for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// By title, case-insensitive.
    #[default]
    Title,
    /// By the time the item was first indexed.
    Added,
    /// By duration.
    Duration,
    /// By file size.
    Size,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            Self::Title => "title COLLATE NOCASE",
            Self::Added => "added_at",
            Self::Duration => "duration_ms",
            Self::Size => "size",
        }
    }
}

/// Filters, sorting and paging of a listing.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    /// Words to find in the title, artist, album or path.
    pub search: Option<String>,
    /// Only items of this kind.
    pub kind: Option<MediaKind>,
    /// Sort key.
    pub sort: SortKey,
    /// Sort descending.
    pub descending: bool,
    /// Items to skip.
    pub offset: u32,
    /// Items to return, at most [`MAX_PAGE_SIZE`].
    pub limit: u32,
    /// Include items whose file is missing.
    pub include_missing: bool,
    /// Only items suitable for this age: rated for it, or unrated photos and
    /// music. Unrated videos count as adult. `None` lists every item.
    pub max_age: Option<u8>,
    /// Only items of this year.
    pub year: Option<u16>,
    /// Only items of this genre, compared without case.
    pub genre: Option<String>,
}

/// Age an unrated item of `kind` counts as in listings filtered by age:
/// home photos and music suit everyone, an unknown film does not.
pub const UNRATED_AGE_SQL: &str = "COALESCE(rating_age, CASE WHEN kind = 'video' THEN 18 ELSE 0 END)";

/// One page of a listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Matching items in all pages.
    pub total: u64,
    /// Offset of the first item.
    pub offset: u32,
    /// Page size used.
    pub limit: u32,
}

const SUMMARY_COLUMNS: &str = "id, kind, title, mime, size, duration_ms, width, height, artist, album, missing, added_at, \
     (kind != 'audio' OR json_extract(probe, '$.has_cover_art') = 1), rating, \
     NULLIF(TRIM(json_extract(probe, '$.tags.genre')), ''), CAST(substr(json_extract(probe, '$.tags.date'), 1, 4) AS INTEGER)";

/// Number of columns in [`SUMMARY_COLUMNS`]; further columns of a query follow.
const SUMMARY_COUNT: usize = 16;

/// The year of an item, from the date tag, for filters and facets.
const YEAR_SQL: &str = "CAST(substr(json_extract(probe, '$.tags.date'), 1, 4) AS INTEGER)";

/// The genre of an item, from the genre tag, for filters and facets.
const GENRE_SQL: &str = "NULLIF(TRIM(json_extract(probe, '$.tags.genre')), '')";

pub(crate) fn list(conn: &Connection, query: &ItemQuery) -> Result<Page<ItemSummary>, CatalogError> {
    let limit = query.limit.clamp(1, MAX_PAGE_SIZE);
    let pattern = query.search.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(like_pattern);

    // Only fixed column names are spliced into the SQL; values are bound.
    let filter = format!(
        "(?1 OR missing = 0)
        AND (?2 IS NULL OR kind = ?2)
        AND (?3 IS NULL OR title LIKE ?3 ESCAPE '\\' OR artist LIKE ?3 ESCAPE '\\'
             OR album LIKE ?3 ESCAPE '\\' OR display_path LIKE ?3 ESCAPE '\\')
        AND (?6 IS NULL OR {UNRATED_AGE_SQL} <= ?6)
        AND (?7 IS NULL OR {YEAR_SQL} = ?7)
        AND (?8 IS NULL OR {GENRE_SQL} = ?8 COLLATE NOCASE)"
    );
    let kind = query.kind.map(|k| k.as_str());
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM items WHERE {filter}"),
        params![query.include_missing, kind, pattern, rusqlite::types::Null, rusqlite::types::Null, query.max_age, query.year, query.genre],
        |row| row.get(0),
    )?;

    let direction = if query.descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM items WHERE {filter}
         ORDER BY {} {direction}, id LIMIT ?4 OFFSET ?5",
        query.sort.column()
    );
    let mut stmt = conn.prepare(&sql)?;
    let items = stmt
        .query_map(params![query.include_missing, kind, pattern, limit, query.offset, query.max_age, query.year, query.genre], summary_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page { items, total: total as u64, offset: query.offset, limit })
}

/// Years and genres of the items suitable for `max_age`, for filter menus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Facets {
    /// Years with items, latest first.
    pub years: Vec<u16>,
    /// Genres with items, in alphabetical order.
    pub genres: Vec<String>,
}

pub(crate) fn facets(conn: &Connection, max_age: Option<u8>) -> Result<Facets, CatalogError> {
    let filter = format!("missing = 0 AND (?1 IS NULL OR {UNRATED_AGE_SQL} <= ?1)");
    let mut years = conn.prepare(&format!(
        "SELECT DISTINCT {YEAR_SQL} AS year FROM items WHERE {filter} AND year BETWEEN 1800 AND 3000 ORDER BY year DESC"
    ))?;
    let years = years.query_map(params![max_age], |row| row.get::<_, i64>(0))?.collect::<Result<Vec<_>, _>>()?;
    let mut genres = conn.prepare(&format!(
        "SELECT {GENRE_SQL} AS genre FROM items WHERE {filter} AND genre IS NOT NULL GROUP BY genre COLLATE NOCASE ORDER BY genre COLLATE NOCASE"
    ))?;
    let genres = genres.query_map(params![max_age], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(Facets { years: years.into_iter().filter_map(|year| u16::try_from(year).ok()).collect(), genres })
}

pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<Item>, CatalogError> {
    let row = conn
        .query_row(
            &format!("SELECT {SUMMARY_COLUMNS}, display_path, sha256, probe FROM items WHERE id = ?1"),
            [id],
            |row| {
                Ok((
                    summary_from_row(row)?,
                    row.get::<_, String>(SUMMARY_COUNT)?,
                    row.get::<_, String>(SUMMARY_COUNT + 1)?,
                    row.get::<_, String>(SUMMARY_COUNT + 2)?,
                ))
            },
        )
        .optional()?;
    let Some((summary, path, sha256, probe_json)) = row else {
        return Ok(None);
    };
    let probe = serde_json::from_str(&probe_json).map_err(|source| CatalogError::BadProbe { id: id.to_owned(), source })?;
    Ok(Some(Item { summary, path, sha256, probe, play_state: None }))
}

pub(crate) fn media_file(conn: &Connection, id: &str) -> Result<Option<MediaFile>, CatalogError> {
    let row = conn
        .query_row(
            "SELECT l.root, i.rel_path, i.mime, i.sha256, i.probe FROM items i JOIN libraries l ON l.id = i.library_id
             WHERE i.id = ?1 AND i.missing = 0",
            [id],
            |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((root, rel_path, mime, sha256, probe_json)) = row else {
        return Ok(None);
    };
    let probe = serde_json::from_str(&probe_json).map_err(|source| CatalogError::BadProbe { id: id.to_owned(), source })?;
    let path = Path::new(OsStr::from_bytes(&root)).join(OsStr::from_bytes(&rel_path));
    Ok(Some(MediaFile { path, mime, sha256, probe }))
}

pub(crate) fn problems(conn: &Connection) -> Result<Vec<Problem>, CatalogError> {
    let mut stmt = conn.prepare(
        "SELECT l.root, p.display_path, p.category, p.severity, p.reason, p.first_seen, p.last_seen
         FROM problems p JOIN libraries l ON l.id = p.library_id
         ORDER BY l.root, p.display_path, p.category",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(Problem {
            library: String::from_utf8_lossy(&row.get::<_, Vec<u8>>(0)?).into_owned(),
            path: row.get(1)?,
            category: row.get(2)?,
            severity: row.get(3)?,
            reason: row.get(4)?,
            first_seen: row.get(5)?,
            last_seen: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn play_state(conn: &Connection, id: &str, user: &str) -> Result<Option<PlayState>, CatalogError> {
    Ok(conn
        .query_row("SELECT position_ms, completed, updated_at FROM user_play_state WHERE item_id = ?1 AND user_key = ?2", [id, user], |row| {
            Ok(PlayState { position_ms: row.get::<_, i64>(0)? as u64, completed: row.get(1)?, updated_at: row.get(2)? })
        })
        .optional()?)
}

/// Returns the items `user` started and has not finished, latest first,
/// with their play state: at most `limit`, and only those suitable for
/// `max_age` when it is set.
pub(crate) fn in_progress(
    conn: &Connection,
    user: &str,
    max_age: Option<u8>,
    limit: u32,
) -> Result<Vec<(ItemSummary, PlayState)>, CatalogError> {
    // The join's play columns get names of their own, so the summary
    // columns and the age filter apply to the subquery unchanged.
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, play_position, play_completed, play_updated FROM (
             SELECT i.*, p.position_ms AS play_position, p.completed AS play_completed, p.updated_at AS play_updated
             FROM user_play_state p JOIN items i ON i.id = p.item_id
             WHERE p.user_key = ?1 AND p.completed = 0 AND p.position_ms > 0 AND i.missing = 0)
         WHERE ?2 IS NULL OR {UNRATED_AGE_SQL} <= ?2
         ORDER BY play_updated DESC, id LIMIT ?3"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![user, max_age, limit.clamp(1, MAX_PAGE_SIZE)], |row| {
        let state = PlayState {
            position_ms: row.get::<_, i64>(SUMMARY_COUNT)? as u64,
            completed: row.get(SUMMARY_COUNT + 1)?,
            updated_at: row.get(SUMMARY_COUNT + 2)?,
        };
        Ok((summary_from_row(row)?, state))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn set_play_state(conn: &Connection, id: &str, user: &str, position_ms: u64, completed: bool) -> Result<bool, CatalogError> {
    let changed = conn.execute(
        "INSERT INTO user_play_state (item_id, user_key, position_ms, completed)
         SELECT id, ?2, ?3, ?4 FROM items WHERE id = ?1
         ON CONFLICT (item_id, user_key) DO UPDATE SET
             position_ms = excluded.position_ms, completed = excluded.completed, updated_at = unixepoch()",
        params![id, user, position_ms as i64, completed],
    )?;
    Ok(changed > 0)
}

/// Sets or clears an item's rating; returns false for an unknown item.
pub(crate) fn set_rating(conn: &Connection, id: &str, rating: Option<(&str, u8)>) -> Result<bool, CatalogError> {
    let changed = conn.execute(
        "UPDATE items SET rating = ?2, rating_age = ?3 WHERE id = ?1",
        params![id, rating.map(|(label, _)| label), rating.map(|(_, age)| age)],
    )?;
    Ok(changed > 0)
}

/// Returns an item's kind, rating and the age it counts as, or None for
/// an unknown item.
pub(crate) fn rating(conn: &Connection, id: &str) -> Result<Option<(MediaKind, Option<String>, u8)>, CatalogError> {
    let row = conn
        .query_row(&format!("SELECT kind, rating, {UNRATED_AGE_SQL} FROM items WHERE id = ?1"), [id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?, row.get::<_, u8>(2)?))
        })
        .optional()?;
    Ok(row.map(|(kind, rating, age)| (MediaKind::parse(&kind).unwrap_or(MediaKind::Video), rating, age)))
}

fn summary_from_row(row: &Row) -> rusqlite::Result<ItemSummary> {
    let kind: String = row.get(1)?;
    Ok(ItemSummary {
        id: row.get(0)?,
        kind: MediaKind::parse(&kind).unwrap_or(MediaKind::Video),
        title: row.get(2)?,
        mime: row.get(3)?,
        size: row.get::<_, i64>(4)? as u64,
        duration_ms: row.get::<_, Option<i64>>(5)?.map(|d| d as u64),
        width: row.get(6)?,
        height: row.get(7)?,
        artist: row.get(8)?,
        album: row.get(9)?,
        missing: row.get(10)?,
        added_at: row.get(11)?,
        has_thumbnail: row.get(12)?,
        rating: row.get(13)?,
        genre: row.get(14)?,
        year: row.get::<_, Option<i64>>(15)?.and_then(|year| u16::try_from(year).ok()).filter(|year| (1800..=3000).contains(year)),
    })
}

/// Builds a LIKE pattern that matches `text` literally anywhere.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}
