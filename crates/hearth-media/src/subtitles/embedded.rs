//! Subtitle streams inside a container, as GStreamer's discoverer reports them.

use std::fs::File;
use std::path::Path;

use gstreamer as gst;
use gstreamer_pbutils as pbutils;
use gstreamer_pbutils::prelude::*;

use super::{SubtitleSource, SubtitleTrack};
use crate::MediaError;
use crate::deadline::Deadline;
use crate::discover::discover;

/// Codec of a subtitle stream and whether it is text that GStreamer decodes
/// to `text/x-raw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StreamCodec {
    /// FFmpeg's codec name, or the caps name for formats not listed here.
    pub(super) name: String,
    pub(super) is_text: bool,
}

/// One subtitle stream found by the discoverer.
pub(super) struct EmbeddedStream {
    pub(super) track: SubtitleTrack,
    /// Stream id that the demuxer gave the stream, used to find its pad again.
    pub(super) stream_id: Option<String>,
}

/// Lists the subtitle streams of `media`.
pub(super) fn list_embedded(
    media: &Path,
    deadline: &Deadline,
) -> Result<Vec<SubtitleTrack>, MediaError> {
    let streams = discover_streams(media, deadline)?;
    Ok(streams.into_iter().map(|stream| stream.track).collect())
}

/// Runs the discoverer on `media` and describes its subtitle streams in the
/// discoverer's order.
pub(super) fn discover_streams(
    media: &Path,
    deadline: &Deadline,
) -> Result<Vec<EmbeddedStream>, MediaError> {
    let discovered = discover(media, deadline)?;
    let info = &discovered.info;

    match info.result() {
        // With missing plugins the streams are still described by their caps.
        pbutils::DiscovererResult::Ok | pbutils::DiscovererResult::MissingPlugins => {}
        pbutils::DiscovererResult::Timeout => return Err(deadline.timeout_error(media)),
        _ => {
            if let Err(source) = File::open(media) {
                return Err(MediaError::Io {
                    path: media.to_path_buf(),
                    source,
                });
            }
            let reason = match &discovered.error {
                Some(error) => format!("gstreamer could not read its streams: {error}"),
                None => "gstreamer could not read its streams".to_owned(),
            };
            return Err(MediaError::Corrupt {
                path: media.to_path_buf(),
                reason,
            });
        }
    }

    let streams = info
        .subtitle_streams()
        .iter()
        .enumerate()
        .map(|(index, subtitle)| describe_stream(index, subtitle))
        .collect();
    Ok(streams)
}

fn describe_stream(index: usize, subtitle: &pbutils::DiscovererSubtitleInfo) -> EmbeddedStream {
    let caps = subtitle.caps();
    let tags = subtitle.tags();
    let codec_tag = tags
        .as_ref()
        .and_then(|tags| tags.get::<gst::tags::SubtitleCodec>())
        .map(|value| value.get().to_owned());
    let container = subtitle.previous().and_then(|container| container.caps()).and_then(|caps| caps_name(&caps)).unwrap_or_default();
    let in_matroska = container == "video/x-matroska" || container == "video/webm";
    let in_quicktime = container == "video/quicktime";
    let codec = stream_codec(caps.as_ref(), codec_tag.as_deref(), in_matroska, in_quicktime);

    // The stream's language, else its language tag. The discoverer can
    // finish before a sparse subtitle stream has sent its tags, so the
    // language is sometimes unknown; callers must cope with `None`.
    let language = subtitle
        .language()
        .map(|language| language.to_string())
        .or_else(|| tags.as_ref().and_then(|tags| tags.get::<gst::tags::LanguageCode>()).map(|value| value.get().to_owned()))
        .map(|language| language.to_ascii_lowercase())
        .filter(|language| !language.is_empty() && language != "und");
    let title = tags
        .as_ref()
        .and_then(|tags| tags.get::<gst::tags::Title>())
        .map(|value| value.get().trim().to_owned())
        .filter(|title| !title.is_empty());

    let track = SubtitleTrack {
        id: format!("embedded:{index}"),
        source: SubtitleSource::Embedded { index },
        language,
        label: title.unwrap_or_else(|| format!("Subtitle {}", index + 1)),
        codec: codec.name,
        convertible: codec.is_text,
    };
    EmbeddedStream {
        track,
        stream_id: subtitle.stream_id().map(|id| id.to_string()),
    }
}

fn caps_name(caps: &gst::CapsRef) -> Option<String> {
    caps.structure(0)
        .map(|structure| structure.name().to_string())
}

/// Maps the discoverer's caps of a subtitle stream to a codec.
///
/// Demuxers in GStreamer 1.22 already output some formats as raw text:
/// Matroska's `S_TEXT/UTF8` (SubRip) as Pango markup, and MP4's `tx3g`
/// (`mov_text`) as plain text with the `subtitle-codec` tag "3GPP timed
/// text". `codec_tag` is that tag, `in_matroska` is true for streams from
/// Matroska or WebM, and `in_quicktime` for streams from MP4 or QuickTime.
/// The discoverer can finish before a sparse subtitle stream sends its tags
/// (seen under load), so raw text from MP4, whose only text subtitle format
/// is `tx3g`, counts as `mov_text` without the tag too.
pub(super) fn stream_codec(
    caps: Option<&gst::Caps>,
    codec_tag: Option<&str>,
    in_matroska: bool,
    in_quicktime: bool,
) -> StreamCodec {
    let name = caps.and_then(|caps| caps_name(caps)).unwrap_or_default();
    let is_tx3g = codec_tag.is_some_and(|tag| {
        let tag = tag.to_ascii_lowercase();
        tag.contains("3gpp") || tag.contains("timed text")
    });

    let (codec, is_text) = match name.as_str() {
        "text/x-raw" if is_tx3g || in_quicktime => ("mov_text", true),
        "text/x-raw" if in_matroska => ("subrip", true),
        "text/x-raw" => ("text", true),
        "application/x-subtitle" => ("subrip", true),
        "application/x-subtitle-tx3g" => ("mov_text", true),
        "application/x-ass" => ("ass", true),
        "application/x-ssa" => ("ssa", true),
        "application/x-subtitle-vtt" => ("webvtt", true),
        "subpicture/x-pgs" => ("hdmv_pgs_subtitle", false),
        "subpicture/x-dvb" => ("dvb_subtitle", false),
        "subpicture/x-dvd" => ("dvd_subtitle", false),
        // Teletext and Kate may carry text, but no decoder for them was
        // tested here, so they are listed as not convertible.
        "application/x-teletext" => ("dvb_teletext", false),
        "subtitle/x-kate" | "application/x-kate" => ("kate", false),
        "" => ("unknown", false),
        other => {
            return StreamCodec {
                name: other.to_owned(),
                is_text: false,
            };
        }
    };
    StreamCodec {
        name: codec.to_owned(),
        is_text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec_of(caps: &str, tag: Option<&str>, in_matroska: bool) -> (String, bool) {
        crate::init().unwrap();
        let caps: gst::Caps = caps.parse().unwrap();
        let codec = stream_codec(Some(&caps), tag, in_matroska, false);
        (codec.name, codec.is_text)
    }

    #[test]
    fn codec_names_for_text_streams() {
        assert_eq!(
            codec_of("text/x-raw, format=pango-markup", None, true),
            ("subrip".into(), true)
        );
        assert_eq!(
            codec_of("text/x-raw, format=utf8", Some("3GPP timed text"), false),
            ("mov_text".into(), true)
        );
        assert_eq!(
            codec_of("text/x-raw, format=utf8", None, false),
            ("text".into(), true)
        );
        crate::init().unwrap();
        let raw: gst::Caps = "text/x-raw, format=utf8".parse().unwrap();
        assert_eq!(
            stream_codec(Some(&raw), None, false, true).name,
            "mov_text",
            "raw text from MP4 before its tags arrive"
        );
        assert_eq!(
            codec_of("application/x-ass", None, true),
            ("ass".into(), true)
        );
        assert_eq!(
            codec_of("application/x-ssa", None, true),
            ("ssa".into(), true)
        );
    }

    #[test]
    fn codec_names_for_bitmap_streams() {
        assert_eq!(
            codec_of("subpicture/x-pgs", None, true),
            ("hdmv_pgs_subtitle".into(), false)
        );
        assert_eq!(
            codec_of("subpicture/x-dvb", None, false),
            ("dvb_subtitle".into(), false)
        );
        assert_eq!(
            codec_of("subpicture/x-dvd", None, true),
            ("dvd_subtitle".into(), false)
        );
        assert_eq!(
            codec_of("application/x-subtitle-unknown", None, true),
            ("application/x-subtitle-unknown".into(), false)
        );
        assert_eq!(stream_codec(None, None, false, false).name, "unknown");
    }
}
