//! Cuts encoded frames into HLS segments, without GStreamer: frames come in
//! with their stream time, finished segments go out as fMP4 bytes.
//!
//! Segment `k` covers stream time from [`super::plan::segment_start_ms`] of
//! `k` to that of `k + 1`. It is finished once every
//! track has passed its end (or ended), so a segment never misses a frame
//! that arrives late on the other track.

use std::collections::BTreeMap;

use super::fmp4::{self, AUDIO_TRACK_ID, Sample, TrackConfig, TrackRun, VIDEO_TIMESCALE, VIDEO_TRACK_ID};
use super::plan::segment_of_ns;

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
    /// Samples of unfinished segments: segment → (decode time, sample).
    pending: BTreeMap<u32, Vec<(u64, Sample)>>,
    /// The latest video frame, kept back until the next one gives its duration.
    undated: Option<(u32, u64, Sample)>,
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
    start: u32,
    next: u32,
    video: Option<Track>,
    audio: Option<Track>,
    init_sent: bool,
}

/// Duration of one AAC-LC frame in samples.
const AAC_FRAME: u32 = 1024;

impl Segmenter {
    pub(crate) fn new(start: u32, video: bool, audio: bool) -> Self {
        Segmenter {
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
        segment_of_ns(time_ns).max(self.start)
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
        let segment = self.segment_of(frame.time_ns);
        let Some(track) = self.track_mut(frame.kind) else { return (segment, Output::default()) };
        if track.config.is_none() {
            track.config = track_config(&frame);
        }
        match frame.kind {
            Kind::Video => {
                let time = scale(frame.time_ns, VIDEO_TIMESCALE);
                let sample = Sample { duration: 0, sync: frame.sync, data: frame.data };
                if let Some((undated_segment, undated_time, mut undated)) = track.undated.take() {
                    undated.duration = u32::try_from(time.saturating_sub(undated_time)).unwrap_or(u32::MAX).max(1);
                    track.pending.entry(undated_segment).or_default().push((undated_time, undated));
                }
                // The kept-back frame's default duration, should the stream end after it.
                let mut sample = sample;
                sample.duration = frame.duration_ns.map_or(3000, |d| u32::try_from(scale(d, VIDEO_TIMESCALE)).unwrap_or(3000)).max(1);
                track.undated = Some((segment, time, sample));
            }
            Kind::Audio => {
                let rate = match &track.config {
                    Some(TrackConfig::Audio { sample_rate, .. }) => *sample_rate,
                    _ => 48_000,
                };
                let time = *track.next_audio_time.get_or_insert_with(|| scale(frame.time_ns, rate));
                track.next_audio_time = Some(time + u64::from(AAC_FRAME));
                let sample = Sample { duration: AAC_FRAME, sync: true, data: frame.data };
                track.pending.entry(segment).or_default().push((time, sample));
            }
        }
        track.reached = Some(track.reached.map_or(segment, |reached| reached.max(segment)));
        (segment, self.collect())
    }

    /// Marks `kind` as ended and returns whatever that finished.
    pub(crate) fn end(&mut self, kind: Kind) -> Output {
        if let Some(track) = self.track_mut(kind) {
            if let Some((segment, time, sample)) = track.undated.take() {
                track.pending.entry(segment).or_default().push((time, sample));
            }
            track.ended = true;
        }
        self.collect()
    }

    /// Returns whether every track has ended and every segment has gone out.
    pub(crate) fn finished(&self) -> bool {
        [&self.video, &self.audio]
            .into_iter()
            .flatten()
            .all(|track| track.ended && track.pending.is_empty() && track.undated.is_none())
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
            for (track, id) in [(&mut self.video, VIDEO_TRACK_ID), (&mut self.audio, AUDIO_TRACK_ID)] {
                let Some(track) = track else { continue };
                let samples = track.pending.remove(&next).unwrap_or_default();
                if let Some((first_time, _)) = samples.first() {
                    runs.push(TrackRun {
                        track_id: id,
                        base_decode_time: *first_time,
                        samples: samples.into_iter().map(|(_, sample)| sample).collect(),
                    });
                }
            }
            if !runs.is_empty() {
                output.segments.push((next, fmp4::media_segment(next + 1, &runs)));
            }
            self.next += 1;
        }
        output
    }
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
        let mut segmenter = Segmenter::new(0, true, true);
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
        let mut segmenter = Segmenter::new(10, true, false);
        // A seek can deliver a frame from just before the boundary.
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

    #[test]
    fn audio_decode_times_count_frames() {
        let mut segmenter = Segmenter::new(0, false, true);
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
