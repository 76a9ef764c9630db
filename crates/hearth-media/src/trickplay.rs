//! Trickplay: the preview thumbnails that a player shows above its scrub bar.
//!
//! [`generate`] decodes the video once, from start to end, in one pipeline:
//!
//! ```text
//! filesrc ! decodebin ─ first video ─ [probe] videoconvert ! videoscale
//!                       │               ! capsfilter(RGB, tile size) ! appsink
//!                       └ anything else ─ fakesink
//! ```
//!
//! Every sink has `sync=false`, so the pipeline runs as fast as the decoder.
//! A buffer probe in front of videoconvert drops every frame that no tile
//! needs, so only one frame per interval is converted and scaled. Tile `k`
//! shows the frame on screen at `k × interval`, or the first frame after that
//! time when none is. Tiles are placed row by row into sprite sheets of
//! `columns × rows` tiles, and only the sheet being filled is kept in memory.
//!
//! The output is written into a temporary sibling folder, which is renamed to
//! `out_dir` at the end. A crash leaves that hidden `.NAME.tmp-*` folder
//! behind but never a half-written `out_dir`.
//!
//! One decode from the start was chosen over a keyframe seek per tile because
//! it yields the exact frame at each time and needs no seekable index. A
//! keyframe seek lands up to one GOP (often 2 to 10 s) away from the time and
//! costs a flush and a preroll per tile. The decode costs time instead, and
//! the caller's timeout must allow for it. The test clips were measured on the
//! 2-core development machine with software H.264 decoding (avdec_h264) in a
//! debug build. There 65 s of 640x360 took about 1 s and 60 s of 1920x1080
//! took 9 s. At that rate a two-hour 1080p film would take roughly 20 minutes
//! (an estimate, not a measurement).
//!
//! NOTE: a keyframe-only mode (a `TRICKMODE_KEY_UNITS` seek, which makes
//! decoders skip delta frames) would be much faster on long high-resolution
//! films, at the price of tiles up to one GOP late; it is not implemented.

use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use image::RgbImage;

use crate::deadline::{Deadline, run_with_deadline};
use crate::{MediaError, init};
use crate::element::make_element;

/// File name of the WebVTT index inside the output folder.
pub const INDEX_FILE: &str = "index.vtt";

/// Maximum wait for one decoded frame before the bus is checked again.
const POLL: Duration = Duration::from_millis(50);

/// Name of the application message posted when the file has no video pad.
const NO_VIDEO_MESSAGE: &str = "hearth-trickplay-no-video";

/// Tallest tile as a multiple of the tile width. It bounds the sheet size for
/// files that declare an extreme aspect ratio. Taller pictures get borders.
const MAX_TILE_ASPECT: u32 = 4;

/// Spacing, size and packing of trickplay thumbnails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrickplaySpec {
    /// Time between two thumbnails.
    pub interval: Duration,
    /// Width of one thumbnail in pixels. The height follows the display
    /// aspect ratio of the video, rounded to an even number.
    pub tile_width: u32,
    /// Thumbnails per row of a sprite sheet.
    pub columns: u32,
    /// Rows per sprite sheet.
    pub rows: u32,
    /// JPEG quality of the sheets, 1 to 100. Values outside are clamped.
    pub jpeg_quality: u8,
}

impl Default for TrickplaySpec {
    fn default() -> Self {
        TrickplaySpec {
            interval: Duration::from_secs(10),
            tile_width: 160,
            columns: 10,
            rows: 10,
            jpeg_quality: 75,
        }
    }
}

/// The files that [`generate`] wrote and the geometry of their tiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrickplayIndex {
    /// Sprite sheets in order: `out_dir/sheet-0.jpg`, `out_dir/sheet-1.jpg`, …
    pub sheets: Vec<PathBuf>,
    /// Number of tiles (and of cues in `index.vtt`) over all sheets.
    pub tiles: u32,
    /// Width of one tile in pixels.
    pub tile_width: u32,
    /// Height of one tile in pixels, always even.
    pub tile_height: u32,
    /// Time between two tiles.
    pub interval: Duration,
}

/// Writes trickplay sprite sheets and their WebVTT index for `media` into
/// `out_dir`.
///
/// `duration_ms` is the duration from [`crate::probe`]. It sets the number of
/// tiles, `ceil(duration / interval)`, and the end of the last cue. When the
/// video ends before the time of the last tile, the remaining tiles repeat
/// the last tile that the video reached.
///
/// `out_dir` receives `sheet-0.jpg`, `sheet-1.jpg`, … and [`INDEX_FILE`], all
/// at once by a rename. Its parent must exist. An existing `out_dir` is
/// replaced, but only when it is empty or contains an `index.vtt`, so that a
/// wrong path cannot delete an unrelated folder. A sheet is as wide as its
/// used columns and as high as its used rows: every sheet but the last is
/// `columns × tile_width` by `rows × tile_height` pixels.
///
/// Returns [`MediaError::NoThumbnail`] for a file without a video stream or
/// with a duration of 0, [`MediaError::Corrupt`] when no frame can be
/// decoded, and [`MediaError::Timeout`] once `timeout` has passed. The video
/// is decoded from its start to the time of the last tile, so the timeout
/// must allow for that. Output failures (missing parent, full disk) are
/// [`MediaError::Encode`] with the output path in the message. On every error
/// `out_dir` is left as it was. After a timeout the worker thread deletes its
/// staging folder within about 50 ms of the deadline.
///
/// # Panics
///
/// When `spec.interval` is zero, or `spec.tile_width`, `spec.columns` or
/// `spec.rows` is 0.
pub fn generate(
    media: &Path,
    duration_ms: u64,
    out_dir: &Path,
    spec: &TrickplaySpec,
    timeout: Duration,
) -> Result<TrickplayIndex, MediaError> {
    assert!(
        !spec.interval.is_zero(),
        "trickplay interval must not be zero"
    );
    assert!(
        spec.tile_width > 0 && spec.columns > 0 && spec.rows > 0,
        "trickplay tile_width, columns and rows must be at least 1, got {spec:?}"
    );
    init()?;

    let out_dir = out_dir.to_path_buf();
    let spec = spec.clone();
    run_with_deadline(media, timeout, move |media, deadline| {
        generate_within(&media, duration_ms, &out_dir, &spec, &deadline)
    })
}

fn generate_within(
    media: &Path,
    duration_ms: u64,
    out_dir: &Path,
    spec: &TrickplaySpec,
    deadline: &Deadline,
) -> Result<TrickplayIndex, MediaError> {
    check_readable(media)?;
    let duration_ns = duration_ms.saturating_mul(1_000_000);
    let interval_ns = u64::try_from(spec.interval.as_nanos()).unwrap_or(u64::MAX);
    let Some(tiles) = tile_count(duration_ns, interval_ns) else {
        return Err(MediaError::NoThumbnail {
            path: media.to_path_buf(),
            reason: "its duration is unknown (0 ms), and trickplay thumbnails are spaced \
                     along the duration; probe the file first"
                .to_owned(),
        });
    };

    let staging = Staging::create(media, out_dir)?;
    let mut sheets = SheetWriter::new(media, staging.path(), spec);
    let plan = TilePlan {
        interval_ns,
        tiles,
        tile_width: spec.tile_width,
    };
    decode_tiles(media, &plan, deadline, |indices, tile| {
        indices
            .into_iter()
            .try_for_each(|index| sheets.put(index, tile))
    })?;

    let (tile_width, tile_height) = sheets.tile_size();
    let sheet_names = sheets.finish()?;
    let geometry = SheetGeometry {
        columns: spec.columns,
        rows: spec.rows,
        tile_width,
        tile_height,
    };
    let vtt = webvtt(tiles, interval_ns, duration_ns, &geometry);
    write_synced(media, &staging.path().join(INDEX_FILE), vtt.as_bytes())?;

    // A result that arrives after the deadline is reported as a timeout, so
    // the folder must not appear then.
    // NOTE: a deadline that passes during the rename itself still yields a
    // timeout with a complete `out_dir` in place.
    deadline.remaining_or_timeout(media)?;
    staging.commit(media, out_dir)?;

    Ok(TrickplayIndex {
        sheets: sheet_names.iter().map(|name| out_dir.join(name)).collect(),
        tiles,
        tile_width,
        tile_height,
        interval: spec.interval,
    })
}

/// Reports a missing, unreadable or empty file before a pipeline is built.
fn check_readable(media: &Path) -> Result<(), MediaError> {
    let file = fs::File::open(media).map_err(|source| MediaError::Io {
        path: media.to_path_buf(),
        source,
    })?;
    let metadata = file.metadata().map_err(|source| MediaError::Io {
        path: media.to_path_buf(),
        source,
    })?;
    if metadata.len() == 0 {
        return Err(MediaError::Empty {
            path: media.to_path_buf(),
        });
    }
    Ok(())
}

/// Returns `ceil(duration / interval)`, saturated at `u32::MAX`, or `None`
/// when the duration is 0.
fn tile_count(duration_ns: u64, interval_ns: u64) -> Option<u32> {
    if duration_ns == 0 {
        return None;
    }
    Some(u32::try_from(duration_ns.div_ceil(interval_ns)).unwrap_or(u32::MAX))
}

/// Returns the tiles that a frame shown from `start_ns` to `end_ns` (stream
/// time) is used for: every tile from `next` on whose time lies before the
/// frame's end. Tiles that no earlier frame reached thus get the first frame
/// after their time.
fn covered_tiles(
    next: u32,
    start_ns: u64,
    end_ns: u64,
    interval_ns: u64,
    tiles: u32,
) -> Range<u32> {
    let end_ns = end_ns.max(start_ns.saturating_add(1));
    // Tiles 0..reach are those with `k × interval < end`.
    let reach = u32::try_from(end_ns.div_ceil(interval_ns)).unwrap_or(u32::MAX);
    next..reach.min(tiles).max(next)
}

/// Returns the stream time span of `buffer`. A frame without a duration
/// counts as 1 ns long, so it only covers tiles up to its own start.
fn frame_span(
    segment: &gst::FormattedSegment<gst::ClockTime>,
    buffer: &gst::BufferRef,
) -> Option<(u64, u64)> {
    let start = segment.to_stream_time(buffer.pts()?)?.nseconds();
    let length = buffer
        .duration()
        .map_or(1, |duration| duration.nseconds().max(1));
    Some((start, start.saturating_add(length)))
}

/// Returns the tile height for a video of `width × height` pixels with pixel
/// aspect ratio `par`: the display aspect ratio kept, rounded to an even
/// number, at least 2 and at most [`MAX_TILE_ASPECT`] times the tile width.
fn tile_height_for(tile_width: u32, width: u32, height: u32, par: gst::Fraction) -> u32 {
    let max = (tile_width.saturating_mul(MAX_TILE_ASPECT) & !1).max(2);
    let (par_n, par_d) = (par.numer(), par.denom());
    if width == 0 || height == 0 || par_n <= 0 || par_d <= 0 {
        // Unknown shape: assume 16:9, the most common one.
        return ((tile_width * 9 / 16) & !1).clamp(2, max);
    }

    let display_height = f64::from(tile_width) * f64::from(height) * f64::from(par_d)
        / (f64::from(width) * f64::from(par_n));
    let even = (display_height / 2.0).round() * 2.0;
    // The cast saturates for huge values, and the clamp bounds the result.
    (even as u32).clamp(2, max)
}

/// The tiles that the pipeline must deliver: their count, spacing and width.
struct TilePlan {
    interval_ns: u64,
    tiles: u32,
    tile_width: u32,
}

/// One scaled frame as packed RGB rows, without row padding.
struct Tile {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

/// Decodes `media` and calls `on_tiles` with each frame that some tiles use
/// and the indices of those tiles, in order. When the video ends before the
/// last tile, the last tile taken is passed again for the rest.
fn decode_tiles(
    media: &Path,
    plan: &TilePlan,
    deadline: &Deadline,
    mut on_tiles: impl FnMut(Range<u32>, &Tile) -> Result<(), MediaError>,
) -> Result<(), MediaError> {
    let decoder = TileDecoder::build(media, plan)?;
    if let Err(source) = decoder.pipeline.set_state(gst::State::Playing) {
        // The bus usually contains the real reason, such as an unreadable file.
        let mut bus_state = BusState::default();
        return Err(decoder.poll_bus(media, &mut bus_state).err().unwrap_or(
            MediaError::StateChange {
                path: media.to_path_buf(),
                source,
            },
        ));
    }

    let mut bus_state = BusState::default();
    let mut next = 0;
    let mut last_tile = None;
    while next < plan.tiles {
        decoder.poll_bus(media, &mut bus_state)?;
        let wait = deadline
            .remaining_clock_time(media)?
            .min(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64));
        let Some(sample) = decoder.appsink.try_pull_sample(wait) else {
            if decoder.appsink.is_eos() {
                // Errors are posted before the end of the stream would be.
                decoder.poll_bus(media, &mut bus_state)?;
                break;
            }
            continue;
        };

        let Some((start, end)) = sample_span(&sample) else {
            continue;
        };
        let indices = covered_tiles(next, start, end, plan.interval_ns, plan.tiles);
        if indices.is_empty() {
            continue;
        }
        let tile = sample_to_tile(media, &sample)?;
        next = indices.end;
        on_tiles(indices, &tile)?;
        last_tile = Some(tile);
    }

    if next < plan.tiles {
        let Some(tile) = last_tile else {
            return Err(MediaError::Corrupt {
                path: media.to_path_buf(),
                reason: "the video stream ended before a single frame could be decoded".to_owned(),
            });
        };
        // NOTE: this repeats the frame at the last tile time the video
        // reached, not its final frame, which the probe has already dropped.
        tracing::debug!(
            path = %media.display(),
            decoded = next,
            tiles = plan.tiles,
            "video ended before the probed duration; repeating the last tile"
        );
        on_tiles(next..plan.tiles, &tile)?;
    }
    Ok(())
}

fn sample_span(sample: &gst::Sample) -> Option<(u64, u64)> {
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    frame_span(segment, sample.buffer()?)
}

/// Copies an RGB sample into a [`Tile`], dropping GStreamer's row padding.
fn sample_to_tile(media: &Path, sample: &gst::Sample) -> Result<Tile, MediaError> {
    let frame_error = |source| MediaError::Pipeline {
        path: media.to_path_buf(),
        action: "read a decoded frame",
        source,
    };

    let caps = sample
        .caps()
        .ok_or_else(|| frame_error(glib::bool_error!("the frame has no caps")))?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(frame_error)?;
    let buffer = sample
        .buffer()
        .ok_or_else(|| frame_error(glib::bool_error!("the frame has no buffer")))?;
    let frame =
        gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).map_err(frame_error)?;

    let (width, height) = (frame.width(), frame.height());
    let row_len = width as usize * 3;
    let stride = usize::try_from(frame.plane_stride()[0])
        .map_err(|_| frame_error(glib::bool_error!("negative row stride")))?;
    let data = frame.plane_data(0).map_err(frame_error)?;

    let mut pixels = Vec::with_capacity(row_len * height as usize);
    for row in 0..height as usize {
        let start = row * stride;
        let line = data
            .get(start..start + row_len)
            .ok_or_else(|| frame_error(glib::bool_error!("the frame is shorter than its caps")))?;
        pixels.extend_from_slice(line);
    }
    Ok(Tile {
        width,
        height,
        pixels,
    })
}

/// The decoding pipeline. Dropping it sets the pipeline to Null.
struct TileDecoder {
    pipeline: gst::Pipeline,
    appsink: gst_app::AppSink,
}

/// Facts gathered from bus messages so far.
#[derive(Default)]
struct BusState {
    /// Caps name of a video stream that no installed decoder can read.
    missing_video_decoder: Option<String>,
}

impl TileDecoder {
    fn build(media: &Path, plan: &TilePlan) -> Result<Self, MediaError> {
        let filesrc = make_element("filesrc")?;
        filesrc.set_property("location", media);
        let decodebin = make_element("decodebin")?;
        let convert = make_element("videoconvert")?;
        let scale = make_element("videoscale")?;
        let filter = make_element("capsfilter")?;
        filter.set_property("caps", tile_caps(plan.tile_width, plan.tile_width * 9 / 16));
        let sink = make_element("appsink")?;
        sink.set_property("sync", false);
        // A small queue lets decoding continue while a sheet is encoded.
        sink.set_property("max-buffers", 2u32);
        let appsink =
            sink.downcast::<gst_app::AppSink>()
                .map_err(|_| MediaError::MissingElement {
                    element: "appsink",
                    source: glib::bool_error!("the appsink factory made another element type"),
                })?;

        // From here on, `Drop` sets the pipeline to Null on every return path.
        let decoder = TileDecoder {
            pipeline: gst::Pipeline::with_name("hearth-trickplay"),
            appsink,
        };
        let pipeline_error = |action, source| MediaError::Pipeline {
            path: media.to_path_buf(),
            action,
            source,
        };

        let video_chain = [&convert, &scale, &filter, decoder.appsink.upcast_ref()];
        decoder
            .pipeline
            .add_many([&filesrc, &decodebin])
            .and_then(|()| decoder.pipeline.add_many(video_chain))
            .map_err(|source| pipeline_error("add its elements", source))?;
        filesrc
            .link(&decodebin)
            .map_err(|source| pipeline_error("link filesrc and decodebin", source))?;
        gst::Element::link_many(video_chain).map_err(|source| {
            pipeline_error(
                "link videoconvert, videoscale, capsfilter and appsink",
                source,
            )
        })?;

        let convert_sink = convert.static_pad("sink").ok_or_else(|| {
            pipeline_error(
                "find the videoconvert sink pad",
                glib::bool_error!("no sink pad"),
            )
        })?;
        drop_untiled_frames(&convert_sink, plan);
        link_decoded_pads(
            &decodebin,
            &decoder.pipeline,
            convert_sink,
            filter,
            plan.tile_width,
        );
        Ok(decoder)
    }

    /// Handles every message on the bus without waiting, and returns the
    /// first error the pipeline has reported.
    fn poll_bus(&self, media: &Path, state: &mut BusState) -> Result<(), MediaError> {
        let Some(bus) = self.pipeline.bus() else {
            return Err(MediaError::Pipeline {
                path: media.to_path_buf(),
                action: "get its bus",
                source: glib::bool_error!("the pipeline has no bus"),
            });
        };

        while let Some(message) = bus.pop() {
            match message.view() {
                gst::MessageView::Error(error) => return Err(bus_error(media, error, state)),
                gst::MessageView::Element(element) => {
                    if let Some(caps_name) = element.structure().and_then(missing_decoder_caps)
                        && caps_name.starts_with("video/")
                    {
                        state.missing_video_decoder = Some(caps_name);
                    }
                }
                gst::MessageView::Application(application) => {
                    let is_no_video = application
                        .structure()
                        .is_some_and(|structure| structure.name() == NO_VIDEO_MESSAGE);
                    if is_no_video {
                        return Err(no_video_error(media, state));
                    }
                }
                gst::MessageView::Warning(warning) => {
                    tracing::debug!(
                        path = %media.display(),
                        warning = %warning.error(),
                        debug = ?warning.debug(),
                        "trickplay pipeline warning"
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for TileDecoder {
    fn drop(&mut self) {
        if let Err(error) = self.pipeline.set_state(gst::State::Null) {
            tracing::warn!(%error, "failed to set the trickplay pipeline to null");
        }
    }
}

/// Caps of the appsink input: RGB tiles with square pixels.
fn tile_caps(width: u32, height: u32) -> gst::Caps {
    let to_i32 = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::Rgb)
        .width(to_i32(width))
        .height(to_i32(height.max(2)))
        .pixel_aspect_ratio(gst::Fraction::new(1, 1))
        .build()
}

/// Adds a probe to `pad` that drops every frame no tile uses, so that only
/// the kept frames are converted and scaled. It applies the same rule as
/// [`decode_tiles`], which receives only the frames kept here.
fn drop_untiled_frames(pad: &gst::Pad, plan: &TilePlan) {
    let (interval_ns, tiles) = (plan.interval_ns, plan.tiles);
    let next = AtomicU32::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let segment_event = pad.sticky_event::<gst::event::Segment>(0);
        let span = segment_event
            .as_ref()
            .and_then(|event| event.segment().downcast_ref::<gst::ClockTime>())
            .and_then(|segment| frame_span(segment, buffer));

        // Only the streaming thread of this pad touches `next`.
        let indices = span.map(|(start, end)| {
            covered_tiles(next.load(Ordering::Relaxed), start, end, interval_ns, tiles)
        });
        match indices {
            Some(indices) if !indices.is_empty() => {
                next.store(indices.end, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            }
            // `Handled` rather than `Drop`, because gstreamer-rs has already
            // taken the buffer out of the probe info and frees it. GStreamer
            // 1.22 handles `Drop` on a sink pad by unreffing the emptied
            // pointer, which logs a GStreamer-CRITICAL for every frame.
            _ => gst::PadProbeReturn::Handled,
        }
    });
}

/// Links the first decoded video pad of `decodebin` to `convert_sink` and
/// every other pad to a new fakesink, so the demuxer never stalls on an
/// unlinked stream. Before linking the video pad it sets the tile height on
/// `filter` from the pad's caps.
///
/// When `decodebin` has exposed all its pads without a video one, an
/// application message on the bus ends the decode at once.
fn link_decoded_pads(
    decodebin: &gst::Element,
    pipeline: &gst::Pipeline,
    convert_sink: gst::Pad,
    filter: gst::Element,
    tile_width: u32,
) {
    let video_linked = Arc::new(AtomicBool::new(false));
    let linked_flag = Arc::clone(&video_linked);
    let pipeline = pipeline.downgrade();
    decodebin.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_video = caps
            .structure(0)
            .is_some_and(|structure| structure.name().starts_with("video/"));

        if is_video && !convert_sink.is_linked() {
            let tile_height = match gst_video::VideoInfo::from_caps(&caps) {
                Ok(info) => tile_height_for(tile_width, info.width(), info.height(), info.par()),
                Err(_) => tile_height_for(tile_width, 0, 0, gst::Fraction::new(1, 1)),
            };
            filter.set_property("caps", tile_caps(tile_width, tile_height));
            match pad.link(&convert_sink) {
                Ok(_) => linked_flag.store(true, Ordering::Release),
                Err(error) => tracing::debug!(%error, "failed to link a decoded video pad"),
            }
            return;
        }

        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        match discard(&pipeline) {
            Some(sink_pad) => {
                if let Err(error) = pad.link(&sink_pad) {
                    tracing::debug!(%error, "failed to link a decoded pad to a fakesink");
                }
            }
            None => tracing::debug!("failed to add a fakesink for an unused decoded pad"),
        }
    });

    decodebin.connect_no_more_pads(move |element| {
        if video_linked.load(Ordering::Acquire) {
            return;
        }
        let message =
            gst::message::Application::builder(gst::Structure::new_empty(NO_VIDEO_MESSAGE))
                .src(element)
                .build();
        // Posting fails only without a bus or with a flushing one, both
        // during teardown, when no caller waits for the message.
        let _ = element.post_message(message);
    });
}

/// Adds a fakesink for an unused stream and returns its sink pad.
fn discard(pipeline: &gst::Pipeline) -> Option<gst::Pad> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .ok()?;
    pipeline.add(&sink).ok()?;
    sink.sync_state_with_parent().ok()?;
    sink.static_pad("sink")
}

/// Returns the caps name from a missing-plugin message about a decoder.
fn missing_decoder_caps(structure: &gst::StructureRef) -> Option<String> {
    if structure.name() != "missing-plugin" || structure.get::<&str>("type").ok()? != "decoder" {
        return None;
    }
    let caps = structure.get::<gst::Caps>("detail").ok()?;
    Some(caps.structure(0)?.name().to_string())
}

fn no_video_error(media: &Path, state: &BusState) -> MediaError {
    match &state.missing_video_decoder {
        Some(format) => MediaError::Unsupported {
            path: media.to_path_buf(),
            format: format.clone(),
        },
        None => MediaError::NoThumbnail {
            path: media.to_path_buf(),
            reason: "it has no video stream to take trickplay thumbnails from".to_owned(),
        },
    }
}

/// Maps an error message from the pipeline: the file's own I/O error when it
/// can no longer be opened, a missing decoder, unrecognised content, or else
/// damage.
fn bus_error(media: &Path, error: &gst::message::Error, state: &BusState) -> MediaError {
    if let Err(source) = fs::File::open(media) {
        return MediaError::Io {
            path: media.to_path_buf(),
            source,
        };
    }
    tracing::debug!(
        path = %media.display(),
        error = %error.error(),
        debug = ?error.debug(),
        "trickplay pipeline error"
    );

    let glib_error = error.error();
    // decodebin reports a text file as a wrong type, and other non-media
    // content as a type it cannot find.
    if glib_error.matches(gst::StreamError::TypeNotFound)
        || glib_error.matches(gst::StreamError::WrongType)
    {
        return MediaError::NotMedia {
            path: media.to_path_buf(),
            detected: None,
        };
    }
    if glib_error.matches(gst::StreamError::CodecNotFound)
        && let Some(format) = &state.missing_video_decoder
    {
        return MediaError::Unsupported {
            path: media.to_path_buf(),
            format: format.clone(),
        };
    }
    MediaError::Corrupt {
        path: media.to_path_buf(),
        reason: format!("gstreamer could not decode its video: {glib_error}"),
    }
}

/// Fills sprite sheets tile by tile and writes each one as JPEG once it is
/// full, so only one sheet is held in memory.
struct SheetWriter<'a> {
    media: &'a Path,
    dir: &'a Path,
    columns: u32,
    rows: u32,
    quality: u8,
    /// Tile size, fixed by the first tile.
    tile_size: Option<(u32, u32)>,
    current: Option<Sheet>,
    written: Vec<String>,
}

/// The sheet being filled.
struct Sheet {
    index: u32,
    image: RgbImage,
    /// Tiles placed so far. Tiles arrive in order, so they fill the first cells.
    used: u32,
}

impl<'a> SheetWriter<'a> {
    fn new(media: &'a Path, dir: &'a Path, spec: &TrickplaySpec) -> Self {
        SheetWriter {
            media,
            dir,
            columns: spec.columns,
            rows: spec.rows,
            quality: spec.jpeg_quality.clamp(1, 100),
            tile_size: None,
            current: None,
            written: Vec::new(),
        }
    }

    /// Returns the tile size, or (0, 0) before the first tile.
    fn tile_size(&self) -> (u32, u32) {
        self.tile_size.unwrap_or((0, 0))
    }

    /// Places `tile` at tile number `index`. Indices must arrive in order.
    fn put(&mut self, index: u32, tile: &Tile) -> Result<(), MediaError> {
        let (width, height) = *self.tile_size.get_or_insert((tile.width, tile.height));
        if (tile.width, tile.height) != (width, height) {
            return Err(MediaError::Pipeline {
                path: self.media.to_path_buf(),
                action: "keep the tile size",
                source: glib::bool_error!(
                    "a frame arrived as {}x{} after {width}x{height}",
                    tile.width,
                    tile.height
                ),
            });
        }

        let per_sheet = self.columns * self.rows;
        let sheet_index = index / per_sheet;
        if self
            .current
            .as_ref()
            .is_some_and(|sheet| sheet.index != sheet_index)
        {
            self.flush()?;
        }
        let (columns, rows) = (self.columns, self.rows);
        let sheet = self.current.get_or_insert_with(|| Sheet {
            index: sheet_index,
            image: RgbImage::new(columns * width, rows * height),
            used: 0,
        });

        let cell = index % per_sheet;
        let (x, y) = ((cell % columns) * width, (cell / columns) * height);
        let row_len = width as usize * 3;
        let sheet_stride = sheet.image.width() as usize * 3;
        let buffer: &mut [u8] = &mut sheet.image;
        for (row, line) in tile.pixels.chunks_exact(row_len).enumerate() {
            let start = (y as usize + row) * sheet_stride + x as usize * 3;
            buffer[start..start + row_len].copy_from_slice(line);
        }
        sheet.used = cell + 1;
        Ok(())
    }

    /// Writes the last sheet and returns the file names of all sheets.
    fn finish(mut self) -> Result<Vec<String>, MediaError> {
        self.flush()?;
        Ok(self.written)
    }

    /// Writes the current sheet, cropped to its used rows and columns.
    fn flush(&mut self) -> Result<(), MediaError> {
        let Some(sheet) = self.current.take() else {
            return Ok(());
        };
        let (width, height) = self.tile_size();
        let used_columns = sheet.used.min(self.columns);
        let used_rows = sheet.used.div_ceil(self.columns);
        let (crop_width, crop_height) = (used_columns * width, used_rows * height);
        let image = if (crop_width, crop_height) == sheet.image.dimensions() {
            sheet.image
        } else {
            image::imageops::crop_imm(&sheet.image, 0, 0, crop_width, crop_height).to_image()
        };

        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, self.quality)
            .encode_image(&image)
            .map_err(|source| MediaError::Encode {
                path: self.media.to_path_buf(),
                source,
            })?;
        let name = sheet_name(sheet.index);
        write_synced(self.media, &self.dir.join(&name), &jpeg)?;
        self.written.push(name);
        Ok(())
    }
}

fn sheet_name(index: u32) -> String {
    format!("sheet-{index}.jpg")
}

/// Layout of tiles on sheets, for the cue payloads.
struct SheetGeometry {
    columns: u32,
    rows: u32,
    tile_width: u32,
    tile_height: u32,
}

/// Builds the WebVTT index: one cue per tile, covering its interval, with the
/// sheet and the tile's box (`#xywh=x,y,w,h`) as payload. The last cue ends at
/// the duration.
fn webvtt(tiles: u32, interval_ns: u64, duration_ns: u64, geometry: &SheetGeometry) -> String {
    let per_sheet = geometry.columns * geometry.rows;
    let mut vtt = String::from("WEBVTT\n");
    for index in 0..tiles {
        let start = u64::from(index).saturating_mul(interval_ns);
        let end = u64::from(index + 1)
            .saturating_mul(interval_ns)
            .min(duration_ns);
        let cell = index % per_sheet;
        let x = (cell % geometry.columns) * geometry.tile_width;
        let y = (cell / geometry.columns) * geometry.tile_height;
        vtt.push_str(&format!(
            "\n{} --> {}\n{}#xywh={x},{y},{},{}\n",
            vtt_timestamp(start),
            vtt_timestamp(end),
            sheet_name(index / per_sheet),
            geometry.tile_width,
            geometry.tile_height,
        ));
    }
    vtt
}

/// Formats a time as a WebVTT timestamp, `HH:MM:SS.mmm`, truncated to
/// milliseconds. Hours grow past two digits when needed.
fn vtt_timestamp(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1000, rest % 1000);
    format!("{hours:02}:{minutes:02}:{seconds:02}.{millis:03}")
}

/// A hidden sibling folder that receives the output and is renamed to the
/// output folder at the end. Dropping it uncommitted deletes it.
struct Staging {
    path: PathBuf,
    committed: bool,
}

impl Staging {
    fn create(media: &Path, out_dir: &Path) -> Result<Self, MediaError> {
        check_replaceable(media, out_dir)?;
        let path = sibling(media, out_dir, "tmp")?;
        fs::create_dir(&path).map_err(|source| output_error(media, &path, source))?;
        Ok(Staging {
            path,
            committed: false,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the staged files to `out_dir`, replacing what is there.
    ///
    /// An existing folder is first renamed aside, so for a moment `out_dir`
    /// does not exist, but it never contains a mix of old and new files.
    fn commit(mut self, media: &Path, out_dir: &Path) -> Result<(), MediaError> {
        check_replaceable(media, out_dir)?;
        let old = match fs::symlink_metadata(out_dir) {
            Ok(_) => {
                let old = sibling(media, out_dir, "old")?;
                fs::rename(out_dir, &old).map_err(|source| output_error(media, out_dir, source))?;
                Some(old)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(output_error(media, out_dir, source)),
        };

        if let Err(source) = fs::rename(&self.path, out_dir) {
            if let Some(old) = &old
                && let Err(error) = fs::rename(old, out_dir)
            {
                tracing::warn!(%error, old = %old.display(), "failed to restore the previous trickplay folder");
            }
            return Err(output_error(media, out_dir, source));
        }
        self.committed = true;

        if let Some(old) = old
            && let Err(error) = fs::remove_dir_all(&old)
        {
            tracing::warn!(%error, old = %old.display(), "failed to delete the previous trickplay folder");
        }
        // Makes the rename durable. A failure only risks losing the new folder
        // on power loss, not a half-written one.
        if let Some(parent) = out_dir.parent()
            && let Err(error) = fs::File::open(non_empty(parent)).and_then(|dir| dir.sync_all())
        {
            tracing::debug!(%error, "failed to sync the trickplay parent folder");
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed
            && let Err(error) = fs::remove_dir_all(&self.path)
        {
            tracing::warn!(%error, path = %self.path.display(), "failed to delete the trickplay staging folder");
        }
    }
}

/// Rejects an `out_dir` that exists and does not look like trickplay output:
/// anything but an empty folder or one with an `index.vtt`.
fn check_replaceable(media: &Path, out_dir: &Path) -> Result<(), MediaError> {
    let metadata = match fs::symlink_metadata(out_dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(output_error(media, out_dir, source)),
    };
    let replaceable = metadata.is_dir()
        && (out_dir.join(INDEX_FILE).is_file()
            || fs::read_dir(out_dir).is_ok_and(|mut entries| entries.next().is_none()));
    if replaceable {
        return Ok(());
    }
    Err(output_error(
        media,
        out_dir,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "it exists and is not a trickplay folder (no {INDEX_FILE} in it); \
                 remove it or choose another output folder"
            ),
        ),
    ))
}

/// Returns an unused hidden path next to `out_dir`, `.NAME.KIND-PID-N`.
fn sibling(media: &Path, out_dir: &Path, kind: &str) -> Result<PathBuf, MediaError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(name) = out_dir.file_name() else {
        return Err(output_error(
            media,
            out_dir,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the output folder path has no final name component",
            ),
        ));
    };
    let number = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(name);
    hidden.push(format!(".{kind}-{}-{number}", std::process::id()));
    Ok(out_dir.with_file_name(hidden))
}

/// Returns `path`, or `.` when it is empty (the parent of a bare name).
fn non_empty(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

/// Writes `bytes` to a new file at `path` and flushes it to disk.
fn write_synced(media: &Path, path: &Path, bytes: &[u8]) -> Result<(), MediaError> {
    let write = || -> io::Result<()> {
        let mut file = fs::File::create_new(path)?;
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    };
    write().map_err(|source| output_error(media, path, source))
}

/// Reports a failure to write the output of `media` at `target`.
///
/// NOTE: [`MediaError`] has no variant for output failures, so these are
/// [`MediaError::Encode`] with an I/O source whose message names `target`.
fn output_error(media: &Path, target: &Path, source: io::Error) -> MediaError {
    let message = format!("failed to write {}: {source}", target.display());
    MediaError::Encode {
        path: media.to_path_buf(),
        source: image::ImageError::IoError(io::Error::new(source.kind(), message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn tile_count_rounds_up() {
        assert_eq!(tile_count(65 * SECOND, 10 * SECOND), Some(7));
        assert_eq!(tile_count(60 * SECOND, 10 * SECOND), Some(6));
        assert_eq!(tile_count(8_360_000_000, 2 * SECOND), Some(5));
        assert_eq!(tile_count(0, 10 * SECOND), None);
    }

    #[test]
    fn frame_covering_tile_time_is_used() {
        let frame = 40_000_000;
        // The frame shown from 9.96 s ends exactly at 10 s, so it is not the 10 s tile.
        assert_eq!(
            covered_tiles(1, 10 * SECOND - frame, 10 * SECOND, 10 * SECOND, 7),
            1..1
        );
        assert_eq!(
            covered_tiles(1, 10 * SECOND, 10 * SECOND + frame, 10 * SECOND, 7),
            1..2
        );
        // A frame shown from 9.99 s to 10.03 s is on screen at 10 s.
        assert_eq!(
            covered_tiles(1, 9_990_000_000, 10_030_000_000, 10 * SECOND, 7),
            1..2
        );
    }

    #[test]
    fn frame_after_gap_fills_skipped_tiles() {
        // The first frame after a 25 s gap serves the tiles at 10 s and 20 s too.
        assert_eq!(
            covered_tiles(1, 25 * SECOND, 25 * SECOND + 1, 10 * SECOND, 7),
            1..3
        );
        // A frame starting late still serves tile 0.
        assert_eq!(covered_tiles(0, SECOND / 2, SECOND, 10 * SECOND, 7), 0..1);
    }

    #[test]
    fn covered_tiles_stop_at_count() {
        assert_eq!(
            covered_tiles(6, 90 * SECOND, 91 * SECOND, 10 * SECOND, 7),
            6..7
        );
        assert_eq!(
            covered_tiles(7, 90 * SECOND, 91 * SECOND, 10 * SECOND, 7),
            7..7
        );
    }

    #[test]
    fn tile_height_keeps_display_aspect() {
        let square = gst::Fraction::new(1, 1);
        assert_eq!(tile_height_for(160, 640, 360, square), 90);
        assert_eq!(tile_height_for(160, 1024, 576, square), 90);
        assert_eq!(tile_height_for(160, 640, 480, square), 120);
        // 720x576 with 16:15 pixels is 4:3 on screen; 160 x 3/4 = 120.
        assert_eq!(
            tile_height_for(160, 720, 576, gst::Fraction::new(16, 15)),
            120
        );
    }

    #[test]
    fn tile_height_is_even_and_bounded() {
        let square = gst::Fraction::new(1, 1);
        // 2.39:1 gives 66.9, rounded to the even 66.
        assert_eq!(tile_height_for(160, 1912, 800, square), 66);
        assert_eq!(tile_height_for(160, 1, 100_000, square), 640);
        assert_eq!(tile_height_for(160, 100_000, 1, square), 2);
        assert_eq!(tile_height_for(160, 0, 0, square), 90);
    }

    #[test]
    fn vtt_timestamp_formats_hours() {
        assert_eq!(vtt_timestamp(0), "00:00:00.000");
        assert_eq!(vtt_timestamp(65_021_999_999), "00:01:05.021");
        assert_eq!(vtt_timestamp(100 * 3600 * SECOND), "100:00:00.000");
    }

    #[test]
    fn webvtt_cues_cover_intervals() {
        let geometry = SheetGeometry {
            columns: 2,
            rows: 2,
            tile_width: 160,
            tile_height: 90,
        };
        let vtt = webvtt(5, 10 * SECOND, 45 * SECOND, &geometry);
        let expected = "WEBVTT\n\
            \n00:00:00.000 --> 00:00:10.000\nsheet-0.jpg#xywh=0,0,160,90\n\
            \n00:00:10.000 --> 00:00:20.000\nsheet-0.jpg#xywh=160,0,160,90\n\
            \n00:00:20.000 --> 00:00:30.000\nsheet-0.jpg#xywh=0,90,160,90\n\
            \n00:00:30.000 --> 00:00:40.000\nsheet-0.jpg#xywh=160,90,160,90\n\
            \n00:00:40.000 --> 00:00:45.000\nsheet-1.jpg#xywh=0,0,160,90\n";
        assert_eq!(vtt, expected);
    }

    #[test]
    fn sibling_is_hidden_next_to_output() {
        let path = sibling(Path::new("/m.mkv"), Path::new("/cache/42/trickplay"), "tmp").unwrap();
        assert_eq!(path.parent(), Some(Path::new("/cache/42")));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".trickplay.tmp-"), "{name}");
    }
}
