//! Camera metadata from EXIF, read with `kamadak-exif` (JPEG, TIFF, PNG, WebP, HEIF).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use exif::{In, Tag, Value};

use crate::types::{Exif, Gps};

/// Reads the EXIF fields the catalog shows; `None` when the file has no EXIF
/// or none of those fields.
///
/// NOTE: unreadable or malformed EXIF is treated as absent, because the image
/// itself may still be fine; the reason is logged at debug level.
pub(crate) fn read_exif(path: &Path) -> Option<Exif> {
    let file = File::open(path).ok()?;
    let mut reader = BufReader::new(file);
    let parsed = match exif::Reader::new().read_from_container(&mut reader) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "no usable exif");
            return None;
        }
    };

    let found = Exif {
        camera_make: ascii_field(&parsed, Tag::Make),
        camera_model: ascii_field(&parsed, Tag::Model),
        taken_at: taken_at(&parsed),
        orientation: orientation(&parsed),
        gps: gps(&parsed),
    };
    if found == Exif::default() {
        None
    } else {
        Some(found)
    }
}

fn ascii_field(parsed: &exif::Exif, tag: Tag) -> Option<String> {
    let field = parsed.get_field(tag, In::PRIMARY)?;
    let Value::Ascii(parts) = &field.value else {
        return None;
    };
    let bytes = parts.first()?;
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_owned())
    }
}

/// Formats `DateTimeOriginal` ("YYYY:MM:DD HH:MM:SS" in EXIF) as
/// "YYYY-MM-DDTHH:MM:SS"; cameras leave it blank or all zeros when unset.
fn taken_at(parsed: &exif::Exif) -> Option<String> {
    let field = parsed.get_field(Tag::DateTimeOriginal, In::PRIMARY)?;
    let Value::Ascii(parts) = &field.value else {
        return None;
    };
    let when = exif::DateTime::from_ascii(parts.first()?).ok()?;
    if when.year == 0 || when.month == 0 || when.day == 0 {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        when.year, when.month, when.day, when.hour, when.minute, when.second
    ))
}

fn orientation(parsed: &exif::Exif) -> Option<u16> {
    let value = parsed
        .get_field(Tag::Orientation, In::PRIMARY)?
        .value
        .get_uint(0)?;
    let value = u16::try_from(value).ok()?;
    (1..=8).contains(&value).then_some(value)
}

fn gps(parsed: &exif::Exif) -> Option<Gps> {
    let latitude = signed_degrees(parsed, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S')?;
    let longitude = signed_degrees(parsed, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W')?;
    Some(Gps {
        latitude,
        longitude,
        altitude_m: altitude(parsed),
    })
}

/// Converts degrees, minutes and seconds to decimal degrees, negative when the
/// reference tag contains `negative_ref` (south or west).
fn signed_degrees(parsed: &exif::Exif, tag: Tag, ref_tag: Tag, negative_ref: u8) -> Option<f64> {
    let Value::Rational(parts) = &parsed.get_field(tag, In::PRIMARY)?.value else {
        return None;
    };
    let mut degrees = 0.0;
    for (part, divisor) in parts.iter().zip([1.0, 60.0, 3600.0]) {
        if part.denom == 0 {
            return None;
        }
        degrees += part.to_f64() / divisor;
    }
    if !degrees.is_finite() {
        return None;
    }

    let reference = match &parsed.get_field(ref_tag, In::PRIMARY)?.value {
        Value::Ascii(parts) => parts.first()?.first().copied()?,
        _ => return None,
    };
    if reference.eq_ignore_ascii_case(&negative_ref) {
        Some(-degrees)
    } else {
        Some(degrees)
    }
}

/// Reads `GPSAltitude` in metres; `GPSAltitudeRef` 1 means below sea level.
fn altitude(parsed: &exif::Exif) -> Option<f64> {
    let Value::Rational(parts) = &parsed.get_field(Tag::GPSAltitude, In::PRIMARY)?.value else {
        return None;
    };
    let metres = parts.first().filter(|part| part.denom != 0)?.to_f64();
    let below_sea_level = parsed
        .get_field(Tag::GPSAltitudeRef, In::PRIMARY)
        .and_then(|field| field.value.get_uint(0))
        == Some(1);
    Some(if below_sea_level { -metres } else { metres })
}
