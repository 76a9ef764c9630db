//! A real `hearth serve` process for end-to-end tests: a temporary data
//! folder, a listener on 127.0.0.1 with a free port, the tokens it prints,
//! paired and signed-in devices ([`device`]), and HTTP clients that trust
//! its household CA.

#![allow(dead_code)]

pub mod device;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use device::TestDevice;
use hearth_access::Role;
use hearth_pqc::KeyExchangePolicy;

/// Folder of the real sample media from Debian's forensics-samples-files.
pub const SAMPLES: &str = "/usr/share/forensics-samples/original-files";
/// Ogg Vorbis sounds from Debian's sound-theme-freedesktop.
pub const SOUNDS: &str = "/usr/share/sounds/freedesktop/stereo";

/// Fails with an install hint when the sample media are absent.
pub fn require_samples() {
    for dir in [SAMPLES, SOUNDS] {
        assert!(
            Path::new(dir).is_dir(),
            "{dir} is missing: install the sample media with `apt-get install forensics-samples-files sound-theme-freedesktop` (scripts/test does)"
        );
    }
}

/// Configuration file that turns the intrusion guard off.
const GUARD_OFF: &str = "[guard]\nmode = \"off\"\n";

/// A running server, killed on drop.
pub struct Server {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its data folder (kept alive by `_data`).
    pub data_dir: PathBuf,
    /// Its stderr log.
    pub log: PathBuf,
    /// The first-run pairing link it printed, if the household had no users.
    pub setup_link: Option<String>,
    /// An admin device, paired on first use by the helpers below.
    admin: std::sync::OnceLock<device::TestDevice>,
    _data: tempfile::TempDir,
}

impl Server {
    /// Starts `hearth serve` on `libraries` and waits until it listens.
    pub fn start(libraries: &[&Path]) -> Self {
        Self::start_with(libraries, &[])
    }

    /// Like [`Server::start`], with extra command-line arguments.
    pub fn start_with(libraries: &[&Path], extra: &[&str]) -> Self {
        Self::launch(libraries, extra, None, None)
    }

    /// Like [`Server::start_with`], with `config` as the TOML configuration
    /// file in place of `/dev/null`.
    pub fn start_with_config(libraries: &[&Path], extra: &[&str], config: &str) -> Self {
        Self::launch(libraries, extra, Some(config), None)
    }

    /// Like [`Server::start`] with the intrusion guard off, for tests that
    /// send hostile requests to check a later layer on its own (the guard
    /// would ban the test's client first; tests/guard.rs tests the guard).
    pub fn start_unguarded(libraries: &[&Path]) -> Self {
        Self::launch(libraries, &[], Some(GUARD_OFF), None)
    }

    /// Like [`Server::start`], serving the built web UI in `ui_dir` (`HEARTH_UI_DIR`).
    pub fn start_with_ui(libraries: &[&Path], ui_dir: &Path) -> Self {
        Self::launch(libraries, &[], None, Some(ui_dir))
    }

    /// Like [`Server::start_with_ui`] with the guard off, for probes of
    /// the UI folder's own refusals.
    pub fn start_with_ui_unguarded(libraries: &[&Path], ui_dir: &Path) -> Self {
        Self::launch(libraries, &[], Some(GUARD_OFF), Some(ui_dir))
    }

    /// Starts a server with the `config` text inside the network namespace
    /// `netns`, which the caller created (`ip netns add`).
    #[allow(dead_code)]
    pub fn start_in_netns(libraries: &[&Path], config: &str, netns: &str) -> Self {
        Self::launch_in(libraries, &[], Some(config), None, Some(netns))
    }

    fn launch(libraries: &[&Path], extra: &[&str], config: Option<&str>, ui_dir: Option<&Path>) -> Self {
        Self::launch_in(libraries, extra, config, ui_dir, None)
    }

    fn launch_in(libraries: &[&Path], extra: &[&str], config: Option<&str>, ui_dir: Option<&Path>, netns: Option<&str>) -> Self {
        let data = tempfile::tempdir().expect("temporary data folder");
        let log = data.path().join("server.log");
        let config_file = match config {
            Some(text) => {
                let path = data.path().join("hearth.toml");
                std::fs::write(&path, text).expect("write configuration file");
                path
            }
            None => PathBuf::from("/dev/null"),
        };
        // `ip netns exec` runs the server in place of itself, so the child
        // is the server in either case.
        let mut command = match netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(env!("CARGO_BIN_EXE_hearth"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_hearth")),
        };
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data.path());
        for library in libraries {
            command.arg("--library").arg(library);
        }
        command.args(extra);
        command
            .env("RUST_LOG", "info")
            // A developer's own configuration file must not leak into tests.
            .env("HEARTH_CONFIG", &config_file)
            // Nor a developer's built UI, which turns the old pages into redirects.
            .env_remove("HEARTH_UI_DIR")
            // Nor a guard mode or record file set for a campaign run.
            .env_remove("HEARTH_GUARD_MODE")
            .env_remove("HEARTH_GUARD_RECORD")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        if let Some(dir) = ui_dir {
            command.env("HEARTH_UI_DIR", dir);
        }
        let mut child = command.spawn().expect("start hearth serve");

        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut addr, mut setup_link, mut ready) = (None, None, false);
        while !ready {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("hearth serve exited early; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            };
            let value = |prefix: &str| line.trim().strip_prefix(prefix).map(|rest| rest.trim().to_owned());
            if let Some(v) = value("Listening:") {
                addr = Some(v.trim_start_matches("https://").parse().expect("listening address"));
            }
            if let Some(v) = value("Pairing link:") {
                setup_link = Some(v);
            }
            // The last line of the welcome text.
            if value("Household CA:").is_some() {
                ready = true;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});

        Self {
            child,
            addr: addr.expect("server printed its address"),
            data_dir: data.path().to_owned(),
            log,
            setup_link,
            admin: std::sync::OnceLock::new(),
            _data: data,
        }
    }

    /// Runs `hearth pair ARGS` on this server's data folder and returns
    /// the pairing link it printed.
    pub fn pairing_offer(&self, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("pair")
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--address")
            .arg(self.addr.to_string())
            .env("HEARTH_CONFIG", "/dev/null")
            .output()
            .expect("run hearth pair");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "hearth pair failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix("Pairing link:").map(|link| link.trim().to_owned()))
            .unwrap_or_else(|| panic!("hearth pair printed no link:\n{stdout}"))
    }

    /// Pairs a new device for a new admin user and signs it in.
    pub fn admin_device(&self) -> TestDevice {
        self.signed_in_device(Role::Admin)
    }

    /// Pairs a new device for a new adult user and signs it in. Every role
    /// but admin is a member for the item routes, so this device never
    /// receives photo locations.
    pub fn adult_device(&self) -> TestDevice {
        self.signed_in_device(Role::Adult)
    }

    /// Pairs a new device for a new user with `role` through `hearth pair`
    /// and SPAKE2, and signs it in. Each call makes a user of its own.
    pub fn signed_in_device(&self, role: Role) -> TestDevice {
        static USERS: AtomicUsize = AtomicUsize::new(1);
        let name = format!("{}-{}", role.as_str(), USERS.fetch_add(1, Ordering::Relaxed));
        let device = TestDevice::new(self);
        device.enroll(self, &name, role);
        device.sign_in(&name);
        device
    }

    /// `https://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Returns the path of the household CA certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir.join("tls/ca.pem")
    }

    /// Builds a blocking HTTP client that trusts the household CA and offers the
    /// key-exchange groups of `policy`.
    pub fn client(&self, policy: KeyExchangePolicy) -> reqwest::blocking::Client {
        let tls = hearth_pqc::client_config(self.household_roots(), policy, &[b"h2", b"http/1.1"]).expect("client TLS config");
        reqwest::blocking::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client")
    }

    /// Loads the household CA as the only trusted root.
    pub fn household_roots(&self) -> rustls::RootCertStore {
        let pem = std::fs::read(self.ca_file()).expect("CA file");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile_certs(&pem) {
            roots.add(cert).expect("valid CA certificate");
        }
        roots
    }

    /// Opens a raw HTTP/1.1 TLS connection (hybrid key exchange, household
    /// CA trusted), for tests that write bytes by hand.
    pub fn tls_stream(&self) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
        let config = hearth_pqc::client_config(self.household_roots(), KeyExchangePolicy::HybridPreferred, &[b"http/1.1"])
            .expect("client TLS config");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("valid server name");
        let conn = rustls::ClientConnection::new(config, name).expect("client connection");
        let tcp = std::net::TcpStream::connect(self.addr).expect("connect to the server");
        tcp.set_read_timeout(Some(Duration::from_secs(60))).expect("read timeout");
        rustls::StreamOwned::new(conn, tcp)
    }

    /// Returns this server's own admin device, pairing and signing it in
    /// on first use.
    pub fn admin(&self) -> &device::TestDevice {
        self.admin.get_or_init(|| self.signed_in_device(Role::Admin))
    }

    /// GET `path` as the admin on a new TLS connection and parse the JSON
    /// body; panics unless the status is 200.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        self.admin().on_new_client(self, KeyExchangePolicy::HybridPreferred).get_json(path)
    }

    /// Waits until the scan started at launch has finished.
    pub fn wait_for_scan(&self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let status = self.get_json("/api/v1/scan");
            let done = status["running"] == false && status["latest"]["phase"] == "done";
            if done {
                return;
            }
            assert!(Instant::now() < deadline, "scan did not finish in 180 s; log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Lists every item of the library (admin view).
    pub fn items(&self) -> Vec<serde_json::Value> {
        self.get_json("/api/v1/items?limit=500")["items"].as_array().expect("items array").clone()
    }

    /// Opens a new TLS connection and returns its id. The server numbers
    /// handshakes in order, so two marks bracket the connections that other
    /// clients made between them.
    pub fn connection_mark(&self) -> u64 {
        self.get_json("/api/v1/connection")["id"].as_u64().expect("connection id in /api/v1/connection")
    }

    /// Fetches the connection log and keeps the entries with an id strictly
    /// between `start` and `end`, two values of [`Server::connection_mark`].
    ///
    /// NOTE: the server keeps only its most recent 256 connections, so a
    /// window with more handshakes than that loses its oldest entries.
    pub fn connections_between(&self, start: u64, end: u64) -> Vec<serde_json::Value> {
        let log = self.get_json("/api/v1/connections");
        let connections = log.as_array().expect("connections array");
        connections
            .iter()
            .filter(|connection| {
                let id = connection["id"].as_u64().expect("connection id in /api/v1/connections");
                start < id && id < end
            })
            .cloned()
            .collect()
    }

    /// Reads the server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().expect("PEM certificates")
}

/// Runs `command` to completion and returns its output, or kills it and
/// panics with what it wrote so far when it runs longer than `limit`.
/// `description` names the command in messages, with an install hint if useful.
pub fn output_within(command: &mut Command, limit: Duration, description: &str) -> std::process::Output {
    // Files rather than pipes, so a chatty child never blocks on a full pipe
    // while this thread polls for its exit.
    let capture = tempfile::tempdir().expect("temporary folder for the output");
    let stdout_path = capture.path().join("stdout");
    let stderr_path = capture.path().join("stderr");
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
    let mut child = command.spawn().unwrap_or_else(|err| panic!("failed to start {description}: {err}"));

    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{description} timed out after {} s; stderr:\n{}",
                limit.as_secs(),
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    std::process::Output {
        status,
        stdout: std::fs::read(&stdout_path).expect("read stdout"),
        stderr: std::fs::read(&stderr_path).expect("read stderr"),
    }
}
