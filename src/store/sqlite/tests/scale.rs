//! The page query on a million tasks. Ignored by default; run it with
//! `cargo test --release --lib store::sqlite::tests::scale -- --ignored --nocapture`.

use crate::store::prelude::*;
use std::time::{Duration, Instant};

use super::{at, create, open, record, TempDir};
use crate::store::{Store, TaskFilter, TaskQuery};
use crate::task::TaskState;

const TASKS: u64 = 1_000_000;
const STATES: [TaskState; 8] = TaskState::ALL;

/// The fastest of a few runs of `query` (the first warms the cache), and its page.
async fn time_list(store: &impl Store, query: &TaskQuery) -> (Duration, usize, u64) {
    let mut best = Duration::MAX;
    let mut shape = (0, 0);
    for _ in 0..5 {
        let start = Instant::now();
        let page = store.list(query.clone()).await.unwrap();
        best = best.min(start.elapsed());
        shape = (page.tasks.len(), page.total);
    }
    (best, shape.0, shape.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "loads a million tasks; run with --release --ignored"]
async fn a_filtered_page_of_a_thousand_out_of_a_million_tasks_is_fast() {
    let dir = TempDir::new();
    let store = open(&dir.file("scale.db"));
    let start = Instant::now();
    for chunk in 0..TASKS / 10_000 {
        let writes = (chunk * 10_000..(chunk + 1) * 10_000)
            .map(|i| {
                let mut r = record(&format!("kind{}", i % 10), at(i));
                r.task.queue = format!("q{}", i % 4).into();
                r.life.state = STATES[(i % 8) as usize];
                r.task.metadata.actor_id = Some(format!("user{}", i % 100));
                create(&r)
            })
            .collect();
        store.write(writes).await.unwrap();
    }
    println!("loaded {TASKS} tasks in {:?}", start.elapsed());

    let pending = TaskFilter {
        state: Some(TaskState::Pending),
        ..TaskFilter::default()
    };
    let cases = [
        ("state", pending.clone()),
        (
            "state+queue",
            TaskFilter {
                queue: Some("q1".into()),
                ..pending.clone()
            },
        ),
        (
            "created_by",
            TaskFilter {
                created_by: Some("user7".into()),
                ..TaskFilter::default()
            },
        ),
        (
            "created range",
            TaskFilter {
                created_after: Some(at(200_000)),
                created_before: Some(at(600_000)),
                ..TaskFilter::default()
            },
        ),
        (
            "state+kind",
            TaskFilter {
                kind: Some("kind3".into()),
                ..pending.clone()
            },
        ),
        (
            "queue+kind",
            TaskFilter {
                queue: Some("q3".into()),
                kind: Some("kind3".into()),
                ..TaskFilter::default()
            },
        ),
        ("none", TaskFilter::default()),
    ];
    let mut worst = Duration::ZERO;
    for (name, filter) in cases {
        let query = TaskQuery {
            filter,
            limit: 1_000,
            offset: 0,
        };
        let (took, n, total) = time_list(&store, &query).await;
        println!("list by {name}: {n} of {total} in {took:?}");
        assert_eq!(n, 1_000);
        worst = worst.max(took);
    }
    let deep = TaskQuery {
        filter: pending,
        limit: 1_000,
        offset: 100_000,
    };
    let (took, n, total) = time_list(&store, &deep).await;
    println!("list by state at offset 100000: {n} of {total} in {took:?}");
    drop(store);
    let start = Instant::now();
    drop(open(&dir.file("scale.db")));
    println!("reopened (with quick_check) in {:?}", start.elapsed());
    if !cfg!(debug_assertions) {
        assert!(
            worst <= Duration::from_millis(20),
            "worst page query {worst:?}"
        );
    }
}
