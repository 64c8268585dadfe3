//! The mesh's sockets, set up by us rather than by ractor_cluster so that every
//! connection has keepalive and a TCP user timeout (a black-holed peer is noticed in
//! seconds, not after minutes of retransmission), and every handshake has a deadline
//! (a stalled client cannot hold up the accepts). Connections are handed to the
//! `NodeServer` as external streams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use super::tls::Tls;

/// Keepalive probes start after this much silence, and repeat at this interval.
const KEEPALIVE: Duration = Duration::from_secs(2);
/// Unacknowledged data older than this closes the connection.
const USER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The TCP connect failed or took too long.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed or took too long.
    #[error("tls handshake with {addr}: {source}")]
    Tls {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node server is gone.
    #[error("the mesh's node server stopped")]
    ServerGone,
}

/// A connected stream for the `NodeServer`.
struct Stream<S> {
    inner: S,
    peer: String,
    local: String,
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> ClusterBidiStream for Stream<S> {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (r, w) = tokio::io::split(self.inner);
        (Box::new(r), Box::new(w))
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.peer.clone())
    }

    fn local_label(&self) -> Option<String> {
        Some(self.local.clone())
    }
}

/// Sets no-delay, keepalive and the TCP user timeout on `stream`.
fn tune(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let sock = SockRef::from(stream);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE)
        .with_interval(KEEPALIVE)
        .with_retries(2);
    sock.set_tcp_keepalive(&keepalive)?;
    #[cfg(target_os = "linux")]
    sock.set_tcp_user_timeout(Some(USER_TIMEOUT))?;
    Ok(())
}

fn labels(stream: &TcpStream) -> (String, String) {
    let show = |a: std::io::Result<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    (show(stream.peer_addr()), show(stream.local_addr()))
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} took too long"),
    )
}

/// Dials `addr`, sets the socket up, runs the TLS handshake if configured, and hands the
/// connection to `server`, all within `deadline`.
pub(crate) async fn dial(
    server: &ActorRef<NodeServerMessage>,
    addr: &str,
    tls: Option<&Tls>,
    deadline: Duration,
) -> Result<(), DialError> {
    let connect = |source| DialError::Connect {
        addr: addr.to_string(),
        source,
    };
    let stream = tokio::time::timeout(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| connect(timed_out("connect")))?
        .map_err(connect)?;
    tune(&stream).map_err(connect)?;
    let (peer, local) = labels(&stream);
    let boxed: Box<dyn ClusterBidiStream> = match tls {
        None => Box::new(Stream {
            inner: stream,
            peer,
            local,
        }),
        Some(tls) => {
            let tls_err = |source| DialError::Tls {
                addr: addr.to_string(),
                source,
            };
            let handshake = tls.connect(addr, stream);
            let inner = tokio::time::timeout(deadline, handshake)
                .await
                .map_err(|_| tls_err(timed_out("the TLS handshake")))?
                .map_err(tls_err)?;
            Box::new(Stream { inner, peer, local })
        }
    };
    ractor_cluster::client_connect_external(server, boxed)
        .await
        .map_err(|_| DialError::ServerGone)
}

/// Accepts peers on `listener` until the server stops: each connection is tuned and, with
/// TLS, its handshake runs in its own task within `deadline`, then it goes to `server`.
pub(crate) async fn accept(
    listener: TcpListener,
    server: ActorRef<NodeServerMessage>,
    tls: Option<Arc<Tls>>,
    deadline: Duration,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "mesh accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (server, tls) = (server.clone(), tls.clone());
        tokio::spawn(async move {
            let (peer, local) = labels(&stream);
            if let Err(e) = tune(&stream) {
                tracing::debug!(%peer, error = %e, "mesh connection dropped: cannot set it up");
                return;
            }
            let boxed: Box<dyn ClusterBidiStream> = match tls {
                None => Box::new(Stream {
                    inner: stream,
                    peer,
                    local,
                }),
                Some(tls) => match tokio::time::timeout(deadline, tls.accept(stream)).await {
                    Ok(Ok(inner)) => Box::new(Stream { inner, peer, local }),
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "mesh connection refused: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "mesh connection dropped: TLS handshake took too long");
                        return;
                    }
                },
            };
            let opened = NodeServerMessage::ConnectionOpenedExternal {
                stream: boxed,
                is_server: true,
            };
            let _ = server.cast(opened);
        });
    }
}
