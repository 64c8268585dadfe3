//! Opening a database file: validation on a read-only connection first, so a file that is
//! not ours is never modified; then the read-write connection, pragmas and migrations.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::schema::{self, APPLICATION_ID, LATEST};
use crate::lockfile::{LockError, LockFile};
use crate::store::StoreError;

/// How long a connection waits on another process's lock before failing.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages after which the writer checkpoints itself (SQLite's default is 1,000). The
/// checkpointer thread normally keeps the WAL far smaller; this is the backstop.
const WAL_AUTOCHECKPOINT: i64 = 4_000;

/// The first 16 bytes of every SQLite 3 database file.
const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Validates `path` and opens it for writing, creating it (and its directory) if new.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let unusable = |reason: String| StoreError::Unusable {
        path: path.to_path_buf(),
        reason,
    };
    if exists_with_content(path).map_err(unusable)? {
        let sidecars = Sidecars::absent(path);
        validate(path).map_err(|e| {
            sidecars.remove();
            unusable(e)
        })?;
    } else if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .map_err(|e| unusable(format!("cannot create directory {}: {e}", dir.display())))?;
    }
    let mut conn = read_write(path).map_err(|e| unusable(format!("cannot open: {e}")))?;
    schema::migrate(&mut conn).map_err(unusable)?;
    Ok(conn)
}

/// The lock file beside a database: `<path>-lock`.
pub(super) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock beside the database ([`lock_path`]), creating its directory
/// if needed, before anything reads or writes the database.
pub(super) fn lock(path: &Path) -> Result<LockFile, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| StoreError::Unusable {
            path: path.to_path_buf(),
            reason: format!("cannot create directory {}: {e}", dir.display()),
        })?;
    }
    LockFile::acquire(lock_path(path)).map_err(|e| match e {
        LockError::Held { holder, .. } => StoreError::InUse {
            path: path.to_path_buf(),
            holder,
        },
        LockError::Io { source, .. } => StoreError::Unusable {
            path: path.to_path_buf(),
            reason: format!("cannot take its lock file: {source}"),
        },
    })
}

/// A read-only connection on a database the writer has opened (and so migrated).
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let open = || -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    };
    open().map_err(|e| StoreError::Unusable {
        path: path.to_path_buf(),
        reason: format!("cannot open a reader: {e}"),
    })
}

/// The checkpointer's connection, on a database the writer has opened.
pub(super) fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let open = || -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(conn)
    };
    open().map_err(|e| StoreError::Unusable {
        path: path.to_path_buf(),
        reason: format!("cannot open the checkpointer: {e}"),
    })
}

/// The `-wal` and `-shm` files beside a database that did not exist before validation.
/// SQLite creates them even on a read-only connection to a WAL database; a refused file
/// must be left as it was found, so they are removed again.
struct Sidecars(Vec<std::path::PathBuf>);

impl Sidecars {
    fn absent(db: &Path) -> Self {
        let beside = |suffix: &str| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::path::PathBuf::from(p)
        };
        Self(
            ["-wal", "-shm"]
                .map(beside)
                .into_iter()
                .filter(|p| !p.exists())
                .collect(),
        )
    }

    fn remove(&self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

/// False for a missing or empty file (a new database).
fn exists_with_content(path: &Path) -> Result<bool, String> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Err("it is a directory".to_string()),
        Ok(m) => Ok(m.len() > 0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("cannot inspect: {e}")),
    }
}

/// Checks an existing file without writing to it: SQLite, intact, ours, not newer.
fn validate(path: &Path) -> Result<(), String> {
    if !has_sqlite_header(path).map_err(|e| format!("cannot read: {e}"))? {
        return Err("not a SQLite database".to_string());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| describe(&e))?;
    check_integrity(&conn)?;
    check_identity(&conn).map_err(|e| describe(&e))?
}

fn has_sqlite_header(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; 16];
    match fs::File::open(path)?.read_exact(&mut head) {
        Ok(()) => Ok(&head == HEADER),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn check_integrity(conn: &Connection) -> Result<(), String> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| describe(&e))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| describe(&e))?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    Err(format!("corrupt: {}", rows.join("; ")))
}

/// Ours if the application id is ours; a file with no id is accepted only while blank.
fn check_identity(conn: &Connection) -> rusqlite::Result<Result<(), String>> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version = schema::user_version(conn)?;
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    let blank = app_id == 0 && version == 0 && objects == 0;
    Ok(if app_id != APPLICATION_ID && !blank {
        Err(format!("not a taskmesh database (application_id {app_id})"))
    } else if version > LATEST {
        Err(format!(
            "schema version {version} is newer than this build supports ({LATEST})"
        ))
    } else {
        Ok(())
    })
}

/// Words an error from a read-only look at an unknown file.
fn describe(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => "not a SQLite database".to_string(),
        Some(ErrorCode::DatabaseCorrupt) => format!("corrupt: {e}"),
        _ => format!("cannot read: {e}"),
    }
}

/// The writer's connection, in WAL mode with every commit synced.
fn read_write(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "sqlite store could not use WAL mode");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}
