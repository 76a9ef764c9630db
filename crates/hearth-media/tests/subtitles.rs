//! Subtitle listing and WebVTT conversion, on hand-written sidecar files and
//! on videos that ffmpeg makes with embedded subtitle streams.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TIMEOUT, ffmpeg};
use hearth_media::MediaError;
use hearth_media::subtitles::{
    MAX_SUBTITLE_BYTES, SubtitleSource, SubtitleTrack, embedded, list, sidecars, to_webvtt,
};

/// Largest difference between a cue time in the source SRT and in the output.
const TIME_TOLERANCE_MS: i64 = 50;

/// Cues of the SRT file that the embedded-stream tests mux into videos.
const MUXED_SRT: &str = "1\n00:00:00,500 --> 00:00:01,500\nHello <i>world</i>\n\n\
2\n00:00:02,000 --> 00:00:03,250\nÇa va très bien, déjà vu\n\n\
3\n00:00:03,500 --> 00:00:04,750\nTom & Jerry\n";

/// Folder of the hand-written fixtures. `Film.mkv` itself does not exist:
/// sidecar discovery only needs its name.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/subtitles")
}

fn film() -> PathBuf {
    fixtures().join("Film.mkv")
}

/// Returns the sidecar track of `film()` stored in `file_name`.
fn sidecar_track(file_name: &str) -> SubtitleTrack {
    sidecars(&film())
        .into_iter()
        .find(|track| {
            track.source
                == SubtitleSource::Sidecar {
                    file_name: file_name.to_owned(),
                }
        })
        .unwrap_or_else(|| panic!("sidecar {file_name} not found"))
}

fn convert_sidecar(file_name: &str) -> String {
    let track = sidecar_track(file_name);
    to_webvtt(&film(), &track, TIMEOUT)
        .unwrap_or_else(|error| panic!("converting {file_name} failed: {error}"))
}

/// A cue of a WebVTT document: start and end in milliseconds, and text.
#[derive(Debug)]
struct ParsedCue {
    start_ms: i64,
    end_ms: i64,
    text: String,
}

fn parse_timestamp_ms(text: &str) -> i64 {
    let (clock, ms) = text.split_once('.').expect("timestamp has milliseconds");
    assert_eq!(ms.len(), 3, "timestamp {text} needs three fraction digits");
    let fields: Vec<i64> = clock
        .split(':')
        .map(|field| field.parse().expect("numeric timestamp field"))
        .collect();
    assert_eq!(fields.len(), 3, "timestamp {text} needs HH:MM:SS");
    ((fields[0] * 60 + fields[1]) * 60 + fields[2]) * 1000 + ms.parse::<i64>().unwrap()
}

/// Checks the layout that `to_webvtt` promises and returns the cues: the
/// `WEBVTT` line and a blank line, then blocks of an optional id, a timing
/// line and text lines, separated by single blank lines, and `-->` only in
/// timing lines.
fn parse_webvtt(document: &str) -> Vec<ParsedCue> {
    let body = document
        .strip_prefix("WEBVTT\n\n")
        .unwrap_or_else(|| panic!("document does not start with the WEBVTT line: {document:?}"));
    assert!(
        document.ends_with('\n'),
        "document does not end with a newline"
    );
    assert!(
        !document.contains('\r'),
        "document contains a carriage return"
    );

    let mut cues = Vec::new();
    for block in body.trim_end_matches('\n').split("\n\n") {
        let lines: Vec<&str> = block.split('\n').collect();
        let timing_index = lines
            .iter()
            .position(|line| line.contains("-->"))
            .unwrap_or_else(|| panic!("block without a timing line: {block:?}"));
        assert!(
            timing_index <= 1,
            "timing line after more than an id: {block:?}"
        );
        let text_lines = &lines[timing_index + 1..];
        assert!(!text_lines.is_empty(), "cue without text: {block:?}");
        for line in text_lines {
            assert!(
                !line.contains("-->"),
                "cue text line contains -->: {line:?}"
            );
            assert!(!line.trim().is_empty(), "blank cue text line in {block:?}");
        }

        let timing: Vec<&str> = lines[timing_index].split(' ').collect();
        assert_eq!(
            timing[1], "-->",
            "malformed timing line {:?}",
            lines[timing_index]
        );
        cues.push(ParsedCue {
            start_ms: parse_timestamp_ms(timing[0]),
            end_ms: parse_timestamp_ms(timing[2]),
            text: text_lines.join("\n"),
        });
    }
    cues
}

#[test]
fn sidecars_found_and_sorted() {
    let tracks = sidecars(&film());
    let summary: Vec<(&str, Option<&str>, &str, &str)> = tracks
        .iter()
        .map(|track| {
            (
                track.id.as_str(),
                track.language.as_deref(),
                track.label.as_str(),
                track.codec.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("sidecar:Film.en.vtt", Some("en"), "External", "webvtt"),
            ("sidecar:Film.forced.en.srt", Some("en"), "forced", "subrip"),
            ("sidecar:Film.fr.srt", Some("fr"), "External", "subrip"),
            ("sidecar:Film.hostile.srt", None, "hostile", "subrip"),
            ("sidecar:Film.ja.srt", Some("ja"), "External", "subrip"),
            ("sidecar:Film.sdh.SRT", None, "sdh", "subrip"),
        ]
    );
    assert!(tracks.iter().all(|track| track.convertible));
}

#[test]
fn sidecar_track_serde_round_trip() {
    let track = sidecar_track("Film.forced.en.srt");
    let json = serde_json::to_value(&track).unwrap();
    assert_eq!(json["source"]["kind"], "sidecar");
    assert_eq!(json["source"]["file_name"], "Film.forced.en.srt");
    let back: SubtitleTrack = serde_json::from_value(json).unwrap();
    assert_eq!(back, track);
}

#[test]
fn windows_1252_srt_decoded() {
    let vtt = convert_sidecar("Film.fr.srt");
    assert_eq!(
        vtt,
        "WEBVTT\n\n\
         00:00:01.000 --> 00:00:03.500\n\
         Ça va très bien, déjà vu.\n\n\
         00:00:04.000 --> 00:00:06.000\n\
         « Où est la bibliothèque ? »\n\
         Le cœur a ses raisons.\n"
    );
}

#[test]
fn utf16le_srt_decoded() {
    let vtt = convert_sidecar("Film.ja.srt");
    assert_eq!(
        vtt,
        "WEBVTT\n\n\
         00:00:01.000 --> 00:00:02.000\n\
         こんにちは、世界\n\n\
         00:00:02.500 --> 00:00:04.000\n\
         Grüße aus Köln\n"
    );
}

#[test]
fn crlf_srt_with_broken_cue() {
    let vtt = convert_sidecar("Film.forced.en.srt");
    assert_eq!(
        vtt,
        "WEBVTT\n\n\
         00:00:01.000 --> 00:00:02.000\n\
         <i>Top line</i>\n\n\
         00:00:03.000 --> 00:00:04.500\n\
         Tom &amp; Jerry <b>bold</b>\n\n\
         00:00:05.000 --> 00:00:06.000\n\
         Yellow text\n\n\
         00:00:07.000 --> 00:00:08.000\n\
         Last line without newline\n"
    );
    assert_eq!(parse_webvtt(&vtt).len(), 4);
}

#[test]
fn vtt_sidecar_rebuilt() {
    let vtt = convert_sidecar("Film.en.vtt");
    assert_eq!(
        vtt,
        "WEBVTT\n\n\
         intro\n\
         00:00:00.500 --> 00:00:02.000 align:start line:0\n\
         Once upon a time\n\n\
         00:00:02.500 --> 00:00:04.000\n\
         in a faraway land &amp; sea\n"
    );
}

#[test]
fn hostile_srt_comes_out_safe() {
    let vtt = convert_sidecar("Film.hostile.srt");
    let cues = parse_webvtt(&vtt);
    assert_eq!(cues.len(), 2);
    assert_eq!(
        cues[0].text,
        "&lt;script&gt;alert(\"x\")&lt;/script&gt;\n\
         a --&gt; b\n\
         --&gt;&lt;img src=x onerror=alert(1)&gt;"
    );
    assert_eq!(cues[1].text, "WEBVTT\n<i>NOTE &amp; </i>");
    assert!(!vtt.contains("<script"), "{vtt}");
    assert!(!vtt.contains("<img"), "{vtt}");
}

#[test]
fn sidecar_without_cues_is_error() {
    let media = fixtures().join("Broken.mkv");
    let track = sidecars(&media).pop().expect("Broken.srt is listed");
    let error = to_webvtt(&media, &track, TIMEOUT).unwrap_err();
    assert!(matches!(error, MediaError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("Broken.srt"), "{error}");
}

/// Returns an empty folder for one test under Cargo's temporary folder.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("subtitles")
        .join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn symlinks_and_folders_are_skipped() {
    let dir = scratch_dir("symlinks");
    let outside = scratch_dir("symlinks-outside").join("secret.srt");
    fs::write(&outside, "1\n00:00:01,000 --> 00:00:02,000\nsecret\n").unwrap();
    fs::write(
        dir.join("Film.en.srt"),
        "1\n00:00:01,000 --> 00:00:02,000\nok\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("Film.de.srt")).unwrap();
    fs::create_dir(dir.join("Film.fr.srt")).unwrap();
    let media = dir.join("Film.mkv");

    let ids: Vec<String> = sidecars(&media).into_iter().map(|track| track.id).collect();
    assert_eq!(ids, ["sidecar:Film.en.srt"]);

    let mut forged = sidecars(&media).pop().unwrap();
    for file_name in [
        "Film.de.srt",
        "Film.fr.srt",
        "../symlinks-outside/secret.srt",
        "secret.srt",
    ] {
        forged.source = SubtitleSource::Sidecar {
            file_name: file_name.to_owned(),
        };
        let result = to_webvtt(&media, &forged, TIMEOUT);
        assert!(
            matches!(result, Err(MediaError::Io { .. })),
            "{file_name}: {result:?}"
        );
    }
}

#[test]
fn oversized_sidecar_is_rejected() {
    let dir = scratch_dir("oversized");
    let cue = "1\n00:00:01,000 --> 00:00:02,000\nfiller text for a large file\n\n";
    let repeats = MAX_SUBTITLE_BYTES as usize / cue.len() + 1;
    fs::write(dir.join("Film.srt"), cue.repeat(repeats)).unwrap();
    let media = dir.join("Film.mkv");

    let track = sidecars(&media).pop().unwrap();
    let error = to_webvtt(&media, &track, TIMEOUT).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, MediaError::Io { .. }), "{error:?}");
    assert!(message.contains("Film.srt"), "{message}");
    assert!(message.contains("10 MiB"), "{message}");
}

/// Makes a 5-second video at `dir/name` with `MUXED_SRT` as its only
/// subtitle stream, encoded with `codec_args`.
fn make_video(dir: &Path, name: &str, codec_args: &[&str]) -> PathBuf {
    let srt = dir.join("source-subtitles.txt");
    fs::write(&srt, MUXED_SRT).unwrap();
    let output = dir.join(name);
    let mut args: Vec<&OsStr> = [
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=5:size=320x240:rate=25",
        "-f",
        "srt",
        "-i",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    args.push(srt.as_os_str());
    args.extend(
        ["-c:v", "libx264", "-preset", "ultrafast"]
            .iter()
            .chain(codec_args)
            .map(OsStr::new),
    );
    args.push(output.as_os_str());
    ffmpeg(&args);
    output
}

/// Checks cue times against `MUXED_SRT` and returns the cue texts.
fn check_muxed_times(cues: &[ParsedCue]) -> Vec<&str> {
    let expected = [(500, 1500), (2000, 3250), (3500, 4750)];
    assert_eq!(cues.len(), expected.len(), "{cues:?}");
    for (cue, (start, end)) in cues.iter().zip(expected) {
        assert!(
            (cue.start_ms - start).abs() <= TIME_TOLERANCE_MS,
            "start {} ms, expected {start} ms",
            cue.start_ms
        );
        assert!(
            (cue.end_ms - end).abs() <= TIME_TOLERANCE_MS,
            "end {} ms, expected {end} ms",
            cue.end_ms
        );
    }
    cues.iter().map(|cue| cue.text.as_str()).collect()
}

#[test]
fn embedded_srt_in_mkv() {
    let dir = scratch_dir("mkv");
    let video = make_video(
        &dir,
        "clip.mkv",
        &["-c:s", "srt", "-metadata:s:s:0", "language=fre"],
    );
    fs::write(
        dir.join("clip.de.srt"),
        "1\n00:00:01,000 --> 00:00:02,000\nHallo\n",
    )
    .unwrap();

    let tracks = list(&video, TIMEOUT).unwrap();
    let ids: Vec<&str> = tracks.iter().map(|track| track.id.as_str()).collect();
    assert_eq!(ids, ["embedded:0", "sidecar:clip.de.srt"]);
    let track = &tracks[0];
    assert_eq!(track.source, SubtitleSource::Embedded { index: 0 });
    assert_eq!(track.codec, "subrip");
    // The discoverer can finish before a sparse subtitle stream sends its
    // tags (seen once under load), so the language may be missing, never wrong.
    assert!(matches!(track.language.as_deref(), Some("fr") | None), "language {:?}", track.language);
    assert!(track.convertible);

    let vtt = to_webvtt(&video, track, TIMEOUT).unwrap();
    let cues = parse_webvtt(&vtt);
    assert_eq!(
        check_muxed_times(&cues),
        [
            "Hello <i>world</i>",
            "Ça va très bien, déjà vu",
            "Tom &amp; Jerry"
        ]
    );
}

#[test]
fn embedded_mov_text_in_mp4() {
    let dir = scratch_dir("mp4");
    let video = make_video(
        &dir,
        "clip.mp4",
        &["-c:s", "mov_text", "-metadata:s:s:0", "language=eng"],
    );

    let tracks = embedded(&video, TIMEOUT).unwrap();
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    let track = &tracks[0];
    assert_eq!(track.id, "embedded:0");
    assert_eq!(track.codec, "mov_text");
    // The discoverer can finish before a sparse subtitle stream sends its
    // tags (seen once under load), so the language may be missing, never wrong.
    assert!(matches!(track.language.as_deref(), Some("en") | None), "language {:?}", track.language);
    assert!(track.convertible);

    let vtt = to_webvtt(&video, track, TIMEOUT).unwrap();
    let cues = parse_webvtt(&vtt);
    // mov_text keeps italics as style records, which GStreamer drops.
    assert_eq!(
        check_muxed_times(&cues),
        ["Hello world", "Ça va très bien, déjà vu", "Tom &amp; Jerry"]
    );
}

#[test]
fn embedded_ass_in_mkv() {
    let dir = scratch_dir("ass");
    let video = make_video(&dir, "clip.mkv", &["-c:s", "ass"]);

    let tracks = embedded(&video, TIMEOUT).unwrap();
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    assert_eq!(tracks[0].codec, "ass");
    assert_eq!(tracks[0].language, None);

    let vtt = to_webvtt(&video, &tracks[0], TIMEOUT).unwrap();
    let cues = parse_webvtt(&vtt);
    let texts = check_muxed_times(&cues);
    // GStreamer 1.22's ssaparse drops ASS italics; later versions may keep them.
    assert!(
        ["Hello world", "Hello <i>world</i>"].contains(&texts[0]),
        "{texts:?}"
    );
    assert_eq!(texts[1], "Ça va très bien, déjà vu");
    assert_eq!(texts[2], "Tom &amp; Jerry");
    assert!(!vtt.contains('{'), "override tags left in {vtt}");
}

#[test]
fn embedded_second_stream_chosen() {
    let dir = scratch_dir("two-streams");
    let first = dir.join("first.txt");
    let second = dir.join("second.txt");
    fs::write(&first, MUXED_SRT).unwrap();
    fs::write(&second, "1\n00:00:01,000 --> 00:00:02,000\nSecond stream\n").unwrap();
    let video = dir.join("clip.mkv");
    let mut args: Vec<&OsStr> = [
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=5:size=320x240:rate=25",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    for srt in [&first, &second] {
        args.extend([
            OsStr::new("-f"),
            OsStr::new("srt"),
            OsStr::new("-i"),
            srt.as_os_str(),
        ]);
    }
    args.extend(
        [
            "-map",
            "0",
            "-map",
            "1",
            "-map",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:s",
            "srt",
            "-metadata:s:s:0",
            "language=eng",
            "-metadata:s:s:1",
            "language=ger",
            "-metadata:s:s:1",
            "title=Commentary",
        ]
        .iter()
        .map(OsStr::new),
    );
    args.push(video.as_os_str());
    ffmpeg(&args);

    let tracks = embedded(&video, TIMEOUT).unwrap();
    let summary: Vec<(&str, Option<&str>, &str)> = tracks
        .iter()
        .map(|track| {
            (
                track.id.as_str(),
                track.language.as_deref(),
                track.label.as_str(),
            )
        })
        .collect();
    assert_eq!(summary[0], ("embedded:0", Some("en"), "Subtitle 1"));
    // NOTE: the discoverer can finish before the second, sparse stream has
    // sent its tags (one fresh-clone run here); it then has no language and
    // the default label, which callers must accept.
    let tagged = ("embedded:1", Some("de"), "Commentary");
    let untagged = ("embedded:1", None, "Subtitle 2");
    assert!(summary[1] == tagged || summary[1] == untagged, "{summary:?}");
    assert_eq!(summary.len(), 2);

    let vtt = to_webvtt(&video, &tracks[1], TIMEOUT).unwrap();
    let cues = parse_webvtt(&vtt);
    assert_eq!(cues.len(), 1, "{vtt}");
    assert_eq!(cues[0].text, "Second stream");
    assert_eq!((cues[0].start_ms, cues[0].end_ms), (1000, 2000));
}

#[test]
fn video_without_subtitles_lists_none() {
    let dir = scratch_dir("no-subtitles");
    let video = dir.join("clip.mkv");
    let args: Vec<&OsStr> = [
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=1:size=160x120:rate=25",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ]
    .iter()
    .map(OsStr::new)
    .chain([video.as_os_str()])
    .collect();
    ffmpeg(&args);

    assert_eq!(list(&video, TIMEOUT).unwrap(), []);
}

#[test]
fn embedded_missing_file_is_io_error() {
    let missing = scratch_dir("missing-file").join("gone.mkv");
    let error = embedded(&missing, TIMEOUT).unwrap_err();
    assert!(matches!(error, MediaError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("gone.mkv"), "{error}");
}

#[test]
fn embedded_missing_index_is_error() {
    let dir = scratch_dir("missing-index");
    let video = make_video(&dir, "clip.mkv", &["-c:s", "srt"]);
    let track = SubtitleTrack {
        id: "embedded:3".to_owned(),
        source: SubtitleSource::Embedded { index: 3 },
        language: None,
        label: "Subtitle 4".to_owned(),
        codec: "subrip".to_owned(),
        convertible: true,
    };

    let error = to_webvtt(&video, &track, TIMEOUT).unwrap_err();
    assert!(matches!(error, MediaError::Io { .. }), "{error:?}");
    assert!(
        error.to_string().contains("subtitle stream 3 not found"),
        "{error}"
    );
}

#[test]
fn embedded_conversion_times_out() {
    let dir = scratch_dir("timeout");
    let video = make_video(&dir, "clip.mkv", &["-c:s", "srt"]);
    let track = embedded(&video, TIMEOUT).unwrap().remove(0);

    let result = to_webvtt(&video, &track, Duration::from_millis(1));
    assert!(
        matches!(result, Err(MediaError::Timeout { .. })),
        "{result:?}"
    );
}
