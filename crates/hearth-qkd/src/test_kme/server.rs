//! The test KME's TLS accept loop: mutual TLS handshake, SAE id from the
//! client certificate, then HTTP/1.1 or HTTP/2 by ALPN.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::certs::sae_id_of;
use super::routes::CallerSae;

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until `shutdown` fires or its sender
/// is dropped.
pub(super) async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(error = %err, "test KME could not register its listener with tokio");
            return;
        }
    };
    let acceptor = TlsAcceptor::from(tls);

    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "test KME accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };

        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            serve_connection(acceptor, tcp, peer, app).await;
        });
    }
}

async fn serve_connection(acceptor: TlsAcceptor, tcp: TcpStream, peer: SocketAddr, app: Router) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            // A client without a certificate from the KME's CA ends here.
            tracing::info!(peer = %peer, error = %err, "test KME TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(peer = %peer, "test KME TLS handshake timed out");
            return;
        }
    };

    let caller = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).and_then(sae_id_of);
    let Some(caller) = caller else {
        tracing::warn!(peer = %peer, "test KME client certificate has no common name to use as SAE id");
        return;
    };
    tracing::debug!(peer = %peer, sae = %caller, "test KME connection from SAE");

    let caller = CallerSae(caller);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(caller.clone());
        app.clone().oneshot(request)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(err) = builder.serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(peer = %peer, error = %err, "test KME connection closed with error");
    }
}
