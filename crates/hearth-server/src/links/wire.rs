//! JSON bodies of the link endpoints. Every body carries `"version": 1`,
//! and byte strings are base64url without padding (RFC 4648, section 5).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_pqc::kem::{KemError, XWingCiphertext, XWingPublicKey};
use hearth_pqc::qkd::{LinkFinish, LinkOffer, LinkReply};
use serde::{Deserialize, Serialize};

use super::records::LinkInfo;
use crate::config::MAX_SAE_ID_LEN;

/// Version of the JSON bodies below; a body with another version is rejected.
pub const WIRE_VERSION: u32 = 1;
/// Maximum length of a QKD key id, in bytes. ETSI GS QKD 014 key ids are
/// UUIDs (36 characters).
pub const MAX_QKD_KEY_ID_LEN: usize = 128;
/// Length of a handshake id: 32 lowercase hex digits.
pub const HANDSHAKE_ID_LEN: usize = 32;
/// Characters of a rejected value that an error message repeats.
const ECHO_PREFIX_CHARS: usize = 16;
/// Maximum characters of peer text that this node prints or forwards.
pub const MAX_PEER_TEXT_CHARS: usize = 500;

/// `GET /api/v1/admin/node`: the data a master needs to link with this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// This node's SAE id.
    pub sae_id: String,
    /// This node's X-Wing public key (1216 bytes, base64url).
    pub xwing_public_key: String,
    /// Whether this node has a KME configured.
    pub qkd_configured: bool,
}

/// `POST /api/v1/admin/links/offer`, master to slave: a [`LinkOffer`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferBody {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// SAE id of the master.
    pub master_sae_id: String,
    /// SAE id of the slave.
    pub slave_sae_id: String,
    /// X-Wing ciphertext for the slave's public key (1120 bytes, base64url).
    pub ciphertext: String,
    /// Id of the QKD key mixed in, or `null` for X-Wing alone.
    pub qkd_key_id: Option<String>,
}

/// Response to an offer, slave to master: a [`LinkReply`] and the id that
/// the finish message must name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplyBody {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// Id of the slave's pending handshake (32 hex digits).
    pub handshake_id: String,
    /// The slave's key-confirmation tag (32 bytes, base64url).
    pub confirmation: String,
}

/// `POST /api/v1/admin/links/finish`, master to slave: a [`LinkFinish`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// The id from the slave's [`ReplyBody`].
    pub handshake_id: String,
    /// The master's key-confirmation tag (32 bytes, base64url).
    pub confirmation: String,
}

/// `POST /api/v1/admin/links`: the peer that this node links with as master.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Base URL of the peer, such as `https://desktop.local:8443`.
    pub peer_url: String,
    /// The peer's household CA certificate in PEM form; the only CA trusted
    /// for the connection to the peer.
    pub peer_ca_pem: String,
    /// A one-time invitation from the peer (`hearth link-invite` there).
    /// Never logged.
    pub peer_invite: String,
}

/// Response of `POST /api/v1/admin/links` and of the finish message: the
/// link as the responding node stored it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkResult {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// The stored link.
    pub link: LinkInfo,
}

/// `GET /api/v1/admin/links`: this node's SAE id and its links.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkList {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// This node's SAE id.
    pub sae_id: String,
    /// The current link key of every peer, sorted by peer SAE id.
    pub links: Vec<LinkInfo>,
}

/// Value of `code` in the 409 error body that requests a retry without QKD.
pub const QKD_KEY_UNAVAILABLE: &str = "qkd_key_unavailable";

/// An error body as the link endpoints send it: `error` always, `code` and
/// `qkd_key_id` on the 409 that requests a retry without QKD.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Description of the failure and of the fix.
    pub error: String,
    /// Machine-readable kind, [`QKD_KEY_UNAVAILABLE`] or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The QKD key id the slave could not obtain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qkd_key_id: Option<String>,
}

/// Errors decoding a body of the link protocol.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The body is not JSON of the expected shape.
    #[error("invalid {item} JSON: {source}")]
    Json {
        /// The body, such as "link offer".
        item: &'static str,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The body has a protocol version this node does not speak.
    #[error("unsupported {item} version {found}: this node speaks version {WIRE_VERSION}")]
    Version {
        /// The body.
        item: &'static str,
        /// The version it carries.
        found: u32,
    },
    /// A byte field is not base64url without padding.
    #[error("invalid {field}: not base64url without padding: {source}")]
    Base64 {
        /// The field.
        field: &'static str,
        /// The decoder's error.
        #[source]
        source: base64::DecodeError,
    },
    /// A confirmation tag is not 32 bytes long.
    #[error("invalid {field}: {len} bytes, expected 32")]
    TagLength {
        /// The field.
        field: &'static str,
        /// Its decoded length.
        len: usize,
    },
    /// A text field is longer than the protocol allows.
    #[error("invalid {field}: {len} bytes, expected at most {max}; it starts with {start}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The maximum length in bytes.
        max: usize,
        /// Its first characters, escaped.
        start: String,
    },
    /// A handshake id is not 32 lowercase hex digits.
    #[error("invalid handshake_id {start}: expected {HANDSHAKE_ID_LEN} lowercase hex digits from the offer's reply")]
    HandshakeId {
        /// Its first characters, escaped.
        start: String,
    },
    /// A public key or ciphertext does not decode.
    #[error("invalid {field}: {source}")]
    Kem {
        /// The field.
        field: &'static str,
        /// The X-Wing decoder's error.
        #[source]
        source: KemError,
    },
}

/// Parses a JSON body of the link protocol.
pub fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8], item: &'static str) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|source| WireError::Json { item, source })
}

/// Encodes bytes as base64url without padding.
pub fn encode_bytes(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl NodeInfo {
    /// Checks the version and decodes the public key.
    pub fn public_key(&self) -> Result<XWingPublicKey, WireError> {
        check_version("node description", self.version)?;
        let bytes = decode_bytes("xwing_public_key", &self.xwing_public_key)?;
        XWingPublicKey::from_bytes(&bytes).map_err(|source| WireError::Kem { field: "xwing_public_key", source })
    }
}

impl OfferBody {
    /// Encodes `offer`.
    pub fn new(offer: &LinkOffer) -> Self {
        Self {
            version: WIRE_VERSION,
            master_sae_id: offer.master_sae_id.clone(),
            slave_sae_id: offer.slave_sae_id.clone(),
            ciphertext: encode_bytes(&offer.ciphertext.to_bytes()),
            qkd_key_id: offer.qkd_key_id.clone(),
        }
    }

    /// Checks the version and the field lengths, and decodes the offer.
    pub fn to_offer(&self) -> Result<LinkOffer, WireError> {
        check_version("link offer", self.version)?;
        check_len("master_sae_id", &self.master_sae_id, MAX_SAE_ID_LEN)?;
        check_len("slave_sae_id", &self.slave_sae_id, MAX_SAE_ID_LEN)?;
        if let Some(key_id) = &self.qkd_key_id {
            check_len("qkd_key_id", key_id, MAX_QKD_KEY_ID_LEN)?;
        }
        let bytes = decode_bytes("ciphertext", &self.ciphertext)?;
        let ciphertext = XWingCiphertext::from_bytes(&bytes).map_err(|source| WireError::Kem { field: "ciphertext", source })?;
        Ok(LinkOffer {
            master_sae_id: self.master_sae_id.clone(),
            slave_sae_id: self.slave_sae_id.clone(),
            ciphertext,
            qkd_key_id: self.qkd_key_id.clone(),
        })
    }
}

impl ReplyBody {
    /// Encodes `reply` with the id of the slave's pending handshake.
    pub fn new(handshake_id: String, reply: &LinkReply) -> Self {
        Self { version: WIRE_VERSION, handshake_id, confirmation: encode_bytes(&reply.confirmation) }
    }

    /// Checks the version and decodes the reply.
    pub fn to_reply(&self) -> Result<LinkReply, WireError> {
        check_version("link reply", self.version)?;
        check_handshake_id(&self.handshake_id)?;
        Ok(LinkReply { confirmation: decode_tag("confirmation", &self.confirmation)? })
    }
}

impl FinishBody {
    /// Encodes `finish` for the slave's handshake `handshake_id`.
    pub fn new(handshake_id: String, finish: &LinkFinish) -> Self {
        Self { version: WIRE_VERSION, handshake_id, confirmation: encode_bytes(&finish.confirmation) }
    }

    /// Checks the version and decodes the finish message.
    pub fn to_finish(&self) -> Result<LinkFinish, WireError> {
        check_version("link finish", self.version)?;
        check_handshake_id(&self.handshake_id)?;
        Ok(LinkFinish { confirmation: decode_tag("confirmation", &self.confirmation)? })
    }
}

/// Makes text from a peer safe to print and log: control characters are
/// escaped (`\u{1b}`), and text beyond [`MAX_PEER_TEXT_CHARS`] is cut with
/// a note of how much was left out.
pub fn peer_text(text: &str) -> String {
    let mut safe = String::new();
    let mut chars = text.chars();
    for c in chars.by_ref().take(MAX_PEER_TEXT_CHARS) {
        if c.is_control() {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    let rest = chars.count();
    if rest > 0 {
        safe.push_str(&format!("... ({rest} more characters)"));
    }
    safe
}

/// Returns the first characters of `text`, escaped, for an error message.
fn echo_start(text: &str) -> String {
    let start: String = text.chars().take(ECHO_PREFIX_CHARS).collect();
    if start.len() < text.len() { format!("{start:?}...") } else { format!("{start:?}") }
}

fn check_len(field: &'static str, text: &str, max: usize) -> Result<(), WireError> {
    if text.len() <= max {
        return Ok(());
    }
    Err(WireError::TooLong { field, len: text.len(), max, start: echo_start(text) })
}

fn check_handshake_id(id: &str) -> Result<(), WireError> {
    let valid = id.len() == HANDSHAKE_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid { Ok(()) } else { Err(WireError::HandshakeId { start: echo_start(id) }) }
}

fn check_version(item: &'static str, found: u32) -> Result<(), WireError> {
    if found == WIRE_VERSION { Ok(()) } else { Err(WireError::Version { item, found }) }
}

fn decode_bytes(field: &'static str, text: &str) -> Result<Vec<u8>, WireError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|source| WireError::Base64 { field, source })
}

fn decode_tag(field: &'static str, text: &str) -> Result<[u8; 32], WireError> {
    let bytes = decode_bytes(field, text)?;
    bytes.as_slice().try_into().map_err(|_| WireError::TagLength { field, len: bytes.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_roundtrips_through_json() {
        let finish = LinkFinish { confirmation: [0xfe; 32] };

        let json = serde_json::to_string(&FinishBody::new("ab".repeat(16), &finish)).unwrap();
        let parsed: FinishBody = parse(json.as_bytes(), "link finish").unwrap();

        assert!(!json.contains('='), "padding in {json}");
        assert!(!json.contains('+'), "not base64url: {json}");
        assert!(!json.contains('/'), "not base64url: {json}");
        assert_eq!(parsed.to_finish().unwrap(), finish);
    }

    #[test]
    fn other_version_is_rejected() {
        let body = FinishBody { version: 2, handshake_id: "x".into(), confirmation: encode_bytes(&[0; 32]) };

        let err = body.to_finish().unwrap_err().to_string();

        assert!(err.contains("version 2"), "{err}");
    }

    #[test]
    fn short_tag_names_field_and_length() {
        let body = FinishBody { version: 1, handshake_id: "ab".repeat(16), confirmation: encode_bytes(&[0; 31]) };

        let err = body.to_finish().unwrap_err().to_string();

        assert!(err.contains("confirmation"), "{err}");
        assert!(err.contains("31 bytes"), "{err}");
    }

    #[test]
    fn padded_base64_is_rejected() {
        let body = FinishBody { version: 1, handshake_id: "ab".repeat(16), confirmation: format!("{}=", encode_bytes(&[0; 32])) };

        assert!(matches!(body.to_finish(), Err(WireError::Base64 { .. })));
    }

    #[test]
    fn long_handshake_id_is_rejected_with_short_echo() {
        let body = FinishBody { version: 1, handshake_id: "a".repeat(100_000), confirmation: encode_bytes(&[0; 32]) };

        let err = body.to_finish().unwrap_err().to_string();

        assert!(err.contains("handshake_id"), "{err}");
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn long_qkd_key_id_is_rejected_with_short_echo() {
        let body = OfferBody {
            version: 1,
            master_sae_id: "a".into(),
            slave_sae_id: "b".into(),
            ciphertext: String::new(),
            qkd_key_id: Some("k".repeat(MAX_QKD_KEY_ID_LEN + 1)),
        };

        let err = body.to_offer().unwrap_err().to_string();

        assert!(err.contains("qkd_key_id: 129 bytes, expected at most 128"), "{err}");
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn peer_text_escapes_controls_and_is_capped() {
        let text = format!("\u{1b}[31mred\u{7}\n{}", "x".repeat(600));

        let safe = peer_text(&text);

        assert!(!safe.chars().any(char::is_control), "{safe:?}");
        assert!(safe.starts_with("\\u{1b}[31mred\\u{7}\\n"), "{safe}");
        assert!(safe.ends_with("(110 more characters)"), "{safe}");
    }

    #[test]
    fn unknown_offer_field_is_rejected() {
        let json = br#"{"version":1,"master_sae_id":"a","slave_sae_id":"b","ciphertext":"","qkd_key_id":null,"extra":1}"#;

        let err = parse::<OfferBody>(json, "link offer").unwrap_err().to_string();

        assert!(err.contains("extra"), "{err}");
    }
}
