//! Criterion benchmarks of the hot paths: one submit-and-wait round trip, a batch of
//! no-op tasks from concurrent submitters, the priority queue and the state machine; and
//! on SQLite: end to end with 256 submitters, 16 concurrent acknowledgements, one
//! sequential submitter (create), get, and a filtered page of 1,000 out of 1,000,000.
//! The end-to-end comparison with raw tokio, and latency percentiles, live in
//! `taskmesh bench`.
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use taskmesh::queue::PriorityQueue;
use taskmesh::task::{transition, Event};
use taskmesh::{
    Handler, HandlerResult, NewTask, Outcome, Priority, QueueConfig, TaskContext, TaskState,
    TaskSystem,
};

struct Noop;
impl Handler for Noop {
    const KIND: &'static str = "noop";
    type Args = u64;
    type Output = ();
    async fn perform(&self, _: TaskContext, _: u64) -> HandlerResult<()> {
        Ok(Outcome::Succeeded(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn system(rt: &tokio::runtime::Runtime, ns: &str) -> TaskSystem {
    rt.block_on(
        TaskSystem::builder()
            .namespace(ns)
            .queue(QueueConfig::new("default").bound(1_000_000))
            .retention(Duration::from_secs(1), 10_000)
            .handler(Noop)
            .start(),
    )
    .expect("the bench system starts")
}

fn end_to_end(c: &mut Criterion) {
    let rt = runtime();
    let sys = system(&rt, "crit-e2e");
    c.bench_function("submit_and_wait one no-op task", |b| {
        b.to_async(&rt).iter(|| async {
            let r = sys
                .submit_and_wait(NewTask::new("noop", 1.into()))
                .await
                .unwrap();
            assert_eq!(r.state, TaskState::Succeeded);
        })
    });
    let mut group = c.benchmark_group("no-op tasks, 16 submitters");
    const BATCH: u64 = 16 * 256;
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("4096 tasks", |b| {
        b.to_async(&rt).iter(|| async {
            let subs = (0..16).map(|_| {
                let sys = sys.clone();
                tokio::spawn(async move {
                    for i in 0..256u64 {
                        sys.submit_and_wait(NewTask::new("noop", i.into()))
                            .await
                            .unwrap();
                    }
                })
            });
            futures::future::join_all(subs).await;
        })
    });
    group.finish();
    rt.block_on(sys.shutdown(Duration::from_secs(5)));
}

fn queue_ops(c: &mut Criterion) {
    c.bench_function("priority queue push+pop 1000", |b| {
        b.iter_batched(
            PriorityQueue::<u64>::new,
            |mut q| {
                for i in 0..1000u64 {
                    q.push(Priority::ALL[(i % 5) as usize], i);
                }
                while q.pop().is_some() {}
                q
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("state transition", |b| {
        b.iter(|| transition(std::hint::black_box(TaskState::Running), Event::Retry))
    });
}

fn durable(c: &mut Criterion) {
    let rt = runtime();
    let dir = std::env::temp_dir().join(format!("taskmesh-crit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let store = taskmesh::store::SqliteStore::open(dir.join("bench.db")).expect("the store opens");
    let sys = rt
        .block_on(
            TaskSystem::builder()
                .namespace("crit-durable")
                .store(store)
                .handler(Noop)
                .start(),
        )
        .expect("the durable system starts");
    c.bench_function("sqlite: durable submit (create), one submitter", |b| {
        b.to_async(&rt).iter(|| async {
            sys.submit(NewTask::new("noop", 1.into())).await.unwrap();
        })
    });
    let id = rt
        .block_on(sys.submit_and_wait(NewTask::new("noop", 2.into())))
        .unwrap()
        .id;
    c.bench_function("sqlite: get (status, events, crash history)", |b| {
        b.to_async(&rt)
            .iter(|| async { sys.get(id).await.unwrap() })
    });
    c.bench_function(
        "sqlite: 16 concurrent durable submits (acknowledged)",
        |b| {
            b.to_async(&rt).iter(|| async {
                let subs = (0..16u64).map(|i| sys.submit(NewTask::new("noop", i.into())));
                for r in futures::future::join_all(subs).await {
                    r.unwrap();
                }
            })
        },
    );
    let mut group = c.benchmark_group("sqlite: end to end, 256 submitters");
    group.throughput(Throughput::Elements(256 * 8));
    group.sample_size(20);
    group.bench_function("2048 tasks", |b| {
        b.to_async(&rt).iter(|| async {
            let subs = (0..256).map(|_| {
                let sys = sys.clone();
                tokio::spawn(async move {
                    for i in 0..8u64 {
                        sys.submit_and_wait(NewTask::new("noop", i.into()))
                            .await
                            .unwrap();
                    }
                })
            });
            futures::future::join_all(subs).await;
        })
    });
    group.finish();
    rt.block_on(sys.shutdown(Duration::from_secs(5)));
    std::fs::remove_dir_all(&dir).ok();
}

fn list_page(c: &mut Criterion) {
    use taskmesh::bench::{fill_list_store, list_page_filter};
    use taskmesh::store::{SqliteStore, TaskQuery, TaskStore};
    let rt = runtime();
    let dir = std::env::temp_dir().join(format!("taskmesh-crit-list-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let store = SqliteStore::open(dir.join("list.db")).expect("the store opens");
    rt.block_on(fill_list_store(&store, 1_000_000))
        .expect("the store fills");
    let mut group = c.benchmark_group("sqlite: list");
    group.sample_size(20);
    group.bench_function("filtered page of 1000 of 1000000, with the total", |b| {
        b.to_async(&rt).iter(|| async {
            let query = TaskQuery {
                filter: list_page_filter(),
                limit: 1000,
                offset: 0,
            };
            let page = store.list(query).await.unwrap();
            assert_eq!(page.tasks.len(), 1000);
        })
    });
    group.finish();
    drop(store);
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, end_to_end, durable, list_page, queue_ops);
criterion_main!(benches);
