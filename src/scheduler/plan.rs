//! Which slots to fire now: a pure function of the schedule, its watermark and the time.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use super::CatchUp;
use crate::cron::Recurrence;

/// A slot more than this late counts as missed, and the catch-up policy decides it.
pub(crate) const MISFIRE_GRACE: Duration = Duration::seconds(60);

/// The slots due in `(watermark, now]`, and which of them fire.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Fire these, oldest first.
    pub fire: Vec<DateTime<Utc>>,
    /// The newest due slot: the new watermark.
    pub newest: Option<DateTime<Utc>>,
    /// Missed slots the catch-up policy does not fire: dropped, to be counted and logged.
    pub dropped: u64,
}

/// Splits the due slots in two:
///
/// - Late slots became due while the scheduler ran (after `since`) and are at most
///   [`MISFIRE_GRACE`] late: a busy scheduler is behind on them. They all fire, whatever
///   the policy, so a slow tick never drops a slot.
/// - Missed slots passed while the scheduler was not running (at or before `since`), or
///   more than [`MISFIRE_GRACE`] ago. The catch-up policy decides them:
///   - `Skip`: only the newest fires, and only if it is at most [`MISFIRE_GRACE`] late
///     and no late slot fires;
///   - `Latest`: the newest fires, however late, unless a late slot fires;
///   - `All`: every one fires, oldest first, the newest `max` of them.
pub(crate) fn plan(
    r: &Recurrence,
    watermark: DateTime<Utc>,
    now: DateTime<Utc>,
    since: DateTime<Utc>,
    policy: CatchUp,
    max: u32,
) -> Plan {
    let keep = if policy == CatchUp::All {
        max.max(1) as usize
    } else {
        1
    };
    let due = Due::between(
        r,
        watermark,
        now,
        |s| s > since && now - s <= MISFIRE_GRACE,
        keep,
    );
    let newest = due.late.last().or(due.missed.back()).copied();
    let newest_missed = due.missed.back().copied().filter(|_| due.late.is_empty());
    let mut fire: Vec<DateTime<Utc>> = match policy {
        CatchUp::All => due.missed.into(),
        CatchUp::Latest => newest_missed.into_iter().collect(),
        CatchUp::Skip => newest_missed
            .filter(|s| now - *s <= MISFIRE_GRACE)
            .into_iter()
            .collect(),
    };
    let dropped = due.missed_count - fire.len() as u64;
    fire.extend(due.late);
    Plan {
        fire,
        newest,
        dropped,
    }
}

/// The due slots of one schedule, split into late and missed.
struct Due {
    /// Every late slot, oldest first.
    late: Vec<DateTime<Utc>>,
    /// The newest `keep` missed slots, oldest first.
    missed: VecDeque<DateTime<Utc>>,
    /// How many slots were missed in all.
    missed_count: u64,
}

impl Due {
    fn between(
        r: &Recurrence,
        watermark: DateTime<Utc>,
        now: DateTime<Utc>,
        is_late: impl Fn(DateTime<Utc>) -> bool,
        keep: usize,
    ) -> Self {
        let mut due = Self {
            late: vec![],
            missed: VecDeque::new(),
            missed_count: 0,
        };
        let mut t = watermark;
        while let Some(slot) = r.next_after(t).filter(|n| *n <= now) {
            if is_late(slot) {
                due.late.push(slot);
            } else {
                due.missed_count += 1;
                due.missed.push_back(slot);
                if due.missed.len() > keep {
                    due.missed.pop_front();
                }
            }
            t = slot;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::DstPolicy;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, h, m, s).unwrap()
    }

    fn every_minute() -> Recurrence {
        Recurrence::new("0 * * * * *", "UTC", DstPolicy::default()).unwrap()
    }

    #[test]
    fn a_slot_just_due_fires_under_every_policy() {
        for policy in [CatchUp::Skip, CatchUp::Latest, CatchUp::All] {
            let p = plan(
                &every_minute(),
                t(0, 0, 30),
                t(0, 1, 0),
                t(0, 0, 30),
                policy,
                10,
            );
            let want = Plan {
                fire: vec![t(0, 1, 0)],
                newest: Some(t(0, 1, 0)),
                dropped: 0,
            };
            assert_eq!(p, want, "{policy:?}");
        }
    }

    #[test]
    fn every_slot_a_running_scheduler_is_behind_on_fires_under_every_policy() {
        let every_second = Recurrence::new("* * * * * *", "UTC", DstPolicy::default()).unwrap();
        let now = t(0, 0, 3) + Duration::milliseconds(500);
        for policy in [CatchUp::Skip, CatchUp::Latest, CatchUp::All] {
            let p = plan(&every_second, t(0, 0, 0), now, t(0, 0, 0), policy, 1);
            let want = Plan {
                fire: vec![t(0, 0, 1), t(0, 0, 2), t(0, 0, 3)],
                newest: Some(t(0, 0, 3)),
                dropped: 0,
            };
            assert_eq!(p, want, "{policy:?}");
        }
    }

    #[test]
    fn slots_a_running_scheduler_is_more_than_the_grace_behind_on_follow_the_policy() {
        let ten = Recurrence::new("*/10 * * * * *", "UTC", DstPolicy::default()).unwrap();
        let (from, now) = (t(0, 0, 0), t(0, 1, 30));
        let late: Vec<_> = (3..=9)
            .map(|k| t(0, 0, 0) + Duration::seconds(10 * k))
            .collect();
        let latest = plan(&ten, from, now, from, CatchUp::Latest, 10);
        assert_eq!(latest.fire, late, "00:30 is 60 s late, in the grace");
        assert_eq!(latest.dropped, 2, "00:10 and 00:20 are dropped and counted");
        let all = plan(&ten, from, now, from, CatchUp::All, 10);
        assert_eq!((all.fire.len(), all.dropped), (9, 0));
        assert_eq!(all.fire[..2], [t(0, 0, 10), t(0, 0, 20)]);
    }

    /// Slots that passed while the scheduler was not running: it started at `now`.
    fn after_restart(
        r: &Recurrence,
        from: DateTime<Utc>,
        now: DateTime<Utc>,
        policy: CatchUp,
        max: u32,
    ) -> Plan {
        plan(r, from, now, now, policy, max)
    }

    #[test]
    fn slots_missed_while_not_running_follow_the_policy() {
        let r = every_minute();
        let (from, now) = (t(0, 0, 30), t(0, 5, 30));
        let p = after_restart(&r, from, now, CatchUp::Skip, 10);
        assert_eq!(
            p.fire,
            vec![t(0, 5, 0)],
            "05:00 is 30 s late, within the grace"
        );
        assert_eq!(p.dropped, 4, "01:00-04:00 are dropped and counted");
        let p = after_restart(&r, from, t(0, 6, 59), CatchUp::Skip, 10).fire;
        assert_eq!(p, vec![t(0, 6, 0)], "06:00 is 59 s late, in the grace");
        let five = Recurrence::new("0 */5 * * * *", "UTC", DstPolicy::default()).unwrap();
        let p = after_restart(&five, from, t(0, 6, 10), CatchUp::Skip, 10);
        assert!(
            p.fire.is_empty(),
            "00:05 is 70 s late, past the grace: skipped"
        );
        assert_eq!((p.newest, p.dropped), (Some(t(0, 5, 0)), 1));
        let p = after_restart(&r, from, now, CatchUp::Latest, 10);
        assert_eq!((p.fire, p.dropped), (vec![t(0, 5, 0)], 4));
        assert_eq!(
            after_restart(&r, from, now, CatchUp::All, 10).fire,
            vec![t(0, 1, 0), t(0, 2, 0), t(0, 3, 0), t(0, 4, 0), t(0, 5, 0)]
        );
        let p = after_restart(&r, from, now, CatchUp::All, 2);
        assert_eq!(
            p.fire,
            vec![t(0, 4, 0), t(0, 5, 0)],
            "bounded to the newest"
        );
        assert_eq!(p.dropped, 3);
        assert_eq!(
            after_restart(&r, from, now, CatchUp::Skip, 10).newest,
            Some(t(0, 5, 0)),
            "skipped slots still move the watermark"
        );
    }

    #[test]
    fn nothing_is_due_before_the_next_slot() {
        let p = plan(
            &every_minute(),
            t(0, 1, 0),
            t(0, 1, 59),
            t(0, 1, 0),
            CatchUp::All,
            10,
        );
        let none = Plan {
            fire: vec![],
            newest: None,
            dropped: 0,
        };
        assert_eq!(p, none);
    }
}
