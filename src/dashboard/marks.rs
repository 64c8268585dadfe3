//! Marks on the overview's throughput chart: breaker trips, queue pauses and resumes, and
//! node joins, kept in a bounded ring.
//!
//! A watcher task reads the node's in-memory state once per tick (each queue's pause
//! flag, each kind's breaker, the peers the mesh has connected) and records a mark for
//! every change it sees since the last reading. It reads nothing from the store, so it
//! runs whether or not anyone watches, and the marks of the last minute are on the chart
//! the moment a tab opens. A change undone within one tick (a breaker that opens and
//! closes again between two readings) leaves no mark.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::breaker::BreakerState;
use crate::cluster::Cluster;
use crate::system::{KindGates, QueueStats};
use crate::TaskSystem;

/// Marks kept (the oldest are dropped first).
pub(crate) const KEEP: usize = 64;

/// What a mark records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MarkKind {
    /// A kind's breaker opened.
    BreakerTripped,
    /// A queue stopped dispatching.
    QueuePaused,
    /// A queue dispatches again.
    QueueResumed,
    /// A node joined the mesh (or came back to it).
    NodeJoined,
}

impl MarkKind {
    /// The CSS class and short name.
    pub fn class(&self) -> &'static str {
        match self {
            Self::BreakerTripped => "breaker",
            Self::QueuePaused => "paused",
            Self::QueueResumed => "resumed",
            Self::NodeJoined => "joined",
        }
    }
}

/// One mark: when, what, and of what (a kind, a queue or a node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// When it was seen.
    pub at: SystemTime,
    /// What happened.
    pub kind: MarkKind,
    /// The kind, queue or node it happened to.
    pub subject: String,
}

impl Mark {
    /// The mark in words.
    pub fn text(&self) -> String {
        let s = &self.subject;
        match self.kind {
            MarkKind::BreakerTripped => format!("breaker of kind {s} opened"),
            MarkKind::QueuePaused => format!("queue {s} paused"),
            MarkKind::QueueResumed => format!("queue {s} resumed"),
            MarkKind::NodeJoined => format!("node {s} joined"),
        }
    }
}

/// What one reading saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Reading {
    /// Each queue's pause flag.
    pub paused: HashMap<String, bool>,
    /// Each kind's breaker state.
    pub breakers: HashMap<String, BreakerState>,
    /// The nodes connected to this one (this one included), when in a cluster.
    pub nodes: BTreeSet<String>,
}

impl Reading {
    /// A reading of the queues and the gates (and the nodes, if given).
    pub fn of(queues: &[QueueStats], gates: &[KindGates], nodes: BTreeSet<String>) -> Self {
        Self {
            paused: queues.iter().map(|q| (q.name.clone(), q.paused)).collect(),
            breakers: gates
                .iter()
                .filter_map(|g| Some((g.kind.clone(), g.breaker?)))
                .collect(),
            nodes,
        }
    }
}

/// The ring of marks and the last reading.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    ring: VecDeque<Mark>,
    last: Option<Reading>,
}

impl Marks {
    /// Records a mark for every change from the last reading to `now` (the first reading
    /// only sets the baseline).
    pub fn observe(&mut self, at: SystemTime, now: Reading) {
        if let Some(last) = self.last.take() {
            for mark in changes(&last, &now) {
                if self.ring.len() == KEEP {
                    self.ring.pop_front();
                }
                self.ring.push_back(Mark { at, ..mark });
            }
        }
        self.last = Some(now);
    }

    /// The marks at or after `since`, oldest first.
    pub fn since(&self, since: SystemTime) -> Vec<Mark> {
        self.ring
            .iter()
            .filter(|m| m.at >= since)
            .cloned()
            .collect()
    }
}

fn changes(last: &Reading, now: &Reading) -> Vec<Mark> {
    let mark = |kind, subject: &String| Mark {
        at: SystemTime::UNIX_EPOCH,
        kind,
        subject: subject.clone(),
    };
    let mut out = Vec::new();
    let mut breakers: Vec<_> = now.breakers.iter().collect();
    breakers.sort_by(|a, b| a.0.cmp(b.0));
    for (kind, state) in breakers {
        let was = last.breakers.get(kind);
        if *state == BreakerState::Open && was.is_some_and(|w| *w != BreakerState::Open) {
            out.push(mark(MarkKind::BreakerTripped, kind));
        }
    }
    let mut queues: Vec<_> = now.paused.iter().collect();
    queues.sort();
    for (queue, paused) in queues {
        match (last.paused.get(queue), paused) {
            (Some(false), true) => out.push(mark(MarkKind::QueuePaused, queue)),
            (Some(true), false) => out.push(mark(MarkKind::QueueResumed, queue)),
            _ => {}
        }
    }
    for node in now.nodes.difference(&last.nodes) {
        out.push(mark(MarkKind::NodeJoined, node));
    }
    out
}

/// Starts the watcher: a reading every `tick` until `stop` fires.
pub(crate) fn watch(
    system: TaskSystem,
    cluster: Option<Cluster>,
    marks: Arc<Mutex<Marks>>,
    tick: Duration,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = interval.tick() => {}
            }
            let nodes = match &cluster {
                Some(c) => connected(c).await,
                None => BTreeSet::new(),
            };
            let reading = Reading::of(&system.queues(), &system.kind_gates(), nodes);
            marks.lock().observe(SystemTime::now(), reading);
        }
    });
}

/// The nodes the mesh has connected (those that tell their queues), this one included.
async fn connected(cluster: &Cluster) -> BTreeSet<String> {
    let by_queue = cluster.queues().await;
    by_queue.into_values().flatten().map(|q| q.node).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(
        paused: &[(&str, bool)],
        breakers: &[(&str, BreakerState)],
        nodes: &[&str],
    ) -> Reading {
        Reading {
            paused: paused.iter().map(|(q, p)| (q.to_string(), *p)).collect(),
            breakers: breakers.iter().map(|(k, s)| (k.to_string(), *s)).collect(),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn kinds(marks: &Marks) -> Vec<(MarkKind, String)> {
        marks
            .since(SystemTime::UNIX_EPOCH)
            .into_iter()
            .map(|m| (m.kind, m.subject))
            .collect()
    }

    #[test]
    fn the_first_reading_is_a_baseline_and_each_change_after_it_is_a_mark() {
        use BreakerState::{Closed, HalfOpen, Open};
        let mut marks = Marks::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        marks.observe(t0, reading(&[("a", true)], &[("x", Open)], &["n1"]));
        assert!(
            kinds(&marks).is_empty(),
            "what the first reading sees is no change"
        );
        let t1 = t0 + Duration::from_secs(1);
        let now = reading(
            &[("a", false), ("b", true)],
            &[("x", Open), ("y", Closed)],
            &["n1", "n2"],
        );
        marks.observe(t1, now);
        assert_eq!(
            kinds(&marks),
            vec![
                (MarkKind::QueueResumed, "a".into()),
                (MarkKind::NodeJoined, "n2".into())
            ],
            "a new queue or breaker is no mark; a new node is"
        );
        let t2 = t1 + Duration::from_secs(1);
        marks.observe(
            t2,
            reading(
                &[("a", true), ("b", true)],
                &[("x", HalfOpen), ("y", Open)],
                &["n1"],
            ),
        );
        let t3 = t2 + Duration::from_secs(1);
        marks.observe(
            t3,
            reading(
                &[("a", true), ("b", true)],
                &[("x", Open), ("y", Open)],
                &["n1", "n2"],
            ),
        );
        let late: Vec<_> = marks
            .since(t2)
            .into_iter()
            .map(|m| (m.at, m.text()))
            .collect();
        assert_eq!(
            late,
            vec![
                (t2, "breaker of kind y opened".to_string()),
                (t2, "queue a paused".to_string()),
                (t3, "breaker of kind x opened".to_string()),
                (t3, "node n2 joined".to_string()),
            ],
            "a failed probe opens the breaker again; a node that left and came back joined again"
        );
    }

    #[test]
    fn the_ring_keeps_only_the_newest_marks() {
        let mut marks = Marks::default();
        let t0 = SystemTime::UNIX_EPOCH;
        for i in 0..(KEEP as u64 + 10) {
            let paused = i % 2 == 1;
            marks.observe(
                t0 + Duration::from_secs(i),
                reading(&[("q", paused)], &[], &[]),
            );
        }
        let kept = marks.since(t0);
        assert_eq!(kept.len(), KEEP);
        assert_eq!(
            kept.last().unwrap().at,
            t0 + Duration::from_secs(KEEP as u64 + 9)
        );
        assert_eq!(
            kept[0].at,
            t0 + Duration::from_secs(10),
            "the oldest went first"
        );
    }
}
