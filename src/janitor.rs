//! The janitor actor: on timers, drops ended tasks from memory past the retention age,
//! and keeps the store tidy: prunes ended tasks older than the store retention and crash
//! history older than its retention (by default every hour: 7 days and 24 hours).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;
use tokio::time::Instant;

use crate::health::{HealthStatus, ServiceHealth};
use crate::runtime::Shared;

/// Messages of the janitor.
#[derive(RactorMessage)]
pub(crate) enum JanitorMsg {
    /// Drop ended tasks from memory.
    Sweep,
    /// Prune the store.
    Housekeep,
    /// Health check.
    Health(RpcReplyPort<ServiceHealth>),
}

/// The janitor actor.
pub(crate) struct Janitor;

/// The janitor's state.
pub(crate) struct JanitorState {
    shared: Arc<Shared>,
    tickers: [JoinHandle<()>; 2],
    swept: usize,
    pruned: u64,
    crashes_swept: u64,
}

impl Actor for Janitor {
    type Msg = JanitorMsg;
    type State = JanitorState;
    type Arguments = (Arc<Shared>, Duration);

    async fn pre_start(
        &self,
        myself: ActorRef<JanitorMsg>,
        (shared, every): (Arc<Shared>, Duration),
    ) -> Result<JanitorState, ActorProcessingErr> {
        let house = shared.housekeeping.every;
        let tickers = [
            myself.send_interval(every, || JanitorMsg::Sweep),
            myself.send_interval(house, || JanitorMsg::Housekeep),
        ];
        Ok(JanitorState {
            shared,
            tickers,
            swept: 0,
            pruned: 0,
            crashes_swept: 0,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<JanitorMsg>,
        msg: JanitorMsg,
        state: &mut JanitorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            JanitorMsg::Sweep => state.swept += state.shared.table.sweep(Instant::now()),
            JanitorMsg::Housekeep => state.housekeep().await,
            JanitorMsg::Health(reply) => {
                let detail = format!(
                    "{} tasks in memory, {} dropped from memory, {} pruned from the store, {} crash entries swept",
                    state.shared.table.len(),
                    state.swept,
                    state.pruned,
                    state.crashes_swept
                );
                let _ = reply.send(ServiceHealth::new("janitor", HealthStatus::Healthy, detail));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<JanitorMsg>,
        state: &mut JanitorState,
    ) -> Result<(), ActorProcessingErr> {
        for t in &state.tickers {
            t.abort();
        }
        Ok(())
    }
}

impl JanitorState {
    async fn housekeep(&mut self) {
        let Some(store) = self.shared.journal.store() else {
            return;
        };
        let h = &self.shared.housekeeping;
        let now = SystemTime::now();
        match store.prune_terminal(now - h.keep_ended).await {
            Ok(n) => self.pruned += n,
            Err(e) => tracing::warn!(error = %e, "pruning ended tasks failed"),
        }
        match store.sweep_crashes(now - h.keep_crashes).await {
            Ok(n) => self.crashes_swept += n,
            Err(e) => tracing::warn!(error = %e, "sweeping crash history failed"),
        }
    }
}
