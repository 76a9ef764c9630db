//! The embedded server: started and stopped from the tray, and called in
//! process by the window's `hearth://` scheme and by the commands.
//!
//! Every in-process request carries [`HostAdmin`], as a request on the
//! 0600 admin socket does: the window is the host's own console, run by the
//! account that owns the data folder and its keys.

use std::net::SocketAddr;
use std::sync::Mutex;

use axum::Router;
use axum::body::Body;
use hearth_server::admin_socket::HostAdmin;
use hearth_server::config::display_host;
use hearth_server::embed::{ServeSettings, Server};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::error::DesktopError;

/// Whether the embedded server runs, as the tray and the window show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServerStatus {
    /// Serving the LAN on `address`; phones and TVs open `url`.
    Running {
        /// The bound TLS listener.
        address: String,
        /// The sign-in address for the household's devices.
        url: String,
    },
    /// Stopped from the tray.
    Stopped,
    /// The last start failed.
    Failed {
        /// Why, with its causes.
        reason: String,
    },
}

/// Starts, stops and reaches the embedded server.
pub struct ServerControl {
    settings: ServeSettings,
    slot: Mutex<Slot>,
}

enum Slot {
    Running(Box<Server>),
    Stopped,
    Failed(String),
}

impl ServerControl {
    /// Creates a control for a server with `settings`, not started yet.
    pub fn new(settings: ServeSettings) -> Self {
        Self { settings, slot: Mutex::new(Slot::Stopped) }
    }

    /// Starts the server unless it runs. Blocks while keys are set up and
    /// sockets bound; call it from a plain thread, not from async code.
    pub fn start(&self) -> Result<ServerStatus, DesktopError> {
        let mut slot = self.lock();
        if let Slot::Running(server) = &*slot {
            return Ok(running_status(server.local_addr()));
        }
        match Server::start(self.settings.clone()) {
            Ok((server, started)) => {
                tracing::info!(address = %started.bound, items = started.items, "embedded server started");
                if let Some(setup) = &started.setup {
                    // Only the offer id is logged: the code is a secret.
                    tracing::info!(offer = %setup.offer.id, "first run: pair the first device from the window");
                }
                let status = running_status(server.local_addr());
                *slot = Slot::Running(Box::new(server));
                Ok(status)
            }
            Err(error) => {
                let reason = format!("{error:#}");
                tracing::error!(error = %reason, "embedded server failed to start");
                *slot = Slot::Failed(reason.clone());
                Err(DesktopError::Start { reason })
            }
        }
    }

    /// Starts the server for the tray, which shows the outcome through
    /// [`Self::status`]. The error is logged and kept for that status.
    pub fn start_quietly(&self) {
        let _ = self.start();
    }

    /// Stops the server if it runs. Blocks for up to the server's shutdown
    /// grace; call it from a plain thread, not from async code.
    pub fn stop(&self) {
        let previous = std::mem::replace(&mut *self.lock(), Slot::Stopped);
        if let Slot::Running(server) = previous {
            // Stopped outside the lock, so status reads do not wait.
            server.stop();
            tracing::info!("embedded server stopped");
        }
    }

    /// Returns the server's state now.
    pub fn status(&self) -> ServerStatus {
        match &*self.lock() {
            Slot::Running(server) => running_status(server.local_addr()),
            Slot::Stopped => ServerStatus::Stopped,
            Slot::Failed(reason) => ServerStatus::Failed { reason: reason.clone() },
        }
    }

    /// Returns the router and runtime of the running server, for in-process calls.
    pub fn in_process(&self) -> Result<InProcess, DesktopError> {
        match &*self.lock() {
            Slot::Running(server) => {
                Ok(InProcess { router: server.router(), runtime: server.runtime(), address: server.local_addr() })
            }
            _ => Err(DesktopError::ServerStopped),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // A panic while holding the lock leaves a valid slot behind.
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The running server's router, reached without a socket.
#[derive(Clone)]
pub struct InProcess {
    router: Router,
    runtime: tokio::runtime::Handle,
    address: SocketAddr,
}

impl InProcess {
    /// Passes `request` to the router as a host-admin request, on the
    /// server's runtime, and returns its response.
    pub async fn send(&self, mut request: http::Request<Body>) -> Option<http::Response<Body>> {
        request.extensions_mut().insert(HostAdmin);
        let router = self.router.clone();
        // The router is infallible; a join error means the runtime is
        // shutting down.
        let task = self.runtime.spawn(async move { router.oneshot(request).await });
        match task.await {
            Ok(Ok(response)) => Some(response),
            Ok(Err(never)) => match never {},
            Err(_) => None,
        }
    }

    /// POSTs `body` as JSON to `path` with `Host` set to the LAN address (so
    /// links in the response work on other devices) and parses the response.
    pub async fn post_json<T: DeserializeOwned>(&self, path: &'static str, body: &impl Serialize) -> Result<T, DesktopError> {
        let payload = serde_json::to_vec(body).map_err(|source| DesktopError::Json { path, source })?;
        let request = http::Request::post(path)
            .header(http::header::HOST, self.authority())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(payload))
            .expect("a request from a static path and fixed headers is valid");
        let response = self.send(request).await.ok_or(DesktopError::Cancelled { path })?;

        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_JSON_ANSWER).await.map_err(|source| DesktopError::Body { path, source })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes).map(|b| b.error).unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(DesktopError::Api { method: "POST", path, status: status.as_u16(), message });
        }
        serde_json::from_slice(&bytes).map_err(|source| DesktopError::Json { path, source })
    }

    /// `HOST:PORT` under which the household's devices reach the server.
    pub fn authority(&self) -> String {
        format!("{}:{}", display_host(self.address), self.address.port())
    }
}

/// The JSON error body of every 4xx and 5xx (docs/api.md).
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
}

/// Maximum size of a JSON response that a command reads, in bytes.
const MAX_JSON_ANSWER: usize = 1024 * 1024;

fn running_status(address: SocketAddr) -> ServerStatus {
    let host = display_host(address);
    ServerStatus::Running { address: address.to_string(), url: format!("https://{host}:{}/ui/", address.port()) }
}
