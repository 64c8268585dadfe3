//! Turning task transitions into store writes.
//!
//! Writes on the hot path (attempt started, attempt settled, progress) are queued and not
//! awaited by the worker: a store queues a write when `write` is called, so the order is
//! kept. Callers waiting for a task are told only after its end is durable. Writes that
//! acknowledge something to a caller (submit, cancel, pause, …) are awaited.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use std::time::SystemTime;

use crate::store::prelude::*;
use crate::store::{EventKind, Fence, Owner, StoreError, TaskEvent, Write, WriteResult};
use crate::task::{Task, TaskId};

/// The store, if any, and whether its last write succeeded (readiness). Cloned for every
/// attempt's context: one reference count, not one per field.
#[derive(Clone, Default)]
pub(crate) struct Journal(Arc<JournalState>);

impl std::ops::Deref for Journal {
    type Target = JournalState;

    fn deref(&self) -> &JournalState {
        &self.0
    }
}

/// What a [`Journal`] and its clones share.
#[derive(Default)]
pub(crate) struct JournalState {
    store: Option<Arc<dyn Store>>,
    failing: AtomicBool,
    /// This process, on a store several processes share (set once it registered, and
    /// again if it had to register anew after it was declared dead).
    owner: RwLock<Option<Owner>>,
    /// On a shared store: false once this process has not renewed its heartbeat within
    /// its trust window; it then claims nothing until a heartbeat succeeds again.
    trusted: AtomicBool,
    /// Changes the store refused by their fence, since start.
    fenced: AtomicU64,
    /// Whether several processes share the store (asked once: every submit and write
    /// asks it).
    shared: bool,
    /// Tasks whose create failed on a shared store: the commit may have happened with its
    /// answer lost, leaving the task stored and held by this process; the coordinator
    /// looks them up.
    doubtful: parking_lot::Mutex<Vec<TaskId>>,
}

/// Run once a queued write is settled, with what became of it.
pub(crate) type Then = Box<dyn FnOnce(Written) + Send>;

/// What became of a queued write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// It is durable (or there is no store).
    Durable,
    /// It failed: nothing of it applied.
    Failed,
    /// The store refused a transition of it: the task's row was not what this process
    /// believed (another process, or a newer attempt, changed it first).
    Fenced,
}

/// Counts writes refused by their fence, logging each (naming the task when `writes`,
/// the batch the results answer, is given).
pub(crate) fn fenced(results: &[WriteResult], writes: &[Write]) {
    for (i, r) in results.iter().enumerate() {
        if *r != WriteResult::Fenced {
            continue;
        }
        metrics::counter!(crate::telemetry::names::FENCED).increment(1);
        match writes.get(i) {
            Some(Write::Update(t)) => {
                let state = t.life.state.as_str();
                tracing::warn!(task_id = %t.id, to = state, attempt = t.life.attempt,
                    "fenced out: the task changed in the store first; this change was dropped");
            }
            _ => tracing::warn!(
                "fenced out: a task changed in the store first; this change was dropped"
            ),
        }
    }
}

/// The first pause before a write that could not reach a shared store is tried again.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(10);
/// The longest pause between two tries.
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) use crate::task::RUNTIME_ACTOR;

impl Journal {
    pub fn new(store: Option<Arc<dyn Store>>) -> Self {
        Self(Arc::new(JournalState {
            shared: store.as_ref().is_some_and(|s| s.shared()),
            store,
            failing: AtomicBool::default(),
            owner: RwLock::default(),
            trusted: AtomicBool::new(true),
            fenced: AtomicU64::default(),
            doubtful: parking_lot::Mutex::default(),
        }))
    }

    /// Notes tasks whose create failed: on a shared store they may be stored anyway.
    pub fn doubt(&self, ids: impl IntoIterator<Item = TaskId>) {
        if self.shared {
            self.doubtful.lock().extend(ids);
        }
    }

    /// The tasks noted by [`doubt`](Self::doubt) since the last call.
    pub fn take_doubtful(&self) -> Vec<TaskId> {
        std::mem::take(&mut *self.doubtful.lock())
    }

    /// True if several processes share the store: claims must be won in the store.
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// The fence of a write on the hot path (claim, settle, progress): on a store only
    /// this process uses, memory is exact and the store's single writer orders every
    /// write, so the fence is left out (checking it would cost the store a read of the
    /// row per write). Commands keep theirs: they race the task's own attempt.
    pub fn hot(&self, fence: Fence) -> Option<Fence> {
        self.shared().then_some(fence)
    }

    /// Records this process's registration.
    pub fn set_owner(&self, owner: Owner) {
        *self.owner.write() = Some(owner);
    }

    /// This process as the holder of the tasks it runs, on a shared store.
    pub fn owner(&self) -> Option<Owner> {
        // Only a shared store registers this process: skip the lock on the hot path.
        if !self.shared {
            return None;
        }
        self.owner.read().clone()
    }

    /// Changes the store refused by their fence, since start.
    pub fn fenced_count(&self) -> u64 {
        self.fenced.load(Ordering::Relaxed)
    }

    /// Counts and logs the fenced results of a batch.
    pub fn fenced(&self, results: &[WriteResult], writes: &[Write]) {
        let n = results
            .iter()
            .filter(|r| **r == WriteResult::Fenced)
            .count();
        self.fenced.fetch_add(n as u64, Ordering::Relaxed);
        fenced(results, writes);
    }

    /// False while this process may not claim (see `trusted`).
    pub fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Sets whether this process may claim; true if that changed.
    pub fn set_trusted(&self, trusted: bool) -> bool {
        self.trusted.swap(trusted, Ordering::AcqRel) != trusted
    }

    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref()
    }

    /// False after a failed write, until a write succeeds again.
    pub fn healthy(&self) -> bool {
        !self.failing.load(Ordering::Acquire)
    }

    /// An event of `task`, by the runtime unless `actor` is given.
    pub fn event(task: &Task, kind: EventKind, actor: Option<&str>) -> TaskEvent {
        TaskEvent {
            task_id: task.id,
            at: SystemTime::now(),
            kind,
            actor_id: Some(actor.unwrap_or(RUNTIME_ACTOR).to_string()),
            correlation_id: task.metadata.correlation_id.clone(),
        }
    }

    /// Writes and waits until durable.
    pub async fn write_now(&self, writes: Vec<Write>) -> Result<Vec<WriteResult>, StoreError> {
        let Some(store) = &self.store else {
            return Ok(vec![WriteResult::Done; writes.len()]);
        };
        let rows = !writes.is_empty();
        let result = store.write(writes).await;
        self.note(&result, rows);
        result
    }

    /// Queues writes without waiting; `then` runs once they are settled, told whether they
    /// are durable (true at once without a store; false after a failed write, which is
    /// logged and marks the store failing).
    pub fn write_then(&self, writes: Vec<Write>, then: Option<Then>) {
        self.queue(writes, then, false);
    }

    /// Like [`write_then`](Self::write_then) for writes nobody waits on yet: the store may
    /// hold them a little so they share the next commit ([`TaskStore::write_deferred`]).
    /// [`hurry`](Self::hurry) commits them at once.
    pub fn write_later(&self, writes: Vec<Write>, then: Option<Then>) {
        self.queue(writes, then, true);
    }

    /// Commits deferred writes now: queues an empty write, which nothing defers.
    pub fn hurry(&self) {
        if let Some(store) = &self.store {
            // Queued when called; nothing to wait for.
            drop(store.write(Vec::new()));
        }
    }

    /// Commits deferred writes now and waits until they are durable, so that a read of
    /// the store that follows sees every change made so far (read your writes).
    pub async fn flush(&self) {
        if let Some(store) = &self.store {
            let result = store.write(Vec::new()).await;
            self.note(&result, false);
        }
    }

    fn queue(&self, writes: Vec<Write>, then: Option<Then>, later: bool) {
        let Some(store) = &self.store else {
            if let Some(f) = then {
                f(Written::Durable);
            }
            return;
        };
        let rows = !writes.is_empty();
        // On a shared store a write that could not reach the store is tried again until
        // it is durable or fenced: the process may still be alive to the others, and no
        // one else would ever settle its task. (Its fence makes a late success harmless.)
        let retry = self.shared().then(|| writes.clone());
        let fut = if later {
            store.write_deferred(writes)
        } else {
            store.write(writes)
        };
        let (journal, store) = (self.clone(), Arc::clone(store));
        tokio::spawn(async move {
            let mut result = fut.await;
            if let Some(writes) = &retry {
                let mut pause = RETRY_FIRST;
                while matches!(&result, Err(e) if e.retryable()) {
                    journal.note(&result, rows);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RETRY_MAX);
                    result = store.write(writes.clone()).await;
                }
            }
            journal.note(&result, rows);
            let written = match &result {
                Ok(results) if results.contains(&WriteResult::Fenced) => {
                    journal.fenced(results, retry.as_deref().unwrap_or(&[]));
                    Written::Fenced
                }
                Ok(_) => Written::Durable,
                Err(_) => Written::Failed,
            };
            if let Some(f) = then {
                f(written);
            }
        });
    }

    /// Records a write's outcome. A failure marks the store failing; only a write that
    /// carried rows (`rows`) clears that: an empty write may have touched nothing.
    fn note<T>(&self, result: &Result<T, StoreError>, rows: bool) {
        match result {
            Ok(_) if rows => self.recovered(),
            Ok(_) => {}
            Err(e) => self.failed(e),
        }
    }

    fn failed(&self, e: &StoreError) {
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %e, "store write failed; the system reports not ready");
        }
    }

    fn recovered(&self) {
        if self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("store writes succeed again; the system reports ready");
        }
    }

    /// The readiness probe. While writes succeed, a small probe write; after a failed
    /// write, the store's stricter recovery check ([`TaskStore::check_recovered`]), which
    /// alone (besides a real write that succeeds) makes the store healthy again: a small
    /// probe can pass on a disk that is still too full for real writes.
    pub async fn probe(&self) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let healthy = self.healthy();
        let result = if healthy {
            store.check_writable().await
        } else {
            store.check_recovered().await
        };
        match &result {
            Ok(()) if !healthy => self.recovered(),
            Ok(()) => {}
            Err(e) => self.failed(e),
        }
        result
    }
}
