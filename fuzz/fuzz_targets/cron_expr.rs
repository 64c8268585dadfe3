//! Cron expressions and time zones: parsing never panics, and a parsed expression's next
//! slots can be computed.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use taskmesh::cron::{CronExpr, DstPolicy, Recurrence};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expr, zone) = text.split_once('|').unwrap_or((text, "UTC"));
    if expr.parse::<CronExpr>().is_err() {
        return;
    }
    if let Ok(r) = Recurrence::new(expr, zone, DstPolicy::default()) {
        let start = Utc.with_ymd_and_hms(2025, 3, 9, 0, 0, 0).unwrap();
        let _ = r.upcoming(start, 3);
        let _ = r.check_fires_after(start);
    }
});
