//! A Jepsen-style checker over the database after a run, and waiting for tasks to end.
//!
//! Rules, read from the `tasks` and `events` tables (events in `seq` order per task):
//! - every acknowledged task exists, has exactly one terminal event (succeeded, failed,
//!   cancelled), and is in that terminal state;
//! - no attempt number starts twice (unless it was given back in between: an attempt
//!   stopped without a settle, followed by `restarted` or `paused`, as a shutdown, a
//!   restart or a pause does);
//! - no attempt is settled (`attempt_failed`, `failed`, `crashed`, or `retry_scheduled`
//!   for the next one) after a newer attempt's `started`: a late result was not fenced;
//! - nothing starts after the task's terminal event.
//!
//! `succeeded`, `cancelled` and `snoozed` carry no attempt number, so a late one is only
//! caught when it makes a second terminal event.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;
use taskmesh::testing::pg::TestDb;
use taskmesh::TaskId;

use super::node::Node;

/// The pause before asking again after a wait that answered without an end.
const RETRY: Duration = Duration::from_millis(100);

/// The event types that end a task.
const TERMINAL: [&str; 3] = ["succeeded", "failed", "cancelled"];

/// One broken rule, naming the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged task is not in the `tasks` table.
    Missing { task: String },
    /// An acknowledged task has not exactly one terminal event.
    Terminals { task: String, count: usize },
    /// A task's row is not in the state of its terminal event.
    State {
        task: String,
        state: String,
        terminal: String,
    },
    /// An attempt number started twice (the seqs of both starts).
    StartedTwice {
        task: String,
        attempt: u64,
        seqs: (i32, i32),
    },
    /// An attempt was settled after a newer attempt started.
    LateSettle {
        task: String,
        attempt: u64,
        event: String,
        seq: i32,
        newer: u64,
    },
    /// An attempt started after the task's terminal event.
    StartedAfterEnd {
        task: String,
        attempt: u64,
        seq: i32,
    },
    /// An event that should name an attempt does not (the stored format changed?).
    Unreadable {
        task: String,
        event: String,
        seq: i32,
    },
}

impl Violation {
    /// The task it names.
    pub fn task(&self) -> &str {
        match self {
            Self::Missing { task }
            | Self::Terminals { task, .. }
            | Self::State { task, .. }
            | Self::StartedTwice { task, .. }
            | Self::LateSettle { task, .. }
            | Self::StartedAfterEnd { task, .. }
            | Self::Unreadable { task, .. } => task,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { task } => write!(f, "task {task}: acknowledged but not stored"),
            Self::Terminals { task, count } => {
                write!(f, "task {task}: expected 1 terminal event, got {count}")
            }
            Self::State { task, state, terminal } => {
                write!(f, "task {task}: ended {terminal} but its row is {state}")
            }
            Self::StartedTwice { task, attempt, seqs } => {
                write!(f, "task {task}: attempt {attempt} started twice (seq {} and {})", seqs.0, seqs.1)
            }
            Self::LateSettle { task, attempt, event, seq, newer } => write!(
                f,
                "task {task}: attempt {attempt} settled ({event}, seq {seq}) after attempt {newer} started"
            ),
            Self::Unreadable { task, event, seq } => {
                write!(f, "task {task}: {event} (seq {seq}) names no attempt")
            }
            Self::StartedAfterEnd { task, attempt, seq } => {
                write!(f, "task {task}: attempt {attempt} started (seq {seq}) after the task ended")
            }
        }
    }
}

/// What the checker read and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Acknowledged tasks checked.
    pub acknowledged: usize,
    /// Tasks in the database.
    pub stored: usize,
    /// Events read.
    pub events: usize,
    /// Attempts started, over every task.
    pub starts: usize,
    /// Acknowledged tasks per terminal state.
    pub ended: BTreeMap<String, usize>,
    /// Every broken rule.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Panics with [`failure`](Self::failure) if a rule is broken.
    pub fn assert_clean(&self) {
        if let Some(message) = self.failure() {
            panic!("{message}");
        }
    }

    /// Every violation, one a line, each naming its task; `None` if there is none.
    pub fn failure(&self) -> Option<String> {
        if self.violations.is_empty() {
            return None;
        }
        let lines: Vec<String> = self.violations.iter().map(|v| format!("  {v}")).collect();
        let n = lines.len();
        Some(format!(
            "the checker found {n} violations:\n{}",
            lines.join("\n")
        ))
    }
}

/// Checks the rules over `db` for the `acknowledged` tasks, returns the report, and
/// panics (naming each task) if a rule is broken.
pub async fn check(db: &TestDb, acknowledged: &[TaskId]) -> Report {
    let report = inspect(db, acknowledged).await;
    report.assert_clean();
    report
}

/// Checks the rules like [`check`], without panicking.
pub async fn inspect(db: &TestDb, acknowledged: &[TaskId]) -> Report {
    let client = db.client().await;
    let states: HashMap<String, String> = client
        .query("SELECT id::text, state FROM tasks", &[])
        .await
        .expect("tasks are readable")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let rows = client
        .query(
            "SELECT task::text, seq, type, data::text FROM events ORDER BY task, seq",
            &[],
        )
        .await
        .expect("events are readable");
    let mut streams: HashMap<String, Vec<Event>> = HashMap::new();
    for row in &rows {
        let data: String = row.get(3);
        let event = Event {
            seq: row.get(1),
            kind: row.get(2),
            data: serde_json::from_str(&data).unwrap_or(Value::Null),
        };
        streams.entry(row.get(0)).or_default().push(event);
    }
    let mut report = Report {
        acknowledged: acknowledged.len(),
        stored: states.len(),
        events: rows.len(),
        ..Report::default()
    };
    for (task, events) in &streams {
        report.starts += replay(task, events, &mut report.violations);
    }
    for id in acknowledged {
        ended(&id.to_string(), &states, &streams, &mut report);
    }
    report
}

/// A stored event.
struct Event {
    seq: i32,
    kind: String,
    data: Value,
}

impl Event {
    /// The attempt this event settles: `None` for an event that settles none (or does
    /// not say which), `Some(None)` for one that should say and does not.
    fn settles(&self) -> Option<Option<u64>> {
        match self.kind.as_str() {
            "attempt_failed" | "failed" => Some(self.data["error"]["attempt"].as_u64()),
            "crashed" => Some(self.data["crash"]["attempt"].as_u64()),
            "retry_scheduled" => Some(self.data["attempt"].as_u64().map(|a| a.saturating_sub(1))),
            _ => None,
        }
    }

    fn unreadable(&self, task: &str) -> Violation {
        let (task, event, seq) = (task.to_owned(), self.kind.clone(), self.seq);
        Violation::Unreadable { task, event, seq }
    }
}

/// Replays one task's events against the attempt rules; returns the starts seen.
fn replay(task: &str, events: &[Event], out: &mut Vec<Violation>) -> usize {
    let mut attempts = Attempts::default();
    for e in events {
        match e.kind.as_str() {
            "started" => match e.data["attempt"].as_u64() {
                Some(attempt) => attempts.start(task, attempt, e.seq, out),
                None => out.push(e.unreadable(task)),
            },
            "restarted" | "paused" => attempts.give_back(),
            kind => {
                match e.settles() {
                    Some(Some(attempt)) => attempts.settle(task, attempt, e, out),
                    Some(None) => out.push(e.unreadable(task)),
                    None => {}
                }
                if kind != "progress" && kind != "stop_requested" {
                    attempts.open = None;
                }
                attempts.ended |= TERMINAL.contains(&kind);
            }
        }
    }
    attempts.starts
}

/// One task's attempts, as its events are replayed.
#[derive(Default)]
struct Attempts {
    /// Each attempt started (and not given back), with the seq of its start.
    started: BTreeMap<u64, i32>,
    /// The attempt running (started, not yet settled).
    open: Option<u64>,
    /// A terminal event was seen.
    ended: bool,
    /// Starts seen.
    starts: usize,
}

impl Attempts {
    fn start(&mut self, task: &str, attempt: u64, seq: i32, out: &mut Vec<Violation>) {
        let task = task.to_owned();
        self.starts += 1;
        if self.ended {
            out.push(Violation::StartedAfterEnd { task, attempt, seq });
        } else if let Some(&first) = self.started.get(&attempt) {
            out.push(Violation::StartedTwice {
                task,
                attempt,
                seqs: (first, seq),
            });
        }
        self.started.insert(attempt, seq);
        self.open = Some(attempt);
    }

    /// An attempt stopped without a settle (shutdown, restart, pause) gives its number
    /// back: the next start may use it again.
    fn give_back(&mut self) {
        if let Some(attempt) = self.open.take() {
            self.started.remove(&attempt);
        }
    }

    fn settle(&self, task: &str, attempt: u64, e: &Event, out: &mut Vec<Violation>) {
        match self.started.keys().next_back() {
            Some(&newer) if attempt < newer => out.push(Violation::LateSettle {
                task: task.to_owned(),
                attempt,
                event: e.kind.clone(),
                seq: e.seq,
                newer,
            }),
            _ => {}
        }
    }
}

/// Checks that the acknowledged `task` is stored and ended exactly once, in its row's
/// state.
fn ended(
    task: &str,
    states: &HashMap<String, String>,
    streams: &HashMap<String, Vec<Event>>,
    report: &mut Report,
) {
    let task = task.to_owned();
    let Some(state) = states.get(&task) else {
        report.violations.push(Violation::Missing { task });
        return;
    };
    let terminals: Vec<&Event> = streams
        .get(&task)
        .into_iter()
        .flatten()
        .filter(|e| TERMINAL.contains(&e.kind.as_str()))
        .collect();
    if terminals.len() != 1 {
        let count = terminals.len();
        report.violations.push(Violation::Terminals { task, count });
        return;
    }
    let terminal = terminals[0].kind.clone();
    *report.ended.entry(terminal.clone()).or_default() += 1;
    if *state != terminal {
        let state = state.clone();
        report.violations.push(Violation::State {
            task,
            state,
            terminal,
        });
    }
}

/// Waits through `node` until every task of `ids` has ended (the long poll `GET
/// /v1/tasks/{id}/wait`); returns each one's final state. Panics naming the first task
/// still open after `limit`.
pub async fn wait_all_ended(
    node: &Node,
    ids: &[TaskId],
    limit: Duration,
) -> HashMap<TaskId, String> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    let mut states = HashMap::new();
    for id in ids {
        let state = wait_ended(&client, &node.url, *id, deadline).await;
        let state =
            state.unwrap_or_else(|last| panic!("task {id} has not ended within {limit:?}: {last}"));
        states.insert(*id, state);
    }
    states
}

/// The task's state once ended, or the last answer when `deadline` passes.
async fn wait_ended(
    client: &reqwest::Client,
    url: &str,
    id: TaskId,
    deadline: Instant,
) -> Result<String, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(20_000);
        let url = format!("{url}/v1/tasks/{id}/wait?timeout_ms={ms}");
        let last = match client
            .get(&url)
            .timeout(left + Duration::from_secs(5))
            .send()
            .await
        {
            Ok(resp) => {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                match body["state"].as_str() {
                    Some(s) if TERMINAL.contains(&s) => return Ok(s.to_owned()),
                    _ => body.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(RETRY).await;
    }
}
