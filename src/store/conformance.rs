//! The conformance suite every [`Store`] must pass, and a model-based property test.
//!
//! Every check is generic over a [`Harness`], so a store plugs in with a harness and two
//! tests: one awaiting [`run_all`], one calling [`model_property`] (outside any runtime).

mod breakers;
mod coordination;
mod deletes;
mod fencing;
mod leases;

pub(crate) use breakers::run_breakers;
pub(crate) use coordination::run_shared;
pub(crate) use leases::run_leases;

use crate::store::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};
use serde_json::json;

use super::{
    Crash, EventKind, Intent, Life, MemoryStore, Page, Store, StoreError, StoredEvent, TaskEvent,
    TaskFilter, TaskQuery, TaskRecord, Write, WriteResult,
};
use crate::context::Progress;
use crate::runtime::{AttemptError, FailureKind};
use crate::task::{transition, Backoff, Event, Metadata, Priority, Task, TaskId, TaskState};

/// Creates stores for the suite and can reopen one (same data, new instance).
pub(crate) trait Harness {
    /// The store under test.
    type S: Store;
    /// An empty store, independent of every other one this harness made.
    async fn fresh(&mut self) -> Self::S;
    /// Closes `s` and opens its data again as a new instance.
    async fn reopen(&mut self, s: Self::S) -> Self::S;
}

/// Runs every check of the suite; panics on the first failure.
pub(crate) async fn run_all<H: Harness>(h: &mut H) {
    a_created_task_and_its_events_read_back_exactly(h).await;
    a_duplicate_unique_key_writes_nothing(h).await;
    writes_for_an_unknown_task_are_ignored(h).await;
    events_keep_write_order_with_increasing_seq(h).await;
    list_filters_on_each_field(h).await;
    count_matches_the_list_total(h).await;
    list_is_newest_first_and_pages_with_a_total(h).await;
    open_tasks_exclude_terminal_tasks_oldest_first(h).await;
    prune_terminal_deletes_only_terminal_tasks_updated_before_the_cutoff(h).await;
    sweep_crashes_deletes_only_entries_before_the_cutoff(h).await;
    find_unique_names_the_holder_until_it_is_pruned(h).await;
    deletes::delete_ended_deletes_only_the_named_ended_tasks(h).await;
    a_fresh_store_is_writable(h).await;
    schedules_are_stored_replaced_deleted_and_survive_a_reopen(h).await;
    many_schedules_are_put_at_once_and_survive_a_reopen(h).await;
    fencing::a_fenced_update_applies_only_if_the_row_passes_its_fence(h).await;
    fencing::a_task_created_and_claimed_in_one_batch_is_claimed(h).await;
    fencing::a_stored_stop_request_refuses_a_fence_that_asks_for_none(h).await;
}

async fn many_schedules_are_put_at_once_and_survive_a_reopen<H: Harness>(h: &mut H) {
    use crate::scheduler::{ScheduleRecord, ScheduleSpec};
    let at = chrono::DateTime::from_timestamp(1_735_689_600, 0).expect("2025");
    let record = |i: usize| ScheduleRecord {
        spec: ScheduleSpec::new(
            format!("s{i:03}"),
            "@daily",
            crate::task::NewTask::new("k", serde_json::json!(i)),
        ),
        last_slot: Some(at + chrono::Duration::seconds(i as i64)),
        last_task: None,
        created_at: at,
        updated_at: at,
        version: 0,
    };
    let store = h.fresh().await;
    store.put_schedule(record(0)).await.unwrap();
    let many: Vec<ScheduleRecord> = (0..200).map(record).collect();
    store.put_schedules(many.clone()).await.unwrap();
    store.put_schedules(vec![]).await.unwrap();
    let store = h.reopen(store).await;
    assert_eq!(
        unversioned(store.schedules().await.unwrap()),
        many,
        "each stored once, by name"
    );
}

async fn schedules_are_stored_replaced_deleted_and_survive_a_reopen<H: Harness>(h: &mut H) {
    use crate::scheduler::{ScheduleRecord, ScheduleSpec};
    use chrono::TimeZone;
    let at = chrono::Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let record = |name: &str, cron: &str| ScheduleRecord {
        spec: ScheduleSpec::new(
            name,
            cron,
            crate::task::NewTask::new("k", serde_json::json!({"a": 1})),
        ),
        last_slot: Some(at),
        last_task: Some(crate::task::TaskId::new()),
        created_at: at,
        updated_at: at,
        version: 0,
    };
    let store = h.fresh().await;
    store.put_schedule(record("b", "@daily")).await.unwrap();
    store.put_schedule(record("a", "@hourly")).await.unwrap();
    let replaced = record("b", "0 */5 * * * *");
    store.put_schedule(replaced.clone()).await.unwrap();
    let store = h.reopen(store).await;
    let all = unversioned(store.schedules().await.unwrap());
    let names: Vec<&str> = all.iter().map(|r| r.spec.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "by name");
    assert_eq!(all[1], replaced, "replaced by name, read back exactly");
    assert!(store.delete_schedule("a".into()).await.unwrap());
    assert!(
        !store.delete_schedule("a".into()).await.unwrap(),
        "already gone"
    );
    let store = h.reopen(store).await;
    assert_eq!(
        unversioned(store.schedules().await.unwrap()),
        vec![replaced]
    );
}

/// The records without their versions, which only stores several processes share keep
/// (checked by `leases`).
fn unversioned(
    records: Vec<crate::scheduler::ScheduleRecord>,
) -> Vec<crate::scheduler::ScheduleRecord> {
    records
        .into_iter()
        .map(|r| crate::scheduler::ScheduleRecord { version: 0, ..r })
        .collect()
}

/// The in-memory store; a clone is a reopening.
pub(crate) struct MemoryHarness;

impl Harness for MemoryHarness {
    type S = MemoryStore;
    async fn fresh(&mut self) -> MemoryStore {
        MemoryStore::new()
    }
    async fn reopen(&mut self, s: MemoryStore) -> MemoryStore {
        s.clone()
    }
}

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    let store = MemoryHarness.fresh().await;
    assert_eq!((store.name(), store.durable()), ("memory", false));
    run_all(&mut MemoryHarness).await;
}

/// A memory store shared like a database (`MemoryStore::shared`); a clone is a reopening.
pub(crate) struct SharedMemoryHarness;

impl Harness for SharedMemoryHarness {
    type S = MemoryStore;
    async fn fresh(&mut self) -> MemoryStore {
        MemoryStore::shared()
    }
    async fn reopen(&mut self, s: MemoryStore) -> MemoryStore {
        s.clone()
    }
}

#[tokio::test]
async fn a_shared_memory_store_passes_the_coordination_checks() {
    run_all(&mut SharedMemoryHarness).await;
    run_shared(&mut SharedMemoryHarness).await;
    run_leases(&mut SharedMemoryHarness).await;
    run_breakers(&mut SharedMemoryHarness).await;
}

#[test]
fn memory_store_matches_the_model_across_reopenings() {
    model_property(&mut MemoryHarness);
}

// SqliteHarness: lives beside its store, in `sqlite/tests/conformance.rs` (a file per
// fresh store in a temporary directory; reopen drops the store and opens the file again),
// with the same two tests as above.

// ---- Helpers -------------------------------------------------------------------------

/// A fixed instant plus `ms`, so boundaries are exact in any store.
fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
}

/// A bare life in `state`, last updated at `ms`.
fn life(state: TaskState, attempt: u32, ms: u64) -> Life {
    life_at(state, attempt, at(ms))
}

pub(crate) fn life_at(state: TaskState, attempt: u32, when: SystemTime) -> Life {
    Life {
        state,
        attempt,
        max_attempts: 3,
        result: None,
        error: None,
        cancel_reason: None,
        progress: None,
        phase: None,
        due_at: None,
        restarts: 0,
        updated_at: when,
        intent: None,
        owner: None,
        ran_on: None,
    }
}

/// A pending task of kind "k" in queue "default", created (and updated) at `ms`.
fn record(ms: u64) -> TaskRecord {
    record_of("k", at(ms))
}

/// A pending task of `kind` in queue "default", created (and updated) at `created`. Also
/// used by the SQLite store's own tests.
pub(crate) fn record_of(kind: &str, created: SystemTime) -> TaskRecord {
    let task = Task {
        id: TaskId::new(),
        kind: kind.into(),
        args: json!({"n": 1}),
        queue: "default".into(),
        priority: Priority::Normal,
        timeout: Duration::from_secs(30),
        max_attempts: 3,
        backoff: Backoff::default(),
        unique_key: None,
        run_at: None,
        metadata: Metadata::default(),
        title: None,
        auto_restart: 0,
        created_at: created,
    };
    TaskRecord {
        task,
        life: life_at(TaskState::Pending, 0, created),
    }
}

/// A task in `state` holding `key`.
fn keyed(ms: u64, key: &str, state: TaskState) -> TaskRecord {
    let mut r = record(ms);
    r.task.unique_key = Some(key.into());
    r.life.state = state;
    r
}

fn event(task_id: TaskId, at: SystemTime, kind: EventKind) -> TaskEvent {
    TaskEvent {
        task_id,
        at,
        kind,
        actor_id: None,
        correlation_id: None,
    }
}

/// The create of `r` with its `created` event.
fn create(r: &TaskRecord) -> Write {
    let created = event(r.task.id, r.task.created_at, EventKind::Created);
    Write::Create(Box::new(r.clone()), created)
}

/// Moves `id` to `life` with a `restarted` event.
fn update(id: TaskId, life: Life) -> Write {
    let e = event(id, life.updated_at, EventKind::Restarted);
    Write::update(id, life, e)
}

fn crash(task_id: TaskId, ms: u64) -> Crash {
    Crash {
        task_id,
        at: at(ms),
        attempt: 1,
        kind: FailureKind::Crashed,
        reason: "worker died".into(),
    }
}

async fn write<S: Store>(s: &S, batch: Vec<Write>) -> Vec<WriteResult> {
    s.write(batch).await.expect("write")
}

/// Creates every record; each must be accepted.
async fn put<S: Store>(s: &S, records: &[TaskRecord]) {
    let got = write(s, records.iter().map(create).collect()).await;
    assert_eq!(got, vec![WriteResult::Done; records.len()]);
}

fn everything(filter: TaskFilter) -> TaskQuery {
    TaskQuery {
        filter,
        limit: 10_000,
        offset: 0,
    }
}

async fn listed<S: Store>(s: &S, filter: TaskFilter) -> Vec<TaskId> {
    ids(&s.list(everything(filter)).await.expect("list").tasks)
}

fn ids(records: &[TaskRecord]) -> Vec<TaskId> {
    records.iter().map(|r| r.task.id).collect()
}

// ---- Checks --------------------------------------------------------------------------

/// A task with every field set, at nanosecond times, and one event of every kind.
async fn a_created_task_and_its_events_read_back_exactly<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let rec = full_record();
    let id = rec.task.id;
    let mut batch = vec![create(&rec)];
    batch.extend(every_event_kind(id).into_iter().map(Write::Event));
    let mut later = rec.life.clone();
    later.state = TaskState::Succeeded;
    later.result = Some(json!({"ok": [1, "two", null]}));
    batch.push(update(id, later.clone()));
    let written: Vec<TaskEvent> = batch.iter().map(event_of).collect();
    let n = written.len();
    assert_eq!(write(&s, batch).await, vec![WriteResult::Done; n]);
    let want = TaskRecord {
        life: later,
        ..rec.clone()
    };
    let before = (s.get(id).await.unwrap(), s.events(id).await.unwrap());
    assert_eq!(before.0.as_ref(), Some(&want));
    let events: Vec<TaskEvent> = before.1.iter().map(|e| e.event.clone()).collect();
    assert_eq!(events, written);
    let s = h.reopen(s).await;
    assert_eq!(
        (s.get(id).await.unwrap(), s.events(id).await.unwrap()),
        before
    );
}

fn event_of(w: &Write) -> TaskEvent {
    match w {
        Write::Create(_, e) | Write::Event(e) => e.clone(),
        Write::Update(t) => t.events[0].clone(),
        Write::Crash(_) => unreachable!("no crash in this batch"),
    }
}

fn full_record() -> TaskRecord {
    let mut r = record(0);
    let t = &mut r.task;
    t.args = json!({"to": "a@b.c", "n": [1, 2, {"deep": true}]});
    t.queue = "mail".into();
    t.priority = Priority::High;
    t.timeout = Duration::from_millis(1500);
    t.max_attempts = 5;
    t.backoff = Backoff {
        base: Duration::from_millis(250),
        max: Duration::from_secs(9),
    };
    t.unique_key = Some("welcome:42".into());
    t.run_at = Some(at(5_000) + Duration::from_nanos(7));
    t.metadata = Metadata {
        actor_id: Some("alice".into()),
        correlation_id: Some("req-1".into()),
    };
    t.title = Some("Welcome é".into());
    t.auto_restart = 2;
    t.created_at = at(1) + Duration::from_nanos(123);
    r.life = full_life();
    r
}

fn full_life() -> Life {
    Life {
        state: TaskState::Running,
        attempt: 2,
        max_attempts: 6,
        result: None,
        error: Some(attempt_error()),
        cancel_reason: Some("operator".into()),
        progress: Some(Progress {
            percent: 40,
            message: "halfway".into(),
            at: at(3) + Duration::from_nanos(9),
        }),
        phase: Some("upload".into()),
        due_at: Some(at(9_000) + Duration::from_nanos(1)),
        restarts: 1,
        updated_at: at(4) + Duration::from_nanos(456),
        intent: Some(Intent::Cancel {
            reason: "operator".into(),
        }),
        owner: Some(super::Owner::new("node-a", 7)),
        ran_on: Some("node-a".into()),
    }
}

fn attempt_error() -> AttemptError {
    AttemptError {
        attempt: 1,
        kind: FailureKind::Panicked,
        message: "boom \"quoted\"".into(),
    }
}

fn every_event_kind(id: TaskId) -> Vec<TaskEvent> {
    let kinds = vec![
        EventKind::Started {
            attempt: 1,
            worker: Some("w-1".into()),
        },
        EventKind::Progress {
            percent: 50,
            message: "half".into(),
            phase: Some("upload".into()),
        },
        EventKind::AttemptFailed {
            error: attempt_error(),
        },
        EventKind::RetryScheduled {
            attempt: 2,
            at: at(10) + Duration::from_nanos(3),
        },
        EventKind::Snoozed { until: at(20) },
        EventKind::Paused,
        EventKind::Resumed,
        EventKind::Crashed {
            crash: crash(id, 30),
        },
        EventKind::Restarted,
        EventKind::StopRequested {
            intent: Intent::Complete {
                result: json!({"n": 12}),
            },
        },
        EventKind::Failed {
            error: attempt_error(),
        },
        EventKind::Cancelled {
            reason: "no longer needed".into(),
        },
        EventKind::Succeeded { result: json!(7) },
    ];
    let mut events: Vec<TaskEvent> = kinds.into_iter().map(|k| event(id, at(2), k)).collect();
    events[0].actor_id = Some("taskmesh".into());
    events[0].correlation_id = Some("req-1".into());
    events
}

/// Across batches and within one; the rest of the batch still applies.
async fn a_duplicate_unique_key_writes_nothing<H: Harness>(h: &mut H) {
    use WriteResult::{Done, Duplicate};
    let s = h.fresh().await;
    let a = keyed(0, "k", TaskState::Pending);
    put(&s, std::slice::from_ref(&a)).await;
    let b = keyed(1, "k", TaskState::Pending);
    let c = keyed(2, "other", TaskState::Pending);
    let d = keyed(3, "other", TaskState::Running);
    let ghost_event = event(b.task.id, at(4), EventKind::Paused);
    let batch = vec![
        create(&b),
        create(&c),
        create(&d),
        Write::Event(ghost_event),
    ];
    let (a, c) = (a.task.id, c.task.id);
    assert_eq!(
        write(&s, batch).await,
        vec![Duplicate(a), Done, Duplicate(c), Done]
    );
    for refused in [b.task.id, d.task.id] {
        assert_eq!(s.get(refused).await.unwrap(), None);
        assert!(s.events(refused).await.unwrap().is_empty());
    }
    assert_eq!(s.count(TaskFilter::default()).await.unwrap(), 2);
    assert_eq!(s.find_unique("k".into()).await.unwrap(), Some(a));
    assert_eq!(s.find_unique("other".into()).await.unwrap(), Some(c));
    put(&s, &[record(5), record(6)]).await; // no key, no clash
}

async fn writes_for_an_unknown_task_are_ignored<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (ghost, known) = (TaskId::new(), record(0));
    let batch = vec![
        update(ghost, life(TaskState::Running, 1, 1)),
        Write::Event(event(ghost, at(1), EventKind::Paused)),
        create(&known),
    ];
    assert_eq!(write(&s, batch).await, vec![WriteResult::Done; 3]);
    assert_eq!(s.get(ghost).await.unwrap(), None);
    assert!(s.events(ghost).await.unwrap().is_empty());
    assert_eq!(listed(&s, TaskFilter::default()).await, vec![known.task.id]);
    assert_eq!(s.events(known.task.id).await.unwrap().len(), 1);
}

/// Two interleaved streams: each in write order, and `seq` increasing across the store
/// from one acknowledged write to the next, also after a reopening. (Events of two tasks
/// in one write may take their numbers in either order.)
async fn events_keep_write_order_with_increasing_seq<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (record(0), record(1));
    let (x, y) = (a.task.id, b.task.id);
    let progress = |id, p| event(id, at(2), progress_kind(p));
    let batches = vec![
        vec![create(&a), create(&b)],
        vec![Write::Event(progress(y, 1)), Write::Event(progress(x, 2))],
        vec![
            update(x, life(TaskState::Running, 1, 3)),
            Write::Event(progress(y, 3)),
        ],
        vec![Write::Event(progress(x, 4))],
    ];
    // Each event with the number of the write that made it.
    let mut written: Vec<(usize, TaskEvent)> = Vec::new();
    for (n, batch) in batches.into_iter().enumerate() {
        written.extend(batch.iter().map(|w| (n, event_of(w))));
        write(&s, batch).await;
    }
    let s = h.reopen(s).await;
    let late = event(y, at(5), EventKind::Paused);
    write(&s, vec![Write::Event(late.clone())]).await;
    written.push((written.len(), late));
    let mut stored = s.events(x).await.unwrap();
    stored.extend(s.events(y).await.unwrap());
    stored.sort_by_key(|e| e.seq);
    assert!(stored.windows(2).all(|w| w[0].seq < w[1].seq), "{stored:?}");
    let write_of = |e: &TaskEvent| {
        let found = written.iter().find(|(_, w)| w == e);
        found
            .map(|(n, _)| *n)
            .expect("every stored event was written")
    };
    let order: Vec<usize> = stored.iter().map(|e| write_of(&e.event)).collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "writes out of order: {order:?}"
    );
    for id in [x, y] {
        let mine = |e: &TaskEvent| e.task_id == id;
        let stored: Vec<&TaskEvent> = stored
            .iter()
            .map(|e| &e.event)
            .filter(|e| mine(e))
            .collect();
        let wrote: Vec<&TaskEvent> = written.iter().map(|(_, e)| e).filter(|e| mine(e)).collect();
        assert_eq!(stored, wrote);
    }
    assert_eq!(stored.len(), written.len());
}

fn progress_kind(percent: u8) -> EventKind {
    EventKind::Progress {
        percent,
        message: format!("{percent}%"),
        phase: None,
    }
}

/// Filters, each with the indexes of the tasks it selects, newest first.
type FilterCases = Vec<(TaskFilter, Vec<usize>)>;

/// Six tasks that differ in one field each, and the filters that pick them out.
fn filter_cases() -> (Vec<TaskRecord>, FilterCases) {
    use TaskState::Running;
    let mut r: Vec<TaskRecord> = (0..6).map(|i| record(i * 10)).collect();
    r[1].task.queue = "mail".into();
    r[2].task.kind = "email".into();
    r[3].life = life(Running, 1, 30);
    r[3].life.phase = Some("upload".into());
    r[4].task.metadata.actor_id = Some("alice".into());
    r[5].task.queue = "mail".into();
    r[5].task.metadata.actor_id = Some("alice".into());
    r[5].life.state = Running;
    r[5].life.ran_on = Some("n2".into());
    r[2].life.ran_on = Some("n1".into());
    type Set = fn(&mut TaskFilter);
    let cases: Vec<(Set, Vec<usize>)> = vec![
        (|_| {}, vec![5, 4, 3, 2, 1, 0]),
        (|f| f.state = Some(Running), vec![5, 3]),
        (|f| f.queue = Some("mail".into()), vec![5, 1]),
        (|f| f.kind = Some("email".into()), vec![2]),
        (|f| f.phase = Some("upload".into()), vec![3]),
        (|f| f.created_by = Some("alice".into()), vec![5, 4]),
        (|f| f.node = Some("n2".into()), vec![5]),
        (|f| f.node = Some("n3".into()), vec![]),
        (
            |f| (f.node, f.kind) = (Some("n1".into()), Some("email".into())),
            vec![2],
        ),
        (|f| f.created_after = Some(at(20)), vec![5, 4, 3, 2]),
        (|f| f.created_before = Some(at(20)), vec![1, 0]),
        (
            |f| (f.created_after, f.created_before) = (Some(at(10)), Some(at(40))),
            vec![3, 2, 1],
        ),
        (
            |f| {
                (f.queue, f.created_by, f.state) =
                    (Some("mail".into()), Some("alice".into()), Some(Running))
            },
            vec![5],
        ),
        (
            |f| (f.queue, f.kind) = (Some("mail".into()), Some("email".into())),
            vec![],
        ),
    ];
    let cases = cases.into_iter().map(|(set, want)| {
        let mut filter = TaskFilter::default();
        set(&mut filter);
        (filter, want)
    });
    (r, cases.collect())
}

/// Each field alone, a time window (after inclusive, before exclusive), and fields AND-ed.
async fn list_filters_on_each_field<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (records, cases) = filter_cases();
    put(&s, &records).await;
    for (filter, want) in cases {
        let page = s.list(everything(filter.clone())).await.unwrap();
        let want: Vec<TaskId> = want.iter().map(|&i| records[i].task.id).collect();
        assert_eq!(ids(&page.tasks), want, "{filter:?}");
        assert_eq!(page.total, want.len() as u64, "{filter:?}");
    }
}

async fn count_matches_the_list_total<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (records, cases) = filter_cases();
    put(&s, &records).await;
    for (filter, _) in cases {
        let total = s.list(everything(filter.clone())).await.unwrap().total;
        assert_eq!(s.count(filter.clone()).await.unwrap(), total, "{filter:?}");
    }
}

/// Ties on `created_at` go to the larger id first; pages concatenate to the whole list.
async fn list_is_newest_first_and_pages_with_a_total<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let records: Vec<TaskRecord> = [0, 10, 10, 10, 20].into_iter().map(record).collect();
    put(&s, &records).await;
    let mut tied = ids(&records[1..4]);
    tied.sort_unstable_by(|a, b| b.cmp(a));
    let want = [vec![records[4].task.id], tied, vec![records[0].task.id]].concat();
    assert_eq!(listed(&s, TaskFilter::default()).await, want);
    let page = |limit, offset| {
        s.list(TaskQuery {
            filter: TaskFilter::default(),
            limit,
            offset,
        })
    };
    let mut pages: Vec<TaskId> = Vec::new();
    for offset in [0, 2, 4] {
        let Page { tasks, total } = page(2, offset).await.unwrap();
        assert_eq!(total, 5);
        pages.extend(ids(&tasks));
    }
    assert_eq!(pages, want);
    for (limit, offset) in [(2, 5), (2, 99), (0, 0)] {
        let empty = page(limit, offset).await.unwrap();
        assert_eq!((empty.tasks.len(), empty.total), (0, 5), "{limit} {offset}");
    }
}

const STATES: [TaskState; 8] = TaskState::ALL;

/// One task per state, created in scrambled order, plus a tie; a task that ends drops out.
async fn open_tasks_exclude_terminal_tasks_oldest_first<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let times = [70, 10, 50, 10, 30, 0, 60, 20];
    let records: Vec<TaskRecord> = STATES
        .iter()
        .zip(times)
        .map(|(&state, ms)| TaskRecord {
            life: life(state, 0, ms),
            ..record(ms)
        })
        .collect();
    put(&s, &records).await;
    let mut open: Vec<&TaskRecord> = records
        .iter()
        .filter(|r| !r.life.state.is_terminal())
        .collect();
    open.sort_by_key(|r| (r.task.created_at, r.task.id));
    let want: Vec<TaskId> = open.iter().map(|r| r.task.id).collect();
    assert_eq!(ids(&s.open_tasks().await.unwrap()), want);
    let ended = want[0];
    write(&s, vec![update(ended, life(TaskState::Cancelled, 0, 80))]).await;
    assert_eq!(ids(&s.open_tasks().await.unwrap()), want[1..]);
}

/// The cutoff is exclusive; rows, events, crashes and the unique key go, and survive a
/// reopening gone.
async fn prune_terminal_deletes_only_terminal_tasks_updated_before_the_cutoff<H: Harness>(
    h: &mut H,
) {
    let s = h.fresh().await;
    let old_done = keyed(10, "a", TaskState::Succeeded);
    let old_cancelled = TaskRecord {
        life: life(TaskState::Cancelled, 0, 0),
        ..record(0)
    };
    let at_cutoff = TaskRecord {
        life: life(TaskState::Failed, 1, 20),
        ..record(1)
    };
    let old_running = TaskRecord {
        life: life(TaskState::Running, 1, 5),
        ..record(2)
    };
    let late = TaskRecord {
        life: life(TaskState::Cancelled, 0, 30),
        ..record(3)
    };
    let records = [old_done, old_cancelled, at_cutoff, old_running, late];
    put(&s, &records).await;
    let gone = ids(&records[..2]);
    let evidence = vec![
        Write::Crash(crash(gone[0], 9)),
        Write::Event(event(gone[0], at(9), EventKind::Paused)),
    ];
    write(&s, evidence).await;
    assert_eq!(s.prune_terminal(at(20)).await.unwrap(), 2);
    let s = h.reopen(s).await;
    for id in &gone {
        assert_eq!(s.get(*id).await.unwrap(), None);
        assert!(s.events(*id).await.unwrap().is_empty());
        assert!(s.crashes(*id).await.unwrap().is_empty());
    }
    let (mut kept, mut want) = (listed(&s, TaskFilter::default()).await, ids(&records[2..]));
    kept.sort_unstable();
    want.sort_unstable();
    assert_eq!(kept, want);
    assert_eq!(s.find_unique("a".into()).await.unwrap(), None);
    put(&s, &[keyed(40, "a", TaskState::Pending)]).await;
    assert_eq!(s.prune_terminal(at(20)).await.unwrap(), 0);
}

/// The cutoff is exclusive; crashes read back oldest first whatever the write order, also
/// through `history`.
async fn sweep_crashes_deletes_only_entries_before_the_cutoff<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (record(0), record(1));
    put(&s, &[a.clone(), b.clone()]).await;
    let (a, b) = (a.task.id, b.task.id);
    let crashes = [crash(a, 30), crash(a, 10), crash(a, 20), crash(b, 5)];
    write(&s, crashes.iter().cloned().map(Write::Crash).collect()).await;
    let oldest_first = vec![crashes[1].clone(), crashes[2].clone(), crashes[0].clone()];
    assert_eq!(s.crashes(a).await.unwrap(), oldest_first);
    let (events, crashes) = s.history(a).await.unwrap();
    assert_eq!(events, s.events(a).await.unwrap(), "history has the events");
    assert_eq!(crashes, oldest_first, "history has the crashes");
    assert_eq!(s.sweep_crashes(at(20)).await.unwrap(), 2);
    let s = h.reopen(s).await;
    assert_eq!(s.crashes(a).await.unwrap(), oldest_first[1..]);
    assert!(s.crashes(b).await.unwrap().is_empty());
    assert_eq!(s.sweep_crashes(at(20)).await.unwrap(), 0);
}

async fn find_unique_names_the_holder_until_it_is_pruned<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let holder = keyed(0, "job:1", TaskState::Running);
    let id = holder.task.id;
    put(&s, &[holder, record(1)]).await;
    assert_eq!(s.find_unique("job:1".into()).await.unwrap(), Some(id));
    assert_eq!(s.find_unique("job:2".into()).await.unwrap(), None);
    write(&s, vec![update(id, life(TaskState::Succeeded, 1, 5))]).await;
    assert_eq!(s.find_unique("job:1".into()).await.unwrap(), Some(id));
    s.prune_terminal(at(6)).await.unwrap();
    assert_eq!(s.find_unique("job:1".into()).await.unwrap(), None);
}

async fn a_fresh_store_is_writable<H: Harness>(h: &mut H) {
    h.fresh().await.check_writable().await.expect("writable");
}

// ---- The model -----------------------------------------------------------------------

/// What a task manager does to a task; illegal ones are skipped, as it would refuse them.
#[derive(Clone, Copy, Debug)]
enum Action {
    Start,
    Complete,
    Cancel,
    Pause,
    Resume,
    Crash,
}

#[derive(Clone, Debug)]
enum Op {
    Create { key: Option<u8>, auto_start: bool },
    Act(Action, Index),
    Reopen,
}

impl Action {
    fn event(self) -> Event {
        match self {
            Self::Start => Event::Start,
            Self::Complete => Event::Succeed,
            Self::Cancel => Event::Cancel,
            Self::Pause => Event::Pause,
            Self::Resume => Event::Resume,
            Self::Crash => Event::Interrupt,
        }
    }

    /// The event kind the manager records, and the crash entry for a crash.
    fn records(self, id: TaskId, attempt: u32, ms: u64) -> (EventKind, Option<Crash>) {
        let kind = match self {
            Self::Start => EventKind::Started {
                attempt,
                worker: None,
            },
            Self::Complete => EventKind::Succeeded { result: json!(1) },
            Self::Cancel => EventKind::Cancelled {
                reason: "user".into(),
            },
            Self::Pause => EventKind::Paused,
            Self::Resume => EventKind::Resumed,
            Self::Crash => {
                let c = Crash {
                    attempt,
                    ..crash(id, ms)
                };
                return (EventKind::Crashed { crash: c.clone() }, Some(c));
            }
        };
        (kind, None)
    }
}

fn op() -> impl Strategy<Value = Op> {
    let action = prop_oneof![
        Just(Action::Start),
        Just(Action::Complete),
        Just(Action::Cancel),
        Just(Action::Pause),
        Just(Action::Resume),
        Just(Action::Crash),
    ];
    let new_task = (proptest::option::of(0u8..4), proptest::bool::weighted(0.8));
    prop_oneof![
        2 => new_task.prop_map(|(key, auto_start)| Op::Create { key, auto_start }),
        6 => (action, any::<Index>()).prop_map(|(a, i)| Op::Act(a, i)),
        1 => Just(Op::Reopen),
    ]
}

/// What the store must hold for one task.
#[derive(Clone, Copy, Debug)]
struct Expected {
    state: TaskState,
    attempt: u32,
    events: usize,
    crashes: usize,
}

#[derive(Default)]
struct Model {
    tasks: BTreeMap<TaskId, Expected>,
    /// Ids in creation order (creation times strictly increase).
    order: Vec<TaskId>,
    keys: HashMap<String, TaskId>,
    clock: u64,
}

/// Random sequences of create, start, complete, cancel, pause, resume and crash, with
/// random reopenings of the store, checked against a model after every step. The state
/// is the same after every reopening.
pub(crate) fn model_property<H: Harness>(h: &mut H) {
    let h = RefCell::new(h);
    let config = Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let ops = proptest::collection::vec(op(), 1..40);
    let result = TestRunner::new(config).run(&ops, |ops| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(run_ops(&mut **h.borrow_mut(), &ops))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

async fn run_ops<H: Harness>(h: &mut H, ops: &[Op]) -> TestCaseResult {
    let mut store = h.fresh().await;
    let mut model = Model::default();
    for op in ops {
        model.clock += 1;
        match op {
            Op::Create { key, auto_start } => {
                create_step(&store, &mut model, *key, *auto_start).await?
            }
            Op::Act(action, index) => act_step(&store, &mut model, *action, index).await?,
            Op::Reopen => {
                let before = snapshot(&store).await?;
                store = h.reopen(store).await;
                prop_assert_eq!(snapshot(&store).await?, before);
            }
        }
        check(&store, &model).await?;
    }
    Ok(())
}

async fn create_step<S: Store>(
    s: &S,
    model: &mut Model,
    key: Option<u8>,
    auto_start: bool,
) -> TestCaseResult {
    let mut r = record(model.clock);
    r.task.unique_key = key.map(|k| format!("key-{k}"));
    if !auto_start {
        r.life.state = TaskState::Paused;
    }
    let id = r.task.id;
    let holder = r.task.unique_key.as_ref().and_then(|k| model.keys.get(k));
    let want = holder.map_or(WriteResult::Done, |h| WriteResult::Duplicate(*h));
    prop_assert_eq!(s.write(vec![create(&r)]).await?, vec![want]);
    if want != WriteResult::Done {
        prop_assert_eq!(s.get(id).await?, None);
        return Ok(());
    }
    if let Some(k) = r.task.unique_key {
        model.keys.insert(k, id);
    }
    let expected = Expected {
        state: r.life.state,
        attempt: 0,
        events: 1,
        crashes: 0,
    };
    model.tasks.insert(id, expected);
    model.order.push(id);
    Ok(())
}

async fn act_step<S: Store>(s: &S, model: &mut Model, action: Action, i: &Index) -> TestCaseResult {
    if model.order.is_empty() {
        return Ok(());
    }
    let id = model.order[i.index(model.order.len())];
    let mut m = model.tasks[&id];
    let Ok(to) = transition(m.state, action.event()) else {
        return Ok(());
    };
    m.attempt += u32::from(matches!(action, Action::Start));
    let (kind, crashed) = action.records(id, m.attempt, model.clock);
    let mut batch: Vec<Write> = crashed.map(Write::Crash).into_iter().collect();
    m.crashes += batch.len();
    let e = event(id, at(model.clock), kind);
    let life = life(to, m.attempt, model.clock);
    batch.push(Write::update(id, life, e));
    let n = batch.len();
    prop_assert_eq!(s.write(batch).await?, vec![WriteResult::Done; n]);
    m.state = to;
    m.events += 1;
    model.tasks.insert(id, m);
    Ok(())
}

/// Every row, stream and crash history, for comparing before and after a reopening.
type Snapshot = (Page, Vec<Vec<StoredEvent>>, Vec<Vec<Crash>>);

async fn snapshot<S: Store>(s: &S) -> Result<Snapshot, StoreError> {
    let page = s.list(everything(TaskFilter::default())).await?;
    let (mut events, mut crashes) = (Vec::new(), Vec::new());
    for id in ids(&page.tasks) {
        events.push(s.events(id).await?);
        crashes.push(s.crashes(id).await?);
    }
    Ok((page, events, crashes))
}

async fn check<S: Store>(s: &S, model: &Model) -> TestCaseResult {
    for (&id, m) in &model.tasks {
        let r = s.get(id).await?;
        let got = r.map(|r| (r.life.state, r.life.attempt));
        prop_assert_eq!(got, Some((m.state, m.attempt)), "task {}", id);
        prop_assert_eq!(s.events(id).await?.len(), m.events, "events of {}", id);
        prop_assert_eq!(s.crashes(id).await?.len(), m.crashes, "crashes of {}", id);
    }
    let open = model
        .order
        .iter()
        .filter(|id| !model.tasks[id].state.is_terminal());
    let open: Vec<TaskId> = open.copied().collect();
    prop_assert_eq!(ids(&s.open_tasks().await?), open);
    for state in STATES {
        let want = model.tasks.values().filter(|m| m.state == state).count() as u64;
        let filter = TaskFilter {
            state: Some(state),
            ..TaskFilter::default()
        };
        prop_assert_eq!(s.count(filter).await?, want, "count of {}", state);
    }
    Ok(())
}
