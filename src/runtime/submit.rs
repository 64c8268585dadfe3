//! Submitting a task: validation, routing, unique keys, admission, durability, enqueue.
//! Shared by the handle and the cron scheduler.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::journal::Journal;
use super::{Claim, HandlerEntry, KeyGuard, Placement, QueueShared, Shared, TaskCell};
use crate::error::SubmitError;
use crate::store::{EventKind, Write, WriteResult};
use crate::task::{NewTask, Task, TaskId, TaskState};

/// What a submit acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The task's id (the existing task's, for a duplicate).
    pub id: TaskId,
    /// True when the unique key matched an existing task and nothing new was enqueued.
    pub duplicate: bool,
}

/// Validates and enqueues a task. With a store, returns only once the task is
/// durable. A full queue refuses at once with [`SubmitError::Overloaded`]; a unique key
/// held by another task returns that task with `duplicate: true`.
pub(crate) async fn submit(shared: &Shared, new: NewTask) -> Result<Receipt, SubmitError> {
    let (queue, entry) = route(shared, &new)?;
    let id = TaskId::new();
    let key = new.unique_key.clone();
    // Dropped on any early return: a refused submit frees its key.
    let guard = match claim(shared, key.as_deref(), id).await? {
        Claimed::Free(guard) => guard,
        Claimed::Existing(existing) => return Ok(duplicate(existing)),
    };
    queue.admit()?;
    let placement = place(shared, &queue.name, new.routing_key.as_deref());
    let cell = new_cell(shared, queue, entry, id, new, &placement);
    match persist(shared, &cell).await {
        Ok(None) => {}
        Ok(Some(existing)) => {
            queue.dequeued();
            return Ok(duplicate(existing));
        }
        Err(e) => {
            queue.dequeued();
            return Err(e);
        }
    }
    if placement != Placement::Here {
        // Stored, unheld: the store's unique index holds the key from now on.
        queue.dequeued();
        send_elsewhere(shared, &queue.name, placement, vec![id]).await;
        return Ok(Receipt {
            id,
            duplicate: false,
        });
    }
    enqueue(shared, queue, cell);
    if let Some(guard) = guard {
        guard.keep();
    }
    Ok(Receipt {
        id,
        duplicate: false,
    })
}

/// Where a task accepted here starts: here, unless this process is in a cluster whose
/// routing chooses another node, or it drains.
fn place(shared: &Shared, queue: &str, routing_key: Option<&str>) -> Placement {
    if !shared.journal.shared() {
        return Placement::Here;
    }
    match shared.peers() {
        Some(peers) => peers.place(queue, routing_key),
        None if shared.draining() => Placement::Anywhere,
        None => Placement::Here,
    }
}

/// Tells the chosen node (or, for [`Placement::Anywhere`], every process) that stored,
/// unheld tasks wait. A hint that is lost only delays them until a poll finds them.
async fn send_elsewhere(shared: &Shared, queue: &str, placement: Placement, ids: Vec<TaskId>) {
    match placement {
        Placement::Here => {}
        Placement::There(owner) => {
            if let Some(peers) = shared.peers() {
                peers.hint(&owner, queue, ids);
            }
        }
        Placement::Anywhere => {
            if let Some(store) = shared.journal.store() {
                let _ = store.notify(vec![queue.to_string()]).await;
            }
        }
    }
}

fn duplicate(existing: TaskId) -> Receipt {
    Receipt {
        id: existing,
        duplicate: true,
    }
}

fn route<'a>(
    shared: &'a Shared,
    new: &NewTask,
) -> Result<(&'a Arc<QueueShared>, &'a HandlerEntry), SubmitError> {
    if !shared.accepting() {
        return Err(SubmitError::ShuttingDown);
    }
    if !shared.tree_alive() {
        return Err(SubmitError::TreeDown);
    }
    if shared.journal.shared() && !shared.journal.trusted() {
        // Cut off from the store past the trust window: others may be rescuing this
        // process's tasks; take nothing until the heartbeat is renewed.
        let why = "this node has not renewed its heartbeat in the store within its trust window; it takes no work until the store answers again";
        return Err(SubmitError::Store(crate::store::StoreError::Unavailable {
            source: why.into(),
        }));
    }
    new.validate(&shared.limits)?;
    let entry = shared
        .handlers
        .get(&new.kind)
        .ok_or_else(|| SubmitError::UnknownKind(new.kind.clone()))?;
    let queue_name = new.queue.as_deref().unwrap_or(&entry.defaults.queue);
    let queue = shared
        .queues
        .get(queue_name)
        .ok_or_else(|| SubmitError::UnknownQueue(queue_name.to_string()))?;
    Ok((queue, entry))
}

/// What a submit found for its unique key.
enum Claimed<'a> {
    /// The key is this submit's (`None`: the task has no key).
    Free(Option<KeyGuard<'a>>),
    /// Another task holds it, and is visible.
    Existing(TaskId),
}

/// Claims the unique key for `id`. A key held by a task whose submit is still in
/// progress is waited on: a duplicate is only ever reported once the task it points at
/// can be read, and a holder whose submit fails frees the key for the next claim.
async fn claim<'a>(
    shared: &'a Shared,
    key: Option<&str>,
    id: TaskId,
) -> Result<Claimed<'a>, SubmitError> {
    let Some(key) = key else {
        return Ok(Claimed::Free(None));
    };
    let guard = match claim_here(shared, key, id).await {
        Claimed::Free(Some(guard)) => guard,
        other => return Ok(other),
    };
    let Some(store) = shared.journal.store() else {
        return Ok(Claimed::Free(Some(guard)));
    };
    // A task no longer held in memory may hold the key in the store.
    match store.find_unique(key.to_string()).await? {
        Some(existing) => Ok(Claimed::Existing(existing)),
        None => Ok(Claimed::Free(Some(guard))),
    }
}

/// Claims `key` in memory, waiting on a holder whose submit is still in progress.
async fn claim_here<'a>(shared: &'a Shared, key: &str, id: TaskId) -> Claimed<'a> {
    loop {
        match shared.table.claim_unique(key, id) {
            Claim::Won(guard) => return Claimed::Free(Some(guard)),
            Claim::Held(existing, mut visible) => {
                if visible.wait_for(|v| *v).await.is_ok() {
                    return Claimed::Existing(existing);
                }
            }
        }
    }
}

/// Makes the new task durable. `Some(existing)` when the store refused it as a
/// duplicate of another task.
async fn persist(shared: &Shared, cell: &TaskCell) -> Result<Option<TaskId>, SubmitError> {
    if shared.journal.store().is_none() {
        return Ok(None);
    }
    let actor = cell.task.metadata.actor_id.as_deref();
    let created = Journal::event(&cell.task, EventKind::Created, actor);
    let write = Write::Create(Box::new(cell.record()), created);
    let written = shared.journal.write_now(vec![write]).await;
    if written.is_err() {
        shared.journal.doubt([cell.task.id]);
    }
    match written?.first() {
        Some(WriteResult::Duplicate(existing)) => Ok(Some(*existing)),
        _ => Ok(None),
    }
}

/// How long until `run_at`, by the system's wall clock (the cron clock: the system clock,
/// or a test's paused one); `None` when it has come.
fn wait_for(shared: &Shared, run_at: Option<SystemTime>) -> Option<Duration> {
    let at = run_at?;
    let now = SystemTime::from(shared.cron.clock.now());
    at.duration_since(now).ok().filter(|d| !d.is_zero())
}

/// The cell of a new task.
fn new_cell(
    shared: &Shared,
    queue: &QueueShared,
    entry: &HandlerEntry,
    id: TaskId,
    new: NewTask,
    placement: &Placement,
) -> Arc<TaskCell> {
    let d = &entry.defaults;
    let max_attempts = new.max_attempts.unwrap_or(d.max_attempts);
    let created_at = SystemTime::now();
    let delay = wait_for(shared, new.run_at);
    let state = match (new.auto_start, delay) {
        (false, _) => TaskState::Paused,
        (true, Some(_)) => TaskState::Scheduled,
        (true, None) => TaskState::Pending,
    };
    let task = Task {
        id,
        kind: entry.kind.clone(),
        args: new.args,
        queue: queue.name.clone(),
        priority: new.priority.unwrap_or_default(),
        timeout: new.timeout.unwrap_or(d.timeout),
        max_attempts,
        backoff: new.backoff.unwrap_or(d.backoff),
        unique_key: new.unique_key,
        run_at: new.run_at,
        metadata: new.metadata,
        title: new.title,
        auto_restart: new.auto_restart,
        created_at,
    };
    let cell = TaskCell::new(task, state, max_attempts);
    if state == TaskState::Scheduled {
        cell.status.lock().due_at = cell.task.run_at;
    }
    if shared.journal.shared() {
        // Held by the process that will run it: others leave it alone while it lives.
        cell.status.lock().owner = match placement {
            Placement::Here => shared.journal.owner(),
            Placement::There(owner) => Some(owner.clone()),
            Placement::Anywhere => None,
        };
    }
    Arc::new(cell)
}

/// Makes an accepted task visible and queues it (a paused one waits for `resume`). Its
/// wait for `run_at` is measured now, once it is durable, so the time the store took does
/// not make it late.
fn enqueue(shared: &Shared, queue: &Arc<QueueShared>, cell: Arc<TaskCell>) {
    shared.table.insert(cell.clone());
    queue.metrics.submitted.increment(1);
    tracing::debug!(task_id = %cell.task.id, kind = %cell.task.kind, queue = %queue.name, "task submitted");
    if cell.status.lock().state == TaskState::Paused {
        queue.dequeued();
        return;
    }
    let wait = wait_for(shared, cell.task.run_at);
    queue.push(cell, wait.map(|d| Instant::now() + d));
}

/// A task accepted into its queue by [`submit_batch`], not yet durable.
struct Accepted<'a> {
    queue: Arc<QueueShared>,
    cell: Arc<TaskCell>,
    /// Where it starts.
    placement: Placement,
    /// Its unique key's claim: kept once the task is visible, freed if it is refused.
    guard: Option<KeyGuard<'a>>,
}

/// Submits many tasks with one store write (one transaction, one fsync) for all of them:
/// the cron scheduler fires every due slot of a tick this way. One result per task, in
/// order. A unique key held by another task, here or in the store, returns that task with
/// `duplicate: true`. `Err` when the store write failed: then none of the tasks was
/// accepted.
pub(crate) async fn submit_batch(
    shared: &Shared,
    tasks: Vec<NewTask>,
) -> Result<Vec<Result<Receipt, SubmitError>>, SubmitError> {
    let batch = Batch::accept(shared, tasks).await;
    let written = match batch.accepted.is_empty() {
        true => Ok(vec![]),
        false => shared.journal.write_now(batch.writes()).await,
    };
    batch.finish(written.map_err(SubmitError::from)).await
}

/// Many tasks accepted into their queues, not yet durable: [`submit_batch`] in steps,
/// for a caller that writes them itself (the cron leader writes them with its
/// watermarks, under its lease).
pub(crate) struct Batch<'a> {
    shared: &'a Shared,
    /// One per task: its receipt (a duplicate known here, or the new task's id, final
    /// once written), or why it was refused.
    results: Vec<Result<Receipt, SubmitError>>,
    /// The accepted tasks, with their place in `results`.
    accepted: Vec<(usize, Accepted<'a>)>,
}

impl<'a> Batch<'a> {
    /// Validates, claims unique keys in memory and admits every task.
    pub(crate) async fn accept(shared: &'a Shared, tasks: Vec<NewTask>) -> Batch<'a> {
        let mut results = Vec::with_capacity(tasks.len());
        let mut accepted = vec![];
        for new in tasks {
            match accept(shared, new).await {
                Ok(Ok(a)) => {
                    results.push(Ok(Receipt {
                        id: a.cell.task.id,
                        duplicate: false,
                    }));
                    accepted.push((results.len() - 1, a));
                }
                Ok(Err(existing)) => results.push(Ok(duplicate(existing))),
                Err(e) => results.push(Err(e)),
            }
        }
        Batch {
            shared,
            results,
            accepted,
        }
    }

    /// The results so far: a refusal is final, a receipt may still turn into a duplicate
    /// of a task the store holds.
    pub(crate) fn results(&self) -> &[Result<Receipt, SubmitError>] {
        &self.results
    }

    /// The creates of the accepted tasks, in order.
    pub(crate) fn writes(&self) -> Vec<Write> {
        self.accepted
            .iter()
            .map(|(_, a)| {
                let actor = a.cell.task.metadata.actor_id.as_deref();
                let created = Journal::event(&a.cell.task, EventKind::Created, actor);
                Write::Create(Box::new(a.cell.record()), created)
            })
            .collect()
    }

    /// Gives the batch up after its write failed: none of its tasks is accepted; a task
    /// whose create may have committed all the same is noted, so this process looks it
    /// up and runs it if it was stored.
    pub(crate) fn abandon(self) {
        let ids = self.accepted.iter().map(|(_, a)| a.cell.task.id);
        self.shared.journal.doubt(ids.collect::<Vec<_>>());
        self.accepted.iter().for_each(|(_, a)| a.queue.dequeued());
    }

    /// Given what became of [`writes`](Batch::writes), makes the new tasks visible and
    /// queues them (or sends them where they run). `Err` (none accepted, see
    /// [`abandon`](Batch::abandon)) if the write failed.
    pub(crate) async fn finish(
        self,
        written: Result<Vec<WriteResult>, SubmitError>,
    ) -> Result<Vec<Result<Receipt, SubmitError>>, SubmitError> {
        let Batch {
            shared,
            mut results,
            accepted,
        } = self;
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                Batch {
                    shared,
                    results,
                    accepted,
                }
                .abandon();
                return Err(e);
            }
        };
        let existing = written.iter().map(|r| match r {
            WriteResult::Duplicate(id) => Some(*id),
            WriteResult::Done | WriteResult::Fenced => None,
        });
        for ((i, a), existing) in accepted.into_iter().zip(existing) {
            match existing {
                Some(existing) => {
                    a.queue.dequeued();
                    results[i] = Ok(duplicate(existing));
                }
                None if a.placement != Placement::Here => {
                    a.queue.dequeued();
                    let id = vec![a.cell.task.id];
                    send_elsewhere(shared, &a.queue.name, a.placement, id).await;
                }
                None => {
                    enqueue(shared, &a.queue, a.cell);
                    if let Some(guard) = a.guard {
                        guard.keep();
                    }
                }
            }
        }
        Ok(results)
    }
}

/// Validates, claims the unique key in memory and admits one task of a batch.
/// `Ok(Err(existing))` when a task here already holds its key; the store checks the rest.
async fn accept(
    shared: &Shared,
    new: NewTask,
) -> Result<Result<Accepted<'_>, TaskId>, SubmitError> {
    let (queue, entry) = route(shared, &new)?;
    let id = TaskId::new();
    let guard = match new.unique_key.as_deref() {
        None => None,
        Some(key) => match claim_here(shared, key, id).await {
            Claimed::Free(guard) => guard,
            Claimed::Existing(existing) => return Ok(Err(existing)),
        },
    };
    queue.admit()?;
    let placement = place(shared, &queue.name, new.routing_key.as_deref());
    let cell = new_cell(shared, queue, entry, id, new, &placement);
    Ok(Ok(Accepted {
        queue: queue.clone(),
        cell,
        placement,
        guard,
    }))
}
