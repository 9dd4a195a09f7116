//! `pop3-probe run`: the whole monitor list, locally.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use pop3_probe::aws::{AwsSecrets, SnsAlerts};
use pop3_probe::config::Config;
use pop3_probe::consensus::Condition;
use pop3_probe::credentials::SecretSource;
use pop3_probe::local::{FileState, MetricsFormat, PrintAlerts, WriterMetrics};
use pop3_probe::output;
use pop3_probe::pipeline::{self, RunSummary, Shard};
use pop3_probe::ports::{AlertSink, SinkError};
use pop3_probe::probe::Status;
use pop3_probe::vantage::{FileVantages, Vantage};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MetricsArg {
    /// One JSON object per value.
    Jsonl,
    /// CloudWatch Embedded Metric Format.
    Emf,
    /// Prometheus text format, for node_exporter's textfile collector:
    /// --metrics-file is replaced (atomically) after each run.
    Prometheus,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  pop3-probe run --config examples/monitors.json
  pop3-probe run --config monitors.json --every 60s --state /var/lib/pop3-probe/state.json
  pop3-probe run --config monitors.json --json --metrics emf --metrics-file metrics.log
  pop3-probe run --config-secret pop3-probe/config --sns-topic-arn arn:aws:sns:eu-west-1:123456789012:pop3-alerts

Exit codes: 0 all up, 1 something degraded, 2 something down or misconfigured,
or an alert could not be delivered (the state is saved; it is retried next run),
3 the run could not start (unreadable config).")]
pub struct RunArgs {
    /// The monitor list (JSON; see schema/monitors.schema.json). Example: --config examples/monitors.json
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "config_secret",
        conflicts_with = "config_secret"
    )]
    pub config: Option<PathBuf>,

    /// Read the monitor list from this Secrets Manager secret instead (uses the
    /// usual AWS credentials and region). Example: --config-secret pop3-probe/config
    #[arg(long, value_name = "ID")]
    pub config_secret: Option<String>,

    /// Alert state file, kept between runs so each transition alerts once.
    #[arg(long, value_name = "FILE", default_value = "pop3-probe-state.json")]
    pub state: PathBuf,

    /// Print the summary and every result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Also write metrics in this format (to --metrics-file, else stdout).
    #[arg(long, value_enum)]
    pub metrics: Option<MetricsArg>,

    /// Where --metrics go. Example: --metrics-file metrics.jsonl
    #[arg(long, value_name = "FILE", requires = "metrics")]
    pub metrics_file: Option<PathBuf>,

    /// Send alerts to this SNS topic (real AWS) instead of printing them.
    #[arg(long, value_name = "ARN")]
    pub sns_topic_arn: Option<String>,

    /// Probe only shard N of --shards (by a stable hash of the name).
    #[arg(long, default_value_t = 0)]
    pub shard: u32,

    /// Number of shards. Example: --shard 1 --shards 4
    #[arg(long, default_value_t = 1)]
    pub shards: u32,

    /// Run once and exit (the default).
    #[arg(long, conflicts_with = "every")]
    pub once: bool,

    /// Keep running, one run per interval, until interrupted. Example: --every 60s
    #[arg(long, value_parser = pop3_probe::limits::parse_every, value_name = "DURATION")]
    pub every: Option<Duration>,

    /// Run as one of several vantages that must agree before an outage is
    /// alerted (see docs/vantages.md). Give each process its own --state
    /// and the same --vantage-state. Example: --vantage office
    #[arg(long, value_name = "NAME")]
    pub vantage: Option<String>,

    /// Where the vantages of one machine meet (verdicts, heartbeats,
    /// consensus). Example: --vantage-state /var/lib/pop3-probe/vantages.json
    #[arg(
        long,
        value_name = "FILE",
        default_value = "pop3-probe-vantages.json",
        requires = "vantage"
    )]
    pub vantage_state: PathBuf,
}

/// Secrets Manager, set up only if a config actually refers to a secret.
pub(crate) struct LazySecrets {
    inner: OnceCell<AwsSecrets>,
}

impl LazySecrets {
    /// Also for `check roundtrip://NAME`, which reads a config file.
    pub(crate) fn new() -> LazySecrets {
        LazySecrets {
            inner: OnceCell::new(),
        }
    }

    async fn get(&self) -> &AwsSecrets {
        self.inner
            .get_or_init(|| async {
                let sdk = pop3_probe::aws::sdk_config().await;
                AwsSecrets::new(
                    aws_sdk_secretsmanager::Client::new(&sdk),
                    Duration::from_secs(300),
                )
            })
            .await
    }
}

impl SecretSource for LazySecrets {
    async fn secret(&self, id: &str) -> Result<SecretString, SinkError> {
        self.get().await.secret(id).await
    }

    fn set_ttl(&self, ttl: Duration) {
        if let Some(s) = self.inner.get() {
            s.set_ttl(ttl);
        }
    }
}

enum Alerts {
    Print(PrintAlerts),
    Sns(SnsAlerts),
}

impl AlertSink for Alerts {
    async fn send(&self, alert: &pop3_probe::alert::Alert) -> Result<(), SinkError> {
        match self {
            Alerts::Print(p) => p.send(alert).await,
            Alerts::Sns(s) => s.send(alert).await,
        }
    }
}

async fn read_config(args: &RunArgs, secrets: &LazySecrets) -> anyhow::Result<Config> {
    let text = match (&args.config, &args.config_secret) {
        (Some(path), _) => {
            pop3_probe::limits::read_text_file(path, pop3_probe::limits::MAX_CONFIG_FILE_BYTES)
                .context("--config")?
        }
        (None, Some(id)) => secrets
            .secret(id)
            .await
            .map_err(anyhow::Error::new)?
            .expose_secret()
            .to_string(),
        (None, None) => anyhow::bail!("give --config FILE or --config-secret ID"),
    };
    pop3_probe::config::load_for_runner(&text, secrets, args.every)
        .await
        .map_err(anyhow::Error::new)
}

fn table(summary: &RunSummary) -> String {
    let mut out = String::new();
    let width = summary
        .results
        .iter()
        .map(|r| r.monitor.len())
        .max()
        .unwrap_or(7)
        .max(7);
    out.push_str(&format!(
        "{:<width$}  {:<8}  {:>9}  DETAILS\n",
        "MONITOR", "STATUS", "TIME"
    ));
    for r in &summary.results {
        let details = match (r.failure, r.failed_phase) {
            (Some(f), Some(p)) => format!("{f} in {p}: {}", r.message),
            (Some(f), None) => format!("{f}: {}", r.message),
            _ => r.message.clone(),
        };
        let retried = if r.attempts > 1 {
            format!(" (attempt {})", r.attempts)
        } else {
            String::new()
        };
        // Down all the same, but not this monitor's alert to raise.
        let status = if r.blocked_by.is_some() {
            "blocked"
        } else {
            r.status.as_str()
        };
        out.push_str(&format!(
            "{:<width$}  {:<8}  {:>6.0} ms  {details}{retried}\n",
            r.monitor, status, r.response_time_ms
        ));
    }
    for p in &summary.config_problems {
        out.push_str(&format!(
            "{:<width$}  {:<8}  {:>9}  {}\n",
            p.monitor, "config", "-", p.error
        ));
    }
    for s in &summary.skipped {
        out.push_str(&format!(
            "{:<width$}  {:<8}  {:>9}  {}\n",
            s.monitor, "skipped", "-", s.reason
        ));
    }
    let blocked = summary
        .results
        .iter()
        .filter(|r| r.blocked_by.is_some())
        .count();
    let blocked = if blocked > 0 {
        format!(" ({blocked} of them blocked by a dependency)")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "\n{} probed: {} up, {} degraded, {} down{blocked}; {} misconfigured; {} skipped; {} ms\n",
        summary.probed,
        summary.up,
        summary.degraded,
        summary.down,
        summary.config_problems.len(),
        summary.skipped.len(),
        summary.duration_ms
    ));
    if let Some(c) = &summary.consensus {
        out.push_str(&format!(
            "vantage {}: alive {}; {} partial\n",
            c.vantage,
            c.alive.join(", "),
            c.partial
        ));
        for m in c.monitors.iter().filter(|m| m.condition != Condition::Up) {
            out.push_str(&format!("  {}: {}\n", m.condition.as_str(), m.text));
        }
    }
    out.push_str(&format!(
        "alerts: {} sent, {} failed; metrics: {} published, {} kept for the next run\n",
        summary.alerts_sent.len(),
        summary.alerts_failed.len(),
        summary.metrics_published,
        summary.metrics_unpublished
    ));
    for e in summary
        .alerts_failed
        .iter()
        .map(|a| format!("alert {} ({}): {}", a.monitor, a.kind, a.error))
        .chain(summary.metric_errors.iter().cloned())
        .chain(summary.state_errors.iter().cloned())
    {
        out.push_str(&format!("  error: {e}\n"));
    }
    out
}

/// Replace `path` with `text` in one step (written next to it, then
/// renamed), so the textfile collector never reads half a file. 0644: it
/// holds no secret. Without a path, stdout.
fn write_textfile(path: Option<&std::path::Path>, text: &str) -> std::io::Result<()> {
    let Some(path) = path else {
        print!("{text}");
        return Ok(());
    };
    let result = pop3_probe::local::replace_file(path, text.as_bytes(), 0o644);
    result.map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn exit_code(s: &RunSummary) -> i32 {
    // A lost alert is the probe's own failure: it must not exit 0.
    if s.down > 0 || !s.config_problems.is_empty() || s.has_undelivered_alerts() {
        output::EXIT_CRITICAL
    } else if s.degraded > 0 || s.results.iter().any(|r| r.status == Status::Degraded) {
        output::EXIT_WARNING
    } else {
        output::EXIT_OK
    }
}

pub async fn run(args: RunArgs) -> i32 {
    let shard = Shard {
        shard: args.shard,
        shards: args.shards,
    };
    if let Err(e) = shard.validate() {
        eprintln!("pop3-probe run: --shard/--shards: {e}");
        return output::EXIT_UNKNOWN;
    }
    let vantages = FileVantages::new(&args.vantage_state);
    let vantage = match args.vantage.as_deref().map(|n| Vantage::new(n, &vantages)) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            eprintln!("pop3-probe run: --vantage: {e}");
            return output::EXIT_UNKNOWN;
        }
    };
    let state = match FileState::open(&args.state) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pop3-probe run: --state: {e}");
            return output::EXIT_UNKNOWN;
        }
    };
    let metrics = match (args.metrics, &args.metrics_file) {
        (None, _) | (Some(MetricsArg::Prometheus), _) => WriterMetrics::discard(),
        (Some(fmt), file) => {
            let format = match fmt {
                MetricsArg::Jsonl => MetricsFormat::JsonLines,
                MetricsArg::Emf => MetricsFormat::Emf,
                MetricsArg::Prometheus => unreachable!("handled above"),
            };
            let out: Box<dyn Write + Send> = match file {
                Some(path) => match pop3_probe::local::open_append_no_follow(path) {
                    Ok(f) => Box::new(f),
                    Err(e) => {
                        eprintln!("pop3-probe run: --metrics-file {}: {e}", path.display());
                        return output::EXIT_UNKNOWN;
                    }
                },
                None => Box::new(std::io::stdout()),
            };
            WriterMetrics::new(out, format)
        }
    };
    let secrets = LazySecrets::new();
    let alerts = match &args.sns_topic_arn {
        Some(arn) => {
            let sdk = pop3_probe::aws::sdk_config().await;
            Alerts::Sns(SnsAlerts::new(aws_sdk_sns::Client::new(&sdk), arn.clone()))
        }
        None => Alerts::Print(PrintAlerts::new(Box::new(std::io::stderr()))),
    };
    let mut code;
    loop {
        let started = Instant::now();
        code = match read_config(&args, &secrets).await {
            Err(e) => {
                eprintln!("pop3-probe run: config: {e:#}");
                output::EXIT_UNKNOWN
            }
            Ok(config) => {
                let deadline = started + config.run.deadline;
                let namespace = config.run.namespace.clone();
                let summary = pipeline::execute_with_vantage(
                    &config,
                    &namespace,
                    shard,
                    deadline,
                    &metrics,
                    &alerts,
                    &state,
                    vantage.as_ref(),
                )
                .await;
                if matches!(args.metrics, Some(MetricsArg::Prometheus)) {
                    let text = pop3_probe::prom::render_results(
                        &summary.results,
                        true,
                        pop3_probe::prom::Format::Text,
                    );
                    if let Err(e) = write_textfile(args.metrics_file.as_deref(), &text) {
                        eprintln!("pop3-probe run: --metrics-file: {e}");
                    }
                }
                if args.json {
                    // The `run_summary` document, the Lambda's return value.
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&summary).unwrap_or_default()
                    );
                } else {
                    print!("{}", table(&summary));
                }
                exit_code(&summary)
            }
        };
        let Some(every) = args.every else { break };
        let next = started + every;
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    code
}
