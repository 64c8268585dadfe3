//! Cluster-wide rate limits: after each heartbeat, every limit of scope `cluster` is
//! divided among the live nodes the store's registry lists (a queue's limit among those
//! serving the queue, a kind's among all), so the nodes' starts add up to the limit.
//! The store splits the rate, not a leader: each node reads the same registry, nothing
//! has to be sent, and a node that joins, stops gracefully (it leaves the registry) or
//! dies moves the shares at the next heartbeat of each node (a killed node in a mesh is
//! buried at once; otherwise at `dead_after`, and until then its share goes unused: the
//! cluster stays under the limit).

use crate::ratelimit::{Limiter, Scope};
use crate::runtime::{CoordConfig, Shared};
use crate::store::{newest_incarnations, NodeRecord};

fn cluster_wide(l: &Option<Limiter>) -> Option<&Limiter> {
    l.as_ref().filter(|l| l.limit().scope == Scope::Cluster)
}

/// Reads the registry and sets every cluster-wide limiter's share.
pub(super) async fn share_limits(shared: &Shared, config: &CoordConfig) {
    let queues: Vec<_> = shared
        .queues
        .values()
        .filter_map(|q| cluster_wide(&q.limiter).map(|l| (&*q.name, l)))
        .collect();
    let kinds: Vec<&Limiter> = shared
        .handlers
        .values()
        .filter_map(|h| cluster_wide(&h.limiter))
        .collect();
    if queues.is_empty() && kinds.is_empty() {
        return;
    }
    let Some(store) = shared.journal.store() else {
        return;
    };
    let read = tokio::time::timeout(config.store_deadline(), store.nodes()).await;
    let Ok(Ok(records)) = read else {
        // The shares stay as they were; a node that cannot read the store soon stops
        // starting tasks anyway (its trust window).
        return;
    };
    let live = live(records, config);
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    for (queue, limiter) in queues {
        let serving = live
            .iter()
            .filter(|r| r.info.queues.iter().any(|q| q == queue));
        limiter.share_among(count(serving.count()));
    }
    for limiter in kinds {
        limiter.share_among(count(live.len()));
    }
}

/// The newest incarnation of each node name whose heartbeat is within `dead_after`.
fn live(records: Vec<NodeRecord>, config: &CoordConfig) -> Vec<NodeRecord> {
    newest_incarnations(records)
        .into_values()
        .filter(|r| r.heartbeat_age < config.dead_after)
        .collect()
}
