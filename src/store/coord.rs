//! Coordination between processes sharing one store: who is alive, who holds which task.
//!
//! Each process registers as a new *incarnation* of its node name and renews a heartbeat
//! in store time (PostgreSQL's `now()`, never a node's clock). A process whose heartbeat
//! is older than `dead_after` is dead; any live process then rescues the tasks it held.
//! Waiting tasks a process holds (it accepted them, or reserved them from the shared
//! pool) are *reserved*: other processes do not take them while it lives.

use std::fmt;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Intent, StoreError, TaskRecord};
use crate::task::TaskId;

/// One run of one node: its name and the incarnation number the store gave it at start.
/// A task held by an owner is fenced by it: a later incarnation of the same node is a
/// different owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    /// The node's name (unique in the cluster).
    pub node: String,
    /// Increases every time the node starts.
    pub incarnation: u64,
}

impl Owner {
    /// The owner `node`, incarnation `incarnation`.
    pub fn new(node: impl Into<String>, incarnation: u64) -> Self {
        Self {
            node: node.into(),
            incarnation,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.node, self.incarnation)
    }
}

/// What a process tells the store about itself when it registers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// Where its API (or, in a cluster, its mesh listener) can be reached, if anywhere.
    pub address: Option<String>,
    /// The queues it serves.
    pub queues: Vec<String>,
}

/// A registered incarnation as the store sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Which incarnation.
    pub owner: Owner,
    /// What it registered with.
    pub info: NodeInfo,
    /// When it registered (store time).
    pub started_at: SystemTime,
    /// Its last heartbeat (store time).
    pub heartbeat_at: SystemTime,
    /// How long ago that was, by the store's clock at the read.
    pub heartbeat_age: Duration,
}

/// The newest registered incarnation of each node, by node name.
pub fn newest_incarnations(
    records: Vec<NodeRecord>,
) -> std::collections::BTreeMap<String, NodeRecord> {
    let mut newest = std::collections::BTreeMap::<String, NodeRecord>::new();
    for r in records {
        let newer = newest
            .get(&r.owner.node)
            .is_none_or(|e| e.owner.incarnation < r.owner.incarnation);
        if newer {
            newest.insert(r.owner.node.clone(), r);
        }
    }
    newest
}

/// An operator's request stored on a task another process holds (runs, or holds to
/// run), for that process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Requested {
    /// The task.
    pub task_id: TaskId,
    /// The attempt the request was made against (attempts so far, for a waiting task).
    pub attempt: u32,
    /// What was asked.
    pub intent: Intent,
    /// The task was waiting when asked: the request applies to it, or to the next
    /// attempt if that started meanwhile.
    #[serde(default)]
    pub waiting: bool,
}

/// The node registry, heartbeats and the sharing of waiting tasks.
///
/// A store only one process can use (SQLite holds a file lock, memory lives in one
/// process) implements this trivially: it is not [`shared`](Coordination::shared), and
/// the runtime then never reserves or rescues.
pub trait Coordination: Send + Sync + 'static {
    /// True if several processes may use this store at once: every claim must then be
    /// written (and won) before an attempt runs.
    fn shared(&self) -> bool;

    /// Registers a new incarnation of `info.name` and returns it. Its heartbeat starts now.
    fn register(&self, info: NodeInfo) -> BoxFuture<'static, Result<Owner, StoreError>>;

    /// Renews `owner`'s heartbeat. Returns the requests stored on running tasks it holds
    /// (so that a cancel made through another process reaches the attempt).
    /// `StoreError::Fenced` if `owner` is no longer registered (it was declared dead).
    fn heartbeat(&self, owner: Owner) -> BoxFuture<'static, Result<Vec<Requested>, StoreError>>;

    /// Every registered incarnation with its heartbeat age in store time.
    fn nodes(&self) -> BoxFuture<'static, Result<Vec<NodeRecord>, StoreError>>;

    /// The incarnations that are not alive but may still hold tasks: registered ones
    /// whose heartbeat is older than `dead_after` (store time), older incarnations of a
    /// node that registered again, and owners named by open tasks that are no longer
    /// registered (a rescue that stopped half way).
    fn dead(&self, dead_after: Duration) -> BoxFuture<'static, Result<Vec<Owner>, StoreError>>;

    /// Removes `owner` from the registry if its heartbeat is older than `dead_after`
    /// (store time) or its node registered again since, so that its own next heartbeat
    /// fails with [`StoreError::Fenced`]. True if it was removed or was not registered.
    /// The rescuer calls it before it rescues the owner's tasks.
    fn bury(
        &self,
        owner: Owner,
        dead_after: Duration,
    ) -> BoxFuture<'static, Result<bool, StoreError>>;

    /// Removes `owner` from the registry if it is certainly gone: no connection of its
    /// process to the store is open any more and its heartbeat is older than
    /// `silent_for` (store time). A process that is only stopped or slow keeps its
    /// connections, and is left to [`bury`](Coordination::bury) at `dead_after`. True if
    /// it was removed or was not registered. A store that cannot tell returns false.
    fn bury_gone(
        &self,
        owner: Owner,
        silent_for: Duration,
    ) -> BoxFuture<'static, Result<bool, StoreError>> {
        let _ = (owner, silent_for);
        Box::pin(async { Ok(false) })
    }

    /// Reserves for `owner` those of `ids` that wait and are held by it already (due or
    /// not: a task routed to it with a `run_at` to come, which it queues with its time),
    /// or that are due and held by nobody (a routing hint named them), and returns them
    /// with their owner set. A task another process holds, or one running or ended, is left alone, so a
    /// late or repeated hint is harmless.
    fn reserve_ids(
        &self,
        owner: Owner,
        ids: Vec<TaskId>,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>>;

    /// The open tasks `owner` holds: running ones first (to rescue), then reserved ones.
    fn held(&self, owner: Owner) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>>;

    /// The waiting (not running) open tasks `owner` holds that were created at or after
    /// `since`: tasks another process routed to it a moment ago. A cheap look, for every
    /// poll; [`held`](Coordination::held) reads everything.
    fn held_since(
        &self,
        owner: Owner,
        since: SystemTime,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        let all = self.held(owner);
        Box::pin(async move {
            Ok(all
                .await?
                .into_iter()
                .filter(|r| r.life.state != crate::task::TaskState::Running)
                .filter(|r| r.task.created_at >= since)
                .collect())
        })
    }

    /// Gives up `owner`'s reservations of open tasks that are not running (they go back
    /// to the shared pool). Returns how many.
    fn release(&self, owner: Owner) -> BoxFuture<'static, Result<u64, StoreError>>;

    /// Reserves for `owner` up to `limit` due waiting tasks of `queues` that nobody
    /// holds, best first (priority, then due time, then id), and returns them with their
    /// owner set. Due means pending, or scheduled/retrying with a due time at or before
    /// the store's now. Two processes never reserve the same task (`FOR UPDATE SKIP
    /// LOCKED` on PostgreSQL).
    fn reserve(
        &self,
        owner: Owner,
        queues: Vec<String>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>>;
}
