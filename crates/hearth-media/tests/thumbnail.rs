//! Thumbnails: valid JPEG, longer edge within the limit, aspect ratio kept,
//! EXIF orientation applied, cover art for audio.

mod common;

use std::ffi::OsStr;
use std::fs;

use common::{TIMEOUT, VIDEO_SAMPLES, ffmpeg, ffprobe, ffprobe_stream, number, sample};
use hearth_media::{MediaError, MediaKind, probe, thumbnail};
use image::{DynamicImage, GenericImageView, Rgb, RgbImage};

const MAX_EDGE: u32 = 160;

/// Decodes a thumbnail and checks its size against the limit and the
/// expected aspect ratio (width / height), within 2%.
fn assert_thumbnail(name: &str, jpeg: &[u8], expected_aspect: f64) -> DynamicImage {
    assert_eq!(&jpeg[..2], [0xFF, 0xD8], "{name}: not a JPEG");
    let decoded = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .unwrap_or_else(|error| panic!("{name}: {error}"));
    let (width, height) = decoded.dimensions();
    assert!(width.max(height) <= MAX_EDGE, "{name}: {width}x{height}");

    let aspect = f64::from(width) / f64::from(height);
    assert!(
        (aspect / expected_aspect - 1.0).abs() <= 0.02,
        "{name}: aspect {aspect} ({width}x{height}), expected {expected_aspect}"
    );
    decoded
}

#[test]
fn video_thumbnails_keep_aspect_ratio() {
    for relative in VIDEO_SAMPLES {
        let path = sample(relative);
        let probed = probe(&path, TIMEOUT).unwrap();
        let jpeg =
            thumbnail(&path, &probed, MAX_EDGE, TIMEOUT).unwrap_or_else(|error| panic!("{error}"));

        let reference = ffprobe(&path);
        let stream = ffprobe_stream(&reference, "video").unwrap();
        let mut aspect = number(&stream["width"]).unwrap() / number(&stream["height"]).unwrap();
        if let Some((numerator, denominator)) = stream["sample_aspect_ratio"]
            .as_str()
            .and_then(|sar| sar.split_once(':'))
        {
            let sar = numerator.parse::<f64>().unwrap() / denominator.parse::<f64>().unwrap();
            if sar > 0.0 {
                aspect *= sar;
            }
        }
        let decoded = assert_thumbnail(relative, &jpeg, aspect);
        assert_eq!(
            decoded.width().max(decoded.height()),
            MAX_EDGE,
            "{relative}"
        );
    }
}

#[test]
fn video_thumbnail_is_not_a_blank_frame() {
    let path = sample("movie1/VID_20191220_170832.mp4");
    let probed = probe(&path, TIMEOUT).unwrap();
    let jpeg = thumbnail(&path, &probed, MAX_EDGE, TIMEOUT).unwrap();
    let decoded = image::load_from_memory(&jpeg).unwrap().into_luma8();

    let (min, max) = decoded.pixels().fold((255u8, 0u8), |(min, max), pixel| {
        (min.min(pixel[0]), max.max(pixel[0]))
    });
    assert!(
        max - min > 100,
        "luma range {min}..{max}: the frame looks blank"
    );
}

#[test]
fn photo_thumbnail_keeps_shape() {
    // Orientation 3 (upside down) turns the picture but keeps 4000x3000.
    let path = sample("pic2/IMG_20200124_231153.jpg");
    let probed = probe(&path, TIMEOUT).unwrap();
    assert_eq!(
        probed
            .image
            .as_ref()
            .unwrap()
            .exif
            .as_ref()
            .unwrap()
            .orientation,
        Some(3)
    );

    let jpeg = thumbnail(&path, &probed, MAX_EDGE, TIMEOUT).unwrap();
    let decoded = assert_thumbnail("IMG_20200124_231153.jpg", &jpeg, 4000.0 / 3000.0);
    assert_eq!(decoded.dimensions(), (160, 120));
}

#[test]
fn transparent_png_thumbnail() {
    let path = sample("pic1/debian.png");
    let probed = probe(&path, TIMEOUT).unwrap();
    let jpeg = thumbnail(&path, &probed, MAX_EDGE, TIMEOUT).unwrap();
    let decoded = assert_thumbnail("debian.png", &jpeg, 800.0 / 600.0).into_rgb8();

    // The corners are transparent in the PNG and must come out white, not black.
    let corner = decoded.get_pixel(0, 0);
    assert!(
        corner.0.iter().all(|channel| *channel > 240),
        "corner {corner:?}"
    );
}

#[test]
fn small_image_is_not_enlarged() {
    let path = sample("pic1/debian_logo.png");
    let probed = probe(&path, TIMEOUT).unwrap();
    let jpeg = thumbnail(&path, &probed, 1000, TIMEOUT).unwrap();
    let decoded = image::load_from_memory(&jpeg).unwrap();
    assert_eq!(decoded.dimensions(), (100, 123));
}

#[test]
fn exif_orientation_six_turns_image_upright() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotated.jpg");
    fs::write(&path, jpeg_with_orientation(64, 32, 6)).unwrap();

    let probed = probe(&path, TIMEOUT).unwrap();
    let info = probed.image.as_ref().unwrap();
    assert_eq!((info.width, info.height), (64, 32), "stored size");
    assert_eq!(info.exif.as_ref().unwrap().orientation, Some(6));

    let jpeg = thumbnail(&path, &probed, 40, TIMEOUT).unwrap();
    let decoded = image::load_from_memory(&jpeg).unwrap().into_rgb8();
    assert_eq!(decoded.dimensions(), (20, 40), "displayed size is portrait");

    // Orientation 6 means "rotate 90° clockwise to display", so the stored
    // left half (red) ends up on top and the right half (blue) at the bottom.
    assert_colour(decoded.get_pixel(10, 8), Rgb([255, 0, 0]));
    assert_colour(decoded.get_pixel(10, 32), Rgb([0, 0, 255]));
}

#[test]
fn mp3_cover_art_thumbnail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("with-cover.mp3");
    let audio = sample("audio1/debian.mp3");
    let cover = sample("pic1/debian_logo.png");
    ffmpeg(&[
        OsStr::new("-i"),
        audio.as_os_str(),
        OsStr::new("-i"),
        cover.as_os_str(),
        OsStr::new("-map"),
        OsStr::new("0:a"),
        OsStr::new("-map"),
        OsStr::new("1"),
        OsStr::new("-c"),
        OsStr::new("copy"),
        OsStr::new("-id3v2_version"),
        OsStr::new("3"),
        OsStr::new("-metadata:s:v"),
        OsStr::new("comment=Cover (front)"),
        path.as_os_str(),
    ]);

    let probed = probe(&path, TIMEOUT).unwrap();
    assert_eq!(probed.kind, MediaKind::Audio);
    assert!(probed.has_cover_art);

    let jpeg = thumbnail(&path, &probed, MAX_EDGE, TIMEOUT).unwrap();
    // The cover is 100x123 and is not enlarged.
    let decoded = assert_thumbnail("with-cover.mp3", &jpeg, 100.0 / 123.0);
    assert_eq!(decoded.dimensions(), (100, 123));
}

#[test]
fn flac_cover_art_stays_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("with-cover.flac");
    let audio = sample("audio1/debian.wav");
    let cover = sample("pic1/IMG-20191006-WA0002.jpg");
    ffmpeg(&[
        OsStr::new("-i"),
        audio.as_os_str(),
        OsStr::new("-i"),
        cover.as_os_str(),
        OsStr::new("-map"),
        OsStr::new("0:a"),
        OsStr::new("-map"),
        OsStr::new("1"),
        OsStr::new("-c:a"),
        OsStr::new("flac"),
        OsStr::new("-c:v"),
        OsStr::new("copy"),
        OsStr::new("-disposition:v"),
        OsStr::new("attached_pic"),
        path.as_os_str(),
    ]);

    let probed = probe(&path, TIMEOUT).unwrap();
    assert_eq!(
        probed.kind,
        MediaKind::Audio,
        "cover art must not make it a video"
    );
    assert_eq!(probed.mime, "audio/flac");
    assert!(probed.video.is_none());
    assert!(probed.has_cover_art);

    let jpeg = thumbnail(&path, &probed, MAX_EDGE, TIMEOUT).unwrap();
    assert_thumbnail("with-cover.flac", &jpeg, 1024.0 / 768.0);
}

#[test]
fn audio_without_cover_has_no_thumbnail() {
    for relative in [
        "audio1/debian.mp3",
        "audio1/debian.ogg",
        "audio1/debian.wav",
    ] {
        let path = sample(relative);
        let probed = probe(&path, TIMEOUT).unwrap();
        assert!(!probed.has_cover_art, "{relative}");
        let error = thumbnail(&path, &probed, MAX_EDGE, TIMEOUT).unwrap_err();
        assert!(
            matches!(error, MediaError::NoThumbnail { .. }),
            "{relative}: {error:?}"
        );
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
}

fn assert_colour(actual: &Rgb<u8>, expected: Rgb<u8>) {
    let close = actual
        .0
        .iter()
        .zip(expected.0)
        .all(|(a, e)| a.abs_diff(e) < 60);
    assert!(close, "pixel {actual:?}, expected about {expected:?}");
}

/// Encodes a `width`x`height` JPEG whose left half is red and right half is
/// blue, with an EXIF APP1 segment that contains only the orientation tag.
fn jpeg_with_orientation(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let picture = RgbImage::from_fn(width, height, |x, _| {
        if x < width / 2 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 95)
        .encode_image(&picture)
        .unwrap();

    // TIFF header (big-endian, IFD0 at offset 8) with one entry:
    // tag 0x0112 Orientation, type 3 (SHORT), count 1, value, then no next IFD.
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());

    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let segment_len = u16::try_from(app1.len() + 2).unwrap();

    // SOI, then APP1, then the rest of the encoded file.
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend_from_slice(&[0xFF, 0xE1]);
    jpeg.extend_from_slice(&segment_len.to_be_bytes());
    jpeg.extend_from_slice(&app1);
    jpeg.extend_from_slice(&plain[2..]);
    jpeg
}
