//! The next daylight-saving change of a schedule's zone, the fires around it (computed
//! by the schedule's own [`Recurrence`]), and what its policy does there, in words.

use chrono::{DateTime, Duration, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use maud::{html, Markup};

use super::format;
use crate::cron::{DstFold, DstGap, Recurrence};

/// How far ahead a change is looked for.
const HORIZON_DAYS: u32 = 400;

/// A change of the zone's UTC offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    /// The first instant with the new offset.
    pub at: DateTime<Utc>,
    /// The offset before, in seconds east of UTC.
    pub before: i32,
    /// The offset after.
    pub after: i32,
}

fn offset(zone: Tz, t: DateTime<Utc>) -> i32 {
    zone.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The zone's next offset change after `after`, within about a year.
pub(crate) fn next_change(zone: Tz, after: DateTime<Utc>) -> Option<Change> {
    let before = offset(zone, after);
    let mut day = DateTime::from_timestamp(after.timestamp(), 0)?;
    for _ in 0..HORIZON_DAYS {
        let next = day + Duration::days(1);
        if offset(zone, next) != before {
            let (mut lo, mut hi) = (day, next);
            while (hi - lo).num_seconds() > 1 {
                let mid = lo + Duration::seconds((hi - lo).num_seconds() / 2);
                if offset(zone, mid) == before {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            let at = hi;
            return Some(Change {
                at,
                before,
                after: offset(zone, at),
            });
        }
        day = next;
    }
    None
}

/// The fires nearest a change: within two hours of it, else within a day.
pub(crate) fn fires_around(r: &Recurrence, at: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let near = r.between(at - Duration::hours(2), at + Duration::hours(2), 8);
    if !near.is_empty() {
        return near;
    }
    r.between(at - Duration::days(1), at + Duration::days(1), 6)
}

/// What the policy does at this change, in words.
pub(crate) fn policy_words(change: &Change, r: &Recurrence) -> String {
    let hour = (change.after - change.before).abs() / 60;
    if change.after > change.before {
        let what = match r.dst().gap {
            DstGap::Shift => "a slot in it fires once, at the end of the gap (shifted)",
            DstGap::Skip => "a slot in it does not fire (skipped)",
        };
        format!("Clocks go forward: {hour} minutes of wall-clock time do not exist; {what}.")
    } else {
        let what = match r.dst().fold {
            DstFold::Once => "a slot in it fires at its first occurrence only (once)",
            DstFold::Twice => "a slot in it fires at both occurrences (twice)",
        };
        format!("Clocks go back: {hour} minutes of wall-clock time happen twice; {what}.")
    }
}

/// The block shown on a schedule: the change, the policy in words, the fires around it.
pub(crate) fn block(r: &Recurrence, now: DateTime<Utc>) -> Markup {
    let zone = r.zone();
    let Some(change) = next_change(zone, now) else {
        return html! { p { "No daylight-saving change in " (zone.name()) " within a year." } };
    };
    let fires = fires_around(r, change.at);
    let local = |t: &DateTime<Utc>| {
        t.with_timezone(&zone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    };
    html! {
        div.dst {
            h3 { "Next daylight-saving change: " (format::utc(change.at)) }
            p { (policy_words(&change, r)) }
            table {
                caption { "Fires around it" }
                thead { tr { th scope="col" { "UTC" } th scope="col" { "in " (zone.name()) } } }
                tbody {
                    @for t in &fires { tr { td { (format::utc(*t)) } td { (local(t)) } } }
                    @if fires.is_empty() { tr { td colspan="2" { "none within a day of it" } } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::DstPolicy;

    #[test]
    fn berlins_spring_change_is_found_and_a_half_past_two_slot_is_shifted() {
        let r = Recurrence::new("0 30 2 * * *", "Europe/Berlin", DstPolicy::default()).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let change = next_change(r.zone(), now).unwrap();
        assert_eq!(
            change.at,
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()
        );
        assert_eq!((change.before, change.after), (3600, 7200));
        let fires = fires_around(&r, change.at);
        assert_eq!(
            fires,
            [Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()],
            "02:30 does not exist: 03:00 CEST"
        );
        let words = policy_words(&change, &r);
        assert!(
            words.contains("forward") && words.contains("shifted"),
            "{words}"
        );
        let html = block(&r, now).into_string();
        assert!(html.contains("2026-03-29 03:00:00 CEST"), "{html}");
    }

    #[test]
    fn the_autumn_change_says_once_or_twice_and_utc_has_none() {
        let twice = DstPolicy {
            fold: DstFold::Twice,
            ..DstPolicy::default()
        };
        let r = Recurrence::new("0 30 2 * * *", "Europe/Berlin", twice).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
        let change = next_change(r.zone(), now).unwrap();
        assert_eq!(
            change.at,
            Utc.with_ymd_and_hms(2026, 10, 25, 1, 0, 0).unwrap()
        );
        assert!(policy_words(&change, &r).contains("twice"));
        assert_eq!(
            fires_around(&r, change.at).len(),
            2,
            "02:30 CEST and 02:30 CET"
        );
        let utc = Recurrence::new("0 * * * * *", "UTC", DstPolicy::default()).unwrap();
        assert_eq!(next_change(utc.zone(), now), None);
    }
}
