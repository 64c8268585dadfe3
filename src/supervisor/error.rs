//! Why a supervisor failed to start or gave up.

use std::time::Duration;

use ractor::SpawnErr;

/// Why a supervisor failed. It is the reason its parent sees in `ActorFailed`, or the
/// source of the `SpawnErr` returned when the supervisor fails to start.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// Two children of one spec share an id.
    #[error("duplicate child id {0:?}: child ids must be unique within a supervisor")]
    DuplicateChild(String),
    /// A child failed to start while the supervisor was starting.
    #[error("child {id:?} failed to start")]
    ChildStart {
        /// The child's id.
        id: String,
        /// Why its start function failed.
        #[source]
        source: SpawnErr,
    },
    /// More restarts were needed than the intensity allows, so the supervisor gave up.
    #[error(
        "restart intensity exceeded: {restarts} restarts in {within:?} (max {max}), \
         last exit of child {id:?}"
    )]
    IntensityExceeded {
        /// The restarts within the window, counting the one that was refused.
        restarts: u32,
        /// The allowed restarts.
        max: u32,
        /// The window.
        within: Duration,
        /// The child whose exit needed the refused restart.
        id: String,
    },
}
