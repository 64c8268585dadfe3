//! The schedule API of the handle.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};

use super::{Receipt, TaskSystem};
use crate::scheduler::{ScheduleError, ScheduleInfo, ScheduleSpec, SchedulerMsg};

/// How long a schedule call may take (it may wait for the store).
const CALL: Duration = Duration::from_secs(30);

impl TaskSystem {
    /// Adds a schedule, or replaces the one with the same name (keeping its watermark, so
    /// no slot fires twice). Errors name the wrong field: the expression, the zone, the
    /// task's kind or queue.
    pub async fn put_schedule(&self, spec: ScheduleSpec) -> Result<ScheduleInfo, ScheduleError> {
        self.ask(|r| SchedulerMsg::Put(Box::new(spec), r)).await?
    }

    /// Removes a schedule. Tasks it already created are not touched.
    pub async fn remove_schedule(&self, name: &str) -> Result<(), ScheduleError> {
        let name = name.to_string();
        self.ask(|r| SchedulerMsg::Remove(name, r)).await?
    }

    /// Pauses a schedule: it fires nothing until resumed.
    pub async fn pause_schedule(&self, name: &str) -> Result<ScheduleInfo, ScheduleError> {
        let name = name.to_string();
        self.ask(|r| SchedulerMsg::SetPaused(name, true, r)).await?
    }

    /// Resumes a schedule. Slots that passed while it was paused are skipped.
    pub async fn resume_schedule(&self, name: &str) -> Result<ScheduleInfo, ScheduleError> {
        let name = name.to_string();
        self.ask(|r| SchedulerMsg::SetPaused(name, false, r))
            .await?
    }

    /// Every schedule with its next fire time, by name.
    pub async fn schedules(&self) -> Result<Vec<ScheduleInfo>, ScheduleError> {
        self.ask(SchedulerMsg::List).await
    }

    /// One schedule.
    pub async fn schedule(&self, name: &str) -> Result<ScheduleInfo, ScheduleError> {
        let all = self.schedules().await?;
        all.into_iter()
            .find(|s| s.record.spec.name == name)
            .ok_or_else(|| ScheduleError::NotFound(name.to_string()))
    }

    /// The next `n` fire times of a schedule.
    pub async fn next_fires(
        &self,
        name: &str,
        n: usize,
    ) -> Result<Vec<DateTime<Utc>>, ScheduleError> {
        let name = name.to_string();
        self.ask(|r| SchedulerMsg::Upcoming(name, n, r)).await?
    }

    /// Fires one slot of a schedule by hand (e.g. to re-run a missed slot). A slot fires
    /// at most once: firing one that already fired returns its task as a duplicate.
    pub async fn fire_schedule(
        &self,
        name: &str,
        slot: DateTime<Utc>,
    ) -> Result<Receipt, ScheduleError> {
        let name = name.to_string();
        self.ask(|r| SchedulerMsg::Fire(name, slot, None, r))
            .await?
    }

    /// [`TaskSystem::fire_schedule`] on behalf of `actor` (a user, a dashboard session):
    /// the slot's task is created by `actor`, so its `created` event says who fired it.
    /// Its unique key is still the slot's, so the slot fires at most once.
    pub async fn fire_schedule_by(
        &self,
        name: &str,
        slot: DateTime<Utc>,
        actor: &str,
    ) -> Result<Receipt, ScheduleError> {
        let (name, actor) = (name.to_string(), actor.to_string());
        self.ask(|r| SchedulerMsg::Fire(name, slot, Some(actor), r))
            .await?
    }

    async fn ask<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> SchedulerMsg,
    ) -> Result<T, ScheduleError> {
        let name = self.shared.namespace.actor_name("scheduler");
        let actor = ActorRef::<SchedulerMsg>::where_is(name).ok_or(ScheduleError::Unavailable)?;
        match actor.call(msg, Some(CALL)).await {
            Ok(CallResult::Success(v)) => Ok(v),
            _ => Err(ScheduleError::Unavailable),
        }
    }
}
