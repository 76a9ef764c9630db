//! Probing of still images: dimensions from the header, camera data from EXIF.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::MediaError;
use crate::exif::read_exif;
use crate::heif::heif_dimensions;
use crate::sniff::ImageCodec;
use crate::types::{ImageInfo, MediaKind, Probe, Tags};

/// Probes an image whose kind the magic bytes already decided.
pub(crate) fn probe_image(path: &Path, codec: ImageCodec) -> Result<Probe, MediaError> {
    let (width, height, format) = match codec {
        ImageCodec::Raster(format) => {
            let (width, height) = raster_dimensions(path, format)?;
            (width, height, format_name(format))
        }
        ImageCodec::Heif { mime } => {
            let mut file = File::open(path).map_err(|source| MediaError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let (width, height) =
                heif_dimensions(&mut file).ok_or_else(|| MediaError::Corrupt {
                    path: path.to_path_buf(),
                    reason: "the HEIF image has no readable size (ispe box) for its primary image"
                        .to_owned(),
                })?;
            let format = if mime == "image/avif" { "avif" } else { "heif" };
            (width, height, format.to_owned())
        }
        ImageCodec::Unreadable { mime } => {
            return Err(MediaError::Unsupported {
                path: path.to_path_buf(),
                format: mime.to_owned(),
            });
        }
    };

    Ok(Probe {
        kind: MediaKind::Image,
        mime: codec.mime().to_owned(),
        container: None,
        duration_ms: None,
        bit_rate: None,
        video: None,
        audio: None,
        tags: Tags::default(),
        image: Some(ImageInfo {
            width,
            height,
            format,
            exif: read_exif(path),
        }),
        has_cover_art: false,
    })
}

/// Reads width and height from the header without decoding pixels.
fn raster_dimensions(path: &Path, format: image::ImageFormat) -> Result<(u32, u32), MediaError> {
    let file = File::open(path).map_err(|source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = image::ImageReader::with_format(BufReader::new(file), format);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|error| image_error(path, error))?;

    if width == 0 || height == 0 {
        return Err(MediaError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("the image header declares a size of {width}x{height}"),
        });
    }
    Ok((width, height))
}

/// Maps an `image` crate error: I/O errors stay I/O errors, except an early
/// end of file, which like every other decoding error means the file is
/// damaged.
pub(crate) fn image_error(path: &Path, error: image::ImageError) -> MediaError {
    match error {
        image::ImageError::IoError(source)
            if source.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            MediaError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
        other => MediaError::Corrupt {
            path: path.to_path_buf(),
            // Some decoders end their messages with a newline.
            reason: format!(
                "the image cannot be decoded: {}",
                other.to_string().trim_end()
            ),
        },
    }
}

/// Returns the lowercase name stored in [`ImageInfo::format`].
fn format_name(format: image::ImageFormat) -> String {
    let name = match format {
        image::ImageFormat::Jpeg => "jpeg",
        image::ImageFormat::Png => "png",
        image::ImageFormat::Gif => "gif",
        image::ImageFormat::WebP => "webp",
        image::ImageFormat::Tiff => "tiff",
        image::ImageFormat::Bmp => "bmp",
        image::ImageFormat::Pnm => "pnm",
        other => return format!("{other:?}").to_ascii_lowercase(),
    };
    name.to_owned()
}
