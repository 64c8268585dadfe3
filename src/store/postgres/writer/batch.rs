//! One batch in one transaction: a handful of multi-row statements over arrays, whatever
//! the number of writes. The caller has begun the transaction (pipelined with the first
//! statements) and commits it.
//!
//! 1. Creates: one `INSERT … SELECT … FROM unnest(…) ON CONFLICT DO NOTHING RETURNING`
//!    (in unique-key order, so two batches inserting the same keys wait for each other
//!    in one order and never deadlock; the earlier create of a key in a batch wins),
//!    beside a `SELECT … ORDER BY id FOR UPDATE` of every other task the batch touches
//!    (rows locked in id order, so two writers never deadlock on them). Both go down the
//!    connection together (pipelined).
//! 2. The writes are then decided in order, in memory, against the locked rows: a fenced
//!    update applies only if the row (as the batch left it so far) passes its fence, the
//!    same check as `UPDATE … WHERE state = ANY(…) AND attempt = … AND owner IS NOT
//!    DISTINCT FROM …` but able to chain several transitions of one task in one batch; a
//!    fenced-out update writes nothing (no event, no crash). Updates of unknown tasks are
//!    ignored (fenced ones yield `Fenced`), and each event gets the task's next `seq`.
//! 3. One `UPDATE … FROM unnest(…)` for the changed rows, one insert of the events and
//!    one of the crashes ([`Tail`]): they take no lock the batch does not hold, so they
//!    are sent together with the commit, by the batch's committer, while the writer
//!    starts the next batch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Error;

mod tail;

pub(in crate::store::postgres) use self::tail::Tail;

use super::super::rows::{owner, CrashRow, EventRow, LifeRow, TaskRow, TransitionRow};
use crate::store::{Owner, WriteResult};
use crate::task::{TaskId, TaskState};

/// A write with its JSON already encoded.
#[derive(Debug)]
pub(in crate::store::postgres) enum WriteRow {
    Create(Box<TaskRow>, EventRow),
    Update(Box<TransitionRow>),
    Event(EventRow),
    Crash(CrashRow),
}

impl WriteRow {
    /// The task the write is about.
    pub(in crate::store::postgres) fn task(&self) -> TaskId {
        match self {
            WriteRow::Create(t, _) => t.id,
            WriteRow::Update(t) => t.id,
            WriteRow::Event(e) => e.task_id,
            WriteRow::Crash(c) => c.task_id,
        }
    }
}

const INSERT_TASKS: &str = "WITH input AS ( \
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int2[], $5::text[], \
        $6::int4[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::int8[], \
        $12::timestamptz[], $13::text[], $14::text[], $15::text[], $16::int8[], $17::bool[], \
        $18::text[]) WITH ORDINALITY \
    AS u(id, kind, queue, priority, state, attempt, phase, created_by, unique_key, \
        created_at, updated_at, due_at, life, task, owner_node, owner_incarnation, intent, \
        ran_on, n)), \
ins AS ( \
    INSERT INTO tasks (id, kind, queue, priority, state, attempt, phase, created_by, \
        unique_key, created_at, updated_at, due_at, last_seq, life, owner_node, \
        owner_incarnation, intent, ran_on) \
    SELECT id, kind, queue, priority, state, attempt, phase, created_by, unique_key, \
        created_at, updated_at, due_at, 1, life::json, owner_node, owner_incarnation, \
        intent, ran_on FROM input ORDER BY unique_key, n \
    ON CONFLICT DO NOTHING RETURNING id), \
specs AS ( \
    INSERT INTO task_specs (id, task) \
    SELECT input.id, input.task::json FROM input JOIN ins ON ins.id = input.id) \
SELECT id FROM ins";

const LOCK: &str = "SELECT id, state, attempt, last_seq, owner_node, owner_incarnation, \
    intent, queue, kind FROM tasks \
    WHERE id = ANY($1) ORDER BY id FOR UPDATE";

const HOLDERS: &str = "SELECT unique_key, id FROM tasks WHERE unique_key = ANY($1)";

/// A task row as the batch sees it.
struct Row<'a> {
    /// The task's queue and kind, and its state before the batch (`None`: the batch
    /// creates it), for the task counts.
    counted: (String, String, Option<TaskState>),
    last_seq: i32,
    /// The fenced fields as the batch last left them.
    current: Current,
    /// The new mutable columns, if an update changed them.
    life: Option<&'a LifeRow>,
}

/// The fields a fence checks.
struct Current {
    state: Option<TaskState>,
    attempt: u32,
    owner: Option<Owner>,
    /// The row carries a stop request.
    requested: bool,
}

impl Current {
    fn of(life: &LifeRow) -> Self {
        Self {
            state: state(life.state),
            attempt: u32::try_from(life.attempt).unwrap_or_default(),
            owner: owner(life.owner_node.clone(), life.owner_incarnation),
            requested: life.intent,
        }
    }
}

fn state(name: &str) -> Option<TaskState> {
    TaskState::ALL.into_iter().find(|s| s.as_str() == name)
}

/// Runs the first statements of `batches` (one per request) and decides every write in
/// order; one result per write, and the statements left to run with the commit.
pub(in crate::store::postgres) async fn apply(
    tx: &ClientWrapper,
    batches: &[Vec<WriteRow>],
) -> Result<(Vec<Vec<WriteResult>>, Tail), Error> {
    let writes: Vec<&WriteRow> = batches.iter().flatten().collect();
    let (creates, dup_ids) = creates_of(&writes);
    let touched = touched_of(&writes, &creates);
    let (inserted, locked) = futures::try_join!(insert(tx, &creates), lock(tx, &touched))?;
    let rejected: Vec<&TaskRow> = creates
        .iter()
        .filter(|t| !inserted.contains(&t.id))
        .copied()
        .collect();
    let holders = holders(tx, &rejected).await?;
    let mut rows: HashMap<TaskId, Row> = locked;
    let mut out = Outputs::default();
    let mut results = Vec::with_capacity(writes.len());
    for (i, w) in writes.iter().enumerate() {
        results.push(match w {
            WriteRow::Create(t, e) if inserted.contains(&t.id) && !dup_ids.contains(&i) => {
                let row = Row {
                    counted: (t.queue.clone(), t.kind.clone(), None),
                    last_seq: 1,
                    current: Current::of(&t.life),
                    life: None,
                };
                rows.insert(t.id, row);
                out.events.push((1, e));
                WriteResult::Done
            }
            WriteRow::Create(t, _) => {
                let by_key = t.unique_key.as_ref().and_then(|k| holders.get(k));
                WriteResult::Duplicate(by_key.copied().unwrap_or(t.id))
            }
            WriteRow::Update(t) => transition(rows.get_mut(&t.id), t, &mut out),
            WriteRow::Event(e) => {
                if let Some(row) = rows.get_mut(&e.task_id) {
                    row.last_seq += 1;
                    out.events.push((row.last_seq, e));
                }
                WriteResult::Done
            }
            WriteRow::Crash(c) => {
                out.crashes.push(c);
                WriteResult::Done
            }
        });
    }
    let counts = counts(rows.values());
    let changed: Vec<(TaskId, Row)> = rows
        .into_iter()
        .filter(|(id, row)| row.life.is_some() || !created_only(*id, row, &inserted))
        .collect();
    let tail = Tail(
        [
            tail::update(&changed),
            tail::insert_events(&out.events),
            tail::insert_crashes(&out.crashes),
            tail::add_counts(&counts),
        ]
        .into_iter()
        .flatten()
        .collect(),
    );
    Ok((split(results, batches), tail))
}

/// Applies `t` to its row if the row exists and passes the fence.
fn transition<'a>(
    row: Option<&mut Row<'a>>,
    t: &'a TransitionRow,
    out: &mut Outputs<'a>,
) -> WriteResult {
    let Some(row) = row else {
        return match t.fence {
            Some(_) => WriteResult::Fenced,
            None => WriteResult::Done,
        };
    };
    if let Some(fence) = &t.fence {
        let c = &row.current;
        let holds = c
            .state
            .is_some_and(|s| fence.admits(s, c.attempt, c.owner.as_ref(), c.requested));
        if !holds {
            return WriteResult::Fenced;
        }
    }
    for e in &t.events {
        row.last_seq += 1;
        out.events.push((row.last_seq, e));
    }
    out.crashes.extend(t.crash.as_ref());
    row.current = Current::of(&t.life);
    row.life = Some(&t.life);
    WriteResult::Done
}

/// The batch's net change of the task counts, per state, queue and kind (see `schema`):
/// each task leaves the state it had before the batch (if any) for the one it ends in.
fn counts<'r, 'a: 'r>(
    rows: impl Iterator<Item = &'r Row<'a>>,
) -> BTreeMap<(&'static str, String, String), i64> {
    let mut net = BTreeMap::new();
    for row in rows {
        let (queue, kind, before) = &row.counted;
        let after = row.current.state;
        if *before == after {
            continue;
        }
        let mut add = |state: Option<TaskState>, n: i64| {
            if let Some(state) = state {
                *net.entry((state.as_str(), queue.clone(), kind.clone()))
                    .or_insert(0) += n;
            }
        };
        add(*before, -1);
        add(after, 1);
    }
    net.retain(|_, n| *n != 0);
    net
}

/// A task created in this batch whose only event is its `created` one needs no update.
fn created_only(id: TaskId, row: &Row, inserted: &HashSet<TaskId>) -> bool {
    inserted.contains(&id) && row.last_seq == 1
}

#[derive(Default)]
struct Outputs<'a> {
    events: Vec<(i32, &'a EventRow)>,
    crashes: Vec<&'a CrashRow>,
}

/// The creates to insert, and the positions of creates whose id an earlier create of
/// the batch already uses.
fn creates_of<'a>(writes: &[&'a WriteRow]) -> (Vec<&'a TaskRow>, HashSet<usize>) {
    let mut seen = HashSet::new();
    let mut dups = HashSet::new();
    let mut creates = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        if let WriteRow::Create(t, _) = w {
            if seen.insert(t.id) {
                creates.push(&**t);
            } else {
                dups.insert(i);
            }
        }
    }
    (creates, dups)
}

/// Tasks the batch updates or appends to, other than those it creates.
fn touched_of(writes: &[&WriteRow], creates: &[&TaskRow]) -> Vec<uuid::Uuid> {
    let created: HashSet<TaskId> = creates.iter().map(|t| t.id).collect();
    let mut ids: Vec<uuid::Uuid> = writes
        .iter()
        .filter_map(|w| match w {
            WriteRow::Update(t) => Some(t.id),
            WriteRow::Event(e) => Some(e.task_id),
            _ => None,
        })
        .filter(|id| !created.contains(id))
        .map(|id| id.0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

async fn insert(tx: &ClientWrapper, creates: &[&TaskRow]) -> Result<HashSet<TaskId>, Error> {
    if creates.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<uuid::Uuid> = creates.iter().map(|t| t.id.0).collect();
    let kinds: Vec<&str> = creates.iter().map(|t| t.kind.as_str()).collect();
    let queues: Vec<&str> = creates.iter().map(|t| t.queue.as_str()).collect();
    let priorities: Vec<i16> = creates.iter().map(|t| t.priority).collect();
    let states: Vec<&str> = creates.iter().map(|t| t.life.state).collect();
    let attempts: Vec<i32> = creates.iter().map(|t| t.life.attempt).collect();
    let phases: Vec<Option<&str>> = creates.iter().map(|t| t.life.phase.as_deref()).collect();
    let by: Vec<Option<&str>> = creates.iter().map(|t| t.created_by.as_deref()).collect();
    let keys: Vec<Option<&str>> = creates.iter().map(|t| t.unique_key.as_deref()).collect();
    let created: Vec<i64> = creates.iter().map(|t| t.created_at).collect();
    let updated: Vec<i64> = creates.iter().map(|t| t.life.updated_at).collect();
    let due: Vec<Option<SystemTime>> = creates.iter().map(|t| t.life.due_at).collect();
    let lives: Vec<&str> = creates.iter().map(|t| t.life.life.as_str()).collect();
    let tasks: Vec<&str> = creates.iter().map(|t| t.task.as_str()).collect();
    let nodes: Vec<Option<&str>> = creates
        .iter()
        .map(|t| t.life.owner_node.as_deref())
        .collect();
    let incarnations: Vec<Option<i64>> = creates.iter().map(|t| t.life.owner_incarnation).collect();
    let intents: Vec<bool> = creates.iter().map(|t| t.life.intent).collect();
    let ran_on: Vec<Option<&str>> = creates.iter().map(|t| t.life.ran_on.as_deref()).collect();
    let stmt = tx.prepare_cached(INSERT_TASKS).await?;
    let rows = tx
        .query(
            &stmt,
            &[
                &ids,
                &kinds,
                &queues,
                &priorities,
                &states,
                &attempts,
                &phases,
                &by,
                &keys,
                &created,
                &updated,
                &due,
                &lives,
                &tasks,
                &nodes,
                &incarnations,
                &intents,
                &ran_on,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| TaskId(r.get(0))).collect())
}

async fn lock(
    tx: &ClientWrapper,
    ids: &[uuid::Uuid],
) -> Result<HashMap<TaskId, Row<'static>>, Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = tx.prepare_cached(LOCK).await?;
    let rows = tx.query(&stmt, &[&ids]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let attempt: i32 = r.get(2);
            let row = Row {
                counted: (r.get(7), r.get(8), state(r.get(1))),
                last_seq: r.get(3),
                current: Current {
                    state: state(r.get(1)),
                    attempt: u32::try_from(attempt).unwrap_or_default(),
                    owner: owner(r.get(4), r.get(5)),
                    requested: r.get(6),
                },
                life: None,
            };
            (TaskId(r.get(0)), row)
        })
        .collect())
}

/// The holder of each unique key a refused create asked for.
async fn holders(
    tx: &ClientWrapper,
    rejected: &[&TaskRow],
) -> Result<HashMap<String, TaskId>, Error> {
    let keys: Vec<&str> = rejected
        .iter()
        .filter_map(|t| t.unique_key.as_deref())
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = tx.prepare_cached(HOLDERS).await?;
    let rows = tx.query(&stmt, &[&keys]).await?;
    Ok(rows.iter().map(|r| (r.get(0), TaskId(r.get(1)))).collect())
}

/// Splits the flat results back into one list per request.
fn split(results: Vec<WriteResult>, batches: &[Vec<WriteRow>]) -> Vec<Vec<WriteResult>> {
    let mut results = results.into_iter();
    batches
        .iter()
        .map(|b| results.by_ref().take(b.len()).collect())
        .collect()
}
