//! Vantages: where the verdicts, heartbeats and consensus items live, and
//! the one protocol that turns them into exactly one decision per
//! transition across all vantages.
//!
//! The store is a small port: versioned JSON documents by key, read many at
//! once, written either unconditionally (a key with a single writer: one
//! vantage's heartbeat or verdict) or conditionally on the version (the
//! consensus and fleet items, which every vantage writes).
//!
//! The protocol, per monitor and run (docs/vantages.md states the
//! guarantee):
//! 1. Record this vantage's heartbeat and verdicts (unconditional).
//! 2. Read the fleet item and heartbeats; members whose heartbeat went
//!    stale leave with one `vantage_down` (a conditional write decides who
//!    announces it).
//! 3. Read the consensus item and the alive vantages' verdicts; decide
//!    (`crate::consensus::evaluate`). A decision that owes alerts records
//!    them as `unsent`, claimed by this vantage, in the same conditional
//!    write (version + 1 over the version read). Losing the write means
//!    another vantage decided first: read again and decide again (it now
//!    sees the transition taken).
//! 4. Send the claimed alerts; remove each accepted one from `unsent` with
//!    another conditional write. A vantage that dies between 3 and 4 leaves
//!    them `unsent`; the next evaluator takes the claim over once its lease
//!    has run out and sends them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::AlertFailure;
use crate::config::Config;
use crate::consensus::{self, Condition, ConsensusState, FleetState, MetricsMode, Unsent, Verdict};
use crate::ports::{AlertSink, Datum, SinkError, Unit};
use crate::probe::{ProbeResult, Status};

/// A stored document and its version (0 for unconditional documents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doc {
    pub version: u64,
    pub body: String,
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Won,
    /// Someone wrote another version first.
    Lost,
}

/// Where vantages share their state.
pub trait VantageStore: Sync {
    /// The documents that exist among `keys`.
    fn get(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Doc>, SinkError>> + Send;
    /// Write whatever is there (keys with one writer).
    fn put(&self, key: &str, doc: &Doc) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Write only over version `doc.version - 1` (or nothing, for 1).
    fn put_if(
        &self,
        key: &str,
        doc: &Doc,
    ) -> impl Future<Output = Result<Written, SinkError>> + Send;
}

/// For runs without vantages (the type `None` needs).
pub struct NoVantages;

impl VantageStore for NoVantages {
    async fn get(&self, _: &[String]) -> Result<HashMap<String, Doc>, SinkError> {
        Err(SinkError::new("vantages", "no vantage store"))
    }
    async fn put(&self, _: &str, _: &Doc) -> Result<(), SinkError> {
        Err(SinkError::new("vantages", "no vantage store"))
    }
    async fn put_if(&self, _: &str, _: &Doc) -> Result<Written, SinkError> {
        Err(SinkError::new("vantages", "no vantage store"))
    }
}

/// In memory: tests, and several vantages in one process.
#[derive(Default)]
pub struct MemVantages {
    pub docs: Mutex<HashMap<String, Doc>>,
}

impl VantageStore for MemVantages {
    async fn get(&self, keys: &[String]) -> Result<HashMap<String, Doc>, SinkError> {
        let docs = self
            .docs
            .lock()
            .map_err(|_| SinkError::new("vantages", "lock poisoned"))?;
        Ok(keys
            .iter()
            .filter_map(|k| docs.get(k).map(|d| (k.clone(), d.clone())))
            .collect())
    }
    async fn put(&self, key: &str, doc: &Doc) -> Result<(), SinkError> {
        let mut docs = self
            .docs
            .lock()
            .map_err(|_| SinkError::new("vantages", "lock poisoned"))?;
        docs.insert(key.to_string(), doc.clone());
        Ok(())
    }
    async fn put_if(&self, key: &str, doc: &Doc) -> Result<Written, SinkError> {
        let mut docs = self
            .docs
            .lock()
            .map_err(|_| SinkError::new("vantages", "lock poisoned"))?;
        Ok(apply_if(&mut docs, key, doc))
    }
}

fn apply_if(docs: &mut HashMap<String, Doc>, key: &str, doc: &Doc) -> Written {
    let current = docs.get(key).map_or(0, |d| d.version);
    if doc.version != current + 1 {
        return Written::Lost;
    }
    docs.insert(key.to_string(), doc.clone());
    Written::Won
}

/// One JSON file shared by the `run --vantage NAME` processes of one
/// machine. Every operation takes a lock file (created exclusively), reads
/// the file afresh, and rewrites it atomically (temp file + rename), so
/// processes on the same machine and local file system see each other's
/// writes and conditional writes stay exclusive. Not safe on network file
/// systems whose exclusive create is not atomic (older NFS), nor across
/// machines: use DynamoDB for that.
pub struct FileVantages {
    path: PathBuf,
    lock: PathBuf,
}

/// A lock older than this is from a process that died holding it.
const STALE_LOCK: Duration = Duration::from_secs(10);
/// The longest wait for the lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);

struct LockGuard(PathBuf);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl FileVantages {
    pub fn new(path: &Path) -> FileVantages {
        let mut lock = path.as_os_str().to_owned();
        lock.push(".lock");
        FileVantages {
            path: path.to_path_buf(),
            lock: PathBuf::from(lock),
        }
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> SinkError {
        SinkError::new(
            "vantage file",
            format!("{what} {}: {e}", self.path.display()),
        )
    }

    async fn locked(&self) -> Result<LockGuard, SinkError> {
        let until = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.lock)
            {
                Ok(_) => return Ok(LockGuard(self.lock.clone())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&self.lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        let _ = std::fs::remove_file(&self.lock);
                        continue;
                    }
                    if tokio::time::Instant::now() > until {
                        return Err(self.err(
                            "timed out waiting for the lock of",
                            "another process holds it",
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(self.err("cannot lock", e)),
            }
        }
    }

    fn read(&self) -> Result<HashMap<String, Doc>, SinkError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| self.err("is not a pop3-probe vantage file:", e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(e) => Err(self.err("cannot read", e)),
        }
    }

    fn write(&self, docs: &HashMap<String, Doc>) -> Result<(), SinkError> {
        let text = serde_json::to_vec(docs).map_err(|e| self.err("cannot encode", e))?;
        crate::local::replace_file(&self.path, &text, 0o600)
            .map_err(|e| self.err("cannot write", e))
    }
}

impl VantageStore for FileVantages {
    async fn get(&self, keys: &[String]) -> Result<HashMap<String, Doc>, SinkError> {
        let _g = self.locked().await?;
        let docs = self.read()?;
        Ok(keys
            .iter()
            .filter_map(|k| docs.get(k).map(|d| (k.clone(), d.clone())))
            .collect())
    }
    async fn put(&self, key: &str, doc: &Doc) -> Result<(), SinkError> {
        let _g = self.locked().await?;
        let mut docs = self.read()?;
        docs.insert(key.to_string(), doc.clone());
        self.write(&docs)
    }
    async fn put_if(&self, key: &str, doc: &Doc) -> Result<Written, SinkError> {
        let _g = self.locked().await?;
        let mut docs = self.read()?;
        let w = apply_if(&mut docs, key, doc);
        if w == Written::Won {
            self.write(&docs)?;
        }
        Ok(w)
    }
}

/// DynamoDB: the same state table as the alert state, other keys. Items:
/// `#vantage#NAME` (heartbeat), `#verdict#NAME#MONITOR`, `#consensus#MONITOR`,
/// `#fleet`; attributes `monitor` (the key), `version` (N), `state` (JSON).
/// Reads are strongly consistent (BatchGetItem with ConsistentRead), writes
/// are PutItem, conditional on `version` where the protocol needs it: the
/// same two calls the alert state makes, so IAM needs nothing new.
#[cfg(feature = "aws")]
pub struct DynamoVantages {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

#[cfg(feature = "aws")]
impl DynamoVantages {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoVantages {
            client,
            table: table.into(),
        }
    }

    fn put_request(
        &self,
        key: &str,
        doc: &Doc,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        use aws_sdk_dynamodb::types::AttributeValue as V;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("monitor", V::S(key.to_string()))
            .item("version", V::N(doc.version.to_string()))
            .item("state", V::S(doc.body.clone()))
    }
}

#[cfg(feature = "aws")]
impl VantageStore for DynamoVantages {
    async fn get(&self, keys: &[String]) -> Result<HashMap<String, Doc>, SinkError> {
        let items = crate::aws::batch_get(&self.client, &self.table, keys, true).await?;
        let mut out = HashMap::new();
        for item in items {
            let text = |n: &str| item.get(n).and_then(|v| v.as_s().ok()).cloned();
            let version = item
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            if let (Some(k), Some(body)) = (text("monitor"), text("state")) {
                out.insert(k, Doc { version, body });
            }
        }
        Ok(out)
    }

    async fn put(&self, key: &str, doc: &Doc) -> Result<(), SinkError> {
        self.put_request(key, doc).send().await.map_err(|e| {
            SinkError::transient(
                "dynamodb",
                format!(
                    "PutItem {key} on {}: {}",
                    self.table,
                    crate::aws::describe(&e)
                ),
            )
        })?;
        Ok(())
    }

    async fn put_if(&self, key: &str, doc: &Doc) -> Result<Written, SinkError> {
        let request =
            crate::aws::over_version(self.put_request(key, doc), doc.version.saturating_sub(1));
        match request.send().await {
            Ok(_) => Ok(Written::Won),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Written::Lost)
            }
            Err(e) => Err(SinkError::transient(
                "dynamodb",
                format!(
                    "PutItem {key} on {}: {}",
                    self.table,
                    crate::aws::describe(&e)
                ),
            )),
        }
    }
}

/// A vantage of this run: its name and where the vantages meet.
pub struct Vantage<'a, V: VantageStore> {
    pub name: String,
    pub store: &'a V,
}

impl<'a, V: VantageStore> Vantage<'a, V> {
    pub fn new(name: &str, store: &'a V) -> Result<Vantage<'a, V>, String> {
        consensus::validate_vantage_name(name)?;
        Ok(Vantage {
            name: name.to_string(),
            store,
        })
    }
}

/// One vantage's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub vantage: String,
    pub at_ms: i64,
    pub run_id: String,
}

/// One monitor's consensus, for the run summary (`run --json`, the Lambda's
/// result).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConsensusLine {
    pub monitor: String,
    pub condition: Condition,
    /// What people were told: `up` or `down`.
    pub announced: Status,
    // `default` tells the schema it may be absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_from: Vec<String>,
    pub text: String,
}

/// What the vantage step did.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ConsensusSummary {
    pub vantage: String,
    pub alive: Vec<String>,
    /// Monitors failing from some vantages, fewer than the quorum.
    pub partial: usize,
    pub monitors: Vec<ConsensusLine>,
    #[serde(skip)]
    pub alerts_sent: Vec<String>,
    #[serde(skip)]
    pub alerts_failed: Vec<AlertFailure>,
    #[serde(skip)]
    pub errors: Vec<String>,
    /// Whether the decisions could be made at all (else no consensus
    /// metrics: a vantage that cannot read the others knows nothing more).
    #[serde(skip)]
    pub decided: bool,
    /// This vantage is the first alive one by name: it alone sends the
    /// alerts that are not about up or down (certificate, capabilities,
    /// LOGIN-DELAY), so they come once, not once per vantage.
    pub lead: bool,
}

const FLEET_KEY: &str = "#fleet";

fn heartbeat_key(v: &str) -> String {
    format!("#vantage#{v}")
}
fn verdict_key(v: &str, monitor: &str) -> String {
    format!("#verdict#{v}#{monitor}")
}
fn consensus_key(monitor: &str) -> String {
    format!("#consensus#{monitor}")
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, d: &Doc) -> Result<T, SinkError> {
    serde_json::from_str(&d.body)
        .map_err(|e| SinkError::new("vantages", format!("{key} is unreadable: {e}")))
}

fn encode<T: Serialize>(version: u64, value: &T) -> Result<Doc, SinkError> {
    Ok(Doc {
        version,
        body: serde_json::to_string(value)
            .map_err(|e| SinkError::new("vantages", e.to_string()))?,
    })
}

/// How often a lost conditional write is retried from a fresh read.
const ATTEMPTS: usize = 4;

/// The lease of a claimed alert: the run's own deadline (a sender is done
/// with its sends by then, or dead), at least 30 s.
fn lease(config: &Config) -> Duration {
    config.run.deadline.max(Duration::from_secs(30))
}

/// Record, decide and send for this run's results, as vantage `v`.
pub async fn decide<V: VantageStore, A: AlertSink>(
    v: &Vantage<'_, V>,
    config: &Config,
    results: &[ProbeResult],
    alerts: &A,
    now_ms: i64,
) -> ConsensusSummary {
    let mut out = ConsensusSummary {
        vantage: v.name.clone(),
        ..Default::default()
    };
    let run_id = format!("{}-{now_ms}", v.name);
    let cfg = &config.consensus;
    let lease = lease(config);
    let fleet_policy = cfg.policy(config.run.schedule, 1, false, lease);

    // 1. Heartbeat and verdicts. The verdicts first: a heartbeat promises
    //    that this vantage's verdicts are current.
    let verdicts: Vec<Verdict> = results
        .iter()
        .map(|r| Verdict::from_result(&v.name, &run_id, r, now_ms))
        .collect();
    use futures::StreamExt as _;
    let writes = futures::stream::iter(verdicts.iter().map(|x| async move {
        let doc = encode(0, x)?;
        v.store.put(&verdict_key(&v.name, &x.monitor), &doc).await
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    for r in writes {
        if let Err(e) = r {
            out.errors.push(format!("verdict: {e}"));
        }
    }
    let beat = Heartbeat {
        vantage: v.name.clone(),
        at_ms: now_ms,
        run_id: run_id.clone(),
    };
    match encode(0, &beat) {
        Ok(doc) => {
            if let Err(e) = v.store.put(&heartbeat_key(&v.name), &doc).await {
                out.errors.push(format!("heartbeat: {e}"));
            }
        }
        Err(e) => out.errors.push(format!("heartbeat: {e}")),
    }

    // 2. The fleet: who is alive.
    let alive = match fleet(v, &fleet_policy, alerts, &mut out, now_ms).await {
        Ok(a) => a,
        Err(e) => {
            out.errors
                .push(format!("vantages not readable, no consensus this run: {e}"));
            return out;
        }
    };
    out.alive = alive.iter().cloned().collect();
    out.lead = alive.iter().next() == Some(&v.name);

    // 3. and 4. Each monitor.
    let mut keys = Vec::new();
    for r in results {
        keys.push(consensus_key(&r.monitor));
        for a in &alive {
            keys.push(verdict_key(a, &r.monitor));
        }
    }
    let docs = match v.store.get(&keys).await {
        Ok(d) => d,
        Err(e) => {
            out.errors
                .push(format!("consensus not readable, no alerts this run: {e}"));
            return out;
        }
    };
    let mut all_verdicts: Vec<Verdict> = Vec::new();
    for (k, d) in &docs {
        if k.starts_with("#verdict#") {
            match decode::<Verdict>(k, d) {
                Ok(x) => all_verdicts.push(x),
                Err(e) => out.errors.push(e.to_string()),
            }
        }
    }
    // Our own verdicts as written, even if the read raced the write.
    all_verdicts.retain(|x| x.vantage != v.name);
    all_verdicts.extend(verdicts);
    let settings: HashMap<&str, _> = config
        .monitors
        .iter()
        .map(|m| (m.target.name.as_str(), m))
        .collect();
    for r in results {
        let Some(m) = settings.get(r.monitor.as_str()) else {
            continue;
        };
        let policy = cfg.policy(
            m.alert.schedule.or(config.run.schedule),
            m.alert.failures_before_alert,
            m.partial_alert,
            lease,
        );
        let key = consensus_key(&r.monitor);
        let mut prev: Option<ConsensusState> = match docs.get(&key).map(|d| decode(&key, d)) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                out.errors.push(e.to_string());
                continue;
            }
        };
        let mine: Vec<Verdict> = all_verdicts
            .iter()
            .filter(|x| x.monitor == r.monitor)
            .cloned()
            .collect();
        let mut decided = None;
        for attempt in 0..ATTEMPTS {
            let d = consensus::evaluate(
                prev.as_ref(),
                &r.monitor,
                &mine,
                &alive,
                &policy,
                &v.name,
                now_ms,
            );
            if !d.changed {
                decided = Some(d);
                break;
            }
            let written = match encode(d.next.version, &d.next) {
                Ok(doc) => v.store.put_if(&key, &doc).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(Written::Won) => {
                    decided = Some(d);
                    break;
                }
                Ok(Written::Lost) if attempt + 1 < ATTEMPTS => {
                    // Another vantage decided first: decide again from
                    // what it wrote.
                    match v.store.get(std::slice::from_ref(&key)).await {
                        Ok(m) => match m.get(&key).map(|d| decode(&key, d)) {
                            Some(Ok(s)) => prev = Some(s),
                            Some(Err(e)) => {
                                out.errors.push(e.to_string());
                                break;
                            }
                            None => prev = None,
                        },
                        Err(e) => {
                            out.errors.push(format!("{}: {e}", r.monitor));
                            break;
                        }
                    }
                }
                Ok(Written::Lost) => {
                    out.errors.push(format!(
                        "{}: consensus kept moving ({ATTEMPTS} lost writes); next run decides",
                        r.monitor
                    ));
                }
                Err(e) => {
                    out.errors.push(format!("{}: {e}", r.monitor));
                    break;
                }
            }
        }
        let Some(d) = decided else { continue };
        let sent = send(&d.to_send, alerts, &mut out).await;
        if !sent.is_empty() {
            clear(
                v,
                &key,
                &sent,
                &mut out,
                |doc| decode::<ConsensusState>(&key, doc),
                |s, ids| consensus::without_sent(s, ids).map(|n| (n.version, n)),
            )
            .await;
        }
        if d.view.condition == Condition::Partial {
            out.partial += 1;
        }
        out.monitors.push(ConsensusLine {
            monitor: r.monitor.clone(),
            condition: d.view.condition,
            announced: d.next.status,
            failing_from: d.view.failing_vantages(),
            text: d.view.text.clone(),
        });
    }
    out.decided = true;
    out
}

/// Send claimed alerts; the ids of those the sink accepted.
async fn send<A: AlertSink>(
    claims: &[Unsent],
    alerts: &A,
    out: &mut ConsensusSummary,
) -> Vec<String> {
    let mut ok = Vec::new();
    for u in claims {
        match alerts.send(&u.alert).await {
            Ok(()) => {
                out.alerts_sent
                    .push(format!("{}: {}", u.alert.monitor, u.alert.kind.as_str()));
                ok.push(u.id.clone());
            }
            Err(e) => out.alerts_failed.push(AlertFailure {
                monitor: u.alert.monitor.clone(),
                kind: u.alert.kind.as_str(),
                error: e.to_string(),
            }),
        }
    }
    ok
}

/// Remove accepted alerts from an item's `unsent`, re-reading on conflict.
/// If this fails, the alerts stay `unsent` and are sent again after their
/// lease: a duplicate, never a loss.
async fn clear<V, T, D, W>(
    v: &Vantage<'_, V>,
    key: &str,
    sent: &[String],
    out: &mut ConsensusSummary,
    decode_doc: D,
    without: W,
) where
    V: VantageStore,
    T: Serialize,
    D: Fn(&Doc) -> Result<T, SinkError>,
    W: Fn(&T, &[String]) -> Option<(u64, T)>,
{
    for _ in 0..ATTEMPTS {
        let current = match v.store.get(&[key.to_string()]).await {
            Ok(m) => m,
            Err(e) => {
                out.errors
                    .push(format!("{key}: sent alerts not cleared: {e}"));
                return;
            }
        };
        let Some(doc) = current.get(key) else { return };
        let state = match decode_doc(doc) {
            Ok(s) => s,
            Err(e) => {
                out.errors.push(e.to_string());
                return;
            }
        };
        let Some((version, next)) = without(&state, sent) else {
            return;
        };
        let written = match encode(version, &next) {
            Ok(d) => v.store.put_if(key, &d).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(Written::Won) => return,
            Ok(Written::Lost) => continue,
            Err(e) => {
                out.errors
                    .push(format!("{key}: sent alerts not cleared: {e}"));
                return;
            }
        }
    }
    out.errors
        .push(format!("{key}: sent alerts not cleared (kept moving)"));
}

/// Read and move the fleet item; the alive vantages (this one included).
async fn fleet<V: VantageStore, A: AlertSink>(
    v: &Vantage<'_, V>,
    policy: &consensus::Policy,
    alerts: &A,
    out: &mut ConsensusSummary,
    now_ms: i64,
) -> Result<BTreeSet<String>, SinkError> {
    for _ in 0..ATTEMPTS {
        let got = v.store.get(&[FLEET_KEY.to_string()]).await?;
        let prev: FleetState = match got.get(FLEET_KEY) {
            Some(d) => decode(FLEET_KEY, d)?,
            None => FleetState::default(),
        };
        let mut names: Vec<String> = prev.members.keys().cloned().collect();
        names.push(v.name.clone());
        let keys: Vec<String> = names.iter().map(|n| heartbeat_key(n)).collect();
        let beats_docs = v.store.get(&keys).await?;
        let mut beats: BTreeMap<String, i64> = BTreeMap::new();
        for (k, d) in &beats_docs {
            let b: Heartbeat = decode(k, d)?;
            beats.insert(b.vantage, b.at_ms);
        }
        // Ours is fresh by definition, even if its write failed.
        beats.insert(v.name.clone(), now_ms);
        let (next, to_send, changed) = consensus::evaluate_fleet(
            &prev,
            &beats,
            policy.window_ms,
            policy.lease_ms,
            &v.name,
            now_ms,
        );
        if changed {
            match v
                .store
                .put_if(FLEET_KEY, &encode(next.version, &next)?)
                .await?
            {
                Written::Won => {}
                Written::Lost => continue,
            }
        }
        let sent = send(&to_send, alerts, out).await;
        if !sent.is_empty() {
            clear(
                v,
                FLEET_KEY,
                &sent,
                out,
                |doc| decode::<FleetState>(FLEET_KEY, doc),
                |s: &FleetState, ids| {
                    if !s.unsent.iter().any(|u| ids.contains(&u.id)) {
                        return None;
                    }
                    let mut n = s.clone();
                    n.unsent.retain(|u| !ids.contains(&u.id));
                    n.version += 1;
                    Some((n.version, n))
                },
            )
            .await;
        }
        return Ok(next.members.keys().cloned().collect());
    }
    Err(SinkError::new(
        "vantages",
        format!("the fleet item kept moving ({ATTEMPTS} lost writes)"),
    ))
}

/// Whether the consensus owns this kind of alert (up, down, degraded and
/// the vantages' own): under several vantages the single-machine state
/// machine must not send these.
pub fn is_status_alert(kind: crate::alert::AlertKind) -> bool {
    use crate::alert::AlertKind as K;
    matches!(
        kind,
        K::Down | K::StillDown | K::Recovered | K::Degraded | K::Partial | K::VantageDown
    )
}

/// Metrics under vantages: `Availability` per monitor becomes the
/// consensus (0 only when confirmed down), so the alarms on it follow the
/// consensus; with `per_vantage`, this vantage's own view is added with a
/// `Vantage` dimension; `MonitorsPartial` counts partial conditions.
pub fn adjust_metrics(
    data: &mut Vec<Datum>,
    summary: &ConsensusSummary,
    mode: MetricsMode,
    now_ms: i64,
) {
    if !summary.decided {
        return;
    }
    let announced: HashMap<&str, Status> = summary
        .monitors
        .iter()
        .map(|m| (m.monitor.as_str(), m.announced))
        .collect();
    let mut own = Vec::new();
    for d in data.iter_mut() {
        if d.name != crate::metrics::AVAILABILITY || d.vantage.is_some() {
            continue;
        }
        let Some(m) = d.monitor.as_deref() else {
            continue;
        };
        let Some(status) = announced.get(m) else {
            continue;
        };
        if mode == MetricsMode::PerVantage {
            let mut mine = d.clone();
            mine.vantage = Some(summary.vantage.clone());
            own.push(mine);
        }
        d.value = if *status == Status::Down { 0.0 } else { 1.0 };
    }
    data.extend(own);
    data.push(Datum {
        name: crate::metrics::MONITORS_PARTIAL.into(),
        monitor: None,
        shard: None,
        value: summary.partial as f64,
        unit: Unit::Count,
        timestamp_ms: now_ms,
        vantage: None,
    });
}
