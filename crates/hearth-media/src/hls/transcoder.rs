//! One rendition of one playback session: a segment cache and at most one
//! pipeline that fills it.
//!
//! A request for segment `n` is served from the cache, or waits when the
//! running pipeline is about to reach `n`, or else restarts the pipeline at
//! `n` (a seek). The pipeline runs at most [`AHEAD`] segments past the
//! latest request and then blocks, so a paused viewer costs no CPU; the
//! manager's reaper stops it once no request has come for a while.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gstreamer as gst;

use super::TranscodeError;
use super::pipeline::{self, Job, Running};
use super::segmenter::{Kind, Segmenter, Timed};

/// How many segments the pipeline may run ahead of the latest request.
pub(crate) const AHEAD: u32 = 4;
/// A request waits for the running pipeline when `n` is at most this many
/// segments past the next one it will finish. Further ahead, it restarts it.
const NEAR: u32 = 2;
/// Segments kept behind the latest request, for players that re-fetch.
const KEEP_BEHIND: u32 = 3;
/// A pipeline whose last request was cancelled (the client hung up) stops
/// this long after, unless another request comes first, as it does when a
/// player aborts a segment to seek or switch renditions.
const ABANDON_GRACE: Duration = Duration::from_secs(2);
/// Time for which a pipeline failure is returned to every request before one
/// may try the file again.
const FAILURE_MEMORY: Duration = Duration::from_secs(30);
/// How often waiting threads look at their cancel flag and deadline.
const POLL: Duration = Duration::from_millis(50);

pub(crate) struct Transcoder {
    pub(crate) job: Job,
    state: Mutex<State>,
    changed: Condvar,
}

pub(crate) struct State {
    generation: u64,
    pub(crate) running: Option<Running>,
    /// Whether this transcoder has one of the manager's slots.
    pub(crate) holds_slot: bool,
    /// Whether a request is starting a pipeline; others wait for it.
    pub(crate) starting: bool,
    /// Whether the playback ended: no pipeline may start again.
    pub(crate) ended: bool,
    /// The first segment the file does not hold, once a pipeline reached
    /// the end of the file: the catalog's duration can promise more.
    end_segment: Option<u32>,
    latest_request: u32,
    segmenter: Segmenter,
    segments: BTreeMap<u32, Arc<Vec<u8>>>,
    init: Option<Arc<Vec<u8>>>,
    /// The latest pipeline failure and when it happened.
    failure: Option<(TranscodeError, Instant)>,
    pub(crate) waiters: usize,
    pub(crate) last_request: Instant,
    /// When the latest request was cancelled by its client, if it was.
    pub(crate) abandoned_at: Option<Instant>,
}

/// Next action of a request, decided under the lock.
pub(crate) enum Step {
    Done(Arc<Vec<u8>>),
    Wait,
    /// Start a pipeline at this segment; `needs_slot` when none is held.
    Start { at: u32, needs_slot: bool },
}

impl Drop for Transcoder {
    /// A pipeline must reach the Null state before it is freed, and not on
    /// one of its own streaming threads, where the last reference may go.
    fn drop(&mut self) {
        let running = self.state.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).running.take();
        if let Some(running) = running {
            let _ = std::thread::Builder::new().name("hearth-transcode-stop".into()).spawn(move || running.stop());
        }
    }
}

impl Transcoder {
    pub(crate) fn new(job: Job) -> Self {
        let segmenter = Segmenter::new(job.grid.clone(), job.format, 0, job.has_video(), job.audio);
        Transcoder {
            job,
            state: Mutex::new(State {
                generation: 0,
                running: None,
                holds_slot: false,
                starting: false,
                ended: false,
                end_segment: None,
                latest_request: 0,
                segmenter,
                segments: BTreeMap::new(),
                init: None,
                failure: None,
                waiters: 0,
                last_request: Instant::now(),
                abandoned_at: None,
            }),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides the next step for a request of segment `n`, or of the init
    /// segment when `n` is `None`. A request that has waited long enough
    /// (`patient_enough`) may restart a pipeline that another waiting
    /// request needs. Until then it lets the other one finish, so two
    /// requests far apart cannot take turns restarting the pipeline.
    pub(crate) fn step(&self, state: &mut State, n: Option<u32>, patient_enough: bool) -> Result<Step, TranscodeError> {
        if state.ended {
            return Err(TranscodeError::Ended);
        }
        if let Some((failure, at)) = &state.failure {
            // A file that failed may come back (a disk remounted, a file
            // renamed back); after a while a request may try again.
            if at.elapsed() < FAILURE_MEMORY {
                return Err(failure.clone());
            }
            state.failure = None;
        }
        if state.starting {
            return Ok(Step::Wait);
        }
        if let (Some(n), Some(end)) = (n, state.end_segment)
            && n >= end
            && !state.segments.contains_key(&n)
        {
            return Err(TranscodeError::NoSuchSegment { requested: n, last: end.saturating_sub(1) });
        }
        let Some(n) = n else {
            if let Some(init) = &state.init {
                return Ok(Step::Done(Arc::clone(init)));
            }
            if state.running.is_some() {
                return Ok(Step::Wait);
            }
            return Ok(Step::Start { at: state.latest_request, needs_slot: !state.holds_slot });
        };
        if let Some(segment) = state.segments.get(&n) {
            return Ok(Step::Done(Arc::clone(segment)));
        }
        if state.running.is_some() {
            let next = state.segmenter.next_unfinished();
            if n >= next && n <= next + NEAR {
                return Ok(Step::Wait);
            }
            if state.waiters > 1 && !patient_enough {
                return Ok(Step::Wait);
            }
        }
        Ok(Step::Start { at: n, needs_slot: !state.holds_slot })
    }

    /// Records that a request asked for segment `n` (or the init segment).
    pub(crate) fn requested(&self, state: &mut State, n: Option<u32>) {
        state.last_request = Instant::now();
        state.abandoned_at = None;
        if let Some(n) = n {
            // While another request waits, the pipeline may run up to the
            // furthest of them, or it would block short of that one.
            if state.waiters <= 1 || n > state.latest_request {
                state.latest_request = n;
            }
            let low = n.saturating_sub(KEEP_BEHIND);
            let high = n + AHEAD + NEAR;
            state.segments.retain(|index, _| (low..=high).contains(index));
        }
        self.changed.notify_all();
    }

    /// Starts a pipeline at segment `at`, replacing a running one. The
    /// caller has a slot for it: a fresh one when `fresh_slot`. On an
    /// error the slot stays recorded here, for [`Transcoder::stop`] to free.
    pub(crate) fn start(self: &Arc<Self>, at: u32, fresh_slot: bool) -> Result<(), TranscodeError> {
        let (generation, old) = {
            let mut state = self.lock();
            if fresh_slot {
                state.holds_slot = true;
            }
            if state.ended {
                return Err(TranscodeError::Ended);
            }
            state.generation += 1;
            state.segmenter = Segmenter::new(self.job.grid.clone(), self.job.format, at, self.job.has_video(), self.job.audio);
            state.holds_slot = true;
            self.changed.notify_all();
            (state.generation, state.running.take())
        };
        if let Some(old) = old {
            old.stop();
        }
        let running = pipeline::start(&self.job, at, Arc::downgrade(self), generation);
        let mut state = self.lock();
        match running {
            Ok(running) if state.generation == generation => {
                state.running = Some(running);
                self.changed.notify_all();
                Ok(())
            }
            Ok(running) => {
                drop(state);
                running.stop();
                Ok(())
            }
            Err(message) => {
                // A pad callback may have recorded a more precise reason.
                let error = state.failure.as_ref().map_or(TranscodeError::Failed(message), |(failure, _)| failure.clone());
                if state.generation == generation && state.failure.is_none() {
                    state.failure = Some((error.clone(), Instant::now()));
                }
                Err(error)
            }
        }
    }

    /// Stops the pipeline for good: the playback ended. Returns whether a
    /// slot was freed.
    pub(crate) fn end(&self) -> bool {
        self.lock().ended = true;
        self.stop()
    }

    /// Stops the pipeline, if any; returns whether a slot was freed.
    pub(crate) fn stop(&self) -> bool {
        let (running, freed) = {
            let mut state = self.lock();
            state.generation += 1;
            let freed = std::mem::take(&mut state.holds_slot);
            self.changed.notify_all();
            (state.running.take(), freed)
        };
        if let Some(running) = running {
            running.stop();
        }
        freed
    }

    /// Whether the pipeline should be stopped: it is idle or done.
    pub(crate) fn stoppable(&self, idle: Duration) -> bool {
        let state = self.lock();
        let abandoned = state.abandoned_at.is_some_and(|at| at.elapsed() >= ABANDON_GRACE);
        state.holds_slot
            && state.waiters == 0
            && (abandoned || state.last_request.elapsed() >= idle || (state.running.is_some() && state.segmenter.finished()))
    }

    /// Returns whether the transcoder has been unused for `forget` and can be dropped.
    pub(crate) fn forgettable(&self, forget: Duration) -> bool {
        let state = self.lock();
        !state.holds_slot && state.waiters == 0 && state.last_request.elapsed() >= forget
    }

    /// Waits up to [`POLL`] for a change.
    pub(crate) fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait_timeout(state, POLL).map(|(state, _)| state).unwrap_or_else(|poisoned| poisoned.into_inner().0)
    }

    /// Records a pipeline error: later requests get `message`.
    pub(crate) fn fail(&self, generation: u64, message: String) {
        self.fail_with(generation, TranscodeError::Failed(message));
    }

    /// Records a pipeline error: later requests get `error`.
    pub(crate) fn fail_with(&self, generation: u64, error: TranscodeError) {
        let mut state = self.lock();
        if state.generation == generation && state.failure.is_none() {
            state.failure = Some((error, Instant::now()));
            self.changed.notify_all();
        }
    }

    /// Returns whether pipeline run `generation` has failed.
    pub(crate) fn has_failed(&self, generation: u64) -> bool {
        let state = self.lock();
        state.generation == generation && state.failure.is_some()
    }

    /// Called on a streaming thread with each encoded frame. Blocks while the
    /// pipeline is far enough ahead of the latest request.
    pub(crate) fn push(&self, generation: u64, frame: Timed) -> Result<gst::FlowSuccess, gst::FlowError> {
        let kind = frame.kind;
        let mut state = self.lock();
        if state.generation != generation {
            return Err(gst::FlowError::Flushing);
        }
        let (segment, output) = state.segmenter.push(frame);
        self.store(&mut state, output);
        loop {
            if state.generation != generation {
                return Err(gst::FlowError::Flushing);
            }
            // Block only once the other track has come as far, so a demuxer
            // that interleaves both tracks keeps feeding the other branch.
            let other = match kind {
                Kind::Video => Kind::Audio,
                Kind::Audio => Kind::Video,
            };
            let other_caught_up = !state.segmenter.has(other) || state.segmenter.reached(other).is_some_and(|reached| reached >= segment);
            if segment <= state.latest_request + AHEAD || !other_caught_up {
                return Ok(gst::FlowSuccess::Ok);
            }
            state = self.wait(state);
        }
    }

    /// Called when one track's appsink reaches the end of the file.
    pub(crate) fn end_of_stream(&self, generation: u64, kind: Kind) {
        let mut state = self.lock();
        if state.generation == generation {
            let output = state.segmenter.end(kind);
            self.store(&mut state, output);
        }
    }

    fn store(&self, state: &mut State, output: super::segmenter::Output) {
        if let Some(init) = output.init
            && state.init.is_none()
        {
            state.init = Some(Arc::new(init));
        }
        for (index, bytes) in output.segments {
            state.segments.insert(index, Arc::new(bytes));
        }
        if state.segmenter.finished() {
            let end = state.segmenter.next_unfinished();
            state.end_segment = Some(state.end_segment.map_or(end, |known| known.min(end)));
        }
        self.changed.notify_all();
    }

    /// Returns whether `cancel` is set or `deadline` has passed.
    pub(crate) fn give_up(cancel: &AtomicBool, deadline: Instant) -> bool {
        cancel.load(Ordering::Relaxed) || Instant::now() >= deadline
    }
}
