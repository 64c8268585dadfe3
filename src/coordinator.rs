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
//! - reserves waiting tasks from the shared pool for its queues' free workers.

use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;
use tokio::time::Instant;

use crate::runtime::{CoordConfig, Shared};
use crate::store::{Intent, NodeInfo, Owner, Requested, StoreError};
use crate::system::recover::{adopt, Adopted};
use crate::task::TaskState;

/// Reserved at most per queue and tick.
const RESERVE_MAX: usize = 256;

/// Messages of the coordinator.
#[derive(RactorMessage)]
pub(crate) enum CoordinatorMsg {
    /// Heartbeat, rescue and reserve, as due.
    Tick,
}

/// The coordinator actor.
pub(crate) struct Coordinator;

/// The coordinator's state.
pub(crate) struct CoordinatorState {
    shared: Arc<Shared>,
    config: CoordConfig,
    ticker: JoinHandle<()>,
    /// When the last successful heartbeat began.
    renewed: Instant,
    next_heartbeat: Instant,
    next_rescue: Instant,
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
        let now = Instant::now();
        let _ = myself.cast(CoordinatorMsg::Tick);
        Ok(CoordinatorState {
            shared,
            config,
            ticker,
            renewed: now,
            next_heartbeat: now,
            next_rescue: now,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<CoordinatorMsg>,
        msg: CoordinatorMsg,
        state: &mut CoordinatorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CoordinatorMsg::Tick => tick(state).await,
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<CoordinatorMsg>,
        state: &mut CoordinatorState,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker.abort();
        Ok(())
    }
}

async fn tick(state: &mut CoordinatorState) {
    let now = Instant::now();
    if now >= state.next_heartbeat {
        state.next_heartbeat = now + state.config.heartbeat_every;
        heartbeat(state).await;
    }
    if !state.shared.journal.trusted() {
        return;
    }
    if now >= state.next_rescue {
        state.next_rescue = now + state.config.heartbeat_every;
        if let Err(e) = rescue(&state.shared, state.config.dead_after).await {
            tracing::warn!(error = %e, "could not look for dead processes' tasks");
        }
    }
    if let Err(e) = reserve(&state.shared).await {
        tracing::warn!(error = %e, "could not reserve waiting tasks");
    }
}

async fn heartbeat(state: &mut CoordinatorState) {
    let shared = &state.shared;
    let (Some(store), Some(owner)) = (shared.journal.store(), shared.journal.owner()) else {
        return;
    };
    let began = Instant::now();
    match store.heartbeat(owner.clone()).await {
        Ok(requested) => {
            state.renewed = began;
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
                    state.renewed = Instant::now();
                    shared.journal.set_trusted(true);
                }
                Err(e) => tracing::warn!(error = %e, "could not register again"),
            }
        }
        Err(e) => tracing::warn!(error = %e, %owner, "heartbeat failed"),
    }
    let lapsed = began.saturating_duration_since(state.renewed) > state.config.trust_window();
    if lapsed && shared.journal.set_trusted(false) {
        tracing::error!(
            "no heartbeat renewed within the trust window: claiming stops and running attempts are stopped before other processes may rescue them"
        );
        stop_attempts(shared);
    }
}

/// What this process tells the store about itself.
pub(crate) fn node_info(shared: &Shared) -> NodeInfo {
    let mut queues: Vec<String> = shared.queues.keys().cloned().collect();
    queues.sort();
    NodeInfo {
        name: shared.coord.node.clone(),
        address: None,
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

/// Applies requests stored through other processes to the attempts running here.
fn apply_requests(shared: &Shared, requested: Vec<Requested>) {
    for r in requested {
        let Some(cell) = shared.table.get(&r.task_id) else {
            continue;
        };
        let mut s = cell.status.lock();
        if s.state != TaskState::Running || s.attempt != r.attempt || s.intent.is_some() {
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
    if rescued > 0 || released > 0 {
        metrics::counter!(crate::telemetry::names::RESCUED).increment(rescued);
        tracing::warn!(%owner, rescued, released, "rescued the tasks of a dead process");
    }
    Ok(())
}

/// Reserves waiting tasks from the shared pool for the free workers of each queue.
async fn reserve(shared: &Shared) -> Result<(), StoreError> {
    let (Some(store), Some(me)) = (shared.journal.store(), shared.journal.owner()) else {
        return Ok(());
    };
    for q in shared.queues.values() {
        if q.is_paused() || !shared.accepting() {
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
        for record in records {
            adopt(shared, record, "");
        }
    }
    Ok(())
}
