//! What crosses the mesh, apart from the storage types: postcard envelopes with a version
//! byte; task statuses and stop requests travel as JSON bytes inside them (postcard
//! cannot carry `serde_json::Value`). Variants are encoded by position: add new ones at
//! the end, never reorder, remove or rename one. Decoding untrusted bytes never panics,
//! and a message over the size limit is refused before it is decoded.

use serde::{Deserialize, Serialize};

use crate::system::NodeLoad;

/// The envelope format this build speaks.
pub const VERSION: u8 = 1;

/// A request from one node's agent to another's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Are you there, and how busy? Answered with [`Reply::Pong`].
    Ping(Hello),
    /// Tasks of `queue` wait for you, stored unheld (a routing hint; no answer).
    Hint {
        /// The queue.
        queue: String,
        /// The tasks' ids (16 bytes each).
        ids: Vec<[u8; 16]>,
    },
    /// The live status of a task you run. Answered with [`Reply::Status`].
    Status {
        /// The task's id.
        id: [u8; 16],
    },
    /// A stop request stored for a task you run (no answer).
    Deliver {
        /// The request (`Requested`) as JSON.
        request: Vec<u8>,
    },
}

/// An answer to a [`Request`] that has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The answer to a ping.
    Pong(Hello),
    /// The task's live status (`TaskStatus`) as JSON, if it runs here.
    Status(Option<Vec<u8>>),
    /// The request could not be served; why.
    Refused(String),
}

/// Who a node is and how busy: sent on every ping and pong.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The node's name.
    pub node: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Attempts running there.
    pub running: u32,
    /// Workers free to start an attempt.
    pub free_slots: u32,
    /// Tasks waiting in its queues.
    pub queued: u32,
    /// True while it drains.
    pub draining: bool,
    /// The queues it serves, with their load.
    pub queues: Vec<QueueHello>,
}

/// One queue's load on the node saying hello.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueHello {
    /// The queue.
    pub name: String,
    /// Attempts running.
    pub running: u32,
    /// Tasks waiting.
    pub queued: u32,
    /// Workers free.
    pub free_slots: u32,
}

impl Hello {
    /// The load of `queue`, if this node serves it.
    pub fn queue(&self, queue: &str) -> Option<&QueueHello> {
        self.queues.iter().find(|q| q.name == queue)
    }
}

impl Hello {
    /// `node`#`incarnation` with `load`.
    pub fn new(node: &str, incarnation: u64, load: &NodeLoad) -> Self {
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            node: node.to_string(),
            incarnation,
            running: n(load.running),
            free_slots: n(load.free_slots),
            queued: n(load.queued),
            draining: load.draining,
            queues: load
                .queues
                .iter()
                .map(|q| QueueHello {
                    name: q.name.clone(),
                    running: n(q.running),
                    queued: n(q.queued),
                    free_slots: n(q.free_slots),
                })
                .collect(),
        }
    }
}

/// Why bytes from a peer were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// Longer than the limit.
    #[error("message of {len} bytes is over the limit of {limit}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Empty, or a version this build does not speak.
    #[error("message has envelope version {found:?}; this node speaks {VERSION}")]
    Version {
        /// The version byte, if any.
        found: Option<u8>,
    },
    /// Not a message of this version.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encodes `value` in an envelope.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VERSION];
    // Serializing these plain types into a Vec cannot fail.
    if let Ok(body) = postcard::to_allocvec(value) {
        out.extend_from_slice(&body);
    }
    out
}

/// Decodes an envelope of at most `limit` bytes.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], limit: usize) -> Result<T, WireError> {
    if bytes.len() > limit {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    match bytes.split_first() {
        Some((&VERSION, body)) => {
            postcard::from_bytes(body).map_err(|e| WireError::Malformed(e.to_string()))
        }
        Some((&v, _)) => Err(WireError::Version { found: Some(v) }),
        None => Err(WireError::Version { found: None }),
    }
}

#[cfg(test)]
mod tests;
