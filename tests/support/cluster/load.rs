//! A load driver: submits tasks over HTTP through the live nodes in turn, and keeps the
//! id of every task a node acknowledged (a 201), for the checker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use taskmesh::TaskId;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Cluster, Roster};

/// How long one submit may take before it counts as failed (not acknowledged).
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The pause of a submitter after a failed submit, so a cluster that refuses
/// everything is not flooded.
const AFTER_FAILURE: Duration = Duration::from_millis(20);

/// Submits in flight at most, at a [`Pace::Rate`].
const MAX_IN_FLIGHT: usize = 64;

/// How fast a [`Load`] submits.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// This many submits a second, each on its own (a slow one does not hold the next
    /// back; ticks with [`MAX_IN_FLIGHT`] submits open are skipped).
    Rate(f64),
    /// This many submitters, each submitting again as soon as its last one answered.
    Concurrent(usize),
}

/// The body of a `sleep` task of `ms` milliseconds.
pub fn sleep_task(ms: u64) -> Value {
    json!({"kind": "sleep", "args": {"ms": ms}})
}

/// What a load did.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Every task a node acknowledged (201), in the order of the answers.
    pub acknowledged: Vec<TaskId>,
    /// Acknowledged tasks per node name.
    pub by_node: BTreeMap<String, usize>,
    /// Submits answered with another status (a 503, say).
    pub refused: usize,
    /// Submits that got no answer (connection refused or reset, timed out).
    pub failed: usize,
}

/// A running load; [`stop`](Self::stop) it to get its [`Tally`].
#[must_use = "a load runs until stopped"]
pub struct Load {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
    acked: watch::Receiver<usize>,
}

/// What the submitters share.
struct Shared {
    roster: Roster,
    client: reqwest::Client,
    body: String,
    next: AtomicUsize,
    tally: Mutex<Tally>,
    acked: watch::Sender<usize>,
}

impl Load {
    /// Starts submitting `task` (a `POST /v1/tasks` body, see [`sleep_task`]) at `pace`
    /// through the cluster's live nodes in turn; a node that is killed or stopped is
    /// skipped, and one whose submit fails gets the next submit after the others.
    pub fn start(cluster: &Cluster, pace: Pace, task: Value) -> Load {
        let (acked_tx, acked) = watch::channel(0);
        let shared = Arc::new(Shared {
            roster: cluster.roster.clone(),
            client: reqwest::Client::builder()
                .timeout(SUBMIT_TIMEOUT)
                .build()
                .expect("a plain HTTP client builds"),
            body: task.to_string(),
            next: AtomicUsize::new(0),
            tally: Mutex::default(),
            acked: acked_tx,
        });
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        match pace {
            Pace::Concurrent(n) => {
                for _ in 0..n {
                    tasks.spawn(submitter(Arc::clone(&shared), stop.clone()));
                }
            }
            Pace::Rate(per_second) => {
                let every = Duration::from_secs_f64(1.0 / per_second);
                tasks.spawn(ticker(Arc::clone(&shared), stop.clone(), every));
            }
        }
        Load {
            stop,
            tasks,
            shared,
            acked,
        }
    }

    /// Tasks acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        *self.acked.borrow()
    }

    /// What the load did so far.
    pub fn tally(&self) -> Tally {
        self.shared.tally.lock().clone()
    }

    /// Waits until at least `n` tasks have been acknowledged in all; panics after
    /// `limit` with the tally so far.
    pub async fn wait_acknowledged(&mut self, n: usize, limit: Duration) {
        let reached = tokio::time::timeout(limit, self.acked.wait_for(|&a| a >= n)).await;
        if !matches!(reached, Ok(Ok(_))) {
            let tally = self.shared.tally.lock().clone();
            panic!(
                "{n} tasks not acknowledged within {limit:?}: {} acknowledged ({:?}), {} refused, {} failed",
                tally.acknowledged.len(),
                tally.by_node,
                tally.refused,
                tally.failed
            );
        }
    }

    /// Stops submitting, waits for the submits in flight to answer, and returns what
    /// the load did.
    pub async fn stop(mut self) -> Tally {
        self.stop.cancel();
        join_all(&mut self.tasks).await;
        let tally = std::mem::take(&mut *self.shared.tally.lock());
        tally
    }
}

async fn submitter(shared: Arc<Shared>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        if !shared.submit_next().await {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(AFTER_FAILURE) => {}
            }
        }
    }
}

async fn ticker(shared: Arc<Shared>, stop: CancellationToken, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let open = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            continue;
        };
        let shared = Arc::clone(&shared);
        in_flight.spawn(async move {
            shared.submit_next().await;
            drop(permit);
        });
        while let Some(done) = in_flight.try_join_next() {
            rethrow(done);
        }
    }
    join_all(&mut in_flight).await;
}

/// Waits for every task of `set`, passing a panic on.
async fn join_all(set: &mut JoinSet<()>) {
    while let Some(done) = set.join_next().await {
        rethrow(done);
    }
}

fn rethrow(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

impl Shared {
    /// Submits once through the next live node; true if it was acknowledged.
    async fn submit_next(&self) -> bool {
        let live = self.roster.live();
        if live.is_empty() {
            return false;
        }
        let (i, url) = &live[self.next.fetch_add(1, Ordering::Relaxed) % live.len()];
        let answer = self
            .client
            .post(format!("{url}/v1/tasks"))
            .header("content-type", "application/json")
            .body(self.body.clone())
            .send()
            .await;
        let acked = match answer {
            Ok(resp) if resp.status().as_u16() == 201 => acknowledged_id(resp).await,
            Ok(_) => {
                self.tally.lock().refused += 1;
                return false;
            }
            Err(_) => None,
        };
        match acked {
            Some(id) => self.record(id, &self.roster.name(*i)),
            None => self.tally.lock().failed += 1,
        }
        acked.is_some()
    }

    fn record(&self, id: TaskId, node: &str) {
        let mut tally = self.tally.lock();
        tally.acknowledged.push(id);
        *tally.by_node.entry(node.to_owned()).or_default() += 1;
        self.acked.send_replace(tally.acknowledged.len());
    }
}

/// The id in a 201's body; a body that does not name one is a harness failure.
async fn acknowledged_id(resp: reqwest::Response) -> Option<TaskId> {
    let body = resp.text().await.ok()?;
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let id = v["id"].as_str().and_then(|s| s.parse().ok());
    Some(id.unwrap_or_else(|| panic!("a 201 without a task id: {body}")))
}
