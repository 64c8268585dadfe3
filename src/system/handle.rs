//! The handle users hold: submit, wait, status, cancel, progress, health, shutdown.

use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::Recovery;
use crate::error::{SubmitError, TaskError};
use crate::health::{HealthStatus, ServiceHealth, SystemHealth};
use crate::janitor::JanitorMsg;
use crate::runtime::submit::{submit, Receipt};
use crate::runtime::{
    PoolMsg, QueueShared, Shared, TaskCell, TaskResult, TaskStatus, TimerMsg, WorkerMsg,
};
use crate::scheduler::SchedulerMsg;
use crate::supervisor::SupervisorMsg;
use crate::task::Progress;
use crate::task::{NewTask, TaskId};

/// A queue's load, as `GET /v1/queues` will show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// The queue.
    pub name: String,
    /// Tasks waiting (ready, delayed, retrying).
    pub depth: usize,
    /// Attempts running.
    pub running: usize,
    /// Workers alive.
    pub workers: usize,
    /// Workers waiting for work.
    pub idle: usize,
    /// The pool's minimum.
    pub min_workers: usize,
    /// The pool's maximum.
    pub max_workers: usize,
    /// The bound on waiting tasks.
    pub bound: usize,
    /// True while dispatch is paused.
    pub paused: bool,
    /// The queue's rate limit, when it has one.
    pub rate_limit: Option<crate::ratelimit::RateLimit>,
    /// The starts its rate limit would grant back to back now (an estimate, read without
    /// taking one; see [`Limiter::available`](crate::ratelimit::Limiter::available)).
    pub tokens: Option<u32>,
}

/// A running task system. Cheap to clone; every clone drives the same system.
#[derive(Clone)]
pub struct TaskSystem {
    pub(crate) shared: Arc<Shared>,
    pub(super) root: ActorRef<SupervisorMsg>,
    recovery: Recovery,
}

const HEALTH_DEADLINE: Duration = Duration::from_secs(1);

impl TaskSystem {
    /// A builder for a new system.
    pub fn builder() -> super::TaskSystemBuilder {
        super::TaskSystemBuilder::default()
    }

    pub(super) fn new(
        shared: Arc<Shared>,
        root: ActorRef<SupervisorMsg>,
        recovery: Recovery,
    ) -> Self {
        Self {
            shared,
            root,
            recovery,
        }
    }

    /// What was recovered from the store at start.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The system's namespace.
    pub fn namespace(&self) -> &str {
        self.shared.namespace.as_str()
    }

    /// Validates and enqueues a task. With a store, returns only once the task is
    /// durable. A full queue refuses at once with [`SubmitError::Overloaded`]; a unique key
    /// held by another task returns that task with `duplicate: true`.
    pub async fn submit(&self, new: NewTask) -> Result<Receipt, SubmitError> {
        submit(&self.shared, new).await
    }

    /// Submits a task and waits until it ends.
    pub async fn submit_and_wait(&self, new: NewTask) -> Result<TaskResult, TaskError> {
        let receipt = self.submit(new).await?;
        self.wait(receipt.id).await
    }

    /// Waits until the task ends.
    pub async fn wait(&self, id: TaskId) -> Result<TaskResult, TaskError> {
        let cell = match self.cell(id) {
            Ok(cell) => cell,
            Err(_) if self.shared.journal.shared() => return self.wait_in_store(id).await,
            Err(e) => return self.ended_in_store(id).await?.ok_or(e),
        };
        let shared_store = self.shared.journal.shared();
        let (rx, hurry) = {
            let mut s = cell.status.lock();
            if s.state.is_terminal() && !s.end_pending {
                match (s.end_lost, shared_store) {
                    (false, _) => return Ok(s.result_of(id)),
                    (true, false) => return Err(TaskError::EndNotStored(id)),
                    // The attempt runs again, here (its lost end is recovered) or, if
                    // this process was declared dead meanwhile, where it was rescued:
                    // either way its end is written to the store.
                    (true, true) => {}
                }
            }
            if s.end_lost && shared_store {
                (None, false)
            } else {
                let (tx, rx) = oneshot::channel();
                s.waiters.push(tx);
                (Some(rx), s.end_pending)
            }
        };
        let Some(rx) = rx else {
            return self.wait_in_store(id).await;
        };
        if hurry {
            // The end may be a deferred write: someone waits on it now.
            self.shared.journal.hurry();
        }
        match rx.await {
            Ok(Some(result)) => Ok(result),
            // The end written here was fenced out: another process had the task.
            Ok(None) if self.shared.journal.shared() => self.wait_in_store(id).await,
            Ok(None) => Err(TaskError::EndNotStored(id)),
            Err(_) => Err(TaskError::SystemStopped),
        }
    }

    /// Waits for a task another process runs (or may run): reads the store until the
    /// task has ended, at growing intervals up to [`STORE_POLL_MAX`].
    async fn wait_in_store(&self, id: TaskId) -> Result<TaskResult, TaskError> {
        let Some(store) = self.shared.journal.store() else {
            return Err(TaskError::NotFound(id));
        };
        let mut every = Duration::from_millis(10);
        loop {
            let Some(record) = store.get(id).await.map_err(TaskError::Store)? else {
                return Err(TaskError::NotFound(id));
            };
            if record.life.state.is_terminal() {
                return Ok(result_of(id, record.life));
            }
            tokio::time::sleep(every).await;
            every = (every * 2).min(STORE_POLL_MAX);
        }
    }

    /// The result of a task that ended and is no longer held in memory.
    async fn ended_in_store(&self, id: TaskId) -> Result<Option<TaskResult>, TaskError> {
        let Some(store) = self.shared.journal.store() else {
            return Ok(None);
        };
        let record = store.get(id).await.map_err(TaskError::Store)?;
        Ok(record
            .filter(|r| r.life.state.is_terminal())
            .map(|r| result_of(id, r.life)))
    }

    /// Like [`TaskSystem::wait`], but gives up after `limit`.
    pub async fn wait_timeout(&self, id: TaskId, limit: Duration) -> Result<TaskResult, TaskError> {
        tokio::time::timeout(limit, self.wait(id))
            .await
            .map_err(|_| TaskError::WaitTimeout(limit))?
    }

    /// How many changes of this system the store refused because the task had changed
    /// there first (another process, or a newer attempt, won): a result dropped, a claim
    /// lost, a command decided on a stale copy. Zero on a store only this system uses.
    pub fn fenced(&self) -> u64 {
        self.shared.journal.fenced_count()
    }

    /// A snapshot of the task, also while it runs.
    pub fn status(&self, id: TaskId) -> Result<TaskStatus, TaskError> {
        Ok(self.cell(id)?.snapshot())
    }

    /// The task's last progress report.
    pub fn progress(&self, id: TaskId) -> Result<Option<Progress>, TaskError> {
        Ok(self.cell(id)?.status.lock().progress.clone())
    }

    /// Stops dispatching from `queue`: submits are still accepted and wait; running
    /// attempts finish.
    pub fn pause_queue(&self, queue: &str) -> Result<(), SubmitError> {
        self.queue(queue)?.pause();
        Ok(())
    }

    /// Resumes dispatching from `queue` and wakes its workers (found through the
    /// queue's process group).
    pub fn resume_queue(&self, queue: &str) -> Result<(), SubmitError> {
        let q = self.queue(queue)?;
        q.resume();
        let ns = &self.shared.namespace;
        for w in ractor::pg::get_scoped_local_members(&ns.scope(), &ns.worker_group(queue)) {
            let _ = w.send_message(WorkerMsg::Drain);
        }
        Ok(())
    }

    fn queue(&self, name: &str) -> Result<&Arc<QueueShared>, SubmitError> {
        self.shared
            .queues
            .get(name)
            .ok_or_else(|| SubmitError::UnknownQueue(name.to_string()))
    }

    /// Every queue's load.
    pub fn queues(&self) -> Vec<QueueStats> {
        let mut out: Vec<_> = self.shared.queues.values().map(|q| stats(q)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Asks every service actor for its health and aggregates the answers. A service that
    /// is not running or does not answer within 1 s counts as down.
    pub async fn health(&self) -> SystemHealth {
        let ns = &self.shared.namespace;
        let mut services = vec![ask(&ns.actor_name("root"), SupervisorMsg::Health).await];
        let mut names: Vec<&String> = self.shared.queues.keys().collect();
        names.sort();
        for q in names {
            services.push(ask(&ns.actor_name(&format!("queue/{q}")), SupervisorMsg::Health).await);
            services.push(ask(&ns.actor_name(&format!("pool/{q}")), PoolMsg::Health).await);
            services.push(ask(&ns.actor_name(&format!("timer/{q}")), TimerMsg::Health).await);
        }
        services.push(ask(&ns.actor_name("janitor"), JanitorMsg::Health).await);
        services.push(ask(&ns.actor_name("scheduler"), SchedulerMsg::Health).await);
        services.push(self.breakers());
        if self.shared.journal.store().is_some() {
            services.push(match self.shared.journal.healthy() {
                true => ServiceHealth::new("store", HealthStatus::Healthy, "writes succeed"),
                false => ServiceHealth::new("store", HealthStatus::Down, "the last write failed"),
            });
        }
        SystemHealth::aggregate(services)
    }

    fn breakers(&self) -> ServiceHealth {
        let mut open: Vec<String> = self
            .shared
            .handlers
            .iter()
            .filter_map(|(kind, e)| e.breaker.as_ref().map(|b| (kind, b.state())))
            .filter(|(_, s)| *s != crate::breaker::BreakerState::Closed)
            .map(|(kind, s)| format!("{kind}: {s}"))
            .collect();
        open.sort();
        if open.is_empty() {
            return ServiceHealth::new("breakers", HealthStatus::Healthy, "all closed");
        }
        ServiceHealth::new("breakers", HealthStatus::Degraded, open.join(", "))
    }

    /// Names of this system's actors still registered, and members of its process groups.
    /// Empty after a shutdown.
    pub fn live_actors(&self) -> Vec<String> {
        let ns = &self.shared.namespace;
        let mut names: Vec<String> = ractor::registry::registered()
            .into_iter()
            .filter(|n| ns.owns(n))
            .collect();
        for group in ractor::pg::which_scoped_groups(&ns.scope()) {
            for m in ractor::pg::get_scoped_members(&ns.scope(), &group) {
                names.push(format!("{group}:{}", m.get_id()));
            }
        }
        names
    }

    pub(super) fn cell(&self, id: TaskId) -> Result<Arc<TaskCell>, TaskError> {
        self.shared.table.get(&id).ok_or(TaskError::NotFound(id))
    }
}

fn stats(q: &QueueShared) -> QueueStats {
    QueueStats {
        name: q.name.to_string(),
        depth: q.depth(),
        running: q.running(),
        workers: q.workers.load(std::sync::atomic::Ordering::Relaxed),
        idle: q.idle_ids().len(),
        min_workers: q.config.min_workers,
        max_workers: q.config.max_workers,
        bound: q.config.bound,
        paused: q.is_paused(),
        rate_limit: q.limiter.as_ref().map(|l| l.limit()),
        tokens: q.limiter.as_ref().map(|l| l.available()),
    }
}

async fn ask<M: ractor::Message>(
    name: &str,
    msg: fn(RpcReplyPort<ServiceHealth>) -> M,
) -> ServiceHealth {
    let Some(actor) = ActorRef::<M>::where_is(name) else {
        return ServiceHealth::new(name, HealthStatus::Down, "not running");
    };
    match actor.call(msg, Some(HEALTH_DEADLINE)).await {
        Ok(ractor::rpc::CallResult::Success(h)) => h,
        _ => ServiceHealth::new(name, HealthStatus::Down, "did not answer within 1 s"),
    }
}

/// The longest pause between two reads of a task another process runs.
const STORE_POLL_MAX: Duration = Duration::from_millis(200);

fn result_of(id: TaskId, life: crate::store::Life) -> TaskResult {
    TaskResult {
        id,
        state: life.state,
        attempt: life.attempt,
        result: life.result,
        error: life.error,
        cancel_reason: life.cancel_reason,
    }
}
