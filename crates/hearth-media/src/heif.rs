//! Dimensions of HEIF (HEIC) and AVIF images from their ISO BMFF boxes.
//!
//! Neither format has a decoder here, but phones produce HEIC by default, so the
//! catalog should still list such photos with their size and EXIF. The size is
//! the `ispe` (image spatial extents) property of the primary item, as defined
//! in ISO/IEC 23008-12: `meta` → `pitm` names the primary item, `iprp` → `ipma`
//! maps items to property indices, and `iprp` → `ipco` lists the properties.
//!
//! NOTE: only hand-built box layouts test this module; no HEIC or AVIF sample
//! is installed on the development machine.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// Largest `meta` box read into memory, a guard against hostile sizes. Phone
/// photos need a few KiB (an estimate), so this leaves ample room.
const MAX_META_LEN: u64 = 16 * 1024 * 1024;

/// Maximum number of top-level boxes walked while looking for `meta`.
const MAX_TOP_LEVEL_BOXES: usize = 64;

/// Returns (width, height) of the primary image, or `None` when the boxes are
/// missing or malformed.
pub(crate) fn heif_dimensions(file: &mut File) -> Option<(u32, u32)> {
    let meta = read_top_level_box(file, b"meta")?;
    // `meta` is a full box: version and flags come before its children.
    let children = meta.get(4..)?;

    let primary = find_box(children, b"pitm").and_then(parse_pitm);
    let iprp = find_box(children, b"iprp")?;
    let ipco = find_box(iprp, b"ipco")?;
    let properties: Vec<(&[u8; 4], &[u8])> = boxes(ipco).collect();

    let primary_extent = primary.and_then(|item| {
        let ipma = find_box(iprp, b"ipma")?;
        parse_ipma(ipma, item)?
            .into_iter()
            .filter_map(|index| properties.get(index.checked_sub(1)?))
            .find(|(kind, _)| *kind == b"ispe")
            .and_then(|(_, body)| parse_ispe(body))
    });

    // Without a usable primary item, the largest extent is the full image
    // rather than a thumbnail or a grid tile.
    primary_extent.or_else(|| {
        properties
            .iter()
            .filter(|(kind, _)| *kind == b"ispe")
            .filter_map(|(_, body)| parse_ispe(body))
            .max_by_key(|(width, height)| u64::from(*width) * u64::from(*height))
    })
}

/// Reads the body of the first top-level box of type `wanted`.
fn read_top_level_box(file: &mut File, wanted: &[u8; 4]) -> Option<Vec<u8>> {
    let file_len = file.metadata().ok()?.len();
    let mut offset = 0u64;

    for _ in 0..MAX_TOP_LEVEL_BOXES {
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut header = [0u8; 8];
        file.read_exact(&mut header).ok()?;
        let size32 = u32::from_be_bytes(header[..4].try_into().ok()?);
        let (size, header_len) = match size32 {
            0 => (file_len.checked_sub(offset)?, 8),
            1 => {
                let mut large = [0u8; 8];
                file.read_exact(&mut large).ok()?;
                (u64::from_be_bytes(large), 16)
            }
            _ => (u64::from(size32), 8),
        };
        if size < header_len {
            return None;
        }

        if &header[4..8] == wanted {
            let body_len = size - header_len;
            if body_len > MAX_META_LEN {
                return None;
            }
            let mut body = vec![0u8; usize::try_from(body_len).ok()?];
            file.read_exact(&mut body).ok()?;
            return Some(body);
        }
        offset = offset.checked_add(size)?;
    }
    None
}

/// Iterates over the boxes laid out one after another in `data`, yielding
/// each box's type and body.
fn boxes(data: &[u8]) -> impl Iterator<Item = (&[u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let size = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let kind: &[u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (header_len, size) = match size {
            0 => (8, rest.len()),
            1 => {
                let large = u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?);
                (16, usize::try_from(large).ok()?)
            }
            _ => (8, size),
        };
        if size < header_len || size > rest.len() {
            return None;
        }
        let body = &rest[header_len..size];
        rest = &rest[size..];
        Some((kind, body))
    })
}

fn find_box<'a>(data: &'a [u8], wanted: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data)
        .find(|(kind, _)| *kind == wanted)
        .map(|(_, body)| body)
}

/// Parses `pitm`: a full box containing the primary item id, 16 bits in version 0
/// and 32 bits otherwise.
fn parse_pitm(body: &[u8]) -> Option<u32> {
    let version = *body.first()?;
    if version == 0 {
        Some(u32::from(u16::from_be_bytes(
            body.get(4..6)?.try_into().ok()?,
        )))
    } else {
        Some(u32::from_be_bytes(body.get(4..8)?.try_into().ok()?))
    }
}

/// Parses `ipma` and returns the 1-based property indices associated with `item`.
fn parse_ipma(body: &[u8], item: u32) -> Option<Vec<usize>> {
    let version = *body.first()?;
    let wide_index = body.get(3)? & 1 == 1;
    let entry_count = u32::from_be_bytes(body.get(4..8)?.try_into().ok()?);
    let mut at = 8usize;

    for _ in 0..entry_count {
        let item_id = if version < 1 {
            let id = u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?);
            at += 2;
            u32::from(id)
        } else {
            let id = u32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
            at += 4;
            id
        };
        let association_count = usize::from(*body.get(at)?);
        at += 1;

        let mut indices = Vec::with_capacity(association_count);
        for _ in 0..association_count {
            // The top bit of each association is the "essential" flag.
            let index = if wide_index {
                let raw = u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?);
                at += 2;
                usize::from(raw & 0x7FFF)
            } else {
                let raw = *body.get(at)?;
                at += 1;
                usize::from(raw & 0x7F)
            };
            indices.push(index);
        }
        if item_id == item {
            return Some(indices);
        }
    }
    None
}

/// Parses `ispe`: a full box followed by 32-bit width and height.
fn parse_ispe(body: &[u8]) -> Option<(u32, u32)> {
    let width = u32::from_be_bytes(body.get(4..8)?.try_into().ok()?);
    let height = u32::from_be_bytes(body.get(8..12)?.try_into().ok()?);
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn make_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn ispe(width: u32, height: u32) -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0];
        body.extend_from_slice(&width.to_be_bytes());
        body.extend_from_slice(&height.to_be_bytes());
        make_box(b"ispe", &body)
    }

    /// Builds a HEIF-like file whose primary item 2 has extent 4032x3024,
    /// while property 1 is a 512x512 grid tile extent.
    fn sample_heif() -> Vec<u8> {
        let ipco = make_box(b"ipco", &[ispe(512, 512), ispe(4032, 3024)].concat());
        // Version 0, flags 0, one entry: item 2 with one association to property 2.
        let ipma = make_box(b"ipma", &[0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 1, 0x82]);
        let iprp = make_box(b"iprp", &[ipco, ipma].concat());
        let pitm = make_box(b"pitm", &[0, 0, 0, 0, 0, 2]);
        let meta = make_box(b"meta", &[vec![0, 0, 0, 0], pitm, iprp].concat());
        let ftyp = make_box(b"ftyp", b"heic\0\0\0\0mif1heic");
        [ftyp, meta, make_box(b"mdat", &[0; 16])].concat()
    }

    #[test]
    fn primary_item_extent_is_used() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&sample_heif()).unwrap();
        assert_eq!(heif_dimensions(&mut file), Some((4032, 3024)));
    }

    #[test]
    fn file_without_meta_has_no_dimensions() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&make_box(b"ftyp", b"heic\0\0\0\0")).unwrap();
        assert_eq!(heif_dimensions(&mut file), None);
    }

    #[test]
    fn largest_extent_is_the_fallback() {
        let ipco = make_box(b"ipco", &[ispe(512, 512), ispe(4032, 3024)].concat());
        let iprp = make_box(b"iprp", &ipco);
        let meta = make_box(b"meta", &[vec![0, 0, 0, 0], iprp].concat());
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[make_box(b"ftyp", b"heic\0\0\0\0"), meta].concat())
            .unwrap();
        assert_eq!(heif_dimensions(&mut file), Some((4032, 3024)));
    }
}
