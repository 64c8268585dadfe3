//! Files that are not usable taskmesh databases are refused and left byte for byte as
//! they were; empty and missing files open as new databases.

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
