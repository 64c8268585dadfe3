//! In-memory store (being written).
use super::*;
/// In-memory store.
pub struct MemoryStore;
