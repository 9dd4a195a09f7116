//! The Lambda handler, kept in the library so tests can drive it with
//! local adapters. The binary only wires AWS clients to it.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::time::Instant;

use crate::alert::{self, MonitorState};
use crate::config::Config;
use crate::credentials::SecretSource;
use crate::pipeline::{self, RunSummary, Shard};
use crate::ports::{AlertSink, MetricsSink, StateChanges, StateStore};
use crate::probe::Status;
use crate::vantage::{NoVantages, Vantage, VantageStore};

/// What the function reads from its environment (set by infra/lambda.tf).
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_secret: String,
    pub namespace: Option<String>,
    pub topic_arn: String,
    pub state_table: String,
    /// The schedule's interval, for the LOGIN-DELAY warning.
    pub schedule: Option<Duration>,
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let need = |k: &str| get(k).ok_or_else(|| format!("environment variable {k} is not set"));
        Ok(Settings {
            config_secret: need("POP3_PROBE_CONFIG_SECRET")?,
            namespace: get("POP3_PROBE_NAMESPACE"),
            topic_arn: need("POP3_PROBE_TOPIC_ARN")?,
            state_table: need("POP3_PROBE_STATE_TABLE")?,
            schedule: match get("POP3_PROBE_SCHEDULE_SECONDS") {
                None => None,
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Some(Duration::from_secs(n)),
                    _ => {
                        return Err(format!(
                            "environment variable POP3_PROBE_SCHEDULE_SECONDS must be a positive number of seconds, not {v:?}"
                        ))
                    }
                },
            },
        })
    }
}

/// The invocation's input: `{"shard": i, "shards": n}`; `{}` means all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    #[serde(default)]
    pub shard: Option<u32>,
    #[serde(default)]
    pub shards: Option<u32>,
}

/// Why an invocation failed: the run could not happen at all, or it lost
/// alerts (the Lambda then reports the invocation as failed).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("invalid input: {0}")]
    Input(String),
    #[error("config secret {secret}: {message}")]
    Config { secret: String, message: String },
    /// The run happened and its state is saved, but alerts were lost: the
    /// invocation fails so that the Lambda's Errors metric (and whoever
    /// watches it) hears about it. The lost alerts are retried next run.
    #[error("{} alert(s) could not be delivered ({first}); the state is saved and they are retried next run", summary.alerts_failed.len())]
    AlertsUndelivered {
        first: String,
        summary: Box<RunSummary>,
    },
}

impl InvocationError {
    pub fn kind(&self) -> &'static str {
        match self {
            InvocationError::Input(_) => "InvalidInput",
            InvocationError::Config { .. } => "ConfigUnavailable",
            InvocationError::AlertsUndelivered { .. } => "AlertsUndelivered",
        }
    }
}

/// Time left in an invocation, from the runtime API's deadline header.
/// AWS sends the deadline as Unix time in milliseconds; local emulators
/// (cargo-lambda's `watch`) send a plain duration such as 600000. Anything
/// before 2001 as a timestamp is taken as a duration.
pub fn remaining_time(deadline_header_ms: u64, now_unix_ms: u64) -> Duration {
    const YEAR_2001_MS: u64 = 978_307_200_000;
    if deadline_header_ms < YEAR_2001_MS {
        Duration::from_millis(deadline_header_ms)
    } else {
        Duration::from_millis(deadline_header_ms.saturating_sub(now_unix_ms))
    }
}

/// Time kept back from the invocation's deadline for publishing: at least
/// 2 s, at most 10 s, a fifth of what is left in between.
pub fn safety_margin(remaining: Duration) -> Duration {
    (remaining / 5).clamp(Duration::from_secs(2), Duration::from_secs(10))
}

/// The config, cached across warm invocations and re-read after its TTL.
/// What is kept is the parsed document (credentials not yet read), so an
/// invocation parses it at most once, and a re-read that finds the same
/// text does not parse it again.
#[derive(Default)]
pub struct ConfigCache {
    cached: tokio::sync::Mutex<Option<Cached>>,
}

struct Cached {
    text: String,
    config: Config,
    at: Instant,
}

impl ConfigCache {
    async fn config<S: SecretSource>(&self, secrets: &S, id: &str) -> Result<Config, String> {
        let mut guard = self.cached.lock().await;
        if let Some(c) = guard.as_ref() {
            if c.at.elapsed() < c.config.run.secrets_ttl {
                return Ok(c.config.clone());
            }
        }
        let value = match secrets.secret(id).await {
            Ok(v) => v,
            // Monitoring goes on with the last good config rather than
            // stopping because Secrets Manager had a bad minute.
            Err(e) => match guard.as_ref() {
                Some(c) => {
                    tracing::warn!(error = %e, "config secret unreadable; using the last good copy");
                    return Ok(c.config.clone());
                }
                None => return Err(e.to_string()),
            },
        };
        let text = value.expose_secret();
        if let Some(c) = guard.as_mut() {
            if c.text == text {
                c.at = Instant::now();
                return Ok(c.config.clone());
            }
        }
        // The document's own TTL decides how long it is kept; a document
        // that does not parse is not cached, so the next run reads again.
        match Config::parse(text) {
            Ok(config) => {
                *guard = Some(Cached {
                    text: text.to_string(),
                    config: config.clone(),
                    at: Instant::now(),
                });
                Ok(config)
            }
            Err(e) => {
                *guard = None;
                Err(e.to_string())
            }
        }
    }
}

/// Name of the state row that tracks whether the probe itself can run, one
/// per shard (shards run concurrently and must not overwrite each other).
pub fn probe_row(shard: u32) -> String {
    format!("#probe:{shard}")
}

/// Time kept back from the invocation's very end for returning the result.
const RETURN_MARGIN: Duration = Duration::from_millis(500);

/// One invocation.
#[allow(clippy::too_many_arguments)]
pub async fn handle<Sec, M, A, St>(
    input: serde_json::Value,
    remaining: Duration,
    settings: &Settings,
    cache: &ConfigCache,
    secrets: &Sec,
    metrics: &M,
    alerts: &A,
    state: &St,
) -> Result<RunSummary, InvocationError>
where
    Sec: SecretSource,
    M: MetricsSink,
    A: AlertSink,
    St: StateStore,
{
    handle_with_vantage(
        input,
        remaining,
        settings,
        cache,
        secrets,
        metrics,
        alerts,
        state,
        None::<&Vantage<NoVantages>>,
    )
    .await
}

/// The vantage name from the environment: `POP3_PROBE_VANTAGE`, or the
/// function's region when `POP3_PROBE_MULTI_VANTAGE` is `true`; None runs
/// alone (one region, its own state machine).
pub fn vantage_from_env() -> Result<Option<String>, String> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let name = match get("POP3_PROBE_VANTAGE") {
        Some(n) => Some(n.trim().to_string()),
        None => match get("POP3_PROBE_MULTI_VANTAGE").as_deref().map(str::trim) {
            None | Some("false") => None,
            Some("true") => Some(
                get("AWS_REGION")
                    .or_else(|| get("AWS_DEFAULT_REGION"))
                    .ok_or("POP3_PROBE_MULTI_VANTAGE is true but AWS_REGION is not set: set POP3_PROBE_VANTAGE")?,
            ),
            Some(other) => {
                return Err(format!(
                    "environment variable POP3_PROBE_MULTI_VANTAGE must be true or false, not {other:?}"
                ))
            }
        },
    };
    if let Some(n) = &name {
        crate::consensus::validate_vantage_name(n)
            .map_err(|e| format!("environment variable POP3_PROBE_VANTAGE: {e}"))?;
    }
    Ok(name)
}

/// One invocation, as one of several vantages when `vantage` is set.
#[allow(clippy::too_many_arguments)]
pub async fn handle_with_vantage<Sec, M, A, St, V>(
    input: serde_json::Value,
    remaining: Duration,
    settings: &Settings,
    cache: &ConfigCache,
    secrets: &Sec,
    metrics: &M,
    alerts: &A,
    state: &St,
    vantage: Option<&Vantage<'_, V>>,
) -> Result<RunSummary, InvocationError>
where
    Sec: SecretSource,
    M: MetricsSink,
    A: AlertSink,
    St: StateStore,
    V: VantageStore,
{
    let started = Instant::now();
    let input: Input = if input.is_null() {
        Input::default()
    } else {
        serde_json::from_value(input).map_err(|e| InvocationError::Input(e.to_string()))?
    };
    let shard = Shard {
        shard: input.shard.unwrap_or(0),
        shards: input.shards.unwrap_or(1),
    };
    shard.validate().map_err(InvocationError::Input)?;

    let loaded: Result<Config, String> = match cache.config(secrets, &settings.config_secret).await
    {
        Ok(mut c) => {
            c.prepare_for_runner(secrets, settings.schedule).await;
            Ok(c)
        }
        Err(e) => Err(e),
    };
    let config = match loaded {
        Ok(c) => c,
        Err(message) => {
            let err = InvocationError::Config {
                secret: settings.config_secret.clone(),
                message,
            };
            tracing::error!(error = %err, "run aborted");
            probe_health(shard.shard, false, &err.to_string(), alerts, state).await;
            return Err(err);
        }
    };
    probe_health(shard.shard, true, "", alerts, state).await;
    let namespace = settings
        .namespace
        .clone()
        .unwrap_or_else(|| config.run.namespace.clone());
    let budget = remaining
        .saturating_sub(safety_margin(remaining))
        .min(config.run.deadline);
    let deadlines = pipeline::Deadlines {
        probing: started + budget,
        finish: started + remaining.saturating_sub(RETURN_MARGIN).max(budget),
    };
    let summary = pipeline::execute_with_vantage(
        &config, &namespace, shard, deadlines, metrics, alerts, state, vantage,
    )
    .await;
    for r in &summary.results {
        // The `probe_result` document, one line each (schema/result.schema.json).
        crate::contract::log_probe_result(r);
    }
    for p in &summary.config_problems {
        tracing::warn!(monitor = %p.monitor, error = %p.error, "monitor misconfigured");
    }
    for s in &summary.skipped {
        // Not probed for lack of time: the function's timeout (or the
        // run's deadline) is too short for the fleet.
        tracing::warn!(monitor = %s.monitor, reason = %s.reason, "monitor skipped");
    }
    tracing::info!(
        probed = summary.probed,
        up = summary.up,
        degraded = summary.degraded,
        down = summary.down,
        alerts_sent = summary.alerts_sent.len(),
        alerts_failed = summary.alerts_failed.len(),
        metrics_unpublished = summary.metrics_unpublished,
        duration_ms = summary.duration_ms,
        "run finished"
    );
    if summary.has_undelivered_alerts() {
        let first = summary
            .alerts_failed
            .first()
            .map(|a| format!("{} {}: {}", a.monitor, a.kind, a.error))
            .unwrap_or_default();
        let err = InvocationError::AlertsUndelivered {
            first,
            summary: Box::new(summary),
        };
        tracing::error!(error = %err, "alerts undelivered");
        return Err(err);
    }
    Ok(summary)
}

/// Alert once when the probe cannot run, and once when it can again; the
/// shard's `#probe` state row remembers which was last said. Best effort:
/// if the state store is the thing that is broken, alert anyway.
async fn probe_health<A: AlertSink, St: StateStore>(
    shard: u32,
    ok: bool,
    message: &str,
    alerts: &A,
    state: &St,
) {
    let now = crate::clock::now_ms();
    let row = probe_row(shard);
    let prev = state
        .load(std::slice::from_ref(&row))
        .await
        .map(|mut m| m.remove(&row));
    let was_down = matches!(&prev, Ok(Some(s)) if s.status == Status::Down);
    let unknown = prev.is_err();
    let alert = match (ok, was_down) {
        (false, false) => Some(alert::probe_error("config", message, now)),
        (true, true) => Some(alert::probe_recovered("config", now)),
        _ => None,
    };
    let Some(alert) = alert else { return };
    if alerts.send(&alert).await.is_err() || unknown {
        return;
    }
    let mut next = prev
        .ok()
        .flatten()
        .unwrap_or_else(|| MonitorState::new(&row, now));
    next.version += 1;
    next.status = if ok { Status::Up } else { Status::Down };
    next.since_ms = now;
    next.last_alert_ms = Some(now);
    next.last_result_ms = now;
    let saved = state
        .save(StateChanges {
            shard,
            monitors: vec![next],
            pending_metrics: None,
        })
        .await;
    for e in saved.errors {
        tracing::warn!(error = %e, "could not record the probe's own state");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_as_timestamp_or_duration() {
        let now = 1_795_000_000_000;
        assert_eq!(remaining_time(now + 55_000, now), Duration::from_secs(55));
        assert_eq!(remaining_time(now - 5, now), Duration::ZERO);
        // cargo lambda watch sends this, whatever the function's timeout.
        assert_eq!(remaining_time(600_000, now), Duration::from_secs(600));
    }

    #[test]
    fn margin_is_a_fifth_within_bounds() {
        assert_eq!(
            safety_margin(Duration::from_secs(60)),
            Duration::from_secs(10)
        );
        assert_eq!(
            safety_margin(Duration::from_secs(20)),
            Duration::from_secs(4)
        );
        assert_eq!(
            safety_margin(Duration::from_secs(3)),
            Duration::from_secs(2)
        );
    }
}
