//! Accepting connections: a cap on how many, in all and per client address, a
//! deadline for headers, an operators' listener apart from the public one, and
//! a graceful stop that lets requests in flight finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tracing::{info, warn};

use crate::client_address::TrustedProxies;
use crate::config::HttpConfig;
use crate::connections::{ConnectionLimits, Connections};
use crate::head_timer::HeadTimer;
use crate::router::Surface;
use crate::{App, memory, router};

/// Connections the kernel completes and queues before the service accepts
/// them (capped by `net.core.somaxconn`). The standard library's 128, which
/// `TcpListener::bind` uses, is too few for a spike: measured with 1,024
/// clients connecting at once, hundreds had their SYN dropped and waited a
/// second for its retransmission (benches/BENCHMARKS.md).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Open connections to the operators' listener at most: a few scrapers and
/// probes, kept apart from the public cap so a flood there cannot starve them.
const OPERATOR_CONNECTIONS: usize = 64;

/// Binds the service's listening socket, with [`LISTEN_BACKLOG`].
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The sockets the service answers on.
pub struct Listeners {
    /// Everyone: the API, `/healthz` and `/readyz`, and `/metrics` unless
    /// `operator` is set.
    pub public: TcpListener,
    /// Operators only: `/metrics`, `/readyz` and `/healthz`.
    pub operator: Option<TcpListener>,
}

impl Listeners {
    /// Binds the public address and, when given, the operators' one.
    pub fn bind(public: SocketAddr, operator: Option<SocketAddr>) -> std::io::Result<Self> {
        Ok(Self {
            public: listen(public)?,
            operator: operator.map(listen).transpose()?,
        })
    }
}

/// The most header fields a request may have, and about the most bytes its
/// head (request line and headers) may take: past either, hyper answers `431
/// Request Header Fields Too Large` and closes the connection. A browser
/// sends about 20 fields in under 2 KiB. The count is hyper's own default,
/// kept: setting it moves header parsing to the heap (5 % slower, hyper's
/// docs). The size is checked between reads of an unfinished head, so a head
/// that arrives at once may pass it by up to a read (measured: 72 KiB passed,
/// 128 KiB did not; hyper's default was about 400 KiB).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves until `shutdown` completes, then waits (up to the grace period) for
/// the requests in flight on either listener.
pub async fn serve(
    listeners: Listeners,
    app: Arc<App>,
    config: HttpConfig,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    // Apart, so that a scraper's kept-alive connection to the operators'
    // listener does not hold a stop for the idle time a proxy's may need.
    let graceful = GracefulShutdown::new();
    let graceful_operator = GracefulShutdown::new();
    // Each connection gets a clone with its own timer (`head_timer`).
    let mut http = http1::Builder::new();
    http.header_read_timeout(config.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES);
    let closed_many = Arc::new(Notify::new());
    let public = Connections::new(
        ConnectionLimits {
            total: config.max_connections,
            per_address: config.max_connections_per_address,
        },
        config.trusted_proxies.clone(),
        closed_many.clone(),
    );
    let accept = |listener, surface, connections, graceful| Acceptor {
        listener,
        surface,
        connections,
        app: &app,
        config: &config,
        http: &http,
        graceful,
    };
    let (public_surface, operator) = match listeners.operator {
        Some(listener) => {
            let connections = Connections::new(
                ConnectionLimits {
                    total: OPERATOR_CONNECTIONS,
                    per_address: OPERATOR_CONNECTIONS,
                },
                TrustedProxies::default(),
                closed_many.clone(),
            );
            (
                Surface::Public,
                Some(accept(
                    listener,
                    Surface::Operator,
                    connections,
                    &graceful_operator,
                )),
            )
        }
        None => (Surface::Everything, None),
    };
    let public = accept(listeners.public, public_surface, public, &graceful);
    // Dropping these futures on shutdown closes the listeners.
    let accepting = async {
        tokio::join!(public.run(), async {
            if let Some(operator) = &operator {
                operator.run().await;
            }
        })
    };
    tokio::select! {
        _ = accepting => {}
        () = memory::hand_back(&closed_many) => {}
        () = shutdown => {}
    }
    // Connections the kernel completed before the stop are served, not reset
    // (a proxy that sent a request on one would get no answer), as far as
    // the cap on connections leaves room for them.
    public.accept_queued();
    if let Some(operator) = &operator {
        operator.accept_queued();
    }
    drop((public, operator));
    app.stopping.cancel();
    info!("stopped accepting; finishing requests in flight");
    let grace = tokio::time::Instant::now() + config.shutdown_grace;
    // Every answer from now on says `Connection: close` (see `router`), so
    // each busy connection ends after its next response. An idle one is left
    // to its client for a while: closing it here could cross a request the
    // client is sending on it, which then gets no answer at all (nginx
    // answers 502 and, for a POST, tries no other instance). A proxy whose
    // idle timeout is shorter closes its own (deploy/nginx/undersigned.conf).
    let idle = tokio::time::Instant::now() + config.shutdown_idle.min(config.shutdown_grace);
    while graceful.count() > 0 && tokio::time::Instant::now() < idle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed = async { tokio::join!(graceful.shutdown(), graceful_operator.shutdown()) };
    tokio::select! {
        _ = closed => {}
        () = tokio::time::sleep_until(grace) => warn!("grace period over; closing connections"),
    }
}

/// One listener's accept loop.
struct Acceptor<'a> {
    listener: TcpListener,
    surface: Surface,
    connections: Arc<Connections>,
    app: &'a Arc<App>,
    config: &'a Arc<HttpConfig>,
    http: &'a http1::Builder,
    graceful: &'a GracefulShutdown,
}

impl Acceptor<'_> {
    async fn run(&self) {
        loop {
            let slot = self.connections.slot().await;
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: pause rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            self.serve(slot, stream, peer);
        }
    }

    /// Takes every connection waiting in the listen backlog, without waiting
    /// for more or for a free slot. Asks the socket itself: tokio's `accept`
    /// answers from the readiness its driver last saw, which may not yet
    /// include a connection the kernel has just queued.
    fn accept_queued(&self) {
        let listener = socket2::SockRef::from(&self.listener);
        while let Some(slot) = self.connections.slot().now_or_never() {
            let (socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break, // the backlog is empty
                Err(_) => continue, // one that gave up while queued, say
            };
            let Some(peer) = peer.as_socket() else {
                continue;
            };
            let stream = std::net::TcpStream::from(socket);
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if let Ok(stream) = TcpStream::from_std(stream) {
                self.serve(slot, stream, peer);
            }
        }
    }

    /// Serves one accepted connection on its own task, unless the caps refuse it.
    fn serve(&self, slot: OwnedSemaphorePermit, stream: TcpStream, peer: SocketAddr) {
        let held = match self.connections.admit(slot, peer.ip()) {
            Ok(held) => held,
            Err(refusal) => {
                self.app.metrics.connection_refused(refusal);
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        // A client that may sign: lingering batches wait only while one could
        // still join them (the guard's `joiners.rs`).
        let may_sign = (self.surface != Surface::Operator)
            .then(|| self.app.ingest.guard().joiners().connection());
        let app = self.app.clone();
        let conf = self.config.clone();
        let surface = self.surface;
        let service = service_fn(move |req| {
            let app = app.clone();
            let conf = conf.clone();
            async move { Ok::<_, Infallible>(router::handle(&app, &conf, req, peer, surface).await) }
        });
        let mut http = self.http.clone();
        http.timer(HeadTimer::default());
        let connection = self
            .graceful
            .watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(may_sign);
            drop(held);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpStream;

    use super::listen;

    /// A crowd connecting before the service accepts anyone is queued by the
    /// kernel, not dropped: with the standard library's backlog of 128, all
    /// but about 129 of these would wait a second for a SYN retransmission.
    #[tokio::test]
    async fn a_crowd_of_connections_waits_in_the_backlog() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = (0..600)
            .map(|_| tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)));
        let connected = futures_util::future::join_all(connects)
            .await
            .into_iter()
            .filter(|c| matches!(c, Ok(Ok(_))))
            .count();
        assert_eq!(connected, 600);
        drop(listener);
    }
}
