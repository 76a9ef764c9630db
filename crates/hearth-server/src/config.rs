//! Paths, names and addresses of a server run.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Default listening address: every IPv4 interface, so LAN devices can
/// connect.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";

/// The data folder: `$XDG_DATA_HOME/hearth`, else `~/.local/share/hearth`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("hearth");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/hearth"),
        None => PathBuf::from("/var/lib/hearth"),
    }
}

/// Where the pieces of a data folder live.
#[derive(Debug, Clone)]
pub struct DataPaths {
    /// The SQLite database.
    pub database: PathBuf,
    /// CA and server certificate with their keys (mode 0700 folder).
    pub tls: PathBuf,
    /// Cached thumbnails.
    pub thumbnails: PathBuf,
}

impl DataPaths {
    /// The layout under `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            database: root.join("hearth.sqlite3"),
            tls: root.join("tls"),
            thumbnails: root.join("cache/thumbnails"),
        }
    }
}

/// DNS names the server certificate covers: localhost, the host name and
/// its mDNS form `NAME.local`.
pub fn host_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host = host.trim().to_ascii_lowercase();
    let valid = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid && host != "localhost" {
        names.push(host.clone());
        if !host.ends_with(".local") && !host.contains('.') {
            names.push(format!("{host}.local"));
        }
    }
    names
}

/// Loopback and LAN addresses of this host, for the certificate. Link-local
/// IPv6 addresses are left out: they need a zone and browsers do not use
/// them in URLs.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = vec!["127.0.0.1".parse().expect("literal IPv4"), "::1".parse().expect("literal IPv6")];
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => {
            for interface in interfaces {
                let ip = interface.ip();
                let link_local_v6 = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
                if !link_local_v6 && !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "failed to list network interfaces; certificate covers loopback only"),
    }
    addresses
}

/// The address to show people in the printed URL: the first LAN address,
/// else the host name, else localhost.
pub fn display_host(listen: std::net::SocketAddr) -> String {
    if !listen.ip().is_unspecified() {
        return match listen.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
    }
    host_addresses()
        .into_iter()
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "localhost".to_owned())
}
