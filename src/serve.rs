//! `pop3-probe serve`: a Prometheus exporter in blackbox_exporter's
//! multi-target pattern. Prometheus asks `/probe?target=<monitor>` (a monitor
//! of the config) or `/probe?module=<name>&target=<host[:port]>` (a named
//! block of monitor settings applied to an ad-hoc host); the answer is that
//! one probe's series (see [`crate::prom`]).
//!
//! Probing goes through [`crate::fleet`] as `run` does: the same retries and
//! deadline handling, dependencies probed with the monitor and applied the
//! same way, and no two logins to one mailbox at once — here across
//! concurrent scrapes too. There is no alert state: Prometheus and
//! Alertmanager decide what alerts, from `probe_success` and friends.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use crate::config::{Config, ConfigError, MonitorSpec};
use crate::credentials::SecretSource;
use crate::fleet;
use crate::probe::{AuthMethod, ProbeResult, Status};
use crate::prom::{self, Exposition, Format, Type};

/// The top-level key `serve` reads and `run` does not: named blocks of
/// monitor settings for ad-hoc targets.
pub const MODULES_KEY: &str = "modules";
/// A serve-only key of a module: the hosts its targets may name.
pub const ALLOWED_HOSTS_KEY: &str = "allowed_hosts";
/// blackbox's default `--timeout-offset`.
pub const DEFAULT_TIMEOUT_OFFSET: Duration = Duration::from_millis(500);

/// A module ready to be applied to a target.
#[derive(Debug, Clone)]
pub struct Module {
    spec: MonitorSpec,
    /// Host names (or `*.suffix` patterns) a target may name; `None`: any.
    allowed_hosts: Option<Vec<String>>,
}

/// The config as `serve` uses it: `run`'s monitors plus the modules.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub config: Config,
    pub modules: BTreeMap<String, Result<Module, ConfigError>>,
}

fn cerr(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        message: message.into(),
    }
}

fn is_placeholder(host: &str) -> bool {
    host == PLACEHOLDER_HOST
}

/// The host a module is validated with; a target always replaces it.
const PLACEHOLDER_HOST: &str = "module.invalid";

/// Parse a config with an optional `modules` object and read every
/// credential once (as `run` does at the start of a run; `serve` does it at
/// start and on reload). A broken module is kept as an error, named by its
/// JSON path, and answered with HTTP 400; the rest keep working.
pub async fn load<S: SecretSource>(text: &str, secrets: &S) -> Result<ServeConfig, ConfigError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        cerr(
            "config",
            format!(
                "not valid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Value::Object(mut top) = doc else {
        return Err(cerr("config", "must be a JSON object"));
    };
    let raw_modules = match top.remove(MODULES_KEY) {
        None => serde_json::Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(cerr(
                MODULES_KEY,
                "must be an object of named monitor settings",
            ))
        }
    };
    // `run` does not know `modules`; a config without monitors is fine
    // for an exporter that only serves modules.
    top.entry("monitors").or_insert(Value::Array(vec![]));
    let rest = Value::Object(top);
    let config = crate::config::load(&rest.to_string(), secrets).await?;

    let mut modules = BTreeMap::new();
    for (name, raw) in raw_modules {
        let path = format!("{MODULES_KEY}.{name}");
        modules.insert(
            name.clone(),
            module(&rest, &name, raw, &path, secrets).await,
        );
    }
    Ok(ServeConfig { config, modules })
}

async fn module<S: SecretSource>(
    rest: &Value,
    name: &str,
    raw: Value,
    path: &str,
    secrets: &S,
) -> Result<Module, ConfigError> {
    let Value::Object(mut settings) = raw else {
        return Err(cerr(path, "must be an object of monitor settings"));
    };
    for key in ["name", "host", "depends_on"] {
        if settings.contains_key(key) {
            return Err(cerr(
                format!("{path}.{key}"),
                match key {
                    "name" => "not allowed: the module's key is its name",
                    "host" => "not allowed: the host comes from the target parameter",
                    _ => "not allowed: an ad-hoc target has no dependencies",
                },
            ));
        }
    }
    let allowed_hosts = match settings.remove(ALLOWED_HOSTS_KEY) {
        None => None,
        Some(Value::Array(list)) => {
            let mut hosts = Vec::new();
            for (i, h) in list.into_iter().enumerate() {
                match h {
                    Value::String(s) if !s.trim().is_empty() => {
                        hosts.push(s.trim().to_ascii_lowercase())
                    }
                    _ => {
                        return Err(cerr(
                            format!("{path}.{ALLOWED_HOSTS_KEY}[{i}]"),
                            "must be a host name or a *.domain pattern",
                        ))
                    }
                }
            }
            Some(hosts)
        }
        Some(_) => {
            return Err(cerr(
                format!("{path}.{ALLOWED_HOSTS_KEY}"),
                "must be a list of host names or *.domain patterns",
            ))
        }
    };
    settings.insert("name".into(), Value::String(name.to_string()));
    settings.insert("host".into(), Value::String(PLACEHOLDER_HOST.into()));
    let mut doc = rest.clone();
    doc["monitors"] = Value::Array(vec![Value::Object(settings)]);
    // The module is checked by the same code as a monitor; its errors are
    // renamed from the synthetic monitor's path to the module's.
    let rename = |e: ConfigError| {
        let p = e
            .path
            .strip_prefix("monitors[0]")
            .map(|tail| format!("{path}{tail}"))
            .unwrap_or(e.path.clone());
        cerr(p, e.message)
    };
    let mut config = Config::parse(&doc.to_string()).map_err(rename)?;
    if let Some(p) = config.problems.pop() {
        return Err(rename(p.error));
    }
    config.resolve_credentials(secrets).await;
    if let Some(p) = config.problems.pop() {
        return Err(rename(p.error));
    }
    let Some(spec) = config.monitors.pop() else {
        return Err(cerr(path, "disabled (enabled: false)"));
    };
    // A module that logs in sends its credentials wherever the target
    // points; anyone who can reach the exporter picks the target. Such a
    // module must say which hosts it may log in to.
    if spec.target.auth != AuthMethod::None && spec.credentials.is_some() && allowed_hosts.is_none()
    {
        return Err(cerr(
            format!("{path}.{ALLOWED_HOSTS_KEY}"),
            "required for a module that logs in: the hosts its credentials may be sent to \
             (for example [\"mail.example.net\", \"*.example.net\"])",
        ));
    }
    Ok(Module {
        spec,
        allowed_hosts,
    })
}

fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed.iter().any(|a| match a.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => *a == host,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
pub fn parse_target(s: &str) -> Result<(String, Option<u16>), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("target is empty: give host or host:port".into());
    }
    if s.len() > 255
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!("target {s:?} is not a host or host:port"));
    }
    let port = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("target {s:?}: port {p:?} is not a number from 1 to 65535"))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("target {s:?}: missing ]"))?;
        return match tail {
            "" => Ok((host.to_string(), None)),
            t => match t.strip_prefix(':') {
                Some(p) => Ok((host.to_string(), Some(port(p)?))),
                None => Err(format!("target {s:?} is not [address]:port")),
            },
        };
    }
    match s.rsplit_once(':') {
        // A bare IPv6 address without brackets has several colons.
        Some((h, _)) if h.contains(':') => Ok((s.to_string(), None)),
        Some((h, p)) => Ok((h.to_string(), Some(port(p)?))),
        None => Ok((s.to_string(), None)),
    }
}

/// How long a probe may take, from Prometheus' scrape-timeout header, less
/// `offset` (time for the answer to travel back), as blackbox does. When the
/// offset would eat more than half the timeout, half is used instead.
/// Without the header, `fallback` (the config's run deadline).
pub fn probe_budget(
    header: Option<&str>,
    offset: Duration,
    fallback: Duration,
) -> Result<Duration, String> {
    let Some(h) = header else {
        return Ok(fallback);
    };
    let secs: f64 = h.trim().parse().map_err(|_| {
        format!("X-Prometheus-Scrape-Timeout-Seconds {h:?} is not a number of seconds")
    })?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!(
            "X-Prometheus-Scrape-Timeout-Seconds {h:?} must be a positive number of seconds"
        ));
    }
    let total = Duration::from_secs_f64(secs.min(86_400.0));
    Ok(total.saturating_sub(offset).max(total / 2))
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
struct Stats {
    probes: BTreeMap<&'static str, u64>,
    failures: BTreeMap<&'static str, u64>,
    reloads: BTreeMap<&'static str, u64>,
    last_reload_ok: bool,
    last_reload_success_unix: f64,
    busy: u64,
}

/// Host and user: one maildrop (see [`fleet::mailbox_key`]).
type MailboxKey = (String, String);

/// A request for the config to be read again; answered when done.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// The exporter's state, shared by all connections.
pub struct Exporter {
    config: RwLock<Arc<ServeConfig>>,
    permits: Semaphore,
    max_concurrent: usize,
    locks: Mutex<HashMap<MailboxKey, Arc<tokio::sync::Mutex<()>>>>,
    stats: Mutex<Stats>,
    offset: Duration,
    reload: mpsc::Sender<ReloadRequest>,
}

/// Why `/probe` could not run: the HTTP status and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRefused {
    pub status: StatusCode,
    pub message: String,
}

fn bad_request(message: impl Into<String>) -> ProbeRefused {
    ProbeRefused {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

/// What `/probe` answers with.
#[derive(Debug, Clone)]
pub enum ProbeOutcome {
    Done(Box<ProbeResult>),
    /// Not started before the deadline (reason given).
    Skipped(String),
}

fn list_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).take(20).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl Exporter {
    pub fn new(
        config: ServeConfig,
        max_concurrent: usize,
        offset: Duration,
        reload: mpsc::Sender<ReloadRequest>,
    ) -> Arc<Exporter> {
        let max_concurrent = max_concurrent.max(1);
        Arc::new(Exporter {
            config: RwLock::new(Arc::new(config)),
            permits: Semaphore::new(max_concurrent),
            max_concurrent,
            locks: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats {
                last_reload_ok: true,
                last_reload_success_unix: crate::clock::now_secs_f64(),
                ..Stats::default()
            }),
            offset,
            reload,
        })
    }

    fn current(&self) -> Arc<ServeConfig> {
        self.config
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Swap in a freshly loaded config (after `/-/reload` or SIGHUP).
    pub fn replace(&self, config: ServeConfig) {
        match self.config.write() {
            Ok(mut c) => *c = Arc::new(config),
            Err(p) => *p.into_inner() = Arc::new(config),
        }
        self.count_reload(true);
    }

    /// Record a reload that failed; the old config stays in use.
    pub fn reload_failed(&self) {
        self.count_reload(false);
    }

    fn count_reload(&self, ok: bool) {
        if let Ok(mut s) = self.stats.lock() {
            *s.reloads
                .entry(if ok { "success" } else { "failure" })
                .or_default() += 1;
            s.last_reload_ok = ok;
            if ok {
                s.last_reload_success_unix = crate::clock::now_secs_f64();
            }
        }
    }

    /// The monitors to probe for one request: the target's spec and,
    /// for a configured monitor, everything it depends on.
    fn select(
        &self,
        cfg: &ServeConfig,
        module: Option<&str>,
        target: &str,
    ) -> Result<(Vec<MonitorSpec>, String), ProbeRefused> {
        match module {
            None => {
                let known: HashMap<&str, &MonitorSpec> = cfg
                    .config
                    .monitors
                    .iter()
                    .map(|m| (m.target.name.as_str(), m))
                    .collect();
                if !known.contains_key(target) {
                    if let Some(p) = cfg.config.problems.iter().find(|p| {
                        p.monitor == target || p.monitor.starts_with(&format!("{target} ("))
                    }) {
                        return Err(bad_request(format!(
                            "monitor {target:?} is misconfigured: {}: {}",
                            p.error.path, p.error.message
                        )));
                    }
                    if cfg.config.disabled.iter().any(|d| d == target) {
                        return Err(bad_request(format!(
                            "monitor {target:?} is disabled (enabled: false)"
                        )));
                    }
                    return Err(bad_request(format!(
                        "unknown monitor {target:?}: not in the config (monitors: {}); \
                         for an ad-hoc host, add module=<name>",
                        list_names(cfg.config.monitors.iter().map(|m| &m.target.name))
                    )));
                }
                // The target and its dependencies, transitively.
                let mut wanted: Vec<MonitorSpec> = Vec::new();
                let mut seen: HashSet<&str> = HashSet::new();
                let mut queue: VecDeque<&str> = VecDeque::from([target]);
                while let Some(name) = queue.pop_front() {
                    if !seen.insert(name) {
                        continue;
                    }
                    if let Some(m) = known.get(name) {
                        wanted.push((*m).clone());
                        queue.extend(m.depends_on.iter().map(String::as_str));
                    }
                }
                Ok((wanted, target.to_string()))
            }
            Some(module) => {
                let m = match cfg.modules.get(module) {
                    None => {
                        return Err(bad_request(format!(
                        "unknown module {module:?}: not in the config's \"modules\" (modules: {})",
                        list_names(cfg.modules.keys())
                    )))
                    }
                    Some(Err(e)) => {
                        return Err(bad_request(format!(
                            "module {module:?} is misconfigured: {}: {}",
                            e.path, e.message
                        )))
                    }
                    Some(Ok(m)) => m,
                };
                let (host, port) = parse_target(target).map_err(bad_request)?;
                if let Some(allowed) = &m.allowed_hosts {
                    if !host_allowed(allowed, &host) {
                        return Err(ProbeRefused {
                            status: StatusCode::FORBIDDEN,
                            message: format!(
                                "target host {host:?} is not in module {module:?}'s allowed_hosts"
                            ),
                        });
                    }
                }
                let mut spec = m.spec.clone();
                debug_assert!(is_placeholder(&spec.target.host));
                spec.target.host = host;
                if let Some(p) = port {
                    spec.target.port = p;
                }
                spec.target.name = target.to_string();
                spec.shard_key = target.to_string();
                Ok((vec![spec], target.to_string()))
            }
        }
    }

    /// Run one `/probe`. `budget` is how long it may take in all (waiting
    /// for a free slot and for a mailbox lock included).
    pub async fn probe(
        &self,
        module: Option<&str>,
        target: &str,
        budget: Duration,
    ) -> Result<ProbeOutcome, ProbeRefused> {
        let started = Instant::now();
        let cfg = self.current();
        let (specs, name) = self.select(&cfg, module, target)?;
        let deadline = started + budget;

        // Bounded concurrency: wait for a slot, but not past the deadline.
        let _permit = match tokio::time::timeout_at(deadline, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            _ => {
                self.count_probe("busy", None);
                return Err(ProbeRefused {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: format!(
                        "{} probes already running; none finished within the scrape timeout",
                        self.max_concurrent
                    ),
                });
            }
        };
        // One login per mailbox at a time, across concurrent scrapes (POP3
        // locks the maildrop: a second login would fail with [IN-USE]).
        // Locks are taken in order, so two requests never wait on each other.
        let keys: BTreeSet<(String, String)> =
            specs.iter().filter_map(fleet::mailbox_key).collect();
        let mutexes: Vec<Arc<tokio::sync::Mutex<()>>> = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            keys.iter()
                .map(|k| locks.entry(k.clone()).or_default().clone())
                .collect()
        };
        let mut guards = Vec::with_capacity(mutexes.len());
        for m in &mutexes {
            match tokio::time::timeout_at(deadline, m.clone().lock_owned()).await {
                Ok(g) => guards.push(g),
                Err(_) => {
                    self.count_probe("skipped", None);
                    return Ok(ProbeOutcome::Skipped(
                        "not started: another probe held the mailbox until the scrape deadline"
                            .into(),
                    ));
                }
            }
        }

        let depends_on: HashMap<String, Vec<String>> = specs
            .iter()
            .map(|m| (m.target.name.clone(), m.depends_on.clone()))
            .collect();
        let mut out = fleet::probe_all(specs, &cfg.config.run, deadline).await;
        drop(guards);
        fleet::apply_dependencies(&mut out.results, &depends_on);
        match out.results.into_iter().find(|r| r.monitor == name) {
            Some(r) => {
                if r.status == Status::Down {
                    self.count_probe("failure", r.failure.map(|f| f.as_str()));
                } else {
                    self.count_probe("success", None);
                }
                Ok(ProbeOutcome::Done(Box::new(r)))
            }
            None => {
                self.count_probe("skipped", None);
                let reason = out
                    .skipped
                    .into_iter()
                    .find(|s| s.monitor == name)
                    .map(|s| s.reason)
                    .unwrap_or_else(|| "not probed".into());
                Ok(ProbeOutcome::Skipped(reason))
            }
        }
    }

    fn count_probe(&self, result: &'static str, failure: Option<&'static str>) {
        if let Ok(mut s) = self.stats.lock() {
            if result == "busy" {
                s.busy += 1;
                return;
            }
            *s.probes.entry(result).or_default() += 1;
            if let Some(f) = failure {
                *s.failures.entry(f).or_default() += 1;
            }
        }
    }

    /// The exporter's own series (`/metrics`).
    pub fn own_metrics(&self, format: Format) -> String {
        let cfg = self.current();
        let mut e = Exposition::new(format);
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = e.family(
            "pop3_probe_exporter_probes_total",
            Type::Counter,
            "Probes run through /probe, by result (success: up or degraded).",
        );
        for result in ["success", "failure", "skipped"] {
            f.sample(
                &[("result", result)],
                *s.probes.get(result).unwrap_or(&0) as f64,
            );
        }
        let mut f = e.family(
            "pop3_probe_exporter_probe_failures_total",
            Type::Counter,
            "Failed probes by failure kind.",
        );
        for (kind, n) in &s.failures {
            f.sample(&[("kind", kind)], *n as f64);
        }
        e.family(
            "pop3_probe_exporter_probes_refused_total",
            Type::Counter,
            "Probes refused because every concurrency slot stayed busy until the scrape deadline.",
        )
        .sample(&[], s.busy as f64);
        let mut f = e.family(
            "pop3_probe_exporter_config_reloads_total",
            Type::Counter,
            "Config reloads (/-/reload or SIGHUP), by result.",
        );
        for result in ["success", "failure"] {
            f.sample(
                &[("result", result)],
                *s.reloads.get(result).unwrap_or(&0) as f64,
            );
        }
        e.family(
            "pop3_probe_exporter_config_last_reload_successful",
            Type::Gauge,
            "Whether the last config reload worked (the previous config stays in use if not).",
        )
        .sample(&[], f64::from(u8::from(s.last_reload_ok)));
        e.family(
            "pop3_probe_exporter_config_last_reload_success_timestamp_seconds",
            Type::Gauge,
            "When the config was last loaded successfully.",
        )
        .sample(&[], s.last_reload_success_unix);
        e.family(
            "pop3_probe_exporter_monitors",
            Type::Gauge,
            "Monitors in the config, by state.",
        )
        .sample(&[("state", "ready")], cfg.config.monitors.len() as f64)
        .sample(
            &[("state", "misconfigured")],
            cfg.config.problems.len() as f64,
        )
        .sample(&[("state", "disabled")], cfg.config.disabled.len() as f64);
        let ok = cfg.modules.values().filter(|m| m.is_ok()).count();
        e.family(
            "pop3_probe_exporter_modules",
            Type::Gauge,
            "Modules in the config, by state.",
        )
        .sample(&[("state", "ready")], ok as f64)
        .sample(
            &[("state", "misconfigured")],
            (cfg.modules.len() - ok) as f64,
        );
        e.family(
            "pop3_probe_exporter_probes_in_flight",
            Type::Gauge,
            "Probes running now.",
        )
        .sample(
            &[],
            (self.max_concurrent - self.permits.available_permits()) as f64,
        );
        drop(s);
        e.finish()
    }

    /// Ask the owner of the config source to read it again.
    async fn request_reload(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.reload
            .send(tx)
            .await
            .map_err(|_| "the reload task has stopped".to_string())?;
        rx.await
            .map_err(|_| "the reload task has stopped".to_string())?
    }
}

/// The `/probe` answer's body for an outcome.
pub fn probe_body(outcome: &ProbeOutcome, format: Format) -> String {
    match outcome {
        ProbeOutcome::Done(r) => prom::render_results(std::slice::from_ref(r), false, format),
        ProbeOutcome::Skipped(reason) => {
            let mut e = Exposition::new(format);
            e.comment(reason);
            e.family(
                "probe_success",
                Type::Gauge,
                "Whether the probe succeeded (1: up or degraded, 0: down).",
            )
            .sample(&[], 0.0);
            e.family(
                "probe_skipped",
                Type::Gauge,
                "The probe was not started before the scrape deadline.",
            )
            .sample(&[], 1.0);
            e.finish()
        }
    }
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut body: String = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn metrics_response(format: Format, body: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", format.content_type())
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// Parse `/probe`'s query string: `target` required, `module` optional.
pub fn probe_params(query: Option<&str>) -> Result<(Option<String>, String), String> {
    let mut module = None;
    let mut target = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "module" => module = Some(v.into_owned()),
            "target" => target = Some(v.into_owned()),
            _ => {}
        }
    }
    let target = target
        .filter(|t| !t.is_empty())
        .ok_or("missing the target parameter: /probe?target=<monitor> or /probe?module=<name>&target=<host:port>")?;
    Ok((module.filter(|m| !m.is_empty()), target))
}

/// Answer one HTTP request.
pub async fn handle(exporter: Arc<Exporter>, req: Request<Incoming>) -> Response<Body> {
    let format = Format::negotiate(
        req.headers()
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/probe") => {
            // `Uri::query` spelled out: policy_vs_code.py reads a `.query()`
            // call as DynamoDB's Query.
            let (module, target) = match probe_params(hyper::Uri::query(req.uri())) {
                Ok(p) => p,
                Err(e) => return text(StatusCode::BAD_REQUEST, e),
            };
            let cfg_deadline = exporter.current().config.run.deadline;
            let budget = match probe_budget(
                req.headers()
                    .get("x-prometheus-scrape-timeout-seconds")
                    .and_then(|v| v.to_str().ok()),
                exporter.offset,
                cfg_deadline,
            ) {
                Ok(b) => b,
                Err(e) => return text(StatusCode::BAD_REQUEST, e),
            };
            match exporter.probe(module.as_deref(), &target, budget).await {
                Ok(outcome) => metrics_response(format, probe_body(&outcome, format)),
                Err(refused) => text(refused.status, refused.message),
            }
        }
        (&Method::GET, "/metrics") => metrics_response(format, exporter.own_metrics(format)),
        (&Method::GET, "/-/healthy") | (&Method::HEAD, "/-/healthy") => {
            text(StatusCode::OK, "Healthy")
        }
        (&Method::POST, "/-/reload") | (&Method::PUT, "/-/reload") => {
            match exporter.request_reload().await {
                Ok(()) => text(StatusCode::OK, "config reloaded"),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("config not reloaded, the previous one stays in use: {e}"),
                ),
            }
        }
        (_, "/-/reload") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST /-/reload (or send SIGHUP)",
        ),
        (&Method::GET, "/") => text(
            StatusCode::OK,
            "pop3-probe exporter: /probe?target=<monitor>, /probe?module=<name>&target=<host:port>, /metrics, /-/healthy, POST /-/reload",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Limits on the listener: a slow or silent client must not hold a
/// connection (and a task) for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_CONNECTIONS: usize = 256;

/// Serve HTTP (or HTTPS with `tls`) on `listener` until `shutdown` resolves.
pub async fn serve(
    exporter: Arc<Exporter>,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: Option<Arc<crate::serve::BasicAuth>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let exporter = exporter.clone();
        let tls = tls.clone();
        let auth = auth.clone();
        tokio::spawn(async move {
            let _permit = permit;
            connection(exporter, stream, peer, tls, auth).await;
        });
    }
}

async fn connection(
    exporter: Arc<Exporter>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: Option<Arc<BasicAuth>>,
) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let exporter = exporter.clone();
        let auth = auth.clone();
        async move {
            if let Some(auth) = &auth {
                if !auth.allows(req.headers().get(hyper::header::AUTHORIZATION)) {
                    let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized");
                    r.headers_mut().insert(
                        hyper::header::WWW_AUTHENTICATE,
                        hyper::header::HeaderValue::from_static("Basic realm=\"pop3-probe\""),
                    );
                    return Ok::<_, Infallible>(r);
                }
            }
            Ok::<_, Infallible>(handle(exporter, req).await)
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let result = match tls {
        Some(acceptor) => {
            match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => {
                    http.serve_connection(hyper_util::rt::TokioIo::new(s), service)
                        .await
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            }
        }
        None => {
            http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// HTTP basic auth on the listener, in Prometheus' `web.yml` manner: user
/// names with password hashes. Hashes are SHA-256 here (`sha256:<hex>`), not
/// bcrypt: see docs/serve.md.
pub struct BasicAuth {
    users: BTreeMap<String, [u8; 32]>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl BasicAuth {
    /// Parse `user:sha256:<64 hex digits>` lines (`#` comments, blank lines).
    pub fn parse(text: &str) -> Result<BasicAuth, String> {
        let mut users = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected user:sha256:<hex>", i + 1))?;
            let hex = hash.strip_prefix("sha256:").ok_or_else(|| {
                format!(
                    "line {}: the hash must be sha256:<64 hex digits> (never a plain password)",
                    i + 1
                )
            })?;
            let bytes = decode_hex32(hex)
                .ok_or_else(|| format!("line {}: sha256 hash is not 64 hex digits", i + 1))?;
            users.insert(user.to_string(), bytes);
        }
        if users.is_empty() {
            return Err("no users".into());
        }
        Ok(BasicAuth { users })
    }

    pub fn allows(&self, header: Option<&hyper::header::HeaderValue>) -> bool {
        use base64::Engine as _;
        use sha2::Digest as _;
        let Some(value) = header.and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let Some(b64) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|b| *b == b':') else {
            return false;
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let Some(want) = std::str::from_utf8(user)
            .ok()
            .and_then(|u| self.users.get(u))
        else {
            return false;
        };
        let got: [u8; 32] = sha2::Sha256::digest(password).into();
        // Constant time over the digest: no early exit on the first byte.
        got.iter()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoSecrets;
    impl SecretSource for NoSecrets {
        async fn secret(&self, id: &str) -> Result<secrecy::SecretString, crate::ports::SinkError> {
            Err(crate::ports::SinkError::new(
                "test",
                format!("no secret {id}"),
            ))
        }
    }

    const CONFIG: &str = r#"{
        "credentials": {"acct": {"username": "probe", "password": "Pr0be-Secret-42"}},
        "monitors": [
            {"name": "good", "host": "127.0.0.1", "port": 1, "tls": "none", "auth": "none"},
            {"name": "broken", "host": "127.0.0.1", "timeout_ms": "soon"}
        ],
        "modules": {
            "pop3s_login": {"tls": "implicit", "credentials": "acct", "allowed_hosts": ["localhost", "*.example.net"]},
            "pop3s_banner": {"tls": "implicit", "auth": "none"},
            "open_login": {"credentials": "acct"},
            "bad": {"timeout_ms": -1}
        }
    }"#;

    fn exporter() -> Arc<Exporter> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cfg = rt.block_on(load(CONFIG, &NoSecrets)).unwrap();
        let (tx, _rx) = mpsc::channel(1);
        Exporter::new(cfg, 4, DEFAULT_TIMEOUT_OFFSET, tx)
    }

    fn refused(e: &Exporter, module: Option<&str>, target: &str) -> ProbeRefused {
        let cfg = e.current();
        e.select(&cfg, module, target).unwrap_err()
    }

    #[test]
    fn unknown_monitor_or_module_is_a_400_with_a_clear_message() {
        let e = exporter();
        let r = refused(&e, None, "nope");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.message.contains("unknown monitor \"nope\""),
            "{}",
            r.message
        );
        assert!(r.message.contains("good"), "{}", r.message);
        let r = refused(&e, Some("nope"), "localhost:995");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.message.contains("unknown module \"nope\""),
            "{}",
            r.message
        );
        assert!(r.message.contains("pop3s_banner"), "{}", r.message);
        let r = refused(&e, None, "broken");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.message.contains("misconfigured") && r.message.contains("monitors[1].timeout_ms"),
            "{}",
            r.message
        );
        let r = refused(&e, Some("bad"), "localhost");
        assert!(
            r.message.contains("modules.bad.timeout_ms"),
            "{}",
            r.message
        );
        let r = refused(&e, Some("pop3s_banner"), "localhost:99999");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.message.contains("port"), "{}", r.message);
    }

    #[test]
    fn a_module_that_logs_in_needs_allowed_hosts_and_keeps_to_them() {
        let e = exporter();
        let r = refused(&e, Some("open_login"), "localhost");
        assert!(
            r.message.contains("modules.open_login.allowed_hosts"),
            "{}",
            r.message
        );
        let r = refused(&e, Some("pop3s_login"), "evil.example.org:995");
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let cfg = e.current();
        let (specs, name) = e
            .select(&cfg, Some("pop3s_login"), "mx1.example.net:1995")
            .unwrap();
        assert_eq!(name, "mx1.example.net:1995");
        assert_eq!(specs[0].target.host, "mx1.example.net");
        assert_eq!(specs[0].target.port, 1995);
        assert_eq!(specs[0].target.username.as_deref(), Some("probe"));
        let (specs, _) = e.select(&cfg, Some("pop3s_login"), "localhost").unwrap();
        assert_eq!(specs[0].target.port, 995, "the module's default port");
        // No error message or Debug output shows the password.
        let all = format!("{:?} {:?}", specs[0], e.current().modules);
        assert!(!all.contains("Pr0be-Secret-42"), "{all}");
    }

    #[test]
    fn targets() {
        assert_eq!(parse_target("h").unwrap(), ("h".into(), None));
        assert_eq!(parse_target("h:995").unwrap(), ("h".into(), Some(995)));
        assert_eq!(
            parse_target("[::1]:995").unwrap(),
            ("::1".into(), Some(995))
        );
        assert_eq!(parse_target("[::1]").unwrap(), ("::1".into(), None));
        assert_eq!(parse_target("::1").unwrap(), ("::1".into(), None));
        assert!(parse_target("h:0").is_err());
        assert!(parse_target("h:x").is_err());
        assert!(parse_target("").is_err());
        assert!(parse_target("h/x").is_err());
        assert!(parse_target("a b").is_err());
        assert!(host_allowed(&["*.example.net".into()], "MX.example.net."));
        assert!(!host_allowed(&["*.example.net".into()], "example.net"));
        assert!(!host_allowed(&["*.example.net".into()], "evilexample.net"));
    }

    #[test]
    fn scrape_timeout_header_less_offset() {
        let off = Duration::from_millis(500);
        let fallback = Duration::from_secs(50);
        assert_eq!(
            probe_budget(Some("10"), off, fallback).unwrap(),
            Duration::from_millis(9500)
        );
        assert_eq!(
            probe_budget(Some("4.5"), off, fallback).unwrap(),
            Duration::from_secs(4)
        );
        // A tiny timeout keeps half rather than nothing.
        assert_eq!(
            probe_budget(Some("0.6"), off, fallback).unwrap(),
            Duration::from_millis(300)
        );
        assert_eq!(probe_budget(None, off, fallback).unwrap(), fallback);
        for bad in ["", "abc", "-1", "0", "NaN", "inf"] {
            let e = probe_budget(Some(bad), off, fallback).unwrap_err();
            assert!(e.contains("X-Prometheus-Scrape-Timeout-Seconds"), "{e}");
        }
    }

    #[test]
    fn query_parameters() {
        assert_eq!(
            probe_params(Some("target=good")).unwrap(),
            (None, "good".into())
        );
        assert_eq!(
            probe_params(Some("module=m&target=h%3A995")).unwrap(),
            (Some("m".into()), "h:995".into())
        );
        assert!(probe_params(None).unwrap_err().contains("target"));
        assert!(probe_params(Some("module=m"))
            .unwrap_err()
            .contains("target"));
    }

    #[test]
    fn a_skipped_probe_is_probe_success_zero() {
        let body = probe_body(&ProbeOutcome::Skipped("no time".into()), Format::Text);
        assert!(body.contains("probe_success 0\n"), "{body}");
        assert!(body.contains("probe_skipped 1\n"), "{body}");
        assert!(body.starts_with("# no time\n"), "{body}");
    }

    #[test]
    fn own_metrics_count_reloads() {
        let e = exporter();
        e.reload_failed();
        let text = e.own_metrics(Format::Text);
        assert!(
            text.contains("pop3_probe_exporter_config_reloads_total{result=\"failure\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("pop3_probe_exporter_config_last_reload_successful 0\n"));
        assert!(text.contains("pop3_probe_exporter_monitors{state=\"misconfigured\"} 1\n"));
        assert!(text.contains("pop3_probe_exporter_modules{state=\"misconfigured\"} 2\n"));
        let om = e.own_metrics(Format::OpenMetrics);
        assert!(om.contains("# TYPE pop3_probe_exporter_config_reloads counter\n"));
        assert!(om.ends_with("# EOF\n"));
    }

    #[test]
    fn basic_auth_with_sha256_hashes() {
        use base64::Engine as _;
        // sha256("secret")
        let auth = BasicAuth::parse(
            "# users\nprom:sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n",
        )
        .unwrap();
        let header = |s: &str| {
            hyper::header::HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            ))
            .unwrap()
        };
        assert!(auth.allows(Some(&header("prom:secret"))));
        assert!(!auth.allows(Some(&header("prom:wrong"))));
        assert!(!auth.allows(Some(&header("other:secret"))));
        assert!(!auth.allows(None));
        assert!(BasicAuth::parse("prom:secret").is_err());
        assert!(!format!("{auth:?}").contains("2bb80d"));
    }
}
