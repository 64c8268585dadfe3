//! Per-queue settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ratelimit::RateLimit;

/// The settings of one named queue.
///
/// ```
/// use taskmesh::QueueConfig;
/// let q = QueueConfig::new("mail").workers(2, 8).bound(10_000);
/// assert_eq!(q.max_workers, 8);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[must_use]
pub struct QueueConfig {
    /// The queue's name.
    pub name: String,
    /// Workers kept alive even when idle (default 2).
    pub min_workers: usize,
    /// The most workers the pool grows to (default 20).
    pub max_workers: usize,
    /// The most tasks that may wait; a submit beyond it is refused as overloaded
    /// (default 100,000).
    pub bound: usize,
    /// A worker idle this long is retired, down to the minimum (default 30 s).
    #[serde(with = "crate::task::millis", rename = "idle_timeout_ms")]
    pub idle_timeout: Duration,
    /// How often the pool checks load, idleness and stuck workers (default 100 ms).
    #[serde(with = "crate::task::millis", rename = "tick_ms")]
    pub tick: Duration,
    /// An attempt still running this long past its timeout and grace marks its worker as
    /// stuck; the worker is replaced (default 5 s).
    #[serde(with = "crate::task::millis", rename = "stuck_after_ms")]
    pub stuck_after: Duration,
    /// Attempts started per second in this queue, if limited.
    pub rate_limit: Option<RateLimit>,
    /// Worker restarts allowed within `restart_window` before the pool escalates
    /// (default 3).
    pub max_restarts: u32,
    /// The restart intensity window (default 60 s).
    #[serde(with = "crate::task::millis", rename = "restart_window_ms")]
    pub restart_window: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self::new("default")
    }
}

impl QueueConfig {
    /// A queue named `name` with the defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            min_workers: 2,
            max_workers: 20,
            bound: 100_000,
            idle_timeout: Duration::from_secs(30),
            tick: Duration::from_millis(100),
            stuck_after: Duration::from_secs(5),
            rate_limit: None,
            max_restarts: 3,
            restart_window: Duration::from_secs(60),
        }
    }
    /// Sets the worker range.
    pub fn workers(mut self, min: usize, max: usize) -> Self {
        self.min_workers = min;
        self.max_workers = max;
        self
    }
    /// Sets the bound on waiting tasks.
    pub fn bound(mut self, bound: usize) -> Self {
        self.bound = bound;
        self
    }
    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Sets the pool's tick.
    pub fn tick(mut self, d: Duration) -> Self {
        self.tick = d;
        self
    }
    /// Sets the stuck margin.
    pub fn stuck_after(mut self, d: Duration) -> Self {
        self.stuck_after = d;
        self
    }
    /// Limits attempts started per second.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }
    /// Sets the restart intensity.
    pub fn restart_intensity(mut self, max_restarts: u32, window: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.restart_window = window;
        self
    }

    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let bad = |field, reason: String| Err(ValidationError::new(field, reason));
        if self.name.is_empty() || self.name.contains('/') {
            return bad(
                "queue.name",
                format!("expected a non-empty name without '/', got {:?}", self.name),
            );
        }
        if self.max_workers == 0 || self.min_workers > self.max_workers {
            return bad(
                "queue.workers",
                format!(
                    "expected 0 <= min <= max and max >= 1, got min {} max {} in queue {:?}",
                    self.min_workers, self.max_workers, self.name
                ),
            );
        }
        if self.bound == 0 {
            return bad(
                "queue.bound",
                format!("expected at least 1, got 0 in queue {:?}", self.name),
            );
        }
        if self.tick.is_zero() {
            return bad(
                "queue.tick",
                format!("expected more than 0 ms, got 0 in queue {:?}", self.name),
            );
        }
        Ok(())
    }
}
