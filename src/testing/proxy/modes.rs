//! The modes in force: the proxy's own, and any set for one source of connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use super::Mode;

/// Names the source of a connection from its two ends (the client's address, then the
/// proxy's), say the process that dialed; `None` when it cannot tell.
pub type Classifier = Arc<dyn Fn(SocketAddr, SocketAddr) -> Option<String> + Send + Sync>;

/// The proxy's mode, and the modes set for single sources over it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Modes {
    pub(super) all: Mode,
    pub(super) by_source: BTreeMap<String, Mode>,
}

impl Modes {
    fn of(&self, source: Option<&str>) -> Mode {
        let set = source.and_then(|s| self.by_source.get(s));
        set.copied().unwrap_or(self.all)
    }
}

/// The mode of one connection, as it changes.
#[derive(Clone)]
pub(super) struct ModeOf {
    rx: watch::Receiver<Modes>,
    source: Option<String>,
    dropped: Arc<watch::Sender<u64>>,
}

impl ModeOf {
    pub(super) fn new(
        rx: watch::Receiver<Modes>,
        source: Option<String>,
        dropped: Arc<watch::Sender<u64>>,
    ) -> Self {
        Self {
            rx,
            source,
            dropped,
        }
    }

    /// Counts `n` bytes read and dropped.
    pub(super) fn dropped(&self, n: usize) {
        self.dropped.send_modify(|d| *d += n as u64);
    }

    /// The connection's mode now.
    pub(super) fn now(&self) -> Mode {
        self.rx.borrow().of(self.source.as_deref())
    }

    /// Waits until the connection's mode satisfies `ok`, and returns it; `None` once
    /// the proxy is gone.
    pub(super) async fn until(&mut self, ok: impl Fn(Mode) -> bool) -> Option<Mode> {
        let source = self.source.clone();
        let modes = self.rx.wait_for(|m| ok(m.of(source.as_deref()))).await;
        modes.ok().map(|m| m.of(source.as_deref()))
    }
}
