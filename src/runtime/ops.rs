//! Operator commands on one task: cancel, pause (stop), resume (start), restart, complete.
//!
//! Every command is written first and applied after, so a failed write returns the error
//! and changes nothing. A waiting task changes once the change is durable. For a running
//! task the command is a stop request: the request is stored with the task (its
//! `intent` and a `stop_requested` event), and only then does the attempt's token fire;
//! the request is applied when the attempt stops, or at recovery if the process dies
//! first. A
//! running task gets an intent and its token fires; its worker applies the intent when
//! the attempt stops (after the grace period at the latest), and the call returns
//! [`Control::Requested`].

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::journal::{Journal, Then, Written};
use super::settle::{apply, on_durable_end, running_fence};
use super::{Shared, Status, TaskCell};
use crate::error::TaskError;
use crate::store::{EventKind, Fence, Intent, States, Write, WriteResult};
use crate::task::{Event, TaskId, TaskState, TransitionError};

/// What a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Applied, and durable.
    Done,
    /// The task is running: its token fired, and the change applies when the attempt
    /// stops (unless the handler returns a value first, which then wins).
    Requested,
}

/// A command's effect on a waiting task, or the intent for a running one.
pub(super) enum Step {
    Changed(EventKind, Placement),
    Intent(Intent),
    Nothing,
}

pub(super) enum Placement {
    Stay,
    Requeue,
}

/// An operator's command on one task.
#[derive(Clone, Debug)]
pub(crate) enum Command {
    /// End it as cancelled.
    Cancel(String),
    /// Pause it (the seed's "stop pod"): it keeps its place and does not fail.
    Pause,
    /// Resume a paused task (the seed's "start pod"). Only one of several concurrent
    /// resumes wins; the others get a transition error, so a task never runs twice.
    Resume,
    /// Restart its execution: a running attempt is stopped and the task queued again; a
    /// paused task is resumed; a waiting task is left as it is.
    Restart,
    /// End it as succeeded with this result.
    Complete(serde_json::Value),
}

impl Command {
    /// The command's effect on the task's status (under its lock).
    pub(super) fn step(self, s: &mut Status) -> Result<Step, TransitionError> {
        let running = s.state == TaskState::Running;
        match self {
            Command::Cancel(reason) if running => Ok(Step::Intent(Intent::Cancel { reason })),
            Command::Cancel(reason) => {
                step(s, Event::Cancel)?;
                s.cancel_reason = Some(reason.clone());
                let kind = EventKind::Cancelled { reason };
                Ok(Step::Changed(kind, Placement::Stay))
            }
            Command::Pause if running => Ok(Step::Intent(Intent::Pause)),
            Command::Pause => {
                step(s, Event::Pause)?;
                Ok(Step::Changed(EventKind::Paused, Placement::Stay))
            }
            Command::Resume => {
                step(s, Event::Resume)?;
                Ok(Step::Changed(EventKind::Resumed, Placement::Requeue))
            }
            Command::Restart if running => Ok(Step::Intent(Intent::Restart)),
            Command::Restart if s.state == TaskState::Paused => {
                step(s, Event::Resume)?;
                Ok(Step::Changed(EventKind::Restarted, Placement::Requeue))
            }
            Command::Restart => Ok(Step::Nothing),
            Command::Complete(result) if running => Ok(Step::Intent(Intent::Complete { result })),
            Command::Complete(result) => {
                step(s, Event::Complete)?;
                s.result = Some(result.clone());
                let kind = EventKind::Succeeded { result };
                Ok(Step::Changed(kind, Placement::Stay))
            }
        }
    }
}

impl Command {
    /// The command on a waiting task that another process holds: that process may be
    /// starting it without waiting for the store (see `settle::begin_attempt`), so a
    /// change is asked of it as a request it applies, like a stop request on a running
    /// task. Commands that change nothing of a waiting task, or may not apply to one,
    /// are decided as [`step`](Self::step) decides them.
    pub(super) fn held_step(self, s: &mut Status) -> Result<Step, TransitionError> {
        match self {
            Command::Cancel(reason) => Ok(Step::Intent(Intent::Cancel { reason })),
            Command::Pause => Ok(Step::Intent(Intent::Pause)),
            Command::Complete(result) => Ok(Step::Intent(Intent::Complete { result })),
            other => other.step(s),
        }
    }

    /// The command an intent asks for.
    pub(super) fn of(intent: Intent) -> Option<Self> {
        match intent {
            Intent::Cancel { reason } => Some(Command::Cancel(reason)),
            Intent::Pause => Some(Command::Pause),
            Intent::Restart => Some(Command::Restart),
            Intent::Complete { result } => Some(Command::Complete(result)),
            Intent::Shutdown => None,
        }
    }
}

/// Applies a request stored (through another process) on a waiting task this process
/// holds: the command runs here as an operator's would. A task that started meanwhile
/// gets it as a stop request instead; one that ended or changed is left as it is.
pub(crate) async fn apply_held(shared: Arc<Shared>, cell: Arc<TaskCell>, intent: Intent) {
    let Some(cmd) = Command::of(intent) else {
        return;
    };
    let id = cell.task.id;
    let name = cmd.name();
    let apply = move |s: &mut Status| {
        let step = cmd.step(s)?;
        if matches!(step, Step::Changed(..)) {
            s.intent = None; // applied: the row carries it no more
        }
        Ok(step)
    };
    match command(&shared, &cell, None, apply).await {
        Ok(control) => {
            tracing::info!(task_id = %id, command = name, ?control, "applied a request stored through another process")
        }
        Err(e) => {
            tracing::info!(task_id = %id, command = name, error = %e, "a request stored through another process did not apply")
        }
    }
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Cancel(_) => "cancel",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Restart => "restart",
            Command::Complete(_) => "complete",
        }
    }
}

/// Runs `cmd` on task `id`. Written first, applied after (see the module docs). On a
/// store several processes share, a task this process does not hold (or holds a stale
/// copy of) is changed in the store by a conditional write ([`remote`]).
pub(crate) async fn run(
    shared: &Shared,
    id: TaskId,
    actor: Option<&str>,
    cmd: Command,
) -> Result<Control, TaskError> {
    let sharing = shared.journal.shared();
    let local = shared.table.get(&id);
    let local = local.filter(|c| !sharing || !c.status.lock().state.is_terminal());
    if let Some(cell) = local {
        let c = cmd.clone();
        match command(shared, &cell, actor, move |s| c.step(s)).await {
            Err(TaskError::Conflict(_)) if sharing => shared.table.forget(&cell),
            other => return other,
        }
    }
    if !sharing {
        return Err(TaskError::NotFound(id));
    }
    super::remote::command(shared, id, actor, cmd).await
}

fn step(s: &mut Status, event: Event) -> Result<(), TransitionError> {
    if apply(s, event) {
        return Ok(());
    }
    Err(TransitionError {
        from: s.state,
        event,
    })
}

/// The states a row may have when memory says `state`: a waiting task may be stored as
/// any waiting state (the timer moves a due task to pending without a write).
pub(super) fn states_of(state: TaskState) -> States {
    if queued(state) {
        States::WAITING
    } else {
        States::one(state)
    }
}

fn queued(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::Pending | TaskState::Scheduled | TaskState::Retrying
    )
}

async fn command(
    shared: &Shared,
    cell: &Arc<TaskCell>,
    actor: Option<&str>,
    f: impl FnOnce(&mut Status) -> Result<Step, TransitionError>,
) -> Result<Control, TaskError> {
    let (write, pending) = match decide(shared, cell, actor, f)? {
        Decided::Request(write, request) => return stop(shared, cell, write, request).await,
        Decided::Nothing => return Ok(Control::Done),
        Decided::Change(write, pending) => (write, pending),
    };
    match shared.journal.write_now(vec![write]).await {
        Ok(results) if results.first() == Some(&WriteResult::Fenced) => {
            shared.journal.fenced(&results, &[]);
            revert(shared, cell);
            Err(TaskError::Conflict(cell.task.id))
        }
        Ok(_) => {
            commit(shared, cell, pending);
            Ok(Control::Done)
        }
        Err(e) => {
            revert(shared, cell);
            Err(TaskError::Store(e))
        }
    }
}

/// What a command decided under the task's lock.
enum Decided {
    /// A stop request for the running attempt, to be written before its token fires.
    Request(Write, Request),
    /// Nothing to change.
    Nothing,
    /// A change, to be written before anything else sees it.
    Change(Write, Pending),
}

/// A change whose write is in flight: what to do once it is durable.
struct Pending {
    was: TaskState,
    placement: Placement,
    notify: Option<Then>,
}

/// Decides a command under the task's lock. A change is made to the task's life, but
/// readers keep seeing the durable one ([`Status::committed`]) and nothing else acts on
/// it (queue counters, requeue, waiters, retention) until [`commit`]; a failed write
/// [`revert`]s it. A second command meanwhile is refused as busy.
fn decide(
    shared: &Shared,
    cell: &Arc<TaskCell>,
    actor: Option<&str>,
    f: impl FnOnce(&mut Status) -> Result<Step, TransitionError>,
) -> Result<Decided, TaskError> {
    let id = cell.task.id;
    let mut s = cell.status.lock();
    if s.committed.is_some() || s.requesting {
        return Err(TaskError::Busy(id));
    }
    let was = s.state;
    if was.is_terminal() {
        return Err(TaskError::AlreadyTerminal { id, state: was });
    }
    let before = s.life.clone();
    let (kind, placement) = match f(&mut s)? {
        Step::Nothing => return Ok(Decided::Nothing),
        Step::Intent(intent) => return Ok(request(cell, &mut s, intent, actor)),
        Step::Changed(kind, placement) => (kind, placement),
    };
    s.updated_at = SystemTime::now();
    s.due_at = None;
    let event = Journal::event(&cell.task, kind, actor);
    let fence = Fence::new(
        states_of(before.state),
        before.attempt,
        before.owner.clone(),
    );
    let write = Write::fenced(id, s.life.clone(), event, fence);
    let notify = on_durable_end(cell, &mut s, shared.journal.store().is_some());
    s.committed = Some(Box::new(before));
    s.released = false;
    let pending = Pending {
        was,
        placement,
        notify,
    };
    Ok(Decided::Change(write, pending))
}

/// A stop request whose write is in flight.
struct Request {
    /// The run it asks to stop.
    run: u64,
    /// The intent it replaced, put back if the write fails.
    previous: Option<Intent>,
}

/// Records `intent` on the running task, so that every later write of the task carries
/// it, and the write that stores it. The token fires only once that write is durable.
fn request(cell: &TaskCell, s: &mut Status, intent: Intent, actor: Option<&str>) -> Decided {
    let previous = s.intent.replace(intent.clone());
    s.requesting = true;
    let event = Journal::event(&cell.task, EventKind::StopRequested { intent }, actor);
    let write = Write::fenced(cell.task.id, s.life.clone(), event, running_fence(s));
    let run = s.run;
    Decided::Request(write, Request { run, previous })
}

/// Writes a stop request, then fires the attempt's token. If the attempt stopped on its
/// own meanwhile, its settle applied the request already; the answer waits until that is
/// durable too.
async fn stop(
    shared: &Shared,
    cell: &Arc<TaskCell>,
    write: Write,
    request: Request,
) -> Result<Control, TaskError> {
    let written = shared.journal.write_now(vec![write]).await;
    let stopping = {
        let mut s = cell.status.lock();
        s.requesting = false;
        let running = s.state == TaskState::Running && s.run == request.run;
        let results = match written {
            Ok(results) => results,
            Err(e) => {
                if running {
                    s.intent = request.previous;
                }
                return Err(TaskError::Store(e));
            }
        };
        // Fenced while the attempt still runs here: the row changed in the store (another
        // process rescued or changed the task). Fenced after the attempt ended: its
        // settle was written first and applied the request (below).
        if running && results.first() == Some(&WriteResult::Fenced) {
            shared.journal.fenced(&results, &[]);
            s.intent = request.previous;
            return Err(TaskError::Conflict(cell.task.id));
        }
        if running {
            if let Some(t) = &s.token {
                t.cancel();
            }
        }
        running
    };
    if stopping {
        return Ok(Control::Requested);
    }
    shared.journal.flush().await;
    Ok(Control::Done)
}

/// The command's write is durable: the change becomes visible and takes effect.
fn commit(shared: &Shared, cell: &Arc<TaskCell>, pending: Pending) {
    let now = {
        let mut s = cell.status.lock();
        s.committed = None;
        s.released = false;
        s.state
    };
    account(shared, cell, pending.was, now, pending.placement);
    if let Some(notify) = pending.notify {
        notify(Written::Durable);
    }
}

/// The command's write failed: the task is as it was, back in its queue if a worker
/// let go of it meanwhile.
fn revert(shared: &Shared, cell: &Arc<TaskCell>) {
    let released = {
        let mut s = cell.status.lock();
        let Some(before) = s.committed.take() else {
            return;
        };
        s.life = *before;
        s.end_pending = false;
        std::mem::take(&mut s.released)
    };
    if released {
        if let Some(q) = shared.queues.get(&*cell.task.queue) {
            q.push(cell.clone(), None);
        }
    }
}

/// Keeps the queue's counters and the retention list in step with a command.
fn account(
    shared: &Shared,
    cell: &Arc<TaskCell>,
    was: TaskState,
    now: TaskState,
    placement: Placement,
) {
    let queue = shared.queues.get(&*cell.task.queue);
    if let Some(q) = queue {
        if queued(was) && !queued(now) {
            q.dequeued();
        }
        if now == TaskState::Cancelled {
            if let Some(m) = q.kind_metrics(&cell.task.kind) {
                m.cancelled.increment(1);
            }
        }
        if matches!(placement, Placement::Requeue) {
            q.requeue(cell.clone(), None);
        }
    }
    if now.is_terminal() {
        shared.table.ended(cell, Instant::now());
    }
}
