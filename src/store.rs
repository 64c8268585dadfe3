//! Durable task state: the [`Store`] trait, its data, and two implementations.
//!
//! Every task is an event stream ([`TaskEvent`]); beside the events, a metadata row per
//! task ([`TaskRecord`]) is updated in the same transaction, so lists and counts never
//! replay events.
//!
//! - [`MemoryStore`]: in memory, for tests and ephemeral use.
//! - [`SqliteStore`]: the embedded default. One writer thread batches concurrent writes
//!   into one transaction and one fsync (group commit); a write resolves only once its
//!   batch is durable. Reads run on their own connections, off the async runtime.

mod breakers;
#[cfg(test)]
pub(crate) mod conformance;
mod coord;
mod fence;
mod firing;
mod lease;
mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod nanos;
mod notify;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod types;

pub use breakers::{BreakerWrite, Breakers, ProbeOutcome, SharedBreaker};
pub use coord::{newest_incarnations, Coordination, NodeInfo, NodeRecord, Owner, Requested};
pub use fence::{Fence, States};
pub use firing::{Fired, Firing};
pub use lease::{Lease, LeaseFence, Leases};
pub use memory::MemoryStore;
pub use notify::Notifier;
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore, PASSWORD_ENV};
#[doc(hidden)]
#[cfg(feature = "sqlite")]
pub use sqlite::fuzz_decode_rows;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore};
pub use types::{
    Crash, EventKind, Intent, Life, Page, StoreError, StoredEvent, TaskEvent, TaskFilter,
    TaskQuery, TaskRecord, Transition, Write, WriteResult,
};

use std::time::SystemTime;

use futures::future::BoxFuture;

use crate::cron::schedule::ScheduleRecord;
use crate::task::TaskId;

/// The store traits, imported for their methods: `use taskmesh::store::prelude::*;`.
pub mod prelude {
    pub use super::{
        Breakers as _, Coordination as _, EventLog as _, Leases as _, Notifier as _,
        ScheduleStore as _, Store, TaskStore as _,
    };
}

/// A task's events and crash history, both oldest first.
pub type History = (Vec<StoredEvent>, Vec<Crash>);

/// The longest a store holds back a [`TaskStore::write_deferred`] batch before committing it.
pub const MAX_DEFER: std::time::Duration = std::time::Duration::from_millis(5);

/// Everything a task system needs of a store: the small traits below, together. Any type
/// implementing all of them is a `Store`.
///
/// Contract (checked by the conformance tests for every implementation):
/// - `write` applies its batch in order, and atomically for each task (and for a batch that
///   only creates tasks: a batch submit); when the future resolves `Ok`, the batch is
///   durable (for a durable store) and visible to every read. Writes of different tasks
///   in one batch may commit apart (the PostgreSQL store commits each task's writes
///   through one of several connections), so a failed batch may have applied some tasks'
///   writes; the memory and SQLite stores apply a whole batch or nothing.
/// - A `Write::Create` whose `unique_key` is already held by another task writes nothing
///   and yields `WriteResult::Duplicate(existing)`; the rest of the batch still applies.
/// - A `Write::Update` whose row does not pass its fence writes nothing and yields
///   `WriteResult::Fenced`; the rest of the batch still applies.
/// - A `Write::Update` or `Write::Event` for an unknown task id is ignored (an update
///   with a fence yields `Fenced`).
/// - Events of a task come back in the order they were written, with increasing `seq`.
pub trait Store:
    TaskStore + EventLog + ScheduleStore + Coordination + Leases + Breakers + Notifier
{
}

impl<T> Store for T where
    T: TaskStore + EventLog + ScheduleStore + Coordination + Leases + Breakers + Notifier
{
}

/// Tasks: creating them, changing them by (conditional) writes, and querying them.
/// Implementations must be safe to share between threads; every method returns a
/// `'static` future so callers can hold it across awaits.
pub trait TaskStore: Send + Sync + 'static {
    /// A short name for logs and bench reports ("memory", "sqlite", "postgres").
    fn name(&self) -> &'static str;

    /// True if a resolved write survives a process crash.
    fn durable(&self) -> bool;

    /// Applies `batch` atomically; one result per write, in order.
    fn write(&self, batch: Vec<Write>) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>>;

    /// Like [`write`](TaskStore::write), for a batch nobody waits on yet: an attempt that
    /// started, progress, an end no caller awaits. A store may hold it back for a short
    /// while, at most [`MAX_DEFER`], so that it shares the commit (and the fsync) of later
    /// writes instead of taking one of its own. The writes of one task still apply in the
    /// order they were made, and a write with no rows commits everything held before it.
    /// The default does not defer.
    fn write_deferred(
        &self,
        batch: Vec<Write>,
    ) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        self.write(batch)
    }

    /// A task's metadata row.
    fn get(&self, id: TaskId) -> BoxFuture<'static, Result<Option<TaskRecord>, StoreError>>;

    /// A page of tasks matching the filter, newest first, with the total count.
    fn list(&self, query: TaskQuery) -> BoxFuture<'static, Result<Page, StoreError>>;

    /// How many tasks match the filter.
    fn count(&self, filter: TaskFilter) -> BoxFuture<'static, Result<u64, StoreError>>;

    /// Every task not in a terminal state (for recovery at start), oldest first.
    fn open_tasks(&self) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>>;

    /// The task holding `key`, if any (terminal tasks included, until pruned).
    fn find_unique(&self, key: String) -> BoxFuture<'static, Result<Option<TaskId>, StoreError>>;

    /// Deletes terminal tasks (rows, events, crashes) last updated before `before`.
    /// Returns how many tasks.
    fn prune_terminal(&self, before: SystemTime) -> BoxFuture<'static, Result<u64, StoreError>>;

    /// Deletes these tasks (rows, events, crashes) if they have ended; a task that has not
    /// ended, or is unknown, is left alone. Returns the ids deleted. An operator's delete
    /// (the dashboard's bulk delete); retention uses
    /// [`prune_terminal`](TaskStore::prune_terminal). The default refuses.
    fn delete_ended(
        &self,
        ids: Vec<TaskId>,
    ) -> BoxFuture<'static, Result<Vec<TaskId>, StoreError>> {
        let _ = ids;
        Box::pin(async {
            Err(StoreError::WriteFailed(
                "this store cannot delete tasks".into(),
            ))
        })
    }

    /// Checks that the store can take a write now (readiness).
    fn check_writable(&self) -> BoxFuture<'static, Result<(), StoreError>>;

    /// After a write failed: checks that the store takes real writes again, which a
    /// small probe may not show (a full disk can still fit one page where a batch does
    /// not fit). The default is [`check_writable`](TaskStore::check_writable).
    fn check_recovered(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        self.check_writable()
    }
}

/// The event log: each task's events and crash history.
pub trait EventLog: Send + Sync + 'static {
    /// A task's events, oldest first.
    fn events(&self, id: TaskId) -> BoxFuture<'static, Result<Vec<StoredEvent>, StoreError>>;

    /// A task's crash history, oldest first.
    fn crashes(&self, id: TaskId) -> BoxFuture<'static, Result<Vec<Crash>, StoreError>>;

    /// A task's events and crash history together. A store that can should read both
    /// from one snapshot in one call (the default makes two calls).
    fn history(&self, id: TaskId) -> BoxFuture<'static, Result<History, StoreError>> {
        let (events, crashes) = (self.events(id), self.crashes(id));
        Box::pin(async move { Ok((events.await?, crashes.await?)) })
    }

    /// Deletes crash history entries older than `before`. Returns how many.
    fn sweep_crashes(&self, before: SystemTime) -> BoxFuture<'static, Result<u64, StoreError>>;
}

/// Cron schedules, one record per name.
pub trait ScheduleStore: Send + Sync + 'static {
    /// Inserts or replaces a schedule (by name), durably.
    fn put_schedule(&self, record: ScheduleRecord) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Inserts or replaces many schedules (by name) at once, durably. A store that can
    /// should do it in one transaction: the scheduler stores every watermark a tick moved
    /// with one call. The default makes one [`put_schedule`](ScheduleStore::put_schedule)
    /// call each.
    fn put_schedules(
        &self,
        records: Vec<ScheduleRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let puts: Vec<_> = records.into_iter().map(|r| self.put_schedule(r)).collect();
        Box::pin(async move {
            for put in puts {
                put.await?;
            }
            Ok(())
        })
    }

    /// Deletes a schedule; false if there was none.
    fn delete_schedule(&self, name: String) -> BoxFuture<'static, Result<bool, StoreError>>;

    /// Every schedule, by name.
    fn schedules(&self) -> BoxFuture<'static, Result<Vec<ScheduleRecord>, StoreError>>;

    /// Stores `record` if the stored schedule of its name is still at `record.version`
    /// (zero: there is none), and returns its new version; `None` (and nothing written)
    /// if it changed since. An edit made on any process of a cluster goes through this,
    /// so it never overwrites another edit or the cron leader's watermark. Only a store
    /// several processes share keeps versions; the default refuses.
    fn put_schedule_if(
        &self,
        record: ScheduleRecord,
    ) -> BoxFuture<'static, Result<Option<u64>, StoreError>> {
        let _ = record;
        Box::pin(async { Err(StoreError::WriteFailed(SHARED_ONLY.into())) })
    }

    /// Fires cron slots in one transaction under a lease (see [`Firing`]). Fails with
    /// [`StoreError::LeaseLost`], writing nothing, if the lease does not match. Only a
    /// store several processes share has leases; the default refuses.
    fn fire_slots(&self, firing: Firing) -> BoxFuture<'static, Result<Fired, StoreError>> {
        let _ = firing;
        Box::pin(async { Err(StoreError::WriteFailed(SHARED_ONLY.into())) })
    }
}

const SHARED_ONLY: &str = "versioned schedules and leases need a store several processes share";
