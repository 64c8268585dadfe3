//! The worker actor (the GenServer role): pulls tasks from its queue and runs one attempt
//! at a time.
//!
//! A worker drains its queue in batches of [`BATCH`] tasks per message, so the per-task
//! cost is a lock on the queue rather than a message; between batches it returns to its
//! mailbox, so health checks and stops are served. When the queue is empty it parks
//! itself as idle in the queue and waits for a `Drain` from a submitter.
//!
//! The worker's messages ([`WorkerMsg`]) and its slot are defined in the runtime, below
//! the actors: the queue's dispatch state wakes workers and keeps their slots.
//!
//! Workers answer no health call: they run attempts inline, so a call would wait for the
//! attempt. Their pool checks them instead, through their slots (stuck detection).
//!
//! A failing task is data: a panic, an error or a timeout becomes a settled attempt, never
//! an `Err` out of `handle` (which would kill the worker).

use std::sync::Arc;
use std::time::Duration;

use ractor::{pg, Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;
use tracing::Instrument;

use crate::breaker::{Admission, Ended};
use crate::runtime::context::TaskContext;
use crate::runtime::gates;
use crate::runtime::{
    apply_held, begin_attempt, claim, claim_behind, run_attempt, settle, AttemptOutcome, Current,
    HandlerEntry, QueueShared, Shared, StartClaim, TaskCell, WorkerMsg, WorkerSlot,
};
use crate::store::Intent;
use crate::TaskState;

/// A probe's claim on a cluster-wide breaker outlasts its attempt's timeout and grace by
/// this much, so that it runs out only for a node that died.
const PROBE_MARGIN: Duration = Duration::from_secs(1);

/// Tasks a worker runs per `Drain` message before it looks at its mailbox again.
pub(crate) const BATCH: usize = 64;

/// The worker actor.
pub(crate) struct Worker;

/// A worker's state (and its start arguments).
pub(crate) struct WorkerState {
    /// The worker's actor id as text, recorded in `started` events.
    pub name: Arc<str>,
    pub shared: Arc<Shared>,
    pub queue: Arc<QueueShared>,
    pub slot: Arc<WorkerSlot>,
    /// On a multi-thread runtime: yield before each attempt (see [`run_one`]).
    pub isolate: bool,
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = WorkerState;

    async fn pre_start(
        &self,
        myself: ActorRef<WorkerMsg>,
        args: WorkerState,
    ) -> Result<WorkerState, ActorProcessingErr> {
        let mut args = args;
        args.name = myself.get_id().to_string().into();
        args.isolate = matches!(
            tokio::runtime::Handle::current().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        );
        let ns = &args.shared.namespace;
        pg::join_scoped(
            ns.scope(),
            ns.worker_group(&args.queue.name),
            vec![myself.get_cell()],
        );
        Ok(args)
    }

    async fn post_start(
        &self,
        myself: ActorRef<WorkerMsg>,
        _state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = myself.cast(WorkerMsg::Drain);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Drain => drain(&myself, state).await,
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<WorkerMsg>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        state.queue.forget_worker(myself.get_id());
        Ok(())
    }
}

async fn drain(myself: &ActorRef<WorkerMsg>, state: &WorkerState) {
    for _ in 0..BATCH {
        let Some(cell) = state.queue.pop(myself) else {
            return;
        };
        run_one(state, cell).await;
    }
    let _ = myself.cast(WorkerMsg::Drain);
}

/// Passes the task through its gates, runs one attempt and settles it.
async fn run_one(state: &WorkerState, cell: Arc<TaskCell>) {
    let Some(entry) = state.shared.handlers.get(&*cell.task.kind) else {
        return; // kinds are checked at submit; a cell without a handler cannot exist
    };
    if let Some(intent) = stored_request(&cell) {
        // Taken from a holder that died before it applied an operator's request.
        tokio::spawn(apply_held(state.shared.clone(), cell, intent));
        return;
    }
    let now = Instant::now();
    let Some(is_probe) = pass_gates(state, entry, &cell, now) else {
        return;
    };
    if is_probe && !claim_probe(state, entry, &cell).await {
        return;
    }
    // No await from here until a claim behind the attempt is queued
    // (`Shared::claims_settled`).
    let claiming = state.shared.claiming.read();
    let Some(mut started) = begin_attempt(&state.shared, &cell, &state.queue, &state.name, now)
    else {
        drop(claiming);
        if is_probe {
            gates::report(&state.shared, entry, Ended::Neutral, true).await;
        }
        return;
    };
    let first = match started.claim.take() {
        Some(StartClaim::Behind(write)) => {
            claim_behind(&state.shared, &cell, started.run, write);
            None
        }
        Some(StartClaim::First(write)) => Some(write),
        None => None,
    };
    drop(claiming);
    if let Some(write) = first {
        let (shared, queue) = (&state.shared, &state.queue);
        if !claim(shared, queue, &cell, started.run, write).await {
            if is_probe {
                gates::report(shared, entry, Ended::Neutral, true).await;
            }
            return;
        }
    }
    state
        .queue
        .metrics
        .submit_to_start
        .record(started.waited.as_secs_f64());
    let timeout = cell.task.timeout;
    state.slot.begin(Current {
        cell: cell.clone(),
        run: started.run,
        // Saturating: a timeout of a year plus any grace must not overflow the clock.
        deadline: now
            .checked_add(timeout.saturating_add(state.shared.grace))
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30)),
    });
    let span = tracing::info_span!("attempt", task_id = %cell.task.id, kind = %cell.task.kind,
        queue = %cell.task.queue, attempt = started.attempt);
    let ctx = TaskContext::new(
        cell.clone(),
        started.attempt,
        started.token.clone(),
        state.shared.journal.clone(),
    );
    let handler = entry.handler.clone();
    if state.isolate {
        // A handler may block its thread instead of awaiting. Tokio never lets another
        // thread steal the task in a thread's LIFO slot, so a runtime task woken just
        // before (the pool's ticker, a store write) would wait as long as the handler
        // blocks, and the stuck worker might never be written off. After a yield this
        // worker runs again from its thread's run queue, or stolen by an idle thread:
        // in each case that thread's LIFO slot is empty.
        YieldOnce(false).await;
    }
    let outcome = run_attempt(
        handler,
        ctx,
        &cell.task.args,
        timeout,
        state.shared.grace,
        &started.token,
    )
    .instrument(span)
    .await;
    let end = Instant::now();
    record_duration(state, &cell, end.duration_since(now));
    gates::report(&state.shared, entry, ended(&outcome), is_probe).await;
    state.slot.end(end);
    settle(&state.shared, &state.queue, &cell, started.run, outcome);
}

/// Yields to the runtime once by waking itself: tokio puts a task that woke itself while
/// it ran at the back of its thread's run queue (never in the LIFO slot), and runs the
/// LIFO slot's task first. Not `tokio::task::yield_now`, which defers the task until
/// its thread has nothing else to run or steal and polls the I/O driver first: under a
/// steady submit load the workers then wait behind every submitter (measured: a fifth
/// less throughput in the open loop).
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// An operator's request stored with a waiting task (through another process, while
/// some process held it), to apply before the task may start.
fn stored_request(cell: &TaskCell) -> Option<Intent> {
    let s = cell.status.lock();
    let waiting = matches!(
        s.state,
        TaskState::Pending | TaskState::Scheduled | TaskState::Retrying
    );
    s.intent
        .clone()
        .filter(|i| waiting && !matches!(i, Intent::Shutdown))
}

/// Circuit breaker, then rate limits. `None` when the task was parked to wait;
/// otherwise whether this attempt is the breaker's half-open probe.
fn pass_gates(
    state: &WorkerState,
    entry: &HandlerEntry,
    cell: &Arc<TaskCell>,
    now: Instant,
) -> Option<bool> {
    let is_probe = match entry.breaker.as_ref().map(|b| b.admit(now)) {
        Some(Admission::Wait(until)) => {
            state.queue.park(cell.clone(), until);
            return None;
        }
        Some(Admission::Probe) => true,
        _ => false,
    };
    let limits = [state.queue.limiter.as_ref(), entry.limiter.as_ref()];
    for limiter in limits.into_iter().flatten() {
        if let Err(at) = limiter.check() {
            if is_probe {
                breaker_neutral(entry);
            }
            state.queue.park(cell.clone(), at);
            return None;
        }
    }
    Some(is_probe)
}

/// For a breaker shared by the cluster: claims its probe in the store. A task whose
/// claim lost goes back to wait (its next admission finds the breaker as the store has it).
async fn claim_probe(state: &WorkerState, entry: &HandlerEntry, cell: &Arc<TaskCell>) -> bool {
    let holds = (cell.task.timeout.saturating_add(state.shared.grace)).saturating_add(PROBE_MARGIN);
    if gates::claim_probe(&state.shared, entry, holds).await {
        return true;
    }
    state.queue.park(cell.clone(), Instant::now());
    false
}

fn ended(outcome: &AttemptOutcome) -> Ended {
    match outcome {
        AttemptOutcome::Succeeded(_) => Ended::Succeeded,
        AttemptOutcome::Failed(..) => Ended::Failed,
        _ => Ended::Neutral,
    }
}

fn breaker_neutral(entry: &HandlerEntry) {
    if let Some(b) = &entry.breaker {
        b.record_neutral();
    }
}

fn record_duration(state: &WorkerState, cell: &TaskCell, took: Duration) {
    if let Some(m) = state.queue.kind_metrics(&cell.task.kind) {
        m.attempt_duration.record(took.as_secs_f64());
    }
}
