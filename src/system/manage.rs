//! The task-manager API of the handle: get, list, count, and the commands on a task's
//! execution (cancel, pause, resume, restart, complete), plus readiness.

use serde::{Deserialize, Serialize};

use super::TaskSystem;
use crate::error::TaskError;
use crate::health::HealthStatus;
use crate::runtime::ops::{self, Command};
use crate::runtime::{Control, TaskStatus};
use crate::store::{Crash, StoredEvent, TaskFilter, TaskQuery};
use crate::task::{TaskId, TaskState};

/// A task with its history: the live status, its events and its crash history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// The status now (live when the task is in memory).
    pub status: TaskStatus,
    /// Every event, oldest first (empty without a store).
    pub events: Vec<StoredEvent>,
    /// Crashes of its attempts, oldest first (empty without a store).
    pub crashes: Vec<Crash>,
}

/// A page of tasks, newest first, and how many matched.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskPage {
    /// The tasks.
    pub tasks: Vec<TaskStatus>,
    /// Matches in all.
    pub total: u64,
}

/// Whether the system should receive work, and why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// True when every check passes.
    pub ready: bool,
    /// The failing checks, e.g. `store: write failed: disk full`.
    pub failing: Vec<String>,
}

/// The most tasks one list call returns.
pub const MAX_PAGE: u32 = 1000;

impl TaskSystem {
    /// A task's live status with its events and crash history. Found in memory or, for
    /// tasks no longer held in memory, in the store.
    pub async fn get(&self, id: TaskId) -> Result<TaskView, TaskError> {
        let store = self.shared.journal.store().cloned();
        // On a shared store only an attempt running here is known better here than in the
        // store; anything else may have been changed by another process.
        let local = self.shared.table.get(&id).filter(|c| {
            !self.shared.journal.shared() || c.status.lock().state == TaskState::Running
        });
        let status = match (local, &store) {
            (Some(cell), _) => {
                // Its end may be a held write: the events should show it.
                if store.is_some() && cell.status.lock().end_pending {
                    self.shared.journal.flush().await;
                }
                cell.snapshot()
            }
            (None, Some(store)) => match store.get(id).await.map_err(TaskError::Store)? {
                Some(r) => self
                    .live_elsewhere(&r)
                    .await
                    .unwrap_or_else(|| TaskStatus::of(&r.task, &r.life, None)),
                None => return Err(TaskError::NotFound(id)),
            },
            (None, None) => return Err(TaskError::NotFound(id)),
        };
        let Some(store) = store else {
            return Ok(TaskView {
                status,
                events: vec![],
                crashes: vec![],
            });
        };
        let (events, crashes) = store.history(id).await.map_err(TaskError::Store)?;
        Ok(TaskView {
            status,
            events,
            crashes,
        })
    }

    /// The live status (progress included) of a task that another node of the cluster
    /// runs, asked of that node within a deadline; `None` when it is not running
    /// elsewhere or the node does not answer.
    async fn live_elsewhere(&self, record: &crate::store::TaskRecord) -> Option<TaskStatus> {
        let owner = record.life.owner.as_ref()?;
        if record.life.state != TaskState::Running
            || Some(owner) == self.shared.journal.owner().as_ref()
        {
            return None;
        }
        let live = self.shared.peers()?.live(owner, record.task.id).await?;
        // A newer attempt, or an end, in the store wins over an older live copy.
        (live.attempt == record.life.attempt && live.state == TaskState::Running).then_some(live)
    }

    /// A task's events, oldest first.
    pub async fn events(&self, id: TaskId) -> Result<Vec<StoredEvent>, TaskError> {
        Ok(self.get(id).await?.events)
    }

    /// Tasks matching `filter`, newest first, `limit` (at most 1000) from `offset`, with
    /// the total. From the store when there is one (tasks in memory show their live
    /// state), else from memory.
    pub async fn list(
        &self,
        filter: TaskFilter,
        limit: u32,
        offset: u64,
    ) -> Result<TaskPage, TaskError> {
        let limit = limit.min(MAX_PAGE);
        let Some(store) = self.shared.journal.store() else {
            return Ok(self.list_memory(&filter, limit, offset));
        };
        // Rows the store holds back would otherwise filter by a state already left.
        self.shared.journal.flush().await;
        let page = store
            .list(TaskQuery {
                filter,
                limit,
                offset,
            })
            .await
            .map_err(TaskError::Store)?;
        let tasks = page
            .tasks
            .iter()
            .map(|r| match self.shared.table.get(&r.task.id) {
                Some(cell) => cell.snapshot(),
                None => TaskStatus::of(&r.task, &r.life, None),
            })
            .collect();
        Ok(TaskPage {
            tasks,
            total: page.total,
        })
    }

    fn list_memory(&self, filter: &TaskFilter, limit: u32, offset: u64) -> TaskPage {
        let mut hits: Vec<TaskStatus> = self
            .shared
            .table
            .cells()
            .into_iter()
            .filter(|c| filter.matches(&c.task, &c.status.lock().life))
            .map(|c| c.snapshot())
            .collect();
        hits.sort_by_key(|t| std::cmp::Reverse((t.created_at, t.id)));
        let total = hits.len() as u64;
        let tasks = hits
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        TaskPage { tasks, total }
    }

    /// How many tasks match `filter`.
    pub async fn count(&self, filter: TaskFilter) -> Result<u64, TaskError> {
        match self.shared.journal.store() {
            Some(store) => {
                self.shared.journal.flush().await;
                store.count(filter).await.map_err(TaskError::Store)
            }
            None => Ok(self.list_memory(&filter, 0, 0).total),
        }
    }

    /// Cancels a task. A waiting task ends at once; a running one has its token fired and
    /// ends as cancelled when its attempt stops. A typed error if it already ended.
    pub async fn cancel(
        &self,
        id: TaskId,
        reason: impl Into<String>,
    ) -> Result<Control, TaskError> {
        ops::run(&self.shared, id, None, Command::Cancel(reason.into())).await
    }

    /// Pauses a task (stops its execution without failing it): a waiting task stops
    /// waiting; a running one is stopped through its token and becomes paused.
    pub async fn pause(&self, id: TaskId) -> Result<Control, TaskError> {
        ops::run(&self.shared, id, None, Command::Pause).await
    }

    /// Resumes a paused task (or starts one created with `auto_start(false)`). Concurrent
    /// resumes of one task succeed once; the others get a transition error.
    pub async fn resume(&self, id: TaskId) -> Result<Control, TaskError> {
        ops::run(&self.shared, id, None, Command::Resume).await
    }

    /// Restarts a task's execution: stop, then start.
    pub async fn restart(&self, id: TaskId) -> Result<Control, TaskError> {
        ops::run(&self.shared, id, None, Command::Restart).await
    }

    /// Marks a task succeeded with `result`, stopping its attempt if one runs.
    pub async fn complete(
        &self,
        id: TaskId,
        result: serde_json::Value,
    ) -> Result<Control, TaskError> {
        ops::run(&self.shared, id, None, Command::Complete(result)).await
    }

    /// Ready when the store takes writes, the system accepts work, and no service is down.
    pub async fn ready(&self) -> Readiness {
        let mut failing = vec![];
        if !self.shared.accepting() {
            failing.push("intake: shutting down".to_string());
        }
        if !self.shared.tree_alive() {
            failing.push("supervisor:root: stopped; no task runs".to_string());
        }
        if self.shared.journal.shared() && !self.shared.journal.trusted() {
            failing.push(
                "store: heartbeat not renewed within the trust window; not claiming".to_string(),
            );
        } else if let Err(e) = self.shared.journal.probe().await {
            failing.push(format!("store: {e}"));
        }
        for s in self.health().await.services {
            if s.status == HealthStatus::Down {
                failing.push(format!("{}: {}", s.service, s.detail));
            }
        }
        Readiness {
            ready: failing.is_empty(),
            failing,
        }
    }
}
