//! Cron schedules: persisted, managed at runtime, and fired exactly once per slot.
//!
//! - A schedule's slots come from its [`crate::cron::Recurrence`] (expression, time zone,
//!   daylight-saving policy).
//! - Firing a slot submits the schedule's task with the unique key
//!   `cron:{name}:{slot as RFC 3339}`. The store enforces the key, so a slot fired twice
//!   (a restart, a double timer, two leaders) still creates one task.
//! - The scheduler arms one timer for the earliest next slot, computed from the slots
//!   rather than by polling, and fires only while [`Leadership::is_leader`] holds. Each
//!   tick fires every due slot of every schedule with one store transaction, then stores
//!   the watermarks with one more, so a thousand every-second schedules keep up.
//! - A slot that came due while the scheduler ran always fires, however late the tick;
//!   a slot not fired (overlap, missed, refused) is counted in
//!   `taskmesh_cron_skipped_total` with its reason and logged.
//! - Each schedule keeps a watermark (the newest slot handled). Slots after it that passed
//!   while the system was down are handled by the schedule's [`CatchUp`] policy.

mod actor;
pub(crate) mod keeper;
pub(crate) mod lease;
mod plan;
mod spec;

pub use crate::cron::clock::{Clock, SystemClock, TokioClock};
pub use crate::cron::leader::{Leadership, SingleNode};
pub use crate::cron::schedule::{
    CatchUp, Overlap, ScheduleInfo, ScheduleRecord, ScheduleSpec, SpecError,
};
pub(crate) use actor::{Scheduler, SchedulerMsg};
pub use lease::{LeaseConfig, LeaseLeader};
pub use spec::ScheduleError;
