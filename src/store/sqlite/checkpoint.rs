//! WAL checkpoints off the writer thread.
//!
//! A checkpoint copies committed WAL pages into the database file and fsyncs it. Run by
//! the writer (SQLite's automatic checkpoint), it stalls every write queued behind it. A
//! separate thread with its own connection does it instead: after the writer commits,
//! it waits a little (so one checkpoint copies a page that many commits rewrote once),
//! then runs a passive checkpoint, which never blocks the writer. The writer keeps
//! SQLite's automatic checkpoint as a backstop with a high threshold, so the WAL cannot
//! grow without bound if this thread falls behind: the WAL restarts from its beginning
//! only after a checkpoint caught up with every commit.

use std::io;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::Connection;

/// How long after a commit the checkpointer waits before copying: long enough that a
/// checkpoint copies a page many commits rewrote once and its two fsyncs stay rare next to
/// the commits' own (measured: 5 ms cost 10x the page writes of SQLite's own checkpoints
/// with one submitter), short enough that the WAL rarely reaches the writer's backstop.
const DELAY: Duration = Duration::from_millis(50);

/// The handle the writer pokes after each commit.
pub(super) struct Nudge(SyncSender<()>);

impl Nudge {
    /// Tells the checkpointer there is something to copy (never blocks).
    pub(super) fn commit(&self) {
        match self.0.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

/// Starts the checkpointer on `conn`; it stops once the [`Nudge`] is dropped.
pub(super) fn spawn(conn: Connection) -> io::Result<(Nudge, JoinHandle<()>)> {
    let (nudge, nudges) = mpsc::sync_channel(1);
    let thread = thread::Builder::new()
        .name("taskmesh-ckpt".into())
        .spawn(move || run(&conn, &nudges))?;
    Ok((Nudge(nudge), thread))
}

fn run(conn: &Connection, nudges: &Receiver<()>) {
    while nudges.recv().is_ok() {
        thread::sleep(DELAY);
        // A nudge sent while sleeping is covered by this checkpoint.
        let _ = nudges.try_recv();
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "sqlite store checkpoint failed; will retry");
        }
    }
}
