//! The scheduler actor: keeps the schedules, arms a timer for the earliest slot, fires.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use ractor_cluster::RactorMessage;

use super::{ScheduleError, ScheduleInfo, ScheduleRecord, ScheduleSpec};
use crate::cron::{CronShared, Recurrence};
use crate::error::{SubmitError, ValidationError};
use crate::health::{HealthStatus, ServiceHealth};
use crate::runtime::submit::{submit, Receipt};
use crate::runtime::Shared;
use crate::task::{NewTask, TaskId};

mod fenced;
mod synced;
mod tick;

pub(crate) use synced::REFRESH;

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
    /// Fires one slot by hand; with an actor, the task is created by that actor (its
    /// `created` event names who fired the slot).
    Fire(String, DateTime<Utc>, Option<String>, Reply<Receipt>),
    /// The armed slot is due.
    Tick,
    /// Stores the watermarks that ticks moved since the last save.
    Save,
    /// This process just became the cron leader: read the schedules, then fire.
    Lead,
    /// Read the schedules from a store several processes share.
    Refresh,
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
    /// Slots after this became due while this node ran and led: a slow tick never drops
    /// them. Slots at or before it passed while it did not, and follow the catch-up policy.
    since: DateTime<Utc>,
    /// True if this node led at the last tick.
    leading: bool,
    /// Schedules whose last firing failed, and when to try them again.
    retry_at: HashMap<String, DateTime<Utc>>,
    /// Records whose watermark moved and is not stored yet, by name.
    unsaved: HashMap<String, ScheduleRecord>,
    /// The timer of the next [`SchedulerMsg::Save`], while one is armed.
    save_timer: Option<Timer>,
    /// Sends [`SchedulerMsg::Refresh`] on a store several processes share.
    refresher: Option<ractor::concurrency::JoinHandle<()>>,
}

impl Actor for Scheduler {
    type Msg = SchedulerMsg;
    type State = SchedulerState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        _myself: ActorRef<SchedulerMsg>,
        shared: Arc<Shared>,
    ) -> Result<SchedulerState, ActorProcessingErr> {
        let since = shared.cron.clock.now();
        let mut state = SchedulerState {
            shared,
            recurrences: HashMap::new(),
            timer: None,
            fired: 0,
            since,
            leading: false,
            retry_at: HashMap::new(),
            unsaved: HashMap::new(),
            save_timer: None,
            refresher: None,
        };
        state.load().await?;
        Ok(state)
    }

    async fn post_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        if state.synced() {
            let every = REFRESH;
            state.refresher = Some(myself.send_interval(every, || SchedulerMsg::Refresh));
        }
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
            SchedulerMsg::Fire(name, slot, actor, reply) => {
                let _ = reply.send(state.fire_by_hand(&name, slot, actor).await);
            }
            SchedulerMsg::Tick => state.tick(&myself).await,
            SchedulerMsg::Save => state.save_unsaved().await,
            SchedulerMsg::Lead => {
                state.refresh_or_warn().await;
                state.tick(&myself).await;
            }
            SchedulerMsg::Refresh => {
                state.refresh_or_warn().await;
                state.arm(&myself);
            }
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
        if let Some(t) = state.refresher.take() {
            t.abort();
        }
        state.save_unsaved().await;
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
        for (name, r) in &book {
            self.parse(name, r);
        }
        Ok(())
    }

    /// Reads the schedule's recurrence; one that no longer parses will not fire.
    fn parse(&mut self, name: &str, r: &ScheduleRecord) {
        match r.spec.recurrence() {
            Ok(rec) => {
                self.recurrences.insert(name.to_string(), rec);
            }
            Err(e) => {
                self.recurrences.remove(name);
                tracing::error!(schedule = %name, error = %e, "stored schedule no longer parses; it will not fire")
            }
        }
    }

    /// [`refresh`](Self::refresh)es, logging a failure (the book stays as it was).
    async fn refresh_or_warn(&mut self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "could not read the schedules from the store");
        }
    }

    fn record(&self, name: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.cron()
            .book
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| ScheduleError::NotFound(name.to_string()))
    }

    /// Stores a record durably, then in the book. It replaces a watermark not yet stored.
    async fn save(&mut self, record: ScheduleRecord) -> Result<(), ScheduleError> {
        self.unsaved.remove(&record.spec.name);
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
        let name = spec.name.clone();
        if self.synced() {
            let edit = |old: Option<ScheduleRecord>| edited(old, spec.clone(), &rec, now);
            self.edit_synced(&name, edit).await?;
        } else {
            let record = edited(self.record(&name).ok(), spec, &rec, now)?;
            self.save(record).await?;
        }
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
        if self.synced() {
            // Another process may have added it: the store decides whether it exists.
            self.refresh().await?;
        }
        self.record(name)?;
        if let Some(store) = self.shared.journal.store() {
            store.delete_schedule(name.to_string()).await?;
        }
        self.cron().book.lock().remove(name);
        self.recurrences.remove(name);
        self.retry_at.remove(name);
        self.unsaved.remove(name);
        Ok(())
    }

    async fn set_paused(
        &mut self,
        name: &str,
        paused: bool,
    ) -> Result<ScheduleInfo, ScheduleError> {
        if self.synced() {
            self.refresh().await?;
        }
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

    fn still_running(&self, last: Option<TaskId>) -> bool {
        last.and_then(|id| self.shared.table.get(&id))
            .is_some_and(|c| !c.status.lock().state.is_terminal())
    }

    /// Fires `slot` of schedule `name` by hand, created by `actor` if given. A slot fires
    /// at most once: firing it again returns its task as a duplicate.
    async fn fire_by_hand(
        &mut self,
        name: &str,
        slot: DateTime<Utc>,
        actor: Option<String>,
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
        let task = match actor {
            Some(actor) => slot_task(&record, slot).actor_id(actor),
            None => slot_task(&record, slot),
        };
        submit(&self.shared, task).await.map_err(|e| match e {
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

/// The record `spec` makes of `old` (if any) at `now`: a new expression or zone must
/// fire after now; a resumed schedule skips the slots it was paused through.
fn edited(
    old: Option<ScheduleRecord>,
    spec: ScheduleSpec,
    rec: &Recurrence,
    now: DateTime<Utc>,
) -> Result<ScheduleRecord, ScheduleError> {
    let same =
        |o: &ScheduleRecord| (&o.spec.cron, &o.spec.timezone) == (&spec.cron, &spec.timezone);
    if !old.as_ref().is_some_and(same) {
        rec.check_fires_after(now)?;
    }
    Ok(match old {
        Some(mut old) => {
            if old.spec.paused && !spec.paused {
                old.last_slot = Some(old.last_slot.map_or(now, |s| s.max(now)));
            }
            ScheduleRecord {
                spec,
                updated_at: now,
                ..old
            }
        }
        None => ScheduleRecord {
            spec,
            last_slot: None,
            last_task: None,
            created_at: now,
            updated_at: now,
            version: 0,
        },
    })
}

/// The unique key of a slot: `cron:{name}:{slot}`.
pub(crate) fn slot_key(name: &str, slot: DateTime<Utc>) -> String {
    format!(
        "cron:{name}:{}",
        slot.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// The task of one slot: the schedule's task with the slot's unique key as its key and
/// correlation id, created by `cron:{name}` unless the task names its actor.
pub(crate) fn slot_task(record: &ScheduleRecord, slot: DateTime<Utc>) -> NewTask {
    let key = slot_key(&record.spec.name, slot);
    let task = record
        .spec
        .task
        .clone()
        .unique_key(key.clone())
        .correlation_id(key);
    if task.metadata.actor_id.is_some() {
        return task;
    }
    task.actor_id(format!("cron:{}", record.spec.name))
}
