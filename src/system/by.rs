//! The commands on a task's execution on behalf of a named actor (a user, a dashboard
//! session): the same as [`TaskSystem::cancel`] and the others, with `actor` written into
//! the task's events instead of the runtime's name.

use serde_json::Value;

use super::TaskSystem;
use crate::error::TaskError;
use crate::runtime::ops::{self, Command};
use crate::runtime::Control;
use crate::task::TaskId;

impl TaskSystem {
    /// [`TaskSystem::cancel`], recorded as done by `actor`.
    pub async fn cancel_by(
        &self,
        id: TaskId,
        reason: impl Into<String>,
        actor: &str,
    ) -> Result<Control, TaskError> {
        ops::run(
            &self.shared,
            id,
            Some(actor),
            Command::Cancel(reason.into()),
        )
        .await
    }

    /// [`TaskSystem::pause`], recorded as done by `actor`.
    pub async fn pause_by(&self, id: TaskId, actor: &str) -> Result<Control, TaskError> {
        ops::run(&self.shared, id, Some(actor), Command::Pause).await
    }

    /// [`TaskSystem::resume`], recorded as done by `actor`.
    pub async fn resume_by(&self, id: TaskId, actor: &str) -> Result<Control, TaskError> {
        ops::run(&self.shared, id, Some(actor), Command::Resume).await
    }

    /// [`TaskSystem::restart`], recorded as done by `actor`.
    pub async fn restart_by(&self, id: TaskId, actor: &str) -> Result<Control, TaskError> {
        ops::run(&self.shared, id, Some(actor), Command::Restart).await
    }

    /// Gives an ended task (failed or cancelled) one more attempt, recorded as done by
    /// `actor` (a `restarted` event). The change is a write fenced by the ended row, so
    /// of two racing retries (on any process) one wins and the other gets
    /// [`TaskError::Conflict`]. A task in any other state is refused
    /// ([`TaskError::Transition`]).
    pub async fn retry_by(&self, id: TaskId, actor: &str) -> Result<Control, TaskError> {
        crate::runtime::revive::retry(&self.shared, id, Some(actor)).await
    }

    /// Deletes the ended tasks among `ids` (rows, events, crash history); tasks that have
    /// not ended, and unknown ones, are left alone. Returns the ids deleted.
    pub async fn delete_ended(&self, ids: Vec<TaskId>) -> Result<Vec<TaskId>, TaskError> {
        crate::runtime::revive::delete_ended(&self.shared, ids).await
    }

    /// [`TaskSystem::complete`], recorded as done by `actor`.
    pub async fn complete_by(
        &self,
        id: TaskId,
        result: Value,
        actor: &str,
    ) -> Result<Control, TaskError> {
        ops::run(&self.shared, id, Some(actor), Command::Complete(result)).await
    }
}
