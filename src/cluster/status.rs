//! The cluster as one node sees it: the store's registry joined with the mesh's view.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::ClusterConfig;
use super::mesh::PeerView;
use crate::store::NodeRecord;
use crate::system::TaskSystem;

/// A node's state, as the answering node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Connected and answering pings (or this node).
    Up,
    /// Its heartbeat in the store is fresh, but it does not answer over the mesh.
    Suspect,
    /// Its heartbeat is older than `dead_after` (or it left the registry).
    Down,
    /// Up, finishing its running tasks and taking no new ones.
    Draining,
}

/// One node of the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Its name.
    pub name: String,
    /// Its mesh address.
    pub address: Option<String>,
    /// Its state.
    pub state: NodeState,
    /// Its incarnation (newest registered).
    pub incarnation: u64,
    /// Age of its last heartbeat in the store (store time), if registered.
    pub heartbeat_age_ms: Option<u64>,
    /// Attempts running there (as last gossiped).
    pub running: Option<u32>,
    /// Its free workers (as last gossiped).
    pub free_slots: Option<u32>,
    /// Tasks waiting in its queues (as last gossiped).
    pub queued: Option<u32>,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// True for the node that answered.
    pub this: bool,
}

/// One queue's load on one node, as last gossiped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueOnNode {
    /// The node.
    pub node: String,
    /// Attempts running there.
    pub running: u32,
    /// Tasks waiting there.
    pub queued: u32,
    /// Workers free there.
    pub free_slots: u32,
}

/// The cluster as `answered_by` sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub answered_by: String,
    /// Every node, by name.
    pub nodes: Vec<NodeStatus>,
    /// Why the store's registry could not be read, if it could not (the states then
    /// come from the mesh alone).
    pub store_error: Option<String>,
    /// The cron leader: the `cron` lease as the store holds it (`None` if it was never
    /// taken or could not be read).
    pub cron_leader: Option<CronLeader>,
}

/// Who holds the `cron` lease, under which epoch, and for how long yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CronLeader {
    /// The holder's node name.
    pub node: String,
    /// The holder's incarnation.
    pub incarnation: u64,
    /// The lease's epoch: grows with every new holder.
    pub epoch: u64,
    /// Its time left by the store's clock, in milliseconds (0: it ran out, and the next
    /// node to try takes it).
    pub remaining_ms: u64,
}

impl From<crate::store::Lease> for CronLeader {
    fn from(l: crate::store::Lease) -> Self {
        Self {
            node: l.holder.node,
            incarnation: l.holder.incarnation,
            epoch: l.epoch,
            remaining_ms: ms(l.remaining),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn build(
    system: &TaskSystem,
    config: &ClusterConfig,
    peers: Vec<PeerView>,
    records: Result<Vec<NodeRecord>, String>,
    cron_leader: Option<CronLeader>,
) -> ClusterStatus {
    let dead_after = system.shared.coord.dead_after;
    let (records, store_error) = match records {
        Ok(r) => (r, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let newest = crate::store::newest_incarnations(records);
    let peers: BTreeMap<String, PeerView> =
        peers.into_iter().map(|p| (p.node.clone(), p)).collect();
    let mut names: Vec<String> = newest.keys().chain(peers.keys()).cloned().collect();
    names.push(config.node_name.clone());
    names.sort();
    names.dedup();
    let nodes = names
        .into_iter()
        .map(|name| {
            let record = newest.get(&name);
            let peer = peers.get(&name);
            if name == config.node_name {
                return this_node(system, config, record);
            }
            let hello = peer.and_then(|p| p.hello.as_ref());
            let fresh = record.is_some_and(|r| r.heartbeat_age < dead_after);
            let answering = peer.is_some_and(|p| p.connected && !p.suspect);
            let state = match (answering, fresh || store_error.is_some()) {
                (true, _) if hello.is_some_and(|h| h.draining) => NodeState::Draining,
                (true, _) => NodeState::Up,
                (false, true) if peer.is_some() || record.is_some() => NodeState::Suspect,
                _ => NodeState::Down,
            };
            let state = if !fresh && store_error.is_none() && !answering {
                NodeState::Down
            } else {
                state
            };
            NodeStatus {
                address: record.and_then(|r| r.info.address.clone()),
                state,
                incarnation: record
                    .map(|r| r.owner.incarnation)
                    .or(hello.map(|h| h.incarnation))
                    .unwrap_or_default(),
                heartbeat_age_ms: record.map(|r| ms(r.heartbeat_age)),
                running: hello.map(|h| h.running),
                free_slots: hello.map(|h| h.free_slots),
                queued: hello.map(|h| h.queued),
                queues: hello
                    .map(|h| h.queues.iter().map(|q| q.name.clone()).collect())
                    .or(record.map(|r| r.info.queues.clone()))
                    .unwrap_or_default(),
                this: false,
                name,
            }
        })
        .collect();
    ClusterStatus {
        answered_by: config.node_name.clone(),
        nodes,
        store_error,
        cron_leader,
    }
}

fn this_node(
    system: &TaskSystem,
    config: &ClusterConfig,
    record: Option<&NodeRecord>,
) -> NodeStatus {
    let load = system.load();
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    let owner = system.shared.journal.owner();
    NodeStatus {
        name: config.node_name.clone(),
        address: Some(config.advertise.clone()),
        state: if load.draining {
            NodeState::Draining
        } else {
            NodeState::Up
        },
        incarnation: owner.map(|o| o.incarnation).unwrap_or_default(),
        heartbeat_age_ms: record.map(|r| ms(r.heartbeat_age)),
        running: Some(n(load.running)),
        free_slots: Some(n(load.free_slots)),
        queued: Some(n(load.queued)),
        queues: load.queues.into_iter().map(|q| q.name).collect(),
        this: true,
    }
}
