//! One decoded video frame, grabbed with a GStreamer pipeline:
//! uridecodebin → videoconvert → videoscale → appsink (RGB, square pixels).
//!
//! The pipeline is prerolled in the Paused state, seeked to about 10% of the
//! duration, and the frame is pulled from the appsink's preroll. Elements are
//! created with `ElementFactory::make` and the URI is set as a property, so
//! no file name ever passes through a pipeline description parser.

use std::path::Path;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use image::{DynamicImage, RgbImage};

use crate::MediaError;
use crate::deadline::Deadline;
use crate::discover::file_uri;
use crate::types::Probe;
use crate::element::make_element;

/// Latest point of the seek, so long films do not seek deep into the file.
const MAX_SEEK: Duration = Duration::from_secs(30);

/// Name of the application message posted when the file has no video pad.
const NO_VIDEO_MESSAGE: &str = "hearth-no-video-stream";

/// Returns the frame at about 10% of the duration, at most 30 s in.
pub(super) fn grab_frame(
    path: &Path,
    probe: &Probe,
    deadline: &Deadline,
) -> Result<DynamicImage, MediaError> {
    let uri = file_uri(path)?;
    let frame_grabber = FrameGrabber::build(path, &uri)?;
    let pipeline = &frame_grabber.pipeline;

    if let Err(source) = pipeline.set_state(gst::State::Paused) {
        // The bus usually contains the real reason, such as an unreadable file.
        return Err(
            pending_bus_error(path, pipeline).unwrap_or(MediaError::StateChange {
                path: path.to_path_buf(),
                source,
            }),
        );
    }
    wait_for_preroll(path, pipeline, deadline)?;

    let target = seek_target(probe);
    if !target.is_zero() {
        let position = gst::ClockTime::from_nseconds(target.as_nanos() as u64);
        // Keyframe seeks are fast and land close enough for a thumbnail. A
        // file that cannot seek keeps its first frame.
        let seeked =
            pipeline.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT, position);
        if seeked.is_ok() {
            wait_for_preroll(path, pipeline, deadline)?;
        }
    }

    let sample = frame_grabber
        .appsink
        .try_pull_preroll(deadline.remaining_clock_time(path)?)
        .ok_or_else(|| MediaError::Corrupt {
            path: path.to_path_buf(),
            reason: "no video frame could be decoded".to_owned(),
        })?;
    sample_to_image(path, &sample)
}

/// The pipeline and its sink; dropping it sets the pipeline to Null.
struct FrameGrabber {
    pipeline: gst::Pipeline,
    appsink: gst_app::AppSink,
}

impl FrameGrabber {
    fn build(path: &Path, uri: &str) -> Result<Self, MediaError> {
        let source = make_element("uridecodebin")?;
        source.set_property("uri", uri);
        let convert = make_element("videoconvert")?;
        let scale = make_element("videoscale")?;

        let caps = gst_video::VideoCapsBuilder::new()
            .format(gst_video::VideoFormat::Rgb)
            .pixel_aspect_ratio(gst::Fraction::new(1, 1))
            .build();
        let sink = make_element("appsink")?;
        sink.set_property("caps", &caps);
        sink.set_property("sync", false);
        sink.set_property("max-buffers", 1u32);
        let appsink =
            sink.downcast::<gst_app::AppSink>()
                .map_err(|_| MediaError::MissingElement {
                    element: "appsink",
                    source: gstreamer::glib::bool_error!(
                        "the appsink factory made another element type"
                    ),
                })?;

        let pipeline = gst::Pipeline::new();
        // From here on, `Drop` sets the pipeline to Null on every return path.
        let grabber = FrameGrabber { pipeline, appsink };
        let pipeline_error = |action, source| MediaError::Pipeline {
            path: path.to_path_buf(),
            action,
            source,
        };

        grabber
            .pipeline
            .add_many([&source, &convert, &scale, grabber.appsink.upcast_ref()])
            .map_err(|source| pipeline_error("add its elements", source))?;
        gst::Element::link_many([&convert, &scale, grabber.appsink.upcast_ref()]).map_err(
            |source| pipeline_error("link videoconvert, videoscale and appsink", source),
        )?;

        let convert_sink = convert.static_pad("sink").ok_or_else(|| {
            pipeline_error(
                "find the videoconvert sink pad",
                gstreamer::glib::bool_error!("no sink pad"),
            )
        })?;
        link_first_video_pad(&source, convert_sink);
        Ok(grabber)
    }
}

impl Drop for FrameGrabber {
    fn drop(&mut self) {
        if let Err(error) = self.pipeline.set_state(gst::State::Null) {
            tracing::warn!(%error, "failed to set the thumbnail pipeline to null");
        }
    }
}

/// Links the first decoded video pad of `source` to `convert_sink`.
///
/// When `source` has exposed all its pads without a video one, an application
/// message on the bus makes the caller fail at once, because no preroll can
/// happen. Audio and subtitle pads stay unlinked, and demuxers keep running
/// as long as one of their pads is linked.
fn link_first_video_pad(source: &gst::Element, convert_sink: gst::Pad) {
    let linked_sink = convert_sink.clone();
    source.connect_pad_added(move |_, pad| {
        if convert_sink.is_linked() {
            return;
        }
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_video = caps
            .structure(0)
            .is_some_and(|structure| structure.name().starts_with("video/"));
        if is_video && let Err(error) = pad.link(&convert_sink) {
            tracing::debug!(%error, "failed to link a decoded video pad");
        }
    });

    source.connect_no_more_pads(move |element| {
        if linked_sink.is_linked() {
            return;
        }
        let message =
            gst::message::Application::builder(gst::Structure::new_empty(NO_VIDEO_MESSAGE))
                .src(element)
                .build();
        // GStreamer documents two failures, no bus and a flushing bus. Both
        // happen only during teardown, when nobody waits for the message.
        let _ = element.post_message(message);
    });
}

/// Waits until the pipeline has prerolled (an async state change or a
/// flushing seek has completed).
fn wait_for_preroll(
    path: &Path,
    pipeline: &gst::Pipeline,
    deadline: &Deadline,
) -> Result<(), MediaError> {
    let bus = pipeline.bus().ok_or_else(|| MediaError::Pipeline {
        path: path.to_path_buf(),
        action: "get its bus",
        source: gstreamer::glib::bool_error!("pipeline has no bus"),
    })?;
    let wanted = [
        gst::MessageType::AsyncDone,
        gst::MessageType::Error,
        gst::MessageType::Eos,
        gst::MessageType::Application,
    ];

    loop {
        let wait = deadline.remaining_clock_time(path)?;
        let Some(message) = bus.timed_pop_filtered(wait, &wanted) else {
            return Err(deadline.timeout_error(path));
        };

        match message.view() {
            gst::MessageView::AsyncDone(_) => return Ok(()),
            gst::MessageView::Error(error) => return Err(bus_error(path, error)),
            gst::MessageView::Eos(_) => {
                return Err(MediaError::Corrupt {
                    path: path.to_path_buf(),
                    reason: "the video ended before a frame could be decoded".to_owned(),
                });
            }
            gst::MessageView::Application(application) => {
                let is_no_video = application
                    .structure()
                    .is_some_and(|structure| structure.name() == NO_VIDEO_MESSAGE);
                if is_no_video {
                    return Err(MediaError::NoThumbnail {
                        path: path.to_path_buf(),
                        reason: "gstreamer found no decodable video stream".to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
}

fn pending_bus_error(path: &Path, pipeline: &gst::Pipeline) -> Option<MediaError> {
    // `pop_filtered` does not wait. `timed_pop_filtered` with a zero timeout
    // would return nothing at all in gstreamer-rs 0.25: it subtracts the time
    // already elapsed from the timeout before its first pop.
    let message = pipeline.bus()?.pop_filtered(&[gst::MessageType::Error])?;
    match message.view() {
        gst::MessageView::Error(error) => Some(bus_error(path, error)),
        _ => None,
    }
}

/// Maps an error message from the pipeline: the file's own I/O error when it
/// can no longer be opened, else a decoding failure.
fn bus_error(path: &Path, error: &gst::message::Error) -> MediaError {
    if let Err(source) = std::fs::File::open(path) {
        return MediaError::Io {
            path: path.to_path_buf(),
            source,
        };
    }
    tracing::debug!(
        path = %path.display(),
        error = %error.error(),
        debug = ?error.debug(),
        "thumbnail pipeline error"
    );
    MediaError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("gstreamer could not decode a frame: {}", error.error()),
    }
}

/// Returns 10% of the probed duration, capped at [`MAX_SEEK`]; zero when the
/// duration is unknown.
fn seek_target(probe: &Probe) -> Duration {
    let duration = Duration::from_millis(probe.duration_ms.unwrap_or(0));
    (duration / 10).min(MAX_SEEK)
}

/// Copies an RGB sample into an image, dropping GStreamer's row padding
/// (rows are aligned to 4 bytes).
fn sample_to_image(path: &Path, sample: &gst::Sample) -> Result<DynamicImage, MediaError> {
    let frame_error = |source| MediaError::Pipeline {
        path: path.to_path_buf(),
        action: "read the decoded frame",
        source,
    };

    let caps = sample
        .caps()
        .ok_or_else(|| frame_error(gstreamer::glib::bool_error!("the frame has no caps")))?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(frame_error)?;
    let buffer = sample
        .buffer()
        .ok_or_else(|| frame_error(gstreamer::glib::bool_error!("the frame has no buffer")))?;
    let frame =
        gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).map_err(frame_error)?;

    let width = frame.width();
    let height = frame.height();
    let row_len = width as usize * 3;
    let stride = usize::try_from(frame.plane_stride()[0])
        .map_err(|_| frame_error(gstreamer::glib::bool_error!("negative row stride")))?;
    let data = frame.plane_data(0).map_err(frame_error)?;

    let mut pixels = Vec::with_capacity(row_len * height as usize);
    for row in 0..height as usize {
        let start = row * stride;
        let line = data.get(start..start + row_len).ok_or_else(|| {
            frame_error(gstreamer::glib::bool_error!(
                "the frame is shorter than its caps"
            ))
        })?;
        pixels.extend_from_slice(line);
    }

    let picture = RgbImage::from_raw(width, height, pixels).ok_or_else(|| {
        frame_error(gstreamer::glib::bool_error!(
            "the frame size does not match its caps"
        ))
    })?;
    Ok(DynamicImage::ImageRgb8(picture))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{MediaKind, Tags};

    fn probe_with_duration(duration_ms: Option<u64>) -> Probe {
        Probe {
            kind: MediaKind::Video,
            mime: "video/mp4".to_owned(),
            container: None,
            duration_ms,
            bit_rate: None,
            video: None,
            audio: None,
            tags: Tags::default(),
            image: None,
            has_cover_art: false,
        }
    }

    #[test]
    fn seek_target_tenth_with_cap() {
        assert_eq!(
            seek_target(&probe_with_duration(Some(8_300))),
            Duration::from_millis(830)
        );
        assert_eq!(seek_target(&probe_with_duration(Some(7_200_000))), MAX_SEEK);
        assert_eq!(seek_target(&probe_with_duration(None)), Duration::ZERO);
    }
}
