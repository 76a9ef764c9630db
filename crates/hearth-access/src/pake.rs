//! SPAKE2 (RFC 9382) with the P256-SHA256-HKDF-HMAC ciphersuite, used to
//! pair a device with a short one-time code.
//!
//! Both sides blind their ephemeral key shares with a scalar `w` derived
//! from the code. A recorded exchange therefore gives an attacker nothing to
//! test guesses against offline, and each online attempt tests one guess.
//! The pairing offer counts failed attempts and burns itself after a few.
//! The browser runs the same suite in `hearth-server/src/web/spake2.js`, and
//! both implementations are checked against RFC 9382, Appendix B.
//!
//! Roles follow the RFC: A (the device) sends `pA = x·G + w·M`, B (the
//! server) sends `pB = y·G + w·N`. Each side computes `K`, the transcript
//! `TT`, the shared key `Ke` and the confirmation MACs. Neither side may use
//! `Ke` before it has checked the peer's MAC with [`Spake2Output::verify_peer`].
//!
//! What this does not protect against: someone who watches the code being
//! read out or scanned can pair in its place. An attacker gets one guess per
//! attempt, so a code must carry enough entropy for the attempt limit.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use p256::elliptic_curve::sec1::{FromSec1Point, ToSec1Point};
use p256::elliptic_curve::Field;
use p256::elliptic_curve::ops::Reduce;
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Length of an uncompressed P-256 point: 0x04, x, y.
pub const SHARE_LEN: usize = 65;
/// Length of a confirmation MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;
/// Length of the shared key `Ke` (half of a SHA-256 digest).
pub const SHARED_KEY_LEN: usize = 16;

/// Salt of the code-to-scalar derivation, naming this protocol and version.
const PASSWORD_SALT: &[u8] = b"hearth/pair/v1";

/// The RFC's M for P-256, compressed.
const M_COMPRESSED: [u8; 33] = hex_literal("02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f");
/// The RFC's N for P-256, compressed.
const N_COMPRESSED: [u8; 33] = hex_literal("03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49");

/// Errors of a SPAKE2 exchange.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PakeError {
    /// The peer's share is not a 65-byte uncompressed point on P-256.
    #[error("the peer's SPAKE2 share is invalid: {0}")]
    InvalidShare(&'static str),
    /// The shared point is the identity, which only a malicious share gives.
    #[error("the peer's SPAKE2 share gives the identity point")]
    IdentityPoint,
    /// The peer's confirmation MAC is wrong: another code, or tampering.
    #[error("SPAKE2 confirmation failed: the code does not match or the exchange was modified")]
    ConfirmationMismatch,
}

/// The side of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The party that sends `pA`: the device being paired.
    A,
    /// The party that sends `pB`: the server.
    B,
}

/// The password scalar `w` derived from a pairing code.
pub struct PasswordScalar(Scalar);

impl Drop for PasswordScalar {
    fn drop(&mut self) {
        self.0 = Scalar::ZERO;
    }
}

impl PasswordScalar {
    /// Derives `w` from a pairing code and the id of its offer: HKDF-SHA256
    /// with salt "hearth/pair/v1", the code after [`normalize_code`] as input
    /// and the offer id as info, 48 bytes reduced mod n. So "k7qf-9m2d",
    /// "K7QF 9M2D" and "K7QF9M2D" give the same scalar.
    ///
    /// The RFC recommends a memory-hard function here. A pairing code is
    /// single use and expires within minutes, and SPAKE2 already stops
    /// offline guessing from the exchange, so a plain KDF suffices.
    pub fn from_code(code: &str, offer_id: &[u8]) -> Self {
        let normalized = normalize_code(code);
        let mut wide = Zeroizing::new([0u8; 48]);
        Hkdf::<Sha256>::new(Some(PASSWORD_SALT), normalized.as_bytes())
            .expand(offer_id, wide.as_mut())
            .expect("48 bytes is a valid HKDF-SHA256 output length");
        Self(reduce_wide(&wide))
    }

    /// Uses a given scalar, for the RFC test vectors.
    #[cfg(test)]
    fn from_scalar_bytes(bytes: &[u8; 32]) -> Self {
        Self(scalar_from_be(bytes))
    }
}

/// Normalises a pairing code as a person typed it: upper-cases it, drops
/// white space and dashes, and reads O as 0 and I and L as 1. The code
/// alphabet leaves out O, I and L because they look like those digits.
/// Both the stored code and a typed one go through this before deriving `w`.
///
/// NOTE: `spake2.js` upper-cases and drops white space and dashes but does
/// not map O, I and L yet, so a browser given a code typed with those
/// letters derives another `w` and fails the confirmation.
pub fn normalize_code(code: &str) -> Zeroizing<String> {
    let normalized = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .map(|c| match c {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    Zeroizing::new(normalized)
}

/// One side of a SPAKE2 exchange before it has the peer's share.
pub struct Spake2 {
    role: Role,
    w: Scalar,
    secret: Scalar,
    share: [u8; SHARE_LEN],
    identity_a: Vec<u8>,
    identity_b: Vec<u8>,
    aad: Vec<u8>,
}

impl Drop for Spake2 {
    fn drop(&mut self) {
        self.w = Scalar::ZERO;
        self.secret = Scalar::ZERO;
    }
}

/// The result of a finished exchange: the shared key and both MACs.
pub struct Spake2Output {
    shared_key: Zeroizing<[u8; SHARED_KEY_LEN]>,
    confirmation: [u8; MAC_LEN],
    expected_peer: [u8; MAC_LEN],
}

impl Spake2 {
    /// Starts the exchange as `role` with a fresh random scalar.
    /// `identity_a`, `identity_b` and `aad` must be the same on both sides;
    /// the confirmation MACs cover them.
    pub fn start(role: Role, w: &PasswordScalar, identity_a: &[u8], identity_b: &[u8], aad: &[u8]) -> Self {
        let mut wide = Zeroizing::new([0u8; 48]);
        getrandom::fill(wide.as_mut()).expect("the OS random number generator failed");
        let mut secret = reduce_wide(&wide);
        if bool::from(secret.is_zero()) {
            secret = Scalar::ONE;
        }
        Self::start_with_scalar(role, w, secret, identity_a, identity_b, aad)
    }

    fn start_with_scalar(role: Role, w: &PasswordScalar, secret: Scalar, identity_a: &[u8], identity_b: &[u8], aad: &[u8]) -> Self {
        let blind = match role {
            Role::A => point_m(),
            Role::B => point_n(),
        };
        let share_point = ProjectivePoint::GENERATOR * secret + blind * w.0;
        Self {
            role,
            w: w.0,
            secret,
            share: encode(&share_point),
            identity_a: identity_a.to_vec(),
            identity_b: identity_b.to_vec(),
            aad: aad.to_vec(),
        }
    }

    /// Returns the share to send to the peer (65 bytes).
    pub fn share(&self) -> &[u8; SHARE_LEN] {
        &self.share
    }

    /// Takes the peer's share and derives the shared key and the MACs.
    pub fn finish(self, peer_share: &[u8]) -> Result<Spake2Output, PakeError> {
        let peer = decode(peer_share)?;
        let unblind = match self.role {
            Role::A => point_n(),
            Role::B => point_m(),
        };
        let shared_point = (peer - unblind * self.w) * self.secret;
        if shared_point == ProjectivePoint::IDENTITY {
            return Err(PakeError::IdentityPoint);
        }

        let (share_a, share_b): (&[u8], &[u8]) = match self.role {
            Role::A => (&self.share, peer_share),
            Role::B => (peer_share, &self.share),
        };
        let shared_encoded = Zeroizing::new(encode(&shared_point));
        let w_bytes = Zeroizing::new(self.w.to_bytes());
        let mut transcript = Zeroizing::new(Vec::with_capacity(6 * 8 + 3 * SHARE_LEN + 32 + 64));
        for field in [&self.identity_a[..], &self.identity_b[..], share_a, share_b, &shared_encoded[..], &w_bytes[..]] {
            transcript.extend_from_slice(&(field.len() as u64).to_le_bytes());
            transcript.extend_from_slice(field);
        }

        let mut digest = Sha256::digest(transcript.as_slice());
        let mut shared_key = Zeroizing::new([0u8; SHARED_KEY_LEN]);
        shared_key.copy_from_slice(&digest[..SHARED_KEY_LEN]);
        let mut info = b"ConfirmationKeys".to_vec();
        info.extend_from_slice(&self.aad);
        let mut confirmation_keys = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, &digest[SHARED_KEY_LEN..])
            .expand(&info, confirmation_keys.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        digest.zeroize();

        let mac_a = hmac_sha256(&confirmation_keys[..16], &transcript);
        let mac_b = hmac_sha256(&confirmation_keys[16..], &transcript);
        let (confirmation, expected_peer) = match self.role {
            Role::A => (mac_a, mac_b),
            Role::B => (mac_b, mac_a),
        };
        Ok(Spake2Output { shared_key, confirmation, expected_peer })
    }
}

impl Spake2Output {
    /// Returns this side's confirmation MAC, to send to the peer.
    pub fn confirmation(&self) -> &[u8; MAC_LEN] {
        &self.confirmation
    }

    /// Checks the peer's confirmation MAC in constant time.
    pub fn verify_peer(&self, mac: &[u8]) -> Result<(), PakeError> {
        if mac.len() == MAC_LEN && bool::from(self.expected_peer.ct_eq(mac)) {
            Ok(())
        } else {
            Err(PakeError::ConfirmationMismatch)
        }
    }

    /// Returns the shared key `Ke`. Use it only after [`Self::verify_peer`]
    /// has accepted the peer's MAC.
    pub fn shared_key(&self) -> &[u8; SHARED_KEY_LEN] {
        &self.shared_key
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; MAC_LEN] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn point_m() -> ProjectivePoint {
    decompress(&M_COMPRESSED)
}

fn point_n() -> ProjectivePoint {
    decompress(&N_COMPRESSED)
}

fn decompress(bytes: &[u8; 33]) -> ProjectivePoint {
    let point = AffinePoint::from_sec1_bytes(bytes).expect("RFC 9382 constants are points on P-256");
    ProjectivePoint::from(point)
}

fn encode(point: &ProjectivePoint) -> [u8; SHARE_LEN] {
    let encoded = point.to_affine().to_sec1_point(false);
    let mut out = [0u8; SHARE_LEN];
    out.copy_from_slice(encoded.as_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<ProjectivePoint, PakeError> {
    if bytes.len() != SHARE_LEN || bytes[0] != 0x04 {
        return Err(PakeError::InvalidShare("expected a 65-byte uncompressed point"));
    }
    let point = AffinePoint::from_sec1_bytes(bytes).map_err(|_| PakeError::InvalidShare("not a point on P-256"))?;
    Ok(ProjectivePoint::from(point))
}

/// Reduces a 48-byte big-endian number mod n as `hi · 2^192 + lo`, with
/// `hi` and `lo` 24 bytes each, so both halves are below n before reduction.
fn reduce_wide(bytes: &[u8; 48]) -> Scalar {
    let mut hi = Zeroizing::new([0u8; 32]);
    let mut lo = Zeroizing::new([0u8; 32]);
    hi[8..].copy_from_slice(&bytes[..24]);
    lo[8..].copy_from_slice(&bytes[24..]);
    let mut shift = [0u8; 32];
    shift[7] = 1;
    scalar_from_be(&hi) * scalar_from_be(&shift) + scalar_from_be(&lo)
}

fn scalar_from_be(bytes: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(*bytes))
}

/// Decodes a hex string at compile time.
const fn hex_literal<const LEN: usize>(text: &str) -> [u8; LEN] {
    let bytes = text.as_bytes();
    assert!(bytes.len() == 2 * LEN, "hex literal has the wrong length");
    let mut out = [0u8; LEN];
    let mut index = 0;
    while index < LEN {
        out[index] = (nibble(bytes[2 * index]) << 4) | nibble(bytes[2 * index + 1]);
        index += 1;
    }
    out
}

const fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => panic!("hex literal must be lowercase hex"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test vector of RFC 9382, Appendix B (values as published).
    struct Vector {
        a: &'static str,
        b: &'static str,
        w: &'static str,
        x: &'static str,
        y: &'static str,
        pa: &'static str,
        pb: &'static str,
        ke: &'static str,
        ca: &'static str,
        cb: &'static str,
    }

    const VECTORS: [Vector; 4] = [
        Vector {
            a: "server",
            b: "client",
            w: "2ee57912099d31560b3a44b1184b9b4866e904c49d12ac5042c97dca461b1a5f",
            x: "43dd0fd7215bdcb482879fca3220c6a968e66d70b1356cac18bb26c84a78d729",
            y: "dcb60106f276b02606d8ef0a328c02e4b629f84f89786af5befb0bc75b6e66be",
            pa: "04a56fa807caaa53a4d28dbb9853b9815c61a411118a6fe516a8798434751470f9010153ac33d0d5f2047ffdb1a3e42c9b4e6be662766e1eeb4116988ede5f912c",
            pb: "0406557e482bd03097ad0cbaa5df82115460d951e3451962f1eaf4367a420676d09857ccbc522686c83d1852abfa8ed6e4a1155cf8f1543ceca528afb591a1e0b7",
            ke: "0e0672dc86f8e45565d338b0540abe69",
            ca: "58ad4aa88e0b60d5061eb6b5dd93e80d9c4f00d127c65b3b35b1b5281fee38f0",
            cb: "d3e2e547f1ae04f2dbdbf0fc4b79f8ecff2dff314b5d32fe9fcef2fb26dc459b",
        },
        Vector {
            a: "",
            b: "client",
            w: "0548d8729f730589e579b0475a582c1608138ddf7054b73b5381c7e883e2efae",
            x: "403abbe3b1b4b9ba17e3032849759d723939a27a27b9d921c500edde18ed654b",
            y: "903023b6598908936ea7c929bd761af6039577a9c3f9581064187c3049d87065",
            pa: "04a897b769e681c62ac1c2357319a3d363f610839c4477720d24cbe32f5fd85f44fb92ba966578c1b712be6962498834078262caa5b441ecfa9d4a9485720e918a",
            pb: "04e0f816fd1c35e22065d5556215c097e799390d16661c386e0ecc84593974a61b881a8c82327687d0501862970c64565560cb5671f696048050ca66ca5f8cc7fc",
            ke: "642f05c473c2cd79909f9a841e2f30a7",
            ca: "47d29e6666af1b7dd450d571233085d7a9866e4d49d2645e2df975489521232b",
            cb: "3313c5cefc361d27fb16847a91c2a73b766ffa90a4839122a9b70a2f6bd1d6df",
        },
        Vector {
            a: "server",
            b: "",
            w: "626e0cdc7b14c9db3e52a0b1b3a768c98e37852d5db30febe0497b14eae8c254",
            x: "07adb3db6bc623d3399726bfdbfd3d15a58ea776ab8a308b00392621291f9633",
            y: "b6a4fc8dbb629d4ba51d6f91ed1532cf87adec98f25dd153a75accafafedec16",
            pa: "04f88fb71c99bfffaea370966b7eb99cd4be0ff1a7d335caac4211c4afd855e2e15a873b298503ad8ba1d9cbb9a392d2ba309b48bfd7879aefd0f2cea6009763b0",
            pb: "040c269d6be017dccb15182ac6bfcd9e2a14de019dd587eaf4bdfd353f031101e7cca177f8eb362a6e83e7d5e729c0732e1b528879c086f39ba0f31a9661bd34db",
            ke: "005184ff460da2ce59062c87733c299c",
            ca: "bc9f9bbe99f26d0b2260e6456e05a86196a3307ec6663a18bf6ac825736533b2",
            cb: "c2370e1bf813b086dff0d834e74425a06e6390f48f5411900276dcccc5a297ec",
        },
        Vector {
            a: "",
            b: "",
            w: "7bf46c454b4c1b25799527d896508afd5fc62ef4ec59db1efb49113063d70cca",
            x: "8cef65df64bb2d0f83540c53632de911b5b24b3eab6cc74a97609fd659e95473",
            y: "d7a66f64074a84652d8d623a92e20c9675c61cb5b4f6a0063e4648a2fdc02d53",
            pa: "04a65b367a3f613cf9f0654b1b28a1e3a8a40387956c8ba6063e8658563890f46ca1ef6a676598889fc28de2950ab8120b79a5ef1ea4c9f44bc98f585634b46d66",
            pb: "04589f13218822710d98d8b2123a079041052d9941b9cf88c6617ddb2fcc0494662eea8ba6b64692dc318250030c6af045cb738bc81ba35b043c3dcb46adf6f58d",
            ke: "fc6374762ba5cf11f4b2caa08b2cd1b9",
            ca: "dfb4db8d48ae5a675963ea5e6c19d98d4ea028d8e898dad96ea19a80ade95dca",
            cb: "d0f0609d1613138d354f7e95f19fb556bf52d751947241e8c7118df5ef0ae175",
        },
    ];

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text).expect("valid hex")
    }

    fn scalar(text: &str) -> Scalar {
        scalar_from_be(&unhex(text).try_into().expect("32 bytes"))
    }

    fn pair(code_a: &str, code_b: &str, aad_a: &[u8], aad_b: &[u8]) -> (Spake2Output, Spake2Output) {
        let device = Spake2::start(Role::A, &PasswordScalar::from_code(code_a, b"offer-1"), b"device", b"server", aad_a);
        let server = Spake2::start(Role::B, &PasswordScalar::from_code(code_b, b"offer-1"), b"device", b"server", aad_b);
        let device_share = *device.share();
        let server_share = *server.share();
        (device.finish(&server_share).unwrap(), server.finish(&device_share).unwrap())
    }

    #[test]
    fn rfc9382_vectors_match() {
        for (index, v) in VECTORS.iter().enumerate() {
            let w = PasswordScalar::from_scalar_bytes(&unhex(v.w).try_into().unwrap());
            let a = Spake2::start_with_scalar(Role::A, &w, scalar(v.x), v.a.as_bytes(), v.b.as_bytes(), b"");
            let b = Spake2::start_with_scalar(Role::B, &w, scalar(v.y), v.a.as_bytes(), v.b.as_bytes(), b"");
            assert_eq!(hex::encode(a.share()), v.pa, "vector {index}: pA");
            assert_eq!(hex::encode(b.share()), v.pb, "vector {index}: pB");

            let out_a = a.finish(&unhex(v.pb)).unwrap();
            let out_b = b.finish(&unhex(v.pa)).unwrap();
            assert_eq!(hex::encode(out_a.shared_key()), v.ke, "vector {index}: Ke of A");
            assert_eq!(hex::encode(out_b.shared_key()), v.ke, "vector {index}: Ke of B");
            assert_eq!(hex::encode(out_a.confirmation()), v.ca, "vector {index}: cA");
            assert_eq!(hex::encode(out_b.confirmation()), v.cb, "vector {index}: cB");
            assert_eq!(out_a.verify_peer(&unhex(v.cb)), Ok(()), "vector {index}: A accepts cB");
            assert_eq!(out_b.verify_peer(&unhex(v.ca)), Ok(()), "vector {index}: B accepts cA");
        }
    }

    #[test]
    fn same_code_agrees() {
        let (device, server) = pair("k7qf-9m2d", "K7QF 9M2D", b"aad", b"aad");

        assert_eq!(server.verify_peer(device.confirmation()), Ok(()));
        assert_eq!(device.verify_peer(server.confirmation()), Ok(()));
        assert_eq!(device.shared_key(), server.shared_key());
    }

    #[test]
    fn wrong_code_rejected_both_ways() {
        let (device, server) = pair("K7QF9M2E", "K7QF9M2D", b"aad", b"aad");

        assert_eq!(server.verify_peer(device.confirmation()), Err(PakeError::ConfirmationMismatch));
        assert_eq!(device.verify_peer(server.confirmation()), Err(PakeError::ConfirmationMismatch));
        assert_ne!(device.shared_key(), server.shared_key());
    }

    #[test]
    fn other_aad_rejected() {
        let (device, server) = pair("K7QF9M2D", "K7QF9M2D", b"device key 1", b"device key 2");

        assert_eq!(server.verify_peer(device.confirmation()), Err(PakeError::ConfirmationMismatch));
    }

    #[test]
    fn code_scalar_matches_browser() {
        // The same value is pinned in tests/e2e/spake2_vectors.mjs, so the
        // Rust and JavaScript derivations cannot drift apart.
        let w = PasswordScalar::from_code("K7QF-9M2D", b"offer-1");

        assert_eq!(hex::encode(w.0.to_bytes()), "d8df060506a453969ec280803c6f20a342717fd99fa40144e438f48a115517ce");
    }

    #[test]
    fn typed_code_variants_give_same_w() {
        let canonical = PasswordScalar::from_code("K70F1M1D", b"offer-1");

        for typed in ["k70f-1m1d", "K7OF 1M1D", "k7of-im ld", "K7Of1mLd"] {
            assert_eq!(PasswordScalar::from_code(typed, b"offer-1").0, canonical.0, "typed {typed:?}");
        }
        assert_eq!(normalize_code(" k7of-iml d\t").as_str(), "K70F1M1D");
    }

    #[test]
    fn offer_id_changes_w() {
        let one = PasswordScalar::from_code("K7QF9M2D", b"offer-1");
        let two = PasswordScalar::from_code("K7QF9M2D", b"offer-2");

        assert_ne!(one.0, two.0);
    }

    #[test]
    fn truncated_mac_rejected() {
        let (device, server) = pair("K7QF9M2D", "K7QF9M2D", b"", b"");

        assert_eq!(server.verify_peer(&device.confirmation()[..31]), Err(PakeError::ConfirmationMismatch));
        assert_eq!(server.verify_peer(&[]), Err(PakeError::ConfirmationMismatch));
    }

    #[test]
    fn malformed_shares_rejected() {
        let w = PasswordScalar::from_code("K7QF9M2D", b"offer-1");
        let start = || Spake2::start(Role::B, &w, b"device", b"server", b"");
        let mut off_curve = [0u8; SHARE_LEN];
        off_curve[0] = 4;
        off_curve[32] = 1;
        off_curve[64] = 1;
        let compressed = point_m().to_affine().to_sec1_point(true);

        assert!(matches!(start().finish(&off_curve), Err(PakeError::InvalidShare(_))));
        assert!(matches!(start().finish(&[0u8; SHARE_LEN]), Err(PakeError::InvalidShare(_))));
        assert!(matches!(start().finish(compressed.as_bytes()), Err(PakeError::InvalidShare(_))));
        assert!(matches!(start().finish(&[4u8; 10]), Err(PakeError::InvalidShare(_))));
    }

    #[test]
    fn share_giving_identity_rejected() {
        // pA = w·M makes the server's K the identity: an attacker who knew w
        // could try it to learn nothing, but the exchange must still stop.
        let w = PasswordScalar::from_code("K7QF9M2D", b"offer-1");
        let crafted = encode(&(point_m() * w.0));
        let server = Spake2::start(Role::B, &w, b"device", b"server", b"");

        assert!(matches!(server.finish(&crafted), Err(PakeError::IdentityPoint)));
    }

    #[test]
    fn fresh_scalar_each_start() {
        let w = PasswordScalar::from_code("K7QF9M2D", b"offer-1");
        let first = Spake2::start(Role::A, &w, b"", b"", b"");
        let second = Spake2::start(Role::A, &w, b"", b"", b"");

        assert_ne!(first.share(), second.share());
    }
}
