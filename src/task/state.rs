//! The task state machine as a pure function, so it can be checked against a model.
//!
//! ```text
//!   scheduled ──release──▶ pending ──start──▶ running ──succeed──▶ succeeded
//!       ▲                    ▲  ▲               │ │ │
//!       └──────snooze────────┼──┼───────────────┘ │ └──fail──▶ failed
//!   retrying ──release───────┘  └──interrupt──────┤
//!       ▲                                         │
//!       └──────────────retry──────────────────────┘
//!   any non-terminal ──cancel──▶ cancelled;  any non-terminal ──complete──▶ succeeded
//!   non-terminal ──pause──▶ paused ──resume──▶ pending
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a task is in its life. `Succeeded`, `Failed` and `Cancelled` are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for its `run_at` (or a snooze) to pass.
    Scheduled,
    /// Ready to run, waiting for a worker.
    Pending,
    /// An attempt is running.
    Running,
    /// An attempt failed; waiting out the backoff before the next one.
    Retrying,
    /// Held by an operator; not a failure.
    Paused,
    /// Ended with a result.
    Succeeded,
    /// Ended after its last attempt failed (the dead letter).
    Failed,
    /// Ended by a cancel.
    Cancelled,
}

impl TaskState {
    /// Every state, the terminal ones last.
    pub const ALL: [TaskState; 8] = [
        Self::Scheduled,
        Self::Pending,
        Self::Running,
        Self::Retrying,
        Self::Paused,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// True for succeeded, failed and cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The lowercase name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Paused => "paused",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Its time came (run_at, snooze or backoff elapsed).
    Release,
    /// A worker took it.
    Start,
    /// The attempt returned a value.
    Succeed,
    /// The attempt failed and attempts remain.
    Retry,
    /// The attempt failed and none remain.
    Fail,
    /// The handler asked to run again later.
    Snooze,
    /// A user or the handler cancelled it.
    Cancel,
    /// An operator paused it.
    Pause,
    /// An operator resumed it.
    Resume,
    /// The attempt was cut off (shutdown, crash) and the task goes back to the queue.
    Interrupt,
    /// An operator marked the task done.
    Complete,
}

impl Event {
    /// The event as a lowercase verb, for messages ("cannot pause a task that is paused").
    pub fn verb(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Start => "start",
            Self::Succeed => "succeed",
            Self::Retry => "retry",
            Self::Fail => "fail",
            Self::Snooze => "snooze",
            Self::Cancel => "cancel",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Interrupt => "interrupt",
            Self::Complete => "complete",
        }
    }
}

/// A transition that the state machine does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a task that is {from}", event.verb())]
pub struct TransitionError {
    /// The state the task was in.
    pub from: TaskState,
    /// What was attempted.
    pub event: Event,
}

/// The next state after `event`, or an error naming the state and event.
pub fn transition(from: TaskState, event: Event) -> Result<TaskState, TransitionError> {
    use Event as E;
    use TaskState as S;
    let to = match (from, event) {
        (s, _) if s.is_terminal() => None,
        (_, E::Cancel) => Some(S::Cancelled),
        (_, E::Complete) => Some(S::Succeeded),
        (S::Paused, E::Resume) => Some(S::Pending),
        (S::Paused, _) | (_, E::Resume) => None,
        (_, E::Pause) => Some(S::Paused),
        (S::Scheduled | S::Retrying, E::Release) => Some(S::Pending),
        (S::Pending, E::Start) => Some(S::Running),
        (S::Running, E::Succeed) => Some(S::Succeeded),
        (S::Running, E::Retry) => Some(S::Retrying),
        (S::Running, E::Fail) => Some(S::Failed),
        (S::Running, E::Snooze) => Some(S::Scheduled),
        (S::Running, E::Interrupt) => Some(S::Pending),
        _ => None,
    };
    to.ok_or(TransitionError { from, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STATES: [TaskState; 8] = TaskState::ALL;
    const EVENTS: [Event; 11] = [
        Event::Release,
        Event::Start,
        Event::Succeed,
        Event::Retry,
        Event::Fail,
        Event::Snooze,
        Event::Cancel,
        Event::Pause,
        Event::Resume,
        Event::Interrupt,
        Event::Complete,
    ];

    /// The reference model: an explicit table of every allowed (from, event, to).
    fn model(from: TaskState, event: Event) -> Option<TaskState> {
        use Event as E;
        use TaskState as S;
        const TABLE: &[(TaskState, Event, TaskState)] = &[
            (S::Scheduled, E::Release, S::Pending),
            (S::Retrying, E::Release, S::Pending),
            (S::Pending, E::Start, S::Running),
            (S::Running, E::Succeed, S::Succeeded),
            (S::Running, E::Retry, S::Retrying),
            (S::Running, E::Fail, S::Failed),
            (S::Running, E::Snooze, S::Scheduled),
            (S::Running, E::Interrupt, S::Pending),
            (S::Paused, E::Resume, S::Pending),
            (S::Scheduled, E::Cancel, S::Cancelled),
            (S::Pending, E::Cancel, S::Cancelled),
            (S::Running, E::Cancel, S::Cancelled),
            (S::Retrying, E::Cancel, S::Cancelled),
            (S::Paused, E::Cancel, S::Cancelled),
            (S::Scheduled, E::Pause, S::Paused),
            (S::Pending, E::Pause, S::Paused),
            (S::Running, E::Pause, S::Paused),
            (S::Retrying, E::Pause, S::Paused),
            (S::Scheduled, E::Complete, S::Succeeded),
            (S::Pending, E::Complete, S::Succeeded),
            (S::Running, E::Complete, S::Succeeded),
            (S::Retrying, E::Complete, S::Succeeded),
            (S::Paused, E::Complete, S::Succeeded),
        ];
        TABLE
            .iter()
            .find(|(f, e, _)| *f == from && *e == event)
            .map(|(_, _, t)| *t)
    }

    #[test]
    fn every_pair_matches_the_table() {
        for s in STATES {
            for e in EVENTS {
                assert_eq!(transition(s, e).ok(), model(s, e), "{s} --{e:?}-->");
            }
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for s in STATES.into_iter().filter(|s| s.is_terminal()) {
            for e in EVENTS {
                let err = transition(s, e).unwrap_err();
                assert_eq!(err, TransitionError { from: s, event: e });
                assert_eq!(
                    err.to_string(),
                    format!("cannot {} a task that is {s}", e.verb())
                );
            }
        }
    }

    proptest! {
        /// Random event sequences: the machine and the model agree at every step, a
        /// rejected event leaves the state unchanged, and nothing leaves a terminal state.
        #[test]
        fn random_sequences_agree_with_the_model(
            start in 0usize..5,
            events in proptest::collection::vec(0usize..EVENTS.len(), 0..64),
        ) {
            let mut state = STATES[start];
            let mut model_state = state;
            for i in events {
                let e = EVENTS[i];
                let was_terminal = state.is_terminal();
                match transition(state, e) {
                    Ok(next) => state = next,
                    Err(err) => prop_assert_eq!(err.from, state),
                }
                model_state = model(model_state, e).unwrap_or(model_state);
                prop_assert_eq!(state, model_state);
                if was_terminal {
                    prop_assert!(state.is_terminal());
                }
            }
        }
    }
}
