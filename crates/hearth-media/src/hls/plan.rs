//! Deciding how a client plays an item: direct play, HLS with the source's
//! H.264 copied into new segments (remux), or HLS with a transcoded ladder.
//! Every value a client may choose is an enum or a checked range here, so
//! nothing a request carries reaches a pipeline as text.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::types::Probe;

/// Length of every HLS segment but the first and the last, in seconds.
/// Each segment starts with an IDR frame at its boundary, so a seek lands
/// on one.
pub const SEGMENT_SECONDS: u32 = 4;

/// Length of the first segment, in seconds: shorter, so that playback
/// from the start begins after half the encoding work.
pub const FIRST_SEGMENT_SECONDS: u32 = 2;

const NS_PER_MS: u64 = 1_000_000;

/// Returns the start of segment `k` in milliseconds: 0, 2000, 6000, 10000, …
pub fn segment_start_ms(k: u32) -> u64 {
    if k == 0 { 0 } else { u64::from(FIRST_SEGMENT_SECONDS) * 1000 + u64::from(k - 1) * u64::from(SEGMENT_SECONDS) * 1000 }
}

/// Returns the segment that contains stream time `ns`.
pub fn segment_of_ns(ns: u64) -> u32 {
    let first = u64::from(FIRST_SEGMENT_SECONDS) * 1000 * NS_PER_MS;
    if ns < first {
        return 0;
    }
    let rest = (ns - first) / (u64::from(SEGMENT_SECONDS) * 1000 * NS_PER_MS);
    u32::try_from(rest + 1).unwrap_or(u32::MAX)
}

/// Where the segments of a playback start.
///
/// A transcode forces an IDR frame at each boundary of the fixed grid. A
/// remux cannot add key frames, so its segments start at the source's own:
/// the first key frame at least [`SEGMENT_SECONDS`] after the previous
/// boundary ([`FIRST_SEGMENT_SECONDS`] for the first). The transcoded rungs
/// of a remuxed playback use the same boundaries, so every rendition's
/// segment `k` covers the same time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SegmentGrid {
    /// 0, 2 s, 6 s, 10 s, …
    #[default]
    Fixed,
    /// Segment `k` starts at `boundaries[k]` nanoseconds; the first is 0.
    Keyframes(Arc<[u64]>),
}

impl SegmentGrid {
    /// Builds the grid of a source whose key frames are at `keyframes_ns`
    /// (stream time) and which lasts `duration_ms`.
    pub fn from_keyframes(keyframes_ns: &[u64], duration_ms: u64) -> SegmentGrid {
        let duration_ns = duration_ms * NS_PER_MS;
        let mut boundaries = vec![0u64];
        let mut sorted = keyframes_ns.to_vec();
        sorted.sort_unstable();
        for keyframe in sorted {
            let last = *boundaries.last().unwrap_or(&0);
            let span = if boundaries.len() == 1 { FIRST_SEGMENT_SECONDS } else { SEGMENT_SECONDS };
            // 1 ms of slack for time stamps rounded by the container.
            let due = last.saturating_add(u64::from(span) * 1000 * NS_PER_MS);
            if keyframe.saturating_add(NS_PER_MS) >= due && keyframe < duration_ns {
                boundaries.push(keyframe);
            }
        }
        SegmentGrid::Keyframes(boundaries.into())
    }

    /// Returns the longest segment of an item `duration_ms` long, in
    /// milliseconds. A copy whose longest segment exceeds
    /// [`MAX_COPY_SEGMENT_SECONDS`] is not worth making: see there.
    pub fn longest_ms(&self, duration_ms: u64) -> u64 {
        (0..self.count(duration_ms)).map(|k| self.length_ms(k, duration_ms)).max().unwrap_or(0)
    }

    /// Returns the start of segment `k` in nanoseconds; past the last
    /// segment of a key frame grid, `u64::MAX`.
    pub fn start_ns(&self, k: u32) -> u64 {
        match self {
            SegmentGrid::Fixed => segment_start_ms(k) * NS_PER_MS,
            SegmentGrid::Keyframes(boundaries) => boundaries.get(k as usize).copied().unwrap_or(u64::MAX),
        }
    }

    /// Returns the segment that contains stream time `ns`.
    pub fn segment_of_ns(&self, ns: u64) -> u32 {
        match self {
            SegmentGrid::Fixed => segment_of_ns(ns),
            SegmentGrid::Keyframes(boundaries) => {
                let after = boundaries.partition_point(|start| *start <= ns);
                u32::try_from(after.saturating_sub(1)).unwrap_or(u32::MAX)
            }
        }
    }

    /// Returns the number of segments of an item `duration_ms` long.
    pub fn count(&self, duration_ms: u64) -> u32 {
        match self {
            SegmentGrid::Fixed => segment_count(duration_ms),
            SegmentGrid::Keyframes(boundaries) => u32::try_from(boundaries.len()).unwrap_or(u32::MAX),
        }
    }

    /// Returns the length of segment `k` of an item `duration_ms` long, in
    /// milliseconds (at least 1).
    pub fn length_ms(&self, k: u32, duration_ms: u64) -> u64 {
        let duration_ns = duration_ms * NS_PER_MS;
        let start = self.start_ns(k).min(duration_ns);
        let end = self.start_ns(k + 1).min(duration_ns);
        (end.saturating_sub(start) / NS_PER_MS).max(1)
    }

    /// Returns the playlist's target duration: the longest segment, rounded
    /// to whole seconds as RFC 8216 requires.
    pub fn target_duration_s(&self, duration_ms: u64) -> u64 {
        let longest_ms = match self {
            SegmentGrid::Fixed => u64::from(SEGMENT_SECONDS) * 1000,
            SegmentGrid::Keyframes(_) => (0..self.count(duration_ms)).map(|k| self.length_ms(k, duration_ms)).max().unwrap_or(1000),
        };
        ((longest_ms + 500) / 1000).max(1)
    }
}

/// Container of the media segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SegmentFormat {
    /// Fragmented MP4 (CMAF), for players that use Media Source Extensions.
    #[default]
    Fmp4,
    /// MPEG transport stream, for native players, which all read it.
    Ts,
}

impl SegmentFormat {
    /// Returns the format a client with `hls` support gets.
    pub fn for_client(hls: HlsSupport) -> SegmentFormat {
        if hls == HlsSupport::Native { SegmentFormat::Ts } else { SegmentFormat::Fmp4 }
    }

    /// Returns the file extension of a media segment.
    pub fn extension(self) -> &'static str {
        match self {
            SegmentFormat::Fmp4 => "m4s",
            SegmentFormat::Ts => "ts",
        }
    }
}

/// Longest segment a copy may have, in seconds. A source with key frames
/// further apart (screen recordings, intra-refresh streams, open-GOP
/// broadcasts whose I-frames are not IDR frames, damaged files) would make
/// segments of minutes that a player waits for and the server holds in
/// memory, so such a source is transcoded on the fixed grid instead.
pub const MAX_COPY_SEGMENT_SECONDS: u64 = 10;

/// Returns whether an H.264 access unit in AVC form (NAL units each after a
/// big-endian length of `length_size` bytes) holds an IDR slice. Only an IDR
/// frame starts a segment that decodes on its own: after an I-frame of an
/// open GOP, leading pictures still refer to the frames before it.
pub fn has_idr(access_unit: &[u8], length_size: usize) -> bool {
    if !(1..=4).contains(&length_size) {
        return false;
    }
    let mut rest = access_unit;
    while rest.len() > length_size {
        let length = rest[..length_size].iter().fold(0usize, |n, byte| (n << 8) | usize::from(*byte));
        let Some(nal) = rest.get(length_size..length_size + length) else { return false };
        if nal.first().is_some_and(|header| header & 0x1f == 5) {
            return true;
        }
        rest = &rest[length_size + length..];
    }
    false
}

/// Returns the NAL length size of an AVCDecoderConfigurationRecord (4 when
/// the record is too short to say).
pub fn avc_length_size(avcc: &[u8]) -> usize {
    avcc.get(4).map_or(4, |byte| usize::from(byte & 0x03) + 1)
}

/// Most audio tracks a client may choose among (0 to 15).
pub const MAX_AUDIO_TRACK: u8 = 15;

/// One rung of the adaptive ladder, or the audio-only stream of music.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Rendition {
    /// The source's H.264 as it is, in new segments (remux).
    #[serde(rename = "original")]
    Original,
    /// 1080 lines, 5 Mbit/s.
    #[serde(rename = "1080p")]
    P1080,
    /// 720 lines, 2.8 Mbit/s.
    #[serde(rename = "720p")]
    P720,
    /// 480 lines, 1.2 Mbit/s.
    #[serde(rename = "480p")]
    P480,
    /// 360 lines, 0.7 Mbit/s.
    #[serde(rename = "360p")]
    P360,
    /// AAC audio only, for sound files.
    #[serde(rename = "audio")]
    Audio,
}

impl Rendition {
    /// Every rendition, largest first.
    pub const ALL: [Rendition; 6] = [Rendition::Original, Rendition::P1080, Rendition::P720, Rendition::P480, Rendition::P360, Rendition::Audio];

    /// Returns the name in URLs and JSON, such as `720p`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rendition::Original => "original",
            Rendition::P1080 => "1080p",
            Rendition::P720 => "720p",
            Rendition::P480 => "480p",
            Rendition::P360 => "360p",
            Rendition::Audio => "audio",
        }
    }

    /// Parses [`Rendition::as_str`]'s names and nothing else.
    pub fn parse(text: &str) -> Option<Rendition> {
        Rendition::ALL.into_iter().find(|rendition| rendition.as_str() == text)
    }

    /// Target frame height; `None` for audio and for the original.
    pub fn height(self) -> Option<u32> {
        match self {
            Rendition::Original => None,
            Rendition::P1080 => Some(1080),
            Rendition::P720 => Some(720),
            Rendition::P480 => Some(480),
            Rendition::P360 => Some(360),
            Rendition::Audio => None,
        }
    }

    /// Video bit rate in kbit/s; 0 for audio, and for the original, whose
    /// rate is the source's.
    pub fn video_kbps(self) -> u32 {
        match self {
            Rendition::Original => 0,
            Rendition::P1080 => 5000,
            Rendition::P720 => 2800,
            Rendition::P480 => 1200,
            Rendition::P360 => 700,
            Rendition::Audio => 0,
        }
    }
}

/// AAC bit rate of every rendition, in bit/s.
pub const AUDIO_BPS: u32 = 128_000;

/// Output frame size of `rendition` for a source of `width` × `height`: the
/// rendition's height, never more than the source's, with the source's
/// aspect ratio and even sides (4:2:0 needs them).
pub fn output_size(rendition: Rendition, width: u32, height: u32) -> Option<(u32, u32)> {
    if width == 0 || height == 0 {
        return None;
    }
    if rendition == Rendition::Original {
        return Some((width, height));
    }
    let target = rendition.height()?;
    let out_height = target.min(height) & !1;
    let out_width = (u64::from(width) * u64::from(out_height) / u64::from(height)) as u32;
    // Wide sources are limited by width: 1920 for 1080p, and so on.
    let max_width = target * 16 / 9;
    if out_width > max_width {
        let out_height = (u64::from(height) * u64::from(max_width) / u64::from(width)) as u32;
        return Some((max_width & !1, (out_height & !1).max(2)));
    }
    Some(((out_width & !1).max(2), out_height.max(2)))
}

/// Returns the ladder for an item: every video rendition no taller than the source
/// (at least the smallest), or the audio rendition for sound.
pub fn ladder(probe: &Probe) -> Vec<Rendition> {
    let Some(video) = &probe.video else {
        return if probe.audio.is_some() { vec![Rendition::Audio] } else { Vec::new() };
    };
    let source_height = video.height.unwrap_or(0);
    let mut rungs: Vec<Rendition> = Rendition::ALL
        .into_iter()
        .filter(|rendition| rendition.height().is_some_and(|height| height <= source_height))
        .collect();
    if rungs.is_empty() {
        rungs.push(Rendition::P360);
    }
    rungs
}

/// Returns the ladder of a remuxed item: the original, then every
/// transcoded rung shorter than the source.
pub fn remux_ladder(probe: &Probe) -> Vec<Rendition> {
    let source_height = probe.video.as_ref().and_then(|video| video.height).unwrap_or(0);
    let mut rungs = vec![Rendition::Original];
    rungs.extend(ladder(probe).into_iter().filter(|rendition| rendition.height().is_some_and(|height| height < source_height)));
    rungs
}

/// Returns whether the source's H.264 can be copied for a client that
/// decodes H.264: 8-bit 4:2:0 profiles only, which every browser decodes.
pub fn copyable_h264(description: &str) -> bool {
    let d = description.to_ascii_lowercase();
    source_video_codec(description) == Some(VideoCodec::H264)
        && !["high 10", "high 4:2:2", "high 4:4:4", "intra", "cavlc"].iter().any(|profile| d.contains(profile))
}

/// Number of segments of an item `duration_ms` long.
pub fn segment_count(duration_ms: u64) -> u32 {
    let first_ms = u64::from(FIRST_SEGMENT_SECONDS) * 1000;
    if duration_ms <= first_ms {
        return 1;
    }
    let rest = (duration_ms - first_ms).div_ceil(u64::from(SEGMENT_SECONDS) * 1000);
    u32::try_from(rest + 1).unwrap_or(u32::MAX)
}

/// Video codecs a client may say it decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum VideoCodec {
    H264,
    Hevc,
    Vp8,
    Vp9,
    Av1,
    Theora,
    Mpeg2,
    Mpeg4,
}

/// Audio codecs a client may say it decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AudioCodec {
    Aac,
    Mp3,
    Opus,
    Vorbis,
    Flac,
    Pcm,
    Ac3,
}

/// Containers a client may say it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Container {
    Mp4,
    Webm,
    Matroska,
    Ogg,
    Mp3,
    Flac,
    Wav,
}

/// HLS support of a client, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HlsSupport {
    /// Media Source Extensions with a script player (hls.js).
    Mse,
    /// The platform's own HLS player (Safari, TVs).
    Native,
    /// No HLS: direct play only.
    #[default]
    None,
}

/// Codecs and containers a client reported it can decode. The web client fills it from
/// `MediaSource.isTypeSupported` and `canPlayType`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientCapabilities {
    #[serde(default)]
    pub video_codecs: Vec<VideoCodec>,
    #[serde(default)]
    pub audio_codecs: Vec<AudioCodec>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub hls: HlsSupport,
}

/// Treatment of one stream of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StreamPlan {
    /// The bytes go out as they are.
    Direct,
    /// Decoded and encoded again (H.264 or AAC).
    Transcode,
}

/// The decision for one item and one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum PlaybackPlan {
    /// The client opens the file itself, with range requests.
    Direct,
    /// HLS with the given ladder; `video` is `None` for sound.
    Hls { video: Option<StreamPlan>, audio: Option<StreamPlan>, renditions: Vec<Rendition>, reason: String },
}

/// Returns the container of a probed file, when it is one a client may name.
pub fn source_container(probe: &Probe) -> Option<Container> {
    let described = probe.container.as_deref().unwrap_or_default().to_ascii_lowercase();
    let mime = probe.mime.to_ascii_lowercase();
    if described.contains("quicktime") || described.contains("mp4") || mime.ends_with("/mp4") {
        Some(Container::Mp4)
    } else if described.contains("webm") || mime.ends_with("/webm") {
        Some(Container::Webm)
    } else if described.contains("matroska") {
        Some(Container::Matroska)
    } else if described.contains("ogg") || mime.ends_with("/ogg") {
        Some(Container::Ogg)
    } else if mime == "audio/mpeg" {
        Some(Container::Mp3)
    } else if mime.contains("flac") {
        Some(Container::Flac)
    } else if mime.contains("wav") {
        Some(Container::Wav)
    } else {
        None
    }
}

/// Returns the video codec of a probed stream, from GStreamer's description.
pub fn source_video_codec(description: &str) -> Option<VideoCodec> {
    let d = description.to_ascii_lowercase();
    // GStreamer says "H.264 (High Profile)", or "ITU H.264 (…)" for AVI.
    if d.contains("h.264") || d.contains("avc") {
        Some(VideoCodec::H264)
    } else if d.contains("h.265") || d.contains("hevc") {
        Some(VideoCodec::Hevc)
    } else if d.starts_with("vp8") {
        Some(VideoCodec::Vp8)
    } else if d.starts_with("vp9") {
        Some(VideoCodec::Vp9)
    } else if d.starts_with("av1") {
        Some(VideoCodec::Av1)
    } else if d.starts_with("theora") {
        Some(VideoCodec::Theora)
    } else if d.contains("mpeg-2 video") || d.contains("mpeg-1 video") {
        Some(VideoCodec::Mpeg2)
    } else if d.contains("mpeg-4 video") {
        Some(VideoCodec::Mpeg4)
    } else {
        None
    }
}

/// Returns the audio codec of a probed stream, from GStreamer's description.
pub fn source_audio_codec(description: &str) -> Option<AudioCodec> {
    let d = description.to_ascii_lowercase();
    if d.contains("aac") {
        Some(AudioCodec::Aac)
    } else if d.contains("layer 3") || d.contains("mp3") {
        Some(AudioCodec::Mp3)
    } else if d.contains("opus") {
        Some(AudioCodec::Opus)
    } else if d.contains("vorbis") {
        Some(AudioCodec::Vorbis)
    } else if d.contains("flac") {
        Some(AudioCodec::Flac)
    } else if d.contains("pcm") || d.contains("raw") {
        Some(AudioCodec::Pcm)
    } else if d.contains("ac-3") || d.contains("ac3") {
        Some(AudioCodec::Ac3)
    } else {
        None
    }
}

/// Decides direct play or HLS for `probe` on a client with `caps`.
///
/// Direct play needs the client to open the container and decode every
/// stream. Otherwise the item goes out as HLS, decided per stream: H.264
/// video that the client decodes is copied (remux, [`remux_ladder`]), other
/// video is transcoded to H.264; audio is transcoded to AAC-LC, which every
/// HLS client decodes. Returns an error message when the client can do
/// neither. A remux also needs the source's key frames: see
/// [`PlaybackPlan::without_copy`].
pub fn plan(probe: &Probe, caps: &ClientCapabilities) -> Result<PlaybackPlan, String> {
    let container = source_container(probe);
    let video = probe.video.as_ref().map(|stream| source_video_codec(&stream.codec));
    let audio = probe.audio.as_ref().map(|stream| source_audio_codec(&stream.codec));
    if video.is_none() && audio.is_none() {
        return Err("the item has neither audio nor video".to_owned());
    }

    let container_ok = container.is_some_and(|c| caps.containers.contains(&c));
    let video_ok = video.is_none_or(|codec| codec.is_some_and(|c| caps.video_codecs.contains(&c)));
    let audio_ok = audio.is_none_or(|codec| codec.is_some_and(|c| caps.audio_codecs.contains(&c)));
    if container_ok && video_ok && audio_ok {
        return Ok(PlaybackPlan::Direct);
    }

    if caps.hls == HlsSupport::None {
        return Err("the client cannot open this file directly and does not play HLS".to_owned());
    }
    let describe = |what: &str, known: Option<String>| known.unwrap_or_else(|| format!("an unknown {what}"));
    let reason = if !container_ok {
        format!("the client does not open {}", describe("container", container.map(|c| format!("{c:?}").to_lowercase())))
    } else if !video_ok {
        format!("the client does not decode {}", describe("video codec", probe.video.as_ref().map(|v| v.codec.clone())))
    } else {
        format!("the client does not decode {}", describe("audio codec", probe.audio.as_ref().map(|a| a.codec.clone())))
    };
    let copy = caps.video_codecs.contains(&VideoCodec::H264) && probe.video.as_ref().is_some_and(|stream| copyable_h264(&stream.codec));
    Ok(PlaybackPlan::Hls {
        video: video.map(|_| if copy { StreamPlan::Direct } else { StreamPlan::Transcode }),
        audio: audio.map(|_| StreamPlan::Transcode),
        renditions: if copy { remux_ladder(probe) } else { ladder(probe) },
        reason,
    })
}

impl PlaybackPlan {
    /// Turns a remux into a transcode, for a source whose key frames are
    /// not known (yet).
    pub fn without_copy(self, probe: &Probe) -> PlaybackPlan {
        match self {
            PlaybackPlan::Hls { video: Some(StreamPlan::Direct), audio, reason, .. } => {
                PlaybackPlan::Hls { video: Some(StreamPlan::Transcode), audio, renditions: ladder(probe), reason }
            }
            other => other,
        }
    }

    /// Returns whether the plan copies the source's video.
    pub fn copies_video(&self) -> bool {
        matches!(self, PlaybackPlan::Hls { video: Some(StreamPlan::Direct), .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AudioStream, MediaKind, Tags, VideoStream};

    fn probe(container: &str, mime: &str, video: Option<(&str, u32, u32)>, audio: Option<&str>) -> Probe {
        Probe {
            kind: if video.is_some() { MediaKind::Video } else { MediaKind::Audio },
            mime: mime.to_owned(),
            container: Some(container.to_owned()),
            duration_ms: Some(10_000),
            bit_rate: None,
            video: video.map(|(codec, width, height)| VideoStream {
                codec: codec.to_owned(),
                width: Some(width),
                height: Some(height),
                frame_rate: Some(25.0),
                bit_rate: None,
            }),
            audio: audio.map(|codec| AudioStream { codec: codec.to_owned(), channels: Some(2), sample_rate: Some(48_000), bit_rate: None }),
            tags: Tags::default(),
            image: None,
            has_cover_art: false,
        }
    }

    fn chromium() -> ClientCapabilities {
        ClientCapabilities {
            video_codecs: vec![VideoCodec::H264, VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::Av1],
            audio_codecs: vec![AudioCodec::Aac, AudioCodec::Mp3, AudioCodec::Opus, AudioCodec::Vorbis, AudioCodec::Flac],
            containers: vec![Container::Mp4, Container::Webm, Container::Ogg, Container::Mp3],
            hls: HlsSupport::Mse,
        }
    }

    #[test]
    fn mp4_with_h264_plays_directly() {
        let p = probe("Quicktime", "video/mp4", Some(("H.264 (Main Profile)", 1280, 720)), Some("MPEG-4 AAC"));
        assert_eq!(plan(&p, &chromium()).unwrap(), PlaybackPlan::Direct);
    }

    #[test]
    fn avi_and_theora_go_through_hls() {
        let avi = probe("AVI", "video/x-msvideo", Some(("ITU H.264 (High Profile)", 1920, 1080)), Some("MPEG-4 AAC"));
        let avi_plan = plan(&avi, &chromium()).unwrap();
        let PlaybackPlan::Hls { renditions, video, .. } = avi_plan.clone() else { panic!("AVI played directly") };
        assert_eq!(renditions, [Rendition::Original, Rendition::P720, Rendition::P480, Rendition::P360], "H.264 is copied");
        assert_eq!(video, Some(StreamPlan::Direct));
        let PlaybackPlan::Hls { renditions, video, .. } = avi_plan.without_copy(&avi) else { panic!("AVI played directly") };
        assert_eq!(renditions, [Rendition::P1080, Rendition::P720, Rendition::P480, Rendition::P360]);
        assert_eq!(video, Some(StreamPlan::Transcode));
        let ten_bit = probe("Matroska", "video/x-matroska", Some(("H.264 (High 10 Profile)", 1920, 1080)), Some("AC-3"));
        let PlaybackPlan::Hls { video, .. } = plan(&ten_bit, &chromium()).unwrap() else { panic!("10-bit played directly") };
        assert_eq!(video, Some(StreamPlan::Transcode), "browsers do not decode High 10");
        let ogg = probe("Ogg", "video/ogg", Some(("Theora", 320, 240)), Some("Vorbis"));
        let PlaybackPlan::Hls { renditions, reason, .. } = plan(&ogg, &chromium()).unwrap() else { panic!("Theora played directly") };
        assert_eq!(renditions, [Rendition::P360], "a small source gets the smallest rung");
        assert!(reason.contains("Theora"), "{reason}");
    }

    #[test]
    fn no_hls_and_no_direct_is_an_error() {
        let avi = probe("AVI", "video/x-msvideo", Some(("MPEG-4 Video", 640, 480)), Some("MPEG-1 Layer 3 (MP3)"));
        let caps = ClientCapabilities { hls: HlsSupport::None, ..chromium() };
        assert!(plan(&avi, &caps).is_err());
    }

    #[test]
    fn sound_gets_the_audio_rendition() {
        let wma = probe("ASF", "audio/x-ms-asf", None, Some("Windows Media Audio 9"));
        let PlaybackPlan::Hls { renditions, video, audio, .. } = plan(&wma, &chromium()).unwrap() else { panic!("WMA played directly") };
        assert_eq!((renditions, video, audio), (vec![Rendition::Audio], None, Some(StreamPlan::Transcode)));
    }

    #[test]
    fn output_sizes_keep_aspect_and_even_sides() {
        assert_eq!(output_size(Rendition::P720, 1920, 1080), Some((1280, 720)));
        assert_eq!(output_size(Rendition::P480, 1920, 1080), Some((852, 480)));
        assert_eq!(output_size(Rendition::P720, 320, 240), Some((320, 240)), "never upscaled");
        assert_eq!(output_size(Rendition::P720, 2560, 720), Some((1280, 360)), "wide sources are limited by width");
        assert_eq!(output_size(Rendition::P360, 0, 0), None);
        assert_eq!(output_size(Rendition::Audio, 640, 480), None);
    }

    #[test]
    fn renditions_parse_only_their_names() {
        for rendition in Rendition::ALL {
            assert_eq!(Rendition::parse(rendition.as_str()), Some(rendition));
        }
        for bad in ["720", "720P", "720p ", "720p!", "../720p", "", "1080p\0"] {
            assert_eq!(Rendition::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn segment_counts_round_up() {
        assert_eq!(segment_count(0), 1);
        assert_eq!(segment_count(2000), 1);
        assert_eq!(segment_count(2001), 2);
        assert_eq!(segment_count(6000), 2);
        assert_eq!(segment_count(6001), 3);
        assert_eq!(segment_count(30_033), 9);
    }

    #[test]
    fn keyframe_grid_starts_segments_on_key_frames() {
        let s = 1_000_000_000u64;
        // Key frames every 1.5 s, and one just short of 2 s by a rounding.
        let keyframes = [0, 3 * s / 2, 2 * s - 500_000, 3 * s, 9 * s / 2, 6 * s, 15 * s / 2, 9 * s];
        let grid = SegmentGrid::from_keyframes(&keyframes, 9_500);
        assert_eq!(grid, SegmentGrid::Keyframes(vec![0, 2 * s - 500_000, 6 * s].into()));
        assert_eq!(grid.count(9_500), 3);
        assert_eq!([0, 1, 2].map(|k| grid.length_ms(k, 9_500)), [1999, 4000, 3500]);
        assert_eq!(grid.target_duration_s(9_500), 4);
        assert_eq!([0, 2 * s - 500_001, 2 * s - 500_000, 7 * s, 20 * s].map(|ns| grid.segment_of_ns(ns)), [0, 0, 1, 2, 2]);
        assert_eq!(grid.start_ns(3), u64::MAX);
        // Sparse key frames make long segments, and the target duration says so.
        let sparse = SegmentGrid::from_keyframes(&[0, 10 * s], 20_000);
        assert_eq!((sparse.count(20_000), sparse.target_duration_s(20_000)), (2, 10));
    }

    #[test]
    fn idr_detection_reads_nal_types() {
        let unit = |types: &[u8]| -> Vec<u8> {
            types.iter().flat_map(|t| [0, 0, 0, 2, *t, 0x88]).collect()
        };
        assert!(has_idr(&unit(&[0x09, 0x67, 0x68, 0x65]), 4), "AUD, SPS, PPS, IDR slice");
        assert!(!has_idr(&unit(&[0x09, 0x06, 0x01]), 4), "AUD, SEI, non-IDR slice: an open-GOP I-frame");
        assert!(!has_idr(&[0, 0, 0, 9, 0x65], 4), "a length past the end");
        assert_eq!(avc_length_size(&[1, 0x64, 0, 0x1f, 0xff]), 4);
        assert_eq!(avc_length_size(&[1, 0x64, 0, 0x1f, 0xfd]), 2);
        let sparse = SegmentGrid::from_keyframes(&[0, 30_000_000_000], 60_000);
        assert_eq!(sparse.longest_ms(60_000), 30_000);
    }

    #[test]
    fn fixed_grid_matches_the_free_functions() {
        let grid = SegmentGrid::Fixed;
        for k in 0..20 {
            assert_eq!(grid.start_ns(k), segment_start_ms(k) * NS_PER_MS);
            assert_eq!(grid.segment_of_ns(grid.start_ns(k)), k);
        }
        assert_eq!(grid.count(30_033), 9);
        assert_eq!(grid.length_ms(8, 30_033), 33);
    }

    #[test]
    fn segment_times_and_indexes_agree() {
        assert_eq!([0, 1, 2, 3].map(segment_start_ms), [0, 2000, 6000, 10_000]);
        for k in 0..50 {
            let start_ns = segment_start_ms(k) * NS_PER_MS;
            assert_eq!(segment_of_ns(start_ns), k, "start of segment {k}");
            if k > 0 {
                assert_eq!(segment_of_ns(start_ns - 1), k - 1, "just before segment {k}");
            }
        }
    }
}
