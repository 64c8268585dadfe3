//! The schema as an ordered list of migrations; `PRAGMA user_version` counts those applied.

use rusqlite::{Connection, Transaction, TransactionBehavior};

/// Marks a file as ours: "TMSH" in `PRAGMA application_id`.
pub(super) const APPLICATION_ID: i32 = 0x544D_5348;

/// The newest schema version this build knows.
pub(super) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Migration `n` (1-based) takes the schema from version `n - 1` to `n`. Append only.
///
/// The JSON columns (`task`, `life`, `data`) are the truth and round-trip exactly; the
/// other columns copy fields out of them for filtering and ordering.
///
/// `tasks.n` is an internal integer key: the immutable task JSON (`task_specs`) and the
/// events refer to a task by it, so those rows and their index stay small. The uuid is
/// kept in a unique index for lookups. The task JSON lives apart from the row so that a
/// state change rewrites only the small mutable row.
///
/// Indexes pair each list filter with `created_at`, so a filtered page walks one index in
/// order. The state, queue and kind indexes also carry the other two of those columns, so
/// the total of any combination of them is counted inside one index without reading rows
/// (queue and kind never change, so this costs updates nothing). Pruning walks a partial
/// index of terminal tasks by `updated_at`, which updates that leave a task unfinished
/// do not touch. (Its condition is a chain of ORs, not `IN (…)`: SQLite evaluates a
/// three-value IN through a temporary table, built again for every insert and update.)
/// Indexes on mostly-NULL columns are partial.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tasks (
    n           INTEGER PRIMARY KEY,
    id          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    queue       TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    phase       TEXT,
    created_by  TEXT,
    unique_key  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    due_at      INTEGER,
    life        TEXT NOT NULL
);
CREATE UNIQUE INDEX tasks_id ON tasks (id);
CREATE UNIQUE INDEX tasks_unique_key ON tasks (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX tasks_created_at ON tasks (created_at);
CREATE INDEX tasks_state ON tasks (state, created_at, queue, kind);
CREATE INDEX tasks_terminal ON tasks (updated_at)
    WHERE state = 'succeeded' OR state = 'failed' OR state = 'cancelled';
CREATE INDEX tasks_queue ON tasks (queue, created_at, kind);
CREATE INDEX tasks_kind ON tasks (kind, created_at, queue);
CREATE INDEX tasks_phase ON tasks (phase, created_at) WHERE phase IS NOT NULL;
CREATE INDEX tasks_created_by ON tasks (created_by, created_at) WHERE created_by IS NOT NULL;

CREATE TABLE task_specs (
    n     INTEGER PRIMARY KEY,
    task  TEXT NOT NULL
);

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    task            INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    type            TEXT NOT NULL,
    actor_id        TEXT,
    correlation_id  TEXT,
    data            TEXT NOT NULL
);
CREATE INDEX events_task ON events (task, seq);

CREATE TABLE crashes (
    id       INTEGER PRIMARY KEY,
    task_id  TEXT NOT NULL,
    at       INTEGER NOT NULL,
    attempt  INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    reason   TEXT NOT NULL
);
CREATE INDEX crashes_at ON crashes (at);
CREATE INDEX crashes_task ON crashes (task_id, at);

CREATE TABLE probe (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  INTEGER NOT NULL
);
"#,
    // 2: cron schedules, one row per name; the record is JSON.
    r#"
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#,
    // 3: events without AUTOINCREMENT. It read and rewrote the `sqlite_sequence` row at
    // every insert (three per task). A plain INTEGER PRIMARY KEY still numbers new events
    // after the largest present, so `seq` still increases across the store; only once
    // every event has been pruned can numbering start again.
    r#"
CREATE TABLE events_v3 (
    seq             INTEGER PRIMARY KEY,
    task            INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    type            TEXT NOT NULL,
    actor_id        TEXT,
    correlation_id  TEXT,
    data            TEXT NOT NULL
);
INSERT INTO events_v3 (seq, task, at, type, actor_id, correlation_id, data)
    SELECT seq, task, at, type, actor_id, correlation_id, data FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE INDEX events_task ON events (task, seq);
DELETE FROM sqlite_sequence WHERE name = 'events';
"#,
    // 4: the number of tasks per state, queue and kind, so the overview's counts and a
    // list's total by state, queue or kind read a few rows instead of counting index
    // entries (about 40 ms for 1,000,000 tasks). The writer keeps it: each group of
    // writes adds its changes once, in its own transaction (triggers, one update per row,
    // cost a third of the durable throughput).
    r#"
CREATE TABLE task_counts (
    state  TEXT NOT NULL,
    queue  TEXT NOT NULL,
    kind   TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (state, queue, kind)
) WITHOUT ROWID;
INSERT INTO task_counts (state, queue, kind, n)
    SELECT state, queue, kind, count(*) FROM tasks GROUP BY state, queue, kind;
"#,
];

/// Applies the migrations not yet applied, each in its own transaction. The version is
/// read inside the transaction, so two processes opening a new file do not race.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), String> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| format!("cannot begin a migration: {e}"))?;
        let version = user_version(&tx).map_err(|e| format!("cannot read the version: {e}"))?;
        let Some(script) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        apply(&tx, script, version + 1)
            .map_err(|e| format!("migration {} failed: {e}", version + 1))?;
        tx.commit()
            .map_err(|e| format!("migration {} failed: {e}", version + 1))?;
    }
}

fn apply(tx: &Transaction<'_>, script: &str, version: i64) -> rusqlite::Result<()> {
    tx.execute_batch(script)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", version)
}

/// The schema version recorded in the file.
pub(super) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}
