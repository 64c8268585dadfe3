//! Rebuilding a system's state from its store at start.
//!
//! - A task that was running when the process died is settled as a crashed attempt, so
//!   it runs again (at-least-once) unless that was its last attempt, and the crash goes
//!   into its history (auto-restart applies).
//! - Pending tasks are queued; scheduled and retrying tasks are queued for their time;
//!   paused tasks stay paused.
//! - Tasks whose queue or kind is no longer configured stay in the store, untouched, and
//!   are counted in the report.

use std::sync::Arc;

use crate::error::SystemError;
use crate::runtime::adopt::{adopt, Adopted};
use crate::runtime::Shared;

/// What recovery found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Open tasks loaded.
    pub loaded: usize,
    /// Tasks that were running when the process stopped.
    pub interrupted: usize,
    /// Tasks left in the store because their queue or kind is not configured.
    pub orphaned: usize,
}

pub(super) async fn recover(shared: &Arc<Shared>) -> Result<Recovery, SystemError> {
    let mut report = Recovery::default();
    let Some(store) = shared.journal.store() else {
        return Ok(report);
    };
    if store.shared() {
        // Other processes' open tasks are theirs. This process's earlier incarnations
        // are dead: the coordinator rescues their tasks with the others' at its first
        // tick, and reserves waiting tasks as workers are free.
        return Ok(report);
    }
    let open = store.open_tasks().await.map_err(SystemError::Store)?;
    for record in open {
        match adopt(shared, record, "the process stopped while the attempt ran") {
            Adopted::Orphan => report.orphaned += 1,
            Adopted::Interrupted => {
                report.loaded += 1;
                report.interrupted += 1;
            }
            Adopted::Queued | Adopted::Held => report.loaded += 1,
        }
    }
    Ok(report)
}
