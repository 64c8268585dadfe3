//! A TCP proxy for fault injection: put it between two processes (a node and
//! PostgreSQL, a node and its peers) and change what happens to their bytes while
//! connections are open.
//!
//! A [`Mode`] applies at once to the open connections and to the new ones:
//!
//! | mode | open connections | new connections |
//! |---|---|---|
//! | [`Mode::Pass`] | bytes forwarded both ways | forwarded |
//! | [`Mode::BlackHole`] | every byte read and dropped; a close is hidden too | accepted, never forwarded |
//! | [`Mode::Reset`] | closed with an RST | reset right after the accept |
//! | [`Mode::Delay`] | each chunk forwarded after the delay, in order | the same |
//!
//! Which to use:
//! - **BlackHole** is a partition: nobody is told, so peers must notice by their own
//!   deadlines. The dropped bytes are gone for good (TCP would have retransmitted them),
//!   so a connection that lived through a black hole is useless after the heal: a peer
//!   must drop it and connect again. A connection accepted during a black hole never
//!   reaches the target; it is closed when the mode changes.
//! - **Reset** is a far host that restarted: every connection fails at once.
//! - **Delay** is a slow link.
//! - [`Proxy::cut`] is a host that is down: connects are refused and open connections
//!   closed, until [`Proxy::restore`].
//!
//! A proxy started with a [`Classifier`] ([`Proxy::start_classified`]) names the source
//! of each connection (the process that dialed, say); [`Proxy::set_source_mode`] then
//! gives one source's connections a mode of their own, to break the links of one peer
//! among several that share a target.
//!
//! When one side closes (or fails), the proxy closes the other side at once, after the
//! bytes already read from the closing side (so a killed client's PostgreSQL backend
//! ends). A half-close is not kept: the whole connection ends.
//!
//! ```no_run
//! # async fn t(target: std::net::SocketAddr) -> std::io::Result<()> {
//! use std::time::Duration;
//! use taskmesh::testing::proxy::{Mode, Proxy};
//!
//! let proxy = Proxy::start(target).await?;
//! // ... connect the system under test to proxy.addr() ...
//! proxy.set_mode(Mode::Delay(Duration::from_millis(50)));
//! proxy.set_mode(Mode::BlackHole);
//! proxy.set_mode(Mode::Pass);
//! # Ok(()) }
//! ```

mod modes;
mod relay;
#[cfg(test)]
mod tests;

pub use modes::Classifier;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use modes::Modes;

/// What the proxy does with the bytes of its connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Forward bytes both ways.
    #[default]
    Pass,
    /// Keep connections open, read and drop every byte both ways; hide closes.
    BlackHole,
    /// Close every connection with an RST, and reset new ones after the accept.
    Reset,
    /// Forward each chunk after this one-way latency, keeping the order.
    Delay(Duration),
}

/// Forwards connections from a free port on 127.0.0.1 to a target, in the current
/// [`Mode`]. Dropping it closes everything.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Cancelled by [`cut`](Self::cut): ends the listener and its connections.
    up: Mutex<CancellationToken>,
    /// Closed (its sender dropped) once the current listener is gone.
    listener_gone: Mutex<Option<oneshot::Receiver<()>>>,
}

/// What the proxy's tasks share.
struct Shared {
    target: SocketAddr,
    modes: watch::Sender<Modes>,
    open: AtomicUsize,
    classify: Option<Classifier>,
    /// Bytes read and dropped in a black hole, by every connection so far.
    dropped: Arc<watch::Sender<u64>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("target", &self.target)
            .field("modes", &*self.modes.borrow())
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `target` ([`Mode::Pass`]).
    pub async fn start(target: SocketAddr) -> io::Result<Proxy> {
        Self::start_with(target, None).await
    }

    /// Like [`start`](Self::start), with a [`Classifier`] that names the source of
    /// each connection as it is accepted, so that
    /// [`set_source_mode`](Self::set_source_mode) can apply to one source only (the
    /// connections one process dialed, say).
    pub async fn start_classified(target: SocketAddr, classify: Classifier) -> io::Result<Proxy> {
        Self::start_with(target, Some(classify)).await
    }

    async fn start_with(target: SocketAddr, classify: Option<Classifier>) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = Proxy {
            addr: listener.local_addr()?,
            shared: Arc::new(Shared {
                target,
                modes: watch::Sender::new(Modes::default()),
                open: AtomicUsize::new(0),
                classify,
                dropped: Arc::new(watch::Sender::new(0)),
            }),
            up: Mutex::new(CancellationToken::new()),
            listener_gone: Mutex::new(None),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    /// The address clients connect to (the same after a [`restore`](Self::restore)).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where connections are forwarded.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Switches the mode, for the open connections and the new ones (but those of a
    /// source with a mode of its own).
    pub fn set_mode(&self, mode: Mode) {
        self.shared.modes.send_modify(|m| m.all = mode);
    }

    /// The current mode (for the connections of a source with no mode of its own).
    pub fn mode(&self) -> Mode {
        self.shared.modes.borrow().all
    }

    /// Switches the mode of the connections (open and new) that the [`Classifier`]
    /// names `source`, over the proxy's own mode; `None` gives them the proxy's mode
    /// again. Without a classifier no connection has a source.
    pub fn set_source_mode(&self, source: &str, mode: Option<Mode>) {
        self.shared.modes.send_modify(|m| match mode {
            Some(mode) => {
                m.by_source.insert(source.to_owned(), mode);
            }
            None => {
                m.by_source.remove(source);
            }
        });
    }

    /// Bytes read and dropped in black holes so far, by every connection.
    pub fn dropped(&self) -> u64 {
        *self.shared.dropped.borrow()
    }

    /// Waits until the proxy has dropped more than `than` bytes in black holes in all
    /// (see [`dropped`](Self::dropped)): a request sent into one has been swallowed.
    pub async fn dropped_more_than(&self, than: u64) {
        let mut rx = self.shared.dropped.subscribe();
        let _ = rx.wait_for(|n| *n > than).await;
    }

    /// How many connections are open (accepted and not yet closed), in any mode.
    pub fn connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Stops listening (connects are refused) and closes every open connection, until
    /// [`restore`](Self::restore). The mode is kept.
    pub fn cut(&self) {
        let old = std::mem::take(&mut *self.up.lock());
        old.cancel();
    }

    /// Listens again on the same port, once the listener closed by [`cut`](Self::cut)
    /// is gone. Fails if the port is in use (the proxy was not cut, or someone else
    /// took the port).
    pub async fn restore(&self) -> io::Result<()> {
        let gone = self.listener_gone.lock().take();
        if let Some(gone) = gone {
            let _ = gone.await;
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }

    /// Accepts connections on `listener` until the current token is cancelled.
    fn serve(&self, listener: TcpListener) {
        let stop = self.up.lock().clone();
        let (gone_tx, gone_rx) = oneshot::channel::<()>();
        *self.listener_gone.lock() = Some(gone_rx);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((client, _)) => relay::spawn(client, &shared, stop.clone()),
                    Err(e) if transient(&e) => continue,
                    Err(_) => break,
                }
            }
            drop(listener);
            drop(gone_tx);
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.up.lock().cancel();
    }
}

/// An accept error that concerns one connection only, not the listener.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
