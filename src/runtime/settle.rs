//! Starting an attempt and settling its outcome against the task's state. Both the worker
//! and the pool (after a worker crash) settle; a settle applies once per attempt.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::journal::{Journal, Then, Written};
use super::{AttemptError, AttemptOutcome, FailureKind, QueueShared, Shared, Status, TaskCell};
use crate::store::{
    Crash, EventKind, Fence, Intent, Owner, States, StoreError, Transition, Write, WriteResult,
};
use crate::task::{transition, Event, TaskState};

/// An attempt that has begun.
pub(crate) struct Started {
    pub attempt: u32,
    /// This run's number in this process (what its settle is fenced by).
    pub run: u64,
    pub token: CancellationToken,
    /// How long the task waited since it became ready.
    pub waited: Duration,
    /// On a store several processes share: the claim. Otherwise the `started` write was
    /// queued already.
    pub claim: Option<StartClaim>,
}

/// How the claim of a begun attempt reaches a store several processes share.
pub(crate) enum StartClaim {
    /// A task this process does not hold, or while its heartbeat is not trusted: the
    /// claim is won in the store before the attempt runs ([`claim`]).
    First(Write),
    /// A task held here, with a trusted heartbeat: no other process claims it (it is
    /// not in the pool, and this process stops before it can be found dead), and a
    /// command through another process is stored as a request, which fences this claim
    /// out. The attempt runs at once and its claim follows it to the store, often in one
    /// commit with its end ([`claim_behind`]).
    Behind(Write),
}

/// Moves a queued task to running and journals `started`. `None` when it is no longer
/// runnable (cancelled or paused while it waited); the queue's counters were adjusted
/// then.
pub(crate) fn begin_attempt(
    shared: &Shared,
    cell: &Arc<TaskCell>,
    queue: &QueueShared,
    worker: &Arc<str>,
    now: Instant,
) -> Option<Started> {
    let mut s = cell.status.lock();
    if s.stale {
        // Its last claim was refused after its attempt had begun and settled here.
        let waiters = std::mem::take(&mut s.waiters);
        drop(s);
        for w in waiters {
            let _ = w.send(None);
        }
        queue.dequeued();
        shared.table.forget(cell);
        return None;
    }
    if matches!(s.state, TaskState::Scheduled | TaskState::Retrying) {
        s.state = TaskState::Pending;
    }
    if !apply(&mut s, Event::Start) {
        // A command's change is being written: if it fails, the task comes back.
        s.released |= s.committed.is_some();
        return None;
    }
    // A claim never erases a request another process stored on the row meanwhile: it
    // is refused, and the row (request included) is adopted again from the store.
    let fence = Fence::new(States::WAITING, s.attempt, s.owner.clone()).unrequested();
    let held = s.owner.is_some() && s.owner == shared.journal.owner();
    s.attempt += 1;
    s.run += 1;
    s.owner = shared.journal.owner();
    s.ran_on = s.owner.as_ref().map(|o| o.node.clone());
    s.due_at = None;
    s.updated_at = SystemTime::now();
    s.worker = Some(worker.clone());
    let token = CancellationToken::new();
    s.token = Some(token.clone());
    queue.started();
    let mut started = Started {
        attempt: s.attempt,
        run: s.run,
        token,
        waited: now.saturating_duration_since(s.ready_at),
        claim: None,
    };
    if shared.journal.store().is_some() {
        // On a shared store the event names the node too: which node ran which attempt.
        let worker = match shared.journal.shared() {
            true => Some(format!("{}/{worker}", shared.coord.node)),
            false => Some(worker.to_string()),
        };
        let kind = EventKind::Started {
            attempt: s.attempt,
            worker,
        };
        let write = update(cell, &s, kind, shared.journal.hot(fence));
        drop(s);
        if shared.journal.shared() {
            // A draining process gives its waiting tasks back: it claims first.
            let behind = held && shared.journal.trusted() && !shared.draining();
            started.claim = Some(match behind {
                true => StartClaim::Behind(write),
                false => StartClaim::First(write),
            });
        } else {
            // One process per store: memory is exact, the claim cannot lose.
            shared.journal.write_later(vec![write], None);
        }
    }
    Some(started)
}

/// Queues the claim of run `run`, which has begun ([`StartClaim::Behind`]). Refused (or
/// failed for good), the copy here is stale: an attempt still running stops and its
/// outcome is dropped ([`settle`]), one already settled is forgotten (or, requeued,
/// forgotten when next taken), and the coordinator adopts the row again from the store
/// if it is still held here.
pub(crate) fn claim_behind(shared: &Arc<Shared>, cell: &Arc<TaskCell>, run: u64, write: Write) {
    let (shared_, cell_) = (shared.clone(), cell.clone());
    let then: Then = Box::new(move |written| {
        if written == Written::Durable {
            return;
        }
        let mut s = cell_.status.lock();
        s.stale = true;
        tracing::warn!(task_id = %cell_.task.id, ?written, "the claim of a started attempt was refused in the store; this copy of the task stops");
        if s.run == run && s.state == TaskState::Running {
            if let Some(token) = &s.token {
                token.cancel();
            }
        } else if s.state.is_terminal() {
            drop(s);
            shared_.table.forget(&cell_);
        }
    });
    shared.journal.write_later(vec![write], Some(then));
}

/// Wins the claim of a begun attempt in the store. False if it was not won: the task
/// changed in the store (another process has it, or a command or a rescue changed it),
/// and this process forgets it; or the store failed, and the task waits again.
pub(crate) async fn claim(
    shared: &Shared,
    queue: &QueueShared,
    cell: &Arc<TaskCell>,
    run: u64,
    write: Write,
) -> bool {
    // Past its trust window this process may already be declared dead: it claims
    // nothing until its heartbeat is renewed.
    let written = match shared.journal.trusted() {
        true => shared.journal.write_now(vec![write]).await,
        false => Err(StoreError::Fenced {
            owner: shared.journal.owner().unwrap_or_else(|| Owner::new("", 0)),
        }),
    };
    let lost = match written {
        Ok(results) if results.first() == Some(&WriteResult::Done) => return true,
        Ok(results) => {
            shared.journal.fenced(&results, &[]);
            true
        }
        Err(e) => {
            tracing::warn!(task_id = %cell.task.id, error = %e, "could not claim the task; it waits");
            false
        }
    };
    let mut s = cell.status.lock();
    if s.run != run || s.state != TaskState::Running {
        return false;
    }
    s.token = None;
    s.worker = None;
    s.attempt = s.attempt.saturating_sub(1);
    s.state = TaskState::Pending;
    s.ready_at = Instant::now();
    // Waiters here learn the end from the store (`TaskSystem::wait` reads it on `None`).
    let waiters = match lost {
        true => std::mem::take(&mut s.waiters),
        false => Vec::new(),
    };
    drop(s);
    for w in waiters {
        let _ = w.send(None);
    }
    queue.finished(&cell.task.kind, TaskState::Pending);
    if lost {
        shared.table.forget(cell);
    } else {
        queue.requeue(cell.clone(), Some(Instant::now() + CLAIM_RETRY));
    }
    false
}

/// How long a task whose claim failed in the store waits before it is tried again.
const CLAIM_RETRY: Duration = Duration::from_secs(1);

/// Where the task goes after a settle.
enum Requeue {
    No,
    Now,
    At(Instant),
}

/// What a settle decided: the next queue placement and the events to journal (the last
/// one goes with the row update).
struct Decision {
    requeue: Requeue,
    events: Vec<EventKind>,
    crash: Option<Crash>,
}

impl Decision {
    fn new(requeue: Requeue, event: EventKind) -> Self {
        Self {
            requeue,
            events: vec![event],
            crash: None,
        }
    }
}

/// Applies `outcome` of the task's `run` to the task, once: a second settle of the same
/// run (the worker and the pool racing after a crash) or of an older one is ignored.
pub(crate) fn settle(
    shared: &Shared,
    queue: &QueueShared,
    cell: &Arc<TaskCell>,
    run: u64,
    outcome: AttemptOutcome,
) {
    let now = Instant::now();
    let mut s = cell.status.lock();
    if s.state != TaskState::Running || s.run != run {
        return;
    }
    if s.stale {
        // Its claim was refused: the outcome is dropped, and the store's row decides.
        s.token = None;
        s.worker = None;
        s.attempt = s.attempt.saturating_sub(1);
        s.state = TaskState::Pending;
        let waiters = std::mem::take(&mut s.waiters);
        drop(s);
        for w in waiters {
            let _ = w.send(None);
        }
        queue.finished(&cell.task.kind, TaskState::Pending);
        shared.table.forget(cell);
        return;
    }
    let attempt = s.attempt;
    let fence = running_fence(&s);
    s.token = None;
    s.worker = None;
    s.updated_at = SystemTime::now();
    let intent = s.intent.take();
    let outcome = match outcome {
        // An operator's request wins over whatever the handler did on seeing its token,
        // unless it had already produced a value.
        AttemptOutcome::Succeeded(_) => outcome,
        _ if intent.is_some() => AttemptOutcome::Stopped,
        _ => outcome,
    };
    let d = decide(cell, &mut s, outcome, intent, now);
    let state = s.state;
    s.due_at = match d.requeue {
        Requeue::At(at) => Some(SystemTime::now() + at.saturating_duration_since(now)),
        _ => None,
    };
    if !matches!(d.requeue, Requeue::No) {
        s.ready_at = now;
    }
    // A task that goes on waits here (this process holds it); an ended one is held by
    // nobody. (A rescued task changes hands here: from its dead owner to this process.)
    s.owner = match state.is_terminal() {
        true => None,
        false => shared.journal.owner(),
    };
    // Without a store nothing is written: the events are not even built.
    let writes = match shared.journal.store() {
        Some(_) => writes_for(cell, &s, d.events, d.crash, shared.journal.hot(fence)),
        None => Vec::new(),
    };
    // Nobody waits yet: the end may be held to share a later commit (a late waiter
    // hurries it).
    let urgent = !s.waiters.is_empty();
    let notify = on_durable_end(cell, &mut s, shared.journal.store().is_some());
    drop(s);
    queue.finished(&cell.task.kind, state);
    tracing::debug!(task_id = %cell.task.id, state = state.as_str(), attempt, "task state changed");
    if urgent {
        shared.journal.write_then(writes, notify);
    } else {
        shared.journal.write_later(writes, notify);
    }
    match d.requeue {
        Requeue::No if state.is_terminal() => shared.table.ended(cell, now),
        Requeue::No => {}
        Requeue::Now => queue.requeue(cell.clone(), None),
        Requeue::At(at) => queue.requeue(cell.clone(), Some(at)),
    }
}

fn decide(
    cell: &TaskCell,
    s: &mut Status,
    outcome: AttemptOutcome,
    intent: Option<Intent>,
    now: Instant,
) -> Decision {
    match outcome {
        AttemptOutcome::Succeeded(v) => succeed(s, v),
        AttemptOutcome::Failed(kind, message) => fail(cell, s, kind, message, now),
        AttemptOutcome::Discarded(message) => {
            let error = AttemptError {
                attempt: s.attempt,
                kind: FailureKind::Failed,
                message,
            };
            s.error = Some(error.clone());
            apply(s, Event::Fail);
            Decision::new(Requeue::No, EventKind::Failed { error })
        }
        AttemptOutcome::Cancelled(reason) => cancel(s, reason),
        AttemptOutcome::Snoozed(d) => {
            apply(s, Event::Snooze);
            s.max_attempts = s.max_attempts.saturating_add(1);
            let until = SystemTime::now() + d;
            Decision::new(Requeue::At(now + d), EventKind::Snoozed { until })
        }
        AttemptOutcome::Stopped => stopped(s, intent),
    }
}

fn stopped(s: &mut Status, intent: Option<Intent>) -> Decision {
    match intent {
        Some(Intent::Cancel { reason }) => cancel(s, reason),
        Some(Intent::Complete { result }) => succeed(s, result),
        Some(Intent::Pause) => {
            s.attempt = s.attempt.saturating_sub(1);
            apply(s, Event::Pause);
            Decision::new(Requeue::No, EventKind::Paused)
        }
        // A restart, or an attempt cut off by shutdown: back to the queue. The run was
        // not an attempt (see `Status::run`): its number is given back.
        Some(Intent::Restart) | Some(Intent::Shutdown) | None => {
            s.attempt = s.attempt.saturating_sub(1);
            apply(s, Event::Interrupt);
            Decision::new(Requeue::Now, EventKind::Restarted)
        }
    }
}

fn succeed(s: &mut Status, v: serde_json::Value) -> Decision {
    s.result = Some(v.clone());
    apply(s, Event::Succeed);
    Decision::new(Requeue::No, EventKind::Succeeded { result: v })
}

fn cancel(s: &mut Status, reason: String) -> Decision {
    s.cancel_reason = Some(reason.clone());
    apply(s, Event::Cancel);
    Decision::new(Requeue::No, EventKind::Cancelled { reason })
}

/// A failed attempt: crashes go to the crash history and may auto-restart; otherwise the
/// task is retried after its backoff, or ends as failed after its last attempt.
fn fail(
    cell: &TaskCell,
    s: &mut Status,
    kind: FailureKind,
    message: String,
    now: Instant,
) -> Decision {
    let attempt = s.attempt;
    let error = AttemptError {
        attempt,
        kind,
        message,
    };
    s.error = Some(error.clone());
    let mut events = vec![];
    let mut crash = None;
    if matches!(kind, FailureKind::Panicked | FailureKind::Crashed) {
        let c = Crash {
            task_id: cell.task.id,
            at: SystemTime::now(),
            attempt,
            kind,
            reason: error.message.clone(),
        };
        events.push(EventKind::Crashed { crash: c.clone() });
        crash = Some(c);
        if s.restarts < cell.task.auto_restart {
            s.restarts += 1;
            s.max_attempts = s.max_attempts.saturating_add(1);
            apply(s, Event::Interrupt);
            events.push(EventKind::Restarted);
            return Decision {
                requeue: Requeue::Now,
                events,
                crash,
            };
        }
    } else {
        events.push(EventKind::AttemptFailed {
            error: error.clone(),
        });
    }
    if attempt >= s.max_attempts {
        apply(s, Event::Fail);
        events.push(EventKind::Failed { error });
        return Decision {
            requeue: Requeue::No,
            events,
            crash,
        };
    }
    apply(s, Event::Retry);
    let delay = cell.task.backoff.delay(attempt, &mut rand::rng());
    let at = SystemTime::now() + delay;
    events.push(EventKind::RetryScheduled {
        attempt: attempt + 1,
        at,
    });
    Decision {
        requeue: Requeue::At(now + delay),
        events,
        crash,
    }
}

/// The write for a change: one transition with the crash and every event, the last one
/// being the transition's own.
pub(crate) fn writes_for(
    cell: &TaskCell,
    s: &Status,
    mut events: Vec<EventKind>,
    crash: Option<Crash>,
    fence: Option<Fence>,
) -> Vec<Write> {
    if events.is_empty() {
        events.push(EventKind::Restarted);
    }
    let events = events.into_iter();
    vec![Write::Update(Box::new(Transition {
        id: cell.task.id,
        life: s.life.clone(),
        events: events
            .map(|e| Journal::event(&cell.task, e, None))
            .collect(),
        crash,
        fence,
    }))]
}

/// The row update of `cell` with `kind` as its event, if the row passes `fence`.
pub(crate) fn update(cell: &TaskCell, s: &Status, kind: EventKind, fence: Option<Fence>) -> Write {
    let event = Journal::event(&cell.task, kind, None);
    match fence {
        Some(fence) => Write::fenced(cell.task.id, s.life.clone(), event, fence),
        None => Write::update(cell.task.id, s.life.clone(), event),
    }
}

/// The fence of a write made while the task's attempt runs here: still running, the
/// same attempt, held by the same process.
pub(crate) fn running_fence(s: &Status) -> Fence {
    Fence::new(States::RUNNING, s.attempt, s.owner.clone())
}

/// When the task ended: marks the end as not yet durable and returns the closure to run
/// once its write is settled, which tells the waiters (also those that came in the
/// meantime: see [`Status::end_pending`]) the result, or, if the write failed, that the
/// end is not durable ([`Status::end_lost`]). Without a store (`journaled` false) the end
/// is final at once, so there is nothing to do unless someone already waits.
pub(crate) fn on_durable_end(
    cell: &Arc<TaskCell>,
    s: &mut Status,
    journaled: bool,
) -> Option<Then> {
    if !s.state.is_terminal() || (!journaled && s.waiters.is_empty()) {
        return None;
    }
    s.end_pending = true;
    let cell = Arc::clone(cell);
    Some(Box::new(move |written| {
        let durable = written == Written::Durable;
        let mut s = cell.status.lock();
        s.end_pending = false;
        s.end_lost = !durable;
        let waiters = std::mem::take(&mut s.waiters);
        let result = durable.then(|| s.result_of(cell.task.id));
        drop(s);
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }))
}

/// Applies a state-machine event; false (and no change) if it is not allowed.
pub(crate) fn apply(s: &mut Status, event: Event) -> bool {
    match transition(s.state, event) {
        Ok(next) => {
            s.state = next;
            true
        }
        Err(_) => false,
    }
}
