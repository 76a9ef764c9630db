//! Post-quantum ground floor of Hearth.
//!
//! An attacker on the household LAN can record traffic today and decrypt it
//! once a large quantum computer exists ("harvest now, decrypt later"). This
//! crate addresses that threat for the transport: every TLS session offers the
//! hybrid key exchange X25519MLKEM768 first (ML-KEM-768 from FIPS 203
//! combined with X25519), so a recorded session stays secret unless both
//! X25519 and ML-KEM are broken.
//!
//! - [`tls`] builds the rustls server and client configurations (TLS 1.3
//!   only, aws-lc-rs provider, X25519MLKEM768 then X25519, ALPN h2 and
//!   http/1.1) and names the group a connection negotiated.
//! - [`ca`] creates and loads the household certificate authority and the
//!   server certificate it signs, with both private keys in the sealed key
//!   store. Certificates stay classical (ECDSA P-256) because no browser
//!   verifies ML-DSA certificates yet.
//! - [`sign`] signs with Ed25519 and ML-DSA-65 together (FIPS 204); a
//!   signature is valid only when both parts verify.
//! - [`kem`] wraps content keys and derives link keys with X-Wing (X25519
//!   with ML-KEM-768, FIPS 203).
//! - [`keystore`] keeps private keys sealed at rest under a key-encryption
//!   key from the OS keyring or a 0600 file, versioned and rotated.
//! - [`qkd`] sets up link keys between two Hearth nodes from X-Wing, mixing
//!   in a quantum key distribution key when a key manager is configured,
//!   with key confirmation both ways and a logged fallback to X-Wing alone.
//!
//! What this does not protect against: a quantum attacker who forges the
//! classical certificate signature in real time (an active attack, not a
//! recording), and clients that only offer X25519 (old TVs, curl with
//! OpenSSL 3.0): their sessions use classical key exchange, which the server
//! logs and reports per connection.

pub mod ca;
mod error;
pub mod kem;
pub mod keystore;
pub mod qkd;
pub mod sign;
pub mod tls;

pub use ca::{CaCertificate, HouseholdCa, ServerIdentity};
pub use error::PqcError;
pub use tls::{KeyExchangePolicy, client_config, group_name, server_config};
