//! The janitor actor: prunes ended tasks past the retention age, on a timer.

use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;
use tokio::time::Instant;

use crate::health::{HealthStatus, ServiceHealth};
use crate::runtime::Shared;

/// Messages of the janitor.
#[derive(RactorMessage)]
pub(crate) enum JanitorMsg {
    /// Prune now.
    Sweep,
    /// Health check.
    Health(RpcReplyPort<ServiceHealth>),
}

/// The janitor actor.
pub(crate) struct Janitor;

/// The janitor's state.
pub(crate) struct JanitorState {
    shared: Arc<Shared>,
    ticker: JoinHandle<()>,
    swept: usize,
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
        let ticker = myself.send_interval(every, || JanitorMsg::Sweep);
        Ok(JanitorState {
            shared,
            ticker,
            swept: 0,
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
            JanitorMsg::Health(reply) => {
                let detail = format!(
                    "{} tasks known, {} pruned",
                    state.shared.table.len(),
                    state.swept
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
        state.ticker.abort();
        Ok(())
    }
}
