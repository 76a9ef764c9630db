//! Shared helpers: sample locations and the reference tools (ffprobe, ffmpeg).
//!
//! The samples come from Debian's `forensics-samples-files` and
//! `sound-theme-freedesktop` packages. A missing sample fails the test with
//! the package to install; nothing is skipped silently.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// Where `forensics-samples-files` installs its original files.
pub const SAMPLES: &str = "/usr/share/forensics-samples/original-files";

/// Where `sound-theme-freedesktop` installs its sounds.
pub const SOUNDS: &str = "/usr/share/sounds/freedesktop/stereo";

/// Timeout for probes and thumbnails of the samples. The slowest, a 4000x3000
/// JPEG thumbnail, took 0.5 s on the 2-core development machine.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Video samples, relative to [`SAMPLES`].
pub const VIDEO_SAMPLES: [&str; 5] = [
    "movie1/VID_20191220_170832.mp4",
    "movie2/movie-hello.mp4",
    "movie2/movie-hello.avi",
    "movie2/movie-hello.mpeg",
    "movie2/movie-hello.ogg",
];

/// Audio samples, relative to [`SAMPLES`].
pub const AUDIO_SAMPLES: [&str; 6] = [
    "audio1/debian.mp3",
    "audio1/debian.ogg",
    "audio1/debian.wav",
    "audio2/deleted.mp3",
    "audio2/deleted.ogg",
    "audio2/deleted.wav",
];

/// Image samples that the `image` crate reads, relative to [`SAMPLES`].
pub const IMAGE_SAMPLES: [&str; 14] = [
    "pic1/IMG-20191006-WA0002.jpg",
    "pic1/IMG_1054.JPG",
    "pic1/IMG_20200827_231612.jpg",
    "pic1/debian.png",
    "pic1/debian.ppm",
    "pic1/debian_logo.jpg",
    "pic1/debian_logo.png",
    "pic1/empty.jpg",
    "pic2/IMG_20191224_234846.jpg",
    "pic2/IMG_20200124_231153.jpg",
    "pic2/IMG_20200608_111614.jpg",
    "pic2/d-debian.jpg",
    "pic2/d-debian.png",
    "pic2/d-debian.ppm",
];

/// Returns the path of a sample, failing the test when it is not installed.
pub fn sample(relative: &str) -> PathBuf {
    let path = Path::new(SAMPLES).join(relative);
    assert!(
        path.is_file(),
        "sample {} is missing: install the Debian package forensics-samples-files",
        path.display()
    );
    path
}

/// Returns every `.oga` sound of the freedesktop theme, failing the test when
/// the theme is not installed.
pub fn freedesktop_sounds() -> Vec<PathBuf> {
    let entries = std::fs::read_dir(SOUNDS).unwrap_or_else(|error| {
        panic!(
            "{SOUNDS} is unreadable ({error}): install the Debian package sound-theme-freedesktop"
        )
    });
    let mut sounds: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "oga"))
        .collect();
    sounds.sort();
    assert!(
        !sounds.is_empty(),
        "{SOUNDS} has no .oga files: install the Debian package sound-theme-freedesktop"
    );
    sounds
}

/// Runs `ffprobe -show_format -show_streams` and returns its JSON output.
pub fn ffprobe(path: &Path) -> Value {
    ffprobe_with(path, &["-show_format", "-show_streams"])
}

/// Runs ffprobe with JSON output and the given extra arguments.
pub fn ffprobe_with(path: &Path, args: &[&str]) -> Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe runs: install the Debian package ffmpeg");
    assert!(
        output.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ffprobe prints JSON")
}

/// Runs ffmpeg quietly with `args`, failing the test when it fails.
pub fn ffmpeg(args: &[&std::ffi::OsStr]) {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs: install the Debian package ffmpeg");
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns the first stream of `codec_type` ("video" or "audio") in ffprobe output.
pub fn ffprobe_stream<'a>(probe: &'a Value, codec_type: &str) -> Option<&'a Value> {
    probe["streams"]
        .as_array()?
        .iter()
        .find(|stream| stream["codec_type"] == codec_type)
}

/// Reads a number that ffprobe prints either as a JSON number or a string.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Parses an ffprobe rational such as "30000/1001"; `None` for "0/0".
pub fn rational(value: &Value) -> Option<f64> {
    let (numerator, denominator) = value.as_str()?.split_once('/')?;
    let numerator: f64 = numerator.parse().ok()?;
    let denominator: f64 = denominator.parse().ok()?;
    (numerator > 0.0 && denominator > 0.0).then(|| numerator / denominator)
}

/// Finds a tag by case-insensitive key in the format tags or in any stream's
/// tags (Ogg keeps Vorbis comments on the stream).
pub fn ffprobe_tag(probe: &Value, key: &str) -> Option<String> {
    let format_tags = std::iter::once(&probe["format"]["tags"]);
    let stream_tags = probe["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|stream| &stream["tags"]);
    format_tags.chain(stream_tags).find_map(|tags| {
        tags.as_object()?
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .and_then(|(_, value)| value.as_str().map(str::to_owned))
    })
}

/// Makes a test film named `name` in the test target folder once per run:
/// `gst-launch-1.0` runs `pipeline`, which ends with a `filesink` whose
/// location this adds. Tests that share a film wait for each other.
pub fn made_once(name: &str, pipeline: &[&str]) -> PathBuf {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if path.is_file() {
        return path;
    }
    let partial = path.with_extension("partial");
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline)
        .arg(format!("location={}", partial.display()))
        .status()
        .expect("gst-launch-1.0 runs: install gstreamer1.0-tools");
    assert!(status.success(), "gst-launch-1.0 could not make the test film {name}");
    std::fs::rename(&partial, &path).expect("rename the test film");
    path
}
