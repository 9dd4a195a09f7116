//! A report as one self-contained HTML page: inline CSS and SVG, no script,
//! no external URL, so it can be mailed, archived, or opened offline.
//! Per monitor: an availability strip (up green, outages red, partly
//! failed periods amber, no data grey) and a response-time line with its
//! p95 as a dashed reference. Every text from the data is escaped.

use std::fmt::Write as _;

use super::render::{duration_words, percent, title};
use super::{MonitorReport, Report, Sample};
use crate::clock::rfc3339_ms;

pub const UP: &str = "#2e7d32";
pub const DOWN: &str = "#c62828";
pub const PARTIAL: &str = "#f9a825";
pub const NO_DATA: &str = "#d5d5d5";
pub const LINE: &str = "#1565c0";
pub const P95: &str = "#ef6c00";

const WIDTH: f64 = 960.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
/// The narrowest outage drawn, so a one-minute outage in a month is seen.
const MIN_OUTAGE_PX: f64 = 2.0;

/// Text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#212121;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px}
.sub{color:#555;margin:0 0 16px}
table{border-collapse:collapse;font-size:14px;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid #e0e0e0;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f5f5f5}
.bad{color:#c62828;font-weight:600}.good{color:#2e7d32}
.notes{background:#fff8e1;border:1px solid #ffe082;padding:8px 12px;font-size:14px}
svg{display:block;margin:4px 0}
svg text{font-size:11px;fill:#424242;font-family:inherit}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-1px}
footer{color:#777;font-size:12px;margin-top:32px}
";

/// The page. `generated_ms` is when it was made (shown in the footer).
pub fn html(r: &Report, generated_ms: i64) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>pop3-probe report {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <h1>POP3 availability report</h1>\n<p class=\"sub\">{}</p>\n",
        escape(&rfc3339_ms(r.from_ms)),
        escape(&title(r))
    );
    if !r.notes.is_empty() {
        out.push_str("<div class=\"notes\"><strong>Notes</strong><ul>\n");
        for n in &r.notes {
            let _ = writeln!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul></div>\n");
    }
    summary(&mut out, r);
    let _ = writeln!(
        out,
        "<p class=\"legend\">Availability:<span style=\"background:{UP}\"></span>up\
         <span style=\"background:{DOWN}\"></span>outage<span style=\"background:{PARTIAL}\"></span>\
         some probes failed<span style=\"background:{NO_DATA}\"></span>no data. \
         Response time:<span style=\"background:{LINE}\"></span>per probe\
         <span style=\"background:{P95}\"></span>p95 of the period.</p>"
    );
    for m in &r.monitors {
        monitor_section(&mut out, r, m);
    }
    let _ = write!(
        out,
        "<footer>Made by pop3-probe {} at {}. Availability = probes up or degraded / all probes; \
         an outage runs from the first probe down to the next probe up; percentiles are \
         nearest-rank over the probes' response times.</footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&rfc3339_ms(generated_ms))
    );
    out
}

fn summary(out: &mut String, r: &Report) {
    out.push_str(
        "<table class=\"summary\">\n<tr><th>Monitor</th><th>Probes</th><th>Availability</th>\
         <th>Outages</th><th>Downtime</th><th>Longest</th><th>p50 ms</th><th>p95 ms</th>\
         <th>p99 ms</th></tr>\n",
    );
    for m in &r.monitors {
        if !m.has_data() {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td colspan=\"8\">no data in this period</td></tr>",
                escape(&m.monitor)
            );
            continue;
        }
        let class = if m.outages.is_empty() { "good" } else { "bad" };
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        let p = m.percentiles;
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{:.0}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&m.monitor),
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
    out.push_str("</table>\n");
}

fn monitor_section(out: &mut String, r: &Report, m: &MonitorReport) {
    let name = escape(&m.monitor);
    let _ = writeln!(out, "<section class=\"monitor\">\n<h2>{name}</h2>");
    if !m.has_data() {
        out.push_str("<p>No data in this period.</p>\n</section>\n");
        return;
    }
    let axis = Axis::new(r.from_ms, r.to_ms);
    availability_chart(out, &axis, m);
    response_chart(out, &axis, m);
    if !m.outages.is_empty() {
        out.push_str("<table class=\"outages\">\n<tr><th>Outage start</th><th>End</th><th>Length</th><th>Probes down</th></tr>\n");
        for o in &m.outages {
            let end = if o.ongoing {
                "ongoing at the end".to_string()
            } else {
                rfc3339_ms(o.end_ms)
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
                rfc3339_ms(o.start_ms),
                end,
                duration_words(Some(o.seconds())),
                o.probes
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

/// Time to x, for one report's range.
struct Axis {
    from_ms: i64,
    to_ms: i64,
}

impl Axis {
    fn new(from_ms: i64, to_ms: i64) -> Axis {
        Axis {
            from_ms,
            to_ms: to_ms.max(from_ms + 1),
        }
    }

    fn x(&self, t_ms: i64) -> f64 {
        let t = t_ms.clamp(self.from_ms, self.to_ms);
        LEFT + PLOT_W * (t - self.from_ms) as f64 / (self.to_ms - self.from_ms) as f64
    }

    /// Five labelled ticks under a plot whose bottom is at `y`.
    fn ticks(&self, out: &mut String, y: f64) {
        for i in 0..=4 {
            let t = self.from_ms + (self.to_ms - self.from_ms) * i / 4;
            let x = self.x(t);
            let anchor = match i {
                0 => "start",
                4 => "end",
                _ => "middle",
            };
            let label = rfc3339_ms(t).replace('T', " ");
            let label = label.get(..16).unwrap_or(&label);
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#9e9e9e\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{label}</text>",
                y + 4.0,
                y + 16.0
            );
        }
    }
}

/// The usual gap between samples (the median), which tells a missing
/// sample from the normal spacing.
fn typical_gap(samples: &[Sample]) -> i64 {
    let mut gaps: Vec<i64> = samples
        .windows(2)
        .map(|w| w[1].t_ms - w[0].t_ms)
        .filter(|g| *g > 0)
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied().unwrap_or(60_000)
}

/// Longest gap still drawn as continuous.
fn max_gap(samples: &[Sample]) -> i64 {
    typical_gap(samples) * 5 / 2
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Up,
    Partial,
    Down,
}

fn state(s: &Sample) -> State {
    if s.value >= 1.0 {
        State::Up
    } else if s.value >= 0.5 {
        State::Partial
    } else {
        State::Down
    }
}

/// Runs of one state: (start, end, state). Each sample lasts until the
/// next one, or one typical gap when the next is missing or too far.
fn runs(samples: &[Sample], end_ms: i64) -> Vec<(i64, i64, State)> {
    let gap = typical_gap(samples);
    let max = max_gap(samples);
    let mut out: Vec<(i64, i64, State)> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let until = match samples.get(i + 1) {
            Some(n) if n.t_ms - s.t_ms <= max => n.t_ms,
            _ => (s.t_ms + gap).min(end_ms.max(s.t_ms)),
        };
        let st = state(s);
        match out.last_mut() {
            Some(last) if last.2 == st && last.1 == s.t_ms => last.1 = until,
            _ => out.push((s.t_ms, until, st)),
        }
    }
    out
}

fn availability_chart(out: &mut String, axis: &Axis, m: &MonitorReport) {
    let (top, h) = (6.0, 28.0);
    let height = top + h + 22.0;
    let _ = write!(
        out,
        "<svg class=\"chart availability\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\">\
         <title>Availability of {} over the period: {}</title>\
         <rect x=\"{LEFT}\" y=\"{top}\" width=\"{PLOT_W}\" height=\"{h}\" fill=\"{NO_DATA}\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        escape(&m.monitor),
        percent(m.availability_pct),
        LEFT - 6.0,
        top + h / 2.0 + 4.0,
        percent(m.availability_pct)
    );
    for (a, b, st) in runs(&m.series.availability, axis.to_ms) {
        // Outages are drawn from the outage list below, so the chart shows
        // exactly the outages the tables count.
        let colour = match st {
            State::Up => UP,
            State::Partial => PARTIAL,
            State::Down => continue,
        };
        let (x1, x2) = (axis.x(a), axis.x(b));
        let _ = write!(
            out,
            "<rect x=\"{x1:.2}\" y=\"{top}\" width=\"{:.2}\" height=\"{h}\" fill=\"{colour}\"/>",
            (x2 - x1).max(0.5)
        );
    }
    for o in &m.outages {
        let (x1, x2) = (axis.x(o.start_ms), axis.x(o.end_ms));
        let end = if o.ongoing {
            "ongoing".to_string()
        } else {
            rfc3339_ms(o.end_ms)
        };
        let _ = write!(
            out,
            "<rect class=\"outage\" x=\"{x1:.2}\" y=\"{top}\" width=\"{:.2}\" height=\"{h}\" fill=\"{DOWN}\">\
             <title>outage {} to {end}, {}</title></rect>",
            (x2 - x1).max(MIN_OUTAGE_PX),
            rfc3339_ms(o.start_ms),
            duration_words(Some(o.seconds()))
        );
    }
    axis.ticks(out, top + h);
    out.push_str("</svg>\n");
}

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|f| f * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

/// Points to draw, at most two per pixel column (its lowest and highest
/// value, so spikes stay visible), in runs split where data is missing.
fn line_runs(samples: &[Sample], axis: &Axis) -> Vec<Vec<(f64, f64)>> {
    let max = max_gap(samples);
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut column: Option<(i64, f64, f64)> = None;
    let mut last_t: Option<i64> = None;
    let flush = |runs: &mut Vec<Vec<(f64, f64)>>, c: Option<(i64, f64, f64)>| {
        if let (Some((col, lo, hi)), Some(run)) = (c, runs.last_mut()) {
            let x = LEFT + col as f64;
            run.push((x, lo));
            if hi != lo {
                run.push((x, hi));
            }
        }
    };
    for s in samples {
        let col = (axis.x(s.t_ms) - LEFT).floor() as i64;
        let broken = last_t.is_none_or(|t| s.t_ms - t > max);
        if broken || column.is_some_and(|c| c.0 != col) {
            flush(&mut runs, column.take());
        }
        if broken {
            runs.push(Vec::new());
        }
        column = Some(match column {
            Some((c, lo, hi)) => (c, lo.min(s.value), hi.max(s.value)),
            None => (col, s.value, s.value),
        });
        last_t = Some(s.t_ms);
    }
    flush(&mut runs, column);
    runs
}

fn response_chart(out: &mut String, axis: &Axis, m: &MonitorReport) {
    let (top, h) = (10.0, 170.0);
    let height = top + h + 22.0;
    let samples = &m.series.response_ms;
    let p95 = m.percentiles.map(|p| p.p95);
    let peak = samples
        .iter()
        .map(|s| s.value)
        .fold(p95.unwrap_or(0.0), f64::max);
    let y_max = nice_ceiling(peak * 1.05);
    let y = |v: f64| top + h - h * (v / y_max).clamp(0.0, 1.0);
    let _ = write!(
        out,
        "<svg class=\"chart response\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\">\
         <title>Response time of {} over the period, in milliseconds</title>\
         <rect x=\"{LEFT}\" y=\"{top}\" width=\"{PLOT_W}\" height=\"{h}\" fill=\"#fafafa\" stroke=\"#e0e0e0\"/>",
        escape(&m.monitor)
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e0e0e0\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} ms</text>",
            LEFT + PLOT_W,
            LEFT - 6.0,
            yy + 4.0,
            v
        );
    }
    if samples.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no response times: the server never answered</text>",
            LEFT + PLOT_W / 2.0,
            top + h / 2.0
        );
    }
    for run in line_runs(samples, axis) {
        let points: Vec<String> = run
            .iter()
            .map(|(x, v)| format!("{x:.1},{:.1}", y(*v)))
            .collect();
        if points.len() == 1 {
            let (x, v) = run[0];
            let _ = write!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{LINE}\"/>",
                y(v)
            );
        } else {
            let _ = write!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{LINE}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>",
                points.join(" ")
            );
        }
    }
    if let Some(p95) = p95 {
        let yy = y(p95);
        let _ = write!(
            out,
            "<line class=\"p95\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"{P95}\" \
             stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" style=\"fill:{P95}\">p95 {p95:.1} ms</text>",
            LEFT + PLOT_W,
            LEFT + PLOT_W - 4.0,
            yy - 5.0
        );
    }
    axis.ticks(out, top + h);
    out.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{build, History, Query, Series};

    fn report(name: &str, avail: &[f64], rt: &[f64]) -> Report {
        let t0 = 1_700_000_000_000;
        let at = |i: usize| t0 + i as i64 * 60_000;
        let series = Series {
            availability: avail
                .iter()
                .enumerate()
                .map(|(i, v)| Sample::one(at(i), *v))
                .collect(),
            response_ms: rt
                .iter()
                .enumerate()
                .map(|(i, v)| Sample::one(at(i), *v))
                .collect(),
        };
        let history = History {
            monitors: [(name.to_string(), series)].into_iter().collect(),
            source: "file <x>.jsonl".into(),
            notes: vec!["skipped 1 of 3 lines: <b>".into()],
        };
        let q = Query {
            namespace: "Ns".into(),
            from_ms: t0,
            to_ms: at(avail.len()),
            monitors: Vec::new(),
        };
        build(&q, history).unwrap()
    }

    #[test]
    fn names_and_notes_are_escaped() {
        let page = html(
            &report("<script>alert('x')</script>", &[1.0, 0.0], &[5.0]),
            0,
        );
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(!page.contains("<b>") && page.contains("&lt;b&gt;"));
        assert!(!page.contains("<x>") && page.contains("file &lt;x&gt;.jsonl"));
        assert_eq!(escape("a&\"b"), "a&amp;&quot;b");
    }

    #[test]
    fn self_contained_with_two_charts_per_monitor() {
        let page = html(&report("m", &[1.0, 1.0, 0.0, 1.0], &[5.0, 6.0, 7.0]), 0);
        assert_eq!(page.matches("<svg ").count(), 2);
        assert_eq!(page.matches("<polyline ").count(), 1);
        assert_eq!(page.matches("class=\"outage\"").count(), 1);
        for external in ["http:", "https:", "<script", "<link", "src="] {
            let hits: Vec<&str> = page
                .match_indices(external)
                .map(|(i, _)| &page[i.saturating_sub(20)..(i + 40).min(page.len())])
                .filter(|ctx| !ctx.contains("xmlns=\"http://www.w3.org/2000/svg\""))
                .collect();
            assert!(hits.is_empty(), "{external}: {hits:?}");
        }
    }

    #[test]
    fn runs_merge_samples_and_leave_gaps() {
        let s: Vec<Sample> = [0, 1, 2, 3, 10, 11]
            .iter()
            .map(|i| Sample::one(i * 60_000, if *i == 2 { 0.0 } else { 1.0 }))
            .collect();
        let r = runs(&s, 12 * 60_000);
        let spans: Vec<(i64, i64)> = r.iter().map(|(a, b, _)| (a / 60_000, b / 60_000)).collect();
        assert_eq!(spans, [(0, 2), (2, 3), (3, 4), (10, 12)]);
        assert!(r[1].2 == State::Down);
    }

    #[test]
    fn a_long_series_is_drawn_with_at_most_two_points_per_pixel() {
        let s: Vec<Sample> = (0..100_000)
            .map(|i| Sample::one(i * 60_000, (i % 7) as f64))
            .collect();
        let axis = Axis::new(0, 100_000 * 60_000);
        let runs = line_runs(&s, &axis);
        assert_eq!(runs.len(), 1);
        assert!(
            runs[0].len() <= 2 * PLOT_W as usize + 2,
            "{}",
            runs[0].len()
        );
        assert_eq!(nice_ceiling(87.0), 100.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
    }
}
