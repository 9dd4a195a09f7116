//! Local adapters: state in a JSON file, metrics as JSON lines or CloudWatch
//! EMF, alerts printed. What `pop3-probe run` uses without AWS.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, MonitorState};
use crate::sinks::{AlertSink, Datum, MetricsSink, PublishReport, SinkError, StateStore};

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    #[serde(default)]
    monitors: BTreeMap<String, MonitorState>,
    #[serde(default)]
    pending_metrics: Vec<Datum>,
}

/// Alert state in one JSON file, rewritten atomically (temp file + rename)
/// so a crash leaves either the old or the new state, never half.
pub struct FileState {
    path: PathBuf,
    data: Mutex<StateFile>,
}

impl FileState {
    pub fn open(path: &Path) -> Result<FileState, SinkError> {
        let data = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                SinkError::new(
                    "state file",
                    format!("{} is not a pop3-probe state file: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(e) => {
                return Err(SinkError::new(
                    "state file",
                    format!("cannot read {}: {e}", path.display()),
                ))
            }
        };
        Ok(FileState {
            path: path.to_path_buf(),
            data: Mutex::new(data),
        })
    }

    fn write(&self, data: &StateFile) -> Result<(), SinkError> {
        let err = |e: std::io::Error| {
            SinkError::new(
                "state file",
                format!("cannot write {}: {e}", self.path.display()),
            )
        };
        let tmp = self.path.with_extension("tmp");
        let text = serde_json::to_vec_pretty(data)
            .map_err(|e| SinkError::new("state file", e.to_string()))?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&text).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }

    fn with<T>(&self, f: impl FnOnce(&mut StateFile) -> T) -> Result<T, SinkError> {
        let mut guard = self
            .data
            .lock()
            .map_err(|_| SinkError::new("state file", "lock poisoned"))?;
        Ok(f(&mut guard))
    }
}

impl StateStore for FileState {
    async fn load(&self, monitors: &[String]) -> Result<HashMap<String, MonitorState>, SinkError> {
        self.with(|d| {
            monitors
                .iter()
                .filter_map(|m| d.monitors.get(m).map(|s| (m.clone(), s.clone())))
                .collect()
        })
    }

    async fn save(&self, state: &MonitorState) -> Result<(), SinkError> {
        let mut guard = self
            .data
            .lock()
            .map_err(|_| SinkError::new("state file", "lock poisoned"))?;
        let current = guard
            .monitors
            .get(&state.monitor)
            .map(|s| s.version)
            .unwrap_or(0);
        if current + 1 != state.version {
            return Err(SinkError::new(
                "state file",
                format!(
                    "{}: state moved on elsewhere (version {current}, expected {})",
                    state.monitor,
                    state.version - 1
                ),
            ));
        }
        guard.monitors.insert(state.monitor.clone(), state.clone());
        self.write(&guard)
    }

    async fn load_pending_metrics(&self) -> Result<Vec<Datum>, SinkError> {
        self.with(|d| d.pending_metrics.clone())
    }

    async fn save_pending_metrics(&self, data: &[Datum]) -> Result<(), SinkError> {
        let mut guard = self
            .data
            .lock()
            .map_err(|_| SinkError::new("state file", "lock poisoned"))?;
        guard.pending_metrics = data.to_vec();
        self.write(&guard)
    }
}

/// How local metrics are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    /// One JSON object per value.
    JsonLines,
    /// CloudWatch Embedded Metric Format: one JSON document per value, which
    /// CloudWatch Logs turns into metrics when it reads them.
    Emf,
}

/// Metrics to a writer (stdout or a file), or nowhere.
pub struct WriterMetrics {
    out: Option<Mutex<Box<dyn Write + Send>>>,
    format: MetricsFormat,
}

impl WriterMetrics {
    pub fn new(out: Box<dyn Write + Send>, format: MetricsFormat) -> Self {
        WriterMetrics {
            out: Some(Mutex::new(out)),
            format,
        }
    }

    pub fn discard() -> Self {
        WriterMetrics {
            out: None,
            format: MetricsFormat::JsonLines,
        }
    }
}

/// One value as a CloudWatch EMF document.
pub fn emf(namespace: &str, d: &Datum) -> serde_json::Value {
    let dims: Vec<Vec<&str>> = if d.monitor.is_some() {
        vec![vec!["Monitor"]]
    } else {
        vec![vec![]]
    };
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": d.timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dims,
                "Metrics": [{"Name": d.name, "Unit": d.unit.as_str()}],
            }],
        },
    });
    doc[d.name.as_str()] = serde_json::json!(d.value);
    if let Some(m) = &d.monitor {
        doc["Monitor"] = serde_json::json!(m);
    }
    doc
}

impl MetricsSink for WriterMetrics {
    async fn publish(&self, namespace: &str, data: Vec<Datum>) -> PublishReport {
        let Some(out) = &self.out else {
            return PublishReport {
                published: data.len(),
                ..Default::default()
            };
        };
        let mut report = PublishReport::default();
        let Ok(mut w) = out.lock() else {
            report.errors.push("metrics writer lock poisoned".into());
            report.failed = data;
            return report;
        };
        for d in data {
            let line = match self.format {
                MetricsFormat::JsonLines => serde_json::json!({
                    "namespace": namespace, "metric": d.name, "monitor": d.monitor,
                    "value": d.value, "unit": d.unit.as_str(), "timestamp_ms": d.timestamp_ms,
                }),
                MetricsFormat::Emf => emf(namespace, &d),
            };
            match writeln!(w, "{line}") {
                Ok(()) => report.published += 1,
                Err(e) => {
                    report.errors.push(e.to_string());
                    report.failed.push(d);
                }
            }
        }
        let _ = w.flush();
        report.requests = 1;
        report
    }
}

/// Alerts printed to a writer (stderr by default).
pub struct PrintAlerts {
    out: Mutex<Box<dyn Write + Send>>,
}

impl PrintAlerts {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        PrintAlerts {
            out: Mutex::new(out),
        }
    }
}

impl AlertSink for PrintAlerts {
    async fn send(&self, alert: &Alert) -> Result<(), SinkError> {
        let mut w = self
            .out
            .lock()
            .map_err(|_| SinkError::new("alerts", "lock poisoned"))?;
        writeln!(
            w,
            "=== ALERT {} [{}] {}\n{}",
            alert.kind.as_str(),
            alert.severity(),
            alert.subject,
            alert.body
        )
        .map_err(|e| SinkError::new("alerts", e.to_string()))
    }
}
