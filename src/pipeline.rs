//! One scheduled run, the same in Lambda and locally: select the shard,
//! probe, publish metrics, move each monitor's alert state forward.

use std::collections::HashMap;

use serde::Serialize;
use tokio::time::Instant;

use futures::StreamExt as _;

use crate::alert::{self, Alert, AlertFailure, MonitorState};
use crate::clock::now_ms;
use crate::config::{Config, ConfigProblem};
use crate::fleet::{self, Skipped};
use crate::metrics as names;
use crate::ports::{AlertSink, Datum, MetricsSink, StateChanges, StateStore, Unit};
use crate::probe::{FailureKind, Phase, ProbeResult, Status};
use crate::vantage::{NoVantages, Vantage, VantageStore};

/// Which part of the fleet this run probes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, schemars::JsonSchema,
)]
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
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FailureLine {
    pub monitor: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    pub message: String,
}

/// What a run did. Returned by the Lambda and printed by `run --json`: the
/// `run_summary` document of `crate::contract`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunSummary {
    pub document: crate::document::Document<crate::document::RunSummaryName>,
    pub schema_version: crate::document::SchemaVersion,
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
    /// Values from earlier runs that were re-sent this run.
    pub metrics_pending: usize,
    pub state_errors: Vec<String>,
    /// State write requests made (one file write, or one conditional
    /// `PutItem` per changed state).
    pub state_writes: usize,
    /// Multi-vantage runs: what the vantages together decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consensus: Option<crate::vantage::ConsensusSummary>,
    /// Every result of the run. Left out of the Lambda's returned value
    /// (which Lambda caps at 6 MB; 10,000 results are well over it): the
    /// Lambda logs each result as a `probe_result` line instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ProbeResult>,
}

impl RunSummary {
    /// Whether anything about the run itself (not the monitors) went wrong.
    pub fn has_delivery_errors(&self) -> bool {
        self.has_undelivered_alerts()
            || self.metrics_unpublished > 0
            || !self.state_errors.is_empty()
    }

    /// Whether alerts were lost this run: `run` exits non-zero and the
    /// Lambda invocation fails (after the state is saved), so the probe's
    /// own failure is heard.
    pub fn has_undelivered_alerts(&self) -> bool {
        !self.alerts_failed.is_empty()
    }
}

/// The most unpublished values kept for the next run (a DynamoDB item holds
/// 400 KB; a value is ~150 bytes as JSON).
pub const MAX_PENDING_METRICS: usize = 2000;
/// CloudWatch accepts values up to two weeks old; keep a margin.
const MAX_PENDING_AGE_MS: i64 = 13 * 24 * 3600 * 1000;

/// The metric values for one run's results (names and units from
/// [`crate::metrics`]).
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
    let mut data = Vec::with_capacity(results.len() * 3 + 9);
    let mut push = |name: &'static str, monitor: Option<&str>, value: f64| {
        let def = names::lookup(name);
        let unit = def.map_or(Unit::None, |d| d.unit);
        let shard = match def.map(|d| d.dimensions) {
            Some(names::Dimensions::Shard) => Some(summary.shard.shard),
            _ => None,
        };
        data.push(Datum {
            name: name.to_string(),
            monitor: monitor.map(str::to_string),
            shard,
            value,
            unit,
            timestamp_ms: now,
            vantage: None,
        });
    };
    for r in results {
        let m = Some(r.monitor.as_str());
        push(
            names::AVAILABILITY,
            m,
            if r.status == Status::Down { 0.0 } else { 1.0 },
        );
        // Latency of a service that answered; a timeout's "duration" is the
        // timeout, which would only pollute percentiles.
        if r.failure.is_none() || r.failure == Some(FailureKind::ResponseTimeCritical) {
            push(names::RESPONSE_TIME, m, r.response_time_ms);
        }
        // The round trip's own number: submission to arrival.
        if let Some(d) = r.roundtrip.as_ref().and_then(|f| f.delivery_ms) {
            push(names::DELIVERY_TIME, m, d);
        }
        if let Some(c) = r.tls.as_ref().and_then(|t| t.certificate.as_ref()) {
            push(
                names::CERTIFICATE_DAYS_REMAINING,
                m,
                c.days_remaining as f64,
            );
        }
        if detailed.get(r.monitor.as_str()).copied().unwrap_or(false) {
            // Delivery is published above already, detailed or not.
            for p in r.phases.iter().filter(|p| p.phase != Phase::Delivery) {
                push(names::phase_time(p.phase), m, p.ms);
            }
            if let Some(mb) = &r.mailbox {
                push(names::MAILBOX_MESSAGES, m, mb.messages as f64);
                push(names::MAILBOX_SIZE, m, mb.octets as f64);
            }
        }
    }
    push(names::PROBE_RUNS, None, 1.0);
    push(
        names::MONITORS_UP,
        None,
        (summary.up + summary.degraded) as f64,
    );
    push(names::MONITORS_DOWN, None, summary.down as f64);
    push(names::RUN_DURATION, None, summary.duration_ms as f64);
    push(
        names::ALERTS_FAILED,
        None,
        summary.alerts_failed.len() as f64,
    );
    push(names::METRICS_PENDING, None, summary.metrics_pending as f64);
    push(names::MONITORS_SKIPPED, None, summary.skipped.len() as f64);
    push(
        names::MONITORS_MISCONFIGURED,
        None,
        summary.config_problems.len() as f64,
    );
    data
}

/// When a run must be done: probing stops at `probing`; alerts, metrics
/// and the one state save share what is left until `finish`.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub probing: Instant,
    pub finish: Instant,
}

/// Time after the probing deadline for delivery when the caller sets no
/// harder limit (`run` on a terminal): the Lambda's largest safety margin.
pub const DELIVERY_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl From<Instant> for Deadlines {
    fn from(probing: Instant) -> Deadlines {
        Deadlines {
            probing,
            finish: probing + DELIVERY_GRACE,
        }
    }
}

/// How many alerts are in flight at once (SNS takes thousands a second;
/// one at a time, a fleet-wide outage would outlast the run).
const ALERTS_IN_FLIGHT: usize = 8;

/// Probe, alert, publish, and save the state once. `config` has its
/// credentials resolved; `deadline` bounds the probing, and (given as
/// [`Deadlines`]) everything after it.
pub async fn execute<M, A, S>(
    config: &Config,
    namespace: &str,
    shard: Shard,
    deadline: impl Into<Deadlines>,
    metrics_sink: &M,
    alert_sink: &A,
    state: &S,
) -> RunSummary
where
    M: MetricsSink,
    A: AlertSink,
    S: StateStore,
{
    execute_with_vantage(
        config,
        namespace,
        shard,
        deadline,
        metrics_sink,
        alert_sink,
        state,
        None::<&Vantage<NoVantages>>,
    )
    .await
}

/// [`execute`], as one of several vantages when `vantage` is set: the
/// verdicts go to the vantage store, the up/down alerts come from the
/// consensus instead of this run's own state machine, and only the lead
/// vantage sends the other alerts (drift, certificates, config errors) and
/// moves the per-monitor state rows.
#[allow(clippy::too_many_arguments)]
pub async fn execute_with_vantage<M, A, S, V>(
    config: &Config,
    namespace: &str,
    shard: Shard,
    deadline: impl Into<Deadlines>,
    metrics_sink: &M,
    alert_sink: &A,
    state: &S,
    vantage: Option<&Vantage<'_, V>>,
) -> RunSummary
where
    M: MetricsSink,
    A: AlertSink,
    S: StateStore,
    V: VantageStore,
{
    let deadlines: Deadlines = deadline.into();
    let started = Instant::now();
    let started_ms = now_ms();
    let in_shard = |name: &str| fleet::shard_of(name, shard.shards) == shard.shard;
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
    let mut probed = fleet::probe_all(monitors, &config.run, deadlines.probing).await;
    if let Some(e) = roundtrip_state_error {
        for name in roundtrips {
            probed.skipped.push(fleet::Skipped {
                monitor: name,
                reason: format!("round trip not run: its state could not be loaded: {e}"),
            });
        }
    }
    fleet::apply_dependencies(&mut probed.results, &depends_on);

    let count = |s: Status| probed.results.iter().filter(|r| r.status == s).count();
    let mut summary = RunSummary {
        document: Default::default(),
        schema_version: crate::document::SchemaVersion,
        started_at: crate::clock::rfc3339(started_ms / 1000),
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
        metrics_pending: 0,
        state_errors: Vec::new(),
        state_writes: 0,
        consensus: None,
        results: Vec::new(),
    };

    // What is left after probing is shared out: alerts first (they matter
    // most), then metrics, then the one state save, which must happen
    // before the end so that nothing delivered is forgotten.
    let after_probing = Instant::now();
    let left = deadlines.finish.saturating_duration_since(after_probing);
    let alerts_until = after_probing + left / 2;
    let metrics_until = after_probing + left * 3 / 4;

    // Alerts and the state they move forward.
    let now = now_ms();
    let mut changes = StateChanges {
        shard: shard.shard,
        ..Default::default()
    };
    // Vantages decide first: the up/down alerts are the consensus', and
    // `Availability` below is the consensus too.
    let consensus = match vantage {
        Some(v) => {
            let decided = tokio::time::timeout_at(
                alerts_until,
                crate::vantage::decide(v, config, &probed.results, alert_sink, now),
            )
            .await;
            Some(decided.unwrap_or_else(|_| crate::vantage::ConsensusSummary {
                vantage: v.name.clone(),
                // Claimed alerts not sent are taken over after their lease:
                // a late duplicate, never a loss.
                errors: vec!["the consensus did not finish in the run's time for alerts".into()],
                ..Default::default()
            }))
        }
        None => None,
    };
    // Which alerts this run's own state machine may send: all of them
    // alone; under a consensus, the lead sends what is not about up or
    // down, and the others send nothing (their rows are the lead's).
    let own_alerts = |a: &Alert| match &consensus {
        None => true,
        Some(c) => c.lead && !crate::vantage::is_status_alert(a.kind),
    };
    let own_state = consensus.as_ref().is_none_or(|c| c.lead);
    let names: Vec<String> = probed
        .results
        .iter()
        .map(|r| r.monitor.clone())
        .chain(summary.config_problems.iter().map(|p| p.monitor.clone()))
        .collect();
    let loaded = match own_state {
        true => Some(state.load(&names).await),
        false => None,
    };
    match loaded {
        None => {}
        Some(Err(e)) => {
            // Without the last state, a transition cannot be told from a
            // steady state: alerting now would repeat old alerts.
            summary
                .state_errors
                .push(format!("alert state not loaded, no alerts this run: {e}"));
        }
        Some(Ok(previous)) => {
            let mut steps: Vec<(Option<&MonitorState>, alert::Step)> = Vec::new();
            for r in &probed.results {
                let Some(settings) = settings.get(&r.monitor) else {
                    continue;
                };
                let prev = previous.get(&r.monitor);
                let mut step = alert::evaluate(prev, r, settings, now);
                step.alerts.retain(|a| own_alerts(a));
                // A round trip's outstanding messages ride with its state.
                if let Some(next) = r.roundtrip.as_ref().and_then(|f| f.next_state.clone()) {
                    step.next.roundtrip = Some(next);
                }
                steps.push((prev, step));
            }
            for p in &summary.config_problems {
                let prev = previous.get(&p.monitor);
                let mut step =
                    alert::config_problem(prev, &p.monitor, &p.error.path, &p.error.message, now);
                step.alerts.retain(|a| own_alerts(a));
                steps.push((prev, step));
            }
            let delivered: Vec<_> = futures::stream::iter(steps)
                .map(|(prev, step)| async move {
                    let outcome = deliver(&step.alerts, alert_sink, alerts_until).await;
                    (prev, step, outcome)
                })
                .buffered(ALERTS_IN_FLIGHT)
                .collect()
                .await;
            for (prev, step, outcome) in delivered {
                let all_sent = outcome.iter().all(Result::is_ok);
                for (a, r) in step.alerts.iter().zip(outcome) {
                    match r {
                        Ok(()) => {
                            summary
                                .alerts_sent
                                .push(format!("{}: {}", a.monitor, a.kind.as_str()))
                        }
                        Err(error) => summary.alerts_failed.push(AlertFailure {
                            monitor: a.monitor.clone(),
                            kind: a.kind.as_str(),
                            error,
                        }),
                    }
                }
                // A lost alert is retried next run from the old state.
                if !all_sent || prev.is_some_and(|p| same_state(p, &step.next)) {
                    continue;
                }
                changes.monitors.push(step.next);
            }
        }
    }

    // Metrics: this run's, after whatever an earlier run could not publish.
    let mut data = match state.load_pending_metrics(shard.shard).await {
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
    summary.metrics_pending = data.len();
    summary.duration_ms = started.elapsed().as_millis() as u64;
    let mut fresh = metrics(config, &probed.results, &summary, now);
    if let Some(c) = &consensus {
        crate::vantage::adjust_metrics(&mut fresh, c, config.consensus.metrics, now);
    }
    data.extend(fresh);
    let total = data.len();
    let report =
        match tokio::time::timeout_at(metrics_until, metrics_sink.publish(namespace, data.clone()))
            .await
        {
            Ok(r) => r,
            // Unknown how much arrived: keep it all (a repeat is one more
            // sample; a loss is a gap).
            Err(_) => crate::ports::PublishReport {
                failed: data,
                errors: vec![format!(
                "publishing {total} values did not finish in the run's time; kept for the next run"
            )],
                ..Default::default()
            },
        };
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
        changes.pending_metrics = Some(keep);
    }

    // One save for the whole run.
    if !changes.is_empty() {
        let n = changes.monitors.len();
        match tokio::time::timeout_at(deadlines.finish, state.save(changes)).await {
            Ok(saved) => {
                summary.state_writes = saved.writes;
                summary
                    .state_errors
                    .extend(saved.errors.into_iter().map(|e| e.to_string()));
            }
            Err(_) => summary.state_errors.push(format!(
                "saving the state of {n} monitors did not finish in the run's time; their alerts may repeat next run"
            )),
        }
    }
    if let Some(c) = consensus {
        summary.alerts_sent.extend(c.alerts_sent.iter().cloned());
        summary
            .alerts_failed
            .extend(c.alerts_failed.iter().cloned());
        summary
            .state_errors
            .extend(c.errors.iter().map(|e| format!("consensus: {e}")));
        summary.consensus = Some(c);
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary.results = probed.results;
    summary
}

/// Send a step's alerts in order, each bounded by `until`; what became of
/// each, in the same order.
async fn deliver<A: AlertSink>(
    alerts: &[Alert],
    sink: &A,
    until: Instant,
) -> Vec<Result<(), String>> {
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts {
        let r = match tokio::time::timeout_at(until, sink.send(a)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("not sent: the run's time for alerts was used up".to_string()),
        };
        out.push(r);
    }
    out
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
