//! Detection of files cut short, from sizes that container headers declare.
//!
//! GStreamer's discoverer reads only headers, so a Matroska or AVI file whose
//! header survived but whose media data was cut off still "discovers" with its
//! full duration. Matroska (EBML), RIFF (AVI, WAV) and ISO BMFF (MP4, MOV)
//! headers state how many bytes follow, so comparing that with the file length
//! catches incomplete copies and downloads without decoding anything.
//! Containers without a declared size (Ogg, MPEG-PS, MP3) are left to GStreamer.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// Maximum number of top-level ISO BMFF boxes walked; real files have a handful.
const MAX_TOP_LEVEL_BOXES: usize = 1024;

/// Returns a reason when a header in `head` declares more bytes than `file_len`.
///
/// `file` is read only for ISO BMFF, whose top-level boxes follow one another
/// through the whole file. Read errors there are not reported, because the
/// discoverer will read the same bytes and report them properly.
pub(crate) fn truncation_reason(head: &[u8], file: &mut File, file_len: u64) -> Option<String> {
    let (container, declared_end) = if let Some(end) = ebml_declared_end(head) {
        ("Matroska", end)
    } else if let Some(end) = riff_declared_end(head) {
        // RIFF pads odd-sized chunks with one byte that some writers omit.
        ("RIFF", end.saturating_sub(1))
    } else if head.get(4..8) == Some(b"ftyp") {
        ("MP4", isobmff_declared_end(file, file_len)?)
    } else {
        return None;
    };

    if declared_end <= file_len {
        return None;
    }
    Some(format!(
        "the file has {file_len} bytes but its {container} header declares {declared_end}; \
         it was probably cut off while being copied or downloaded"
    ))
}

/// Returns where the Matroska segment ends, or `None` when `head` is not EBML
/// or the segment size is "unknown" (as written by live recorders).
fn ebml_declared_end(head: &[u8]) -> Option<u64> {
    const EBML_ID: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];
    const SEGMENT_ID: [u8; 4] = [0x18, 0x53, 0x80, 0x67];

    if head.get(..4)? != EBML_ID {
        return None;
    }
    let (header_size, size_len) = read_vint(head, 4)?;
    let segment_at = 4 + size_len as u64 + header_size?;

    let segment_at = usize::try_from(segment_at).ok()?;
    if head.get(segment_at..segment_at + 4)? != SEGMENT_ID {
        return None;
    }
    let (segment_size, size_len) = read_vint(head, segment_at + 4)?;
    Some(segment_at as u64 + 4 + size_len as u64 + segment_size?)
}

/// Reads an EBML variable-length integer at `at`: returns the value (`None`
/// when all value bits are set, which EBML defines as "unknown") and its length.
fn read_vint(bytes: &[u8], at: usize) -> Option<(Option<u64>, usize)> {
    let first = *bytes.get(at)?;
    if first == 0 {
        return None;
    }
    let len = first.leading_zeros() as usize + 1;
    // The length marker bit and the zeros before it are not part of the value.
    let mut value = u64::from(first & 0xFFu8.checked_shr(len as u32).unwrap_or(0));
    for byte in bytes.get(at + 1..at + len)? {
        value = (value << 8) | u64::from(*byte);
    }
    let all_ones = (1u64 << (7 * len)) - 1;
    let value = if value == all_ones { None } else { Some(value) };
    Some((value, len))
}

/// Returns where a RIFF file ends according to its header, or `None` when
/// `head` is not RIFF or the size field contains a streaming placeholder.
fn riff_declared_end(head: &[u8]) -> Option<u64> {
    if head.get(..4)? != b"RIFF" {
        return None;
    }
    let size = u32::from_le_bytes(head.get(4..8)?.try_into().ok()?);
    // Writers that cannot seek back leave 0 or 0xFFFFFFFF here.
    if size == 0 || size == u32::MAX {
        return None;
    }
    Some(8 + u64::from(size))
}

/// Returns where the last top-level ISO BMFF box ends, or `None` when the box
/// structure cannot be followed.
fn isobmff_declared_end(file: &mut File, file_len: u64) -> Option<u64> {
    let mut offset = 0u64;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        if offset >= file_len {
            return Some(offset);
        }

        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut header = [0u8; 16];
        let read = read_up_to(file, &mut header)?;
        if read < 8 {
            // A few stray bytes after the last box: not a size declaration.
            return Some(offset);
        }

        // Box types are four printable characters ("mdat", "moov"). Anything
        // else is trailing junk, not a box that declares a size.
        let is_box_type = header[4..8]
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b' ');
        if !is_box_type {
            return Some(offset);
        }

        let size32 = u32::from_be_bytes(header[..4].try_into().ok()?);
        let size = match size32 {
            // The box extends to the end of the file.
            0 => return Some(file_len),
            1 if read == 16 => u64::from_be_bytes(header[8..16].try_into().ok()?),
            1 => return None,
            _ => u64::from(size32),
        };
        if size < 8 {
            return None;
        }

        let end = offset.checked_add(size)?;
        if end > file_len {
            return Some(end);
        }
        offset = end;
    }
    None
}

fn read_up_to(file: &mut File, buffer: &mut [u8]) -> Option<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    Some(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vint_lengths_and_unknown_size() {
        assert_eq!(read_vint(&[0x81], 0), Some((Some(1), 1)));
        assert_eq!(read_vint(&[0x40, 0x02], 0), Some((Some(2), 2)));
        assert_eq!(read_vint(&[0xFF], 0), Some((None, 1)));
        assert_eq!(
            read_vint(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], 0),
            Some((None, 8))
        );
        assert_eq!(read_vint(&[0x00], 0), None);
        assert_eq!(read_vint(&[0x40], 0), None);
    }

    #[test]
    fn ebml_segment_end_is_found() {
        // EBML header with 3 payload bytes, then a segment whose two-byte
        // size 0x50 0x00 (marker bit 0x40 cleared) declares 0x1000 bytes.
        let head = [
            0x1A, 0x45, 0xDF, 0xA3, 0x83, 1, 2, 3, 0x18, 0x53, 0x80, 0x67, 0x50, 0x00,
        ];
        assert_eq!(ebml_declared_end(&head), Some(8 + 4 + 2 + 0x1000));
    }

    fn mp4_file(bytes: &[u8]) -> (File, u64) {
        use std::io::Write;
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        (file, bytes.len() as u64)
    }

    fn mp4_box(kind: &[u8; 4], declared_len: u32, body_len: usize) -> Vec<u8> {
        let mut out = declared_len.to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend(std::iter::repeat_n(0u8, body_len));
        out
    }

    #[test]
    fn mp4_cut_inside_mdat_is_truncated() {
        let bytes = [mp4_box(b"ftyp", 16, 8), mp4_box(b"mdat", 1000, 100)].concat();
        let (mut file, len) = mp4_file(&bytes);
        let reason = truncation_reason(&bytes, &mut file, len).unwrap();
        assert!(reason.contains("declares 1016"), "{reason}");
    }

    #[test]
    fn complete_mp4_and_trailing_junk_are_not_truncated() {
        let complete = [mp4_box(b"ftyp", 16, 8), mp4_box(b"mdat", 108, 100)].concat();
        let (mut file, len) = mp4_file(&complete);
        assert_eq!(truncation_reason(&complete, &mut file, len), None);

        let junk = [complete, vec![0xFF; 12]].concat();
        let (mut file, len) = mp4_file(&junk);
        assert_eq!(truncation_reason(&junk, &mut file, len), None);
    }

    #[test]
    fn riff_placeholder_size_is_ignored() {
        assert_eq!(riff_declared_end(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(riff_declared_end(b"RIFF\xff\xff\xff\xffWAVE"), None);
        assert_eq!(riff_declared_end(b"RIFF\x10\0\0\0WAVE"), Some(24));
    }
}
