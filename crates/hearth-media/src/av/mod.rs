//! Turning a discoverer result into a [`Probe`] for audio and video files.

mod failure;
mod mime;
mod tags;

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_pbutils as pbutils;
use gstreamer_pbutils::prelude::*;

use crate::MediaError;
use crate::deadline::Deadline;
use crate::discover::Discovered;
use crate::types::{AudioStream, MediaKind, Probe, VideoStream};

use failure::{discovery_error, missing_plugins_error, no_streams_error};
use mime::serve_mime;
use tags::{read_tags, tag_lists};

/// Builds the probe of an audio or video file, or the error that explains why
/// there is none.
///
/// `sniffed_mime` is what the magic bytes matched (`None` when nothing did),
/// and `file_len` is the size in bytes used for the average bit rate.
pub(crate) fn probe_from_discovered(
    path: &Path,
    file_len: u64,
    sniffed_mime: Option<&str>,
    discovered: &Discovered,
    deadline: &Deadline,
) -> Result<Probe, MediaError> {
    let info = &discovered.info;

    let (video_infos, still_infos): (Vec<_>, Vec<_>) = info
        .video_streams()
        .into_iter()
        .partition(|video| !video.is_image());
    let audio_infos = info.audio_streams();

    match info.result() {
        pbutils::DiscovererResult::Ok => {}
        pbutils::DiscovererResult::Timeout => return Err(deadline.timeout_error(path)),
        // Demuxing worked but a decoder is missing: the streams are still
        // described by their caps, which is all a probe needs.
        pbutils::DiscovererResult::MissingPlugins
            if !video_infos.is_empty() || !audio_infos.is_empty() => {}
        pbutils::DiscovererResult::MissingPlugins => {
            return Err(missing_plugins_error(path, sniffed_mime, info));
        }
        _ => {
            return Err(discovery_error(
                path,
                sniffed_mime,
                discovered.error.as_ref(),
            ));
        }
    }

    let video = video_infos.first().map(video_stream);
    let audio = audio_infos.first().map(audio_stream);
    if video.is_none() && audio.is_none() {
        return Err(no_streams_error(path, sniffed_mime, info, &still_infos));
    }

    let duration = info.duration().filter(|duration| duration.nseconds() > 0);
    let Some(duration) = duration else {
        return Err(MediaError::Corrupt {
            path: path.to_path_buf(),
            reason:
                "gstreamer found no duration, so the file is probably truncated or lacks its index"
                    .to_owned(),
        });
    };
    let duration_ms = duration.mseconds();

    let kind = if video.is_some() {
        MediaKind::Video
    } else {
        MediaKind::Audio
    };
    let container = outer_container(info).or_else(|| {
        // WAV and AIFF are reported as one stream with the container's caps.
        let caps = audio_infos.first()?.caps()?;
        is_container_caps_as_stream(&caps).then_some(caps)
    });
    let container_structure = container.as_ref().and_then(|caps| caps.structure(0));
    let first_stream_caps = audio_infos
        .first()
        .and_then(|audio| audio.caps())
        .or_else(|| video_infos.first().and_then(|video| video.caps()));
    let mime = serve_mime(
        kind,
        container_structure,
        first_stream_caps
            .as_ref()
            .and_then(|caps| caps.structure(0)),
        sniffed_mime,
    );

    let tag_lists = tag_lists(info);
    let tags = read_tags(&tag_lists);
    let has_cover_art = tag_lists.iter().any(|list| {
        list.get::<gst::tags::Image>().is_some() || list.get::<gst::tags::PreviewImage>().is_some()
    });

    // Average over the whole file, as ffprobe reports it: size × 8 / duration.
    let bit_rate = (duration.nseconds() > 0).then(|| {
        let bits = u128::from(file_len) * 8 * 1_000_000_000;
        u64::try_from(bits / u128::from(duration.nseconds())).unwrap_or(u64::MAX)
    });

    Ok(Probe {
        kind,
        mime,
        container: container.as_ref().map(container_description),
        duration_ms: Some(duration_ms),
        bit_rate,
        video,
        audio,
        tags,
        image: None,
        has_cover_art,
    })
}

/// Returns the first embedded picture (`image` tag, else `preview-image`).
pub(crate) fn cover_art(discovered: &Discovered) -> Option<gst::Sample> {
    let lists = tag_lists(&discovered.info);
    let image = lists
        .iter()
        .find_map(|list| list.get::<gst::tags::Image>().map(|value| value.get()));
    image.or_else(|| {
        lists.iter().find_map(|list| {
            list.get::<gst::tags::PreviewImage>()
                .map(|value| value.get())
        })
    })
}

fn video_stream(video: &pbutils::DiscovererVideoInfo) -> VideoStream {
    // Some demuxers (mpegpsdemux) report a stream before its parser has read
    // the sequence header; the parsed stream then follows in the `next` chain.
    let video = deepest_video(video);
    let caps = video.caps();
    let structure = caps.as_ref().and_then(|caps| caps.structure(0));

    let width = nonzero(video.width()).or_else(|| caps_int(structure, "width"));
    let height = nonzero(video.height()).or_else(|| caps_int(structure, "height"));
    let frame_rate = fraction_to_f64(video.framerate()).or_else(|| {
        let fraction = structure?.get::<gst::Fraction>("framerate").ok()?;
        fraction_to_f64(fraction)
    });

    VideoStream {
        codec: codec_description(caps.as_ref()),
        width,
        height,
        frame_rate,
        bit_rate: nonzero(video.bitrate()).map(u64::from),
    }
}

fn deepest_video(video: &pbutils::DiscovererVideoInfo) -> pbutils::DiscovererVideoInfo {
    let mut deepest = video.clone();
    let mut current = video.next();
    while let Some(stream) = current {
        if let Some(next_video) = stream.downcast_ref::<pbutils::DiscovererVideoInfo>() {
            deepest = next_video.clone();
        }
        current = stream.next();
    }
    deepest
}

fn audio_stream(audio: &pbutils::DiscovererAudioInfo) -> AudioStream {
    let caps = audio.caps();
    // For WAV and AIFF the caps describe the container; the parser's
    // `audio-codec` tag names the codec inside ("Uncompressed 16-bit PCM audio").
    let codec_tag = caps
        .as_ref()
        .filter(|caps| is_container_caps_as_stream(caps))
        .and_then(|_| audio.tags())
        .and_then(|tags| {
            tags.get::<gst::tags::AudioCodec>()
                .map(|value| value.get().to_owned())
        });

    AudioStream {
        codec: codec_tag.unwrap_or_else(|| codec_description(caps.as_ref())),
        channels: nonzero(audio.channels()),
        sample_rate: nonzero(audio.sample_rate()),
        bit_rate: nonzero(audio.bitrate()).map(u64::from),
    }
}

/// Returns whether the discoverer reports this container as a stream of its
/// own caps, as it does for formats whose parser outputs raw audio.
fn is_container_caps_as_stream(caps: &gst::Caps) -> bool {
    caps.structure(0).is_some_and(|structure| {
        matches!(
            structure.name().as_str(),
            "audio/x-wav" | "audio/x-aiff" | "audio/x-w64"
        )
    })
}

fn container_description(caps: &gst::Caps) -> String {
    let is_m4a = caps
        .structure(0)
        .is_some_and(|structure| structure.name() == "audio/x-m4a");
    if is_m4a {
        // pbutils describes these caps as the codec ("MPEG-4 AAC"); this is
        // the name qtdemux gives the container in its `container-format` tag.
        return "ISO MP4/M4A".to_owned();
    }
    pbutils::pb_utils_get_codec_description(caps).to_string()
}

fn codec_description(caps: Option<&gst::Caps>) -> String {
    match caps {
        Some(caps) => pbutils::pb_utils_get_codec_description(caps).to_string(),
        None => "unknown".to_owned(),
    }
}

fn nonzero(value: u32) -> Option<u32> {
    (value > 0).then_some(value)
}

fn caps_int(structure: Option<&gst::StructureRef>, field: &str) -> Option<u32> {
    let value = structure?.get::<i32>(field).ok()?;
    u32::try_from(value).ok().filter(|value| *value > 0)
}

fn fraction_to_f64(fraction: gst::Fraction) -> Option<f64> {
    let (numer, denom) = (fraction.numer(), fraction.denom());
    (numer > 0 && denom > 0).then(|| f64::from(numer) / f64::from(denom))
}

/// Returns the caps of the outermost real container, skipping ID3 and APE tag
/// wrappers that GStreamer reports as containers around bare MP3 and similar
/// streams.
fn outer_container(info: &pbutils::DiscovererInfo) -> Option<gst::Caps> {
    let mut current = info.stream_info()?;
    loop {
        let container = current.downcast_ref::<pbutils::DiscovererContainerInfo>()?;
        let caps = container.caps()?;
        let name = caps.structure(0)?.name();
        if name == "application/x-id3" || name == "application/x-apetag" {
            current = container.streams().into_iter().next()?;
            continue;
        }
        return Some(caps);
    }
}
