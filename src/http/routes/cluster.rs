//! `/v1/cluster`: the nodes of the cluster as this node sees them, and draining this node.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::cluster::{ClusterStatus, NodeStatus};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::HttpState;
use crate::system::NodeLoad;

/// The cluster as the answering node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClusterJson {
    /// The node that answered.
    answered_by: String,
    nodes: Vec<NodeJson>,
    /// Why the store's node registry could not be read (states then come from the mesh).
    store_error: Option<String>,
    /// Who holds the cron lease (fires the schedules), if anyone ever took it.
    cron_leader: Option<CronLeaderJson>,
}

/// The holder of the cron lease.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CronLeaderJson {
    /// Its node name.
    node: String,
    incarnation: u64,
    /// Grows with every new holder.
    epoch: u64,
    /// Time left on the lease by the database's clock, in ms (0: ran out).
    remaining_ms: u64,
}

/// One node.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NodeJson {
    name: String,
    /// Its mesh address.
    address: Option<String>,
    /// up, suspect, down or draining.
    #[schema(example = "up")]
    state: String,
    incarnation: u64,
    /// Age of its last heartbeat in the store, in ms.
    heartbeat_age_ms: Option<u64>,
    /// Attempts running there.
    running: Option<u32>,
    /// Workers free to start an attempt.
    free_slots: Option<u32>,
    /// Tasks waiting in its queues.
    queued: Option<u32>,
    queues: Vec<String>,
    /// True for the node that answered.
    this: bool,
}

impl From<NodeStatus> for NodeJson {
    fn from(n: NodeStatus) -> Self {
        let state = serde_json::to_value(n.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        NodeJson {
            name: n.name,
            address: n.address,
            state,
            incarnation: n.incarnation,
            heartbeat_age_ms: n.heartbeat_age_ms,
            running: n.running,
            free_slots: n.free_slots,
            queued: n.queued,
            queues: n.queues,
            this: n.this,
        }
    }
}

impl From<ClusterStatus> for ClusterJson {
    fn from(s: ClusterStatus) -> Self {
        ClusterJson {
            answered_by: s.answered_by,
            nodes: s.nodes.into_iter().map(NodeJson::from).collect(),
            store_error: s.store_error,
            cron_leader: s.cron_leader.map(|l| CronLeaderJson {
                node: l.node,
                incarnation: l.incarnation,
                epoch: l.epoch,
                remaining_ms: l.remaining_ms,
            }),
        }
    }
}

/// This node's drain progress.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DrainJson {
    /// True once the drain began.
    draining: bool,
    /// Attempts still running here; the node is empty at 0.
    running: usize,
    /// Tasks still in this node's queues (given back to the shared pool).
    queued: usize,
    /// True when nothing runs here any more: the node can be stopped.
    empty: bool,
}

impl From<NodeLoad> for DrainJson {
    fn from(l: NodeLoad) -> Self {
        DrainJson {
            draining: l.draining,
            running: l.running,
            queued: l.queued,
            empty: l.draining && l.running == 0,
        }
    }
}

/// `GET /v1/cluster`: every node (name, address, state, incarnation, heartbeat age,
/// running tasks, free workers, queues) and which node answered.
#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses(
        (status = 200, description = "the cluster as this node sees it", body = ClusterJson),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "this node is not in a cluster", body = ErrorBody),
    ))]
pub(crate) async fn status(State(state): State<HttpState>) -> Result<Json<ClusterJson>, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Err(ApiError::not_found(
            "this node is not in a cluster (cluster.listen is not set)",
        ));
    };
    Ok(Json(cluster.status().await.into()))
}

/// `POST /v1/cluster/drain`: this node stops taking work, gives its waiting tasks to the
/// other nodes and finishes what runs; call again to follow it until `empty`.
#[utoipa::path(post, path = "/v1/cluster/drain", tag = "cluster",
    responses(
        (status = 202, description = "draining; the progress so far", body = DrainJson),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 409, description = "the store is not shared: there is nowhere to drain to", body = ErrorBody),
    ))]
pub(crate) async fn drain(
    State(state): State<HttpState>,
) -> Result<(StatusCode, Json<DrainJson>), ApiError> {
    if !state.system.shared.journal.shared() {
        return Err(ApiError::conflict(
            "this node's store is not shared with other nodes: there is nowhere to drain its tasks to",
        ));
    }
    let load = state.system.drain().await;
    Ok((StatusCode::ACCEPTED, Json(load.into())))
}
