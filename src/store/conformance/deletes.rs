//! An operator's delete of ended tasks ([`TaskStore::delete_ended`](crate::store::TaskStore::delete_ended)).

use super::*;

/// Only the named tasks that have ended go (rows, events, crashes, unique keys), and the
/// counts by state follow (on PostgreSQL they come from `task_counts`); running, waiting
/// and unknown tasks are left alone; deleting again deletes nothing.
pub(super) async fn delete_ended_deletes_only_the_named_ended_tasks<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let failed = keyed(10, "k", TaskState::Failed);
    let cancelled = TaskRecord {
        life: life(TaskState::Cancelled, 0, 11),
        ..record(1)
    };
    let running = TaskRecord {
        life: life(TaskState::Running, 1, 12),
        ..record(2)
    };
    let pending = record(3);
    let other_failed = TaskRecord {
        life: life(TaskState::Failed, 1, 14),
        ..record(4)
    };
    let records = [failed, cancelled, running, pending, other_failed];
    put(&s, &records).await;
    let all = ids(&records);
    let evidence = vec![
        Write::Crash(crash(all[0], 9)),
        Write::Event(event(all[0], at(9), EventKind::Paused)),
    ];
    write(&s, evidence).await;
    let count = |state| {
        s.count(TaskFilter {
            state: Some(state),
            ..TaskFilter::default()
        })
    };
    assert_eq!(count(TaskState::Failed).await.unwrap(), 2);
    let named = vec![all[0], all[1], all[2], all[3], TaskId::new()];
    let mut gone = s.delete_ended(named.clone()).await.unwrap();
    gone.sort_unstable();
    let mut want = vec![all[0], all[1]];
    want.sort_unstable();
    assert_eq!(gone, want, "only the named ended tasks");
    let s = h.reopen(s).await;
    for id in &want {
        assert_eq!(s.get(*id).await.unwrap(), None);
        assert!(s.events(*id).await.unwrap().is_empty());
        assert!(s.crashes(*id).await.unwrap().is_empty());
    }
    assert_eq!(s.find_unique("k".into()).await.unwrap(), None);
    let count = |state| {
        s.count(TaskFilter {
            state: Some(state),
            ..TaskFilter::default()
        })
    };
    assert_eq!(count(TaskState::Failed).await.unwrap(), 1);
    assert_eq!(count(TaskState::Cancelled).await.unwrap(), 0);
    assert_eq!(count(TaskState::Running).await.unwrap(), 1);
    assert_eq!(s.count(TaskFilter::default()).await.unwrap(), 3);
    let (mut kept, mut left) = (listed(&s, TaskFilter::default()).await, all[2..].to_vec());
    kept.sort_unstable();
    left.sort_unstable();
    assert_eq!(kept, left);
    assert!(s.delete_ended(named).await.unwrap().is_empty());
    put(&s, &[keyed(40, "k", TaskState::Pending)]).await;
}
