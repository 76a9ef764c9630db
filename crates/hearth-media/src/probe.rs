//! The [`probe`] entry point: classify by content, then read metadata.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use crate::av::probe_from_discovered;
use crate::deadline::{Deadline, run_with_deadline};
use crate::discover::discover;
use crate::sniff::{Sniffed, read_head, sniff};
use crate::still::probe_image;
use crate::truncation::truncation_reason;
use crate::types::Probe;
use crate::{MediaError, init};

/// Classifies `path` by content and reads its metadata, within `timeout`.
///
/// The magic bytes (first 8 KiB, `infer`) decide between image, audio/video
/// and other content; the file name never does. Images are probed from their
/// header and EXIF. Audio and video go through GStreamer's discoverer, which
/// also decides whether a file is audio or video from the streams it finds.
/// When no magic bytes match, the discoverer's typefinders get the last
/// word, so formats such as MPEG-TS still work.
///
/// Safe to call from several threads at once. Returns [`MediaError::Timeout`]
/// once `timeout` has passed, even if the read under way is stuck.
pub fn probe(path: &Path, timeout: Duration) -> Result<Probe, MediaError> {
    init()?;
    run_with_deadline(path, timeout, |path, deadline| probe_now(&path, &deadline))
}

fn probe_now(path: &Path, deadline: &Deadline) -> Result<Probe, MediaError> {
    let head = read_head(path)?;

    match sniff(&head) {
        Sniffed::Image(codec) => probe_image(path, codec),
        Sniffed::Other { mime } => Err(MediaError::NotMedia {
            path: path.to_path_buf(),
            detected: Some(mime.to_owned()),
        }),
        Sniffed::AudioVideo { mime } => probe_audio_video(path, &head, Some(mime), deadline),
        Sniffed::Unknown => probe_audio_video(path, &head, None, deadline),
    }
}

fn probe_audio_video(
    path: &Path,
    head: &[u8],
    sniffed_mime: Option<&str>,
    deadline: &Deadline,
) -> Result<Probe, MediaError> {
    let io_error = |source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let file_len = file.metadata().map_err(io_error)?.len();

    if let Some(reason) = truncation_reason(head, &mut file, file_len) {
        return Err(MediaError::Corrupt {
            path: path.to_path_buf(),
            reason,
        });
    }
    drop(file);

    let discovered = discover(path, deadline)?;
    probe_from_discovered(path, file_len, sniffed_mime, &discovered, deadline)
}
