//! HLS for files a client cannot play directly: an adaptive ladder of H.264 +
//! AAC renditions in fMP4 segments, made on demand by GStreamer.
//!
//! The server asks [`TranscodeManager`] for the init segment or segment `n`
//! of one rendition of one playback session. The manager keeps one
//! [`transcoder::Transcoder`] per session and rendition, limits how many
//! pipelines run at once (the rest queue, first come first served), and a
//! reaper thread stops pipelines nobody has asked anything of for a while,
//! which is how a client that went away frees its pipeline.
//!
//! Nothing a client sends reaches GStreamer except through the typed values
//! of [`Job`] and the segment number, which the manager checks against the
//! item's segment count.

mod crypt;
mod fmp4;
pub mod keyframes;
mod pipeline;
mod plan;
mod playlist;
mod segmenter;
mod transcoder;
mod ts;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use crypt::{KEY_LEN, encrypt_segment};
pub use ts::TIME_OFFSET as TS_TIME_OFFSET;
pub use pipeline::{Job, VideoEncoder};
pub use plan::{
    AUDIO_BPS, AudioCodec, ClientCapabilities, Container, FIRST_SEGMENT_SECONDS, HlsSupport, MAX_AUDIO_TRACK, MAX_COPY_SEGMENT_SECONDS,
    PlaybackPlan, Rendition, SEGMENT_SECONDS, SegmentFormat, SegmentGrid, StreamPlan, VideoCodec, avc_length_size, copyable_h264, has_idr,
    ladder, output_size, plan, remux_ladder, segment_count, segment_of_ns, segment_start_ms,
};
pub use playlist::{MasterEntry, master_playlist, media_playlist};
use transcoder::{Step, Transcoder};

/// Reasons a segment could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscodeError {
    /// GStreamer failed on the file; the message names it.
    #[error("{0}")]
    Failed(String),
    /// The segment number is past the end of the item.
    #[error("segment {requested} does not exist: the item has segments 0 to {last}")]
    NoSuchSegment { requested: u32, last: u32 },
    /// Every transcode slot stayed busy until the request's deadline.
    #[error("all {limit} transcode slots are busy and {queued} request(s) are waiting; try again in a few seconds")]
    Busy { limit: usize, queued: usize },
    /// The request's deadline passed while its pipeline was working.
    #[error("the transcode did not reach the segment in time; try again")]
    Timeout,
    /// The client went away.
    #[error("the request was cancelled")]
    Cancelled,
    /// The file has fewer audio tracks than the playback asked for.
    #[error("the file has {tracks} audio track(s): audio_track {requested} does not exist")]
    NoSuchAudioTrack { tracks: u32, requested: u8 },
    /// The playback ended (its player closed or its session ended).
    #[error("this playback has ended; start a new one")]
    Ended,
}

/// Settings of the manager, from `[transcode]` in the configuration.
#[derive(Debug, Clone)]
pub struct TranscodeSettings {
    /// Most pipelines running at once.
    pub max_concurrent: usize,
    /// A pipeline with no request for this long is stopped.
    pub idle_stop: Duration,
    /// A transcoder (with its cached segments) unused for this long is dropped.
    pub forget_after: Duration,
    /// The H.264 encoder.
    pub encoder: VideoEncoder,
}

/// Counters for the API and the tests.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscodeStatus {
    /// The encoder chosen at start.
    pub encoder: VideoEncoder,
    /// Most pipelines running at once.
    pub limit: usize,
    /// Pipelines running now.
    pub running: usize,
    /// Requests waiting for a slot now.
    pub queued: usize,
    /// Most pipelines ever running at once since start.
    pub peak: usize,
    /// Pipelines started since start.
    pub started_total: u64,
}

/// Identifies one transcoder: a playback session and a rendition.
pub type TranscodeKey = (String, Rendition);

/// Runs the transcoders of every playback session.
#[derive(Clone)]
pub struct TranscodeManager {
    inner: Arc<Inner>,
}

struct Inner {
    settings: TranscodeSettings,
    slots: Mutex<Slots>,
    slot_freed: Condvar,
    transcoders: Mutex<HashMap<TranscodeKey, Arc<Transcoder>>>,
    started_total: AtomicU64,
}

#[derive(Default)]
struct Slots {
    running: usize,
    peak: usize,
    queue: VecDeque<u64>,
    next_ticket: u64,
}

/// How long a request lets other waiting requests keep the pipeline before
/// it may restart it for itself.
const PATIENCE: Duration = Duration::from_secs(10);

/// How often the reaper looks for idle pipelines.
const REAP_EVERY: Duration = Duration::from_millis(500);

impl TranscodeManager {
    /// Creates the manager and starts its reaper thread, which ends when the
    /// last clone of the manager is dropped.
    pub fn new(settings: TranscodeSettings) -> Self {
        let inner = Arc::new(Inner {
            settings,
            slots: Mutex::new(Slots::default()),
            slot_freed: Condvar::new(),
            transcoders: Mutex::new(HashMap::new()),
            started_total: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&inner);
        let spawned = std::thread::Builder::new().name("hearth-transcode-reaper".into()).spawn(move || reap(&weak));
        if let Err(error) = spawned {
            tracing::error!(%error, "could not start the transcode reaper; idle pipelines will run to the end");
        }
        TranscodeManager { inner }
    }

    /// Returns the current counters.
    pub fn status(&self) -> TranscodeStatus {
        let slots = self.inner.lock_slots();
        TranscodeStatus {
            encoder: self.inner.settings.encoder,
            limit: self.inner.settings.max_concurrent,
            running: slots.running,
            queued: slots.queue.len(),
            peak: slots.peak,
            started_total: self.inner.started_total.load(Ordering::Relaxed),
        }
    }

    /// Returns the init segment of `key`. Blocks until it exists, `deadline`
    /// passes or `cancel` is set.
    pub fn init_segment(&self, key: &TranscodeKey, job: &Job, deadline: Instant, cancel: &AtomicBool) -> Result<Arc<Vec<u8>>, TranscodeError> {
        self.fetch(key, job, None, deadline, cancel)
    }

    /// Returns media segment `n` of `key`, with the same waiting rules.
    pub fn media_segment(
        &self,
        key: &TranscodeKey,
        job: &Job,
        n: u32,
        deadline: Instant,
        cancel: &AtomicBool,
    ) -> Result<Arc<Vec<u8>>, TranscodeError> {
        let count = job.grid.count(job.duration_ms);
        if n >= count {
            return Err(TranscodeError::NoSuchSegment { requested: n, last: count - 1 });
        }
        self.fetch(key, job, Some(n), deadline, cancel)
    }

    /// Returns the renditions with a running pipeline, by playback session.
    pub fn running(&self) -> Vec<TranscodeKey> {
        let transcoders: Vec<(TranscodeKey, Arc<Transcoder>)> =
            self.inner.lock_transcoders().iter().map(|(key, transcoder)| (key.clone(), Arc::clone(transcoder))).collect();
        transcoders.into_iter().filter(|(_, transcoder)| transcoder.lock().running.is_some()).map(|(key, _)| key).collect()
    }

    /// Stops and drops every transcoder of playback session `session`.
    pub fn end_session(&self, session: &str) {
        let ended: Vec<Arc<Transcoder>> = {
            let mut transcoders = self.inner.lock_transcoders();
            let keys: Vec<TranscodeKey> = transcoders.keys().filter(|(id, _)| id == session).cloned().collect();
            keys.iter().filter_map(|key| transcoders.remove(key)).collect()
        };
        for transcoder in ended {
            if transcoder.end() {
                self.inner.release_slot();
            }
        }
    }

    fn stop_idle_siblings(&self, key: &TranscodeKey) {
        let siblings: Vec<Arc<Transcoder>> = self
            .inner
            .lock_transcoders()
            .iter()
            .filter(|((session, rendition), _)| *session == key.0 && *rendition != key.1)
            .map(|(_, transcoder)| Arc::clone(transcoder))
            .collect();
        for sibling in siblings {
            if sibling.lock().waiters == 0 && sibling.stop() {
                self.inner.release_slot();
            }
        }
    }

    fn fetch(&self, key: &TranscodeKey, job: &Job, n: Option<u32>, deadline: Instant, cancel: &AtomicBool) -> Result<Arc<Vec<u8>>, TranscodeError> {
        let transcoder = {
            let mut transcoders = self.inner.lock_transcoders();
            Arc::clone(transcoders.entry(key.clone()).or_insert_with(|| Arc::new(Transcoder::new(job.clone()))))
        };
        let mut state = transcoder.lock();
        state.waiters += 1;
        transcoder.requested(&mut state, n);
        let arrived = Instant::now();
        let result = loop {
            if Transcoder::give_up(cancel, deadline) {
                break Err(if cancel.load(Ordering::Relaxed) { TranscodeError::Cancelled } else { TranscodeError::Timeout });
            }
            match transcoder.step(&mut state, n, arrived.elapsed() >= PATIENCE) {
                Err(error) => break Err(error),
                Ok(Step::Done(bytes)) => break Ok(bytes),
                Ok(Step::Wait) => state = transcoder.wait(state),
                Ok(Step::Start { at, needs_slot }) => {
                    state.starting = true;
                    drop(state);
                    // A client plays one rendition at a time: a switch frees
                    // the slot of the one it left.
                    self.stop_idle_siblings(key);
                    if needs_slot && let Err(error) = self.inner.acquire_slot(deadline, cancel) {
                        state = transcoder.lock();
                        state.starting = false;
                        break Err(error);
                    }
                    self.inner.started_total.fetch_add(1, Ordering::Relaxed);
                    let started = transcoder.start(at, needs_slot);
                    if started.is_err() && transcoder.stop() {
                        self.inner.release_slot();
                    }
                    state = transcoder.lock();
                    state.starting = false;
                    if let Err(error) = started {
                        break Err(error);
                    }
                }
            }
        };
        state.waiters -= 1;
        state.last_request = Instant::now();
        if result == Err(TranscodeError::Cancelled) {
            state.abandoned_at = Some(Instant::now());
        }
        result
    }
}

impl Inner {
    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_transcoders(&self) -> std::sync::MutexGuard<'_, HashMap<TranscodeKey, Arc<Transcoder>>> {
        self.transcoders.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a free slot, first come first served.
    fn acquire_slot(&self, deadline: Instant, cancel: &AtomicBool) -> Result<(), TranscodeError> {
        let mut slots = self.lock_slots();
        let ticket = slots.next_ticket;
        slots.next_ticket += 1;
        slots.queue.push_back(ticket);
        loop {
            if slots.queue.front() == Some(&ticket) && slots.running < self.settings.max_concurrent {
                slots.queue.pop_front();
                slots.running += 1;
                slots.peak = slots.peak.max(slots.running);
                self.slot_freed.notify_all();
                return Ok(());
            }
            if Transcoder::give_up(cancel, deadline) {
                slots.queue.retain(|queued| *queued != ticket);
                self.slot_freed.notify_all();
                if cancel.load(Ordering::Relaxed) {
                    return Err(TranscodeError::Cancelled);
                }
                return Err(TranscodeError::Busy { limit: self.settings.max_concurrent, queued: slots.queue.len() });
            }
            slots = self
                .slot_freed
                .wait_timeout(slots, Duration::from_millis(50))
                .map(|(slots, _)| slots)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    fn release_slot(&self) {
        let mut slots = self.lock_slots();
        slots.running = slots.running.saturating_sub(1);
        self.slot_freed.notify_all();
    }
}

/// Stops idle or finished pipelines and drops long-unused transcoders.
fn reap(inner: &Weak<Inner>) {
    loop {
        std::thread::sleep(REAP_EVERY);
        let Some(inner) = inner.upgrade() else { return };
        let transcoders: Vec<(TranscodeKey, Arc<Transcoder>)> =
            inner.lock_transcoders().iter().map(|(key, transcoder)| (key.clone(), Arc::clone(transcoder))).collect();
        for (key, transcoder) in transcoders {
            if transcoder.stoppable(inner.settings.idle_stop) {
                tracing::debug!(session = key.0, rendition = key.1.as_str(), "stopping an idle or finished transcode");
                if transcoder.stop() {
                    inner.release_slot();
                }
            } else if transcoder.forgettable(inner.settings.forget_after) {
                inner.lock_transcoders().remove(&key);
            }
        }
    }
}
