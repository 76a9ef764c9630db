//! Link keys between Hearth nodes: the X-Wing secret, optionally mixed with
//! a QKD key.

use hkdf::HkdfExtract;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::SharedSecret;

/// HKDF info label of link keys, followed by a mode byte and the context.
const LINK_LABEL: &[u8] = b"hearth/link-key/v1";

/// Mode byte of a link key derived from the X-Wing secret alone.
const MODE_XWING: u8 = 0x01;

/// Mode byte of a link key derived from the X-Wing secret and a QKD key.
const MODE_XWING_QKD: u8 = 0x02;

/// Derives the key for a link between Hearth nodes from an X-Wing shared
/// secret and, when a QKD key manager is configured, a QKD key.
///
/// The output is HKDF-SHA256 (RFC 5869). Its input keying material is the
/// X-Wing secret, followed by `qkd_key` when there is one. Its info string is
/// `"hearth/link-key/v1"`, a mode byte (1 for X-Wing only, 2 for X-Wing and
/// QKD), the 8-byte big-endian length of `context`, and `context`.
///
/// QKD never replaces ML-KEM: the X-Wing secret is always part of the input,
/// so a leaked or forged QKD key leaves the result as strong as X-Wing alone,
/// and a good QKD key adds its secrecy on top. With and without a QKD key the
/// mode bytes differ, so the two cases never give the same key, even for an
/// empty `qkd_key`. An empty `qkd_key` adds no secrecy, so callers pass
/// `None` when the key manager returned no key. Different contexts give independent keys.
pub fn derive_link_key(
    xwing_secret: &SharedSecret,
    qkd_key: Option<&[u8]>,
    context: &[u8],
) -> SharedSecret {
    let mut extract = HkdfExtract::<Sha256>::new(None);
    extract.input_ikm(xwing_secret.as_slice());
    let mode = match qkd_key {
        Some(qkd_key) => {
            extract.input_ikm(qkd_key);
            MODE_XWING_QKD
        }
        None => MODE_XWING,
    };
    let (_, hkdf) = extract.finalize();

    let context_len = (context.len() as u64).to_be_bytes();
    let info: [&[u8]; 4] = [LINK_LABEL, &[mode], &context_len, context];

    let mut link_key = Zeroizing::new([0u8; 32]);
    hkdf.expand_multi_info(&info, link_key.as_mut_slice())
        .expect("HKDF-SHA256 outputs up to 8160 bytes, and a link key is 32");
    link_key
}
