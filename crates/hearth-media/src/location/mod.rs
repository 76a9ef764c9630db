//! Location records in media files, and same-length patches that blank them.
//!
//! [`location_patches`] finds the bytes of a file that record where it was
//! made and returns patches that overwrite exactly those bytes. A server
//! applies the patches while it streams the file, so the redacted file has
//! the size and layout of the original and byte ranges stay valid.
//!
//! The container is recognised from the first bytes, never from the name.
//! Covered containers and records:
//!
//! - JPEG: the EXIF GPS IFD (APP1), XMP and extended XMP packets (APP1), and
//!   the IPTC-IIM location datasets in Photoshop resources (APP13).
//! - PNG: the `eXIf` chunk, uncompressed XMP in `iTXt`, and ImageMagick's
//!   "Raw profile type" text chunks, with the CRC of every changed chunk.
//! - WebP: the `EXIF` and `XMP ` chunks.
//! - ISO BMFF movies (MP4, MOV, 3GP, M4A): `©xyz` and `loci` boxes, location
//!   keys of `mdta` metadata (`com.apple.quicktime.location.ISO6709`),
//!   `©xyz` items of iTunes metadata, and XMP in `udta/XMP_` or a top-level
//!   XMP `uuid` box.
//! - HEIF, HEIC and AVIF: `Exif` and XMP items of the top-level `meta` box.
//!
//! Every other format (TIFF and camera raw files, GIF, Matroska, AVI, Ogg,
//! MP3 and other audio tags) gets no patches.
//!
//! Patches zero EXIF values and replace XMP and IPTC text with spaces, so
//! the metadata stays parseable. A movie's location box becomes a `free` box
//! with a zeroed payload: a neutral coordinate such as "+00.0000+000.0000/"
//! would still read as a real place (0° N 0° E), while readers skip `free`.
//!
//! NOTE: location written where this module does not look stays in the file:
//! camera maker notes, the EXIF of an embedded thumbnail, a GPS track in a
//! video's metadata or subtitle stream (GoPro `gpmd`, DJI subtitles, Apple
//! timed `mebx` metadata), and compressed XMP in a HEIF item.

mod bmff;
mod heif;
mod iptc;
mod jpeg;
mod png;
mod tiff;
mod webp;
mod xmp;

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::MediaError;

/// One overwrite of the original file: `bytes` replace the same number of
/// bytes starting at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationPatch {
    /// Offset in the file of the first byte replaced.
    pub offset: u64,
    /// Replacement bytes.
    pub bytes: Vec<u8>,
}

/// Finds every location record of the file at `path` and returns the
/// patches that blank them, sorted by offset and not overlapping.
///
/// A file in a format this module does not cover, or without location,
/// yields no patches, and so does a metadata block too damaged to follow.
/// Errors are I/O failures, metadata blocks larger than 16 MiB, which are
/// not read into memory, and movies of more than a million boxes.
pub fn location_patches(path: &Path) -> Result<Vec<LocationPatch>, MediaError> {
    let mut source = Source::open(path)?;
    let head = source.read_at(0, 16)?;

    let patches = match Container::sniff(&head) {
        Container::Jpeg => jpeg::patches(&mut source)?,
        Container::Png => png::patches(&mut source)?,
        Container::WebP => webp::patches(&mut source)?,
        Container::IsoBmff => bmff::patches(&mut source)?,
        Container::Other => Vec::new(),
    };
    Ok(merge(patches))
}

/// Container formats that may hold location records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Jpeg,
    Png,
    WebP,
    /// MP4, MOV, 3GP, HEIF and the other ISO base media file formats.
    IsoBmff,
    Other,
}

impl Container {
    /// Recognises the container from the first 16 bytes of a file.
    fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Container::Jpeg;
        }
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Container::Png;
        }
        if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            return Container::WebP;
        }
        // QuickTime files written before `ftyp` existed start with another box.
        let first_box = head.get(4..8);
        let bmff_starts: [&[u8]; 6] = [b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide"];
        if first_box.is_some_and(|kind| bmff_starts.contains(&kind)) {
            return Container::IsoBmff;
        }
        Container::Other
    }
}

/// Largest metadata block read into memory: a JPEG segment is at most 64 KiB
/// and the EXIF or XMP of a photo a few hundred KiB (an estimate), so this
/// limit only stops hostile sizes.
const MAX_METADATA_LEN: u64 = 16 * 1024 * 1024;

/// The open file, read at explicit offsets.
struct Source {
    file: File,
    path: PathBuf,
    len: u64,
}

impl Source {
    fn open(path: &Path) -> Result<Self, MediaError> {
        let io_error = |source| MediaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        Ok(Self {
            file,
            path: path.to_path_buf(),
            len,
        })
    }

    /// Reads `len` bytes at `offset`, or fewer when the file ends first.
    ///
    /// Returns [`MediaError::Corrupt`] when `len` is above [`MAX_METADATA_LEN`].
    fn read_at(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, MediaError> {
        if len > MAX_METADATA_LEN {
            return Err(MediaError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "its metadata block at offset {offset} is {len} bytes, more than the \
                     {MAX_METADATA_LEN} bytes read to remove location metadata"
                ),
            });
        }
        let available = self.len.saturating_sub(offset).min(len);
        let mut buffer = Vec::with_capacity(available as usize);
        if available == 0 {
            return Ok(buffer);
        }

        let io_error = |source| MediaError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
        match (&mut self.file).take(available).read_to_end(&mut buffer) {
            Ok(_) => Ok(buffer),
            // A file truncated since its size was read is read as far as it goes.
            Err(source) if source.kind() == ErrorKind::UnexpectedEof => Ok(buffer),
            Err(source) => Err(io_error(source)),
        }
    }

    /// Builds the error for a block that needs a patch larger than [`MAX_METADATA_LEN`].
    fn too_large(&self, what: &str, offset: u64, len: u64) -> MediaError {
        MediaError::Corrupt {
            path: self.path.clone(),
            reason: format!(
                "its {what} at offset {offset} is {len} bytes, more than the \
                 {MAX_METADATA_LEN} bytes that location removal overwrites"
            ),
        }
    }
}

/// Returns a patch of `len` zero bytes at `offset`.
fn zeros(offset: u64, len: usize) -> LocationPatch {
    LocationPatch {
        offset,
        bytes: vec![0; len],
    }
}

/// Returns a patch of `len` spaces at `offset`, for text that must stay text.
fn spaces(offset: u64, len: usize) -> LocationPatch {
    LocationPatch {
        offset,
        bytes: vec![b' '; len],
    }
}

/// One piece of a logical byte string that the file stores in several
/// pieces, such as a HEIF item or the chunks of an extended XMP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extent {
    /// Offset of the piece in the file.
    file_offset: u64,
    /// Length of the piece in bytes.
    len: u64,
}

/// Converts patches at offsets of the logical string made of `extents`, in
/// order, into patches at file offsets. A patch that spans two extents is split.
fn map_to_file(patches: Vec<LocationPatch>, extents: &[Extent]) -> Vec<LocationPatch> {
    let mut mapped = Vec::new();
    for patch in patches {
        let mut logical_start = 0u64;
        for extent in extents {
            let logical_end = logical_start + extent.len;
            let patch_end = patch.offset + patch.bytes.len() as u64;
            let first = patch.offset.max(logical_start);
            let last = patch_end.min(logical_end);
            if first < last {
                let from = (first - patch.offset) as usize;
                let to = (last - patch.offset) as usize;
                mapped.push(LocationPatch {
                    offset: extent.file_offset + (first - logical_start),
                    bytes: patch.bytes[from..to].to_vec(),
                });
            }
            logical_start = logical_end;
        }
    }
    mapped
}

/// Copies `data` with the patches applied, for patches at offsets of `data`.
fn patched_copy(data: &[u8], patches: &[LocationPatch]) -> Vec<u8> {
    let mut copy = data.to_vec();
    for patch in patches {
        let start = patch.offset as usize;
        let end = start + patch.bytes.len();
        if let Some(target) = copy.get_mut(start..end) {
            target.copy_from_slice(&patch.bytes);
        }
    }
    copy
}

/// Sorts patches by offset and merges overlapping or adjacent ones; where two
/// overlap, the one that came later in `patches` wins.
fn merge(mut patches: Vec<LocationPatch>) -> Vec<LocationPatch> {
    patches.retain(|patch| !patch.bytes.is_empty());
    // A stable sort keeps the input order among patches at one offset.
    patches.sort_by_key(|patch| patch.offset);

    let mut merged: Vec<LocationPatch> = Vec::with_capacity(patches.len());
    for patch in patches {
        if let Some(last) = merged.last_mut() {
            let last_end = last.offset + last.bytes.len() as u64;
            if patch.offset <= last_end {
                let start = (patch.offset - last.offset) as usize;
                let end = start + patch.bytes.len();
                if end > last.bytes.len() {
                    last.bytes.resize(end, 0);
                }
                last.bytes[start..end].copy_from_slice(&patch.bytes);
                continue;
            }
        }
        merged.push(patch);
    }
    merged
}

/// Reads a big-endian `u16` at `offset`, if `data` contains it.
fn be_u16(data: &[u8], offset: usize) -> Option<u16> {
    let bytes = data.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Reads a big-endian `u32` at `offset`, if `data` contains it.
fn be_u32(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Reads a big-endian `u64` at `offset`, if `data` contains it.
fn be_u64(data: &[u8], offset: usize) -> Option<u64> {
    let bytes = data.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(offset: u64, bytes: &[u8]) -> LocationPatch {
        LocationPatch {
            offset,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn merge_sorts_and_joins_touching_patches() {
        let merged = merge(vec![
            patch(10, b"cc"),
            patch(0, b"aa"),
            patch(2, b"bb"),
            patch(20, b""),
        ]);

        assert_eq!(merged, vec![patch(0, b"aabb"), patch(10, b"cc")]);
    }

    #[test]
    fn merge_lets_later_overlap_win() {
        let merged = merge(vec![patch(0, b"aaaa"), patch(1, b"bb"), patch(3, b"ccc")]);

        assert_eq!(merged, vec![patch(0, b"abbccc")]);
    }

    #[test]
    fn map_splits_patch_across_extents() {
        let extents = [
            Extent {
                file_offset: 100,
                len: 4,
            },
            Extent {
                file_offset: 50,
                len: 4,
            },
        ];

        let mapped = map_to_file(vec![patch(2, b"wxyz"), patch(7, b"q")], &extents);

        assert_eq!(
            mapped,
            vec![patch(102, b"wx"), patch(50, b"yz"), patch(53, b"q")]
        );
    }

    #[test]
    fn sniff_recognises_containers() {
        let cases: [(&[u8], Container); 6] = [
            (b"\xFF\xD8\xFF\xE1\0\0", Container::Jpeg),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Container::Png),
            (b"RIFF\0\0\0\0WEBPVP8 ", Container::WebP),
            (b"\0\0\0\x18ftypmp42", Container::IsoBmff),
            (b"\0\0\0\x08wide", Container::IsoBmff),
            (b"GIF89a", Container::Other),
        ];
        for (head, expected) in cases {
            assert_eq!(Container::sniff(head), expected, "{head:?}");
        }
    }

    #[test]
    fn file_without_location_yields_no_patches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.jpg");
        let mut picture = Vec::new();
        image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]))
            .write_to(
                &mut std::io::Cursor::new(&mut picture),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        std::fs::write(&path, picture).unwrap();

        assert_eq!(location_patches(&path).unwrap(), Vec::new());
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let error = location_patches(Path::new("/nonexistent/photo.jpg")).unwrap_err();

        assert!(matches!(error, MediaError::Io { .. }), "{error:?}");
    }
}
