//! The statements a batch runs once its rows are locked: the row updates, the events and
//! the crashes, with owned parameters so that they can go down the connection together
//! with the commit, after the batch's rows are gone.

use std::time::SystemTime;

use deadpool_postgres::ClientWrapper;
use futures::future::maybe_done;
use tokio::sync::oneshot;
use tokio_postgres::types::ToSql;
use tokio_postgres::Error;

use super::super::super::rows::{CrashRow, EventRow, LifeRow};
use super::Row;
use crate::task::TaskId;

const UPDATE: &str = "UPDATE tasks t SET \
    state = CASE WHEN u.changed THEN u.state ELSE t.state END, \
    attempt = CASE WHEN u.changed THEN u.attempt ELSE t.attempt END, \
    phase = CASE WHEN u.changed THEN u.phase ELSE t.phase END, \
    updated_at = CASE WHEN u.changed THEN u.updated_at ELSE t.updated_at END, \
    due_at = CASE WHEN u.changed THEN u.due_at ELSE t.due_at END, \
    life = CASE WHEN u.changed THEN u.life::json ELSE t.life END, \
    owner_node = CASE WHEN u.changed THEN u.owner_node ELSE t.owner_node END, \
    owner_incarnation = CASE WHEN u.changed THEN u.owner_incarnation \
        ELSE t.owner_incarnation END, \
    intent = CASE WHEN u.changed THEN u.intent ELSE t.intent END, \
    ran_on = CASE WHEN u.changed THEN u.ran_on ELSE t.ran_on END, \
    last_seq = u.last_seq \
FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::int4[], $5::text[], $6::int8[], \
    $7::timestamptz[], $8::text[], $9::int4[], $10::text[], $11::int8[], $12::bool[], \
    $13::text[]) \
    AS u(id, changed, state, attempt, phase, updated_at, due_at, life, last_seq, \
        owner_node, owner_incarnation, intent, ran_on) \
WHERE t.id = u.id AND t.id = ANY($1)";

const INSERT_EVENTS: &str = "INSERT INTO events \
    (task, seq, at, type, actor_id, correlation_id, data) \
SELECT task, seq, at, type, actor_id, correlation_id, data::json \
FROM unnest($1::uuid[], $2::int4[], $3::int8[], $4::text[], $5::text[], $6::text[], \
    $7::text[]) WITH ORDINALITY AS u(task, seq, at, type, actor_id, correlation_id, data, n) \
ORDER BY n";

const INSERT_CRASHES: &str = "INSERT INTO crashes (task_id, at, attempt, kind, reason) \
SELECT task_id, at, attempt, kind, reason \
FROM unnest($1::uuid[], $2::int8[], $3::int4[], $4::text[], $5::text[]) \
    WITH ORDINALITY AS u(task_id, at, attempt, kind, reason, n) ORDER BY n";

const ADD_COUNTS: &str = "INSERT INTO task_counts AS c (slot, state, queue, kind, n) \
SELECT pg_backend_pid(), state, queue, kind, n \
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS u(state, queue, kind, n) \
ORDER BY state, queue, kind \
ON CONFLICT (slot, state, queue, kind) DO UPDATE SET n = c.n + EXCLUDED.n";

/// A statement's parameters, owned, so the statement can run after the batch's rows
/// are gone.
pub(super) type Args = Vec<Box<dyn ToSql + Sync + Send>>;

/// The statements a batch runs after its rows are locked (row updates, events,
/// crashes): they take no new lock, so they go down the connection together with the
/// commit while the next batch starts.
pub(in crate::store::postgres) struct Tail(pub(super) Vec<(&'static str, Args)>);

impl Tail {
    /// Sends the statements and the commit down the connection together (prepared
    /// first, so nothing else is sent in between), tells `sent` once they are on their
    /// way, then waits for the answers. If a statement fails, the server answers the
    /// commit with a rollback, and this returns the statement's error; nothing of the
    /// batch applied. If the statements cannot be prepared, a rollback is sent instead
    /// (so the connection is ready for the next batch) and the error returned.
    pub(in crate::store::postgres) async fn commit(
        self,
        c: &ClientWrapper,
        sent: oneshot::Sender<()>,
    ) -> Result<(), Error> {
        let prepared =
            futures::future::try_join_all(self.0.iter().map(|(sql, _)| c.prepare_cached(sql)))
                .await;
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                let mut rollback = std::pin::pin!(c.batch_execute("ROLLBACK"));
                let _ = futures::poll!(rollback.as_mut());
                let _ = sent.send(());
                let _ = rollback.await;
                return Err(e);
            }
        };
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = self
            .0
            .iter()
            .map(|(_, args)| args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect())
            .collect();
        // A request goes down the connection when its future is first polled: poll each
        // once, in order, before telling the writer it may send the next batch.
        let mut runs: Vec<_> = prepared
            .iter()
            .zip(&params)
            .map(|(stmt, p)| Box::pin(maybe_done(c.execute(stmt, p))))
            .collect();
        let mut commit = Box::pin(maybe_done(c.batch_execute("COMMIT")));
        for run in &mut runs {
            let _ = futures::poll!(run.as_mut());
        }
        let _ = futures::poll!(commit.as_mut());
        let _ = sent.send(());
        let mut first_error = None;
        for run in &mut runs {
            run.as_mut().await;
            if let Some(Err(e)) = run.as_mut().take_output() {
                first_error.get_or_insert(e);
            }
        }
        commit.as_mut().await;
        let committed = commit.as_mut().take_output().unwrap_or(Ok(()));
        match first_error {
            Some(e) => Err(e),
            None => committed,
        }
    }
}

fn boxed<T: ToSql + Sync + Send + 'static>(value: T) -> Box<dyn ToSql + Sync + Send> {
    Box::new(value)
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

pub(super) fn update(changed: &[(TaskId, Row<'_>)]) -> Option<(&'static str, Args)> {
    if changed.is_empty() {
        return None;
    }
    let lifes: Vec<Option<&LifeRow>> = changed.iter().map(|(_, r)| r.life).collect();
    let ids: Vec<uuid::Uuid> = changed.iter().map(|(id, _)| id.0).collect();
    let flags: Vec<bool> = changed.iter().map(|(_, r)| r.life.is_some()).collect();
    let states: Vec<Option<String>> = lifes.iter().map(|l| owned(l.map(|l| l.state))).collect();
    let attempts: Vec<Option<i32>> = lifes.iter().map(|l| l.map(|l| l.attempt)).collect();
    let phases: Vec<Option<String>> = lifes
        .iter()
        .map(|l| owned(l.and_then(|l| l.phase.as_deref())))
        .collect();
    let updated: Vec<Option<i64>> = lifes.iter().map(|l| l.map(|l| l.updated_at)).collect();
    let due: Vec<Option<SystemTime>> = lifes.iter().map(|l| l.and_then(|l| l.due_at)).collect();
    let lives: Vec<Option<String>> = lifes
        .iter()
        .map(|l| owned(l.map(|l| l.life.as_str())))
        .collect();
    let seqs: Vec<i32> = changed.iter().map(|(_, r)| r.last_seq).collect();
    let nodes: Vec<Option<String>> = lifes
        .iter()
        .map(|l| owned(l.and_then(|l| l.owner_node.as_deref())))
        .collect();
    let incarnations: Vec<Option<i64>> = lifes
        .iter()
        .map(|l| l.and_then(|l| l.owner_incarnation))
        .collect();
    let intents: Vec<bool> = lifes.iter().map(|l| l.is_some_and(|l| l.intent)).collect();
    let ran_on: Vec<Option<String>> = lifes
        .iter()
        .map(|l| owned(l.and_then(|l| l.ran_on.as_deref())))
        .collect();
    let args = vec![
        boxed(ids),
        boxed(flags),
        boxed(states),
        boxed(attempts),
        boxed(phases),
        boxed(updated),
        boxed(due),
        boxed(lives),
        boxed(seqs),
        boxed(nodes),
        boxed(incarnations),
        boxed(intents),
        boxed(ran_on),
    ];
    Some((UPDATE, args))
}

pub(super) fn insert_events(events: &[(i32, &EventRow)]) -> Option<(&'static str, Args)> {
    if events.is_empty() {
        return None;
    }
    let tasks: Vec<uuid::Uuid> = events.iter().map(|(_, e)| e.task_id.0).collect();
    let seqs: Vec<i32> = events.iter().map(|(s, _)| *s).collect();
    let ats: Vec<i64> = events.iter().map(|(_, e)| e.at).collect();
    let types: Vec<&'static str> = events.iter().map(|(_, e)| e.kind).collect();
    let actors: Vec<Option<String>> = events.iter().map(|(_, e)| e.actor_id.clone()).collect();
    let flows: Vec<Option<String>> = events
        .iter()
        .map(|(_, e)| e.correlation_id.clone())
        .collect();
    let data: Vec<String> = events.iter().map(|(_, e)| e.data.clone()).collect();
    let args = vec![
        boxed(tasks),
        boxed(seqs),
        boxed(ats),
        boxed(types),
        boxed(actors),
        boxed(flows),
        boxed(data),
    ];
    Some((INSERT_EVENTS, args))
}

pub(super) fn insert_crashes(crashes: &[&CrashRow]) -> Option<(&'static str, Args)> {
    if crashes.is_empty() {
        return None;
    }
    let tasks: Vec<uuid::Uuid> = crashes.iter().map(|c| c.task_id.0).collect();
    let ats: Vec<i64> = crashes.iter().map(|c| c.at).collect();
    let attempts: Vec<i32> = crashes.iter().map(|c| c.attempt).collect();
    let kinds: Vec<&'static str> = crashes.iter().map(|c| c.kind).collect();
    let reasons: Vec<String> = crashes.iter().map(|c| c.reason.clone()).collect();
    let args = vec![
        boxed(tasks),
        boxed(ats),
        boxed(attempts),
        boxed(kinds),
        boxed(reasons),
    ];
    Some((INSERT_CRASHES, args))
}

/// Adds the batch's net change of the task counts to this connection's rows.
pub(super) fn add_counts(
    net: &std::collections::BTreeMap<(&'static str, String, String), i64>,
) -> Option<(&'static str, Args)> {
    if net.is_empty() {
        return None;
    }
    let states: Vec<&'static str> = net.keys().map(|(s, _, _)| *s).collect();
    let queues: Vec<String> = net.keys().map(|(_, q, _)| q.clone()).collect();
    let kinds: Vec<String> = net.keys().map(|(_, _, k)| k.clone()).collect();
    let ns: Vec<i64> = net.values().copied().collect();
    Some((
        ADD_COUNTS,
        vec![boxed(states), boxed(queues), boxed(kinds), boxed(ns)],
    ))
}
