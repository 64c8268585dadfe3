//! Lists and counts against a model: every filter field, pagination, totals.

use super::{at, create, open, record, TempDir};
use crate::store::prelude::*;
use crate::store::{TaskFilter, TaskQuery, TaskRecord};
use crate::task::TaskState;

/// The model of a filter: what the store must select.
fn matches(f: &TaskFilter, r: &TaskRecord) -> bool {
    let (t, l) = (&r.task, &r.life);
    f.state.is_none_or(|s| l.state == s)
        && f.queue.as_deref().is_none_or(|q| &*t.queue == q)
        && f.kind.as_deref().is_none_or(|k| &*t.kind == k)
        && f.phase.as_ref().is_none_or(|p| l.phase.as_ref() == Some(p))
        && f.created_by
            .as_ref()
            .is_none_or(|a| t.metadata.actor_id.as_ref() == Some(a))
        && f.created_after.is_none_or(|a| t.created_at >= a)
        && f.created_before.is_none_or(|b| t.created_at < b)
}

fn varied(i: u64) -> TaskRecord {
    let mut r = record(if i.is_multiple_of(3) { "x" } else { "y" }, at(i));
    r.task.queue = if i.is_multiple_of(2) { "a" } else { "b" }.into();
    r.task.metadata.actor_id = i.is_multiple_of(5).then(|| "ada".to_string());
    r.life.state = if i < 4 {
        TaskState::Succeeded
    } else {
        TaskState::Pending
    };
    r.life.phase = (i % 4 == 1).then(|| "fetch".to_string());
    r
}

#[tokio::test]
async fn list_filters_each_field_paginates_newest_first_and_reports_the_total() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let all: Vec<TaskRecord> = (0..20).map(varied).collect();
    store.write(all.iter().map(create).collect()).await.unwrap();
    let filters = [
        TaskFilter::default(),
        TaskFilter {
            state: Some(TaskState::Pending),
            ..TaskFilter::default()
        },
        TaskFilter {
            queue: Some("a".into()),
            ..TaskFilter::default()
        },
        TaskFilter {
            kind: Some("x".into()),
            ..TaskFilter::default()
        },
        TaskFilter {
            phase: Some("fetch".into()),
            ..TaskFilter::default()
        },
        TaskFilter {
            created_by: Some("ada".into()),
            ..TaskFilter::default()
        },
        TaskFilter {
            created_after: Some(at(5)),
            created_before: Some(at(15)),
            ..TaskFilter::default()
        },
        TaskFilter {
            state: Some(TaskState::Pending),
            queue: Some("b".into()),
            kind: Some("y".into()),
            ..TaskFilter::default()
        },
        TaskFilter {
            kind: Some("nope".into()),
            ..TaskFilter::default()
        },
    ];
    for filter in filters {
        let mut want: Vec<&TaskRecord> = all.iter().filter(|r| matches(&filter, r)).collect();
        want.reverse();
        assert_eq!(
            store.count(filter.clone()).await.unwrap(),
            want.len() as u64,
            "{filter:?}"
        );
        for (limit, offset) in [(3, 0), (3, 3), (100, 0), (5, 18), (0, 0)] {
            let query = TaskQuery {
                filter: filter.clone(),
                limit,
                offset,
            };
            let page = store.list(query).await.unwrap();
            let expect: Vec<TaskRecord> = want
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .map(|r| (*r).clone())
                .collect();
            assert_eq!(page.total, want.len() as u64, "{filter:?}");
            assert_eq!(
                page.tasks, expect,
                "{filter:?} limit {limit} offset {offset}"
            );
        }
    }
}

#[tokio::test]
async fn tasks_created_at_the_same_instant_list_by_id_descending() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let mut same: Vec<TaskRecord> = (0..5).map(|_| record("k", at(1))).collect();
    store
        .write(same.iter().map(create).collect())
        .await
        .unwrap();
    same.sort_by_key(|r| std::cmp::Reverse(r.task.id));
    let page = store
        .list(TaskQuery {
            limit: 10,
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.tasks, same);
}
