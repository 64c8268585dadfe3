//! The schema as versioned migrations, recorded in `taskmesh_migrations`.
//!
//! Migrating takes a transaction-scoped advisory lock (released at commit), so two
//! processes starting on a new database do not race; it is never used for ownership.

use tokio_postgres::Client;

use super::errors::{pg_error, Doing};
use crate::store::StoreError;

/// Migration `n` (1-based) takes the schema from version `n - 1` to `n`. Append only.
///
/// - `tasks` is the small, hot row: the columns that lists filter and claims order on,
///   and the mutable life as JSON (`json`, not `jsonb`, so values round-trip byte for
///   byte). It leaves 30% of each page free (`fillfactor`) so an update can often stay on
///   its page. The immutable task JSON lives apart in `task_specs`.
/// - Times the application gives (created, updated, event and crash times) are integer
///   nanoseconds since the UNIX epoch, exact like SQLite's; times the database decides
///   with `now()` (due times compared by claims, heartbeats) are `timestamptz`.
/// - `events.seq` counts a task's events from 1, assigned under the task's row lock, so a
///   reader paging one task never sees a gap; `gseq` orders events across the store (a
///   BRIN index: it grows with insertion order and costs inserts almost nothing).
/// - Every index is paid on every update that changes an indexed column (state always
///   does), so indexes on mostly-NULL or rarely-true columns are partial.
/// - A task's owner is two columns (node, incarnation); they are the truth, the copy in
///   the life JSON is replaced by them on read, so a reservation touches no JSON. An
///   incarnation is unique across nodes (one sequence), so it alone finds an owner's tasks.
/// - Node incarnations come from a sequence, so they only ever grow.
/// - (2) `task_counts` keeps the number of tasks per state, queue and kind, so a list's
///   total under those filters is a sum of a few rows, not a count of up to millions.
///   Every statement that inserts, changes the state of or deletes tasks adds its net
///   change in the same transaction (the writers' batches, the prune); each connection
///   adds to rows of its own (`slot` = its backend pid), so concurrent writers never
///   wait on each other's counters, and `maint` folds the rows of connections that are
///   gone into slot 0. Keys are upserted in one order, so two statements never deadlock
///   on them. (Statement triggers did the same at a cost of about a fifth of the write
///   throughput.)
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tasks (
    id                 uuid PRIMARY KEY,
    kind               text NOT NULL,
    queue              text NOT NULL,
    priority           smallint NOT NULL,
    state              text NOT NULL,
    attempt            integer NOT NULL,
    owner_node         text,
    owner_incarnation  bigint,
    intent             boolean NOT NULL,
    phase              text,
    created_by         text,
    unique_key         text,
    created_at         bigint NOT NULL,
    updated_at         bigint NOT NULL,
    due_at             timestamptz,
    last_seq           integer NOT NULL,
    life               json NOT NULL
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02,
       autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
CREATE UNIQUE INDEX tasks_unique_key ON tasks (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX tasks_created_at ON tasks (created_at);
CREATE INDEX tasks_state ON tasks (state, created_at);
CREATE INDEX tasks_queue ON tasks (queue, created_at);
CREATE INDEX tasks_kind ON tasks (kind, created_at);
CREATE INDEX tasks_phase ON tasks (phase, created_at) WHERE phase IS NOT NULL;
CREATE INDEX tasks_created_by ON tasks (created_by, created_at) WHERE created_by IS NOT NULL;
CREATE INDEX tasks_terminal ON tasks (updated_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX tasks_ready ON tasks (queue, priority DESC, due_at NULLS FIRST, id)
    WHERE state IN ('pending', 'retrying', 'scheduled') AND owner_incarnation IS NULL;
CREATE INDEX tasks_owner ON tasks (owner_incarnation, state)
    WHERE owner_incarnation IS NOT NULL;

CREATE TABLE task_specs (
    id    uuid PRIMARY KEY,
    task  json NOT NULL
);

CREATE TABLE events (
    task            uuid NOT NULL,
    seq             integer NOT NULL,
    gseq            bigint GENERATED ALWAYS AS IDENTITY,
    at              bigint NOT NULL,
    type            text NOT NULL,
    actor_id        text,
    correlation_id  text,
    data            json NOT NULL,
    PRIMARY KEY (task, seq)
);
CREATE INDEX events_gseq ON events USING brin (gseq);

CREATE TABLE crashes (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id  uuid NOT NULL,
    at       bigint NOT NULL,
    attempt  integer NOT NULL,
    kind     text NOT NULL,
    reason   text NOT NULL
);
CREATE INDEX crashes_at ON crashes (at);
CREATE INDEX crashes_task ON crashes (task_id, at);

CREATE TABLE schedules (
    name        text PRIMARY KEY,
    record      json NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE node_incarnations;
CREATE TABLE nodes (
    incarnation   bigint PRIMARY KEY DEFAULT nextval('node_incarnations'),
    name          text NOT NULL,
    info          json NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    buried_at     timestamptz
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.01);
CREATE INDEX nodes_name ON nodes (name, incarnation);

CREATE TABLE probe (
    id  integer PRIMARY KEY CHECK (id = 1),
    at  timestamptz NOT NULL
);
"#,
    r#"
CREATE TABLE task_counts (
    slot   integer NOT NULL,
    state  text NOT NULL,
    queue  text NOT NULL,
    kind   text NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (slot, state, queue, kind)
) WITH (fillfactor = 50);

INSERT INTO task_counts (slot, state, queue, kind, n)
SELECT 0, state, queue, kind, count(*) FROM tasks GROUP BY state, queue, kind;
"#,
    // The `application_name` of every connection of the registering process, so that a
    // survivor can tell a killed process (no backend left) from a stopped one.
    r#"
ALTER TABLE nodes ADD COLUMN session text;
"#,
    // (4) Leases (the cron leader's), logged so that an epoch survives a crash, and a
    // version per schedule from one sequence, compared and set by every write.
    r#"
CREATE TABLE leases (
    name                text PRIMARY KEY,
    holder_node         text NOT NULL,
    holder_incarnation  bigint NOT NULL,
    epoch               bigint NOT NULL,
    expires_at          timestamptz NOT NULL
);
CREATE SEQUENCE schedule_versions;
ALTER TABLE schedules ADD COLUMN version bigint NOT NULL DEFAULT nextval('schedule_versions');
"#,
    // (5) Cluster-wide circuit breakers: state, the end of the cooldown or of the
    // probe's claim (database time), and the probe's holder.
    r#"
CREATE TABLE breakers (
    name               text PRIMARY KEY,
    version            bigint NOT NULL,
    state              text NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    until              timestamptz NOT NULL,
    probe_node         text,
    probe_incarnation  bigint
);
"#,
    // (6) The node of each task's latest attempt, for the node filter of lists (the
    // dashboard's Tasks page in a cluster). Rows written before it have none.
    r#"
ALTER TABLE tasks ADD COLUMN ran_on text;
CREATE INDEX tasks_ran_on ON tasks (ran_on, created_at) WHERE ran_on IS NOT NULL;
"#,
];

/// The newest schema version this build knows.
pub(super) const LATEST: i32 = MIGRATIONS.len() as i32;

/// Creates the schema if missing and applies the migrations not yet applied, all in one
/// transaction under an advisory lock keyed by the schema's name. A database migrated by
/// a newer build is refused.
pub(super) async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    let failed = |e| pg_error(Doing::Migrate, e);
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('taskmesh_migrations:' || $1))",
        &[&schema],
    )
    .await
    .map_err(failed)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}; \
         CREATE TABLE IF NOT EXISTS taskmesh_migrations ( \
             version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    ))
    .await
    .map_err(failed)?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM taskmesh_migrations",
            &[],
        )
        .await
        .map_err(failed)?;
    let version: i32 = row.get(0);
    if version > LATEST {
        return Err(StoreError::Unusable {
            path: format!("<postgres schema {schema}>").into(),
            reason: format!(
                "expected schema version {LATEST} or older, got {version} (from a newer build)"
            ),
        });
    }
    for (i, script) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let n = i as i32 + 1;
        tx.batch_execute(script).await.map_err(failed)?;
        tx.execute(
            "INSERT INTO taskmesh_migrations (version) VALUES ($1)",
            &[&n],
        )
        .await
        .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}
