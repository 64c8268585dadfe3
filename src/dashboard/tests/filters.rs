//! The error-text filter: a case-insensitive substring of the last error, in the URL, read
//! by a bounded scan from the cursor, and honoured by a bulk action on the filter.

use axum::http::StatusCode;

use super::super::tasks::{short, SCAN};
use super::*;
use crate::TaskState;

/// A task of kind `fail` that failed its only attempt with `message`.
async fn failed(system: &TaskSystem, message: &str) -> TaskId {
    let task = NewTask::new("fail", serde_json::json!({ "message": message })).max_attempts(1);
    let id = system.submit(task).await.unwrap().id;
    let _ = system.wait(id).await;
    assert_eq!(system.status(id).unwrap().state, TaskState::Failed);
    id
}

#[tokio::test]
async fn the_error_filter_keeps_the_tasks_whose_last_error_contains_the_text_in_any_case() {
    let system = start().await;
    let busy = failed(&system, "upstream said 503 <b>busy</b>").await;
    let full = failed(&system, "disk full").await;
    let app = open(&system);
    for text in ["503", "UPSTREAM%20said"] {
        let a = get(&app, &format!("/ui/tasks?error={text}"), None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(
            a.body.contains(short(&busy.to_string())),
            "{text}: {}",
            a.body
        );
        assert!(
            !a.body.contains(short(&full.to_string())),
            "{text}: {}",
            a.body
        );
        assert!(a.body.contains("1 whose last error contains"), "{}", a.body);
    }
    let a = get(&app, "/ui/tasks?error=%3Cb%3E", None).await;
    assert!(
        a.body.contains("value=\"&lt;b&gt;\""),
        "the filter keeps its text, escaped"
    );
    assert!(
        !a.body.contains("<b>busy"),
        "the error is escaped: {}",
        a.body
    );
    let none = get(&app, "/ui/tasks?error=nothing-like-it", None).await;
    assert!(none.body.contains("No task matches."), "{}", none.body);
}

#[tokio::test]
async fn a_page_of_the_error_filter_reads_at_most_the_scan_budget_and_goes_on_from_there() {
    let system = start().await;
    let old = failed(&system, "rare boom").await;
    for i in 0..SCAN {
        let task = NewTask::new("noop", serde_json::json!({ "n": i })).auto_start(false);
        system.submit(task).await.unwrap();
    }
    let app = open(&system);
    let first = get(&app, "/ui/tasks?error=boom", None).await;
    assert!(
        first.body.contains(&format!(
            "0 whose last error contains “boom” among the next {SCAN} of {}",
            SCAN + 1
        )),
        "{}",
        first.body
    );
    assert!(!first.body.contains(short(&old.to_string())));
    let start = first
        .body
        .find("rel=\"next\" href=\"")
        .expect("an older page")
        + 17;
    let next = &first.body[start..];
    let next = next[..next.find('"').unwrap()].replace("&amp;", "&");
    assert!(
        next.contains("error=boom"),
        "the filter stays in the URL: {next}"
    );
    let second = get(&app, &next, None).await;
    assert!(
        second.body.contains(short(&old.to_string())),
        "{}",
        second.body
    );
    assert!(
        second
            .body
            .contains("1 whose last error contains “boom” among the next 1 of 1"),
        "{}",
        second.body
    );
}

#[tokio::test]
async fn a_bulk_retry_on_the_filter_changes_only_the_tasks_whose_error_matches() {
    let system = start().await;
    let busy = failed(&system, "upstream said 503").await;
    let full = failed(&system, "disk full").await;
    let config = UiConfig::default();
    let dashboard = Dashboard::new(system.clone(), config);
    let app = dashboard.router();
    let n = dashboard.ui.bulk.next_id();
    let csrf = get(&app, "/ui/tasks", None).await.csrf();
    let form = format!("csrf={csrf}&action=retry&scope=filter&state=failed&error=503");
    let dry = post(&app, "/ui/bulk", None, &form).await;
    assert!(
        dry.body
            .contains("only those whose last error contains the text"),
        "{}",
        dry.body
    );
    let go = post(&app, "/ui/bulk", None, &format!("{form}&confirm=yes")).await;
    assert_eq!(go.status, StatusCode::SEE_OTHER, "{}", go.body);
    dashboard.ui.bulk.get(n).unwrap().ended.cancelled().await;
    let _ = system.wait(busy).await;
    assert_eq!(system.get(busy).await.unwrap().status.attempt, 2, "retried");
    assert_eq!(
        system.get(full).await.unwrap().status.attempt,
        1,
        "left alone"
    );
    let page = get(&app, &format!("/ui/bulk/{n}"), None).await;
    assert!(
        page.body.contains("2 of 2 processed: 1 changed, 1 skipped"),
        "{}",
        page.body
    );
}

#[test]
fn the_node_filter_lives_in_the_url_and_reaches_the_store_filter() {
    let raw: std::collections::HashMap<String, String> = [("node", "n2"), ("state", "failed")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let q = super::super::tasks::ListQuery::parse(&raw).unwrap();
    assert_eq!(q.node.as_deref(), Some("n2"));
    assert_eq!(q.filter().node.as_deref(), Some("n2"));
    assert!(q.href().contains("node=n2"), "{}", q.href());
    let back: std::collections::HashMap<String, String> = q
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(super::super::tasks::ListQuery::parse(&back).unwrap(), q);
}

#[tokio::test]
async fn a_node_filter_on_a_node_outside_a_cluster_keeps_its_choice_and_matches_nothing() {
    let system = start().await;
    failed(&system, "boom").await;
    let app = open(&system);
    let all = get(&app, "/ui/tasks", None).await;
    assert!(!all.body.contains("filter-node"), "no node filter alone");
    assert!(!all.body.contains(">node</th>"), "no node column alone");
    let a = get(&app, "/ui/tasks?node=%3Cn%3E", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        a.body.contains("filter-node"),
        "the chosen node stays shown"
    );
    assert!(
        a.body.contains("value=\"&lt;n&gt;\" selected"),
        "{}",
        a.body
    );
    assert!(a.body.contains("No task matches."), "{}", a.body);
}

#[test]
fn the_table_shows_each_tasks_node_once_any_task_ran_on_one() {
    let mut r = crate::store::conformance::record_of("k", std::time::SystemTime::now());
    let (task, life) = (r.task, &mut r.life);
    let alone = crate::TaskStatus::of(&task, life, None);
    life.ran_on = Some("<n1>".into());
    let there = crate::TaskStatus::of(&task, life, None);
    let html = super::super::tasks::table(std::slice::from_ref(&alone), false).into_string();
    assert!(!html.contains(">node</th>"), "{html}");
    let html = super::super::tasks::table(&[there, alone], false).into_string();
    assert!(html.contains(">node</th>"), "{html}");
    assert!(html.contains("<td>&lt;n1&gt;</td>"), "{html}");
}
