//! The table of known tasks, with unique keys and retention of ended tasks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use super::TaskCell;
use crate::task::TaskId;

/// All tasks the system knows, by id. Ended tasks stay queryable until they are older than
/// the retention age or pushed out by the retention count, oldest first.
pub(crate) struct TaskTable {
    /// Hashed with foldhash: a lookup per task on the hot path, keys that no client
    /// chooses (ids are made here), so SipHash's resistance to flooding buys nothing.
    cells: DashMap<TaskId, Arc<TaskCell>, foldhash::fast::RandomState>,
    unique: DashMap<String, Holder>,
    /// Ended tasks, oldest first; their cells are kept here so that letting one go is a
    /// single lookup in `cells` (its cell is cold by then: a lookup costs a cache miss).
    ended: Mutex<VecDeque<(Instant, Arc<TaskCell>)>>,
    keep_for: Duration,
    keep_max: usize,
}

impl TaskTable {
    pub fn new(keep_for: Duration, keep_max: usize) -> Self {
        Self {
            cells: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            unique: DashMap::new(),
            ended: Mutex::new(VecDeque::new()),
            keep_for,
            keep_max,
        }
    }

    pub fn keep_for(&self) -> Duration {
        self.keep_for
    }

    pub fn get(&self, id: &TaskId) -> Option<Arc<TaskCell>> {
        self.cells.get(id).map(|c| c.clone())
    }

    pub fn insert(&self, cell: Arc<TaskCell>) {
        self.cells.insert(cell.task.id, cell);
    }

    /// Claims `key` for `id`. Another task's claim is returned with a receiver that
    /// turns true once that task is visible, or closes if its submit fails.
    pub fn claim_unique(&self, key: &str, id: TaskId) -> Claim<'_> {
        match self.unique.entry(key.to_string()) {
            dashmap::Entry::Occupied(e) => Claim::Held(e.get().id, e.get().visible.clone()),
            dashmap::Entry::Vacant(e) => {
                let (tx, visible) = watch::channel(false);
                e.insert(Holder { id, visible });
                Claim::Won(KeyGuard {
                    table: self,
                    key: key.to_string(),
                    id,
                    visible: tx,
                    kept: false,
                })
            }
        }
    }

    /// Records that `id`, a task already visible (recovered from the store), holds `key`.
    pub fn hold_unique(&self, key: &str, id: TaskId) {
        let (_, visible) = watch::channel(true);
        self.unique.insert(key.to_string(), Holder { id, visible });
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn cells(&self) -> Vec<Arc<TaskCell>> {
        self.cells.iter().map(|e| e.value().clone()).collect()
    }

    /// Records that a task ended, and prunes what retention lets go.
    pub fn ended(&self, cell: &Arc<TaskCell>, now: Instant) {
        let mut ended = self.ended.lock();
        ended.push_back((now, Arc::clone(cell)));
        while ended.len() > self.keep_max {
            if let Some((_, old)) = ended.pop_front() {
                self.remove(&old);
            }
        }
    }

    /// Removes ended tasks older than the retention age. Returns how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut removed = 0;
        let mut ended = self.ended.lock();
        while let Some((at, _)) = ended.front() {
            if now.duration_since(*at) < self.keep_for {
                break;
            }
            if let Some((_, cell)) = ended.pop_front() {
                self.remove(&cell);
            }
            removed += 1;
        }
        removed
    }

    /// Forgets `cell` if it is still the table's cell for its task: this process found
    /// in the store that the task is not its own any more (another process won it).
    pub fn forget(&self, cell: &Arc<TaskCell>) {
        let id = cell.task.id;
        if self
            .cells
            .remove_if(&id, |_, c| Arc::ptr_eq(c, cell))
            .is_some()
        {
            if let Some(key) = &cell.task.unique_key {
                self.unique.remove_if(key, |_, v| v.id == id);
            }
        }
    }

    /// Lets an ended task go; one an operator retried since it ended (it is not ended
    /// any more) stays, and so does a newer cell of the same task. (The cell's lock is
    /// never taken under the map's.)
    fn remove(&self, cell: &Arc<TaskCell>) {
        if cell.status.lock().state.is_terminal() {
            self.forget(cell);
        }
    }
}

/// A task holding a unique key in memory, and whether it is visible yet.
struct Holder {
    id: TaskId,
    visible: watch::Receiver<bool>,
}

/// The outcome of [`TaskTable::claim_unique`].
pub(crate) enum Claim<'a> {
    /// The key was free and is now claimed.
    Won(KeyGuard<'a>),
    /// Another task holds the key; the receiver turns true once it is visible, and
    /// closes without turning true if its submit fails (then the key is free again).
    Held(TaskId, watch::Receiver<bool>),
}

/// A claim on a unique key by a submit in progress. [`keep`](Self::keep) it once the
/// task is visible; dropping it (a refused or abandoned submit) frees the key, and
/// whoever waited on it tries again.
#[must_use]
pub(crate) struct KeyGuard<'a> {
    table: &'a TaskTable,
    key: String,
    id: TaskId,
    visible: watch::Sender<bool>,
    kept: bool,
}

impl KeyGuard<'_> {
    /// The task is visible: the key stays with it, and duplicates may point at it.
    pub fn keep(mut self) {
        self.kept = true;
        self.visible.send_replace(true);
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let id = self.id;
            self.table.unique.remove_if(&self.key, |_, v| v.id == id);
        }
    }
}
