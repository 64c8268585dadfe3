//! What every actor of one system shares: the task table, handlers and queues.

use foldhash::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::handler::{ErasedHandler, HandlerDefaults};
use super::journal::Journal;
use super::{QueueShared, TaskTable};
use crate::breaker::CircuitBreaker;
use crate::ratelimit::Limiter;
use crate::registry::Namespace;
use crate::task::Limits;

/// A registered handler with its defaults and per-kind gates.
pub(crate) struct HandlerEntry {
    /// The kind, shared by every task of it.
    pub kind: std::sync::Arc<str>,
    pub handler: Arc<dyn ErasedHandler>,
    pub defaults: HandlerDefaults,
    pub breaker: Option<CircuitBreaker>,
    pub limiter: Option<Limiter>,
}

/// The state of one task system, shared by its handle and its actors.
pub(crate) struct Shared {
    pub namespace: Namespace,
    pub table: TaskTable,
    /// Looked up on every submit and attempt: hashed with foldhash (a fixed map, built
    /// from the configuration: nothing a client sends is inserted).
    pub handlers: HashMap<String, HandlerEntry>,
    pub queues: HashMap<String, Arc<QueueShared>>,
    pub limits: Limits,
    /// How long a cancelled or timed-out handler gets to wind down before it is aborted.
    pub grace: Duration,
    /// The store, if any.
    pub journal: Journal,
    /// Store housekeeping: prune ended tasks and old crash history.
    pub housekeeping: Housekeeping,
    /// Schedules, clock and leadership of the cron scheduler.
    pub cron: crate::cron::CronShared,
    pub accepting: AtomicBool,
    /// The supervision tree's root, once started. If it stops on its own (it gave up
    /// after repeated failures below it), no worker runs anything any more: the system is
    /// then not ready and refuses submits.
    pub root: std::sync::OnceLock<ractor::ActorCell>,
    /// How this process takes part when several share the store.
    pub coord: CoordConfig,
    /// The other nodes of the cluster, once the mesh has started.
    pub peers: std::sync::OnceLock<Arc<dyn super::Peers>>,
    /// Draining: this process takes no new work (it finishes what runs).
    pub draining: AtomicBool,
    /// Held (shared) by a worker while it begins an attempt and queues its claim behind
    /// it; taken (exclusively) before this process gives its waiting tasks back, so that
    /// every claim queued before is in the store's queue first (see `claims_settled`).
    pub claiming: parking_lot::RwLock<()>,
}

/// How a process takes part in a store that several processes share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CoordConfig {
    /// This node's name (unique among the processes sharing the store).
    pub node: String,
    /// A process whose heartbeat is older than this (store time) is dead.
    pub dead_after: Duration,
    /// How often the heartbeat is renewed (and dead processes looked for).
    pub heartbeat_every: Duration,
    /// How often free workers reserve waiting tasks from the shared pool.
    pub poll_every: Duration,
    /// Where the other nodes reach this one (its mesh address), if it is in a cluster.
    pub address: Option<String>,
}

impl CoordConfig {
    /// The longest the coordinator waits for one store operation of a tick (rescue,
    /// reserve): a store that does not answer must not stall it.
    pub fn store_deadline(&self) -> Duration {
        (self.heartbeat_every * 2).max(Duration::from_secs(1))
    }

    /// How long this process trusts its last renewed heartbeat: it stops claiming and
    /// stops its attempts before any other process can find it dead.
    pub fn trust_window(&self) -> Duration {
        self.dead_after
            .saturating_sub(self.heartbeat_every * 2)
            .max(self.heartbeat_every)
    }
}

/// How long the store keeps ended tasks and crash history, and how often it is swept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Housekeeping {
    pub keep_ended: Duration,
    pub keep_crashes: Duration,
    pub every: Duration,
}

impl Shared {
    pub fn table_retention(&self) -> Duration {
        self.table.keep_for()
    }

    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Returns once every worker that began an attempt with its claim behind it, not
    /// knowing yet that this process drains, has queued that claim. A flush after it
    /// makes those claims durable, so a release that follows never gives back a task an
    /// attempt runs.
    pub fn claims_settled(&self) {
        drop(self.claiming.write());
    }

    /// The other nodes, if this process is in a cluster.
    pub fn peers(&self) -> Option<&Arc<dyn super::Peers>> {
        self.peers.get()
    }

    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
    }

    /// False once the root supervisor is stopping or stopped.
    pub fn tree_alive(&self) -> bool {
        self.root
            .get()
            .is_none_or(|root| root.get_status() < ractor::ActorStatus::Stopping)
    }

    /// The root supervisor stopped. During a shutdown that is expected; otherwise the
    /// system can no longer run tasks, and says so.
    pub fn root_stopped(&self) {
        if self.accepting() {
            tracing::error!(
                namespace = %self.namespace,
                "the root supervisor stopped: no task runs any more; the system refuses submits and reports not ready"
            );
        }
    }
}
