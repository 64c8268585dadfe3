//! How an attempt failed, as stored and reported.

use serde::{Deserialize, Serialize};

/// How an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The handler returned an error.
    Failed,
    /// The handler panicked.
    Panicked,
    /// The attempt ran past its timeout.
    TimedOut,
    /// The worker running it died, or the system stopped under it.
    Crashed,
}

impl FailureKind {
    /// The snake_case name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Panicked => "panicked",
            Self::TimedOut => "timed_out",
            Self::Crashed => "crashed",
        }
    }
}

/// The error of a failed attempt. A task that ends as failed keeps its last one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// Which attempt failed.
    pub attempt: u32,
    /// How it failed.
    pub kind: FailureKind,
    /// The error message (for a panic, the panic message).
    pub message: String,
}
