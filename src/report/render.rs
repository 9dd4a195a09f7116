//! A report as a table for people and as CSV (RFC 4180) for spreadsheets.

use std::fmt::Write as _;
use std::time::Duration;

use super::{MonitorReport, Report};
use crate::clock::rfc3339_ms;
use crate::text::{clip, csv_neutral, terminal_safe};

/// The widest the monitor column gets. Names are at most 255 bytes when
/// the config checks them, but a history (a metrics file, CloudWatch) can
/// hold anything: a name over 65,535 characters made the width overflow
/// `format!`'s and panicked.
pub const NAME_COLUMN: usize = 64;

/// A monitor name as the table shows it: no control characters (an
/// `ESC ]0;` retitled the terminal, a CR LF drew a fake row), at most
/// [`NAME_COLUMN`] characters.
fn shown(name: &str) -> String {
    clip(&terminal_safe(name), NAME_COLUMN)
}

/// Whole seconds in words: `5m`, `1h 2m 3s`; `-` for none.
pub fn duration_words(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 0.5 => "0s".into(),
        Some(s) => humantime::format_duration(Duration::from_secs(s.round() as u64)).to_string(),
    }
}

/// Availability with three decimals: 99.931% is 30 minutes a month.
pub fn percent(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.3}%")).unwrap_or_else(|| "-".into())
}

/// The header line every format shows.
pub fn title(r: &Report) -> String {
    format!(
        "{} to {}, namespace {}, from {}",
        rfc3339_ms(r.from_ms),
        rfc3339_ms(r.to_ms),
        r.namespace,
        r.source
    )
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

/// The summary table, then every outage.
pub fn table(r: &Report) -> String {
    let mut out = format!("pop3-probe report: {}\n\n", title(r));
    let width = r
        .monitors
        .iter()
        .map(|m| shown(&m.monitor).chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let _ = writeln!(
        out,
        "{:<width$}  {:>7}  {:>12}  {:>7}  {:>10}  {:>10}  {:>8}  {:>8}  {:>8}",
        "MONITOR",
        "PROBES",
        "AVAILABILITY",
        "OUTAGES",
        "DOWNTIME",
        "LONGEST",
        "P50 MS",
        "P95 MS",
        "P99 MS"
    );
    for m in &r.monitors {
        if !m.has_data() {
            let _ = writeln!(out, "{:<width$}  no data in this period", shown(&m.monitor));
            continue;
        }
        let p = m.percentiles;
        let _ = writeln!(
            out,
            "{:<width$}  {:>7.0}  {:>12}  {:>7}  {:>10}  {:>10}  {:>8}  {:>8}  {:>8}",
            shown(&m.monitor),
            m.probes,
            percent(m.availability_pct),
            m.outages.len(),
            duration_words(Some(m.downtime_seconds())),
            duration_words(m.longest_outage_seconds()),
            ms(p.map(|p| p.p50)),
            ms(p.map(|p| p.p95)),
            ms(p.map(|p| p.p99)),
        );
    }
    let outages: Vec<(&MonitorReport, &super::Outage)> = r
        .monitors
        .iter()
        .flat_map(|m| m.outages.iter().map(move |o| (m, o)))
        .collect();
    if !outages.is_empty() {
        let _ = writeln!(out, "\nOUTAGES");
        for (m, o) in outages {
            let end = if o.ongoing {
                "the end (ongoing)".to_string()
            } else {
                rfc3339_ms(o.end_ms)
            };
            let _ = writeln!(
                out,
                "{:<width$}  {} to {:<20}  {} ({:.0} probe{} down)",
                shown(&m.monitor),
                rfc3339_ms(o.start_ms),
                end,
                duration_words(Some(o.seconds())),
                o.probes,
                if o.probes == 1.0 { "" } else { "s" }
            );
        }
    }
    out
}

/// One field, quoted as RFC 4180 requires: when it holds a comma, a quote
/// or a line break, in double quotes with quotes doubled. A field that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, TAB, CR first)
/// is neutralised first, by OWASP's rule.
pub fn csv_field(s: &str) -> String {
    let s = &csv_neutral(s);
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub const CSV_HEADER: [&str; 15] = [
    "monitor",
    "from",
    "to",
    "probes",
    "availability_percent",
    "outages",
    "downtime_seconds",
    "longest_outage_seconds",
    "ongoing_outage",
    "outage_starts",
    "outage_seconds",
    "response_samples",
    "p50_ms",
    "p95_ms",
    "p99_ms",
];

/// A header row, then one row per monitor; CRLF line ends (RFC 4180).
/// Numbers are plain (no units); an empty field is "no data". Outage
/// starts and lengths are `;`-separated lists, in order.
pub fn csv(r: &Report) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push_str("\r\n");
    // Numbers are written as they are: the probe makes none negative, and
    // a neutralised number would not be one any more.
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for m in &r.monitors {
        let data = m.has_data();
        let p = m.percentiles;
        let list = |f: &dyn Fn(&super::Outage) -> String| {
            m.outages.iter().map(f).collect::<Vec<_>>().join(";")
        };
        let row = [
            m.monitor.clone(),
            rfc3339_ms(r.from_ms),
            rfc3339_ms(r.to_ms),
            format!("{:.0}", m.probes),
            m.availability_pct
                .map(|a| format!("{a:.4}"))
                .unwrap_or_default(),
            if data {
                m.outages.len().to_string()
            } else {
                String::new()
            },
            num(data.then(|| m.downtime_seconds())),
            num(m.longest_outage_seconds()),
            if data {
                m.outages.iter().any(|o| o.ongoing).to_string()
            } else {
                String::new()
            },
            list(&|o| rfc3339_ms(o.start_ms)),
            list(&|o| o.seconds().to_string()),
            format!("{:.0}", m.response_samples),
            num(p.map(|p| p.p50)),
            num(p.map(|p| p.p95)),
            num(p.map(|p| p.p99)),
        ];
        let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{build, History, Query, Sample, Series};

    fn report() -> Report {
        let t0 = 1_700_000_000_000;
        let avail = [1.0, 0.0, 0.0, 1.0, 0.0];
        let series = Series {
            availability: avail
                .iter()
                .enumerate()
                .map(|(i, v)| Sample::one(t0 + i as i64 * 60_000, *v))
                .collect(),
            response_ms: vec![Sample::one(t0, 12.5), Sample::one(t0 + 180_000, 20.0)],
        };
        let history = History {
            monitors: [("mail, \"eu\"".to_string(), series)].into_iter().collect(),
            source: "test".into(),
            notes: Vec::new(),
        };
        let q = Query {
            namespace: "Ns".into(),
            from_ms: t0,
            to_ms: t0 + 360_000,
            monitors: vec!["mail, \"eu\"".into(), "ghost".into()],
        };
        build(&q, history).unwrap()
    }

    #[test]
    fn csv_quotes_as_rfc_4180_and_leaves_no_data_empty() {
        let text = csv(&report());
        let rows: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert_eq!(rows[0], CSV_HEADER.join(","));
        assert_eq!(
            rows[1],
            "\"mail, \"\"eu\"\"\",2023-11-14T22:13:20Z,2023-11-14T22:19:20Z,5,40.0000,2,240,120,true,\
             2023-11-14T22:14:20Z;2023-11-14T22:17:20Z,120;120,2,12.5,20,20"
        );
        assert_eq!(
            rows[2],
            "ghost,2023-11-14T22:13:20Z,2023-11-14T22:19:20Z,0,,,,,,,,0,,,"
        );
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    fn named(name: &str) -> Report {
        let history = History {
            monitors: [(
                name.to_string(),
                Series {
                    availability: vec![Sample::one(0, 1.0)],
                    response_ms: Vec::new(),
                },
            )]
            .into_iter()
            .collect(),
            source: "test".into(),
            notes: Vec::new(),
        };
        let q = Query {
            namespace: "Ns".into(),
            from_ms: 0,
            to_ms: 60_000,
            monitors: vec![name.into()],
        };
        build(&q, history).unwrap()
    }

    #[test]
    fn a_huge_or_hostile_name_neither_panics_nor_reaches_the_terminal() {
        // Over 65,535 characters: the column width used to overflow.
        let long = "m".repeat(70_000);
        let text = table(&named(&long));
        assert!(text.lines().all(|l| l.chars().count() < 200));
        assert!(text.contains(&format!("{}…", "m".repeat(NAME_COLUMN - 1))));
        let text = table(&named("mail\u{1b}]0;owned\u{7}\r\nFAKE"));
        assert!(!text.contains(['\u{1b}', '\u{7}', '\r']), "{text:?}");
        assert!(!text.lines().any(|l| l.starts_with("FAKE")), "{text}");
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        let text = csv(&named("=HYPERLINK(\"http://x\",\"y\")"));
        let row = text.split_terminator("\r\n").nth(1).unwrap();
        assert!(row.starts_with("\"'=HYPERLINK("), "{row}");
        for s in ["+1", "-1", "@x", "\tx", "\rx"] {
            assert!(
                csv_field(s).trim_start_matches('"').starts_with('\''),
                "{s:?}"
            );
        }
    }

    #[test]
    fn table_lists_monitors_then_outages() {
        let text = table(&report());
        assert!(text.contains("40.000%"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("ghost ") && l.ends_with("  no data in this period")),
            "{text}"
        );
        assert!(
            text.contains("2023-11-14T22:14:20Z to 2023-11-14T22:16:20Z"),
            "{text}"
        );
        assert!(
            text.contains("2023-11-14T22:17:20Z to the end (ongoing)"),
            "{text}"
        );
        assert!(text.contains("2m (2 probes down)"), "{text}");
        assert!(text.contains("2m (1 probe down)"), "{text}");
    }
}
