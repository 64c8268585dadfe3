//! The node agent: the one actor of a node its peers can reach. It is in the process
//! groups `{ns}/agents` and `{ns}/queue/{q}` for each queue the node serves; workers and
//! per-task actors stay local. Every message is a [`super::wire`] envelope in a
//! byte vector, so ractor's own decoding never sees anything but bytes, and ours refuses
//! oversized or malformed messages without panicking.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;

use super::wire::{self, Hello, Reply, Request};
use crate::store::Requested;
use crate::system::TaskSystem;
use crate::task::{TaskId, TaskState};

/// Messages of the agent. Never rename a variant: peers find them by name.
#[derive(RactorClusterMessage)]
pub enum AgentMsg {
    /// A request with no answer.
    Cast(Vec<u8>),
    /// A request with an answer.
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// The agent actor.
pub(crate) struct Agent;

/// What the agent serves requests from.
pub(crate) struct AgentState {
    system: TaskSystem,
    limit: usize,
}

/// The process-group scope of a namespace, and its groups.
pub(crate) fn scope(namespace: &str) -> String {
    format!("taskmesh/{namespace}")
}

/// The group of every agent of the namespace.
pub(crate) const AGENTS: &str = "agents";

/// The group of the agents serving `queue`.
pub(crate) fn queue_group(queue: &str) -> String {
    format!("queue/{queue}")
}

/// This node's hello: who it is and how busy.
pub(crate) fn hello(system: &TaskSystem) -> Hello {
    let owner = system.shared.journal.owner();
    let (node, incarnation) = owner
        .map(|o| (o.node, o.incarnation))
        .unwrap_or_else(|| (system.shared.coord.node.clone(), 0));
    Hello::new(&node, incarnation, &system.load())
}

impl Actor for Agent {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = (TaskSystem, usize);

    async fn pre_start(
        &self,
        myself: ActorRef<AgentMsg>,
        (system, limit): (TaskSystem, usize),
    ) -> Result<AgentState, ActorProcessingErr> {
        let scope = scope(system.namespace());
        ractor::pg::join_scoped(scope.clone(), AGENTS.into(), vec![myself.get_cell()]);
        for q in system.load().queues {
            ractor::pg::join_scoped(scope.clone(), queue_group(&q.name), vec![myself.get_cell()]);
        }
        Ok(AgentState { system, limit })
    }

    async fn handle(
        &self,
        _myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AgentMsg::Cast(bytes) => match wire::decode::<Request>(&bytes, state.limit) {
                Ok(request) => cast(state, request),
                Err(e) => tracing::warn!(error = %e, "refused a message from a peer"),
            },
            AgentMsg::Call(bytes, reply) => {
                let answer = match wire::decode::<Request>(&bytes, state.limit) {
                    Ok(request) => call(state, request),
                    Err(e) => {
                        tracing::warn!(error = %e, "refused a call from a peer");
                        Reply::Refused(e.to_string())
                    }
                };
                let _ = reply.send(wire::encode(&answer));
            }
        }
        Ok(())
    }
}

fn cast(state: &AgentState, request: Request) {
    match request {
        Request::Hint { ids, .. } => {
            let ids: Vec<TaskId> = ids
                .into_iter()
                .map(|b| TaskId(uuid::Uuid::from_bytes(b)))
                .collect();
            let shared = state.system.shared.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::coordinator::take_hinted(&shared, ids).await {
                    tracing::debug!(error = %e, "could not take hinted tasks; the poll finds them");
                }
            });
        }
        Request::Deliver { request } => match serde_json::from_slice::<Requested>(&request) {
            Ok(r) => crate::coordinator::apply_requests(&state.system.shared, vec![r]),
            Err(e) => tracing::warn!(error = %e, "refused a malformed stop request from a peer"),
        },
        other => {
            tracing::warn!(request = ?other, "a request that needs an answer came without a reply port")
        }
    }
}

fn call(state: &AgentState, request: Request) -> Reply {
    match request {
        Request::Ping(_) => Reply::Pong(hello(&state.system)),
        Request::Status { id } => {
            let id = TaskId(uuid::Uuid::from_bytes(id));
            let status = state
                .system
                .status(id)
                .ok()
                .filter(|s| s.state == TaskState::Running);
            Reply::Status(status.and_then(|s| serde_json::to_vec(&s).ok()))
        }
        _ => Reply::Refused("this request has no answer".into()),
    }
}
