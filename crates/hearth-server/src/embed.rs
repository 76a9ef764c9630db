//! Starting and stopping the whole server from a library call, so that the
//! `hearth serve` command and the desktop app (src-tauri) run the same
//! start-up.
//!
//! [`Server::start`] opens the catalog, sets up the TLS and signing keys,
//! binds the TLS listener for the household's phones and TVs and the 0600
//! admin socket, starts a scan and the folder watcher, and returns a handle.
//! The handle gives the in-process [`Router`], which the desktop window
//! calls without a network socket (WebKitGTK cannot negotiate ML-KEM), and
//! [`Server::stop`] ends it all.
//!
//! The server owns its Tokio runtime. Start and stop it from a plain
//! thread, not from inside another runtime: the QKD client builds its own
//! blocking runtime, and a runtime cannot be dropped inside another.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use hearth_catalog::{Catalog, ScanConfig, ScanProgress};
use hearth_pqc::KeyExchangePolicy;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{DEFAULT_LISTEN, DataPaths, FileConfig, default_data_dir, host_addresses, host_names};
use crate::connection::ConnectionLog;
use crate::links::{KeyStoreHandle, NodeLinks};
use crate::rotation::KeyRotation;
use crate::state::{AppState, ScanEvents};
use crate::thumbnails::ThumbnailCache;

/// Everything `hearth serve` reads from its command line and configuration
/// file, resolved.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Folder for the database, certificates and caches.
    pub data_dir: PathBuf,
    /// Library folders to add; folders added before are remembered in the
    /// database.
    pub libraries: Vec<PathBuf>,
    /// Address and port of the TLS listener.
    pub listen: SocketAddr,
    /// Accept only X25519MLKEM768.
    pub pq_only: bool,
    /// Seconds allowed to probe one file during a scan (at least 1).
    pub probe_timeout_secs: u64,
    /// Watch the library folders for changes.
    pub watch: bool,
    /// This node's SAE id from the command line; `None` takes `[node]
    /// sae_id` from the file, else the host name.
    pub sae_id: Option<String>,
    /// The configuration file's tables: `[access]`, `[transcode]`, `[node]`
    /// and `[qkd]`.
    pub file: FileConfig,
}

impl ServeSettings {
    /// Settings from the configuration file alone, with the defaults for
    /// what it leaves out.
    pub fn from_file(file: FileConfig) -> Self {
        let listen = file.listen.unwrap_or_else(default_listen);
        Self {
            data_dir: file.data_dir.clone().unwrap_or_else(default_data_dir),
            libraries: file.libraries.clone(),
            listen,
            pq_only: file.pq_only.unwrap_or(false),
            probe_timeout_secs: file.probe_timeout_secs.unwrap_or(DEFAULT_PROBE_TIMEOUT_SECS),
            watch: file.watch.unwrap_or(true),
            sae_id: None,
            file,
        }
    }
}

/// Probe timeout when neither the command line nor the file sets one.
pub const DEFAULT_PROBE_TIMEOUT_SECS: u64 = 20;

/// Time given to open connections and a running scan at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Returns the default listen address, [`DEFAULT_LISTEN`].
pub fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("DEFAULT_LISTEN is a valid socket address")
}

/// Opens the catalog in `data_dir` and adds `libraries` to it.
pub fn open_catalog(data_dir: &Path, libraries: &[PathBuf], probe_timeout_secs: u64) -> Result<Arc<Catalog>> {
    let paths = DataPaths::new(data_dir);
    let store = hearth_store::Store::open(&paths.database)?;
    let config = ScanConfig { probe_timeout: Duration::from_secs(probe_timeout_secs.max(1)), ..ScanConfig::default() };
    let catalog = Catalog::open(store, config)?;
    for library in libraries {
        catalog.add_library(library)?;
    }
    Ok(Arc::new(catalog))
}

/// The facts a started server reports once, for a welcome text.
pub struct Started {
    /// Returns the address the TLS listener is bound to.
    pub bound: SocketAddr,
    /// Library folders in the catalog at start.
    pub libraries: usize,
    /// Items indexed at start, before the first scan.
    pub items: u64,
    /// The key-exchange policy of the listener.
    pub policy: KeyExchangePolicy,
    /// The first-run pairing offer, when the household has no users yet.
    pub setup: Option<hearth_access::pairing::CreatedOffer>,
    /// This node's SAE id towards other nodes.
    pub sae_id: String,
}

/// A running server: its runtime, its listener and socket tasks, and the
/// in-process router.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    app: Router,
    state: AppState,
    bound: SocketAddr,
    socket: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    listener_task: Option<JoinHandle<()>>,
    admin_task: Option<JoinHandle<()>>,
    watcher: Option<hearth_catalog::watch::LibraryWatcher>,
    links: Option<Arc<NodeLinks>>,
}

impl Server {
    /// Starts the server with `settings` and returns it with what it
    /// reports at start. Blocks while the keys are set up and the sockets
    /// are bound; call it from a plain thread, not from async code.
    pub fn start(settings: ServeSettings) -> Result<(Self, Started)> {
        let paths = DataPaths::new(&settings.data_dir);
        let catalog = open_catalog(&settings.data_dir, &settings.libraries, settings.probe_timeout_secs)?;
        let libraries = catalog.libraries()?;
        if libraries.is_empty() {
            tracing::warn!("no library folders yet; start again with --library DIR");
        }

        let policy = if settings.pq_only { KeyExchangePolicy::PqOnly } else { KeyExchangePolicy::HybridPreferred };
        let rotation = Arc::new(
            KeyRotation::start(&paths, host_names(), host_addresses(), policy).context("failed to set up TLS and signing keys")?,
        );
        let tls = rotation.tls();
        let links = open_links(&settings, &rotation)?;
        let hasher = hearth_access::PasswordHasher::recommended().context("failed to set up password hashing")?;
        let access = crate::access::Access::open(catalog.store(), hasher, &settings.file.access)
            .context("failed to open the user and device tables")?;

        let transcode = crate::api::playback::settings(&settings.file.transcode)?;
        tracing::info!(encoder = transcode.encoder.factory(), limit = transcode.max_concurrent, "HLS transcoding ready");
        let trickplay = Arc::new(crate::trickplay::Trickplay::new(paths.trickplay.clone()));
        let playbacks = Arc::new(
            crate::api::playback::Playbacks::new(hearth_media::hls::TranscodeManager::new(transcode))
                .with_index_dir(paths.keyframes.clone()),
        );

        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let listen = settings.listen;
        let bound_sockets = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("failed to listen on {listen}; is another server using the port?"))?;
            // Bound before the caller's welcome text, so a script that
            // waits for that text can use the socket at once.
            let socket = crate::admin_socket::socket_path(&settings.data_dir);
            let admin = crate::admin_socket::bind(&socket)
                .with_context(|| format!("failed to open the admin socket {}", socket.display()))?;
            anyhow::Ok((listener, socket, admin))
        });
        let (listener, socket, admin) = match bound_sockets {
            Ok(bound) => bound,
            Err(error) => {
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
                return Err(error);
            }
        };
        let bound = listener.local_addr()?;

        let guard = open_guard(&settings, &paths)?;
        if settings.file.guard.nftables.unwrap_or(false) {
            if guard.mode() == crate::guard::GuardMode::Enforce {
                guard.set_firewall(crate::firewall::Firewall::install(bound.port())?);
            } else {
                tracing::warn!("[guard] nftables is on but the guard does not enforce; no firewall rules are set");
            }
        }
        guard.set_responder(Arc::new(crate::guard::ServerResponder { access: Arc::clone(&access), rotation: Some(Arc::clone(&rotation)) }));
        let connections = Arc::new(ConnectionLog::default());
        let state = AppState {
            catalog: Arc::clone(&catalog),
            connections: Arc::clone(&connections),
            scan_events: ScanEvents::new(),
            thumbnails: Arc::new(ThumbnailCache::new(paths.thumbnails.clone())),
            rotation: Some(Arc::clone(&rotation)),
            links: Some(Arc::clone(&links)),
            access: Arc::clone(&access),
            playbacks,
            trickplay: Arc::clone(&trickplay),
            guard: Arc::clone(&guard),
        };

        let setup = access.pairing.setup_offer_if_no_users().context("failed to create the first-run pairing offer")?;
        let items = catalog.item_count()?;
        let started =
            Started { bound, libraries: libraries.len(), items, policy, setup, sae_id: links.sae_id().to_owned() };

        let _entered = runtime.enter();
        trickplay.spawn_worker(Arc::clone(&catalog));
        crate::api::scan::spawn_scan(Arc::clone(&catalog), state.scan_events.clone());
        let watcher = if settings.watch { Some(start_watcher(&catalog, &state.scan_events)?) } else { None };

        let app = crate::app(state.clone());
        let admin_task = runtime.spawn(crate::admin_socket::serve(admin, app.clone()));
        tracing::info!(address = %bound, admin_socket = %socket.display(), "listening");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let stop_signal = async move {
            // A dropped sender stops the listener too.
            let _ = stopped.await;
        };
        let listener_task = runtime.spawn(crate::tls_server::serve(listener, tls, app.clone(), connections, guard, stop_signal));
        drop(_entered);

        let server = Self {
            runtime: Some(runtime),
            app,
            state,
            bound,
            socket,
            shutdown: Some(shutdown),
            listener_task: Some(listener_task),
            admin_task: Some(admin_task),
            watcher,
            links: Some(links),
        };
        Ok((server, started))
    }

    /// Runs until `signal` completes, then stops the server.
    pub fn run_until(mut self, signal: impl Future<Output = ()>) {
        if let Some(runtime) = &self.runtime {
            runtime.block_on(signal);
        }
        self.shut_down();
    }

    /// Stops the listener and the admin socket, removes the socket file,
    /// and gives open connections and a running scan [`SHUTDOWN_GRACE`] to
    /// end. Blocks; call it from a plain thread, not from async code.
    pub fn stop(mut self) {
        self.shut_down();
    }

    /// Returns the full application, with the same layers as the TLS listener.
    /// Requests passed to it in process skip TLS; the caller marks them
    /// (with [`crate::admin_socket::HostAdmin`] for the host's own console).
    pub fn router(&self) -> Router {
        self.app.clone()
    }

    /// Returns the shared state of the handlers.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Returns a handle of the server's runtime, on which in-process requests run.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            None => unreachable!("the runtime is taken only by shut_down, which consumes the server"),
        }
    }

    /// Returns the address the TLS listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound
    }

    fn shut_down(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.listener_task.take() {
            // The listener returns as soon as it receives the signal.
            let _ = runtime.block_on(task);
        }
        if let Some(task) = self.admin_task.take() {
            task.abort();
        }
        if let Err(error) = std::fs::remove_file(&self.socket) {
            tracing::warn!(path = %self.socket.display(), error = %error, "failed to remove the admin socket");
        }
        self.watcher = None;

        // A scan still running is abandoned: each batch is its own SQLite
        // transaction, so the next start resumes from the last committed one.
        runtime.shutdown_timeout(SHUTDOWN_GRACE);
        // The KME client's own runtime is dropped outside the server's.
        self.links = None;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Environment variable that overrides `[guard] mode`.
pub const GUARD_MODE_ENV: &str = "HEARTH_GUARD_MODE";
/// Environment variable that overrides `[guard] record`.
pub const GUARD_RECORD_ENV: &str = "HEARTH_GUARD_RECORD";

/// Builds the guard from `[guard]` and its environment overrides.
fn open_guard(settings: &ServeSettings, paths: &DataPaths) -> Result<Arc<crate::guard::GuardService>> {
    let section = &settings.file.guard;
    let mode = match std::env::var(GUARD_MODE_ENV) {
        Ok(text) => text.parse().map_err(|error: String| anyhow::anyhow!("{GUARD_MODE_ENV}: {error}"))?,
        Err(_) => section.mode.unwrap_or_default(),
    };
    let record = std::env::var_os(GUARD_RECORD_ENV).map(PathBuf::from).or_else(|| section.record.clone());
    let rules = hearth_guard::RuleSettings::default();
    let rules_and_model = if section.scorer.unwrap_or(true) {
        hearth_guard::Guard::with_scorer(rules, hearth_guard::scorer::Scorer::builtin())
    } else {
        tracing::warn!("guard scorer off: the rules alone decide");
        hearth_guard::Guard::new(rules)
    };
    let guard = crate::guard::GuardService::new(mode, rules_and_model, Some(paths.guard.clone()), record.as_deref())
        .with_context(|| format!("failed to set up the guard in {}", paths.guard.display()))?;
    match mode {
        crate::guard::GuardMode::Enforce => tracing::info!("guard enforcing: bans, rate limits and session ends are carried out"),
        crate::guard::GuardMode::Observe => tracing::warn!("guard in observe mode: alerts only, nothing is banned"),
        crate::guard::GuardMode::Off => tracing::warn!("guard off: requests are not inspected"),
    }
    if let Some(record) = &record {
        tracing::warn!(file = %record.display(), "guard records every request to a file");
    }
    Ok(guard)
}

/// Loads this node's identity and X-Wing key and builds its KME client.
///
/// The KME client runs its own blocking runtime, so it is built before the
/// server's runtime starts, and the server drops it after that runtime has
/// shut down.
fn open_links(settings: &ServeSettings, rotation: &Arc<KeyRotation>) -> Result<Arc<NodeLinks>> {
    let file = &settings.file;
    let sae_id = file.sae_id(settings.sae_id.as_deref())?;
    let qkd: Option<Arc<dyn hearth_pqc::qkd::QkdKeySource>> = match &file.qkd {
        Some(section) => Some(Arc::new(section.client(&sae_id)?)),
        None => None,
    };
    match &file.qkd {
        Some(section) => tracing::info!(sae_id = %sae_id, kme = %section.kme_url, "QKD key source configured for link keys"),
        None => tracing::info!(sae_id = %sae_id, "no [qkd] section; link keys use X-Wing alone"),
    }

    let handle = KeyStoreHandle::Rotation(Arc::clone(rotation));
    let links = NodeLinks::open(sae_id, handle, qkd).context("failed to load the node's X-Wing key")?;
    Ok(Arc::new(links))
}

/// Starts watching the library folders; each change is scanned and its
/// progress published like a full scan's.
fn start_watcher(catalog: &Arc<Catalog>, events: &ScanEvents) -> Result<hearth_catalog::watch::LibraryWatcher> {
    let events = events.clone();
    let on_progress: hearth_catalog::watch::ProgressCallback = Arc::new(move |p: &ScanProgress| events.publish(p));
    let on_scan: hearth_catalog::watch::SummaryCallback = Arc::new(|_, _| {});
    Ok(hearth_catalog::watch::LibraryWatcher::start(Arc::clone(catalog), on_progress, on_scan)?)
}
