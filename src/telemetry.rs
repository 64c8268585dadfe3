//! Tracing spans, events and metrics.
//!
//! | kind | name | labels / fields | meaning |
//! |---|---|---|---|
//! | span (info) | `attempt` | task_id, kind, queue, attempt | one attempt of a task |
//! | event (debug) | `task state changed` | task_id, state, attempt | every state change after an attempt |
//! | event (debug) | `task submitted` | task_id, kind, queue | a task was accepted |
//! | event (warn) | `worker replaced` | queue, reason | a worker died or was stuck |
//! | gauge | `taskmesh_queue_depth` | queue | tasks waiting (ready and delayed); sampled each pool tick |
//! | gauge | `taskmesh_tasks_running` | queue | attempts running; sampled each pool tick |
//! | gauge | `taskmesh_workers` | queue | workers alive; sampled each pool tick |
//! | counter | `taskmesh_tasks_submitted_total` | queue | tasks accepted |
//! | counter | `taskmesh_tasks_succeeded_total` | queue, kind | tasks that succeeded |
//! | counter | `taskmesh_tasks_failed_total` | queue, kind | tasks that ended as failed |
//! | counter | `taskmesh_tasks_retried_total` | queue, kind | failed attempts that will be retried |
//! | counter | `taskmesh_tasks_cancelled_total` | queue, kind | tasks cancelled |
//! | counter | `taskmesh_submits_rejected_total` | queue | submits refused as overloaded |
//! | histogram | `taskmesh_attempt_duration_seconds` | queue, kind | how long attempts ran |
//! | histogram | `taskmesh_submit_to_start_seconds` | queue | from ready to the start of an attempt |
//! | counter | `taskmesh_cron_skipped_total` | schedule | slots skipped because the previous run still ran |
//! | histogram | `taskmesh_cron_lateness_seconds` | schedule | from a slot's instant to its firing |
//! | event (debug) | `slot fired` | schedule, slot, task_id, duplicate | a cron slot fired |
//!
//! Metrics go through the [`metrics`] facade: install a recorder (e.g.
//! `metrics-exporter-prometheus`) before starting the system, because handles are
//! registered at start so the hot path does not look metrics up by name.

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

/// Metric names, for dashboards and tests.
pub mod names {
    /// Tasks waiting in a queue.
    pub const QUEUE_DEPTH: &str = "taskmesh_queue_depth";
    /// Attempts running.
    pub const RUNNING: &str = "taskmesh_tasks_running";
    /// Workers alive.
    pub const WORKERS: &str = "taskmesh_workers";
    /// Tasks accepted.
    pub const SUBMITTED: &str = "taskmesh_tasks_submitted_total";
    /// Tasks that succeeded.
    pub const SUCCEEDED: &str = "taskmesh_tasks_succeeded_total";
    /// Tasks that ended as failed.
    pub const FAILED: &str = "taskmesh_tasks_failed_total";
    /// Attempts that failed and will be retried.
    pub const RETRIED: &str = "taskmesh_tasks_retried_total";
    /// Tasks cancelled.
    pub const CANCELLED: &str = "taskmesh_tasks_cancelled_total";
    /// Submits refused because the queue was full.
    pub const REJECTED: &str = "taskmesh_submits_rejected_total";
    /// Attempt durations.
    pub const ATTEMPT_DURATION: &str = "taskmesh_attempt_duration_seconds";
    /// Time from ready to start.
    pub const SUBMIT_TO_START: &str = "taskmesh_submit_to_start_seconds";
}

/// Per-queue metric handles.
pub(crate) struct QueueMetrics {
    pub depth: Gauge,
    pub running: Gauge,
    pub workers: Gauge,
    pub submitted: Counter,
    pub rejected: Counter,
    pub submit_to_start: Histogram,
}

impl QueueMetrics {
    pub fn new(queue: &str) -> Self {
        let q = queue.to_string();
        Self {
            depth: gauge!(names::QUEUE_DEPTH, "queue" => q.clone()),
            running: gauge!(names::RUNNING, "queue" => q.clone()),
            workers: gauge!(names::WORKERS, "queue" => q.clone()),
            submitted: counter!(names::SUBMITTED, "queue" => q.clone()),
            rejected: counter!(names::REJECTED, "queue" => q.clone()),
            submit_to_start: histogram!(names::SUBMIT_TO_START, "queue" => q),
        }
    }
}

/// Per-(queue, kind) metric handles.
pub(crate) struct KindMetrics {
    pub succeeded: Counter,
    pub failed: Counter,
    pub retried: Counter,
    pub cancelled: Counter,
    pub attempt_duration: Histogram,
}

impl KindMetrics {
    pub fn new(queue: &str, kind: &str) -> Self {
        let labels = [("queue", queue.to_string()), ("kind", kind.to_string())];
        Self {
            succeeded: counter!(names::SUCCEEDED, &labels),
            failed: counter!(names::FAILED, &labels),
            retried: counter!(names::RETRIED, &labels),
            cancelled: counter!(names::CANCELLED, &labels),
            attempt_duration: histogram!(names::ATTEMPT_DURATION, &labels),
        }
    }
}
