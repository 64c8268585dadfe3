//! Conditional writes: the shape a task's row must still have for a change to apply.
//!
//! Every transition the runtime writes names the row it expects (states, attempt, owner).
//! The store applies the change only if the row still matches, atomically with the check;
//! otherwise the write yields [`WriteResult::Fenced`](super::WriteResult::Fenced) and
//! changes nothing. With several processes on one database this is what makes a claim,
//! a settle, a command or a rescue happen once: the attempt number is the fencing token.

use serde::{Deserialize, Serialize};

use super::Owner;
use crate::task::TaskState;

/// A set of task states, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct States(u16);

impl States {
    /// No state.
    pub const NONE: States = States(0);
    /// The states of a task waiting for a worker: scheduled, pending, retrying. (The
    /// runtime moves a due scheduled or retrying task to pending in memory without a
    /// write, so a claim accepts all three.)
    pub const WAITING: States = States::of(&[
        TaskState::Scheduled,
        TaskState::Pending,
        TaskState::Retrying,
    ]);
    /// Running only.
    pub const RUNNING: States = States::of(&[TaskState::Running]);

    /// The set of `states`.
    pub const fn of(states: &[TaskState]) -> States {
        let mut bits = 0u16;
        let mut i = 0;
        while i < states.len() {
            bits |= 1 << states[i] as u16;
            i += 1;
        }
        States(bits)
    }

    /// The set with only `state`.
    pub const fn one(state: TaskState) -> States {
        States(1 << state as u16)
    }

    /// This set and `state`.
    pub const fn with(self, state: TaskState) -> States {
        States(self.0 | 1 << state as u16)
    }

    /// True if `state` is in the set.
    pub const fn contains(self, state: TaskState) -> bool {
        self.0 & (1 << state as u16) != 0
    }

    /// The states in the set, in [`TaskState::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = TaskState> {
        TaskState::ALL
            .into_iter()
            .filter(move |s| self.contains(*s))
    }
}

/// What the row must be for a conditional write to apply.
///
/// ```
/// use taskmesh::store::{Fence, States};
/// use taskmesh::TaskState;
/// let fence = Fence::new(States::RUNNING, 2, None);
/// assert!(fence.holds(TaskState::Running, 2, None));
/// assert!(!fence.holds(TaskState::Running, 3, None), "a newer attempt");
/// assert!(!fence.holds(TaskState::Succeeded, 2, None), "already settled");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// The row's state is one of these.
    pub states: States,
    /// The row's attempt number is this one.
    pub attempt: u32,
    /// The row is held by this process (`None`: by none).
    pub owner: Option<Owner>,
    /// The row carries no stop request ([`Life::intent`](super::Life::intent) is unset).
    /// A process's progress write asks this, so that it cannot erase a request another
    /// process stored meanwhile.
    #[serde(default)]
    pub unrequested: bool,
}

impl Fence {
    /// A fence on `states`, `attempt` and `owner`.
    pub fn new(states: States, attempt: u32, owner: Option<Owner>) -> Self {
        Self {
            states,
            attempt,
            owner,
            unrequested: false,
        }
    }

    /// This fence, also requiring that the row carries no stop request.
    pub fn unrequested(mut self) -> Self {
        self.unrequested = true;
        self
    }

    /// True if a row with this state, attempt, owner and stop request (or none) passes.
    pub fn admits(
        &self,
        state: TaskState,
        attempt: u32,
        owner: Option<&Owner>,
        requested: bool,
    ) -> bool {
        self.holds(state, attempt, owner) && !(self.unrequested && requested)
    }

    /// True if a row with this state, attempt and owner passes the fence.
    pub fn holds(&self, state: TaskState, attempt: u32, owner: Option<&Owner>) -> bool {
        self.states.contains(state) && self.attempt == attempt && self.owner.as_ref() == owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_set_contains_exactly_its_members() {
        let set = States::WAITING;
        let members: Vec<_> = set.iter().collect();
        assert_eq!(
            members,
            [
                TaskState::Scheduled,
                TaskState::Pending,
                TaskState::Retrying
            ]
        );
        assert!(!set.contains(TaskState::Running));
        assert!(States::NONE.iter().next().is_none());
        assert!(set.with(TaskState::Paused).contains(TaskState::Paused));
        assert_eq!(States::one(TaskState::Running), States::RUNNING);
    }

    #[test]
    fn a_fence_checks_the_owner_too() {
        let a = Owner::new("a", 1);
        let fence = Fence::new(States::RUNNING, 1, Some(a.clone()));
        assert!(fence.holds(TaskState::Running, 1, Some(&a)));
        assert!(!fence.holds(TaskState::Running, 1, Some(&Owner::new("a", 2))));
        assert!(!fence.holds(TaskState::Running, 1, None));
    }
}
