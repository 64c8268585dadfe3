//! The CLI's exit codes, so scripts can tell a failed task from a failed call.

use super::ClientError;

/// How `taskmesh` exits. Documented in `taskmesh --help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: the command worked (with `--wait`: the task succeeded).
    Success = 0,
    /// 1: the node answered with an error (4xx or 5xx), or the node failed to run.
    Error = 1,
    /// 2: the command line is wrong (unknown flag, bad value).
    Usage = 2,
    /// 3: the node could not be reached.
    Unreachable = 3,
    /// 4: with `--wait`: the task failed.
    TaskFailed = 4,
    /// 5: with `--wait`: the task was cancelled.
    TaskCancelled = 5,
    /// 6: with `--wait`: the task had not ended when the wait ended.
    StillRunning = 6,
}

/// The text for `taskmesh --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (with --wait: the task succeeded)
  1  the node answered with an error (4xx/5xx), or the node failed to run
  2  bad command line
  3  the node could not be reached
  4  with --wait: the task failed
  5  with --wait: the task was cancelled
  6  with --wait: the task had not ended when the wait ended";

impl Exit {
    /// The exit code of a client error.
    pub fn of_error(e: &ClientError) -> Self {
        match e {
            ClientError::Unreachable { .. } => Exit::Unreachable,
            ClientError::Api { .. } => Exit::Error,
            ClientError::BadUrl { .. }
            | ClientError::InvalidArgument { .. }
            | ClientError::InvalidSegment(_) => Exit::Usage,
        }
    }

    /// The exit code of `submit --wait`, from the task's state.
    pub fn of_task_state(state: &str) -> Self {
        match state {
            "succeeded" => Exit::Success,
            "failed" => Exit::TaskFailed,
            "cancelled" => Exit::TaskCancelled,
            _ => Exit::StillRunning,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}
