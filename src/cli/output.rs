//! What the CLI prints: JSON, or a table for people.

use comfy_table::{presets, Table};
use serde_json::{Map, Value};

/// How the CLI prints answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people (the default when stdout is a terminal).
    Table,
    /// Pretty-printed JSON, as the API returned it (the default otherwise).
    Json,
}

impl OutputFormat {
    /// `chosen`, or the default for where stdout goes.
    pub fn or_default(chosen: Option<Self>, stdout_is_terminal: bool) -> Self {
        chosen.unwrap_or(if stdout_is_terminal {
            Self::Table
        } else {
            Self::Json
        })
    }

    /// `value` as text in this format (no trailing newline; empty for `null`).
    pub fn render(self, value: &Value) -> String {
        match (self, value) {
            (_, Value::Null) => String::new(),
            (_, Value::String(s)) => s.clone(),
            (Self::Json, v) => serde_json::to_string_pretty(v).unwrap_or_default(),
            (Self::Table, v) => table(v),
        }
    }
}

/// The columns shown for each kind of list the API returns.
const COLUMNS: [(&str, &[&str]); 5] = [
    (
        "tasks",
        &[
            "id",
            "state",
            "kind",
            "queue",
            "priority",
            "attempt",
            "created_at",
            "title",
        ],
    ),
    ("events", &["seq", "type", "at", "actor_id", "data"]),
    (
        "schedules",
        &["name", "cron", "timezone", "paused", "next", "last_task"],
    ),
    (
        "queues",
        &["name", "depth", "running", "workers", "paused", "breaker"],
    ),
    (
        "nodes",
        &[
            "name",
            "state",
            "address",
            "incarnation",
            "heartbeat_age_ms",
            "running",
            "free_slots",
            "queued",
            "queues",
            "this",
        ],
    ),
];

fn table(value: &Value) -> String {
    let Value::Object(map) = value else {
        return cell(value);
    };
    let list = COLUMNS.iter().find_map(|(key, cols)| {
        map.get(*key)
            .and_then(Value::as_array)
            .map(|rows| (rows, *cols))
    });
    match list {
        Some((rows, cols)) => rows_table(rows, cols, map),
        None => fields_table(map),
    }
}

fn rows_table(rows: &[Value], cols: &[&str], map: &Map<String, Value>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_header(cols.iter().map(|c| c.to_uppercase()));
    for row in rows {
        t.add_row(cols.iter().map(|c| cell(&row[*c])));
    }
    let mut out = t.trim_fmt();
    if let Some(total) = map.get("total") {
        out.push_str(&format!("\n{} of {total}", rows.len()));
    }
    if let Some(by) = map.get("answered_by") {
        out.push_str(&format!("\nanswered by {}", cell(by)));
    }
    if let Some(e) = map.get("store_error").filter(|e| !e.is_null()) {
        out.push_str(&format!("\nstore error: {}", cell(e)));
    }
    if let Some(l) = map.get("cron_leader").and_then(Value::as_object) {
        let field = |k: &str| l.get(k).map(cell).unwrap_or_default();
        out.push_str(&format!(
            "\ncron leader {} (epoch {}, lease {} ms left)",
            field("node"),
            field("epoch"),
            field("remaining_ms")
        ));
    }
    out
}

/// One object as `key  value` lines.
fn fields_table(map: &Map<String, Value>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    for (k, v) in map {
        t.add_row([k.clone(), cell(v)]);
    }
    t.trim_fmt()
}

/// A value in one cell: strings bare, `null` empty, the rest as compact JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_task_list_prints_as_columns_with_the_total() {
        let page = json!({"total": 7, "tasks": [
            {"id": "t1", "state": "running", "kind": "sleep", "queue": "default", "attempt": 1},
            {"id": "t2", "state": "succeeded", "kind": "noop", "queue": "mail", "attempt": 2},
        ]});
        let text = OutputFormat::Table.render(&page);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0][..4], ["ID", "STATE", "KIND", "QUEUE"]);
        assert_eq!(lines[1], ["t1", "running", "sleep", "default", "1"]);
        assert_eq!(lines[2], ["t2", "succeeded", "noop", "mail", "2"]);
        assert_eq!(lines[3], ["2", "of", "7"]);
    }

    #[test]
    fn the_cluster_prints_one_line_per_node_and_who_answered() {
        let status = json!({"answered_by": "n2", "store_error": null, "nodes": [
            {"name": "n1", "state": "up", "address": "10.0.0.1:7701", "incarnation": 3},
            {"name": "n2", "state": "suspect", "address": "10.0.0.2:7701", "incarnation": 4},
        ]});
        let text = OutputFormat::Table.render(&status);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0][..4], ["NAME", "STATE", "ADDRESS", "INCARNATION"]);
        assert_eq!(lines[1][..4], ["n1", "up", "10.0.0.1:7701", "3"]);
        assert_eq!(lines[2][..2], ["n2", "suspect"]);
        assert_eq!(lines[3], ["answered", "by", "n2"]);
        assert_eq!(lines.len(), 4, "no store error line: {text}");
    }

    #[test]
    fn one_object_prints_as_key_value_lines() {
        let text =
            OutputFormat::Table.render(&json!({"id": "t1", "args": {"a": 1}, "error": null}));
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines.contains(&r#"args   {"a":1}"#), "{text}");
    }

    #[test]
    fn json_is_the_default_off_a_terminal_and_table_on_one() {
        assert_eq!(OutputFormat::or_default(None, false), OutputFormat::Json);
        assert_eq!(OutputFormat::or_default(None, true), OutputFormat::Table);
        let chosen = Some(OutputFormat::Json);
        assert_eq!(OutputFormat::or_default(chosen, true), OutputFormat::Json);
        assert_eq!(
            OutputFormat::Json.render(&json!({"a": 1})),
            "{\n  \"a\": 1\n}"
        );
    }
}
