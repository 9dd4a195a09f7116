//! Ports: one trait per outside system the pipeline talks to. Each has an
//! AWS adapter (`aws`) and a local one (`local`); the engine sees only these.

use std::collections::HashMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, MonitorState};
// Below the ports: `credentials::SecretSource`, which `oauth2` (and so
// `probe`) needs, reports it too.
pub use crate::outside::SinkError;

/// Units as CloudWatch names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    Milliseconds,
    Count,
    Bytes,
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Milliseconds => "Milliseconds",
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// One metric value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Datum {
    pub name: String,
    /// `None` for run-level metrics, the monitor's name otherwise.
    pub monitor: Option<String>,
    /// The `Shard` dimension (run-level metrics that a per-shard alarm
    /// watches, `ProbeRuns`); `None` for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    pub value: f64,
    pub unit: Unit,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Multi-vantage runs: the vantage whose own view this is (a
    /// `Vantage` dimension next to `Monitor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
}

/// What a metrics publish achieved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublishReport {
    pub published: usize,
    /// Values that could not be published, kept for the next run.
    pub failed: Vec<Datum>,
    pub requests: usize,
    pub errors: Vec<String>,
}

pub trait MetricsSink: Sync {
    fn publish(
        &self,
        namespace: &str,
        data: Vec<Datum>,
    ) -> impl Future<Output = PublishReport> + Send;
}

pub trait AlertSink: Sync {
    /// Ok once the alert is accepted for delivery (SNS returned a message id).
    fn send(&self, alert: &Alert) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// What one run changes in the state store, written in one go: a first
/// run of 10,000 monitors is one file write or 10,000 single-item puts,
/// not 10,000 rewrites.
#[derive(Debug, Clone, Default)]
pub struct StateChanges {
    /// The shard whose rows (pending metrics) these are.
    pub shard: u32,
    /// Monitor states to write; each over `version - 1` of what is stored.
    pub monitors: Vec<MonitorState>,
    /// The shard's unpublished metrics, replacing what is stored; `None`
    /// leaves them as they are.
    pub pending_metrics: Option<Vec<Datum>>,
}

impl StateChanges {
    pub fn is_empty(&self) -> bool {
        self.monitors.is_empty() && self.pending_metrics.is_none()
    }
}

/// What a save achieved.
#[derive(Debug, Clone, Default)]
pub struct SaveReport {
    /// Write requests made (file writes, DynamoDB `PutItem`s).
    pub writes: usize,
    /// What was not saved, one line each (a version conflict names its
    /// monitor; an outage names the call).
    pub errors: Vec<SinkError>,
}

/// The version rule of `StateChanges`, shared by every store that can
/// check it: `next` is written only over exactly `next.version - 1` (0 for
/// a monitor never saved), so a run that loaded an older state cannot undo
/// what another run saved since. `Err` is the message for `SaveReport`.
pub fn check_version(stored: Option<&MonitorState>, next: &MonitorState) -> Result<(), String> {
    let current = stored.map(|s| s.version).unwrap_or(0);
    if current.checked_add(1) == Some(next.version) {
        return Ok(());
    }
    Err(version_conflict(
        &next.monitor,
        current,
        next.version.saturating_sub(1),
    ))
}

/// How every store words a refused stale state: the version it found and
/// the one the state follows.
pub fn version_conflict(monitor: &str, found: u64, expected: u64) -> String {
    format!("{monitor}: state moved on elsewhere (version {found}, expected {expected})")
}

/// Alert state per monitor, plus metrics that still await publishing (one
/// row per shard, so concurrent shards never share one).
///
/// The contract (tests/state_store.rs runs it against every adapter):
/// `load` returns only the names it holds; what `save` wrote, `load` gives
/// back unchanged; pending metrics are per shard, `Some(vec![])` clears a
/// shard's and `None` leaves them. A state that breaks `check_version` is
/// refused, one error per monitor, and the others are still saved.
pub trait StateStore: Sync {
    fn load(
        &self,
        monitors: &[String],
    ) -> impl Future<Output = Result<HashMap<String, MonitorState>, SinkError>> + Send;
    /// Write a run's changes in as few requests as the store allows.
    fn save(&self, changes: StateChanges) -> impl Future<Output = SaveReport> + Send;
    fn load_pending_metrics(
        &self,
        shard: u32,
    ) -> impl Future<Output = Result<Vec<Datum>, SinkError>> + Send;
}
