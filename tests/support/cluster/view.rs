//! What a node answers at `GET /v1/cluster`, and waiting until a node's view holds
//! something.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::Cluster;

/// The pace of a poll of `/v1/cluster`.
const POLL: Duration = Duration::from_millis(50);

/// A node's view of the cluster (the shape of `taskmesh::cluster::ClusterStatus`,
/// decoded apart so that the harness does not depend on the library's type).
#[derive(Clone, Debug, Deserialize)]
pub struct View {
    /// The node that answered.
    pub answered_by: String,
    /// Every node it knows, itself included.
    pub nodes: Vec<Member>,
    /// Why the store's registry could not be read, if it could not.
    #[serde(default)]
    pub store_error: Option<String>,
    /// Who holds the cron lease, if anyone ever took it.
    #[serde(default)]
    pub cron_leader: Option<CronLeader>,
}

/// The holder of the cron lease, as a node reports it.
#[derive(Clone, Debug, Deserialize)]
pub struct CronLeader {
    /// Its node name.
    pub node: String,
    /// Grows with every new holder.
    pub epoch: u64,
    /// Time left on the lease, in ms.
    pub remaining_ms: u64,
}

/// One node as another sees it.
#[derive(Clone, Debug, Deserialize)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// The address it advertises.
    #[serde(default)]
    pub address: Option<String>,
    /// Up, suspect, down or draining.
    pub state: MemberState,
    /// Its incarnation (grows at each start).
    #[serde(default)]
    pub incarnation: u64,
    /// How old its last heartbeat in the store is, if it is registered.
    #[serde(default)]
    pub heartbeat_age_ms: Option<u64>,
    /// Attempts it runs (as last gossiped).
    #[serde(default)]
    pub running: Option<u64>,
    /// Workers it has free (as last gossiped).
    #[serde(default)]
    pub free_slots: Option<u64>,
    /// Tasks waiting in its queues (as last gossiped).
    #[serde(default)]
    pub queued: Option<u64>,
    /// The queues it serves.
    #[serde(default)]
    pub queues: Vec<String>,
    /// True for the node that answered.
    #[serde(default)]
    pub this: bool,
}

/// A member's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Answering pings.
    Up,
    /// Missed its ping deadlines.
    Suspect,
    /// Gone (no heartbeat past `dead_after`, or left).
    Down,
    /// Finishing its work before it stops.
    Draining,
    /// A state this harness does not know.
    #[serde(other)]
    Other,
}

impl View {
    /// The member named `name`, if the view has it.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.nodes.iter().find(|m| m.name == name)
    }

    /// The state of `name` in this view, if the view has it.
    pub fn state_of(&self, name: &str) -> Option<MemberState> {
        self.member(name).map(|m| m.state)
    }
}

impl Cluster {
    /// Polls node `i`'s `GET /v1/cluster` until `holds` is true of its view, and returns
    /// that view; panics with the last answer once `limit` has passed.
    pub async fn wait_view(
        &self,
        i: usize,
        limit: Duration,
        holds: impl Fn(&View) -> bool,
    ) -> View {
        let url = format!("{}/v1/cluster", self.nodes[i].url);
        let deadline = Instant::now() + limit;
        loop {
            let last = match self.get_view(&url).await {
                Ok(view) if holds(&view) => return view,
                Ok(view) => format!("{view:#?}"),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                panic!(
                    "{}: no matching view within {limit:?}; last answer: {last}",
                    self.name(i)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every live node (started, not killed or stopped) sees every other
    /// live node as up, all within `limit`.
    pub async fn wait_all_up(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let live = self.live();
        for &i in &live {
            let others: Vec<String> = live
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| self.name(j))
                .collect();
            let left = deadline.saturating_duration_since(Instant::now());
            self.wait_view(i, left, |v| {
                others
                    .iter()
                    .all(|n| v.state_of(n) == Some(MemberState::Up))
            })
            .await;
        }
    }

    /// Waits until node `i` sees node `j` in `state`.
    pub async fn wait_sees(&self, i: usize, j: usize, state: MemberState, limit: Duration) -> View {
        let name = self.name(j);
        self.wait_view(i, limit, |v| v.state_of(&name) == Some(state))
            .await
    }

    async fn get_view(&self, url: &str) -> Result<View, String> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url}: {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("{url}: {e}: {body}"))
    }
}
