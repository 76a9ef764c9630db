//! HLS `METHOD=AES-128`: each segment is encrypted whole with AES-128-CBC
//! and PKCS#7 padding (RFC 8216, section 4.3.2.4). The key belongs to one
//! playback session; the IV is the segment's media sequence number as a
//! 128-bit big-endian integer, which a playlist without an `IV` attribute
//! implies.

use aes::Aes128;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit};

/// Length of an AES-128 key in bytes.
pub const KEY_LEN: usize = 16;

/// Encrypts segment `sequence` with `key`.
pub fn encrypt_segment(key: &[u8; KEY_LEN], sequence: u64, plain: &[u8]) -> Vec<u8> {
    let iv = u128::from(sequence).to_be_bytes();
    cbc::Encryptor::<Aes128>::new(key.into(), &iv.into()).encrypt_padded_vec::<Pkcs7>(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_nist_cbc_vector_for_the_first_block() {
        // NIST SP 800-38A F.2.1, CBC-AES128.Encrypt. Its IV does not fit a
        // sequence number, so the IV's high half is folded into the first
        // plaintext block: CBC encrypts block ^ IV either way.
        let key: [u8; 16] = hex_bytes("2b7e151628aed2a6abf7158809cf4f3c");
        let iv = u128::from_be_bytes(hex_bytes("000102030405060708090a0b0c0d0e0f"));
        let mut plain: [u8; 16] = hex_bytes("6bc1bee22e409f96e93d7e117393172a");
        for (byte, mask) in plain.iter_mut().zip(((iv >> 64) << 64).to_be_bytes()) {
            *byte ^= mask;
        }
        let cipher = encrypt_segment(&key, iv as u64, &plain);
        assert_eq!(&cipher[..16], &hex_bytes::<16>("7649abac8119b246cee98e9b12e9197d"));
        assert_eq!(cipher.len(), 32, "a full block of padding follows");
    }

    fn hex_bytes<const N: usize>(text: &str) -> [u8; N] {
        let mut out = [0; N];
        for (index, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).unwrap();
        }
        out
    }
}
