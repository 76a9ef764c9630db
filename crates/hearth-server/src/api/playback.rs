//! Playback decisions and HLS: `POST /api/v1/items/{id}/playback` chooses
//! direct play or HLS from what the client decodes, and the `/hls/{grant}/…`
//! routes serve the playlists and segments of an HLS playback.
//!
//! A client that decodes H.264 but not the file's container gets the
//! source's video copied into HLS segments (the `original` rendition) next
//! to transcoded rungs. A copy can only cut at the source's key frames, so
//! the first playback of a file indexes them ([`KeyframeIndexes`]); when
//! that takes longer than [`INDEX_WAIT`] the playback transcodes and the
//! next one copies.
//!
//! A client with a native HLS player (`"hls": "native"`: TVs, Safari) gets
//! MPEG-TS segments, which every native player reads; a script player
//! (`"mse"`, hls.js) gets fMP4. A native player fetches the segment key
//! itself and cannot sign the request, so its playlist names the key on the
//! grant (`/hls/{grant}/key`): for such a playback, whoever holds the grant
//! URL can decrypt, as they could fetch the segments anyway.
//!
//! An HLS playback lives on a media grant, so it ends with the grant's
//! session and when the device or user is revoked. Its segments are
//! encrypted with AES-128 under a key of its own, which only
//! `GET /api/v1/hls/{grant}/key` hands out, and only to a signed request
//! of the session that started the playback.
//!
//! Every value in these requests is checked before anything reaches
//! hearth-media. The capabilities and quality are enums and the audio track
//! is a range. The rendition must be one of the item's ladder, and a segment
//! file name is digits and `.m4s` below the item's segment count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_access::Session;
use hearth_media::hls::keyframes::{self, KeyframeIndex};
use hearth_media::hls::{
    self, ClientCapabilities, Job, MAX_AUDIO_TRACK, MasterEntry, PlaybackPlan, Rendition, SegmentFormat, SegmentGrid, StreamPlan,
    TranscodeError, TranscodeKey, TranscodeManager, TranscodeStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::access::{forbidden, session_failure, unauthorized};
use crate::admin_socket::HostAdmin;
use crate::error::ApiError;
use crate::state::AppState;

/// Time limit of a segment request, including the wait in the queue.
const SEGMENT_WAIT: Duration = Duration::from_secs(60);
/// Most HLS playbacks kept in all; the oldest goes first.
const MAX_PLAYBACKS: usize = 1024;
/// Most HLS playbacks kept per session; its own oldest goes first, so one
/// device cannot push out the playbacks of others.
const MAX_PLAYBACKS_PER_SESSION: usize = 8;
/// Maximum number of digits in a segment file name.
const MAX_SEGMENT_DIGITS: usize = 6;

/// How long a playback request waits for a file's key frame index before
/// it transcodes instead of copying.
pub const INDEX_WAIT: Duration = Duration::from_secs(3);
/// Time limit of one key frame scan (about 100 GB on a fast disk).
const INDEX_LIMIT: Duration = Duration::from_secs(600);
/// A file whose scan failed is not scanned again for this long.
const INDEX_RETRY: Duration = Duration::from_secs(600);

/// HLS playbacks and the transcoder pool that serves them.
pub struct Playbacks {
    manager: TranscodeManager,
    playbacks: Mutex<HashMap<String, Playback>>,
    indexes: Arc<KeyframeIndexes>,
}

/// Key frame indexes of H.264 files by content hash: in memory, and as
/// JSON files in the data folder when it is known. Also the start times of
/// files, which every HLS playback needs.
#[derive(Default)]
pub struct KeyframeIndexes {
    dir: Option<std::path::PathBuf>,
    known: Mutex<HashMap<String, IndexState>>,
    starts: Mutex<HashMap<String, (Option<(u64, u64)>, u64)>>,
    scanning: Mutex<()>,
}

#[derive(Clone)]
enum IndexState {
    Scanning,
    Ready(Arc<KeyframeIndex>),
    Failed(Instant),
}

/// Time limit for finding a file's start time.
const START_LIMIT: Duration = Duration::from_secs(5);

impl KeyframeIndexes {
    /// Returns the stream time at which `path` (content hash `sha256`)
    /// starts; 0 when it cannot be read, as most files start there.
    pub async fn start_time(&self, path: std::path::PathBuf, sha256: &str) -> u64 {
        let stamp = keyframes::file_stamp(&path);
        if let Some((known, start)) = self.starts.lock().unwrap_or_else(|p| p.into_inner()).get(sha256)
            && *known == stamp
        {
            return *start;
        }
        let shown = path.display().to_string();
        let start = match tokio::task::spawn_blocking(move || keyframes::start_time(&path, START_LIMIT)).await {
            Ok(Ok(start)) => start,
            Ok(Err(error)) => {
                tracing::warn!(%error, "start time not found; segments count from 0");
                0
            }
            Err(error) => {
                tracing::warn!(path = %shown, %error, "start time lookup failed; segments count from 0");
                0
            }
        };
        self.starts.lock().unwrap_or_else(|p| p.into_inner()).insert(sha256.to_owned(), (stamp, start));
        start
    }

    fn file(&self, sha256: &str) -> Option<std::path::PathBuf> {
        // The hash comes from the catalog; only hex digits make a file name.
        let plain = !sha256.is_empty() && sha256.len() <= 128 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        Some(self.dir.as_ref()?.join(format!("{sha256}.json"))).filter(|_| plain)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, IndexState>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the index of `path` (content hash `sha256`), waiting up to
    /// `wait` for a scan; `None` when it is not ready by then. A scan that
    /// outlasts the wait goes on and keeps its result for the next call.
    pub async fn get(self: &Arc<Self>, path: std::path::PathBuf, sha256: &str, duration_ms: u64, wait: Duration) -> Option<Arc<KeyframeIndex>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let stamp = keyframes::file_stamp(&path);
            let known = self.lock().get(sha256).cloned();
            match known {
                Some(IndexState::Ready(index)) if index.is_current(duration_ms, stamp) => return Some(index),
                Some(IndexState::Failed(at)) if at.elapsed() < INDEX_RETRY => return None,
                // Another playback is indexing the file: wait for it rather than transcode.
                Some(IndexState::Scanning) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Some(IndexState::Scanning) => return None,
                _ => break,
            }
        }
        self.lock().insert(sha256.to_owned(), IndexState::Scanning);
        let this = Arc::clone(self);
        let hash = sha256.to_owned();
        let task = tokio::task::spawn_blocking(move || this.load_or_scan(&path, &hash, duration_ms));
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(found)) => found,
            Ok(Err(_)) | Err(_) => None,
        }
    }

    fn load_or_scan(&self, path: &std::path::Path, sha256: &str, duration_ms: u64) -> Option<Arc<KeyframeIndex>> {
        let file = self.file(sha256);
        let stamp = keyframes::file_stamp(path);
        let stored = file
            .as_ref()
            .and_then(|file| std::fs::read(file).ok())
            .and_then(|bytes| serde_json::from_slice::<KeyframeIndex>(&bytes).ok())
            .filter(|index| index.is_current(duration_ms, stamp));
        let result = match stored {
            Some(index) => Ok(index),
            None => {
                // One scan at a time: each reads a whole file.
                let _one_at_a_time = self.scanning.lock().unwrap_or_else(|p| p.into_inner());
                let started = Instant::now();
                let scanned = keyframes::scan(path, INDEX_LIMIT);
                if let Ok(index) = &scanned {
                    tracing::info!(path = %path.display(), keyframes = index.keyframes_ns.len(), ms = started.elapsed().as_millis() as u64, "key frames indexed");
                    if let Some(file) = &file {
                        store_json(file, index);
                    }
                }
                scanned
            }
        };
        match result {
            Ok(index) => {
                let index = Arc::new(index);
                self.lock().insert(sha256.to_owned(), IndexState::Ready(Arc::clone(&index)));
                Some(index)
            }
            Err(error) => {
                tracing::warn!(%error, "key frames not indexed; this file transcodes");
                self.lock().insert(sha256.to_owned(), IndexState::Failed(Instant::now()));
                None
            }
        }
    }
}

/// Writes `index` to `file` through a temporary file, so a crash leaves
/// either the old file or the new one.
fn store_json(file: &std::path::Path, index: &KeyframeIndex) {
    let Some(dir) = file.parent() else { return };
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        let temporary = file.with_extension("json.part");
        std::fs::write(&temporary, serde_json::to_vec(index).unwrap_or_default())?;
        std::fs::rename(&temporary, file)
    });
    if let Err(error) = written {
        tracing::warn!(file = %file.display(), %error, "key frame index not saved; it is made again after a restart");
    }
}

/// One HLS playback, keyed by its media grant.
#[derive(Clone)]
struct Playback {
    job: Job,
    renditions: Vec<Rendition>,
    key: [u8; hls::KEY_LEN],
    /// The session that started it; `None` for a host command.
    session_id: Option<String>,
    started: Instant,
    /// The source's key frames, when the original is copied.
    original: Option<Arc<KeyframeIndex>>,
    /// The item played.
    item_id: String,
    /// The item's title, for the admin's view.
    title: String,
    /// Whether the video is copied rather than transcoded.
    copies: bool,
}

impl Playbacks {
    /// Creates the pool with `manager`'s limits.
    pub fn new(manager: TranscodeManager) -> Self {
        Playbacks { manager, playbacks: Mutex::new(HashMap::new()), indexes: Arc::default() }
    }

    /// Keeps key frame indexes in `dir` as well, so they survive a restart.
    pub fn with_index_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.indexes = Arc::new(KeyframeIndexes { dir: Some(dir), ..KeyframeIndexes::default() });
        self
    }

    /// Returns the transcoder counters.
    pub fn status(&self) -> TranscodeStatus {
        self.manager.status()
    }

    fn insert(&self, grant: &str, playback: Playback) {
        let mut playbacks = self.playbacks.lock().unwrap_or_else(|p| p.into_inner());
        let own: Vec<(String, Instant)> = playbacks
            .iter()
            .filter(|(_, other)| other.session_id == playback.session_id)
            .map(|(id, other)| (id.clone(), other.started))
            .collect();
        if own.len() >= MAX_PLAYBACKS_PER_SESSION
            && let Some((oldest, _)) = own.iter().min_by_key(|(_, started)| *started)
        {
            playbacks.remove(oldest);
            self.manager.end_session(oldest);
        }
        if playbacks.len() >= MAX_PLAYBACKS
            && let Some(oldest) = playbacks.iter().min_by_key(|(_, playback)| playback.started).map(|(id, _)| id.clone())
        {
            playbacks.remove(&oldest);
            self.manager.end_session(&oldest);
        }
        playbacks.insert(grant.to_owned(), playback);
    }

    fn get(&self, grant: &str) -> Option<Playback> {
        self.playbacks.lock().unwrap_or_else(|p| p.into_inner()).get(grant).cloned()
    }

    fn remove(&self, grant: &str) {
        self.playbacks.lock().unwrap_or_else(|p| p.into_inner()).remove(grant);
        self.manager.end_session(grant);
    }
}

/// Builds the transcoder settings from `[transcode]`, probing the encoders.
/// A value out of range or an encoder that does not work here is an error
/// that names it.
pub fn settings(section: &crate::config::TranscodeSection) -> anyhow::Result<hls::TranscodeSettings> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_concurrent = section.max_concurrent.unwrap_or((cores / 2).clamp(1, 4));
    if !(1..=32).contains(&max_concurrent) {
        anyhow::bail!("[transcode] max_concurrent = {max_concurrent} is out of range: use 1 to 32");
    }
    let idle = section.idle_stop_seconds.unwrap_or(8);
    if !(2..=600).contains(&idle) {
        anyhow::bail!("[transcode] idle_stop_seconds = {idle} is out of range: use 2 to 600");
    }
    let encoder = match section.encoder.as_deref().unwrap_or("auto") {
        "auto" => hls::VideoEncoder::detect()
            .ok_or_else(|| anyhow::anyhow!("no H.264 encoder works here: install gstreamer1.0-plugins-ugly for x264enc"))?,
        name => {
            let encoder = hls::VideoEncoder::parse(name).ok_or_else(|| {
                anyhow::anyhow!("[transcode] encoder = {name:?} is unknown: use auto, nvh264enc, vaapih264enc, v4l2h264enc or x264enc")
            })?;
            if !encoder.usable() {
                anyhow::bail!("[transcode] encoder = {name:?} does not work on this machine (missing plug-in or device): use auto or x264enc");
            }
            encoder
        }
    };
    Ok(hls::TranscodeSettings {
        max_concurrent,
        idle_stop: Duration::from_secs(idle),
        forget_after: Duration::from_secs(600),
        encoder,
    })
}

/// Body of `POST /api/v1/items/{id}/playback`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybackRequest {
    /// Codecs and containers the client decodes.
    capabilities: ClientCapabilities,
    /// One rung of the ladder instead of all of them.
    #[serde(default)]
    quality: Option<Rendition>,
    /// Audio track index, from 0.
    #[serde(default)]
    audio_track: Option<u8>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct PlaybackAnswer {
    mode: &'static str,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_url: Option<String>,
    /// Container of the HLS segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<SegmentFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    video: Option<StreamPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<StreamPlan>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    renditions: Vec<Rendition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoder: Option<hls::VideoEncoder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Text subtitles, as WebVTT for `<track>` elements.
    subtitles: Vec<SubtitleView>,
    /// WebVTT index of the trickplay sprite sheets, once they are made.
    #[serde(skip_serializing_if = "Option::is_none")]
    trickplay: Option<String>,
    expires_at: i64,
}

/// One subtitle track in a playback response.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SubtitleView {
    label: String,
    language: Option<String>,
    codec: String,
    url: String,
}

/// Time limit for listing or converting one item's subtitles.
const SUBTITLE_LIMIT: Duration = Duration::from_secs(30);

/// Lists the convertible subtitle tracks of `path` for grant `grant`. A
/// file whose subtitles cannot be listed plays without them.
async fn subtitle_views(path: std::path::PathBuf, grant: &str) -> Vec<SubtitleView> {
    let listed = tokio::task::spawn_blocking(move || hearth_media::subtitles::list(&path, SUBTITLE_LIMIT)).await;
    let tracks = match listed {
        Ok(Ok(tracks)) => tracks,
        Ok(Err(error)) => {
            tracing::warn!(%error, "subtitles not listed");
            return Vec::new();
        }
        Err(error) => {
            tracing::warn!(%error, "subtitle listing failed");
            return Vec::new();
        }
    };
    tracks
        .into_iter()
        .enumerate()
        .filter(|(_, track)| track.convertible)
        .map(|(index, track)| SubtitleView {
            label: track.label,
            language: track.language,
            codec: track.codec,
            url: format!("/media/{grant}/subtitles/{index}"),
        })
        .collect()
}

/// `POST /api/v1/items/{id}/playback`: direct play or HLS for this client.
pub async fn start(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    host: Option<Extension<HostAdmin>>,
    Path(id): Path<String>,
    Json(request): Json<PlaybackRequest>,
) -> Result<Response, ApiError> {
    let session = session.map(|Extension(session)| session);
    if session.is_none() && host.is_none() {
        return Ok(forbidden("playback needs a signed-in device session"));
    }
    let audio_track = request.audio_track.unwrap_or(0);
    if audio_track > MAX_AUDIO_TRACK {
        return Err(ApiError::BadRequest(format!("audio_track {audio_track} is out of range: choose 0 to {MAX_AUDIO_TRACK}")));
    }
    let catalog = Arc::clone(&state.catalog);
    let item = id.clone();
    let file = tokio::task::spawn_blocking(move || catalog.media_file(&item)).await??.ok_or(ApiError::NotFound("item"))?;
    let mut plan = hls::plan(&file.probe, &request.capabilities).map_err(|reason| ApiError::BadRequest(format!("item {id} cannot play on this client: {reason}")))?;
    let known_duration = file.probe.duration_ms.unwrap_or(0);
    let indexes = Arc::clone(&state.playbacks.indexes);
    let mut original =
        if plan.copies_video() { indexes.get(file.path.clone(), &file.sha256, known_duration, INDEX_WAIT).await } else { None };
    let origin_ns = if plan == PlaybackPlan::Direct { 0 } else { indexes.start_time(file.path.clone(), &file.sha256).await };
    let copy_grid = original.as_ref().map(|index| {
        let keyframes: Vec<u64> = index.keyframes_ns.iter().map(|time| time.saturating_sub(origin_ns)).collect();
        SegmentGrid::from_keyframes(&keyframes, known_duration)
    });
    if let Some(grid) = &copy_grid
        && grid.longest_ms(known_duration) > hls::MAX_COPY_SEGMENT_SECONDS * 1000
    {
        tracing::info!(item = %id, longest_ms = grid.longest_ms(known_duration), "key frames too far apart to copy; transcoding");
        original = None;
    }
    if original.is_none() {
        plan = plan.without_copy(&file.probe);
    }

    // Every refusal comes before the grant, so a refused request leaves none behind.
    let hls_plan = match plan {
        PlaybackPlan::Direct => None,
        PlaybackPlan::Hls { video, audio, renditions, reason } => {
            let renditions = choose_renditions(&id, renditions, request.quality)?;
            // A quality that names a transcoded rung copies nothing.
            let video = if renditions.contains(&Rendition::Original) { video } else { video.map(|_| StreamPlan::Transcode) };
            let Some(duration_ms) = file.probe.duration_ms.filter(|ms| *ms > 0) else {
                return Err(ApiError::BadRequest(format!("item {id} has no known duration, which HLS needs: scan the library again")));
            };
            Some((video, audio, renditions, reason, duration_ms))
        }
    };

    let (grant, expires_at) = match state.access.grants.issue(&state.access, session.as_ref(), &id) {
        Ok(issued) => issued,
        Err(error) => {
            tracing::warn!(item = %id, %error, "playback grant not issued");
            return Ok(session_failure(&error));
        }
    };
    let subtitles = if file.probe.video.is_some() { subtitle_views(file.path.clone(), &grant).await } else { Vec::new() };
    let trickplay = state.trickplay.existing(&id, &file.sha256).map(|_| format!("/media/{grant}/trickplay/index.vtt"));
    let Some((video, audio, renditions, reason, duration_ms)) = hls_plan else {
        return Ok(Json(PlaybackAnswer {
            mode: "direct",
            url: format!("/media/{grant}/stream"),
            key_url: None,
            segments: None,
            video: None,
            audio: None,
            renditions: Vec::new(),
            encoder: None,
            reason: None,
            subtitles,
            trickplay,
            expires_at,
        })
        .into_response());
    };

    let size = file.probe.video.as_ref().and_then(|v| Some((v.width?, v.height?)));
    let encoder = state.playbacks.status().encoder;
    let grid = match (&original, copy_grid) {
        (Some(_), Some(grid)) => grid,
        _ => SegmentGrid::Fixed,
    };
    let format = SegmentFormat::for_client(request.capabilities.hls);
    let title = file
        .probe
        .tags
        .title
        .clone()
        .unwrap_or_else(|| file.path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default());
    let job = Job {
        path: file.path,
        duration_ms,
        video: size,
        audio: file.probe.audio.is_some(),
        rendition: renditions[0],
        audio_track,
        encoder,
        grid,
        format,
        origin_ns,
    };
    state.playbacks.insert(
        &grant,
        Playback {
            job,
            renditions: renditions.clone(),
            key: rand::random(),
            session_id: session.as_ref().map(|s| s.id.clone()),
            started: Instant::now(),
            original: original.filter(|_| renditions.contains(&Rendition::Original)),
            item_id: id.clone(),
            title,
            copies: video == Some(StreamPlan::Direct),
        },
    );
    Ok(Json(PlaybackAnswer {
        mode: "hls",
        url: format!("/hls/{grant}/master.m3u8"),
        key_url: Some(key_url(&grant, format)),
        segments: Some(format),
        video,
        audio,
        renditions,
        encoder: Some(encoder),
        reason: Some(reason),
        subtitles,
        trickplay,
        expires_at,
    })
    .into_response())
}

/// Returns the item's ladder, or only `quality` when the request names one
/// that the ladder offers.
fn choose_renditions(id: &str, ladder: Vec<Rendition>, quality: Option<Rendition>) -> Result<Vec<Rendition>, ApiError> {
    let Some(quality) = quality else { return Ok(ladder) };
    if ladder.contains(&quality) {
        return Ok(vec![quality]);
    }
    let offered: Vec<&str> = ladder.iter().map(|r| r.as_str()).collect();
    Err(ApiError::BadRequest(format!(
        "quality {} is not available for item {id}: choose one of {}",
        quality.as_str(),
        offered.join(", ")
    )))
}

/// Checks the grant and returns its playback, or the response to send.
fn playback_of(state: &AppState, grant: &str) -> Result<Playback, Response> {
    if let Err((failure, reason)) = state.access.grants.check(&state.access, grant) {
        // The grant ended: so does its transcode.
        state.playbacks.remove(grant);
        return Err(unauthorized(failure, reason));
    }
    state.playbacks.get(grant).ok_or_else(|| not_found("no HLS playback for this grant; start one with POST /api/v1/items/{id}/playback"))
}

/// `GET /hls/{grant}/master.m3u8`: the multivariant playlist.
pub async fn master(State(state): State<AppState>, Path(grant): Path<String>) -> Response {
    let playback = match playback_of(&state, &grant) {
        Ok(playback) => playback,
        Err(response) => return response,
    };
    let entries: Vec<MasterEntry> = playback
        .renditions
        .iter()
        .map(|rendition| MasterEntry {
            rendition: *rendition,
            source_size: playback.job.video,
            has_audio: playback.job.audio,
            uri: format!("{}/index.m3u8", rendition.as_str()),
            original: playback.original.as_ref().filter(|_| *rendition == Rendition::Original).map(|index| {
                let seconds = (playback.job.duration_ms / 1000).max(1);
                (index.video_bytes.saturating_mul(8) / seconds, index.codecs())
            }),
        })
        .collect();
    playlist_response(hls::master_playlist(&entries))
}

/// `GET /hls/{grant}/{rendition}/{file}`: a media playlist (`index.m3u8`),
/// the init segment (`init.mp4`) or an encrypted media segment (`N.m4s`).
pub async fn rendition_file(State(state): State<AppState>, Path((grant, rendition, file)): Path<(String, String, String)>) -> Response {
    let playback = match playback_of(&state, &grant) {
        Ok(playback) => playback,
        Err(response) => return response,
    };
    let Some(rendition) = Rendition::parse(&rendition).filter(|r| playback.renditions.contains(r)) else {
        return not_found("this playback has no such rendition; see its master playlist");
    };
    let format = playback.job.format;
    let requested = match parse_file_name(&file, format) {
        Some(requested) => requested,
        None if format == SegmentFormat::Ts => return not_found("HLS file names of this playback are index.m3u8 and N.ts"),
        None => return not_found("HLS file names are index.m3u8, init.mp4 and N.m4s"),
    };

    let key_url = key_url(&grant, format);
    let job = Job { rendition, ..playback.job.clone() };
    let segment = match requested {
        HlsFile::Playlist => return playlist_response(hls::media_playlist(&job.grid, format, job.duration_ms, Some(&key_url))),
        HlsFile::Init => None,
        HlsFile::Segment(n) => Some(n),
    };

    let key: TranscodeKey = (grant, rendition);
    let manager = state.playbacks.manager.clone();
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = Arc::clone(&cancel.0);
    let deadline = Instant::now() + SEGMENT_WAIT;
    let fetched = tokio::task::spawn_blocking(move || match segment {
        None => manager.init_segment(&key, &job, deadline, &flag),
        Some(n) => manager.media_segment(&key, &job, n, deadline, &flag),
    })
    .await;
    drop(cancel);
    let bytes = match fetched {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => return transcode_failure(&error),
        Err(error) => return ApiError::Join(error).into_response(),
    };

    let body = match segment {
        None => bytes.to_vec(),
        Some(n) => hls::encrypt_segment(&playback.key, u64::from(n), &bytes),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    let content_type = if segment.is_some() && format == SegmentFormat::Ts { "video/mp2t" } else { "video/mp4" };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/v1/hls/{grant}/key`: the AES-128 key of a playback, to a
/// signed request of the session that started it.
pub async fn key(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    host: Option<Extension<HostAdmin>>,
    Path(grant): Path<String>,
) -> Response {
    // The caller is signed in already; a playback that is gone is a
    // missing resource here, not a failed sign-in.
    let Some(playback) = state.playbacks.get(&grant) else {
        return not_found("no HLS playback for this grant");
    };
    if state.access.grants.check(&state.access, &grant).is_err() {
        state.playbacks.remove(&grant);
        return not_found("this HLS playback ended with its grant; start a new one");
    }
    let caller = session.map(|Extension(session)| session.id);
    let allowed = match (&playback.session_id, &caller) {
        (Some(owner), Some(caller)) => owner == caller,
        (None, _) => host.is_some(),
        (Some(_), None) => false,
    };
    if !allowed {
        return forbidden("this playback's key belongs to another session");
    }
    key_response(&playback.key)
}

/// Returns the key URL a playlist names: the signed API route for script
/// players, the grant route for native ones.
fn key_url(grant: &str, format: SegmentFormat) -> String {
    match format {
        SegmentFormat::Fmp4 => format!("/api/v1/hls/{grant}/key"),
        SegmentFormat::Ts => format!("/hls/{grant}/key"),
    }
}

/// `GET /hls/{grant}/key`: the AES-128 key of a native player's playback,
/// to the grant's holder. A playback for a script player answers 404 here:
/// its key comes only from the signed route.
pub async fn grant_key(State(state): State<AppState>, Path(grant): Path<String>) -> Response {
    let playback = match playback_of(&state, &grant) {
        Ok(playback) => playback,
        Err(response) => return response,
    };
    if playback.job.format != SegmentFormat::Ts {
        return not_found("this playback's key comes from GET /api/v1/hls/{grant}/key with a signed request");
    }
    key_response(&playback.key)
}

fn key_response(key: &[u8]) -> Response {
    let mut response = (StatusCode::OK, key.to_vec()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `DELETE /api/v1/hls/{grant}`: the player closed; its transcode stops now.
pub async fn stop(State(state): State<AppState>, session: Option<Extension<Session>>, Path(grant): Path<String>) -> Response {
    let Some(playback) = state.playbacks.get(&grant) else {
        return not_found("no HLS playback for this grant");
    };
    let caller = session.map(|Extension(session)| session.id);
    if playback.session_id.is_some() && playback.session_id != caller {
        return forbidden("this playback belongs to another session");
    }
    state.playbacks.remove(&grant);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /media/{grant}/subtitles/{index}`: subtitle track `index` of the
/// grant's item (as listed in the playback response), as WebVTT.
pub async fn subtitle(State(state): State<AppState>, Path((grant, index)): Path<(String, String)>) -> Response {
    let grant = match state.access.grants.check(&state.access, &grant) {
        Ok(grant) => grant,
        Err((failure, reason)) => return unauthorized(failure, reason),
    };
    let plain = !index.is_empty() && index.len() <= 3 && index.bytes().all(|b| b.is_ascii_digit());
    let Some(index) = plain.then(|| index.parse::<usize>().ok()).flatten() else {
        return not_found("subtitle tracks are numbered from 0, as the playback answer lists them");
    };
    let catalog = Arc::clone(&state.catalog);
    let item = grant.item_id.clone();
    let file = match tokio::task::spawn_blocking(move || catalog.media_file(&item)).await {
        Ok(Ok(Some(file))) => file,
        Ok(Ok(None)) => return not_found("item not found"),
        Ok(Err(error)) => return ApiError::Catalog(error).into_response(),
        Err(error) => return ApiError::Join(error).into_response(),
    };
    let converted = tokio::task::spawn_blocking(move || {
        let tracks = hearth_media::subtitles::list(&file.path, SUBTITLE_LIMIT)?;
        let Some(track) = tracks.get(index).filter(|track| track.convertible) else {
            return Ok(None);
        };
        hearth_media::subtitles::to_webvtt(&file.path, track, SUBTITLE_LIMIT).map(Some)
    })
    .await;
    match converted {
        Ok(Ok(Some(text))) => {
            let mut response = (StatusCode::OK, text).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/vtt; charset=utf-8"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(Ok(None)) => not_found("the item has no text subtitle track with this number"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "subtitle conversion failed");
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": error.to_string() }))).into_response()
        }
        Err(error) => ApiError::Join(error).into_response(),
    }
}

/// `GET /media/{grant}/trickplay/{file}`: the grant's trickplay index
/// (`index.vtt`) or one of its sheets (`sheet-N.jpg`).
pub async fn trickplay_file(State(state): State<AppState>, Path((grant, file)): Path<(String, String)>) -> Response {
    let grant = match state.access.grants.check(&state.access, &grant) {
        Ok(grant) => grant,
        Err((failure, reason)) => return unauthorized(failure, reason),
    };
    let content_type = if file == "index.vtt" {
        "text/vtt; charset=utf-8"
    } else {
        let digits = file.strip_prefix("sheet-").and_then(|rest| rest.strip_suffix(".jpg")).unwrap_or_default();
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return not_found("trickplay files are index.vtt and sheet-N.jpg");
        }
        "image/jpeg"
    };
    let catalog = Arc::clone(&state.catalog);
    let item = grant.item_id.clone();
    let media = match tokio::task::spawn_blocking(move || catalog.media_file(&item)).await {
        Ok(Ok(Some(media))) => media,
        Ok(Ok(None)) => return not_found("item not found"),
        Ok(Err(error)) => return ApiError::Catalog(error).into_response(),
        Err(error) => return ApiError::Join(error).into_response(),
    };
    let Some(folder) = state.trickplay.existing(&grant.item_id, &media.sha256) else {
        return not_found("this item's trickplay sheets are not made yet; they are made in the background after a scan");
    };
    match tokio::fs::read(folder.join(&file)).await {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
            response
        }
        Err(_) => not_found("no such trickplay sheet"),
    }
}

/// `GET /api/v1/admin/transcodes`: encoder, limit and counters.
pub async fn status(State(state): State<AppState>) -> Json<TranscodesView> {
    let running = state.playbacks.manager.running();
    let sessions = state.access.sessions.open_sessions();
    let playbacks: Vec<(String, Playback)> =
        state.playbacks.playbacks.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(grant, playback)| (grant.clone(), playback.clone())).collect();
    let access = Arc::clone(&state.access);
    let names = tokio::task::spawn_blocking(move || -> HashMap<i64, String> {
        access.users.users().map(|users| users.into_iter().map(|user| (user.id.0, user.name)).collect()).unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let mut views: Vec<PlaybackView> = playbacks
        .into_iter()
        .map(|(grant, playback)| {
            let session = playback.session_id.as_ref().and_then(|id| sessions.iter().find(|session| &session.id == id));
            let mut active: Vec<Rendition> = running.iter().filter(|(key, _)| *key == grant).map(|(_, rendition)| *rendition).collect();
            active.sort();
            PlaybackView {
                item_id: playback.item_id,
                title: playback.title,
                user: session.and_then(|session| names.get(&session.user_id.0).cloned()),
                device_id: session.map(|session| session.device_id.0),
                video: if playback.copies { StreamPlan::Direct } else { StreamPlan::Transcode },
                renditions: playback.renditions,
                active,
                started_seconds_ago: playback.started.elapsed().as_secs(),
            }
        })
        .collect();
    views.sort_by_key(|view| view.started_seconds_ago);
    Json(TranscodesView { status: state.playbacks.status(), playbacks: views })
}

/// The answer of `GET /api/v1/admin/transcodes`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TranscodesView {
    #[serde(flatten)]
    status: TranscodeStatus,
    /// HLS playbacks, newest first.
    playbacks: Vec<PlaybackView>,
}

/// One HLS playback in the admin's view.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlaybackView {
    item_id: String,
    title: String,
    /// The user who started it; absent for a host command.
    user: Option<String>,
    device_id: Option<i64>,
    /// Whether the video is copied (`direct`) or transcoded.
    video: StreamPlan,
    /// The renditions it offers.
    renditions: Vec<Rendition>,
    /// The renditions with a pipeline running now.
    active: Vec<Rendition>,
    started_seconds_ago: u64,
}

/// The files of a rendition.
#[derive(Debug, PartialEq, Eq)]
enum HlsFile {
    Playlist,
    Init,
    Segment(u32),
}

/// Parses `index.m3u8`, and `init.mp4` or `N.m4s` for fMP4, `N.ts` for
/// MPEG-TS (N: 1 to 6 ASCII digits).
fn parse_file_name(name: &str, format: SegmentFormat) -> Option<HlsFile> {
    match name {
        "index.m3u8" => Some(HlsFile::Playlist),
        "init.mp4" if format == SegmentFormat::Fmp4 => Some(HlsFile::Init),
        _ => {
            let digits = name.strip_suffix(format.extension())?.strip_suffix('.')?;
            let plain = !digits.is_empty() && digits.len() <= MAX_SEGMENT_DIGITS && digits.bytes().all(|b| b.is_ascii_digit());
            if !plain {
                return None;
            }
            digits.parse().ok().map(HlsFile::Segment)
        }
    }
}

/// Sets the flag when the handler is dropped: the client went away.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn playlist_response(text: String) -> Response {
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apple.mpegurl"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_found(message: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": message }))).into_response()
}

fn transcode_failure(error: &TranscodeError) -> Response {
    let message = error.to_string();
    match error {
        TranscodeError::NoSuchSegment { .. } | TranscodeError::Ended => not_found(&message),
        TranscodeError::NoSuchAudioTrack { .. } => (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response(),
        TranscodeError::Busy { .. } | TranscodeError::Timeout | TranscodeError::Cancelled => {
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": message, "status": "queued" }))).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            response
        }
        TranscodeError::Failed(_) => {
            // The message names server paths; like every 5xx, the body does not.
            tracing::warn!(%message, "transcode failed");
            let body = json!({ "error": "the server could not transcode this item; its log names the reason" });
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_digits_only() {
        let fmp4 = |name| parse_file_name(name, SegmentFormat::Fmp4);
        assert_eq!(fmp4("0.m4s"), Some(HlsFile::Segment(0)));
        assert_eq!(fmp4("123456.m4s"), Some(HlsFile::Segment(123_456)));
        assert_eq!(fmp4("init.mp4"), Some(HlsFile::Init));
        for bad in ["1234567.m4s", "-1.m4s", "+1.m4s", "1 .m4s", ".m4s", "1.m4s.m4s", "0x1.m4s", "１.m4s", "1.ts", "index.m3u8 ", "../init.mp4", "1m4s"] {
            assert_eq!(fmp4(bad), None, "{bad:?}");
        }
        let ts = |name| parse_file_name(name, SegmentFormat::Ts);
        assert_eq!(ts("17.ts"), Some(HlsFile::Segment(17)));
        assert_eq!(ts("index.m3u8"), Some(HlsFile::Playlist));
        for bad in ["init.mp4", "1.m4s", "1ts", ".ts", "1.ts.ts", "1234567.ts"] {
            assert_eq!(ts(bad), None, "{bad:?}");
        }
    }
}
