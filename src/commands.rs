//! The client subcommands: each is one or two HTTP calls to a node.

use std::time::Duration;

use clap::Subcommand;
use serde_json::{json, Value};
use taskmesh::cli::{Client, ClientError};

/// Subcommands that talk to a running node.
#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Submits a task; prints it (with --wait, once it has ended).
    Submit {
        /// The task kind, e.g. noop, sleep, echo, fail, exec.
        kind: String,
        /// The args as JSON.
        #[arg(long, default_value = "null")]
        args: String,
        /// The queue.
        #[arg(long)]
        queue: Option<String>,
        /// critical, high, normal, low or background.
        #[arg(long)]
        priority: Option<String>,
        /// Deduplicates submissions.
        #[arg(long)]
        unique_key: Option<String>,
        /// Waits until the task ends.
        #[arg(long)]
        wait: bool,
        /// Prints only the task's id.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Prints a task.
    Get {
        /// The task id.
        id: String,
    },
    /// Lists tasks, newest first.
    List {
        /// Only this state.
        #[arg(long)]
        state: Option<String>,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Prints a task's events.
    Events {
        /// The task id.
        id: String,
    },
    /// Cancels a task.
    Cancel {
        /// The task id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Pauses a task.
    Pause {
        /// The task id.
        id: String,
    },
    /// Resumes a paused task.
    Resume {
        /// The task id.
        id: String,
    },
    /// Manages cron schedules.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Prints every queue's load.
    Queues,
    /// Prints liveness and readiness.
    Health,
}

/// `taskmesh schedule …`
#[derive(Subcommand, Debug)]
pub enum ScheduleCmd {
    /// Adds or replaces a schedule.
    Add {
        /// Its name.
        name: String,
        /// Cron expression with seconds, e.g. "0 */5 * * * *".
        #[arg(long)]
        cron: String,
        /// The task kind.
        #[arg(long)]
        kind: String,
        /// The task args as JSON.
        #[arg(long, default_value = "null")]
        args: String,
        /// IANA time zone.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// skip, latest or all.
        #[arg(long)]
        catch_up: Option<String>,
    },
    /// Lists schedules.
    List,
    /// Removes a schedule.
    Rm {
        /// Its name.
        name: String,
    },
    /// Pauses a schedule.
    Pause {
        /// Its name.
        name: String,
    },
    /// Resumes a schedule.
    Resume {
        /// Its name.
        name: String,
    },
}

fn parse_json(what: &str, text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text).map_err(|e| ClientError::Api {
        status: 0,
        code: "invalid_argument".into(),
        message: format!("--{what} is not valid JSON: {e}"),
    })
}

/// Runs one client command and returns what to print.
pub async fn run(client: &Client, cmd: ClientCmd) -> Result<Value, ClientError> {
    match cmd {
        ClientCmd::Submit {
            kind,
            args,
            queue,
            priority,
            unique_key,
            wait,
            quiet,
        } => {
            let mut body = json!({"kind": kind, "args": parse_json("args", &args)?});
            for (k, v) in [
                ("queue", queue),
                ("priority", priority),
                ("unique_key", unique_key),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            let task = client.post("/v1/tasks", &body).await?;
            let task = match (wait, task["id"].as_str()) {
                (true, Some(id)) => client.wait(id, Duration::from_secs(3600)).await?,
                _ => task,
            };
            Ok(if quiet { task["id"].clone() } else { task })
        }
        ClientCmd::Get { id } => client.get(&format!("/v1/tasks/{id}")).await,
        ClientCmd::List {
            state,
            queue,
            kind,
            limit,
        } => {
            let mut q = format!("/v1/tasks?limit={limit}");
            for (k, v) in [("state", state), ("queue", queue), ("kind", kind)] {
                if let Some(v) = v {
                    q.push_str(&format!("&{k}={v}"));
                }
            }
            client.get(&q).await
        }
        ClientCmd::Events { id } => client.get(&format!("/v1/tasks/{id}/events")).await,
        ClientCmd::Cancel { id, reason } => {
            let body = json!({"reason": reason.unwrap_or_else(|| "cancelled from the CLI".into())});
            client.post(&format!("/v1/tasks/{id}/cancel"), &body).await
        }
        ClientCmd::Pause { id } => {
            client
                .post(&format!("/v1/tasks/{id}/pause"), &json!({}))
                .await
        }
        ClientCmd::Resume { id } => {
            client
                .post(&format!("/v1/tasks/{id}/resume"), &json!({}))
                .await
        }
        ClientCmd::Schedule(cmd) => schedule(client, cmd).await,
        ClientCmd::Queues => client.get("/v1/queues").await,
        ClientCmd::Health => {
            let live = client.get("/health/live").await?;
            let ready = client
                .get("/health/ready")
                .await
                .unwrap_or_else(|e| json!({"ready": false, "error": e.to_string()}));
            Ok(json!({"live": live, "ready": ready}))
        }
    }
}

async fn schedule(client: &Client, cmd: ScheduleCmd) -> Result<Value, ClientError> {
    match cmd {
        ScheduleCmd::Add {
            name,
            cron,
            kind,
            args,
            timezone,
            catch_up,
        } => {
            let mut body = json!({"cron": cron, "timezone": timezone, "task": {"kind": kind, "args": parse_json("args", &args)?}});
            if let Some(c) = catch_up {
                body["catch_up"] = json!(c);
            }
            client
                .call(
                    reqwest::Method::PUT,
                    &format!("/v1/schedules/{name}"),
                    Some(&body),
                )
                .await
        }
        ScheduleCmd::List => client.get("/v1/schedules").await,
        ScheduleCmd::Rm { name } => {
            client
                .call(
                    reqwest::Method::DELETE,
                    &format!("/v1/schedules/{name}"),
                    None,
                )
                .await
        }
        ScheduleCmd::Pause { name } => set_paused(client, &name, true).await,
        ScheduleCmd::Resume { name } => set_paused(client, &name, false).await,
    }
}

async fn set_paused(client: &Client, name: &str, paused: bool) -> Result<Value, ClientError> {
    let mut current = client.get(&format!("/v1/schedules/{name}")).await?;
    let body = json!({
        "cron": current["cron"].take(),
        "timezone": current["timezone"].take(),
        "task": current["task"].take(),
        "dst": current["dst"].take(),
        "catch_up": current["catch_up"].take(),
        "overlap": current["overlap"].take(),
        "paused": paused,
    });
    client
        .call(
            reqwest::Method::PUT,
            &format!("/v1/schedules/{name}"),
            Some(&body),
        )
        .await
}
