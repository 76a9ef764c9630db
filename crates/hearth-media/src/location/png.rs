//! PNG chunks that carry metadata (PNG third edition, sections 5.3 and 11.3):
//! `eXIf`, XMP in `iTXt`, and the "Raw profile type" text chunks that
//! ImageMagick writes.
//!
//! Every chunk ends with a CRC-32 of its type and data, and decoders such as
//! the `png` crate reject a chunk whose CRC does not match, so each changed
//! chunk also gets a patch of its CRC.

use super::{LocationPatch, Source, be_u32, merge, patched_copy, tiff, xmp, zeros};
use crate::MediaError;

/// Keyword of the `iTXt` chunk that carries XMP.
const XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

/// Keyword prefix of ImageMagick's hex-encoded metadata profiles.
const RAW_PROFILE_PREFIX: &[u8] = b"raw profile type ";

/// Type given to a chunk whose whole content is removed: ancillary, private,
/// safe to copy (lowercase, lowercase, uppercase, lowercase), so decoders
/// skip it as an unknown chunk.
const REMOVED_CHUNK_TYPE: &[u8; 4] = b"nuLl";

/// Maximum length of a text chunk's keyword (1 to 79 bytes) plus its NUL.
const MAX_KEYWORD_LEN: u64 = 80;

/// Walks the chunks after the signature up to `IEND` and returns the
/// patches of every metadata chunk that may contain a location.
pub(super) fn patches(source: &mut Source) -> Result<Vec<LocationPatch>, MediaError> {
    let mut patches = Vec::new();
    let mut offset = 8;

    loop {
        let header = source.read_at(offset, 8)?;
        if header.len() < 8 {
            break;
        }
        let length = be_u32(&header, 0).expect("the header has 8 bytes");
        let chunk = Chunk {
            type_offset: offset + 4,
            kind: header[4..8].try_into().expect("the header has 8 bytes"),
            length: u64::from(length),
        };
        if &chunk.kind == b"IEND" {
            break;
        }

        let edit = match &chunk.kind {
            b"eXIf" => exif_edit(source, &chunk)?,
            b"iTXt" | b"tEXt" | b"zTXt" => text_edit(source, &chunk)?,
            _ => Edit::Keep,
        };
        patches.extend(chunk_patches(source, &chunk, edit)?);

        // Length, type, data and CRC.
        offset = chunk.data_offset() + chunk.length + 4;
    }
    Ok(patches)
}

/// Position and type of one chunk.
struct Chunk {
    /// File offset of the 4-byte chunk type.
    type_offset: u64,
    kind: [u8; 4],
    /// Length of the data in bytes.
    length: u64,
}

impl Chunk {
    fn data_offset(&self) -> u64 {
        self.type_offset + 4
    }

    fn crc_offset(&self) -> u64 {
        self.data_offset() + self.length
    }
}

/// Change to make to one chunk.
enum Edit {
    /// Nothing in it names a place.
    Keep,
    /// Patch the data, which was read whole; patch offsets are relative to it.
    Patch {
        data: Vec<u8>,
        patches: Vec<LocationPatch>,
    },
    /// Rename the chunk to [`REMOVED_CHUNK_TYPE`] and zero its data, for
    /// compressed or encoded metadata that cannot be edited in place.
    Remove,
}

fn exif_edit(source: &mut Source, chunk: &Chunk) -> Result<Edit, MediaError> {
    let data = source.read_at(chunk.data_offset(), chunk.length)?;
    // The PNG specification has no "Exif\0\0" header, but some writers add it.
    let tiff_start = if data.starts_with(b"Exif\0\0") { 6 } else { 0 };
    let patches = tiff::gps_patches(&data[tiff_start..], tiff_start as u64);
    Ok(Edit::Patch { data, patches })
}

fn text_edit(source: &mut Source, chunk: &Chunk) -> Result<Edit, MediaError> {
    let head = source.read_at(chunk.data_offset(), chunk.length.min(MAX_KEYWORD_LEN))?;
    let Some(keyword_len) = head.iter().position(|&byte| byte == 0) else {
        return Ok(Edit::Keep);
    };
    let keyword = head[..keyword_len].to_ascii_lowercase();

    if let Some(profile) = keyword.strip_prefix(RAW_PROFILE_PREFIX) {
        // Colour profiles are the only raw profiles without descriptive metadata.
        let is_colour = profile == b"icc" || profile == b"icm";
        return Ok(if is_colour { Edit::Keep } else { Edit::Remove });
    }
    if &chunk.kind != b"iTXt" || keyword != XMP_KEYWORD.to_ascii_lowercase() {
        return Ok(Edit::Keep);
    }

    // iTXt: keyword, NUL, compression flag, compression method, language
    // tag, NUL, translated keyword, NUL, text.
    let data = source.read_at(chunk.data_offset(), chunk.length)?;
    let compressed = data.get(keyword_len + 1) != Some(&0);
    if compressed {
        return Ok(Edit::Remove);
    }
    let after_flags = keyword_len + 3;
    let text_start = nul_terminated_end(&data, after_flags)
        .and_then(|after_language| nul_terminated_end(&data, after_language));
    let Some(text_start) = text_start else {
        return Ok(Edit::Remove);
    };
    let patches = xmp::location_patches(&data[text_start..], text_start as u64);
    Ok(Edit::Patch { data, patches })
}

/// Returns the offset after the NUL that ends the string starting at `start`.
fn nul_terminated_end(data: &[u8], start: usize) -> Option<usize> {
    let nul = data.get(start..)?.iter().position(|&byte| byte == 0)?;
    Some(start + nul + 1)
}

/// Turns an edit of one chunk into file patches, the new CRC included.
fn chunk_patches(
    source: &Source,
    chunk: &Chunk,
    edit: Edit,
) -> Result<Vec<LocationPatch>, MediaError> {
    let (kind, data, data_patches) = match edit {
        Edit::Keep => return Ok(Vec::new()),
        Edit::Patch { patches, .. } if patches.is_empty() => return Ok(Vec::new()),
        Edit::Patch { data, patches } => {
            let patches = merge(patches);
            (chunk.kind, patched_copy(&data, &patches), patches)
        }
        Edit::Remove => {
            if chunk.length > super::MAX_METADATA_LEN {
                return Err(source.too_large("PNG text chunk", chunk.type_offset, chunk.length));
            }
            let length = chunk.length as usize;
            (*REMOVED_CHUNK_TYPE, vec![0; length], vec![zeros(0, length)])
        }
    };

    let mut patches: Vec<LocationPatch> = data_patches
        .into_iter()
        .map(|patch| LocationPatch {
            offset: chunk.data_offset() + patch.offset,
            bytes: patch.bytes,
        })
        .collect();
    if kind != chunk.kind {
        patches.push(LocationPatch {
            offset: chunk.type_offset,
            bytes: kind.to_vec(),
        });
    }
    // A chunk cut off by the end of the file keeps its data as read and gets no CRC.
    if data.len() as u64 == chunk.length {
        patches.push(LocationPatch {
            offset: chunk.crc_offset(),
            bytes: crc32(&[&kind, &data]).to_be_bytes().to_vec(),
        });
    }
    Ok(patches)
}

/// Computes the CRC-32 of PNG (ISO 3309, reflected polynomial 0xEDB88320)
/// over the concatenation of `parts`.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = u32::MAX;
    for part in parts {
        for &byte in *part {
            let index = ((crc ^ u32::from(byte)) & 0xFF) as usize;
            crc = CRC_TABLE[index] ^ (crc >> 8);
        }
    }
    crc ^ u32::MAX
}

/// CRC-32 of every byte value, the lookup table of PNG's sample code (annex D).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut value = 0;
    while value < 256 {
        let mut crc = value as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[value] = crc;
        value += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::location::tiff::fixtures::{orientation, tiff_with_gps};
    use crate::location::xmp::fixtures::{PACKET, SECRETS};
    use crate::location::{location_patches, patched_copy};

    fn plain_png() -> Vec<u8> {
        let picture = image::RgbaImage::from_fn(8, 8, |x, y| {
            image::Rgba([x as u8 * 30, y as u8 * 30, 7, 255])
        });
        let mut encoded = Vec::new();
        picture
            .write_to(&mut Cursor::new(&mut encoded), image::ImageFormat::Png)
            .unwrap();
        encoded
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut bytes = (data.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(kind);
        bytes.extend_from_slice(data);
        bytes.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
        bytes
    }

    /// Inserts `chunks` after the signature and `IHDR` (8 + 25 bytes).
    fn with_chunks(png: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut file = png[..33].to_vec();
        for chunk in chunks {
            file.extend_from_slice(chunk);
        }
        file.extend_from_slice(&png[33..]);
        file
    }

    fn patch_file(bytes: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("picture.png");
        std::fs::write(&path, bytes).unwrap();
        let patches = location_patches(&path).unwrap();
        patched_copy(bytes, &patches)
    }

    fn decode(png: &[u8]) -> image::RgbaImage {
        image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("the PNG decodes")
            .to_rgba8()
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn exif_and_xmp_blanked_with_crcs() {
        let plain = plain_png();
        let mut itxt = XMP_KEYWORD.to_vec();
        itxt.extend_from_slice(b"\0\0\0\0\0");
        itxt.extend_from_slice(PACKET.as_bytes());
        let original = with_chunks(
            &plain,
            &[chunk(b"eXIf", &tiff_with_gps(true)), chunk(b"iTXt", &itxt)],
        );
        let original_exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&original))
            .unwrap();
        assert!(
            original_exif
                .fields()
                .any(|field| field.tag.context() == exif::Context::Gps)
        );

        let patched = patch_file(&original);

        assert_eq!(patched.len(), original.len());
        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&patched))
            .unwrap();
        assert!(
            !exif
                .fields()
                .any(|field| field.tag.context() == exif::Context::Gps)
        );
        let tiff_start = 33 + 8;
        assert_eq!(orientation(&patched[tiff_start..]), Some(6));
        let text = String::from_utf8_lossy(&patched);
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} survived");
        }
        // The png crate checks every CRC.
        assert!(decode(&patched) == decode(&original), "pixels changed");
    }

    #[test]
    fn raw_profiles_removed_except_colour() {
        let plain = plain_png();
        let exif_profile = chunk(b"zTXt", b"Raw profile type exif\0\0x\x9c\x03\0\0\0\0\x01");
        let icc_profile = chunk(b"tEXt", b"Raw profile type icc\0\nicc\n   4\n00000000\n");
        let original = with_chunks(&plain, &[exif_profile.clone(), icc_profile.clone()]);

        let patched = patch_file(&original);

        let removed = &patched[33..33 + exif_profile.len()];
        assert_eq!(&removed[4..8], REMOVED_CHUNK_TYPE);
        assert!(removed[8..removed.len() - 4].iter().all(|&byte| byte == 0));
        let kept = &patched[33 + exif_profile.len()..][..icc_profile.len()];
        assert_eq!(kept, icc_profile.as_slice());
        assert!(decode(&patched) == decode(&original), "pixels changed");
    }

    #[test]
    fn png_without_metadata_yields_no_patches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.png");
        std::fs::write(&path, plain_png()).unwrap();

        assert_eq!(location_patches(&path).unwrap(), Vec::new());
    }
}
