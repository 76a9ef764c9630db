//! The sealed file format.
//!
//! ```text
//! offset     size  field
//! 0          8     magic "HEARTHSK"
//! 8          1     format version (1)
//! 9          1     AEAD id (1 = XChaCha20-Poly1305)
//! 10         1     key name length n (1 to 64)
//! 11         n     key name, ASCII [a-z0-9-]
//! 11+n       4     key version, big-endian u32
//! 15+n       8     created at, milliseconds since the Unix epoch, big-endian u64
//! 23+n       24    nonce, random
//! 47+n       m+16  ciphertext of the m-byte secret, then the Poly1305 tag
//! ```
//!
//! Bytes 0 to 23+n are the header, which is the AEAD's associated data: a
//! changed name, version or time fails authentication like a changed
//! ciphertext does. XChaCha20-Poly1305 takes a 192-bit nonce, so random nonces
//! never repeat in practice. It also runs in constant time in software, on
//! processors without AES instructions such as some low-end ARM chips.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{Key, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::KeyStoreError;

/// The first bytes of every sealed file.
const MAGIC: [u8; 8] = *b"HEARTHSK";
/// The format this code writes and reads.
const FORMAT_VERSION: u8 = 1;
/// AEAD id of XChaCha20-Poly1305, the only AEAD this format version defines.
const AEAD_XCHACHA20_POLY1305: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Magic, format version, AEAD id and name length.
const FIXED_PREFIX_LEN: usize = 11;
/// Key version and creation time after the name.
const FIXED_SUFFIX_LEN: usize = 12;

/// Maximum key name length in bytes.
pub(super) const MAX_NAME_LEN: usize = 64;
/// Maximum secret length in bytes. The largest ML-DSA private key (ML-DSA-87,
/// FIPS 204) is 4,896 bytes, so this leaves room for any key and a certificate
/// chain.
pub(super) const MAX_SECRET_LEN: usize = 1 << 20;
/// Maximum sealed file length in bytes.
pub(super) const MAX_FILE_LEN: u64 =
    (FIXED_PREFIX_LEN + MAX_NAME_LEN + FIXED_SUFFIX_LEN + NONCE_LEN + MAX_SECRET_LEN + TAG_LEN)
        as u64;

/// The authenticated header of a sealed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Header {
    /// Key name; validated by the caller before sealing.
    pub name: String,
    /// Key version; 0 is the KEK check file.
    pub version: u32,
    /// Creation time in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

/// The AEAD under a KEK, ready to seal and open files.
pub(super) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// Builds the AEAD from a 256-bit KEK. The cipher keeps its own copy of the
    /// key and zeroizes it on drop.
    pub fn new(kek: &Zeroizing<[u8; 32]>) -> Self {
        let key: &Key = (&**kek).into();
        Self { cipher: XChaCha20Poly1305::new(key) }
    }

    /// Seals `secret` under `header` and returns the file's bytes.
    pub fn seal(&self, header: &Header, secret: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|source| KeyStoreError::Random { source })?;
        let header_bytes = encode_header(header);

        // The capacity covers the tag, so the buffer never reallocates and
        // leaves no copy of the plaintext behind in freed memory.
        let body_start = header_bytes.len() + NONCE_LEN;
        let mut file = Vec::with_capacity(body_start + secret.len() + TAG_LEN);
        file.extend_from_slice(&header_bytes);
        file.extend_from_slice(&nonce);
        file.extend_from_slice(secret);

        let tag = self
            .cipher
            .encrypt_inout_detached(
                &XNonce::from(nonce),
                &header_bytes,
                file[body_start..].as_mut().into(),
            )
            .map_err(|_| KeyStoreError::InvalidSecret {
                name: header.name.clone(),
                len: secret.len(),
                max: MAX_SECRET_LEN,
            })?;
        file.extend_from_slice(&tag);
        Ok(file)
    }

    /// Parses and decrypts a sealed file read from `path`.
    ///
    /// A file that does not parse is [`KeyStoreError::Malformed`]; one that
    /// parses but fails authentication is [`KeyStoreError::Decrypt`].
    pub fn open(
        &self,
        path: &Path,
        kek_name: &'static str,
        file: &[u8],
    ) -> Result<(Header, Zeroizing<Vec<u8>>), KeyStoreError> {
        let malformed = |reason: String| KeyStoreError::Malformed { path: path.to_owned(), reason };

        let (header, header_len) = parse_header(file).map_err(malformed)?;
        let rest = &file[header_len..];
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(malformed(format!(
                "file is truncated: {} bytes after the header, expected at least {}",
                rest.len(),
                NONCE_LEN + TAG_LEN
            )));
        }

        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let nonce = XNonce::try_from(nonce).expect("split_at gave exactly NONCE_LEN bytes");
        let tag = Tag::try_from(tag).expect("split_at gave exactly TAG_LEN bytes");

        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        self.cipher
            .decrypt_inout_detached(
                &nonce,
                &file[..header_len],
                plaintext.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| KeyStoreError::Decrypt { path: path.to_owned(), kek: kek_name })?;
        Ok((header, plaintext))
    }
}

/// Converts a time to milliseconds since the Unix epoch.
pub(super) fn to_unix_ms(time: SystemTime) -> Result<u64, KeyStoreError> {
    let since_epoch =
        time.duration_since(UNIX_EPOCH).map_err(|_| KeyStoreError::ClockBeforeEpoch)?;
    Ok(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

/// Converts milliseconds since the Unix epoch to a time, or `None` when the
/// platform cannot represent it.
pub(super) fn from_unix_ms(ms: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

fn encode_header(header: &Header) -> Vec<u8> {
    let name = header.name.as_bytes();
    let name_len = u8::try_from(name.len()).expect("key names are validated to at most 64 bytes");

    let mut bytes = Vec::with_capacity(FIXED_PREFIX_LEN + name.len() + FIXED_SUFFIX_LEN);
    bytes.extend_from_slice(&MAGIC);
    bytes.push(FORMAT_VERSION);
    bytes.push(AEAD_XCHACHA20_POLY1305);
    bytes.push(name_len);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&header.version.to_be_bytes());
    bytes.extend_from_slice(&header.created_at_ms.to_be_bytes());
    bytes
}

/// Parses the header at the start of `file`. Returns the header and its length
/// in bytes, or the reason the bytes are not a header this code reads.
fn parse_header(file: &[u8]) -> Result<(Header, usize), String> {
    if file.len() < FIXED_PREFIX_LEN {
        return Err(format!(
            "file is truncated: {} bytes, shorter than the {FIXED_PREFIX_LEN}-byte header prefix",
            file.len()
        ));
    }
    if file[..MAGIC.len()] != MAGIC {
        return Err("magic bytes are not \"HEARTHSK\": not a Hearth sealed key file".to_owned());
    }
    if file[8] != FORMAT_VERSION {
        return Err(format!(
            "unsupported format version {}, expected {FORMAT_VERSION}; a newer Hearth may have \
             written it",
            file[8]
        ));
    }
    if file[9] != AEAD_XCHACHA20_POLY1305 {
        return Err(format!(
            "unknown AEAD id {}, expected {AEAD_XCHACHA20_POLY1305} (XChaCha20-Poly1305)",
            file[9]
        ));
    }

    let name_len = usize::from(file[10]);
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return Err(format!(
            "key name length {name_len} in the header, expected 1 to {MAX_NAME_LEN}"
        ));
    }
    let header_len = FIXED_PREFIX_LEN + name_len + FIXED_SUFFIX_LEN;
    if file.len() < header_len {
        return Err(format!(
            "file is truncated: {} bytes, shorter than its {header_len}-byte header",
            file.len()
        ));
    }

    let name_end = FIXED_PREFIX_LEN + name_len;
    let name = std::str::from_utf8(&file[FIXED_PREFIX_LEN..name_end])
        .map_err(|_| "key name in the header is not UTF-8".to_owned())?
        .to_owned();
    let version_bytes: [u8; 4] =
        file[name_end..name_end + 4].try_into().expect("range is exactly 4 bytes");
    let time_bytes: [u8; 8] =
        file[name_end + 4..header_len].try_into().expect("range is exactly 8 bytes");

    let header = Header {
        name,
        version: u32::from_be_bytes(version_bytes),
        created_at_ms: u64::from_be_bytes(time_bytes),
    };
    Ok((header, header_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&Zeroizing::new([byte; 32]))
    }

    fn header() -> Header {
        Header { name: "tls-leaf".to_owned(), version: 7, created_at_ms: 1_700_000_000_123 }
    }

    #[test]
    fn seal_then_open_returns_header_and_secret() {
        let sealer = sealer(1);
        let file = sealer.seal(&header(), b"secret bytes").unwrap();

        let (opened_header, secret) = sealer.open(Path::new("x"), "test", &file).unwrap();

        assert_eq!(opened_header, header());
        assert_eq!(secret.as_slice(), b"secret bytes");
    }

    #[test]
    fn layout_matches_documented_offsets() {
        let file = sealer(1).seal(&header(), b"abc").unwrap();
        let name_len = "tls-leaf".len();

        assert_eq!(&file[..8], b"HEARTHSK");
        assert_eq!(file[8], 1);
        assert_eq!(file[9], 1);
        assert_eq!(usize::from(file[10]), name_len);
        assert_eq!(&file[11..11 + name_len], b"tls-leaf");
        assert_eq!(&file[11 + name_len..15 + name_len], &7u32.to_be_bytes());
        assert_eq!(&file[15 + name_len..23 + name_len], &1_700_000_000_123u64.to_be_bytes());
        assert_eq!(file.len(), 23 + name_len + NONCE_LEN + 3 + TAG_LEN);
    }

    #[test]
    fn each_seal_uses_a_new_nonce() {
        let sealer = sealer(1);

        let first = sealer.seal(&header(), b"same").unwrap();
        let second = sealer.seal(&header(), b"same").unwrap();

        assert_ne!(first, second);
    }

    #[test]
    fn ciphertext_does_not_contain_plaintext() {
        let secret = b"a recognisable plaintext secret";
        let file = sealer(1).seal(&header(), secret).unwrap();

        assert!(!file.windows(secret.len()).any(|window| window == secret));
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        let sealer = sealer(1);
        let file = sealer.seal(&header(), b"secret").unwrap();

        for len in 0..file.len() {
            let result = sealer.open(Path::new("x"), "test", &file[..len]);
            assert!(
                matches!(
                    result,
                    Err(KeyStoreError::Malformed { .. } | KeyStoreError::Decrypt { .. })
                ),
                "truncation to {len} bytes was not rejected"
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let sealer = sealer(1);
        let file = sealer.seal(&header(), b"secret").unwrap();

        for index in 0..file.len() {
            for bit in 0..8 {
                let mut tampered = file.clone();
                tampered[index] ^= 1 << bit;
                let result = sealer.open(Path::new("x"), "test", &tampered);
                assert!(result.is_err(), "flipping bit {bit} of byte {index} went unnoticed");
            }
        }
    }

    #[test]
    fn other_kek_fails_to_decrypt() {
        let file = sealer(1).seal(&header(), b"secret").unwrap();

        let result = sealer(2).open(Path::new("x"), "test", &file);

        assert!(matches!(result, Err(KeyStoreError::Decrypt { .. })));
    }
}
