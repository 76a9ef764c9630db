//! JPEG marker segments before the image data (ITU-T T.81 annex B): EXIF
//! and XMP in APP1, Photoshop resources with IPTC-IIM in APP13.

use super::{Extent, LocationPatch, Source, iptc, map_to_file, tiff, xmp};
use crate::MediaError;

/// Marker of the APP1 segment, which carries EXIF and XMP.
const APP1: u8 = 0xE1;
/// Marker of the APP13 segment, which carries Photoshop image resources.
const APP13: u8 = 0xED;
/// Start of scan: entropy-coded data follows, and metadata never does.
const SOS: u8 = 0xDA;
/// End of image.
const EOI: u8 = 0xD9;

/// Signature of an EXIF APP1 payload (EXIF 2.32 section 4.5.4).
const EXIF_SIGNATURE: &[u8] = b"Exif\0\0";
/// Signature of a standard XMP APP1 payload (XMP part 3, section 1.1.3).
const XMP_SIGNATURE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
/// Signature of an extended XMP APP1 payload, followed by a 32-byte GUID,
/// the full length and the offset of this chunk, both as big-endian u32.
const EXTENDED_XMP_SIGNATURE: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
/// Bytes from the start of an extended XMP payload to its chunk of XML.
const EXTENDED_XMP_HEADER_LEN: usize = 35 + 32 + 4 + 4;

/// Walks the segments from SOI to SOS and returns the patches of every
/// EXIF, XMP and IPTC block.
pub(super) fn patches(source: &mut Source) -> Result<Vec<LocationPatch>, MediaError> {
    let mut patches = Vec::new();
    let mut extended_xmp = Vec::new();
    let mut offset = 2;

    loop {
        let header = source.read_at(offset, 4)?;
        if header.len() < 2 || header[0] != 0xFF {
            break;
        }
        match header[1] {
            // A fill byte before a marker.
            0xFF => {
                offset += 1;
                continue;
            }
            // Markers without a length: TEM, RSTn and a repeated SOI.
            0x01 | 0xD0..=0xD8 => {
                offset += 2;
                continue;
            }
            SOS | EOI => break,
            _ => {}
        }
        let Some(length) = header
            .get(2..4)
            .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
        else {
            break;
        };
        // The length counts its own two bytes.
        let Some(payload_len) = u64::from(length).checked_sub(2) else {
            break;
        };
        let payload_offset = offset + 4;

        match header[1] {
            APP1 => {
                let payload = source.read_at(payload_offset, payload_len)?;
                app1_patches(&payload, payload_offset, &mut patches, &mut extended_xmp);
            }
            APP13 => {
                let payload = source.read_at(payload_offset, payload_len)?;
                patches.extend(iptc::photoshop_patches(&payload, payload_offset));
            }
            _ => {}
        }
        offset = payload_offset + payload_len;
    }

    patches.extend(extended_xmp_patches(extended_xmp));
    Ok(patches)
}

/// One chunk of an extended XMP packet.
struct ExtendedChunk {
    guid: Vec<u8>,
    /// Offset of this chunk in the full packet, as the segment states it.
    packet_offset: u32,
    /// Position and length of the chunk's XML in the file.
    extent: Extent,
    xml: Vec<u8>,
}

/// Adds the patches of an APP1 payload read from file offset `base`, or
/// keeps an extended XMP chunk for [`extended_xmp_patches`].
fn app1_patches(
    payload: &[u8],
    base: u64,
    patches: &mut Vec<LocationPatch>,
    extended_xmp: &mut Vec<ExtendedChunk>,
) {
    if let Some(tiff) = payload.strip_prefix(EXIF_SIGNATURE) {
        let tiff_base = base + EXIF_SIGNATURE.len() as u64;
        patches.extend(tiff::gps_patches(tiff, tiff_base));
    } else if let Some(xml) = payload.strip_prefix(XMP_SIGNATURE) {
        let xml_base = base + XMP_SIGNATURE.len() as u64;
        patches.extend(xmp::location_patches(xml, xml_base));
    } else if payload.starts_with(EXTENDED_XMP_SIGNATURE)
        && let Some(xml) = payload.get(EXTENDED_XMP_HEADER_LEN..)
    {
        let guid_start = EXTENDED_XMP_SIGNATURE.len();
        extended_xmp.push(ExtendedChunk {
            guid: payload[guid_start..guid_start + 32].to_vec(),
            packet_offset: super::be_u32(payload, guid_start + 32 + 4).unwrap_or(0),
            extent: Extent {
                file_offset: base + EXTENDED_XMP_HEADER_LEN as u64,
                len: xml.len() as u64,
            },
            xml: xml.to_vec(),
        });
    }
}

/// Joins the chunks of each extended XMP packet in packet order and blanks
/// its location properties, so a property split across two segments is found.
fn extended_xmp_patches(mut chunks: Vec<ExtendedChunk>) -> Vec<LocationPatch> {
    chunks.sort_by(|a, b| (&a.guid, a.packet_offset).cmp(&(&b.guid, b.packet_offset)));

    let mut patches = Vec::new();
    for packet in chunks.chunk_by(|a, b| a.guid == b.guid) {
        let xml: Vec<u8> = packet
            .iter()
            .flat_map(|chunk| chunk.xml.iter().copied())
            .collect();
        let extents: Vec<Extent> = packet.iter().map(|chunk| chunk.extent).collect();
        patches.extend(map_to_file(xmp::location_patches(&xml, 0), &extents));
    }
    patches
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::location::tiff::fixtures::{gps_fields, tiff_with_gps};
    use crate::location::xmp::fixtures::{PACKET, SECRETS};
    use crate::location::{location_patches, patched_copy};

    /// Encodes a 16×16 gradient as a baseline JPEG without metadata.
    fn plain_jpeg() -> Vec<u8> {
        let picture =
            image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 128]));
        let mut encoded = Vec::new();
        picture
            .write_to(&mut Cursor::new(&mut encoded), image::ImageFormat::Jpeg)
            .unwrap();
        encoded
    }

    /// Builds a marker segment with the given payload.
    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut segment = vec![0xFF, marker];
        segment.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
        segment.extend_from_slice(payload);
        segment
    }

    /// Inserts `segments` right after SOI.
    fn with_segments(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
        let mut file = jpeg[..2].to_vec();
        for segment in segments {
            file.extend_from_slice(segment);
        }
        file.extend_from_slice(&jpeg[2..]);
        file
    }

    fn patch_file(bytes: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("photo.jpg");
        std::fs::write(&path, bytes).unwrap();
        let patches = location_patches(&path).unwrap();
        patched_copy(bytes, &patches)
    }

    fn exif_of(jpeg: &[u8]) -> exif::Exif {
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(jpeg))
            .unwrap()
    }

    #[test]
    fn exif_and_xmp_are_blanked_and_pixels_kept() {
        let plain = plain_jpeg();
        let exif_payload = [EXIF_SIGNATURE, &tiff_with_gps(false)].concat();
        let xmp_payload = [XMP_SIGNATURE, PACKET.as_bytes()].concat();
        let original = with_segments(
            &plain,
            &[segment(APP1, &exif_payload), segment(APP1, &xmp_payload)],
        );
        let has_gps = |jpeg: &[u8]| {
            exif_of(jpeg)
                .fields()
                .any(|field| field.tag.context() == exif::Context::Gps)
        };
        assert!(has_gps(&original), "the fixture has GPS fields");

        let patched = patch_file(&original);

        assert_eq!(patched.len(), original.len());
        assert!(!has_gps(&patched), "GPS fields survived");
        let text = String::from_utf8_lossy(&patched);
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} survived");
        }
        let original_pixels = image::load_from_memory(&original).unwrap().to_rgb8();
        let patched_pixels = image::load_from_memory(&patched).unwrap().to_rgb8();
        assert!(original_pixels == patched_pixels, "pixels changed");
    }

    #[test]
    fn exif_after_fill_bytes_is_found() {
        let plain = plain_jpeg();
        let exif_payload = [EXIF_SIGNATURE, &tiff_with_gps(true)].concat();
        let comment = segment(0xFE, b"made by a test");
        let mut fill_then_exif = vec![0xFF];
        fill_then_exif.extend(segment(APP1, &exif_payload));
        let original = with_segments(&plain, &[comment, fill_then_exif]);

        let patched = patch_file(&original);

        let tiff_start = patched
            .windows(EXIF_SIGNATURE.len())
            .position(|window| window == EXIF_SIGNATURE)
            .unwrap()
            + EXIF_SIGNATURE.len();
        assert_eq!(
            gps_fields(&patched[tiff_start..tiff_start + exif_payload.len() - 6]),
            Vec::new()
        );
    }

    #[test]
    fn extended_xmp_split_property_is_blanked() {
        let plain = plain_jpeg();
        let xml = b"<r><exif:GPSLatitude>15,50.1353S</exif:GPSLatitude></r>";
        let split = 26;
        let chunk = |offset: usize, part: &[u8]| {
            let mut payload = EXTENDED_XMP_SIGNATURE.to_vec();
            payload.extend_from_slice(&[b'A'; 32]);
            payload.extend_from_slice(&(xml.len() as u32).to_be_bytes());
            payload.extend_from_slice(&(offset as u32).to_be_bytes());
            payload.extend_from_slice(part);
            segment(APP1, &payload)
        };
        // The second chunk comes first in the file; packet order decides.
        let original = with_segments(
            &plain,
            &[chunk(split, &xml[split..]), chunk(0, &xml[..split])],
        );

        let patched = patch_file(&original);

        let text = String::from_utf8_lossy(&patched);
        assert!(!text.contains("15,5"), "latitude survived");
        assert!(!text.contains("0.1353S"), "latitude survived");
        assert!(text.contains("</exif:GPSLatitude></r>"));
    }

    #[test]
    fn truncated_segment_does_not_fail() {
        let plain = plain_jpeg();
        let exif_payload = [EXIF_SIGNATURE, &tiff_with_gps(false)].concat();
        let mut original = with_segments(&plain, &[segment(APP1, &exif_payload)]);
        original.truncate(4 + 100);

        let patched = patch_file(&original);

        assert_eq!(patched.len(), original.len());
    }
}
