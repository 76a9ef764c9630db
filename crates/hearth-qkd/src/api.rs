//! The JSON data formats of ETSI GS QKD 014 v1.1.1, section 6, shared by the
//! client and the test KME.
//!
//! Field names are those of the standard, hence the mixed case. Extension
//! fields (`status_extension`, `key_ID_extension`, `key_extension`,
//! `key_container_extension`, `key_IDs_extension`, `extension_optional`)
//! are parsed and kept but nothing acts on them. Unknown fields are ignored.

#![allow(non_snake_case)]

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// The URL path prefix of every ETSI 014 endpoint.
pub const API_PREFIX: [&str; 3] = ["api", "v1", "keys"];

/// Status data format (6.1): the keys a KME can deliver to one pair of SAEs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// KME id of the master SAE's KME.
    pub source_KME_ID: String,
    /// KME id of the slave SAE's KME.
    pub target_KME_ID: String,
    /// SAE id of the calling (master) SAE.
    pub master_SAE_ID: String,
    /// SAE id of the slave SAE named in the URL.
    pub slave_SAE_ID: String,
    /// Default key size in bits.
    pub key_size: u32,
    /// Number of keys of `key_size` bits that the KME can deliver now.
    pub stored_key_count: u32,
    /// Maximum number of keys the KME can store for this pair.
    pub max_key_count: u32,
    /// Maximum number of keys in one request.
    pub max_key_per_request: u32,
    /// Maximum key size in bits.
    pub max_key_size: u32,
    /// Minimum key size in bits.
    pub min_key_size: u32,
    /// Maximum number of additional slave SAEs in one request (0: none).
    pub max_SAE_ID_count: u32,
    /// Extension, kept but not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_extension: Option<serde_json::Value>,
}

/// Key request data format (6.2), the body of `POST .../enc_keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRequest {
    /// Number of keys requested; the KME's default is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// Key size in bits, a multiple of 8; the KME's default is its `key_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Further slave SAEs that may obtain the same keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_slave_SAE_IDs: Vec<String>,
    /// Extensions the KME must support or reject the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension_mandatory: Vec<serde_json::Value>,
    /// Extensions the KME may ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension_optional: Vec<serde_json::Value>,
}

/// Key container data format (6.3): the keys a KME delivers.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct KeyContainer {
    /// The delivered keys.
    pub keys: Vec<KeyEntry>,
    /// Extension, kept but not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_container_extension: Option<serde_json::Value>,
}

/// One key in a [`KeyContainer`]. The base64 text is wiped when dropped.
#[derive(Serialize, Deserialize)]
pub struct KeyEntry {
    /// Key id, a UUID string.
    pub key_ID: String,
    /// Extension, kept but not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ID_extension: Option<serde_json::Value>,
    /// The key, base64 encoded (RFC 4648 standard alphabet, padded).
    pub key: String,
    /// Extension, kept but not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_extension: Option<serde_json::Value>,
}

impl KeyEntry {
    /// Creates an entry without extensions from a key id and the key's
    /// base64 text.
    pub fn new(key_id: String, key: String) -> Self {
        Self { key_ID: key_id, key_ID_extension: None, key, key_extension: None }
    }
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for KeyEntry {
    /// Prints the key id, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry").field("key_ID", &self.key_ID).finish_non_exhaustive()
    }
}

/// Key IDs data format (6.4), the body of `POST .../dec_keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyIds {
    /// The requested key ids.
    pub key_IDs: Vec<KeyIdEntry>,
    /// Extension, kept but not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_IDs_extension: Option<serde_json::Value>,
}

/// One entry of [`KeyIds`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyIdEntry {
    /// Key id, as the master SAE received it.
    pub key_ID: String,
    /// Extension, kept but not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ID_extension: Option<serde_json::Value>,
}

/// Error data format (6.5), the body of a 400, 401 or 503 response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable description of the error.
    pub message: String,
    /// Further details; the test KME puts `{"key_ID": ...}` objects here for
    /// key ids it cannot deliver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parses_standard_fields() {
        let json = r#"{
            "source_KME_ID": "AAAABBBBCCCCDDDD", "target_KME_ID": "EEEEFFFFGGGGHHHH",
            "master_SAE_ID": "IIIIJJJJKKKKLLLL", "slave_SAE_ID": "MMMMNNNNOOOOPPPP",
            "key_size": 352, "stored_key_count": 25000, "max_key_count": 100000,
            "max_key_per_request": 128, "max_key_size": 1024, "min_key_size": 64,
            "max_SAE_ID_count": 0, "vendor_field": true
        }"#;

        let status: Status = serde_json::from_str(json).unwrap();

        assert_eq!(status.key_size, 352);
        assert_eq!(status.master_SAE_ID, "IIIIJJJJKKKKLLLL");
        assert_eq!(status.max_SAE_ID_count, 0);
        assert_eq!(status.status_extension, None);
    }

    #[test]
    fn key_request_omits_unset_fields() {
        let request = KeyRequest { number: Some(2), size: Some(256), ..KeyRequest::default() };

        let json = serde_json::to_value(&request).unwrap();

        assert_eq!(json, serde_json::json!({"number": 2, "size": 256}));
    }

    #[test]
    fn key_container_keeps_extensions() {
        let json = r#"{"keys": [{"key_ID": "k1", "key": "AAEC", "key_extension": {"x": 1}}],
                       "key_container_extension": {"y": 2}}"#;

        let container: KeyContainer = serde_json::from_str(json).unwrap();

        assert_eq!(container.keys.len(), 1);
        assert_eq!(container.keys[0].key_ID, "k1");
        assert_eq!(container.keys[0].key_extension, Some(serde_json::json!({"x": 1})));
        assert!(container.key_container_extension.is_some());
    }

    #[test]
    fn key_entry_debug_hides_key() {
        let entry = KeyEntry::new("k1".to_owned(), "c2VjcmV0".to_owned());

        let printed = format!("{entry:?}");

        assert!(printed.contains("k1"), "{printed}");
        assert!(!printed.contains("c2VjcmV0"), "{printed}");
    }
}
