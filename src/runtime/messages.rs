//! The messages of a queue's actors: worker, pool and timer. They are defined here, below
//! the actors, because a queue's dispatch state (`QueueShared`) sends them: it wakes idle
//! workers, asks the pool to grow and arms the timer. Each actor's module handles its own.

use ractor::RpcReplyPort;
use ractor_cluster::RactorMessage;
use tokio::time::Instant;

use crate::health::ServiceHealth;

/// Messages of a worker.
#[derive(RactorMessage)]
pub(crate) enum WorkerMsg {
    /// Run tasks from the queue until it is empty (or a batch is done).
    Drain,
}

/// Messages of a pool.
#[derive(RactorMessage)]
pub(crate) enum PoolMsg {
    /// Periodic check: load, idleness, stuck workers, gauges.
    Tick,
    /// A submit found no idle worker: grow now rather than at the next tick.
    Grow,
    /// Start a replacement worker after the restart backoff.
    Respawn,
    /// Health check.
    Health(RpcReplyPort<ServiceHealth>),
}

/// Messages of the queue timer.
#[derive(RactorMessage)]
pub(crate) enum TimerMsg {
    /// A task was delayed until this instant; arm for it if it is the earliest.
    Arm(Instant),
    /// The armed deadline passed.
    Fire,
    /// Health check.
    Health(RpcReplyPort<ServiceHealth>),
}
