//! Measures the HLS transcoder on one file and prints the results as one JSON
//! line:
//!
//! - time to first segment: the time from the first `init_segment` call of a
//!   new playback session until media segment 0 is returned, repeated with a
//!   fresh session each time.
//! - whole-file transcode: the wall time to fetch the init segment and every
//!   media segment in order, and speed = media duration / wall time.
//!
//! ```text
//! cargo run --release -p hearth-media --example hls_bench -- \
//!     FILE DURATION_MS WIDTH HEIGHT [RENDITION] [--ttfs-runs N] [--whole-runs N] [--no-audio] [--output MP4]
//! ```
//!
//! `benches/transcode.sh` runs it against the ffmpeg command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hearth_media::hls::{
    AUDIO_BPS, Job, Rendition, TranscodeKey, TranscodeManager, TranscodeSettings, VideoEncoder, output_size, segment_count,
};
use serde_json::json;

const USAGE: &str = "usage: hls_bench FILE DURATION_MS WIDTH HEIGHT [RENDITION] [--ttfs-runs N] [--whole-runs N] [--no-audio] [--output MP4]
  FILE           media file to transcode (it must have audio unless --no-audio is given)
  DURATION_MS    its duration in milliseconds, as the catalog stores it
  WIDTH HEIGHT   its frame size in pixels
  RENDITION      1080p, 720p, 480p or 360p [default: 720p]
  --ttfs-runs N  cold time-to-first-segment runs, each on a new session [default: 5]
  --whole-runs N whole-file transcodes [default: 1]
  --no-audio     the file has no audio track
  --output MP4   write the init segment and every segment of the last whole-file run to MP4";

/// Deadline of one segment request. Generous, so a slow machine reports a
/// slow time instead of an error.
const REQUEST_LIMIT: Duration = Duration::from_secs(600);

struct Options {
    path: PathBuf,
    duration_ms: u64,
    width: u32,
    height: u32,
    rendition: Rendition,
    ttfs_runs: u32,
    whole_runs: u32,
    audio: bool,
    output: Option<PathBuf>,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the command line. Returns `Ok(None)` for `--help`.
fn parse_args(args: Vec<String>) -> Result<Option<Options>, String> {
    let mut positional = Vec::new();
    let mut ttfs_runs = 5;
    let mut whole_runs = 1;
    let mut audio = true;
    let mut output = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--ttfs-runs" => ttfs_runs = parse_number("--ttfs-runs", args.next())?,
            "--whole-runs" => whole_runs = parse_number("--whole-runs", args.next())?,
            "--no-audio" => audio = false,
            "--output" => output = Some(PathBuf::from(args.next().ok_or("--output needs a value")?)),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg),
        }
    }
    if !(4..=5).contains(&positional.len()) {
        return Err(format!("expected 4 or 5 positional arguments, got {}", positional.len()));
    }

    let path = PathBuf::from(&positional[0]);
    if !path.is_file() {
        return Err(format!("FILE {} is not a readable file", path.display()));
    }
    let duration_ms: u64 = parse_number("DURATION_MS", Some(positional[1].clone()))?;
    let width: u32 = parse_number("WIDTH", Some(positional[2].clone()))?;
    let height: u32 = parse_number("HEIGHT", Some(positional[3].clone()))?;
    if duration_ms == 0 || width == 0 || height == 0 {
        return Err("DURATION_MS, WIDTH and HEIGHT must be greater than 0".to_owned());
    }
    let rendition = match positional.get(4) {
        None => Rendition::P720,
        Some(name) => match Rendition::parse(name) {
            Some(Rendition::Audio) | None => {
                return Err(format!("invalid RENDITION {name:?}: expected 1080p, 720p, 480p or 360p"));
            }
            Some(rendition) => rendition,
        },
    };
    Ok(Some(Options { path, duration_ms, width, height, rendition, ttfs_runs, whole_runs, audio, output }))
}

fn parse_number<T: std::str::FromStr>(name: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{name} needs a value"))?;
    value.parse().map_err(|_| format!("invalid {name} {value:?}: expected a non-negative integer"))
}

fn run(options: &Options) -> anyhow::Result<()> {
    // The server checks its encoder at start, which loads the GStreamer
    // registry and the x264 plug-in, so that time is not part of a request.
    let setup_started = Instant::now();
    if !VideoEncoder::X264enc.usable() {
        bail!("the GStreamer element x264enc is missing or failed to start: install gstreamer1.0-plugins-ugly");
    }
    let setup_ms = millis(setup_started.elapsed());

    let manager = TranscodeManager::new(TranscodeSettings {
        max_concurrent: 1,
        idle_stop: Duration::from_secs(30),
        forget_after: Duration::from_secs(600),
        encoder: VideoEncoder::X264enc,
    });
    let job = Job {
        path: options.path.clone(),
        duration_ms: options.duration_ms,
        video: Some((options.width, options.height)),
        audio: options.audio,
        rendition: options.rendition,
        audio_track: 0,
        encoder: VideoEncoder::X264enc,
        grid: hearth_media::hls::SegmentGrid::Fixed,
        format: hearth_media::hls::SegmentFormat::Fmp4,
        origin_ns: 0,
    };
    let (out_width, out_height) = output_size(options.rendition, options.width, options.height)
        .context("the rendition has no output size for this frame size")?;

    let mut ttfs_ms = Vec::new();
    let mut ttfs_init_ms = Vec::new();
    for run in 0..options.ttfs_runs {
        let key: TranscodeKey = (format!("ttfs-{run}"), options.rendition);
        let (init_ms, first_ms) = time_to_first_segment(&manager, &key, &job)?;
        ttfs_init_ms.push(init_ms);
        ttfs_ms.push(first_ms);
    }

    let count = segment_count(options.duration_ms);
    let mut whole_wall_ms = Vec::new();
    let mut whole_speed = Vec::new();
    let mut whole_bytes = 0;
    for run in 0..options.whole_runs {
        let key: TranscodeKey = (format!("whole-{run}"), options.rendition);
        let (wall, joined) = whole_file(&manager, &key, &job, count)?;
        whole_wall_ms.push(millis(wall));
        whole_speed.push(options.duration_ms as f64 / millis(wall));
        whole_bytes = joined.len();
        if let Some(path) = &options.output {
            std::fs::write(path, &joined).with_context(|| format!("failed to write {}", path.display()))?;
        }
    }

    let report = json!({
        "file": options.path.display().to_string(),
        "duration_ms": options.duration_ms,
        "source": { "width": options.width, "height": options.height },
        "rendition": options.rendition.as_str(),
        "output": { "width": out_width, "height": out_height },
        "video_kbps": options.rendition.video_kbps(),
        "audio_bps": if options.audio { AUDIO_BPS } else { 0 },
        "segments": count,
        "encoder": VideoEncoder::X264enc.factory(),
        "setup_ms": setup_ms,
        "ttfs_ms": ttfs_ms,
        "ttfs_init_ms": ttfs_init_ms,
        "ttfs_median_ms": median(&ttfs_ms),
        "ttfs_min_ms": ttfs_ms.iter().copied().reduce(f64::min),
        "ttfs_max_ms": ttfs_ms.iter().copied().reduce(f64::max),
        "whole_wall_ms": whole_wall_ms,
        "whole_speed": whole_speed,
        "whole_bytes": whole_bytes,
        "started_total": manager.status().started_total,
    });
    println!("{report}");
    Ok(())
}

/// Times a new session: returns the milliseconds until the init segment and
/// until segment 0, both counted from the `init_segment` call.
fn time_to_first_segment(manager: &TranscodeManager, key: &TranscodeKey, job: &Job) -> anyhow::Result<(f64, f64)> {
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    manager
        .init_segment(key, job, Instant::now() + REQUEST_LIMIT, &cancel)
        .with_context(|| format!("init segment of session {}", key.0))?;
    let init = started.elapsed();
    manager
        .media_segment(key, job, 0, Instant::now() + REQUEST_LIMIT, &cancel)
        .with_context(|| format!("segment 0 of session {}", key.0))?;
    let first = started.elapsed();
    // Frees the slot at once; the reaper would wait for `idle_stop`.
    manager.end_session(&key.0);
    Ok((millis(init), millis(first)))
}

/// Fetches the init segment and segments 0 to `count - 1` in order, as a
/// player that never pauses does. Returns the wall time and the fetched bytes
/// joined into one fragmented MP4.
fn whole_file(manager: &TranscodeManager, key: &TranscodeKey, job: &Job, count: u32) -> anyhow::Result<(Duration, Vec<u8>)> {
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let init = manager
        .init_segment(key, job, Instant::now() + REQUEST_LIMIT, &cancel)
        .with_context(|| format!("init segment of session {}", key.0))?;
    let mut joined = init.to_vec();
    for n in 0..count {
        let segment = manager
            .media_segment(key, job, n, Instant::now() + REQUEST_LIMIT, &cancel)
            .with_context(|| format!("segment {n} of {count} of session {}", key.0))?;
        joined.extend_from_slice(&segment);
    }
    let wall = started.elapsed();
    manager.end_session(&key.0);
    Ok((wall, joined))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Computes the median, or `None` for no values.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}
