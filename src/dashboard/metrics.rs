//! Throughput and latency percentiles from the node's own metrics: the Prometheus text of
//! its recorder, read once per snapshot, summed over labels, and compared with the
//! reading of about a minute before.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use maud::{html, Markup};

pub(crate) use super::chart::Ago;
use crate::telemetry::names;

/// The window rates and percentiles are taken over.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// A cumulative histogram: upper bounds (`le`, ascending, `+Inf` last) and counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Buckets(pub Vec<(f64, f64)>);

impl Buckets {
    /// Adds a `le` bucket's count (summing series with other labels).
    fn add(&mut self, le: f64, n: f64) {
        match self.0.iter_mut().find(|(b, _)| *b == le) {
            Some((_, c)) => *c += n,
            None => {
                self.0.push((le, n));
                self.0.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }

    /// The observations since `before`, bucket by bucket.
    fn since(&self, before: &Buckets) -> Buckets {
        let old = |le: f64| {
            before
                .0
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, n)| *n)
        };
        Buckets(self.0.iter().map(|(le, n)| (*le, n - old(*le))).collect())
    }

    /// All observations.
    pub fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |(_, n)| *n)
    }

    /// The `q` quantile, interpolated inside its bucket; `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut prev = (0.0, 0.0);
        for &(le, n) in &self.0 {
            if n >= rank {
                if le.is_infinite() {
                    return Some(prev.0);
                }
                let inside = (rank - prev.1) / (n - prev.1).max(f64::MIN_POSITIVE);
                return Some(prev.0 + (le - prev.0) * inside);
            }
            prev = (le, n);
        }
        Some(prev.0)
    }
}

/// One reading of the counters and histograms, summed over their labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Totals {
    /// Submitted, succeeded, failed, retried, cancelled.
    pub counters: [f64; 5],
    /// From ready to start (its count is the attempts started).
    pub submit_to_start: Buckets,
    /// How long attempts ran.
    pub attempt: Buckets,
}

const COUNTERS: [&str; 5] = [
    names::SUBMITTED,
    names::SUCCEEDED,
    names::FAILED,
    names::RETRIED,
    names::CANCELLED,
];

/// Reads the Prometheus text format: `name{labels} value` lines.
pub(crate) fn parse(text: &str) -> Totals {
    let mut t = Totals::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        if let Some(i) = COUNTERS.iter().position(|c| *c == name) {
            t.counters[i] += value;
            continue;
        }
        let le = || label(labels, "le").and_then(|v| v.replace("+Inf", "inf").parse::<f64>().ok());
        let bucket = |h: &str| name.strip_suffix("_bucket") == Some(h);
        match le() {
            Some(le) if bucket(names::SUBMIT_TO_START) => t.submit_to_start.add(le, value),
            Some(le) if bucket(names::ATTEMPT_DURATION) => t.attempt.add(le, value),
            _ => {}
        }
    }
    t
}

fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels
        .trim_end_matches('}')
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim_matches('"'))
}

/// What the overview shows: per-second rates and percentiles over the window.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rates {
    /// The window actually covered.
    pub over: Duration,
    /// Started, succeeded, failed, retried per second.
    pub per_second: [(&'static str, f64); 4],
    /// (what, p50, p95, p99) in seconds, for submit→start and attempt duration.
    pub latency: [(&'static str, Option<[f64; 3]>); 2],
    /// The rates between each two consecutive readings in the window, oldest first: the
    /// throughput chart.
    pub series: Vec<Sample>,
}

/// The rates between two consecutive readings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    /// How long before the newest reading this one was taken.
    pub ago: Duration,
    /// Started, succeeded, failed, retried per second, as in [`Rates::per_second`].
    pub per_second: [f64; 4],
}

/// The last minute of readings.
#[derive(Debug, Default)]
pub(crate) struct History(VecDeque<(Instant, Totals)>);

impl History {
    /// Adds a reading taken at `now`; the rates since the oldest reading in the window.
    pub fn push(&mut self, now: Instant, t: Totals) -> Option<Rates> {
        while self
            .0
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
        {
            self.0.pop_front();
        }
        let rates = self
            .0
            .front()
            .map(|(at, old)| rates(now.duration_since(*at), old, &t));
        self.0.push_back((now, t));
        rates.map(|r| Rates {
            series: self.series(now),
            ..r
        })
    }

    /// The rates between each two consecutive readings, as of `now`.
    fn series(&self, now: Instant) -> Vec<Sample> {
        let readings: Vec<_> = self.0.iter().collect();
        readings
            .windows(2)
            .map(|w| {
                let r = rates(w[1].0.duration_since(w[0].0), &w[0].1, &w[1].1);
                Sample {
                    ago: now.duration_since(w[1].0),
                    per_second: r.per_second.map(|(_, n)| n),
                }
            })
            .collect()
    }
}

fn rates(over: Duration, old: &Totals, new: &Totals) -> Rates {
    let secs = over.as_secs_f64().max(0.001);
    let d = |i: usize| (new.counters[i] - old.counters[i]).max(0.0) / secs;
    let started = new.submit_to_start.since(&old.submit_to_start);
    let attempt = new.attempt.since(&old.attempt);
    let p = |b: &Buckets| Some([b.quantile(0.5)?, b.quantile(0.95)?, b.quantile(0.99)?]);
    Rates {
        over,
        per_second: [
            ("started", started.count() / secs),
            ("succeeded", d(1)),
            ("failed", d(2)),
            ("retried", d(3)),
        ],
        latency: [
            ("submit → start", p(&started)),
            ("attempt duration", p(&attempt)),
        ],
        series: Vec::new(),
    }
}

fn seconds(s: f64) -> String {
    match s {
        s if s < 1.0 => format!("{:.1} ms", s * 1000.0),
        s => format!("{s:.2} s"),
    }
}

/// The throughput region of the overview: the rates, the chart with its `marks`, the
/// latency percentiles.
pub(crate) fn view(rates: Option<&Rates>, marks: &[Ago<'_>]) -> Markup {
    let Some(r) = rates else {
        return html! {
            p { "Throughput appears after the second reading (one tick)." }
            (super::chart::marks_list(marks))
        };
    };
    html! {
        p.updated { "Over the last " (r.over.as_secs()) " s." }
        (super::chart::throughput(&r.series, marks))
        ul.counts {
            @for (what, n) in r.per_second {
                li { span.rate { span.n { (format!("{n:.1}")) } " " (what) " / s" } }
            }
        }
        table.latency {
            thead { tr { th scope="col" { "latency" } th.num scope="col" { "p50" } th.num scope="col" { "p95" } th.num scope="col" { "p99" } } }
            tbody {
                @for (what, p) in &r.latency {
                    tr {
                        td { (what) }
                        @match p {
                            Some(p) => { @for v in p { td.num { (seconds(*v)) } } },
                            None => td colspan="3" { "no attempt in the window" },
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE taskmesh_tasks_succeeded_total counter
taskmesh_tasks_succeeded_total{queue="a",kind="x"} 3
taskmesh_tasks_succeeded_total{queue="b",kind="y"} 4
taskmesh_submit_to_start_seconds_bucket{queue="a",le="0.001"} 1
taskmesh_submit_to_start_seconds_bucket{queue="a",le="0.01"} 3
taskmesh_submit_to_start_seconds_bucket{queue="a",le="+Inf"} 4
taskmesh_submit_to_start_seconds_bucket{queue="b",le="0.001"} 1
taskmesh_submit_to_start_seconds_bucket{queue="b",le="0.01"} 1
taskmesh_submit_to_start_seconds_bucket{queue="b",le="+Inf"} 2
taskmesh_submit_to_start_seconds_sum{queue="a"} 0.5
"#;

    #[test]
    fn counters_and_buckets_are_summed_over_their_labels() {
        let t = parse(TEXT);
        assert_eq!(t.counters[1], 7.0);
        let b = &t.submit_to_start.0;
        assert_eq!(b, &[(0.001, 2.0), (0.01, 4.0), (f64::INFINITY, 6.0)]);
        let p50 = t.submit_to_start.quantile(0.5).unwrap();
        assert!(
            (p50 - 0.0055).abs() < 1e-12,
            "rank 3 of 6, half-way in 1..10 ms: {p50}"
        );
        assert_eq!(
            t.submit_to_start.quantile(0.99),
            Some(0.01),
            "the +Inf bucket answers its floor"
        );
        assert_eq!(Buckets::default().quantile(0.5), None);
    }

    #[test]
    fn rates_come_from_the_oldest_reading_in_the_window() {
        let mut h = History::default();
        let t0 = Instant::now();
        assert_eq!(h.push(t0, parse("")), None, "one reading has no rate");
        let r = h.push(t0 + Duration::from_secs(2), parse(TEXT)).unwrap();
        assert_eq!(r.per_second[0], ("started", 3.0));
        assert_eq!(r.per_second[1], ("succeeded", 3.5));
        assert!(r.latency[0].1.is_some() && r.latency[1].1.is_none());
        let later = h
            .push(t0 + WINDOW + Duration::from_secs(1), parse(TEXT))
            .unwrap();
        assert_eq!(
            later.per_second[1].1, 0.0,
            "the empty reading left the window"
        );
        assert_eq!(r.series.len(), 1, "one sample per two consecutive readings");
        assert_eq!(
            (r.series[0].ago, r.series[0].per_second[1]),
            (Duration::ZERO, 3.5),
            "7 succeeded in the 2 s between the first two readings"
        );
        assert_eq!(later.series.len(), 1, "the first reading left the window");
        assert_eq!(later.series[0].per_second[1], 0.0);
        let html = view(Some(&r), &[]).into_string();
        assert!(
            html.contains("3.5") && html.contains("succeeded / s"),
            "{html}"
        );
    }
}
