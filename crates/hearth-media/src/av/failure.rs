//! Errors for audio and video files that could not be probed.

use std::path::Path;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer_pbutils as pbutils;
use gstreamer_pbutils::prelude::*;

use crate::MediaError;

/// Explains a file in which GStreamer found neither audio nor video.
pub(super) fn no_streams_error(
    path: &Path,
    sniffed_mime: Option<&str>,
    info: &pbutils::DiscovererInfo,
    stills: &[pbutils::DiscovererVideoInfo],
) -> MediaError {
    let caps_name = |caps: gst::Caps| {
        caps.structure(0)
            .map(|structure| structure.name().to_string())
    };

    // GStreamer recognised a still image in a format the image probe does not read.
    if let Some(format) = stills
        .first()
        .and_then(|still| still.caps())
        .and_then(caps_name)
    {
        return MediaError::Unsupported {
            path: path.to_path_buf(),
            format,
        };
    }

    // Typefinders also recognise text formats such as WebVTT subtitles. When
    // no magic bytes claimed the file as media, it is simply not media.
    if sniffed_mime.is_none() {
        return MediaError::NotMedia {
            path: path.to_path_buf(),
            detected: info
                .stream_info()
                .and_then(|stream| stream.caps())
                .and_then(caps_name),
        };
    }

    MediaError::Corrupt {
        path: path.to_path_buf(),
        reason: "gstreamer found no audio or video stream in it".to_owned(),
    }
}

/// Explains a discovery that failed for lack of plugins and found no streams.
pub(super) fn missing_plugins_error(
    path: &Path,
    sniffed_mime: Option<&str>,
    info: &pbutils::DiscovererInfo,
) -> MediaError {
    let missing = info
        .missing_elements_installer_details()
        .iter()
        .find_map(|detail| missing_caps_name(detail));

    match (missing, sniffed_mime) {
        (Some(caps), _) if is_media_caps(&caps) => MediaError::Unsupported {
            path: path.to_path_buf(),
            format: caps,
        },
        (_, Some(mime)) => MediaError::Unsupported {
            path: path.to_path_buf(),
            format: mime.to_owned(),
        },
        (detected, None) => MediaError::NotMedia {
            path: path.to_path_buf(),
            detected,
        },
    }
}

/// Extracts the caps name from a missing-plugin installer detail such as
/// "gstreamer|1.0|app|PDF decoder|decoder-application/pdf".
fn missing_caps_name(detail: &str) -> Option<String> {
    let last = detail.rsplit('|').next()?;
    let (_, caps) = last.split_once('-')?;
    let name = caps.split(',').next()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn is_media_caps(caps_name: &str) -> bool {
    ["audio/", "video/", "image/"]
        .iter()
        .any(|prefix| caps_name.starts_with(prefix))
}

/// Explains a discovery that ended with an error.
pub(super) fn discovery_error(
    path: &Path,
    sniffed_mime: Option<&str>,
    error: Option<&glib::Error>,
) -> MediaError {
    // A file that vanished or lost its permissions during discovery shows up
    // as a GStreamer resource error; report the operating system's reason.
    if let Err(source) = std::fs::File::open(path) {
        return MediaError::Io {
            path: path.to_path_buf(),
            source,
        };
    }

    let Some(error) = error else {
        return MediaError::Corrupt {
            path: path.to_path_buf(),
            reason: "gstreamer could not read it and gave no reason".to_owned(),
        };
    };

    let type_not_found = error.kind::<gst::StreamError>() == Some(gst::StreamError::TypeNotFound);
    match (type_not_found, sniffed_mime) {
        (true, None) => MediaError::NotMedia {
            path: path.to_path_buf(),
            detected: None,
        },
        (true, Some(mime)) => MediaError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "its first bytes look like {mime} but gstreamer cannot recognise the rest ({error})"
            ),
        },
        (false, _) => MediaError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("gstreamer reported: {error}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_plugin_detail_yields_caps_name() {
        let detail = "gstreamer|1.0|app|PDF decoder|decoder-application/pdf";
        assert_eq!(
            missing_caps_name(detail).as_deref(),
            Some("application/pdf")
        );
        let detail = "gstreamer|1.0|app|H.265 decoder|decoder-video/x-h265, profile=(string)main";
        assert_eq!(missing_caps_name(detail).as_deref(), Some("video/x-h265"));
    }

    #[test]
    fn media_caps_are_recognised() {
        assert!(is_media_caps("video/x-h265"));
        assert!(is_media_caps("image/x-xcf"));
        assert!(!is_media_caps("application/pdf"));
    }
}
