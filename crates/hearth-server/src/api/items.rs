//! Item listing, details, thumbnails, direct-play streams and play state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_access::ContentRating;
use hearth_catalog::{Item, ItemQuery, ItemSummary, MAX_PAGE_SIZE, Page, SortKey};
use hearth_media::{LocationPatch, MediaKind, location_patches};
use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::stream::{StreamError, serve_file_patched};
use crate::thumbnails::Thumbnail;

/// Page size when the request names none.
const DEFAULT_PAGE_SIZE: u32 = 100;

/// Query parameters of `GET /api/v1/items`, validated by [`ListParams::parse`].
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    kind: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
    include_missing: Option<String>,
    year: Option<String>,
    genre: Option<String>,
}

impl ListParams {
    fn parse(self) -> Result<ItemQuery, ApiError> {
        let kind = match self.kind.as_deref() {
            None | Some("") => None,
            Some(kind) => Some(MediaKind::parse(kind).ok_or_else(|| {
                ApiError::BadRequest(format!("invalid kind {kind:?}: expected video, audio or image"))
            })?),
        };
        let sort = match self.sort.as_deref() {
            None | Some("") | Some("title") => SortKey::Title,
            Some("added") => SortKey::Added,
            Some("duration") => SortKey::Duration,
            Some("size") => SortKey::Size,
            Some(other) => {
                return Err(ApiError::BadRequest(format!("invalid sort {other:?}: expected title, added, duration or size")));
            }
        };
        let descending = match self.order.as_deref() {
            None | Some("") | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(ApiError::BadRequest(format!("invalid order {other:?}: expected asc or desc"))),
        };
        let offset = parse_number("offset", self.offset.as_deref(), 0, u32::MAX)?;
        let limit = parse_number("limit", self.limit.as_deref(), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        if limit == 0 {
            return Err(ApiError::BadRequest(format!("invalid limit 0: expected a whole number from 1 to {MAX_PAGE_SIZE}")));
        }
        let include_missing = matches!(self.include_missing.as_deref(), Some("true" | "1"));
        if self.q.as_ref().is_some_and(|q| q.len() > 200) {
            return Err(ApiError::BadRequest("search text is longer than 200 bytes".into()));
        }

        let year = match self.year.as_deref() {
            None | Some("") => None,
            Some(text) => match text.parse::<u16>() {
                Ok(year) if (1800..=3000).contains(&year) => Some(year),
                _ => return Err(ApiError::BadRequest(format!("invalid year {text:?}: expected a year from 1800 to 3000"))),
            },
        };
        let genre = self.genre.map(|genre| genre.trim().to_owned()).filter(|genre| !genre.is_empty());
        if genre.as_ref().is_some_and(|genre| genre.len() > 100) {
            return Err(ApiError::BadRequest("genre is longer than 100 bytes".into()));
        }
        Ok(ItemQuery { search: self.q, kind, sort, descending, offset, limit, include_missing, max_age: None, year, genre })
    }
}

/// `GET /api/v1/items`: one page of items, filtered, searched and sorted.
///
/// In a device session the page holds only items the user's role may view,
/// as the policy's rating limit for the role says. Unrated videos count as
/// adult.
pub async fn list(
    State(state): State<AppState>,
    session: Option<Extension<hearth_access::Session>>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<ItemSummary>>, ApiError> {
    let mut query = params.parse()?;
    if let Some(Extension(session)) = session {
        query.max_age = state.access.policy.max_rating_age(session.role);
    }
    let catalog = Arc::clone(&state.catalog);
    let page = tokio::task::spawn_blocking(move || catalog.items(&query)).await??;
    Ok(Json(page))
}

/// `GET /api/v1/items/facets`: the years and genres of the items the
/// caller may see, for the library's filter menus.
pub async fn facets(
    State(state): State<AppState>,
    session: Option<Extension<hearth_access::Session>>,
) -> Result<Json<hearth_catalog::Facets>, ApiError> {
    let max_age = session.and_then(|Extension(session)| state.access.policy.max_rating_age(session.role));
    let catalog = Arc::clone(&state.catalog);
    Ok(Json(tokio::task::spawn_blocking(move || catalog.facets(max_age)).await??))
}

/// Query of `GET /api/v1/items/in-progress`.
#[derive(Deserialize)]
pub struct InProgressParams {
    limit: Option<String>,
}

/// One item the caller started and has not finished.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InProgressItem {
    #[serde(flatten)]
    item: ItemSummary,
    play_state: hearth_catalog::PlayState,
}

/// `GET /api/v1/items/in-progress`: the items the caller's user started
/// and has not finished on any device, latest first (continue watching),
/// filtered by the role's rating limit as the listing is.
pub async fn in_progress(
    State(state): State<AppState>,
    session: Option<Extension<hearth_access::Session>>,
    Query(params): Query<InProgressParams>,
) -> Result<Json<InProgressList>, ApiError> {
    let limit = parse_number("limit", params.limit.as_deref(), 20, MAX_PAGE_SIZE)?.max(1);
    let session = session.map(|Extension(session)| session);
    let max_age = session.as_ref().and_then(|session| state.access.policy.max_rating_age(session.role));
    let user = play_state_key(session.as_ref());
    let catalog = Arc::clone(&state.catalog);
    let found = tokio::task::spawn_blocking(move || catalog.in_progress(&user, max_age, limit)).await??;
    let items: Vec<InProgressItem> = found.into_iter().map(|(item, play_state)| InProgressItem { item, play_state }).collect();
    Ok(Json(InProgressList { items }))
}

/// The answer of `GET /api/v1/items/in-progress`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InProgressList {
    items: Vec<InProgressItem>,
}

/// `GET /api/v1/items/{id}`: everything about one item. Photo locations are
/// removed unless the caller is an admin.
pub async fn show(
    State(state): State<AppState>,
    Extension(role): Extension<Role>,
    session: Option<Extension<hearth_access::Session>>,
    Path(id): Path<String>,
) -> Result<Json<Item>, ApiError> {
    let catalog = Arc::clone(&state.catalog);
    let user = play_state_key(session.as_ref().map(|Extension(s)| s));
    let mut item = tokio::task::spawn_blocking(move || -> Result<Option<Item>, hearth_catalog::CatalogError> {
        let Some(mut item) = catalog.item(&id)? else {
            return Ok(None);
        };
        item.play_state = catalog.play_state(&id, &user)?;
        Ok(Some(item))
    })
    .await??
    .ok_or(ApiError::NotFound("item"))?;
    if role != Role::Admin {
        item.redact_location();
    }
    Ok(Json(item))
}

/// Time limit for listing one item's tracks.
const TRACKS_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// One subtitle track in `GET /api/v1/items/{id}/tracks`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SubtitleTrackView {
    /// The subtitle number of a playback's `/media/{grant}/subtitles/{index}`.
    index: usize,
    label: String,
    language: Option<String>,
    codec: String,
    /// Whether the player can show it (text, not bitmap, subtitles).
    convertible: bool,
}

/// `GET /api/v1/items/{id}/tracks`: the item's audio tracks (the
/// `audio_track` values of a playback request) and subtitle tracks, for the
/// item page's menus before anything plays.
pub async fn tracks(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<TrackList>, ApiError> {
    let catalog = Arc::clone(&state.catalog);
    let file = tokio::task::spawn_blocking(move || catalog.media_file(&id)).await??.ok_or(ApiError::NotFound("item"))?;
    if file.probe.video.is_none() && file.probe.audio.is_none() {
        return Ok(Json(TrackList { audio: Vec::new(), subtitles: Vec::new() }));
    }
    let path = file.path.clone();
    let has_video = file.probe.video.is_some();
    let listed = tokio::task::spawn_blocking(move || {
        let audio = hearth_media::tracks::audio_tracks(&path, TRACKS_LIMIT)?;
        let subtitles = if has_video { hearth_media::subtitles::list(&path, TRACKS_LIMIT)? } else { Vec::new() };
        Ok::<_, hearth_media::MediaError>((audio, subtitles))
    })
    .await?;
    let (audio, subtitles) = listed.map_err(|error| {
        tracing::warn!(path = %file.path.display(), %error, "tracks not listed");
        ApiError::BadRequest("the item's tracks could not be read; scan the library again if the file changed".to_owned())
    })?;
    let subtitles: Vec<SubtitleTrackView> = subtitles
        .into_iter()
        .enumerate()
        .map(|(index, track)| SubtitleTrackView {
            index,
            label: track.label,
            language: track.language,
            codec: track.codec,
            convertible: track.convertible,
        })
        .collect();
    Ok(Json(TrackList { audio, subtitles }))
}

/// The answer of `GET /api/v1/items/{id}/tracks`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TrackList {
    audio: Vec<hearth_media::tracks::AudioTrack>,
    subtitles: Vec<SubtitleTrackView>,
}

/// `GET /api/v1/items/{id}/thumbnail`: a JPEG: a frame for video, the
/// picture for images, the cover art for audio.
pub async fn thumbnail(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let catalog = Arc::clone(&state.catalog);
    let file = tokio::task::spawn_blocking(move || catalog.media_file(&id)).await??.ok_or(ApiError::NotFound("item"))?;
    let etag = format!("\"{}\"", file.sha256);

    match state.thumbnails.get(file).await.map_err(ApiError::Thumbnail)? {
        Thumbnail::Jpeg(bytes) => Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg".to_owned()),
                (header::CACHE_CONTROL, "private, max-age=86400".to_owned()),
                (header::ETAG, etag),
            ],
            Body::from(bytes),
        )
            .into_response()),
        Thumbnail::None(reason) => Ok((StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": reason }))).into_response()),
    }
}

/// `GET|HEAD /api/v1/items/{id}/stream`: the file itself, with RFC 9110
/// range support, for direct play. Admins get the file as it is; members
/// get it with its location metadata blanked, at the same size and with an
/// ETag of its own.
pub async fn stream(
    State(state): State<AppState>,
    Extension(role): Extension<Role>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let catalog = Arc::clone(&state.catalog);
    let file = tokio::task::spawn_blocking(move || catalog.media_file(&id)).await??.ok_or(ApiError::NotFound("item"))?;

    if role == Role::Admin {
        crate::stream::serve_file(&method, &headers, &file.path, &file.mime).await.map_err(stream_error)
    } else {
        serve_without_location(&method, &headers, file.path, &file.mime).await
    }
}

/// Serves a file with its location metadata blanked. Any failure is an
/// error response, never the file as it is.
///
/// The patches are found per request and not cached, because that reads
/// only metadata headers: 12 to 21 µs per sample photo or video in a release
/// build with a warm page cache, on a 2-core AMD EPYC virtual machine.
async fn serve_without_location(method: &Method, headers: &HeaderMap, path: PathBuf, mime: &str) -> Result<Response, ApiError> {
    let blocking_path = path.clone();
    let (patches, before) = tokio::task::spawn_blocking(move || find_location_patches(&blocking_path)).await?.map_err(stream_error)?;

    let response = serve_file_patched(method, headers, &path, mime, &patches).await.map_err(stream_error)?;

    // The file was opened again to be served. If it changed since the patches
    // were found, they may miss its location, so nothing is sent.
    // NOTE: a rewrite that keeps the size and the modification time, or one
    // made in place while the body streams, goes unnoticed.
    let after = tokio::fs::metadata(&path).await.map(|metadata| FileVersion::of(&metadata));
    if after.ok() != Some(before) {
        return Err(ApiError::Stream(StreamError::ChangedDuringPatching { path }));
    }
    Ok(response)
}

/// Size and modification time, which change when a file is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileVersion {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileVersion {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self { len: metadata.len(), modified: metadata.modified().ok() }
    }
}

/// Reads the version of the file, then finds the patches that blank its location.
fn find_location_patches(path: &std::path::Path) -> Result<(Vec<LocationPatch>, FileVersion), StreamError> {
    let metadata = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => StreamError::NotFound { path: path.to_path_buf(), source },
        _ => StreamError::Metadata { path: path.to_path_buf(), source },
    })?;
    let patches = location_patches(path).map_err(|source| StreamError::Location { path: path.to_path_buf(), source: Box::new(source) })?;
    Ok((patches, FileVersion::of(&metadata)))
}

/// Maps a missing file to 404, because the library changed since the last
/// scan, and every other stream error to 500.
fn stream_error(error: StreamError) -> ApiError {
    match error {
        StreamError::NotFound { .. } | StreamError::NotAFile { .. } => {
            ApiError::NotFound("item file; it may have been moved, rescan the library")
        }
        other => other.into(),
    }
}

/// Body of `PUT /api/v1/items/{id}/play-state`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PlayStateBody {
    position_ms: u64,
    #[serde(default)]
    completed: bool,
}

/// `PUT /api/v1/items/{id}/play-state`: stores where playback stopped.
pub async fn set_play_state(
    State(state): State<AppState>,
    session: Option<Extension<hearth_access::Session>>,
    Path(id): Path<String>,
    Json(body): Json<PlayStateBody>,
) -> Result<StatusCode, ApiError> {
    let catalog = Arc::clone(&state.catalog);
    let user = play_state_key(session.as_ref().map(|Extension(s)| s));
    let stored = tokio::task::spawn_blocking(move || catalog.set_play_state(&id, &user, body.position_ms, body.completed)).await??;
    if stored { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::NotFound("item")) }
}

/// Key under which the caller's play state is kept: the user's did:key, or
/// `host-admin` for commands on the admin socket.
fn play_state_key(session: Option<&hearth_access::Session>) -> String {
    session.map_or_else(|| "host-admin".to_owned(), |session| session.user_did.to_string())
}

fn parse_number(name: &str, value: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ApiError::BadRequest(format!("invalid {name} {text:?}: expected a whole number from 0 to {max}"))),
        },
    }
}

/// Body of `PUT /api/v1/items/{id}/rating`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RatingBody {
    rating: Option<String>,
}

/// `PUT /api/v1/items/{id}/rating`: sets the item's content rating (MPA
/// such as `PG-13`, or TV such as `TV-14`), or clears it with `null`.
pub async fn set_rating(State(state): State<AppState>, Path(id): Path<String>, Json(body): Json<RatingBody>) -> Result<StatusCode, ApiError> {
    let rating = match body.rating.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let rating: ContentRating = text.parse().map_err(|_| {
                ApiError::BadRequest(format!("unknown rating {text:?}: use G, PG, PG-13, R, NC-17, TV-Y, TV-Y7, TV-G, TV-PG, TV-14 or TV-MA"))
            })?;
            Some(rating)
        }
    };
    let catalog = Arc::clone(&state.catalog);
    let item = id.clone();
    let found = tokio::task::spawn_blocking(move || catalog.set_rating(&item, rating.map(|r| (r.as_str(), r.min_age())))).await??;
    if !found {
        return Err(ApiError::NotFound("item"));
    }
    tracing::info!(item = %id, rating = rating.map_or("unrated", ContentRating::as_str), "item rating set");
    Ok(StatusCode::NO_CONTENT)
}
