//! The Content-Type an audio or video file is served with.

use gstreamer as gst;

use crate::types::MediaKind;

/// Chooses the Content-Type from the container that GStreamer found, because
/// magic bytes cannot tell Ogg or MP4 video from audio. Bare streams use
/// their codec, and the sniffed MIME type is the last resort.
pub(super) fn serve_mime(
    kind: MediaKind,
    container: Option<&gst::StructureRef>,
    stream: Option<&gst::StructureRef>,
    sniffed_mime: Option<&str>,
) -> String {
    let by_kind = |video: &str, audio: &str| {
        if kind == MediaKind::Video {
            video
        } else {
            audio
        }
        .to_owned()
    };

    if let Some(container) = container {
        let mime = match container.name().as_str() {
            "video/quicktime" => {
                let variant = container.get::<&str>("variant").ok();
                if kind == MediaKind::Video && variant == Some("apple") {
                    "video/quicktime".to_owned()
                } else {
                    by_kind("video/mp4", "audio/mp4")
                }
            }
            "audio/x-m4a" => by_kind("video/mp4", "audio/mp4"),
            "application/x-3gp" => by_kind("video/3gpp", "audio/3gpp"),
            "video/x-matroska" | "audio/x-matroska" => {
                by_kind("video/x-matroska", "audio/x-matroska")
            }
            "video/webm" | "audio/webm" => by_kind("video/webm", "audio/webm"),
            "application/ogg" | "audio/ogg" | "video/ogg" => by_kind("video/ogg", "audio/ogg"),
            "video/x-msvideo" => "video/x-msvideo".to_owned(),
            "video/mpeg" => "video/mpeg".to_owned(),
            "video/mpegts" => "video/mp2t".to_owned(),
            "video/x-flv" => "video/x-flv".to_owned(),
            "video/x-ms-asf" => by_kind("video/x-ms-asf", "audio/x-ms-wma"),
            "audio/x-wav" => "audio/wav".to_owned(),
            "audio/x-aiff" => "audio/aiff".to_owned(),
            _ => String::new(),
        };
        if !mime.is_empty() {
            return mime;
        }
    }

    if let Some(stream) = stream {
        let mime = match stream.name().as_str() {
            "audio/mpeg" => match stream.get::<i32>("mpegversion") {
                Ok(1) => "audio/mpeg",
                _ => "audio/aac",
            },
            "audio/x-flac" => "audio/flac",
            "audio/x-ac3" => "audio/ac3",
            "audio/x-wav" => "audio/wav",
            "audio/x-aiff" => "audio/aiff",
            "audio/AMR" => "audio/amr",
            _ => "",
        };
        if !mime.is_empty() {
            return mime.to_owned();
        }
    }

    match sniffed_mime {
        Some("audio/x-wav") => "audio/wav".to_owned(),
        Some("audio/x-flac") => "audio/flac".to_owned(),
        Some("audio/m4a") => "audio/mp4".to_owned(),
        Some(mime) => mime.to_owned(),
        None => "application/octet-stream".to_owned(),
    }
}
