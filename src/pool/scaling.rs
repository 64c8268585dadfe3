//! Pure pool policies: how many workers to run, and restart intensity.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The worker count to reach: one more worker per waiting task while none is idle, within
/// `[min, max]`. Shrinking is left to the idle timeout, so this never goes below `current`.
pub(crate) fn target_workers(
    current: usize,
    ready: usize,
    idle: usize,
    min: usize,
    max: usize,
) -> usize {
    if ready == 0 || idle > 0 {
        return current.max(min).min(max.max(current));
    }
    (current + ready).clamp(min, max).max(current)
}

/// At most `max` restarts within `window`; each admitted restart waits a little longer.
pub(crate) struct Intensity {
    max: u32,
    window: Duration,
    at: VecDeque<Instant>,
}

impl Intensity {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            at: VecDeque::new(),
        }
    }

    /// Restarts within the window before `now`.
    pub fn recent(&self, now: Instant) -> usize {
        self.at
            .iter()
            .filter(|t| now.duration_since(**t) < self.window)
            .count()
    }

    /// Admits one more restart and returns its backoff delay, or `None` if it would exceed
    /// the intensity.
    pub fn admit(&mut self, now: Instant) -> Option<Duration> {
        while self
            .at
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.at.pop_front();
        }
        if self.at.len() as u32 >= self.max {
            return None;
        }
        self.at.push_back(now);
        let n = self.at.len() as u32;
        Some(Duration::from_millis(10u64 << (n - 1).min(7)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_one_worker_per_waiting_task_up_to_max() {
        assert_eq!(target_workers(2, 0, 0, 2, 20), 2);
        assert_eq!(target_workers(2, 5, 0, 2, 20), 7);
        assert_eq!(target_workers(2, 500, 0, 2, 20), 20);
        assert_eq!(
            target_workers(5, 500, 1, 2, 20),
            5,
            "an idle worker will take it"
        );
        assert_eq!(target_workers(0, 0, 0, 2, 20), 2, "never below min");
        assert_eq!(target_workers(20, 9, 0, 2, 20), 20);
    }

    #[test]
    fn intensity_admits_max_restarts_per_window_with_growing_delays() {
        let t0 = Instant::now();
        let mut i = Intensity::new(3, Duration::from_secs(60));
        let delays: Vec<_> = (0..3).map(|_| i.admit(t0).unwrap()).collect();
        assert!(delays.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
        assert_eq!(
            i.admit(t0),
            None,
            "the fourth restart in the window escalates"
        );
        assert_eq!(i.recent(t0), 3);
        assert!(
            i.admit(t0 + Duration::from_secs(61)).is_some(),
            "the window slides"
        );
    }
}
