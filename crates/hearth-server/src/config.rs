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
    /// CA and server certificates, public (mode 0700 folder). Their keys
    /// are sealed in `keys`.
    pub tls: PathBuf,
    /// Cached thumbnails.
    pub thumbnails: PathBuf,
    /// Trickplay sprite sheets, one folder per video.
    pub trickplay: PathBuf,
    /// Key frame indexes of H.264 sources, for remuxed HLS.
    pub keyframes: PathBuf,
    /// The guard's saved bans (`bans.json`) and forensic records (`records/`).
    pub guard: PathBuf,
    /// Sealed private keys (CA, TLS leaf, signing, node X-Wing and link keys)
    /// and, without an OS keyring, their key-encryption key.
    pub keys: PathBuf,
}

impl DataPaths {
    /// Builds the layout under `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            database: root.join("hearth.sqlite3"),
            tls: root.join("tls"),
            thumbnails: root.join("cache/thumbnails"),
            trickplay: root.join("cache/trickplay"),
            keyframes: root.join("cache/keyframes"),
            keys: root.join("keys"),
            guard: root.join("guard"),
        }
    }
}

/// DNS names the server certificate covers: localhost, the host name and
/// its mDNS form `NAME.local`.
pub fn host_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    if let Some(host) = host_name() {
        names.push(host.clone());
        if !host.ends_with(".local") && !host.contains('.') {
            names.push(format!("{host}.local"));
        }
    }
    names
}

/// Returns this host's name in lowercase, or `None` when it is unset,
/// `localhost`, or contains characters other than letters, digits, `-` and `.`.
pub fn host_name() -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host = host.trim().to_ascii_lowercase();
    let valid = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    (valid && host != "localhost").then_some(host)
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
///
/// [node]
/// sae_id = "nas"
///
/// [guard]
/// mode = "enforce"
/// scorer = true
/// nftables = false
///
/// [qkd]
/// kme_url = "https://kme-a.local:8443"
/// client_cert = "/etc/hearth/qkd/sae.pem"
/// client_key = "/etc/hearth/qkd/sae-key.pem"
/// kme_ca = "/etc/hearth/qkd/kme-ca.pem"
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
    /// This node's identity towards other Hearth nodes.
    #[serde(default)]
    pub node: NodeSection,
    /// The QKD key management entity (KME) for link keys. Without it, link
    /// keys between nodes use X-Wing alone.
    pub qkd: Option<QkdSection>,
    /// The household's access policy settings.
    #[serde(default)]
    pub access: AccessSection,
    /// HLS transcoding limits and the encoder.
    #[serde(default)]
    pub transcode: TranscodeSection,
    /// The intrusion guard.
    #[serde(default)]
    pub guard: GuardSection,
}

/// The `[guard]` table.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSection {
    /// `enforce` (default: ban, rate limit, end sessions), `observe` (alerts
    /// and records only) or `off`. `HEARTH_GUARD_MODE` overrides it.
    pub mode: Option<crate::guard::GuardMode>,
    /// A file that receives every request the guard sees as one JSON line,
    /// for training the scorer. Off by default: it grows without bound.
    /// `HEARTH_GUARD_RECORD` overrides it.
    pub record: Option<PathBuf>,
    /// Whether the neural scorer (models/guard-scorer) reads each source's
    /// latest requests beside the rules (default true). Without it, paired
    /// devices are only ever rate limited by the guard.
    pub scorer: Option<bool>,
    /// Whether bans also go into the nftables sets of the table
    /// `inet hearth_guard`, so the kernel drops a banned address's packets
    /// before the TCP handshake (default false). Needs root and the `nft`
    /// command; only in `enforce` mode.
    pub nftables: Option<bool>,
}

/// The `[transcode]` table.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscodeSection {
    /// Most transcodes running at once, 1 to 32 (default: half the CPU
    /// cores, at least 1, at most 4). Further requests wait in a queue.
    pub max_concurrent: Option<usize>,
    /// H.264 encoder: `auto` (default: the first that works of nvh264enc,
    /// vaapih264enc, v4l2h264enc, then x264enc) or one of those names.
    pub encoder: Option<String>,
    /// Seconds without a request after which a transcode stops, 2 to 600
    /// (default 8). A player that comes back restarts it where it left off.
    pub idle_stop_seconds: Option<u64>,
}

/// The `[access]` table.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// Offset of the household's local time from UTC in minutes, for the
    /// policy's hours (such as a child's 07:00 to 20:00). Default: the
    /// host's time zone, which a NAS often keeps at UTC.
    pub utc_offset_minutes: Option<i32>,
    /// Seconds a session stays open after its last signed request, 5 to
    /// 3600 (default 300). Shorter ends forgotten sessions sooner.
    pub session_idle_seconds: Option<i64>,
}

/// The `[node]` table: how this node names itself to other nodes.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Secure application entity (SAE) id of this node: the name other nodes
    /// and the QKD KME know it by, 1 to 64 characters from `A-Z`, `a-z`,
    /// `0-9`, `.`, `_` and `-`. Default: the host name, else `hearth`. It
    /// must stay the same across restarts, because peers store link keys
    /// under it, and must match the SAE id in this node's KME client
    /// certificate.
    pub sae_id: Option<String>,
}

/// The `[qkd]` table: this node's KME under ETSI GS QKD 014, reached over
/// HTTPS with mutual TLS. All four keys are required when the table is
/// present.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QkdSection {
    /// Base URL of the KME, such as `https://kme-a.local:8443` (https only).
    pub kme_url: String,
    /// PEM file with this node's KME client certificate, leaf first.
    pub client_cert: PathBuf,
    /// PEM file with the private key of `client_cert`.
    pub client_key: PathBuf,
    /// PEM file with the CA certificates that the KME's server certificate
    /// must chain to.
    pub kme_ca: PathBuf,
}

/// SAE id used when neither the configuration nor the host name gives one.
pub const FALLBACK_SAE_ID: &str = "hearth";
/// Maximum length of an SAE id, in bytes.
pub const MAX_SAE_ID_LEN: usize = 64;

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
    /// The SAE id from `[node] sae_id` or `--sae-id` breaks the naming rules.
    #[error(
        "invalid SAE id {value:?} in [node] sae_id or --sae-id: {reason}; use 1 to 64 characters \
         from A-Z, a-z, 0-9, '.', '_' and '-'"
    )]
    InvalidSaeId {
        /// The rejected id.
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A key of the `[qkd]` table is invalid: an unusable URL, or a PEM file
    /// that is missing or contains no usable certificate or key.
    #[error("invalid [qkd] {key}: {source}; {hint}")]
    Qkd {
        /// The key at fault, such as `client_cert`.
        key: &'static str,
        /// Hint for the fix.
        hint: &'static str,
        /// The KME client's error.
        #[source]
        source: hearth_qkd::ConfigError,
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

    /// Resolves this node's SAE id: `command_line` (`--sae-id` or
    /// `HEARTH_SAE_ID`) when given, else `[node] sae_id`, else the host
    /// name, else [`FALLBACK_SAE_ID`].
    pub fn sae_id(&self, command_line: Option<&str>) -> Result<String, ConfigError> {
        let configured = command_line.map(str::to_owned).or_else(|| self.node.sae_id.clone());
        match configured {
            Some(value) => {
                validate_sae_id(&value)?;
                Ok(value)
            }
            None => Ok(host_name().filter(|host| validate_sae_id(host).is_ok()).unwrap_or_else(|| FALLBACK_SAE_ID.to_owned())),
        }
    }
}

impl QkdSection {
    /// Reads the PEM files and builds the KME client configuration for the
    /// SAE `sae_id`. An error names the `[qkd]` key at fault.
    pub fn client_config(&self, sae_id: &str) -> Result<hearth_qkd::KmeClientConfig, ConfigError> {
        let config =
            hearth_qkd::KmeClientConfig::from_pem_files(&self.kme_url, sae_id, &self.client_cert, &self.client_key, &self.kme_ca)
                .map_err(|source| self.qkd_error(source))?;
        Ok(config)
    }

    /// Builds the KME client: checks the URL and that the key matches the
    /// certificate. Makes no request.
    pub fn client(&self, sae_id: &str) -> Result<hearth_qkd::EtsiQkdClient, ConfigError> {
        let config = self.client_config(sae_id)?;
        hearth_qkd::EtsiQkdClient::new(config).map_err(|source| self.qkd_error(source))
    }

    /// Attributes a KME client error to the `[qkd]` key that caused it.
    fn qkd_error(&self, source: hearth_qkd::ConfigError) -> ConfigError {
        use hearth_qkd::ConfigError as Qkd;

        let (key, hint) = match &source {
            Qkd::InvalidUrl { .. } | Qkd::NotHttps { .. } => ("kme_url", "set it to the KME's https base URL"),
            Qkd::Io { path, .. } if *path == self.client_key => {
                ("client_key", "set it to the PEM file with the private key of client_cert")
            }
            Qkd::Io { path, .. } if *path == self.kme_ca => ("kme_ca", "set it to the PEM file with the KME's CA certificate"),
            Qkd::Io { .. } => ("client_cert", "set it to the PEM file with this node's KME client certificate"),
            Qkd::InvalidPem { input, .. } | Qkd::MissingPem { input } => match *input {
                "client key" => ("client_key", "set it to the PEM file with the private key of client_cert"),
                "KME CA certificate" => ("kme_ca", "set it to the PEM file with the KME's CA certificate"),
                _ => ("client_cert", "set it to the PEM file with this node's KME client certificate"),
            },
            Qkd::Tls(_) => ("client_key", "check that client_key is the private key of client_cert"),
            Qkd::HttpClient(_) => ("kme_url", "check the KME settings"),
        };
        ConfigError::Qkd { key, hint, source }
    }
}

/// Checks an SAE id against the rules of [`NodeSection::sae_id`].
pub fn validate_sae_id(value: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidSaeId { value: value.to_owned(), reason };

    if value.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    if value.len() > MAX_SAE_ID_LEN {
        return Err(invalid(format!("it is {} bytes long", value.len())));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(invalid(format!("it contains {c:?}")));
    }
    // The id is a path segment of the KME's URLs, where `.` and `..` are
    // dot segments that URL parsers remove.
    if value.bytes().all(|b| b == b'.') {
        return Err(invalid("it is made only of dots".to_owned()));
    }
    Ok(())
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
    fn node_and_qkd_tables_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.toml");
        std::fs::write(
            &path,
            "[node]\nsae_id = \"nas\"\n\n[qkd]\nkme_url = \"https://kme.local:8443\"\nclient_cert = \"/q/sae.pem\"\n\
             client_key = \"/q/sae-key.pem\"\nkme_ca = \"/q/ca.pem\"\n",
        )
        .unwrap();

        let config = FileConfig::load(Some(&path)).unwrap();

        assert_eq!(config.sae_id(None).unwrap(), "nas");
        assert_eq!(config.sae_id(Some("desktop")).unwrap(), "desktop");
        let qkd = config.qkd.unwrap();
        assert_eq!(qkd.kme_url, "https://kme.local:8443");
        assert_eq!(qkd.kme_ca, Path::new("/q/ca.pem"));
    }

    #[test]
    fn default_sae_id_follows_naming_rules() {
        let sae_id = FileConfig::default().sae_id(None).unwrap();

        assert!(validate_sae_id(&sae_id).is_ok(), "{sae_id}");
    }

    #[test]
    fn invalid_sae_id_names_key_and_character() {
        let config = FileConfig { node: NodeSection { sae_id: Some("my nas".to_owned()) }, ..FileConfig::default() };

        let err = config.sae_id(None).unwrap_err().to_string();

        assert!(err.contains("[node] sae_id"), "{err}");
        assert!(err.contains("' '"), "{err}");
        assert!(config.sae_id(Some(&"a".repeat(65))).is_err());
        assert!(config.sae_id(Some("")).is_err());
    }

    #[test]
    fn dot_only_sae_ids_are_rejected() {
        for id in [".", "..", "..."] {
            let err = validate_sae_id(id).unwrap_err().to_string();
            assert!(err.contains("only of dots"), "{id}: {err}");
        }
        assert!(validate_sae_id("nas.local").is_ok());
        assert!(validate_sae_id(".nas").is_ok());
    }

    #[test]
    fn missing_qkd_file_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let qkd = QkdSection {
            kme_url: "https://kme.local:8443".to_owned(),
            client_cert: dir.path().join("absent-cert.pem"),
            client_key: dir.path().join("absent-key.pem"),
            kme_ca: dir.path().join("absent-ca.pem"),
        };

        let err = qkd.client("nas").err().expect("missing files are an error").to_string();

        assert!(err.contains("[qkd] client_cert"), "{err}");
        assert!(err.contains("absent-cert.pem"), "{err}");
    }

    #[test]
    fn plain_http_kme_url_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let kme = hearth_qkd::test_kme::TestKme::start(hearth_qkd::test_kme::TestKmeConfig::default()).unwrap();
        let credentials = kme.credentials("sae-a").unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let qkd = QkdSection {
            kme_url: kme.base_url().replace("https", "http"),
            client_cert: write("cert.pem", &credentials.cert_pem),
            client_key: write("key.pem", &credentials.key_pem),
            kme_ca: write("ca.pem", kme.ca_pem()),
        };

        let err = qkd.client("sae-a").err().expect("http URL is an error").to_string();

        assert!(err.contains("[qkd] kme_url"), "{err}");
        assert!(err.contains("https"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = FileConfig::load(Some(Path::new("/nonexistent/hearth.toml"))).unwrap_err();

        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }
}
