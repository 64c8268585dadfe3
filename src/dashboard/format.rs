//! Small formatting helpers shared by the pages: times, JSON, state badges.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use crate::TaskState;

/// `2026-11-29 04:01:02.345 UTC`.
pub(crate) fn time(t: SystemTime) -> String {
    utc(DateTime::<Utc>::from(t))
}

/// A UTC time to the millisecond.
pub(crate) fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// A machine-readable time for `<time datetime=…>`.
pub(crate) fn iso(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A `<time>` element.
pub(crate) fn when(t: SystemTime) -> Markup {
    html! { time datetime=(iso(t)) { (time(t)) } }
}

/// JSON, indented, in a `<pre>` (escaped like every other value).
pub(crate) fn json(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("<{e}>"));
    html! { pre.json { code { (text) } } }
}

/// A state as a badge; the class carries the colour, the text the meaning.
pub(crate) fn state(s: TaskState) -> Markup {
    html! { span class={ "badge state-" (s.as_str()) } { (s.as_str()) } }
}

/// The state of a query parameter: `None` for absent or empty.
pub(crate) fn parse_state(raw: &str) -> Result<TaskState, String> {
    TaskState::ALL
        .into_iter()
        .find(|s| s.as_str() == raw)
        .ok_or_else(|| {
            let names: Vec<&str> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
            format!("expected one of {}, got {raw:?}", names.join(", "))
        })
}

/// The notice for `?done=<action>` after an action's redirect; unknown values show nothing
/// (the text never comes from the URL).
pub(crate) fn done(q: &std::collections::HashMap<String, String>) -> Option<&'static str> {
    let text = match q.get("done")?.as_str() {
        "cancel" => "Cancel done (or requested from the running attempt).",
        "pause" => "Pause done.",
        "resume" => "Resume done.",
        "restart" => "Restart done.",
        "complete" => "Complete done.",
        "fire" => "Slot fired: this is its task.",
        "fired-before" => {
            "That slot had fired before: this is its task, and nothing new was created."
        }
        "save" => "Schedule saved.",
        "drain" => "Drain started: this node takes no new tasks; running ones finish here.",
        _ => return None,
    };
    Some(text)
}
