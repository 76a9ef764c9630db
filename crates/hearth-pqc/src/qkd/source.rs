//! The key-source trait that a QKD key management entity (KME) client
//! implements.

use std::fmt;

use zeroize::Zeroizing;

use super::error::QkdError;

/// One key delivered by a KME, with the id that the other SAE uses to ask
/// its KME for the same key.
pub struct QkdKey {
    /// The KME's key id (a UUID string under ETSI GS QKD 014).
    pub key_id: String,
    /// The key bytes, wiped from memory when dropped.
    pub key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for QkdKey {
    /// Prints the key id and length, never the key bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QkdKey").field("key_id", &self.key_id).field("key_len", &self.key.len()).finish_non_exhaustive()
    }
}

/// A source of QKD keys shared between two secure application entities
/// (SAEs), such as a KME reached through ETSI GS QKD 014.
///
/// Implementations block the calling thread. Async callers run them on a
/// blocking thread (`tokio::task::spawn_blocking`).
pub trait QkdKeySource: Send + Sync {
    /// Obtains `number` new keys of `size_bits` bits that the KME will also
    /// deliver to `slave_sae_id` (ETSI 014 "Get key", `enc_keys`). The caller
    /// is the master SAE.
    fn enc_keys(&self, slave_sae_id: &str, number: u32, size_bits: u32) -> Result<Vec<QkdKey>, QkdError>;

    /// Obtains the keys with `key_ids` that `master_sae_id` obtained before
    /// (ETSI 014 "Get key with key IDs", `dec_keys`). The caller is the slave
    /// SAE. The keys come back in the order of `key_ids`.
    fn dec_keys(&self, master_sae_id: &str, key_ids: &[String]) -> Result<Vec<QkdKey>, QkdError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_key_bytes() {
        let key = QkdKey { key_id: "id-1".to_owned(), key: Zeroizing::new(vec![0xAB; 32]) };

        let printed = format!("{key:?}");

        assert!(printed.contains("id-1"), "{printed}");
        assert!(printed.contains("key_len: 32"), "{printed}");
        assert!(!printed.contains("171"), "key byte 0xAB printed: {printed}");
        assert!(!printed.to_lowercase().contains("ab, ab"), "{printed}");
    }
}
