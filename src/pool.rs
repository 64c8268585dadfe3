//! The pool actor of a queue (the DynamicSupervisor role): keeps between `min_workers`
//! and `max_workers` workers, grows with the queue's backlog, retires idle workers,
//! replaces stuck or dead ones, and escalates when restarts exceed the intensity.
//!
//! The pool's messages ([`PoolMsg`]) are defined in the runtime, below the actors: the
//! queue's dispatch state asks the pool to grow.
//!
//! ractor's factory is not used: it routes every job through the factory actor, which
//! tops out near 0.5 M jobs/s on two cores, whereas workers here pull from the queue
//! directly. See `docs/ARCHITECTURE.md`.

mod scaling;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::time::Instant;

use crate::health::{HealthStatus, ServiceHealth};
use crate::runtime::{
    settle, AttemptOutcome, FailureKind, PoolMsg, QueueShared, Shared, WorkerMsg, WorkerSlot,
};
use crate::worker::{Worker, WorkerState};
use scaling::{target_workers, Intensity};

/// The pool actor.
pub(crate) struct Pool;

/// What a pool starts with.
pub(crate) struct PoolArgs {
    pub shared: Arc<Shared>,
    pub queue: Arc<QueueShared>,
}

struct Member {
    actor: ActorRef<WorkerMsg>,
    slot: Arc<WorkerSlot>,
}

/// A pool's state.
pub(crate) struct PoolState {
    shared: Arc<Shared>,
    queue: Arc<QueueShared>,
    workers: HashMap<ActorId, Member>,
    /// Workers the pool stopped on purpose; their exit is not a failure.
    retiring: HashSet<ActorId>,
    restarts: Intensity,
    ticker: Option<JoinHandle<()>>,
}

impl Actor for Pool {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = PoolArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PoolMsg>,
        args: PoolArgs,
    ) -> Result<PoolState, ActorProcessingErr> {
        let cfg = &args.queue.config;
        let mut state = PoolState {
            restarts: Intensity::new(cfg.max_restarts, cfg.restart_window),
            shared: args.shared,
            queue: args.queue,
            workers: HashMap::new(),
            retiring: HashSet::new(),
            ticker: None,
        };
        state.recover_orphans();
        for _ in 0..state.queue.config.min_workers {
            state.spawn_worker(&myself).await?;
        }
        state.queue.set_pool(Some(myself.clone()));
        let tick = state.queue.config.tick;
        state.ticker = Some(myself.send_interval(tick, || PoolMsg::Tick));
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<PoolMsg>,
        msg: PoolMsg,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::Tick => state.tick(&myself).await?,
            PoolMsg::Grow => {
                state.queue.growth_seen();
                state.grow(&myself).await?;
            }
            PoolMsg::Respawn => {
                if state.workers.len() < state.queue.config.max_workers {
                    state.spawn_worker(&myself).await?;
                }
            }
            PoolMsg::Health(reply) => {
                let _ = reply.send(state.health());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<PoolMsg>,
        evt: SupervisionEvent,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        let (id, reason) = match evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell.get_id(), reason.unwrap_or_else(|| "stopped".into()))
            }
            SupervisionEvent::ActorFailed(cell, err) => (cell.get_id(), err.to_string()),
            _ => return Ok(()),
        };
        state.worker_exited(&myself, id, &reason)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PoolMsg>,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        state.queue.set_pool(None);
        for (id, m) in state.workers.drain() {
            state.retiring.insert(id);
            // Bounded: a worker whose handler blocks its thread cannot die until it yields.
            let _ = m.actor.kill_and_wait(Some(Duration::from_secs(1))).await;
        }
        state.queue.workers.store(0, Ordering::Relaxed);
        Ok(())
    }
}

impl PoolState {
    async fn spawn_worker(&mut self, myself: &ActorRef<PoolMsg>) -> Result<(), ActorProcessingErr> {
        let slot = Arc::new(WorkerSlot::new());
        let args = WorkerState {
            name: "".into(),
            shared: self.shared.clone(),
            queue: self.queue.clone(),
            slot: slot.clone(),
            isolate: false,
        };
        let (actor, _) = Actor::spawn_linked(None, Worker, args, myself.get_cell()).await?;
        self.queue.register_slot(slot.clone());
        self.queue.workers.fetch_add(1, Ordering::Relaxed);
        self.workers.insert(actor.get_id(), Member { actor, slot });
        Ok(())
    }

    /// Settles attempts left running by workers of a previous incarnation of this pool.
    fn recover_orphans(&self) {
        for slot in self.queue.take_slots() {
            if let Some(cur) = slot.take() {
                let why = "the pool restarted while the attempt ran".to_string();
                let outcome = AttemptOutcome::Failed(FailureKind::Crashed, why);
                settle(&self.shared, &self.queue, &cur.cell, cur.run, outcome);
            }
        }
    }

    async fn tick(&mut self, myself: &ActorRef<PoolMsg>) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        self.replace_stuck(myself, now)?;
        self.grow(myself).await?;
        self.retire_idle(now);
        self.queue.sample_gauges();
        Ok(())
    }

    async fn grow(&mut self, myself: &ActorRef<PoolMsg>) -> Result<(), ActorProcessingErr> {
        let cfg = &self.queue.config;
        let idle = self.queue.idle_ids().len();
        let want = target_workers(
            self.workers.len(),
            self.queue.ready_len(),
            idle,
            cfg.min_workers,
            cfg.max_workers,
        );
        while self.workers.len() < want {
            self.spawn_worker(myself).await?;
        }
        Ok(())
    }

    /// Retires workers idle longer than the idle timeout, down to the minimum.
    fn retire_idle(&mut self, now: Instant) {
        let cfg = &self.queue.config;
        for id in self.queue.idle_ids() {
            if self.workers.len() - self.retiring.len() <= cfg.min_workers {
                return;
            }
            let Some(m) = self.workers.get(&id) else {
                continue;
            };
            if now.duration_since(m.slot.last_active()) < cfg.idle_timeout {
                continue;
            }
            if self.queue.take_idle(id) {
                self.retiring.insert(id);
                m.actor.stop(Some("idle".into()));
            }
        }
    }

    /// Writes off workers whose attempt outlived its timeout, grace and the stuck margin:
    /// the attempt is settled as timed out, the worker killed, and a replacement started
    /// without waiting for the kill (a thread-blocking handler delays it indefinitely).
    fn replace_stuck(
        &mut self,
        myself: &ActorRef<PoolMsg>,
        now: Instant,
    ) -> Result<(), ActorProcessingErr> {
        let margin = self.queue.config.stuck_after;
        let stuck: Vec<ActorId> = self
            .workers
            .iter()
            .filter(|(_, m)| m.slot.current().is_some_and(|c| now >= c.deadline + margin))
            .map(|(id, _)| *id)
            .collect();
        for id in stuck {
            let Some(m) = self.workers.remove(&id) else {
                continue;
            };
            if let Some(cur) = m.slot.take() {
                let why = format!(
                    "worker stuck: attempt still running {} ms past its timeout and grace; worker replaced",
                    margin.as_millis()
                );
                settle(
                    &self.shared,
                    &self.queue,
                    &cur.cell,
                    cur.run,
                    AttemptOutcome::Failed(FailureKind::TimedOut, why),
                );
            }
            m.actor.kill();
            self.lost(myself, m, "stuck")?;
        }
        Ok(())
    }

    fn worker_exited(
        &mut self,
        myself: &ActorRef<PoolMsg>,
        id: ActorId,
        reason: &str,
    ) -> Result<(), ActorProcessingErr> {
        let Some(m) = self.workers.remove(&id) else {
            return Ok(()); // retired earlier, or written off as stuck
        };
        if self.retiring.remove(&id) {
            self.forget(&m);
            return Ok(());
        }
        if let Some(cur) = m.slot.take() {
            let outcome =
                AttemptOutcome::Failed(FailureKind::Crashed, format!("worker died: {reason}"));
            settle(&self.shared, &self.queue, &cur.cell, cur.run, outcome);
        }
        self.lost(myself, m, reason)
    }

    fn forget(&self, m: &Member) {
        self.queue.workers.fetch_sub(1, Ordering::Relaxed);
        self.queue.forget_worker(m.actor.get_id());
        self.queue.unregister_slot(&m.slot);
    }

    /// A worker was lost: count the restart against the intensity and schedule a
    /// replacement, or escalate.
    fn lost(
        &mut self,
        myself: &ActorRef<PoolMsg>,
        m: Member,
        reason: &str,
    ) -> Result<(), ActorProcessingErr> {
        self.forget(&m);
        tracing::warn!(queue = %self.queue.name, reason, "worker replaced");
        let Some(delay) = self.restarts.admit(Instant::now()) else {
            let cfg = &self.queue.config;
            return Err(format!(
                "pool {}: restart intensity exceeded: more than {} restarts in {} s",
                self.queue.name,
                cfg.max_restarts,
                cfg.restart_window.as_secs()
            )
            .into());
        };
        myself.send_after(delay, || PoolMsg::Respawn);
        Ok(())
    }

    fn health(&self) -> ServiceHealth {
        let cfg = &self.queue.config;
        let restarts = self.restarts.recent(Instant::now());
        let status = if restarts > 0 || self.workers.len() < cfg.min_workers {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        let detail = format!(
            "workers {} ({}..{}), idle {}, depth {}, running {}, restarts {}",
            self.workers.len(),
            cfg.min_workers,
            cfg.max_workers,
            self.queue.idle_ids().len(),
            self.queue.depth(),
            self.queue.running(),
            restarts
        );
        ServiceHealth::new(format!("pool:{}", self.queue.name), status, detail)
    }
}
