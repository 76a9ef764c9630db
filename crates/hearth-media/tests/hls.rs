//! HLS transcoding of the real samples, checked with ffprobe: every segment
//! starts with a keyframe at its boundary, a transcode that starts at a later
//! segment (a seek) gives the same timestamps as one from the start, and the
//! concurrency limit and idle stop hold.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use hearth_media::hls::{
    Job, Rendition, SEGMENT_SECONDS, SegmentGrid, TranscodeError, TranscodeManager, TranscodeSettings, VideoEncoder, segment_count, segment_start_ms,
};
use serde_json::Value;

/// Limit for one segment request; a 4 s segment takes about a second here.
const REQUEST_LIMIT: Duration = Duration::from_secs(60);

fn manager(max_concurrent: usize, idle_stop: Duration) -> TranscodeManager {
    TranscodeManager::new(TranscodeSettings {
        max_concurrent,
        idle_stop,
        forget_after: Duration::from_secs(600),
        encoder: VideoEncoder::X264enc,
    })
}

fn job(path: PathBuf, duration_ms: u64, size: Option<(u32, u32)>, audio: bool, rendition: Rendition) -> Job {
    Job { path, duration_ms, video: size, audio, rendition, audio_track: 0, encoder: VideoEncoder::X264enc, grid: SegmentGrid::Fixed, format: hearth_media::hls::SegmentFormat::Fmp4, origin_ns: 0 }
}

fn deadline() -> Instant {
    Instant::now() + REQUEST_LIMIT
}

/// Writes the init segment followed by `segments` to a file and returns its path.
fn joined(name: &str, init: &[u8], segments: &[Vec<u8>]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let mut bytes = init.to_vec();
    for segment in segments {
        bytes.extend_from_slice(segment);
    }
    std::fs::write(&path, bytes).expect("write the joined segments");
    path
}

/// Video packets as (pts seconds, keyframe), from ffprobe.
fn video_packets(path: &Path) -> Vec<(f64, bool)> {
    let probe = common::ffprobe_with(path, &["-select_streams", "v:0", "-show_packets"]);
    probe["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|packet| {
            let pts = packet["pts_time"].as_str().and_then(|t| t.parse().ok()).expect("pts_time");
            let key = packet["flags"].as_str().is_some_and(|flags| flags.starts_with('K'));
            (pts, key)
        })
        .collect()
}

fn stream<'a>(probe: &'a Value, kind: &str) -> &'a Value {
    common::ffprobe_stream(probe, kind).unwrap_or_else(|| panic!("no {kind} stream in {probe:#}"))
}

#[test]
fn avi_transcodes_to_keyframe_aligned_fmp4() {
    let path = common::sample("movie2/movie-hello.avi");
    let job = job(path, 8360, Some((1024, 576)), true, Rendition::P480);
    let manager = manager(2, Duration::from_secs(30));
    let key = ("avi".to_owned(), Rendition::P480);
    let cancel = AtomicBool::new(false);
    let init = manager.init_segment(&key, &job, deadline(), &cancel).expect("init segment");
    let count = segment_count(job.duration_ms);
    assert_eq!(count, 3);
    let segments: Vec<Vec<u8>> =
        (0..count).map(|n| manager.media_segment(&key, &job, n, deadline(), &cancel).expect("segment").to_vec()).collect();

    let file = joined("avi-480p.mp4", &init, &segments);
    let probe = common::ffprobe(&file);
    let video = stream(&probe, "video");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["profile"], "Main");
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(852), Some(480)));
    let audio = stream(&probe, "audio");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");
    let duration = common::number(&probe["format"]["duration"]).expect("duration");
    assert!((duration - 8.36).abs() < 0.25, "joined segments last {duration} s, the source 8.36 s");

    let packets = video_packets(&file);
    assert!(packets.len() >= 200, "only {} video frames", packets.len());
    for boundary in 0..count {
        let start = segment_start_ms(boundary) as f64 / 1000.0;
        let first = packets.iter().find(|(pts, _)| *pts >= start - 0.001).expect("a frame after the boundary");
        assert!(first.1, "the first frame of segment {boundary}, at {} s, is not a keyframe", first.0);
        assert!(first.0 - start < 0.05, "segment {boundary} starts at {} s", first.0);
    }
}

#[test]
fn seek_matches_timestamps_from_start() {
    let source = synthesize_long_file();
    let duration_ms = 30_000;
    let job = job(source, duration_ms, Some((640, 360)), true, Rendition::P360);
    let manager = manager(2, Duration::from_secs(30));
    let key = ("seek".to_owned(), Rendition::P360);
    let cancel = AtomicBool::new(false);
    let middle = segment_count(duration_ms) / 2;

    // Ask for the middle segment first, as a player seeking to 50 % does.
    let started = manager.status().started_total;
    let seeked = manager.media_segment(&key, &job, middle, deadline(), &cancel).expect("middle segment").to_vec();
    let init = manager.init_segment(&key, &job, deadline(), &cancel).expect("init segment");
    assert_eq!(manager.status().started_total, started + 1, "one pipeline, started at the seek point");

    let file = joined("seek-middle.mp4", &init, std::slice::from_ref(&seeked));
    let packets = video_packets(&file);
    let expected = segment_start_ms(middle) as f64 / 1000.0;
    let (first_pts, first_key) = packets[0];
    assert!(first_key, "the seeked segment starts with a keyframe");
    assert!((first_pts - expected).abs() < 0.05, "seeked segment starts at {first_pts} s, expected {expected} s");
    let last = packets.last().expect("frames").0;
    assert!(last < expected + f64::from(SEGMENT_SECONDS), "segment runs past its end: {last} s");

    // The same segment from a transcode that ran from the start has the same timing.
    let from_start = ("from-start".to_owned(), Rendition::P360);
    let reference: Vec<f64> = {
        for n in 0..middle {
            manager.media_segment(&from_start, &job, n, deadline(), &cancel).expect("earlier segment");
        }
        let segment = manager.media_segment(&from_start, &job, middle, deadline(), &cancel).expect("middle segment");
        let file = joined("seek-reference.mp4", &init, &[segment.to_vec()]);
        video_packets(&file).into_iter().map(|(pts, _)| pts).collect()
    };
    let seeked_times: Vec<f64> = packets.iter().map(|(pts, _)| *pts).collect();
    assert_eq!(seeked_times.len(), reference.len(), "frame count of the segment");
    for (a, b) in seeked_times.iter().zip(&reference) {
        assert!((a - b).abs() < 0.002, "frame at {a} s after the seek, {b} s without");
    }
}

#[test]
fn out_of_range_segments_start_no_pipeline() {
    let job = job(common::sample("movie2/movie-hello.avi"), 8360, Some((1024, 576)), true, Rendition::P360);
    let manager = manager(1, Duration::from_secs(30));
    let cancel = AtomicBool::new(false);
    let key = ("range".to_owned(), Rendition::P360);
    for n in [3, 4, u32::MAX] {
        let error = manager.media_segment(&key, &job, n, deadline(), &cancel).expect_err("past the end");
        assert_eq!(error, TranscodeError::NoSuchSegment { requested: n, last: 2 });
    }
    assert_eq!(manager.status().started_total, 0);
}

#[test]
fn corrupt_file_fails_with_name() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("not-a-film.avi");
    std::fs::write(&path, b"RIFF\x10\x00\x00\x00AVI LIST garbage that is not a film").expect("write");
    let job = job(path.clone(), 8000, Some((640, 480)), true, Rendition::P360);
    let manager = manager(1, Duration::from_secs(30));
    let cancel = AtomicBool::new(false);
    let error = manager.init_segment(&("bad".to_owned(), Rendition::P360), &job, deadline(), &cancel).expect_err("corrupt");
    let TranscodeError::Failed(message) = error else { panic!("expected a failure, got {error:?}") };
    assert!(message.contains("not-a-film.avi"), "{message}");
    // The failed pipeline gives its slot back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while manager.status().running > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(manager.status().running, 0);
}

#[test]
fn failed_file_retried_after_30_s() {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("comes-back-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("folder");
    let path = folder.join("film.avi");
    let _ = std::fs::remove_file(&path);
    let job = job(path.clone(), 8360, Some((1024, 576)), true, Rendition::P360);
    let manager = manager(1, Duration::from_secs(30));
    let cancel = AtomicBool::new(false);
    let key = ("comes-back".to_owned(), Rendition::P360);
    let missing = manager.init_segment(&key, &job, deadline(), &cancel).expect_err("the file is missing");
    assert!(matches!(missing, TranscodeError::Failed(_)), "{missing:?}");

    // The file comes back (a disk remounted): the failure is remembered a
    // while, so a burst of requests does not retry it each time.
    std::fs::copy(common::sample("movie2/movie-hello.avi"), &path).expect("restore the file");
    let remembered = manager.init_segment(&key, &job, deadline(), &cancel).expect_err("remembered");
    assert_eq!(remembered, missing);
    std::thread::sleep(Duration::from_secs(31));
    manager.init_segment(&key, &job, deadline(), &cancel).expect("tried again after 30 s");
}

#[test]
fn idle_pipelines_stop_and_the_limit_holds() {
    let source = synthesize_long_file();
    let manager = manager(2, Duration::from_secs(2));
    let threads: Vec<_> = (0..6)
        .map(|index| {
            let manager = manager.clone();
            let job = job(source.clone(), 30_000, Some((640, 360)), true, Rendition::P360);
            std::thread::spawn(move || {
                let cancel = AtomicBool::new(false);
                manager.media_segment(&(format!("viewer-{index}"), Rendition::P360), &job, 1, deadline(), &cancel)
            })
        })
        .collect();
    let mut peak_seen = 0;
    while !threads.iter().all(|thread| thread.is_finished()) {
        peak_seen = peak_seen.max(manager.status().running);
        std::thread::sleep(Duration::from_millis(20));
    }
    for thread in threads {
        thread.join().expect("viewer thread").expect("every viewer gets its segment in the end");
    }
    let status = manager.status();
    assert!(status.peak <= 2, "limit 2, peak {}", status.peak);
    assert!(peak_seen <= 2, "limit 2, seen {peak_seen} running");
    assert_eq!(status.started_total, 6);

    // No further request comes, so every pipeline stops within a few seconds.
    let stop_deadline = Instant::now() + Duration::from_secs(10);
    while manager.status().running > 0 && Instant::now() < stop_deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(manager.status().running, 0, "idle pipelines still run after 10 s");
}

/// Makes a 30 s 640×360 H.264/MP3 Matroska file with GStreamer's test sources,
/// long enough for a seek to the middle.
fn synthesize_long_file() -> PathBuf {
    common::made_once(
        "long-30s.mkv",
        &[
            "videotestsrc", "num-buffers=750", "pattern=ball", "!", "video/x-raw,width=640,height=360,framerate=25/1", "!",
            "x264enc", "key-int-max=50", "!", "queue", "!", "mux.",
            "audiotestsrc", "num-buffers=1292", "samplesperbuffer=1024", "!", "audio/x-raw,rate=44100", "!", "lamemp3enc", "!", "queue", "!", "mux.",
            "matroskamux", "name=mux", "!", "filesink",
        ],
    )
}
