//! prune_terminal and sweep_crashes.

use super::{at, create, event, hold, open, record, update, TempDir};
use crate::runtime::FailureKind;
use crate::store::prelude::*;
use crate::store::{Crash, EventKind, TaskFilter, TaskRecord, Write};
use crate::task::{TaskId, TaskState};

fn ended(state: TaskState, updated: u64, key: Option<&str>) -> TaskRecord {
    let mut r = record("k", at(0));
    r.life.state = state;
    r.life.updated_at = at(updated);
    r.task.unique_key = key.map(str::to_string);
    r
}

fn crash(id: TaskId, when: u64) -> Crash {
    Crash {
        task_id: id,
        at: at(when),
        attempt: 1,
        kind: FailureKind::Crashed,
        reason: "killed".into(),
    }
}

#[tokio::test]
async fn prune_terminal_removes_only_old_terminal_tasks_with_their_events_and_crashes() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let old: Vec<TaskRecord> = (0..1_001)
        .map(|_| ended(TaskState::Succeeded, 10, None))
        .collect();
    let old_failed = ended(TaskState::Failed, 10, Some("freed"));
    let old_cancelled = ended(TaskState::Cancelled, 10, None);
    let old_pending = ended(TaskState::Pending, 10, None);
    let new_done = ended(TaskState::Succeeded, 30, None);
    let keep = [&old_pending, &new_done];
    let gone: Vec<&TaskRecord> = old.iter().chain([&old_failed, &old_cancelled]).collect();
    let mut writes: Vec<Write> = gone.iter().copied().chain(keep).map(create).collect();
    for r in gone.iter().copied().chain(keep) {
        writes.push(Write::Event(event(r.task.id, EventKind::Restarted, at(5))));
        writes.push(Write::Crash(crash(r.task.id, 5)));
    }
    store.write(writes).await.unwrap();

    assert_eq!(store.prune_terminal(at(20)).await.unwrap(), 1_003);
    for r in gone {
        assert_eq!(store.get(r.task.id).await.unwrap(), None);
        assert!(store.events(r.task.id).await.unwrap().is_empty());
        assert!(store.crashes(r.task.id).await.unwrap().is_empty());
    }
    for r in keep {
        assert_eq!(store.get(r.task.id).await.unwrap().as_ref(), Some(r));
        assert_eq!(store.events(r.task.id).await.unwrap().len(), 2);
        assert_eq!(store.crashes(r.task.id).await.unwrap().len(), 1);
    }
    assert_eq!(store.find_unique("freed".into()).await.unwrap(), None);
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 2);
    assert_eq!(store.prune_terminal(at(20)).await.unwrap(), 0);
}

#[tokio::test]
async fn prune_sees_an_update_made_earlier_in_the_same_group() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let r = ended(TaskState::Running, 10, None);
    store.write(vec![create(&r)]).await.unwrap();
    let mut done = r.life.clone();
    done.state = TaskState::Succeeded;
    let (release, holding) = hold(&store);
    let finish = store.write(vec![update(
        r.task.id,
        &done,
        EventKind::Succeeded { result: 1.into() },
    )]);
    let pruned = store.prune_terminal(at(20));
    release.send(()).unwrap();
    holding.await.unwrap();
    finish.await.unwrap();
    let commits = store.commits();
    assert_eq!(pruned.await.unwrap(), 1);
    assert_eq!(
        store.commits(),
        commits,
        "the update and the prune shared a commit"
    );
    assert_eq!(store.get(r.task.id).await.unwrap(), None);
}

#[tokio::test]
async fn sweep_crashes_removes_only_old_entries() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let r = record("k", at(0));
    let id = r.task.id;
    let writes = vec![
        create(&r),
        Write::Crash(crash(id, 1)),
        Write::Crash(crash(id, 2)),
        Write::Crash(crash(id, 3)),
    ];
    store.write(writes).await.unwrap();
    assert_eq!(store.sweep_crashes(at(3)).await.unwrap(), 2);
    assert_eq!(store.crashes(id).await.unwrap(), vec![crash(id, 3)]);
    assert!(store.get(id).await.unwrap().is_some());
    assert_eq!(store.sweep_crashes(at(3)).await.unwrap(), 0);
}
