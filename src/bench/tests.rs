//! The bench harness at small N: every mode runs each task once, reports what it measured,
//! and leaves no PostgreSQL database behind.

use super::*;
use crate::testing::pg::{DEFAULT_URL, REQUIRE_ENV, URL_ENV};

fn open_loop(store: BenchStore, tasks: usize, nodes: usize) -> OpenLoopConfig {
    OpenLoopConfig {
        tasks,
        producers: 8,
        workers: (2, 8),
        store,
        nodes,
    }
}

fn temp_db(test: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("taskmesh-bench-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("bench.db")
}

/// The test server's admin URL, or `None` (printing why) when none answers and
/// `TASKMESH_REQUIRE_PG` is not 1.
async fn pg_url() -> Option<String> {
    let url = std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_URL.to_owned());
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(_) => Some(url),
        Err(e) if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") => {
            panic!("{REQUIRE_ENV}=1 but no PostgreSQL server answers: {e}")
        }
        Err(e) => {
            println!("skipped: no PostgreSQL server answers: {e}");
            None
        }
    }
}

/// Bench databases of this process still on the server.
async fn leftover_databases(url: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let pattern = format!("taskmesh_bench_{}_%", std::process::id());
    let rows = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            &[&pattern],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_in_memory_counts_each_task_once() {
    let r = run_open_loop(open_loop(BenchStore::Memory, 500, 1))
        .await
        .unwrap();
    assert_eq!((r.handler_runs, r.failed), (500, 0), "{r}");
    assert!(
        r.end_to_end_per_s > 0.0 && r.enqueue_per_s >= r.end_to_end_per_s,
        "{r}"
    );
    assert!(r.ack_latency_us.p50 > 0.0, "{r}");
    assert_eq!(
        (r.commits, r.stored_per_s),
        (None, None),
        "no store, nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_on_sqlite_stores_every_end_with_group_commits() {
    let path = temp_db("open-sqlite");
    let r = run_open_loop(open_loop(BenchStore::Sqlite(path.clone()), 400, 1)).await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    let r = r.unwrap();
    assert_eq!((r.handler_runs, r.failed), (400, 0), "{r}");
    let stored = r.stored_per_s.expect("a store counts its ends");
    assert!(
        stored <= r.end_to_end_per_s,
        "ends are stored after they happen: {r}"
    );
    let commits = r.commits.expect("a store counts its commits");
    assert!(commits > 0 && commits < 3 * 400, "group commit: {r}");
}

#[tokio::test]
async fn several_nodes_are_refused_without_postgres() {
    let err = run_open_loop(open_loop(BenchStore::Memory, 10, 2))
        .await
        .unwrap_err();
    assert!(matches!(err, BenchError::Invalid(_)), "{err}");
    assert!(
        err.to_string()
            .contains("expected --nodes 1 on memory, got 2"),
        "{err}"
    );
    let err = run_open_loop(open_loop(BenchStore::Memory, 0, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, BenchError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn an_unreachable_admin_url_names_the_database_and_masks_the_password() {
    let store = BenchStore::Postgres("postgres://u:hunter2@127.0.0.1:1/postgres".into());
    let err = run_open_loop(open_loop(store, 10, 1)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            BenchError::Database {
                doing: "connect to",
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("taskmesh_bench_") && !text.contains("hunter2"),
        "{text}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the driver's error is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_benches_run_each_task_once_and_drop_their_databases() {
    let Some(url) = pg_url().await else { return };
    let store = BenchStore::Postgres(url.clone());
    let one = run_open_loop(open_loop(store.clone(), 300, 1))
        .await
        .unwrap();
    let two = run_open_loop(open_loop(store.clone(), 300, 2))
        .await
        .unwrap();
    for r in [&one, &two] {
        assert_eq!((r.handler_runs, r.failed), (300, 0), "{r}");
        assert!(
            r.stored_per_s.is_some() && r.commits.is_some_and(|c| c > 0),
            "{r}"
        );
    }
    let nodes = NodesReport::new(one, two);
    assert!(nodes.ratio > 0.0, "{nodes}");
    let closed = run(BenchConfig {
        tasks: 100,
        concurrency: 4,
        workers: (2, 8),
        store,
        submit_only: false,
    })
    .await
    .unwrap();
    assert_eq!(
        (closed.failed, closed.store.as_str()),
        (0, "postgres"),
        "{closed}"
    );
    assert_eq!(leftover_databases(&url).await, Vec::<String>::new());
}
