//! Location boxes of ISO base media files (ISO/IEC 14496-12) and QuickTime
//! movies: `©xyz` and `loci` in user data, location keys of `mdta` metadata,
//! `©xyz` items of iTunes metadata, XMP, and the items of a HEIF `meta` box.
//!
//! The walk reads box headers and seeks past everything else, so `mdat` is
//! never read. It descends only into the boxes that hold metadata:
//!
//! ```text
//! moov ─┬─ udta ─┬─ ©xyz, loci, XMP_
//!       │        └─ meta ─ keys, ilst
//!       ├─ meta ─ keys, ilst
//!       └─ trak ─┬─ udta ─ (as above)
//!                └─ meta ─ keys, ilst
//! meta (top level, HEIF) ─ iinf, iloc, idat
//! uuid (top level, XMP)
//! ```

use super::{LocationPatch, MAX_METADATA_LEN, Source, be_u32, be_u64, heif, xmp, zeros};
use crate::MediaError;

/// Type of the QuickTime user-data box with an ISO 6709 location string.
const XYZ: &[u8; 4] = b"\xA9xyz";

/// Extended type of the `uuid` box that carries XMP (XMP part 3, section 1.1.6).
const XMP_UUID: [u8; 16] = [
    0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC,
];

/// Most boxes walked in one file. A fragmented movie has two top-level boxes
/// per fragment, so ten hours in one-second fragments need 72,000; more
/// than this marks a hostile file.
const MAX_BOXES: usize = 1_000_000;

/// Walks the boxes of the file and returns the patches of every location record.
pub(super) fn patches(source: &mut Source) -> Result<Vec<LocationPatch>, MediaError> {
    let end = source.len;
    let mut walk = Walk {
        source,
        patches: Vec::new(),
        boxes_seen: 0,
    };

    let mut offset = 0;
    while let Some(top) = walk.next_box(offset, end)? {
        match &top.kind {
            b"moov" => walk.movie(&top)?,
            b"meta" => {
                walk.meta(&top)?;
                let items = heif::item_patches(walk.source, &top)?;
                walk.patches.extend(items);
            }
            b"uuid" if top.user_type == Some(XMP_UUID) => walk.xmp(&top)?,
            _ => {}
        }
        offset = top.end;
    }
    Ok(walk.patches)
}

/// Header of one box and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BoxHeader {
    /// File offset of the box.
    pub(super) offset: u64,
    pub(super) kind: [u8; 4],
    /// Whether the size is the 64-bit `largesize` after the type.
    large: bool,
    /// Extended type of a `uuid` box.
    user_type: Option<[u8; 16]>,
    /// File offset just past the box, never past its parent.
    pub(super) end: u64,
}

impl BoxHeader {
    /// File offset of the payload, after size, type, `largesize` and extended type.
    pub(super) fn payload_offset(&self) -> u64 {
        let size_fields = if self.large { 16 } else { 8 };
        let user_type = if self.user_type.is_some() { 16 } else { 0 };
        self.offset + size_fields + user_type
    }

    pub(super) fn payload_len(&self) -> u64 {
        self.end.saturating_sub(self.payload_offset())
    }
}

/// State of one walk: the file and the patches found so far.
struct Walk<'a> {
    source: &'a mut Source,
    patches: Vec<LocationPatch>,
    boxes_seen: usize,
}

impl Walk<'_> {
    /// Reads the header of the box at `offset` inside a parent that ends at
    /// `parent_end`; `None` when no further box fits or the size is invalid.
    fn next_box(&mut self, offset: u64, parent_end: u64) -> Result<Option<BoxHeader>, MediaError> {
        if offset.saturating_add(8) > parent_end {
            return Ok(None);
        }
        self.boxes_seen += 1;
        if self.boxes_seen > MAX_BOXES {
            return Err(MediaError::Corrupt {
                path: self.source.path.clone(),
                reason: format!("it has more than {MAX_BOXES} ISO BMFF boxes"),
            });
        }

        let header = self.source.read_at(offset, 32)?;
        if header.len() < 8 {
            return Ok(None);
        }
        let size = be_u32(&header, 0).expect("the header has 8 bytes");
        let kind: [u8; 4] = header[4..8].try_into().expect("the header has 8 bytes");
        let (large, size) = match size {
            // Size 0: the box runs to the end of its parent.
            0 => (false, parent_end - offset),
            1 => match be_u64(&header, 8) {
                Some(size) => (true, size),
                None => return Ok(None),
            },
            size => (false, u64::from(size)),
        };
        let user_type = if &kind == b"uuid" {
            let at = if large { 16 } else { 8 };
            match header.get(at..at + 16) {
                Some(bytes) => Some(bytes.try_into().expect("16 bytes")),
                None => return Ok(None),
            }
        } else {
            None
        };

        let mut header = BoxHeader {
            offset,
            kind,
            large,
            user_type,
            end: offset.saturating_add(size),
        };
        if size < header.payload_offset() - offset {
            return Ok(None);
        }
        // A box cut off by the end of the file or its parent is walked as far as it goes.
        header.end = header.end.min(parent_end);
        Ok(Some(header))
    }

    /// Calls `visit` for each child of the boxes in `start..end`.
    fn each_child(
        &mut self,
        start: u64,
        end: u64,
        mut visit: impl FnMut(&mut Self, BoxHeader) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        let mut offset = start;
        while let Some(child) = self.next_box(offset, end)? {
            visit(self, child)?;
            offset = child.end;
        }
        Ok(())
    }

    fn movie(&mut self, moov: &BoxHeader) -> Result<(), MediaError> {
        self.each_child(
            moov.payload_offset(),
            moov.end,
            |walk, child| match &child.kind {
                b"udta" => walk.user_data(&child),
                b"meta" => walk.meta(&child),
                b"trak" => {
                    walk.each_child(child.payload_offset(), child.end, |walk, grandchild| {
                        match &grandchild.kind {
                            b"udta" => walk.user_data(&grandchild),
                            b"meta" => walk.meta(&grandchild),
                            _ => Ok(()),
                        }
                    })
                }
                _ => Ok(()),
            },
        )
    }

    fn user_data(&mut self, udta: &BoxHeader) -> Result<(), MediaError> {
        self.each_child(
            udta.payload_offset(),
            udta.end,
            |walk, child| match &child.kind {
                XYZ | b"loci" => walk.remove(&child),
                b"meta" => walk.meta(&child),
                b"XMP_" => walk.xmp(&child),
                _ => Ok(()),
            },
        )
    }

    /// Walks a `meta` box: `keys` names the items of `ilst` in `mdta`
    /// metadata, and `ilst` contains the items.
    fn meta(&mut self, meta: &BoxHeader) -> Result<(), MediaError> {
        // ISO `meta` is a full box with version and flags before its
        // children. QuickTime's is a plain box whose first child is `hdlr`.
        let probe = self.source.read_at(meta.payload_offset(), 8)?;
        let children_start = if probe.get(4..8) == Some(b"hdlr") {
            meta.payload_offset()
        } else {
            meta.payload_offset() + 4
        };

        let mut keys = Vec::new();
        let mut item_lists = Vec::new();
        self.each_child(children_start, meta.end, |walk, child| {
            match &child.kind {
                b"keys" => keys = walk.key_names(&child)?,
                b"ilst" => item_lists.push(child),
                _ => {}
            }
            Ok(())
        })?;

        for ilst in item_lists {
            self.each_child(ilst.payload_offset(), ilst.end, |walk, item| {
                // In `mdta` metadata an item's type is the 1-based index of its key.
                let key = (u32::from_be_bytes(item.kind) as usize)
                    .checked_sub(1)
                    .and_then(|index| keys.get(index));
                if &item.kind == XYZ || key.is_some_and(|key| is_location_key(key)) {
                    walk.remove(&item)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Reads the key names of a `keys` box: a full box with an entry count,
    /// then per key its size, a namespace and the name.
    fn key_names(&mut self, keys: &BoxHeader) -> Result<Vec<Vec<u8>>, MediaError> {
        let data = self
            .source
            .read_at(keys.payload_offset(), keys.payload_len())?;
        let count = be_u32(&data, 4).unwrap_or(0);

        let mut names = Vec::new();
        let mut position = 8usize;
        for _ in 0..count {
            let Some(size) = be_u32(&data, position).map(|size| size as usize) else {
                break;
            };
            let Some(name) = data.get(position + 8..position.saturating_add(size)) else {
                break;
            };
            if size < 8 {
                break;
            }
            names.push(name.to_vec());
            position += size;
        }
        Ok(names)
    }

    /// Turns a box into a `free` box with a zeroed payload, so readers skip it.
    fn remove(&mut self, target: &BoxHeader) -> Result<(), MediaError> {
        // The size fields stay; everything after them, an extended type included, is zeroed.
        let zero_from = target.offset + if target.large { 16 } else { 8 };
        let zero_len = target.end.saturating_sub(zero_from);
        if zero_len > MAX_METADATA_LEN {
            return Err(self
                .source
                .too_large("location box", target.offset, zero_len));
        }

        self.patches.push(LocationPatch {
            offset: target.offset + 4,
            bytes: b"free".to_vec(),
        });
        self.patches.push(zeros(zero_from, zero_len as usize));
        Ok(())
    }

    fn xmp(&mut self, target: &BoxHeader) -> Result<(), MediaError> {
        let data = self
            .source
            .read_at(target.payload_offset(), target.payload_len())?;
        self.patches
            .extend(xmp::location_patches(&data, target.payload_offset()));
        Ok(())
    }
}

/// Checks whether an `mdta` key names a location, such as
/// `com.apple.quicktime.location.ISO6709` or the `location-eng` that FFmpeg writes.
fn is_location_key(key: &[u8]) -> bool {
    let lower = key.to_ascii_lowercase();
    let contains = |needle: &[u8]| lower.windows(needle.len()).any(|window| window == needle);
    contains(b"location") || contains(b"iso6709") || contains(b"gps") || key.ends_with(b"\xA9xyz")
}

#[cfg(test)]
pub(super) mod fixtures {
    /// Builds a box of type `kind` around `payload`.
    pub(crate) fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut bytes = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(kind);
        bytes.extend_from_slice(payload);
        bytes
    }

    /// Builds a full box (version 0, flags 0) of type `kind` around `payload`.
    pub(crate) fn full_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        boxed(kind, &[&[0, 0, 0, 0], payload].concat())
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{boxed, full_box};
    use super::*;
    use crate::location::{location_patches, patched_copy};

    const PLACE: &[u8] = b"-15.8355-048.0153/";

    fn xyz_box() -> Vec<u8> {
        let mut payload = (PLACE.len() as u16).to_be_bytes().to_vec();
        payload.extend_from_slice(&0x15C7u16.to_be_bytes());
        payload.extend_from_slice(PLACE);
        boxed(XYZ, &payload)
    }

    fn mdta_meta(keys: &[&[u8]], values: &[&[u8]]) -> Vec<u8> {
        let handler = full_box(b"hdlr", &[&[0; 4], b"mdta".as_slice(), &[0; 13]].concat());
        let mut key_list = (keys.len() as u32).to_be_bytes().to_vec();
        for key in keys {
            key_list.extend_from_slice(&((key.len() + 8) as u32).to_be_bytes());
            key_list.extend_from_slice(b"mdta");
            key_list.extend_from_slice(key);
        }
        let mut items = Vec::new();
        for (index, value) in values.iter().enumerate() {
            let data = boxed(b"data", &[&[0, 0, 0, 1, 0, 0, 0, 0], *value].concat());
            items.extend(boxed(&(index as u32 + 1).to_be_bytes(), &data));
        }
        full_box(
            b"meta",
            &[
                handler,
                full_box(b"keys", &key_list),
                boxed(b"ilst", &items),
            ]
            .concat(),
        )
    }

    fn patch_file(bytes: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("movie.mp4");
        std::fs::write(&path, bytes).unwrap();
        let patches = location_patches(&path).unwrap();
        patched_copy(bytes, &patches)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    #[test]
    fn user_data_location_boxes_become_free() {
        let loci = full_box(
            b"loci",
            &[0x15, 0xC7, b'h', b'o', b'm', b'e', 0, 0, 1, 2, 3, 4],
        );
        let udta = boxed(
            b"udta",
            &[xyz_box(), loci, boxed(b"\xA9too", b"\0\x04\x15\xC7Lavf")].concat(),
        );
        let moov = boxed(b"moov", &[boxed(b"mvhd", &[0; 100]), udta].concat());
        let original = [
            boxed(b"ftyp", b"mp42\0\0\0\0isom"),
            moov,
            boxed(b"mdat", &[7; 64]),
        ]
        .concat();

        let patched = patch_file(&original);

        assert_eq!(patched.len(), original.len());
        assert!(!contains(&patched, PLACE));
        assert!(!contains(&patched, b"home"));
        assert!(!contains(&patched, XYZ));
        assert!(!contains(&patched, b"loci"));
        assert!(
            contains(&patched, b"\xA9too\0\x04\x15\xC7Lavf"),
            "other user data stays"
        );
        assert_eq!(patched[patched.len() - 64..], [7; 64], "mdat is untouched");
    }

    #[test]
    fn mdta_location_item_is_removed() {
        let meta = mdta_meta(
            &[
                b"com.apple.quicktime.make",
                b"com.apple.quicktime.location.ISO6709",
            ],
            &[b"Apple", b"+48.8577+002.2950+035.000/"],
        );
        let trak = boxed(b"trak", &boxed(b"udta", &xyz_box()));
        let original = [
            boxed(b"ftyp", b"qt  \0\0\0\0qt  "),
            boxed(b"moov", &[meta, trak].concat()),
        ]
        .concat();

        let patched = patch_file(&original);

        assert!(!contains(&patched, b"+48.8577"));
        assert!(
            !contains(&patched, PLACE),
            "the track's user data is walked"
        );
        assert!(contains(&patched, b"Apple"));
        assert!(
            contains(&patched, b"com.apple.quicktime.location.ISO6709"),
            "keys stay"
        );
    }

    #[test]
    fn moov_after_large_mdat_is_found() {
        let mut mdat = 1u32.to_be_bytes().to_vec();
        mdat.extend_from_slice(b"mdat");
        mdat.extend_from_slice(&(16u64 + 32).to_be_bytes());
        mdat.extend_from_slice(&[9; 32]);
        let moov = boxed(b"moov", &boxed(b"udta", &xyz_box()));
        let original = [boxed(b"ftyp", b"mp42\0\0\0\0"), mdat, moov].concat();

        let patched = patch_file(&original);

        assert!(!contains(&patched, PLACE));
    }

    #[test]
    fn xmp_uuid_box_is_blanked() {
        let xml = b"<d exif:GPSLatitude=\"15,50.1353S\"/>";
        let payload = [XMP_UUID.as_slice(), xml].concat();
        let original = [boxed(b"ftyp", b"mp42\0\0\0\0"), boxed(b"uuid", &payload)].concat();

        let patched = patch_file(&original);

        assert!(!contains(&patched, b"15,50"));
        assert!(contains(&patched, b"exif:GPSLatitude=\""));
    }

    #[test]
    fn malformed_boxes_yield_no_panic() {
        let cases: [Vec<u8>; 5] = [
            boxed(b"ftyp", b"mp42"),
            [
                boxed(b"ftyp", b"mp42"),
                4u32.to_be_bytes().to_vec(),
                b"moov".to_vec(),
            ]
            .concat(),
            [boxed(b"ftyp", b"mp42"), boxed(b"moov", &[0xFF; 12])].concat(),
            [
                boxed(b"ftyp", b"mp42"),
                boxed(
                    b"moov",
                    &boxed(b"udta", &[0, 0, 0, 1, 0xA9, b'x', b'y', b'z']),
                ),
            ]
            .concat(),
            [
                boxed(b"ftyp", b"mp42"),
                boxed(
                    b"moov",
                    &full_box(
                        b"meta",
                        &boxed(b"keys", &[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
                    ),
                ),
            ]
            .concat(),
        ];
        for case in cases {
            let _ = patch_file(&case);
        }
    }
}
