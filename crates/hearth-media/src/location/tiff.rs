//! The GPS IFD of an EXIF block, which is a TIFF structure (EXIF 2.32
//! section 4.6): a header, a chain of IFDs of 12-byte entries, and a GPS IFD
//! that IFD0 points to with tag 0x8825.
//!
//! The patches zero the value of every GPS entry, the entries themselves and
//! the entry count. The pointer in IFD0 stays and leads to an empty IFD, so
//! readers still parse IFD0, the Exif IFD and the thumbnail.
//!
//! NOTE: a block whose header or GPS IFD lies outside the block yields no
//! patch. Readers that follow the offsets find no GPS entries in such a block
//! either, but a tool that searches the raw bytes for coordinates might.

use super::{LocationPatch, zeros};

/// Tag of the entry that points to the GPS IFD.
const GPS_INFO_POINTER: u16 = 0x8825;

/// IFDs of the main chain searched for a GPS pointer: IFD0 (the image) and
/// IFD1 (its thumbnail).
const MAIN_CHAIN_LEN: usize = 2;

/// Size of one IFD entry: tag, type, count, and value or offset.
const ENTRY_LEN: usize = 12;

/// Finds the GPS IFD of the TIFF structure `tiff` and returns patches that
/// zero it. `base` is the file offset of `tiff[0]`.
pub(super) fn gps_patches(tiff: &[u8], base: u64) -> Vec<LocationPatch> {
    let Some((order, ifd0)) = parse_header(tiff) else {
        return Vec::new();
    };

    let mut patches = Vec::new();
    for gps_ifd in gps_pointers(tiff, order, ifd0) {
        zero_ifd(tiff, order, gps_ifd, base, &mut patches);
    }
    patches
}

/// Byte order of a TIFF structure, from its first two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteOrder {
    /// "II": least significant byte first.
    Little,
    /// "MM": most significant byte first.
    Big,
}

impl ByteOrder {
    fn u16(self, data: &[u8], offset: usize) -> Option<u16> {
        let bytes: [u8; 2] = data.get(offset..offset.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            ByteOrder::Little => u16::from_le_bytes(bytes),
            ByteOrder::Big => u16::from_be_bytes(bytes),
        })
    }

    fn u32(self, data: &[u8], offset: usize) -> Option<u32> {
        let bytes: [u8; 4] = data.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            ByteOrder::Little => u32::from_le_bytes(bytes),
            ByteOrder::Big => u32::from_be_bytes(bytes),
        })
    }
}

/// Reads the byte order and the offset of IFD0 from the 8-byte header.
fn parse_header(tiff: &[u8]) -> Option<(ByteOrder, usize)> {
    let order = match tiff.get(..2)? {
        b"II" => ByteOrder::Little,
        b"MM" => ByteOrder::Big,
        _ => return None,
    };
    if order.u16(tiff, 2)? != 42 {
        return None;
    }
    let ifd0 = order.u32(tiff, 4)? as usize;
    Some((order, ifd0))
}

/// Returns the distinct GPS IFD offsets that IFD0 and IFD1 point to.
fn gps_pointers(tiff: &[u8], order: ByteOrder, ifd0: usize) -> Vec<usize> {
    let mut pointers = Vec::new();
    let mut ifd = ifd0;

    for _ in 0..MAIN_CHAIN_LEN {
        let Some(count) = order.u16(tiff, ifd) else {
            break;
        };
        for entry in entries(tiff, ifd, count) {
            if order.u16(tiff, entry) == Some(GPS_INFO_POINTER)
                && let Some(pointer) = order.u32(tiff, entry + 8)
                && !pointers.contains(&(pointer as usize))
            {
                pointers.push(pointer as usize);
            }
        }

        // The offset of the next IFD follows the last entry; 0 ends the chain.
        let next_at = ifd + 2 + usize::from(count) * ENTRY_LEN;
        match order.u32(tiff, next_at) {
            Some(next) if next != 0 && next as usize != ifd => ifd = next as usize,
            _ => break,
        }
    }
    pointers
}

/// Offsets of the entries of the IFD at `ifd` that lie inside `tiff`.
fn entries(tiff: &[u8], ifd: usize, count: u16) -> impl Iterator<Item = usize> {
    let first = ifd + 2;
    let fitting = tiff.len().saturating_sub(first) / ENTRY_LEN;
    (0..usize::from(count).min(fitting)).map(move |index| first + index * ENTRY_LEN)
}

/// Zeros the values stored outside the entries, then the count and the entries.
fn zero_ifd(
    tiff: &[u8],
    order: ByteOrder,
    ifd: usize,
    base: u64,
    patches: &mut Vec<LocationPatch>,
) {
    let Some(count) = order.u16(tiff, ifd) else {
        return;
    };

    let mut fitting = 0;
    for entry in entries(tiff, ifd, count) {
        fitting += 1;
        let value_len = order
            .u16(tiff, entry + 2)
            .and_then(type_len)
            .zip(order.u32(tiff, entry + 4))
            .and_then(|(unit, count)| unit.checked_mul(count as usize));
        // Values of up to 4 bytes sit inside the entry itself.
        if let Some(len) = value_len.filter(|&len| len > 4)
            && let Some(value) = order.u32(tiff, entry + 8)
            && (value as usize)
                .checked_add(len)
                .is_some_and(|end| end <= tiff.len())
        {
            patches.push(zeros(base + u64::from(value), len));
        }
    }

    patches.push(zeros(base + ifd as u64, 2 + fitting * ENTRY_LEN));
}

/// Size in bytes of one value of a TIFF field type (TIFF 6.0 section 2,
/// EXIF 2.32 section 4.6.2); `None` for an unknown type.
fn type_len(field_type: u16) -> Option<usize> {
    match field_type {
        // BYTE, ASCII, SBYTE, UNDEFINED
        1 | 2 | 6 | 7 => Some(1),
        // SHORT, SSHORT
        3 | 8 => Some(2),
        // LONG, SLONG, FLOAT, IFD
        4 | 9 | 11 | 13 => Some(4),
        // RATIONAL, SRATIONAL, DOUBLE
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}

/// EXIF fixtures shared by the tests of the containers that carry EXIF.
#[cfg(test)]
pub(super) mod fixtures {
    /// Builds an EXIF block with Orientation 6, Make "Phone" and a GPS IFD at
    /// 15°50'8.12" S 48°0'56.84" W, in the given byte order.
    pub(crate) fn tiff_with_gps(little_endian: bool) -> Vec<u8> {
        let u16_bytes = |value: u16| {
            if little_endian {
                value.to_le_bytes()
            } else {
                value.to_be_bytes()
            }
        };
        let u32_bytes = |value: u32| {
            if little_endian {
                value.to_le_bytes()
            } else {
                value.to_be_bytes()
            }
        };
        let mut tiff = Vec::new();
        let entry = |tiff: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
            tiff.extend_from_slice(&u16_bytes(tag));
            tiff.extend_from_slice(&u16_bytes(kind));
            tiff.extend_from_slice(&u32_bytes(count));
            tiff.extend_from_slice(&value);
        };

        // Header, then IFD0 at 8: three entries and the next-IFD offset end at 50.
        tiff.extend_from_slice(if little_endian { b"II" } else { b"MM" });
        tiff.extend_from_slice(&u16_bytes(42));
        tiff.extend_from_slice(&u32_bytes(8));
        tiff.extend_from_slice(&u16_bytes(3));
        let mut orientation = [0; 4];
        orientation[..2].copy_from_slice(&u16_bytes(6));
        entry(&mut tiff, 0x010F, 2, 6, u32_bytes(50));
        entry(&mut tiff, 0x0112, 3, 1, orientation);
        entry(&mut tiff, 0x8825, 4, 1, u32_bytes(56));
        tiff.extend_from_slice(&u32_bytes(0));
        tiff.extend_from_slice(b"Phone\0");

        // GPS IFD at 56: five entries end at 122, the two RATIONAL triples at 170.
        tiff.extend_from_slice(&u16_bytes(5));
        entry(&mut tiff, 0x0000, 1, 4, [2, 3, 0, 0]);
        entry(&mut tiff, 0x0001, 2, 2, *b"S\0\0\0");
        entry(&mut tiff, 0x0002, 5, 3, u32_bytes(122));
        entry(&mut tiff, 0x0003, 2, 2, *b"W\0\0\0");
        entry(&mut tiff, 0x0004, 5, 3, u32_bytes(146));
        tiff.extend_from_slice(&u32_bytes(0));
        for (numerator, denominator) in [(15, 1), (50, 1), (812, 100), (48, 1), (0, 1), (5684, 100)]
        {
            tiff.extend_from_slice(&u32_bytes(numerator));
            tiff.extend_from_slice(&u32_bytes(denominator));
        }
        tiff
    }

    /// Offset of the GPS IFD in [`tiff_with_gps`].
    pub(crate) const GPS_IFD: usize = 56;

    /// Returns the GPS fields that kamadak-exif reads from an EXIF block.
    pub(crate) fn gps_fields(tiff: &[u8]) -> Vec<exif::Tag> {
        let parsed = exif::Reader::new()
            .read_raw(tiff.to_vec())
            .expect("the EXIF block parses");
        parsed
            .fields()
            .filter(|field| field.tag.context() == exif::Context::Gps)
            .map(|field| field.tag)
            .collect()
    }

    /// Reads the Orientation of IFD0 with kamadak-exif.
    pub(crate) fn orientation(tiff: &[u8]) -> Option<u32> {
        let parsed = exif::Reader::new().read_raw(tiff.to_vec()).ok()?;
        parsed
            .get_field(exif::Tag::Orientation, exif::In::PRIMARY)?
            .value
            .get_uint(0)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{GPS_IFD, gps_fields, orientation, tiff_with_gps};
    use super::*;
    use crate::location::patched_copy;

    #[test]
    fn gps_ifd_is_zeroed_in_both_byte_orders() {
        for little_endian in [true, false] {
            let tiff = tiff_with_gps(little_endian);
            assert_eq!(gps_fields(&tiff).len(), 5, "the fixture has GPS fields");

            let patches = gps_patches(&tiff, 0);
            let patched = patched_copy(&tiff, &patches);

            assert_eq!(patched.len(), tiff.len());
            assert_eq!(
                gps_fields(&patched),
                Vec::new(),
                "little endian: {little_endian}"
            );
            assert_eq!(
                orientation(&patched),
                Some(6),
                "little endian: {little_endian}"
            );
            assert!(
                patched[GPS_IFD..].iter().all(|&byte| byte == 0),
                "GPS IFD and its values are zero"
            );
            assert_eq!(patched[..GPS_IFD], tiff[..GPS_IFD], "IFD0 is unchanged");
        }
    }

    #[test]
    fn patches_are_offset_by_base() {
        let tiff = tiff_with_gps(false);

        let patches = gps_patches(&tiff, 1000);

        assert!(
            patches
                .iter()
                .all(|patch| patch.offset >= 1000 + GPS_IFD as u64)
        );
    }

    #[test]
    fn truncated_gps_values_are_left_but_entries_zeroed() {
        let mut tiff = tiff_with_gps(true);
        tiff.truncate(140);

        let patches = gps_patches(&tiff, 0);
        let patched = patched_copy(&tiff, &patches);

        // The latitude at 122 runs past the end, so only the entries are zeroed.
        assert!(patched[GPS_IFD..122].iter().all(|&byte| byte == 0));
        assert_eq!(patched[122..], tiff[122..]);
    }

    #[test]
    fn malformed_blocks_yield_no_patches() {
        let valid = tiff_with_gps(true);
        let mut bad_magic = valid.clone();
        bad_magic[2] = 43;
        let mut ifd0_outside = valid.clone();
        ifd0_outside[4..8].copy_from_slice(&9999u32.to_le_bytes());
        let mut gps_outside = valid.clone();
        gps_outside[8 + 2 + 2 * ENTRY_LEN + 8..][..4].copy_from_slice(&u32::MAX.to_le_bytes());

        let cases: [(&str, &[u8]); 6] = [
            ("empty", &[]),
            ("header only", &valid[..4]),
            ("unknown byte order", b"XX\x2a\0\x08\0\0\0"),
            ("bad magic", &bad_magic),
            ("IFD0 outside", &ifd0_outside),
            ("GPS IFD outside", &gps_outside),
        ];
        for (name, tiff) in cases {
            assert_eq!(gps_patches(tiff, 0), Vec::new(), "{name}");
        }
    }

    #[test]
    fn ifd_loop_terminates() {
        let mut tiff = tiff_with_gps(true);
        // IFD0's next-IFD offset points back to IFD0.
        tiff[8 + 2 + 3 * ENTRY_LEN..][..4].copy_from_slice(&8u32.to_le_bytes());

        let patches = gps_patches(&tiff, 0);

        assert!(!patches.is_empty());
    }
}
