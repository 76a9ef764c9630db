//! HLS playlists (RFC 8216): a multivariant playlist naming each rendition,
//! and a VOD media playlist per rendition listing every segment up front.

use std::fmt::Write;

use super::plan::{AUDIO_BPS, Rendition, SegmentFormat, SegmentGrid, output_size};

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
    /// The copied source's video bit rate (bit/s) and `CODECS` entry, for
    /// [`Rendition::Original`].
    pub original: Option<(u64, String)>,
}

/// Returns the multivariant playlist of `entries`.
pub fn master_playlist(entries: &[MasterEntry]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for entry in entries {
        let video_bps = match &entry.original {
            Some((bps, _)) => *bps,
            None => u64::from(entry.rendition.video_kbps()) * 1000,
        };
        let bandwidth = (video_bps + u64::from(AUDIO_BPS)) * 11 / 10;
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth}");
        let size = entry.source_size.and_then(|(width, height)| output_size(entry.rendition, width, height));
        let audio = if entry.has_audio { ",mp4a.40.2" } else { "" };
        match (size, &entry.original) {
            (Some((width, height)), Some((_, codecs))) => {
                let _ = write!(out, ",RESOLUTION={width}x{height},CODECS=\"{codecs}{audio}\"");
            }
            (Some((width, height)), None) => {
                // H.264 Main (constraint set 1), level by frame size; AAC-LC.
                let level = if height > 720 { 0x28 } else if height > 480 { 0x1f } else { 0x1e };
                let _ = write!(out, ",RESOLUTION={width}x{height},CODECS=\"avc1.4d40{level:02x}{audio}\"");
            }
            (None, _) => out.push_str(",CODECS=\"mp4a.40.2\""),
        }
        let _ = write!(out, ",NAME=\"{}\"\n{}\n", entry.rendition.as_str(), entry.uri);
    }
    out
}

/// Returns the VOD media playlist of an item `duration_ms` long: segments
/// `0.m4s`, `1.m4s`, … after their init segment, or `0.ts`, `1.ts`, … for
/// [`SegmentFormat::Ts`], where `grid` puts them (for a transcode 2 s, then
/// 4 s each). With `key_uri`, segments are marked `METHOD=AES-128`; an init
/// segment, which holds only codec setup, stays clear (its `EXT-X-MAP`
/// comes first).
pub fn media_playlist(grid: &SegmentGrid, format: SegmentFormat, duration_ms: u64, key_uri: Option<&str>) -> String {
    let count = grid.count(duration_ms);
    let target = grid.target_duration_s(duration_ms);
    let version = if format == SegmentFormat::Fmp4 { 7 } else { 3 };
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    if format == SegmentFormat::Fmp4 {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n");
    }
    if let Some(uri) = key_uri {
        let _ = writeln!(out, "#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\"");
    }
    let extension = format.extension();
    for index in 0..count {
        let length = grid.length_ms(index, duration_ms);
        let _ = write!(out, "#EXTINF:{}.{:03},\n{index}.{extension}\n", length / 1000, length % 1000);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_playlist_lists_every_segment_with_its_length() {
        let playlist = media_playlist(&SegmentGrid::Fixed, SegmentFormat::Fmp4, 9_500, Some("/api/v1/hls/abc/key"));
        let lengths: Vec<&str> = playlist.lines().filter_map(|line| line.strip_prefix("#EXTINF:")).collect();
        assert_eq!(lengths, ["2.000,", "4.000,", "3.500,"]);
        assert!(playlist.contains("#EXT-X-KEY:METHOD=AES-128,URI=\"/api/v1/hls/abc/key\""));
        assert!(playlist.find("#EXT-X-MAP").unwrap() < playlist.find("#EXT-X-KEY").unwrap());
        assert!(playlist.ends_with("2.m4s\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn master_playlist_names_resolution_and_codecs() {
        let entries = [
            MasterEntry { rendition: Rendition::P720, source_size: Some((1920, 1080)), has_audio: true, uri: "720p/index.m3u8".into(), original: None },
            MasterEntry { rendition: Rendition::Audio, source_size: None, has_audio: true, uri: "audio/index.m3u8".into(), original: None },
        ];
        let playlist = master_playlist(&entries);
        assert!(playlist.contains("RESOLUTION=1280x720,CODECS=\"avc1.4d401f,mp4a.40.2\""), "{playlist}");
        assert!(playlist.contains("CODECS=\"mp4a.40.2\",NAME=\"audio\"\naudio/index.m3u8\n"), "{playlist}");
        let original = [MasterEntry {
            rendition: Rendition::Original,
            source_size: Some((1024, 576)),
            has_audio: true,
            uri: "original/index.m3u8".into(),
            original: Some((1_000_000, "avc1.640028".into())),
        }];
        let playlist = master_playlist(&original);
        assert!(playlist.contains("BANDWIDTH=1240800,RESOLUTION=1024x576,CODECS=\"avc1.640028,mp4a.40.2\""), "{playlist}");
    }

    #[test]
    fn key_frame_playlists_give_each_segment_its_own_length() {
        let s = 1_000_000_000;
        let grid = SegmentGrid::from_keyframes(&[0, 2 * s + s / 2, 8 * s], 9_000);
        let playlist = media_playlist(&grid, SegmentFormat::Fmp4, 9_000, None);
        let ts = media_playlist(&grid, SegmentFormat::Ts, 9_000, None);
        assert!(!ts.contains("EXT-X-MAP") && ts.contains("\n0.ts\n") && ts.contains("#EXT-X-VERSION:3\n"), "{ts}");
        let lengths: Vec<&str> = playlist.lines().filter_map(|line| line.strip_prefix("#EXTINF:")).collect();
        assert_eq!(lengths, ["2.500,", "5.500,", "1.000,"]);
        assert!(playlist.contains("#EXT-X-TARGETDURATION:6\n"), "{playlist}");
    }
}
