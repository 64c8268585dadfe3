//! Cron expressions: parsing, aliases, and errors that name the field.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The fields of an expression, in order.
const FIELDS: [&str; 7] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
];

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
    #[error("invalid {field} field {value:?}: {reason}")]
    Field {
        /// The field's name, e.g. "hour".
        field: &'static str,
        /// What was written.
        value: String,
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
        let mut fields: Vec<String> = expanded.split_whitespace().map(str::to_string).collect();
        check_count(fields.len())?;
        fields[5] = unix_days(&fields[5])?;
        for (i, value) in fields.iter().enumerate() {
            check_field(i, value)?;
        }
        let normalized = fields.join(" ");
        let schedule =
            cron::Schedule::from_str(&normalized).map_err(|e| CronError::Expression {
                expr: source.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self { source, schedule })
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

/// Parses field `i` alone (all other fields `*`), so an error names the field.
fn check_field(i: usize, value: &str) -> Result<(), CronError> {
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
        .map_err(|e| CronError::Field {
            field: FIELDS[i],
            value: value.to_string(),
            reason: clean(&e.to_string()),
        })
}

fn clean(reason: &str) -> String {
    reason
        .trim_start_matches("Invalid expression: ")
        .trim()
        .to_string()
}

/// Rewrites Unix day-of-week numbers (0-7, Sunday = 0 or 7) as day names, which the
/// parser reads unambiguously. Names, `*`, `?` and steps of `*` pass through.
fn unix_days(field: &str) -> Result<String, CronError> {
    if !field.chars().any(|c| c.is_ascii_digit()) || field.starts_with('*') {
        return Ok(field.to_string());
    }
    let bad = |reason: String| CronError::Field {
        field: "day-of-week",
        value: field.to_string(),
        reason,
    };
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
