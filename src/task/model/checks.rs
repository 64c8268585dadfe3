//! The checks behind [`NewTask::validate`](super::NewTask::validate) and
//! [`NewTask::check_unreserved`](super::NewTask::check_unreserved): sizes, time range and
//! reserved namespaces. Every error names the field.

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use super::{Limits, Metadata};
use crate::task::ValidationError;

/// The longest per-attempt timeout accepted (365 days): deadlines are computed as
/// `now + timeout`, which must stay far inside the clock's range.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The longest title accepted.
pub const MAX_TITLE_CHARS: usize = 200;

/// The longest `correlation_id` and `actor_id` accepted, in bytes: both are copied into
/// every event of the task.
pub const MAX_METADATA_BYTES: usize = 256;

/// Prefixes of unique keys and actor ids that belong to the system (the scheduler's
/// `cron:` slots and actors; `system:` and `taskmesh:` kept for the runtime). Untrusted
/// callers may not use them: see [`NewTask::check_unreserved`](crate::task::NewTask::check_unreserved).
pub const RESERVED_PREFIXES: [&str; 3] = ["cron:", "system:", "taskmesh:"];

/// The earliest time a task may name (the Unix epoch); stores keep times as signed
/// nanoseconds since it, and earlier times are not meaningful for scheduling.
pub const EARLIEST_TIME: SystemTime = SystemTime::UNIX_EPOCH;

/// The latest time a task may name: `i64::MAX` nanoseconds after the epoch
/// (2262-04-11T23:47:16.854775807Z), the end of the stores' time range.
pub fn latest_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(i64::MAX as u64)
}

/// Checks that `at` lies within [`EARLIEST_TIME`]..=[`latest_time`]; the error names `field`.
pub fn check_time(field: &'static str, at: SystemTime) -> Result<(), ValidationError> {
    if at < EARLIEST_TIME || at > latest_time() {
        let why = format!(
            "expected a time from 1970-01-01T00:00:00Z to 2262-04-11T23:47:16Z, got {}",
            describe_time(at)
        );
        return Err(ValidationError::new(field, why));
    }
    Ok(())
}

/// `at` as RFC 3339 when chrono can show it, else as seconds from the epoch.
fn describe_time(at: SystemTime) -> String {
    let secs = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .map_or_else(|| format!("{secs} s from 1970"), |t| t.to_rfc3339())
}

pub(super) fn check_metadata(m: &Metadata) -> Result<(), ValidationError> {
    let fields = [
        ("actor_id", &m.actor_id),
        ("correlation_id", &m.correlation_id),
    ];
    for (field, value) in fields {
        let Some(value) = value else { continue };
        if value.len() > MAX_METADATA_BYTES {
            let why = format!(
                "expected at most {MAX_METADATA_BYTES} bytes, got {}",
                value.len()
            );
            return Err(ValidationError::new(field, why));
        }
    }
    Ok(())
}

pub(super) fn check_namespace(field: &'static str, value: &str) -> Result<(), ValidationError> {
    match RESERVED_PREFIXES.iter().find(|p| value.starts_with(*p)) {
        None => Ok(()),
        Some(prefix) => Err(ValidationError::new(
            field,
            format!("the prefix {prefix:?} is reserved for the system, got {value:?}"),
        )),
    }
}

pub(super) fn check_unique_key(key: &str, limits: &Limits) -> Result<(), ValidationError> {
    if key.is_empty() {
        return Err(ValidationError::new(
            "unique_key",
            "must not be empty when given",
        ));
    }
    if key.len() > limits.max_unique_key_bytes {
        return Err(ValidationError::new(
            "unique_key",
            format!(
                "expected at most {} bytes, got {}",
                limits.max_unique_key_bytes,
                key.len()
            ),
        ));
    }
    Ok(())
}

/// Fails as soon as the serialised args pass `max`, without building the whole encoding.
pub(super) fn check_args_size(args: &serde_json::Value, max: usize) -> Result<(), ValidationError> {
    let mut counter = Counter { n: 0, max };
    if serde_json::to_writer(&mut counter, args).is_err() || counter.n > max {
        return Err(ValidationError::new(
            "args",
            format!("expected at most {max} bytes when serialised, got more"),
        ));
    }
    Ok(())
}

struct Counter {
    n: usize,
    max: usize,
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.n += buf.len();
        if self.n > self.max {
            return Err(io::Error::other("args too large"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
