//! Tasks the store says this process holds that it does not know, or no longer runs:
//! a reservation whose answer was lost, a routed task whose hint was lost, an attempt
//! whose end could not be stored. Nobody else looks after them while this process
//! lives, so the coordinator adopts them.

use std::collections::HashSet;
use std::time::Duration;

use crate::runtime::adopt::adopt;
use crate::runtime::{CoordConfig, Shared};
use crate::store::TaskRecord;
use crate::task::{TaskId, TaskState};

/// Attempts the store said run here while this process did not run them, at the last
/// look. A read of the store is a snapshot: an attempt that ended (or began) here just
/// after the read looks lost for that one look. Only an attempt seen lost at two looks
/// in a row (one heartbeat apart) is lost.
#[derive(Debug, Default)]
pub(crate) struct LostEnds {
    seen: HashSet<(TaskId, u32)>,
}

impl LostEnds {
    /// Records this look's `lost` attempts; returns those also seen at the last look.
    fn confirm(&mut self, lost: Vec<TaskRecord>) -> Vec<TaskRecord> {
        let now: HashSet<(TaskId, u32)> = lost.iter().map(key).collect();
        let previous = std::mem::replace(&mut self.seen, now);
        lost.into_iter()
            .filter(|r| previous.contains(&key(r)))
            .collect()
    }
}

fn key(record: &TaskRecord) -> (TaskId, u32) {
    (record.task.id, record.life.attempt)
}

/// Queues the waiting tasks the store says this process holds but that it does not
/// know: a reservation whose answer was lost (or, late, a routed task whose hint was
/// lost), and recovers the attempts whose end was lost. Reads every task held here, so
/// it runs once per heartbeat.
pub(super) async fn adopt_strays(shared: &Shared, config: &CoordConfig, lost_ends: &mut LostEnds) {
    let Some(store) = shared.journal.store() else {
        return;
    };
    let Some(me) = shared.journal.owner() else {
        return;
    };
    let held = tokio::time::timeout(config.store_deadline(), store.held(me)).await;
    if let Ok(Ok(held)) = held {
        let (running, waiting): (Vec<_>, Vec<_>) = held
            .into_iter()
            .partition(|r| r.life.state == TaskState::Running);
        let lost = running
            .into_iter()
            .filter(|r| !runs_here(shared, r))
            .collect();
        for record in lost_ends.confirm(lost) {
            // Checked again: the attempt may have begun since the look.
            if !runs_here(shared, &record) {
                recover_lost_end(shared, record);
            }
        }
        adopt_unknown(shared, waiting, config.poll_every * 2, "a lost answer");
    }
}

/// This process has `record`'s task in hand: it runs that attempt or a later one, or
/// holds the task waiting after it (the attempt's end, or the claim of the next one
/// written behind it, is on its way to the store), or is writing its end.
fn runs_here(shared: &Shared, record: &TaskRecord) -> bool {
    shared.table.get(&record.task.id).is_some_and(|c| {
        let s = c.status.lock();
        let in_hand = !s.state.is_terminal() && !s.stale && s.attempt >= record.life.attempt;
        in_hand || s.end_pending
    })
}

/// An attempt the store says runs here, that does not run here any more: its end could
/// not be stored (the write failed, `end_lost`), or the task left memory. The attempt
/// becomes a crashed one (retried, auto-restarted or failed, as any crash), fenced by
/// its attempt.
fn recover_lost_end(shared: &Shared, record: TaskRecord) {
    tracing::warn!(task_id = %record.task.id, attempt = record.life.attempt, "the end of an attempt that ran here was not stored; the attempt counts as crashed");
    adopt(shared, record, "its end could not be stored");
}

/// Queues the tasks another node routed here a moment ago whose hint did not arrive:
/// a cheap look on every poll, so a lost hint delays a task by about one poll.
pub(super) async fn adopt_routed(shared: &Shared, config: &CoordConfig) {
    let Some(store) = shared.journal.store() else {
        return;
    };
    let Some(me) = shared.journal.owner() else {
        return;
    };
    let since = std::time::SystemTime::now() - config.heartbeat_every * 3;
    let found = tokio::time::timeout(config.store_deadline(), store.held_since(me, since)).await;
    if let Ok(Ok(found)) = found {
        let young = (config.poll_every / 2).min(Duration::from_millis(100));
        adopt_unknown(shared, found, young, "its routing hint was lost");
    }
}

/// Adopts the waiting ones of `records` that this process does not know, unless younger
/// than `young` (a task submitted here is stored a moment before it is queued).
fn adopt_unknown(shared: &Shared, records: Vec<TaskRecord>, young: Duration, why: &str) {
    if shared.draining() || !shared.accepting() {
        return;
    }
    for record in records {
        let state = record.life.state;
        let waiting = !state.is_terminal() && state != TaskState::Running;
        let age = record.task.created_at.elapsed().unwrap_or_default();
        // A stale copy (its claim was refused after its attempt began) is not the task.
        let known = shared
            .table
            .get(&record.task.id)
            .filter(|c| !c.status.lock().stale);
        if waiting && age >= young && known.is_none() {
            tracing::warn!(task_id = %record.task.id, reason = why, "a task held here was not queued; it runs here");
            adopt(shared, record, "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{life_at, record_of};

    fn record(attempt: u32) -> TaskRecord {
        let now = std::time::SystemTime::now();
        let mut record = record_of("k", now);
        record.life = life_at(TaskState::Running, attempt, now);
        record
    }

    #[test]
    fn an_attempt_is_lost_only_when_seen_lost_at_two_looks_in_a_row() {
        let mut lost = LostEnds::default();
        let (a, b) = (record(1), record(1));
        assert!(lost.confirm(vec![a.clone(), b.clone()]).is_empty());
        let confirmed = lost.confirm(vec![a.clone()]);
        assert_eq!(confirmed.len(), 1);
        assert_eq!(confirmed[0].task.id, a.task.id);
        // `b` ended between the looks; seen again later it starts over.
        assert!(lost.confirm(vec![b.clone()]).is_empty());
    }

    #[test]
    fn a_newer_attempt_of_the_same_task_starts_over() {
        let mut lost = LostEnds::default();
        let first = record(1);
        let mut second = first.clone();
        second.life.attempt = 2;
        assert!(lost.confirm(vec![first]).is_empty());
        assert!(lost.confirm(vec![second]).is_empty());
    }
}
