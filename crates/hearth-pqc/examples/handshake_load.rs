//! Load client for `benches/handshake.sh`: full TLS 1.3 handshakes against one
//! server from several threads for a fixed time, each followed by one
//! HTTP/1.1 GET, with the bytes each handshake moved over the TCP socket.
//!
//! Every connection is a full handshake: the client configuration has
//! resumption disabled, so it never offers a session ticket or a PSK.
//!
//! ```text
//! cargo run --release -p hearth-pqc --example handshake_load -- \
//!     --addr 127.0.0.1:8443 --ca ca.pem --group x25519mlkem768 \
//!     [--path /api/v1/health] [--threads 4] [--seconds 10]
//! ```
//!
//! `--group x25519mlkem768` uses [`KeyExchangePolicy::HybridPreferred`], whose
//! ClientHello carries an X25519MLKEM768 key share and, as rustls 0.23.48
//! does for a hybrid group, a second X25519 share. `--group x25519` uses
//! [`KeyExchangePolicy::ClassicalOnly`]. A connection that negotiates another
//! group counts as failed.
//!
//! Prints one line of `key=value` fields on stdout (see [`Summary::print`])
//! and exits with status 1 if any connection failed or none completed, 2 on
//! invalid arguments. Byte counts are TLS records on the TCP socket, so they
//! leave out TCP and IP headers.

use std::error::Error;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hearth_pqc::{KeyExchangePolicy, client_config, group_name};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, NamedGroup, RootCertStore};

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(err) => {
            eprintln!("handshake_load: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    match run(&options) {
        Ok(summary) => {
            summary.print(&options);
            if summary.failures > 0 || summary.connections == 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(err) => {
            eprintln!("handshake_load: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the threads, waits for them and merges what they measured.
fn run(options: &Options) -> Result<Summary, BoxError> {
    let config = load_config(options)?;
    let server_name = ServerName::IpAddress(options.addr.ip().into());
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: hearth-handshake-load\r\nConnection: close\r\n\r\n",
        options.path, options.addr
    );

    let cpu_before = process_cpu_seconds()?;
    let started = Instant::now();
    let deadline = started + options.duration;
    let workers: Vec<_> = (0..options.threads)
        .map(|_| {
            let config = Arc::clone(&config);
            let server_name = server_name.clone();
            let request = request.clone();
            let addr = options.addr;
            let expected = options.group;
            thread::spawn(move || worker(&config, addr, &server_name, request.as_bytes(), expected, deadline))
        })
        .collect();

    let mut summary = Summary::default();
    for worker in workers {
        let result = worker.join().map_err(|_| "a load thread panicked")?;
        summary.merge(result);
    }
    summary.elapsed = started.elapsed();
    summary.cpu_seconds = process_cpu_seconds()? - cpu_before;
    Ok(summary)
}

/// Builds the client configuration: the CA in `options.ca` as the only root,
/// the groups of the requested policy, ALPN http/1.1, and no resumption.
fn load_config(options: &Options) -> Result<Arc<ClientConfig>, BoxError> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&options.ca)
        .map_err(|err| format!("failed to read CA file {}: {err}", options.ca.display()))?;
    for cert in certs {
        let cert = cert.map_err(|err| format!("invalid PEM certificate in {}: {err}", options.ca.display()))?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate found in CA file {}", options.ca.display()).into());
    }

    let policy = match options.group {
        NamedGroup::X25519MLKEM768 => KeyExchangePolicy::HybridPreferred,
        _ => KeyExchangePolicy::ClassicalOnly,
    };
    let shared = client_config(roots, policy, &[b"http/1.1"])?;
    let mut config = (*shared).clone();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Opens connections one after another until `deadline`. Stops at the first
/// failed connection, because a benchmark with failures is not valid anyway.
fn worker(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    server_name: &ServerName<'static>,
    request: &[u8],
    expected: NamedGroup,
    deadline: Instant,
) -> Summary {
    let mut summary = Summary::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        match connect_once(config, addr, server_name, request, expected) {
            Ok(bytes) => {
                summary.latencies.push(started.elapsed());
                summary.record(bytes);
            }
            Err(err) => {
                summary.failures += 1;
                summary.first_error.get_or_insert_with(|| err.to_string());
                break;
            }
        }
    }
    summary
}

/// Runs one connection: TCP connect, full handshake, GET, read the response
/// until the server closes. Returns the bytes moved during the handshake and
/// during the whole connection.
fn connect_once(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    server_name: &ServerName<'static>,
    request: &[u8],
    expected: NamedGroup,
) -> Result<ConnectionBytes, BoxError> {
    let tcp = TcpStream::connect(addr).map_err(|err| format!("failed to connect to {addr}: {err}"))?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut socket = CountingStream::new(tcp);
    let mut conn = ClientConnection::new(Arc::clone(config), server_name.clone())?;

    complete_handshake(&mut conn, &mut socket)?;
    let handshake_read = socket.read;
    let handshake_written = socket.written;
    let negotiated = conn.negotiated_key_exchange_group().map(|group| group.name());
    if negotiated != Some(expected) {
        let negotiated = negotiated.map_or_else(|| "no group".to_owned(), group_name);
        return Err(format!("negotiated {negotiated}, expected {}", group_name(expected)).into());
    }

    // The handshake ended on a record boundary; later reads may take whole
    // segments.
    socket.split_records = false;
    let mut tls = rustls::Stream::new(&mut conn, &mut socket);
    tls.write_all(request)?;
    let response = read_until_close(&mut tls)?;
    check_response(&response)?;

    Ok(ConnectionBytes { handshake_read, handshake_written, total_read: socket.read, total_written: socket.written })
}

/// Drives the handshake until the client has sent its Finished message.
/// Reads go through [`CountingStream`] one TLS record at a time, so the
/// counters stop at the server's Finished message even when session tickets
/// follow it in the same TCP segment.
fn complete_handshake(conn: &mut ClientConnection, socket: &mut CountingStream) -> Result<(), BoxError> {
    while conn.is_handshaking() {
        while conn.wants_write() {
            conn.write_tls(socket)?;
        }
        if conn.read_tls(socket)? == 0 {
            return Err("server closed the connection during the handshake".into());
        }
        if let Err(err) = conn.process_new_packets() {
            // Send the alert rustls queued, so the server logs the reason.
            let _ = conn.write_tls(socket);
            return Err(format!("handshake failed: {err}").into());
        }
    }

    // The client's Finished message.
    while conn.wants_write() {
        conn.write_tls(socket)?;
    }
    Ok(())
}

/// Reads plaintext until the server's close_notify or, for servers that
/// close without one, the end of the TCP stream.
fn read_until_close(tls: &mut impl Read) -> Result<Vec<u8>, BoxError> {
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => Ok(response),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(response),
        Err(err) => Err(format!("failed to read the response: {err}").into()),
    }
}

/// Checks for status 200 and, when the response has a Content-Length, a body
/// of that length.
fn check_response(response: &[u8]) -> Result<(), BoxError> {
    let Some(head_len) = response.windows(4).position(|window| window == b"\r\n\r\n") else {
        return Err(format!("incomplete HTTP response of {} bytes", response.len()).into());
    };
    let head = String::from_utf8_lossy(&response[..head_len]);
    let body = &response[head_len + 4..];

    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(format!("unexpected HTTP status line {status_line:?}, expected status 200").into());
    }

    let content_length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    if let Some(expected) = content_length
        && body.len() != expected
    {
        return Err(format!("response body has {} bytes, Content-Length says {expected}", body.len()).into());
    }
    Ok(())
}

/// CPU time (user and system) this process has used so far, in seconds.
fn process_cpu_seconds() -> Result<f64, BoxError> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|err| format!("failed to read /proc/self/stat: {err}"))?;
    // Fields after the command name, which is in parentheses and may contain
    // spaces. utime and stime are fields 14 and 15 of proc(5), so 11 and 12
    // counted from the state field.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |index: usize| -> Result<u64, BoxError> {
        let field = fields.get(index).ok_or("/proc/self/stat has fewer fields than proc(5) lists")?;
        Ok(field.parse()?)
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / CLOCK_TICKS_PER_SECOND)
}

/// Command-line options.
struct Options {
    /// Server address.
    addr: SocketAddr,
    /// PEM file with the CA that signed the server's certificate.
    ca: PathBuf,
    /// Group the client offers first and expects the server to pick.
    group: NamedGroup,
    /// Path of the GET request sent after each handshake.
    path: String,
    /// Connections in flight at once, one per thread.
    threads: usize,
    /// How long the threads open new connections.
    duration: Duration,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, BoxError> {
        let (mut addr, mut ca, mut group) = (None, None, None);
        let mut path = "/api/v1/health".to_owned();
        let mut threads = 4;
        let mut seconds: f64 = 10.0;

        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("missing value after {flag}"));
            match flag.as_str() {
                "--addr" => addr = Some(value()?.parse().map_err(|err| format!("invalid --addr: {err}"))?),
                "--ca" => ca = Some(PathBuf::from(value()?)),
                "--group" => {
                    group = Some(match value()?.to_ascii_lowercase().as_str() {
                        "x25519mlkem768" => NamedGroup::X25519MLKEM768,
                        "x25519" => NamedGroup::X25519,
                        other => {
                            return Err(
                                format!("unsupported --group {other}: expected x25519mlkem768 or x25519").into()
                            );
                        }
                    });
                }
                "--path" => path = value()?,
                "--threads" => threads = value()?.parse().map_err(|err| format!("invalid --threads: {err}"))?,
                "--seconds" => seconds = value()?.parse().map_err(|err| format!("invalid --seconds: {err}"))?,
                other => return Err(format!("unknown argument {other}").into()),
            }
        }

        if threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        if !seconds.is_finite() || seconds <= 0.0 {
            return Err(format!("--seconds must be a positive number, got {seconds}").into());
        }
        Ok(Self {
            addr: addr.ok_or("missing --addr")?,
            ca: ca.ok_or("missing --ca")?,
            group: group.ok_or("missing --group")?,
            path,
            threads,
            duration: Duration::from_secs_f64(seconds),
        })
    }
}

/// A TCP stream that counts the bytes read and written. While
/// `split_records` is set, each read returns at most the rest of the current
/// TLS record (its 5-byte header, then its body), so rustls never receives
/// bytes past the record it is working on.
struct CountingStream {
    tcp: TcpStream,
    read: u64,
    written: u64,
    split_records: bool,
    header: [u8; RECORD_HEADER_LEN],
    header_filled: usize,
    body_left: usize,
}

impl CountingStream {
    fn new(tcp: TcpStream) -> Self {
        Self {
            tcp,
            read: 0,
            written: 0,
            split_records: true,
            header: [0; RECORD_HEADER_LEN],
            header_filled: 0,
            body_left: 0,
        }
    }

    /// Advances the record framing over `bytes`, which were just read.
    fn track_records(&mut self, bytes: &[u8]) {
        if self.body_left > 0 {
            self.body_left -= bytes.len();
            return;
        }
        self.header[self.header_filled..self.header_filled + bytes.len()].copy_from_slice(bytes);
        self.header_filled += bytes.len();
        if self.header_filled == RECORD_HEADER_LEN {
            // Bytes 3 and 4 of a record header are the body length, big-endian.
            self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
            self.header_filled = 0;
        }
    }
}

impl Read for CountingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limit = if !self.split_records {
            buf.len()
        } else if self.body_left > 0 {
            self.body_left.min(buf.len())
        } else {
            (RECORD_HEADER_LEN - self.header_filled).min(buf.len())
        };

        let n = self.tcp.read(&mut buf[..limit])?;
        if self.split_records {
            self.track_records(&buf[..n]);
        }
        self.read += n as u64;
        Ok(n)
    }
}

impl Write for CountingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tcp.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// Bytes one connection moved over its TCP socket.
#[derive(Clone, Copy)]
struct ConnectionBytes {
    handshake_read: u64,
    handshake_written: u64,
    total_read: u64,
    total_written: u64,
}

/// Measurements of one thread, or of all threads merged.
#[derive(Default)]
struct Summary {
    connections: u64,
    failures: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
    /// Smallest and largest bytes per connection, as (min, max).
    handshake_read: Option<(u64, u64)>,
    handshake_written: Option<(u64, u64)>,
    total_read: Option<(u64, u64)>,
    total_written: Option<(u64, u64)>,
    elapsed: Duration,
    cpu_seconds: f64,
}

impl Summary {
    fn record(&mut self, bytes: ConnectionBytes) {
        self.connections += 1;
        widen(&mut self.handshake_read, bytes.handshake_read, bytes.handshake_read);
        widen(&mut self.handshake_written, bytes.handshake_written, bytes.handshake_written);
        widen(&mut self.total_read, bytes.total_read, bytes.total_read);
        widen(&mut self.total_written, bytes.total_written, bytes.total_written);
    }

    fn merge(&mut self, other: Summary) {
        self.connections += other.connections;
        self.failures += other.failures;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
        for (mine, theirs) in [
            (&mut self.handshake_read, other.handshake_read),
            (&mut self.handshake_written, other.handshake_written),
            (&mut self.total_read, other.total_read),
            (&mut self.total_written, other.total_written),
        ] {
            if let Some((min, max)) = theirs {
                widen(mine, min, max);
            }
        }
    }

    /// Prints one line of `key=value` fields and sends the first error to
    /// stderr. The fields are the group, completed and failed connections,
    /// wall time (s), connections per second, median and 99th-percentile
    /// connection time (ms), and this client's CPU time per connection (ms).
    /// The byte fields give the min-max per connection, read and written,
    /// during the handshake and over the whole connection.
    fn print(&self, options: &Options) {
        let seconds = self.elapsed.as_secs_f64();
        let mut latencies = self.latencies.clone();
        latencies.sort_unstable();
        let per_connection_ms =
            |value: f64| if self.connections == 0 { 0.0 } else { value * 1000.0 / self.connections as f64 };

        println!(
            "group={} threads={} connections={} failures={} seconds={:.3} rate={:.1} p50_ms={:.2} p99_ms={:.2} client_cpu_ms={:.3} handshake_read={} handshake_written={} total_read={} total_written={}",
            group_name(options.group),
            options.threads,
            self.connections,
            self.failures,
            seconds,
            self.connections as f64 / seconds,
            percentile_ms(&latencies, 0.50),
            percentile_ms(&latencies, 0.99),
            per_connection_ms(self.cpu_seconds),
            format_range(self.handshake_read),
            format_range(self.handshake_written),
            format_range(self.total_read),
            format_range(self.total_written),
        );
        if let Some(err) = &self.first_error {
            eprintln!("handshake_load: first failure: {err}");
        }
    }
}

/// Widens the range `bounds` to include `min` and `max`.
fn widen(bounds: &mut Option<(u64, u64)>, min: u64, max: u64) {
    *bounds = Some(match *bounds {
        Some((low, high)) => (low.min(min), high.max(max)),
        None => (min, max),
    });
}

/// `N` when the range contains one value, `MIN-MAX` otherwise, `-` when empty.
fn format_range(bounds: Option<(u64, u64)>) -> String {
    match bounds {
        Some((min, max)) if min == max => min.to_string(),
        Some((min, max)) => format!("{min}-{max}"),
        None => "-".to_owned(),
    }
}

/// Returns the `quantile` (0 to 1) of sorted `latencies` in milliseconds, by
/// the nearest-rank method, or 0 when there are none.
fn percentile_ms(latencies: &[Duration], quantile: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    let rank = (quantile * latencies.len() as f64).ceil() as usize;
    latencies[rank.clamp(1, latencies.len()) - 1].as_secs_f64() * 1000.0
}

const USAGE: &str = "usage: handshake_load --addr HOST:PORT --ca CA.pem --group x25519mlkem768|x25519 \
[--path /api/v1/health] [--threads 4] [--seconds 10]";
/// Length of a TLS record header: type (1), legacy version (2), length (2).
const RECORD_HEADER_LEN: usize = 5;
/// Read and write timeout on each socket, so a stalled server ends the run.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Unit of utime and stime in /proc/PID/stat: USER_HZ (`getconf CLK_TCK`),
/// which is 100 on x86-64 and arm64 Linux.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
