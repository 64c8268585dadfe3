//! The table of known tasks, with unique keys and retention of ended tasks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::TaskCell;
use crate::task::TaskId;

/// All tasks the system knows, by id. Ended tasks stay queryable until they are older than
/// the retention age or pushed out by the retention count, oldest first.
pub(crate) struct TaskTable {
    cells: DashMap<TaskId, Arc<TaskCell>>,
    unique: DashMap<String, TaskId>,
    ended: Mutex<VecDeque<(Instant, TaskId)>>,
    keep_for: Duration,
    keep_max: usize,
}

impl TaskTable {
    pub fn new(keep_for: Duration, keep_max: usize) -> Self {
        Self {
            cells: DashMap::new(),
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

    /// Claims `key` for `id`. Returns the task that already holds it, if any.
    pub fn claim_unique(&self, key: &str, id: TaskId) -> Option<TaskId> {
        match self.unique.entry(key.to_string()) {
            dashmap::Entry::Occupied(e) => Some(*e.get()),
            dashmap::Entry::Vacant(e) => {
                e.insert(id);
                None
            }
        }
    }

    /// Gives up a claim made for a submit that was then refused.
    pub fn release_unique(&self, key: &str) {
        self.unique.remove(key);
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn cells(&self) -> Vec<Arc<TaskCell>> {
        self.cells.iter().map(|e| e.value().clone()).collect()
    }

    /// Records that a task ended, and prunes what retention lets go.
    pub fn ended(&self, id: TaskId, now: Instant) {
        let mut ended = self.ended.lock();
        ended.push_back((now, id));
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
        while let Some((at, id)) = ended.front().copied() {
            if now.duration_since(at) < self.keep_for {
                break;
            }
            ended.pop_front();
            self.remove(&id);
            removed += 1;
        }
        removed
    }

    fn remove(&self, id: &TaskId) {
        if let Some((_, cell)) = self.cells.remove(id) {
            if let Some(key) = &cell.task.unique_key {
                self.unique.remove_if(key, |_, v| v == id);
            }
        }
    }
}
