//! A node's load, and draining it for a rolling upgrade: it stops taking work, gives the
//! waiting tasks it holds back to the shared pool, and finishes what runs.

use serde::{Deserialize, Serialize};

use super::TaskSystem;

/// How busy this node is, as its peers see it (gossiped on the agents' pings).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Attempts running here.
    pub running: usize,
    /// Workers that could start an attempt now (0 while draining).
    pub free_slots: usize,
    /// Tasks waiting in this node's queues.
    pub queued: usize,
    /// True once [`TaskSystem::drain`] was called.
    pub draining: bool,
    /// The queues this node serves.
    pub queues: Vec<String>,
}

impl TaskSystem {
    /// This node's load.
    pub fn load(&self) -> NodeLoad {
        let shared = &self.shared;
        let draining = shared.draining();
        let (mut running, mut free, mut queued) = (0, 0, 0);
        let mut queues = Vec::new();
        for q in shared.queues.values() {
            let busy = q.running();
            running += busy;
            queued += q.depth();
            if !q.is_paused() && !draining {
                free += q.config.max_workers.saturating_sub(busy + q.ready_len());
            }
            queues.push(q.name.to_string());
        }
        queues.sort();
        NodeLoad {
            running,
            free_slots: free,
            queued,
            draining,
            queues,
        }
    }

    /// True while this node drains.
    pub fn draining(&self) -> bool {
        self.shared.draining()
    }

    /// Drains this node (for a rolling upgrade): it takes no new work from now on (its
    /// workers start nothing more, it reserves nothing from the shared pool, and tasks
    /// submitted to it are stored for other nodes), gives the waiting tasks it holds back
    /// to the shared pool, and lets running attempts finish. Calling it again only
    /// reports. The node is empty once [`NodeLoad::running`] is 0; then stop it.
    ///
    /// Only on a store several nodes share; on another store the node keeps its tasks.
    pub async fn drain(&self) -> NodeLoad {
        let shared = &self.shared;
        if shared.journal.shared()
            && !shared
                .draining
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            tracing::info!(
                "draining: no new work; running tasks finish, waiting ones go to other nodes"
            );
            for q in shared.queues.values() {
                q.close();
            }
            crate::coordinator::release_while_draining(shared).await;
        }
        self.load()
    }
}
