//! Cuts encoded frames into HLS segments, without GStreamer: frames come in
//! with their stream time, finished segments go out as fMP4 bytes.
//!
//! Segment `k` covers stream time from the grid's start of `k` to that of
//! `k + 1` ([`SegmentGrid`]). A video segment begins at a key frame: a frame
//! that is not one stays in the segment of the key frame before it. A
//! segment is finished once every track has passed its end (or ended), so a
//! segment never misses a frame that arrives late on the other track.
//!
//! Video frames arrive in decode order with presentation times only (a
//! Matroska or AVI source has no decode times). The decode times of a
//! segment's frames are its presentation times sorted, so they rise with
//! every frame. Each frame's composition offset is its presentation time
//! minus that decode time, negative for a frame shown before its slot.

use std::collections::BTreeMap;

use super::fmp4::{self, AUDIO_TRACK_ID, Sample, TrackConfig, TrackRun, VIDEO_TIMESCALE, VIDEO_TRACK_ID};
use super::plan::{SegmentFormat, SegmentGrid};

/// Track of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Video,
    Audio,
}

/// One encoded frame as the appsink delivers it.
#[derive(Debug, Clone)]
pub(crate) struct Timed {
    pub(crate) kind: Kind,
    pub(crate) time_ns: u64,
    pub(crate) duration_ns: Option<u64>,
    pub(crate) sync: bool,
    pub(crate) data: Vec<u8>,
    pub(crate) codec_data: Option<Vec<u8>>,
    pub(crate) width: Option<u32>,
    pub(crate) height: Option<u32>,
    pub(crate) rate: Option<u32>,
    pub(crate) channels: Option<u32>,
}

/// Samples of one track on their way into segments.
#[derive(Debug, Default)]
struct Track {
    /// Samples of unfinished segments: segment → (time, sample). Audio
    /// times are decode times; video times are presentation times, and a
    /// video sample's duration is its own, for the last frame of the stream.
    pending: BTreeMap<u32, Vec<(u64, Sample)>>,
    /// Segment of the latest video key frame.
    current: Option<u32>,
    /// Decode time of the next audio frame, counted in samples.
    next_audio_time: Option<u64>,
    /// Highest segment this track has reached.
    reached: Option<u32>,
    ended: bool,
    config: Option<TrackConfig>,
}

/// Output of [`Segmenter::push`] and [`Segmenter::end`].
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// The init segment, once every track's codec setup is known.
    pub(crate) init: Option<Vec<u8>>,
    /// Finished media segments: (index, bytes).
    pub(crate) segments: Vec<(u32, Vec<u8>)>,
}

/// The segmenter of one pipeline run, which starts at segment `start`.
#[derive(Debug)]
pub(crate) struct Segmenter {
    grid: SegmentGrid,
    format: SegmentFormat,
    start: u32,
    next: u32,
    video: Option<Track>,
    audio: Option<Track>,
    init_sent: bool,
}

/// Duration of one AAC-LC frame in samples.
const AAC_FRAME: u32 = 1024;

impl Segmenter {
    pub(crate) fn new(grid: SegmentGrid, format: SegmentFormat, start: u32, video: bool, audio: bool) -> Self {
        Segmenter {
            grid,
            format,
            start,
            next: start,
            video: video.then(Track::default),
            audio: audio.then(Track::default),
            init_sent: false,
        }
    }

    /// Segment index of a frame at `time_ns`; frames before the start (a
    /// seek keeps one that began just before it) count as the first segment.
    fn segment_of(&self, time_ns: u64) -> u32 {
        self.grid.segment_of_ns(time_ns).max(self.start)
    }

    /// Returns the highest segment a track has reached; `None` before its first frame.
    pub(crate) fn reached(&self, kind: Kind) -> Option<u32> {
        self.track(kind).and_then(|track| if track.ended { Some(u32::MAX) } else { track.reached })
    }

    /// Returns the lowest segment not yet finished.
    pub(crate) fn next_unfinished(&self) -> u32 {
        self.next
    }

    /// Returns whether `kind` is a track of this output at all.
    pub(crate) fn has(&self, kind: Kind) -> bool {
        self.track(kind).is_some()
    }

    fn track(&self, kind: Kind) -> Option<&Track> {
        match kind {
            Kind::Video => self.video.as_ref(),
            Kind::Audio => self.audio.as_ref(),
        }
    }

    fn track_mut(&mut self, kind: Kind) -> Option<&mut Track> {
        match kind {
            Kind::Video => self.video.as_mut(),
            Kind::Audio => self.audio.as_mut(),
        }
    }

    /// Adds one frame and returns whatever it finished. Returns the frame's
    /// segment index too, for the caller's back-pressure.
    pub(crate) fn push(&mut self, frame: Timed) -> (u32, Output) {
        // A run that starts at a seek begins a little early: frames before
        // its first segment belong to segments made by another run.
        if self.start > 0 && frame.time_ns + 1_000_000 < self.grid.start_ns(self.start) {
            return (self.start, Output::default());
        }
        // 1 ms of slack: a key frame forced at a boundary, or found there by
        // the key frame index, may carry a time rounded just below it.
        let by_time = self.segment_of(frame.time_ns);
        let by_key_frame = self.segment_of(frame.time_ns + 1_000_000);
        let Some(track) = self.track_mut(frame.kind) else { return (by_time, Output::default()) };
        if track.config.is_none() {
            track.config = track_config(&frame);
        }
        let segment = match frame.kind {
            Kind::Video => {
                let segment = match track.current {
                    Some(current) if !frame.sync => current,
                    Some(current) => by_key_frame.max(current),
                    None => by_key_frame,
                };
                track.current = Some(segment);
                let time = scale(frame.time_ns, VIDEO_TIMESCALE);
                let duration = frame.duration_ns.map_or(3000, |d| u32::try_from(scale(d, VIDEO_TIMESCALE)).unwrap_or(3000)).max(1);
                let sample = Sample { duration, sync: frame.sync, composition_offset: 0, data: frame.data };
                track.pending.entry(segment).or_default().push((time, sample));
                segment
            }
            Kind::Audio => {
                let rate = match &track.config {
                    Some(TrackConfig::Audio { sample_rate, .. }) => *sample_rate,
                    _ => 48_000,
                };
                let time = *track.next_audio_time.get_or_insert_with(|| scale(frame.time_ns, rate));
                track.next_audio_time = Some(time + u64::from(AAC_FRAME));
                let sample = Sample { duration: AAC_FRAME, sync: true, composition_offset: 0, data: frame.data };
                track.pending.entry(by_time).or_default().push((time, sample));
                by_time
            }
        };
        track.reached = Some(track.reached.map_or(segment, |reached| reached.max(segment)));
        (segment, self.collect())
    }

    /// Marks `kind` as ended and returns whatever that finished.
    pub(crate) fn end(&mut self, kind: Kind) -> Output {
        if let Some(track) = self.track_mut(kind) {
            track.ended = true;
        }
        self.collect()
    }

    /// Returns whether every track has ended and every segment has gone out.
    pub(crate) fn finished(&self) -> bool {
        [&self.video, &self.audio]
            .into_iter()
            .flatten()
            .all(|track| track.ended && track.pending.is_empty())
    }

    fn collect(&mut self) -> Output {
        let mut output = Output::default();
        fn tracks<'a>(video: &'a Option<Track>, audio: &'a Option<Track>) -> impl Iterator<Item = &'a Track> {
            [video, audio].into_iter().flatten()
        }
        if !self.init_sent && tracks(&self.video, &self.audio).all(|track| track.config.is_some()) {
            let configs: Vec<TrackConfig> = tracks(&self.video, &self.audio).filter_map(|track| track.config.clone()).collect();
            output.init = Some(fmp4::init_segment(&configs));
            self.init_sent = true;
        }
        if !self.init_sent {
            return output;
        }
        loop {
            let next = self.next;
            let done = tracks(&self.video, &self.audio).all(|track| track.ended || track.reached.is_some_and(|reached| reached > next));
            let anything_left = tracks(&self.video, &self.audio).any(|track| !track.pending.is_empty());
            if !done || !anything_left {
                break;
            }
            let mut runs = Vec::new();
            if let Some(track) = &mut self.video {
                let samples = track.pending.remove(&next).unwrap_or_default();
                // The next segment's first presentation time ends this one.
                let end = track.pending.get(&(next + 1)).and_then(|later| later.iter().map(|(time, _)| *time).min());
                if let Some(run) = video_run(samples, end) {
                    runs.push(run);
                }
            }
            if let Some(track) = &mut self.audio {
                let samples = track.pending.remove(&next).unwrap_or_default();
                if let Some((first_time, _)) = samples.first() {
                    runs.push(TrackRun {
                        track_id: AUDIO_TRACK_ID,
                        base_decode_time: *first_time,
                        samples: samples.into_iter().map(|(_, sample)| sample).collect(),
                    });
                }
            }
            if !runs.is_empty() {
                let bytes = match self.format {
                    SegmentFormat::Fmp4 => Some(fmp4::media_segment(next + 1, &runs)),
                    SegmentFormat::Ts => {
                        let configs: Vec<TrackConfig> = tracks(&self.video, &self.audio).filter_map(|track| track.config.clone()).collect();
                        super::ts::segment(&runs, &configs)
                    }
                };
                match bytes {
                    Some(bytes) => output.segments.push((next, bytes)),
                    None => tracing::warn!(segment = next, "the codec set-up does not fit a transport stream; segment left out"),
                }
            }
            self.next += 1;
        }
        output
    }
}

/// Builds the video run of one segment from its frames in decode order with
/// their presentation times. `end` is the presentation time that follows
/// the segment, when known.
fn video_run(samples: Vec<(u64, Sample)>, end: Option<u64>) -> Option<TrackRun> {
    let mut decode_times: Vec<u64> = samples.iter().map(|(time, _)| *time).collect();
    decode_times.sort_unstable();
    let base_decode_time = *decode_times.first()?;
    let last = decode_times.len() - 1;
    let samples = samples
        .into_iter()
        .enumerate()
        .map(|(index, (presentation, mut sample))| {
            let decode = decode_times[index];
            let next = if index < last { Some(decode_times[index + 1]) } else { end };
            if let Some(next) = next {
                sample.duration = u32::try_from(next.saturating_sub(decode)).unwrap_or(u32::MAX).max(1);
            }
            sample.composition_offset = i32::try_from(i128::from(presentation) - i128::from(decode)).unwrap_or(0);
            sample
        })
        .collect();
    Some(TrackRun { track_id: VIDEO_TRACK_ID, base_decode_time, samples })
}

/// Converts nanoseconds to ticks of `timescale`, rounding to nearest.
fn scale(ns: u64, timescale: u32) -> u64 {
    ((u128::from(ns) * u128::from(timescale) + 500_000_000) / 1_000_000_000) as u64
}

fn track_config(frame: &Timed) -> Option<TrackConfig> {
    let codec_data = frame.codec_data.clone()?;
    match frame.kind {
        Kind::Video => Some(TrackConfig::Video { width: frame.width?, height: frame.height?, avcc: codec_data }),
        Kind::Audio => Some(TrackConfig::Audio {
            sample_rate: frame.rate?,
            channels: u16::try_from(frame.channels?).ok()?,
            audio_specific_config: codec_data,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: Kind, time_ms: u64, sync: bool) -> Timed {
        let (codec_data, width, height, rate, channels) = match kind {
            Kind::Video => (vec![1, 0x4d, 0x40, 0x1f], Some(640), Some(360), None, None),
            Kind::Audio => (vec![0x11, 0x90], None, None, Some(48_000), Some(2)),
        };
        Timed {
            kind,
            time_ns: time_ms * 1_000_000,
            duration_ns: None,
            sync,
            data: vec![0; 4],
            codec_data: Some(codec_data),
            width,
            height,
            rate,
            channels,
        }
    }

    #[test]
    fn segment_waits_for_both_tracks() {
        let mut segmenter = Segmenter::new(SegmentGrid::Fixed, SegmentFormat::Fmp4, 0, true, true);
        let (_, out) = segmenter.push(frame(Kind::Video, 0, true));
        assert!(out.init.is_none(), "no init before the audio setup is known");
        let (_, out) = segmenter.push(frame(Kind::Audio, 0, true));
        assert!(out.init.is_some());
        let (segment, out) = segmenter.push(frame(Kind::Video, 4000, true));
        assert_eq!(segment, 1);
        assert!(out.segments.is_empty(), "audio has not passed 4 s yet");
        let (_, out) = segmenter.push(frame(Kind::Audio, 4010, true));
        assert_eq!(out.segments.iter().map(|(index, _)| *index).collect::<Vec<_>>(), [0]);
        let mut out = segmenter.end(Kind::Video);
        out.segments.extend(segmenter.end(Kind::Audio).segments);
        assert_eq!(out.segments.iter().map(|(index, _)| *index).collect::<Vec<_>>(), [1]);
        assert!(segmenter.finished());
    }

    #[test]
    fn restart_numbers_from_start_segment() {
        let mut segmenter = Segmenter::new(SegmentGrid::Fixed, SegmentFormat::Fmp4, 10, true, false);
        // The run seeks a second early; frames before segment 10 (38 s) are dropped.
        segmenter.push(frame(Kind::Video, 37_000, true));
        segmenter.push(frame(Kind::Video, 37_960, false));
        let (segment, _) = segmenter.push(frame(Kind::Video, 39_990, true));
        assert_eq!(segment, 10);
        segmenter.push(frame(Kind::Video, 40_033, false));
        let (_, out) = segmenter.push(frame(Kind::Video, 44_000, true));
        let (index, bytes) = &out.segments[0];
        assert_eq!(*index, 10);
        // tfdt carries the first frame's time at 90 kHz: 39.99 s.
        let at = bytes.windows(4).position(|window| window == b"tfdt").unwrap();
        let decode_time = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        assert_eq!(decode_time, 3_599_100);
    }

    /// Reads every (duration, flags, composition offset) of the first
    /// version 1 trun in `segment`, and the tfdt before it.
    fn video_samples(segment: &[u8]) -> (u64, Vec<(u32, i32)>) {
        let tfdt = segment.windows(4).position(|window| window == b"tfdt").unwrap();
        let decode_time = u64::from_be_bytes(segment[tfdt + 8..tfdt + 16].try_into().unwrap());
        let at = segment.windows(4).position(|window| window == b"trun").unwrap();
        assert_eq!(segment[at + 4], 1, "version 1");
        let count = u32::from_be_bytes(segment[at + 8..at + 12].try_into().unwrap()) as usize;
        let samples = (0..count)
            .map(|i| {
                let entry = at + 16 + i * 16;
                let duration = u32::from_be_bytes(segment[entry..entry + 4].try_into().unwrap());
                let offset = i32::from_be_bytes(segment[entry + 12..entry + 16].try_into().unwrap());
                (duration, offset)
            })
            .collect();
        (decode_time, samples)
    }

    #[test]
    fn b_frames_get_decode_times_and_offsets() {
        let grid = SegmentGrid::from_keyframes(&[0, 2_000_000_000], 4_000);
        let mut segmenter = Segmenter::new(grid, SegmentFormat::Fmp4, 0, true, false);
        // Decode order I P B B at 40 ms a frame: presentation 0, 120, 40, 80 ms.
        for (time, sync) in [(0, true), (120, false), (40, false), (80, false), (160, false)] {
            segmenter.push(frame(Kind::Video, time, sync));
        }
        let (segment, out) = segmenter.push(frame(Kind::Video, 2_000, true));
        assert_eq!(segment, 1);
        let (_, bytes) = &out.segments[0];
        let (decode_time, samples) = video_samples(bytes);
        assert_eq!(decode_time, 0);
        // Decode times 0, 40, 80, 120, 160 ms; the last frame lasts until segment 1 at 2000 ms.
        assert_eq!(samples, [(3600, 0), (3600, 7200), (3600, -3600), (3600, -3600), (165_600, 0)]);
        // A frame that is not a key frame never opens a segment, even past a boundary.
        let mut fixed = Segmenter::new(SegmentGrid::Fixed, SegmentFormat::Fmp4, 0, true, false);
        fixed.push(frame(Kind::Video, 0, true));
        assert_eq!(fixed.push(frame(Kind::Video, 2_040, false)).0, 0);
        assert_eq!(fixed.push(frame(Kind::Video, 2_080, true)).0, 1);
    }

    #[test]
    fn audio_decode_times_count_frames() {
        let mut segmenter = Segmenter::new(SegmentGrid::Fixed, SegmentFormat::Fmp4, 0, false, true);
        for index in 0..200u64 {
            // 21.333 ms per frame at 48 kHz; jittery timestamps do not matter.
            segmenter.push(frame(Kind::Audio, index * 21 + index / 3, true));
        }
        let out = segmenter.end(Kind::Audio);
        let (_, last) = out.segments.last().unwrap();
        let at = last.windows(4).position(|window| window == b"tfdt").unwrap();
        let decode_time = u64::from_be_bytes(last[at + 8..at + 16].try_into().unwrap());
        assert_eq!(decode_time % 1024, 0, "decode times advance by whole frames");
    }
}
