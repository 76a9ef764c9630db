//! Decoding subtitle files, whose character set is never declared.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

/// Bytes at the start of a file that are checked for UTF-16 without a byte
/// order mark.
const UTF16_SNIFF_LEN: usize = 4096;

/// Decodes `bytes` to text and returns it with the name of the encoding used.
///
/// A byte order mark (UTF-8, UTF-16LE, UTF-16BE) decides first and is
/// removed. Then valid UTF-8 stays UTF-8, text whose every other byte is zero
/// is UTF-16 without a mark, and anything else is decoded from the legacy
/// encoding that `chardetng` guesses (windows-1252 for most Western European
/// text). Invalid sequences become U+FFFD.
pub(super) fn decode(bytes: &[u8]) -> (String, &'static str) {
    let encoding = detect(bytes);
    let (text, used, _had_errors) = encoding.decode(bytes);
    (text.into_owned(), used.name())
}

fn detect(bytes: &[u8]) -> &'static Encoding {
    if let Some((encoding, _bom_len)) = Encoding::for_bom(bytes) {
        return encoding;
    }
    if std::str::from_utf8(bytes).is_ok() {
        return UTF_8;
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        return encoding;
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    detector.guess(None, Utf8Detection::Allow)
}

/// Recognises UTF-16 text without a byte order mark: mostly ASCII text has a
/// zero byte in every other position. Returns `None` when fewer than 90% of
/// the high bytes in the first 4 KiB are zero.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(UTF16_SNIFF_LEN)];
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let zeros_at = |offset: usize| {
        head.iter()
            .skip(offset)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
    };
    let (even_zeros, odd_zeros) = (zeros_at(0), zeros_at(1));
    let mostly_zero = |zeros: usize| zeros * 10 >= pairs * 9;
    if mostly_zero(odd_zeros) && even_zeros == 0 {
        Some(UTF_16LE)
    } else if mostly_zero(even_zeros) && odd_zeros == 0 {
        Some(UTF_16BE)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_french() {
        let bytes = b"\xC7a va tr\xE8s bien, d\xE9j\xE0 vu. Le c\x9Cur a ses raisons.";
        let (text, name) = decode(bytes);
        assert_eq!(name, "windows-1252");
        assert_eq!(text, "Ça va très bien, déjà vu. Le cœur a ses raisons.");
    }

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(decode("déjà".as_bytes()), ("déjà".to_owned(), "UTF-8"));
        assert_eq!(
            decode(b"\xEF\xBB\xBFd\xC3\xA9j\xC3\xA0"),
            ("déjà".to_owned(), "UTF-8")
        );
    }

    #[test]
    fn utf16_with_bom() {
        let mut le = vec![0xFF, 0xFE];
        le.extend("Grüße 日本".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(&le), ("Grüße 日本".to_owned(), "UTF-16LE"));

        let mut be = vec![0xFE, 0xFF];
        be.extend("Grüße 日本".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be), ("Grüße 日本".to_owned(), "UTF-16BE"));
    }

    #[test]
    fn utf16_without_bom_is_recognised() {
        let text = "1\r\n00:00:01,000 --> 00:00:02,000\r\nÇa va\r\n";
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(decode(&le), (text.to_owned(), "UTF-16LE"));
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(decode(&be), (text.to_owned(), "UTF-16BE"));
    }

    #[test]
    fn empty_input_is_utf8() {
        assert_eq!(decode(b""), (String::new(), "UTF-8"));
    }
}
