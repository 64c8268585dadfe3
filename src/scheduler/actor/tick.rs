//! One tick of the scheduler: plan the due slots of every schedule, fire them all with one
//! store write, then store every watermark that moved with one more, [`SAVE_AFTER`] later
//! (off the moment the tick's tasks start; at the latest when the scheduler stops).
//!
//! A slot the tick does not fire is counted in `taskmesh_cron_skipped_total` with the
//! reason (`overlap`, `missed` or `refused`) and logged. A slot whose firing failed for a
//! passing reason (the store, a full queue) is neither fired nor dropped: its schedule's
//! watermark stays before it and the schedule is tried again after [`RETRY`].

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use ractor::ActorRef;

use super::{slot_task, SchedulerMsg, SchedulerState};
use crate::error::SubmitError;
use crate::runtime::submit::{submit_batch, Receipt};
use crate::scheduler::plan::plan;
use crate::scheduler::{Overlap, ScheduleRecord};
use crate::task::{NewTask, TaskId};

/// A schedule whose firing failed is tried again after this long; a node that does not
/// lead checks again after this long.
pub(super) const RETRY: chrono::Duration = chrono::Duration::seconds(1);

/// How far ahead of its instant a slot is fired, as a task scheduled for that instant: the
/// tick's work (planning, one store transaction for every due slot) is done before the
/// slot, and the queue's timer starts the task on time. A schedule that skips overlapping
/// runs is fired at its instant instead, because whether its previous run still runs is
/// asked then.
const AHEAD: chrono::Duration = chrono::Duration::milliseconds(100);

/// How far ahead of its slots `r` is fired.
fn ahead(r: &ScheduleRecord) -> chrono::Duration {
    match r.spec.overlap {
        Overlap::Skip => chrono::Duration::zero(),
        _ => AHEAD,
    }
}

/// The task of `slot`; one fired ahead of its slot runs at the slot (`run_at`, which the
/// queue measures by the same clock as the scheduler).
fn task_of(record: &ScheduleRecord, slot: DateTime<Utc>, now: DateTime<Utc>) -> NewTask {
    let task = slot_task(record, slot);
    match slot > now {
        true => task.run_at(slot.into()),
        false => task,
    }
}

/// Watermarks are stored this long after the tick that moved them, so that writing them
/// does not compete with starting the tick's tasks. A crash before leaves an older
/// watermark: its slots are planned again after the restart and find their tasks by key.
const SAVE_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// What became of one slot a tick fired.
pub(super) enum Taken {
    /// Its task (new, or the one that already held its key).
    Fired(TaskId),
    /// Refused for good: counted and logged, not retried.
    Dropped,
    /// Failed for a passing reason: tried again.
    Failed,
}

/// What a tick does for one schedule.
pub(super) struct Job {
    /// The schedule as planned.
    pub record: ScheduleRecord,
    /// The slots to fire, oldest first.
    pub fire: Vec<DateTime<Utc>>,
    /// The newest due slot: the new watermark, unless a slot fails.
    pub newest: DateTime<Utc>,
}

impl SchedulerState {
    /// Fires what is due for every schedule, then re-arms.
    pub(super) async fn tick(&mut self, myself: &ActorRef<SchedulerMsg>) {
        let now = self.now();
        if self.lead(now) {
            self.fire_due(now, myself).await;
        }
        self.arm(myself);
    }

    /// True if this node fires now. On becoming the leader, slots before now count as
    /// passed while it did not run.
    fn lead(&mut self, now: DateTime<Utc>) -> bool {
        let leader = self.cron().leadership.is_leader();
        if leader && !self.leading {
            self.since = self.since.max(now);
        }
        self.leading = leader;
        leader
    }

    /// Arms one timer for the earliest due time of any schedule: at once if a slot is
    /// already due (a tick that took long), after [`RETRY`] if this node does not lead.
    pub(super) fn arm(&mut self, myself: &ActorRef<SchedulerMsg>) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        let next = {
            let book = self.cron().book.lock();
            book.values().filter_map(|r| self.due_at(r)).min()
        };
        let Some(next) = next else {
            return;
        };
        let now = self.now();
        let at = match next > now {
            true => next,
            false if self.leading => now,
            false => now + RETRY,
        };
        let delay = (at - now).to_std().unwrap_or_default();
        self.timer = Some(myself.send_after(delay, || SchedulerMsg::Tick));
    }

    /// When the schedule is next due: [`AHEAD`] of its next slot, or later if it waits for
    /// a retry.
    pub(super) fn due_at(&self, r: &ScheduleRecord) -> Option<DateTime<Utc>> {
        let next = self.next_slot(r)? - ahead(r);
        Some(
            self.retry_at
                .get(&r.spec.name)
                .map_or(next, |t| next.max(*t)),
        )
    }

    async fn fire_due(&mut self, now: DateTime<Utc>, myself: &ActorRef<SchedulerMsg>) {
        if let Some(epoch) = self.cron().leadership.epoch() {
            return self.fire_fenced(now, epoch).await;
        }
        let running = self.running_here();
        let jobs = self.plan_all(now, &running);
        if jobs.is_empty() {
            return;
        }
        let mut results = match submit_batch(&self.shared, tasks_of(&jobs, now)).await {
            Ok(results) => results.into_iter(),
            Err(e) => {
                tracing::warn!(schedules = jobs.len(), error = %e, "firing due slots failed; retrying shortly");
                for j in jobs {
                    self.retry_at.insert(j.record.spec.name, now + RETRY);
                }
                return;
            }
        };
        let records = jobs
            .into_iter()
            .map(|j| self.settle(j, &mut results, now))
            .collect();
        self.keep(records, myself);
    }

    /// The jobs of every schedule that has due slots, leaving out those waiting for a
    /// retry. `running`: the schedules whose last run still runs.
    pub(super) fn plan_all(&self, now: DateTime<Utc>, running: &HashSet<String>) -> Vec<Job> {
        let book = self.cron().book.lock();
        book.values()
            .filter(|r| !r.spec.paused)
            .filter(|r| self.retry_at.get(&r.spec.name).is_none_or(|t| *t <= now))
            .filter_map(|r| self.plan_one(r, now + ahead(r), running.contains(&r.spec.name)))
            .collect()
    }

    /// The schedules that skip overlapping runs and whose last run still runs here.
    fn running_here(&self) -> HashSet<String> {
        let book = self.cron().book.lock();
        book.values()
            .filter(|r| r.spec.overlap == Overlap::Skip)
            .filter(|r| self.still_running(r.last_task))
            .map(|r| r.spec.name.clone())
            .collect()
    }

    fn plan_one(&self, record: &ScheduleRecord, now: DateTime<Utc>, running: bool) -> Option<Job> {
        let rec = self.recurrences.get(&record.spec.name)?;
        let spec = &record.spec;
        let p = plan(
            rec,
            self.watermark(record),
            now,
            self.since,
            spec.catch_up,
            spec.catch_up_max,
        );
        let newest = p.newest?;
        if p.dropped > 0 {
            dropped("missed", p.dropped);
            tracing::warn!(schedule = %spec.name, slots = p.dropped, newest = %newest, policy = ?spec.catch_up, "missed slots dropped by the catch-up policy");
        }
        let mut fire = p.fire;
        if spec.overlap == Overlap::Skip && !fire.is_empty() {
            let keep = usize::from(!running);
            let skipped = fire.split_off(keep);
            dropped("overlap", skipped.len() as u64);
            for slot in skipped {
                tracing::info!(schedule = %spec.name, slot = %slot, "slot skipped: the previous run is still running");
            }
        }
        Some(Job {
            record: record.clone(),
            fire,
            newest,
        })
    }

    /// Takes the job's results from `results` (counting and logging each) and returns
    /// its record with the new watermark (see [`advance`]); a failed slot is retried.
    pub(super) fn settle(
        &mut self,
        job: Job,
        results: &mut impl Iterator<Item = Result<Receipt, SubmitError>>,
        now: DateTime<Utc>,
    ) -> ScheduleRecord {
        let name = job.record.spec.name.clone();
        let taken: Vec<Taken> = job
            .fire
            .iter()
            .zip(results)
            .map(|(slot, result)| self.take(&name, *slot, result, now))
            .collect();
        let mut record = job.record.clone();
        match advance(&mut record, &job, taken, now) {
            Some(_) => self.retry_at.insert(name, now + RETRY),
            None => self.retry_at.remove(&name),
        };
        record
    }

    /// Counts and logs the result of firing one slot.
    fn take(
        &mut self,
        name: &str,
        slot: DateTime<Utc>,
        result: Result<Receipt, SubmitError>,
        now: DateTime<Utc>,
    ) -> Taken {
        let taken = taken_of(&result);
        match (&result, &taken) {
            (Ok(receipt), _) => self.fired_one(name, slot, receipt, now),
            (Err(e), Taken::Failed) => {
                tracing::warn!(schedule = %name, slot = %slot, error = %e, "firing a slot failed; retrying shortly");
            }
            (Err(e), _) => {
                dropped("refused", 1);
                tracing::error!(schedule = %name, slot = %slot, error = %e, "slot dropped: its task was refused");
            }
        }
        taken
    }

    /// Records the lateness of a slot that created its task (not of a duplicate: a slot
    /// fired again after a failure or a restart).
    fn fired_one(&mut self, name: &str, slot: DateTime<Utc>, r: &Receipt, now: DateTime<Utc>) {
        tracing::debug!(schedule = %name, slot = %slot, task_id = %r.id, duplicate = r.duplicate, "slot fired");
        if r.duplicate {
            return;
        }
        let late = (now - slot).to_std().unwrap_or_default();
        // No schedule label: a removed schedule would leave its series behind forever.
        metrics::histogram!(crate::telemetry::names::CRON_LATENESS).record(late.as_secs_f64());
        self.fired += 1;
    }

    /// Puts the records in the book now, and arms a [`SchedulerMsg::Save`] to store them.
    fn keep(&mut self, records: Vec<ScheduleRecord>, myself: &ActorRef<SchedulerMsg>) {
        let shared = self.shared.clone();
        let mut book = shared.cron.book.lock();
        for r in records {
            book.insert(r.spec.name.clone(), r.clone());
            self.unsaved.insert(r.spec.name.clone(), r);
        }
        drop(book);
        if self.save_timer.is_none() && self.shared.journal.store().is_some() {
            self.save_timer = Some(myself.send_after(SAVE_AFTER, || SchedulerMsg::Save));
        }
    }

    /// Stores the unsaved records with one write. If it fails they stay in the book: their
    /// slots' tasks are durable already, and a slot fired again after a restart finds its
    /// task by its unique key.
    pub(super) async fn save_unsaved(&mut self) {
        self.save_timer = None;
        let records: Vec<ScheduleRecord> = self.unsaved.drain().map(|(_, r)| r).collect();
        let Some(store) = self.shared.journal.store().filter(|_| !records.is_empty()) else {
            return;
        };
        let n = records.len();
        if let Err(e) = store.put_schedules(records).await {
            tracing::warn!(schedules = n, error = %e, "storing schedule watermarks failed; slots fired again after a restart are deduplicated");
        }
    }
}

/// What became of one slot, by its submit's result (no effect: see `take`).
pub(super) fn taken_of(result: &Result<Receipt, SubmitError>) -> Taken {
    match result {
        Ok(receipt) => Taken::Fired(receipt.id),
        Err(e) if passing(e) => Taken::Failed,
        Err(_) => Taken::Dropped,
    }
}

/// Moves `record` past `job`'s slots as `taken` says: its last task is the last one
/// fired, and its watermark the newest due slot, or just before the first slot that
/// failed for a passing reason, so that it fires on the retry (that slot is returned).
pub(super) fn advance(
    record: &mut ScheduleRecord,
    job: &Job,
    taken: impl IntoIterator<Item = Taken>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut failed = None;
    for (slot, taken) in job.fire.iter().zip(taken) {
        match taken {
            Taken::Fired(id) => record.last_task = Some(id),
            Taken::Dropped => {}
            Taken::Failed => failed = failed.or(Some(*slot)),
        }
    }
    record.last_slot = Some(match failed {
        Some(slot) => slot - chrono::Duration::nanoseconds(1),
        None => job.newest,
    });
    record.updated_at = now;
    failed
}

/// The tasks of every job's slots, in order.
pub(super) fn tasks_of(jobs: &[Job], now: DateTime<Utc>) -> Vec<NewTask> {
    jobs.iter()
        .flat_map(|j| j.fire.iter().map(|slot| task_of(&j.record, *slot, now)))
        .collect()
}

/// True if a submit may succeed when tried again: the store failed, the queue was full,
/// or the system is stopping.
pub(super) fn passing(e: &SubmitError) -> bool {
    matches!(
        e,
        SubmitError::Store(_) | SubmitError::Overloaded { .. } | SubmitError::ShuttingDown
    )
}

/// Counts `n` slots that were not fired, by why. No schedule label: a removed schedule
/// would leave its series behind forever; the callers' log lines name the schedule.
fn dropped(reason: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!(crate::telemetry::names::CRON_SKIPPED, "reason" => reason).increment(n);
    }
}
