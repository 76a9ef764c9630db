//! Same-length patches applied to the bytes of a file as they stream out.
//!
//! A patch replaces bytes in place and never changes the length, so the size,
//! every range and every multipart layout of the patched representation are
//! those of the file. Chunks are copied only where a patch overlaps them.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hearth_media::LocationPatch;

/// The patches of one representation, sorted by offset and not overlapping,
/// cheap to clone into each body stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct PatchSet {
    patches: Arc<[LocationPatch]>,
}

impl PatchSet {
    /// Sorts `patches` and merges overlapping ones. Where two overlap, the
    /// one that starts later wins, and of two that start at the same offset,
    /// the one later in `patches`.
    pub(crate) fn new(patches: &[LocationPatch]) -> Self {
        let mut sorted: Vec<&LocationPatch> = patches
            .iter()
            .filter(|patch| !patch.bytes.is_empty())
            .collect();
        sorted.sort_by_key(|patch| patch.offset);

        let mut merged: Vec<LocationPatch> = Vec::with_capacity(sorted.len());
        for patch in sorted {
            match merged.last_mut() {
                Some(last) if patch.offset < end_of(last) => {
                    let start = (patch.offset - last.offset) as usize;
                    let end = start + patch.bytes.len();
                    if end > last.bytes.len() {
                        last.bytes.resize(end, 0);
                    }
                    last.bytes[start..end].copy_from_slice(&patch.bytes);
                }
                _ => merged.push(patch.clone()),
            }
        }
        Self {
            patches: merged.into(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.patches.is_empty()
    }

    /// Applies the patches that overlap `chunk`, whose first byte is at file
    /// offset `offset`. Returns `chunk` itself when none does.
    pub(crate) fn apply(&self, offset: u64, chunk: Bytes) -> Bytes {
        let chunk_end = offset + chunk.len() as u64;
        // The patches do not overlap, so their ends rise with their offsets.
        let first = self
            .patches
            .partition_point(|patch| end_of(patch) <= offset);

        let mut copy: Option<BytesMut> = None;
        for patch in &self.patches[first..] {
            if patch.offset >= chunk_end {
                break;
            }
            let copy = copy.get_or_insert_with(|| BytesMut::from(&chunk[..]));
            let from = patch.offset.max(offset);
            let to = end_of(patch).min(chunk_end);
            let target = (from - offset) as usize..(to - offset) as usize;
            let source = (from - patch.offset) as usize..(to - patch.offset) as usize;
            copy[target].copy_from_slice(&patch.bytes[source]);
        }
        copy.map_or(chunk, BytesMut::freeze)
    }
}

/// File offset just past the last byte a patch replaces.
fn end_of(patch: &LocationPatch) -> u64 {
    patch.offset + patch.bytes.len() as u64
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

    /// Applies `set` to `content` cut into chunks of `chunk_len`, starting at `first`.
    fn apply_in_chunks(set: &PatchSet, content: &[u8], first: usize, chunk_len: usize) -> Vec<u8> {
        let mut output = Vec::new();
        for (index, chunk) in content[first..].chunks(chunk_len).enumerate() {
            let offset = (first + index * chunk_len) as u64;
            output.extend_from_slice(&set.apply(offset, Bytes::copy_from_slice(chunk)));
        }
        output
    }

    #[test]
    fn patches_straddling_chunks_apply_exactly() {
        let content = vec![b'.'; 40];
        let set = PatchSet::new(&[patch(30, b"CCCC"), patch(3, b"AAAAAAA"), patch(15, b"B")]);
        let mut expected = content.clone();
        expected[3..10].copy_from_slice(b"AAAAAAA");
        expected[15] = b'B';
        expected[30..34].copy_from_slice(b"CCCC");

        for chunk_len in 1..=41 {
            for first in [0, 4, 12, 31] {
                let output = apply_in_chunks(&set, &content, first, chunk_len);
                assert_eq!(
                    output,
                    expected[first..],
                    "chunks of {chunk_len} from {first}"
                );
            }
        }
    }

    #[test]
    fn overlapping_patches_merge_with_later_start_winning() {
        let set = PatchSet::new(&[
            patch(0, b"aaaa"),
            patch(2, b"bbbb"),
            patch(7, b""),
            patch(1, b"c"),
        ]);

        assert_eq!(set.patches.as_ref(), [patch(0, b"acbbbb")]);
    }

    #[test]
    fn chunk_without_patch_is_not_copied() {
        let set = PatchSet::new(&[patch(100, b"x")]);
        let chunk = Bytes::from_static(b"untouched");

        let output = set.apply(0, chunk.clone());

        assert_eq!(output.as_ptr(), chunk.as_ptr());
    }

    #[test]
    fn patch_past_the_chunk_end_is_cut() {
        let set = PatchSet::new(&[patch(8, b"XYZW")]);

        let output = set.apply(0, Bytes::from_static(b"0123456789"));

        assert_eq!(&output[..], b"01234567XY");
    }
}
