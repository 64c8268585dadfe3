//! Wake-ups between processes sharing a store.
//!
//! When waiting tasks go back to the shared pool (a process shut down and gave its
//! reservations back, a dead process's reservations were released, an operator resumed
//! or restarted a task another process held), the process that did it says so, and
//! every process listening reserves from that queue at once instead of at its next
//! poll. A hint may be lost or arrive twice: it only makes a process look sooner; the
//! poll stays the safety net, and what a process may take is decided by the store.
//!
//! On a store only one process uses (SQLite, an unshared [`MemoryStore`]) there is no one
//! to wake: the defaults send nothing and listen to nothing.
//!
//! [`MemoryStore`]: super::MemoryStore

use futures::future::BoxFuture;
use tokio::sync::broadcast;

use super::StoreError;

/// Hints that a queue's shared pool has waiting tasks.
pub trait Notifier: Send + Sync + 'static {
    /// Tells every listening process (this one included) that `queues` have waiting
    /// tasks no process holds. Best effort: `Ok` means the hint was sent, not received.
    fn notify(&self, queues: Vec<String>) -> BoxFuture<'static, Result<(), StoreError>> {
        drop(queues);
        Box::pin(async { Ok(()) })
    }

    /// The hints sent from now on, as queue names; `None` if this store has no other
    /// processes to hear from. A receiver that falls behind gets `Lagged`: some hints
    /// were lost, and it should look at every queue.
    fn listen(&self) -> Option<broadcast::Receiver<String>> {
        None
    }
}

/// How many hints a listener may fall behind before it misses some.
pub(crate) const BACKLOG: usize = 1024;
