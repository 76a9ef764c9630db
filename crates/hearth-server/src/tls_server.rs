//! The TLS accept loop: ask the guard, handshake, record what was
//! negotiated, serve HTTP/1.1 or HTTP/2 by ALPN.
//!
//! A banned address is closed right after accept, before any TLS work,
//! and its open connections close as soon as the ban falls. Each
//! connection's end goes back to the guard: one that a timeout closed
//! before a complete request counts towards the slow-client rule.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt;

use crate::connection::{ConnectionInfo, ConnectionLog, TlsBinding};
use crate::guard::GuardService;
use crate::rotation::TlsCell;

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client gets to send a complete HTTP/1.1 request header.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// A connection with no bytes read or written for this long is closed. A
/// paused player reconnects with a range request when it resumes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How often idle connections are looked for.
const IDLE_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// HTTP/2 keep-alive ping interval; a peer that misses a ping for
/// [`HTTP2_PING_TIMEOUT`] is gone.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// See [`HTTP2_PING_INTERVAL`].
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Open connections allowed at once. A household needs a few dozen; the cap
/// keeps one misbehaving device from using up the process's file
/// descriptors.
pub const MAX_CONNECTIONS: usize = 512;
/// Minimum time between two "connection limit reached" warnings.
const LIMIT_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<TlsCell>,
    app: Router,
    connections: Arc<ConnectionLog>,
    guard: Arc<GuardService>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut last_limit_warning: Option<Instant> = None;

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

        // Before TLS: a banned source costs no handshake.
        if !guard.admit(peer.ip()) {
            tracing::debug!(peer = %peer, "connection refused by the guard");
            drop(tcp);
            continue;
        }

        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            guard.closed(peer.ip(), hearth_guard::ConnectionEnd::Served);
            if last_limit_warning.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_INTERVAL) {
                tracing::warn!(peer = %peer, limit = MAX_CONNECTIONS, "connection limit reached, closing new connections");
                last_limit_warning = Some(Instant::now());
            }
            drop(tcp);
            continue;
        };

        // Read per connection, so a rotated certificate applies at once.
        let tls = tls.get();
        let app = app.clone();
        let connections = Arc::clone(&connections);
        let guard = Arc::clone(&guard);
        tokio::spawn(async move {
            let opened = Instant::now();
            let served = serve_connection(tls, tcp, peer, app, connections, &guard).await;
            let end = match served {
                Ending::Served => hearth_guard::ConnectionEnd::Served,
                Ending::Quiet => hearth_guard::ConnectionEnd::Served,
                Ending::Stalled => hearth_guard::ConnectionEnd::Stalled { seconds: opened.elapsed().as_secs() },
            };
            guard.closed(peer.ip(), end);
            drop(permit);
        });
    }
}

/// How a connection ended, for the guard.
enum Ending {
    /// It carried at least one request.
    Served,
    /// It ended without a request, but not by our timeout (a port probe,
    /// a refused handshake, a client that gave up).
    Quiet,
    /// A timeout closed it before a complete request arrived.
    Stalled,
}

async fn serve_connection(
    tls: Arc<rustls::ServerConfig>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    connections: Arc<ConnectionLog>,
    guard: &GuardService,
) -> Ending {
    let _ = tcp.set_nodelay(true);
    let opened = Instant::now();
    let mut bans = guard.subscribe_bans();
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(tls, tcp, peer)).await {
        Ok(Some(stream)) => stream,
        Ok(None) => return Ending::Quiet,
        Err(_) => {
            tracing::info!(peer = %peer, "TLS handshake timed out");
            return Ending::Stalled;
        }
    };
    if guard.is_banned(peer.ip()) {
        return Ending::Quiet;
    }

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
    let binding = TlsBinding::from_tls(stream.get_ref().1);

    let requests = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&requests);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        counted.fetch_add(1, Ordering::Relaxed);
        request.extensions_mut().insert(info.clone());
        if let Some(binding) = binding {
            request.extensions_mut().insert(binding);
        }
        app.clone().oneshot(request)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HTTP2_PING_INTERVAL)
        .keep_alive_timeout(HTTP2_PING_TIMEOUT);

    let activity = Activity::new();
    let io = TokioIo::new(ActivityTracked { inner: stream, activity: Arc::clone(&activity) });
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let mut ticker = tokio::time::interval(IDLE_CHECK_INTERVAL);
    let ending = |requests: &AtomicU64| {
        if requests.load(Ordering::Relaxed) > 0 {
            Ending::Served
        } else if opened.elapsed() >= HEADER_READ_TIMEOUT {
            // hyper closed it at the header timeout, or it idled out.
            Ending::Stalled
        } else {
            Ending::Quiet
        }
    };
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(peer = %peer, error = %err, "connection closed with error");
                }
                return ending(&requests);
            }
            _ = ticker.tick() => {
                if activity.idle_for() >= IDLE_TIMEOUT {
                    tracing::debug!(peer = %peer, "closing idle connection");
                    return ending(&requests);
                }
            }
            banned = bans.recv() => {
                match banned {
                    Ok(source) if source == peer.ip() => {
                        tracing::info!(peer = %peer, "closing a banned source's connection");
                        return Ending::Served;
                    }
                    // Lagged: more bans than the buffer; look the peer up.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) if guard.is_banned(peer.ip()) => return Ending::Served,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => bans = guard.subscribe_bans(),
                    _ => {}
                }
            }
        }
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

/// Time of the last byte read or written on a connection.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self { start: Instant::now(), last_ms: AtomicU64::new(0) })
    }

    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A stream that records every successful read and write in [`Activity`].
struct ActivityTracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for ActivityTracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ActivityTracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
