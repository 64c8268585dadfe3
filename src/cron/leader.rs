//! Who may fire schedules. A single node always may; a cluster will plug in a fenced
//! lease. A second leader firing the same slot still creates one task: the slot's unique
//! key is enforced by the store.

/// Decides whether this node fires schedules now.
pub trait Leadership: Send + Sync + 'static {
    /// True while this node holds leadership.
    fn is_leader(&self) -> bool;
}

/// Always the leader: a single node.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleNode;

impl Leadership for SingleNode {
    fn is_leader(&self) -> bool {
        true
    }
}
