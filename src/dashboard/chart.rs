//! The overview's throughput chart: an SVG drawn on the server (no script, no inline
//! style: colours come from the stylesheet's classes), one line per rate over the last
//! minute, and a vertical mark for each breaker trip, queue pause or resume and node join,
//! also listed in words below it.

use std::time::{Duration, SystemTime};

use maud::{html, Markup};

use super::format;
use super::marks::Mark;
use super::metrics::{Sample, WINDOW};

/// The drawing's size (user units) and its left margin for the scale.
const W: f64 = 600.0;
const H: f64 = 120.0;
const LEFT: f64 = 40.0;

/// The series, in [`Sample::per_second`] order.
const SERIES: [&str; 4] = ["started", "succeeded", "failed", "retried"];

/// A mark and how long before the snapshot it was seen.
#[derive(Clone, Debug)]
pub(crate) struct Ago<'a> {
    /// The mark.
    pub mark: &'a Mark,
    /// How long before the snapshot.
    pub ago: Duration,
}

impl<'a> Ago<'a> {
    /// The marks of the window before `at`.
    pub fn window(marks: &'a [Mark], at: SystemTime) -> Vec<Self> {
        marks
            .iter()
            .filter_map(|mark| {
                let ago = at.duration_since(mark.at).unwrap_or(Duration::ZERO);
                (ago <= WINDOW).then_some(Self { mark, ago })
            })
            .collect()
    }
}

/// The x of a time `ago` before the newest reading.
fn x(ago: Duration) -> f64 {
    let span = W - LEFT;
    W - span * (ago.as_secs_f64() / WINDOW.as_secs_f64()).min(1.0)
}

/// The chart and its legend, then the marks in words.
pub(crate) fn throughput(series: &[Sample], marks: &[Ago<'_>]) -> Markup {
    let top = series
        .iter()
        .flat_map(|s| s.per_second)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let y = |v: f64| H - (v / top) * (H - 10.0);
    let label = format!(
        "Tasks per second over the last {} s (highest {top:.1}/s), {} mark(s)",
        WINDOW.as_secs(),
        marks.len()
    );
    html! {
        figure.chart {
            svg.chart viewBox={ "0 0 " (W) " " (H + 4.0) } role="img" aria-label=(label) {
                line.axis x1=(LEFT) y1=(H) x2=(W) y2=(H) {}
                text.scale x="0" y="12" { (format!("{top:.0}/s")) }
                text.scale x="0" y=(H) { "0" }
                @for (i, name) in SERIES.iter().enumerate() {
                    @let points: Vec<String> = series.iter()
                        .map(|s| format!("{:.1},{:.1}", x(s.ago), y(s.per_second[i]))).collect();
                    polyline class={ "line s-" (name) } points=(points.join(" ")) {}
                }
                @for m in marks {
                    line class={ "mark mark-" (m.mark.kind.class()) } x1=(format!("{:.1}", x(m.ago)))
                        x2=(format!("{:.1}", x(m.ago))) y1="0" y2=(H) {
                        title { (m.mark.text()) }
                    }
                }
            }
            figcaption {
                ul.legend {
                    @for name in SERIES { li { span class={ "key s-" (name) } {} " " (name) } }
                }
            }
        }
        (marks_list(marks))
    }
}

/// The marks of the window in words, newest first.
pub(crate) fn marks_list(marks: &[Ago<'_>]) -> Markup {
    html! {
        @if !marks.is_empty() {
            ol.marks aria-label="Marks on the chart" {
                @for m in marks.iter().rev() {
                    li class={ "mark-" (m.mark.kind.class()) } {
                        (format::when(m.mark.at)) " " (m.mark.text())
                    }
                }
            }
        }
    }
}
