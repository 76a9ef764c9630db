//! The one error type of this crate.
//!
//! The catalog shows `to_string()` of these errors to users as the reason a
//! file has a problem, so every message names the file, states what is wrong in
//! plain words and, where the user can do something, what to do. Sources are
//! kept typed for logs and are also part of the message for that reason.

use std::path::PathBuf;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::glib;

/// Failure to classify, probe or thumbnail one file.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// GStreamer itself could not be initialised.
    #[error("failed to initialise gstreamer: {source}; check that gstreamer 1.22 is installed")]
    Init {
        /// Error from `gst_init_check`.
        #[source]
        source: glib::Error,
    },

    /// The file could not be opened or read: missing, deleted while being read,
    /// a directory, or not readable by this user.
    #[error("failed to read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Error from the operating system.
        #[source]
        source: std::io::Error,
    },

    /// The file has zero bytes.
    #[error(
        "{} is empty (0 bytes): expected an audio, video or image file; the copy may be incomplete",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },

    /// The content is not audio, video or an image: it was recognised as
    /// another type, or nothing could recognise it at all.
    #[error("{} is not a media file: {}", path.display(), describe_detected(detected.as_deref()))]
    NotMedia {
        /// The file.
        path: PathBuf,
        /// MIME type of what the content was recognised as, if anything.
        detected: Option<String>,
    },

    /// The content is a media format that no installed decoder can read.
    #[error(
        "{} is in a media format that cannot be read here ({format}): no installed decoder supports it",
        path.display()
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// MIME type or GStreamer caps name of the format.
        format: String,
    },

    /// The content is media but truncated or undecodable.
    #[error("{} is damaged or incomplete: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Description of the damage.
        reason: String,
    },

    /// The work did not finish within the caller's timeout.
    #[error(
        "timed out after {after:?} while reading {}: the disk may be slow or the file unusually complex; retry with a longer timeout",
        path.display()
    )]
    Timeout {
        /// The file.
        path: PathBuf,
        /// The timeout that ran out.
        after: Duration,
    },

    /// The file is fine but has nothing to make a thumbnail from.
    #[error("no thumbnail for {}: {reason}", path.display())]
    NoThumbnail {
        /// The file.
        path: PathBuf,
        /// Reason there is no picture.
        reason: String,
    },

    /// The path could not be turned into a `file://` URI for GStreamer.
    #[error("failed to convert {} to a file uri: {source}", path.display())]
    Uri {
        /// The file.
        path: PathBuf,
        /// Error from `g_filename_to_uri`.
        #[source]
        source: glib::Error,
    },

    /// The GStreamer discoverer could not be created.
    #[error(
        "failed to create the gstreamer discoverer for {}: {source}; check that gst-plugins-base is installed",
        path.display()
    )]
    Discoverer {
        /// The file.
        path: PathBuf,
        /// Error from `gst_discoverer_new`.
        #[source]
        source: glib::Error,
    },

    /// A GStreamer element that the thumbnail pipeline needs is not installed.
    #[error("gstreamer element {element} is not available: {source}; install gst-plugins-base")]
    MissingElement {
        /// Factory name of the element.
        element: &'static str,
        /// Error from `ElementFactory::make`.
        #[source]
        source: glib::BoolError,
    },

    /// Building or driving the thumbnail pipeline failed.
    #[error("gstreamer pipeline for {} failed to {action}: {source}", path.display())]
    Pipeline {
        /// The file.
        path: PathBuf,
        /// Step that failed, as a verb phrase ("link videoconvert").
        action: &'static str,
        /// Error from GStreamer.
        #[source]
        source: glib::BoolError,
    },

    /// The thumbnail pipeline refused to change state.
    #[error("gstreamer pipeline for {} failed to start: {source}", path.display())]
    StateChange {
        /// The file.
        path: PathBuf,
        /// Error from `set_state`.
        #[source]
        source: gst::StateChangeError,
    },

    /// The thumbnail could not be encoded as JPEG.
    #[error("failed to encode the thumbnail of {} as jpeg: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// Error from the JPEG encoder.
        #[source]
        source: image::ImageError,
    },
}

fn describe_detected(detected: Option<&str>) -> String {
    match detected {
        Some(mime) => format!("its content is {mime}, expected audio, video or an image"),
        None => "its content matches no known audio, video or image format".to_owned(),
    }
}
