//! Cron: expressions with seconds, IANA time zones, and an explicit daylight-saving policy
//! per schedule.
//!
//! # Daylight saving, worked example
//!
//! In `America/New_York`, on 2025-03-09 clocks jump from 02:00 to 03:00 (there is no
//! 02:30), and on 2025-11-02 they fall back from 02:00 to 01:00 (01:30 happens twice).
//! For a schedule `0 30 2 * * *` (daily at 02:30) and `0 30 1 * * *` (daily at 01:30):
//!
//! | day | policy | fires at (local) | fires at (UTC) |
//! |---|---|---|---|
//! | 2025-03-09 | `gap = "shift"` (default) | 03:00 EDT, the first valid instant after 02:30 | 07:00 |
//! | 2025-03-09 | `gap = "skip"` | not at all that day | – |
//! | 2025-11-02 | `fold = "once"` (default) | 01:30 EDT, the first occurrence | 05:30 |
//! | 2025-11-02 | `fold = "twice"` | 01:30 EDT and 01:30 EST | 05:30 and 06:30 |
//!
//! With `shift`, several slots inside one gap (say every 15 minutes) fire once, at the end
//! of the gap. Zones with half-hour changes (`Australia/Lord_Howe`) work the same way.

pub(crate) mod clock;
mod expr;
mod field;
pub(crate) mod leader;
mod recurrence;
pub mod schedule;
mod shared;
#[cfg(test)]
mod tests;

pub use expr::{CronError, CronExpr};
pub use recurrence::{parse_zone, DstFold, DstGap, DstPolicy, Recurrence};
pub(crate) use shared::CronShared;
