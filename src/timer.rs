//! The timer actor of a queue: releases delayed tasks (run_at, retries, snoozes, gated
//! tasks) at their deadline. It arms one tokio timer for the earliest deadline rather than
//! polling. Its messages ([`TimerMsg`]) are defined in the runtime, below the actors: the
//! queue's dispatch state arms the timer.

use std::sync::Arc;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};
use tokio::time::Instant;

use crate::health::{HealthStatus, ServiceHealth};
use crate::runtime::{QueueShared, TimerMsg};

/// The handle of an armed ractor timer.
type TimerHandle = JoinHandle<Result<(), MessagingErr<TimerMsg>>>;

/// The timer actor.
pub(crate) struct Timer;

/// The timer's state: the queue and the armed deadline.
pub(crate) struct TimerState {
    queue: Arc<QueueShared>,
    armed: Option<(Instant, TimerHandle)>,
}

impl TimerState {
    fn arm(&mut self, myself: &ActorRef<TimerMsg>, at: Instant) {
        if self.armed.as_ref().is_some_and(|(a, _)| *a <= at) {
            return;
        }
        if let Some((_, h)) = self.armed.take() {
            h.abort();
        }
        let delay = at.saturating_duration_since(Instant::now());
        let handle = myself.send_after(delay, || TimerMsg::Fire);
        self.armed = Some((at, handle));
    }
}

impl Actor for Timer {
    type Msg = TimerMsg;
    type State = TimerState;
    type Arguments = Arc<QueueShared>;

    async fn pre_start(
        &self,
        myself: ActorRef<TimerMsg>,
        queue: Arc<QueueShared>,
    ) -> Result<TimerState, ActorProcessingErr> {
        queue.set_timer(Some(myself.clone()));
        let mut state = TimerState { queue, armed: None };
        if let Some(at) = state.queue.next_deadline() {
            state.arm(&myself, at);
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<TimerMsg>,
        msg: TimerMsg,
        state: &mut TimerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TimerMsg::Arm(at) => state.arm(&myself, at),
            TimerMsg::Fire => {
                state.armed = None;
                if let Some(next) = state.queue.release_due(Instant::now()) {
                    state.arm(&myself, next);
                }
            }
            TimerMsg::Health(reply) => {
                let detail = match &state.armed {
                    Some((at, _)) => format!(
                        "next release in {} ms",
                        at.saturating_duration_since(Instant::now()).as_millis()
                    ),
                    None => "nothing delayed".to_string(),
                };
                let name = format!("timer:{}", state.queue.name);
                let _ = reply.send(ServiceHealth::new(name, HealthStatus::Healthy, detail));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<TimerMsg>,
        state: &mut TimerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((_, h)) = state.armed.take() {
            h.abort();
        }
        state.queue.set_timer(None);
        Ok(())
    }
}
