//! Firing as the holder of the cron lease, on a store several processes share: every
//! due slot's task and every schedule's new watermark in one transaction that first
//! checks the lease (holder, epoch, time left); a lease lost meanwhile writes nothing.
//! Whether a schedule that skips overlapping runs still runs is asked of the store (its
//! last run may run on any node).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::tick::{advance, taken_of, tasks_of, Job, RETRY};
use super::SchedulerState;
use crate::error::SubmitError;
use crate::runtime::submit::{Batch, Receipt};
use crate::scheduler::lease::CRON_LEASE;
use crate::scheduler::{Overlap, ScheduleRecord};
use crate::store::{Firing, LeaseFence, StoreError};
use crate::task::TaskId;

impl SchedulerState {
    /// Fires what is due under the lease of `epoch`.
    pub(super) async fn fire_fenced(&mut self, now: DateTime<Utc>, epoch: u64) {
        let store = self.shared.journal.store().cloned();
        let (Some(store), Some(holder)) = (store, self.shared.journal.owner()) else {
            return;
        };
        let running = self.running_in_store(now).await;
        let jobs = self.plan_all(now, &running);
        if jobs.is_empty() {
            return;
        }
        let batch = Batch::accept(&self.shared, tasks_of(&jobs, now)).await;
        let marks = marks(&jobs, batch.results(), now);
        let lease = LeaseFence {
            name: CRON_LEASE.into(),
            holder,
            epoch,
        };
        let firing = Firing {
            lease,
            writes: batch.writes(),
            marks,
        };
        match store.fire_slots(firing).await {
            Ok(fired) => {
                let results = batch.finish(Ok(fired.results)).await.unwrap_or_default();
                let mut results = results.into_iter();
                let mut stale = false;
                for (job, version) in jobs.into_iter().zip(fired.versions) {
                    let mut record = self.settle(job, &mut results, now);
                    match version {
                        Some(v) => {
                            record.version = v;
                            let name = record.spec.name.clone();
                            self.cron().book.lock().insert(name, record);
                        }
                        None => stale = true,
                    }
                }
                if stale {
                    // Edited (or removed) elsewhere since it was read: read them again.
                    self.refresh_or_warn().await;
                }
            }
            Err(e) => {
                batch.abandon();
                match &e {
                    StoreError::LeaseLost { .. } => {
                        tracing::warn!(error = %e, "not firing: the cron lease was lost")
                    }
                    _ => {
                        tracing::warn!(schedules = jobs.len(), error = %e, "firing due slots failed; retrying shortly")
                    }
                }
                for j in jobs {
                    self.retry_at.insert(j.record.spec.name, now + RETRY);
                }
            }
        }
    }

    /// The due schedules that skip overlapping runs and whose last run has not ended, by
    /// the store. A schedule whose last run cannot be read waits for a retry.
    async fn running_in_store(&mut self, now: DateTime<Utc>) -> HashSet<String> {
        let Some(store) = self.shared.journal.store().cloned() else {
            return HashSet::new();
        };
        let asks: Vec<(String, TaskId)> = {
            let book = self.cron().book.lock();
            book.values()
                .filter(|r| r.spec.overlap == Overlap::Skip && !r.spec.paused)
                .filter(|r| self.due_at(r).is_some_and(|at| at <= now))
                .filter_map(|r| r.last_task.map(|id| (r.spec.name.clone(), id)))
                .collect()
        };
        let reads = join_all(asks.iter().map(|(_, id)| store.get(*id))).await;
        let mut running = HashSet::new();
        for ((name, _), read) in asks.into_iter().zip(reads) {
            match read {
                Ok(Some(r)) if !r.life.state.is_terminal() => {
                    running.insert(name);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(schedule = %name, error = %e, "could not ask whether the last run still runs; trying again shortly");
                    self.retry_at.insert(name, now + RETRY);
                }
            }
        }
        running
    }
}

/// Each job's record with the watermark its slots' results give ([`advance`]), as
/// [`settle`](SchedulerState::settle) will store it, without its counting and logging.
fn marks(
    jobs: &[Job],
    results: &[Result<Receipt, SubmitError>],
    now: DateTime<Utc>,
) -> Vec<ScheduleRecord> {
    let mut results = results.iter();
    jobs.iter()
        .map(|job| {
            let mut record = job.record.clone();
            let taken: Vec<_> = results
                .by_ref()
                .take(job.fire.len())
                .map(taken_of)
                .collect();
            advance(&mut record, job, taken, now);
            record
        })
        .collect()
}
