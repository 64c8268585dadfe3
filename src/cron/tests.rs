//! Next-fire functions at fixed instants across daylight-saving changes, errors that name
//! the field, and properties of fire times.

use chrono::{DateTime, Duration, Offset, TimeZone, Utc};
use proptest::prelude::*;

use super::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn policy(gap: DstGap, fold: DstFold) -> DstPolicy {
    DstPolicy { gap, fold }
}

fn fires(
    expr: &str,
    zone: &str,
    dst: DstPolicy,
    after: DateTime<Utc>,
    n: usize,
) -> Vec<DateTime<Utc>> {
    Recurrence::new(expr, zone, dst).unwrap().upcoming(after, n)
}

const SHIFT_ONCE: DstPolicy = DstPolicy {
    gap: DstGap::Shift,
    fold: DstFold::Once,
};

#[test]
fn new_york_spring_forward_shifts_or_skips_the_missing_half_hour() {
    let from = utc(2025, 3, 9, 0, 0);
    let shift = fires("0 30 2 * * *", "America/New_York", SHIFT_ONCE, from, 2);
    assert_eq!(shift, [utc(2025, 3, 9, 7, 0), utc(2025, 3, 10, 6, 30)]);
    let skip = fires(
        "0 30 2 * * *",
        "America/New_York",
        policy(DstGap::Skip, DstFold::Once),
        from,
        1,
    );
    assert_eq!(skip, [utc(2025, 3, 10, 6, 30)]);
}

#[test]
fn new_york_fall_back_fires_once_or_twice() {
    let from = utc(2025, 11, 2, 0, 0);
    let once = fires("0 30 1 * * *", "America/New_York", SHIFT_ONCE, from, 2);
    assert_eq!(once, [utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)]);
    let twice = fires(
        "0 30 1 * * *",
        "America/New_York",
        policy(DstGap::Shift, DstFold::Twice),
        from,
        3,
    );
    assert_eq!(
        twice,
        [
            utc(2025, 11, 2, 5, 30),
            utc(2025, 11, 2, 6, 30),
            utc(2025, 11, 3, 6, 30)
        ]
    );
}

#[test]
fn berlin_changes_at_two_and_three_oclock() {
    let spring = utc(2025, 3, 29, 12, 0);
    assert_eq!(
        fires("0 30 2 * * *", "Europe/Berlin", SHIFT_ONCE, spring, 1),
        [utc(2025, 3, 30, 1, 0)]
    );
    let skip = policy(DstGap::Skip, DstFold::Once);
    assert_eq!(
        fires("0 30 2 * * *", "Europe/Berlin", skip, spring, 1),
        [utc(2025, 3, 31, 0, 30)]
    );
    let autumn = utc(2025, 10, 25, 12, 0);
    assert_eq!(
        fires("0 30 2 * * *", "Europe/Berlin", SHIFT_ONCE, autumn, 1),
        [utc(2025, 10, 26, 0, 30)]
    );
    let twice = policy(DstGap::Shift, DstFold::Twice);
    assert_eq!(
        fires("0 30 2 * * *", "Europe/Berlin", twice, autumn, 2),
        [utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 1, 30)]
    );
}

#[test]
fn lord_howe_moves_by_thirty_minutes() {
    // 2025-10-05 02:00 LHST (+10:30) becomes 02:30 LHDT (+11): 02:15 does not exist.
    let spring = utc(2025, 10, 4, 12, 0);
    assert_eq!(
        fires("0 15 2 * * *", "Australia/Lord_Howe", SHIFT_ONCE, spring, 1),
        [utc(2025, 10, 4, 15, 30)]
    );
    let skip = policy(DstGap::Skip, DstFold::Once);
    assert_eq!(
        fires("0 15 2 * * *", "Australia/Lord_Howe", skip, spring, 1),
        [utc(2025, 10, 5, 15, 15)]
    );
    // 2025-04-06 02:00 LHDT becomes 01:30 LHST: 01:45 happens twice.
    let autumn = utc(2025, 4, 5, 12, 0);
    assert_eq!(
        fires("0 45 1 * * *", "Australia/Lord_Howe", SHIFT_ONCE, autumn, 2),
        [utc(2025, 4, 5, 14, 45), utc(2025, 4, 6, 15, 15)]
    );
    let twice = policy(DstGap::Shift, DstFold::Twice);
    assert_eq!(
        fires("0 45 1 * * *", "Australia/Lord_Howe", twice, autumn, 2),
        [utc(2025, 4, 5, 14, 45), utc(2025, 4, 5, 15, 15)]
    );
}

#[test]
fn slots_inside_one_gap_fire_once_at_its_end() {
    let got = fires(
        "0 */15 * * * *",
        "America/New_York",
        SHIFT_ONCE,
        utc(2025, 3, 9, 6, 40),
        3,
    );
    assert_eq!(
        got,
        [
            utc(2025, 3, 9, 6, 45),
            utc(2025, 3, 9, 7, 0),
            utc(2025, 3, 9, 7, 15)
        ]
    );
}

#[test]
fn a_repeated_hour_runs_every_slot_twice_only_when_asked() {
    let from = utc(2025, 11, 2, 4, 50);
    let once = fires("0 */15 * * * *", "America/New_York", SHIFT_ONCE, from, 5);
    let hm = |h, m| utc(2025, 11, 2, h, m);
    assert_eq!(once, [hm(5, 0), hm(5, 15), hm(5, 30), hm(5, 45), hm(7, 0)]);
    let twice = fires(
        "0 */15 * * * *",
        "America/New_York",
        policy(DstGap::Shift, DstFold::Twice),
        from,
        9,
    );
    assert_eq!(
        twice,
        [
            hm(5, 0),
            hm(5, 15),
            hm(5, 30),
            hm(5, 45),
            hm(6, 0),
            hm(6, 15),
            hm(6, 30),
            hm(6, 45),
            hm(7, 0)
        ]
    );
}

#[test]
fn seconds_aliases_and_unix_weekdays() {
    let sat = utc(2025, 11, 22, 10, 0); // a Saturday
    assert_eq!(
        fires("*/20 * * * * *", "UTC", SHIFT_ONCE, sat, 2),
        [sat + Duration::seconds(20), sat + Duration::seconds(40)]
    );
    assert_eq!(
        fires("0 0 9 * * 1-5", "UTC", SHIFT_ONCE, sat, 1),
        [utc(2025, 11, 24, 9, 0)],
        "1-5 is Monday to Friday"
    );
    assert_eq!(
        fires("0 0 9 * * 0", "UTC", SHIFT_ONCE, sat, 1),
        [utc(2025, 11, 23, 9, 0)],
        "0 is Sunday"
    );
    assert_eq!(
        fires("0 0 9 * * 7", "UTC", SHIFT_ONCE, sat, 1),
        [utc(2025, 11, 23, 9, 0)],
        "7 is Sunday"
    );
    assert_eq!(
        fires("0 0 9 * * Mon,Wed", "UTC", SHIFT_ONCE, sat, 1),
        [utc(2025, 11, 24, 9, 0)]
    );
    assert_eq!(
        fires("@daily", "UTC", SHIFT_ONCE, sat, 1),
        [utc(2025, 11, 23, 0, 0)]
    );
    assert_eq!(
        fires("@hourly", "UTC", SHIFT_ONCE, sat, 1),
        [utc(2025, 11, 22, 11, 0)]
    );
    assert_eq!(
        fires("@weekly", "UTC", SHIFT_ONCE, sat, 1),
        [utc(2025, 11, 23, 0, 0)]
    );
    assert!(
        fires("0 0 0 1 1 * 2020", "UTC", SHIFT_ONCE, sat, 1).is_empty(),
        "a year in the past never fires"
    );
}

#[test]
fn bad_expressions_and_zones_name_what_is_wrong() {
    let field = |expr: &str| match expr.parse::<CronExpr>() {
        Err(CronError::Field { field, .. }) => field,
        other => panic!("{expr}: {other:?}"),
    };
    assert_eq!(field("0 0 25 * * *"), "hour");
    assert_eq!(field("0 61 * * * *"), "minute");
    assert_eq!(field("60 * * * * *"), "second");
    assert_eq!(field("0 0 0 32 * *"), "day-of-month");
    assert_eq!(field("0 0 0 * 13 *"), "month");
    assert_eq!(field("0 0 0 * * 8"), "day-of-week");
    assert_eq!(field("0 0 0 * * Funday"), "day-of-week");
    let five = "0 */5 * * *".parse::<CronExpr>().unwrap_err().to_string();
    assert!(
        five.contains("got 5") && five.contains("add a seconds field"),
        "{five}"
    );
    assert!(matches!(
        "@fortnightly".parse::<CronExpr>(),
        Err(CronError::Alias(_))
    ));
    let zone = Recurrence::new("@daily", "Mars/Olympus", DstPolicy::default()).unwrap_err();
    assert_eq!(zone.to_string(), "unknown time zone \"Mars/Olympus\": expected an IANA name such as \"Europe/Berlin\" or \"UTC\"");
}

fn expr_strategy() -> impl Strategy<Value = String> {
    let sec = prop::sample::select(vec!["0", "*/15", "30"]);
    let min = prop::sample::select(vec!["*/7", "0", "5-10", "30,45"]);
    let hour = prop::sample::select(vec!["*", "1-3", "2", "0,12"]);
    let dow = prop::sample::select(vec!["*", "1-5", "0", "Sat"]);
    (sec, min, hour, dow).prop_map(|(s, m, h, d)| format!("{s} {m} {h} * * {d}"))
}

fn dst_strategy() -> impl Strategy<Value = DstPolicy> {
    (prop::bool::ANY, prop::bool::ANY).prop_map(|(skip, twice)| DstPolicy {
        gap: if skip { DstGap::Skip } else { DstGap::Shift },
        fold: if twice { DstFold::Twice } else { DstFold::Once },
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Fire times strictly increase, come after the start, and each either matches the
    /// expression on the zone's wall clock or (shift) is the end of a daylight-saving gap.
    #[test]
    fn fire_times_increase_and_match_the_expression(
        expr in expr_strategy(),
        zone in prop::sample::select(vec!["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC"]),
        dst in dst_strategy(),
        start_s in 1_704_067_200i64..1_767_225_600, // 2024 and 2025
    ) {
        let r = Recurrence::new(&expr, zone, dst).unwrap();
        let start = Utc.timestamp_opt(start_s, 0).unwrap();
        let times = r.upcoming(start, 24);
        prop_assert!(!times.is_empty());
        prop_assert!(times[0] > start);
        prop_assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        let tz = r.zone();
        let schedule: cron::Schedule = expr.parse::<CronExpr>().unwrap().schedule;
        for t in &times {
            let local = Utc.from_utc_datetime(&t.with_timezone(&tz).naive_local());
            let matches = schedule.includes(local);
            let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
            let gap_end = offset(*t - Duration::seconds(1)) != offset(*t);
            prop_assert!(matches || (dst.gap == DstGap::Shift && gap_end), "{t} local {local} for {expr} in {zone}");
        }
    }

    /// In UTC (no daylight saving) the fire times are exactly the expression's matches.
    #[test]
    fn in_utc_fire_times_are_the_plain_matches(expr in expr_strategy(), start_s in 1_704_067_200i64..1_767_225_600) {
        let r = Recurrence::new(&expr, "UTC", DstPolicy::default()).unwrap();
        let start = Utc.timestamp_opt(start_s, 0).unwrap();
        let schedule: cron::Schedule = expr.parse::<CronExpr>().unwrap().schedule;
        let plain: Vec<_> = schedule.after(&start).take(16).collect();
        prop_assert_eq!(r.upcoming(start, 16), plain);
    }
}
