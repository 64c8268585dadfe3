//! A cron expression in plain words ("at 02:30 every day", "every 5 minutes on Mon
//! through Fri"), for the schedules page. The expression shown beside it stays the
//! reference: an unusual field is spelled out field by field rather than guessed.

/// What each alias stands for (as in `crate::cron`).
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

/// Day-of-week numbers 1–7, Sunday first (as the `cron` crate reads them).
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `expr` (6 or 7 fields, or an alias) in words; `None` when it has another shape.
pub(crate) fn describe(expr: &str) -> Option<String> {
    let expr = expr.trim();
    let expanded = ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(expr))
        .map_or(expr, |(_, e)| e);
    let f: Vec<&str> = expanded.split_whitespace().collect();
    if !(6..=7).contains(&f.len()) {
        return None;
    }
    let mut words = vec![time(f[0], f[1], f[2])];
    let daily = any(f[3]) && any(f[5]);
    if !(daily && words[0].starts_with("every")) {
        words.extend(days(f[3], f[5]));
    }
    if !any(f[4]) {
        words.push(format!("in {}", list(f[4], &MONTHS)));
    }
    if let Some(year) = f.get(6).filter(|y| !any(y)) {
        words.push(format!("in {}", list(year, &[])));
    }
    Some(words.join(" "))
}

fn any(field: &str) -> bool {
    field == "*" || field == "?"
}

fn number(field: &str) -> Option<u32> {
    field.parse().ok()
}

/// `*/n` → n.
fn step(field: &str) -> Option<u32> {
    field.strip_prefix("*/").and_then(number)
}

fn time(sec: &str, min: &str, hour: &str) -> String {
    let at_second = |s: &str| match number(s) {
        Some(0) => String::new(),
        _ => format!(" at second {}", list(s, &[])),
    };
    match (number(sec), number(min), number(hour)) {
        (Some(0), Some(m), Some(h)) => return format!("at {h:02}:{m:02}"),
        (Some(s), Some(m), Some(h)) => return format!("at {h:02}:{m:02}:{s:02}"),
        _ => {}
    }
    match (any(hour), any(min), number(min), step(min)) {
        (true, true, _, _) if any(sec) => "every second".into(),
        (true, true, _, _) if step(sec).is_some() => {
            format!("every {} seconds", step(sec).unwrap_or(1))
        }
        (true, true, _, _) => format!("every minute{}", at_second(sec)),
        (true, false, _, Some(n)) => format!("every {n} minutes{}", at_second(sec)),
        (true, false, Some(m), _) => format!("every hour at minute {m}{}", at_second(sec)),
        _ => format!(
            "at second {}, minute {}, hour {}",
            list(sec, &[]),
            list(min, &[]),
            list(hour, &[])
        ),
    }
}

fn days(dom: &str, dow: &str) -> Vec<String> {
    match (any(dom), any(dow)) {
        (true, true) => vec!["every day".into()],
        (false, true) => vec![format!("on day {} of the month", list(dom, &[]))],
        (true, false) => vec![format!("on {}", list(dow, &DAYS))],
        (false, false) => vec![format!(
            "on day {} of the month and on {}",
            list(dom, &[]),
            list(dow, &DAYS)
        )],
    }
}

/// A field's values in words: lists, ranges, steps; numbers named from `names` (1-based).
fn list(field: &str, names: &[&str]) -> String {
    let name = |v: &str| match number(v) {
        Some(n) if n >= 1 && (n as usize) <= names.len() => names[n as usize - 1].to_string(),
        _ => v.to_string(),
    };
    let part = |p: &str| {
        if let Some(n) = step(p) {
            return format!("every {n}th");
        }
        match p.split_once('-') {
            Some((a, b)) => format!("{} through {}", name(a), name(b)),
            None if any(p) => "every".into(),
            None => name(p),
        }
    };
    field.split(',').map(part).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn common_expressions_read_as_plain_words() {
        let cases = [
            ("0 30 2 * * *", "at 02:30 every day"),
            ("15 30 2 * * *", "at 02:30:15 every day"),
            ("0 * * * * *", "every minute"),
            ("* * * * * *", "every second"),
            ("*/10 * * * * *", "every 10 seconds"),
            ("0 */5 * * * Mon-Fri", "every 5 minutes on Mon through Fri"),
            ("0 0 9 * * 2,4", "at 09:00 on Mon, Wed"),
            ("0 7 * * * *", "every hour at minute 7"),
            ("0 0 0 1 * *", "at 00:00 on day 1 of the month"),
            ("@yearly", "at 00:00 on day 1 of the month in Jan"),
            ("@weekly", "at 00:00 on Sun"),
            (
                "0 0 12 * 6-8 * 2030",
                "at 12:00 every day in Jun through Aug in 2030",
            ),
            (
                "0 0 8-18/2 * * *",
                "at second 0, minute 0, hour 8 through 18/2 every day",
            ),
        ];
        for (expr, words) in cases {
            assert_eq!(describe(expr).as_deref(), Some(words), "{expr}");
        }
    }

    #[test]
    fn an_expression_of_another_shape_has_no_words() {
        for expr in ["", "* * * * *", "@never", "1 2 3 4 5 6 7 8"] {
            assert_eq!(describe(expr), None, "{expr}");
        }
    }
}
