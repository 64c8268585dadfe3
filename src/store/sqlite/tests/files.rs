//! Files that are not usable taskmesh databases are refused and left byte for byte as
//! they were; empty and missing files open as new databases.

use crate::store::prelude::*;
use std::fs;
use std::path::Path;

use rusqlite::Connection;

use super::{open, TempDir};
use crate::store::sqlite::SqliteStore;
use crate::store::StoreError;

/// Opens `path`, expecting a refusal whose reason contains `reason`; checks the bytes.
fn assert_refused(path: &Path, reason: &str) {
    let before = fs::read(path).unwrap();
    match SqliteStore::open(path) {
        Err(err @ StoreError::Unusable { .. }) => {
            let StoreError::Unusable { path: p, reason: r } = &err else {
                unreachable!()
            };
            assert_eq!(p, path);
            assert!(r.contains(reason), "expected {reason:?} in {r:?}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
        other => panic!("expected Unusable, got {other:?}"),
    }
    assert!(
        fs::read(path).unwrap() == before,
        "{} was modified",
        path.display()
    );
}

/// A taskmesh database with a few tasks' worth of schema, closed cleanly.
fn ours(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.file("ours.db");
    drop(open(&path));
    path
}

#[test]
fn random_bytes_are_refused_untouched() {
    let dir = TempDir::new();
    let path = dir.file("random.db");
    let bytes: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&path, bytes).unwrap();
    assert_refused(&path, "not a SQLite database");
    fs::write(&path, b"hi").unwrap();
    assert_refused(&path, "not a SQLite database");
}

#[test]
fn a_database_of_another_application_is_refused_untouched() {
    let dir = TempDir::new();
    let path = dir.file("other.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine')")
        .unwrap();
    drop(conn);
    assert_refused(&path, "not a taskmesh database (application_id 0)");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA application_id = 42").unwrap();
    drop(conn);
    assert_refused(&path, "not a taskmesh database (application_id 42)");
}

#[test]
fn a_taskmesh_database_from_a_newer_schema_is_refused_untouched() {
    let dir = TempDir::new();
    let path = ours(&dir);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    assert_refused(
        &path,
        &format!(
            "schema version 99 is newer than this build supports ({})",
            super::super::schema::LATEST
        ),
    );
}

#[test]
fn a_truncated_taskmesh_database_is_refused_untouched() {
    let dir = TempDir::new();
    let path = ours(&dir);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_refused(&path, "corrupt");
}

#[test]
fn a_taskmesh_database_with_a_scribbled_page_is_refused_untouched() {
    let dir = TempDir::new();
    let path = ours(&dir);
    let mut bytes = fs::read(&path).unwrap();
    bytes[4096..8192].fill(0xA5);
    fs::write(&path, bytes).unwrap();
    assert_refused(&path, "corrupt");
}

#[test]
fn a_directory_is_refused() {
    let dir = TempDir::new();
    let path = dir.file("adir");
    fs::create_dir(&path).unwrap();
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Unusable { .. })
    ));
}

#[test]
fn an_empty_file_or_a_missing_directory_opens_as_a_new_database() {
    let dir = TempDir::new();
    let empty = dir.file("empty.db");
    fs::write(&empty, b"").unwrap();
    drop(open(&empty));
    drop(open(&empty));
    let deep = dir.file("a/b/c/new.db");
    let store = open(&deep);
    assert_eq!(store.path(), deep);
    drop(store);
    let blank = dir.file("blank.db");
    drop(
        Connection::open(&blank)
            .unwrap()
            .execute_batch("PRAGMA user_version = 0; VACUUM"),
    );
    drop(open(&blank));
}

/// A file at schema 2 (events numbered by AUTOINCREMENT) keeps every event, with its
/// `seq`, through migration 3; new events are numbered after them.
#[tokio::test]
async fn events_of_a_schema_2_file_keep_their_seq_through_migration_3() {
    use super::{at, create, event, record};
    use crate::store::{EventKind, Write};

    let dir = TempDir::new();
    let path = dir.file("v2.db");
    let (a, b) = (record("k", at(1)), record("k", at(2)));
    let progress = |id, p: u8| {
        let kind = EventKind::Progress {
            percent: p,
            message: String::new(),
            phase: None,
        };
        Write::Event(event(id, kind, at(3)))
    };
    let store = open(&path);
    let writes = vec![
        create(&a),
        create(&b),
        progress(b.task.id, 10),
        progress(a.task.id, 20),
    ];
    store.write(writes).await.unwrap();
    let before = (
        store.events(a.task.id).await.unwrap(),
        store.events(b.task.id).await.unwrap(),
    );
    drop(store);

    // Put the events back the way schema 2 kept them (and drop what schema 4 added).
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE old_events (
             seq INTEGER PRIMARY KEY AUTOINCREMENT, task INTEGER NOT NULL,
             at INTEGER NOT NULL, type TEXT NOT NULL, actor_id TEXT,
             correlation_id TEXT, data TEXT NOT NULL);
         INSERT INTO old_events SELECT seq, task, at, type, actor_id, correlation_id, data
             FROM events ORDER BY seq;
         DROP TABLE events;
         ALTER TABLE old_events RENAME TO events;
         CREATE INDEX events_task ON events (task, seq);
         DROP TABLE task_counts;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    let autoincrement: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        autoincrement, 1,
        "the rebuilt file numbers events by AUTOINCREMENT"
    );
    drop(conn);

    let store = open(&path);
    let after = (
        store.events(a.task.id).await.unwrap(),
        store.events(b.task.id).await.unwrap(),
    );
    assert_eq!(after, before);
    store.write(vec![progress(a.task.id, 90)]).await.unwrap();
    let last = store.events(a.task.id).await.unwrap().last().unwrap().seq;
    let highest = before
        .0
        .iter()
        .chain(&before.1)
        .map(|e| e.seq)
        .max()
        .unwrap();
    assert!(last > highest, "{last} follows {highest}");
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
}

#[test]
fn a_database_open_in_another_store_is_refused_naming_the_holder_until_it_closes() {
    let dir = TempDir::new();
    let path = dir.file("t.db");
    let first = open(&path);
    match SqliteStore::open(&path) {
        Err(err @ StoreError::InUse { .. }) => {
            let StoreError::InUse { path: p, holder } = &err else {
                unreachable!()
            };
            assert_eq!((p, *holder), (&path, Some(std::process::id())));
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("one process per database file"), "{msg}");
        }
        other => panic!("expected InUse, got {:?}", other.map(|_| ())),
    }
    drop(first);
    drop(open(&path));
}

#[test]
fn a_refused_file_gets_no_lock_file_beside_it() {
    let dir = TempDir::new();
    let path = dir.file("notes.db");
    fs::write(&path, b"not a database at all, just some notes".repeat(100)).unwrap();
    assert_refused(&path, "not a SQLite database");
    let mut lock = path.as_os_str().to_owned();
    lock.push("-lock");
    assert!(!Path::new(&lock).exists(), "a lock file was left beside it");
}

/// A file at schema 3 gets its counts per state, queue and kind from migration 4, and the
/// writer keeps them through inserts, state changes (also several in one group),
/// deletes and prunes.
#[tokio::test]
async fn migration_4_counts_the_tasks_of_a_schema_3_file_and_the_writer_keeps_the_counts() {
    use super::{at, create, record, update};
    use crate::store::{EventKind, TaskFilter, Write};
    use crate::TaskState;
    let dir = TempDir::new();
    let path = dir.file("v3.db");
    let (a, b, c) = (record("k", at(1)), record("k", at(2)), record("j", at(3)));
    let store = open(&path);
    store
        .write(vec![create(&a), create(&b), create(&c)])
        .await
        .unwrap();
    drop(store);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE task_counts; PRAGMA user_version = 3;")
        .unwrap();
    drop(conn);

    let store = open(&path);
    let by = |state: TaskState, kind: Option<&str>| {
        store.count(TaskFilter {
            state: Some(state),
            kind: kind.map(String::from),
            ..TaskFilter::default()
        })
    };
    assert_eq!(
        by(TaskState::Pending, None).await.unwrap(),
        3,
        "counted by the migration"
    );
    assert_eq!(by(TaskState::Pending, Some("k")).await.unwrap(), 2);
    let mut running = a.life.clone();
    running.state = TaskState::Running;
    let mut done = a.life.clone();
    done.state = TaskState::Succeeded;
    let mut paused = b.life.clone();
    paused.state = TaskState::Paused;
    let d = record("k", at(4));
    let mut d_running = d.life.clone();
    d_running.state = TaskState::Running;
    let writes: Vec<Write> = vec![
        update(a.task.id, &running, EventKind::Paused),
        update(
            a.task.id,
            &done,
            EventKind::Succeeded {
                result: serde_json::Value::Null,
            },
        ),
        update(b.task.id, &paused, EventKind::Paused),
        create(&d),
        update(d.task.id, &d_running, EventKind::Paused),
    ];
    store.write(writes).await.unwrap();
    assert_eq!(by(TaskState::Pending, None).await.unwrap(), 1);
    assert_eq!(by(TaskState::Running, None).await.unwrap(), 1);
    assert_eq!(by(TaskState::Succeeded, Some("k")).await.unwrap(), 1);
    assert_eq!(by(TaskState::Paused, None).await.unwrap(), 1);
    assert_eq!(
        store.delete_ended(vec![a.task.id]).await.unwrap(),
        vec![a.task.id]
    );
    assert_eq!(by(TaskState::Succeeded, None).await.unwrap(), 0);
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 3);
    let mut cancelled = c.life.clone();
    cancelled.state = TaskState::Cancelled;
    store
        .write(vec![update(c.task.id, &cancelled, EventKind::Paused)])
        .await
        .unwrap();
    assert_eq!(store.prune_terminal(at(10_000_000_000)).await.unwrap(), 1);
    assert_eq!(by(TaskState::Cancelled, None).await.unwrap(), 0);
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 2);
}
