//! The coordinator actor: this process's part in sharing a store with other processes.
//!
//! Runs only on a store several processes share ([`Coordination::shared`]). On a tick it
//! - renews this process's heartbeat (store time), and applies the operators' requests
//!   stored on the running tasks it holds (a cancel made through another process);
//! - stops claiming and stops its running attempts once it has not renewed the
//!   heartbeat within its trust window (`dead_after` minus two heartbeats, on its own
//!   monotonic clock), so it has stopped before any other process may rescue its work;
//!   registers again if it finds it was declared dead;
//! - rescues the tasks of dead processes: their running tasks become crashed attempts
//!   (fenced by the dead owner and attempt, so two rescuers racing do no harm), their
//!   reservations go back to the shared pool;
//! - runs the tasks whose create reported a failure but was stored all the same (the
//!   commit's answer was lost), which nobody else would run while this process lives;
//! - mirrors the shared records of cluster-wide circuit breakers (every poll, so a
//!   breaker opened on one node opens here within one poll);
//! - reserves waiting tasks from the shared pool for its queues' free workers, on the
//!   tick and at once when another process hints that tasks went back to the pool
//!   ([`Notifier`](crate::store::Notifier)); it hints in turn when it releases a dead
//!   process's reservations.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;
use tokio::sync::broadcast;
use tokio::time::Instant;

mod shares;
mod strays;

use crate::runtime::adopt::{adopt, Adopted};
use crate::runtime::{CoordConfig, Shared};
use crate::store::{Intent, NodeInfo, Owner, Requested, StoreError};
use crate::task::TaskState;
use strays::{adopt_routed, LostEnds};

/// Reserved at most per queue and tick.
const RESERVE_MAX: usize = 256;

/// How soon a queue with a backlog in the shared pool is looked at again.
const RECHECK: Duration = Duration::from_millis(20);

/// Messages of the coordinator.
#[derive(RactorMessage)]
pub(crate) enum CoordinatorMsg {
    /// Heartbeat, rescue and reserve, as due.
    Tick,
    /// Another process (or this one) hinted that queues have waiting tasks nobody holds
    /// (an empty name: any queue).
    Hint(Vec<String>),
}

/// The coordinator actor.
pub(crate) struct Coordinator;

/// The coordinator's state.
pub(crate) struct CoordinatorState {
    shared: Arc<Shared>,
    config: CoordConfig,
    ticker: JoinHandle<()>,
    /// Forwards the store's hints, if it has any.
    hints: Option<tokio::task::JoinHandle<()>>,
    /// Queues whose shared pool may hold more waiting tasks than their workers took.
    backlog: HashSet<String>,
    /// A look at the backlog is already due.
    recheck_due: bool,
    /// When the last successful heartbeat began, for the trust watchdog.
    renewed: tokio::sync::watch::Sender<Instant>,
    /// Stops claiming at the end of the trust window, whatever the coordinator is doing.
    watchdog: tokio::task::JoinHandle<()>,
    next_heartbeat: Instant,
    next_rescue: Instant,
    /// Attempts seen running in the store but not here, awaiting a second sighting.
    lost_ends: LostEnds,
}

impl Actor for Coordinator {
    type Msg = CoordinatorMsg;
    type State = CoordinatorState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<CoordinatorMsg>,
        shared: Arc<Shared>,
    ) -> Result<CoordinatorState, ActorProcessingErr> {
        let config = shared.coord.clone();
        let ticker = myself.send_interval(config.poll_every, || CoordinatorMsg::Tick);
        let hints = shared
            .journal
            .store()
            .and_then(|s| s.listen())
            .map(|hints| tokio::spawn(forward(hints, myself.clone())));
        let now = Instant::now();
        let (renewed, watched) = tokio::sync::watch::channel(now);
        let watchdog = tokio::spawn(watch_trust(shared.clone(), watched, config.trust_window()));
        let _ = myself.cast(CoordinatorMsg::Tick);
        Ok(CoordinatorState {
            shared,
            config,
            ticker,
            hints,
            backlog: HashSet::new(),
            recheck_due: false,
            renewed,
            watchdog,
            next_heartbeat: now,
            next_rescue: now,
            lost_ends: LostEnds::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<CoordinatorMsg>,
        msg: CoordinatorMsg,
        state: &mut CoordinatorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CoordinatorMsg::Tick => {
                tick(state).await;
                if state.shared.journal.trusted() {
                    reserve_now(state, |_| true).await;
                    if state.shared.peers().is_some() {
                        adopt_routed(&state.shared, &state.config).await;
                    }
                }
            }
            CoordinatorMsg::Hint(queues) => {
                state.recheck_due = false;
                let any = queues.iter().any(String::is_empty);
                if state.shared.journal.trusted() {
                    reserve_now(state, |q| any || queues.iter().any(|h| h == q)).await;
                }
            }
        }
        // While a queue's shared pool may hold more than its workers took, look again
        // soon (not only at the next poll), so that a backlog drains at the workers' pace.
        if !state.backlog.is_empty() && !state.recheck_due {
            state.recheck_due = true;
            let queues: Vec<String> = state.backlog.iter().cloned().collect();
            let soon = state.config.poll_every.min(RECHECK);
            myself.send_after(soon, move || CoordinatorMsg::Hint(queues));
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<CoordinatorMsg>,
        state: &mut CoordinatorState,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker.abort();
        state.watchdog.abort();
        if let Some(hints) = &state.hints {
            hints.abort();
        }
        Ok(())
    }
}

async fn tick(state: &mut CoordinatorState) {
    crate::runtime::gates::mirror_all(&state.shared).await;
    let now = Instant::now();
    if now >= state.next_heartbeat {
        state.next_heartbeat = now + state.config.heartbeat_every;
        heartbeat(state).await;
        if state.shared.journal.trusted() {
            shares::share_limits(&state.shared, &state.config).await;
        }
    }
    if !state.shared.journal.trusted() {
        return;
    }
    if now >= state.next_rescue {
        state.next_rescue = now + state.config.heartbeat_every;
        let deadline = state.config.store_deadline();
        let rescued =
            tokio::time::timeout(deadline, rescue(&state.shared, state.config.dead_after));
        match rescued.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not look for dead processes' tasks"),
            Err(_) => tracing::warn!(
                "looking for dead processes' tasks took too long; tried again next tick"
            ),
        }
        strays::adopt_strays(&state.shared, &state.config, &mut state.lost_ends).await;
    }
    settle_doubts(&state.shared).await;
    if state.shared.draining() {
        release_while_draining(&state.shared).await;
    }
}

/// Reserves for the queues `only` admits, keeping the backlog up to date.
async fn reserve_now(state: &mut CoordinatorState, only: impl Fn(&str) -> bool) {
    let deadline = state.config.store_deadline();
    match tokio::time::timeout(deadline, reserve(&state.shared, &mut state.backlog, only)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not reserve waiting tasks"),
        // Tasks it reserved all the same are held here: `adopt_strays` finds them.
        Err(_) => tracing::warn!("reserving waiting tasks took too long"),
    }
}

/// Hands the store's hints to the coordinator, those that came together as one message
/// (a process that fell behind gets an empty name: look at every queue).
async fn forward(mut hints: broadcast::Receiver<String>, coordinator: ActorRef<CoordinatorMsg>) {
    loop {
        let mut queues = match hints.recv().await {
            Ok(queue) => vec![queue],
            Err(broadcast::error::RecvError::Lagged(_)) => vec![String::new()],
            Err(broadcast::error::RecvError::Closed) => return,
        };
        loop {
            match hints.try_recv() {
                Ok(queue) if !queues.contains(&queue) => queues.push(queue),
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(_)) => queues.push(String::new()),
                Err(_) => break,
            }
        }
        if coordinator.cast(CoordinatorMsg::Hint(queues)).is_err() {
            return;
        }
    }
}

async fn heartbeat(state: &mut CoordinatorState) {
    let shared = &state.shared;
    let (Some(store), Some(owner)) = (shared.journal.store(), shared.journal.owner()) else {
        return;
    };
    let began = Instant::now();
    // A store that does not answer (a black-holed link) must not hold up the trust check
    // below: the heartbeat gets a deadline of one interval.
    let renewed =
        tokio::time::timeout(state.config.heartbeat_every, store.heartbeat(owner.clone()));
    let Ok(renewed) = renewed.await else {
        tracing::warn!(%owner, "heartbeat took longer than its interval");
        check_trust(state, began);
        return;
    };
    match renewed {
        Ok(requested) => {
            state.renewed.send_replace(began);
            if shared.journal.set_trusted(true) {
                tracing::info!(%owner, "heartbeat renewed; claiming again");
            }
            apply_requests(shared, requested);
        }
        Err(StoreError::Fenced { owner }) => {
            tracing::error!(%owner, "this process was declared dead; its attempts stop and it registers again");
            shared.journal.set_trusted(false);
            stop_attempts(shared);
            match store.register(node_info(shared)).await {
                Ok(next) => {
                    tracing::info!(owner = %next, "registered again");
                    shared.journal.set_owner(next);
                    state.renewed.send_replace(Instant::now());
                    shared.journal.set_trusted(true);
                }
                Err(e) => tracing::warn!(error = %e, "could not register again"),
            }
        }
        Err(e) => tracing::warn!(error = %e, %owner, "heartbeat failed"),
    }
    check_trust(state, began);
}

/// Stops claiming and stops the running attempts once the last renewal is older than
/// the trust window.
fn check_trust(state: &CoordinatorState, now: Instant) {
    let renewed = *state.renewed.borrow();
    if now.saturating_duration_since(renewed) > state.config.trust_window() {
        lapse(&state.shared);
    }
}

fn lapse(shared: &Shared) {
    if shared.journal.set_trusted(false) {
        tracing::error!(
            "no heartbeat renewed within the trust window: claiming stops and running attempts are stopped before other processes may rescue them"
        );
        stop_attempts(shared);
    }
}

/// The trust watchdog: at the end of the trust window after the last renewal, if no
/// renewal came since, this process stops claiming and stops its attempts. It runs apart
/// from the coordinator, so a store call that hangs there (a black-holed link) cannot
/// delay it past the window.
async fn watch_trust(
    shared: Arc<Shared>,
    mut renewed: tokio::sync::watch::Receiver<Instant>,
    window: Duration,
) {
    loop {
        let deadline = *renewed.borrow_and_update() + window;
        tokio::select! {
            changed = renewed.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                lapse(&shared);
                if renewed.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What this process tells the store about itself.
pub(crate) fn node_info(shared: &Shared) -> NodeInfo {
    let mut queues: Vec<String> = shared.queues.keys().cloned().collect();
    queues.sort();
    NodeInfo {
        name: shared.coord.node.clone(),
        address: shared.coord.address.clone(),
        queues,
    }
}

/// Stops every running attempt as a shutdown does: the task goes back to waiting, or,
/// if its write cannot be made, stays running in the store until it is rescued.
fn stop_attempts(shared: &Shared) {
    for q in shared.queues.values() {
        for slot in q.running_slots() {
            let Some(current) = slot.current() else {
                continue;
            };
            let mut s = current.cell.status.lock();
            if s.state == TaskState::Running && s.run == current.run {
                s.intent.get_or_insert(Intent::Shutdown);
                if let Some(token) = &s.token {
                    token.cancel();
                }
            }
        }
    }
}

/// Applies requests stored through other processes to the tasks held here: a waiting
/// task's command runs here (`ops::apply_held`); a running attempt's token fires, also
/// when the request was made while the task waited and its attempt started since.
pub(crate) fn apply_requests(shared: &Arc<Shared>, requested: Vec<Requested>) {
    for r in requested {
        let Some(cell) = shared.table.get(&r.task_id) else {
            continue;
        };
        let mut s = cell.status.lock();
        let waiting = matches!(
            s.state,
            TaskState::Pending | TaskState::Scheduled | TaskState::Retrying
        );
        if r.waiting && waiting && s.attempt == r.attempt {
            drop(s);
            tokio::spawn(crate::runtime::apply_held(shared.clone(), cell, r.intent));
            continue;
        }
        let attempt = match r.waiting {
            true => r.attempt + 1,
            false => r.attempt,
        };
        if s.state != TaskState::Running || s.attempt != attempt || s.intent.is_some() {
            continue;
        }
        tracing::info!(task_id = %r.task_id, command = r.intent.name(), "stop requested through another process");
        s.intent = Some(r.intent);
        if let Some(token) = &s.token {
            token.cancel();
        }
    }
}

/// Rescues the tasks of every dead process (other than this one).
pub(crate) async fn rescue(shared: &Shared, dead_after: Duration) -> Result<(), StoreError> {
    let (Some(store), Some(me)) = (shared.journal.store(), shared.journal.owner()) else {
        return Ok(());
    };
    for owner in store.dead(dead_after).await? {
        if owner == me || !store.bury(owner.clone(), dead_after).await? {
            continue;
        }
        rescue_one(shared, &owner).await?;
    }
    Ok(())
}

/// Rescues the tasks of `owner` at once if the store finds it certainly gone (none of its
/// connections open, its heartbeat older than `silent_for`): the mesh saw its session
/// drop. True if it was rescued (or had already been buried).
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub(crate) async fn rescue_gone(
    shared: &Shared,
    owner: &Owner,
    silent_for: Duration,
) -> Result<bool, StoreError> {
    let (Some(store), Some(me)) = (shared.journal.store(), shared.journal.owner()) else {
        return Ok(false);
    };
    if *owner == me || !shared.journal.trusted() {
        return Ok(false);
    }
    if !store.bury_gone(owner.clone(), silent_for).await? {
        return Ok(false);
    }
    rescue_one(shared, owner).await?;
    Ok(true)
}

/// Takes the named tasks, which a routing hint says wait here unheld, and queues them.
/// Those another process took first, or that ended, are left alone. Returns how many.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub(crate) async fn take_hinted(
    shared: &Shared,
    ids: Vec<crate::task::TaskId>,
) -> Result<usize, StoreError> {
    let (Some(store), Some(me)) = (shared.journal.store(), shared.journal.owner()) else {
        return Ok(0);
    };
    if !shared.accepting() || shared.draining() || !shared.journal.trusted() {
        return Ok(0);
    }
    let records = store.reserve_ids(me, ids).await?;
    let n = records.len();
    for record in records {
        adopt(shared, record, "");
    }
    Ok(n)
}

/// While this process drains, gives the waiting tasks it holds back to the shared pool
/// (a retry scheduled here after the drain began, too) and hints the others.
pub(crate) async fn release_while_draining(shared: &Shared) {
    let (Some(store), Some(me)) = (shared.journal.store(), shared.journal.owner()) else {
        return;
    };
    shared.claims_settled();
    shared.journal.flush().await;
    match store.release(me).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(
                released = n,
                "draining: gave waiting tasks back to the shared pool"
            );
            hint(shared, vec![String::new()]).await;
        }
        Err(e) => tracing::warn!(error = %e, "draining: could not give waiting tasks back"),
    }
}

async fn rescue_one(shared: &Shared, owner: &Owner) -> Result<(), StoreError> {
    let Some(store) = shared.journal.store() else {
        return Ok(());
    };
    let why = format!("its process {owner} stopped (no heartbeat)");
    let mut rescued = 0u64;
    for record in store.held(owner.clone()).await? {
        if record.life.state != TaskState::Running {
            continue;
        }
        if adopt(shared, record, &why) == Adopted::Interrupted {
            rescued += 1;
        }
    }
    // The rescues' settles are queued writes: make them durable before saying so.
    shared.journal.flush().await;
    let released = store.release(owner.clone()).await?;
    if released > 0 {
        hint(shared, vec![String::new()]).await;
    }
    // Its probes of cluster-wide breakers would never end: the next node probes now.
    let freed = store.free_probes(owner.clone()).await?;
    if freed > 0 {
        tracing::warn!(%owner, freed, "freed the breaker probes of a dead process");
        crate::runtime::gates::mirror_all(shared).await;
    }
    if rescued > 0 || released > 0 {
        metrics::counter!(crate::telemetry::names::RESCUED).increment(rescued);
        tracing::warn!(%owner, rescued, released, "rescued the tasks of a dead process");
    }
    Ok(())
}

/// Looks up the tasks whose create failed here (`Journal::doubt`): one that was stored
/// anyway (the commit happened, its answer was lost) is held by this process and nobody
/// else would run it while this process lives, so it is run here. A lookup that fails is
/// tried again on the next tick.
async fn settle_doubts(shared: &Shared) {
    let ids = shared.journal.take_doubtful();
    let (Some(store), Some(me)) = (shared.journal.store(), shared.journal.owner()) else {
        return;
    };
    let mut again = Vec::new();
    for id in ids {
        match store.get(id).await {
            Ok(Some(record)) => {
                let state = record.life.state;
                let mine = record.life.owner.as_ref() == Some(&me);
                let waiting = !state.is_terminal() && state != TaskState::Running;
                if mine && waiting && shared.table.get(&id).is_none() {
                    tracing::warn!(task_id = %id, "a task whose create reported a failure was stored all the same; it runs here");
                    adopt(shared, record, "");
                }
            }
            Ok(None) => {}
            Err(_) => again.push(id),
        }
    }
    shared.journal.doubt(again);
}

/// Tells the other processes that `queues` have waiting tasks nobody holds (an empty
/// name: any queue). A hint that cannot be sent is logged: the others' polls find the
/// tasks anyway.
pub(crate) async fn hint(shared: &Shared, queues: Vec<String>) {
    let Some(store) = shared.journal.store() else {
        return;
    };
    if let Err(e) = store.notify(queues).await {
        tracing::debug!(error = %e, "could not send a hint; the other processes' polls find the tasks");
    }
}

/// Reserves waiting tasks from the shared pool for the free workers of each queue that
/// `only` admits. A queue that got all it asked for may have more waiting: it stays in
/// `backlog` (also while its workers are busy) until a reserve finds fewer.
async fn reserve(
    shared: &Shared,
    backlog: &mut HashSet<String>,
    only: impl Fn(&str) -> bool,
) -> Result<(), StoreError> {
    let (Some(store), Some(me)) = (shared.journal.store(), shared.journal.owner()) else {
        return Ok(());
    };
    for q in shared.queues.values() {
        if q.is_paused() || !shared.accepting() || shared.draining() || !only(&q.name) {
            continue;
        }
        let busy = q.running() + q.ready_len();
        let free = q.config.max_workers.saturating_sub(busy).min(RESERVE_MAX);
        if free == 0 {
            continue;
        }
        let records = store
            .reserve(me.clone(), vec![q.name.to_string()], free as u32)
            .await?;
        match records.len() == free {
            true => backlog.insert(q.name.to_string()),
            false => backlog.remove(&*q.name),
        };
        for record in records {
            adopt(shared, record, "");
        }
    }
    Ok(())
}
