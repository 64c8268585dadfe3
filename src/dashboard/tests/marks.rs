//! The overview's marks: recorded by the watcher from the node's state, drawn on the
//! throughput chart and listed in words.

use std::time::{Duration, SystemTime};

use super::super::chart::{self, Ago};
use super::super::live::Live;
use super::super::marks::{Mark, MarkKind};
use super::super::metrics::Sample;
use super::*;

/// Advances paused time a tick at a time until `live` has recorded `n` marks.
async fn marks_after(live: &Live, n: usize) -> Vec<Mark> {
    for _ in 0..20 {
        let marks = live.recorded();
        if marks.len() >= n {
            return marks;
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        tokio::task::yield_now().await;
    }
    panic!("expected {n} marks, got {:?}", live.recorded());
}

#[tokio::test(start_paused = true)]
async fn queue_pauses_and_resumes_become_marks_in_the_overviews_snapshot() {
    let system = start().await;
    let live = Live::new(system.clone(), Duration::from_secs(1), None);
    live.watch_marks();
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_secs(1)).await;
    tokio::task::yield_now().await;
    system.resume_queue("held").unwrap();
    let first = marks_after(&live, 1).await;
    assert_eq!(
        (first[0].kind.clone(), first[0].subject.as_str()),
        (MarkKind::QueueResumed, "held")
    );
    system.pause_queue("held").unwrap();
    let both = marks_after(&live, 2).await;
    assert_eq!(both[1].kind, MarkKind::QueuePaused);
    assert!(
        !live.ticking(),
        "no stream watches: the watcher recorded them without the ticker"
    );
    let snapshot = live.current().await;
    assert_eq!(
        snapshot.marks, both,
        "the snapshot carries the marks of the window"
    );
    let html = super::super::metrics::view(None, &snapshot.marks()).into_string();
    assert!(
        html.contains("queue held paused") && html.contains("queue held resumed"),
        "{html}"
    );
    live.stop();
}

#[test]
fn the_chart_draws_a_line_per_rate_and_a_titled_mark_escaped() {
    let at = SystemTime::now();
    let hostile = Mark {
        at: at - Duration::from_secs(30),
        kind: MarkKind::BreakerTripped,
        subject: "<script>alert(1)</script>".into(),
    };
    let old = Mark {
        at: at - Duration::from_secs(120),
        ..hostile.clone()
    };
    let marks = [old, hostile];
    let window = Ago::window(&marks, at);
    assert_eq!(window.len(), 1, "a mark older than the window is left out");
    let series = [
        Sample {
            ago: Duration::from_secs(60),
            per_second: [1.0, 2.0, 0.0, 0.0],
        },
        Sample {
            ago: Duration::ZERO,
            per_second: [4.0, 3.0, 1.0, 0.0],
        },
    ];
    let html = chart::throughput(&series, &window).into_string();
    assert_eq!(html.matches("<polyline").count(), 4, "{html}");
    assert!(
        html.contains(r#"class="line s-started" points="40.0,92.5 600.0,10.0""#),
        "1/s a minute ago at the left, 4/s (the top) now at the right: {html}"
    );
    assert!(
        html.contains(r#"class="mark mark-breaker" x1="320.0""#),
        "half-way: {html}"
    );
    assert!(
        html.contains(
            "<title>breaker of kind &lt;script&gt;alert(1)&lt;/script&gt; opened</title>"
        ),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains(
            r#"aria-label="Tasks per second over the last 60 s (highest 4.0/s), 1 mark(s)""#
        ),
        "{html}"
    );
}
