//! The process group of one `exec` child: its grandchildren die with it.

use std::time::Duration;

use rustix::process::{kill_process_group, Pid, Signal};
use tokio::process::Child;

/// The process group an `exec` child leads (it was started with `process_group(0)`, so
/// the group's id is the child's pid). Dropping it sends SIGKILL to the whole group, so
/// nothing the command started outlives the attempt, however the attempt ends: success,
/// failure, cancel, timeout, or an abort after the grace period.
pub(super) struct ProcessGroup {
    leader: Option<Pid>,
}

impl ProcessGroup {
    /// The group led by `child`. A child without a pid (already reaped) has none left.
    pub(super) fn of(child: &Child) -> Self {
        let leader = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .filter(|&id| id > 1)
            .and_then(Pid::from_raw);
        Self { leader }
    }

    /// Asks the group to stop (SIGTERM), gives the leader `grace` to exit, then kills the
    /// group (SIGKILL).
    pub(super) async fn stop(&self, child: &mut Child, grace: Duration) {
        self.signal(Signal::TERM);
        let _ = tokio::time::timeout(grace, child.wait()).await;
        self.signal(Signal::KILL);
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = self.leader {
            // ESRCH: every member has already exited, which is what we want.
            let _ = kill_process_group(pid, signal);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(Signal::KILL);
    }
}
