//! Classification by file name and by content (magic bytes).

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use crate::{MediaError, MediaKind};

/// Bytes read from the start of a file for sniffing. `infer` needs at most a
/// few hundred bytes for its matchers; 8 KiB also covers the EBML and RIFF
/// headers read by the truncation check.
pub(crate) const HEAD_LEN: usize = 8 * 1024;

/// Returns what a file name's extension suggests, ignoring case.
///
/// The catalog uses this only to decide whether a file that turns out not to be
/// media deserves a problem report; [`crate::probe`] decides the kind from the
/// content.
pub fn kind_from_extension(path: &Path) -> Option<MediaKind> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    let kind = match extension.as_str() {
        "mp4" | "m4v" | "mkv" | "webm" | "avi" | "mov" | "qt" | "mpeg" | "mpg" | "mpe" | "m2v"
        | "vob" | "ts" | "m2ts" | "mts" | "ogv" | "wmv" | "asf" | "flv" | "f4v" | "3gp" | "3g2"
        | "divx" => MediaKind::Video,
        "mp3" | "mp2" | "flac" | "wav" | "m4a" | "m4b" | "aac" | "ogg" | "oga" | "opus" | "spx"
        | "wma" | "aif" | "aiff" | "ape" | "wv" | "mka" | "ac3" | "dts" | "amr" | "dsf" => {
            MediaKind::Audio
        }
        "jpg" | "jpeg" | "jpe" | "jfif" | "png" | "gif" | "webp" | "heic" | "heif" | "avif"
        | "tif" | "tiff" | "bmp" | "ppm" | "pgm" | "pbm" | "pnm" | "jxl" | "dng" | "cr2"
        | "nef" | "arw" => MediaKind::Image,
        _ => return None,
    };
    Some(kind)
}

/// Classification of a file from its first bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sniffed {
    /// A still image.
    Image(ImageCodec),
    /// Audio or video; GStreamer decides which from the streams it finds,
    /// because containers such as Ogg and MP4 contain either.
    AudioVideo {
        /// MIME type that `infer` matched.
        mime: &'static str,
    },
    /// A known type that is not media, such as a PDF or a ZIP archive.
    Other {
        /// MIME type that `infer` matched.
        mime: &'static str,
    },
    /// No magic bytes matched; GStreamer's typefinders get the last word.
    Unknown,
}

/// Decoder support for a still image format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ImageCodec {
    /// A format the `image` crate decodes.
    Raster(image::ImageFormat),
    /// HEIF (HEIC) or AVIF: dimensions and EXIF are read, but no decoder is
    /// available for thumbnails.
    Heif {
        /// "image/heif" or "image/avif".
        mime: &'static str,
    },
    /// Recognised as an image that nothing here can read (JPEG XL, PSD, raw).
    Unreadable {
        /// MIME type that `infer` matched.
        mime: &'static str,
    },
}

impl ImageCodec {
    /// Returns the Content-Type to serve the image with.
    pub(crate) fn mime(&self) -> &'static str {
        match self {
            ImageCodec::Raster(format) => format.to_mime_type(),
            ImageCodec::Heif { mime } | ImageCodec::Unreadable { mime } => mime,
        }
    }
}

/// Reads the first [`HEAD_LEN`] bytes of `path`; an empty file is
/// [`MediaError::Empty`], and anything but a regular file is [`MediaError::Io`].
pub(crate) fn read_head(path: &Path) -> Result<Vec<u8>, MediaError> {
    let io_error = |source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    };

    // Checked before opening, because opening a FIFO blocks until a writer
    // appears and reading a device may never end.
    let file_type = std::fs::metadata(path).map_err(io_error)?.file_type();
    if file_type.is_dir() {
        return Err(io_error(std::io::Error::new(
            ErrorKind::IsADirectory,
            "it is a directory, expected a media file",
        )));
    }
    if !file_type.is_file() {
        return Err(io_error(std::io::Error::new(
            ErrorKind::InvalidInput,
            "it is not a regular file (a fifo, socket or device), expected a media file",
        )));
    }

    let file = File::open(path).map_err(io_error)?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    let mut limited = file.take(HEAD_LEN as u64);
    loop {
        match limited.read_to_end(&mut head) {
            Ok(_) => break,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(io_error(error)),
        }
    }

    if head.is_empty() {
        return Err(MediaError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(head)
}

/// Classifies content by its magic bytes.
pub(crate) fn sniff(head: &[u8]) -> Sniffed {
    if let Some(matched) = infer::get(head) {
        let mime = matched.mime_type();
        return match matched.matcher_type() {
            infer::MatcherType::Image => Sniffed::Image(image_codec_for_mime(mime)),
            infer::MatcherType::Audio | infer::MatcherType::Video => Sniffed::AudioVideo { mime },
            _ => Sniffed::Other { mime },
        };
    }

    // `infer` has no matcher for PNM and a few other formats that the `image`
    // crate recognises by their headers.
    if let Ok(format) = image::guess_format(head)
        && format.reading_enabled()
    {
        return Sniffed::Image(ImageCodec::Raster(format));
    }

    Sniffed::Unknown
}

fn image_codec_for_mime(mime: &'static str) -> ImageCodec {
    let format = match mime {
        "image/jpeg" => image::ImageFormat::Jpeg,
        "image/png" => image::ImageFormat::Png,
        "image/gif" => image::ImageFormat::Gif,
        "image/webp" => image::ImageFormat::WebP,
        "image/tiff" => image::ImageFormat::Tiff,
        "image/bmp" => image::ImageFormat::Bmp,
        "image/heif" | "image/avif" => return ImageCodec::Heif { mime },
        _ => return ImageCodec::Unreadable { mime },
    };
    if format.reading_enabled() {
        ImageCodec::Raster(format)
    } else {
        ImageCodec::Unreadable { mime }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_ignores_case() {
        assert_eq!(
            kind_from_extension(Path::new("a/B.MP4")),
            Some(MediaKind::Video)
        );
        assert_eq!(
            kind_from_extension(Path::new("x.Flac")),
            Some(MediaKind::Audio)
        );
        assert_eq!(
            kind_from_extension(Path::new("IMG_1054.JPG")),
            Some(MediaKind::Image)
        );
        assert_eq!(
            kind_from_extension(Path::new("photo.heic")),
            Some(MediaKind::Image)
        );
    }

    #[test]
    fn extension_of_documents_is_none() {
        assert_eq!(kind_from_extension(Path::new("notes.txt")), None);
        assert_eq!(kind_from_extension(Path::new("a.pdf")), None);
        assert_eq!(kind_from_extension(Path::new("no_extension")), None);
    }

    #[test]
    fn pnm_header_is_an_image() {
        let head = b"P6\n2 2\n255\n\0\0\0\0\0\0\0\0\0\0\0\0";
        assert_eq!(
            sniff(head),
            Sniffed::Image(ImageCodec::Raster(image::ImageFormat::Pnm))
        );
    }

    #[test]
    fn plain_text_is_unknown() {
        assert_eq!(sniff(b"hello world, this is text\n"), Sniffed::Unknown);
    }

    #[test]
    fn pdf_is_other() {
        assert_eq!(
            sniff(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"),
            Sniffed::Other {
                mime: "application/pdf"
            }
        );
    }
}
