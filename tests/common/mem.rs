//! In-memory sinks: what a run sends to metrics, alerts and state, kept
//! for assertions, with switches to make the next deliveries fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use pop3_probe::alert::{Alert, AlertKind, MonitorState};
use pop3_probe::ports::{
    check_version, AlertSink, Datum, MetricsSink, PublishReport, SaveReport, SinkError,
    StateChanges, StateStore,
};

#[derive(Default)]
pub struct MemState {
    pub rows: Mutex<HashMap<String, MonitorState>>,
    /// Refuse a stale state the way the file store does (an error in the
    /// report) instead of panicking. Off by default: in a pipeline test one
    /// run owns the store, so a conflict is a bug that must fail the test,
    /// and a report error alone could go unread.
    pub report_conflicts: bool,
    /// Unpublished metrics per shard.
    pub pending: Mutex<HashMap<u32, Vec<Datum>>>,
    /// Monitor rows written.
    pub saves: AtomicUsize,
    /// `save` calls that wrote something (one per run when batched).
    pub writes: AtomicUsize,
}

impl MemState {
    /// The store as the state-store contract test runs it.
    pub fn reporting_conflicts() -> Self {
        MemState {
            report_conflicts: true,
            ..Default::default()
        }
    }

    pub fn pending_of(&self, shard: u32) -> Vec<Datum> {
        self.pending
            .lock()
            .unwrap()
            .get(&shard)
            .cloned()
            .unwrap_or_default()
    }
}

impl StateStore for MemState {
    async fn load(&self, monitors: &[String]) -> Result<HashMap<String, MonitorState>, SinkError> {
        let rows = self.rows.lock().unwrap();
        Ok(monitors
            .iter()
            .filter_map(|m| rows.get(m).map(|s| (m.clone(), s.clone())))
            .collect())
    }
    async fn save(&self, changes: StateChanges) -> SaveReport {
        let mut rows = self.rows.lock().unwrap();
        let mut errors = Vec::new();
        for state in changes.monitors {
            // The library's own rule, so this store cannot drift from it.
            if let Err(e) = check_version(rows.get(&state.monitor), &state) {
                assert!(
                    self.report_conflicts,
                    "state saved over a newer version: {e}"
                );
                errors.push(SinkError::new("memory state", e));
                continue;
            }
            rows.insert(state.monitor.clone(), state);
            self.saves.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(p) = changes.pending_metrics {
            self.pending.lock().unwrap().insert(changes.shard, p);
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        SaveReport { writes: 1, errors }
    }
    async fn load_pending_metrics(&self, shard: u32) -> Result<Vec<Datum>, SinkError> {
        Ok(self.pending_of(shard))
    }
}

#[derive(Default)]
pub struct MemMetrics {
    pub got: Mutex<Vec<Datum>>,
    pub fail_next: AtomicUsize,
}

impl MetricsSink for MemMetrics {
    async fn publish(&self, _namespace: &str, data: Vec<Datum>) -> PublishReport {
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return PublishReport {
                failed: data,
                requests: 1,
                errors: vec!["throttled".into()],
                ..Default::default()
            };
        }
        let n = data.len();
        self.got.lock().unwrap().extend(data);
        PublishReport {
            published: n,
            requests: 1,
            ..Default::default()
        }
    }
}

#[derive(Default)]
pub struct MemAlerts {
    pub got: Mutex<Vec<Alert>>,
    pub fail_next: AtomicUsize,
}

impl AlertSink for MemAlerts {
    async fn send(&self, alert: &Alert) -> Result<(), SinkError> {
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return Err(SinkError::transient("sns", "throttled"));
        }
        self.got.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

impl MemAlerts {
    pub fn kinds(&self) -> Vec<(String, AlertKind)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|a| (a.monitor.clone(), a.kind))
            .collect()
    }
}
