//! The scheduler actor: keeps the schedules, arms a timer for the earliest slot, fires.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use ractor_cluster::RactorMessage;

use super::plan::plan;
use super::{
    Clock, Leadership, Overlap, ScheduleError, ScheduleInfo, ScheduleRecord, ScheduleSpec,
};
use crate::cron::Recurrence;
use crate::error::{SubmitError, ValidationError};
use crate::health::{HealthStatus, ServiceHealth};
use crate::runtime::Shared;
use crate::system::submit::submit;
use crate::system::Receipt;
use crate::task::TaskId;

/// What the scheduler shares with the system: the schedules (so a restarted scheduler
/// finds them), the clock and the leadership check.
pub(crate) struct CronShared {
    pub book: Mutex<BTreeMap<String, ScheduleRecord>>,
    pub clock: Arc<dyn Clock>,
    pub leadership: Arc<dyn Leadership>,
}

type Reply<T> = RpcReplyPort<Result<T, ScheduleError>>;

/// Messages of the scheduler.
#[derive(RactorMessage)]
pub(crate) enum SchedulerMsg {
    /// Adds or replaces a schedule.
    Put(Box<ScheduleSpec>, Reply<ScheduleInfo>),
    /// Removes a schedule.
    Remove(String, Reply<()>),
    /// Pauses (true) or resumes (false) a schedule.
    SetPaused(String, bool, Reply<ScheduleInfo>),
    /// Lists the schedules.
    List(RpcReplyPort<Vec<ScheduleInfo>>),
    /// The next `n` slots of a schedule.
    Upcoming(String, usize, Reply<Vec<DateTime<Utc>>>),
    /// Fires one slot by hand.
    Fire(String, DateTime<Utc>, Reply<Receipt>),
    /// The armed slot is due.
    Tick,
    /// Health check.
    Health(RpcReplyPort<ServiceHealth>),
}

/// The scheduler actor.
pub(crate) struct Scheduler;

type Timer = JoinHandle<Result<(), MessagingErr<SchedulerMsg>>>;

/// The scheduler's state.
pub(crate) struct SchedulerState {
    shared: Arc<Shared>,
    recurrences: HashMap<String, Recurrence>,
    timer: Option<Timer>,
    fired: u64,
}

/// A due slot whose firing failed is retried after this long.
const RETRY: chrono::Duration = chrono::Duration::seconds(1);

impl Actor for Scheduler {
    type Msg = SchedulerMsg;
    type State = SchedulerState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        _myself: ActorRef<SchedulerMsg>,
        shared: Arc<Shared>,
    ) -> Result<SchedulerState, ActorProcessingErr> {
        let mut state = SchedulerState {
            shared,
            recurrences: HashMap::new(),
            timer: None,
            fired: 0,
        };
        state.load().await?;
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        state.tick(&myself).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SchedulerMsg>,
        msg: SchedulerMsg,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SchedulerMsg::Put(spec, reply) => {
                let _ = reply.send(state.put(*spec).await);
                state.arm(&myself);
            }
            SchedulerMsg::Remove(name, reply) => {
                let _ = reply.send(state.remove(&name).await);
                state.arm(&myself);
            }
            SchedulerMsg::SetPaused(name, paused, reply) => {
                let _ = reply.send(state.set_paused(&name, paused).await);
                state.arm(&myself);
            }
            SchedulerMsg::List(reply) => {
                let _ = reply.send(state.list());
            }
            SchedulerMsg::Upcoming(name, n, reply) => {
                let _ = reply.send(state.upcoming(&name, n));
            }
            SchedulerMsg::Fire(name, slot, reply) => {
                let _ = reply.send(state.fire_by_hand(&name, slot).await);
            }
            SchedulerMsg::Tick => state.tick(&myself).await,
            SchedulerMsg::Health(reply) => {
                let _ = reply.send(state.health());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.timer.take() {
            t.abort();
        }
        Ok(())
    }
}

impl SchedulerState {
    fn cron(&self) -> &CronShared {
        &self.shared.cron
    }

    fn now(&self) -> DateTime<Utc> {
        self.cron().clock.now()
    }

    /// Fills the book from the store the first time; a restarted scheduler keeps it.
    async fn load(&mut self) -> Result<(), ScheduleError> {
        if self.cron().book.lock().is_empty() {
            if let Some(store) = self.shared.journal.store() {
                let stored = store.schedules().await?;
                let mut book = self.cron().book.lock();
                for r in stored {
                    book.insert(r.spec.name.clone(), r);
                }
            }
        }
        let book = self.cron().book.lock().clone();
        for (name, r) in book {
            match r.spec.recurrence() {
                Ok(rec) => {
                    self.recurrences.insert(name, rec);
                }
                Err(e) => {
                    tracing::error!(schedule = %name, error = %e, "stored schedule no longer parses; it will not fire")
                }
            }
        }
        Ok(())
    }

    fn record(&self, name: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.cron()
            .book
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| ScheduleError::NotFound(name.to_string()))
    }

    /// Stores a record durably, then in the book.
    async fn save(&self, record: ScheduleRecord) -> Result<(), ScheduleError> {
        if let Some(store) = self.shared.journal.store() {
            store.put_schedule(record.clone()).await?;
        }
        self.cron()
            .book
            .lock()
            .insert(record.spec.name.clone(), record);
        Ok(())
    }

    async fn put(&mut self, spec: ScheduleSpec) -> Result<ScheduleInfo, ScheduleError> {
        let rec = spec.validate()?;
        self.check_task(&spec)?;
        let now = self.now();
        let record = match self.record(&spec.name) {
            Ok(mut old) => {
                if old.spec.paused && !spec.paused {
                    old.last_slot = Some(old.last_slot.map_or(now, |s| s.max(now)));
                }
                ScheduleRecord {
                    spec,
                    updated_at: now,
                    ..old
                }
            }
            Err(_) => ScheduleRecord {
                spec,
                last_slot: None,
                last_task: None,
                created_at: now,
                updated_at: now,
            },
        };
        let name = record.spec.name.clone();
        self.save(record).await?;
        self.recurrences.insert(name.clone(), rec);
        self.info(&name)
    }

    /// The task kind and queue must exist, and the task must be valid.
    fn check_task(&self, spec: &ScheduleSpec) -> Result<(), ScheduleError> {
        let shared = &self.shared;
        spec.task.validate(&shared.limits)?;
        let Some(entry) = shared.handlers.get(&spec.task.kind) else {
            let why = format!("no handler is registered for kind {:?}", spec.task.kind);
            return Err(ValidationError::new("task.kind", why).into());
        };
        let queue = spec.task.queue.as_deref().unwrap_or(&entry.defaults.queue);
        if !shared.queues.contains_key(queue) {
            return Err(
                ValidationError::new("task.queue", format!("unknown queue {queue:?}")).into(),
            );
        }
        Ok(())
    }

    async fn remove(&mut self, name: &str) -> Result<(), ScheduleError> {
        self.record(name)?;
        if let Some(store) = self.shared.journal.store() {
            store.delete_schedule(name.to_string()).await?;
        }
        self.cron().book.lock().remove(name);
        self.recurrences.remove(name);
        Ok(())
    }

    async fn set_paused(
        &mut self,
        name: &str,
        paused: bool,
    ) -> Result<ScheduleInfo, ScheduleError> {
        let spec = ScheduleSpec {
            paused,
            ..self.record(name)?.spec
        };
        self.put(spec).await
    }

    fn info(&self, name: &str) -> Result<ScheduleInfo, ScheduleError> {
        let record = self.record(name)?;
        let next = self.next_slot(&record);
        Ok(ScheduleInfo { record, next })
    }

    fn list(&self) -> Vec<ScheduleInfo> {
        let names: Vec<String> = self.cron().book.lock().keys().cloned().collect();
        names.iter().filter_map(|n| self.info(n).ok()).collect()
    }

    fn upcoming(&self, name: &str, n: usize) -> Result<Vec<DateTime<Utc>>, ScheduleError> {
        let record = self.record(name)?;
        let rec = self
            .recurrences
            .get(name)
            .ok_or_else(|| ScheduleError::NotFound(name.to_string()))?;
        Ok(rec.upcoming(self.watermark(&record).max(self.now()), n))
    }

    fn watermark(&self, r: &ScheduleRecord) -> DateTime<Utc> {
        r.last_slot.unwrap_or(r.created_at)
    }

    /// The first slot after the watermark, unless paused.
    fn next_slot(&self, r: &ScheduleRecord) -> Option<DateTime<Utc>> {
        if r.spec.paused {
            return None;
        }
        self.recurrences
            .get(&r.spec.name)?
            .next_after(self.watermark(r))
    }

    /// Arms one timer for the earliest next slot of any schedule.
    fn arm(&mut self, myself: &ActorRef<SchedulerMsg>) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        let book = self.cron().book.lock().clone();
        let Some(next) = book.values().filter_map(|r| self.next_slot(r)).min() else {
            return;
        };
        let now = self.now();
        let at = if next <= now { now + RETRY } else { next };
        let delay = (at - now).to_std().unwrap_or_default();
        self.timer = Some(myself.send_after(delay, || SchedulerMsg::Tick));
    }

    /// Fires what is due for every schedule, then re-arms.
    async fn tick(&mut self, myself: &ActorRef<SchedulerMsg>) {
        let now = self.now();
        let leader = self.cron().leadership.is_leader();
        let names: Vec<String> = self.cron().book.lock().keys().cloned().collect();
        for name in names {
            if let Err(e) = self.run_due(&name, now, leader).await {
                tracing::warn!(schedule = %name, error = %e, "firing a schedule failed; retrying shortly");
            }
        }
        self.arm(myself);
    }

    async fn run_due(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        leader: bool,
    ) -> Result<(), ScheduleError> {
        let mut record = self.record(name)?;
        let Some(rec) = self.recurrences.get(name) else {
            return Ok(());
        };
        if record.spec.paused || !leader {
            return Ok(());
        }
        let p = plan(
            rec,
            self.watermark(&record),
            now,
            record.spec.catch_up,
            record.spec.catch_up_max,
        );
        let Some(newest) = p.newest else {
            return Ok(());
        };
        for slot in p.fire {
            if let Some(id) = self.fire(&record, slot, now).await? {
                record.last_task = Some(id);
            }
        }
        record.last_slot = Some(newest);
        record.updated_at = now;
        self.save(record).await
    }

    /// Fires one slot unless the overlap policy skips it. Returns the task.
    async fn fire(
        &mut self,
        record: &ScheduleRecord,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskId>, ScheduleError> {
        let name = &record.spec.name;
        if record.spec.overlap == Overlap::Skip && self.still_running(record.last_task) {
            metrics::counter!(crate::telemetry::names::CRON_SKIPPED).increment(1);
            tracing::info!(schedule = %name, slot = %slot, "slot skipped: the previous run is still running");
            return Ok(None);
        }
        let receipt = self.submit_slot(record, slot).await.map_err(|e| match e {
            SubmitError::Store(s) => ScheduleError::Store(s),
            other => ScheduleError::Invalid(ValidationError::new("task", other.to_string())),
        })?;
        let late = (now - slot).to_std().unwrap_or_default();
        metrics::histogram!(crate::telemetry::names::CRON_LATENESS).record(late.as_secs_f64());
        self.fired += 1;
        tracing::debug!(schedule = %name, slot = %slot, task_id = %receipt.id, duplicate = receipt.duplicate, "slot fired");
        Ok(Some(receipt.id))
    }

    async fn submit_slot(
        &self,
        record: &ScheduleRecord,
        slot: DateTime<Utc>,
    ) -> Result<Receipt, SubmitError> {
        let key = slot_key(&record.spec.name, slot);
        let mut task = record
            .spec
            .task
            .clone()
            .unique_key(key.clone())
            .correlation_id(key);
        if task.metadata.actor_id.is_none() {
            task = task.actor_id(format!("cron:{}", record.spec.name));
        }
        submit(&self.shared, task).await
    }

    fn still_running(&self, last: Option<TaskId>) -> bool {
        last.and_then(|id| self.shared.table.get(&id))
            .is_some_and(|c| !c.status.lock().state.is_terminal())
    }

    /// Fires `slot` of schedule `name` by hand. A slot fires at most once: firing it again
    /// returns its task as a duplicate.
    async fn fire_by_hand(
        &mut self,
        name: &str,
        slot: DateTime<Utc>,
    ) -> Result<Receipt, ScheduleError> {
        let record = self.record(name)?;
        let rec = self
            .recurrences
            .get(name)
            .ok_or_else(|| ScheduleError::NotFound(name.to_string()))?;
        if rec.next_after(slot - chrono::Duration::seconds(1)) != Some(slot) {
            let why = format!("{} is not a slot of schedule {name:?}", slot.to_rfc3339());
            return Err(ValidationError::new("slot", why).into());
        }
        self.submit_slot(&record, slot).await.map_err(|e| match e {
            SubmitError::Store(s) => ScheduleError::Store(s),
            other => ScheduleError::Invalid(ValidationError::new("task", other.to_string())),
        })
    }

    fn health(&self) -> ServiceHealth {
        let book = self.cron().book.lock().clone();
        let next = book.values().filter_map(|r| self.next_slot(r)).min();
        let leader = self.cron().leadership.is_leader();
        let detail = format!(
            "{} schedules, {} slots fired, leader {}, next {}",
            book.len(),
            self.fired,
            leader,
            next.map_or("none".into(), |t| t.to_rfc3339())
        );
        ServiceHealth::new("scheduler", HealthStatus::Healthy, detail)
    }
}

/// The unique key of a slot: `cron:{name}:{slot}`.
pub(crate) fn slot_key(name: &str, slot: DateTime<Utc>) -> String {
    format!(
        "cron:{name}:{}",
        slot.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}
