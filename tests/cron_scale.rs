//! Cron at scale on paused time: a thousand every-second schedules on a store whose every
//! transaction takes a millisecond (an fsync) fire every slot on time, and a slot dropped
//! for any reason is counted. This binary installs a global metrics recorder.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::unique_ns;
use futures::future::BoxFuture;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use taskmesh::scheduler::{CatchUp, Clock, ScheduleRecord, ScheduleSpec, TokioClock};
use taskmesh::store::{
    MemoryStore, ScheduleStore, StoreError, TaskFilter, TaskQuery, TaskStore, Write, WriteResult,
};
use taskmesh::testing::{script, Script, ScriptHandler};
use taskmesh::{NewTask, QueueConfig, TaskSystem};
use tokio::time::Instant;

/// What one store transaction costs (the fsync of a real disk), on paused time.
const FSYNC: Duration = Duration::from_millis(1);

/// A [`MemoryStore`] whose writes (tasks and schedules) each take [`FSYNC`] to resolve
/// once `slow` is set.
#[derive(Clone, Default)]
struct SlowStore {
    inner: MemoryStore,
    slow: Arc<AtomicBool>,
    /// Task writes fail while set, as on a full disk.
    failing: Arc<AtomicBool>,
    /// Extra time each write takes beyond [`FSYNC`], in ms (a slow disk).
    extra_ms: Arc<AtomicU64>,
}

impl SlowStore {
    fn slow<T: Send + 'static>(
        &self,
        f: BoxFuture<'static, Result<T, StoreError>>,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        if !self.slow.load(Ordering::Acquire) {
            return f;
        }
        let extra = Duration::from_millis(self.extra_ms.load(Ordering::Acquire));
        Box::pin(async move {
            tokio::time::sleep(FSYNC + extra).await;
            f.await
        })
    }
}

taskmesh::delegate_coordination!(SlowStore, inner);

impl TaskStore for SlowStore {
    fn name(&self) -> &'static str {
        "slow"
    }

    fn durable(&self) -> bool {
        false
    }

    fn write(&self, batch: Vec<Write>) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        if self.failing.load(Ordering::Acquire) {
            let full = StoreError::WriteFailed("disk full".into());
            return Box::pin(std::future::ready(Err(full)));
        }
        self.slow(self.inner.write(batch))
    }

    taskmesh::task_store_reads!(inner);

    fn check_writable(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        self.inner.check_writable()
    }
}

taskmesh::delegate_event_log!(SlowStore, inner);

impl ScheduleStore for SlowStore {
    fn put_schedule(&self, record: ScheduleRecord) -> BoxFuture<'static, Result<(), StoreError>> {
        self.slow(self.inner.put_schedule(record))
    }

    fn put_schedules(
        &self,
        records: Vec<ScheduleRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        self.slow(self.inner.put_schedules(records))
    }

    fn delete_schedule(&self, name: String) -> BoxFuture<'static, Result<bool, StoreError>> {
        self.slow(self.inner.delete_schedule(name))
    }

    fn schedules(&self) -> BoxFuture<'static, Result<Vec<ScheduleRecord>, StoreError>> {
        self.inner.schedules()
    }
}

/// The global recorder of this binary, installed once.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder in this binary");
        snapshotter
    })
}

/// The sum of counter `name` over its series with these labels. The cron metrics carry
/// no schedule label (a removed schedule would leave series behind), so the tests of this
/// binary that read them run one at a time ([`SERIAL`]) and compare before and after.
fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == name)
        .filter(|(key, ..)| {
            let have: Vec<_> = key.key().labels().map(|l| (l.key(), l.value())).collect();
            labels.iter().all(|l| have.contains(l))
        })
        .map(|(.., value)| match value {
            DebugValue::Counter(c) => c,
            _ => 0,
        })
        .sum()
}

/// Held by each test of this binary: the metrics they read are process-wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, h, m, s).unwrap()
}

fn ok_task() -> NewTask {
    NewTask::new("script", script(Script::Ok { value: 1.into() }))
}

/// The slot in `cron:{name}:{rfc3339}`.
fn slot_of(key: &str) -> DateTime<Utc> {
    let rfc = key.splitn(3, ':').nth(2).expect("cron:{name}:{slot}");
    DateTime::parse_from_rfc3339(rfc).unwrap().to_utc()
}

const SCHEDULES: usize = 1_000;
const SECONDS: u32 = 3;

#[tokio::test(start_paused = true)]
async fn a_thousand_every_second_schedules_fire_every_slot_within_50_ms_when_each_write_takes_a_millisecond(
) {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let skipped_before = counter("taskmesh_cron_skipped_total", &[]);
    let store = SlowStore::default();
    let clock = TokioClock::starting_at(at(0, 0, 0) + chrono::Duration::milliseconds(500));
    let (h, mut rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("scale"))
        .clock(clock)
        .store(store.clone())
        .queue(QueueConfig::new("default").workers(20, 20))
        .handler(h)
        .start()
        .await
        .unwrap();
    for i in 0..SCHEDULES {
        let spec = ScheduleSpec::new(format!("scale-{i}"), "* * * * * *", ok_task());
        sys.put_schedule(spec).await.unwrap();
    }
    assert_eq!(
        clock.now(),
        at(0, 0, 0) + chrono::Duration::milliseconds(500)
    );
    store.slow.store(true, Ordering::Release);
    let want = SCHEDULES * SECONDS as usize;
    let deadline = Instant::now() + Duration::from_secs(SECONDS.into());
    let mut started = HashMap::new();
    while started.len() < want {
        let e = tokio::time::timeout_at(deadline, rx.recv()).await;
        let e = e
            .expect("every slot of the first SECONDS seconds started half a second after the last");
        let e = e.expect("handler dropped");
        if e.started {
            started.insert(e.id, clock.now());
        }
    }
    let tasks = store.count(TaskFilter::default()).await.unwrap();
    assert_eq!(tasks, want as u64, "one task per slot, none dropped");
    let all = TaskQuery {
        filter: TaskFilter::default(),
        limit: u32::MAX,
        offset: 0,
    };
    for r in store.list(all).await.unwrap().tasks {
        let slot = slot_of(r.task.unique_key.as_deref().expect("a slot key"));
        let late = started[&r.task.id] - slot;
        assert!(
            late >= chrono::Duration::zero(),
            "started before its slot {slot}"
        );
        assert!(
            late <= chrono::Duration::milliseconds(50),
            "{slot} started {late} late"
        );
    }
    assert_eq!(
        counter("taskmesh_cron_skipped_total", &[]),
        skipped_before,
        "no slot skipped"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

/// Slots are fired ahead of their instant as tasks that wait for it, so even a store that
/// takes 40 ms a write does not make them late.
#[tokio::test(start_paused = true)]
async fn slots_fired_ahead_start_at_their_instant_however_slow_the_store() {
    let _serial = SERIAL.lock().await;
    let store = SlowStore::default();
    let clock = TokioClock::starting_at(at(0, 0, 0) + chrono::Duration::milliseconds(500));
    let (h, mut rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("ahead"))
        .clock(clock)
        .store(store.clone())
        .queue(QueueConfig::new("default").workers(20, 20))
        .handler(h)
        .start()
        .await
        .unwrap();
    for i in 0..100 {
        let spec = ScheduleSpec::new(format!("ahead-{i}"), "* * * * * *", ok_task());
        sys.put_schedule(spec).await.unwrap();
    }
    store.extra_ms.store(39, Ordering::Release);
    store.slow.store(true, Ordering::Release);
    let mut starts = 0;
    while starts < 300 {
        let e = rx.recv().await.expect("handler dropped");
        if !e.started {
            continue;
        }
        starts += 1;
        let at = clock.now();
        let view = sys.status(e.id).unwrap();
        let slot = slot_of(view.unique_key.as_deref().expect("a slot key"));
        let late = at - slot;
        assert!(late >= chrono::Duration::zero(), "started before {slot}");
        assert!(
            late <= chrono::Duration::milliseconds(2),
            "{slot} started {late} late"
        );
    }
    sys.shutdown(Duration::from_secs(1)).await;
}

fn system(ns: &str, store: &MemoryStore, now: DateTime<Utc>) -> taskmesh::TaskSystemBuilder {
    TaskSystem::builder()
        .namespace(ns)
        .clock(TokioClock::starting_at(now))
        .store(store.clone())
}

#[tokio::test(start_paused = true)]
async fn slots_missed_while_the_node_was_down_and_dropped_by_the_policy_are_counted() {
    let _serial = SERIAL.lock().await;
    let before = counter("taskmesh_cron_skipped_total", &[("reason", "missed")]);
    let (store, ns) = (MemoryStore::new(), unique_ns("missed"));
    let (h, _rx) = ScriptHandler::new();
    let first = system(&ns, &store, at(0, 0, 5)).handler(h);
    let first = first.start().await.unwrap();
    let spec = ScheduleSpec::new("missed", "*/10 * * * * *", ok_task()).catch_up(CatchUp::Skip);
    first.put_schedule(spec).await.unwrap();
    first.shutdown(Duration::from_secs(1)).await;

    // Down until 00:01:35: the nine slots 00:00:10 to 00:01:30 passed.
    let (h, mut rx) = ScriptHandler::new();
    let second = system(&ns, &store, at(0, 1, 35)).handler(h);
    let second = second.start().await.unwrap();
    let fired = common::next_start(&mut rx).await;
    let view = second.get(fired.id).await.unwrap();
    let key = view.status.unique_key.expect("a slot key");
    assert_eq!(slot_of(&key), at(0, 1, 30), "the newest, 5 s late, fires");
    let missed = counter("taskmesh_cron_skipped_total", &[("reason", "missed")]);
    assert_eq!(missed - before, 8);
    second.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_slot_whose_task_is_refused_is_counted_and_its_schedule_moves_on() {
    let _serial = SERIAL.lock().await;
    let before = counter("taskmesh_cron_skipped_total", &[("reason", "refused")]);
    let (store, ns) = (MemoryStore::new(), unique_ns("refused"));
    let (h, _rx) = ScriptHandler::new();
    let first = system(&ns, &store, at(0, 0, 5)).handler(h);
    let first = first.queue(QueueConfig::new("gone")).start().await.unwrap();
    let spec = ScheduleSpec::new("refused", "*/10 * * * * *", ok_task().queue("gone"));
    first.put_schedule(spec).await.unwrap();
    first.shutdown(Duration::from_secs(1)).await;

    // Restarted at 00:00:10 without the queue "gone": the slot's task is refused.
    let (h, _rx) = ScriptHandler::new();
    let second = system(&ns, &store, at(0, 0, 10)).handler(h);
    let second = second.start().await.unwrap();
    let info = second.schedule("refused").await.unwrap();
    assert_eq!(
        info.record.last_slot,
        Some(at(0, 0, 10)),
        "handled, not retried"
    );
    let refused = counter("taskmesh_cron_skipped_total", &[("reason", "refused")]);
    assert_eq!(refused - before, 1);
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 0);
    second.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_slot_whose_store_write_failed_fires_once_the_store_recovers() {
    let _serial = SERIAL.lock().await;
    let store = SlowStore::default();
    let (h, mut rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("recovers"))
        .clock(TokioClock::starting_at(at(0, 0, 5)))
        .store(store.clone())
        .handler(h)
        .start()
        .await
        .unwrap();
    let spec = ScheduleSpec::new("recovers", "*/10 * * * * *", ok_task());
    sys.put_schedule(spec).await.unwrap();
    store.failing.store(true, Ordering::Release);
    // The paused clock moves to 00:00:12.5: the slot 00:00:10 failed at 10, 11 and 12.
    common::advance_and_settle(&sys, Duration::from_millis(7_500)).await;
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 0);
    store.failing.store(false, Ordering::Release);
    let fired = common::next_start(&mut rx).await;
    let view = sys.get(fired.id).await.unwrap();
    assert_eq!(slot_of(&view.status.unique_key.unwrap()), at(0, 0, 10));
    let info = sys.schedule("recovers").await.unwrap();
    assert_eq!(info.record.last_slot, Some(at(0, 0, 10)));
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 1);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_watermark_a_tick_moved_is_stored_soon_after_and_at_the_latest_on_shutdown() {
    let (store, ns) = (MemoryStore::new(), unique_ns("stored"));
    let (h, mut rx) = ScriptHandler::new();
    let sys = system(&ns, &store, at(0, 0, 5)).handler(h);
    let sys = sys.start().await.unwrap();
    let spec = ScheduleSpec::new("stored", "*/10 * * * * *", ok_task());
    sys.put_schedule(spec).await.unwrap();
    common::next_start(&mut rx).await; // 00:00:10 fired
    let stored = |store: &MemoryStore| {
        let store = store.clone();
        async move { store.schedules().await.unwrap()[0].last_slot }
    };
    assert_eq!(
        sys.schedule("stored").await.unwrap().record.last_slot,
        Some(at(0, 0, 10))
    );
    // The paused clock moves on by a second: the save, 250 ms after the tick, is done.
    common::advance_and_settle(&sys, Duration::from_secs(1)).await;
    assert_eq!(stored(&store).await, Some(at(0, 0, 10)));
    common::next_start(&mut rx).await; // 00:00:20 fired
    sys.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        stored(&store).await,
        Some(at(0, 0, 20)),
        "stored on shutdown"
    );
}
