//! What the runtime asks of the other nodes of a cluster, when it runs in one: where a
//! task accepted here should run, the live status of a task another node runs, and the
//! delivery of a stop request stored for one. Every answer is a fast path over the mesh:
//! the store stays the truth, and a lost message only delays (the chosen node's poll
//! finds an unheld task; the running node's heartbeat brings a stored request; a status
//! falls back to the store's).

use futures::future::BoxFuture;

use super::TaskStatus;
use crate::store::{Owner, Requested};
use crate::task::TaskId;

/// Where a task accepted here starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Here: the task is stored held by this process and queued here.
    Here,
    /// On that process: stored held by it (no other process takes it while it lives),
    /// and it is hinted to queue it; without the hint it finds it on its next poll.
    There(Owner),
    /// Wherever a node has a free worker first: stored unheld (no node to hint, e.g.
    /// this node drains and no other serves the queue).
    Anywhere,
}

/// The other nodes, as the runtime sees them.
pub trait Peers: Send + Sync + 'static {
    /// Where a task of `queue` with `routing_key` accepted here should start.
    fn place(&self, queue: &str, routing_key: Option<&str>) -> Placement;

    /// Tells `owner` that the tasks `ids` of `queue`, stored held by it, wait for it.
    fn hint(&self, owner: &Owner, queue: &str, ids: Vec<TaskId>);

    /// The live status of task `id` from `owner`, the process running it, within a
    /// deadline; `None` when it cannot be had (the store's copy is used then).
    fn live(&self, owner: &Owner, id: TaskId) -> BoxFuture<'static, Option<TaskStatus>>;

    /// Hands a stop request, already stored, to `owner`, the process running the task.
    fn deliver(&self, owner: &Owner, request: Requested);
}
