//! `pop3-probe report`: availability, outages and response-time percentiles
//! per monitor over a period, from CloudWatch or the local history.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use clap::{Args, ValueEnum};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use pop3_probe::clock::{now_ms, rfc3339_ms};
use pop3_probe::config::{Config, DEFAULT_NAMESPACE};
use pop3_probe::output;
use pop3_probe::report::cloudwatch::{self, CloudWatchHistory};
use pop3_probe::report::{self, history, html, render, History, Query};
use pop3_probe::text::terminal_safe;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A summary table and the list of outages.
    Table,
    /// One row per monitor (RFC 4180).
    Csv,
    /// One self-contained page with SVG charts.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// CloudWatch GetMetricData (the usual AWS credentials and region).
    Cloudwatch,
    /// Metrics files written by `run --metrics jsonl|emf --metrics-file FILE`.
    Local,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  # The last 24 hours of every monitor, from the local history:
  pop3-probe report --history metrics.jsonl --from 24h

  # One week of two monitors from CloudWatch, as an HTML page with charts:
  pop3-probe report --from 7d --monitor mail-eu --monitor mail-us --output week.html

  # A fixed month as CSV, namespace taken from the monitor list:
  pop3-probe report --config monitors.json --from 2025-05-01T00:00:00Z \\
      --to 2025-06-01T00:00:00Z --format csv --output may.csv

Availability = probes up or degraded / all probes. An outage runs from the
first probe down to the next probe up; one still open at the end is ongoing,
counted up to --to. Percentiles are nearest-rank over the probes' response
times (from CloudWatch: over per-period averages, exact with at most one
probe per period). See docs/report.md.

Exit codes: 0 report written, 3 bad arguments, unreadable input, no data,
or a CloudWatch error.")]
pub struct ReportArgs {
    /// Start of the period: an RFC 3339 time, or a duration ago.
    /// Examples: --from 2025-05-01T00:00:00Z, --from 24h, --from 7d
    #[arg(long, value_name = "TIME")]
    pub from: String,

    /// End of the period (exclusive), as --from; default now. A time in the
    /// future is taken as now. Example: --to 2025-06-01T00:00:00Z
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// Only this monitor (repeatable); default every monitor with data.
    /// Example: --monitor mail-eu --monitor mail-us
    #[arg(long, value_name = "NAME")]
    pub monitor: Vec<String>,

    /// Where the metrics are; default local when --history is given, else
    /// CloudWatch.
    #[arg(long, value_enum)]
    pub source: Option<Source>,

    /// A metrics file of `pop3-probe run --metrics jsonl|emf --metrics-file FILE`
    /// (repeatable; JSON lines and EMF, even mixed). Example: --history metrics.jsonl
    #[arg(long, value_name = "FILE")]
    pub history: Vec<PathBuf>,

    /// Fail on any line of --history that is not a metric, instead of
    /// skipping it with a warning.
    #[arg(long, requires = "history")]
    pub strict: bool,

    /// Metric namespace; default the --config's run.namespace, else Pop3Probe.
    /// Example: --namespace Pop3Probe/prod
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,

    /// Take the namespace from this monitor list (run.namespace).
    /// Example: --config monitors.json
    #[arg(long, value_name = "FILE", conflicts_with = "namespace")]
    pub config: Option<PathBuf>,

    /// AWS region of the CloudWatch metrics; default the usual AWS
    /// settings (AWS_REGION, the profile). Example: --region eu-west-1
    #[arg(long, conflicts_with = "history")]
    pub region: Option<String>,

    /// CloudWatch period: a multiple of 60 s; default the finest CloudWatch
    /// keeps for --from (60 s up to 15 days ago, 300 s to 63 days, then 3600 s).
    /// Example: --period 5m
    #[arg(long, value_parser = period, value_name = "DURATION", conflicts_with = "history")]
    pub period: Option<i32>,

    /// Output format; default from the --output extension (.csv, .html),
    /// else table. Example: --format csv
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write the report to this file instead of stdout. Example: --output report.html
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Seconds, or a duration with a unit.
fn period(s: &str) -> Result<i32, String> {
    let secs = match s.parse::<u64>() {
        Ok(n) => n,
        Err(_) => humantime::parse_duration(s)
            .map_err(|e| format!("{e} (examples: 60, 5m, 1h)"))?
            .as_secs(),
    };
    i32::try_from(secs).map_err(|_| format!("{s} is too long"))
}

/// An RFC 3339 time, `now`, or a duration ago (`24h`, `7d`, `90m ago`).
fn parse_time(flag: &str, s: &str, now: i64) -> anyhow::Result<i64> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let ago = s.strip_suffix("ago").unwrap_or(s).trim();
    match humantime::parse_duration(ago) {
        Ok(d) => Ok(now - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)),
        Err(_) => bail!(
            "{flag} {s:?} is neither an RFC 3339 time (2025-05-01T00:00:00Z) nor a duration ago (24h, 7d)"
        ),
    }
}

fn format_of(args: &ReportArgs) -> Format {
    if let Some(f) = args.format {
        return f;
    }
    let ext = args
        .output
        .as_deref()
        .and_then(Path::extension)
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => Format::Html,
        Some("csv") => Format::Csv,
        _ => Format::Table,
    }
}

fn source_of(args: &ReportArgs) -> anyhow::Result<Source> {
    match (args.source, args.history.is_empty()) {
        (Some(Source::Local), true) => bail!("--source local needs --history FILE"),
        (Some(Source::Cloudwatch), false) => {
            bail!("--history is for --source local; CloudWatch takes no file")
        }
        (Some(s), _) => Ok(s),
        (None, false) => Ok(Source::Local),
        (None, true) => Ok(Source::Cloudwatch),
    }
}

fn namespace_of(args: &ReportArgs) -> anyhow::Result<String> {
    if let Some(ns) = &args.namespace {
        return Ok(ns.clone());
    }
    let Some(path) = &args.config else {
        return Ok(DEFAULT_NAMESPACE.to_string());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--config: cannot read {}", path.display()))?;
    let config = Config::parse(&text).with_context(|| format!("--config {}", path.display()))?;
    Ok(config.run.namespace)
}

/// Everything the flags say, checked, before any input is read.
struct Plan {
    query: Query,
    source: Source,
    format: Format,
    /// The CloudWatch period, checked against --from.
    period: i32,
}

fn plan(args: &ReportArgs, now: i64) -> anyhow::Result<Plan> {
    let from = parse_time("--from", &args.from, now)?;
    let to = match &args.to {
        Some(t) => parse_time("--to", t, now)?,
        None => now,
    };
    if from >= to {
        bail!(
            "--from {} is not before --to {}",
            rfc3339_ms(from),
            rfc3339_ms(to)
        );
    }
    if from >= now {
        bail!("--from {} is in the future", rfc3339_ms(from));
    }
    let source = source_of(args)?;
    let format = format_of(args);
    if format == Format::Html && args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("--format html: give --output FILE (or redirect stdout to a file)");
    }
    let period = match args.period {
        Some(p) => {
            cloudwatch::check_period(p, from, now).map_err(|e| anyhow::anyhow!("--period: {e}"))?;
            p
        }
        None => cloudwatch::finest_period(from, now),
    };
    if args.monitor.iter().any(|m| m.is_empty()) {
        bail!("--monitor: a monitor name cannot be empty");
    }
    Ok(Plan {
        query: Query {
            namespace: namespace_of(args)?,
            from_ms: from,
            to_ms: to.min(now),
            monitors: args.monitor.clone(),
        },
        source,
        format,
        period,
    })
}

async fn cloudwatch_client(region: Option<&str>) -> anyhow::Result<aws_sdk_cloudwatch::Client> {
    // Every call has an end: a stalled endpoint fails the report, it does
    // not hang it.
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(180))
            .build(),
    );
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        bail!("--region: no AWS region set (give --region, or set AWS_REGION)");
    }
    Ok(aws_sdk_cloudwatch::Client::new(&sdk))
}

async fn read(args: &ReportArgs, plan: &Plan) -> anyhow::Result<History> {
    Ok(match plan.source {
        Source::Local => history::read(&args.history, &plan.query, args.strict)?,
        Source::Cloudwatch => {
            let client = cloudwatch_client(args.region.as_deref()).await?;
            CloudWatchHistory::new(client)
                .read(&plan.query, plan.period)
                .await?
        }
    })
}

fn write_out(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(p) => std::fs::write(p, text)
            .with_context(|| format!("--output: cannot write {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("cannot write to stdout")
        }
    }
}

async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let now = now_ms();
    let plan = plan(&args, now)?;
    let history = read(&args, &plan).await?;
    let report = report::build(&plan.query, history)?;
    for note in &report.notes {
        // Notes and errors quote monitor names from the history, which
        // anything may have written: no control character reaches the terminal.
        eprintln!("pop3-probe report: note: {}", terminal_safe(note));
    }
    let text = match plan.format {
        Format::Table => render::table(&report),
        Format::Csv => render::csv(&report),
        Format::Html => html::html(&report, now),
    };
    write_out(args.output.as_deref(), &text)?;
    if let Some(p) = &args.output {
        eprintln!(
            "pop3-probe report: wrote {} ({} monitor{})",
            p.display(),
            report.monitors.len(),
            if report.monitors.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

pub async fn run(args: ReportArgs) -> i32 {
    match report(args).await {
        Ok(()) => output::EXIT_OK,
        Err(e) => {
            eprintln!("pop3-probe report: {}", terminal_safe(&format!("{e:#}")));
            output::EXIT_UNKNOWN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_or_ago() {
        let now = 1_750_000_000_000;
        assert_eq!(parse_time("--from", "now", now).unwrap(), now);
        assert_eq!(parse_time("--from", "24h", now).unwrap(), now - 86_400_000);
        assert_eq!(
            parse_time("--from", "7d ago", now).unwrap(),
            now - 7 * 86_400_000
        );
        assert_eq!(
            parse_time("--from", "2025-05-01T00:00:00Z", now).unwrap(),
            1_746_057_600_000
        );
        assert_eq!(
            parse_time("--from", "2025-05-01T02:00:00+02:00", now).unwrap(),
            1_746_057_600_000
        );
        let e = parse_time("--to", "yesterday", now)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--to \"yesterday\""), "{e}");
        assert_eq!(period("300").unwrap(), 300);
        assert_eq!(period("5m").unwrap(), 300);
        assert!(period("soon").is_err());
    }
}
