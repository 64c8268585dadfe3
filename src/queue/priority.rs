//! The dispatch order of one named queue: five FIFO levels of ready items, plus a min-heap
//! of delayed items (retries, snoozes, scheduled runs) that become ready at their deadline.
//!
//! The queue is pure: time is passed in to [`PriorityQueue::release_due`], and the owner
//! arms its own timer from [`PriorityQueue::next_deadline`].

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use tokio::time::Instant;

use crate::task::Priority;

/// Ready items by priority, highest first, FIFO within a priority; delayed items wait in a
/// heap until [`release_due`](Self::release_due) moves them to the back of their level.
#[derive(Debug)]
pub struct PriorityQueue<T> {
    ready: [VecDeque<T>; 5],
    delayed: BinaryHeap<Reverse<Delayed<T>>>,
    next_seq: u64,
}

/// A delayed item. Ordered only by `(at, seq)`, so `T` needs no `Ord`; `seq` makes items
/// with the same deadline come out in push order.
#[derive(Debug)]
struct Delayed<T> {
    at: Instant,
    seq: u64,
    priority: Priority,
    item: T,
}

impl<T> Delayed<T> {
    fn key(&self) -> (Instant, u64) {
        (self.at, self.seq)
    }
}

impl<T> PartialEq for Delayed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<T> Eq for Delayed<T> {}

impl<T> PartialOrd for Delayed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Delayed<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl<T> Default for PriorityQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PriorityQueue<T> {
    /// An empty queue. Allocates nothing until the first push.
    pub fn new() -> Self {
        Self {
            ready: Default::default(),
            delayed: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Enqueues `item` as ready now, behind the items already waiting at `priority`.
    pub fn push(&mut self, priority: Priority, item: T) {
        self.ready[priority.index()].push_back(item);
    }

    /// Holds `item` back until `at`; it then joins the back of its `priority` level.
    pub fn push_delayed(&mut self, at: Instant, priority: Priority, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.delayed.push(Reverse(Delayed {
            at,
            seq,
            priority,
            item,
        }));
    }

    /// The next ready item: highest priority first, FIFO within a priority. Delayed items
    /// are never returned before [`release_due`](Self::release_due) has moved them.
    pub fn pop(&mut self) -> Option<T> {
        Priority::ALL
            .iter()
            .find_map(|p| self.ready[p.index()].pop_front())
    }

    /// Moves every delayed item whose deadline is `<= now` to the back of its ready level,
    /// in `(deadline, push order)` order. Returns how many were moved.
    pub fn release_due(&mut self, now: Instant) -> usize {
        let mut released = 0;
        while self.delayed.peek().is_some_and(|d| d.0.at <= now) {
            if let Some(Reverse(d)) = self.delayed.pop() {
                self.ready[d.priority.index()].push_back(d.item);
                released += 1;
            }
        }
        released
    }

    /// The earliest deadline among delayed items, for arming the owner's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.delayed.peek().map(|d| d.0.at)
    }

    /// How many items are ready now.
    pub fn ready_len(&self) -> usize {
        self.ready.iter().map(VecDeque::len).sum()
    }

    /// How many items wait for their deadline.
    pub fn delayed_len(&self) -> usize {
        self.delayed.len()
    }

    /// All items, ready and delayed.
    pub fn len(&self) -> usize {
        self.ready_len() + self.delayed_len()
    }

    /// Whether there is no item at all, ready or delayed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes everything: ready items in pop order, then delayed items by deadline.
    pub fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        for p in Priority::ALL {
            out.extend(self.ready[p.index()].drain(..));
        }
        let delayed = std::mem::take(&mut self.delayed).into_sorted_vec();
        out.extend(delayed.into_iter().rev().map(|d| d.0.item));
        out
    }

    /// Keeps only the items for which `f` returns true, e.g. to purge cancelled tasks.
    /// Ready items keep their order.
    pub fn retain(&mut self, mut f: impl FnMut(&T) -> bool) {
        for level in &mut self.ready {
            level.retain(&mut f);
        }
        self.delayed.retain(|d| f(&d.0.item));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn higher_priorities_pop_first_and_each_level_is_fifo() {
        let mut q = PriorityQueue::new();
        q.push(Priority::Low, "low");
        q.push(Priority::Critical, "crit1");
        q.push(Priority::Normal, "norm");
        q.push(Priority::Critical, "crit2");
        q.push(Priority::Background, "bg");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, ["crit1", "crit2", "norm", "low", "bg"]);
    }

    #[test]
    fn delayed_items_stay_hidden_until_released() {
        let (t0, mut q) = (Instant::now(), PriorityQueue::new());
        q.push_delayed(ms(t0, 20), Priority::Critical, 1);
        q.push_delayed(ms(t0, 10), Priority::Critical, 2);
        assert_eq!((q.pop(), q.ready_len(), q.delayed_len()), (None, 0, 2));
        assert_eq!(q.next_deadline(), Some(ms(t0, 10)));
        assert_eq!(q.release_due(ms(t0, 9)), 0);
        assert_eq!(q.release_due(ms(t0, 10)), 1);
        assert_eq!(q.next_deadline(), Some(ms(t0, 20)));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.release_due(ms(t0, 100)), 1);
        assert_eq!((q.pop(), q.next_deadline()), (Some(1), None));
    }

    #[test]
    fn released_items_join_the_back_of_their_level_in_deadline_order() {
        let (t0, mut q) = (Instant::now(), PriorityQueue::new());
        q.push(Priority::High, "waiting");
        q.push_delayed(ms(t0, 5), Priority::High, "b");
        q.push_delayed(ms(t0, 1), Priority::High, "a");
        q.push_delayed(ms(t0, 5), Priority::High, "c");
        assert_eq!(q.release_due(ms(t0, 5)), 3);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, ["waiting", "a", "b", "c"]);
    }

    #[test]
    fn drain_returns_ready_in_pop_order_then_delayed_by_deadline() {
        let (t0, mut q) = (Instant::now(), PriorityQueue::new());
        q.push_delayed(ms(t0, 30), Priority::Critical, 5);
        q.push(Priority::Low, 2);
        q.push_delayed(ms(t0, 10), Priority::Low, 4);
        q.push(Priority::High, 1);
        q.push(Priority::Low, 3);
        assert_eq!(q.len(), 5);
        assert_eq!(q.drain(), [1, 2, 3, 4, 5]);
        assert!(q.is_empty());
    }

    #[test]
    fn retain_purges_ready_and_delayed_items() {
        let (t0, mut q) = (Instant::now(), PriorityQueue::new());
        for i in 0..6 {
            q.push(Priority::Normal, i);
            q.push_delayed(ms(t0, i), Priority::Normal, 10 + i);
        }
        q.retain(|i| i % 2 == 0);
        assert_eq!((q.ready_len(), q.delayed_len()), (3, 3));
        assert_eq!(q.drain(), [0, 2, 4, 10, 12, 14]);
    }

    /// An operation of the model test; durations are milliseconds.
    #[derive(Clone, Debug)]
    enum Op {
        Push(Priority),
        PushDelayed(u64, Priority),
        Pop,
        Advance(u64),
    }

    fn priority() -> impl Strategy<Value = Priority> {
        prop::sample::select(Priority::ALL.to_vec())
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            priority().prop_map(Op::Push),
            (0..50u64, priority()).prop_map(|(d, p)| Op::PushDelayed(d, p)),
            Just(Op::Pop),
            (0..30u64).prop_map(Op::Advance),
        ]
    }

    /// The obvious model: ready items as `(priority, ready seq, id)`, popped by highest
    /// priority then lowest seq; delayed items as `(deadline, push seq, priority, id)`.
    #[derive(Default)]
    struct Model {
        ready: Vec<(Priority, u64, u64)>,
        delayed: Vec<(Instant, u64, Priority, u64)>,
        seq: u64,
    }

    impl Model {
        fn next_seq(&mut self) -> u64 {
            self.seq += 1;
            self.seq
        }

        fn release(&mut self, now: Instant) {
            self.delayed.sort_by_key(|d| (d.0, d.1));
            let due = self.delayed.iter().take_while(|d| d.0 <= now).count();
            for (_, _, p, id) in self.delayed.drain(..due).collect::<Vec<_>>() {
                let seq = self.next_seq();
                self.ready.push((p, seq, id));
            }
        }

        fn pop(&mut self) -> Option<u64> {
            let best = (0..self.ready.len()).max_by_key(|&i| {
                let (p, seq, _) = self.ready[i];
                (p, Reverse(seq))
            })?;
            Some(self.ready.remove(best).2)
        }
    }

    proptest! {
        #[test]
        fn pops_match_a_sorted_model_and_never_precede_deadlines(
            ops in prop::collection::vec(op(), 0..200)
        ) {
            let t0 = Instant::now();
            let (mut now, mut q, mut model) = (t0, PriorityQueue::new(), Model::default());
            let mut deadlines = std::collections::HashMap::new();
            for (id, op) in (0u64..).zip(ops) {
                match op {
                    Op::Push(p) => {
                        let seq = model.next_seq();
                        model.ready.push((p, seq, id));
                        q.push(p, id);
                    }
                    Op::PushDelayed(d, p) => {
                        let seq = model.next_seq();
                        model.delayed.push((ms(now, d), seq, p, id));
                        deadlines.insert(id, ms(now, d));
                        q.push_delayed(ms(now, d), p, id);
                    }
                    Op::Pop => {
                        let got = q.pop();
                        prop_assert_eq!(got, model.pop());
                        if let Some(deadline) = got.and_then(|id| deadlines.get(&id)) {
                            prop_assert!(*deadline <= now);
                        }
                    }
                    Op::Advance(d) => {
                        now = ms(now, d);
                        let before = model.delayed.len();
                        model.release(now);
                        prop_assert_eq!(q.release_due(now), before - model.delayed.len());
                    }
                }
                prop_assert_eq!(q.ready_len(), model.ready.len());
                prop_assert_eq!(q.delayed_len(), model.delayed.len());
                let min = model.delayed.iter().map(|d| d.0).min();
                prop_assert_eq!(q.next_deadline(), min);
            }
            let mut expected: Vec<_> = std::iter::from_fn(|| model.pop()).collect();
            model.delayed.sort_by_key(|d| (d.0, d.1));
            expected.extend(model.delayed.iter().map(|d| d.3));
            prop_assert_eq!(q.drain(), expected);
        }
    }
}
