//! Choosing the node a task starts on: pure functions over the healthy candidates.

use super::config::Policy;

/// Where a task starts, by node name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// On the node that accepted it.
    Here,
    /// On that node.
    There(String),
    /// On whichever node takes it first (this node drains and no peer is healthy).
    Anywhere,
}

/// A node that could run a task of the queue: healthy, serving it, not draining.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its name.
    pub node: String,
    /// Its free workers, as last gossiped.
    pub free_slots: u32,
}

/// Where a task starts under `policy`. `me` is this node as a candidate (`None` while it
/// drains), `others` the healthy peers serving the queue; `turn` is the round-robin
/// counter.
pub fn choose(
    policy: Policy,
    me: Option<&Candidate>,
    others: &[Candidate],
    key: Option<&str>,
    turn: usize,
) -> Choice {
    let Some(me) = me else {
        // Draining: any healthy peer, else whoever polls first.
        return match pick(policy, None, others, key, turn) {
            Some(c) => Choice::There(c.node.clone()),
            None => Choice::Anywhere,
        };
    };
    match pick(policy, Some(me), others, key, turn) {
        Some(c) if c.node != me.node => Choice::There(c.node.clone()),
        _ => Choice::Here,
    }
}

fn pick<'a>(
    policy: Policy,
    me: Option<&'a Candidate>,
    others: &'a [Candidate],
    key: Option<&str>,
    turn: usize,
) -> Option<&'a Candidate> {
    let mut all: Vec<&Candidate> = me.into_iter().chain(others).collect();
    all.sort_by(|a, b| a.node.cmp(&b.node));
    all.dedup_by(|a, b| a.node == b.node);
    if all.is_empty() {
        return None;
    }
    match policy {
        Policy::Local => me.or_else(|| all.get(turn % all.len()).copied()),
        Policy::RoundRobin => all.get(turn % all.len()).copied(),
        Policy::LeastLoaded => {
            // Most free workers; among equals, in turn (so a quiet cluster spreads).
            let best = all.iter().map(|c| c.free_slots).max()?;
            let top: Vec<&Candidate> = all.into_iter().filter(|c| c.free_slots == best).collect();
            top.get(turn % top.len()).copied()
        }
        Policy::ConsistentHash => match key {
            Some(key) => all
                .into_iter()
                .max_by_key(|c| (score(key, &c.node), c.node.clone())),
            None => me.or_else(|| all.get(turn % all.len()).copied()),
        },
    }
}

/// The rendezvous score of `node` for `key`: FNV-1a over both, then a 64-bit finalizer.
/// Stable across builds and platforms (unlike the standard library's hasher), so every
/// node of a cluster agrees.
pub fn score(key: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain([0xff]).chain(node.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finalizer spreads FNV's weak low bits.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests;
