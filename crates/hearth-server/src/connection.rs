//! Parameters each TLS connection negotiated, visible to its client and the admin.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Connections kept in the recent-connections log.
const LOG_CAPACITY: usize = 256;

/// The parameters of one TLS connection, attached to each of its requests.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionInfo {
    /// Sequence number of the connection since the server started.
    pub id: u64,
    /// The client's address.
    #[schema(value_type = String, example = "192.168.1.20:50112")]
    pub peer: SocketAddr,
    /// IANA name of the key-exchange group, e.g. `X25519MLKEM768`.
    pub key_exchange_group: Option<String>,
    /// Whether the key exchange resists a quantum attacker recording it.
    pub post_quantum: bool,
    /// TLS version, e.g. `TLSv1_3`.
    pub protocol: Option<String>,
    /// Cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<String>,
    /// Application protocol chosen by ALPN: `h2` or `http/1.1`.
    pub alpn: Option<String>,
    /// Server name the client asked for (SNI), if any.
    pub server_name: Option<String>,
    /// When the handshake finished, in seconds since the Unix epoch.
    pub established_at: u64,
}

impl ConnectionInfo {
    /// Reads the negotiated parameters of a finished server handshake.
    pub fn from_tls(id: u64, peer: SocketAddr, conn: &rustls::ServerConnection) -> Self {
        let group = conn.negotiated_key_exchange_group().map(|g| g.name());
        Self {
            id,
            peer,
            key_exchange_group: group.map(hearth_pqc::group_name),
            post_quantum: group.is_some_and(hearth_pqc::tls::is_post_quantum),
            protocol: conn.protocol_version().map(|v| format!("{v:?}")),
            cipher_suite: conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())),
            alpn: conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
            server_name: conn.server_name().map(str::to_owned),
            established_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

/// The most recent connections, newest last, for the admin's view.
#[derive(Default)]
pub struct ConnectionLog {
    next_id: AtomicU64,
    recent: Mutex<VecDeque<ConnectionInfo>>,
}

impl ConnectionLog {
    /// Draws the id of a new connection.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records a finished handshake.
    pub fn record(&self, info: ConnectionInfo) {
        let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if recent.len() == LOG_CAPACITY {
            recent.pop_front();
        }
        recent.push_back(info);
    }

    /// Returns a copy of the recorded connections, oldest first.
    pub fn snapshot(&self) -> Vec<ConnectionInfo> {
        self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().cloned().collect()
    }
}

/// The TLS exporter value of a connection (RFC 8446 section 7.5), which
/// request proofs sign so that a proof is valid on one connection only.
///
/// The value is no secret towards the client on that connection: the
/// server sends it in the `Hearth-Binding` header, because browsers cannot
/// compute it themselves.
#[derive(Clone, Copy)]
pub struct TlsBinding(pub [u8; hearth_access::proof::EXPORTER_LEN]);

impl TlsBinding {
    /// Derives the value from a finished server handshake, or `None` when
    /// the connection cannot export keying material (not TLS 1.3 yet).
    pub fn from_tls(conn: &rustls::ServerConnection) -> Option<Self> {
        conn.export_keying_material([0u8; hearth_access::proof::EXPORTER_LEN], hearth_access::proof::EXPORTER_LABEL, None)
            .ok()
            .map(Self)
    }

    /// Returns the value as base64url without padding, as headers carry it.
    pub fn to_header_value(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }
}
