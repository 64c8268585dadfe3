//! Exclusive lock files: one process per data directory, and per database file.
//!
//! A [`LockFile`] holds an advisory exclusive lock (`flock` on Unix) on a file for as long
//! as it lives; the operating system drops the lock when the process dies, however it
//! dies, so a crash never leaves a stale lock behind. The holder's pid is written into
//! the file so that a refused process can name it. The file itself is left in place on
//! release: deleting it would race with a process that just opened it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// An exclusive lock on a file, held until dropped.
#[derive(Debug)]
#[must_use = "the lock is released when the value is dropped"]
pub struct LockFile {
    _file: File,
    path: PathBuf,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another open in this one) holds the lock.
    #[error("{} is locked by another process{}", path.display(), holder_text(*holder))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, when it wrote one.
        holder: Option<u32>,
    },
    /// The lock file could not be created, opened or locked.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn holder_text(holder: Option<u32>) -> String {
    holder
        .map(|pid| format!(" (pid {pid})"))
        .unwrap_or_default()
}

impl LockFile {
    /// Takes the lock on `path` (created if missing) without waiting, and records this
    /// process's pid in it.
    pub fn acquire(path: impl AsRef<Path>) -> Result<LockFile, LockError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_pid(&mut file);
                return Err(LockError::Held { path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        write_pid(&mut file).map_err(io)?;
        Ok(LockFile { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_with_the_holders_pid() {
        let dir = std::env::temp_dir().join(format!("taskmesh-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.lock");
        let held = LockFile::acquire(&path).unwrap();
        match LockFile::acquire(&path) {
            Err(LockError::Held { path: p, holder }) => {
                assert_eq!(p, path);
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        let again = LockFile::acquire(&path).expect("released on drop");
        assert_eq!(again.path(), path);
        std::fs::remove_dir_all(&dir).ok();
    }
}
