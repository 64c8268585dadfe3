//! Running a client command: the HTTP calls, what to print, and the exit code.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use taskmesh::cli::{Client, ClientError, Exit};

use super::{ClientCmd, ClusterCmd, DrainArgs, ListArgs, ScheduleAddArgs, ScheduleCmd, SubmitArgs};

/// What a command printed and how the process should exit.
#[derive(Debug)]
pub struct Reply {
    /// The answer to print.
    pub value: Value,
    /// The exit code.
    pub exit: Exit,
}

impl From<Value> for Reply {
    fn from(value: Value) -> Self {
        Self {
            value,
            exit: Exit::Success,
        }
    }
}

/// How long `submit --wait` waits.
const WAIT_LIMIT: Duration = Duration::from_secs(3600);

fn parse_json(flag: &'static str, text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text).map_err(|e| ClientError::InvalidArgument {
        flag,
        reason: format!("is not valid JSON: {e}"),
    })
}

/// Sets `body[key]` to each value that is given.
fn set_some<'a>(body: &mut Value, fields: impl IntoIterator<Item = (&'a str, Option<Value>)>) {
    for (k, v) in fields {
        if let Some(v) = v {
            body[k] = v;
        }
    }
}

/// Runs one client command.
pub async fn run(client: &Client, cmd: ClientCmd) -> Result<Reply, ClientError> {
    let none = json!({});
    Ok(match cmd {
        ClientCmd::Submit(a) => return submit(client, a).await,
        ClientCmd::Get(a) => client.get(&["v1", "tasks", &a.id]).await?.into(),
        ClientCmd::List(a) => list(client, a).await?.into(),
        ClientCmd::Events(a) => client.get(&["v1", "tasks", &a.id, "events"]).await?.into(),
        ClientCmd::Cancel(a) => {
            let reason = a.reason.unwrap_or_else(|| "cancelled from the CLI".into());
            let path = ["v1", "tasks", &a.id, "cancel"];
            client
                .post(&path, &json!({ "reason": reason }))
                .await?
                .into()
        }
        ClientCmd::Pause(a) => client
            .post(&["v1", "tasks", &a.id, "pause"], &none)
            .await?
            .into(),
        ClientCmd::Resume(a) => client
            .post(&["v1", "tasks", &a.id, "resume"], &none)
            .await?
            .into(),
        ClientCmd::Restart(a) => client
            .post(&["v1", "tasks", &a.id, "restart"], &none)
            .await?
            .into(),
        ClientCmd::Schedule(cmd) => schedule(client, cmd).await?.into(),
        ClientCmd::Queues(_) => client.get(&["v1", "queues"]).await?.into(),
        ClientCmd::Health(_) => health(client).await?.into(),
        ClientCmd::Cluster(ClusterCmd::Status(_)) => client.get(&["v1", "cluster"]).await?.into(),
        ClientCmd::Cluster(ClusterCmd::Drain(a)) => return drain(client, a).await,
    })
}

/// How often `cluster drain --wait` asks for the progress.
const DRAIN_POLL: Duration = Duration::from_millis(500);

/// Drains the node; with `--wait`, asks again until nothing runs there.
async fn drain(client: &Client, a: DrainArgs) -> Result<Reply, ClientError> {
    let none = json!({});
    let give_up = tokio::time::Instant::now() + Duration::from_secs(a.timeout_s);
    loop {
        let progress = client.post(&["v1", "cluster", "drain"], &none).await?;
        let empty = progress["empty"].as_bool().unwrap_or(false);
        if !a.wait || empty {
            return Ok(progress.into());
        }
        if tokio::time::Instant::now() >= give_up {
            return Ok(Reply {
                value: progress,
                exit: Exit::StillRunning,
            });
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

async fn submit(client: &Client, a: SubmitArgs) -> Result<Reply, ClientError> {
    let mut body = json!({"kind": a.kind, "args": parse_json("args", &a.args)?});
    set_some(
        &mut body,
        [
            ("queue", a.queue.map(Value::from)),
            ("priority", a.priority.map(Value::from)),
            ("unique_key", a.unique_key.map(Value::from)),
            ("routing_key", a.routing_key.map(Value::from)),
            ("run_at", a.run_at.map(Value::from)),
            ("timeout_ms", a.timeout_ms.map(Value::from)),
            ("max_attempts", a.max_attempts.map(Value::from)),
            ("title", a.title.map(Value::from)),
        ],
    );
    let mut task = client.post(&["v1", "tasks"], &body).await?;
    let mut exit = Exit::Success;
    if let (true, Some(id)) = (a.wait, task["id"].as_str()) {
        task = client.wait(id, WAIT_LIMIT).await?;
        exit = Exit::of_task_state(task["state"].as_str().unwrap_or(""));
    }
    let value = if a.quiet { task["id"].take() } else { task };
    Ok(Reply { value, exit })
}

async fn list(client: &Client, a: ListArgs) -> Result<Value, ClientError> {
    let mut query = vec![
        ("limit", a.limit.to_string()),
        ("offset", a.offset.to_string()),
    ];
    for (k, v) in [("state", a.state), ("queue", a.queue), ("kind", a.kind)] {
        query.extend(v.map(|v| (k, v)));
    }
    let url = client.url(&["v1", "tasks"], &query)?;
    client.call(Method::GET, url, None).await
}

async fn health(client: &Client) -> Result<Value, ClientError> {
    let live = client.get(&["health", "live"]).await?;
    let ready = match client.get(&["health", "ready"]).await {
        Ok(ready) => ready,
        Err(ClientError::Api { message, .. }) => json!({"ready": false, "error": message}),
        Err(e) => return Err(e),
    };
    Ok(json!({"live": live, "ready": ready}))
}

async fn schedule(client: &Client, cmd: ScheduleCmd) -> Result<Value, ClientError> {
    match cmd {
        ScheduleCmd::Add(a) => add_schedule(client, a).await,
        ScheduleCmd::Get(a) => client.get(&["v1", "schedules", &a.name]).await,
        ScheduleCmd::List(_) => client.get(&["v1", "schedules"]).await,
        ScheduleCmd::Rm(a) => {
            let url = client.url(&["v1", "schedules", &a.name], &[])?;
            client.call(Method::DELETE, url, None).await
        }
        ScheduleCmd::Pause(a) => set_paused(client, &a.name, true).await,
        ScheduleCmd::Resume(a) => set_paused(client, &a.name, false).await,
    }
}

async fn add_schedule(client: &Client, a: ScheduleAddArgs) -> Result<Value, ClientError> {
    let task = json!({"kind": a.kind, "args": parse_json("args", &a.args)?});
    let mut body = json!({"cron": a.cron, "timezone": a.timezone, "task": task});
    let mut dst = json!({});
    set_some(
        &mut dst,
        [
            ("gap", a.dst_gap.map(Value::from)),
            ("fold", a.dst_fold.map(Value::from)),
        ],
    );
    set_some(
        &mut body,
        [
            ("catch_up", a.catch_up.map(Value::from)),
            ("overlap", a.overlap.map(Value::from)),
            ("dst", Some(dst).filter(|d| d != &json!({}))),
        ],
    );
    put_schedule(client, &a.name, &body).await
}

async fn put_schedule(client: &Client, name: &str, body: &Value) -> Result<Value, ClientError> {
    let url = client.url(&["v1", "schedules", name], &[])?;
    client.call(Method::PUT, url, Some(body)).await
}

async fn set_paused(client: &Client, name: &str, paused: bool) -> Result<Value, ClientError> {
    let mut current = client.get(&["v1", "schedules", name]).await?;
    let body = json!({
        "cron": current["cron"].take(),
        "timezone": current["timezone"].take(),
        "task": current["task"].take(),
        "dst": current["dst"].take(),
        "catch_up": current["catch_up"].take(),
        "catch_up_max": current["catch_up_max"].take(),
        "overlap": current["overlap"].take(),
        "paused": paused,
    });
    put_schedule(client, name, &body).await
}
