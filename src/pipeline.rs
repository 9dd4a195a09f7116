//! One scheduled run, the same in Lambda and locally: select the shard,
//! probe, publish metrics, move each monitor's alert state forward.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;

use crate::alert::{self, Alert};
use crate::config::{Config, ConfigProblem};
use crate::probe::{FailureKind, Phase, ProbeResult, Status};
use crate::run::{self, Skipped};
use crate::sinks::{AlertSink, Datum, MetricsSink, StateStore, Unit};

/// Which part of the fleet this run probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct Shard {
    pub shard: u32,
    pub shards: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            shard: 0,
            shards: 1,
        }
    }
}

impl Shard {
    pub fn validate(&self) -> Result<(), String> {
        if self.shards == 0 {
            return Err("shards must be at least 1".into());
        }
        if self.shard >= self.shards {
            return Err(format!(
                "shard {} is out of range for {} shards (0..{})",
                self.shard,
                self.shards,
                self.shards - 1
            ));
        }
        Ok(())
    }
}

/// A failed monitor, in one line.
#[derive(Debug, Clone, Serialize)]
pub struct FailureLine {
    pub monitor: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertFailure {
    pub monitor: String,
    pub kind: &'static str,
    pub error: String,
}

/// What a run did. Returned by the Lambda and printed by `run --json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub started_at: String,
    pub duration_ms: u64,
    pub shard: Shard,
    /// Monitors in this shard that were probed.
    pub probed: usize,
    pub up: usize,
    pub degraded: usize,
    pub down: usize,
    pub failures: Vec<FailureLine>,
    pub config_problems: Vec<ConfigProblem>,
    pub skipped: Vec<Skipped>,
    pub alerts_sent: Vec<String>,
    pub alerts_failed: Vec<AlertFailure>,
    pub metrics_published: usize,
    /// Values that could not be published; kept and retried next run.
    pub metrics_unpublished: usize,
    pub metric_errors: Vec<String>,
    pub state_errors: Vec<String>,
    #[serde(skip)]
    pub results: Vec<ProbeResult>,
}

impl RunSummary {
    /// Whether anything about the run itself (not the monitors) went wrong.
    pub fn has_delivery_errors(&self) -> bool {
        !self.alerts_failed.is_empty()
            || self.metrics_unpublished > 0
            || !self.state_errors.is_empty()
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The most unpublished values kept for the next run (a DynamoDB item holds
/// 400 KB; a value is ~150 bytes as JSON).
pub const MAX_PENDING_METRICS: usize = 2000;
/// CloudWatch accepts values up to two weeks old; keep a margin.
const MAX_PENDING_AGE_MS: i64 = 13 * 24 * 3600 * 1000;

/// The metric values for one run's results.
pub fn metrics(
    config: &Config,
    results: &[ProbeResult],
    summary: &RunSummary,
    now: i64,
) -> Vec<Datum> {
    let detailed: HashMap<&str, bool> = config
        .monitors
        .iter()
        .map(|m| (m.target.name.as_str(), m.detailed_metrics))
        .collect();
    let mut data = Vec::with_capacity(results.len() * 3 + 5);
    let mut push = |name: &str, monitor: Option<&str>, value: f64, unit: Unit| {
        data.push(Datum {
            name: name.to_string(),
            monitor: monitor.map(str::to_string),
            value,
            unit,
            timestamp_ms: now,
        });
    };
    for r in results {
        let m = Some(r.monitor.as_str());
        push(
            "Availability",
            m,
            if r.status == Status::Down { 0.0 } else { 1.0 },
            Unit::None,
        );
        // Latency of a service that answered; a timeout's "duration" is the
        // timeout, which would only pollute percentiles.
        if r.failure.is_none() || r.failure == Some(FailureKind::ResponseTimeCritical) {
            push("ResponseTime", m, r.response_time_ms, Unit::Milliseconds);
        }
        // The round trip's own number: submission to arrival.
        if let Some(d) = r.roundtrip.as_ref().and_then(|f| f.delivery_ms) {
            push("DeliveryTime", m, d, Unit::Milliseconds);
        }
        if let Some(c) = r.tls.as_ref().and_then(|t| t.certificate.as_ref()) {
            push(
                "CertificateDaysRemaining",
                m,
                c.days_remaining as f64,
                Unit::None,
            );
        }
        if detailed.get(r.monitor.as_str()).copied().unwrap_or(false) {
            for p in &r.phases {
                push(&phase_metric(p.phase), m, p.ms, Unit::Milliseconds);
            }
            if let Some(mb) = &r.mailbox {
                push("MailboxMessages", m, mb.messages as f64, Unit::Count);
                push("MailboxSize", m, mb.octets as f64, Unit::Bytes);
            }
        }
    }
    push("ProbeRuns", None, 1.0, Unit::Count);
    push(
        "MonitorsUp",
        None,
        (summary.up + summary.degraded) as f64,
        Unit::Count,
    );
    push("MonitorsDown", None, summary.down as f64, Unit::Count);
    push(
        "RunDuration",
        None,
        summary.duration_ms as f64,
        Unit::Milliseconds,
    );
    data
}

fn phase_metric(p: Phase) -> String {
    let name = p.as_str();
    let mut chars = name.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_default();
    format!("{first}{}Time", chars.as_str())
}

/// Probe, publish and alert. `config` has its credentials resolved;
/// `deadline` bounds the probing (publishing comes after it).
pub async fn execute<M, A, S>(
    config: &Config,
    namespace: &str,
    shard: Shard,
    deadline: Instant,
    metrics_sink: &M,
    alert_sink: &A,
    state: &S,
) -> RunSummary
where
    M: MetricsSink,
    A: AlertSink,
    S: StateStore,
{
    let started = Instant::now();
    let started_ms = now_ms();
    let in_shard = |name: &str| run::shard_of(name, shard.shards) == shard.shard;
    // Shard by dependency group: a dependency is probed in the same run as
    // the monitors that need it.
    let monitors: Vec<_> = config
        .monitors
        .iter()
        .filter(|m| in_shard(&m.shard_key))
        .cloned()
        .collect();
    let depends_on: HashMap<String, Vec<String>> = monitors
        .iter()
        .filter(|m| !m.depends_on.is_empty())
        .map(|m| (m.target.name.clone(), m.depends_on.clone()))
        .collect();
    let settings: HashMap<String, _> = monitors
        .iter()
        .map(|m| (m.target.name.clone(), m.alert.clone()))
        .collect();
    // Round trips need their outstanding messages before they run.
    let mut monitors = monitors;
    let roundtrips: Vec<String> = monitors
        .iter()
        .filter(|m| m.roundtrip.is_some())
        .map(|m| m.target.name.clone())
        .collect();
    let mut roundtrip_state_error = None;
    if !roundtrips.is_empty() {
        match state.load(&roundtrips).await {
            Ok(states) => {
                for m in &mut monitors {
                    if let (Some(rt), Some(st)) = (m.roundtrip.as_mut(), states.get(&m.target.name))
                    {
                        rt.state = st.roundtrip.clone().unwrap_or_default();
                    }
                }
            }
            // Without its state a round trip would reuse sequence numbers
            // and forget what it awaits: it is not run this time.
            Err(e) => roundtrip_state_error = Some(e.to_string()),
        }
    }
    if roundtrip_state_error.is_some() {
        monitors.retain(|m| m.roundtrip.is_none());
    }
    let mut probed = run::run_all(monitors, &config.run, deadline).await;
    if let Some(e) = roundtrip_state_error {
        for name in roundtrips {
            probed.skipped.push(run::Skipped {
                monitor: name,
                reason: format!("round trip not run: its state could not be loaded: {e}"),
            });
        }
    }
    run::apply_dependencies(&mut probed.results, &depends_on);

    let count = |s: Status| probed.results.iter().filter(|r| r.status == s).count();
    let mut summary = RunSummary {
        started_at: crate::net::rfc3339(started_ms / 1000),
        duration_ms: started.elapsed().as_millis() as u64,
        shard,
        probed: probed.results.len(),
        up: count(Status::Up),
        degraded: count(Status::Degraded),
        down: count(Status::Down),
        failures: probed
            .results
            .iter()
            .filter(|r| r.status != Status::Up)
            .map(|r| FailureLine {
                monitor: r.monitor.clone(),
                status: r.status,
                failure: r.failure,
                phase: r.failed_phase,
                message: r.message.clone(),
            })
            .collect(),
        config_problems: config
            .problems
            .iter()
            .filter(|p| in_shard(&p.monitor))
            .cloned()
            .collect(),
        skipped: probed.skipped,
        alerts_sent: Vec::new(),
        alerts_failed: Vec::new(),
        metrics_published: 0,
        metrics_unpublished: 0,
        metric_errors: Vec::new(),
        state_errors: Vec::new(),
        results: Vec::new(),
    };

    // Metrics: this run's, after whatever an earlier run could not publish.
    let now = now_ms();
    let mut data = match state.load_pending_metrics().await {
        Ok(pending) => pending
            .into_iter()
            .filter(|d| now - d.timestamp_ms < MAX_PENDING_AGE_MS)
            .collect(),
        Err(e) => {
            summary.state_errors.push(format!("pending metrics: {e}"));
            Vec::new()
        }
    };
    let had_pending = !data.is_empty();
    data.extend(metrics(config, &probed.results, &summary, now));
    let report = metrics_sink.publish(namespace, data).await;
    summary.metrics_published = report.published;
    summary.metrics_unpublished = report.failed.len();
    summary.metric_errors = report.errors;
    if had_pending || !report.failed.is_empty() {
        let mut keep = report.failed;
        if keep.len() > MAX_PENDING_METRICS {
            // Keep the newest; say how many were dropped.
            let drop = keep.len() - MAX_PENDING_METRICS;
            keep.drain(..drop);
            summary.metric_errors.push(format!(
                "{drop} unpublished values dropped (over {MAX_PENDING_METRICS} pending)"
            ));
        }
        if let Err(e) = state.save_pending_metrics(&keep).await {
            summary.state_errors.push(format!("pending metrics: {e}"));
        }
    }

    // Alerts and state.
    let names: Vec<String> = probed.results.iter().map(|r| r.monitor.clone()).collect();
    match state.load(&names).await {
        Err(e) => {
            // Without the last state, a transition cannot be told from a
            // steady state: alerting now would repeat old alerts.
            summary
                .state_errors
                .push(format!("alert state not loaded, no alerts this run: {e}"));
        }
        Ok(previous) => {
            for r in &probed.results {
                let Some(settings) = settings.get(&r.monitor) else {
                    continue;
                };
                let prev = previous.get(&r.monitor);
                let mut step = alert::evaluate(prev, r, settings, now);
                if let Some(next) = r.roundtrip.as_ref().and_then(|f| f.next_state.clone()) {
                    step.next.roundtrip = Some(next);
                }
                if !deliver(&step.alerts, alert_sink, &mut summary).await {
                    continue;
                }
                if prev.is_some_and(|p| same_state(p, &step.next)) {
                    continue;
                }
                if let Err(e) = state.save(&step.next).await {
                    summary.state_errors.push(format!("{}: {e}", r.monitor));
                }
            }
        }
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary.results = probed.results;
    summary
}

/// Send every alert; true only if all were accepted.
async fn deliver<A: AlertSink>(alerts: &[Alert], sink: &A, summary: &mut RunSummary) -> bool {
    let mut all = true;
    for a in alerts {
        match sink.send(a).await {
            Ok(()) => summary
                .alerts_sent
                .push(format!("{}: {}", a.monitor, a.kind.as_str())),
            Err(e) => {
                all = false;
                summary.alerts_failed.push(AlertFailure {
                    monitor: a.monitor.clone(),
                    kind: a.kind.as_str(),
                    error: e.to_string(),
                });
            }
        }
    }
    all
}

/// Whether saving would change anything but the bookkeeping: a steady
/// fleet then costs no writes at all.
fn same_state(prev: &alert::MonitorState, next: &alert::MonitorState) -> bool {
    let mut a = prev.clone();
    let mut b = next.clone();
    a.version = 0;
    b.version = 0;
    a.last_result_ms = 0;
    b.last_result_ms = 0;
    a == b
}
