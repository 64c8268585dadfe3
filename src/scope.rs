//! Where a gate holds: on each node by itself, or across every node sharing the store.

use serde::{Deserialize, Serialize};

/// Where a rate limit or a circuit breaker holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// On each node by itself.
    #[default]
    Node,
    /// Across every node sharing the store: a limit's shares add up to the limit; a
    /// breaker opens everywhere and probes on one node.
    Cluster,
}
