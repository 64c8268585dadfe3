//! The live snapshot: built only while watched, shared, and streamed; keyset pages.

use std::time::Duration;

use axum::http::StatusCode;

use super::super::live::{Live, Snapshot};
use super::super::tasks::ListQuery;
use super::*;
use crate::TaskState;

#[tokio::test(start_paused = true)]
async fn the_ticker_runs_only_while_someone_watches_and_shares_one_snapshot() {
    let system = start().await;
    let live = std::sync::Arc::new(Live::new(system.clone(), Duration::from_secs(1), None));
    assert!(!live.ticking(), "nobody watches yet");
    let mut a = live.subscribe();
    let mut b = live.subscribe();
    assert!(live.ticking());
    a.changed().await.unwrap();
    b.changed().await.unwrap();
    let (sa, sb) = (a.borrow().clone().unwrap(), b.borrow().clone().unwrap());
    assert!(
        std::sync::Arc::ptr_eq(&sa, &sb),
        "one snapshot for every watcher"
    );
    held(&system).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    a.changed().await.unwrap();
    let pending = a.borrow().clone().unwrap().counts.clone().unwrap();
    assert!(pending.contains(&(TaskState::Pending, 1)), "{pending:?}");
    drop((a, b));
    while live.ticking() {
        tokio::time::advance(Duration::from_secs(1)).await;
        tokio::task::yield_now().await;
    }
    let _c = live.subscribe();
    assert!(live.ticking(), "a new watcher starts it again");
    live.stop();
}

#[tokio::test]
async fn the_stream_sends_each_live_region_and_ends_on_shutdown() {
    let system = start().await;
    let dashboard = Dashboard::new(system.clone(), UiConfig::default());
    let app = dashboard.router();
    let req = axum::http::Request::get("/ui/live")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body().into_data_stream();
    let mut text = String::new();
    while !text.contains("event: updated") {
        let chunk = futures::StreamExt::next(&mut body).await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.contains("event: counts") && text.contains("event: queues"),
        "{text}"
    );
    assert!(text.contains("/ui/tasks?state=pending"), "{text}");
    dashboard.shutdown();
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        chunk.unwrap();
    }
}

#[tokio::test]
async fn a_task_pages_stream_also_sends_the_tasks_fields() {
    let system = start().await;
    let id = held(&system).await;
    let app = open(&system);
    let req = axum::http::Request::get(format!("/ui/live?task={id}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let mut body = app
        .oneshot(req)
        .await
        .unwrap()
        .into_body()
        .into_data_stream();
    let mut text = String::new();
    while !text.contains("event: task") || !text.ends_with("\n\n") {
        let chunk = futures::StreamExt::next(&mut body).await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("state-pending"), "{text}");
}

#[tokio::test]
async fn keyset_pages_walk_every_task_once_even_when_creation_times_tie() {
    let system = start().await;
    let mut ids = vec![];
    for _ in 0..7 {
        ids.push(held(&system).await);
    }
    let mut query = ListQuery::default();
    let mut seen = vec![];
    loop {
        let page = system.list(query.filter(), 3, query.skip).await.unwrap();
        seen.extend(page.tasks.iter().map(|t| t.id));
        if page.total <= query.skip + page.tasks.len() as u64 {
            break;
        }
        query = query.next(&page.tasks).unwrap();
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");

    let mut tied = system
        .list(ListQuery::default().filter(), 3, 0)
        .await
        .unwrap()
        .tasks;
    let t = tied[0].created_at;
    tied.iter_mut().for_each(|s| s.created_at = t);
    let next = ListQuery::default().next(&tied).unwrap();
    assert_eq!((next.before, next.skip), (Some(t), 3));
    let after = next.next(&tied).unwrap();
    assert_eq!(after.skip, 6, "a run of equal times adds up across pages");
    assert!(next.href().contains("before=") && next.href().contains("skip=3"));
}

#[tokio::test]
async fn a_page_reuses_a_fresh_snapshot() {
    let system = start().await;
    let live = Live::new(system.clone(), Duration::from_secs(3600), None);
    let first = live.current().await;
    held(&system).await;
    let second = live.current().await;
    assert!(std::sync::Arc::ptr_eq(&first, &second));
    let direct = Snapshot::build(&system).await;
    assert!(direct.counts.unwrap().contains(&(TaskState::Pending, 1)));
}
