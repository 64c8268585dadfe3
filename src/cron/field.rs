//! Checks one field of an expression as typed, so that an error names the field, its
//! allowed values, and what was wrong, before the parser sees a rewritten expression.

/// What one field of an expression allows.
pub(super) struct Unit {
    /// The field's name, e.g. "hour".
    pub name: &'static str,
    /// The smallest value.
    min: u32,
    /// The largest value.
    max: u32,
    /// Names of values, the first for `min` (empty if the field takes only numbers).
    names: &'static [&'static str],
    /// True if `?` is allowed (day-of-month and day-of-week).
    any: bool,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

const fn unit(name: &'static str, min: u32, max: u32) -> Unit {
    Unit {
        name,
        min,
        max,
        names: &[],
        any: false,
    }
}

/// The fields of an expression, in order.
pub(super) const UNITS: [Unit; 7] = [
    unit("second", 0, 59),
    unit("minute", 0, 59),
    unit("hour", 0, 23),
    Unit {
        any: true,
        ..unit("day-of-month", 1, 31)
    },
    Unit {
        names: &MONTHS,
        ..unit("month", 1, 12)
    },
    Unit {
        names: &DAYS,
        any: true,
        ..unit("day-of-week", 0, 7)
    },
    unit("year", 1970, 2100),
];

impl Unit {
    /// Checks a whole field: a comma-separated list of `*`, `?`, values, ranges, each
    /// with an optional `/step`. Returns why it is wrong.
    pub fn check(&self, field: &str) -> Result<(), String> {
        field.split(',').try_for_each(|item| self.item(item))
    }

    fn item(&self, item: &str) -> Result<(), String> {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            self.step(step)?;
        }
        match base {
            "" if item.is_empty() => Err("expected a value, got an empty list item".into()),
            "" => Err(format!("expected a value or * before /, got {item:?}")),
            "*" => Ok(()),
            "?" if self.any && step.is_none() => Ok(()),
            "?" => Err(format!("expected a value, got {item:?}: ? stands alone and only in day-of-month or day-of-week")),
            _ => self.range(base),
        }
    }

    fn step(&self, step: &str) -> Result<(), String> {
        match step.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(()),
            _ => Err(format!("expected a step of 1 or more, got {step:?}")),
        }
    }

    fn range(&self, base: &str) -> Result<(), String> {
        let Some((a, b)) = base.split_once('-') else {
            return self.value(base).map(drop);
        };
        let (from, to) = (self.value(a)?, self.value(b)?);
        if from > to {
            return Err(format!("expected a range from low to high, got {base:?}"));
        }
        Ok(())
    }

    /// A value as a number in `min..=max`, by number or name.
    fn value(&self, text: &str) -> Result<u32, String> {
        let range = format!("{}-{}", self.min, self.max);
        if let Ok(n) = text.parse::<u32>() {
            return match (self.min..=self.max).contains(&n) {
                true => Ok(n),
                false => Err(format!("expected a value in {range}, got {n}")),
            };
        }
        let named = self
            .names
            .iter()
            .position(|n| text.eq_ignore_ascii_case(n) || text.eq_ignore_ascii_case(full_name(n)));
        match (named, self.names.first()) {
            (Some(i), _) => Ok(self.min + i as u32),
            (None, Some(first)) => Err(format!(
                "expected a value in {range} or a name such as {first}, got {text:?}"
            )),
            (None, None) => Err(format!("expected a value in {range}, got {text:?}")),
        }
    }
}

/// The full English name of a month or a day, from its abbreviation.
fn full_name(short: &str) -> &'static str {
    const FULL: [&str; 19] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    FULL.iter()
        .find(|f| f.starts_with(short))
        .copied()
        .unwrap_or("")
}
