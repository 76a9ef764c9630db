//! Link keys between two Hearth nodes from X-Wing, with a quantum key
//! distribution (QKD) key mixed in when the nodes have one.
//!
//! A QKD key comes from a key management entity (KME) that shares keys
//! between two secure application entities (SAEs), here two Hearth nodes.
//! [`QkdKeySource`] is the transport-free view of a KME. `hearth-qkd`
//! implements it over ETSI GS QKD 014, because this crate depends on no
//! HTTP stack.
//!
//! A QKD key is mixed into the X-Wing shared secret through
//! [`crate::kem::derive_link_key`] and never replaces it. Without a KME, or
//! with a KME that is down or whose keys leak, the link key is as secret as
//! X-Wing alone makes it.
//!
//! # Message flow
//!
//! ```text
//! master                                              slave
//! ------                                              -----
//! initiate(peers, slave_pk, kme)
//!   (ct, ss) = X-Wing encapsulate(slave_pk)
//!   kme.enc_keys(slave, 1, 256) -> (key_id, qkd)      [optional]
//!   derive link key, tags
//!            --- LinkOffer {master, slave, ct, key_id?} --->
//!                                                     accept(peers, sk, offer, kme)
//!                                                       check master and slave ids
//!                                                       ss = X-Wing decapsulate(sk, ct)
//!                                                       kme.dec_keys(master, [key_id]) -> qkd
//!                                                       derive link key, tags
//!            <--- LinkReply {slave tag} -----------------
//! confirm(reply): check slave tag
//!            --- LinkFinish {master tag} --------------->
//!                                                     finish(finish): check master tag
//! ```
//!
//! Each side derives three values with `derive_link_key(ss, qkd, context)`:
//! the link key, the slave's tag and the master's tag. The context contains a
//! purpose byte, both SAE ids, the ciphertext and the QKD key id, so the
//! tags confirm the whole offer and the key. Neither side gets a
//! [`LinkKey`] before it has checked the other's tag, so a key mismatch (a
//! KME that handed the two SAEs different bytes, a modified offer) fails the
//! handshake with [`LinkError::ConfirmationMismatch`] instead of producing
//! two different keys (tests `different_qkd_bytes_fail_slave_confirmation`,
//! `modified_finish_fails_master_confirmation` and, over HTTPS,
//! `substituted_key_id_fails_confirmation`).
//!
//! Fallback to X-Wing alone, always with a `tracing` warning that names the
//! reason and with [`LinkKey::fallback`] set:
//! - the master has no key source, or its KME returns 503 or cannot be
//!   reached ([`QkdFallback::NotConfigured`], [`QkdFallback::KmeUnavailable`]).
//!   Other KME errors (401, 400, a malformed response) fail the handshake;
//! - the slave cannot obtain the offered key id: [`accept`] fails with
//!   [`LinkError::QkdKeyUnavailable`], the slave's node sends that back, and
//!   the master calls [`MasterHandshake::retry_without_qkd`], which
//!   encapsulates afresh ([`QkdFallback::SlaveKeyUnavailable`]);
//! - the slave receives an offer without a key id ([`QkdFallback::NotOffered`]).
//!
//! Tests `link_down_falls_back_to_xwing` and `unknown_key_id_forces_xwing_retry`
//! check both sides' flags and warnings against the test KME.
//!
//! What this does not protect against: the handshake does not authenticate
//! the master, since anyone can encapsulate to the slave's public key; the
//! node must carry the offer over a channel that does (mutual TLS, or a
//! hybrid signature from [`crate::sign`]). An attacker on the path between
//! the nodes, or one who can block the KME, can force the X-Wing-only
//! fallback; the warning and the flag make that visible, and the key stays
//! as strong as X-Wing.
//!
//! Tests: `tests` beside this module (in-memory key source) and
//! `crates/hearth-qkd/tests/link_key.rs` (against the test KME).

mod error;
mod link;
mod source;
#[cfg(test)]
mod tests;

pub use error::{LinkError, QkdError};
pub use link::{
    LinkFinish, LinkKey, LinkOffer, LinkPeers, LinkReply, MasterHandshake, QKD_KEY_BITS, QkdFallback, SlaveHandshake,
    accept, initiate,
};
pub use source::{QkdKey, QkdKeySource};
