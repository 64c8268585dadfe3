//! What a handler receives with each attempt: [`TaskContext`]. Public as
//! `taskmesh::context::TaskContext`.

use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use crate::runtime::journal::Journal;
use crate::runtime::settle::{running_fence, update};
use crate::runtime::TaskCell;
use crate::store::EventKind;
use crate::task::TaskId;

use crate::task::Progress;

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
    journal: Journal,
}

impl TaskContext {
    pub(crate) fn new(
        cell: Arc<TaskCell>,
        attempt: u32,
        token: CancellationToken,
        journal: Journal,
    ) -> Self {
        Self {
            cell,
            attempt,
            token,
            journal,
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

    /// The task's correlation id (for a cron task, `cron:{schedule}:{slot}`).
    pub fn correlation_id(&self) -> Option<&str> {
        self.cell.task.metadata.correlation_id.as_deref()
    }

    /// The token that fires on timeout, cancel, pause or shutdown.
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

    /// Records progress; `percent` is clamped to 100. Queryable through the system handle
    /// and journalled as a `progress` event.
    pub fn report_progress(&self, percent: u8, message: impl Into<String>) {
        self.record(Some((percent, message.into())), None);
    }

    /// Sets the task's workflow phase (listable with a phase filter), journalled as a
    /// `progress` event.
    pub fn set_phase(&self, phase: impl Into<String>) {
        self.record(None, Some(phase.into()));
    }

    fn record(&self, progress: Option<(u8, String)>, phase: Option<String>) {
        let mut s = self.cell.status.lock();
        if let Some((percent, message)) = progress {
            s.progress = Some(Progress {
                percent: percent.min(100),
                message,
                at: SystemTime::now(),
            });
        }
        if phase.is_some() {
            s.phase = phase;
        }
        if self.journal.store().is_none() {
            return;
        }
        let (percent, message) = s
            .progress
            .as_ref()
            .map_or((0, String::new()), |p| (p.percent, p.message.clone()));
        let kind = EventKind::Progress {
            percent,
            message,
            phase: s.phase.clone(),
        };
        let fence = match s.intent {
            Some(_) => running_fence(&s),
            None => running_fence(&s).unrequested(),
        };
        let write = update(&self.cell, &s, kind, self.journal.hot(fence));
        drop(s);
        self.journal.write_later(vec![write], None);
    }

    /// The last progress report of this task.
    pub fn progress(&self) -> Option<Progress> {
        self.cell.status.lock().progress.clone()
    }
}
