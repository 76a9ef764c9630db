//! Pictures for thumbnails of images (decoded and turned upright) and of
//! audio files (embedded cover art).

use std::path::Path;

use gstreamer as gst;
use image::DynamicImage;
use image::ImageDecoder;
use image::metadata::Orientation;

use crate::MediaError;
use crate::av::cover_art as find_cover_art;
use crate::deadline::Deadline;
use crate::discover::discover;
use crate::still::image_error;
use crate::types::Probe;

/// Decodes an image and applies its EXIF orientation.
pub(super) fn decode_image(path: &Path, probe: &Probe) -> Result<DynamicImage, MediaError> {
    let format = probe.image.as_ref().map(|info| info.format.as_str());
    if matches!(format, Some("heif" | "avif")) {
        return Err(MediaError::NoThumbnail {
            path: path.to_path_buf(),
            reason: "no decoder for HEIF or AVIF images is built in".to_owned(),
        });
    }

    let reader = image::ImageReader::open(path)
        .and_then(|reader| reader.with_guessed_format())
        .map_err(|source| MediaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|error| decode_error(path, error))?;

    // `into_decoder` limits the decoder's own buffers but, unlike
    // `ImageReader::decode`, not the output buffer, so a header that declares
    // 60000x60000 pixels would reserve 10.8 GB. `Limits::default()` caps
    // allocations at 512 MiB.
    image::Limits::default()
        .reserve(decoder.total_bytes())
        .map_err(|error| decode_error(path, error))?;

    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut picture =
        DynamicImage::from_decoder(decoder).map_err(|error| decode_error(path, error))?;

    // In image 0.25 the decoders of JPEG, PNG, TIFF and WebP read the EXIF
    // orientation. The probe's EXIF covers any other container.
    let orientation = if orientation == Orientation::NoTransforms {
        probe_orientation(probe).unwrap_or(orientation)
    } else {
        orientation
    };
    picture.apply_orientation(orientation);
    Ok(picture)
}

/// Decodes the cover art embedded in an audio (or video) file.
pub(super) fn cover_art(
    path: &Path,
    probe: &Probe,
    deadline: &Deadline,
) -> Result<DynamicImage, MediaError> {
    if !probe.has_cover_art {
        return Err(MediaError::NoThumbnail {
            path: path.to_path_buf(),
            reason: "the file has no embedded cover art".to_owned(),
        });
    }

    let discovered = discover(path, deadline)?;
    let no_cover = |reason: String| MediaError::NoThumbnail {
        path: path.to_path_buf(),
        reason,
    };
    let sample = find_cover_art(&discovered)
        .ok_or_else(|| no_cover("the embedded cover art could not be found again".to_owned()))?;
    let buffer = sample
        .buffer()
        .ok_or_else(|| no_cover("the embedded cover art is empty".to_owned()))?;
    let bytes = buffer
        .map_readable()
        .map_err(|error| no_cover(format!("the embedded cover art cannot be read: {error}")))?;

    decode_cover(&bytes).map_err(|error| {
        no_cover(format!(
            "the embedded cover art is not a readable image: {error}"
        ))
    })
}

fn decode_cover(
    bytes: &gst::BufferMap<'_, gst::buffer::Readable>,
) -> image::ImageResult<DynamicImage> {
    let reader =
        image::ImageReader::new(std::io::Cursor::new(bytes.as_slice())).with_guessed_format()?;
    reader.decode()
}

fn probe_orientation(probe: &Probe) -> Option<Orientation> {
    let value = probe.image.as_ref()?.exif.as_ref()?.orientation?;
    Orientation::from_exif(u8::try_from(value).ok()?)
}

/// Maps a decode failure: an image over the allocation limit gets no
/// thumbnail, other failures mean the file is damaged.
fn decode_error(path: &Path, error: image::ImageError) -> MediaError {
    match error {
        image::ImageError::Limits(limit) => MediaError::NoThumbnail {
            path: path.to_path_buf(),
            reason: format!("the image is too large to decode for a thumbnail ({limit})"),
        },
        other => image_error(path, other),
    }
}
