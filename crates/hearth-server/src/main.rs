//! The `hearth` command: `serve`, `scan`, `ca export`, `keys rotate` and `link`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hearth_catalog::{Catalog, ScanPhase, ScanProgress};
use hearth_pqc::{HouseholdCa, KeyExchangePolicy};
use hearth_server::config::{DEFAULT_LISTEN, DataPaths, FileConfig, default_data_dir, display_host};
use hearth_server::embed::{DEFAULT_PROBE_TIMEOUT_SECS, ServeSettings, Server};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(name = "hearth", version, about = "Home media server with post-quantum TLS")]
struct Cli {
    /// TOML configuration file [default: $XDG_CONFIG_HOME/hearth/hearth.toml when it exists].
    #[arg(long, global = true, env = "HEARTH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the libraries over HTTPS to the household's devices.
    Serve(ServeArgs),
    /// Scan the libraries once and print what was found.
    Scan(ScanArgs),
    /// Manage the household certificate authority.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Manage the server's keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Set up a link key with another Hearth node: the running server (the
    /// master) runs the handshake against the peer (the slave).
    Link(LinkArgs),
    /// Create a one-time invitation for another node to link with this one
    /// (valid 10 minutes); pass it to `hearth link --peer-invite` there.
    LinkInvite(DataDirArg),
    /// Create a one-time pairing offer for a new device, on the server's
    /// host: prints a link, a code and a QR code, valid 10 minutes.
    Pair(PairArgs),
    /// Show the intrusion guard's alerts, bans and forensic records on the
    /// running server, and ban or unban an address.
    Guard {
        #[command(subcommand)]
        command: GuardCommand,
    },
}

#[derive(Subcommand)]
enum GuardCommand {
    /// List alerts, newest first.
    Alerts(GuardListArgs),
    /// List the bans in force.
    Bans(GuardListArgs),
    /// List forensic records, or print one with the requests that led to it.
    Records {
        /// The record's id, from the list.
        id: Option<String>,
        #[command(flatten)]
        list: GuardListArgs,
    },
    /// Ban an address by hand.
    Ban {
        /// The address, such as 192.168.1.66.
        source: String,
        /// Length of the ban in minutes.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        /// Why, for the list and the log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Lift a ban or rate limit.
    Unban {
        /// The address, such as 192.168.1.66.
        source: String,
        #[command(flatten)]
        data: DataDirArg,
    },
}

#[derive(Args)]
struct GuardListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataDirArg,
}

#[derive(Args)]
struct LinkArgs {
    /// Base URL of the peer node, such as https://desktop.local:8443.
    #[arg(long, value_name = "URL")]
    peer: String,
    /// PEM file with the peer's household CA certificate (`hearth ca export` on the peer).
    #[arg(long, value_name = "FILE")]
    peer_ca: PathBuf,
    /// The one-time invitation that `hearth link-invite` printed on the peer.
    /// Prefer setting HEARTH_PEER_INVITE: other local users can read
    /// command-line arguments (`ps`).
    #[arg(long, env = "HEARTH_PEER_INVITE", value_name = "INVITE")]
    peer_invite: String,
    #[command(flatten)]
    data: DataDirArg,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Rotate the TLS certificate and the signing key of a running server now,
    /// without a restart (after a suspected key leak).
    Rotate(RotateArgs),
}

#[derive(Args)]
struct RotateArgs {
    /// Reason for the rotation, written to the server log.
    #[arg(long, default_value = "requested from the command line")]
    reason: String,
    #[command(flatten)]
    data: DataDirArg,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Print the CA certificate (PEM) for installing on client devices.
    Export(DataDirArg),
}

#[derive(Args)]
struct PairArgs {
    /// Pair a device for this existing user.
    #[arg(long, value_name = "NAME", conflicts_with = "new_user")]
    user: Option<String>,
    /// Create this user when the device pairs; the person pairing sets the password.
    #[arg(long, value_name = "NAME")]
    new_user: Option<String>,
    /// Role of the new user: admin, adult, teen or child.
    #[arg(long, default_value = "adult", requires = "new_user")]
    role: String,
    /// Address the link points at [default: the listen address of the configuration].
    #[arg(long, value_name = "HOST:PORT")]
    address: Option<String>,
    #[command(flatten)]
    data: DataDirArg,
}

#[derive(Args)]
struct DataDirArg {
    /// Folder for the database, certificates and caches [default: $XDG_DATA_HOME/hearth].
    #[arg(long, env = "HEARTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// A library folder to serve; repeat for several. Folders given once are remembered.
    #[arg(long = "library", value_name = "DIR")]
    libraries: Vec<PathBuf>,
    /// Address and port to listen on [default: 0.0.0.0:8443].
    #[arg(long, env = "HEARTH_LISTEN")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    data: DataDirArg,
    /// Accept only the hybrid X25519MLKEM768 key exchange; clients without ML-KEM cannot connect.
    #[arg(long, env = "HEARTH_PQ_ONLY")]
    pq_only: bool,
    /// Seconds allowed to probe one file during a scan [default: 20].
    #[arg(long, env = "HEARTH_PROBE_TIMEOUT")]
    probe_timeout: Option<u64>,
    /// Do not watch library folders for changes.
    #[arg(long)]
    no_watch: bool,
    /// This node's SAE id towards other nodes and the QKD KME [default: [node] sae_id, else the host name].
    #[arg(long, env = "HEARTH_SAE_ID")]
    sae_id: Option<String>,
}

#[derive(Args)]
struct ScanArgs {
    /// A library folder to scan; repeat for several. Folders given once are remembered.
    #[arg(long = "library", value_name = "DIR")]
    libraries: Vec<PathBuf>,
    #[command(flatten)]
    data: DataDirArg,
    /// Print every problem found, with its reason.
    #[arg(long)]
    report: bool,
    /// Print the summary (and report) as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Seconds allowed to probe one file [default: 20].
    #[arg(long, env = "HEARTH_PROBE_TIMEOUT")]
    probe_timeout: Option<u64>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let cli = Cli::parse();
    let file = FileConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve(args, &file),
        Command::Scan(args) => scan(args, &file),
        Command::Ca { command: CaCommand::Export(args) } => export_ca(&args, &file),
        Command::Keys { command: KeysCommand::Rotate(args) } => rotate_keys(&args, &file),
        Command::Link(args) => link(&args, &file),
        Command::LinkInvite(args) => link_invite(&args, &file),
        Command::Pair(args) => pair(&args, &file),
        Command::Guard { command } => guard(command, &file),
    }
}

/// Resolves the data folder: command line or environment, then the file, then the default.
fn data_dir(arg: &DataDirArg, file: &FileConfig) -> PathBuf {
    arg.data_dir.clone().or_else(|| file.data_dir.clone()).unwrap_or_else(default_data_dir)
}

/// Library folders from the command line and the file together.
fn libraries(cli: &[PathBuf], file: &FileConfig) -> Vec<PathBuf> {
    cli.iter().chain(&file.libraries).cloned().collect()
}

fn probe_timeout(cli: Option<u64>, file: &FileConfig) -> u64 {
    cli.or(file.probe_timeout_secs).unwrap_or(DEFAULT_PROBE_TIMEOUT_SECS)
}

fn open_catalog(data_dir: &Path, libraries: &[PathBuf], probe_timeout: u64) -> Result<Arc<Catalog>> {
    hearth_server::embed::open_catalog(data_dir, libraries, probe_timeout)
}

/// Starts the server (`hearth_server::embed`), prints the welcome text, and
/// serves until SIGINT or SIGTERM.
fn serve(args: ServeArgs, file: &FileConfig) -> Result<()> {
    let settings = ServeSettings {
        data_dir: data_dir(&args.data, file),
        libraries: libraries(&args.libraries, file),
        listen: args.listen.or(file.listen).unwrap_or_else(hearth_server::embed::default_listen),
        pq_only: args.pq_only || file.pq_only.unwrap_or(false),
        probe_timeout_secs: probe_timeout(args.probe_timeout, file),
        watch: !args.no_watch && file.watch.unwrap_or(true),
        sae_id: args.sae_id.clone(),
        file: file.clone(),
    };
    let paths = DataPaths::new(&settings.data_dir);
    let (server, started) = Server::start(settings)?;

    print_welcome(started.bound, &paths, started.libraries, started.items, started.policy, started.setup.as_ref());
    println!("  Node SAE id:    {} (link keys: {})", started.sae_id, qkd_summary(file));
    server.run_until(shutdown_signal());
    Ok(())
}

/// Describes the link-key setup for the welcome text.
fn qkd_summary(file: &FileConfig) -> String {
    match &file.qkd {
        Some(section) => format!("X-Wing with QKD from {}", section.kme_url),
        None => "X-Wing alone, no [qkd] section".to_owned(),
    }
}

fn print_welcome(
    bound: SocketAddr,
    paths: &DataPaths,
    libraries: usize,
    items: u64,
    policy: KeyExchangePolicy,
    setup: Option<&hearth_access::pairing::CreatedOffer>,
) {
    let host = display_host(bound);
    let port = bound.port();
    let exchange = match policy {
        KeyExchangePolicy::PqOnly => "X25519MLKEM768 only",
        _ => "X25519MLKEM768, X25519 fallback",
    };
    println!("Hearth is serving {libraries} libraries with {items} items indexed so far; a scan for new files starts now.");
    println!("  Key exchange:   {exchange}");
    println!("  Listening:      https://{bound}");
    println!("  Open:           https://{host}:{port}/login");
    if let Some(setup) = setup {
        print_offer("First run: pair your first device as the household admin.", setup, &format!("{host}:{port}"));
    }
    println!("  Household CA:   {} (print it with `hearth ca export`)", paths.tls.join("ca.pem").display());
    println!("Browsers warn until the household CA is installed on the device.");
}

/// Prints a pairing offer: the link, the code and the link as a QR code.
fn print_offer(title: &str, created: &hearth_access::pairing::CreatedOffer, authority: &str) {
    let link = created.link(authority);
    println!("{title}");
    println!("  Pairing link:   {}", link.as_str());
    println!("  Pairing code:   {} (single use, valid 10 minutes)", created.code.display_form().as_str());
    if std::io::stdout().is_terminal() {
        println!("{}", hearth_server::api::pairing::qr_terminal(&link));
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(err) => {
            tracing::warn!(error = %err, "failed to listen for SIGTERM");
            let _ = interrupt.await;
            return;
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}

fn scan(args: ScanArgs, file: &FileConfig) -> Result<()> {
    let data_dir = data_dir(&args.data, file);
    let catalog = open_catalog(&data_dir, &libraries(&args.libraries, file), probe_timeout(args.probe_timeout, file))?;
    if catalog.libraries()?.is_empty() {
        anyhow::bail!("no library folders to scan; pass --library DIR");
    }

    let bar = progress_bar();
    let on_progress = |p: &ScanProgress| {
        bar.set_length(p.queued.max(1));
        bar.set_position(p.processed);
        let phase = match p.phase {
            ScanPhase::Scanning => "scanning",
            ScanPhase::Finishing => "finishing",
            ScanPhase::Done => "done",
        };
        bar.set_message(format!("{phase}: {} unchanged, {} problems, {}", p.unchanged, p.problems, p.current.as_deref().unwrap_or("")));
    };
    let summary = catalog.scan_all(&on_progress)?;
    bar.finish_and_clear();

    let problems = if args.report { catalog.problems()? } else { Vec::new() };
    if args.json {
        let output = serde_json::json!({ "summary": summary, "problems": problems });
        println!("{}", serde_json::to_string_pretty(&output)?);
        return Ok(());
    }

    println!(
        "Scanned {} files in {:.1} s: {} added, {} updated, {} moved, {} unchanged, {} missing, {} ignored as not media, {} problems.",
        summary.discovered,
        summary.elapsed_ms as f64 / 1000.0,
        summary.added,
        summary.updated,
        summary.moved,
        summary.unchanged,
        summary.missing,
        summary.ignored,
        summary.problems
    );
    for problem in &problems {
        println!("{:<8} {:<17} {}/{}: {}", problem.severity, problem.category, problem.library, problem.path, problem.reason);
    }
    if !args.report && summary.problems > 0 {
        println!("Run `hearth scan --report` to list the problems.");
    }
    Ok(())
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(1);
    let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn export_ca(args: &DataDirArg, file: &FileConfig) -> Result<()> {
    let paths = DataPaths::new(&data_dir(args, file));
    let ca = HouseholdCa::load_certificate(&paths.tls)?;
    print!("{}", ca.pem());
    Ok(())
}

/// Asks the running server, over its admin socket, to rotate its keys.
fn rotate_keys(args: &RotateArgs, file: &FileConfig) -> Result<()> {
    let body = serde_json::json!({ "reason": args.reason });
    let (status, body) = admin_call(&args.data, file, "/api/v1/admin/rotate-keys", &body)?;
    if !(200..300).contains(&status) {
        anyhow::bail!("rotation failed with {status}: {}", body["error"].as_str().unwrap_or("no details"));
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

/// Runs `hearth guard ...` against the running server's admin socket.
fn guard(command: GuardCommand, file: &FileConfig) -> Result<()> {
    let call = |data: &DataDirArg, method: &str, target: &str, body: Option<&serde_json::Value>| -> Result<serde_json::Value> {
        let socket = hearth_server::admin_socket::socket_path(&data_dir(data, file));
        let (status, answer) = hearth_server::admin_socket::request(&socket, method, target, body).map_err(anyhow::Error::msg)?;
        if !(200..300).contains(&status) {
            anyhow::bail!("{method} {target} failed with {status}: {}", answer["error"].as_str().unwrap_or("no details"));
        }
        Ok(answer)
    };
    let text = |value: &serde_json::Value, key: &str| value[key].as_str().map(str::to_owned).unwrap_or_else(|| value[key].to_string());
    match command {
        GuardCommand::Alerts(list) => {
            let answer = call(&list.data, "GET", "/api/v1/admin/guard/alerts", None)?;
            if list.json {
                println!("{}", serde_json::to_string_pretty(&answer["alerts"])?);
                return Ok(());
            }
            println!("Guard mode: {}", text(&answer, "mode"));
            for alert in answer["alerts"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:<15} {:<7} {:<18} {:<11} {}",
                    clock(alert["time"].as_u64().unwrap_or(0)),
                    text(alert, "source"),
                    text(alert, "severity"),
                    text(alert, "rule"),
                    text(&alert["action"], "action"),
                    text(alert, "reason")
                );
            }
        }
        GuardCommand::Bans(list) => {
            let answer = call(&list.data, "GET", "/api/v1/admin/guard/bans", None)?;
            if list.json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            let bans = answer.as_array().cloned().unwrap_or_default();
            if bans.is_empty() {
                println!("No address is banned.");
            }
            for ban in bans {
                println!("{:<15} until {}  {}", text(&ban, "source"), clock(ban["until"].as_u64().unwrap_or(0)), text(&ban, "reason"));
            }
        }
        GuardCommand::Records { id, list } => {
            let target = match &id {
                Some(id) => format!("/api/v1/admin/guard/records/{id}"),
                None => "/api/v1/admin/guard/records".to_owned(),
            };
            let answer = call(&list.data, "GET", &target, None)?;
            if list.json || id.is_some() {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            for record in answer.as_array().into_iter().flatten() {
                println!("{}  {}", text(record, "id"), text(&record["alert"], "reason"));
            }
        }
        GuardCommand::Ban { source, minutes, reason, data } => {
            let body = serde_json::json!({ "source": source, "minutes": minutes, "reason": reason });
            call(&data, "POST", "/api/v1/admin/guard/bans", Some(&body))?;
            println!("{source} is banned for {minutes} minutes.");
        }
        GuardCommand::Unban { source, data } => {
            call(&data, "DELETE", &format!("/api/v1/admin/guard/bans/{source}"), None)?;
            println!("{source} may connect again.");
        }
    }
    Ok(())
}

/// Formats seconds since the Unix epoch as UTC date and time.
fn clock(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Sends a POST to the local running server over the admin socket in the
/// data folder.
fn admin_call(data: &DataDirArg, file: &FileConfig, target: &str, body: &serde_json::Value) -> Result<(u16, serde_json::Value)> {
    let socket = hearth_server::admin_socket::socket_path(&data_dir(data, file));
    hearth_server::admin_socket::request(&socket, "POST", target, Some(body)).map_err(anyhow::Error::msg)
}

/// Asks the local running server to link, as master, with a peer node, and
/// prints how the key was made and its check value.
fn link(args: &LinkArgs, file: &FileConfig) -> Result<()> {
    let peer_ca_pem = std::fs::read_to_string(&args.peer_ca)
        .with_context(|| format!("failed to read the peer's CA certificate {}", args.peer_ca.display()))?;
    let request = serde_json::json!({ "peer_url": args.peer, "peer_ca_pem": peer_ca_pem, "peer_invite": args.peer_invite });
    let (status, body) = admin_call(&args.data, file, "/api/v1/admin/links", &request)?;
    // The error and the link's fields carry text from the peer and its KME,
    // so control characters are escaped before they reach the terminal.
    let safe = hearth_server::links::wire::peer_text;
    if !(200..300).contains(&status) {
        anyhow::bail!("link with {} failed with {status}: {}", args.peer, safe(body["error"].as_str().unwrap_or("no details")));
    }

    let link = &body["link"];
    let text = |field: &str| safe(link[field].as_str().unwrap_or("?"));
    println!("Linked with node {} as {}; link key version {}.", text("peer_sae_id"), text("role"), link["key_version"]);
    match link["qkd_key_id"].as_str() {
        Some(key_id) => println!("  QKD:        used, key id {}", safe(key_id)),
        None => println!("  QKD:        not used: {}", text("fallback")),
    }
    println!("  Key check:  {} (compare with `GET /api/v1/admin/links` on the peer)", text("key_check"));
    Ok(())
}

/// Creates a pairing offer in the data folder's database, which the running
/// server reads, and prints it. Whoever can run this on the host can read
/// the data folder anyway, so it needs no sign-in.
fn pair(args: &PairArgs, file: &FileConfig) -> Result<()> {
    use hearth_access::pairing::{OfferCreator, OfferKind, PairingService};

    let paths = DataPaths::new(&data_dir(&args.data, file));
    if !paths.database.exists() {
        anyhow::bail!("no Hearth database at {}; start `hearth serve` once with this data folder first", paths.database.display());
    }
    let store = hearth_store::Store::open(&paths.database)?;
    let clock: Arc<dyn hearth_access::Clock> = Arc::new(hearth_access::SystemClock);
    let users = Arc::new(hearth_access::UserStore::open(
        Arc::clone(&store),
        hearth_access::PasswordHasher::recommended()?,
        Arc::clone(&clock),
        Arc::new(hearth_access::RevocationRegistry::new()),
    )?);
    let pairing = PairingService::open(store, Arc::clone(&users), clock)?;

    let (created, title) = match (&args.user, &args.new_user) {
        (Some(name), _) => {
            let user = users.user_by_name(name)?.with_context(|| format!("no user named {name:?}; use --new-user to create one"))?;
            (pairing.create_offer(OfferKind::ExistingUser { user: user.id }, OfferCreator::HostCli)?, format!("Pair a device for {}.", user.name))
        }
        (None, Some(name)) => {
            let role: hearth_access::Role =
                args.role.parse().map_err(|_| anyhow::anyhow!("--role must be admin, adult, teen or child, not {:?}", args.role))?;
            let kind = OfferKind::NewUser { name: Some(name.clone()), role };
            (pairing.create_offer(kind, OfferCreator::HostCli)?, format!("Pair a device for the new {role} {name}."))
        }
        (None, None) => match pairing.setup_offer_if_no_users()? {
            Some(created) => (created, "First run: pair your first device as the household admin.".to_owned()),
            None => anyhow::bail!("the household has users already; pass --user NAME or --new-user NAME --role ROLE"),
        },
    };
    let authority = match &args.address {
        Some(address) => address.clone(),
        None => {
            let listen = file.listen.unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("DEFAULT_LISTEN is a valid socket address"));
            format!("{}:{}", display_host(listen), listen.port())
        }
    };
    print_offer(&title, &created, &authority);
    Ok(())
}

/// Asks the running server, over the admin socket, for a link invitation
/// and prints it.
fn link_invite(args: &DataDirArg, file: &FileConfig) -> Result<()> {
    let socket = hearth_server::admin_socket::socket_path(&data_dir(args, file));
    let (status, body) = hearth_server::admin_socket::request(&socket, "POST", "/api/v1/admin/link-invites", Some(&serde_json::json!({})))
        .map_err(anyhow::Error::msg)?;
    if !(200..300).contains(&status) {
        anyhow::bail!("creating the invitation failed with {status}: {}", body["error"].as_str().unwrap_or("no details"));
    }
    println!("Invitation for node {} (one use, valid 10 minutes):", body["sae_id"].as_str().unwrap_or("?"));
    println!("  Invite:  {}", body["invite"].as_str().unwrap_or("?"));
    println!("On the other node run: hearth link --peer https://THIS-HOST:PORT --peer-ca THIS-CA.pem --peer-invite INVITE");
    Ok(())
}
