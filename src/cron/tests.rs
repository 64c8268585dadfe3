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

/// Invalid expressions and their messages: the field, its column in the expression as
/// typed, the allowed values, what was written.
const INVALID: [(&str, &str); 22] = [
    ("0 0 24 * * *", "invalid hour field \"24\" at column 5: expected a value in 0-23, got 24"),
    ("60 * * * * *", "invalid second field \"60\" at column 1: expected a value in 0-59, got 60"),
    ("0 61 * * * *", "invalid minute field \"61\" at column 3: expected a value in 0-59, got 61"),
    ("0 0 0 32 * *", "invalid day-of-month field \"32\" at column 7: expected a value in 1-31, got 32"),
    ("0 0 0 0 * *", "invalid day-of-month field \"0\" at column 7: expected a value in 1-31, got 0"),
    ("0 0 0 * 13 *", "invalid month field \"13\" at column 9: expected a value in 1-12, got 13"),
    ("0 0 0 * Foo *", "invalid month field \"Foo\" at column 9: expected a value in 1-12 or a name such as Jan, got \"Foo\""),
    ("0 0 0 * * 8", "invalid day-of-week field \"8\" at column 11: expected a value in 0-7, got 8"),
    ("0 0 0 * * Funday", "invalid day-of-week field \"Funday\" at column 11: expected a value in 0-7 or a name such as Sun, got \"Funday\""),
    ("0 0 0 * * 5-1", "invalid day-of-week field \"5-1\" at column 11: expected a range from low to high, got \"5-1\""),
    ("0 0 0 * * Fri-Mon", "invalid day-of-week field \"Fri-Mon\" at column 11: expected a range from low to high, got \"Fri-Mon\""),
    ("*/0 * * * * *", "invalid second field \"*/0\" at column 1: expected a step of 1 or more, got \"0\""),
    ("0 0 0 * * * 1969", "invalid year field \"1969\" at column 13: expected a value in 1970-2100, got 1969"),
    ("0 0 ? * * *", "invalid hour field \"?\" at column 5: expected a value, got \"?\": ? stands alone and only in day-of-month or day-of-week"),
    ("0 0 0 1,,2 * *", "invalid day-of-month field \"1,,2\" at column 7: expected a value, got an empty list item"),
    ("  0   0  25 * * *", "invalid hour field \"25\" at column 10: expected a value in 0-23, got 25"),
    ("0 0 0 30 2 *", "expression \"0 0 0 30 2 *\" never fires: no date matches its day-of-month, month and day-of-week fields (e.g. February 30)"),
    ("0 0 0 31 4,6,9,11 *", "expression \"0 0 0 31 4,6,9,11 *\" never fires: no date matches its day-of-month, month and day-of-week fields (e.g. February 30)"),
    ("0 0 0 29 2 * 2025-2027", "expression \"0 0 0 29 2 * 2025-2027\" never fires: no date in the years of its year field matches its day-of-month, month and day-of-week fields"),
    ("0 */5 * * *", "expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), got 5; add a seconds field first, e.g. \"0 */5 * * * *\" for every 5 minutes"),
    ("", "expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), got 0"),
    ("@fortnightly", "unknown alias \"@fortnightly\": expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @minutely"),
];

#[test]
fn invalid_expressions_are_refused_with_messages_that_name_the_field_and_its_limits() {
    for (expr, message) in INVALID {
        let err = expr.parse::<CronExpr>().expect_err(expr);
        assert_eq!(err.to_string(), message, "{expr:?}");
    }
}

#[test]
fn valid_expressions_with_names_ranges_steps_and_lists_parse() {
    for expr in [
        "0 0 9 * * Mon-Fri",
        "0 0 9 * * monday,FRIDAY",
        "0 0 0 1 Jan-Mar,Dec *",
        "*/15 5-10/2 0,12 ? * *",
        "0 0 0 29 2 * 2028",
    ] {
        assert!(expr.parse::<CronExpr>().is_ok(), "{expr}");
    }
}

#[test]
fn an_expression_whose_years_are_past_never_fires_and_says_so() {
    let r = Recurrence::new("0 0 0 1 1 * 2020", "Europe/Berlin", DstPolicy::default()).unwrap();
    let now = utc(2025, 6, 1, 0, 0);
    let err = r.check_fires_after(now).unwrap_err().to_string();
    assert_eq!(
        err,
        "expression \"0 0 0 1 1 * 2020\" never fires: its last slot (2020-01-01T00:00:00+00:00) is not after now (2025-06-01T02:00:00+00:00); check the year field"
    );
    let daily = Recurrence::new("@daily", "UTC", DstPolicy::default()).unwrap();
    assert!(daily.check_fires_after(now).is_ok());
}

#[test]
fn bad_zones_name_what_is_wrong() {
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

/// One item of a field: values, names, ranges, steps, wildcards, and near misses.
fn item_strategy() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        (0u32..3000).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "*",
            "?",
            "Jan",
            "dec",
            "Mon",
            "sunday",
            "L",
            "W",
            "#",
            "",
            "-",
            "/",
            "Foo",
            "-1",
            "99999999999999999999",
        ])
        .prop_map(str::to_string),
    ];
    let sep = prop::sample::select(vec!["", "-", "/", ",", "-/", "//", ",,"]);
    (atom.clone(), sep, atom).prop_map(|(a, s, b)| format!("{a}{s}{b}"))
}

/// A field: one to three items, comma-separated, never empty (an empty field would merge
/// with its neighbours' spaces and change the field count instead).
fn field_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(item_strategy(), 1..=3)
        .prop_map(|items| items.join(","))
        .prop_filter("a field is not empty", |f| !f.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary text never panics the parser.
    #[test]
    fn arbitrary_text_never_panics_the_parser(text in "\\PC{0,60}") {
        let _ = text.parse::<CronExpr>();
    }

    /// Expressions of arbitrary field strings never panic; a refused field is named by
    /// its place, with its column in the expression as typed.
    #[test]
    fn an_invalid_field_is_named_with_its_column(
        fields in prop::collection::vec(field_strategy(), 6..=7),
        bad in 0usize..7,
    ) {
        let mut fields = fields;
        let bad = bad.min(fields.len() - 1);
        let expr = fields.join(" ");
        match expr.parse::<CronExpr>() {
            Err(CronError::Field { field, value, column, reason }) => {
                let i = super::field::UNITS.iter().position(|u| u.name == field);
                let i = i.expect("a known field name");
                prop_assert_eq!(&fields[i], &value, "{}", expr);
                let at: usize = fields[..i].iter().map(|f| f.chars().count() + 1).sum();
                prop_assert_eq!(column, at + 1, "{}", expr);
                prop_assert!(!reason.is_empty());
            }
            Err(CronError::Expression { .. } | CronError::NeverFires { .. }) | Ok(_) => {}
            Err(other) => prop_assert!(false, "{expr}: {other}"),
        }
        fields[bad] = "99999".into();
        let err = fields.join(" ").parse::<CronExpr>().expect_err("99999 is out of range");
        let named = matches!(&err, CronError::Field { .. });
        prop_assert!(named, "{}", err);
    }
}
