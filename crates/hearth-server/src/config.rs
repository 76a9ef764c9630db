//! Paths, names and addresses of a server run.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Default listening address: every IPv4 interface, so LAN devices can
/// connect.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";

/// Returns the data folder: `$XDG_DATA_HOME/hearth`, else `~/.local/share/hearth`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("hearth");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/hearth"),
        None => PathBuf::from("/var/lib/hearth"),
    }
}

/// Layout of a data folder.
#[derive(Debug, Clone)]
pub struct DataPaths {
    /// The SQLite database.
    pub database: PathBuf,
    /// CA and server certificate with their keys (mode 0700 folder).
    pub tls: PathBuf,
    /// Cached thumbnails.
    pub thumbnails: PathBuf,
    /// Sealed private keys (signing keys) and their key-encryption key.
    pub keys: PathBuf,
}

impl DataPaths {
    /// Builds the layout under `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            database: root.join("hearth.sqlite3"),
            tls: root.join("tls"),
            thumbnails: root.join("cache/thumbnails"),
            keys: root.join("keys"),
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

/// Picks the address to show people in the printed URL: the first LAN address,
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

/// Settings from the TOML configuration file. Every field is optional:
/// `HEARTH_*` environment variables and command-line options override it,
/// and built-in defaults fill the rest.
///
/// ```toml
/// libraries = ["/srv/media/films", "/srv/media/music"]
/// listen = "0.0.0.0:8443"
/// data_dir = "/var/lib/hearth"
/// pq_only = false
/// probe_timeout_secs = 20
/// watch = true
/// ```
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Library folders, added to those given on the command line.
    #[serde(default)]
    pub libraries: Vec<PathBuf>,
    /// Address and port to listen on (default 0.0.0.0:8443).
    pub listen: Option<std::net::SocketAddr>,
    /// Data folder (default `$XDG_DATA_HOME/hearth`).
    pub data_dir: Option<PathBuf>,
    /// Accept only X25519MLKEM768 (default false).
    pub pq_only: Option<bool>,
    /// Seconds allowed to probe one file (default 20).
    pub probe_timeout_secs: Option<u64>,
    /// Watch library folders for changes (default true).
    pub watch: Option<bool>,
}

/// Errors reading the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` could not be read.
    #[error("failed to read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped setting.
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error, with line and column.
        #[source]
        source: toml::de::Error,
    },
}

impl FileConfig {
    /// Loads `explicit` when given (it must exist), else the default file
    /// `$XDG_CONFIG_HOME/hearth/hearth.toml` when it exists, else nothing.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match explicit {
            Some(path) => path.to_owned(),
            None => {
                let path = default_config_path();
                if !path.exists() {
                    return Ok(Self::default());
                }
                path
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })
    }
}

/// Returns the default configuration file: `$XDG_CONFIG_HOME/hearth/hearth.toml`,
/// else `~/.config/hearth/hearth.toml`.
pub fn default_config_path() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("hearth/hearth.toml");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".config/hearth/hearth.toml"),
        None => PathBuf::from("/etc/hearth/hearth.toml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_parses_every_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.toml");
        std::fs::write(
            &path,
            "libraries = [\"/srv/films\"]\nlisten = \"127.0.0.1:9443\"\ndata_dir = \"/var/lib/hearth\"\n\
             pq_only = true\nprobe_timeout_secs = 5\nwatch = false\n",
        )
        .unwrap();

        let config = FileConfig::load(Some(&path)).unwrap();

        assert_eq!(config.libraries, [PathBuf::from("/srv/films")]);
        assert_eq!(config.listen, Some("127.0.0.1:9443".parse().unwrap()));
        assert_eq!(config.data_dir.as_deref(), Some(Path::new("/var/lib/hearth")));
        assert_eq!(config.pq_only, Some(true));
        assert_eq!(config.probe_timeout_secs, Some(5));
        assert_eq!(config.watch, Some(false));
    }

    #[test]
    fn unknown_setting_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.toml");
        std::fs::write(&path, "librarys = [\"/srv/films\"]\n").unwrap();

        let err = FileConfig::load(Some(&path)).unwrap_err().to_string();

        assert!(err.contains("hearth.toml"), "{err}");
        assert!(err.contains("librarys"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = FileConfig::load(Some(Path::new("/nonexistent/hearth.toml"))).unwrap_err();

        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }
}
