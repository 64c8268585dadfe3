//! What a handler receives with each attempt: [`TaskContext`].

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::runtime::TaskCell;
use crate::task::TaskId;

/// A handler's last progress report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// 0 to 100.
    pub percent: u8,
    /// What the handler is doing.
    pub message: String,
    /// When it was reported.
    pub at: SystemTime,
}

/// The context of one attempt: the task's id, the attempt number, a cancellation token and
/// a progress reporter.
///
/// Handlers that run long should watch [`TaskContext::cancelled`]: on a timeout or a cancel
/// the token fires first, and the handler is aborted only after a grace period.
#[derive(Clone)]
pub struct TaskContext {
    cell: Arc<TaskCell>,
    attempt: u32,
    token: CancellationToken,
}

impl TaskContext {
    pub(crate) fn new(cell: Arc<TaskCell>, attempt: u32, token: CancellationToken) -> Self {
        Self {
            cell,
            attempt,
            token,
        }
    }

    /// The task's id.
    pub fn task_id(&self) -> TaskId {
        self.cell.task.id
    }

    /// This attempt's number, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The task's kind.
    pub fn kind(&self) -> &str {
        &self.cell.task.kind
    }

    /// The token that fires on timeout, cancel or shutdown.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// True once the attempt has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when the attempt is asked to stop.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Records progress; `percent` is clamped to 100. Queryable through the system handle.
    pub fn report_progress(&self, percent: u8, message: impl Into<String>) {
        let progress = Progress {
            percent: percent.min(100),
            message: message.into(),
            at: SystemTime::now(),
        };
        self.cell.status.lock().progress = Some(progress);
    }

    /// The last progress report of this task.
    pub fn progress(&self) -> Option<Progress> {
        self.cell.status.lock().progress.clone()
    }
}
