//! The host admin socket: a Unix domain socket in the data folder through
//! which commands on the server's host (`hearth keys rotate`, `hearth
//! link`) reach the running server without a network credential.
//!
//! The socket file has mode 0600 inside the data folder, so the operating
//! system decides who may connect: the account that runs the server (and
//! root). Whoever can do that can read the data folder and its keys anyway,
//! so the socket grants nothing new. Requests on it carry [`HostAdmin`] and
//! pass [`crate::access::authenticate`] as an admin, and each one is
//! written to the audit table.
//!
//! What this does not protect against: a process running as the server's
//! own user. It can use the socket as it can read the key store.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tower::ServiceExt;

/// File name of the socket inside the data folder.
pub const SOCKET_NAME: &str = "admin.sock";

/// Marks a request that arrived on the host admin socket.
#[derive(Debug, Clone, Copy)]
pub struct HostAdmin;

/// Returns the socket path for a data folder.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Binds the socket at `path` with mode 0600, replacing a stale socket
/// left by a server that did not shut down cleanly.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket; move it away", path.display()),
            ));
        }
        Err(_) => {}
    }
    // The umask applies to bind; set it so the file is never wider than 0600.
    // SAFETY: umask only changes this process's file creation mask.
    let previous = unsafe { libc::umask(0o177) };
    let listener = UnixListener::bind(path);
    // SAFETY: restores the mask read above.
    unsafe { libc::umask(previous) };
    let listener = listener?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves `app` on `listener` over HTTP/1.1 until the task is dropped.
pub async fn serve(listener: UnixListener, app: Router) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(error = %error, "admin socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(HostAdmin);
                app.clone().oneshot(request)
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %error, "admin socket connection ended");
            }
        });
    }
}

/// Sends one JSON request to the server's admin socket and returns the
/// status code and the JSON body (null when the body is empty).
pub fn request(path: &Path, method: &str, target: &str, body: Option<&serde_json::Value>) -> Result<(u16, serde_json::Value), String> {
    let mut stream = UnixStream::connect(path).map_err(|error| {
        format!("failed to connect to {}: {error}; is `hearth serve` running with this data folder, as this user?", path.display())
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(180))).map_err(|e| e.to_string())?;
    let payload = body.map(serde_json::Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    );
    // One write, and a failed write is not fatal: the server may answer and
    // close before it reads a body its route does not use.
    let request = [head.as_bytes(), payload.as_bytes()].concat();
    let written = stream.write_all(&request);

    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).map_err(|e| e.to_string())?;
    if status_line.is_empty() {
        return Err(match written {
            Err(error) => format!("failed to send the request to {}: {error}", path.display()),
            Ok(()) => format!("{} closed the connection without an answer", path.display()),
        });
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("the server sent no HTTP status line: {status_line:?}"))?;
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut bytes = Vec::new();
    match length {
        Some(length) => {
            bytes.resize(length, 0);
            reader.read_exact(&mut bytes).map_err(|e| e.to_string())?;
        }
        None => {
            reader.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        }
    }
    let json = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null) };
    Ok((status, json))
}
