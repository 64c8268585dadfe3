//! How a node takes part in a cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Where a task accepted by one node starts (per queue).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// On the node that accepted it (the default).
    #[default]
    Local,
    /// In turn over the healthy nodes serving the queue.
    RoundRobin,
    /// On the healthy node serving the queue with the most free workers (gossiped on the
    /// agents' pings).
    LeastLoaded,
    /// By rendezvous hashing of the task's routing key over the healthy nodes serving
    /// the queue: one key stays on one node while it is up; when a node leaves, only its
    /// keys move. A task without a key starts where it was accepted.
    ConsistentHash,
}

/// The routing policy of each queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Routing {
    /// The policy of queues not named in `queues`.
    pub default: Policy,
    /// Per queue.
    pub queues: BTreeMap<String, Policy>,
}

impl Routing {
    /// The policy of `queue`.
    pub fn of(&self, queue: &str) -> Policy {
        self.queues.get(queue).copied().unwrap_or(self.default)
    }
}

/// Mutual TLS between nodes: this node's certificate and key, and the CA that signed its
/// peers' (PEM files). With TLS set, plain connections are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// This node's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA certificates peers' certificates must chain to.
    pub ca: PathBuf,
}

/// A node's part in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The node's name: unique in the cluster, the same across restarts.
    pub node_name: String,
    /// Where this node accepts its peers' connections.
    pub listen: SocketAddr,
    /// The address peers dial (`host:port`), registered in the store.
    pub advertise: String,
    /// Addresses to dial besides the nodes registered in the store.
    pub seeds: Vec<String>,
    /// The shared secret of the cluster (ractor's cookie challenge).
    pub cookie: Secret,
    /// Mutual TLS, if set.
    pub tls: Option<TlsFiles>,
    /// How often each peer's agent is pinged (default 1 s).
    pub ping_every: Duration,
    /// A peer whose agent has not answered for this long is suspect and its session is
    /// closed (default 2 s, so a stopped peer is suspect within 3 s).
    pub suspect_after: Duration,
    /// The longest a connection may take to be set up and authenticated (default 3 s).
    pub handshake_timeout: Duration,
    /// The longest a dial may take to connect (default 2 s).
    pub connect_timeout: Duration,
    /// Reconnect backoff: the first wait and the longest (defaults 200 ms, 5 s),
    /// jittered.
    pub reconnect: (Duration, Duration),
    /// The deadline of a call to a peer (live status; default 1 s).
    pub call_timeout: Duration,
    /// Messages larger than this are refused (default 4 MiB).
    pub max_message_bytes: usize,
    /// Hints sent to a peer since its last answered ping, past which further hints to it
    /// are dropped (default 4096): the outbound queue to a stalled peer stays bounded.
    pub outbound_limit: usize,
    /// Routing per queue.
    pub routing: Routing,
}

impl ClusterConfig {
    /// A cluster node `node_name` listening on `listen`, advertising `advertise`, with
    /// `cookie` and the defaults above.
    pub fn new(
        node_name: impl Into<String>,
        listen: SocketAddr,
        advertise: impl Into<String>,
        cookie: Secret,
    ) -> Self {
        Self {
            node_name: node_name.into(),
            listen,
            advertise: advertise.into(),
            seeds: Vec::new(),
            cookie,
            tls: None,
            ping_every: Duration::from_secs(1),
            suspect_after: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
            reconnect: (Duration::from_millis(200), Duration::from_secs(5)),
            call_timeout: Duration::from_secs(1),
            max_message_bytes: 4 << 20,
            outbound_limit: 4096,
            routing: Routing::default(),
        }
    }
}
