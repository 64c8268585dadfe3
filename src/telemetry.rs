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
//! | counter | `taskmesh_cron_skipped_total` | | slots skipped because the previous run still ran |
//! | histogram | `taskmesh_cron_lateness_seconds` | | from a slot's instant to its firing |
//! | event (debug) | `slot fired` | schedule, slot, task_id, duplicate | a cron slot fired |
//!
//! Metrics go through the [`metrics`] facade: install a recorder (e.g.
//! `metrics-exporter-prometheus`) before starting the system, because handles are
//! registered at start so the hot path does not look metrics up by name. [`prometheus`]
//! gives an exporter builder that renders the histograms as Prometheus histograms (with
//! [`SECONDS_BUCKETS`]), and [`describe`] adds the `# HELP` line of every metric.
//!
//! Cron metrics carry no schedule label: a series per schedule would outlive the schedule
//! (the facade cannot remove series) and grow without bound with many schedules. The
//! `slot fired` event and the skip log line name the schedule.

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, Unit,
};
#[cfg(feature = "node")]
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

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
    /// Cron slots skipped because the previous run still ran.
    pub const CRON_SKIPPED: &str = "taskmesh_cron_skipped_total";
    /// From a cron slot's instant to its firing.
    pub const CRON_LATENESS: &str = "taskmesh_cron_lateness_seconds";
    /// Transitions the store refused because the task's row had changed first.
    pub const FENCED: &str = "taskmesh_fenced_total";
    /// Running tasks of dead processes rescued by this one.
    pub const RESCUED: &str = "taskmesh_rescued_total";
    /// Peers marked suspect (stopped answering pings) by this node.
    pub const PEER_SUSPECT: &str = "taskmesh_peer_suspect_total";
    /// Routing hints not sent because the peer's outbound queue was full.
    pub const MESH_DROPPED: &str = "taskmesh_mesh_hints_dropped_total";
}

/// The kind of a metric, for [`DESCRIPTIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A value that goes up and down.
    Gauge,
    /// A count that only goes up.
    Counter,
    /// A distribution of observations.
    Histogram,
}

/// Every metric of the crate: name, kind, unit and help text.
pub const DESCRIPTIONS: [(&str, MetricKind, Unit, &str); 17] = {
    use MetricKind::{Counter as C, Gauge as G, Histogram as H};
    [
        (
            names::QUEUE_DEPTH,
            G,
            Unit::Count,
            "Tasks waiting in the queue (ready and delayed).",
        ),
        (
            names::RUNNING,
            G,
            Unit::Count,
            "Attempts running in the queue.",
        ),
        (
            names::WORKERS,
            G,
            Unit::Count,
            "Workers alive in the queue.",
        ),
        (names::SUBMITTED, C, Unit::Count, "Tasks accepted."),
        (names::SUCCEEDED, C, Unit::Count, "Tasks that succeeded."),
        (names::FAILED, C, Unit::Count, "Tasks that ended as failed."),
        (
            names::RETRIED,
            C,
            Unit::Count,
            "Failed attempts that will be retried.",
        ),
        (names::CANCELLED, C, Unit::Count, "Tasks cancelled."),
        (
            names::REJECTED,
            C,
            Unit::Count,
            "Submits refused because the queue was full.",
        ),
        (
            names::ATTEMPT_DURATION,
            H,
            Unit::Seconds,
            "How long attempts ran.",
        ),
        (
            names::SUBMIT_TO_START,
            H,
            Unit::Seconds,
            "From ready to the start of an attempt.",
        ),
        (
            names::CRON_SKIPPED,
            C,
            Unit::Count,
            "Cron slots skipped because the previous run still ran.",
        ),
        (
            names::CRON_LATENESS,
            H,
            Unit::Seconds,
            "From a cron slot's instant to its firing.",
        ),
        (
            names::FENCED,
            C,
            Unit::Count,
            "Changes dropped because the task had changed in the store first (another process or a newer attempt won).",
        ),
        (
            names::RESCUED,
            C,
            Unit::Count,
            "Running tasks of dead processes rescued (as crashed attempts) by this process.",
        ),
        (
            names::PEER_SUSPECT,
            C,
            Unit::Count,
            "Peers this node marked suspect because they stopped answering pings.",
        ),
        (
            names::MESH_DROPPED,
            C,
            Unit::Count,
            "Routing hints not sent because the peer had too many unconfirmed messages.",
        ),
    ]
};

/// Bucket bounds, in seconds, of every `*_seconds` histogram: 1 ms to 1 h.
pub const SECONDS_BUCKETS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0,
];

/// A Prometheus exporter builder that renders every `*_seconds` metric as a histogram with
/// [`SECONDS_BUCKETS`] (the exporter's default is a summary).
#[cfg(feature = "node")]
pub fn prometheus() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .expect("the buckets are not empty")
}

/// Describes every metric in [`DESCRIPTIONS`] to the installed recorder (the `# HELP`
/// lines), and registers the label-free cron skip counter at 0 so it shows before the first
/// skip. Call it once after installing the recorder.
pub fn describe() {
    for (name, kind, unit, help) in DESCRIPTIONS {
        match kind {
            MetricKind::Gauge => describe_gauge!(name, unit, help),
            MetricKind::Counter => describe_counter!(name, unit, help),
            MetricKind::Histogram => describe_histogram!(name, unit, help),
        }
    }
    counter!(names::CRON_SKIPPED).increment(0);
    counter!(names::FENCED).increment(0);
    counter!(names::RESCUED).increment(0);
    counter!(names::PEER_SUSPECT).increment(0);
    counter!(names::MESH_DROPPED).increment(0);
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
