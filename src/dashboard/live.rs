//! The live snapshot and its SSE stream.
//!
//! One [`Snapshot`] (counts per state, queue load) is built per tick and shared through a
//! [`watch`] channel by every open stream. The ticker runs only while a stream watches:
//! the first subscriber starts it, and it stops at the first tick with no subscriber. A
//! page rendered without a stream reuses the last snapshot while it is fresh.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::marks::{Mark, Marks};
use super::metrics::{self, Ago, History, Rates};
use super::{overview, Ui};
use crate::cluster::{Cluster, ClusterStatus};
use crate::store::TaskFilter;
use crate::system::QueueStats;
use crate::{TaskId, TaskState, TaskSystem};
use metrics_exporter_prometheus::PrometheusHandle;

/// What every live view shows, as of `at`.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    /// When it was built.
    pub at: SystemTime,
    /// Tasks per state, in [`TaskState::ALL`] order; the error if the store failed.
    pub counts: Result<Vec<(TaskState, u64)>, String>,
    /// Every queue's load.
    pub queues: Vec<QueueStats>,
    /// Each kind's breaker and rate limit.
    pub gates: Vec<crate::system::KindGates>,
    /// Throughput and latency over the last minute, when the node has a metrics recorder
    /// and an earlier reading.
    pub rates: Option<Rates>,
    /// The cluster as this node sees it, when it is in one.
    pub cluster: Option<ClusterStatus>,
    /// The marks of the last minute (breaker trips, queue pauses and resumes, node
    /// joins), oldest first.
    pub marks: Vec<Mark>,
}

impl Snapshot {
    /// Reads the counts and the queues now. The counts of the states are read at once
    /// (a store with several readers, as SQLite's, runs them side by side).
    pub async fn build(system: &TaskSystem) -> Self {
        let reads = TaskState::ALL.map(|state| {
            system.count(TaskFilter {
                state: Some(state),
                ..TaskFilter::default()
            })
        });
        let read = futures::future::join_all(reads).await;
        let counts = TaskState::ALL
            .into_iter()
            .zip(read)
            .map(|(state, n)| n.map(|n| (state, n)).map_err(|e| e.to_string()))
            .collect();
        Self {
            at: SystemTime::now(),
            counts,
            queues: system.queues(),
            gates: system.kind_gates(),
            rates: None,
            cluster: None,
            marks: Vec::new(),
        }
    }

    /// The throughput region's marks, each with its distance from `at`.
    pub fn marks(&self) -> Vec<Ago<'_>> {
        Ago::window(&self.marks, self.at)
    }
}

type Slot = Option<Arc<Snapshot>>;

/// The shared snapshot and its ticker.
pub(crate) struct Live {
    system: TaskSystem,
    metrics: Option<PrometheusHandle>,
    cluster: Option<Cluster>,
    history: Mutex<History>,
    marks: Arc<Mutex<Marks>>,
    tick: Duration,
    tx: watch::Sender<Slot>,
    running: Mutex<bool>,
    stop: CancellationToken,
}

impl Live {
    /// No snapshot yet, no ticker.
    pub fn new(system: TaskSystem, tick: Duration, metrics: Option<PrometheusHandle>) -> Self {
        Self {
            system,
            metrics,
            cluster: None,
            history: Mutex::new(History::default()),
            marks: Arc::default(),
            tick,
            tx: watch::Sender::new(None),
            running: Mutex::new(false),
            stop: CancellationToken::new(),
        }
    }

    /// Puts the cluster's status into every snapshot.
    pub fn cluster(mut self, cluster: Option<Cluster>) -> Self {
        self.cluster = cluster;
        self
    }

    /// Starts the watcher that records the chart's marks (see [`super::marks`]), when
    /// called within a tokio runtime; it ends with [`Live::stop`].
    pub fn watch_marks(&self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            super::marks::watch(
                self.system.clone(),
                self.cluster.clone(),
                self.marks.clone(),
                self.tick,
                self.stop.clone(),
            );
        }
    }

    /// The marks recorded so far (tests).
    #[cfg(test)]
    pub fn recorded(&self) -> Vec<Mark> {
        self.marks.lock().since(SystemTime::UNIX_EPOCH)
    }

    /// A receiver of every new snapshot; starts the ticker if it is not running.
    pub fn subscribe(self: &Arc<Self>) -> watch::Receiver<Slot> {
        let mut running = self.running.lock();
        let rx = self.tx.subscribe();
        if !*running && !self.stop.is_cancelled() {
            *running = true;
            tokio::spawn(self.clone().run());
        }
        rx
    }

    /// True while the ticker runs.
    #[cfg(test)]
    pub fn ticking(&self) -> bool {
        *self.running.lock()
    }

    /// The last snapshot if younger than a tick, else a new one.
    pub async fn current(&self) -> Arc<Snapshot> {
        let last = self.tx.borrow().clone();
        let fresh = |s: &Snapshot| s.at.elapsed().is_ok_and(|age| age < self.tick);
        match last {
            Some(s) if fresh(&s) => s,
            _ => {
                let s = Arc::new(self.build().await);
                self.tx.send_replace(Some(s.clone()));
                s
            }
        }
    }

    /// A snapshot with the rates since the reading about a minute ago.
    async fn build(&self) -> Snapshot {
        let mut snapshot = Snapshot::build(&self.system).await;
        if let Some(handle) = &self.metrics {
            let totals = metrics::parse(&handle.render());
            snapshot.rates = self.history.lock().push(Instant::now(), totals);
        }
        if let Some(cluster) = &self.cluster {
            snapshot.cluster = Some(cluster.status().await);
        }
        let since = snapshot.at.checked_sub(metrics::WINDOW);
        snapshot.marks = self
            .marks
            .lock()
            .since(since.unwrap_or(SystemTime::UNIX_EPOCH));
        snapshot
    }

    /// Ends every stream and the ticker; no new ones start.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    async fn run(self: Arc<Self>) {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = interval.tick() => {}
            }
            if self.idle() {
                return;
            }
            let snapshot = self.build().await;
            self.tx.send_replace(Some(Arc::new(snapshot)));
        }
        *self.running.lock() = false;
    }

    /// Marks the ticker stopped if nobody watches (under the lock `subscribe` takes, so a
    /// subscriber either is counted here or starts a new ticker).
    fn idle(&self) -> bool {
        let mut running = self.running.lock();
        let idle = self.tx.receiver_count() == 0;
        if idle {
            *running = false;
        }
        idle
    }
}

/// `GET /ui/live`: one SSE event per region (`counts`, `queues`, `updated`, `rates`, `gates`,
/// and `cluster` when the node is in one) per snapshot;
/// with `?task=<id>`, also the task's fields (`task`) while it is held in memory; with
/// `?bulk=<n>`, also that bulk operation's progress (`bulk`).
pub(crate) async fn stream(
    State(ui): State<Ui>,
    Query(q): Query<HashMap<String, String>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = ui.live.subscribe();
    rx.mark_changed();
    let stop = ui.live.stop.clone();
    let task: Option<TaskId> = q.get("task").and_then(|t| t.parse().ok());
    let bulk = q
        .get("bulk")
        .and_then(|n| n.parse().ok())
        .and_then(|n| ui.bulk.get(n));
    let system = ui.system.clone();
    let events = futures::StreamExt::flat_map(snapshots(rx, stop), move |s| {
        let mut out = events(&s);
        if let Some(status) = task.and_then(|id| system.status(id).ok()) {
            let html = super::task::fields(&status).into_string();
            out.push(Ok(Event::default().event("task").data(html)));
        }
        if let Some(op) = &bulk {
            let html = super::bulk::progress(op).into_string();
            out.push(Ok(Event::default().event("bulk").data(html)));
        }
        futures::stream::iter(out)
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Every new snapshot until `stop` fires.
fn snapshots(
    rx: watch::Receiver<Slot>,
    stop: CancellationToken,
) -> impl Stream<Item = Arc<Snapshot>> {
    futures::stream::unfold((rx, stop), |(mut rx, stop)| async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                changed = rx.changed() => changed.ok()?,
            }
            let slot = rx.borrow_and_update().clone();
            if let Some(snapshot) = slot {
                return Some((snapshot, (rx, stop)));
            }
        }
    })
}

/// The events of one snapshot: each live region's new HTML.
pub(crate) fn events(s: &Snapshot) -> Vec<Result<Event, Infallible>> {
    let cluster = s
        .cluster
        .as_ref()
        .map(|c| ("cluster", super::cluster::view(c)));
    [
        ("counts", overview::counts(s)),
        ("queues", overview::queues(s)),
        ("updated", overview::updated(s)),
        ("rates", metrics::view(s.rates.as_ref(), &s.marks())),
        ("gates", super::queues::gates_table(&s.gates)),
    ]
    .into_iter()
    .chain(cluster)
    .map(|(name, html)| Ok(Event::default().event(name).data(html.into_string())))
    .collect()
}
