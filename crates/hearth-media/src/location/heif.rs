//! Exif and XMP items of a HEIF, HEIC or AVIF file (ISO/IEC 23008-12): the
//! top-level `meta` box lists items in `iinf`, and `iloc` gives the extents
//! of each item's data, in the file or in the `idat` box.
//!
//! An Exif item starts with the big-endian offset of the TIFF header from
//! the end of that field (annex A.2.1). An XMP item is a `mime` item of type
//! "application/rdf+xml". Both may be split into several extents, so the
//! patches are computed on the joined item and then split per extent.
//!
//! NOTE: items built from other items (construction method 2), items in
//! another file, and compressed XMP items are not patched.

use super::bmff::BoxHeader;
use super::{Extent, LocationPatch, MAX_METADATA_LEN, Source, be_u32, map_to_file, tiff, xmp};
use crate::MediaError;

/// Content type of an XMP item.
const XMP_CONTENT_TYPE: &[u8] = b"application/rdf+xml";

/// Returns the patches of the Exif and XMP items of the top-level `meta` box.
pub(super) fn item_patches(
    source: &mut Source,
    meta: &BoxHeader,
) -> Result<Vec<LocationPatch>, MediaError> {
    let payload = source.read_at(meta.payload_offset(), meta.payload_len())?;
    // A full box: version and flags come before the children.
    let Some(children) = payload.get(4..) else {
        return Ok(Vec::new());
    };
    let children_offset = meta.payload_offset() + 4;

    let mut items = Vec::new();
    let mut locations = Vec::new();
    let mut idat = None;
    for child in boxes(children) {
        match &child.kind {
            b"iinf" => items = parse_iinf(child.body).unwrap_or_default(),
            b"iloc" => locations = parse_iloc(child.body).unwrap_or_default(),
            b"idat" => {
                idat = Some(Extent {
                    file_offset: children_offset + child.body_start as u64,
                    len: child.body.len() as u64,
                });
            }
            _ => {}
        }
    }

    let mut patches = Vec::new();
    for (item_id, kind) in items {
        let Some(location) = locations
            .iter()
            .find(|location| location.item_id == item_id)
        else {
            continue;
        };
        let Some(extents) = file_extents(location, idat, source.len) else {
            continue;
        };
        let (data, extents) = read_item(source, &extents)?;
        let item_patches = match kind {
            ItemKind::Exif => exif_item_patches(&data),
            ItemKind::Xmp => xmp::location_patches(&data, 0),
        };
        patches.extend(map_to_file(item_patches, &extents));
    }
    Ok(patches)
}

/// Items that may hold a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Exif,
    Xmp,
}

/// Location of one item's data, as `iloc` states it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ItemLocation {
    item_id: u32,
    /// 0: offsets in the file, 1: offsets in `idat`, 2: offsets in another item.
    construction_method: u8,
    data_reference_index: u16,
    base_offset: u64,
    /// Offset and length of each extent; a length of 0 means "to the end".
    extents: Vec<(u64, u64)>,
}

/// Resolves the extents of an item to file offsets, or `None` for data that
/// is not in this file's byte ranges.
fn file_extents(
    location: &ItemLocation,
    idat: Option<Extent>,
    file_len: u64,
) -> Option<Vec<Extent>> {
    let (start, end) = match (location.construction_method, location.data_reference_index) {
        (0, 0) => (0, file_len),
        (1, _) => {
            let idat = idat?;
            (idat.file_offset, idat.file_offset + idat.len)
        }
        _ => return None,
    };

    let mut extents = Vec::new();
    for &(offset, len) in &location.extents {
        let file_offset = start
            .checked_add(location.base_offset)?
            .checked_add(offset)?;
        if file_offset >= end {
            continue;
        }
        let available = end - file_offset;
        let len = if len == 0 {
            available
        } else {
            len.min(available)
        };
        extents.push(Extent { file_offset, len });
    }
    Some(extents)
}

/// Reads and joins the extents of an item. The returned extents have the
/// lengths actually read, which are shorter for a truncated file.
fn read_item(
    source: &mut Source,
    extents: &[Extent],
) -> Result<(Vec<u8>, Vec<Extent>), MediaError> {
    let total: u64 = extents.iter().map(|extent| extent.len).sum();
    if total > MAX_METADATA_LEN {
        let first = extents.first().map_or(0, |extent| extent.file_offset);
        return Err(source.too_large("HEIF metadata item", first, total));
    }

    let mut data = Vec::new();
    let mut read = Vec::new();
    for extent in extents {
        let piece = source.read_at(extent.file_offset, extent.len)?;
        read.push(Extent {
            file_offset: extent.file_offset,
            len: piece.len() as u64,
        });
        data.extend_from_slice(&piece);
    }
    Ok((data, read))
}

/// Patches the GPS IFD of an Exif item.
fn exif_item_patches(data: &[u8]) -> Vec<LocationPatch> {
    let Some(tiff_offset) = be_u32(data, 0) else {
        return Vec::new();
    };
    let tiff_start = 4usize.saturating_add(tiff_offset as usize);
    match data.get(tiff_start..) {
        Some(tiff) => tiff::gps_patches(tiff, tiff_start as u64),
        None => Vec::new(),
    }
}

/// Parses `iinf` into the Exif and XMP items it lists.
fn parse_iinf(body: &[u8]) -> Option<Vec<(u32, ItemKind)>> {
    let mut reader = FieldReader::new(body);
    let version = reader.u8()?;
    reader.skip(3)?;
    // The entry count; the `infe` boxes that follow are read until the end instead.
    reader.skip(if version == 0 { 2 } else { 4 })?;

    let items = boxes(reader.rest())
        .filter(|child| &child.kind == b"infe")
        .filter_map(|child| parse_infe(child.body))
        .collect();
    Some(items)
}

/// Parses one `infe` entry; `None` unless it is an Exif or XMP item.
fn parse_infe(body: &[u8]) -> Option<(u32, ItemKind)> {
    let mut reader = FieldReader::new(body);
    let version = reader.u8()?;
    reader.skip(3)?;

    if version < 2 {
        // Versions 0 and 1 have no item type: ID, protection index, name, content type.
        let item_id = u32::from(reader.u16()?);
        reader.skip(2)?;
        reader.nul_terminated()?;
        let content_type = reader.nul_terminated()?;
        return (content_type == XMP_CONTENT_TYPE).then_some((item_id, ItemKind::Xmp));
    }

    let item_id = if version == 2 {
        u32::from(reader.u16()?)
    } else {
        reader.u32()?
    };
    reader.skip(2)?;
    let item_type = reader.take(4)?;
    reader.nul_terminated()?;
    match item_type {
        b"Exif" => Some((item_id, ItemKind::Exif)),
        b"mime" if reader.nul_terminated()? == XMP_CONTENT_TYPE => Some((item_id, ItemKind::Xmp)),
        _ => None,
    }
}

/// Parses `iloc` (versions 0, 1 and 2).
fn parse_iloc(body: &[u8]) -> Option<Vec<ItemLocation>> {
    let mut reader = FieldReader::new(body);
    let version = reader.u8()?;
    reader.skip(3)?;
    let sizes = reader.u16()?;
    let offset_size = (sizes >> 12) as usize;
    let length_size = (sizes >> 8 & 0xF) as usize;
    let base_offset_size = (sizes >> 4 & 0xF) as usize;
    let index_size = if version == 1 || version == 2 {
        (sizes & 0xF) as usize
    } else {
        0
    };
    let item_count = if version < 2 {
        u32::from(reader.u16()?)
    } else {
        reader.u32()?
    };

    let mut locations = Vec::new();
    for _ in 0..item_count {
        let item_id = if version < 2 {
            u32::from(reader.u16()?)
        } else {
            reader.u32()?
        };
        let construction_method = if version == 1 || version == 2 {
            (reader.u16()? & 0xF) as u8
        } else {
            0
        };
        let data_reference_index = reader.u16()?;
        let base_offset = reader.uint(base_offset_size)?;
        let extent_count = reader.u16()?;

        let mut extents = Vec::new();
        for _ in 0..extent_count {
            reader.uint(index_size)?;
            let offset = reader.uint(offset_size)?;
            let length = reader.uint(length_size)?;
            extents.push((offset, length));
        }
        locations.push(ItemLocation {
            item_id,
            construction_method,
            data_reference_index,
            base_offset,
            extents,
        });
    }
    Some(locations)
}

/// One box inside a buffer.
struct Child<'a> {
    kind: [u8; 4],
    body: &'a [u8],
    /// Offset of `body` in the buffer.
    body_start: usize,
}

/// Iterates over the boxes that fill `data`, stopping at the first malformed one.
fn boxes(data: &[u8]) -> impl Iterator<Item = Child<'_>> {
    let mut position = 0usize;
    std::iter::from_fn(move || {
        let size = be_u32(data, position)? as usize;
        let kind: [u8; 4] = data.get(position + 4..position + 8)?.try_into().ok()?;
        let (header_len, size) = match size {
            0 => (8, data.len() - position),
            1 => (
                16,
                usize::try_from(super::be_u64(data, position + 8)?).ok()?,
            ),
            size => (8, size),
        };
        if size < header_len {
            return None;
        }
        let end = position.checked_add(size)?.min(data.len());
        let body_start = position + header_len;
        let body = data.get(body_start..end)?;
        position = end;
        Some(Child {
            kind,
            body,
            body_start,
        })
    })
}

/// Reads big-endian fields from a buffer in order.
struct FieldReader<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> FieldReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, position: 0 }
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self
            .data
            .get(self.position..self.position.checked_add(len)?)?;
        self.position += len;
        Some(bytes)
    }

    fn skip(&mut self, len: usize) -> Option<()> {
        self.take(len).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2)
            .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|bytes| u32::from_be_bytes(bytes.try_into().expect("4 bytes")))
    }

    /// Reads an unsigned field of 0, 4 or 8 bytes, the sizes `iloc` allows.
    fn uint(&mut self, len: usize) -> Option<u64> {
        match len {
            0 => Some(0),
            4 => self.u32().map(u64::from),
            8 => self
                .take(8)
                .map(|bytes| u64::from_be_bytes(bytes.try_into().expect("8 bytes"))),
            _ => None,
        }
    }

    /// Reads a NUL-terminated string and returns it without the NUL.
    fn nul_terminated(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest();
        let nul = rest.iter().position(|&byte| byte == 0)?;
        self.position += nul + 1;
        Some(&rest[..nul])
    }

    fn rest(&self) -> &'a [u8] {
        &self.data[self.position.min(self.data.len())..]
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::location::bmff::fixtures::{boxed, full_box};
    use crate::location::tiff::fixtures::{orientation, tiff_with_gps};
    use crate::location::xmp::fixtures::{PACKET, SECRETS};
    use crate::location::{location_patches, patched_copy};

    fn infe(item_id: u16, item_type: &[u8; 4], content_type: Option<&[u8]>) -> Vec<u8> {
        let mut body = vec![2, 0, 0, 0];
        body.extend_from_slice(&item_id.to_be_bytes());
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(item_type);
        body.push(0);
        if let Some(content_type) = content_type {
            body.extend_from_slice(content_type);
            body.push(0);
        }
        boxed(b"infe", &body)
    }

    /// One item of [`iloc`]: its ID, construction method and extents as (offset, length).
    type IlocItem = (u16, u16, Vec<(u32, u32)>);

    /// Builds an `iloc` of version 1 with 4-byte offsets and lengths.
    fn iloc(items: &[IlocItem]) -> Vec<u8> {
        let mut body = vec![1, 0, 0, 0, 0x44, 0x00];
        body.extend_from_slice(&(items.len() as u16).to_be_bytes());
        for (item_id, method, extents) in items {
            body.extend_from_slice(&item_id.to_be_bytes());
            body.extend_from_slice(&method.to_be_bytes());
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(&(extents.len() as u16).to_be_bytes());
            for (offset, length) in extents {
                body.extend_from_slice(&offset.to_be_bytes());
                body.extend_from_slice(&length.to_be_bytes());
            }
        }
        boxed(b"iloc", &body)
    }

    /// Builds a HEIC whose Exif item lies in `mdat` in two extents stored in
    /// reverse order, and whose XMP item lies in `idat`.
    fn heic() -> Vec<u8> {
        let exif = [&[0, 0, 0, 6], b"Exif\0\0".as_slice(), &tiff_with_gps(false)].concat();
        let split = 60;
        let ftyp = boxed(b"ftyp", b"heic\0\0\0\0mif1heic");
        let handler = full_box(b"hdlr", &[&[0; 4], b"pict".as_slice(), &[0; 13]].concat());
        let item_info = full_box(
            b"iinf",
            &[
                vec![0, 2],
                infe(1, b"Exif", None),
                infe(2, b"mime", Some(XMP_CONTENT_TYPE)),
            ]
            .concat(),
        );
        let idat = boxed(b"idat", PACKET.as_bytes());

        // The iloc offsets depend on the meta length, which the iloc does not change.
        let layout = |mdat_start: u32| {
            let tail_start = mdat_start + 8;
            let head_start = tail_start + (exif.len() - split) as u32;
            iloc(&[
                (
                    1,
                    0,
                    vec![
                        (head_start, split as u32),
                        (tail_start, (exif.len() - split) as u32),
                    ],
                ),
                (2, 1, vec![(0, PACKET.len() as u32)]),
            ])
        };
        let meta_len = full_box(
            b"meta",
            &[handler.clone(), item_info.clone(), layout(0), idat.clone()].concat(),
        )
        .len();
        let mdat_start = (ftyp.len() + meta_len) as u32;
        let meta = full_box(
            b"meta",
            &[handler, item_info, layout(mdat_start), idat].concat(),
        );
        let mdat = boxed(b"mdat", &[&exif[split..], &exif[..split]].concat());
        [ftyp, meta, mdat].concat()
    }

    #[test]
    fn exif_and_xmp_items_are_blanked() {
        let original = heic();
        let gps_count = |file: &[u8]| {
            exif::Reader::new()
                .read_from_container(&mut Cursor::new(file))
                .expect("the Exif item parses")
                .fields()
                .filter(|field| field.tag.context() == exif::Context::Gps)
                .count()
        };
        assert_eq!(gps_count(&original), 5, "the fixture has GPS fields");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("photo.heic");
        std::fs::write(&path, &original).unwrap();

        let patches = location_patches(&path).unwrap();
        let patched = patched_copy(&original, &patches);

        assert_eq!(gps_count(&patched), 0);
        let text = String::from_utf8_lossy(&patched);
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} survived");
        }
        let exif_item = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&patched))
            .unwrap();
        let orientation_value = exif_item
            .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
            .and_then(|field| field.value.get_uint(0));
        assert_eq!(orientation_value, Some(6));
        assert_eq!(orientation(&tiff_with_gps(false)), Some(6));
    }

    #[test]
    fn iloc_versions_parse() {
        let version_0 = [
            0, 0, 0, 0, 0x44, 0x40, 0, 1, 0, 7, 0, 0, 0, 0, 0, 100, 0, 1, 0, 0, 0, 5, 0, 0, 0, 9,
        ];
        let version_2 = [
            2, 0, 0, 0, 0x88, 0x00, 0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
            5, 0, 0, 0, 0, 0, 0, 0, 9,
        ];

        let expected = |method, base| ItemLocation {
            item_id: 7,
            construction_method: method,
            data_reference_index: 0,
            base_offset: base,
            extents: vec![(5, 9)],
        };
        assert_eq!(parse_iloc(&version_0), Some(vec![expected(0, 100)]));
        assert_eq!(parse_iloc(&version_2), Some(vec![expected(1, 0)]));
        assert_eq!(parse_iloc(&version_0[..20]), None);
    }

    #[test]
    fn items_outside_the_file_are_skipped() {
        let external = ItemLocation {
            item_id: 1,
            construction_method: 0,
            data_reference_index: 1,
            base_offset: 0,
            extents: vec![(0, 10)],
        };
        let by_item = ItemLocation {
            construction_method: 2,
            data_reference_index: 0,
            ..external.clone()
        };
        let past_end = ItemLocation {
            data_reference_index: 0,
            extents: vec![(500, 10)],
            ..external.clone()
        };

        assert_eq!(file_extents(&external, None, 100), None);
        assert_eq!(file_extents(&by_item, None, 100), None);
        assert_eq!(file_extents(&past_end, None, 100), Some(Vec::new()));
    }
}
