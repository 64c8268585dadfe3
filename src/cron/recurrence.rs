//! When a schedule fires: a cron expression read on a time zone's wall clock, with an
//! explicit policy for the local times that daylight saving removes or repeats.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{CronError, CronExpr};

/// A slot whose local time does not exist (clocks spring forward).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DstGap {
    /// Do not fire for it.
    Skip,
    /// Fire at the first valid instant after it: the end of the gap (the default). Several
    /// slots in one gap fire once, at the end of the gap.
    #[default]
    Shift,
}

/// A slot whose local time happens twice (clocks fall back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DstFold {
    /// Fire at the first occurrence only (the default).
    #[default]
    Once,
    /// Fire at both occurrences.
    Twice,
}

/// The daylight-saving policy of one schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DstPolicy {
    /// Local times that do not exist.
    #[serde(default)]
    pub gap: DstGap,
    /// Local times that happen twice.
    #[serde(default)]
    pub fold: DstFold,
}

/// A cron expression on a time zone's wall clock with a daylight-saving policy.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use taskmesh::cron::{DstPolicy, Recurrence};
///
/// let r = Recurrence::new("0 30 2 * * *", "America/New_York", DstPolicy::default()).unwrap();
/// // 2025-03-09: clocks jump from 02:00 to 03:00, so 02:30 does not exist that day.
/// let before = Utc.with_ymd_and_hms(2025, 3, 9, 0, 0, 0).unwrap();
/// // The default policy shifts the slot to 03:00 EDT, the first valid instant after it.
/// assert_eq!(r.next_after(before), Some(Utc.with_ymd_and_hms(2025, 3, 9, 7, 0, 0).unwrap()));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Recurrence {
    expr: CronExpr,
    zone: Tz,
    dst: DstPolicy,
}

/// Offsets never move by more than this around a daylight-saving change.
const WINDOW: Duration = Duration::hours(3);

/// Gives up looking for the next slot after this many candidates.
const MAX_CANDIDATES: usize = 2_000_000;

impl Recurrence {
    /// Parses `expr` and the IANA `zone`.
    pub fn new(expr: &str, zone: &str, dst: DstPolicy) -> Result<Self, CronError> {
        Ok(Self {
            expr: expr.parse()?,
            zone: parse_zone(zone)?,
            dst,
        })
    }

    /// The expression.
    pub fn expr(&self) -> &CronExpr {
        &self.expr
    }

    /// The time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The daylight-saving policy.
    pub fn dst(&self) -> DstPolicy {
        self.dst
    }

    /// Refuses a recurrence with no slot after `now` (a year field in the past), with an
    /// error that says so.
    pub fn check_fires_after(&self, now: DateTime<Utc>) -> Result<(), CronError> {
        if self.next_after(now).is_some() {
            return Ok(());
        }
        self.expr
            .check_fires_after(Utc.from_utc_datetime(&self.local(now)))?;
        Err(CronError::NeverFires {
            expr: self.expr.to_string(),
            reason: format!(
                "none of its slots after now ({}) exists in {} under the daylight-saving policy",
                now.to_rfc3339(),
                self.zone
            ),
        })
    }

    /// The first slot strictly after `after`, or `None` if there is none (e.g. a year
    /// field in the past).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local_after = self.local(after);
        let start = if self.near_change(after) {
            local_after - WINDOW
        } else {
            local_after
        };
        let mut best: Option<DateTime<Utc>> = None;
        for n in self.wall_clock_after(start).take(MAX_CANDIDATES) {
            if let Some(b) = best {
                if !self.near_change(b) || n > self.local(b) + WINDOW {
                    return best;
                }
            }
            for at in self.instants(n) {
                if at > after && best.is_none_or(|b| at < b) {
                    best = Some(at);
                }
            }
        }
        best
    }

    /// The next `n` slots after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut t = after;
        while out.len() < n {
            let Some(next) = self.next_after(t) else {
                break;
            };
            out.push(next);
            t = next;
        }
        out
    }

    /// Slots in `(from, to]`, oldest first, at most `max` of them (the newest `max`).
    pub fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = std::collections::VecDeque::new();
        let mut t = from;
        while let Some(next) = self.next_after(t).filter(|n| *n <= to) {
            out.push_back(next);
            if out.len() > max {
                out.pop_front();
            }
            t = next;
        }
        out.into()
    }

    /// The instants of wall-clock time `n` under the policy.
    fn instants(&self, n: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match self.zone.from_local_datetime(&n) {
            LocalResult::Single(t) => vec![t.to_utc()],
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.to_utc().min(b.to_utc()), a.to_utc().max(b.to_utc()));
                match self.dst.fold {
                    DstFold::Once => vec![a],
                    DstFold::Twice => vec![a, b],
                }
            }
            LocalResult::None => match self.dst.gap {
                DstGap::Skip => vec![],
                DstGap::Shift => self.gap_end(n).into_iter().collect(),
            },
        }
    }

    /// The first valid instant after wall-clock time `n`, which falls in a gap.
    fn gap_end(&self, n: NaiveDateTime) -> Option<DateTime<Utc>> {
        let valid = |m: NaiveDateTime| {
            self.zone
                .from_local_datetime(&m)
                .earliest()
                .map(|t| t.to_utc())
        };
        let minute = (1..=48 * 60)
            .map(|k| n + Duration::minutes(k))
            .find(|m| valid(*m).is_some())?;
        let first = (1..60)
            .map(|s| minute - Duration::seconds(s))
            .take_while(|m| valid(*m).is_some())
            .last()
            .unwrap_or(minute);
        valid(first)
    }

    /// True if the zone's offset changes within `WINDOW` of `t`.
    fn near_change(&self, t: DateTime<Utc>) -> bool {
        let offset = |t: DateTime<Utc>| self.zone.offset_from_utc_datetime(&t.naive_utc()).fix();
        offset(t - WINDOW) != offset(t + WINDOW)
    }

    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.zone).naive_local()
    }

    /// Wall-clock times matching the expression, strictly after `start`, in order. Wall
    /// clock times are enumerated as if they were UTC, which has no gaps or folds.
    /// Borrows the schedule: `after_owned` would clone it for every slot computed.
    fn wall_clock_after(&self, start: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
        self.expr
            .schedule
            .after(&Utc.from_utc_datetime(&start))
            .map(|t| t.naive_utc())
    }
}

/// An IANA time zone by name.
pub fn parse_zone(name: &str) -> Result<Tz, CronError> {
    Tz::from_str(name).map_err(|_| CronError::Zone(name.to_string()))
}
