//! The Prometheus exposition a node serves: histograms with buckets, a `# HELP` line for
//! every metric, and no series left behind by a removed schedule. This binary installs a
//! global recorder, so it holds only this test.

mod common;

use chrono::{TimeZone, Utc};
use common::{next_start, unique_ns};
use taskmesh::scheduler::{ScheduleSpec, TokioClock};
use taskmesh::store::MemoryStore;
use taskmesh::telemetry::{self, MetricKind, DESCRIPTIONS};
use taskmesh::testing::{script, Script, ScriptHandler};
use taskmesh::{NewTask, TaskSystem};

#[tokio::test(start_paused = true)]
async fn metrics_are_described_histograms_and_removed_schedules_leave_no_series() {
    let handle = telemetry::prometheus()
        .install_recorder()
        .expect("the only recorder in this test binary");
    telemetry::describe();
    let (h, mut rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("prom"))
        .clock(TokioClock::starting_at(
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 5).unwrap(),
        ))
        .store(MemoryStore::new())
        .handler(h)
        .start()
        .await
        .unwrap();
    let task = NewTask::new("script", script(Script::Ok { value: 1.into() }));
    for name in ["doomed-a", "doomed-b"] {
        let spec = ScheduleSpec::new(name, "*/10 * * * * *", task.clone());
        sys.put_schedule(spec).await.unwrap();
    }
    next_start(&mut rx).await;
    next_start(&mut rx).await;
    let done = sys.submit_and_wait(task.clone()).await.unwrap();
    assert!(done.state.is_terminal());
    for name in ["doomed-a", "doomed-b"] {
        sys.remove_schedule(name).await.unwrap();
    }

    let text = handle.render();
    assert!(!text.contains("doomed"), "{text}");
    for (name, kind, _, help) in DESCRIPTIONS {
        assert!(
            text.contains(&format!("# HELP {name} {help}")),
            "{name}: {text}"
        );
        if kind == MetricKind::Histogram {
            assert!(
                text.contains(&format!("# TYPE {name} histogram")),
                "{name}: {text}"
            );
        }
    }
    assert!(
        text.contains("taskmesh_cron_lateness_seconds_bucket{le=\"0.001\"}"),
        "{text}"
    );
    assert!(!text.contains("quantile="), "{text}");
    sys.shutdown(std::time::Duration::from_secs(5)).await;
}
