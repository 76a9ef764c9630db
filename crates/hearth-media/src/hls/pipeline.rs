//! The GStreamer side of a transcode: one pipeline from a segment's start to
//! the end of the file, and the appsink callbacks that feed the segmenter.
//!
//! ```text
//! filesrc ! decodebin ─ video ─ queue ! deinterlace ! videorate ! videoconvert ! videoscale
//!                       │        ! capsfilter(I420, WxH) ! <encoder> ! h264parse
//!                       │        ! capsfilter(avc, au) ! queue ! appsink
//!                       ├ audio N ─ queue ! audioconvert ! audioresample
//!                       │        ! capsfilter(48 kHz stereo) ! <AAC encoder> ! aacparse ! queue ! appsink
//!                       └ anything else ─ fakesink
//! ```
//!
//! The original rendition copies the source's H.264 instead: decodebin
//! stops at parsed H.264, which goes through `h264parse` (to length-prefixed
//! access units) straight to the appsink. Its segments start at the
//! source's key frames ([`SegmentGrid::Keyframes`]).
//!
//! Every element is made with `ElementFactory::make` and every property set
//! with a typed value or a constant, so no request data is ever parsed as a
//! pipeline description. A probe in front of the encoder requests an IDR
//! frame at each segment boundary, so every segment starts with one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use serde::Serialize;

use super::plan::{AUDIO_BPS, Rendition, SegmentFormat, SegmentGrid, output_size};
use super::segmenter::{Kind, Timed};
use super::TranscodeError;
use super::transcoder::Transcoder;


/// Time limit for the pipeline to open the file and to finish a seek.
const PREROLL_LIMIT: Duration = Duration::from_secs(20);

/// How far before a segment a transcode seeks. Some demuxers (MPEG program
/// streams) land just before the target without regard to key frames, so
/// the decoder's first picture would come at the next key frame, past the
/// segment's start. Frames before the segment are encoded and dropped.
const SEEK_LEAD: Duration = Duration::from_secs(1);

/// An H.264 encoder element that Hearth can configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum VideoEncoder {
    /// NVIDIA NVENC (gst-plugins-bad `nvcodec`).
    Nvh264enc,
    /// VA-API on Intel and AMD GPUs (gstreamer-vaapi).
    Vaapih264enc,
    /// V4L2 memory-to-memory encoders, as on the Raspberry Pi.
    V4l2h264enc,
    /// x264 in software, present everywhere.
    X264enc,
}

impl VideoEncoder {
    /// Hardware encoders in the order they are tried, then the software one.
    pub const PREFERENCE: [VideoEncoder; 4] =
        [VideoEncoder::Nvh264enc, VideoEncoder::Vaapih264enc, VideoEncoder::V4l2h264enc, VideoEncoder::X264enc];

    /// Returns the GStreamer element factory name.
    pub fn factory(self) -> &'static str {
        match self {
            VideoEncoder::Nvh264enc => "nvh264enc",
            VideoEncoder::Vaapih264enc => "vaapih264enc",
            VideoEncoder::V4l2h264enc => "v4l2h264enc",
            VideoEncoder::X264enc => "x264enc",
        }
    }

    /// Parses a factory name from the configuration.
    pub fn parse(name: &str) -> Option<VideoEncoder> {
        VideoEncoder::PREFERENCE.into_iter().find(|encoder| encoder.factory() == name)
    }

    /// Returns whether the element exists and opens its device: a hardware encoder's
    /// plug-in can be installed on a machine without the hardware.
    pub fn usable(self) -> bool {
        if crate::init().is_err() {
            return false;
        }
        let Ok(element) = gst::ElementFactory::make(self.factory()).build() else {
            return false;
        };
        let ready = element.set_state(gst::State::Ready).is_ok();
        let _ = element.set_state(gst::State::Null);
        ready
    }

    /// Returns the first usable encoder in [`VideoEncoder::PREFERENCE`]; `None` when
    /// not even x264enc is installed.
    pub fn detect() -> Option<VideoEncoder> {
        VideoEncoder::PREFERENCE.into_iter().find(|encoder| encoder.usable())
    }
}

/// Everything a pipeline needs, decided by the server from the catalog and
/// from validated request values only.
#[derive(Debug, Clone)]
pub struct Job {
    /// The media file, from the catalog.
    pub path: PathBuf,
    /// Duration from the catalog, in milliseconds.
    pub duration_ms: u64,
    /// Source frame size, when the item has video.
    pub video: Option<(u32, u32)>,
    /// Whether the item has audio.
    pub audio: bool,
    /// The rung of the ladder.
    pub rendition: Rendition,
    /// Audio stream, counted from 0 in the file's order.
    pub audio_track: u8,
    /// The H.264 encoder.
    pub encoder: VideoEncoder,
    /// Segment boundaries: [`SegmentGrid::Fixed`] for a transcode, the
    /// source's key frames when the playback offers the original.
    pub grid: SegmentGrid,
    /// Container of the media segments.
    pub format: SegmentFormat,
    /// Stream time at which the file starts ([`super::keyframes::start_time`]):
    /// segment times count from it.
    pub origin_ns: u64,
}

impl Job {
    /// Returns whether the output has a video track.
    pub(crate) fn has_video(&self) -> bool {
        self.video.is_some() && self.rendition != Rendition::Audio
    }

    /// Returns whether the video is copied rather than encoded.
    pub(crate) fn copies_video(&self) -> bool {
        self.has_video() && self.rendition == Rendition::Original
    }
}

/// A built pipeline. Dropping it does not stop it; call [`Running::stop`].
pub(crate) struct Running {
    pipeline: gst::Pipeline,
}

impl Running {
    /// Stops the pipeline and frees its resources. Must not be called from
    /// one of the pipeline's own streaming threads.
    pub(crate) fn stop(self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Builds the pipeline for `job` and starts it at segment `start`; samples go
/// to `transcoder` tagged with `generation`.
pub(crate) fn start(job: &Job, start: u32, transcoder: Weak<Transcoder>, generation: u64) -> Result<Running, String> {
    crate::init().map_err(|error| error.to_string())?;
    let pipeline = gst::Pipeline::with_name("hearth-transcode");
    let running = Running { pipeline: pipeline.clone() };
    let result = build_and_start(job, start, &pipeline, transcoder, generation);
    if let Err(message) = result {
        running.stop();
        return Err(message);
    }
    Ok(running)
}

fn build_and_start(
    job: &Job,
    start: u32,
    pipeline: &gst::Pipeline,
    transcoder: Weak<Transcoder>,
    generation: u64,
) -> Result<(), String> {
    let name = job.path.display().to_string();
    let filesrc = make("filesrc")?;
    filesrc.set_property("location", &job.path);
    let decodebin = make("decodebin")?;
    if job.copies_video() {
        // Stop at H.264 as well as at raw media, so the video is not decoded.
        let mut caps = decodebin.property::<gst::Caps>("caps");
        caps.merge(gst::Caps::new_empty_simple("video/x-h264"));
        decodebin.set_property("caps", &caps);
    }
    pipeline.add_many([&filesrc, &decodebin]).map_err(|e| e.to_string())?;
    filesrc.link(&decodebin).map_err(|e| e.to_string())?;

    let video_entry = if job.copies_video() {
        Some(copy_branch(job, pipeline, &transcoder, generation)?)
    } else if job.has_video() {
        Some(video_branch(job, start, pipeline, &transcoder, generation)?)
    } else {
        None
    };
    let audio_entry = if job.audio { Some(audio_branch(job, pipeline, &transcoder, generation)?) } else { None };

    let bus_transcoder = transcoder.clone();
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let bus_name = name.clone();
    bus.set_sync_handler(move |_, message| {
        if let gst::MessageView::Error(error) = message.view() {
            let text = format!("GStreamer could not transcode {bus_name}: {}", error.error());
            tracing::warn!(debug = ?error.debug(), "{text}");
            if let Some(transcoder) = bus_transcoder.upgrade() {
                transcoder.fail(generation, text);
            }
        }
        gst::BusSyncReply::Drop
    });

    // Pads: the first video stream and audio stream number N are used, all
    // others end in a fakesink so they do not stall the demuxer.
    let links = Arc::new(Mutex::new(PadLinks { video: video_entry, audio: audio_entry, audio_seen: 0 }));
    let requested_track = job.audio_track;
    let pad_pipeline = pipeline.downgrade();
    let pad_links = Arc::clone(&links);
    decodebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pad_pipeline.upgrade() else { return };
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let media = caps
            .as_ref()
            .and_then(|caps| caps.structure(0))
            .map(|structure| structure.name().to_string())
            .unwrap_or_default();
        let mut links = pad_links.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let target = if media.starts_with("video/") {
            links.video.take()
        } else if media.starts_with("audio/") {
            let index = links.audio_seen;
            links.audio_seen += 1;
            if index == u32::from(requested_track) { links.audio.take() } else { None }
        } else {
            None
        };
        drop(links);
        let sink_pad = match target {
            Some(element) => element.static_pad("sink"),
            None => discard(&pipeline),
        };
        if let Some(sink_pad) = sink_pad
            && let Err(error) = pad.link(&sink_pad)
        {
            tracing::warn!(%error, media, "decodebin pad not linked");
        }
    });
    let missing_links = Arc::clone(&links);
    let missing_transcoder = transcoder.clone();
    let missing_name = name.clone();
    decodebin.connect_no_more_pads(move |_| {
        let links = missing_links.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let problem = if links.audio.is_some() {
            Some(TranscodeError::NoSuchAudioTrack { tracks: links.audio_seen, requested: requested_track })
        } else if links.video.is_some() {
            Some(TranscodeError::Failed(format!("{missing_name} has no video stream that GStreamer can decode")))
        } else {
            None
        };
        if let (Some(problem), Some(transcoder)) = (problem, missing_transcoder.upgrade()) {
            transcoder.fail_with(generation, problem);
        }
    });

    let failed = || transcoder.upgrade().is_some_and(|transcoder| transcoder.has_failed(generation));
    pipeline.set_state(gst::State::Paused).map_err(|_| format!("GStreamer could not open {name}"))?;
    wait_for_preroll(pipeline, &name, &failed)?;
    if start > 0 {
        // A copy starts at the key frame that opens the segment. A transcode
        // starts a little earlier, so that it has a picture at the segment's start.
        let (lead, exactness) = if job.copies_video() {
            (0, gst::SeekFlags::KEY_UNIT | gst::SeekFlags::SNAP_BEFORE)
        } else {
            (SEEK_LEAD.as_nanos() as u64, gst::SeekFlags::ACCURATE)
        };
        let position = gst::ClockTime::from_nseconds(job.origin_ns + job.grid.start_ns(start).saturating_sub(lead));
        pipeline
            .seek_simple(gst::SeekFlags::FLUSH | exactness, position)
            .map_err(|_| format!("{name} cannot be seeked to {position}"))?;
        wait_for_preroll(pipeline, &name, &failed)?;
    }
    pipeline.set_state(gst::State::Playing).map_err(|_| format!("GStreamer could not play {name}"))?;
    Ok(())
}

/// The branch heads that decodebin's pads link to, until they are used.
struct PadLinks {
    video: Option<gst::Element>,
    audio: Option<gst::Element>,
    audio_seen: u32,
}

/// Waits for the pipeline to preroll, giving up at once when a pad
/// callback has already recorded a failure (`failed`).
fn wait_for_preroll(pipeline: &gst::Pipeline, name: &str, failed: &dyn Fn() -> bool) -> Result<(), String> {
    let started = std::time::Instant::now();
    loop {
        let (result, _, _) = pipeline.state(gst::ClockTime::from_mseconds(100));
        match result {
            Ok(gst::StateChangeSuccess::Async) if failed() => return Err(format!("{name} could not be opened as asked")),
            Ok(gst::StateChangeSuccess::Async) if started.elapsed() >= PREROLL_LIMIT => {
                return Err(format!("{name} did not open within {} s", PREROLL_LIMIT.as_secs()));
            }
            Ok(gst::StateChangeSuccess::Async) => {}
            Ok(_) => return Ok(()),
            Err(_) => return Err(format!("GStreamer could not decode {name}")),
        }
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("the GStreamer element {factory} is missing: install the GStreamer plug-ins (scripts/install-deps)"))
}

/// A fakesink for an unused stream; returns its sink pad.
pub(super) fn discard(pipeline: &gst::Pipeline) -> Option<gst::Pad> {
    let sink = gst::ElementFactory::make("fakesink").property("sync", false).property("async", false).build().ok()?;
    pipeline.add(&sink).ok()?;
    sink.sync_state_with_parent().ok()?;
    sink.static_pad("sink")
}

fn queue(max_time: Duration) -> Result<gst::Element, String> {
    let queue = make("queue")?;
    queue.set_property("max-size-time", max_time.as_nanos() as u64);
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-bytes", 0u32);
    Ok(queue)
}

/// Builds the video branch; returns its first element.
fn video_branch(
    job: &Job,
    start: u32,
    pipeline: &gst::Pipeline,
    transcoder: &Weak<Transcoder>,
    generation: u64,
) -> Result<gst::Element, String> {
    let (source_width, source_height) = job.video.unwrap_or((0, 0));
    let (width, height) = output_size(job.rendition, source_width, source_height)
        .ok_or_else(|| format!("{} has no frame size in the catalog; scan it again", job.path.display()))?;
    let head = queue(Duration::from_secs(1))?;
    let deinterlace = make("deinterlace")?;
    // A decoder that drops a damaged or undecodable frame leaves a hole in
    // the time stamps; hls.js jumps it, Chromium's own HLS player stalls at
    // it. videorate repeats the previous frame to fill it.
    let rate = make("videorate")?;
    let convert = make("videoconvert")?;
    let scale = make("videoscale")?;
    let raw_caps = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", i32::try_from(width).unwrap_or(i32::MAX))
        .field("height", i32::try_from(height).unwrap_or(i32::MAX))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build();
    let raw_filter = make("capsfilter")?;
    raw_filter.set_property("caps", &raw_caps);
    let encoder = make(job.encoder.factory())?;
    configure_encoder(&encoder, job.rendition.video_kbps());
    let parse = make("h264parse")?;
    let h264_caps =
        gst::Caps::builder("video/x-h264").field("stream-format", "avc").field("alignment", "au").field("profile", "main").build();
    let h264_filter = make("capsfilter")?;
    h264_filter.set_property("caps", &h264_caps);
    let tail = queue(Duration::from_secs(5))?;
    let sink = appsink(Kind::Video, &gst::Caps::new_empty_simple("video/x-h264"), job.origin_ns, transcoder, generation);

    let elements = [&head, &deinterlace, &rate, &convert, &scale, &raw_filter, &encoder, &parse, &h264_filter, &tail, sink.upcast_ref()];
    pipeline.add_many(elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(elements).map_err(|_| format!("GStreamer could not link the {} encoder", job.encoder.factory()))?;

    force_idr_at_boundaries(&raw_filter, &encoder, job.grid.clone(), job.origin_ns, start);
    Ok(head)
}

/// Builds the branch that copies the source's H.264; returns its first element.
fn copy_branch(job: &Job, pipeline: &gst::Pipeline, transcoder: &Weak<Transcoder>, generation: u64) -> Result<gst::Element, String> {
    let head = queue(Duration::from_secs(1))?;
    let parse = make("h264parse")?;
    let h264_caps = gst::Caps::builder("video/x-h264").field("stream-format", "avc").field("alignment", "au").build();
    let h264_filter = make("capsfilter")?;
    h264_filter.set_property("caps", &h264_caps);
    let tail = queue(Duration::from_secs(5))?;
    let sink = appsink(Kind::Video, &gst::Caps::new_empty_simple("video/x-h264"), job.origin_ns, transcoder, generation);
    let elements = [&head, &parse, &h264_filter, &tail, sink.upcast_ref()];
    pipeline.add_many(elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(elements).map_err(|_| "GStreamer could not link h264parse to copy the video".to_owned())?;
    Ok(head)
}

/// Sets the bit rate, GOP length and B-frames on whichever of these
/// properties the encoder has. Long GOPs: IDR frames come from the
/// boundary probe and from scene cuts.
fn configure_encoder(encoder: &gst::Element, kbps: u32) {
    if encoder.find_property("bitrate").is_some() {
        // x264enc, nvh264enc and vaapih264enc all take kbit/s as an unsigned int.
        encoder.set_property("bitrate", kbps);
    }
    if encoder.find_property("speed-preset").is_some() {
        encoder.set_property_from_str("speed-preset", "veryfast");
    }
    for (property, value) in [("bframes", 0u32), ("max-bframes", 0u32)] {
        if encoder.find_property(property).is_some() {
            encoder.set_property(property, value);
        }
    }
    if encoder.find_property("key-int-max").is_some() {
        encoder.set_property("key-int-max", 600u32);
    }
    if let Some(spec) = encoder.find_property("gop-size")
        && spec.value_type() == i32::static_type()
    {
        encoder.set_property("gop-size", 600i32);
    }
}

/// Sends a force-key-unit event to the encoder before the first frame of
/// each segment.
fn force_idr_at_boundaries(before: &gst::Element, encoder: &gst::Element, grid: SegmentGrid, origin_ns: u64, start: u32) {
    let (Some(src), Some(encoder_sink)) = (before.static_pad("src"), encoder.static_pad("sink")) else { return };
    let next_boundary = Mutex::new(start);
    src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else { return gst::PadProbeReturn::Ok };
        let Some(pts) = buffer.pts() else { return gst::PadProbeReturn::Ok };
        let Some(segment) = pad.sticky_event::<gst::event::Segment>(0) else { return gst::PadProbeReturn::Ok };
        let Some(segment) = segment.segment().downcast_ref::<gst::ClockTime>() else { return gst::PadProbeReturn::Ok };
        let Some(stream_time) = segment.to_stream_time(pts) else { return gst::PadProbeReturn::Ok };
        let film_ns = stream_time.nseconds().saturating_sub(origin_ns);
        let mut next = next_boundary.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if film_ns + 1_000_000 >= grid.start_ns(*next) {
            // No running time: the encoder then makes its next frame, this
            // one, a key unit. With a running time, GStreamer 1.22 compares
            // it against frame times that x264enc shifts by 1000 hours, and
            // ignores every request after the first.
            let event = gst_video::DownstreamForceKeyUnitEvent::builder().all_headers(true).count(0).build();
            encoder_sink.send_event(event);
            *next = grid.segment_of_ns(film_ns + 1_000_000) + 1;
        }
        gst::PadProbeReturn::Ok
    });
}

/// Builds the audio branch; returns its first element.
fn audio_branch(job: &Job, pipeline: &gst::Pipeline, transcoder: &Weak<Transcoder>, generation: u64) -> Result<gst::Element, String> {
    let head = queue(Duration::from_secs(1))?;
    let convert = make("audioconvert")?;
    let resample = make("audioresample")?;
    let raw_filter = make("capsfilter")?;
    raw_filter.set_property("caps", gst::Caps::builder("audio/x-raw").field("rate", 48_000i32).field("channels", 2i32).build());
    let encoder = aac_encoder()?;
    let parse = make("aacparse")?;
    let tail = queue(Duration::from_secs(5))?;
    let caps = gst::Caps::builder("audio/mpeg").field("mpegversion", 4i32).field("stream-format", "raw").build();
    let sink = appsink(Kind::Audio, &caps, job.origin_ns, transcoder, generation);
    let elements = [&head, &convert, &resample, &raw_filter, &encoder, &parse, &tail, sink.upcast_ref()];
    pipeline.add_many(elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(elements).map_err(|_| "GStreamer could not link the AAC encoder".to_owned())?;
    Ok(head)
}

/// FFmpeg's AAC encoder from gst-libav, or the VisualOn one from -bad.
fn aac_encoder() -> Result<gst::Element, String> {
    if let Ok(encoder) = gst::ElementFactory::make("avenc_aac").build() {
        encoder.set_property("bitrate", i32::try_from(AUDIO_BPS).unwrap_or(128_000));
        return Ok(encoder);
    }
    let encoder = make("voaacenc")?;
    encoder.set_property("bitrate", i32::try_from(AUDIO_BPS).unwrap_or(128_000));
    Ok(encoder)
}

fn appsink(kind: Kind, caps: &gst::Caps, origin_ns: u64, transcoder: &Weak<Transcoder>, generation: u64) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder().caps(caps).sync(false).max_buffers(8).build();
    let on_sample = transcoder.clone();
    let on_eos = transcoder.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(transcoder) = on_sample.upgrade() else { return Err(gst::FlowError::Flushing) };
                let Some(timed) = timed_sample(kind, &sample, origin_ns) else { return Ok(gst::FlowSuccess::Ok) };
                transcoder.push(generation, timed)
            })
            .eos(move |_| {
                if let Some(transcoder) = on_eos.upgrade() {
                    transcoder.end_of_stream(generation, kind);
                }
            })
            .build(),
    );
    sink
}

/// Returns the time in the film (stream time less `origin_ns`), data and
/// codec set-up of one encoded frame.
fn timed_sample(kind: Kind, sample: &gst::Sample, origin_ns: u64) -> Option<Timed> {
    let buffer = sample.buffer()?;
    // AVI carries decode times only, except on key frames; its H.264 has
    // no reordering, so a decode time is the presentation time.
    let pts = buffer.pts().or(buffer.dts())?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let time = segment.to_stream_time(pts).unwrap_or(pts);
    let structure = sample.caps()?.structure(0)?;
    let codec_data = structure.get::<gst::Buffer>("codec_data").ok().and_then(|data| data.map_readable().ok().map(|map| map.to_vec()));
    let int = |field: &str| structure.get::<i32>(field).ok().and_then(|value| u32::try_from(value).ok());
    let map = buffer.map_readable().ok()?;
    Some(Timed {
        kind,
        time_ns: time.nseconds().saturating_sub(origin_ns),
        duration_ns: buffer.duration().map(|duration| duration.nseconds()),
        // A video frame starts a segment only when it is an IDR frame.
        sync: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
            && (kind == Kind::Audio || super::plan::has_idr(&map, codec_data.as_deref().map_or(4, super::plan::avc_length_size))),
        data: map.to_vec(),
        codec_data,
        width: int("width"),
        height: int("height"),
        rate: int("rate"),
        channels: int("channels"),
    })
}
