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
    /// The queues this node serves, with their load.
    pub queues: Vec<QueueLoad>,
}

/// One queue's load on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueLoad {
    /// The queue.
    pub name: String,
    /// Attempts running.
    pub running: usize,
    /// Tasks waiting here.
    pub queued: usize,
    /// Workers free to start an attempt (0 while paused or draining).
    pub free_slots: usize,
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
            let free_here = match q.is_paused() || draining {
                true => 0,
                false => q.config.max_workers.saturating_sub(busy + q.ready_len()),
            };
            running += busy;
            queued += q.depth();
            free += free_here;
            queues.push(QueueLoad {
                name: q.name.to_string(),
                running: busy,
                queued: q.depth(),
                free_slots: free_here,
            });
        }
        queues.sort_by(|a, b| a.name.cmp(&b.name));
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
