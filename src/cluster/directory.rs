//! The mesh's view of its peers, shared between the mesh actor (which writes it) and the
//! runtime's [`Peers`] hooks (which read it on submits, gets and commands).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use parking_lot::RwLock;
use ractor::ActorRef;
use tokio::time::Instant;

use super::agent::AgentMsg;
use super::config::ClusterConfig;
use super::routing::{self, Candidate, Choice};
use super::wire::{self, Hello, Reply, Request};
use crate::runtime::{Peers, Placement, TaskStatus};
use crate::store::{Owner, Requested};
use crate::system::TaskSystem;
use crate::task::TaskId;

/// One peer as the mesh knows it.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// Its agent, while a session to it is up.
    pub agent: Option<ActorRef<AgentMsg>>,
    /// What it said on its last answered ping.
    pub hello: Option<Hello>,
    /// When that was.
    pub last_pong: Option<Instant>,
    /// It stopped answering; its session was closed.
    pub suspect: bool,
    /// Hints sent since its last answered ping.
    pub unconfirmed: usize,
}

impl Peer {
    fn empty() -> Self {
        Peer {
            agent: None,
            hello: None,
            last_pong: None,
            suspect: false,
            unconfirmed: 0,
        }
    }

    /// Reachable, answering, and not draining.
    pub fn healthy(&self, now: Instant, suspect_after: Duration) -> bool {
        let answering = self
            .last_pong
            .is_some_and(|at| now.saturating_duration_since(at) <= suspect_after);
        self.agent.is_some()
            && answering
            && !self.suspect
            && self.hello.as_ref().is_some_and(|h| !h.draining)
    }
}

/// Every peer by node name.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub peers: BTreeMap<String, Peer>,
}

impl Directory {
    /// The entry of `node`, created if new.
    pub fn entry(&mut self, node: &str) -> &mut Peer {
        self.peers
            .entry(node.to_string())
            .or_insert_with(Peer::empty)
    }
}

/// The runtime's hooks into the mesh.
pub(crate) struct MeshPeers {
    pub dir: Arc<RwLock<Directory>>,
    pub system: TaskSystem,
    pub config: Arc<ClusterConfig>,
    turn: AtomicUsize,
}

impl MeshPeers {
    pub fn new(
        dir: Arc<RwLock<Directory>>,
        system: TaskSystem,
        config: Arc<ClusterConfig>,
    ) -> Self {
        Self {
            dir,
            system,
            config,
            turn: AtomicUsize::new(0),
        }
    }

    /// The agent of `owner`'s node, if a session to it is up and it is that incarnation.
    fn agent_of(&self, owner: &Owner) -> Option<ActorRef<AgentMsg>> {
        let dir = self.dir.read();
        let peer = dir.peers.get(&owner.node)?;
        let same = peer
            .hello
            .as_ref()
            .is_some_and(|h| h.incarnation == owner.incarnation);
        same.then(|| peer.agent.clone()).flatten()
    }
}

impl Peers for MeshPeers {
    fn place(&self, queue: &str, routing_key: Option<&str>) -> Placement {
        let policy = self.config.routing.of(queue);
        let draining = self.system.draining();
        if policy == crate::cluster::Policy::Local && !draining {
            return Placement::Here;
        }
        let now = Instant::now();
        let others: Vec<Candidate> = {
            let dir = self.dir.read();
            dir.peers
                .iter()
                .filter(|(_, p)| p.healthy(now, self.config.suspect_after))
                .filter_map(|(node, p)| {
                    let q = p.hello.as_ref()?.queue(queue)?;
                    Some(Candidate {
                        node: node.clone(),
                        free_slots: q.free_slots,
                    })
                })
                .collect()
        };
        let me = (!draining).then(|| {
            let load = self.system.load();
            let free = load
                .queues
                .iter()
                .find(|q| q.name == queue)
                .map_or(0, |q| q.free_slots);
            Candidate {
                node: self.config.node_name.clone(),
                free_slots: u32::try_from(free).unwrap_or(u32::MAX),
            }
        });
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        match routing::choose(policy, me.as_ref(), &others, routing_key, turn) {
            Choice::Here => Placement::Here,
            Choice::Anywhere => Placement::Anywhere,
            Choice::There(node) => {
                let dir = self.dir.read();
                let hello = dir.peers.get(&node).and_then(|p| p.hello.as_ref());
                match hello {
                    Some(h) => Placement::There(Owner::new(node, h.incarnation)),
                    None if draining => Placement::Anywhere,
                    None => Placement::Here,
                }
            }
        }
    }

    fn hint(&self, owner: &Owner, queue: &str, ids: Vec<TaskId>) {
        let agent = {
            let mut dir = self.dir.write();
            let Some(peer) = dir.peers.get_mut(&owner.node) else {
                return;
            };
            if peer.unconfirmed >= self.config.outbound_limit {
                metrics::counter!(crate::telemetry::names::MESH_DROPPED).increment(1);
                return;
            }
            peer.unconfirmed += 1;
            peer.agent.clone()
        };
        let Some(agent) = agent else {
            return;
        };
        let ids = ids.iter().map(|id| *id.0.as_bytes()).collect();
        let msg = wire::encode(&Request::Hint {
            queue: queue.to_string(),
            ids,
        });
        let _ = agent.cast(AgentMsg::Cast(msg));
    }

    fn live(&self, owner: &Owner, id: TaskId) -> BoxFuture<'static, Option<TaskStatus>> {
        let agent = self.agent_of(owner);
        let (deadline, limit) = (self.config.call_timeout, self.config.max_message_bytes);
        async move {
            let agent = agent?;
            let msg = wire::encode(&Request::Status {
                id: *id.0.as_bytes(),
            });
            let answer = agent
                .call(|port| AgentMsg::Call(msg, port), Some(deadline))
                .await
                .ok()?
                .success_or(())
                .ok()?;
            match wire::decode::<Reply>(&answer, limit).ok()? {
                Reply::Status(Some(json)) => serde_json::from_slice(&json).ok(),
                _ => None,
            }
        }
        .boxed()
    }

    fn deliver(&self, owner: &Owner, request: Requested) {
        let Some(agent) = self.agent_of(owner) else {
            return;
        };
        let Ok(json) = serde_json::to_vec(&request) else {
            return;
        };
        let msg = wire::encode(&Request::Deliver { request: json });
        let _ = agent.cast(AgentMsg::Cast(msg));
    }
}
