//! Audio and video probes compared with ffprobe run on the same files.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::{
    AUDIO_SAMPLES, TIMEOUT, VIDEO_SAMPLES, ffmpeg, ffprobe, ffprobe_stream, ffprobe_tag,
    freedesktop_sounds, number, rational, sample,
};
use hearth_media::{MediaKind, Probe, probe};

/// Largest difference from ffprobe's format duration.
const DURATION_TOLERANCE_MS: f64 = 50.0;

/// Wider tolerance for MPEG program streams. mpegpsdemux derives the duration
/// from system clock references and reads movie-hello.mpeg as 8.175 s. ffprobe
/// spans the packet timestamps and reads 8.318 s, and the video alone is 249
/// frames at 29.97 fps (8.308 s).
const MPEG_PS_DURATION_TOLERANCE_MS: f64 = 200.0;

#[test]
fn video_samples_match_ffprobe() {
    for relative in VIDEO_SAMPLES {
        let path = sample(relative);
        let probed = probe(&path, TIMEOUT).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(probed.kind, MediaKind::Video, "{relative}");
        compare_with_ffprobe(&path, &probed);
    }
}

#[test]
fn audio_samples_match_ffprobe() {
    for relative in AUDIO_SAMPLES {
        let path = sample(relative);
        let probed = probe(&path, TIMEOUT).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(probed.kind, MediaKind::Audio, "{relative}");
        assert!(probed.video.is_none(), "{relative}: {:?}", probed.video);
        compare_with_ffprobe(&path, &probed);
    }
}

#[test]
fn freedesktop_sounds_match_ffprobe() {
    for path in freedesktop_sounds() {
        let probed = probe(&path, TIMEOUT).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(probed.kind, MediaKind::Audio, "{}", path.display());
        assert_eq!(probed.mime, "audio/ogg", "{}", path.display());
        compare_with_ffprobe(&path, &probed);
    }
}

#[test]
fn mime_types_follow_content() {
    let cases = [
        ("movie1/VID_20191220_170832.mp4", "video/mp4"),
        ("movie2/movie-hello.avi", "video/x-msvideo"),
        ("movie2/movie-hello.mpeg", "video/mpeg"),
        // infer matches every Ogg file as audio/ogg; the Theora stream makes it video.
        ("movie2/movie-hello.ogg", "video/ogg"),
        ("audio1/debian.mp3", "audio/mpeg"),
        ("audio1/debian.ogg", "audio/ogg"),
        ("audio1/debian.wav", "audio/wav"),
    ];
    for (relative, mime) in cases {
        let probed = probe(&sample(relative), TIMEOUT).unwrap();
        assert_eq!(probed.mime, mime, "{relative}");
    }
}

#[test]
fn containers_use_gstreamer_descriptions() {
    // The names gst-discoverer-1.0 (GStreamer 1.22) prints for "container #0".
    let cases = [
        ("movie2/movie-hello.mp4", Some("Quicktime")),
        (
            "movie2/movie-hello.avi",
            Some("Audio Video Interleave (AVI)"),
        ),
        ("movie2/movie-hello.mpeg", Some("MPEG-1 System Stream")),
        ("movie2/movie-hello.ogg", Some("Ogg")),
        ("audio1/debian.ogg", Some("Ogg")),
        // An ID3 tag around MP3 frames is not a container.
        ("audio1/debian.mp3", None),
        ("audio1/debian.wav", Some("WAV")),
    ];
    for (relative, container) in cases {
        let probed = probe(&sample(relative), TIMEOUT).unwrap();
        assert_eq!(probed.container.as_deref(), container, "{relative}");
    }
}

#[test]
fn mpeg_ps_size_comes_from_parsed_stream() {
    // gst-discoverer-1.0 prints width 0 for the demuxer's unparsed stream;
    // the parsed stream after it carries the size.
    let path = sample("movie2/movie-hello.mpeg");
    let probed = probe(&path, TIMEOUT).unwrap();
    let video = probed.video.unwrap();
    assert_eq!(video.width, Some(640));
    assert_eq!(video.height, Some(480));
}

#[test]
fn m4a_tags_match_ffprobe() {
    let dir = tempfile::tempdir().unwrap();
    let tagged = dir.path().join("tagged.m4a");
    let source = sample("audio1/debian.wav");
    ffmpeg(&[
        OsStr::new("-i"),
        source.as_os_str(),
        OsStr::new("-c:a"),
        OsStr::new("aac"),
        OsStr::new("-b:a"),
        OsStr::new("64k"),
        OsStr::new("-metadata"),
        OsStr::new("title=Hearth test tone"),
        OsStr::new("-metadata"),
        OsStr::new("album=Samples"),
        OsStr::new("-metadata"),
        OsStr::new("track=3"),
        OsStr::new("-metadata"),
        OsStr::new("genre=Test"),
        tagged.as_os_str(),
    ]);

    let probed = probe(&tagged, TIMEOUT).unwrap();
    assert_eq!(probed.kind, MediaKind::Audio);
    assert_eq!(probed.mime, "audio/mp4");
    assert_eq!(probed.container.as_deref(), Some("ISO MP4/M4A"));
    assert_eq!(probed.tags.track, Some(3));
    compare_with_ffprobe(&tagged, &probed);
}

/// Compares duration, bit rate, streams and tags with ffprobe's view.
fn compare_with_ffprobe(path: &Path, probed: &Probe) {
    let name = path.display();
    let reference = ffprobe(path);

    let expected_ms = number(&reference["format"]["duration"]).expect("ffprobe duration") * 1000.0;
    let actual_ms = probed.duration_ms.expect("duration") as f64;
    let tolerance = if reference["format"]["format_name"] == "mpeg" {
        MPEG_PS_DURATION_TOLERANCE_MS
    } else {
        DURATION_TOLERANCE_MS
    };
    assert!(
        (actual_ms - expected_ms).abs() <= tolerance,
        "{name}: duration {actual_ms} ms, ffprobe {expected_ms} ms"
    );

    let expected_rate = number(&reference["format"]["bit_rate"]).expect("ffprobe bit_rate");
    let actual_rate = probed.bit_rate.expect("bit rate") as f64;
    assert!(
        (actual_rate / expected_rate - 1.0).abs() <= 0.02,
        "{name}: bit rate {actual_rate}, ffprobe {expected_rate}"
    );

    match ffprobe_stream(&reference, "video") {
        Some(expected) => compare_video(path, probed, expected),
        None => assert!(
            probed.video.is_none(),
            "{name}: unexpected video {:?}",
            probed.video
        ),
    }
    match ffprobe_stream(&reference, "audio") {
        Some(expected) => compare_audio(path, probed, expected),
        None => assert!(
            probed.audio.is_none(),
            "{name}: unexpected audio {:?}",
            probed.audio
        ),
    }

    let tags = [
        ("title", &probed.tags.title),
        ("artist", &probed.tags.artist),
        ("album", &probed.tags.album),
        ("genre", &probed.tags.genre),
    ];
    for (key, actual) in tags {
        assert_eq!(actual, &ffprobe_tag(&reference, key), "{name}: tag {key}");
    }
    if let Some(date) = ffprobe_tag(&reference, "date") {
        let actual = probed.tags.date.as_deref().unwrap_or("");
        assert!(
            actual.starts_with(&date),
            "{name}: date {actual:?}, ffprobe {date:?}"
        );
    }
}

fn compare_video(path: &Path, probed: &Probe, expected: &serde_json::Value) {
    let name = path.display();
    let video = probed
        .video
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: no video stream"));

    assert_eq!(
        video.width.map(f64::from),
        number(&expected["width"]),
        "{name}: width"
    );
    assert_eq!(
        video.height.map(f64::from),
        number(&expected["height"]),
        "{name}: height"
    );

    let frame_rate = video
        .frame_rate
        .unwrap_or_else(|| panic!("{name}: no frame rate"));
    let candidates = [
        rational(&expected["r_frame_rate"]),
        rational(&expected["avg_frame_rate"]),
    ];
    assert!(
        candidates
            .iter()
            .flatten()
            .any(|rate| (frame_rate / rate - 1.0).abs() <= 0.01),
        "{name}: frame rate {frame_rate}, ffprobe {candidates:?}"
    );

    let codec = expected["codec_name"].as_str().unwrap_or_default();
    assert_codec_family(path, codec, &video.codec);
}

fn compare_audio(path: &Path, probed: &Probe, expected: &serde_json::Value) {
    let name = path.display();
    let audio = probed
        .audio
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: no audio stream"));

    assert_eq!(
        audio.channels.map(f64::from),
        number(&expected["channels"]),
        "{name}: channels"
    );
    assert_eq!(
        audio.sample_rate.map(f64::from),
        number(&expected["sample_rate"]),
        "{name}: sample rate"
    );

    let codec = expected["codec_name"].as_str().unwrap_or_default();
    assert_codec_family(path, codec, &audio.codec);
}

/// Checks that GStreamer's description names the codec ffprobe reports.
fn assert_codec_family(path: &Path, ffprobe_codec: &str, description: &str) {
    let expected = match ffprobe_codec {
        "h264" => "H.264",
        "aac" => "AAC",
        "mp3" => "MP3",
        "mp2" => "MP2",
        "vorbis" => "Vorbis",
        "theora" => "Theora",
        "mpeg2video" => "MPEG-2 Video",
        "flac" => "FLAC",
        codec if codec.starts_with("pcm_") => "PCM",
        other => panic!(
            "{}: no family known for ffprobe codec {other}",
            path.display()
        ),
    };
    assert!(
        description.contains(expected),
        "{}: codec {description:?} should contain {expected:?} (ffprobe {ffprobe_codec})",
        path.display()
    );
}
