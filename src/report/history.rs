//! The local history: the file(s) that `pop3-probe run --metrics jsonl|emf
//! --metrics-file FILE` appends to, run after run. Each line is one value,
//! as a JSON line (`{"namespace","metric","monitor","value","unit",
//! "timestamp_ms"}`) or a CloudWatch EMF document (`local::emf`); the
//! format is told line by line, so a file whose runs switched format reads.
//!
//! A line that is not a metric is skipped and reported (file and line
//! number), unless `strict`: a run killed mid-write leaves a cut line, and
//! the next run appends right after it, so one bad line in the middle of a
//! long history is normal and should not make the report unusable. A file
//! in which no line is a metric is an error (it is not a history).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::{History, Query, ReportError, Sample, AVAILABILITY, RESPONSE_TIME};

/// Bad lines named one by one in the notes; the rest are counted.
const NAMED_BAD_LINES: usize = 5;

/// One value read from a line.
#[derive(Debug, Clone, PartialEq)]
struct Value1 {
    namespace: String,
    metric: String,
    monitor: Option<String>,
    value: f64,
    t_ms: i64,
}

#[derive(Deserialize)]
struct JsonLine {
    namespace: String,
    metric: String,
    #[serde(default)]
    monitor: Option<String>,
    value: f64,
    timestamp_ms: i64,
}

/// The values of one line, or why it is not a metric.
fn parse_line(line: &[u8]) -> Result<Vec<Value1>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8 text".to_string())?;
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    if doc.get("_aws").is_some() {
        return parse_emf(&doc);
    }
    let j: JsonLine =
        serde_json::from_value(doc).map_err(|e| format!("not a pop3-probe metric line ({e})"))?;
    Ok(vec![Value1 {
        namespace: j.namespace,
        metric: j.metric,
        monitor: j.monitor,
        value: j.value,
        t_ms: j.timestamp_ms,
    }])
}

/// An EMF document: `_aws.Timestamp`, one or more metric directives, each
/// value at the top level under the metric's name (a number or a list).
fn parse_emf(doc: &Value) -> Result<Vec<Value1>, String> {
    let aws = &doc["_aws"];
    let t_ms = aws["Timestamp"]
        .as_i64()
        .ok_or("EMF document without a numeric _aws.Timestamp")?;
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .ok_or("EMF document without _aws.CloudWatchMetrics")?;
    let mut out = Vec::new();
    for d in directives {
        let namespace = d["Namespace"]
            .as_str()
            .ok_or("EMF directive without a Namespace")?;
        let by_monitor = d["Dimensions"].as_array().is_some_and(|sets| {
            sets.iter()
                .flat_map(|s| s.as_array())
                .flatten()
                .any(|k| k == "Monitor")
        });
        let monitor = if by_monitor {
            Some(
                doc["Monitor"]
                    .as_str()
                    .ok_or("EMF document with a Monitor dimension but no Monitor value")?
                    .to_string(),
            )
        } else {
            None
        };
        for m in d["Metrics"]
            .as_array()
            .ok_or("EMF directive without Metrics")?
        {
            let name = m["Name"].as_str().ok_or("EMF metric without a Name")?;
            let values = match &doc[name] {
                Value::Number(n) => vec![n.as_f64()],
                Value::Array(a) => a.iter().map(Value::as_f64).collect(),
                _ => vec![None],
            };
            for v in values {
                out.push(Value1 {
                    namespace: namespace.to_string(),
                    metric: name.to_string(),
                    monitor: monitor.clone(),
                    value: v.ok_or_else(|| format!("EMF value of {name} is not a number"))?,
                    t_ms,
                });
            }
        }
    }
    Ok(out)
}

/// What the files held besides what the query asked for: for a "no data"
/// error that says where the data is.
#[derive(Default)]
struct Seen {
    namespaces: BTreeSet<String>,
    /// First and last timestamp in the query's namespace.
    span: Option<(i64, i64)>,
    /// Monitors with data in the namespace and range.
    monitors: BTreeSet<String>,
}

struct BadLine {
    path: PathBuf,
    line: usize,
    reason: String,
}

fn open_error(path: &Path, e: std::io::Error) -> ReportError {
    ReportError::new("--history", format!("cannot read {}: {e}", path.display()))
}

/// Read every file into one history for `query`.
pub fn read(paths: &[PathBuf], query: &Query, strict: bool) -> Result<History, ReportError> {
    let mut history = History {
        source: format!(
            "history file{} {}",
            if paths.len() == 1 { "" } else { "s" },
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ..Default::default()
    };
    let mut seen = Seen::default();
    let mut bad = Vec::new();
    let mut lines_total = 0;
    for path in paths {
        let file = File::open(path).map_err(|e| open_error(path, e))?;
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut number = 0;
        let mut metrics_in_file = 0;
        let mut bad_in_file = 0;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| open_error(path, e))?;
            if n == 0 {
                break;
            }
            number += 1;
            let complete = buf.last() == Some(&b'\n');
            let line = buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            lines_total += 1;
            match parse_line(line) {
                Ok(values) => {
                    metrics_in_file += 1;
                    for v in values {
                        take(&mut history, &mut seen, query, v);
                    }
                }
                Err(reason) => {
                    let reason = if complete {
                        reason
                    } else {
                        format!(
                            "cut short at the end of the file, as a killed run leaves it: {reason}"
                        )
                    };
                    if strict {
                        return Err(ReportError::new(
                            "--history",
                            format!("{}:{number}: {reason} (--strict)", path.display()),
                        ));
                    }
                    bad_in_file += 1;
                    bad.push(BadLine {
                        path: path.clone(),
                        line: number,
                        reason,
                    });
                }
            }
        }
        if metrics_in_file == 0 {
            let why = match bad.last() {
                Some(b) if bad_in_file > 0 => format!("; line {}: {}", b.line, b.reason),
                _ => String::new(),
            };
            return Err(ReportError::new(
                "--history",
                format!(
                    "{} holds no metrics (expected the file of `pop3-probe run --metrics jsonl|emf --metrics-file FILE`){why}",
                    path.display()
                ),
            ));
        }
    }
    if !bad.is_empty() {
        history.notes.push(bad_lines_note(&bad, lines_total));
    }
    if history.monitors.is_empty() {
        return Err(no_data(query, &history.source, &seen));
    }
    Ok(history)
}

fn take(history: &mut History, seen: &mut Seen, query: &Query, v: Value1) {
    if v.namespace != query.namespace {
        seen.namespaces.insert(v.namespace);
        return;
    }
    seen.span = Some(match seen.span {
        None => (v.t_ms, v.t_ms),
        Some((a, b)) => (a.min(v.t_ms), b.max(v.t_ms)),
    });
    let Some(monitor) = v.monitor else { return };
    if !query.covers(v.t_ms) {
        return;
    }
    if !query.wants(&monitor) {
        seen.monitors.insert(monitor);
        return;
    }
    let sample = Sample::one(v.t_ms, v.value);
    match v.metric.as_str() {
        AVAILABILITY => history
            .monitors
            .entry(monitor)
            .or_default()
            .availability
            .push(sample),
        RESPONSE_TIME => history
            .monitors
            .entry(monitor)
            .or_default()
            .response_ms
            .push(sample),
        _ => {}
    }
}

fn bad_lines_note(bad: &[BadLine], total: usize) -> String {
    let mut note = format!(
        "skipped {} of {total} lines that are not metrics:",
        bad.len()
    );
    for b in bad.iter().take(NAMED_BAD_LINES) {
        note.push_str(&format!(" {}:{}: {};", b.path.display(), b.line, b.reason));
    }
    if bad.len() > NAMED_BAD_LINES {
        note.push_str(&format!(" and {} more;", bad.len() - NAMED_BAD_LINES));
    }
    note.pop();
    note
}

fn no_data(query: &Query, source: &str, seen: &Seen) -> ReportError {
    let mut message = format!("nothing for {} in {source}", query.describe());
    if let Some((first, last)) = seen.span {
        message.push_str(&format!(
            "; namespace {} there spans {} to {}",
            query.namespace,
            crate::clock::rfc3339_ms(first),
            crate::clock::rfc3339_ms(last)
        ));
    }
    if !seen.monitors.is_empty() {
        let names: Vec<&str> = seen.monitors.iter().map(String::as_str).collect();
        message.push_str(&format!("; monitors with data: {}", names.join(", ")));
    }
    if !seen.namespaces.is_empty() {
        let names: Vec<&str> = seen.namespaces.iter().map(String::as_str).collect();
        message.push_str(&format!(
            "; other namespaces there: {} (choose with --namespace)",
            names.join(", ")
        ));
    }
    ReportError::new("no data", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Datum, Unit};

    fn datum(name: &str, monitor: Option<&str>, value: f64) -> Datum {
        Datum {
            name: name.into(),
            monitor: monitor.map(str::to_string),
            shard: None,
            value,
            unit: Unit::None,
            timestamp_ms: 1_700_000_000_000,
            vantage: None,
        }
    }

    #[test]
    fn reads_what_the_emf_writer_writes() {
        for d in [
            datum("Availability", Some("mail <a>"), 1.0),
            datum("ProbeRuns", None, 1.0),
        ] {
            let line = crate::local::emf("Ns", &d).to_string();
            let got = parse_line(line.as_bytes()).unwrap();
            assert_eq!(
                got,
                [Value1 {
                    namespace: "Ns".into(),
                    metric: d.name.clone(),
                    monitor: d.monitor.clone(),
                    value: 1.0,
                    t_ms: d.timestamp_ms,
                }]
            );
        }
    }

    #[test]
    fn reads_emf_value_lists_and_several_metrics() {
        let line = r#"{"_aws":{"Timestamp":5,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Monitor"]],"Metrics":[{"Name":"ResponseTime"},{"Name":"Availability"}]}]},"Monitor":"m","ResponseTime":[3,4],"Availability":1}"#;
        let got = parse_line(line.as_bytes()).unwrap();
        let values: Vec<(&str, f64)> = got.iter().map(|v| (v.metric.as_str(), v.value)).collect();
        assert_eq!(
            values,
            [
                ("ResponseTime", 3.0),
                ("ResponseTime", 4.0),
                ("Availability", 1.0)
            ]
        );
    }

    #[test]
    fn says_why_a_line_is_not_a_metric() {
        let cases = [
            (&b"MONITOR  STATUS"[..], "not JSON"),
            (b"\xff\xfe", "not UTF-8"),
            (b"{\"metric\":\"x\"}", "not a pop3-probe metric line"),
            (b"{\"_aws\":{\"CloudWatchMetrics\":[]}}", "_aws.Timestamp"),
            (
                b"{\"_aws\":{\"Timestamp\":1,\"CloudWatchMetrics\":[{\"Namespace\":\"N\",\"Dimensions\":[[\"Monitor\"]],\"Metrics\":[{\"Name\":\"A\"}]}]},\"A\":1}",
                "no Monitor value",
            ),
            (
                b"{\"_aws\":{\"Timestamp\":1,\"CloudWatchMetrics\":[{\"Namespace\":\"N\",\"Dimensions\":[[]],\"Metrics\":[{\"Name\":\"A\"}]}]},\"A\":\"x\"}",
                "value of A is not a number",
            ),
        ];
        for (line, want) in cases {
            let e = parse_line(line).unwrap_err();
            assert!(e.contains(want), "{e} (want {want})");
        }
    }
}
