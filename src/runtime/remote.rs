//! Commands on a task this process does not hold, on a store several processes share.
//!
//! The task's row is read, the command is decided on it by the same rules as for a
//! local task ([`Command`]), and the change is written fenced by the row as read: if
//! another process changed the task meanwhile, the write is refused and the command is
//! decided again on the new row. A task another process holds (running it, or holding
//! it to run: it starts a held task without waiting for the store) gets a request
//! stored with it, which that process applies as soon as the mesh delivers it or its
//! next heartbeat brings it: before the attempt starts, or to the attempt as a stop
//! request. Whoever takes a held task after its holder died applies the request
//! before it would start it. A task nobody holds changes at once. A task that goes back
//! to the shared pool waiting (resumed, restarted) is hinted to the other processes
//! ([`Notifier`](crate::store::Notifier)), so one with a free worker takes it at once.

use std::time::SystemTime;

use super::journal::Journal;
use super::ops::{states_of, Command, Control, Step};
use super::{Shared, TaskCell};
use crate::error::TaskError;
use crate::store::{EventKind, Fence, Requested, States, Write, WriteResult};
use crate::task::TaskId;

/// Decisions retried when another process changed the task in between.
const ROUNDS: usize = 5;

pub(crate) async fn command(
    shared: &Shared,
    id: TaskId,
    actor: Option<&str>,
    cmd: Command,
) -> Result<Control, TaskError> {
    let Some(store) = shared.journal.store() else {
        return Err(TaskError::NotFound(id));
    };
    for _ in 0..ROUNDS {
        let record = store.get(id).await.map_err(TaskError::Store)?;
        let record = record.ok_or(TaskError::NotFound(id))?;
        let was = record.life.clone();
        if was.state.is_terminal() {
            return Err(TaskError::AlreadyTerminal {
                id,
                state: was.state,
            });
        }
        let held = States::WAITING.contains(was.state)
            && was.owner.is_some()
            && was.owner != shared.journal.owner();
        let cell = TaskCell::from_record(record.task, record.life);
        let mut request = None;
        let (write, control) = {
            let mut s = cell.status.lock();
            let step = match held {
                true => cmd.clone().held_step(&mut s)?,
                false => cmd.clone().step(&mut s)?,
            };
            let (kind, control) = match step {
                Step::Nothing => return Ok(Control::Done),
                Step::Intent(intent) => {
                    s.intent = Some(intent.clone());
                    request = Some(Requested {
                        task_id: id,
                        attempt: was.attempt,
                        intent: intent.clone(),
                        waiting: held,
                    });
                    (EventKind::StopRequested { intent }, Control::Requested)
                }
                Step::Changed(kind, _) => {
                    s.due_at = None;
                    s.owner = None;
                    (kind, Control::Done)
                }
            };
            s.updated_at = SystemTime::now();
            let fence = Fence::new(states_of(was.state), was.attempt, was.owner.clone());
            let event = Journal::event(&cell.task, kind, actor);
            (Write::fenced(id, s.life.clone(), event, fence), control)
        };
        let waiting = States::WAITING.contains(cell.status.lock().state);
        let results = shared.journal.write_now(vec![write]).await;
        match results.map_err(TaskError::Store)?.first() {
            Some(WriteResult::Fenced) => continue,
            _ => {
                // The request is durable: hand it to the running process at once (its
                // heartbeat brings it anyway if this is lost).
                if let (Some(peers), Some(owner), Some(r)) = (shared.peers(), &was.owner, request) {
                    peers.deliver(owner, r);
                }
                if waiting && control == Control::Done {
                    // A hint only hurries the others: their polls find the task anyway.
                    let _ = store.notify(vec![cell.task.queue.to_string()]).await;
                }
                return Ok(control);
            }
        }
    }
    Err(TaskError::Conflict(id))
}
