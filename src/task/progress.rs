//! A handler's progress report.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

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
