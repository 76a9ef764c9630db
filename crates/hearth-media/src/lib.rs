//! Media files for Hearth: classify by content, probe metadata, make thumbnails.
//!
//! The scanner passes every new or changed file in the library to [`probe`],
//! and later calls [`thumbnail`] for a small JPEG to show in the UI. Both read
//! files that arrive from anywhere, so both treat them as hostile:
//!
//! - The kind ([`MediaKind`]) comes from the content, never from the name: the
//!   first 8 KiB are matched against magic bytes, and when nothing matches,
//!   GStreamer's typefinders decide. The catalog uses [`kind_from_extension`]
//!   only to judge whether a non-media file looked like media by its name.
//! - Every call takes a timeout and returns [`MediaError::Timeout`] when it
//!   passes, so a damaged file or a stalled disk cannot stall a scan.
//! - Truncated and undecodable files are [`MediaError::Corrupt`], and each
//!   [`MediaError`] message names the file and what is wrong, because the
//!   catalog shows it to users as the problem with that file.
//! - Image decoding uses the `image` crate's default 512 MiB allocation limit,
//!   and GStreamer pipelines are built element by element, so file names never
//!   pass through a pipeline description parser.
//!
//! Audio and video are probed with GStreamer's discoverer; still images with
//! the `image` crate (header only) and `kamadak-exif`. All functions are safe
//! to call from several threads at once; each call owns its GStreamer
//! objects.

mod av;
mod deadline;
mod discover;
mod element;
mod error;
mod exif;
mod heif;
pub mod hls;
mod location;
mod probe;
mod sniff;
mod still;
pub mod subtitles;
mod thumbnail;
pub mod tracks;
mod truncation;
pub mod trickplay;
mod types;

use std::sync::OnceLock;

use gstreamer as gst;
use gstreamer::glib;

pub use error::MediaError;
pub use location::{LocationPatch, location_patches};
pub use probe::probe;
pub use sniff::kind_from_extension;
pub use thumbnail::thumbnail;
pub use types::{AudioStream, Exif, Gps, ImageInfo, MediaKind, Probe, Tags, VideoStream};

/// Initialises GStreamer once; cheap and safe to call repeatedly from any thread.
///
/// [`probe`] and [`thumbnail`] call it themselves. Calling it at start-up
/// reports a broken GStreamer installation before the first file is scanned.
pub fn init() -> Result<(), MediaError> {
    static RESULT: OnceLock<Result<(), glib::Error>> = OnceLock::new();
    let result = RESULT.get_or_init(gst::init);
    result.clone().map_err(|source| MediaError::Init { source })
}
