//! What a schedule is: its spec (as users write it) and its persisted record. Plain data
//! below the store and the scheduler, which both use it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CronError, DstPolicy, Recurrence};
use crate::task::{NewTask, TaskId, ValidationError};

/// What to do with slots that passed while the scheduler was not running (or more than a
/// minute late).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Fire none of them.
    Skip,
    /// Fire once, for the newest of them (the default).
    #[default]
    Latest,
    /// Fire every one of them, oldest first, at most `catch_up_max`.
    All,
}

/// What to do with a slot while the previous run is still going.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Fire anyway (the default).
    #[default]
    Allow,
    /// Skip the slot.
    Skip,
}

fn utc() -> String {
    "UTC".into()
}

fn hundred() -> u32 {
    100
}

/// A schedule as users write it.
///
/// ```
/// use taskmesh::scheduler::{CatchUp, ScheduleSpec};
/// use taskmesh::NewTask;
/// let nightly = ScheduleSpec::new("nightly-report", "0 30 2 * * *", NewTask::new("report", serde_json::json!({})))
///     .timezone("Europe/Berlin")
///     .catch_up(CatchUp::All);
/// assert!(nightly.recurrence().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[must_use]
pub struct ScheduleSpec {
    /// Unique name: 1 to 128 of `[A-Za-z0-9._:-]`.
    pub name: String,
    /// Cron expression with seconds, or an alias such as `@daily`.
    pub cron: String,
    /// IANA time zone (default UTC).
    #[serde(default = "utc")]
    pub timezone: String,
    /// The task each slot creates. Its unique key is set by the scheduler.
    pub task: NewTask,
    /// Daylight-saving policy.
    #[serde(default)]
    pub dst: DstPolicy,
    /// Missed slots.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// The most missed slots `CatchUp::All` fires (default 100).
    #[serde(default = "hundred")]
    pub catch_up_max: u32,
    /// A slot while the previous run still runs.
    #[serde(default)]
    pub overlap: Overlap,
    /// Paused schedules do not fire; slots passed while paused are skipped.
    #[serde(default)]
    pub paused: bool,
}

impl ScheduleSpec {
    /// A schedule `name` firing `task` on `cron`, in UTC, with the default policies.
    pub fn new(name: impl Into<String>, cron: impl Into<String>, task: NewTask) -> Self {
        Self {
            name: name.into(),
            cron: cron.into(),
            timezone: utc(),
            task,
            dst: DstPolicy::default(),
            catch_up: CatchUp::default(),
            catch_up_max: hundred(),
            overlap: Overlap::default(),
            paused: false,
        }
    }
    /// Sets the time zone.
    pub fn timezone(mut self, zone: impl Into<String>) -> Self {
        self.timezone = zone.into();
        self
    }
    /// Sets the daylight-saving policy.
    pub fn dst(mut self, dst: DstPolicy) -> Self {
        self.dst = dst;
        self
    }
    /// Sets the catch-up policy.
    pub fn catch_up(mut self, policy: CatchUp) -> Self {
        self.catch_up = policy;
        self
    }
    /// Sets the bound of `CatchUp::All`.
    pub fn catch_up_max(mut self, max: u32) -> Self {
        self.catch_up_max = max;
        self
    }
    /// Sets the overlap policy.
    pub fn overlap(mut self, policy: Overlap) -> Self {
        self.overlap = policy;
        self
    }
    /// Creates the schedule paused.
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// The recurrence, or an error naming the wrong field.
    pub fn recurrence(&self) -> Result<Recurrence, SpecError> {
        Ok(Recurrence::new(&self.cron, &self.timezone, self.dst)?)
    }

    /// Checks what does not depend on the system: name, expression, zone, task fields.
    pub fn validate(&self) -> Result<Recurrence, SpecError> {
        let ok = (1..=128).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
        if !ok {
            let why = format!("expected 1-128 of [A-Za-z0-9._:-], got {:?}", self.name);
            return Err(ValidationError::new("name", why).into());
        }
        if self.task.unique_key.is_some() || self.task.run_at.is_some() {
            let why =
                "must not be set: the scheduler sets the unique key and the time of each slot";
            return Err(ValidationError::new("task.unique_key/run_at", why).into());
        }
        if self.catch_up_max == 0 {
            return Err(ValidationError::new("catch_up_max", "expected at least 1, got 0").into());
        }
        self.recurrence()
    }
}

/// A schedule as stored: its spec and what it last did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// The spec.
    pub spec: ScheduleSpec,
    /// The newest slot handled (fired or skipped); slots after it are due.
    pub last_slot: Option<DateTime<Utc>>,
    /// The task of the last fired slot.
    pub last_task: Option<TaskId>,
    /// When the schedule was added; no slot before it fires.
    pub created_at: DateTime<Utc>,
    /// When the spec or state last changed.
    pub updated_at: DateTime<Utc>,
    /// Changes with every write of the record (on a store several processes share, every
    /// process's write): a write made against an older version is refused, so an edit
    /// and the cron leader's watermark never overwrite each other. Zero if never stored.
    #[serde(default)]
    pub version: u64,
}

/// A schedule with its next fire time, as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// The stored schedule.
    #[serde(flatten)]
    pub record: ScheduleRecord,
    /// The next slot, unless paused or exhausted.
    pub next: Option<DateTime<Utc>>,
}

/// Why a schedule's spec is refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The expression or time zone is invalid.
    #[error(transparent)]
    Cron(#[from] CronError),
}
