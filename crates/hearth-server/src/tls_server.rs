//! The TLS accept loop: handshake, record what was negotiated, serve HTTP/1.1
//! or HTTP/2 by ALPN.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt;

use crate::connection::{ConnectionInfo, ConnectionLog};

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    connections: Arc<ConnectionLog>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);

    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and similar: back off briefly.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => {
                tracing::info!("listener stopped");
                return;
            }
        };

        let tls = Arc::clone(&tls);
        let app = app.clone();
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            serve_connection(tls, tcp, peer, app, connections).await;
        });
    }
}

async fn serve_connection(
    tls: Arc<rustls::ServerConfig>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    connections: Arc<ConnectionLog>,
) {
    let _ = tcp.set_nodelay(true);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(tls, tcp, peer)).await {
        Ok(Some(stream)) => stream,
        Ok(None) => return,
        Err(_) => {
            tracing::info!(peer = %peer, "TLS handshake timed out");
            return;
        }
    };

    let info = ConnectionInfo::from_tls(connections.next_id(), peer, stream.get_ref().1);
    tracing::info!(
        peer = %peer,
        connection = info.id,
        group = info.key_exchange_group.as_deref().unwrap_or("none"),
        post_quantum = info.post_quantum,
        alpn = info.alpn.as_deref().unwrap_or("none"),
        "TLS connection established"
    );
    connections.record(info.clone());

    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(info.clone());
        app.clone().oneshot(request)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(err) = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await {
        tracing::debug!(peer = %peer, error = %err, "connection closed with error");
    }
}

/// Reads the ClientHello first, so that a client offering none of the
/// server's key-exchange groups (a classical client against `--pq-only`) is
/// logged with the groups it offered, then runs the handshake.
async fn handshake(tls: Arc<rustls::ServerConfig>, tcp: tokio::net::TcpStream, peer: SocketAddr) -> Option<TlsStream<tokio::net::TcpStream>> {
    let start = match LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await {
        Ok(start) => start,
        Err(err) => {
            tracing::info!(peer = %peer, error = %err, "TLS handshake failed before ClientHello");
            return None;
        }
    };

    let offered: Vec<rustls::NamedGroup> = start.client_hello().named_groups().map(<[_]>::to_vec).unwrap_or_default();
    let accepted: Vec<rustls::NamedGroup> = tls.crypto_provider().kx_groups.iter().map(|g| g.name()).collect();
    if !offered.iter().any(|group| accepted.contains(group)) {
        tracing::warn!(
            peer = %peer,
            offered = %names(&offered),
            accepted = %names(&accepted),
            "TLS client rejected: it offers no accepted key-exchange group"
        );
        // rustls finishes the refusal with a handshake_failure alert, so
        // the client reports a TLS error rather than a reset connection.
    }

    match start.into_stream(tls).await {
        Ok(stream) => Some(stream),
        Err(err) => {
            tracing::info!(peer = %peer, error = %err, "TLS handshake failed");
            None
        }
    }
}

fn names(groups: &[rustls::NamedGroup]) -> String {
    let names: Vec<String> = groups.iter().map(|g| hearth_pqc::group_name(*g)).collect();
    if names.is_empty() { "none".to_owned() } else { names.join(",") }
}
