//! Quantum key distribution (QKD) keys for Hearth, fetched from a key
//! management entity (KME) under ETSI GS QKD 014 v1.1.1.
//!
//! Two Hearth nodes with QKD hardware between them each talk to their KME as
//! a secure application entity (SAE). The master SAE requests new keys
//! shared with the slave SAE from its KME and receives key ids with them.
//! The slave SAE then requests the keys with those ids from its own KME.
//! `hearth_pqc::qkd` mixes such a key into the X-Wing secret of a link key
//! and never uses it alone, so a compromised or absent KME weakens nothing
//! below X-Wing.
//!
//! - [`EtsiQkdClient`] implements [`hearth_pqc::qkd::QkdKeySource`] over
//!   HTTPS with mutual TLS: the SAE presents a client certificate and trusts
//!   only the KME's CA. TLS 1.3 with X25519MLKEM768 preferred, so a recorded
//!   key delivery stays secret unless ML-KEM and X25519 both fall.
//! - [`api`] defines the JSON data formats.
//! - `test_kme` (cargo feature `test-kme`) is a KME for tests. Its keys come
//!   from a CSPRNG, not from QKD hardware.
//!
//! What of ETSI GS QKD 014 v1.1.1 is implemented:
//! - Section 5, all three methods: Get status
//!   (`GET /api/v1/keys/{slave_SAE_ID}/status`), Get key
//!   (`enc_keys`; the client sends POST, the test KME serves GET and POST)
//!   and Get key with key IDs (`dec_keys`; likewise).
//! - Section 6, all five data formats, with the standard's field names.
//!   Extension fields are parsed and kept but not acted on; the client never
//!   sends `extension_mandatory`, and the test KME rejects a request that
//!   does with 400, as the standard requires of a KME that supports none.
//! - Status codes 200, 400, 401 and 503, mapped to
//!   [`hearth_pqc::qkd::QkdError`]. The standard fixes no status for a key
//!   id the KME cannot deliver; the test KME answers 400 naming the id in
//!   `details`, which the client reports as `QkdError::UnknownKeyId`.
//!
//! Not implemented: the client speaks TLS 1.3 only (the standard also
//! allows 1.2), and it checks key ids for presence and uniqueness but not
//! for UUID form.

pub mod api;
mod client;
mod error;
#[cfg(feature = "test-kme")]
pub mod test_kme;

pub use client::{DEFAULT_TIMEOUT, EtsiQkdClient, KmeClientConfig};
pub use error::ConfigError;
