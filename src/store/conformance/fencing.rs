//! Conformance checks of conditional (fenced) transitions, for every store.

use serde_json::json;

use super::{at, crash, create, event, life, put, record, write, Harness};
use crate::store::prelude::*;
use crate::store::{EventKind, Fence, Owner, States, Transition, Write, WriteResult};
use crate::task::{TaskId, TaskState};

/// A claim (`WAITING` → running, attempt + 1) of `id` by `owner`, with a crash entry so
/// that a fenced-out claim can be seen to write no crash either.
fn claim(id: TaskId, attempt: u32, owner: Option<Owner>, fence: Fence, ms: u64) -> Write {
    let mut l = life(TaskState::Running, attempt, ms);
    l.owner = owner;
    let started = EventKind::Started {
        attempt,
        worker: None,
    };
    Write::Update(Box::new(Transition {
        id,
        life: l,
        events: vec![
            event(id, at(ms), started),
            event(id, at(ms), EventKind::Resumed),
        ],
        crash: Some(crash(id, ms)),
        fence: Some(fence),
    }))
}

/// A settle of attempt `attempt` as succeeded, fenced on running + attempt + owner.
fn settle(id: TaskId, attempt: u32, owner: Option<Owner>, ms: u64) -> Write {
    let mut l = life(TaskState::Succeeded, attempt, ms);
    l.result = Some(json!(attempt));
    l.owner = owner.clone();
    let done = EventKind::Succeeded {
        result: json!(attempt),
    };
    Write::fenced(
        id,
        l,
        event(id, at(ms), done),
        Fence::new(States::RUNNING, attempt, owner),
    )
}

/// Events, crashes and the (state, attempt) of `id`.
async fn seen<S: Store>(s: &S, id: TaskId) -> (usize, usize, Option<(TaskState, u32)>) {
    let r = s
        .get(id)
        .await
        .unwrap()
        .map(|r| (r.life.state, r.life.attempt));
    let events = s.events(id).await.unwrap().len();
    (events, s.crashes(id).await.unwrap().len(), r)
}

/// A fenced update applies only if the row (as the batch left it) passes the fence; one
/// that does not yields `Fenced` and writes nothing: no row change, no event, no crash.
pub(super) async fn a_fenced_update_applies_only_if_the_row_passes_its_fence<H: Harness>(
    h: &mut H,
) {
    use WriteResult::{Done, Fenced};
    let s = h.fresh().await;
    let r = record(0);
    let id = r.task.id;
    put(&s, std::slice::from_ref(&r)).await;
    let me = Some(Owner::new("a", 1));
    let wrong_state = Fence::new(States::RUNNING, 0, None);
    let wrong_attempt = Fence::new(States::WAITING, 1, None);
    let wrong_owner = Fence::new(States::WAITING, 0, me.clone());
    for fence in [wrong_state, wrong_attempt, wrong_owner] {
        let got = write(&s, vec![claim(id, 1, me.clone(), fence, 1)]).await;
        assert_eq!(got, vec![Fenced]);
        assert_eq!(seen(&s, id).await, (1, 0, Some((TaskState::Pending, 0))));
    }
    let holds = Fence::new(States::WAITING, 0, None);
    // Chained in one batch: the claim holds, the second claim then does not, the settle
    // of the new attempt holds, a settle of another owner does not.
    let batch = vec![
        claim(id, 1, me.clone(), holds.clone(), 2),
        claim(id, 1, me.clone(), holds, 3),
        settle(id, 1, Some(Owner::new("b", 2)), 4),
        settle(id, 1, me.clone(), 5),
    ];
    assert_eq!(write(&s, batch).await, vec![Done, Fenced, Fenced, Done]);
    assert_eq!(seen(&s, id).await, (4, 1, Some((TaskState::Succeeded, 1))));
    let late = write(&s, vec![settle(id, 1, me, 6)]).await;
    assert_eq!(late, vec![Fenced], "already settled");
    let unknown = write(&s, vec![settle(TaskId::new(), 1, None, 7)]).await;
    assert_eq!(unknown, vec![Fenced], "a fenced update of an unknown task");
    let s = h.reopen(s).await;
    assert_eq!(seen(&s, id).await, (4, 1, Some((TaskState::Succeeded, 1))));
}

/// A create and a fenced claim of it in one batch: the claim sees the created row.
pub(super) async fn a_task_created_and_claimed_in_one_batch_is_claimed<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let r = record(0);
    let id = r.task.id;
    let me = Some(Owner::new("a", 1));
    let holds = Fence::new(States::WAITING, 0, None);
    let batch = vec![create(&r), claim(id, 1, me.clone(), holds, 1)];
    assert_eq!(write(&s, batch).await, vec![WriteResult::Done; 2]);
    let got = s.get(id).await.unwrap().unwrap();
    assert_eq!((got.life.state, got.life.owner), (TaskState::Running, me));
    assert_eq!(seen(&s, id).await, (3, 1, Some((TaskState::Running, 1))));
}

/// A progress write asks that the row carries no stop request: once another process
/// stored one, the progress is refused and the request stays.
pub(super) async fn a_stored_stop_request_refuses_a_fence_that_asks_for_none<H: Harness>(
    h: &mut H,
) {
    use crate::store::Intent;
    let s = h.fresh().await;
    let r = record(0);
    let id = r.task.id;
    put(&s, std::slice::from_ref(&r)).await;
    let me = Some(Owner::new("a", 1));
    let holds = Fence::new(States::WAITING, 0, None);
    assert_eq!(
        write(&s, vec![claim(id, 1, me.clone(), holds, 1)]).await,
        vec![WriteResult::Done]
    );
    let running = Fence::new(States::RUNNING, 1, me.clone());
    let mut requested = life(TaskState::Running, 1, 2);
    requested.owner = me.clone();
    requested.intent = Some(Intent::Pause);
    let stop = EventKind::StopRequested {
        intent: Intent::Pause,
    };
    let request = Write::fenced(id, requested, event(id, at(2), stop), running.clone());
    assert_eq!(write(&s, vec![request]).await, vec![WriteResult::Done]);
    let mut progressed = life(TaskState::Running, 1, 3);
    progressed.owner = me;
    let progress = EventKind::Progress {
        percent: 50,
        message: "half".into(),
        phase: None,
    };
    let write_progress = |fence: Fence| {
        Write::fenced(
            id,
            progressed.clone(),
            event(id, at(3), progress.clone()),
            fence,
        )
    };
    let refused = write(&s, vec![write_progress(running.clone().unrequested())]).await;
    assert_eq!(
        refused,
        vec![WriteResult::Fenced],
        "the request is not erased"
    );
    let stored = s.get(id).await.unwrap().unwrap();
    assert_eq!(stored.life.intent, Some(Intent::Pause));
    let s = h.reopen(s).await;
    let allowed = write(&s, vec![write_progress(running)]).await;
    assert_eq!(
        allowed,
        vec![WriteResult::Done],
        "a fence that does not ask still holds"
    );
}
