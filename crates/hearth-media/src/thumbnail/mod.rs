//! The [`thumbnail`] entry point and the steps shared by every kind: shrink,
//! flatten transparency, encode as JPEG.

mod picture;
mod video;

use std::path::Path;
use std::time::Duration;

use image::{DynamicImage, RgbImage};

use crate::deadline::run_with_deadline;
use crate::types::{MediaKind, Probe};
use crate::{MediaError, init};

/// JPEG quality of thumbnails, 1 to 100.
const JPEG_QUALITY: u8 = 85;

/// Returns JPEG bytes of a thumbnail whose longer edge is at most `max_edge`
/// pixels, keeping the aspect ratio.
///
/// Smaller pictures are not enlarged, and a `max_edge` of 0 is treated as 1.
///
/// `probe` must come from [`crate::probe`] on the same file. Video yields a
/// frame about 10% into the file (at most 30 s in), images are turned upright
/// by their EXIF orientation, and audio yields its embedded cover art or
/// [`MediaError::NoThumbnail`]. HEIF and AVIF images also yield
/// [`MediaError::NoThumbnail`], because no decoder for them is built in.
///
/// Safe to call from several threads at once. Returns [`MediaError::Timeout`]
/// once `timeout` has passed; GStreamer pipelines are set to the Null state on
/// every path.
pub fn thumbnail(
    path: &Path,
    probe: &Probe,
    max_edge: u32,
    timeout: Duration,
) -> Result<Vec<u8>, MediaError> {
    init()?;
    let probe = probe.clone();
    let max_edge = max_edge.max(1);

    run_with_deadline(path, timeout, move |path, deadline| {
        let picture = match probe.kind {
            MediaKind::Video => video::grab_frame(&path, &probe, &deadline)?,
            MediaKind::Image => picture::decode_image(&path, &probe)?,
            MediaKind::Audio => picture::cover_art(&path, &probe, &deadline)?,
        };
        let small = shrink(picture, max_edge);
        encode_jpeg(&path, &flatten(small))
    })
}

/// Scales `picture` down so its longer edge is `max_edge`, keeping the aspect
/// ratio; never scales up.
fn shrink(picture: DynamicImage, max_edge: u32) -> DynamicImage {
    let (width, height) = (picture.width(), picture.height());
    let longer = width.max(height);
    if longer <= max_edge {
        return picture;
    }

    let scale = f64::from(max_edge) / f64::from(longer);
    let new_width = scaled_edge(width, scale, max_edge);
    let new_height = scaled_edge(height, scale, max_edge);
    // Triangle (bilinear) is several times faster than Lanczos3 at the large
    // reduction factors of thumbnails and looks the same at this size.
    picture.resize_exact(new_width, new_height, image::imageops::FilterType::Triangle)
}

fn scaled_edge(edge: u32, scale: f64, max_edge: u32) -> u32 {
    let scaled = (f64::from(edge) * scale).round();
    // The cast cannot overflow: `scaled` lies between 0 and `max_edge`.
    (scaled as u32).clamp(1, max_edge)
}

/// Converts to 8-bit RGB, compositing any transparency over white, since JPEG
/// has no alpha channel and transparent pixels are often stored as black.
fn flatten(picture: DynamicImage) -> RgbImage {
    if !picture.color().has_alpha() {
        return picture.into_rgb8();
    }

    let rgba = picture.into_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (target, source) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u32::from(source[3]);
        for channel in 0..3 {
            let value = u32::from(source[channel]) * alpha + 255 * (255 - alpha);
            // Rounded division by 255; the result is at most 255.
            target[channel] = ((value + 127) / 255) as u8;
        }
    }
    rgb
}

fn encode_jpeg(path: &Path, picture: &RgbImage) -> Result<Vec<u8>, MediaError> {
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
    encoder
        .encode_image(picture)
        .map_err(|source| MediaError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    #[test]
    fn shrink_keeps_aspect_ratio() {
        let small = shrink(DynamicImage::new_rgb8(4000, 3000), 320);
        assert_eq!((small.width(), small.height()), (320, 240));
    }

    #[test]
    fn shrink_never_enlarges() {
        let same = shrink(DynamicImage::new_rgb8(100, 50), 320);
        assert_eq!((same.width(), same.height()), (100, 50));
    }

    #[test]
    fn shrink_keeps_thin_images_one_pixel_high() {
        let thin = shrink(DynamicImage::new_rgb8(1000, 1), 100);
        assert_eq!((thin.width(), thin.height()), (100, 1));
    }

    #[test]
    fn transparent_pixels_become_white() {
        let mut rgba = RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, Rgba([10, 20, 30, 255]));
        let rgb = flatten(DynamicImage::ImageRgba8(rgba));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [10, 20, 30]);
    }
}
