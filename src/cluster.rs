//! The cluster: nodes joined over `ractor_cluster`, on one shared PostgreSQL store.
//!
//! PostgreSQL stays the only source of truth; everything here is a fast path that
//! degrades to the store when a message is lost (see `docs/ARCHITECTURE.md`, "The
//! cluster"):
//!
//! - a full mesh with reconnects (the `mesh` module), membership from the store's node
//!   registry;
//! - a failure detector with deadlines, and monitors on the peers' agents that rescue a
//!   killed peer's tasks at once;
//! - one remotable agent per node ([`agent`]), in the process groups `agents` and `queue/{q}`;
//! - routing of new tasks per queue ([`Policy`]), live status and stop requests from any
//!   node.
//!
//! ```no_run
//! # async fn run(system: taskmesh::TaskSystem) -> Result<(), taskmesh::cluster::ClusterError> {
//! use taskmesh::cluster::{Cluster, ClusterConfig};
//! use taskmesh::secret::Secret;
//!
//! let config = ClusterConfig::new("n1", "127.0.0.1:7701".parse().unwrap(), "127.0.0.1:7701", Secret::new("cookie"));
//! let cluster = Cluster::start(system, config).await?;
//! println!("{:?}", cluster.status().await);
//! # Ok(()) }
//! ```

pub mod agent;
mod config;
mod directory;
mod mesh;
mod net;
pub mod routing;
mod status;
mod tls;
pub mod wire;

pub use config::{ClusterConfig, Policy, Routing, TlsFiles};
pub use net::DialError;
pub use status::{ClusterStatus, CronLeader, NodeState, NodeStatus, QueueOnNode};
pub use tls::TlsError;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use ractor::{Actor, ActorRef};

use crate::scheduler::lease::CRON_LEASE;
use crate::system::{NodeLoad, TaskSystem};
use directory::{Directory, MeshPeers};
use mesh::{Mesh, MeshArgs, MeshMsg};

/// Why a node could not join a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A cluster needs a store several nodes share (PostgreSQL).
    #[error("a cluster needs a shared store (PostgreSQL); this system's store is not shared")]
    NotShared,
    /// The mesh listener could not be bound.
    #[error("cluster.listen {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The mesh's actors did not start.
    #[error("the mesh did not start: {0}")]
    Start(String),
    /// The system runs with hooks of another cluster already.
    #[error("this task system is already in a cluster")]
    AlreadyJoined,
    /// The system was built for another node name or without the mesh address, so peers
    /// would not find it.
    #[error("the task system must be built with node_name({node:?}) and advertise({advertise:?}) to join as that node")]
    Mismatch {
        /// The cluster config's node name.
        node: String,
        /// Its advertised address.
        advertise: String,
    },
}

/// A running cluster membership of one task system.
#[derive(Clone)]
pub struct Cluster {
    system: TaskSystem,
    config: Arc<ClusterConfig>,
    mesh: ActorRef<MeshMsg>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.config.node_name)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Joins `system` (which must run on a shared store, and should have been built
    /// with [`advertise`](crate::system::TaskSystemBuilder::advertise) and the same
    /// node name) to the cluster: binds the mesh listener, starts the mesh and the agent,
    /// and installs the routing and live-operation hooks.
    pub async fn start(system: TaskSystem, config: ClusterConfig) -> Result<Cluster, ClusterError> {
        if !system.shared.journal.shared() {
            return Err(ClusterError::NotShared);
        }
        let coord = &system.shared.coord;
        if coord.node != config.node_name || coord.address.as_deref() != Some(&config.advertise) {
            return Err(ClusterError::Mismatch {
                node: config.node_name.clone(),
                advertise: config.advertise.clone(),
            });
        }
        let tls = match &config.tls {
            Some(files) => Some(Arc::new(tls::Tls::load(files)?)),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ClusterError::Listen {
                addr: config.listen,
                source,
            })?;
        let config = Arc::new(config);
        let dir = Arc::new(RwLock::new(Directory::default()));
        let peers = MeshPeers::new(dir.clone(), system.clone(), config.clone());
        if system.shared.peers.set(Arc::new(peers)).is_err() {
            return Err(ClusterError::AlreadyJoined);
        }
        let args = MeshArgs {
            system: system.clone(),
            config: config.clone(),
            dir,
            tls,
            listener,
        };
        let (mesh, _) = Actor::spawn(None, Mesh, args)
            .await
            .map_err(|e| ClusterError::Start(e.to_string()))?;
        tracing::info!(node = %config.node_name, listen = %config.listen, advertise = %config.advertise, tls = config.tls.is_some(), "joined the cluster mesh");
        Ok(Cluster {
            system,
            config,
            mesh,
        })
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.config.node_name
    }

    /// Every node the store knows and the mesh sees, with its state, as this node sees
    /// them. Answers from the mesh alone (with `store_error` set) if the store cannot be
    /// read.
    pub async fn status(&self) -> ClusterStatus {
        let peers = ractor::call_t!(self.mesh, MeshMsg::View, 1000).unwrap_or_default();
        let store = self.system.shared.journal.store().cloned();
        let (records, lease) = match store {
            Some(s) => {
                let (nodes, lease) = futures::join!(s.nodes(), s.lease(CRON_LEASE.into()));
                (nodes.map_err(|e| e.to_string()), lease.ok().flatten())
            }
            None => (Ok(Vec::new()), None),
        };
        let leader = lease.map(CronLeader::from);
        status::build(&self.system, &self.config, peers, records, leader)
    }

    /// Each queue's load on every node that serves it and answers (this one included),
    /// by queue name.
    pub async fn queues(&self) -> std::collections::BTreeMap<String, Vec<QueueOnNode>> {
        let peers = ractor::call_t!(self.mesh, MeshMsg::View, 1000).unwrap_or_default();
        let mut out: std::collections::BTreeMap<String, Vec<QueueOnNode>> = Default::default();
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        for q in self.system.load().queues {
            out.entry(q.name.clone()).or_default().push(QueueOnNode {
                node: self.config.node_name.clone(),
                running: n(q.running),
                queued: n(q.queued),
                free_slots: n(q.free_slots),
            });
        }
        for p in peers.into_iter().filter(|p| p.connected && !p.suspect) {
            for q in p.hello.map(|h| h.queues).unwrap_or_default() {
                out.entry(q.name).or_default().push(QueueOnNode {
                    node: p.node.clone(),
                    running: q.running,
                    queued: q.queued,
                    free_slots: q.free_slots,
                });
            }
        }
        out
    }

    /// Drains this node (see [`TaskSystem::drain`]).
    pub async fn drain(&self) -> NodeLoad {
        self.system.drain().await
    }

    /// Leaves the mesh: peers see the session close.
    pub async fn shutdown(&self) {
        let _ = self
            .mesh
            .stop_and_wait(
                Some("node shutting down".into()),
                Some(Duration::from_secs(5)),
            )
            .await;
    }
}

#[cfg(test)]
mod tests;
