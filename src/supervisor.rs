//! An OTP-style supervisor: restart strategies, restart intensity and backoff, ordered
//! shutdown. ractor links actors but leaves the restart policy to us; this is that policy.
//!
//! A [`Supervisor`] starts its children from a [`SupervisorSpec`] in order, and stops them
//! in reverse order when it stops. When a child exits, its [`Restart`] type says whether
//! it comes back, and the [`Strategy`] says which siblings come back with it:
//!
//! | strategy | restarted with the child | use when |
//! |---|---|---|
//! | [`OneForOne`](Strategy::OneForOne) | nothing else | the children are independent |
//! | [`OneForAll`](Strategy::OneForAll) | every child | each needs all the others |
//! | [`RestForOne`](Strategy::RestForOne) | the children started after it | each needs those before it |
//!
//! Restarts wait for a backoff delay, and more than [`Intensity::max_restarts`] restarts
//! within [`Intensity::within`] escalate: the supervisor stops its children and fails with
//! [`SupervisorError::IntensityExceeded`], so its own parent decides. Supervisors nest:
//! [`Supervisor::child_spec`] makes one the child of another.
//!
//! Tracing events (target `taskmesh::supervisor::state`):
//!
//! | level | event |
//! |---|---|
//! | warn | a child exited and a restart is scheduled; a restart failed; a child was killed |
//! | error | a child failed to start with the supervisor; the intensity was exceeded |
//! | info | a child was restarted; a child exited and was removed |
//!
//! ```
//! use futures::FutureExt;
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use taskmesh::supervisor::{start_supervisor, ChildSpec, Strategy, Supervisor, SupervisorSpec};
//!
//! struct Worker;
//! impl Actor for Worker {
//!     type Msg = ();
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let worker = ChildSpec::new("worker", |sup| {
//!     async move { Ok(Actor::spawn_linked(None, Worker, (), sup).await?.0.get_cell()) }.boxed()
//! });
//! let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker);
//! let (root, handle) = start_supervisor(None, Supervisor::new("root"), spec, None).await.unwrap();
//! root.stop(None);
//! handle.await.unwrap();
//! # }
//! ```

mod error;
mod spec;
mod state;
#[cfg(test)]
mod tests;

use futures::FutureExt;
use ractor::concurrency::JoinHandle;
use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};

pub use error::SupervisorError;
pub use spec::{ChildSpec, Intensity, Restart, StartFn, Strategy, SupervisorSpec};
pub use state::SupervisorState;

use crate::health::ServiceHealth;

/// A supervisor actor. Its arguments are the [`SupervisorSpec`] of its children.
#[derive(Clone, Debug)]
pub struct Supervisor {
    /// A label for logs and health reports, e.g. `root`; the service is `supervisor:{name}`.
    pub name: String,
}

impl Supervisor {
    /// A supervisor labelled `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// A child spec that starts this supervisor, unnamed, under another supervisor.
    pub fn child_spec(self, id: impl Into<String>, spec: SupervisorSpec) -> ChildSpec {
        ChildSpec::new(id, move |parent| {
            let (sup, spec) = (self.clone(), spec.clone());
            async move {
                let (actor, _) = Actor::spawn_linked(None, sup, spec, parent).await?;
                Ok(actor.get_cell())
            }
            .boxed()
        })
    }
}

/// The supervisor's messages.
#[derive(ractor_cluster::RactorMessage)]
pub enum SupervisorMsg {
    /// Reports `supervisor:{name}`: healthy, or degraded while a restart is pending or
    /// after any restart within the intensity window.
    Health(RpcReplyPort<ServiceHealth>),
    /// Lists the children in start order.
    Children(RpcReplyPort<Vec<ChildInfo>>),
    /// Internal, sent by the supervisor's own backoff timer: start the children awaiting
    /// the restart with this token. A token that no child awaits is ignored.
    RestartDue(u64),
}

/// A child as its supervisor sees it.
#[derive(Clone, Debug)]
pub struct ChildInfo {
    /// The child's id from its spec.
    pub id: String,
    /// Its restart type.
    pub restart: Restart,
    /// Whether it is running (false while it awaits a restart).
    pub running: bool,
    /// How many times it has been restarted.
    pub restarts: u32,
    /// Its cell while it runs.
    pub cell: Option<ActorCell>,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorSpec;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        spec: SupervisorSpec,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState::start(self.name.clone(), spec, &myself.get_cell()).await?)
    }

    async fn post_stop(
        &self,
        _: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_all().await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Health(reply) => drop(reply.send(state.health())),
            SupervisorMsg::Children(reply) => drop(reply.send(state.children())),
            SupervisorMsg::RestartDue(token) => state.restart_due(&myself, token).await?,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failed, reason) = match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let killed = matches!(reason.as_deref(), Some("killed" | "actor_task_cancelled"));
                (cell, killed, reason.unwrap_or_else(|| "normal".into()))
            }
            SupervisionEvent::ActorFailed(cell, err) => (cell, true, err.to_string()),
            SupervisionEvent::ActorStarted(_)
            | SupervisionEvent::ProcessGroupChanged(_)
            | SupervisionEvent::PidLifecycleEvent(_) => return Ok(()),
        };
        // An untracked cell is a child this supervisor stopped on purpose.
        if let Some(index) = state.position(&cell) {
            state.child_exited(&myself, index, failed, &reason).await?;
        }
        Ok(())
    }
}

/// Spawns a supervisor, registered as `name` if given and linked to `parent` if given.
/// Fails if a child fails to start (after stopping those already started).
pub async fn start_supervisor(
    name: Option<String>,
    sup: Supervisor,
    spec: SupervisorSpec,
    parent: Option<ActorCell>,
) -> Result<(ActorRef<SupervisorMsg>, JoinHandle<()>), SpawnErr> {
    match parent {
        Some(parent) => Actor::spawn_linked(name, sup, spec, parent).await,
        None => Actor::spawn(name, sup, spec).await,
    }
}
