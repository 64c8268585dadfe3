//! What a handler receives with each attempt: [`TaskContext`] (defined with the runtime
//! that creates it), and the [`Progress`] it reports.

pub use crate::runtime::context::TaskContext;
pub use crate::task::Progress;
