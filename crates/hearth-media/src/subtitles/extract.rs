//! Reading the text of one embedded subtitle stream with a GStreamer
//! pipeline: filesrc → decodebin → appsink for the chosen stream, fakesink
//! for every other stream.
//!
//! The pipeline runs to the end of the file without syncing to the clock, so
//! a film takes as long as reading the file. Audio and video are not decoded:
//! decodebin stops at the demuxer for them. Elements are created with
//! `ElementFactory::make` and the file is passed as a URI property, so no file
//! name passes through a pipeline description parser.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::MAX_SUBTITLE_BYTES;
use super::embedded::discover_streams;
use super::webvtt::{Cue, Markup, cue_text, write_document};
use crate::MediaError;
use crate::deadline::Deadline;
use crate::discover::file_uri;
use crate::element::make_element;

/// Name of the application message that reports a problem with the chosen pad.
const STREAM_PROBLEM_MESSAGE: &str = "hearth-subtitle-stream-problem";

/// Display time of a cue whose buffer has no duration and no later cue.
const DEFAULT_CUE_DURATION: Duration = Duration::from_secs(3);

/// Text and timing of one subtitle buffer.
#[derive(Debug, Clone, PartialEq)]
struct TextBuffer {
    /// Stream time, the position in the media that players show.
    start: Duration,
    duration: Option<Duration>,
    text: String,
    markup: Markup,
}

/// Buffers collected by the appsink's callback.
#[derive(Default)]
struct Collected {
    buffers: Mutex<Vec<TextBuffer>>,
    total_bytes: AtomicU64,
    /// Flag set when the text passed [`MAX_SUBTITLE_BYTES`], which stops the sink.
    too_large: AtomicBool,
}

/// Converts subtitle stream `index` (among the subtitle streams that the
/// discoverer lists) of `media` to WebVTT.
pub(super) fn embedded_to_webvtt(
    media: &Path,
    index: usize,
    deadline: &Deadline,
) -> Result<String, MediaError> {
    let streams = discover_streams(media, deadline)?;
    let count = streams.len();
    let Some(stream) = streams.into_iter().nth(index) else {
        return Err(MediaError::Io {
            path: media.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "subtitle stream {index} not found: the file has {count} subtitle streams, numbered from 0; list them again"
                ),
            ),
        });
    };
    if !stream.track.convertible {
        return Err(MediaError::Unsupported {
            path: media.to_path_buf(),
            format: format!(
                "{} subtitles in stream {index}, which are not text",
                stream.track.codec
            ),
        });
    }

    let buffers = read_stream(media, index, stream.stream_id.as_deref(), deadline)?;
    let cues = cues_from_buffers(buffers);
    if cues.is_empty() {
        return Err(MediaError::Corrupt {
            path: media.to_path_buf(),
            reason: format!("subtitle stream {index} contains no text"),
        });
    }
    Ok(write_document(&cues))
}

/// Runs the pipeline to the end and returns the text buffers of the chosen
/// stream: the one with `stream_id`, or else the `index`-th subtitle pad.
fn read_stream(
    media: &Path,
    index: usize,
    stream_id: Option<&str>,
    deadline: &Deadline,
) -> Result<Vec<TextBuffer>, MediaError> {
    let uri = file_uri(media)?;
    let collected = Arc::new(Collected::default());
    let reader = StreamReader::build(media, &uri, index, stream_id, &collected)?;

    if let Err(source) = reader.pipeline.set_state(gst::State::Playing) {
        return Err(MediaError::StateChange {
            path: media.to_path_buf(),
            source,
        });
    }
    wait_for_eos(media, &reader.pipeline, deadline)?;
    drop(reader);

    if collected.too_large.load(Ordering::SeqCst) {
        return Err(MediaError::Io {
            path: media.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "subtitle stream {index} has more than {} MiB of text, the limit for one subtitle track",
                    MAX_SUBTITLE_BYTES / (1024 * 1024)
                ),
            ),
        });
    }
    let buffers = std::mem::take(&mut *lock(&collected.buffers));
    Ok(buffers)
}

/// The pipeline; dropping it sets the pipeline to Null.
struct StreamReader {
    pipeline: gst::Pipeline,
}

impl StreamReader {
    fn build(
        media: &Path,
        uri: &str,
        index: usize,
        stream_id: Option<&str>,
        collected: &Arc<Collected>,
    ) -> Result<Self, MediaError> {
        let source = make_element("filesrc")?;
        let uri_handler = source
            .dynamic_cast_ref::<gst::URIHandler>()
            .ok_or_else(|| MediaError::MissingElement {
                element: "filesrc",
                source: glib::bool_error!("filesrc does not accept uris"),
            })?;
        uri_handler.set_uri(uri).map_err(|error| MediaError::Uri {
            path: media.to_path_buf(),
            source: error,
        })?;
        let decodebin = make_element("decodebin")?;
        let appsink = build_appsink(collected)?;

        let pipeline = gst::Pipeline::new();
        // From here on, `Drop` sets the pipeline to Null on every return path.
        let reader = StreamReader { pipeline };
        let pipeline_error = |action, source| MediaError::Pipeline {
            path: media.to_path_buf(),
            action,
            source,
        };
        reader
            .pipeline
            .add_many([&source, &decodebin, appsink.upcast_ref()])
            .map_err(|source| pipeline_error("add its elements", source))?;
        source
            .link(&decodebin)
            .map_err(|source| pipeline_error("link filesrc to decodebin", source))?;

        // Arguments: the decodebin, the new pad, and its caps.
        decodebin.connect("autoplug-continue", false, |values| {
            let caps = values
                .get(2)
                .and_then(|value| value.get::<gst::Caps>().ok());
            let keep_going = caps.is_none_or(|caps| should_autoplug(&caps));
            Some(keep_going.to_value())
        });

        let appsink_pad = appsink.static_pad("sink").ok_or_else(|| {
            pipeline_error(
                "find the appsink sink pad",
                glib::bool_error!("no sink pad"),
            )
        })?;
        route_pads(&decodebin, &reader.pipeline, appsink_pad, index, stream_id);
        Ok(reader)
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        if let Err(error) = self.pipeline.set_state(gst::State::Null) {
            tracing::warn!(%error, "failed to set the subtitle pipeline to null");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds the appsink that collects the chosen stream's text.
///
/// It neither syncs to the clock nor prerolls (`async=false`): a sparse
/// subtitle stream may deliver its first buffer only late in the file, and
/// the other sinks must not wait for it.
fn build_appsink(collected: &Arc<Collected>) -> Result<gst_app::AppSink, MediaError> {
    let caps = gst::Caps::builder("text/x-raw")
        .field("format", gst::List::new(["utf8", "pango-markup"]))
        .build();
    let sink = make_element("appsink")?;
    sink.set_property("caps", &caps);
    sink.set_property("sync", false);
    sink.set_property("async", false);
    let appsink = sink
        .downcast::<gst_app::AppSink>()
        .map_err(|_| MediaError::MissingElement {
            element: "appsink",
            source: glib::bool_error!("the appsink factory made another element type"),
        })?;

    let collected = Arc::clone(collected);
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                collect_sample(&sample, &collected)
            })
            .build(),
    );
    Ok(appsink)
}

/// Stores the text of one sample. Returns `Eos` once the text passes
/// [`MAX_SUBTITLE_BYTES`], which stops this sink only.
fn collect_sample(
    sample: &gst::Sample,
    collected: &Collected,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let Some(buffer) = sample.buffer() else {
        return Ok(gst::FlowSuccess::Ok);
    };
    let size = buffer.size() as u64;
    let total = collected.total_bytes.fetch_add(size, Ordering::SeqCst) + size;
    if total > MAX_SUBTITLE_BYTES {
        collected.too_large.store(true, Ordering::SeqCst);
        return Err(gst::FlowError::Eos);
    }

    let Some(pts) = buffer.pts() else {
        return Ok(gst::FlowSuccess::Ok);
    };
    let stream_time = sample
        .segment()
        .and_then(|segment| segment.downcast_ref::<gst::ClockTime>())
        .and_then(|segment| segment.to_stream_time(pts))
        .unwrap_or(pts);
    let markup = match sample
        .caps()
        .and_then(|caps| caps.structure(0))
        .and_then(|structure| structure.get::<&str>("format").ok())
    {
        Some("utf8") => Markup::Plain,
        _ => Markup::Tags,
    };
    let Ok(map) = buffer.map_readable() else {
        return Ok(gst::FlowSuccess::Ok);
    };
    let text = String::from_utf8_lossy(map.as_slice()).into_owned();

    lock(&collected.buffers).push(TextBuffer {
        start: Duration::from_nanos(stream_time.nseconds()),
        duration: buffer
            .duration()
            .map(|duration| Duration::from_nanos(duration.nseconds())),
        text,
        markup,
    });
    Ok(gst::FlowSuccess::Ok)
}

/// Decides whether decodebin plugs more elements for a pad with `caps`.
///
/// Audio and video streams are exposed as they are, because only subtitle
/// streams are read and decoding a film's video would take far longer.
/// Containers also have `video/` or `audio/` caps (`video/x-matroska`,
/// `audio/x-wav`), so caps that a demuxer accepts are still demuxed.
fn should_autoplug(caps: &gst::Caps) -> bool {
    let Some(name) = caps
        .structure(0)
        .map(|structure| structure.name().to_string())
    else {
        return true;
    };
    let is_audio_video =
        name.starts_with("video/") || name.starts_with("audio/") || name.starts_with("image/");
    if !is_audio_video {
        return true;
    }
    gst::ElementFactory::factories_with_type(gst::ElementFactoryType::DEMUXER, gst::Rank::MARGINAL)
        .iter()
        .any(|factory| factory.can_sink_any_caps(caps))
}

/// Returns whether `caps`, as decodebin exposes them, are those of a subtitle stream.
fn is_subtitle_caps(caps: &gst::CapsRef) -> bool {
    caps.structure(0).is_some_and(|structure| {
        let name = structure.name();
        name.starts_with("text/")
            || name.starts_with("subpicture/")
            || name.starts_with("subtitle/")
            || name.starts_with("application/x-subtitle")
            || name == "application/x-ass"
            || name == "application/x-ssa"
            || name == "application/x-teletext"
    })
}

/// Links the chosen stream's pad to `appsink_pad` and every other pad to a
/// fakesink.
///
/// The chosen pad is the one whose stream id equals `stream_id` (or ends the
/// same after the source's part, in case the source's URI was written
/// differently), or the `index`-th subtitle pad when the discoverer gave no
/// stream id. When decodebin has exposed all its pads without the chosen
/// one, or that pad is not text, an application message on the bus makes the
/// caller fail at once.
///
/// NOTE: the fallback by position is untested, because the discoverer gave
/// stream ids for every Matroska and MP4 file tried.
fn route_pads(
    decodebin: &gst::Element,
    pipeline: &gst::Pipeline,
    appsink_pad: gst::Pad,
    index: usize,
    stream_id: Option<&str>,
) {
    let weak_pipeline = pipeline.downgrade();
    let target_id = stream_id.map(str::to_owned);
    let subtitle_pads_seen = Mutex::new(0usize);
    let chosen_pad = appsink_pad.clone();

    decodebin.connect_pad_added(move |element, pad| {
        let Some(pipeline) = weak_pipeline.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_chosen = match &target_id {
            Some(target) => pad
                .stream_id()
                .is_some_and(|id| same_stream(id.as_str(), target)),
            None if is_subtitle_caps(&caps) => {
                let mut seen = lock(&subtitle_pads_seen);
                *seen += 1;
                *seen == index + 1
            }
            None => false,
        };

        if is_chosen && !chosen_pad.is_linked() {
            if let Err(error) = pad.link(&chosen_pad) {
                tracing::debug!(%error, %caps, "failed to link the chosen subtitle pad");
                post_problem(element, "the stream could not be decoded to text");
            }
            return;
        }
        link_to_fakesink(&pipeline, pad);
    });

    decodebin.connect_no_more_pads(move |element| {
        if !appsink_pad.is_linked() {
            post_problem(element, "gstreamer found no decodable pad for the stream");
        }
    });
}

/// Returns whether stream ids `a` and `b` name the same stream. Ids are
/// `<source hash>/<demuxer part>`, and equal demuxer parts are enough.
fn same_stream(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.split_once('/'), b.split_once('/')) {
        (Some((_, a_stream)), Some((_, b_stream))) => a_stream == b_stream,
        _ => false,
    }
}

fn link_to_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) {
    let sink = match gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
    {
        Ok(sink) => sink,
        Err(error) => {
            tracing::warn!(%error, "failed to create a fakesink for an unused stream");
            return;
        }
    };
    if let Err(error) = pipeline.add(&sink) {
        tracing::warn!(%error, "failed to add a fakesink for an unused stream");
        return;
    }
    if let Err(error) = sink.sync_state_with_parent() {
        tracing::warn!(%error, "failed to start a fakesink for an unused stream");
    }
    if let Some(sink_pad) = sink.static_pad("sink")
        && let Err(error) = pad.link(&sink_pad)
    {
        tracing::warn!(%error, "failed to link an unused stream to a fakesink");
    }
}

fn post_problem(element: &gst::Element, reason: &str) {
    let structure = gst::Structure::builder(STREAM_PROBLEM_MESSAGE)
        .field("reason", reason)
        .build();
    let message = gst::message::Application::builder(structure)
        .src(element)
        .build();
    // Posting fails only during teardown, when no caller waits for the message.
    let _ = element.post_message(message);
}

/// Waits until the pipeline has read the whole file.
fn wait_for_eos(
    media: &Path,
    pipeline: &gst::Pipeline,
    deadline: &Deadline,
) -> Result<(), MediaError> {
    let bus = pipeline.bus().ok_or_else(|| MediaError::Pipeline {
        path: media.to_path_buf(),
        action: "get its bus",
        source: glib::bool_error!("pipeline has no bus"),
    })?;
    let message_types = [
        gst::MessageType::Eos,
        gst::MessageType::Error,
        gst::MessageType::Application,
    ];

    loop {
        let wait = deadline.remaining_clock_time(media)?;
        let Some(message) = bus.timed_pop_filtered(wait, &message_types) else {
            return Err(deadline.timeout_error(media));
        };
        match message.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(error) => return Err(bus_error(media, error)),
            gst::MessageView::Application(application) => {
                let Some(structure) = application.structure() else {
                    continue;
                };
                if structure.name() != STREAM_PROBLEM_MESSAGE {
                    continue;
                }
                let reason = structure.get::<&str>("reason").unwrap_or("unknown problem");
                return Err(MediaError::Corrupt {
                    path: media.to_path_buf(),
                    reason: format!("failed to read the subtitle stream: {reason}"),
                });
            }
            _ => {}
        }
    }
}

/// Maps an error message from the pipeline: the file's own I/O error when it
/// can no longer be opened, else a decoding failure.
fn bus_error(media: &Path, error: &gst::message::Error) -> MediaError {
    if let Err(source) = std::fs::File::open(media) {
        return MediaError::Io {
            path: media.to_path_buf(),
            source,
        };
    }
    tracing::debug!(
        path = %media.display(),
        error = %error.error(),
        debug = ?error.debug(),
        "subtitle pipeline error"
    );
    MediaError::Corrupt {
        path: media.to_path_buf(),
        reason: format!("gstreamer could not read the subtitles: {}", error.error()),
    }
}

/// Turns collected buffers into cues, in time order.
///
/// A buffer without a duration lasts until the next buffer starts, or
/// [`DEFAULT_CUE_DURATION`] when it is the last one. Buffers without text,
/// such as the empty samples that MP4 uses for gaps, are dropped.
fn cues_from_buffers(mut buffers: Vec<TextBuffer>) -> Vec<Cue> {
    buffers.sort_by_key(|buffer| buffer.start);
    let mut cues = Vec::with_capacity(buffers.len());

    for (position, buffer) in buffers.iter().enumerate() {
        let Some(text) = cue_text(&buffer.text, buffer.markup) else {
            continue;
        };
        let next_start = buffers[position + 1..]
            .iter()
            .map(|next| next.start)
            .find(|start| *start > buffer.start);
        let end = match buffer.duration.filter(|duration| !duration.is_zero()) {
            Some(duration) => buffer.start + duration,
            None => next_start.unwrap_or(buffer.start + DEFAULT_CUE_DURATION),
        };
        cues.push(Cue {
            id: None,
            start: buffer.start,
            end,
            settings: String::new(),
            text,
        });
    }
    cues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(start_ms: u64, duration_ms: Option<u64>, text: &str) -> TextBuffer {
        TextBuffer {
            start: Duration::from_millis(start_ms),
            duration: duration_ms.map(Duration::from_millis),
            text: text.to_owned(),
            markup: Markup::Tags,
        }
    }

    #[test]
    fn cues_use_durations_or_next_start() {
        let cues = cues_from_buffers(vec![
            buffer(5000, None, "last"),
            buffer(1000, Some(500), "first"),
            buffer(2000, None, "second"),
            buffer(3000, Some(100), "  "),
        ]);
        let times: Vec<(u128, u128, &str)> = cues
            .iter()
            .map(|cue| {
                (
                    cue.start.as_millis(),
                    cue.end.as_millis(),
                    cue.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            times,
            [
                (1000, 1500, "first"),
                (2000, 3000, "second"),
                (5000, 8000, "last")
            ]
        );
    }

    #[test]
    fn autoplug_stops_only_at_elementary_streams() {
        crate::init().unwrap();
        let decide = |caps: &str| should_autoplug(&caps.parse::<gst::Caps>().unwrap());
        assert!(decide("video/x-matroska"));
        assert!(decide("video/quicktime"));
        assert!(decide("audio/x-wav"));
        assert!(decide("application/x-ass"));
        assert!(!decide("video/x-h264, stream-format=avc, alignment=au"));
        assert!(!decide("audio/mpeg, mpegversion=4"));
    }

    #[test]
    fn stream_ids_match_by_demuxer_part() {
        assert!(same_stream("abc/002:17", "abc/002:17"));
        assert!(same_stream("abc/002:17", "def/002:17"));
        assert!(!same_stream("abc/002:17", "abc/003:18"));
        assert!(!same_stream("abc", "def"));
    }
}
