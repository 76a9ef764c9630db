//! The key frame index of a source's H.264 stream, which a remux needs
//! before it can list its segments: a copied stream can only be cut at the
//! source's own key frames.
//!
//! [`scan`] reads the whole file through `parsebin`, which demuxes and
//! parses without decoding, and notes the stream time of every key frame.
//! On a local disk that reads a few hundred megabytes a second; the server
//! runs it once per file and keeps the result.

use std::path::Path;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::{Deserialize, Serialize};

/// Key frames and codec set-up of one file's first H.264 stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyframeIndex {
    /// Stream time of each key frame, in nanoseconds, rising.
    pub keyframes_ns: Vec<u64>,
    /// Profile, constraint flags and level from the stream's
    /// AVCDecoderConfigurationRecord, for the playlist's `CODECS`.
    pub avc_profile: [u8; 3],
    /// Frame size of the stream.
    pub width: u32,
    /// Frame size of the stream.
    pub height: u32,
    /// Bytes of video in the file, for the playlist's `BANDWIDTH`.
    pub video_bytes: u64,
    /// Size of the file when it was indexed, so a changed file is indexed again.
    #[serde(default)]
    pub file_size: u64,
    /// Modification time of the file when it was indexed, in nanoseconds
    /// since the Unix epoch.
    #[serde(default)]
    pub modified_ns: u64,
}

/// Returns the size and modification time (nanoseconds since the Unix
/// epoch) of `path`, which an index must match to be used.
pub fn file_stamp(path: &Path) -> Option<(u64, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    let modified = metadata.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((metadata.len(), u64::try_from(modified.as_nanos()).unwrap_or(u64::MAX)))
}

impl KeyframeIndex {
    /// Returns whether the index fits an item `duration_ms` long and the file
    /// `stamp` ([`file_stamp`]) as it is now. A changed file, or an index file
    /// that was damaged or written by hand, is indexed again.
    pub fn is_current(&self, duration_ms: u64, stamp: Option<(u64, u64)>) -> bool {
        let limit_ns = duration_ms.saturating_add(60_000).saturating_mul(1_000_000);
        let sorted = self.keyframes_ns.windows(2).all(|pair| pair[0] < pair[1]);
        let plausible = !self.keyframes_ns.is_empty()
            && sorted
            && self.keyframes_ns.iter().all(|time| *time <= limit_ns)
            && self.keyframes_ns.len() as u64 <= duration_ms.max(1);
        plausible && stamp == Some((self.file_size, self.modified_ns))
    }

    /// Returns the `CODECS` entry of the stream, such as `avc1.640028`.
    pub fn codecs(&self) -> String {
        let [profile, constraints, level] = self.avc_profile;
        format!("avc1.{profile:02x}{constraints:02x}{level:02x}")
    }
}

/// Scans `path` for the key frames of its first H.264 stream, giving up
/// after `limit`. Fails with a message naming the file when it has no
/// H.264 stream, GStreamer cannot read it, or the time runs out.
pub fn scan(path: &Path, limit: Duration) -> Result<KeyframeIndex, String> {
    // Stamped before reading, so a file that changes during the scan is
    // indexed again on its next use.
    let (file_size, modified_ns) = file_stamp(path).unwrap_or((0, 0));
    let index = with_parsebin(path, "hearth-keyframes", |name, pipeline, parsebin| run(name, pipeline, parsebin, limit))?;
    Ok(KeyframeIndex { file_size, modified_ns, ..index })
}

/// Runs `body` on a pipeline of `filesrc ! parsebin` reading `path`, and
/// stops the pipeline afterwards whatever `body` returned.
fn with_parsebin<T>(
    path: &Path,
    pipeline_name: &str,
    body: impl FnOnce(&str, &gst::Pipeline, &gst::Element) -> Result<T, String>,
) -> Result<T, String> {
    crate::init().map_err(|error| error.to_string())?;
    let name = path.display().to_string();
    let pipeline = gst::Pipeline::with_name(pipeline_name);
    let result = (|| {
        let filesrc = make("filesrc")?;
        filesrc.set_property("location", path);
        let parsebin = make("parsebin")?;
        pipeline.add_many([&filesrc, &parsebin]).map_err(|e| e.to_string())?;
        filesrc.link(&parsebin).map_err(|e| e.to_string())?;
        body(&name, &pipeline, &parsebin)
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn make(factory: &'static str) -> Result<gst::Element, String> {
    crate::element::make_element(factory).map_err(|error| error.to_string())
}

fn run(name: &str, pipeline: &gst::Pipeline, parsebin: &gst::Element, limit: Duration) -> Result<KeyframeIndex, String> {
    let parse = make("h264parse")?;
    let filter = make("capsfilter")?;
    filter.set_property("caps", gst::Caps::builder("video/x-h264").field("stream-format", "avc").field("alignment", "au").build());
    let sink = gst_app::AppSink::builder().sync(false).max_buffers(64).build();
    pipeline.add_many([&parse, &filter, sink.upcast_ref()]).map_err(|e| e.to_string())?;
    gst::Element::link_many([&parse, &filter, sink.upcast_ref()]).map_err(|e| e.to_string())?;

    // The first H.264 pad goes to the appsink, everything else to fakesinks.
    // parsebin exposes a file's pads together, so a file whose first pad
    // came a while ago and none was H.264 has none.
    let first_pad: std::sync::Arc<std::sync::Mutex<Option<Instant>>> = std::sync::Arc::default();
    let pad_seen = std::sync::Arc::clone(&first_pad);
    let weak = pipeline.downgrade();
    let parse_sink = parse.static_pad("sink").ok_or("h264parse has no sink pad")?;
    parsebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else { return };
        pad_seen.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(Instant::now);
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_h264 = caps.structure(0).is_some_and(|s| s.name() == "video/x-h264");
        if is_h264 && !parse_sink.is_linked() && pad.link(&parse_sink).is_ok() {
            return;
        }
        if let Some(sink_pad) = super::pipeline::discard(&pipeline) {
            let _ = pad.link(&sink_pad);
        }
    });

    pipeline.set_state(gst::State::Playing).map_err(|_| format!("GStreamer could not open {name}"))?;
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let started = Instant::now();
    let mut keyframes = Vec::new();
    let mut avc_profile = None;
    let mut size = (0, 0);
    let mut video_bytes = 0u64;
    loop {
        if started.elapsed() > limit {
            return Err(format!("indexing the key frames of {name} took longer than {} s", limit.as_secs()));
        }
        if let Some(message) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(error) = message.view() {
                return Err(format!("GStreamer could not read {name}: {}", error.error()));
            }
        }
        if sink.is_eos() {
            break;
        }
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
            // parsebin exposed its pads a while ago and none was H.264: there is none.
            let linked = parse.static_pad("sink").is_some_and(|pad| pad.is_linked());
            let settled = first_pad.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|at| at.elapsed() > Duration::from_secs(2));
            if !linked && settled {
                return Err(format!("{name} has no H.264 video stream to copy"));
            }
            continue;
        };
        let Some(buffer) = sample.buffer() else { continue };
        video_bytes += buffer.size() as u64;
        if avc_profile.is_none()
            && let Some(structure) = sample.caps().and_then(|caps| caps.structure(0))
        {
            if let Ok(data) = structure.get::<gst::Buffer>("codec_data")
                && let Ok(map) = data.map_readable()
                && map.len() >= 4
            {
                avc_profile = Some([map[1], map[2], map[3]]);
            }
            let int = |field: &str| structure.get::<i32>(field).ok().and_then(|value| u32::try_from(value).ok()).unwrap_or(0);
            size = (int("width"), int("height"));
        }
        if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
            continue;
        }
        // Only IDR frames: an open GOP's I-frames cannot start a segment.
        let length_size = sample
            .caps()
            .and_then(|caps| caps.structure(0).and_then(|s| s.get::<gst::Buffer>("codec_data").ok()))
            .and_then(|data| data.map_readable().ok().map(|map| super::plan::avc_length_size(&map)))
            .unwrap_or(4);
        let Ok(map) = buffer.map_readable() else { continue };
        if !super::plan::has_idr(&map, length_size) {
            continue;
        }
        let Some(pts) = buffer.pts() else { continue };
        let time = sample.segment().and_then(|segment| segment.downcast_ref::<gst::ClockTime>().and_then(|s| s.to_stream_time(pts))).unwrap_or(pts);
        keyframes.push(time.nseconds());
    }
    let avc_profile = avc_profile.ok_or_else(|| format!("{name} has no H.264 video stream to copy"))?;
    keyframes.sort_unstable();
    keyframes.dedup();
    if keyframes.is_empty() {
        return Err(format!("{name} has no H.264 key frames"));
    }
    Ok(KeyframeIndex { keyframes_ns: keyframes, avc_profile, width: size.0, height: size.1, video_bytes, file_size: 0, modified_ns: 0 })
}

/// Returns the stream time at which `path` starts: the earliest first time
/// stamp of its audio and video streams, as FFmpeg's `start_time`. An MPEG
/// program stream, for one, starts near 0.5 s. HLS playlists count from 0,
/// so every segment's times are taken relative to this.
pub fn start_time(path: &Path, limit: Duration) -> Result<u64, String> {
    with_parsebin(path, "hearth-start-time", |name, pipeline, parsebin| first_times(name, pipeline, parsebin, limit))
}

fn first_times(name: &str, pipeline: &gst::Pipeline, parsebin: &gst::Element, limit: Duration) -> Result<u64, String> {
    use std::sync::{Arc, Mutex};

    // One slot per audio or video pad: its first buffer's stream time.
    let firsts: Arc<Mutex<Vec<Option<u64>>>> = Arc::default();
    let pad_firsts = Arc::clone(&firsts);
    let weak = pipeline.downgrade();
    parsebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else { return };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let media = caps.structure(0).map(|s| s.name().to_string()).unwrap_or_default();
        if media.starts_with("video/") || media.starts_with("audio/") {
            let slot = {
                let mut firsts = pad_firsts.lock().unwrap_or_else(|p| p.into_inner());
                firsts.push(None);
                firsts.len() - 1
            };
            let record = Arc::clone(&pad_firsts);
            pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else { return gst::PadProbeReturn::Ok };
                let Some(time) = buffer.pts().or(buffer.dts()) else { return gst::PadProbeReturn::Ok };
                let stream_time = pad
                    .sticky_event::<gst::event::Segment>(0)
                    .and_then(|event| event.segment().downcast_ref::<gst::ClockTime>().and_then(|s| s.to_stream_time(time)))
                    .unwrap_or(time);
                record.lock().unwrap_or_else(|p| p.into_inner())[slot] = Some(stream_time.nseconds());
                gst::PadProbeReturn::Remove
            });
        }
        if let Some(sink_pad) = super::pipeline::discard(&pipeline) {
            let _ = pad.link(&sink_pad);
        }
    });

    pipeline.set_state(gst::State::Playing).map_err(|_| format!("GStreamer could not open {name}"))?;
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let started = Instant::now();
    let mut all_since: Option<Instant> = None;
    loop {
        if let Some(message) = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(20), &[gst::MessageType::Error, gst::MessageType::Eos]) {
            if let gst::MessageView::Error(error) = message.view() {
                return Err(format!("GStreamer could not read {name}: {}", error.error()));
            }
            break;
        }
        let firsts = firsts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if !firsts.is_empty() && firsts.iter().all(Option::is_some) {
            // parsebin exposes pads together; wait a moment for late ones.
            let since = *all_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(100) {
                break;
            }
        }
        if started.elapsed() > limit {
            break;
        }
    }
    let earliest = firsts.lock().unwrap_or_else(|p| p.into_inner()).iter().flatten().min().copied();
    earliest.ok_or_else(|| format!("{name} has no audio or video time stamps"))
}
