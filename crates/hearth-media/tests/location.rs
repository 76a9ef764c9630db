//! Location patches applied to the real samples: kamadak-exif and ffprobe
//! must find no position in the patched copy, and the picture, duration and
//! streams must stay as they were.

mod common;

use std::ffi::OsStr;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use common::{AUDIO_SAMPLES, IMAGE_SAMPLES, VIDEO_SAMPLES, ffmpeg, ffprobe, number, sample};
use hearth_media::{LocationPatch, location_patches};
use serde_json::Value;

/// Phone photo with GPS 15°50'8" S 48°0'56.8" W in its EXIF.
const GPS_PHOTO: &str = "pic1/IMG_20200827_231612.jpg";

/// Phone video with "-15.8355-048.0153/" in its `©xyz` box.
const GPS_VIDEO: &str = "movie1/VID_20191220_170832.mp4";

/// Returns a copy of `original` with `patches` applied.
fn apply(original: &[u8], patches: &[LocationPatch]) -> Vec<u8> {
    let mut patched = original.to_vec();
    for patch in patches {
        let start = patch.offset as usize;
        patched[start..start + patch.bytes.len()].copy_from_slice(&patch.bytes);
    }
    patched
}

/// Patches the sample at `relative` and writes the result into `dir`.
fn patched_copy(relative: &str, dir: &Path) -> (Vec<u8>, Vec<u8>, PathBuf) {
    let path = sample(relative);
    let original = std::fs::read(&path).unwrap();
    let patches = location_patches(&path).unwrap_or_else(|error| panic!("{relative}: {error}"));
    let patched = apply(&original, &patches);
    let file_name = Path::new(relative).file_name().unwrap();
    let copy = dir.join(file_name);
    std::fs::write(&copy, &patched).unwrap();
    (original, patched, copy)
}

/// Returns the EXIF that kamadak-exif reads, or `None` when there is none.
fn exif_of(file: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(file))
        .ok()
}

fn gps_fields(file: &[u8]) -> Vec<String> {
    let Some(parsed) = exif_of(file) else {
        return Vec::new();
    };
    parsed
        .fields()
        .filter(|field| field.tag.context() == exif::Context::Gps)
        .map(|field| field.tag.to_string())
        .collect()
}

fn orientation(file: &[u8]) -> Option<u32> {
    exif_of(file)?
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)?
        .value
        .get_uint(0)
}

/// Returns the names of the format and stream tags that mention a location.
fn location_tags(probe: &Value) -> Vec<String> {
    let format_tags = std::iter::once(&probe["format"]["tags"]);
    let stream_tags = probe["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|stream| &stream["tags"]);
    format_tags
        .chain(stream_tags)
        .filter_map(Value::as_object)
        .flat_map(|tags| tags.keys())
        .filter(|name| name.to_ascii_lowercase().contains("location"))
        .cloned()
        .collect()
}

/// Summarises each stream as codec, type and duration, for comparing two files.
fn stream_summary(probe: &Value) -> Vec<(Value, Value, Value)> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stream| {
            (
                stream["codec_name"].clone(),
                stream["codec_type"].clone(),
                stream["duration"].clone(),
            )
        })
        .collect()
}

#[test]
fn gps_photo_loses_position_and_keeps_picture() {
    let dir = tempfile::tempdir().unwrap();

    let (original, patched, _) = patched_copy(GPS_PHOTO, dir.path());

    assert!(
        !gps_fields(&original).is_empty(),
        "the sample has GPS fields"
    );
    assert_eq!(gps_fields(&patched), Vec::<String>::new());
    assert_eq!(patched.len(), original.len());
    assert!(
        orientation(&original).is_some(),
        "the sample has an orientation"
    );
    assert_eq!(orientation(&patched), orientation(&original));
    let original_pixels = image::load_from_memory(&original).unwrap().to_rgb8();
    let patched_pixels = image::load_from_memory(&patched).unwrap().to_rgb8();
    assert!(original_pixels == patched_pixels, "the pixels changed");
}

#[test]
fn image_samples_have_no_gps_after_patching() {
    let dir = tempfile::tempdir().unwrap();

    for relative in IMAGE_SAMPLES {
        let (original, patched, _) = patched_copy(relative, dir.path());

        assert_eq!(gps_fields(&patched), Vec::<String>::new(), "{relative}");
        assert_eq!(orientation(&patched), orientation(&original), "{relative}");
        if original != patched {
            let original_pixels = image::load_from_memory(&original).unwrap().to_rgb8();
            let patched_pixels = image::load_from_memory(&patched).unwrap().to_rgb8();
            assert!(
                original_pixels == patched_pixels,
                "{relative}: the pixels changed"
            );
        }
    }
}

#[test]
fn phone_video_loses_location_and_keeps_streams() {
    let dir = tempfile::tempdir().unwrap();

    let (original, patched, copy) = patched_copy(GPS_VIDEO, dir.path());

    let before = ffprobe(&sample(GPS_VIDEO));
    let after = ffprobe(&copy);
    assert!(
        !location_tags(&before).is_empty(),
        "the sample has a location tag"
    );
    assert_eq!(location_tags(&after), Vec::<String>::new());
    assert_eq!(patched.len(), original.len());
    assert_eq!(
        number(&after["format"]["duration"]),
        number(&before["format"]["duration"])
    );
    assert_eq!(stream_summary(&after), stream_summary(&before));
    assert_eq!(
        after["format"]["tags"]["com.android.version"], "9",
        "other tags stay"
    );
}

#[test]
fn quicktime_location_keys_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apple.mov");
    // FFmpeg writes the sample's location as `loci` and, with
    // use_metadata_tags, every tag as an `mdta` key, the Apple one included.
    ffmpeg(&[
        OsStr::new("-i"),
        sample(GPS_VIDEO).as_os_str(),
        OsStr::new("-c"),
        OsStr::new("copy"),
        OsStr::new("-movflags"),
        OsStr::new("use_metadata_tags"),
        OsStr::new("-metadata"),
        OsStr::new("com.apple.quicktime.location.ISO6709=+48.8577+002.2950+035.000/"),
        OsStr::new("-metadata"),
        OsStr::new("com.apple.quicktime.make=Apple"),
        path.as_os_str(),
    ]);
    let original = std::fs::read(&path).unwrap();

    let patches = location_patches(&path).unwrap();
    let patched_path = dir.path().join("patched.mov");
    std::fs::write(&patched_path, apply(&original, &patches)).unwrap();

    let before = ffprobe(&path);
    let after = ffprobe(&patched_path);
    assert!(
        location_tags(&before).contains(&"com.apple.quicktime.location.ISO6709".to_owned()),
        "{:?}",
        location_tags(&before)
    );
    assert_eq!(location_tags(&after), Vec::<String>::new());
    assert_eq!(after["format"]["tags"]["com.apple.quicktime.make"], "Apple");
    assert_eq!(
        number(&after["format"]["duration"]),
        number(&before["format"]["duration"])
    );
    assert_eq!(stream_summary(&after), stream_summary(&before));
}

#[test]
fn samples_without_location_yield_no_patches() {
    let without_location = AUDIO_SAMPLES
        .iter()
        .chain(
            VIDEO_SAMPLES
                .iter()
                .filter(|relative| **relative != GPS_VIDEO),
        )
        .chain(
            [
                "pic1/debian.png",
                "pic1/debian_logo.jpg",
                "pic2/d-debian.jpg",
                "pic1/empty.jpg",
            ]
            .iter(),
        );

    for relative in without_location {
        let patches = location_patches(&sample(relative)).unwrap();
        assert_eq!(patches, Vec::new(), "{relative}");
    }
}
