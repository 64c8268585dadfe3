//! Which slots to fire now: a pure function of the schedule, its watermark and the time.

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
}

/// - `Skip`: only a slot at most [`MISFIRE_GRACE`] late fires (normally the one just due).
/// - `Latest`: the newest due slot fires, however late.
/// - `All`: every due slot fires, oldest first, the newest `max` of them.
pub(crate) fn plan(
    r: &Recurrence,
    watermark: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: CatchUp,
    max: u32,
) -> Plan {
    let keep = if policy == CatchUp::All {
        max.max(1) as usize
    } else {
        1
    };
    let due = r.between(watermark, now, keep);
    let newest = due.last().copied();
    let fire = match policy {
        CatchUp::All => due,
        CatchUp::Latest => newest.into_iter().collect(),
        CatchUp::Skip => newest
            .filter(|s| now - *s <= MISFIRE_GRACE)
            .into_iter()
            .collect(),
    };
    Plan { fire, newest }
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
            let p = plan(&every_minute(), t(0, 0, 30), t(0, 1, 0), policy, 10);
            assert_eq!(
                p,
                Plan {
                    fire: vec![t(0, 1, 0)],
                    newest: Some(t(0, 1, 0))
                },
                "{policy:?}"
            );
        }
    }

    #[test]
    fn missed_slots_follow_the_policy() {
        let r = every_minute();
        let (from, now) = (t(0, 0, 30), t(0, 5, 30));
        let late = plan(&r, from, now, CatchUp::Skip, 10).fire;
        assert_eq!(
            late,
            vec![t(0, 5, 0)],
            "05:00 is 30 s late, within the grace"
        );
        let (from, now) = (t(0, 0, 30), t(0, 6, 59));
        let p = plan(&r, from, now, CatchUp::Skip, 10).fire;
        assert_eq!(
            p,
            vec![t(0, 6, 0)],
            "06:00 is 59 s late, in the grace; 01:00-05:00 are missed"
        );
        let five = Recurrence::new("0 */5 * * * *", "UTC", DstPolicy::default()).unwrap();
        let p = plan(&five, t(0, 0, 30), t(0, 6, 10), CatchUp::Skip, 10);
        assert!(
            p.fire.is_empty(),
            "00:05 is 70 s late, past the grace: skipped"
        );
        assert_eq!(p.newest, Some(t(0, 5, 0)));
        let (from, now) = (t(0, 0, 30), t(0, 5, 30));
        assert_eq!(
            plan(&r, from, now, CatchUp::Latest, 10).fire,
            vec![t(0, 5, 0)]
        );
        assert_eq!(
            plan(&r, from, now, CatchUp::All, 10).fire,
            vec![t(0, 1, 0), t(0, 2, 0), t(0, 3, 0), t(0, 4, 0), t(0, 5, 0)]
        );
        assert_eq!(
            plan(&r, from, now, CatchUp::All, 2).fire,
            vec![t(0, 4, 0), t(0, 5, 0)],
            "bounded to the newest"
        );
        assert_eq!(
            plan(&r, from, now, CatchUp::Skip, 10).newest,
            Some(t(0, 5, 0)),
            "skipped slots still move the watermark"
        );
    }

    #[test]
    fn nothing_is_due_before_the_next_slot() {
        let p = plan(&every_minute(), t(0, 1, 0), t(0, 1, 59), CatchUp::All, 10);
        assert_eq!(
            p,
            Plan {
                fire: vec![],
                newest: None
            }
        );
    }
}
