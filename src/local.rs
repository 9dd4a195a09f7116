//! Local adapters: state in a JSON file, metrics as JSON lines or CloudWatch
//! EMF, alerts printed. What `pop3-probe run` uses without AWS.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, MonitorState};
use crate::ports::{
    check_version, AlertSink, Datum, MetricsSink, PublishReport, SaveReport, SinkError,
    StateChanges, StateStore,
};

/// The marker that makes a file a pop3-probe state file: a file without it
/// is never overwritten (`--state package.json` must not replace it).
pub const STATE_FORMAT: &str = "pop3-probe-state";
/// The layout version this build writes and reads.
pub const STATE_FORMAT_VERSION: u64 = 2;

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    format: String,
    format_version: u64,
    #[serde(default)]
    monitors: BTreeMap<String, MonitorState>,
    /// Unpublished metrics per shard (decimal shard index).
    #[serde(default)]
    pending_metrics: BTreeMap<String, Vec<Datum>>,
}

/// What version 1 wrote (no marker; pending metrics shared by all shards).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyStateFile {
    monitors: BTreeMap<String, MonitorState>,
    pending_metrics: Vec<Datum>,
}

impl StateFile {
    fn empty() -> StateFile {
        StateFile {
            format: STATE_FORMAT.into(),
            format_version: STATE_FORMAT_VERSION,
            ..Default::default()
        }
    }

    /// Read a state file, refusing anything that is not one.
    fn parse(path: &Path, text: &str) -> Result<StateFile, String> {
        let not_ours = |why: String| {
            format!(
                "{} is not a pop3-probe state file ({why}); refusing to overwrite it: give --state a new path or the state file of an earlier run",
                path.display()
            )
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| not_ours(format!("not JSON: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(not_ours("not a JSON object".into()));
        };
        match object.get("format") {
            Some(serde_json::Value::String(f)) if f == STATE_FORMAT => {}
            Some(other) => return Err(not_ours(format!("\"format\" is {other}"))),
            None => {
                // Written before the marker existed: exactly these two keys.
                let legacy: LegacyStateFile = serde_json::from_value(value.clone())
                    .map_err(|e| not_ours(format!("no \"format\": {STATE_FORMAT:?} ({e})")))?;
                let mut pending = BTreeMap::new();
                if !legacy.pending_metrics.is_empty() {
                    pending.insert("0".to_string(), legacy.pending_metrics);
                }
                return Ok(StateFile {
                    monitors: legacy.monitors,
                    pending_metrics: pending,
                    ..StateFile::empty()
                });
            }
        }
        let version = object.get("format_version").and_then(|v| v.as_u64());
        match version {
            Some(v) if v == STATE_FORMAT_VERSION => {}
            Some(v) if v > STATE_FORMAT_VERSION => {
                return Err(format!(
                    "{}: format_version {v} was written by a newer pop3-probe (this one reads {STATE_FORMAT_VERSION})",
                    path.display()
                ))
            }
            _ => {
                return Err(not_ours(format!(
                    "format_version must be {STATE_FORMAT_VERSION}"
                )))
            }
        }
        serde_json::from_value(value)
            .map_err(|e| format!("{}: state file is damaged: {e}", path.display()))
    }
}

/// Alert state in one JSON file, rewritten atomically (a fresh temporary
/// file + rename) so a crash leaves either the old or the new state.
pub struct FileState {
    path: PathBuf,
    data: Mutex<StateFile>,
    writes: std::sync::atomic::AtomicUsize,
}

/// The temporary file for the `n`th attempt at writing `path`: beside it,
/// so the rename stays inside one file system.
pub fn temp_path(path: &Path, n: u32) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Replace `path` with `bytes` in one step: a temporary file beside it,
/// created `O_CREAT|O_EXCL|O_NOFOLLOW` with `mode` (so it never follows a
/// symbolic link or reuses a file someone planted: a name that exists is
/// skipped), synced, renamed over `path`, then the directory synced so the
/// rename is durable. The one writer of every file the probe replaces.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut attempt = 0;
    let (tmp, mut f) = loop {
        let tmp = temp_path(path, attempt);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    // The umask may have narrowed `mode`; a world-readable file (the
    // textfile collector's) must be readable whatever it is.
    let written = f
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| f.write_all(bytes))
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Open `path` for appending, refusing a symbolic link (a root-run probe
/// must not append to whatever a local user points the name at) and
/// anything that is not a regular file (a FIFO would block the run).
pub fn open_append_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other("is a symbolic link; refusing to follow it")
            } else {
                e
            }
        })?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("is not a regular file"));
    }
    Ok(f)
}

impl FileState {
    pub fn open(path: &Path) -> Result<FileState, SinkError> {
        let data = match std::fs::read_to_string(path) {
            Ok(text) => {
                StateFile::parse(path, &text).map_err(|e| SinkError::new("state file", e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::empty(),
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
            writes: Default::default(),
        })
    }

    /// How many times the file was written (the batching test counts them).
    pub fn writes(&self) -> usize {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn write(&self, data: &StateFile) -> Result<(), SinkError> {
        let err = |what: &str, e: std::io::Error| {
            SinkError::new(
                "state file",
                format!("cannot write {} ({what}): {e}", self.path.display()),
            )
        };
        let text = serde_json::to_vec_pretty(data)
            .map_err(|e| SinkError::new("state file", e.to_string()))?;
        replace_file(&self.path, &text, 0o600).map_err(|e| err("temporary file", e))?;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
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

    async fn save(&self, changes: StateChanges) -> SaveReport {
        let mut report = SaveReport::default();
        if changes.is_empty() {
            return report;
        }
        let Ok(mut guard) = self.data.lock() else {
            report
                .errors
                .push(SinkError::new("state file", "lock poisoned"));
            return report;
        };
        // Apply to a copy: if the write fails, memory keeps what the file
        // holds, and the next run starts from there.
        let mut next = StateFile {
            format: STATE_FORMAT.into(),
            format_version: STATE_FORMAT_VERSION,
            monitors: guard.monitors.clone(),
            pending_metrics: guard.pending_metrics.clone(),
        };
        for state in changes.monitors {
            if let Err(e) = check_version(next.monitors.get(&state.monitor), &state) {
                report.errors.push(SinkError::new("state file", e));
                continue;
            }
            next.monitors.insert(state.monitor.clone(), state);
        }
        if let Some(pending) = changes.pending_metrics {
            let key = changes.shard.to_string();
            if pending.is_empty() {
                next.pending_metrics.remove(&key);
            } else {
                next.pending_metrics.insert(key, pending);
            }
        }
        report.writes = 1;
        match self.write(&next) {
            Ok(()) => *guard = next,
            Err(e) => report.errors.push(e),
        }
        report
    }

    async fn load_pending_metrics(&self, shard: u32) -> Result<Vec<Datum>, SinkError> {
        self.with(|d| {
            d.pending_metrics
                .get(&shard.to_string())
                .cloned()
                .unwrap_or_default()
        })
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
    let mut dims: Vec<&str> = Vec::new();
    if d.monitor.is_some() {
        dims.push("Monitor");
    }
    if d.vantage.is_some() {
        dims.push("Vantage");
    }
    if d.shard.is_some() {
        dims.push("Shard");
    }
    let dims = vec![dims];
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
    if let Some(v) = &d.vantage {
        doc["Vantage"] = serde_json::json!(v);
    }
    if let Some(shard) = d.shard {
        doc["Shard"] = serde_json::json!(shard.to_string());
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
                    "vantage": d.vantage,
                    "shard": d.shard.map(|s| s.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn changes(monitors: &[&str]) -> StateChanges {
        StateChanges {
            shard: 0,
            monitors: monitors
                .iter()
                .map(|m| MonitorState::new(m, 0))
                .map(|mut s| {
                    s.version = 1;
                    s
                })
                .collect(),
            pending_metrics: None,
        }
    }

    #[tokio::test]
    async fn a_symlink_at_the_temporary_path_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let state = dir.path().join("state.json");
        // The old fixed name, and every name this process would try.
        symlink(&victim, state.with_extension("tmp")).unwrap();
        for n in 0..4 {
            symlink(&victim, temp_path(&state, n)).unwrap();
        }
        let store = FileState::open(&state).unwrap();
        let saved = store.save(changes(&["a"])).await;
        assert!(saved.errors.is_empty(), "{:?}", saved.errors);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&state).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&state).unwrap();
        assert!(text.contains("\"format\": \"pop3-probe-state\""), "{text}");
        // Reopened, it is ours.
        let again = FileState::open(&state).unwrap();
        assert_eq!(again.load(&["a".into()]).await.unwrap().len(), 1);
    }

    #[test]
    fn a_json_file_that_is_not_a_state_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("package.json");
        let original = r#"{"name": "x", "version": "1.0.0", "monitors": {}}"#;
        std::fs::write(&path, original).unwrap();
        let err = FileState::open(&path).err().expect("refused");
        assert!(
            err.message.contains("is not a pop3-probe state file"),
            "{err}"
        );
        assert!(err.message.contains("refusing to overwrite"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
        for text in ["[]", "not json", r#"{"format": "other"}"#] {
            std::fs::write(&path, text).unwrap();
            assert!(FileState::open(&path).is_err(), "{text}");
        }
        // A newer layout is refused, not downgraded.
        std::fs::write(
            &path,
            r#"{"format": "pop3-probe-state", "format_version": 99}"#,
        )
        .unwrap();
        let err = FileState::open(&path).err().expect("refused");
        assert!(err.message.contains("newer pop3-probe"), "{err}");
    }

    #[tokio::test]
    async fn a_state_file_from_before_the_marker_is_read_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut st = MonitorState::new("old", 5);
        st.version = 3;
        let legacy = serde_json::json!({
            "monitors": {"old": st},
            "pending_metrics": [{"name": "ProbeRuns", "monitor": null, "value": 1.0,
                                  "unit": "Count", "timestamp_ms": 7}],
        });
        std::fs::write(&path, legacy.to_string()).unwrap();
        let store = FileState::open(&path).unwrap();
        assert_eq!(store.load(&["old".into()]).await.unwrap()["old"].version, 3);
        assert_eq!(store.load_pending_metrics(0).await.unwrap().len(), 1);
        assert!(store.load_pending_metrics(1).await.unwrap().is_empty());
        let saved = store.save(changes(&["new"])).await;
        assert!(saved.errors.is_empty(), "{:?}", saved.errors);
        assert!(FileState::open(&path).is_ok());
    }

    #[tokio::test]
    async fn a_version_conflict_skips_that_monitor_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileState::open(&dir.path().join("s.json")).unwrap();
        store.save(changes(&["a"])).await;
        let saved = store.save(changes(&["a", "b"])).await;
        assert_eq!(saved.errors.len(), 1);
        assert!(
            saved.errors[0].message.contains("a: state moved on"),
            "{:?}",
            saved.errors
        );
        assert_eq!(saved.writes, 1);
        assert_eq!(store.writes(), 2);
        assert_eq!(store.load(&["b".into()]).await.unwrap().len(), 1);
    }

    #[test]
    fn metrics_appends_refuse_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("metrics.jsonl");
        symlink(&victim, &link).unwrap();
        let err = open_append_no_follow(&link).expect_err("refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // A FIFO is not a metrics file either (and must not block the run).
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(open_append_no_follow(&fifo).is_err());
        // A plain file is fine, and new ones are private.
        let plain = dir.path().join("new.jsonl");
        open_append_no_follow(&plain).unwrap();
        let mode = std::fs::metadata(&plain).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
