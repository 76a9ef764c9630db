//! IPTC-IIM location datasets inside Photoshop image resources, as JPEG
//! APP13 segments carry them (IPTC-NAA IIM 4.2; Adobe Photoshop File Formats
//! Specification, "Image resource blocks").
//!
//! The values of the location datasets of the application record are
//! replaced with spaces. Photoshop's digest of the IPTC block (resource
//! 0x0425) then no longer matches, which only makes Photoshop treat the
//! block as edited by another program.

use super::{LocationPatch, be_u16, be_u32, spaces};

/// Start of a Photoshop APP13 payload.
const PHOTOSHOP_SIGNATURE: &[u8] = b"Photoshop 3.0\0";

/// Signatures of an image resource block; "8BIM" is the common one.
const RESOURCE_SIGNATURES: [&[u8]; 4] = [b"8BIM", b"MeSa", b"AgHg", b"PHUT"];

/// Resource ID of the IPTC-NAA record.
const IPTC_RESOURCE: u16 = 0x0404;

/// Tag marker that starts every IIM dataset.
const DATASET_MARKER: u8 = 0x1C;

/// The IIM application record, which contains the descriptive datasets.
const APPLICATION_RECORD: u8 = 2;

/// Datasets of the application record that name a place: content location
/// code and name (26, 27), city (90), sub-location (92), province or state
/// (95), country code and name (100, 101).
const LOCATION_DATASETS: [u8; 7] = [26, 27, 90, 92, 95, 100, 101];

/// Returns patches for the location datasets of a Photoshop APP13 payload
/// that starts at file offset `base`.
pub(super) fn photoshop_patches(payload: &[u8], base: u64) -> Vec<LocationPatch> {
    let Some(resources) = payload.strip_prefix(PHOTOSHOP_SIGNATURE) else {
        return Vec::new();
    };
    let resources_base = base + PHOTOSHOP_SIGNATURE.len() as u64;

    let mut patches = Vec::new();
    let mut position = 0;
    while let Some(signature) = resources.get(position..position + 4) {
        if !RESOURCE_SIGNATURES.contains(&signature) {
            break;
        }
        let Some(id) = be_u16(resources, position + 4) else {
            break;
        };
        // A Pascal string: a length byte, then the name, padded to an even total.
        let Some(&name_len) = resources.get(position + 6) else {
            break;
        };
        let name_total = (1 + usize::from(name_len)).next_multiple_of(2);
        let size_at = position + 6 + name_total;
        let Some(size) = be_u32(resources, size_at) else {
            break;
        };
        let data_start = size_at + 4;
        let data_end = data_start
            .saturating_add(size as usize)
            .min(resources.len());

        if id == IPTC_RESOURCE {
            let data_base = resources_base + data_start as u64;
            patches.extend(iim_patches(&resources[data_start..data_end], data_base));
        }
        // The data is padded to an even length too.
        position = data_start.saturating_add((size as usize).next_multiple_of(2));
    }
    patches
}

/// Returns patches for the location datasets of an IIM record stream that
/// starts at file offset `base`.
fn iim_patches(iim: &[u8], base: u64) -> Vec<LocationPatch> {
    let mut patches = Vec::new();
    let mut position = 0;

    while iim.get(position) == Some(&DATASET_MARKER) {
        let (Some(&record), Some(&dataset), Some(length_field)) = (
            iim.get(position + 1),
            iim.get(position + 2),
            be_u16(iim, position + 3),
        ) else {
            break;
        };
        let mut data_start = position + 5;

        // With the top bit set, the field gives the size of a longer length that follows.
        let length = if length_field & 0x8000 == 0 {
            usize::from(length_field)
        } else {
            let length_len = usize::from(length_field & 0x7FFF);
            if length_len > 8 {
                break;
            }
            let Some(bytes) = iim.get(data_start..data_start + length_len) else {
                break;
            };
            data_start += length_len;
            bytes
                .iter()
                .fold(0usize, |length, &byte| (length << 8) | usize::from(byte))
        };
        let data_end = data_start.saturating_add(length).min(iim.len());

        if record == APPLICATION_RECORD
            && LOCATION_DATASETS.contains(&dataset)
            && data_end > data_start
        {
            patches.push(spaces(base + data_start as u64, data_end - data_start));
        }
        position = data_start.saturating_add(length);
    }
    patches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::patched_copy;

    fn dataset(record: u8, number: u8, value: &[u8]) -> Vec<u8> {
        let mut bytes = vec![DATASET_MARKER, record, number];
        bytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        bytes.extend_from_slice(value);
        bytes
    }

    fn resource(id: u16, name: &[u8], data: &[u8]) -> Vec<u8> {
        let mut bytes = b"8BIM".to_vec();
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.push(name.len() as u8);
        bytes.extend_from_slice(name);
        if (1 + name.len()) % 2 == 1 {
            bytes.push(0);
        }
        bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
        bytes.extend_from_slice(data);
        if data.len() % 2 == 1 {
            bytes.push(0);
        }
        bytes
    }

    #[test]
    fn city_and_country_are_blanked() {
        let iim = [
            dataset(1, 90, b"\x1b%G"),
            dataset(2, 5, b"Walk"),
            dataset(2, 90, b"Brasilia"),
            dataset(2, 101, b"Brazil"),
            dataset(2, 120, b"Evening walk"),
        ]
        .concat();
        let payload = [
            PHOTOSHOP_SIGNATURE,
            &resource(0x03ED, b"", &[0; 15]),
            &resource(IPTC_RESOURCE, b"iptc", &iim),
        ]
        .concat();

        let patches = photoshop_patches(&payload, 0);
        let patched = patched_copy(&payload, &patches);

        assert_eq!(patched.len(), payload.len());
        let text = String::from_utf8_lossy(&patched);
        assert!(!text.contains("Brasilia"));
        assert!(!text.contains("Brazil"));
        assert!(text.contains("Walk"));
        assert!(text.contains("Evening walk"));
    }

    #[test]
    fn extended_length_dataset_is_blanked() {
        let mut iim = vec![DATASET_MARKER, 2, 92, 0x80, 0x02, 0x00, 0x05];
        iim.extend_from_slice(b"Plaza");

        let patches = iim_patches(&iim, 10);

        assert_eq!(patches, vec![spaces(17, 5)]);
    }

    #[test]
    fn malformed_resources_yield_no_panic() {
        let cases: [&[u8]; 4] = [
            b"Photoshop 3.0\0",
            b"Photoshop 3.0\x008BIM\x04\x04",
            b"Photoshop 3.0\x008BIM\x04\x04\xff",
            b"Photoshop 3.0\x008BIM\x04\x04\0\0\xff\xff\xff\xff\x1c\x02\x5a\xff\xff",
        ];
        for payload in cases {
            let _ = photoshop_patches(payload, 0);
        }
    }
}
