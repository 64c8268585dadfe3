//! `exec`: runs an allowlisted command and captures its output.
//!
//! The command runs in a clean environment (see [`ExecConfig::env`]) and in a process
//! group of its own, which is killed as a whole when the attempt ends: nothing it starts
//! outlives the task, and none of the node's secrets reach it.

mod group;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::handler::{Handler, HandlerError, HandlerResult, Outcome};
use crate::TaskContext;

/// Which commands `exec` may run, and how much output it keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecConfig {
    /// Commands that may run, exactly as tasks name them (e.g. "/usr/bin/backup" or
    /// "echo"). Empty by default: `exec` refuses everything.
    pub allow: Vec<String>,
    /// Bytes of stdout and of stderr kept (default 64 KiB each); the rest is dropped and
    /// `truncated` is set.
    pub max_output_bytes: usize,
    /// Variables the command gets besides the minimal set [`PASSED_THROUGH`] takes from
    /// the node's environment (an entry here wins). Nothing else of the node's
    /// environment, such as `TASKMESH_HTTP__TOKEN`, reaches the command.
    pub env: BTreeMap<String, String>,
    /// On cancel or timeout the command's process group gets SIGTERM, then SIGKILL after
    /// this many milliseconds (default 2000). The task system's `cancel_grace_ms` bounds
    /// it: when that ends first, the group is killed then.
    pub kill_grace_ms: u64,
}

/// The variables an `exec` command inherits from the node, when the node has them.
/// `PATH` defaults to [`DEFAULT_PATH`] when the node has none.
pub const PASSED_THROUGH: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// The `PATH` of an `exec` command when the node has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            allow: vec![],
            max_output_bytes: 64 * 1024,
            env: BTreeMap::new(),
            kill_grace_ms: 2000,
        }
    }
}

impl ExecConfig {
    /// Checks `env`: names must be non-empty and free of `=` and NUL, values free of NUL.
    pub fn validate(&self) -> Result<(), crate::ValidationError> {
        for (name, value) in &self.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(crate::ValidationError::new(
                    "exec.env",
                    format!("{name:?} is not a valid variable name (empty, or holds '=' or NUL)"),
                ));
            }
            if value.contains('\0') {
                return Err(crate::ValidationError::new(
                    "exec.env",
                    format!("the value of {name} holds a NUL byte"),
                ));
            }
        }
        Ok(())
    }

    /// The environment of a command: the passed-through variables, then `env`.
    fn environment(&self) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = PASSED_THROUGH
            .iter()
            .filter_map(|&k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        vars.entry("PATH".into())
            .or_insert_with(|| DEFAULT_PATH.into());
        vars.extend(self.env.clone());
        vars
    }
}

/// The args of `exec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecArgs {
    /// The command; must be in the allowlist.
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
}

/// What `exec` returns.
#[derive(Debug, Serialize)]
pub struct ExecOutput {
    /// The exit status.
    pub status: i32,
    /// Captured stdout (lossy UTF-8).
    pub stdout: String,
    /// Captured stderr (lossy UTF-8).
    pub stderr: String,
    /// True if either stream was longer than the limit.
    pub truncated: bool,
}

/// `exec`: runs an allowlisted command. A non-zero exit fails the attempt; a cancel or
/// timeout stops the command's whole process group (SIGTERM, then SIGKILL).
pub struct Exec {
    config: ExecConfig,
}

impl Exec {
    /// An `exec` handler with `config`.
    pub fn new(config: ExecConfig) -> Self {
        Self { config }
    }
}

impl Handler for Exec {
    const KIND: &'static str = "exec";
    type Args = ExecArgs;
    type Output = ExecOutput;

    async fn perform(&self, ctx: TaskContext, args: ExecArgs) -> HandlerResult<ExecOutput> {
        if !self.config.allow.contains(&args.command) {
            return Ok(Outcome::Cancel(format!(
                "command {:?} is not in the exec allowlist",
                args.command
            )));
        }
        let mut child = Command::new(&args.command)
            .args(&args.args)
            .env_clear()
            .envs(self.config.environment())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HandlerError::msg(format!("cannot start {:?}: {e}", args.command)))?;
        let group = group::ProcessGroup::of(&child);
        let max = self.config.max_output_bytes;
        let out = read_capped(child.stdout.take(), max);
        let err = read_capped(child.stderr.take(), max);
        let run = async { tokio::join!(child.wait(), out, err) };
        let (status, (stdout, t1), (stderr, t2)) = tokio::select! {
            r = run => r,
            _ = ctx.cancelled() => {
                let grace = Duration::from_millis(self.config.kill_grace_ms);
                group.stop(&mut child, grace).await;
                return Err("stopped: the process group was killed".into());
            }
        };
        let status = status
            .map_err(|e| HandlerError::msg(format!("waiting for {:?}: {e}", args.command)))?;
        let code = status.code().unwrap_or(-1);
        if !status.success() {
            let tail: String = stderr
                .chars()
                .rev()
                .take(500)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(format!("{:?} exited with status {code}: {tail}", args.command).into());
        }
        Ok(Outcome::Succeeded(ExecOutput {
            status: code,
            stdout,
            stderr,
            truncated: t1 || t2,
        }))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(600)
    }
    fn max_attempts(&self) -> u32 {
        1
    }
}

/// Reads a stream to its end, keeping at most `max` bytes. Returns the text and whether
/// it was cut.
async fn read_capped<R: AsyncRead + Unpin>(stream: Option<R>, max: usize) -> (String, bool) {
    let Some(mut stream) = stream else {
        return (String::new(), false);
    };
    let (mut kept, mut buf, mut cut) = (Vec::new(), [0u8; 8192], false);
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), cut)
}
