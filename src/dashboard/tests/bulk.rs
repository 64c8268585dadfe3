//! Bulk actions: the permission checks, the dry run, the background walk, and the actor in
//! every task's events.

use axum::http::{header, StatusCode};

use super::*;
use crate::{TaskError, TaskState};

/// A guarded dashboard (kept, so a test can wait on its operations) and its router.
fn dashboard(system: &TaskSystem) -> (Dashboard, Router) {
    let config = UiConfig {
        operator_token: Some(Secret::new(OPERATOR)),
        viewer_token: Some(Secret::new(VIEWER)),
        ..UiConfig::default()
    };
    let d = Dashboard::new(system.clone(), config);
    let router = d.router();
    (d, router)
}

/// Waits until bulk operation `n` has ended.
async fn ended(d: &Dashboard, n: u64) {
    let op = d.ui.bulk.get(n).expect("the operation is remembered");
    op.ended.cancelled().await;
}

async fn states(system: &TaskSystem, ids: &[TaskId]) -> Vec<TaskState> {
    let mut out = vec![];
    for id in ids {
        out.push(system.get(*id).await.unwrap().status.state);
    }
    out
}

#[tokio::test]
async fn a_viewer_and_a_form_without_the_csrf_token_are_refused_bulk_actions() {
    let system = start().await;
    let id = held(&system).await;
    let (d, app) = dashboard(&system);
    let viewer = login(&app, VIEWER, "val").await;
    let csrf = get(&app, "/ui", Some(&viewer)).await.csrf();
    let olga = login(&app, OPERATOR, "olga").await;
    let body = format!("action=cancel&scope=selected&id={id}&confirm=yes");
    for path in [
        "/ui/bulk".to_string(),
        format!("/ui/bulk/{}/cancel", d.ui.bulk.next_id()),
    ] {
        let path = path.as_str();
        let a = post(&app, path, Some(&viewer), &format!("csrf={csrf}&{body}")).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.body);
        assert!(a.body.contains("read-only"), "{}", a.body);
        for form in [body.clone(), format!("csrf=forged&{body}")] {
            let a = post(&app, path, Some(&olga), &form).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path} {form}");
            assert!(a.body.contains("CSRF token is missing"), "{}", a.body);
        }
    }
    let page = get(&app, "/ui/tasks", Some(&viewer)).await;
    assert!(
        !page.body.contains("/ui/bulk"),
        "a viewer sees no bulk form"
    );
    assert_eq!(states(&system, &[id]).await, vec![TaskState::Pending]);
}

#[tokio::test]
async fn a_bulk_cancel_of_the_filter_counts_first_then_cancels_each_match_as_the_operator() {
    let system = start().await;
    let mut ids = vec![];
    for _ in 0..3 {
        ids.push(held(&system).await);
    }
    let (d, app) = dashboard(&system);
    let n = d.ui.bulk.next_id();
    let olga = login(&app, OPERATOR, "olga").await;
    let page = get(&app, "/ui/tasks?queue=held", Some(&olga)).await;
    assert!(
        page.body.contains("form=\"bulk\""),
        "checkboxes for an operator"
    );
    let form = format!("csrf={}&action=cancel&scope=filter&queue=held", page.csrf());
    let dry = post(&app, "/ui/bulk", Some(&olga), &form).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert!(dry.body.contains("<strong>3</strong>"), "{}", dry.body);
    assert!(dry.body.contains("name=\"confirm\" value=\"yes\""));
    assert_eq!(
        states(&system, &ids).await,
        vec![TaskState::Pending; 3],
        "a dry run"
    );
    let go = post(
        &app,
        "/ui/bulk",
        Some(&olga),
        &format!("{form}&confirm=yes"),
    )
    .await;
    assert_eq!(
        (go.status, go.header(header::LOCATION)),
        (StatusCode::SEE_OTHER, &*format!("/ui/bulk/{n}"))
    );
    ended(&d, n).await;
    assert_eq!(states(&system, &ids).await, vec![TaskState::Cancelled; 3]);
    for id in ids {
        let events = system.events(id).await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(
            (last.event.kind.name(), last.event.actor_id.as_deref()),
            ("cancelled", Some("ui:olga"))
        );
    }
    let progress = get(&app, &format!("/ui/bulk/{n}"), Some(&olga)).await;
    assert!(
        progress.body.contains("3 of 3 processed: 3 changed"),
        "{}",
        progress.body
    );
    assert!(progress.body.contains("finished"), "{}", progress.body);
}

#[tokio::test]
async fn a_bulk_action_on_the_selection_touches_only_the_selected_tasks() {
    let system = start().await;
    let (a, b, c) = (
        held(&system).await,
        held(&system).await,
        held(&system).await,
    );
    let (d, app) = dashboard(&system);
    let n = d.ui.bulk.next_id();
    let olga = login(&app, OPERATOR, "olga").await;
    let csrf = get(&app, "/ui/tasks", Some(&olga)).await.csrf();
    let form = format!("csrf={csrf}&action=cancel&scope=selected&id={a}&id={c}&confirm=yes");
    let go = post(&app, "/ui/bulk", Some(&olga), &form).await;
    assert_eq!(go.status, StatusCode::SEE_OTHER, "{}", go.body);
    ended(&d, n).await;
    assert_eq!(
        states(&system, &[a, b, c]).await,
        vec![
            TaskState::Cancelled,
            TaskState::Pending,
            TaskState::Cancelled
        ]
    );
    let none = format!("csrf={csrf}&action=cancel&scope=selected");
    let a = post(&app, "/ui/bulk", Some(&olga), &none).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    let bad = format!("csrf={csrf}&action=purge&scope=selected&id={b}");
    let a = post(&app, "/ui/bulk", Some(&olga), &bad).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
}

#[tokio::test]
async fn an_operator_cancels_a_bulk_operation_and_it_stops_and_an_unknown_one_is_reported_interrupted(
) {
    let system = start().await;
    let id = held(&system).await;
    let (d, app) = dashboard(&system);
    let n = d.ui.bulk.next_id();
    let olga = login(&app, OPERATOR, "olga").await;
    let csrf = get(&app, "/ui/tasks", Some(&olga)).await.csrf();
    let form = format!("csrf={csrf}&action=restart&scope=selected&id={id}&confirm=yes");
    post(&app, "/ui/bulk", Some(&olga), &form).await;
    let a = post(
        &app,
        &format!("/ui/bulk/{n}/cancel"),
        Some(&olga),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(
        (a.status, a.header(header::LOCATION)),
        (StatusCode::SEE_OTHER, &*format!("/ui/bulk/{n}"))
    );
    ended(&d, n).await;
    let page = get(&app, &format!("/ui/bulk/{n}"), Some(&olga)).await;
    assert!(page.body.contains("cancelled") || page.body.contains("finished"));
    assert!(!page.body.contains("Cancel the operation"), "{}", page.body);
    let gone = post(
        &app,
        &format!("/ui/bulk/{}/cancel", n + 9),
        Some(&olga),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let stale = get(&app, &format!("/ui/bulk/{}", n - 1), Some(&olga)).await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    assert!(
        stale.body.contains("is not known to this node")
            && stale
                .body
                .contains("before the node restarted was interrupted"),
        "an operation of an earlier run is reported as interrupted: {}",
        stale.body
    );
}

/// Starts a confirmed bulk `action` on the tasks of queue `held`; waits until it ends and
/// returns its progress page.
async fn bulk_on_held(d: &Dashboard, app: &Router, who: &str, action: &str, n: u64) -> String {
    let csrf = get(app, "/ui/tasks", Some(who)).await.csrf();
    let form = format!("csrf={csrf}&action={action}&scope=filter&queue=held");
    let dry = post(app, "/ui/bulk", Some(who), &form).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let go = post(app, "/ui/bulk", Some(who), &format!("{form}&confirm=yes")).await;
    assert_eq!(go.status, StatusCode::SEE_OTHER, "{}", go.body);
    ended(d, n).await;
    get(app, &format!("/ui/bulk/{n}"), Some(who)).await.body
}

#[tokio::test]
async fn a_bulk_retry_gives_each_failed_or_cancelled_task_one_more_attempt_and_skips_the_rest() {
    let system = start().await;
    let (a, b, c, d_) = (
        held(&system).await,
        held(&system).await,
        held(&system).await,
        held(&system).await,
    );
    for id in [a, b] {
        system.cancel(id, "setup").await.unwrap();
    }
    system.complete(d_, serde_json::json!(1)).await.unwrap();
    let (d, app) = dashboard(&system);
    let n = d.ui.bulk.next_id();
    let olga = login(&app, OPERATOR, "olga").await;
    let progress = bulk_on_held(&d, &app, &olga, "retry", n).await;
    assert!(
        progress.contains("4 of 4 processed: 2 changed, 2 skipped, 0 failed"),
        "{progress}"
    );
    assert_eq!(
        states(&system, &[a, b, c, d_]).await,
        vec![
            TaskState::Pending,
            TaskState::Pending,
            TaskState::Pending,
            TaskState::Succeeded
        ],
        "the cancelled ones wait again (their queue is paused); the others are as they were"
    );
    let last = system.events(a).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.event.kind.name(), last.event.actor_id.as_deref()),
        ("restarted", Some("ui:olga"))
    );
    let again = system.retry_by(a, "ui:olga").await;
    assert!(
        matches!(again, Err(TaskError::Transition(_))),
        "a waiting task is not retried: {again:?}"
    );
}

#[tokio::test]
async fn a_retried_failed_task_runs_a_new_attempt() {
    let system = start().await;
    let task = NewTask::new("fail", serde_json::json!({"message": "boom"})).max_attempts(1);
    let id = system.submit(task).await.unwrap().id;
    let _ = system.wait(id).await;
    let first = system.get(id).await.unwrap().status;
    assert_eq!((first.state, first.attempt), (TaskState::Failed, 1));
    system.retry_by(id, "ui:olga").await.unwrap();
    let _ = system.wait(id).await;
    let view = system.get(id).await.unwrap();
    assert_eq!(
        (view.status.state, view.status.attempt),
        (TaskState::Failed, 2),
        "one more attempt, which failed too"
    );
    let started = view
        .events
        .iter()
        .filter(|e| e.event.kind.name() == "started")
        .count();
    assert_eq!(started, 2);
}

#[tokio::test]
async fn a_bulk_delete_removes_only_ended_tasks_with_their_events() {
    let system = start().await;
    let (a, b, c) = (
        held(&system).await,
        held(&system).await,
        held(&system).await,
    );
    system.cancel(a, "setup").await.unwrap();
    system.complete(b, serde_json::json!(1)).await.unwrap();
    let (d, app) = dashboard(&system);
    let n = d.ui.bulk.next_id();
    let olga = login(&app, OPERATOR, "olga").await;
    let progress = bulk_on_held(&d, &app, &olga, "delete", n).await;
    assert!(
        progress.contains("3 of 3 processed: 2 changed, 1 skipped, 0 failed"),
        "{progress}"
    );
    for id in [a, b] {
        assert!(
            matches!(system.get(id).await, Err(TaskError::NotFound(_))),
            "{id} is gone"
        );
        assert!(system.status(id).is_err(), "and out of memory");
    }
    assert_eq!(states(&system, &[c]).await, vec![TaskState::Pending]);
    let total = system
        .count(crate::store::TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(total, 1);
}
