//! Trickplay: sprite sheets and their WebVTT index from a synthesized clip and
//! a real sample, checked against ffmpeg's frames. Errors leave no output.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{ffmpeg, sample};
use hearth_media::MediaError;
use hearth_media::trickplay::{TrickplayIndex, TrickplaySpec, generate};
use image::{GenericImageView, RgbImage};

/// Length of the synthesized clip's video stream. Its AAC audio runs about
/// 21 ms longer, so the probed duration would add a tile.
const CLIP_DURATION_MS: u64 = 65_000;

/// Timeout for one `generate` call. The 65 s clip took about 1 s on the
/// 2-core development machine in a debug build.
const GENERATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns a 65 s 640x360 H.264 clip with AAC audio, made once per test run.
///
/// The SMPTE bars scroll 3 pixels per frame at 25 frames/s, so frames 10 s
/// apart are shifted by 750 pixels (110 pixels modulo the width) and differ.
/// gst-launch-1.0 needs no font, unlike timeoverlay, which lives in the
/// Debian package gstreamer1.0-x.
fn clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join("trickplay-clip-65s.mp4");
        let partial = dir.join(format!("trickplay-clip-65s.{}.partial", std::process::id()));
        let location = format!("location={}", partial.display());
        let started = Instant::now();
        let output = Command::new("gst-launch-1.0")
            .args([
                "-q",
                "videotestsrc",
                "pattern=smpte",
                "horizontal-speed=3",
                "num-buffers=1625",
            ])
            .args(["!", "video/x-raw,width=640,height=360,framerate=25/1"])
            .args(["!", "x264enc", "speed-preset=ultrafast", "bitrate=600"])
            .args(["!", "mp4mux", "name=mux", "!", "filesink", &location])
            .args(["audiotestsrc", "num-buffers=650", "samplesperbuffer=4800"])
            .args(["!", "audio/x-raw,rate=48000", "!", "avenc_aac", "!", "mux."])
            .output()
            .expect("gst-launch-1.0 runs: install the Debian package gstreamer1.0-tools");
        assert!(
            output.status.success(),
            "gst-launch-1.0 failed to make the test clip: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        fs::rename(&partial, &path).expect("rename the finished test clip");
        eprintln!("made the 65 s test clip in {:?}", started.elapsed());
        path
    })
}

/// One cue of `index.vtt`: times in milliseconds and the tile's box.
#[derive(Debug, PartialEq)]
struct Cue {
    start_ms: u64,
    end_ms: u64,
    sheet: String,
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

/// Parses the WebVTT that `generate` writes, failing on anything else.
fn parse_vtt(text: &str) -> Vec<Cue> {
    let mut blocks = text.split("\n\n");
    assert_eq!(blocks.next(), Some("WEBVTT"), "header of {text:?}");

    blocks
        .map(|block| {
            let (times, payload) = block
                .trim_end_matches('\n')
                .split_once('\n')
                .unwrap_or_else(|| panic!("cue without payload: {block:?}"));
            let (start, end) = times.split_once(" --> ").expect("cue times");
            let (sheet, fragment) = payload.split_once("#xywh=").expect("xywh fragment");
            let numbers: Vec<u32> = fragment.split(',').map(|n| n.parse().unwrap()).collect();
            assert_eq!(numbers.len(), 4, "xywh of {payload:?}");
            Cue {
                start_ms: parse_timestamp(start),
                end_ms: parse_timestamp(end),
                sheet: sheet.to_owned(),
                x: numbers[0],
                y: numbers[1],
                width: numbers[2],
                height: numbers[3],
            }
        })
        .collect()
}

/// Parses `HH:MM:SS.mmm` into milliseconds.
fn parse_timestamp(text: &str) -> u64 {
    let parts: Vec<&str> = text.split([':', '.']).collect();
    assert_eq!(parts.len(), 4, "timestamp {text:?}");
    assert_eq!(parts[3].len(), 3, "milliseconds of {text:?}");
    let number = |part: &str| part.parse::<u64>().unwrap();
    ((number(parts[0]) * 60 + number(parts[1])) * 60 + number(parts[2])) * 1000 + number(parts[3])
}

/// Runs `generate` into `out_dir` and reads back its index and sheets.
struct Output {
    index: TrickplayIndex,
    cues: Vec<Cue>,
    sheets: Vec<RgbImage>,
}

fn generate_into(media: &Path, duration_ms: u64, out_dir: &Path, spec: &TrickplaySpec) -> Output {
    let started = Instant::now();
    let index = generate(media, duration_ms, out_dir, spec, GENERATE_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    eprintln!(
        "generated {} tiles for {} in {:?}",
        index.tiles,
        media.display(),
        started.elapsed()
    );

    let vtt = fs::read_to_string(out_dir.join("index.vtt")).expect("index.vtt is readable");
    let sheets = index
        .sheets
        .iter()
        .map(|path| {
            image::open(path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
                .into_rgb8()
        })
        .collect();
    Output {
        index,
        cues: parse_vtt(&vtt),
        sheets,
    }
}

/// Returns the pixels of the tile that `cue` points at.
fn tile(output: &Output, cue: &Cue) -> RgbImage {
    let number: usize = cue
        .sheet
        .strip_prefix("sheet-")
        .and_then(|rest| rest.strip_suffix(".jpg"))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("unexpected sheet name {:?}", cue.sheet));
    output.sheets[number]
        .view(cue.x, cue.y, cue.width, cue.height)
        .to_image()
}

/// Mean absolute difference per channel of two pictures of the same size, 0 to 255.
fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len() as f64
}

/// Checks that every cue box lies inside its sheet, in files that exist.
fn assert_boxes_inside_sheets(output: &Output, out_dir: &Path) {
    for cue in &output.cues {
        assert!(out_dir.join(&cue.sheet).is_file(), "{cue:?}: no such sheet");
        let image = tile_sheet(output, cue);
        assert!(
            cue.x + cue.width <= image.width(),
            "{cue:?} is wider than its sheet"
        );
        assert!(
            cue.y + cue.height <= image.height(),
            "{cue:?} is taller than its sheet"
        );
    }
}

fn tile_sheet<'a>(output: &'a Output, cue: &Cue) -> &'a RgbImage {
    let position = output
        .index
        .sheets
        .iter()
        .position(|path| path.file_name().is_some_and(|name| *name == *cue.sheet))
        .unwrap_or_else(|| panic!("{cue:?}: sheet missing from the returned index"));
    &output.sheets[position]
}

#[test]
fn clip_gives_seven_tiles_in_one_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("trickplay");
    let output = generate_into(
        clip(),
        CLIP_DURATION_MS,
        &out_dir,
        &TrickplaySpec::default(),
    );

    assert_eq!(output.index.tiles, 7);
    assert_eq!(output.index.sheets, vec![out_dir.join("sheet-0.jpg")]);
    assert_eq!(output.index.tile_width, 160);
    assert_eq!(output.index.tile_height, 90);
    assert_eq!(output.index.interval, Duration::from_secs(10));

    // One partly used row: the sheet is cropped to its 7 used columns.
    assert_eq!(output.sheets[0].dimensions(), (7 * 160, 90));

    let expected_times: Vec<(u64, u64)> = (0..7)
        .map(|k| (k * 10_000, ((k + 1) * 10_000).min(CLIP_DURATION_MS)))
        .collect();
    let times: Vec<(u64, u64)> = output
        .cues
        .iter()
        .map(|cue| (cue.start_ms, cue.end_ms))
        .collect();
    assert_eq!(times, expected_times);
    for (k, cue) in output.cues.iter().enumerate() {
        assert_eq!(cue.sheet, "sheet-0.jpg", "{cue:?}");
        assert_eq!((cue.x, cue.y), (k as u32 * 160, 0), "{cue:?}");
        assert_eq!((cue.width, cue.height), (160, 90), "{cue:?}");
    }
    assert_boxes_inside_sheets(&output, &out_dir);

    let entries: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["trickplay"], "staging folders left behind");
}

#[test]
fn clip_tiles_differ_from_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("trickplay");
    let output = generate_into(
        clip(),
        CLIP_DURATION_MS,
        &out_dir,
        &TrickplaySpec::default(),
    );
    let tiles: Vec<RgbImage> = output.cues.iter().map(|cue| tile(&output, cue)).collect();

    for (i, first) in tiles.iter().enumerate() {
        for (j, second) in tiles.iter().enumerate().skip(i + 1) {
            let difference = mean_difference(first, second);
            assert!(
                difference > 10.0,
                "tiles {i} and {j} differ by only {difference:.1}"
            );
        }
    }
}

#[test]
fn clip_tiles_match_ffmpeg_frames() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("trickplay");
    let output = generate_into(
        clip(),
        CLIP_DURATION_MS,
        &out_dir,
        &TrickplaySpec::default(),
    );

    // ffmpeg's frame at k x 10 s, scaled to the tile size, as raw RGB.
    let references: Vec<Vec<u8>> = (0..7)
        .map(|k| {
            let raw = dir.path().join(format!("reference-{k}.rgb"));
            let position = format!("{}", k * 10);
            let args: [&std::ffi::OsStr; 13] = [
                "-ss".as_ref(),
                position.as_ref(),
                "-i".as_ref(),
                clip().as_os_str(),
                "-frames:v".as_ref(),
                "1".as_ref(),
                "-vf".as_ref(),
                "scale=160:90".as_ref(),
                "-pix_fmt".as_ref(),
                "rgb24".as_ref(),
                "-f".as_ref(),
                "rawvideo".as_ref(),
                raw.as_os_str(),
            ];
            ffmpeg(&args);
            fs::read(&raw).unwrap()
        })
        .collect();

    for (k, cue) in output.cues.iter().enumerate() {
        let pixels = tile(&output, cue).into_raw();
        let differences: Vec<f64> = references
            .iter()
            .map(|reference| mean_difference(&pixels, reference))
            .collect();
        let nearest = differences
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(index, _)| index);
        assert_eq!(
            nearest,
            Some(k),
            "tile {k}: differences to ffmpeg frames {differences:.1?}"
        );
        assert!(
            differences[k] < 12.0,
            "tile {k}: differs from ffmpeg's frame by {:.1}",
            differences[k]
        );
    }
}

#[test]
fn small_sheets_split_thirteen_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("trickplay");
    let spec = TrickplaySpec {
        interval: Duration::from_secs(5),
        columns: 2,
        rows: 2,
        ..TrickplaySpec::default()
    };
    let output = generate_into(clip(), CLIP_DURATION_MS, &out_dir, &spec);

    assert_eq!(output.index.tiles, 13);
    let names: Vec<PathBuf> = (0..4)
        .map(|n| out_dir.join(format!("sheet-{n}.jpg")))
        .collect();
    assert_eq!(output.index.sheets, names);
    for sheet in &output.sheets[..3] {
        assert_eq!(sheet.dimensions(), (2 * 160, 2 * 90));
    }
    assert_eq!(output.sheets[3].dimensions(), (160, 90));

    assert_eq!(output.cues.len(), 13);
    for (k, cue) in output.cues.iter().enumerate() {
        let k = k as u64;
        assert_eq!(cue.start_ms, k * 5_000, "{cue:?}");
        assert_eq!(
            cue.end_ms,
            ((k + 1) * 5_000).min(CLIP_DURATION_MS),
            "{cue:?}"
        );
        assert_eq!(cue.sheet, format!("sheet-{}.jpg", k / 4), "{cue:?}");
        let cell = (k % 4) as u32;
        assert_eq!(
            (cue.x, cue.y),
            ((cell % 2) * 160, (cell / 2) * 90),
            "{cue:?}"
        );
    }
    assert_boxes_inside_sheets(&output, &out_dir);
}

#[test]
fn avi_sample_gives_five_tiles() {
    let path = sample("movie2/movie-hello.avi");
    let probed = hearth_media::probe(&path, common::TIMEOUT).unwrap();
    let duration_ms = probed.duration_ms.expect("the sample has a duration");
    assert_eq!(duration_ms, 8_360);

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("trickplay");
    let spec = TrickplaySpec {
        interval: Duration::from_secs(2),
        ..TrickplaySpec::default()
    };
    let output = generate_into(&path, duration_ms, &out_dir, &spec);

    assert_eq!(output.index.tiles, 5);
    // 1024x576 is 16:9, like 160x90.
    assert_eq!(
        (output.index.tile_width, output.index.tile_height),
        (160, 90)
    );
    assert_eq!(output.sheets[0].dimensions(), (5 * 160, 90));
    let times: Vec<(u64, u64)> = output
        .cues
        .iter()
        .map(|cue| (cue.start_ms, cue.end_ms))
        .collect();
    assert_eq!(
        times,
        [
            (0, 2_000),
            (2_000, 4_000),
            (4_000, 6_000),
            (6_000, 8_000),
            (8_000, 8_360)
        ]
    );
    assert_boxes_inside_sheets(&output, &out_dir);
}

#[test]
fn audio_only_file_is_rejected() {
    let path = sample("audio1/debian.ogg");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("trickplay");
    let result = generate(
        &path,
        5_407,
        &out_dir,
        &TrickplaySpec::default(),
        GENERATE_TIMEOUT,
    );

    let error = result.expect_err("an audio-only file has no trickplay");
    assert!(matches!(error, MediaError::NoThumbnail { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("debian.ogg"), "{message}");
    assert!(message.contains("no video stream"), "{message}");
    assert!(!out_dir.exists());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "staging folder left behind"
    );
}

#[test]
fn text_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.mp4");
    fs::write(&path, "these are notes, not a video\n".repeat(200)).unwrap();
    let out_dir = dir.path().join("trickplay");
    let result = generate(
        &path,
        10_000,
        &out_dir,
        &TrickplaySpec::default(),
        GENERATE_TIMEOUT,
    );

    let error = result.expect_err("a text file has no trickplay");
    assert!(matches!(error, MediaError::NotMedia { .. }), "{error:?}");
    assert!(error.to_string().contains("notes.mp4"), "{error}");
    assert!(!out_dir.exists());
}

#[test]
fn zero_duration_is_rejected() {
    let path = sample("movie2/movie-hello.avi");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("trickplay");
    let result = generate(
        &path,
        0,
        &out_dir,
        &TrickplaySpec::default(),
        GENERATE_TIMEOUT,
    );

    assert!(
        matches!(result, Err(MediaError::NoThumbnail { .. })),
        "{result:?}"
    );
    assert!(!out_dir.exists());
}

#[test]
fn existing_output_is_replaced() {
    let path = sample("movie2/movie-hello.avi");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("trickplay");
    fs::create_dir(&out_dir).unwrap();
    fs::write(out_dir.join("index.vtt"), "WEBVTT\n").unwrap();
    fs::write(out_dir.join("sheet-9.jpg"), "stale").unwrap();

    let output = generate_into(&path, 8_360, &out_dir, &TrickplaySpec::default());

    assert_eq!(output.index.tiles, 1);
    assert!(!out_dir.join("sheet-9.jpg").exists(), "stale sheet kept");
    let entries: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["trickplay"], "old or staging folders left behind");
}

#[test]
fn unrelated_folder_is_kept() {
    let path = sample("movie2/movie-hello.avi");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("photos");
    fs::create_dir(&out_dir).unwrap();
    fs::write(out_dir.join("holiday.jpg"), "precious").unwrap();

    let result = generate(
        &path,
        8_360,
        &out_dir,
        &TrickplaySpec::default(),
        GENERATE_TIMEOUT,
    );

    let error = result.expect_err("a folder without index.vtt is not replaced");
    assert!(
        error.to_string().contains("not a trickplay folder"),
        "{error}"
    );
    assert_eq!(fs::read(out_dir.join("holiday.jpg")).unwrap(), b"precious");
}

#[test]
fn timeout_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("trickplay");
    let media = clip();
    let started = Instant::now();
    let result = generate(
        media,
        CLIP_DURATION_MS,
        &out_dir,
        &TrickplaySpec::default(),
        Duration::from_millis(200),
    );

    assert!(
        matches!(result, Err(MediaError::Timeout { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "returned after {:?}",
        started.elapsed()
    );
    // The worker notices the deadline within its 50 ms poll and deletes its
    // staging folder. Give it a generous moment.
    let cleaned = Instant::now();
    while fs::read_dir(dir.path()).unwrap().count() > 0
        && cleaned.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "output or staging folder left behind"
    );
}
