//! Metrics reach an installed recorder. This binary installs a global recorder, so it
//! holds only this test.

mod common;

use std::time::Duration;

use common::{builder, task};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::TaskState;

/// A metric's name, labels and value.
type Row = (String, Vec<(String, String)>, DebugValue);

fn counter(snapshot: &[Row], name: &str, kind: Option<&str>) -> u64 {
    snapshot
        .iter()
        .filter(|(n, labels, _)| {
            n == name && kind.is_none_or(|k| labels.iter().any(|(l, v)| l == "kind" && v == k))
        })
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

#[tokio::test(start_paused = true)]
async fn counters_and_histograms_follow_task_outcomes() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this test binary");

    let (h, _rx) = ScriptHandler::new();
    let sys = builder("metrics", h.with_max_attempts(2))
        .start()
        .await
        .unwrap();
    let ok = sys
        .submit_and_wait(task(Script::Ok { value: 0.into() }))
        .await
        .unwrap();
    let failed = sys
        .submit_and_wait(task(Script::Fail {
            message: "x".into(),
        }))
        .await
        .unwrap();
    let cancelled = sys
        .submit_and_wait(task(Script::Cancel { reason: "r".into() }))
        .await
        .unwrap();
    assert_eq!(
        (ok.state, failed.state, cancelled.state),
        (
            TaskState::Succeeded,
            TaskState::Failed,
            TaskState::Cancelled
        )
    );
    common::advance_and_settle(&sys, Duration::from_millis(200)).await; // the pool tick samples gauges

    let snapshot: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            let labels = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            (key.name().to_string(), labels, value)
        })
        .collect();
    let script = Some("script");
    assert_eq!(
        counter(&snapshot, "taskmesh_tasks_submitted_total", None),
        3
    );
    assert_eq!(
        counter(&snapshot, "taskmesh_tasks_succeeded_total", script),
        1
    );
    assert_eq!(counter(&snapshot, "taskmesh_tasks_failed_total", script), 1);
    assert_eq!(
        counter(&snapshot, "taskmesh_tasks_retried_total", script),
        1
    );
    assert_eq!(
        counter(&snapshot, "taskmesh_tasks_cancelled_total", script),
        1
    );
    let attempts = snapshot
        .iter()
        .find_map(|(n, _, v)| match (n.as_str(), v) {
            ("taskmesh_attempt_duration_seconds", DebugValue::Histogram(h)) => Some(h.len()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        attempts, 4,
        "one duration per attempt: ok, fail twice, cancel"
    );
    let workers = snapshot
        .iter()
        .find(|(n, _, _)| n == "taskmesh_workers")
        .map(|(_, _, v)| v);
    assert!(
        matches!(workers, Some(DebugValue::Gauge(g)) if g.into_inner() == 2.0),
        "{workers:?}"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}
