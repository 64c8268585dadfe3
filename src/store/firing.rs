//! Firing cron slots under a lease: the slots' tasks and the schedules' new watermarks,
//! written together in one transaction that first checks the lease.

use super::{LeaseFence, Write, WriteResult};
use crate::cron::schedule::ScheduleRecord;

/// One transaction of the cron leader: if the lease still matches `lease` (holder,
/// epoch, time left), create the slots' tasks and store each schedule whose version is
/// still the one it was read at; otherwise write nothing.
#[derive(Clone, Debug)]
pub struct Firing {
    /// The lease the leader fires under.
    pub lease: LeaseFence,
    /// The creates of the slots' tasks (each with its slot's unique key).
    pub writes: Vec<Write>,
    /// The schedules with their new watermarks; each `version` is the one read, compared
    /// and set (a schedule edited since is left alone).
    pub marks: Vec<ScheduleRecord>,
}

/// What a [`Firing`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    /// One result per write: `Done`, or `Duplicate` if the slot's key was taken (the
    /// slot had fired).
    pub results: Vec<WriteResult>,
    /// One per mark: its new version, or `None` if the schedule changed (or went) since
    /// it was read, and was left alone.
    pub versions: Vec<Option<u64>>,
}
