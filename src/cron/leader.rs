//! Who may fire schedules. A single node always may. On a store several processes share,
//! the leader is the holder of the `cron` lease (`scheduler::lease`), and every slot it
//! fires is written under that lease's epoch, checked by the store in the same
//! transaction. A second leader firing the same slot would still create one task: the
//! slot's unique key is enforced by the store.

/// Decides whether this node fires schedules now.
pub trait Leadership: Send + Sync + 'static {
    /// True while this node holds leadership.
    fn is_leader(&self) -> bool;

    /// The epoch of the lease its firing must be written under, while it leads by one;
    /// `None` for a leadership the store does not check (a single node).
    fn epoch(&self) -> Option<u64> {
        None
    }
}

/// Always the leader: a single node.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleNode;

impl Leadership for SingleNode {
    fn is_leader(&self) -> bool {
        true
    }
}
