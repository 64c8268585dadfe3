//! A worker's slot: the attempt it is running and when it was last busy. The worker fills
//! it, its pool reads it (stuck and dead workers), and the queue's dispatch state keeps
//! every slot of the queue, so they outlive a pool that died.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::TaskCell;

/// The attempt a worker is running, as the pool sees it.
#[derive(Clone)]
pub(crate) struct Current {
    pub cell: Arc<TaskCell>,
    /// Which run of the task it is (`Status::run`): what its settle is fenced by.
    pub run: u64,
    /// When the attempt should have ended at the latest (timeout plus grace).
    pub deadline: Instant,
}

/// What a worker shares with its pool: its current attempt and when it was last busy.
pub(crate) struct WorkerSlot {
    inner: Mutex<(Option<Current>, Instant)>,
}

impl WorkerSlot {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new((None, Instant::now())),
        }
    }
    /// The worker started an attempt.
    pub fn begin(&self, current: Current) {
        self.inner.lock().0 = Some(current);
    }
    /// The worker's attempt ended at `now`.
    pub fn end(&self, now: Instant) {
        *self.inner.lock() = (None, now);
    }
    /// The running attempt, if any.
    pub fn current(&self) -> Option<Current> {
        self.inner.lock().0.clone()
    }
    /// Takes the running attempt (after the worker died).
    pub fn take(&self) -> Option<Current> {
        self.inner.lock().0.take()
    }
    /// When the worker last finished an attempt (or started).
    pub fn last_active(&self) -> Instant {
        self.inner.lock().1
    }
}
