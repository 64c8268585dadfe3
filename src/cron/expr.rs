//! Cron expressions: parsing, aliases, and errors that name the field.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::field::UNITS;

/// Aliases and what they stand for.
const ALIASES: [(&str, &str); 8] = [
    ("@yearly", "0 0 0 1 1 *"),
    ("@annually", "0 0 0 1 1 *"),
    ("@monthly", "0 0 0 1 * *"),
    ("@weekly", "0 0 0 * * Sun"),
    ("@daily", "0 0 0 * * *"),
    ("@midnight", "0 0 0 * * *"),
    ("@hourly", "0 0 * * * *"),
    ("@minutely", "0 * * * * *"),
];

const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Why an expression or a time zone was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not 6 or 7 fields.
    #[error("expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), got {got}{hint}")]
    FieldCount {
        /// How many fields there were.
        got: usize,
        /// A hint for the usual 5-field mistake.
        hint: &'static str,
    },
    /// One field is wrong.
    #[error("invalid {field} field {value:?} at column {column}: {reason}")]
    Field {
        /// The field's name, e.g. "hour".
        field: &'static str,
        /// What was written.
        value: String,
        /// Where the field starts in the expression as written, from 1.
        column: usize,
        /// Why it is wrong.
        reason: String,
    },
    /// An unknown `@alias`.
    #[error("unknown alias {0:?}: expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @minutely")]
    Alias(String),
    /// The fields are each valid but the whole is not.
    #[error("invalid expression {expr:?}: {reason}")]
    Expression {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
    /// The expression is valid but has no slot: no date matches (February 30), or none
    /// is left (a year field in the past).
    #[error("expression {expr:?} never fires: {reason}")]
    NeverFires {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
    /// An unknown time zone.
    #[error("unknown time zone {0:?}: expected an IANA name such as \"Europe/Berlin\" or \"UTC\"")]
    Zone(String),
}

/// A parsed cron expression with seconds: `second minute hour day-of-month month
/// day-of-week [year]`, or an alias such as `@daily`.
///
/// Day-of-week numbers follow Unix cron: 0 and 7 are Sunday, 1 is Monday; names (`Mon`,
/// `Mon-Fri`) work too.
///
/// ```
/// use taskmesh::cron::CronExpr;
/// let every_weekday_9am: CronExpr = "0 0 9 * * 1-5".parse().unwrap();
/// let err = "0 0 25 * * *".parse::<CronExpr>().unwrap_err();
/// assert!(err.to_string().starts_with("invalid hour field \"25\""));
/// ```
#[derive(Clone, Debug)]
pub struct CronExpr {
    source: String,
    pub(super) schedule: cron::Schedule,
}

impl CronExpr {
    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for CronExpr {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, CronError> {
        let source = text.trim().to_string();
        let expanded = expand_alias(&source)?;
        let typed = if source.starts_with('@') {
            &expanded
        } else {
            text
        };
        let fields = columns(typed);
        check_count(fields.len())?;
        for (i, (column, value)) in fields.iter().enumerate() {
            let bad = |reason| field_error(i, value, *column, reason);
            UNITS[i].check(value).map_err(bad)?;
        }
        let mut values: Vec<String> = fields.iter().map(|(_, v)| v.to_string()).collect();
        values[5] = unix_days(&values[5], fields[5].0)?;
        for (i, value) in values.iter().enumerate() {
            check_field(i, value, fields[i].0)?;
        }
        let schedule =
            cron::Schedule::from_str(&values.join(" ")).map_err(|e| CronError::Expression {
                expr: source.clone(),
                reason: clean(&e.to_string()),
            })?;
        let expr = Self { source, schedule };
        expr.check_some_date_matches()?;
        Ok(expr)
    }
}

impl CronExpr {
    /// Refuses an expression no date matches (February 30, or April 31 every year).
    fn check_some_date_matches(&self) -> Result<(), CronError> {
        if self
            .schedule
            .after(&DateTime::<Utc>::UNIX_EPOCH)
            .next()
            .is_some()
        {
            return Ok(());
        }
        let reason = if cron::TimeUnitSpec::is_all(self.schedule.years()) {
            "no date matches its day-of-month, month and day-of-week fields (e.g. February 30)"
        } else {
            "no date in the years of its year field matches its day-of-month, month and day-of-week fields"
        };
        Err(self.never(reason.to_string()))
    }

    /// Refuses an expression with no slot after `now` (a year field in the past).
    pub fn check_fires_after(&self, now: DateTime<Utc>) -> Result<(), CronError> {
        if self.schedule.after(&now).next().is_some() {
            return Ok(());
        }
        let last = self.schedule.after(&now).next_back();
        let last = last.map_or("none".into(), |t| t.to_rfc3339());
        Err(self.never(format!(
            "its last slot ({last}) is not after now ({}); check the year field",
            now.to_rfc3339()
        )))
    }

    fn never(&self, reason: String) -> CronError {
        CronError::NeverFires {
            expr: self.source.clone(),
            reason,
        }
    }
}

/// The whitespace-separated fields of `text` with the column (from 1) each starts at.
fn columns(text: &str) -> Vec<(usize, &str)> {
    let mut out = vec![];
    let mut start = None;
    for (col, (i, c)) in text.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some((col + 1, i)),
            (true, Some((column, from))) => {
                out.push((column, &text[from..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some((column, from)) = start {
        out.push((column, &text[from..]));
    }
    out
}

fn field_error(i: usize, value: &str, column: usize, reason: String) -> CronError {
    CronError::Field {
        field: UNITS[i].name,
        value: value.to_string(),
        column,
        reason,
    }
}

impl Serialize for CronExpr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn expand_alias(source: &str) -> Result<String, CronError> {
    if !source.starts_with('@') {
        return Ok(source.to_string());
    }
    ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(source))
        .map(|(_, full)| full.to_string())
        .ok_or_else(|| CronError::Alias(source.to_string()))
}

fn check_count(got: usize) -> Result<(), CronError> {
    if got == 6 || got == 7 {
        return Ok(());
    }
    let hint = if got == 5 {
        "; add a seconds field first, e.g. \"0 */5 * * * *\" for every 5 minutes"
    } else {
        ""
    };
    Err(CronError::FieldCount { got, hint })
}

/// Parses field `i` alone (all other fields `*`), so an error the parser finds names the
/// field.
fn check_field(i: usize, value: &str, column: usize) -> Result<(), CronError> {
    let mut probe = vec!["*"; 6];
    if i == 6 {
        probe.push(value);
    } else {
        probe[i] = value;
    }
    if i == 3 || i == 5 {
        let other = if i == 3 { 5 } else { 3 };
        probe[other] = "?";
        if value == "?" {
            probe[other] = "*";
        }
    }
    cron::Schedule::from_str(&probe.join(" "))
        .map(drop)
        .map_err(|e| field_error(i, value, column, clean(&e.to_string())))
}

/// The parser's message without the expression it parsed and its caret (that expression
/// is a rewritten one, not the one written).
fn clean(reason: &str) -> String {
    let lines = reason.lines().map(str::trim);
    let text: Vec<&str> = lines
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '^' || c.is_whitespace()))
        .collect();
    let text = text.last().copied().unwrap_or("not a valid expression");
    text.trim_start_matches("Invalid expression: ").to_string()
}

/// Rewrites Unix day-of-week numbers (0-7, Sunday = 0 or 7) as day names, which the
/// parser reads unambiguously. Names, `*`, `?` and steps of `*` pass through.
fn unix_days(field: &str, column: usize) -> Result<String, CronError> {
    if !field.chars().any(|c| c.is_ascii_digit()) || field.starts_with('*') {
        return Ok(field.to_string());
    }
    let bad = |reason: String| field_error(5, field, column, reason);
    let mut days: Vec<&str> = vec![];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .map_err(|_| bad(format!("expected a step number, got {s:?}")))?,
            ),
            None => (item, 1),
        };
        let (a, b) = match range.split_once('-') {
            Some((a, b)) => (day(a).map_err(&bad)?, day(b).map_err(&bad)?),
            None => {
                let d = day(range).map_err(&bad)?;
                (d, if step > 1 { 7 } else { d })
            }
        };
        if a > b || step == 0 {
            return Err(bad(format!(
                "expected an increasing range and a step above 0, got {item:?}"
            )));
        }
        days.extend((a..=b).step_by(step).map(|d| DAY_NAMES[d % 7]));
    }
    days.dedup();
    Ok(days.join(","))
}

/// A Unix day number (0-7) or a day name, as 0-7.
fn day(text: &str) -> Result<usize, String> {
    if let Ok(n) = text.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("expected a day 0-7 (0 and 7 are Sunday), got {n}"))
        };
    }
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(text))
        .ok_or_else(|| format!("expected a day 0-7 or a name such as Mon, got {text:?}"))
}
