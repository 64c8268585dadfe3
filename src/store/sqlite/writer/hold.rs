//! Deferred writes held across commits.
//!
//! A deferred write (nobody waits on it yet) does not have to ride the very next commit:
//! it may wait for a later one, as long as every task's writes still apply in the order
//! they were queued. So an urgent write commits on its own, without the deferred writes
//! queued before it, unless it touches one of their tasks. The held writes then go in
//! together, every few milliseconds: the rows and index entries of many tasks share their
//! pages, so the WAL (and the fsync) of a sequential submitter's commits stays small.

use std::collections::HashSet;
use std::time::Instant;

use super::{Job, Limits, Request};
use crate::store::sqlite::rows::WriteRow;
use crate::task::TaskId;

/// Deferred requests not yet committed, in arrival order, and the tasks they touch.
#[derive(Default)]
pub(super) struct Held {
    requests: Vec<Request>,
    tasks: HashSet<TaskId>,
    size: usize,
    since: Option<Instant>,
}

impl Held {
    /// Writes held, counted as against `max_batch`.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// When the oldest held write must commit, alone if need be.
    pub(super) fn deadline(&self, limits: Limits) -> Option<Instant> {
        self.since.map(|t| t + limits.max_defer)
    }

    /// Everything held, in arrival order.
    pub(super) fn take(&mut self) -> Vec<Request> {
        self.tasks.clear();
        self.size = 0;
        self.since = None;
        std::mem::take(&mut self.requests)
    }

    fn hold(&mut self, request: Request, now: Instant) {
        self.tasks.extend(tasks_of(&request.job));
        self.size += request.job.size();
        self.since.get_or_insert(now);
        self.requests.push(request);
    }
}

/// Splits `incoming` (in arrival order) into what commits now and what joins `held`.
///
/// Everything commits, held first and then `incoming` (arrival order), when an urgent
/// request must come after a deferred one: it touches the same task, or it is not a
/// plain task write (a prune, a sweep, a probe, an empty write that hurries the held
/// ones); also when the held writes have waited half their allowance and an urgent
/// request can carry them, or when they would fill a group. Otherwise only the urgent
/// requests commit and the deferred ones wait; no urgent request touches their tasks,
/// so each task's writes still apply in order.
pub(super) fn split(
    held: &mut Held,
    incoming: Vec<Request>,
    now: Instant,
    limits: Limits,
) -> Vec<Request> {
    let incoming_size: usize = incoming.iter().map(|r| r.job.size()).sum();
    let urgent = incoming.iter().any(|r| !r.deferred);
    let ripe = held.since.is_some_and(|t| now >= t + limits.max_defer / 2);
    let flush = held.size + incoming_size >= limits.max_batch
        || (urgent && ripe)
        || must_follow_deferred(held, &incoming);
    if flush {
        let mut all = held.take();
        all.extend(incoming);
        return all;
    }
    let mut now_group = Vec::new();
    for request in incoming {
        if request.deferred {
            held.hold(request, now);
        } else {
            now_group.push(request);
        }
    }
    now_group
}

/// An urgent request in `incoming` touches a task with a held or earlier deferred write,
/// or is not a plain task write.
fn must_follow_deferred(held: &Held, incoming: &[Request]) -> bool {
    let mut deferred: HashSet<TaskId> = HashSet::new();
    for request in incoming {
        if request.deferred {
            deferred.extend(tasks_of(&request.job));
            continue;
        }
        let Job::Write(rows) = &request.job else {
            return true;
        };
        if rows.is_empty() {
            return true;
        }
        if tasks_of(&request.job).any(|t| held.tasks.contains(&t) || deferred.contains(&t)) {
            return true;
        }
    }
    false
}

/// The tasks a job writes to.
fn tasks_of(job: &Job) -> impl Iterator<Item = TaskId> + '_ {
    let rows: &[WriteRow] = match job {
        Job::Write(rows) => rows,
        _ => &[],
    };
    rows.iter().map(|row| match row {
        WriteRow::Create(task, _) => task.id,
        WriteRow::Update(t) => t.id,
        WriteRow::Event(event) => event.task_id,
        WriteRow::Crash(crash) => crash.task_id,
    })
}
