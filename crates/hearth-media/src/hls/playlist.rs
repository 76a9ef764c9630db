//! HLS playlists (RFC 8216): a multivariant playlist naming each rendition,
//! and a VOD media playlist per rendition listing every segment up front.

use std::fmt::Write;

use super::plan::{AUDIO_BPS, Rendition, SEGMENT_SECONDS, output_size, segment_count, segment_start_ms};

/// One rendition in the multivariant playlist.
#[derive(Debug, Clone)]
pub struct MasterEntry {
    pub rendition: Rendition,
    /// Source frame size, for the `RESOLUTION` attribute.
    pub source_size: Option<(u32, u32)>,
    /// Whether the rendition carries an audio track.
    pub has_audio: bool,
    /// URI of the rendition's media playlist, relative to the master.
    pub uri: String,
}

/// Returns the multivariant playlist of `entries`.
pub fn master_playlist(entries: &[MasterEntry]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for entry in entries {
        let bandwidth = (u64::from(entry.rendition.video_kbps()) * 1000 + u64::from(AUDIO_BPS)) * 11 / 10;
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth}");
        let size = entry.source_size.and_then(|(width, height)| output_size(entry.rendition, width, height));
        let audio = if entry.has_audio { ",mp4a.40.2" } else { "" };
        match size {
            Some((width, height)) => {
                // H.264 Main (constraint set 1), level by frame size; AAC-LC.
                let level = if height > 720 { 0x28 } else if height > 480 { 0x1f } else { 0x1e };
                let _ = write!(out, ",RESOLUTION={width}x{height},CODECS=\"avc1.4d40{level:02x}{audio}\"");
            }
            None => out.push_str(",CODECS=\"mp4a.40.2\""),
        }
        let _ = write!(out, ",NAME=\"{}\"\n{}\n", entry.rendition.as_str(), entry.uri);
    }
    out
}

/// Returns the VOD media playlist of an item `duration_ms` long: the init segment,
/// then segments `0.m4s`, `1.m4s`, … of [`SEGMENT_SECONDS`] each, the
/// first of [`super::plan::FIRST_SEGMENT_SECONDS`]. With
/// `key_uri`, segments are marked `METHOD=AES-128`; the init segment, which
/// holds only codec setup, stays clear (its `EXT-X-MAP` comes first).
pub fn media_playlist(duration_ms: u64, key_uri: Option<&str>) -> String {
    let count = segment_count(duration_ms);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{SEGMENT_SECONDS}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n"
    );
    if let Some(uri) = key_uri {
        let _ = writeln!(out, "#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\"");
    }
    for index in 0..count {
        let start = segment_start_ms(index);
        let end = segment_start_ms(index + 1).min(duration_ms);
        let length = end.saturating_sub(start).max(1);
        let _ = write!(out, "#EXTINF:{}.{:03},\n{index}.m4s\n", length / 1000, length % 1000);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_playlist_lists_every_segment_with_its_length() {
        let playlist = media_playlist(9_500, Some("/api/v1/hls/abc/key"));
        let lengths: Vec<&str> = playlist.lines().filter_map(|line| line.strip_prefix("#EXTINF:")).collect();
        assert_eq!(lengths, ["2.000,", "4.000,", "3.500,"]);
        assert!(playlist.contains("#EXT-X-KEY:METHOD=AES-128,URI=\"/api/v1/hls/abc/key\""));
        assert!(playlist.find("#EXT-X-MAP").unwrap() < playlist.find("#EXT-X-KEY").unwrap());
        assert!(playlist.ends_with("2.m4s\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn master_playlist_names_resolution_and_codecs() {
        let entries = [
            MasterEntry { rendition: Rendition::P720, source_size: Some((1920, 1080)), has_audio: true, uri: "720p/index.m3u8".into() },
            MasterEntry { rendition: Rendition::Audio, source_size: None, has_audio: true, uri: "audio/index.m3u8".into() },
        ];
        let playlist = master_playlist(&entries);
        assert!(playlist.contains("RESOLUTION=1280x720,CODECS=\"avc1.4d401f,mp4a.40.2\""), "{playlist}");
        assert!(playlist.contains("CODECS=\"mp4a.40.2\",NAME=\"audio\"\naudio/index.m3u8\n"), "{playlist}");
    }
}
