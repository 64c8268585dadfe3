//! The supervision tree of a system:
//!
//! ```text
//! supervisor:root  (one_for_one)            {ns}/root
//! ├── supervisor:queue:{q}  (one_for_one)   {ns}/queue/{q}     one per queue
//! │   ├── timer:{q}                         {ns}/timer/{q}
//! │   └── pool:{q}                          {ns}/pool/{q}
//! │       └── worker × min..max             pg group workers/{q} in scope {ns}
//! ├── janitor                               {ns}/janitor
//! ├── scheduler                             {ns}/scheduler    cron
//! ├── coordinator                           {ns}/coordinator  shared store only
//! └── lease-keeper                          {ns}/lease-keeper shared store only: the cron lease
//! ```
//!
//! Queue state lives in `QueueShared`, outside the actors, so a restarted pool or timer
//! finds every waiting task where it was.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use ractor::{Actor, ActorRef};

use super::builder::Keeper;
use crate::coordinator::Coordinator;
use crate::error::SystemError;
use crate::janitor::Janitor;
use crate::pool::{Pool, PoolArgs};
use crate::runtime::{QueueShared, Shared};
use crate::scheduler::keeper::{KeeperArgs, LeaseKeeper};
use crate::scheduler::Scheduler;
use crate::supervisor::{
    start_supervisor, ChildSpec, Strategy, Supervisor, SupervisorMsg, SupervisorSpec,
};
use crate::timer::Timer;

/// Starts the root supervisor and everything under it.
pub(super) async fn start(
    shared: Arc<Shared>,
    janitor_every: Duration,
    keeper: Option<Keeper>,
) -> Result<ActorRef<SupervisorMsg>, SystemError> {
    let mut queues: Vec<_> = shared.queues.values().cloned().collect();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    let mut spec = SupervisorSpec::new(Strategy::OneForOne);
    for q in queues {
        spec = spec.child(queue_supervisor(&shared, q));
    }
    spec = spec.child(janitor(&shared, janitor_every));
    spec = spec.child(scheduler(&shared));
    if shared.journal.shared() {
        spec = spec.child(coordinator(&shared));
    }
    if let Some(keeper) = keeper {
        spec = spec.child(lease_keeper(&shared, keeper));
    }
    let name = shared.namespace.actor_name("root");
    let (root, handle) = start_supervisor(Some(name.clone()), Supervisor::new("root"), spec, None)
        .await
        .map_err(|source| SystemError::Spawn { what: name, source })?;
    // Nothing supervises the root: the system checks its status, and its end is logged.
    let _ = shared.root.set(root.get_cell());
    tokio::spawn(async move {
        let _ = handle.await;
        shared.root_stopped();
    });
    Ok(root)
}

fn queue_supervisor(shared: &Arc<Shared>, q: Arc<QueueShared>) -> ChildSpec {
    let name = shared.namespace.actor_name(&format!("queue/{}", q.name));
    let label = format!("queue:{}", q.name);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(timer(shared, q.clone()))
        .child(pool(shared, q));
    let sup = Supervisor::new(label.clone());
    ChildSpec::new(label, move |parent| {
        let (name, sup, spec) = (name.clone(), sup.clone(), spec.clone());
        async move {
            let (actor, _) = start_supervisor(Some(name), sup, spec, Some(parent)).await?;
            Ok(actor.get_cell())
        }
        .boxed()
    })
}

fn timer(shared: &Shared, q: Arc<QueueShared>) -> ChildSpec {
    let name = shared.namespace.actor_name(&format!("timer/{}", q.name));
    ChildSpec::new(format!("timer:{}", q.name), move |parent| {
        let (name, q) = (name.clone(), q.clone());
        async move {
            let (actor, _) = Actor::spawn_linked(Some(name), Timer, q, parent).await?;
            Ok(actor.get_cell())
        }
        .boxed()
    })
}

fn pool(shared: &Arc<Shared>, q: Arc<QueueShared>) -> ChildSpec {
    let name = shared.namespace.actor_name(&format!("pool/{}", q.name));
    let shared = shared.clone();
    ChildSpec::new(format!("pool:{}", q.name), move |parent| {
        let (name, args) = (
            name.clone(),
            PoolArgs {
                shared: shared.clone(),
                queue: q.clone(),
            },
        );
        async move {
            let (actor, _) = Actor::spawn_linked(Some(name), Pool, args, parent).await?;
            Ok(actor.get_cell())
        }
        .boxed()
    })
}

fn scheduler(shared: &Arc<Shared>) -> ChildSpec {
    let name = shared.namespace.actor_name("scheduler");
    let shared = shared.clone();
    ChildSpec::new("scheduler", move |parent| {
        let (name, shared) = (name.clone(), shared.clone());
        async move {
            let (actor, _) = Actor::spawn_linked(Some(name), Scheduler, shared, parent).await?;
            Ok(actor.get_cell())
        }
        .boxed()
    })
}

fn coordinator(shared: &Arc<Shared>) -> ChildSpec {
    let name = shared.namespace.actor_name("coordinator");
    let shared = shared.clone();
    ChildSpec::new("coordinator", move |parent| {
        let (name, shared) = (name.clone(), shared.clone());
        async move {
            let (actor, _) = Actor::spawn_linked(Some(name), Coordinator, shared, parent).await?;
            Ok(actor.get_cell())
        }
        .boxed()
    })
}

fn lease_keeper(shared: &Arc<Shared>, (leader, config): Keeper) -> ChildSpec {
    let name = shared.namespace.actor_name("lease-keeper");
    let shared = shared.clone();
    ChildSpec::new("lease-keeper", move |parent| {
        let name = name.clone();
        let args = KeeperArgs {
            shared: shared.clone(),
            leader: leader.clone(),
            config,
        };
        async move {
            let (actor, _) = Actor::spawn_linked(Some(name), LeaseKeeper, args, parent).await?;
            Ok(actor.get_cell())
        }
        .boxed()
    })
}

fn janitor(shared: &Arc<Shared>, every: Duration) -> ChildSpec {
    let name = shared.namespace.actor_name("janitor");
    let shared = shared.clone();
    ChildSpec::new("janitor", move |parent| {
        let (name, args) = (name.clone(), (shared.clone(), every));
        async move {
            let (actor, _) = Actor::spawn_linked(Some(name), Janitor, args, parent).await?;
            Ok(actor.get_cell())
        }
        .boxed()
    })
}
