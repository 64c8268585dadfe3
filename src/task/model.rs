//! `Task`, its id, priority, metadata, and validation of new tasks.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod checks;

use super::Backoff;
use super::ValidationError;
use checks::{check_args_size, check_metadata, check_namespace, check_unique_key};
pub use checks::{
    check_time, latest_time, EARLIEST_TIME, MAX_METADATA_BYTES, MAX_TIMEOUT, MAX_TITLE_CHARS,
    RESERVED_PREFIXES,
};

/// A task's identity: a uuid v7, so ids sort by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub Uuid);

impl TaskId {
    /// A new time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for TaskId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for TaskId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(TaskId)
            .map_err(|e| ValidationError::new("id", format!("expected a uuid, got {s:?}: {e}")))
    }
}

/// Five priority levels. Higher levels are dispatched first; FIFO within a level.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Run only when nothing else waits.
    Background = 0,
    /// Below normal.
    Low = 1,
    /// The default.
    #[default]
    Normal = 2,
    /// Above normal.
    High = 3,
    /// Ahead of everything else.
    Critical = 4,
}

impl Priority {
    /// All levels, highest first.
    pub const ALL: [Priority; 5] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Background,
    ];

    /// The level as an index, 0 (background) to 4 (critical).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The lowercase name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Background => "background",
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

impl FromStr for Priority {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "priority",
                    format!("expected one of critical, high, normal, low, background, got {s:?}"),
                )
            })
    }
}

/// Who asked for a task and which flow it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The user or service that created the task.
    pub actor_id: Option<String>,
    /// Ties the task to a request or workflow across systems.
    pub correlation_id: Option<String>,
}

/// Bounds on what a submit may carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The largest serialised args, in bytes (default 1 MiB).
    pub max_args_bytes: usize,
    /// The largest unique key, in bytes (default 1 KiB).
    pub max_unique_key_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_args_bytes: 1024 * 1024,
            max_unique_key_bytes: 1024,
        }
    }
}

/// A validated task as the runtime holds it. Immutable once created; its mutable status
/// lives beside it in the runtime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Our id (uuid v7).
    pub id: TaskId,
    /// Which handler runs it.
    pub kind: Arc<str>,
    /// The handler's arguments.
    pub args: serde_json::Value,
    /// The named queue it waits in.
    pub queue: Arc<str>,
    /// Dispatch priority within the queue.
    pub priority: Priority,
    /// How long one attempt may run.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// How many attempts before the task ends as failed.
    pub max_attempts: u32,
    /// The delay policy between attempts.
    pub backoff: Backoff,
    /// Deduplicates submissions: a second submit with the same key returns the first task.
    pub unique_key: Option<String>,
    /// Not before this time.
    pub run_at: Option<SystemTime>,
    /// Who and why.
    pub metadata: Metadata,
    /// A human-readable title (at most 200 characters).
    pub title: Option<String>,
    /// Restarts allowed after crashes (panics, dead workers, killed processes); 0 turns
    /// auto-restart off (the default).
    pub auto_restart: u32,
    /// When it was accepted.
    pub created_at: SystemTime,
}

/// What a user submits. Unset fields take the handler's defaults.
///
/// ```
/// use taskmesh::task::{NewTask, Priority};
/// let t = NewTask::new("email", serde_json::json!({"to": "a@b.c"}))
///     .queue("mail")
///     .priority(Priority::High)
///     .unique_key("welcome:42");
/// assert_eq!(t.kind, "email");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[must_use]
pub struct NewTask {
    /// Which handler runs it; must be registered.
    pub kind: String,
    /// The handler's arguments.
    pub args: serde_json::Value,
    /// The queue; defaults to the handler's queue, then "default".
    pub queue: Option<String>,
    /// Defaults to normal.
    pub priority: Option<Priority>,
    /// Defaults to the handler's timeout.
    pub timeout: Option<Duration>,
    /// Defaults to the handler's max attempts.
    pub max_attempts: Option<u32>,
    /// Defaults to the handler's backoff.
    pub backoff: Option<Backoff>,
    /// Deduplicates submissions.
    pub unique_key: Option<String>,
    /// Not before this time.
    pub run_at: Option<SystemTime>,
    /// Who and why.
    pub metadata: Metadata,
    /// A human-readable title (at most 200 characters).
    pub title: Option<String>,
    /// Restarts allowed after crashes; 0 (the default) turns auto-restart off.
    pub auto_restart: u32,
    /// False creates the task paused: it runs only after `start`. Default true.
    #[serde(default = "yes")]
    pub auto_start: bool,
    /// In a cluster whose queue routes by `consistent_hash`, tasks with one routing key
    /// run on one node while it is up. Not stored: it only chooses where the task starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for NewTask {
    fn default() -> Self {
        Self {
            kind: String::new(),
            args: serde_json::Value::Null,
            queue: None,
            priority: None,
            timeout: None,
            max_attempts: None,
            backoff: None,
            unique_key: None,
            run_at: None,
            metadata: Metadata::default(),
            title: None,
            auto_restart: 0,
            auto_start: true,
            routing_key: None,
        }
    }
}

impl NewTask {
    /// A task of `kind` with `args`.
    pub fn new(kind: impl Into<String>, args: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            args,
            ..Self::default()
        }
    }
    /// Sets the queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }
    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Sets the maximum number of attempts.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
    /// Sets the retry backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }
    /// Sets the routing key (see [`NewTask::routing_key`]).
    pub fn routing_key(mut self, key: impl Into<String>) -> Self {
        self.routing_key = Some(key.into());
        self
    }
    /// Sets the unique key.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
    /// Delays the first attempt until `at`.
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.run_at = Some(at);
        self
    }
    /// Sets the correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.metadata.correlation_id = Some(id.into());
        self
    }
    /// Sets who created the task.
    pub fn actor_id(mut self, id: impl Into<String>) -> Self {
        self.metadata.actor_id = Some(id.into());
        self
    }
    /// Sets the title (at most 200 characters).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    /// Allows `n` automatic restarts after crashes.
    pub fn auto_restart(mut self, n: u32) -> Self {
        self.auto_restart = n;
        self
    }
    /// Creates the task paused when false; it runs after `start`.
    pub fn auto_start(mut self, yes: bool) -> Self {
        self.auto_start = yes;
        self
    }

    /// Checks the fields that do not depend on handler defaults. The error names the field.
    pub fn validate(&self, limits: &Limits) -> Result<(), ValidationError> {
        if self.kind.trim().is_empty() {
            return Err(ValidationError::new("kind", "must not be empty"));
        }
        if self.max_attempts == Some(0) {
            return Err(ValidationError::new(
                "max_attempts",
                "expected at least 1, got 0",
            ));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(ValidationError::new(
                "timeout",
                "expected more than 0 ms, got 0",
            ));
        }
        if let Some(t) = self.timeout.filter(|t| *t > MAX_TIMEOUT) {
            let why = format!(
                "expected at most {} ms (365 days), got {} ms",
                MAX_TIMEOUT.as_millis(),
                t.as_millis()
            );
            return Err(ValidationError::new("timeout", why));
        }
        if let Some(key) = &self.unique_key {
            check_unique_key(key, limits)?;
        }
        if let Some(key) = self.routing_key.as_ref().filter(|k| k.len() > 256) {
            let why = format!("expected at most 256 bytes, got {}", key.len());
            return Err(ValidationError::new("routing_key", why));
        }
        if let Some(b) = &self.backoff {
            b.validate()?;
        }
        check_metadata(&self.metadata)?;
        if let Some(at) = self.run_at {
            check_time("run_at", at)?;
        }
        if let Some(title) = &self.title {
            let n = title.chars().count();
            if n > MAX_TITLE_CHARS {
                return Err(ValidationError::new(
                    "title",
                    format!("expected at most {MAX_TITLE_CHARS} characters, got {n}"),
                ));
            }
        }
        check_args_size(&self.args, limits.max_args_bytes)
    }

    /// Refuses what only the system itself may set, for tasks from untrusted callers (the
    /// HTTP API): a `unique_key` or `actor_id` in a reserved namespace (see
    /// [`RESERVED_PREFIXES`]), or the runtime's own actor name. A schedule's slot keys
    /// (`cron:{name}:{slot}`) and actors (`cron:{name}`) stay the scheduler's.
    pub fn check_unreserved(&self) -> Result<(), ValidationError> {
        if let Some(key) = &self.unique_key {
            check_namespace("unique_key", key)?;
        }
        if let Some(actor) = &self.metadata.actor_id {
            check_namespace("actor_id", actor)?;
            if actor == super::RUNTIME_ACTOR {
                let why = format!("{actor:?} is reserved for the runtime's own events");
                return Err(ValidationError::new("actor_id", why));
            }
        }
        Ok(())
    }
}

pub(crate) mod millis {
    //! Serialises a `Duration` as whole milliseconds.
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(t: &NewTask) -> Option<&'static str> {
        t.validate(&Limits::default()).err().map(|e| e.field)
    }

    #[test]
    fn validation_names_the_offending_field() {
        let base = NewTask::new("k", json!(null));
        let cases: Vec<(NewTask, Option<&str>)> = vec![
            (base.clone(), None),
            (NewTask::new("", json!(null)), Some("kind")),
            (NewTask::new("  ", json!(null)), Some("kind")),
            (base.clone().max_attempts(0), Some("max_attempts")),
            (base.clone().timeout(Duration::ZERO), Some("timeout")),
            (base.clone().unique_key(""), Some("unique_key")),
            (
                base.clone().unique_key("x".repeat(2000)),
                Some("unique_key"),
            ),
            (base.clone().title("é".repeat(200)), None),
            (base.clone().title("é".repeat(201)), Some("title")),
            (base.clone().timeout(MAX_TIMEOUT), None),
            (
                base.clone().timeout(MAX_TIMEOUT + Duration::from_millis(1)),
                Some("timeout"),
            ),
            (base.clone().actor_id("a".repeat(256)), None),
            (base.clone().actor_id("a".repeat(257)), Some("actor_id")),
            (
                base.clone().correlation_id("c".repeat(257)),
                Some("correlation_id"),
            ),
            (base.clone().run_at(EARLIEST_TIME), None),
            (
                base.clone().run_at(EARLIEST_TIME - Duration::from_secs(1)),
                Some("run_at"),
            ),
            (base.clone().run_at(latest_time()), None),
            (
                base.clone().run_at(latest_time() + Duration::from_nanos(1)),
                Some("run_at"),
            ),
        ];
        for (task, want) in cases {
            assert_eq!(field_of(&task), want, "{task:?}");
        }
    }

    #[test]
    fn only_the_system_may_use_its_key_and_actor_namespaces() {
        let base = NewTask::new("k", json!(null));
        let cases: Vec<(NewTask, Option<&str>)> = vec![
            (
                base.clone().unique_key("cron:victim:2030-01-01T00:00:00Z"),
                Some("unique_key"),
            ),
            (base.clone().unique_key("system:x"), Some("unique_key")),
            (base.clone().unique_key("my-cron:x"), None),
            (base.clone().actor_id("cron:heartbeat"), Some("actor_id")),
            (base.clone().actor_id("taskmesh"), Some("actor_id")),
            (base.clone().actor_id("taskmesh-ops"), None),
        ];
        for (task, want) in cases {
            assert_eq!(
                task.check_unreserved().err().map(|e| e.field),
                want,
                "{task:?}"
            );
            assert!(task.validate(&Limits::default()).is_ok(), "{task:?}");
        }
    }

    #[test]
    fn args_over_the_limit_are_rejected_and_at_the_limit_accepted() {
        let limits = Limits {
            max_args_bytes: 10,
            ..Limits::default()
        };
        // "\"12345678\"" is exactly 10 bytes.
        assert!(NewTask::new("k", json!("12345678"))
            .validate(&limits)
            .is_ok());
        let err = NewTask::new("k", json!("123456789"))
            .validate(&limits)
            .unwrap_err();
        assert_eq!(err.field, "args");
        assert!(err.to_string().contains("at most 10 bytes"), "{err}");
    }

    #[test]
    fn priority_parses_its_names_and_rejects_others() {
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
        }
        let err = "urgent".parse::<Priority>().unwrap_err();
        assert!(err.to_string().contains("\"urgent\""));
    }

    #[test]
    fn task_ids_sort_by_creation() {
        let a = TaskId::new();
        let b = TaskId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<TaskId>().unwrap(), a);
    }
}
