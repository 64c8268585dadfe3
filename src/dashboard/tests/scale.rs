//! Figures at scale (ignored; run by hand): what the dashboard's pages ask of a SQLite
//! store of `TASKMESH_UI_SCALE` tasks (default 1,000,000), and rendering a page of rows.
//!
//! `TASKMESH_UI_SCALE=1000000 cargo test --release --lib dashboard::tests::scale -- --ignored --nocapture`

use crate::store::prelude::*;
use std::time::{Duration, Instant};

use super::super::tasks::{self, ListQuery, PAGE};
use crate::bench::fill_list_store;
use crate::runtime::TaskStatus;
use crate::store::{SqliteStore, TaskFilter, TaskQuery};
use crate::TaskState;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The median of 5 runs of `f`.
async fn median<F, Fut>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut runs = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        f().await;
        runs.push(t.elapsed());
    }
    runs.sort();
    runs[2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure, not a check: fills a large store"]
async fn what_the_pages_cost_at_scale() {
    let n: u64 = std::env::var("TASKMESH_UI_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("taskmesh-ui-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(dir.join("t.db")).unwrap();
    let t = Instant::now();
    fill_list_store(&store, n).await.unwrap();
    println!("filled {n} tasks in {:.1} s", t.elapsed().as_secs_f64());

    let counts = median(|| async {
        for state in TaskState::ALL {
            let f = TaskFilter {
                state: Some(state),
                ..TaskFilter::default()
            };
            store.count(f).await.unwrap();
        }
    })
    .await;
    println!("8 counts per state, one after another: {}", ms(counts));
    let together = median(|| async {
        let reads = TaskState::ALL.map(|state| {
            store.count(TaskFilter {
                state: Some(state),
                ..TaskFilter::default()
            })
        });
        for n in futures::future::join_all(reads).await {
            n.unwrap();
        }
    })
    .await;
    println!(
        "overview snapshot, the 8 counts at once (as the snapshot reads them): {}",
        ms(together)
    );

    let page = |filter: TaskFilter, offset: u64| {
        let q = TaskQuery {
            filter,
            limit: PAGE,
            offset,
        };
        store.list(q)
    };
    let first = median(|| async {
        page(TaskFilter::default(), 0).await.unwrap();
    })
    .await;
    println!("tasks page 1, no filter (with its count): {}", ms(first));
    let succeeded = TaskFilter {
        state: Some(TaskState::Succeeded),
        ..TaskFilter::default()
    };
    let filtered = median(|| async {
        page(succeeded.clone(), 0).await.unwrap();
    })
    .await;
    println!("tasks page 1, state=succeeded: {}", ms(filtered));

    let mut q = ListQuery {
        state: Some(TaskState::Succeeded),
        ..ListQuery::default()
    };
    let rows = page(q.filter(), 0).await.unwrap().tasks;
    let statuses: Vec<TaskStatus> = rows
        .iter()
        .map(|r| TaskStatus::of(&r.task, &r.life, None))
        .collect();
    let mid = store
        .list(TaskQuery {
            filter: succeeded.clone(),
            limit: 1,
            offset: n / 8,
        })
        .await
        .unwrap();
    q.before = mid.tasks.first().map(|r| r.task.created_at);
    let deep = median(|| async {
        page(q.filter(), q.skip).await.unwrap();
    })
    .await;
    println!(
        "tasks page deep in the list (keyset, half-way): {}",
        ms(deep)
    );
    let offset = median(|| async {
        page(succeeded.clone(), n / 8).await.unwrap();
    })
    .await;
    println!("the same depth by OFFSET, for comparison: {}", ms(offset));
    let searched = ListQuery {
        error: Some("no such error text".into()),
        ..ListQuery::default()
    };
    let scan = median(|| async {
        let q = TaskQuery {
            filter: searched.filter(),
            limit: tasks::SCAN,
            offset: 0,
        };
        let page = store.list(q).await.unwrap();
        let hits = page
            .tasks
            .iter()
            .map(|r| TaskStatus::of(&r.task, &r.life, None));
        assert_eq!(hits.filter(|t| searched.error_matches(t)).count(), 0);
    })
    .await;
    println!(
        "tasks page with an error-text filter that matches nothing (scans {} rows): {}",
        tasks::SCAN,
        ms(scan)
    );
    let render = median(|| async {
        tasks::table(&statuses, true).into_string();
    })
    .await;
    println!("rendering {} rows: {}", statuses.len(), ms(render));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
