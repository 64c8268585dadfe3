//! The in-memory store: every task behind one lock, for tests and ephemeral use.
//!
//! A batch is applied while the lock is held, so it is atomic and ordered as a database
//! transaction would be. Clones share the data: a clone is the same store "reopened".

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::future::ready;
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::{
    Crash, EventLog, Page, StoreError, StoredEvent, TaskEvent, TaskFilter, TaskQuery, TaskRecord,
    TaskStore, Transition, Write, WriteResult,
};
use crate::cron::schedule::ScheduleRecord;
use crate::task::TaskId;

mod breakers;
mod coord;
mod lease;
mod schedules;

/// Keeps tasks, events and crashes in memory. Not durable: the data goes with the last
/// clone. Clones share the data.
///
/// ```
/// use taskmesh::store::prelude::*;
/// use taskmesh::store::MemoryStore;
/// let store = MemoryStore::new();
/// assert_eq!(store.name(), "memory");
/// assert!(!store.durable());
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    shared: bool,
    /// Hints between the systems sharing this store (only when shared).
    hints: Option<tokio::sync::broadcast::Sender<String>>,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<TaskId, Entry>,
    unique: HashMap<String, TaskId>,
    last_seq: u64,
    schedules: std::collections::BTreeMap<String, ScheduleRecord>,
    /// The last schedule version given.
    schedule_version: u64,
    leases: std::collections::HashMap<String, lease::Held>,
    breakers: std::collections::HashMap<String, breakers::Kept>,
    nodes: coord::Registry,
}

/// A task's row with its event stream and crash history.
struct Entry {
    record: TaskRecord,
    events: Vec<StoredEvent>,
    crashes: Vec<Crash>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that behaves as one several processes share: several task
    /// systems in one process can use clones of it as nodes of one cluster (each claim
    /// is won in the store, idle nodes reserve waiting tasks, dead ones are rescued).
    /// Time for heartbeats is the system clock.
    pub fn shared() -> Self {
        Self {
            shared: true,
            hints: Some(tokio::sync::broadcast::channel(super::notify::BACKLOG).0),
            ..Self::default()
        }
    }

    /// Runs `f` under the lock and returns its value as a ready future.
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> T,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let value = f(&mut self.inner.lock());
        Box::pin(ready(Ok(value)))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tasks = self.inner.lock().tasks.len();
        f.debug_struct("MemoryStore")
            .field("tasks", &tasks)
            .finish()
    }
}

impl Inner {
    fn apply(&mut self, write: Write) -> WriteResult {
        match write {
            Write::Create(record, event) => return self.create(*record, event),
            Write::Update(t) => return self.transition(*t),
            Write::Event(event) => self.append(event.task_id, event),
            Write::Crash(crash) => {
                if let Some(entry) = self.tasks.get_mut(&crash.task_id) {
                    entry.crashes.push(crash);
                }
            }
        }
        WriteResult::Done
    }

    /// Applies a transition if the row passes its fence.
    fn transition(&mut self, t: Transition) -> WriteResult {
        let Some(entry) = self.tasks.get_mut(&t.id) else {
            return match t.fence {
                Some(_) => WriteResult::Fenced,
                None => WriteResult::Done,
            };
        };
        if let Some(fence) = &t.fence {
            let life = &entry.record.life;
            let requested = life.intent.is_some();
            if !fence.admits(life.state, life.attempt, life.owner.as_ref(), requested) {
                return WriteResult::Fenced;
            }
        }
        entry.record.life = t.life;
        entry.crashes.extend(t.crash);
        for event in t.events {
            self.append(t.id, event);
        }
        WriteResult::Done
    }

    /// Inserts a task unless its unique key (or its id) is taken.
    fn create(&mut self, record: TaskRecord, event: TaskEvent) -> WriteResult {
        let id = record.task.id;
        let key = record.task.unique_key.clone();
        if let Some(holder) = key.as_ref().and_then(|k| self.unique.get(k)) {
            return WriteResult::Duplicate(*holder);
        }
        if self.tasks.contains_key(&id) {
            return WriteResult::Duplicate(id);
        }
        if let Some(key) = key {
            self.unique.insert(key, id);
        }
        let entry = Entry {
            record,
            events: Vec::new(),
            crashes: Vec::new(),
        };
        self.tasks.insert(id, entry);
        self.append(id, event);
        WriteResult::Done
    }

    /// Appends to a known task's stream with the next store-wide sequence number.
    fn append(&mut self, id: TaskId, event: TaskEvent) {
        if let Some(entry) = self.tasks.get_mut(&id) {
            self.last_seq += 1;
            let seq = self.last_seq;
            entry.events.push(StoredEvent { seq, event });
        }
    }

    fn matching(&self, filter: &TaskFilter) -> Vec<&TaskRecord> {
        let records = self.tasks.values().map(|e| &e.record);
        records
            .filter(|r| filter.matches(&r.task, &r.life))
            .collect()
    }

    fn list(&self, query: &TaskQuery) -> Page {
        let mut hits = self.matching(&query.filter);
        hits.sort_unstable_by(|a, b| oldest_first(b, a));
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let tasks = hits.iter().skip(offset).take(query.limit as usize);
        Page {
            tasks: tasks.map(|r| (*r).clone()).collect(),
            total: hits.len() as u64,
        }
    }

    fn open_tasks(&self) -> Vec<TaskRecord> {
        let records = self.tasks.values().map(|e| &e.record);
        let mut open: Vec<_> = records.filter(|r| !r.life.state.is_terminal()).collect();
        open.sort_unstable_by(|a, b| oldest_first(a, b));
        open.into_iter().cloned().collect()
    }

    fn prune_terminal(&mut self, before: SystemTime) -> u64 {
        let unique = &mut self.unique;
        let count = self.tasks.len();
        self.tasks.retain(|id, entry| {
            let life = &entry.record.life;
            let keep = !life.state.is_terminal() || life.updated_at >= before;
            if let (false, Some(key)) = (keep, &entry.record.task.unique_key) {
                if unique.get(key) == Some(id) {
                    unique.remove(key);
                }
            }
            keep
        });
        (count - self.tasks.len()) as u64
    }

    fn delete_ended(&mut self, ids: &[TaskId]) -> Vec<TaskId> {
        let mut gone = Vec::new();
        for id in ids {
            let ended = self.tasks.get(id);
            if !ended.is_some_and(|e| e.record.life.state.is_terminal()) {
                continue;
            }
            if let Some(entry) = self.tasks.remove(id) {
                if let Some(key) = &entry.record.task.unique_key {
                    if self.unique.get(key) == Some(id) {
                        self.unique.remove(key);
                    }
                }
                gone.push(*id);
            }
        }
        gone
    }

    fn sweep_crashes(&mut self, before: SystemTime) -> u64 {
        let mut swept = 0;
        for entry in self.tasks.values_mut() {
            let count = entry.crashes.len();
            entry.crashes.retain(|c| c.at >= before);
            swept += (count - entry.crashes.len()) as u64;
        }
        swept
    }

    fn crashes(&self, id: TaskId) -> Vec<Crash> {
        let mut crashes = self
            .tasks
            .get(&id)
            .map_or(Vec::new(), |e| e.crashes.clone());
        crashes.sort_by_key(|c| c.at);
        crashes
    }
}

/// Creation time, then id: the order of `open_tasks`, reversed for `list`.
fn oldest_first(a: &TaskRecord, b: &TaskRecord) -> Ordering {
    (a.task.created_at, a.task.id).cmp(&(b.task.created_at, b.task.id))
}

impl TaskStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn durable(&self) -> bool {
        false
    }

    fn write(&self, batch: Vec<Write>) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        self.with(|inner| batch.into_iter().map(|w| inner.apply(w)).collect())
    }

    fn get(&self, id: TaskId) -> BoxFuture<'static, Result<Option<TaskRecord>, StoreError>> {
        self.with(|inner| inner.tasks.get(&id).map(|e| e.record.clone()))
    }

    fn list(&self, query: TaskQuery) -> BoxFuture<'static, Result<Page, StoreError>> {
        self.with(|inner| inner.list(&query))
    }

    fn count(&self, filter: TaskFilter) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.with(|inner| inner.matching(&filter).len() as u64)
    }

    fn open_tasks(&self) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        self.with(|inner| inner.open_tasks())
    }

    fn find_unique(&self, key: String) -> BoxFuture<'static, Result<Option<TaskId>, StoreError>> {
        self.with(|inner| inner.unique.get(&key).copied())
    }

    fn prune_terminal(&self, before: SystemTime) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.with(|inner| inner.prune_terminal(before))
    }

    fn delete_ended(
        &self,
        ids: Vec<TaskId>,
    ) -> BoxFuture<'static, Result<Vec<TaskId>, StoreError>> {
        self.with(move |inner| inner.delete_ended(&ids))
    }

    fn check_writable(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        self.with(|_| ())
    }
}

impl EventLog for MemoryStore {
    fn events(&self, id: TaskId) -> BoxFuture<'static, Result<Vec<StoredEvent>, StoreError>> {
        self.with(|inner| {
            inner
                .tasks
                .get(&id)
                .map_or(Vec::new(), |e| e.events.clone())
        })
    }

    fn crashes(&self, id: TaskId) -> BoxFuture<'static, Result<Vec<Crash>, StoreError>> {
        self.with(|inner| inner.crashes(id))
    }

    fn sweep_crashes(&self, before: SystemTime) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.with(|inner| inner.sweep_crashes(before))
    }
}
