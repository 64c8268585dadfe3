//! The client subcommands: each is one or two HTTP calls to a node. Each takes the
//! connection flags (`--url`, `--token`, `--output`); `node`, `demo` and `bench` do not.

mod run;

use clap::{Args, Subcommand};
use taskmesh::cli::OutputFormat;

pub use run::run;

/// How to reach the node, and how to print its answers.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// The node's URL.
    #[arg(long, env = "TASKMESH_URL", default_value = "http://127.0.0.1:7700")]
    pub url: String,
    /// The node's API token.
    #[arg(long, env = "TASKMESH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// table or json (default: table when stdout is a terminal, json otherwise).
    #[arg(long, short, value_enum)]
    pub output: Option<OutputFormat>,
}

/// Subcommands that talk to a running node.
#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Submits a task; prints it (with --wait, once it has ended).
    #[command(after_help = taskmesh::cli::EXIT_CODES_HELP)]
    Submit(SubmitArgs),
    /// Prints a task.
    Get(IdArgs),
    /// Lists tasks, newest first.
    List(ListArgs),
    /// Prints a task's events.
    Events(IdArgs),
    /// Cancels a task.
    Cancel(CancelArgs),
    /// Pauses a task.
    Pause(IdArgs),
    /// Resumes a paused task.
    Resume(IdArgs),
    /// Restarts a task: a running attempt is stopped and the task queued again; a paused
    /// task is resumed.
    Restart(IdArgs),
    /// Manages cron schedules.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Prints every queue's load.
    Queues(Conn),
    /// Prints liveness and readiness.
    Health(Conn),
    /// The cluster: its nodes, and draining a node for a rolling upgrade.
    #[command(subcommand)]
    Cluster(ClusterCmd),
}

/// `taskmesh cluster …`
#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Prints every node (name, address, state, incarnation, heartbeat age, running
    /// tasks, free workers, queues) as the node at --url sees them.
    Status(Conn),
    /// Drains the node at --url: it stops taking work, gives its waiting tasks to the
    /// other nodes and finishes what runs. Prints the progress; with --wait, waits until
    /// nothing runs there any more (then stop it).
    Drain(DrainArgs),
}

/// `taskmesh cluster drain …`
#[derive(Args, Debug)]
pub struct DrainArgs {
    /// Waits until the node is empty.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: gives up after this many seconds (exit code 6).
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    #[command(flatten)]
    pub conn: Conn,
}

/// `taskmesh submit KIND …`
#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// The task kind, e.g. noop, sleep, echo, fail, exec.
    pub kind: String,
    /// The args as JSON.
    #[arg(long, default_value = "null")]
    pub args: String,
    /// The queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// The priority.
    #[arg(long, value_parser = ["critical", "high", "normal", "low", "background"])]
    pub priority: Option<String>,
    /// Deduplicates submissions.
    #[arg(long)]
    pub unique_key: Option<String>,
    /// In a cluster routing by consistent_hash: tasks of one key start on one node.
    #[arg(long)]
    pub routing_key: Option<String>,
    /// Runs it no earlier than this RFC 3339 time, e.g. 2030-01-01T00:00:00Z.
    #[arg(long)]
    pub run_at: Option<String>,
    /// The longest one attempt may run, in milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Attempts in all, the first included.
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// A title for people.
    #[arg(long)]
    pub title: Option<String>,
    /// Waits until the task ends; the exit code tells how it ended.
    #[arg(long)]
    pub wait: bool,
    /// Prints only the task's id.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// `taskmesh list …`
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this state.
    #[arg(long)]
    pub state: Option<String>,
    /// Only this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Skips this many (for the next page).
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    #[command(flatten)]
    pub conn: Conn,
}

/// A command on one task.
#[derive(Args, Debug)]
pub struct IdArgs {
    /// The task id.
    pub id: String,
    #[command(flatten)]
    pub conn: Conn,
}

/// `taskmesh cancel ID`
#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The task id.
    pub id: String,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

/// `taskmesh schedule …`
#[derive(Subcommand, Debug)]
pub enum ScheduleCmd {
    /// Adds or replaces a schedule.
    Add(ScheduleAddArgs),
    /// Prints a schedule.
    Get(NameArgs),
    /// Lists schedules.
    List(Conn),
    /// Removes a schedule.
    Rm(NameArgs),
    /// Pauses a schedule.
    Pause(NameArgs),
    /// Resumes a schedule.
    Resume(NameArgs),
}

/// A command on one schedule.
#[derive(Args, Debug)]
pub struct NameArgs {
    /// Its name.
    pub name: String,
    #[command(flatten)]
    pub conn: Conn,
}

/// `taskmesh schedule add NAME …`
#[derive(Args, Debug)]
pub struct ScheduleAddArgs {
    /// Its name.
    pub name: String,
    /// Cron expression with seconds, e.g. "0 */5 * * * *".
    #[arg(long)]
    pub cron: String,
    /// The task kind.
    #[arg(long)]
    pub kind: String,
    /// The task args as JSON.
    #[arg(long, default_value = "null")]
    pub args: String,
    /// IANA time zone.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// Slots missed while the node was down: skip them, fire the latest, or fire all.
    #[arg(long, value_parser = ["skip", "latest", "all"])]
    pub catch_up: Option<String>,
    /// A slot while the previous run still runs: allow it or skip it.
    #[arg(long, value_parser = ["allow", "skip"])]
    pub overlap: Option<String>,
    /// Daylight saving, local times that do not exist: shift to the gap's end or skip.
    #[arg(long, value_parser = ["shift", "skip"])]
    pub dst_gap: Option<String>,
    /// Daylight saving, local times that happen twice: fire once or twice.
    #[arg(long, value_parser = ["once", "twice"])]
    pub dst_fold: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

impl ClientCmd {
    /// The connection flags of this command.
    pub fn conn(&self) -> &Conn {
        match self {
            Self::Submit(a) => &a.conn,
            Self::List(a) => &a.conn,
            Self::Cancel(a) => &a.conn,
            Self::Get(a)
            | Self::Events(a)
            | Self::Pause(a)
            | Self::Resume(a)
            | Self::Restart(a) => &a.conn,
            Self::Queues(c) | Self::Health(c) => c,
            Self::Cluster(ClusterCmd::Status(c)) => c,
            Self::Cluster(ClusterCmd::Drain(a)) => &a.conn,
            Self::Schedule(s) => match s {
                ScheduleCmd::Add(a) => &a.conn,
                ScheduleCmd::List(c) => c,
                ScheduleCmd::Get(a)
                | ScheduleCmd::Rm(a)
                | ScheduleCmd::Pause(a)
                | ScheduleCmd::Resume(a) => &a.conn,
            },
        }
    }
}
