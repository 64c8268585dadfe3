//! The lease keeper actor: takes the `cron` lease when it is free and renews it while
//! held, every `renew_every`, each call bounded by a deadline. A renewal that began at
//! `start` and succeeded is trusted until `start + ttl - margin` ([`LeaseConfig`]); a
//! renewal the store refuses (another holder, a newer epoch, or time ran out) drops the
//! lease at once; one that fails leaves trust to run out on its own. On becoming the
//! leader it wakes the scheduler, which reloads the schedules and catches up from their
//! watermarks. At a graceful stop it releases the lease, so the next leader need not wait.

use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;
use tokio::time::Instant;

use super::lease::{LeaseConfig, LeaseLeader, CRON_LEASE};
use super::SchedulerMsg;
use crate::runtime::Shared;
use crate::store::{Lease, StoreError};

/// Messages of the keeper.
#[derive(RactorMessage)]
pub(crate) enum KeeperMsg {
    /// Take or renew the lease now.
    Tick,
}

/// The keeper actor.
pub(crate) struct LeaseKeeper;

/// What the keeper is started with.
pub(crate) struct KeeperArgs {
    pub shared: Arc<Shared>,
    pub leader: Arc<LeaseLeader>,
    pub config: LeaseConfig,
}

/// The keeper's state.
pub(crate) struct KeeperState {
    args: KeeperArgs,
    timer: Option<JoinHandle<()>>,
}

impl Actor for LeaseKeeper {
    type Msg = KeeperMsg;
    type State = KeeperState;
    type Arguments = KeeperArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<KeeperMsg>,
        args: KeeperArgs,
    ) -> Result<KeeperState, ActorProcessingErr> {
        let _ = myself.cast(KeeperMsg::Tick);
        Ok(KeeperState { args, timer: None })
    }

    async fn handle(
        &self,
        myself: ActorRef<KeeperMsg>,
        msg: KeeperMsg,
        state: &mut KeeperState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            KeeperMsg::Tick => {
                let next = keep(&state.args).await;
                if let Some(t) = state.timer.take() {
                    t.abort();
                }
                let me = myself.clone();
                state.timer = Some(tokio::spawn(async move {
                    tokio::time::sleep(next).await;
                    let _ = me.cast(KeeperMsg::Tick);
                }));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<KeeperMsg>,
        state: &mut KeeperState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.timer.take() {
            t.abort();
        }
        release(&state.args).await;
        Ok(())
    }
}

/// Takes or renews the lease; returns how long to wait before the next try.
async fn keep(args: &KeeperArgs) -> Duration {
    let config = args.config;
    let (Some(store), Some(owner)) = (args.shared.journal.store(), args.shared.journal.owner())
    else {
        return config.renew_every;
    };
    let start = Instant::now();
    let held = args.leader.held();
    if held.as_ref().is_some_and(|l| l.holder != owner) && args.leader.drop_lease() {
        // Registered again (declared dead meanwhile): the lease was the old incarnation's.
        tracing::warn!("this node registered again; it stops firing under its old cron lease");
    }
    let held = held.filter(|l| l.holder == owner);
    let deadline = config.ttl.saturating_sub(config.margin);
    let call = match &held {
        Some(lease) => store.renew_lease(lease.fence(), config.ttl),
        None => store.acquire_lease(CRON_LEASE.into(), owner, config.ttl),
    };
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(Some(lease))) => {
            won(args, lease, start);
            config.renew_every
        }
        Ok(Ok(None)) => {
            if args.leader.drop_lease() {
                tracing::warn!(
                    "this node lost the cron lease (another node holds it, or it ran out); it stops firing schedules"
                );
            }
            match held {
                // Lost: look again at once, it may be free.
                Some(_) => Duration::ZERO,
                None => until_free(args).await,
            }
        }
        Ok(Err(e)) => {
            failed(held.is_some(), &e);
            config.renew_every
        }
        Err(_) => {
            let e = StoreError::ReadFailed(format!("no answer within {deadline:?}"));
            failed(held.is_some(), &e);
            config.renew_every
        }
    }
}

/// Trusts a lease taken or renewed by a call that began at `start`; wakes the scheduler
/// if this process just became the leader.
fn won(args: &KeeperArgs, lease: Lease, start: Instant) {
    let epoch = lease.epoch;
    if args.leader.trust(lease, args.config.trusted_until(start)) {
        tracing::info!(epoch, "this node leads cron: it fires the schedules");
        let name = args.shared.namespace.actor_name("scheduler");
        if let Some(cell) = ractor::registry::where_is(name) {
            let scheduler: ActorRef<SchedulerMsg> = cell.into();
            let _ = scheduler.cast(SchedulerMsg::Lead);
        }
    }
}

fn failed(holding: bool, e: &StoreError) {
    match holding {
        true => {
            tracing::warn!(error = %e, "could not renew the cron lease; trusted until its window ends")
        }
        false => tracing::debug!(error = %e, "could not try to take the cron lease"),
    }
}

/// How long until the lease another process holds may be free: its time left (read
/// from the store), but at most `renew_every`, so a new leader takes over within a
/// moment of the old lease running out.
async fn until_free(args: &KeeperArgs) -> Duration {
    let every = args.config.renew_every;
    let Some(store) = args.shared.journal.store() else {
        return every;
    };
    let read = tokio::time::timeout(every, store.lease(CRON_LEASE.into())).await;
    match read {
        Ok(Ok(Some(lease))) => (lease.remaining + Duration::from_millis(5)).min(every),
        _ => every,
    }
}

/// Gives the lease up at a graceful stop.
async fn release(args: &KeeperArgs) {
    let Some(lease) = args.leader.held() else {
        return;
    };
    args.leader.drop_lease();
    let Some(store) = args.shared.journal.store() else {
        return;
    };
    let released =
        tokio::time::timeout(args.config.renew_every, store.release_lease(lease.fence()));
    match released.await {
        Ok(Ok(true)) => tracing::info!(epoch = lease.epoch, "released the cron lease"),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not release the cron lease; it runs out by itself")
        }
        Err(_) => tracing::warn!("releasing the cron lease took too long; it runs out by itself"),
    }
}
