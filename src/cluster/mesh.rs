//! The mesh actor: keeps this node connected to every live peer and watches them.
//!
//! - **Membership** comes from the store's node registry (live incarnations with a mesh
//!   address) plus the configured seeds, read every second.
//! - **Links**: a full mesh. Of two nodes, the one whose name sorts first dials; a failed
//!   or dropped link is dialed again after a jittered, doubling backoff. Sessions that do
//!   not authenticate within the handshake deadline are closed.
//! - **Failure detector**: each peer's agent is pinged every `ping_every` with a deadline;
//!   a peer that has not answered for `suspect_after` is suspect and its session is
//!   closed. A killed peer's session closes at once (its socket does).
//! - **Monitors**: the mesh monitors every peer's agent; when one dies or its session
//!   drops, the mesh asks the store whether that incarnation is gone (no connection of its
//!   process open, heartbeat stopped) and, if so, rescues its running tasks at once
//!   rather than at `dead_after`. The rescue is the store's fenced write, so survivors
//!   racing do no harm; a peer that is only stopped keeps its connections and is left to
//!   the heartbeat deadline.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::RactorMessage;
use ractor_cluster::{NodeEventSubscription, NodeServerMessage, NodeSessionMessage};
use rand::Rng;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::agent::{self, AgentMsg};
use super::config::ClusterConfig;
use super::directory::Directory;
use super::net;
use super::tls::Tls;
use super::wire::{self, Hello, Reply, Request};
use crate::store::{NodeRecord, Owner};
use crate::system::TaskSystem;

/// The mesh looks at its peers this often.
const TICK: Duration = Duration::from_millis(100);
/// The registry is read this often.
const REFRESH: Duration = Duration::from_secs(1);
/// How often a fast rescue asks the store again.
const RESCUE_RETRY: Duration = Duration::from_millis(250);
/// The host part of ractor's node names (`{node}@{HOST}`).
pub(crate) const HOST: &str = "taskmesh";

/// A session event from the node server.
#[derive(Debug)]
pub(crate) enum SessionEvent {
    Opened,
    Authenticated,
    Ready,
    Disconnected,
}

/// Messages of the mesh.
#[derive(RactorMessage)]
pub(crate) enum MeshMsg {
    Tick,
    Members(Vec<NodeRecord>),
    Session(SessionEvent, Box<NodeServerSessionInformation>),
    Dialed { addr: String, ok: bool },
    Pong { agent: ActorId, hello: Hello },
    PingFailed { agent: ActorId },
    RescueDone(Owner),
    View(RpcReplyPort<Vec<PeerView>>),
}

/// A peer as the mesh sees it now.
#[derive(Clone, Debug)]
pub(crate) struct PeerView {
    pub node: String,
    pub hello: Option<Hello>,
    pub connected: bool,
    pub suspect: bool,
}

struct Subscription(ActorRef<MeshMsg>);

impl Subscription {
    fn send(&self, event: SessionEvent, ses: NodeServerSessionInformation) {
        let _ = self.0.cast(MeshMsg::Session(event, Box::new(ses)));
    }
}

impl NodeEventSubscription for Subscription {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        self.send(SessionEvent::Opened, ses);
    }
    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        self.send(SessionEvent::Disconnected, ses);
    }
    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        self.send(SessionEvent::Authenticated, ses);
    }
    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        self.send(SessionEvent::Ready, ses);
    }
}

/// What the mesh starts with.
pub(crate) struct MeshArgs {
    pub system: TaskSystem,
    pub config: Arc<ClusterConfig>,
    pub dir: Arc<RwLock<Directory>>,
    pub tls: Option<Arc<Tls>>,
    pub listener: tokio::net::TcpListener,
}

struct SessionSlot {
    actor: ActorRef<NodeSessionMessage>,
    opened: Instant,
    peer: Option<String>,
    /// The socket's peer address (for a dialed session, the address dialed).
    addr: String,
}

struct AgentSlot {
    agent: ActorRef<AgentMsg>,
    node: Option<String>,
    found: Instant,
    pinging: bool,
    last_ping: Option<Instant>,
    last_pong: Option<Instant>,
}

#[derive(Default)]
struct Dial {
    failures: u32,
    next: Option<Instant>,
    in_flight: bool,
}

/// The mesh actor.
pub(crate) struct Mesh;

/// The mesh's state.
pub(crate) struct MeshState {
    system: TaskSystem,
    config: Arc<ClusterConfig>,
    dir: Arc<RwLock<Directory>>,
    tls: Option<Arc<Tls>>,
    server: ActorRef<NodeServerMessage>,
    scope: String,
    tasks: Vec<JoinHandle<()>>,
    sessions: HashMap<u64, SessionSlot>,
    agents: HashMap<ActorId, AgentSlot>,
    dials: HashMap<String, Dial>,
    members: Vec<NodeRecord>,
    /// The registry has been read once: seeds it lacks may be dialed.
    members_read: bool,
    next_refresh: Instant,
    rescuing: HashSet<Owner>,
}

impl Actor for Mesh {
    type Msg = MeshMsg;
    type State = MeshState;
    type Arguments = MeshArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MeshMsg>,
        args: MeshArgs,
    ) -> Result<MeshState, ActorProcessingErr> {
        let config = args.config.clone();
        // ractor's own listener is bound on a loopback port nobody is told about (TLS
        // too, if set); peers come in through ours, which tunes sockets and bounds
        // handshakes.
        let encryption = args
            .tls
            .as_ref()
            .map(|t| ractor_cluster::IncomingEncryptionMode::Tls(t.acceptor()));
        let server = ractor_cluster::NodeServer::new(
            0,
            config.cookie.expose().to_string(),
            config.node_name.clone(),
            HOST.to_string(),
            encryption,
            Some(ractor_cluster::node::NodeConnectionMode::Isolated),
        )
        .with_listen_addr(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        .with_max_inbound_frame_size(config.max_message_bytes as u64 + 4096);
        let (server, _) = Actor::spawn_linked(None, server, (), myself.get_cell()).await?;
        server.cast(NodeServerMessage::SubscribeToEvents {
            id: "taskmesh-mesh".into(),
            subscription: Box::new(Subscription(myself.clone())),
        })?;
        let limit = config.max_message_bytes;
        Actor::spawn_linked(
            None,
            agent::Agent,
            (args.system.clone(), limit),
            myself.get_cell(),
        )
        .await?;
        let scope = agent::scope(args.system.namespace());
        ractor::pg::monitor_scope(scope.clone(), myself.get_cell());
        let accept = tokio::spawn(net::accept(
            args.listener,
            server.clone(),
            args.tls.clone(),
            config.handshake_timeout,
        ));
        let ticker = myself.send_interval(TICK, || MeshMsg::Tick);
        Ok(MeshState {
            system: args.system,
            config,
            dir: args.dir,
            tls: args.tls,
            server,
            scope,
            tasks: vec![accept, ticker],
            sessions: HashMap::new(),
            agents: HashMap::new(),
            dials: HashMap::new(),
            members: Vec::new(),
            members_read: false,
            next_refresh: Instant::now(),
            rescuing: HashSet::new(),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<MeshMsg>,
        state: &mut MeshState,
    ) -> Result<(), ActorProcessingErr> {
        for t in &state.tasks {
            t.abort();
        }
        ractor::pg::demonitor_scope(state.scope.clone(), myself.get_id());
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<MeshMsg>,
        msg: MeshMsg,
        state: &mut MeshState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MeshMsg::Tick => tick(&myself, state),
            MeshMsg::Members(members) => {
                state.members = members;
                state.members_read = true;
            }
            MeshMsg::Session(event, ses) => session(state, event, *ses),
            MeshMsg::Dialed { addr, ok } => dialed(state, addr, ok),
            MeshMsg::Pong { agent, hello } => pong(state, agent, hello),
            MeshMsg::PingFailed { agent } => {
                if let Some(slot) = state.agents.get_mut(&agent) {
                    slot.pinging = false;
                }
            }
            MeshMsg::RescueDone(owner) => {
                state.rescuing.remove(&owner);
            }
            MeshMsg::View(reply) => {
                let _ = reply.send(view(state));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<MeshMsg>,
        event: SupervisionEvent,
        state: &mut MeshState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ProcessGroupChanged(_) => discover(&myself, state),
            SupervisionEvent::ActorTerminated(cell, _, reason) => lost(
                &myself,
                state,
                &cell.get_id(),
                reason.as_deref().unwrap_or("stopped"),
            ),
            SupervisionEvent::ActorFailed(cell, e) => {
                if state.agents.contains_key(&cell.get_id()) {
                    lost(&myself, state, &cell.get_id(), &e.to_string());
                } else {
                    // The node server or our own agent failed: the mesh stops, and the
                    // node goes on through the store alone.
                    tracing::error!(actor = %cell.get_id(), error = %e, "the mesh failed; this node goes on without it (the store still coordinates)");
                    myself.stop(Some("a mesh actor failed".into()));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn tick(myself: &ActorRef<MeshMsg>, state: &mut MeshState) {
    let now = Instant::now();
    if now >= state.next_refresh {
        state.next_refresh = now + REFRESH;
        refresh(myself, state);
        discover(myself, state);
    }
    close_stalled_handshakes(state, now);
    for id in detect(state, now) {
        lost(myself, state, &id, "stopped answering pings");
    }
    ping(myself, state, now);
    dial(myself, state, now);
}

/// Reads the registry in the background.
fn refresh(myself: &ActorRef<MeshMsg>, state: &MeshState) {
    let Some(store) = state.system.shared.journal.store().cloned() else {
        return;
    };
    let me = myself.clone();
    tokio::spawn(async move {
        match store.nodes().await {
            Ok(nodes) => {
                let _ = me.cast(MeshMsg::Members(nodes));
            }
            Err(e) => tracing::debug!(error = %e, "could not read the node registry"),
        }
    });
}

/// Finds peers' agents in the process group and monitors the new ones.
fn discover(myself: &ActorRef<MeshMsg>, state: &mut MeshState) {
    for cell in ractor::pg::get_scoped_members(&state.scope, &agent::AGENTS.to_string()) {
        let id = cell.get_id();
        if id.is_local() || state.agents.contains_key(&id) {
            continue;
        }
        myself.get_cell().monitor(cell.clone());
        state.agents.insert(
            id,
            AgentSlot {
                agent: ActorRef::from(cell),
                node: None,
                found: Instant::now(),
                pinging: false,
                last_ping: None,
                last_pong: None,
            },
        );
    }
}

/// Pings every peer's agent whose ping is due, with a deadline.
fn ping(myself: &ActorRef<MeshMsg>, state: &mut MeshState, now: Instant) {
    let hello = wire::encode(&Request::Ping(agent::hello(&state.system)));
    let (every, limit) = (state.config.ping_every, state.config.max_message_bytes);
    for (id, slot) in &mut state.agents {
        let due = slot.last_ping.is_none_or(|at| now >= at + every);
        if slot.pinging || !due {
            continue;
        }
        slot.pinging = true;
        slot.last_ping = Some(now);
        let (agent, id, me, msg) = (slot.agent.clone(), *id, myself.clone(), hello.clone());
        tokio::spawn(async move {
            let answer = agent
                .call(|port| AgentMsg::Call(msg, port), Some(every))
                .await;
            let hello = match answer {
                Ok(ractor::rpc::CallResult::Success(bytes)) => {
                    match wire::decode::<Reply>(&bytes, limit) {
                        Ok(Reply::Pong(hello)) => Some(hello),
                        _ => None,
                    }
                }
                _ => None,
            };
            let msg = match hello {
                Some(hello) => MeshMsg::Pong { agent: id, hello },
                None => MeshMsg::PingFailed { agent: id },
            };
            let _ = me.cast(msg);
        });
    }
}

fn pong(state: &mut MeshState, agent: ActorId, hello: Hello) {
    let Some(slot) = state.agents.get_mut(&agent) else {
        return;
    };
    let now = Instant::now();
    slot.pinging = false;
    slot.last_pong = Some(now);
    if slot.node.is_none() {
        tracing::info!(node = %hello.node, incarnation = hello.incarnation, "peer joined the mesh");
    }
    slot.node = Some(hello.node.clone());
    let mut dir = state.dir.write();
    let peer = dir.entry(&hello.node);
    peer.agent = Some(slot.agent.clone());
    peer.last_pong = Some(now);
    peer.suspect = false;
    peer.unconfirmed = 0;
    peer.hello = Some(hello);
}

/// Marks peers that stopped answering as suspect and closes their sessions; returns
/// their agents.
fn detect(state: &mut MeshState, now: Instant) -> Vec<ActorId> {
    let limit = state.config.suspect_after;
    let mut close = Vec::new();
    let mut suspects = Vec::new();
    for (id, slot) in &state.agents {
        let since = slot.last_pong.unwrap_or(slot.found);
        let silent = now.saturating_duration_since(since);
        if silent <= limit {
            continue;
        }
        let node = slot
            .node
            .clone()
            .unwrap_or_else(|| "an unidentified peer".into());
        if let Some(n) = &slot.node {
            state.dir.write().entry(n).suspect = true;
        }
        metrics::counter!(crate::telemetry::names::PEER_SUSPECT).increment(1);
        tracing::warn!(%node, silent_ms = silent.as_millis() as u64, "peer suspect: it stopped answering pings; its session is closed");
        if let ActorId::Remote { node_id, .. } = slot.agent.get_id() {
            close.push(node_id);
        }
        suspects.push(*id);
    }
    for node_id in close {
        if let Some(s) = state.sessions.remove(&node_id) {
            s.actor.stop(Some("peer suspect".into()));
        }
    }
    suspects
}

fn close_stalled_handshakes(state: &mut MeshState, now: Instant) {
    let limit = state.config.handshake_timeout;
    state.sessions.retain(|_, s| {
        let stalled = s.peer.is_none() && now.saturating_duration_since(s.opened) > limit;
        if stalled {
            tracing::warn!("mesh connection closed: it did not authenticate in time");
            s.actor.stop(Some("handshake deadline".into()));
        }
        !stalled
    });
}

fn session(state: &mut MeshState, event: SessionEvent, ses: NodeServerSessionInformation) {
    let peer = ses.peer_name.as_ref().map(|n| {
        n.name
            .strip_suffix(&format!("@{HOST}"))
            .unwrap_or(&n.name)
            .to_string()
    });
    match event {
        SessionEvent::Opened => {
            state.sessions.insert(
                ses.node_id,
                SessionSlot {
                    actor: ses.actor,
                    opened: Instant::now(),
                    peer: None,
                    addr: ses.peer_addr,
                },
            );
        }
        SessionEvent::Authenticated | SessionEvent::Ready => {
            if let Some(s) = state.sessions.get_mut(&ses.node_id) {
                s.peer = peer.clone();
            }
            if let (SessionEvent::Ready, Some(peer)) = (&event, &peer) {
                tracing::debug!(%peer, "mesh session ready");
                if let Some(addr) = address_of(state, peer) {
                    state.dials.remove(&addr);
                }
            }
        }
        SessionEvent::Disconnected => {
            state.sessions.remove(&ses.node_id);
            if let Some(peer) = peer {
                tracing::info!(%peer, "mesh session closed");
            }
        }
    }
}

/// A peer's agent died or its session dropped: forget it and, unless it comes back,
/// rescue its tasks at once if the store finds it gone.
fn lost(myself: &ActorRef<MeshMsg>, state: &mut MeshState, id: &ActorId, why: &str) {
    let Some(slot) = state.agents.remove(id) else {
        return;
    };
    let Some(node) = slot.node else {
        return;
    };
    let owner = {
        let mut dir = state.dir.write();
        let peer = dir.entry(&node);
        if peer
            .agent
            .as_ref()
            .is_some_and(|a| a.get_id() == slot.agent.get_id())
        {
            peer.agent = None;
        }
        peer.hello
            .as_ref()
            .map(|h| Owner::new(h.node.clone(), h.incarnation))
    };
    tracing::warn!(%node, reason = why, "lost the peer's agent; asking the store whether it is gone");
    let Some(owner) = owner else {
        return;
    };
    if !state.rescuing.insert(owner.clone()) {
        return;
    }
    let shared = state.system.shared.clone();
    let dir = state.dir.clone();
    let me = myself.clone();
    let coord = shared.coord.clone();
    tokio::spawn(async move {
        let give_up = Instant::now() + coord.dead_after + coord.heartbeat_every;
        loop {
            let back = dir.read().peers.get(&owner.node).is_some_and(|p| {
                p.agent.is_some()
                    && p.hello
                        .as_ref()
                        .is_some_and(|h| h.incarnation == owner.incarnation)
            });
            if back || Instant::now() >= give_up {
                break;
            }
            match crate::coordinator::rescue_gone(&shared, &owner, coord.heartbeat_every).await {
                Ok(true) => {
                    tracing::warn!(%owner, "peer is gone (no connection to the store and no heartbeat, or already buried): its running tasks are rescued");
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(%owner, error = %e, "could not check whether the peer is gone")
                }
            }
            tokio::time::sleep(RESCUE_RETRY).await;
        }
        let _ = me.cast(MeshMsg::RescueDone(owner));
    });
}

/// The live peers this node should dial: registered, heartbeat fresh, newest
/// incarnation of their name, with an address, and named after this node.
fn to_dial(state: &MeshState) -> Vec<String> {
    let me = &state.config.node_name;
    let dead_after = state.system.shared.coord.dead_after;
    let mut newest: HashMap<&str, &NodeRecord> = HashMap::new();
    for r in &state.members {
        let e = newest.entry(&r.owner.node).or_insert(r);
        if r.owner.incarnation > e.owner.incarnation {
            *e = r;
        }
    }
    let connected: HashSet<&str> = state
        .sessions
        .values()
        .filter_map(|s| s.peer.as_deref())
        .collect();
    let known: HashSet<&str> = newest
        .values()
        .filter_map(|r| r.info.address.as_deref())
        .collect();
    let mut out: Vec<String> = newest
        .values()
        .filter(|r| r.owner.node != *me && r.heartbeat_age < dead_after)
        .filter(|r| {
            me.as_str() < r.owner.node.as_str() && !connected.contains(r.owner.node.as_str())
        })
        .filter_map(|r| r.info.address.clone())
        .collect();
    // Seeds not yet in the registry (a peer starting at the same time), once the
    // registry has been read: a registered peer is dialed by the rule above.
    if state.members_read && state.sessions.is_empty() {
        out.extend(
            state
                .config
                .seeds
                .iter()
                .filter(|s| **s != state.config.advertise && !known.contains(s.as_str()))
                .cloned(),
        );
    }
    out
}

fn address_of(state: &MeshState, node: &str) -> Option<String> {
    state
        .members
        .iter()
        .filter(|r| r.owner.node == node)
        .max_by_key(|r| r.owner.incarnation)
        .and_then(|r| r.info.address.clone())
}

fn dial(myself: &ActorRef<MeshMsg>, state: &mut MeshState, now: Instant) {
    let pending: HashSet<String> = state.sessions.values().map(|s| s.addr.clone()).collect();
    for addr in to_dial(state) {
        if pending.contains(&addr) {
            // A session to it is still being set up (or closed by its deadline).
            continue;
        }
        let d = state.dials.entry(addr.clone()).or_default();
        if d.in_flight || d.next.is_some_and(|at| now < at) {
            continue;
        }
        d.in_flight = true;
        let (server, tls, me) = (state.server.clone(), state.tls.clone(), myself.clone());
        let deadline = state.config.connect_timeout;
        tokio::spawn(async move {
            let result = net::dial(&server, &addr, tls.as_deref(), deadline).await;
            if let Err(e) = &result {
                tracing::debug!(%addr, error = %e, "could not dial a peer; trying again later");
            }
            let _ = me.cast(MeshMsg::Dialed {
                addr,
                ok: result.is_ok(),
            });
        });
    }
}

/// After a dial: on failure, back off (doubling, jittered); on success, wait the
/// shortest backoff (the new session blocks another dial while it is set up, and the
/// handshake deadline closes it if it stalls).
fn dialed(state: &mut MeshState, addr: String, ok: bool) {
    let (min, max) = state.config.reconnect;
    let d = state.dials.entry(addr).or_default();
    d.in_flight = false;
    let wait = if ok {
        min
    } else {
        d.failures = d.failures.saturating_add(1);
        let base = min.saturating_mul(1 << d.failures.min(16)).min(max);
        let jitter = rand::rng().random_range(0.5..1.0);
        base.mul_f64(jitter)
    };
    d.next = Some(Instant::now() + wait);
}

fn view(state: &MeshState) -> Vec<PeerView> {
    state
        .dir
        .read()
        .peers
        .iter()
        .map(|(node, p)| PeerView {
            node: node.clone(),
            hello: p.hello.clone(),
            connected: p.agent.is_some(),
            suspect: p.suspect,
        })
        .collect()
}
