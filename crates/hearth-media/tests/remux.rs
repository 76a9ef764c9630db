//! Remuxed HLS: the source's H.264 copied into fMP4 segments cut at its own
//! key frames. The proof that nothing was encoded again: every decoded
//! frame of the joined segments hashes the same as the source's, at the
//! same time.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use hearth_media::hls::keyframes::{self, KeyframeIndex};
use hearth_media::hls::{Job, Rendition, SegmentFormat, SegmentGrid, TranscodeManager, TranscodeSettings, VideoEncoder, media_playlist};

const REQUEST_LIMIT: Duration = Duration::from_secs(60);
const SCAN_LIMIT: Duration = Duration::from_secs(60);

fn manager() -> TranscodeManager {
    TranscodeManager::new(TranscodeSettings {
        max_concurrent: 2,
        idle_stop: Duration::from_secs(30),
        forget_after: Duration::from_secs(600),
        encoder: VideoEncoder::X264enc,
    })
}

fn job(path: &Path, duration_ms: u64, size: (u32, u32), index: &KeyframeIndex) -> Job {
    let origin_ns = keyframes::start_time(path, SCAN_LIMIT).expect("the film's start time");
    let keyframes: Vec<u64> = index.keyframes_ns.iter().map(|time| time.saturating_sub(origin_ns)).collect();
    Job {
        path: path.to_owned(),
        duration_ms,
        video: Some(size),
        audio: true,
        rendition: Rendition::Original,
        audio_track: 0,
        encoder: VideoEncoder::X264enc,
        grid: SegmentGrid::from_keyframes(&keyframes, duration_ms),
        format: SegmentFormat::Fmp4,
        origin_ns,
    }
}

/// Makes a 12 s Matroska film with B-frames (two between references) and a key
/// frame every second, made once per test run.
fn b_frame_film() -> PathBuf {
    common::made_once(
        "b-frames-12s.mkv",
        &[
            "videotestsrc", "num-buffers=300", "pattern=ball", "!", "video/x-raw,width=320,height=240,framerate=25/1", "!",
            "x264enc", "bframes=2", "b-adapt=false", "key-int-max=25", "!", "video/x-h264,profile=high", "!", "queue", "!", "mux.",
            "audiotestsrc", "num-buffers=517", "samplesperbuffer=1024", "!", "audio/x-raw,rate=44100", "!", "lamemp3enc", "!", "queue", "!", "mux.",
            "matroskamux", "name=mux", "!", "filesink",
        ],
    )
}

/// Fetches the init segment and every media segment, in `order`, and
/// writes them joined in segment order to a file named `name`; a transport
/// stream has no init segment.
fn remux(name: &str, job: &Job, order: &[u32]) -> PathBuf {
    let manager = manager();
    let key = (name.to_owned(), Rendition::Original);
    let cancel = AtomicBool::new(false);
    let deadline = || Instant::now() + REQUEST_LIMIT;
    let init = manager.init_segment(&key, job, deadline(), &cancel).expect("init segment");
    let mut segments = vec![Vec::new(); order.len()];
    for &n in order {
        segments[n as usize] = manager.media_segment(&key, job, n, deadline(), &cancel).expect("segment").to_vec();
    }
    let extension = if job.format == SegmentFormat::Ts { "ts" } else { "mp4" };
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.{extension}"));
    let mut bytes = if job.format == SegmentFormat::Ts { Vec::new() } else { init.to_vec() };
    for segment in &segments {
        bytes.extend_from_slice(segment);
    }
    std::fs::write(&path, bytes).expect("write the joined segments");
    path
}

/// Decoded video frames as (presentation time in ms, MD5 of the picture).
fn frame_hashes(path: &Path) -> Vec<(i64, String)> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs: install ffmpeg");
    assert!(output.status.success(), "ffmpeg could not decode {}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("framemd5 is text");
    let mut time_base = 1.0;
    let mut frames = Vec::new();
    for line in text.lines() {
        if let Some(base) = line.strip_prefix("#tb 0: ") {
            let (num, den) = base.split_once('/').expect("time base");
            time_base = num.trim().parse::<f64>().unwrap() / den.trim().parse::<f64>().unwrap();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let pts: f64 = fields[2].parse().expect("pts");
        frames.push(((pts * time_base * 1000.0).round() as i64, fields[5].to_owned()));
    }
    frames
}

/// Asserts that `copy` contains exactly the source's pictures at the source's
/// times, give or take `shift_ms` for all of them.
///
/// The segments give reordered frames negative composition offsets, as
/// CMAF does, so that a segment's first picture is shown at its `tfdt`.
/// FFmpeg's MP4 reader moves every picture later by the largest negative
/// offset instead of shifting decode times, which makes the allowed shift.
fn assert_same_pictures(source: &Path, copy: &Path, shift_ms: i64) {
    let expected = frame_hashes(source);
    let got = frame_hashes(copy);
    assert_eq!(got.len(), expected.len(), "frame count of {} against {}", copy.display(), source.display());
    let offset = got[0].0 - expected[0].0;
    assert!((0..=shift_ms).contains(&offset), "the copy starts {offset} ms after the source");
    for (index, ((got_ms, got_hash), (want_ms, want_hash))) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got_hash, want_hash, "frame {index} at {got_ms} ms differs: the video was not copied as it is");
        assert!((got_ms - offset - want_ms).abs() <= 1, "frame {index} is at {got_ms} ms, the source's at {want_ms} ms + {offset} ms");
    }
}

#[test]
fn avi_remux_copies_every_frame() {
    let source = common::sample("movie2/movie-hello.avi");
    let index = keyframes::scan(&source, SCAN_LIMIT).expect("index the AVI's key frames");
    assert_eq!(index.codecs(), "avc1.64001f", "High profile, level 3.1");
    assert_eq!((index.width, index.height), (1024, 576));
    assert!(index.keyframes_ns.len() >= 10, "{:?}", index.keyframes_ns);
    let job = job(&source, 8360, (1024, 576), &index);
    let count = job.grid.count(job.duration_ms);
    assert!(count >= 2, "8.36 s makes at least two segments");
    let copy = remux("avi-original", &job, &(0..count).collect::<Vec<_>>());

    let probe = common::ffprobe(&copy);
    let video = common::ffprobe_stream(&probe, "video").expect("video stream");
    assert_eq!((video["codec_name"].as_str(), video["profile"].as_str()), (Some("h264"), Some("High")));
    let audio = common::ffprobe_stream(&probe, "audio").expect("audio stream");
    assert_eq!(audio["codec_name"], "aac");
    assert_same_pictures(&source, &copy, 0);
}

#[test]
fn b_frames_survive_the_copy_and_a_seek() {
    let source = b_frame_film();
    let index = keyframes::scan(&source, SCAN_LIMIT).expect("index the film's key frames");
    assert_eq!(index.keyframes_ns.len(), 12, "a key frame every second: {:?}", index.keyframes_ns);
    let job = job(&source, 12_000, (320, 240), &index);
    // Boundaries at 0, 2, 6 and 10 s: the fixed grid's times are key frames here.
    assert_eq!(job.grid, SegmentGrid::Keyframes(vec![0, 2_000_000_000, 6_000_000_000, 10_000_000_000].into()));
    let playlist = media_playlist(&job.grid, job.format, job.duration_ms, None);
    assert!(playlist.contains("#EXTINF:4.000,\n2.m4s\n#EXTINF:2.000,\n3.m4s\n"), "{playlist}");

    // Segment 2 first: the pipeline starts with a seek to 6 s, then starts
    // again from the beginning for segment 0.
    let copy = remux("b-frames-original", &job, &[2, 0, 1, 3]);
    let packets = common::ffprobe_with(&copy, &["-select_streams", "v:0", "-show_packets"]);
    let reordered = packets["packets"].as_array().expect("packets").iter().any(|packet| packet["pts"] != packet["dts"]);
    assert!(reordered, "the copy lost its B-frame reordering");
    // One frame (40 ms): the largest negative offset of this B-frame pattern.
    assert_same_pictures(&source, &copy, 40);
}

#[test]
fn transport_stream_segments_carry_the_same_pictures() {
    let source = b_frame_film();
    let index = keyframes::scan(&source, SCAN_LIMIT).expect("index the film's key frames");
    let ts_job = Job { format: SegmentFormat::Ts, ..job(&source, 12_000, (320, 240), &index) };
    let copy = remux("b-frames-original-ts", &ts_job, &[0, 1, 3, 2]);
    let probe = common::ffprobe(&copy);
    assert_eq!(probe["format"]["format_name"], "mpegts");
    let video = common::ffprobe_stream(&probe, "video").expect("video stream");
    assert_eq!((video["codec_name"].as_str(), video["profile"].as_str()), (Some("h264"), Some("High")));
    let audio = common::ffprobe_stream(&probe, "audio").expect("audio stream");
    assert_eq!((audio["codec_name"].as_str(), audio["profile"].as_str()), (Some("aac"), Some("LC")));
    let duration = common::number(&probe["format"]["duration"]).expect("duration");
    assert!((duration - 12.0).abs() < 0.2, "the joined segments last {duration} s");
    assert_same_pictures(&source, &copy, 0);

    // A transcoded rendition in transport stream segments plays too.
    let avi = common::sample("movie2/movie-hello.avi");
    let transcode = Job {
        rendition: Rendition::P360,
        grid: SegmentGrid::Fixed,
        format: SegmentFormat::Ts,
        ..job(&avi, 8360, (1024, 576), &keyframes::scan(&avi, SCAN_LIMIT).expect("index"))
    };
    let joined = remux("avi-360p-ts", &transcode, &[0, 1, 2]);
    let probe = common::ffprobe(&joined);
    let video = common::ffprobe_stream(&probe, "video").expect("video stream");
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(640), Some(360)));
    let duration = common::number(&probe["format"]["duration"]).expect("duration");
    assert!((duration - 8.36).abs() < 0.3, "the joined segments last {duration} s");
}

#[test]
fn open_gop_iframes_are_not_cut_points() {
    // I-frames every second, but only the first is an IDR frame: the others
    // have leading B-frames that refer to the GOP before them.
    let film = Path::new(env!("CARGO_TARGET_TMPDIR")).join("open-gop-12s.mkv");
    if !film.is_file() {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=12"])
            .args(["-c:v", "libx264", "-bf", "3", "-x264-params", "open-gop=1:keyint=25:min-keyint=25:scenecut=0"])
            .arg(&film)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg could not make the open-GOP film");
    }
    let index = keyframes::scan(&film, SCAN_LIMIT).expect("index");
    assert_eq!(index.keyframes_ns.len(), 1, "only the first I-frame is an IDR frame: {:?}", index.keyframes_ns);
    // One 12 s segment: too long to copy, so the server transcodes such a file.
    let grid = SegmentGrid::from_keyframes(&index.keyframes_ns, 12_000);
    assert!(grid.longest_ms(12_000) > hearth_media::hls::MAX_COPY_SEGMENT_SECONDS * 1000);
}

#[test]
fn changed_file_invalidates_its_index() {
    let source = b_frame_film();
    let copy = Path::new(env!("CARGO_TARGET_TMPDIR")).join("b-frames-changed.mkv");
    std::fs::copy(&source, &copy).expect("copy the film");
    let index = keyframes::scan(&copy, SCAN_LIMIT).expect("index");
    assert!(index.is_current(12_000, keyframes::file_stamp(&copy)));
    // Same name, other content: a longer file.
    let mut bytes = std::fs::read(&copy).expect("read");
    bytes.extend_from_slice(&[0; 1024]);
    std::fs::write(&copy, bytes).expect("rewrite");
    assert!(!index.is_current(12_000, keyframes::file_stamp(&copy)), "the index of the old file is still used");
    // Damaged or hand-written indexes are not used either.
    let stamp = keyframes::file_stamp(&copy);
    let bad = |keyframes_ns: Vec<u64>| KeyframeIndex { keyframes_ns, ..index.clone() };
    let current = KeyframeIndex { file_size: stamp.unwrap().0, modified_ns: stamp.unwrap().1, ..index.clone() };
    assert!(current.is_current(12_000, stamp));
    for keyframes_ns in [vec![], vec![u64::MAX, 5, 3, 0], vec![0, 0], vec![0, 500_000_000_000]] {
        let candidate = KeyframeIndex { file_size: current.file_size, modified_ns: current.modified_ns, ..bad(keyframes_ns.clone()) };
        assert!(!candidate.is_current(12_000, stamp), "{keyframes_ns:?} was accepted");
    }
}

#[test]
fn a_file_without_h264_has_no_index() {
    let ogg = common::sample("movie2/movie-hello.ogg");
    let error = keyframes::scan(&ogg, SCAN_LIMIT).expect_err("Theora is not H.264");
    assert!(error.contains("movie-hello.ogg"), "the error names the file: {error}");
    assert!(error.contains("H.264"), "the error says what is missing: {error}");
}

#[test]
fn late_start_counts_from_zero() {
    // An MPEG program stream starts about 0.5 s into its clock.
    let source = common::sample("movie2/movie-hello.mpeg");
    let origin_ns = keyframes::start_time(&source, SCAN_LIMIT).expect("start time");
    assert!((400_000_000..700_000_000).contains(&origin_ns), "the MPEG sample starts at {origin_ns} ns");
    let transcode = Job {
        path: source,
        duration_ms: 8308,
        video: Some((640, 480)),
        audio: true,
        rendition: Rendition::P360,
        audio_track: 0,
        encoder: VideoEncoder::X264enc,
        grid: SegmentGrid::Fixed,
        format: SegmentFormat::Ts,
        origin_ns,
    };
    let joined = remux("mpeg-360p-ts", &transcode, &[0, 2, 1]);
    let packets = common::ffprobe_with(&joined, &["-show_packets"]);
    let first = |stream: u64| -> f64 {
        packets["packets"].as_array().expect("packets").iter().filter(|p| p["stream_index"] == stream).filter_map(|p| common::number(&p["pts_time"])).fold(f64::MAX, f64::min)
    };
    let offset = hearth_media::hls::TS_TIME_OFFSET as f64 / 90_000.0;
    // The decoder drops a frame near 0.5 s; the transcode fills the hole
    // (Chromium's own HLS player stalls at one).
    let mut video: Vec<f64> = packets["packets"].as_array().expect("packets").iter().filter(|p| p["stream_index"] == 0).filter_map(|p| common::number(&p["pts_time"])).collect();
    video.sort_by(f64::total_cmp);
    let widest = video.windows(2).map(|pair| pair[1] - pair[0]).fold(0.0, f64::max);
    assert!(widest < 0.05, "a {widest} s hole between video frames");
    assert!((first(0) - offset).abs() < 0.05, "the video starts at {} s, not at the transport stream offset", first(0));
    assert!((first(1) - offset).abs() < 0.05, "the audio starts at {} s, not at the transport stream offset", first(1));
    // Segment 1 starts at 2 s in the film, whatever the file's own clock says.
    let ts_one = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mpeg-360p-ts-segment-1.ts");
    let manager = manager();
    let cancel = AtomicBool::new(false);
    let one = manager
        .media_segment(&("mpeg-one".to_owned(), Rendition::P360), &transcode, 1, Instant::now() + REQUEST_LIMIT, &cancel)
        .expect("segment 1");
    std::fs::write(&ts_one, one.as_slice()).expect("write segment 1");
    let probe = common::ffprobe_with(&ts_one, &["-select_streams", "v:0", "-show_packets"]);
    let start = probe["packets"].as_array().expect("packets").iter().filter_map(|p| common::number(&p["pts_time"])).fold(f64::MAX, f64::min);
    assert!((start - offset - 2.0).abs() < 0.05, "segment 1 starts at {} s of the film", start - offset);
}
