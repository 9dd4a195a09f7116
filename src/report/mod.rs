//! `pop3-probe report`: availability, outages and response-time percentiles
//! per monitor over a period, from the metrics the probe published.
//!
//! Two sources give the same [`History`]: the local metrics file that
//! `pop3-probe run --metrics jsonl|emf --metrics-file FILE` appends to
//! ([`history`]), and CloudWatch `GetMetricData` ([`cloudwatch`]). From it
//! [`build`] computes a [`Report`], which [`render`] prints as a table or
//! CSV and [`html`] as one self-contained page with SVG charts.
//!
//! Definitions (also in docs/report.md):
//! - availability % = probes up or degraded / all probes, over the period;
//! - a sample counts as down when most of its probes were down (with one
//!   probe per sample, as the local history and CloudWatch at one probe per
//!   period give, that is exactly "the probe was down");
//! - an outage is a maximal run of consecutive down samples. It starts at
//!   the first down sample and ends at the next sample that is up (the
//!   first time the monitor was seen up again); one still open at the last
//!   sample is *ongoing* and counted up to the report's end;
//! - percentiles are nearest-rank (see [`percentile`]): never interpolated,
//!   always a value that was measured.

use std::collections::BTreeMap;

use crate::clock::rfc3339_ms;

#[cfg(feature = "aws")]
pub mod cloudwatch;
pub mod history;
pub mod html;
pub mod render;

/// The per-monitor metrics a report reads (named in `crate::metrics`).
pub use crate::metrics::{AVAILABILITY, RESPONSE_TIME};

/// One point of a series: the mean of `count` probe values at `t_ms`.
/// The local history has one probe per sample; CloudWatch gives one sample
/// per period (the period's Average and SampleCount).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub t_ms: i64,
    pub value: f64,
    pub count: f64,
}

impl Sample {
    pub fn one(t_ms: i64, value: f64) -> Sample {
        Sample {
            t_ms,
            value,
            count: 1.0,
        }
    }

    fn is_down(&self) -> bool {
        self.value < 0.5
    }
}

/// One monitor's data: `Availability` (1 up/degraded, 0 down) and
/// `ResponseTime` in milliseconds (only when the server answered).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub availability: Vec<Sample>,
    pub response_ms: Vec<Sample>,
}

impl Series {
    fn sort(&mut self) {
        self.availability.sort_by_key(|s| s.t_ms);
        self.response_ms.sort_by_key(|s| s.t_ms);
    }

    fn is_empty(&self) -> bool {
        self.availability.is_empty() && self.response_ms.is_empty()
    }
}

/// What to read: one namespace, a time range, some monitors (none: all).
#[derive(Debug, Clone)]
pub struct Query {
    pub namespace: String,
    /// Inclusive, milliseconds since the epoch.
    pub from_ms: i64,
    /// Exclusive.
    pub to_ms: i64,
    pub monitors: Vec<String>,
}

impl Query {
    pub fn wants(&self, monitor: &str) -> bool {
        self.monitors.is_empty() || self.monitors.iter().any(|m| m == monitor)
    }

    pub fn covers(&self, t_ms: i64) -> bool {
        (self.from_ms..self.to_ms).contains(&t_ms)
    }

    /// The query in words, for "no data" errors.
    pub fn describe(&self) -> String {
        let monitors = if self.monitors.is_empty() {
            "any monitor".to_string()
        } else {
            format!("monitor(s) {}", self.monitors.join(", "))
        };
        format!(
            "{monitors} in namespace {} from {} to {}",
            self.namespace,
            rfc3339_ms(self.from_ms),
            rfc3339_ms(self.to_ms)
        )
    }
}

/// What a source returned for a [`Query`].
#[derive(Debug, Clone, Default)]
pub struct History {
    pub monitors: BTreeMap<String, Series>,
    /// Where the data came from, in words (shown in the report).
    pub source: String,
    /// Things the reader of the report should know (skipped lines, the
    /// CloudWatch period), shown with it.
    pub notes: Vec<String>,
}

/// Why no report could be made. The message names the input at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {message}")]
pub struct ReportError {
    pub what: String,
    pub message: String,
}

impl ReportError {
    pub fn new(what: impl Into<String>, message: impl Into<String>) -> Self {
        ReportError {
            what: what.into(),
            message: message.into(),
        }
    }
}

/// A maximal run of consecutive down samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    /// The first down sample.
    pub start_ms: i64,
    /// The first up sample after it; for an ongoing outage, the report's end.
    pub end_ms: i64,
    /// Probes in the outage's samples.
    pub probes: f64,
    /// Still down at the last sample of the period.
    pub ongoing: bool,
}

impl Outage {
    pub fn seconds(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64 / 1000.0
    }
}

/// Response-time percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// One monitor's figures, and its series for the charts.
#[derive(Debug, Clone)]
pub struct MonitorReport {
    pub monitor: String,
    /// Probes with an `Availability` value.
    pub probes: f64,
    /// `None` without any `Availability` value in the period.
    pub availability_pct: Option<f64>,
    pub outages: Vec<Outage>,
    /// Probes with a `ResponseTime` value.
    pub response_samples: f64,
    pub percentiles: Option<Percentiles>,
    pub series: Series,
}

impl MonitorReport {
    pub fn downtime_seconds(&self) -> f64 {
        add(self.outages.iter().map(Outage::seconds))
    }

    pub fn longest_outage_seconds(&self) -> Option<f64> {
        self.outages.iter().map(Outage::seconds).reduce(f64::max)
    }

    pub fn has_data(&self) -> bool {
        !self.series.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub namespace: String,
    pub source: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub monitors: Vec<MonitorReport>,
    pub notes: Vec<String>,
}

/// A sum that is 0, not -0 (what `Iterator::sum` gives for nothing), when
/// there is nothing to add: "-0 probes" is no way to say none.
fn add(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, |a, b| a + b)
}

fn probes(samples: &[Sample]) -> f64 {
    add(samples.iter().map(|s| s.count))
}

/// Availability in percent, weighted by probe count.
pub fn availability_pct(samples: &[Sample]) -> Option<f64> {
    let probes = probes(samples);
    if probes <= 0.0 {
        return None;
    }
    let up = add(samples.iter().map(|s| s.value * s.count));
    Some(100.0 * up / probes)
}

/// Outages in samples sorted by time; one still open at the last sample is
/// ongoing and ends at `end_ms` (the report's end).
pub fn outages(samples: &[Sample], end_ms: i64) -> Vec<Outage> {
    let mut out = Vec::new();
    let mut open: Option<Outage> = None;
    for s in samples {
        match (&mut open, s.is_down()) {
            (Some(o), true) => o.probes += s.count,
            (None, true) => {
                open = Some(Outage {
                    start_ms: s.t_ms,
                    end_ms: s.t_ms,
                    probes: s.count,
                    ongoing: false,
                })
            }
            (Some(_), false) => {
                if let Some(mut o) = open.take() {
                    o.end_ms = s.t_ms;
                    out.push(o);
                }
            }
            (None, false) => {}
        }
    }
    if let Some(mut o) = open {
        o.end_ms = end_ms.max(o.start_ms);
        o.ongoing = true;
        out.push(o);
    }
    out
}

/// The nearest-rank percentile `p` (0 < p <= 100), weighted by count: the
/// smallest value such that the samples at or below it carry at least p%
/// of all probes. With one probe per sample this is the textbook nearest
/// rank, the ⌈p/100 × n⌉-th smallest value; it never interpolates, so every
/// percentile is a value that was measured. From CloudWatch with several
/// probes in one period it is taken over period averages: an approximation.
pub fn percentile(samples: &[Sample], p: f64) -> Option<f64> {
    let mut sorted: Vec<&Sample> = samples.iter().filter(|s| s.count > 0.0).collect();
    let total = add(sorted.iter().map(|s| s.count));
    if sorted.is_empty() || total <= 0.0 {
        return None;
    }
    sorted.sort_by(|a, b| a.value.total_cmp(&b.value));
    // p × total / 100 is exact for whole p and whole counts, so
    // ⌈rank⌉ lands on the right sample without a float tolerance.
    let rank = p * total / 100.0;
    let mut seen = 0.0;
    for s in &sorted {
        seen += s.count;
        if seen >= rank {
            return Some(s.value);
        }
    }
    sorted.last().map(|s| s.value)
}

fn percentiles(samples: &[Sample]) -> Option<Percentiles> {
    Some(Percentiles {
        p50: percentile(samples, 50.0)?,
        p95: percentile(samples, 95.0)?,
        p99: percentile(samples, 99.0)?,
    })
}

fn monitor_report(monitor: String, mut series: Series, end_ms: i64) -> MonitorReport {
    series.sort();
    MonitorReport {
        probes: probes(&series.availability),
        availability_pct: availability_pct(&series.availability),
        outages: outages(&series.availability, end_ms),
        response_samples: probes(&series.response_ms),
        percentiles: percentiles(&series.response_ms),
        monitor,
        series,
    }
}

/// The report for `query` from what a source read. Fails when no monitor
/// asked for has any data in the range; a monitor asked for by name that
/// has none is kept (a row saying so) with a note.
pub fn build(query: &Query, history: History) -> Result<Report, ReportError> {
    let History {
        mut monitors,
        source,
        mut notes,
    } = history;
    monitors.retain(|_, s| !s.is_empty());
    if monitors.is_empty() {
        return Err(ReportError::new(
            "no data",
            format!("nothing for {} in {source}", query.describe()),
        ));
    }
    let mut names: Vec<String> = if query.monitors.is_empty() {
        monitors.keys().cloned().collect()
    } else {
        let mut names = Vec::new();
        for m in &query.monitors {
            if !names.contains(m) {
                names.push(m.clone());
            }
        }
        names
    };
    let missing: Vec<&str> = names
        .iter()
        .filter(|m| !monitors.contains_key(*m))
        .map(String::as_str)
        .collect();
    if missing.len() == names.len() {
        let found: Vec<&str> = monitors.keys().map(String::as_str).collect();
        return Err(ReportError::new(
            "no data",
            format!(
                "nothing for {} in {source}; monitors with data: {}",
                query.describe(),
                found.join(", ")
            ),
        ));
    }
    if !missing.is_empty() {
        notes.push(format!("no data for {}", missing.join(", ")));
    }
    let reports = names
        .drain(..)
        .map(|name| {
            let series = monitors.remove(&name).unwrap_or_default();
            monitor_report(name, series, query.to_ms)
        })
        .collect();
    Ok(Report {
        namespace: query.namespace.clone(),
        source,
        from_ms: query.from_ms,
        to_ms: query.to_ms,
        monitors: reports,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample::one(i as i64 * 60_000, *v))
            .collect()
    }

    #[test]
    fn nearest_rank_percentiles_of_one_to_n() {
        // 1..=92 shuffled: the 46th, 88th (⌈87.4⌉) and 92nd (⌈91.08⌉) values.
        let mut v: Vec<f64> = (1..=92).map(f64::from).collect();
        v.reverse();
        v.swap(3, 70);
        let s = ones(&v);
        assert_eq!(percentile(&s, 50.0), Some(46.0));
        assert_eq!(percentile(&s, 95.0), Some(88.0));
        assert_eq!(percentile(&s, 99.0), Some(92.0));
        assert_eq!(percentile(&s, 100.0), Some(92.0));
        // 1..=100: ranks 50, 95, 99 exactly (no float drift past them).
        let s = ones(&(1..=100).map(f64::from).collect::<Vec<_>>());
        assert_eq!(percentile(&s, 50.0), Some(50.0));
        assert_eq!(percentile(&s, 95.0), Some(95.0));
        assert_eq!(percentile(&s, 99.0), Some(99.0));
        assert_eq!(percentile(&ones(&[7.5]), 99.0), Some(7.5));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn percentiles_weigh_period_averages_by_their_probe_count() {
        // 10 ms over 9 probes and 500 ms over 1: p50 is 10, p95 is 500.
        let s = [
            Sample {
                t_ms: 0,
                value: 10.0,
                count: 9.0,
            },
            Sample {
                t_ms: 60_000,
                value: 500.0,
                count: 1.0,
            },
        ];
        assert_eq!(percentile(&s, 50.0), Some(10.0));
        assert_eq!(percentile(&s, 90.0), Some(10.0));
        assert_eq!(percentile(&s, 95.0), Some(500.0));
    }

    #[test]
    fn availability_weighs_by_probe_count() {
        assert_eq!(availability_pct(&ones(&[1.0, 1.0, 0.0, 1.0])), Some(75.0));
        let s = [
            Sample {
                t_ms: 0,
                value: 0.5,
                count: 4.0,
            },
            Sample {
                t_ms: 60_000,
                value: 1.0,
                count: 1.0,
            },
        ];
        assert_eq!(availability_pct(&s), Some(60.0));
        assert_eq!(availability_pct(&[]), None);
    }

    #[test]
    fn outages_are_maximal_runs_of_down_samples() {
        let s = ones(&[1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        let o = outages(&s, 10 * 60_000);
        assert_eq!(o.len(), 3);
        assert_eq!(
            (o[0].start_ms, o[0].end_ms, o[0].probes),
            (60_000, 180_000, 2.0)
        );
        assert_eq!(o[0].seconds(), 120.0);
        assert!(!o[0].ongoing);
        assert_eq!((o[1].start_ms, o[1].end_ms), (240_000, 300_000));
        assert!(o[2].ongoing);
        assert_eq!(
            (o[2].start_ms, o[2].end_ms, o[2].probes),
            (420_000, 600_000, 2.0)
        );
        assert!(outages(&ones(&[1.0, 1.0]), 0).is_empty());
        // A period that was mostly up is not an outage; mostly down is.
        let mixed = [
            Sample {
                t_ms: 0,
                value: 0.75,
                count: 4.0,
            },
            Sample {
                t_ms: 60_000,
                value: 0.25,
                count: 4.0,
            },
        ];
        let o = outages(&mixed, 120_000);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].start_ms, 60_000);
    }

    fn history(monitors: &[(&str, Vec<Sample>)]) -> History {
        History {
            monitors: monitors
                .iter()
                .map(|(m, s)| {
                    (
                        m.to_string(),
                        Series {
                            availability: s.clone(),
                            response_ms: Vec::new(),
                        },
                    )
                })
                .collect(),
            source: "test".into(),
            notes: Vec::new(),
        }
    }

    fn query(monitors: &[&str]) -> Query {
        Query {
            namespace: "Pop3Probe".into(),
            from_ms: 0,
            to_ms: 3_600_000,
            monitors: monitors.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn build_keeps_named_monitors_in_order_and_notes_the_missing() {
        let h = history(&[("b", ones(&[1.0])), ("a", ones(&[0.0, 1.0]))]);
        let all = build(&query(&[]), h.clone()).unwrap();
        let names: Vec<&str> = all.monitors.iter().map(|m| m.monitor.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(all.monitors[0].availability_pct, Some(50.0));

        let some = build(&query(&["b", "ghost", "b"]), h.clone()).unwrap();
        let names: Vec<&str> = some.monitors.iter().map(|m| m.monitor.as_str()).collect();
        assert_eq!(names, ["b", "ghost"]);
        assert!(!some.monitors[1].has_data());
        assert_eq!(some.notes, ["no data for ghost"]);

        let e = build(&query(&["ghost"]), h).unwrap_err();
        assert_eq!(e.what, "no data");
        assert!(e.message.contains("monitor(s) ghost"), "{e}");
        assert!(e.message.contains("monitors with data: a, b"), "{e}");
        let e = build(&query(&[]), history(&[])).unwrap_err();
        assert!(e.message.contains("namespace Pop3Probe"), "{e}");
    }
}
