//! Image probes compared with ffprobe, which reports image sizes and, for
//! JPEG, the EXIF tags as frame tags.

mod common;

use std::path::Path;

use common::{IMAGE_SAMPLES, TIMEOUT, ffprobe_with, sample};
use hearth_media::{MediaError, MediaKind, probe};
use serde_json::Value;

#[test]
fn image_sizes_match_ffprobe() {
    for relative in IMAGE_SAMPLES {
        let path = sample(relative);
        let probed = probe(&path, TIMEOUT).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(probed.kind, MediaKind::Image, "{relative}");
        assert!(probed.duration_ms.is_none(), "{relative}");

        let reference = ffprobe_with(&path, &["-show_streams"]);
        let stream = &reference["streams"][0];
        let image = probed.image.expect("image info");
        assert_eq!(
            Some(u64::from(image.width)),
            stream["width"].as_u64(),
            "{relative}: width"
        );
        assert_eq!(
            Some(u64::from(image.height)),
            stream["height"].as_u64(),
            "{relative}: height"
        );
    }
}

#[test]
fn image_formats_and_mime_types() {
    let cases = [
        ("pic1/IMG_1054.JPG", "jpeg", "image/jpeg"),
        ("pic1/debian.png", "png", "image/png"),
        ("pic1/debian.ppm", "pnm", "image/x-portable-anymap"),
    ];
    for (relative, format, mime) in cases {
        let probed = probe(&sample(relative), TIMEOUT).unwrap();
        assert_eq!(probed.mime, mime, "{relative}");
        assert_eq!(probed.image.unwrap().format, format, "{relative}");
    }
}

#[test]
fn jpeg_exif_matches_ffprobe() {
    let mut with_gps = 0;
    for relative in IMAGE_SAMPLES
        .iter()
        .filter(|name| name.to_lowercase().ends_with(".jpg"))
    {
        let path = sample(relative);
        let probed = probe(&path, TIMEOUT).unwrap();
        let exif = probed.image.expect("image info").exif;
        let tags = ffprobe_exif(&path);

        let camera_model = tag(&tags, "Model");
        if camera_model.is_none() {
            assert!(
                exif.is_none(),
                "{relative}: ffprobe sees no EXIF, probe read {exif:?}"
            );
            continue;
        }
        let exif = exif.unwrap_or_else(|| panic!("{relative}: EXIF missing"));

        assert_eq!(exif.camera_make, tag(&tags, "Make"), "{relative}: make");
        assert_eq!(exif.camera_model, camera_model, "{relative}: model");
        let taken_at = tag(&tags, "DateTimeOriginal").map(|text| exif_time_to_iso(&text));
        assert_eq!(exif.taken_at, taken_at, "{relative}: taken at");
        let orientation = tag(&tags, "Orientation").map(|text| text.parse::<u16>().unwrap());
        assert_eq!(exif.orientation, orientation, "{relative}: orientation");

        let latitude = signed_degrees(&tags, "GPSLatitude", "GPSLatitudeRef", "S");
        let longitude = signed_degrees(&tags, "GPSLongitude", "GPSLongitudeRef", "W");
        match (latitude, longitude) {
            (Some(latitude), Some(longitude)) => {
                with_gps += 1;
                let gps = exif
                    .gps
                    .unwrap_or_else(|| panic!("{relative}: GPS missing"));
                assert!(
                    (gps.latitude - latitude).abs() < 1e-9,
                    "{relative}: {gps:?} vs {latitude}"
                );
                assert!(
                    (gps.longitude - longitude).abs() < 1e-9,
                    "{relative}: {gps:?} vs {longitude}"
                );
                let altitude = tag(&tags, "GPSAltitude")
                    .and_then(|text| parse_rationals(&text).first().copied());
                let below = tag(&tags, "GPSAltitudeRef").as_deref() == Some("1");
                let altitude = altitude.map(|metres| if below { -metres } else { metres });
                match (gps.altitude_m, altitude) {
                    (Some(actual), Some(expected)) => {
                        assert!(
                            (actual - expected).abs() < 1e-6,
                            "{relative}: altitude {actual} vs {expected}"
                        )
                    }
                    (actual, expected) => assert_eq!(actual, expected, "{relative}: altitude"),
                }
            }
            _ => assert!(
                exif.gps.is_none(),
                "{relative}: unexpected GPS {:?}",
                exif.gps
            ),
        }
    }
    assert!(
        with_gps >= 4,
        "the Xiaomi photos carry GPS, found {with_gps}"
    );
}

#[test]
fn southern_western_photo_has_negative_coordinates() {
    // Brasília: ffprobe prints GPSLatitudeRef=S and GPSLongitudeRef=W.
    let probed = probe(&sample("pic1/IMG_20200827_231612.jpg"), TIMEOUT).unwrap();
    let gps = probed.image.unwrap().exif.unwrap().gps.unwrap();
    assert!(gps.latitude < -15.0, "{gps:?}");
    assert!(gps.latitude > -16.0, "{gps:?}");
    assert!(gps.longitude < -48.0, "{gps:?}");
    assert!(gps.longitude > -49.0, "{gps:?}");
}

#[test]
fn gimp_xcf_is_unsupported() {
    let path = sample("pic1/debian.xcf");
    let error = probe(&path, TIMEOUT).unwrap_err();
    match &error {
        MediaError::Unsupported { format, .. } => assert_eq!(format, "image/x-xcf"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

/// Returns ffprobe's frame tags for an image (EXIF fields for JPEG).
fn ffprobe_exif(path: &Path) -> Value {
    let output = ffprobe_with(
        path,
        &[
            "-show_entries",
            "frame_tags=Make,Model,DateTimeOriginal,Orientation,GPSLatitude,GPSLatitudeRef,\
             GPSLongitude,GPSLongitudeRef,GPSAltitude,GPSAltitudeRef",
        ],
    );
    output["frames"][0]["tags"].clone()
}

fn tag(tags: &Value, key: &str) -> Option<String> {
    let text = tags.get(key)?.as_str()?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Parses ffprobe's rational list, such as "15:1, 50:1, 79944:10000".
fn parse_rationals(text: &str) -> Vec<f64> {
    text.split(',')
        .map(|part| {
            let (numerator, denominator) = part.trim().split_once(':').expect("n:d");
            numerator.trim().parse::<f64>().unwrap() / denominator.trim().parse::<f64>().unwrap()
        })
        .collect()
}

fn signed_degrees(tags: &Value, key: &str, ref_key: &str, negative: &str) -> Option<f64> {
    let parts = parse_rationals(&tag(tags, key)?);
    let degrees = parts[0] + parts[1] / 60.0 + parts[2] / 3600.0;
    let reference = tag(tags, ref_key)?;
    Some(if reference == negative {
        -degrees
    } else {
        degrees
    })
}

/// Converts EXIF "YYYY:MM:DD HH:MM:SS" to "YYYY-MM-DDTHH:MM:SS".
fn exif_time_to_iso(text: &str) -> String {
    let (date, time) = text.split_once(' ').expect("date and time");
    format!("{}T{time}", date.replace(':', "-"))
}
