//! The `EXIF` and `XMP ` chunks of a WebP file (RIFF container, Google's
//! "WebP Container Specification"). RIFF chunks carry no checksum.

use super::{LocationPatch, Source, tiff, xmp};
use crate::MediaError;

/// Offset of the first chunk, after "RIFF", the size and "WEBP".
const FIRST_CHUNK: u64 = 12;

/// Walks the chunks of the RIFF body and returns the patches of its EXIF and XMP.
pub(super) fn patches(source: &mut Source) -> Result<Vec<LocationPatch>, MediaError> {
    let head = source.read_at(0, FIRST_CHUNK)?;
    let riff_size = head.get(4..8).map_or(0, |bytes| {
        u32::from_le_bytes(bytes.try_into().expect("4 bytes"))
    });
    let end = (8 + u64::from(riff_size)).min(source.len);

    let mut patches = Vec::new();
    let mut offset = FIRST_CHUNK;
    while offset + 8 <= end {
        let header = source.read_at(offset, 8)?;
        if header.len() < 8 {
            break;
        }
        let size = u64::from(u32::from_le_bytes(
            header[4..8].try_into().expect("4 bytes"),
        ));
        let data_offset = offset + 8;

        match &header[..4] {
            b"EXIF" => {
                let data = source.read_at(data_offset, size)?;
                // The container specification has no "Exif\0\0" header, but some writers add it.
                let tiff_start = if data.starts_with(b"Exif\0\0") { 6 } else { 0 };
                let tiff_base = data_offset + tiff_start as u64;
                patches.extend(tiff::gps_patches(&data[tiff_start..], tiff_base));
            }
            b"XMP " => {
                let data = source.read_at(data_offset, size)?;
                patches.extend(xmp::location_patches(&data, data_offset));
            }
            _ => {}
        }
        // Chunk data is padded to an even length.
        offset = data_offset + size + (size & 1);
    }
    Ok(patches)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use crate::location::tiff::fixtures::{orientation, tiff_with_gps};
    use crate::location::xmp::fixtures::{PACKET, SECRETS};
    use crate::location::{location_patches, patched_copy};

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut bytes = kind.to_vec();
        bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(data);
        if data.len() % 2 == 1 {
            bytes.push(0);
        }
        bytes
    }

    /// Encodes a lossless WebP and appends `chunks` to its RIFF body.
    fn webp_with(chunks: &[Vec<u8>]) -> Vec<u8> {
        let picture = image::RgbaImage::from_fn(8, 8, |x, y| {
            image::Rgba([x as u8 * 30, 9, y as u8 * 30, 255])
        });
        let mut file = Vec::new();
        picture
            .write_to(&mut Cursor::new(&mut file), image::ImageFormat::WebP)
            .unwrap();
        for chunk in chunks {
            file.extend_from_slice(chunk);
        }
        let riff_size = (file.len() - 8) as u32;
        file[4..8].copy_from_slice(&riff_size.to_le_bytes());
        file
    }

    #[test]
    fn exif_and_xmp_chunks_are_blanked() {
        let original = webp_with(&[
            chunk(b"EXIF", &tiff_with_gps(false)),
            chunk(b"XMP ", PACKET.as_bytes()),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("picture.webp");
        std::fs::write(&path, &original).unwrap();

        let patches = location_patches(&path).unwrap();
        let patched = patched_copy(&original, &patches);

        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&patched))
            .unwrap();
        assert!(
            !exif
                .fields()
                .any(|field| field.tag.context() == exif::Context::Gps)
        );
        let tiff_start = patched
            .windows(4)
            .position(|window| window == b"EXIF")
            .unwrap()
            + 8;
        assert_eq!(orientation(&patched[tiff_start..]), Some(6));
        let text = String::from_utf8_lossy(&patched);
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} survived");
        }
        let original_pixels = image::load_from_memory(&original).unwrap().to_rgba8();
        let patched_pixels = image::load_from_memory(&patched).unwrap().to_rgba8();
        assert!(original_pixels == patched_pixels, "pixels changed");
    }
}
