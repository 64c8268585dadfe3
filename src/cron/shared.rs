//! The schedules a system keeps in memory, with the clock and the leadership check: the
//! cron state every part of the system reads (the scheduler fires from it, a submit reads
//! its clock), kept outside the scheduler actor.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::clock::Clock;
use super::leader::Leadership;
use super::schedule::ScheduleRecord;

/// What the scheduler shares with the system: the schedules (so a restarted scheduler
/// finds them), the clock and the leadership check.
pub(crate) struct CronShared {
    pub book: Mutex<BTreeMap<String, ScheduleRecord>>,
    pub clock: Arc<dyn Clock>,
    pub leadership: Arc<dyn Leadership>,
}
