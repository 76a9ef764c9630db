//! Subtitles of a video: list the tracks and convert one to WebVTT.
//!
//! Tracks come from two places:
//!
//! - Sidecar files next to the video with the same stem and the extension
//!   `.srt` or `.vtt`, such as `Film.en.srt` or `Film.forced.pt-BR.vtt`
//!   ([`sidecars`]).
//! - Subtitle streams inside the container, found with GStreamer's
//!   discoverer ([`embedded`]).
//!
//! [`to_webvtt`] turns a text track into a WebVTT document that browsers can
//! load in a `<track>` element. Subtitle files arrive from anywhere, so the
//! output is rebuilt cue by cue, even from a `.vtt` file. It always starts
//! with `WEBVTT` and a blank line. It keeps only the `<i>`, `<b>` and `<u>`
//! tags and escapes every other `<`, `>` and bare `&`, so no cue text line
//! contains `-->`.
//!
//! Every call that reads the video or a subtitle file takes a timeout and
//! returns [`MediaError::Timeout`] when it passes. [`sidecars`] only lists
//! one folder and has none.

mod charset;
mod cues;
mod embedded;
mod extract;
mod sidecar;
mod webvtt;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::deadline::run_with_deadline;
use crate::{MediaError, init};

pub use sidecar::sidecars;

/// Maximum size in bytes of a subtitle file, and of the text taken from one
/// embedded stream, that [`to_webvtt`] converts. A feature film's subtitles
/// take about 100 KiB (an estimate: 1,500 cues of about 70 bytes).
pub const MAX_SUBTITLE_BYTES: u64 = 10 * 1024 * 1024;

/// One subtitle track of a video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtitleTrack {
    /// Identifier that stays the same while the files do not change:
    /// `sidecar:<file name>` or `embedded:<index>`.
    pub id: String,
    /// Storage location of the subtitles.
    pub source: SubtitleSource,
    /// Language tag such as `en` or `pt-BR`; `None` when unknown or `und`.
    pub language: Option<String>,
    /// Human-readable name: the stream title, or the words of a sidecar file
    /// name that are not the language, such as `forced`.
    pub label: String,
    /// Codec name as FFmpeg's `ffprobe` prints it (`subrip`, `webvtt`, `ass`,
    /// `ssa`, `mov_text`, `hdmv_pgs_subtitle`, `dvb_subtitle`,
    /// `dvd_subtitle`), or the GStreamer caps name for other formats.
    pub codec: String,
    /// Whether [`to_webvtt`] can convert the track. Bitmap subtitles (PGS,
    /// DVB, VobSub) and formats without a text decoder here cannot be converted.
    pub convertible: bool,
}

/// Storage location of a subtitle track: a sidecar file or a stream of the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SubtitleSource {
    /// A file in the same folder as the video.
    Sidecar {
        /// Name of the file, without a folder.
        file_name: String,
    },
    /// A stream inside the video's container.
    Embedded {
        /// Position among the container's subtitle streams, from 0.
        index: usize,
    },
}

/// Lists the embedded subtitle streams of `media`, then its sidecar files.
///
/// Returns [`MediaError::Timeout`] once `timeout` has passed.
pub fn list(media: &Path, timeout: Duration) -> Result<Vec<SubtitleTrack>, MediaError> {
    init()?;
    run_with_deadline(media, timeout, |media, deadline| {
        let mut tracks = embedded::list_embedded(&media, &deadline)?;
        tracks.extend(sidecars(&media));
        Ok(tracks)
    })
}

/// Lists the subtitle streams inside `media`, text and bitmap alike, in the
/// order of GStreamer's discoverer.
///
/// Returns [`MediaError::Timeout`] once `timeout` has passed.
pub fn embedded(media: &Path, timeout: Duration) -> Result<Vec<SubtitleTrack>, MediaError> {
    init()?;
    run_with_deadline(media, timeout, |media, deadline| {
        embedded::list_embedded(&media, &deadline)
    })
}

/// Converts `track` of `media` to a WebVTT document.
///
/// Sidecar files are decoded from their detected character set (a byte order
/// mark wins, then `chardetng` guesses). Embedded streams are decoded by
/// GStreamer. Errors name the subtitle file, or the video for embedded
/// streams:
///
/// - [`MediaError::Io`] when the subtitle file is missing, unreadable, larger
///   than [`MAX_SUBTITLE_BYTES`], a symbolic link, or not a sidecar of
///   `media`. The same error comes when the video has no subtitle stream at
///   `index`.
/// - [`MediaError::Unsupported`] for bitmap streams and other formats that
///   are not text ([`SubtitleTrack::convertible`] is false).
/// - [`MediaError::Corrupt`] when no cue could be read.
/// - [`MediaError::Timeout`] once `timeout` has passed.
pub fn to_webvtt(
    media: &Path,
    track: &SubtitleTrack,
    timeout: Duration,
) -> Result<String, MediaError> {
    init()?;
    let source = track.source.clone();
    run_with_deadline(media, timeout, move |media, deadline| match source {
        SubtitleSource::Sidecar { file_name } => sidecar::sidecar_to_webvtt(&media, &file_name),
        SubtitleSource::Embedded { index } => extract::embedded_to_webvtt(&media, index, &deadline),
    })
}
