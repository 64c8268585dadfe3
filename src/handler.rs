//! The one extension point for user code: [`Handler`] (defined with the runtime that
//! runs it, beside the [`TaskContext`](crate::context::TaskContext) it receives).

pub use crate::runtime::handler::*;
