//! The monitor list: one JSON document with run settings, defaults,
//! credentials and monitors. Strict: unknown fields, bad values and broken
//! references are errors that name their JSON path. Lenient where it counts:
//! a broken monitor (or credential) is reported and the others still run.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert::AlertSettings;
use crate::credentials::{self, SecretSource, Source};
use crate::limits::{self, ThresholdConflict};
use crate::probe::{AuthMethod, Kind, Target, TlsMode, DEFAULT_TIMEOUT};
use crate::profile;

// The `oauth2` block is config (read once, secrets resolved like a
// password); `crate::oauth2` is the token client the probe uses.
pub mod oauth2;
mod roundtrip;
pub use roundtrip::RoundtripSpec;

/// An error that names where in the document it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, JsonSchema)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    /// Paths and messages quote what the document says (a key, a name, an
    /// unknown field) and end up on terminals and in alerts: control
    /// characters are made visible here, once, for every error.
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: crate::text::terminal_safe(&path.into()),
            message: crate::text::terminal_safe(&message.into()),
        }
    }
}

pub const DEFAULT_NAMESPACE: &str = "Pop3Probe";

/// The whole document (used for the JSON Schema; the loader reads it piece
/// by piece so that one bad monitor cannot sink the rest).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "pop3-probe monitor list")]
pub struct ConfigDocument {
    /// Schema version; 1.
    #[serde(default)]
    pub version: Option<u32>,
    /// Editors use this to find the schema; ignored by the probe.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    /// Free text for people reading the file; ignored by the probe.
    #[serde(rename = "$comment", default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub run: RunSettings,
    /// Settings every monitor gets unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// Technical accounts, by name. Monitors refer to them with `credentials`.
    #[serde(default)]
    pub credentials: BTreeMap<String, Credential>,
    pub monitors: Vec<Monitor>,
    /// Named monitor settings (no `name`, `host` or `depends_on`; plus
    /// `allowed_hosts`) for `pop3-probe serve`'s
    /// `/probe?module=<name>&target=<host:port>`. `run` ignores them;
    /// `serve` checks them (see docs/serve.md).
    #[serde(default)]
    pub modules: BTreeMap<String, serde_json::Value>,
    /// Several vantages (regions) that must agree: quorum, freshness,
    /// metrics. Used only when the run has a vantage name.
    #[serde(default)]
    pub consensus: Option<crate::consensus::ConsensusSettings>,
}

/// How a run behaves.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// CloudWatch namespace for metrics. Default `Pop3Probe`.
    pub namespace: Option<String>,
    /// How often the list is run, in seconds (the Lambda's schedule, or
    /// `run --every`). Used to warn when a server's LOGIN-DELAY is longer.
    /// At most 604800 (a week).
    pub schedule_seconds: Option<u64>,
    /// Probes in flight at once. Default 32.
    pub concurrency: Option<usize>,
    /// Extra attempts for a failed probe, if time allows. Default 1.
    pub retries: Option<u32>,
    /// Pause before a retry. Default 1000, at most 600000.
    pub retry_delay_ms: Option<u64>,
    /// The whole run must finish within this (in Lambda, also within the
    /// invocation's remaining time). Default 60000, at least 1000, at most
    /// 86400000 (a day).
    pub deadline_ms: Option<u64>,
    /// Re-read credential secrets after this long (warm Lambdas). Default
    /// 300, at most 604800.
    pub secrets_ttl_seconds: Option<u64>,
}

macro_rules! monitor_settings {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            // The kind-specific fields' schema text comes from the
            // profile table (`json_schema`), not from doc comments.
            pub port: Option<u16>,
            pub tls: Option<TlsMode>,
            pub auth: Option<AuthMethod>,
            pub credentials: Option<String>,
            /// The whole probe's time limit. Default 10000, at most 3600000 (and
            /// within `run.deadline_ms`).
            pub timeout_ms: Option<u64>,
            /// Each phase's own limit inside `timeout_ms`. Default: none; at most 3600000.
            pub phase_timeout_ms: Option<u64>,
            /// Slower than this is `degraded`. Default 2000, or `critical_ms` when
            /// that is shorter.
            pub warning_ms: Option<u64>,
            /// Slower than this is `down`; at most `timeout_ms`. Default 8000, or
            /// `timeout_ms` when that is shorter.
            pub critical_ms: Option<u64>,
            /// Consecutive failed runs before a `down` alert. Default 2, at most 10000.
            pub failures_before_alert: Option<u32>,
            /// Warn when the certificate expires within this many days. Default 14,
            /// at most 3650.
            pub certificate_warning_days: Option<u32>,
            /// Allow USER/PASS or PLAIN without TLS. Default false.
            pub allow_plaintext_password: Option<bool>,
            /// PEM text of the CAs to trust instead of the built-in roots.
            pub ca_pem: Option<String>,
            /// A PEM file of CAs to trust (local runs; Lambda has no such file).
            pub ca_file: Option<PathBuf>,
            /// SNI and certificate name, when `host` is an address.
            pub tls_server_name: Option<String>,
            /// DANGEROUS: accept any certificate. Default false.
            pub insecure_skip_verify: Option<bool>,
            /// Per-phase and mailbox metrics (each costs money monthly). Default false.
            pub detailed_metrics: Option<bool>,
            /// Probe this monitor at all. Default true.
            pub enabled: Option<bool>,
            /// While down, alert again after this many minutes; 0 = never. Default 0,
            /// at most 527040 (a year).
            pub renotify_minutes: Option<u64>,
            pub capabilities: Option<bool>,
            /// With several vantages: a warning alert (never a page) when
            /// fewer vantages than the quorum see this monitor fail. Default false.
            pub partial_alert: Option<bool>,
        }
    };
}

monitor_settings! {
    /// Defaults for every monitor.
    pub struct Defaults {}
}

monitor_settings! {
    /// One POP3 endpoint to watch.
    pub struct Monitor {
        /// Unique; the CloudWatch `Monitor` dimension and the alert's name.
        pub name: String,
        /// Host name or IP address.
        pub host: String,
        /// `pop3` (default), `smtp`, `tcp` (connect only: stands in for
        /// ping, which Lambda cannot send) or `dns` (resolve only).
        /// `defaults.tls`, `auth`, `port`, `credentials`, `capabilities`,
        /// `tls_server_name`, `allow_plaintext_password` and
        /// `insecure_skip_verify` apply to `pop3` monitors only.
        pub kind: Option<Kind>,
        /// Names of monitors this one needs (the host's `tcp` check, its
        /// `dns` name). While one of them is down, this monitor is reported
        /// `blocked_by_dependency` and does not alert: the dependency's
        /// alert names the cause once.
        pub depends_on: Option<Vec<String>>,
        pub ehlo_name: Option<String>,
        /// Free text for people reading the file (why this monitor exists,
        /// what the provider requires); ignored by the probe.
        pub notes: Option<String>,
    }
}

/// A technical account. Exactly one of `password`, `password_env`,
/// `password_file`, `secret_id`.
#[derive(Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// Login name (may come from the secret instead, with `secret_id`).
    pub username: Option<String>,
    /// Inline password: only inside a config that is itself a secret.
    #[schemars(with = "Option<String>")]
    pub password: Option<SecretString>,
    /// Read the password from this environment variable (local runs).
    pub password_env: Option<String>,
    /// Read the password from this file's first line (local runs).
    pub password_file: Option<PathBuf>,
    /// A Secrets Manager secret (name or ARN) holding
    /// `{"username": "...", "password": "..."}` or just the password.
    pub secret_id: Option<String>,
    /// Log in with an OAuth2 access token instead of a password
    /// (XOAUTH2 / OAUTHBEARER); no password source then.
    pub oauth2: Option<oauth2::OAuth2Config>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("secret_id", &self.secret_id)
            .field("oauth2", &self.oauth2)
            .finish()
    }
}

/// Run settings with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    pub namespace: String,
    pub concurrency: usize,
    pub retries: u32,
    pub retry_delay: Duration,
    pub deadline: Duration,
    pub secrets_ttl: Duration,
    pub schedule: Option<Duration>,
}

/// A monitor ready to probe (credentials still unresolved).
#[derive(Debug, Clone)]
pub struct MonitorSpec {
    pub target: Target,
    pub alert: AlertSettings,
    pub detailed_metrics: bool,
    /// Credential entry name, when the monitor logs in.
    pub credentials: Option<String>,
    /// JSON path of the monitor, for errors found later.
    pub path: String,
    /// Monitors this one needs (validated: known names, no cycles).
    pub depends_on: Vec<String>,
    /// The monitors linked by `depends_on` share a shard: the smallest
    /// name of the group. Without dependencies, the monitor's own name.
    pub shard_key: String,
    /// Multi-vantage: alert (warning) on a partial condition.
    pub partial_alert: bool,
    /// `kind: roundtrip` only: the submit side, envelope, key, thresholds
    /// and the outstanding messages. `target` is then the retrieve side.
    pub roundtrip: Option<Box<RoundtripSpec>>,
}

/// A monitor whose settings are unusable; reported, not probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ConfigProblem {
    /// The monitor's name, or its path when the name itself is unusable.
    pub monitor: String,
    pub error: ConfigError,
}

/// The parsed document: run settings, monitors (good and bad), credentials.
#[derive(Debug, Clone)]
pub struct Config {
    pub run: RunConfig,
    pub monitors: Vec<MonitorSpec>,
    pub problems: Vec<ConfigProblem>,
    pub credentials: BTreeMap<String, Result<Credential, ConfigError>>,
    /// Monitors switched off with `enabled: false`.
    pub disabled: Vec<String>,
    /// The `consensus` block (defaults when absent).
    pub consensus: crate::consensus::ConsensusConfig,
}

const TOP_LEVEL: &[&str] = &[
    "version",
    "$schema",
    "$comment",
    "run",
    "defaults",
    "credentials",
    "monitors",
    "modules",
    "consensus",
];

fn typed<T: DeserializeOwned>(value: Value, path: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let full = if inner == "." || inner.is_empty() {
            path.to_string()
        } else if inner.starts_with('[') {
            format!("{path}{inner}")
        } else {
            format!("{path}.{inner}")
        };
        ConfigError::new(full, e.into_inner().to_string().replace('`', "\""))
    })
}

impl Config {
    /// Parse and validate. `Err` only when the document as a whole is
    /// unusable; a bad monitor or credential lands in `problems`. Passwords
    /// are not read yet: use [`load`] (or `resolve_credentials`) before
    /// probing.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            ConfigError::new(
                "config",
                format!(
                    "not valid JSON at line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let Value::Object(mut top) = doc else {
            return Err(ConfigError::new("config", "must be a JSON object"));
        };
        if let Some(unknown) = top.keys().find(|k| !TOP_LEVEL.contains(&k.as_str())) {
            return Err(ConfigError::new(
                key_path("", unknown),
                format!("unknown field, expected one of {}", TOP_LEVEL.join(", ")),
            ));
        }
        // `serve`'s ad-hoc modules (src/serve.rs reads and checks them).
        top.remove("modules");
        if let Some(v) = top.remove("version") {
            let version: u32 = typed(v, "version")?;
            if version != 1 {
                return Err(ConfigError::new(
                    "version",
                    format!("unsupported version {version}, expected 1"),
                ));
            }
        }
        let run: RunSettings = match top.remove("run") {
            Some(v) => typed(v, "run")?,
            None => RunSettings::default(),
        };
        let run = run_config(&run)?;
        let defaults: Defaults = match top.remove("defaults") {
            Some(v) => typed(v, "defaults")?,
            None => Defaults::default(),
        };
        validate_defaults(&defaults)?;

        let consensus = match top.remove("consensus") {
            Some(v) => {
                let s: crate::consensus::ConsensusSettings = typed(v, "consensus")?;
                crate::consensus::ConsensusConfig::from_settings(&s)
                    .map_err(|(path, message)| ConfigError::new(path, message))?
            }
            None => crate::consensus::ConsensusConfig::default(),
        };

        let mut credentials = BTreeMap::new();
        match top.remove("credentials") {
            None => {}
            Some(Value::Object(map)) => {
                for (name, v) in map {
                    let path = key_path("credentials", &name);
                    let entry =
                        typed::<Credential>(v, &path).and_then(|c| validate_credential(c, &path));
                    credentials.insert(name, entry);
                }
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "credentials",
                    "must be an object of named accounts",
                ))
            }
        }

        let Some(Value::Array(list)) = top.remove("monitors") else {
            return Err(ConfigError::new("monitors", "required: a list of monitors"));
        };
        let mut config = Config {
            run,
            monitors: Vec::new(),
            problems: Vec::new(),
            credentials,
            disabled: Vec::new(),
            consensus,
        };
        let mut seen: HashMap<String, String> = HashMap::new();
        for (i, raw) in list.into_iter().enumerate() {
            let path = format!("monitors[{i}]");
            let label = raw
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.trim().is_empty())
                // A name that fails validation is still shown: harmlessly.
                .map(crate::text::terminal_safe)
                .unwrap_or_else(|| path.clone());
            let spec = if raw.get("kind").and_then(Value::as_str) == Some("roundtrip") {
                roundtrip::parse(&config, raw, &path)
            } else {
                typed::<Monitor>(raw, &path).and_then(|m| config.monitor(m, &defaults, &path))
            };
            match spec {
                Ok(None) => config.disabled.push(label),
                Ok(Some(spec)) => {
                    if let Some(first) = seen.get(&spec.target.name) {
                        config.problems.push(ConfigProblem {
                            monitor: format!("{label} ({path})"),
                            error: ConfigError::new(
                                format!("{path}.name"),
                                format!(
                                    "duplicate name {:?}, first used at {first}",
                                    spec.target.name
                                ),
                            ),
                        });
                    } else {
                        seen.insert(spec.target.name.clone(), path);
                        config.monitors.push(spec);
                    }
                }
                Err(error) => config.problems.push(ConfigProblem {
                    monitor: label,
                    error,
                }),
            }
        }
        config.link_dependencies();
        Ok(config)
    }

    /// Take the schedule from where the run is started (`run --every`, the
    /// Lambda's schedule) unless the document states one.
    pub fn assume_schedule(&mut self, every: Duration) {
        if self.run.schedule.is_some() {
            return;
        }
        self.run.schedule = Some(every);
        for m in &mut self.monitors {
            m.alert.schedule = Some(every);
        }
    }

    /// Check `depends_on` across the list: every name must be a monitor of
    /// this document, and no chain may come back to where it started. A
    /// monitor that fails either becomes a problem; the rest go on. Then
    /// give each connected group one shard key, so a dependency is always
    /// probed in the same run as the monitors that need it.
    fn link_dependencies(&mut self) {
        let known: HashMap<&str, usize> = self
            .monitors
            .iter()
            .enumerate()
            .map(|(i, m)| (m.target.name.as_str(), i))
            .collect();
        // Names that exist but are not probed (disabled, or with a problem
        // of their own) are allowed: they just never block anyone.
        let elsewhere: std::collections::HashSet<&str> = self
            .disabled
            .iter()
            .map(String::as_str)
            .chain(self.problems.iter().map(|p| p.monitor.as_str()))
            .collect();
        let mut bad: BTreeMap<usize, ConfigError> = BTreeMap::new();
        for (i, m) in self.monitors.iter().enumerate() {
            for (j, dep) in m.depends_on.iter().enumerate() {
                if !known.contains_key(dep.as_str()) && !elsewhere.contains(dep.as_str()) {
                    bad.insert(
                        i,
                        ConfigError::new(
                            format!("{}.depends_on[{j}]", m.path),
                            format!("no monitor named {dep:?} in this list"),
                        ),
                    );
                    break;
                }
            }
        }
        // Cycles: every strongly connected component of more than one
        // monitor (Tarjan). A plain depth-first search misses monitors that
        // join a cycle through a node it already finished.
        struct Tarjan<'a> {
            monitors: &'a [MonitorSpec],
            known: &'a HashMap<&'a str, usize>,
            index: Vec<Option<usize>>,
            low: Vec<usize>,
            on_stack: Vec<bool>,
            stack: Vec<usize>,
            next: usize,
            components: Vec<Vec<usize>>,
        }
        impl Tarjan<'_> {
            fn visit(&mut self, v: usize) {
                self.index[v] = Some(self.next);
                self.low[v] = self.next;
                self.next += 1;
                self.stack.push(v);
                self.on_stack[v] = true;
                for dep in &self.monitors[v].depends_on {
                    let Some(&w) = self.known.get(dep.as_str()) else {
                        continue;
                    };
                    match self.index[w] {
                        None => {
                            self.visit(w);
                            self.low[v] = self.low[v].min(self.low[w]);
                        }
                        Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                        Some(_) => {}
                    }
                }
                if Some(self.low[v]) == self.index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = self.stack.pop() {
                        self.on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.reverse();
                        self.components.push(component);
                    }
                }
            }
        }
        let n = self.monitors.len();
        let mut t = Tarjan {
            monitors: &self.monitors,
            known: &known,
            index: vec![None; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            next: 0,
            components: Vec::new(),
        };
        for v in 0..n {
            if t.index[v].is_none() {
                t.visit(v);
            }
        }
        for mut cycle in t.components {
            cycle.sort_unstable();
            let names: Vec<&str> = cycle
                .iter()
                .map(|&k| self.monitors[k].target.name.as_str())
                .collect();
            let members = names.join(", ");
            for &k in &cycle {
                bad.entry(k).or_insert_with(|| {
                    ConfigError::new(
                        format!("{}.depends_on", self.monitors[k].path),
                        format!("dependency cycle among {members}"),
                    )
                });
            }
        }
        if !bad.is_empty() {
            let mut kept = Vec::with_capacity(self.monitors.len());
            for (i, m) in std::mem::take(&mut self.monitors).into_iter().enumerate() {
                match bad.remove(&i) {
                    Some(error) => self.problems.push(ConfigProblem {
                        monitor: m.target.name.clone(),
                        error,
                    }),
                    None => kept.push(m),
                }
            }
            self.monitors = kept;
        }
        // Shard keys: union-find over the dependency edges.
        let index: HashMap<String, usize> = self
            .monitors
            .iter()
            .enumerate()
            .map(|(i, m)| (m.target.name.clone(), i))
            .collect();
        let mut parent: Vec<usize> = (0..self.monitors.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for (i, m) in self.monitors.iter().enumerate() {
            for dep in &m.depends_on {
                if let Some(&j) = index.get(dep) {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
            }
        }
        let mut key: HashMap<usize, String> = HashMap::new();
        for i in 0..self.monitors.len() {
            let r = root(&mut parent, i);
            let name = &self.monitors[i].target.name;
            key.entry(r)
                .and_modify(|k| {
                    if name < k {
                        *k = name.clone();
                    }
                })
                .or_insert_with(|| name.clone());
        }
        for i in 0..self.monitors.len() {
            let r = root(&mut parent, i);
            self.monitors[i].shard_key = key[&r].clone();
        }
    }

    /// Merge a monitor with the defaults and check it. `Ok(None)`: disabled.
    fn monitor(
        &self,
        m: Monitor,
        d: &Defaults,
        path: &str,
    ) -> Result<Option<MonitorSpec>, ConfigError> {
        let at = |field: &str| format!("{path}.{field}");
        // The path of the setting the user wrote: the monitor's own, or
        // the one in `defaults` it inherited.
        let field_of = |own: bool, name: &str| {
            if own {
                at(name)
            } else {
                format!("defaults.{name}")
            }
        };
        if !m.enabled.or(d.enabled).unwrap_or(true) {
            return Ok(None);
        }
        check_name(&m.name).map_err(|e| ConfigError::new(at("name"), e))?;
        if m.host.trim().is_empty() || m.host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::new(
                at("host"),
                "must be a host name or IP address without spaces",
            ));
        }
        let kind = m.kind.unwrap_or_default();
        if kind == Kind::Roundtrip {
            // Its shape (submit, retrieve, from, to, signing_key) is not a
            // single endpoint's: `roundtrip::parse` reads it. Only a leg
            // or a caller's mistake reaches here with it.
            return Err(ConfigError::new(
                at("kind"),
                "a roundtrip monitor has submit, retrieve, from, to and signing_key; see docs/roundtrip.md",
            ));
        }
        let profile = profile::of(kind);
        // The defaults' protocol settings were written for the kinds that
        // take them (POP3); another kind takes only what the monitor says.
        let inherit = profile.takes_defaults;
        fn inherited<T>(inherit: bool, own: Option<T>, default: Option<T>) -> Option<T> {
            if inherit {
                own.or(default)
            } else {
                own
            }
        }
        for field in profile::KIND_FIELDS {
            let set = match field {
                "tls" => m.tls.is_some(),
                "auth" => m.auth.is_some(),
                "credentials" => m.credentials.is_some(),
                "ehlo_name" => m.ehlo_name.is_some(),
                "capabilities" => m.capabilities.is_some(),
                "port" => m.port.is_some(),
                _ => false,
            };
            if set && !profile.accepts(field) {
                return Err(ConfigError::new(at(field), profile.misfit(field)));
            }
        }
        let tls = match profile.tls {
            Some(default) => inherited(inherit, m.tls, d.tls).unwrap_or(default),
            None => TlsMode::None,
        };
        let port = match inherited(inherit, m.port, d.port) {
            Some(p) => p,
            None => profile
                .default_port(tls)
                .map_err(|e| ConfigError::new(at("port"), e))?
                .unwrap_or(0),
        };
        if port == 0 && profile.port != profile::PortRule::NoPort {
            return Err(ConfigError::new(at("port"), "must be between 1 and 65535"));
        }
        let credentials = inherited(inherit, m.credentials.clone(), d.credentials.clone());
        let auth = profile
            .auth(
                inherited(inherit, m.auth, d.auth),
                credentials.is_some(),
                "monitors",
            )
            .map_err(|e| ConfigError::new(field_of(m.auth.is_some() || !inherit, "auth"), e))?;
        let ms = |own: Option<u64>, default: Option<u64>, name: &str| {
            let v = own.or(default);
            match v {
                Some(v) if v > limits::MAX_TIMEOUT.as_millis() as u64 => Err(ConfigError::new(
                    field_of(own.is_some(), name),
                    limits::at_most(v, limits::MAX_TIMEOUT.as_millis() as u64).unwrap_err(),
                )),
                _ => Ok(v.map(Duration::from_millis)),
            }
        };
        let timeout = ms(m.timeout_ms, d.timeout_ms, "timeout_ms")?.unwrap_or(DEFAULT_TIMEOUT);
        let phase_timeout = ms(m.phase_timeout_ms, d.phase_timeout_ms, "phase_timeout_ms")?;
        let warning_set = ms(m.warning_ms, d.warning_ms, "warning_ms")?;
        let critical_set = ms(m.critical_ms, d.critical_ms, "critical_ms")?;
        if timeout.is_zero() {
            return Err(ConfigError::new(
                field_of(m.timeout_ms.is_some(), "timeout_ms"),
                "must be more than 0",
            ));
        }
        let timeout_ms = timeout.as_millis();
        let (warning, critical) =
            limits::thresholds(timeout, warning_set, critical_set).map_err(|conflict| {
                match conflict {
                    ThresholdConflict::CriticalOverTimeout { critical, .. } => ConfigError::new(
                        field_of(m.critical_ms.is_some(), "critical_ms"),
                        format!(
                            "critical_ms ({}) must not exceed timeout_ms ({timeout_ms})",
                            critical.as_millis()
                        ),
                    ),
                    ThresholdConflict::WarningNotBelowCritical {
                        warning,
                        critical,
                        critical_set,
                    } => ConfigError::new(
                        field_of(m.warning_ms.is_some(), "warning_ms"),
                        format!(
                            "warning_ms ({}) must be less than critical_ms ({}{})",
                            warning.as_millis(),
                            critical.as_millis(),
                            if critical_set {
                                ""
                            } else {
                                ", which follows timeout_ms when not set"
                            }
                        ),
                    ),
                }
            })?;
        let deadline = self.run.deadline.as_millis();
        if timeout_ms > deadline {
            return Err(ConfigError::new(
                field_of(m.timeout_ms.is_some(), "timeout_ms"),
                format!("timeout_ms ({timeout_ms}) is longer than the run allows (run.deadline_ms {deadline})"),
            ));
        }
        let failures_before_alert = m
            .failures_before_alert
            .or(d.failures_before_alert)
            .unwrap_or(2);
        if failures_before_alert == 0 {
            return Err(ConfigError::new(
                at("failures_before_alert"),
                "must be at least 1",
            ));
        }
        let bounded = |own: Option<u64>, default: Option<u64>, name: &str, max: u64| {
            own.or(default)
                .map(|v| {
                    limits::at_most(v, max)
                        .map_err(|e| ConfigError::new(field_of(own.is_some(), name), e))
                })
                .transpose()
        };
        bounded(
            m.failures_before_alert.map(u64::from),
            d.failures_before_alert.map(u64::from),
            "failures_before_alert",
            u64::from(limits::MAX_FAILURES_BEFORE_ALERT),
        )?;
        let renotify_minutes = bounded(
            m.renotify_minutes,
            d.renotify_minutes,
            "renotify_minutes",
            limits::MAX_RENOTIFY_MINUTES,
        )?;
        let certificate_warning_days = bounded(
            m.certificate_warning_days.map(u64::from),
            d.certificate_warning_days.map(u64::from),
            "certificate_warning_days",
            u64::from(limits::MAX_CERTIFICATE_WARNING_DAYS),
        )?
        .map_or(14, |days| days as u32);
        if auth != AuthMethod::None {
            let Some(name) = &credentials else {
                return Err(ConfigError::new(
                    at("credentials"),
                    format!("auth {auth} needs credentials: name an entry of \"credentials\" (or set auth to none)"),
                ));
            };
            match self.credentials.get(name) {
                None => {
                    let known: Vec<&str> = self.credentials.keys().map(String::as_str).collect();
                    return Err(ConfigError::new(
                        field_of(m.credentials.is_some(), "credentials"),
                        format!(
                            "no credentials named {name:?} (known: {})",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
                Some(Err(e)) => return Err(e.clone()),
                Some(Ok(c)) if c.username.is_none() && c.secret_id.is_none() => {
                    return Err(ConfigError::new(
                        format!("{}.username", key_path("credentials", name)),
                        "required (unless the secret_id secret holds it)",
                    ));
                }
                Some(Ok(_)) => {}
            }
        }
        let ca_pem = match (
            m.ca_pem.or(d.ca_pem.clone()),
            m.ca_file.or(d.ca_file.clone()),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    at("ca_file"),
                    "set ca_pem or ca_file, not both",
                ))
            }
            (Some(pem), None) => Some(pem),
            (None, Some(file)) => Some(
                limits::read_text_file(&file, limits::MAX_CA_FILE_BYTES)
                    .map_err(|e| ConfigError::new(at("ca_file"), e.to_string()))?,
            ),
            (None, None) => None,
        };
        if let Some(pem) = &ca_pem {
            crate::net::TlsClient::from_pem(pem)
                .map_err(|e| ConfigError::new(at("ca_pem"), e.to_string()))?;
        }
        // The name a POP3 server's certificate carries, and the exceptions
        // a POP3 setup needed, say nothing about the SMTP server.
        let tls_server_name = inherited(inherit, m.tls_server_name, d.tls_server_name.clone());
        if let Some(name) = &tls_server_name {
            crate::net::server_name(name)
                .map_err(|e| ConfigError::new(at("tls_server_name"), e))?;
        }
        let depends_on = m.depends_on.clone().unwrap_or_default();
        for (j, dep) in depends_on.iter().enumerate() {
            if dep == &m.name {
                return Err(ConfigError::new(
                    format!("{}[{j}]", at("depends_on")),
                    "a monitor cannot depend on itself",
                ));
            }
        }
        let mut target = Target::new(m.name.clone(), m.host.clone(), port);
        target.kind = kind;
        target.ehlo_name = m.ehlo_name.clone();
        target.tls = tls;
        target.auth = auth;
        target.timeout = timeout;
        target.phase_timeout = phase_timeout;
        target.warning = warning;
        target.critical = critical;
        target.ca_pem = ca_pem;
        target.tls_server_name = tls_server_name;
        target.insecure_skip_verify =
            inherited(inherit, m.insecure_skip_verify, d.insecure_skip_verify).unwrap_or(false);
        target.allow_plaintext_password = inherited(
            inherit,
            m.allow_plaintext_password,
            d.allow_plaintext_password,
        )
        .unwrap_or(false);
        // Expiry is the alert machine's business (once a day), not a
        // reason to call every run degraded.
        target.certificate_warning_days = None;
        target.capabilities =
            profile.asks_capabilities(inherited(inherit, m.capabilities, d.capabilities));
        Ok(Some(MonitorSpec {
            target,
            alert: AlertSettings {
                failures_before_alert,
                schedule: self.run.schedule,
                certificate_warning_days,
                renotify: renotify_minutes
                    .filter(|&m| m > 0)
                    .map(|m| Duration::from_secs(m * 60)),
            },
            detailed_metrics: m.detailed_metrics.or(d.detailed_metrics).unwrap_or(false),
            credentials: if auth == AuthMethod::None {
                None
            } else {
                credentials
            },
            path: path.to_string(),
            shard_key: m.name.clone(),
            depends_on,
            partial_alert: m.partial_alert.or(d.partial_alert).unwrap_or(false),
            roundtrip: None,
        }))
    }

    /// Fill in each monitor's username and password. A credential that
    /// cannot be read turns its monitors into problems; the rest go on.
    pub async fn resolve_credentials<S: SecretSource>(&mut self, secrets: &S) {
        let mut resolved: HashMap<String, Result<(Option<String>, SecretString), String>> =
            HashMap::new();
        let mut oauth: HashMap<String, Result<std::sync::Arc<crate::oauth2::Credential>, String>> =
            HashMap::new();
        for (name, entry) in &self.credentials {
            let Ok(cred) = entry else { continue };
            let used = self.monitors.iter().any(|m| {
                m.credentials.as_deref() == Some(name)
                    || roundtrip::extra_credentials(m).contains(&name.as_str())
            });
            if let (true, Some(o)) = (used, &cred.oauth2) {
                oauth.insert(
                    name.clone(),
                    o.resolve(secrets).await.map(std::sync::Arc::new),
                );
            } else if used {
                resolved.insert(name.clone(), read_credential(cred, secrets).await);
            }
        }
        let mut ready = Vec::with_capacity(self.monitors.len());
        for mut spec in std::mem::take(&mut self.monitors) {
            let Some(name) = spec.credentials.clone() else {
                ready.push(spec);
                continue;
            };
            // OAuth2: the user name from the credential, the token later.
            if let Some(o) = oauth.get(&name) {
                match o {
                    Ok(cred) => {
                        spec.target.username = self
                            .credentials
                            .get(&name)
                            .and_then(|c| c.as_ref().ok())
                            .and_then(|c| c.username.clone());
                        spec.target.oauth2 = Some(cred.clone());
                        ready.push(spec);
                    }
                    Err(message) => self.problems.push(ConfigProblem {
                        monitor: spec.target.name.clone(),
                        error: ConfigError::new(
                            format!("{}.oauth2", key_path("credentials", &name)),
                            message.clone(),
                        ),
                    }),
                }
                continue;
            }
            match resolved.get(&name) {
                Some(Ok((user, password))) => {
                    let configured = self
                        .credentials
                        .get(&name)
                        .and_then(|c| c.as_ref().ok())
                        .and_then(|c| c.username.clone());
                    spec.target.username = configured.or(user.clone());
                    spec.target.password = Some(password.clone());
                    if spec.target.username.is_none() {
                        self.problems.push(ConfigProblem {
                            monitor: spec.target.name.clone(),
                            error: ConfigError::new(
                                format!("{}.username", key_path("credentials", &name)),
                                "no user name: set username here or in the secret",
                            ),
                        });
                        continue;
                    }
                    if let Some(rt) = spec.roundtrip.as_mut() {
                        if let Err(error) = roundtrip::resolve(self, rt, &resolved) {
                            self.problems.push(ConfigProblem {
                                monitor: spec.target.name.clone(),
                                error,
                            });
                            continue;
                        }
                    }
                    ready.push(spec);
                }
                Some(Err(message)) => self.problems.push(ConfigProblem {
                    monitor: spec.target.name.clone(),
                    error: ConfigError::new(key_path("credentials", &name), message.clone()),
                }),
                None => self.problems.push(ConfigProblem {
                    monitor: spec.target.name.clone(),
                    error: ConfigError::new(key_path("credentials", &name), "unusable"),
                }),
            }
        }
        self.monitors = ready;
    }
}

async fn read_credential<S: SecretSource>(
    c: &Credential,
    secrets: &S,
) -> Result<(Option<String>, SecretString), String> {
    let source = if let Some(p) = &c.password {
        Source::Inline(p)
    } else if let Some(var) = &c.password_env {
        Source::Env(var)
    } else if let Some(file) = &c.password_file {
        Source::File(file)
    } else if let Some(id) = &c.secret_id {
        Source::Secret(id)
    } else {
        return Err("no password source".into());
    };
    credentials::read_account(source, secrets).await
}

/// `parent.key`, or `parent["key"]` when the key is not a plain word (an
/// empty key, spaces, dots): the path must point at one place, visibly.
/// Found by the config fuzz target: `{"": true}` gave an empty path.
fn key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (true, false) => format!("config[{key:?}]"),
        (false, true) => format!("{parent}.{key}"),
        (false, false) => format!("{parent}[{key:?}]"),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 255 {
        return Err("must be at most 255 bytes (it is a CloudWatch dimension value)".into());
    }
    if name.starts_with('#') {
        return Err("must not start with '#' (reserved for the probe's own state rows)".into());
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

fn run_config(r: &RunSettings) -> Result<RunConfig, ConfigError> {
    let namespace = r
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    if namespace.is_empty()
        || namespace.len() > 255
        || namespace.starts_with("AWS/")
        || namespace.starts_with(':')
    {
        return Err(ConfigError::new(
            "run.namespace",
            "must be 1-255 characters and not start with \"AWS/\" or \":\"",
        ));
    }
    let concurrency = r.concurrency.unwrap_or(32);
    if !(1..=4096).contains(&concurrency) {
        return Err(ConfigError::new(
            "run.concurrency",
            "must be between 1 and 4096",
        ));
    }
    let retries = r.retries.unwrap_or(1);
    if retries > 5 {
        return Err(ConfigError::new("run.retries", "must be at most 5"));
    }
    let deadline = r.deadline_ms.unwrap_or(60_000);
    if deadline < 1_000 {
        return Err(ConfigError::new("run.deadline_ms", "must be at least 1000"));
    }
    let max = |value: u64, field: &str, limit: Duration, unit_ms: u64| {
        limits::at_most(value, limit.as_millis() as u64 / unit_ms)
            .map_err(|e| ConfigError::new(format!("run.{field}"), e))
    };
    let deadline = max(deadline, "deadline_ms", limits::MAX_DEADLINE, 1)?;
    let retry_delay = max(
        r.retry_delay_ms.unwrap_or(1_000),
        "retry_delay_ms",
        limits::MAX_RETRY_DELAY,
        1,
    )?;
    let secrets_ttl = max(
        r.secrets_ttl_seconds.unwrap_or(300),
        "secrets_ttl_seconds",
        limits::MAX_INTERVAL,
        1_000,
    )?;
    let schedule = match r.schedule_seconds {
        Some(0) => {
            return Err(ConfigError::new(
                "run.schedule_seconds",
                "must be more than 0",
            ))
        }
        Some(s) => Some(max(s, "schedule_seconds", limits::MAX_INTERVAL, 1_000)?),
        None => None,
    };
    Ok(RunConfig {
        namespace,
        concurrency,
        retries,
        retry_delay: Duration::from_millis(retry_delay),
        deadline: Duration::from_millis(deadline),
        secrets_ttl: Duration::from_secs(secrets_ttl),
        schedule: schedule.map(Duration::from_secs),
    })
}

fn validate_defaults(d: &Defaults) -> Result<(), ConfigError> {
    if d.port == Some(0) {
        return Err(ConfigError::new(
            "defaults.port",
            "must be between 1 and 65535",
        ));
    }
    if d.failures_before_alert == Some(0) {
        return Err(ConfigError::new(
            "defaults.failures_before_alert",
            "must be at least 1",
        ));
    }
    if d.ca_pem.is_some() && d.ca_file.is_some() {
        return Err(ConfigError::new(
            "defaults.ca_file",
            "set ca_pem or ca_file, not both",
        ));
    }
    Ok(())
}

fn validate_credential(c: Credential, path: &str) -> Result<Credential, ConfigError> {
    if let Some(o) = &c.oauth2 {
        if c.password.is_some()
            || c.password_env.is_some()
            || c.password_file.is_some()
            || c.secret_id.is_some()
        {
            return Err(ConfigError::new(
                format!("{path}.oauth2"),
                "an oauth2 credential has no password: remove password, password_env, password_file, secret_id",
            ));
        }
        match &c.username {
            Some(u) if !u.is_empty() && !u.chars().any(|ch| ch.is_control()) => {}
            _ => {
                return Err(ConfigError::new(
                    format!("{path}.username"),
                    "required: the mailbox the token logs in to",
                ))
            }
        }
        o.validate(&format!("{path}.oauth2"))
            .map_err(|(p, m)| ConfigError::new(p, m))?;
        return Ok(c);
    }
    let sources = [
        c.password.is_some(),
        c.password_env.is_some(),
        c.password_file.is_some(),
        c.secret_id.is_some(),
    ]
    .iter()
    .filter(|&&s| s)
    .count();
    if sources != 1 {
        return Err(ConfigError::new(
            path,
            "set exactly one of password, password_env, password_file, secret_id",
        ));
    }
    // A login needs a user name, from here or the secret; a round trip's
    // signing key is a password alone. Checked where an entry is used.
    if let Some(u) = &c.username {
        if u.is_empty() || u.chars().any(|ch| ch.is_control()) {
            return Err(ConfigError::new(
                format!("{path}.username"),
                "must be non-empty without control characters",
            ));
        }
    }
    Ok(c)
}

/// The JSON Schema of the document, for editors.
pub fn json_schema() -> String {
    use schemars::schema::Schema;
    let mut schema = schemars::schema_for!(ConfigDocument);
    // The kind-specific fields are documented from the profile table: a
    // doc comment could only state one kind's defaults (it stated POP3's
    // for every kind).
    for (definition, defaults) in [("Monitor", false), ("Defaults", true)] {
        let Some(Schema::Object(def)) = schema.definitions.get_mut(definition) else {
            continue;
        };
        for (name, prop) in def.object().properties.iter_mut() {
            let Schema::Object(prop) = prop else { continue };
            let inherited = profile::INHERITED_FIELDS.contains(&name.as_str());
            let meta = prop.metadata();
            let text = match profile::schema_description(name, defaults && inherited) {
                Some(text) => text,
                None if defaults && inherited => {
                    let own = meta.description.as_deref().unwrap_or_default();
                    format!("{own} {}", profile::defaults_scope())
                }
                None => continue,
            };
            meta.description = Some(text);
        }
    }
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// Parse a document and resolve its credentials in one go.
pub async fn load<S: SecretSource>(text: &str, secrets: &S) -> Result<Config, ConfigError> {
    let mut config = Config::parse(text)?;
    config.resolve_credentials(secrets).await;
    Ok(config)
}

/// [`load`] for a runner that comes back (`run`, the Lambda): see
/// [`Config::prepare_for_runner`].
pub async fn load_for_runner<S: SecretSource>(
    text: &str,
    secrets: &S,
    schedule: Option<Duration>,
) -> Result<Config, ConfigError> {
    let mut config = Config::parse(text)?;
    config.prepare_for_runner(secrets, schedule).await;
    Ok(config)
}

impl Config {
    /// What follows parsing for a runner that comes back: its secret
    /// source (kept across runs) reuses values for the document's
    /// `run.secrets_ttl_seconds`; the runner's schedule (`run --every`,
    /// the Lambda's `POP3_PROBE_SCHEDULE_SECONDS`) stands in where the
    /// document gives none; then the credentials are read. In one place so
    /// that the CLI and the Lambda cannot drift apart; the Lambda calls it
    /// on the parse it caches.
    pub async fn prepare_for_runner<S: SecretSource>(
        &mut self,
        secrets: &S,
        schedule: Option<Duration>,
    ) {
        secrets.set_ttl(self.run.secrets_ttl);
        if let Some(every) = schedule {
            self.assume_schedule(every);
        }
        self.resolve_credentials(secrets).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::parse_account_secret;
    use secrecy::ExposeSecret;

    fn doc(monitors: &str) -> String {
        format!(
            r#"{{"credentials": {{"acct": {{"username": "probe", "password": "pw"}}}},
                "defaults": {{"credentials": "acct"}},
                "monitors": [{monitors}]}}"#
        )
    }

    fn problems(text: &str) -> Vec<String> {
        Config::parse(text)
            .unwrap()
            .problems
            .iter()
            .map(|p| p.error.to_string())
            .collect()
    }

    #[test]
    fn a_good_monitor_gets_defaults() {
        let c = Config::parse(&doc(r#"{"name": "a", "host": "mail.example.com"}"#)).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let m = &c.monitors[0];
        assert_eq!(m.target.port, 995);
        assert_eq!(m.target.tls, TlsMode::Implicit);
        assert_eq!(m.target.auth, AuthMethod::Auto);
        assert_eq!(m.target.timeout, Duration::from_secs(10));
        assert_eq!(m.target.warning, Duration::from_secs(2));
        assert_eq!(m.target.critical, Duration::from_secs(8));
        assert_eq!(m.alert.failures_before_alert, 2);
        assert_eq!(m.alert.certificate_warning_days, 14);
        assert_eq!(m.alert.renotify, None);
        assert!(!m.detailed_metrics);
        assert_eq!(m.credentials.as_deref(), Some("acct"));
        assert_eq!(c.run.namespace, "Pop3Probe");
        assert_eq!(c.run.concurrency, 32);
        assert_eq!(c.run.retries, 1);
    }

    #[test]
    fn starttls_defaults_to_port_110_and_aliases_work() {
        let c = Config::parse(&doc(
            r#"{"name": "a", "host": "h", "tls": "tls"}, {"name": "b", "host": "h", "tls": "ssl"},
               {"name": "c", "host": "h", "tls": "tls-if-available"}"#,
        ))
        .unwrap();
        let t: Vec<(TlsMode, u16)> = c
            .monitors
            .iter()
            .map(|m| (m.target.tls, m.target.port))
            .collect();
        assert_eq!(
            t,
            [
                (TlsMode::Starttls, 110),
                (TlsMode::Implicit, 995),
                (TlsMode::StarttlsIfAvailable, 110)
            ]
        );
    }

    #[test]
    fn errors_name_the_json_path_and_spare_the_rest() {
        let text = doc(r##"{"name": "ok", "host": "h"},
               {"name": "typo", "host": "h", "tls": "startls"},
               {"name": "extra", "host": "h", "colour": "blue"},
               {"name": "port", "host": "h", "port": 70000},
               {"name": "port0", "host": "h", "port": 0},
               {"name": "thresholds", "host": "h", "warning_ms": 5000, "critical_ms": 5000},
               {"name": "crit", "host": "h", "critical_ms": 20000},
               {"name": "slow", "host": "h", "timeout_ms": 120000, "critical_ms": 9000},
               {"name": "nocred", "host": "h", "credentials": "nobody"},
               {"name": "ok", "host": "other"},
               {"host": "h"},
               {"name": "", "host": "h"},
               {"name": "#x", "host": "h"},
               {"name": "sp", "host": "a b"},
               {"name": "f0", "host": "h", "failures_before_alert": 0},
               {"name": "ca", "host": "h", "ca_pem": "junk"}"##);
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.monitors.len(), 1, "only the first monitor is usable");
        let p = problems(&text);
        let expect = [
            "monitors[1].tls: unknown variant \"startls\", expected one of",
            "monitors[2].colour: unknown field \"colour\", expected one of \"name\", \"host\"",
            "monitors[3].port: invalid value: integer \"70000\"",
            "monitors[4].port: must be between 1 and 65535",
            "monitors[5].warning_ms: warning_ms (5000) must be less than critical_ms (5000)",
            "monitors[6].critical_ms: critical_ms (20000) must not exceed timeout_ms (10000)",
            "monitors[7].timeout_ms: timeout_ms (120000) is longer than the run allows (run.deadline_ms 60000)",
            "monitors[8].credentials: no credentials named \"nobody\" (known: acct)",
            "monitors[9].name: duplicate name \"ok\", first used at monitors[0]",
            "monitors[10]: missing field \"name\"",
            "monitors[11].name: must not be empty",
            "monitors[12].name: must not start with '#'",
            "monitors[13].host: must be a host name or IP address without spaces",
            "monitors[14].failures_before_alert: must be at least 1",
            "monitors[15].ca_pem: CA bundle: no certificates found",
        ];
        assert_eq!(p.len(), expect.len(), "{p:#?}");
        for (got, want) in p.iter().zip(expect) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
        // Problems carry the monitor's name when it has one.
        let names: Vec<&str> = c.problems.iter().map(|p| p.monitor.as_str()).collect();
        assert_eq!(names[0], "typo");
        assert_eq!(names[9], "monitors[10]");
    }

    #[test]
    fn whole_document_errors() {
        let e = Config::parse("{\"monitors\": [").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config: not valid JSON at line 1"),
            "{e}"
        );
        let e = Config::parse("[]").unwrap_err();
        assert_eq!(e.to_string(), "config: must be a JSON object");
        let e = Config::parse(r#"{"monitor": []}"#).unwrap_err();
        assert!(e.to_string().starts_with("monitor: unknown field"), "{e}");
        let e = Config::parse(r#"{}"#).unwrap_err();
        assert_eq!(e.to_string(), "monitors: required: a list of monitors");
        let e = Config::parse(r#"{"run": {"concurrency": 0}, "monitors": []}"#).unwrap_err();
        assert_eq!(e.to_string(), "run.concurrency: must be between 1 and 4096");
        let e = Config::parse(r#"{"run": {"deadline_ms": "soon"}, "monitors": []}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("run.deadline_ms: invalid type"),
            "{e}"
        );
        let e = Config::parse(r#"{"defaults": {"tls": "tls1.3"}, "monitors": []}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("defaults.tls: unknown variant"),
            "{e}"
        );
        let e = Config::parse(r#"{"version": 2, "monitors": []}"#).unwrap_err();
        assert_eq!(e.to_string(), "version: unsupported version 2, expected 1");
    }

    #[test]
    fn odd_keys_still_get_a_visible_path() {
        let e = Config::parse(r#"{"": true}"#).unwrap_err();
        assert!(
            e.to_string().starts_with(r#"config[""]: unknown field"#),
            "{e}"
        );
        let e = Config::parse(r#"{"a b": 1, "monitors": []}"#).unwrap_err();
        assert!(
            e.to_string().starts_with(r#"config["a b"]: unknown field"#),
            "{e}"
        );
        let c = Config::parse(r#"{"credentials": {"": {"username": "u"}}, "monitors": [{"name": "m", "host": "h", "credentials": ""}]}"#).unwrap();
        assert_eq!(c.problems[0].error.path, r#"credentials[""]"#);
    }

    #[test]
    fn credential_entries_are_checked_and_isolated() {
        let text = r#"{
            "credentials": {
                "two": {"username": "u", "password": "p", "password_env": "X"},
                "none": {"username": "u"},
                "nouser": {"password": "p"},
                "good": {"username": "u", "password": "p"}
            },
            "monitors": [
                {"name": "a", "host": "h", "credentials": "two"},
                {"name": "b", "host": "h", "credentials": "none"},
                {"name": "c", "host": "h", "credentials": "nouser"},
                {"name": "d", "host": "h", "credentials": "good"},
                {"name": "e", "host": "h", "auth": "none"},
                {"name": "f", "host": "h"}
            ]}"#;
        let c = Config::parse(text).unwrap();
        let good: Vec<&str> = c.monitors.iter().map(|m| m.target.name.as_str()).collect();
        assert_eq!(good, ["d", "e"]);
        let p = problems(text);
        assert_eq!(
            p[0],
            "credentials.two: set exactly one of password, password_env, password_file, secret_id"
        );
        assert_eq!(
            p[1],
            "credentials.none: set exactly one of password, password_env, password_file, secret_id"
        );
        assert_eq!(
            p[2],
            "credentials.nouser.username: required (unless the secret_id secret holds it)"
        );
        assert!(
            p[3].starts_with("monitors[5].credentials: auth auto needs credentials"),
            "{}",
            p[3]
        );
    }

    #[test]
    fn disabled_monitors_are_skipped_not_errors() {
        let c = Config::parse(&doc(
            r#"{"name": "a", "host": "h", "enabled": false, "tls": "bogus-but-ignored-not"}"#,
        ))
        .unwrap();
        // A disabled monitor with a bad field is still a problem: typos
        // should not hide until someone enables it.
        assert_eq!(c.problems.len(), 1);
        let c = Config::parse(&doc(r#"{"name": "a", "host": "h", "enabled": false}"#)).unwrap();
        assert!(c.monitors.is_empty() && c.problems.is_empty());
        assert_eq!(c.disabled, ["a"]);
    }

    #[test]
    fn secrets_never_reach_debug_or_errors() {
        let text = r#"{"credentials": {"a": {"username": "u", "password": "Hunter2-Secret"}},
                       "monitors": [{"name": "m", "host": "h", "credentials": "a", "tls": "nope"}]}"#;
        let c = Config::parse(text).unwrap();
        let all = format!("{c:?} {:?}", c.problems);
        assert!(!all.contains("Hunter2-Secret"), "{all}");
        // A malformed credential secret does not quote its content.
        let e = parse_account_secret(r#"{"username": "u", "password": "Hunter2-Secret", "x": 1}"#)
            .unwrap_err();
        assert!(!e.contains("Hunter2"), "{e}");
        let (u, p) = parse_account_secret(r#"{"username": "u", "password": "pw"}"#).unwrap();
        assert_eq!((u.as_deref(), p.expose_secret()), (Some("u"), "pw"));
        let (u, p) = parse_account_secret(" bare-password\n").unwrap();
        assert_eq!((u, p.expose_secret()), (None, "bare-password"));
    }

    struct NoSecrets;
    impl SecretSource for NoSecrets {
        async fn secret(&self, id: &str) -> Result<SecretString, crate::outside::SinkError> {
            if id == "good" {
                Ok(SecretString::from(
                    r#"{"username": "from-secret", "password": "pw"}"#.to_string(),
                ))
            } else {
                Err(crate::outside::SinkError::new(
                    "secretsmanager",
                    format!("secret {id} does not exist"),
                ))
            }
        }
    }

    #[tokio::test]
    async fn credential_resolution_isolates_failures() {
        let text = r#"{"credentials": {
                "ok": {"secret_id": "good"},
                "missing": {"secret_id": "gone"},
                "env": {"username": "u", "password_env": "POP3_PROBE_TEST_UNSET_VAR"}},
            "monitors": [
                {"name": "a", "host": "h", "credentials": "ok"},
                {"name": "b", "host": "h", "credentials": "missing"},
                {"name": "c", "host": "h", "credentials": "env"}]}"#;
        let c = load(text, &NoSecrets).await.unwrap();
        assert_eq!(c.monitors.len(), 1);
        assert_eq!(
            c.monitors[0].target.username.as_deref(),
            Some("from-secret")
        );
        let p: Vec<String> = c.problems.iter().map(|p| p.error.to_string()).collect();
        assert_eq!(
            p[0],
            "credentials.missing: secret gone: secretsmanager: secret gone does not exist"
        );
        assert_eq!(
            p[1],
            "credentials.env: environment variable POP3_PROBE_TEST_UNSET_VAR is not set"
        );
    }

    #[test]
    fn shipped_examples_parse_cleanly() {
        let root = env!("CARGO_MANIFEST_DIR");
        let text = std::fs::read_to_string(format!("{root}/examples/monitors.json")).unwrap();
        let c = Config::parse(&text).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.monitors.len(), 8);
        assert_eq!(c.disabled, ["old-pop-server"]);
        // The mail host's checks are one dependency group: one shard.
        let group: Vec<&str> = c
            .monitors
            .iter()
            .filter(|m| m.shard_key == "mail-110-starttls")
            .map(|m| m.target.name.as_str())
            .collect();
        assert_eq!(
            group,
            [
                "mail-dns",
                "mail-host",
                "mail-995",
                "mail-110-starttls",
                "mail-smtp-587"
            ]
        );
    }

    #[test]
    fn schema_file_is_current() {
        let path = format!("{}/schema/monitors.schema.json", env!("CARGO_MANIFEST_DIR"));
        let fresh = json_schema();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            shipped == fresh,
            "schema/monitors.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test schema_file_is_current`"
        );
        // The schema covers what the loader accepts at the top level.
        let v: Value = serde_json::from_str(&fresh).unwrap();
        let props: Vec<&String> = v["properties"].as_object().unwrap().keys().collect();
        for key in TOP_LEVEL {
            assert!(props.iter().any(|p| p == key), "schema lacks {key}");
        }
    }

    #[test]
    fn kinds_have_their_own_defaults() {
        let c = Config::parse(&doc(
            r#"{"name": "p", "host": "h"},
               {"name": "s", "host": "h", "kind": "smtp"},
               {"name": "s465", "host": "h", "kind": "smtp", "tls": "implicit", "credentials": "acct"},
               {"name": "t", "host": "h", "kind": "tcp", "port": 22},
               {"name": "d", "host": "h", "kind": "dns"}"#,
        ))
        .unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let get = |n: &str| c.monitors.iter().find(|m| m.target.name == n).unwrap();
        let p = get("p");
        assert_eq!(
            (p.target.kind, p.target.port, p.target.tls),
            (Kind::Pop3, 995, TlsMode::Implicit)
        );
        assert!(p.target.capabilities, "drift needs CAPA by default");
        let s = get("s");
        assert_eq!(
            (s.target.port, s.target.tls, s.target.auth),
            (25, TlsMode::StarttlsIfAvailable, AuthMethod::None)
        );
        assert_eq!(s.credentials, None, "defaults.credentials is POP3's");
        let s465 = get("s465");
        assert_eq!(
            (s465.target.port, s465.target.auth),
            (465, AuthMethod::Auto)
        );
        assert_eq!(s465.credentials.as_deref(), Some("acct"));
        let t = get("t");
        assert_eq!(
            (t.target.kind, t.target.port, t.target.tls, t.target.auth),
            (Kind::Tcp, 22, TlsMode::None, AuthMethod::None)
        );
        assert_eq!(get("d").target.kind, Kind::Dns);
    }

    #[test]
    fn settings_that_do_not_fit_the_kind_are_named() {
        let errs = problems(&doc(r#"{"name": "a", "host": "h", "kind": "tcp"},
               {"name": "b", "host": "h", "kind": "tcp", "port": 1, "tls": "implicit"},
               {"name": "c", "host": "h", "kind": "dns", "port": 53},
               {"name": "d", "host": "h", "kind": "smtp", "auth": "apop"},
               {"name": "e", "host": "h", "auth": "sasl-login"},
               {"name": "f", "host": "h", "ehlo_name": "x"},
               {"name": "g", "host": "h", "kind": "ping"}"#));
        assert_eq!(errs.len(), 7, "{errs:?}");
        assert!(
            errs[0].starts_with("monitors[0].port: a tcp monitor needs the port"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].starts_with("monitors[1].tls: does not apply to a tcp monitor"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].starts_with("monitors[2].port: does not apply to a dns monitor"),
            "{}",
            errs[2]
        );
        assert!(
            errs[3].starts_with("monitors[3].auth: apop is for pop3 monitors"),
            "{}",
            errs[3]
        );
        assert!(
            errs[4].starts_with("monitors[4].auth: sasl-login is for smtp"),
            "{}",
            errs[4]
        );
        assert!(
            errs[5].starts_with("monitors[5].ehlo_name: applies to smtp"),
            "{}",
            errs[5]
        );
        assert!(errs[6].starts_with("monitors[6].kind"), "{}", errs[6]);
    }

    #[test]
    fn dependencies_must_exist_and_not_loop() {
        let c = Config::parse(&doc(
            r#"{"name": "host", "host": "h", "kind": "tcp", "port": 995},
               {"name": "pop", "host": "h", "depends_on": ["host"]},
               {"name": "typo", "host": "h", "depends_on": ["hots"]},
               {"name": "self", "host": "h", "depends_on": ["self"]},
               {"name": "x", "host": "h", "depends_on": ["y"]},
               {"name": "y", "host": "h", "depends_on": ["x"]},
               {"name": "off", "host": "h", "enabled": false},
               {"name": "needs-off", "host": "h", "depends_on": ["off"]}"#,
        ))
        .unwrap();
        let errs: Vec<String> = c.problems.iter().map(|p| p.error.to_string()).collect();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(
            errs.contains(
                &"monitors[2].depends_on[0]: no monitor named \"hots\" in this list".to_string()
            ),
            "{errs:?}"
        );
        assert!(
            errs.contains(
                &"monitors[3].depends_on[0]: a monitor cannot depend on itself".to_string()
            ),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("monitors[4].depends_on: dependency cycle among x, y")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("monitors[5].depends_on: dependency cycle among x, y")),
            "{errs:?}"
        );
        let names: Vec<&str> = c.monitors.iter().map(|m| m.target.name.as_str()).collect();
        assert_eq!(names, ["host", "pop", "needs-off"]);
        // A group shares one shard key: its smallest name.
        assert_eq!(c.monitors[0].shard_key, "host");
        assert_eq!(c.monitors[1].shard_key, "host");
        assert_eq!(c.monitors[2].shard_key, "needs-off");
    }

    #[test]
    fn every_monitor_on_a_cycle_is_named() {
        // d joins the cycle a -> d -> b -> c -> a through b, which a plain
        // depth-first search has already finished when it reaches d.
        let c = Config::parse(&doc(
            r#"{"name": "a", "host": "h", "depends_on": ["b", "d"]},
               {"name": "b", "host": "h", "depends_on": ["c"]},
               {"name": "c", "host": "h", "depends_on": ["a"]},
               {"name": "d", "host": "h", "depends_on": ["b"]},
               {"name": "e", "host": "h", "depends_on": ["a"]}"#,
        ))
        .unwrap();
        let mut bad: Vec<&str> = c.problems.iter().map(|p| p.monitor.as_str()).collect();
        bad.sort_unstable();
        assert_eq!(bad, ["a", "b", "c", "d"], "{:?}", c.problems);
        assert!(c.problems[0]
            .error
            .to_string()
            .ends_with("dependency cycle among a, b, c, d"));
        // e only hangs off the cycle: kept, its dependency just blocks no one.
        assert_eq!(c.monitors.len(), 1);
        assert_eq!(c.monitors[0].target.name, "e");
    }

    #[test]
    fn pop3_tls_exceptions_do_not_reach_other_kinds() {
        let text = r#"{"credentials": {"acct": {"username": "u", "password": "p"}},
            "defaults": {"tls_server_name": "pop.example.com", "allow_plaintext_password": true,
                         "insecure_skip_verify": true, "credentials": "acct"},
            "monitors": [{"name": "p", "host": "192.0.2.1"},
                         {"name": "s", "kind": "smtp", "host": "192.0.2.1", "credentials": "acct"}]}"#;
        let c = Config::parse(text).unwrap();
        let (p, s) = (&c.monitors[0].target, &c.monitors[1].target);
        assert_eq!(p.tls_server_name.as_deref(), Some("pop.example.com"));
        assert!(p.allow_plaintext_password && p.insecure_skip_verify);
        assert_eq!(s.tls_server_name, None);
        assert!(!s.allow_plaintext_password && !s.insecure_skip_verify);
    }

    #[test]
    fn errors_carry_no_control_characters() {
        let c = Config::parse(&doc(r#"{"name": "evil\u001b]0;owned\u0007", "host": "h"},
               {"name": "b", "host": "h", "\u001b[2Jcolour": 1}"#))
        .unwrap();
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
        for p in &c.problems {
            let all = format!("{} {} {}", p.monitor, p.error.path, p.error.message);
            assert!(!all.chars().any(char::is_control), "{all:?}");
        }
        assert_eq!(c.problems[0].monitor, "evil?]0;owned?");
        assert!(c.problems[1]
            .error
            .message
            .contains("unknown field \"?[2Jcolour\""));
    }

    #[test]
    fn thresholds_nobody_wrote_follow_the_timeout() {
        // Issue 11.6: only `timeout_ms: 3000` blamed defaults.critical_ms,
        // which the user never wrote.
        let c = Config::parse(&doc(r#"{"name": "a", "host": "h", "timeout_ms": 3000},
               {"name": "b", "host": "h", "timeout_ms": 1000},
               {"name": "c", "host": "h", "timeout_ms": 3000, "warning_ms": 2500}"#))
        .unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let t = |i: usize| {
            let t = &c.monitors[i].target;
            (t.warning.as_millis(), t.critical.as_millis())
        };
        assert_eq!(t(0), (2000, 3000));
        assert_eq!(t(1), (1000, 1000));
        assert_eq!(t(2), (2500, 3000));
        // What the user wrote can conflict, and is what the error names.
        let p = problems(
            r#"{"defaults": {"auth": "none", "critical_ms": 5000},
                "monitors": [{"name": "a", "host": "h", "timeout_ms": 3000},
                             {"name": "b", "host": "h", "warning_ms": 4000, "timeout_ms": 3000, "critical_ms": 3000},
                             {"name": "c", "host": "h", "warning_ms": 9000}]}"#,
        );
        assert_eq!(
            p,
            [
                "defaults.critical_ms: critical_ms (5000) must not exceed timeout_ms (3000)",
                "monitors[1].warning_ms: warning_ms (4000) must be less than critical_ms (3000)",
                "monitors[2].warning_ms: warning_ms (9000) must be less than critical_ms (5000)",
            ]
        );
        let p = problems(
            r#"{"monitors": [{"name": "a", "host": "h", "auth": "none", "timeout_ms": 3000, "warning_ms": 3000}]}"#,
        );
        assert_eq!(
            p,
            ["monitors[0].warning_ms: warning_ms (3000) must be less than critical_ms (3000, which follows timeout_ms when not set)"]
        );
    }

    #[test]
    fn every_duration_and_count_has_a_ceiling() {
        let one = |m: &str| problems(&doc(m)).join("\n");
        assert_eq!(
            one(r#"{"name": "a", "host": "h", "renotify_minutes": 200000000000000}"#),
            "monitors[0].renotify_minutes: 200000000000000 is more than the maximum, 527040"
        );
        assert_eq!(
            one(r#"{"name": "a", "host": "h", "timeout_ms": 18446744073709551615}"#),
            "monitors[0].timeout_ms: 18446744073709551615 is more than the maximum, 3600000"
        );
        assert_eq!(
            one(r#"{"name": "a", "host": "h", "phase_timeout_ms": 3600001}"#),
            "monitors[0].phase_timeout_ms: 3600001 is more than the maximum, 3600000"
        );
        assert_eq!(
            one(r#"{"name": "a", "host": "h", "certificate_warning_days": 4000000000}"#),
            "monitors[0].certificate_warning_days: 4000000000 is more than the maximum, 3650"
        );
        assert_eq!(
            one(r#"{"name": "a", "host": "h", "failures_before_alert": 4000000000}"#),
            "monitors[0].failures_before_alert: 4000000000 is more than the maximum, 10000"
        );
        let p = problems(
            r#"{"defaults": {"auth": "none", "renotify_minutes": 18446744073709551615},
                "monitors": [{"name": "a", "host": "h"}]}"#,
        );
        assert_eq!(
            p,
            ["defaults.renotify_minutes: 18446744073709551615 is more than the maximum, 527040"]
        );
        for (field, value, max) in [
            ("deadline_ms", "18446744073709551615", "86400000"),
            ("retry_delay_ms", "18446744073709551615", "600000"),
            ("secrets_ttl_seconds", "18446744073709551615", "604800"),
            ("schedule_seconds", "18446744073709551615", "604800"),
        ] {
            let e = Config::parse(&format!(
                r#"{{"run": {{"{field}": {value}}}, "monitors": []}}"#
            ))
            .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("run.{field}: {value} is more than the maximum, {max}")
            );
        }
        let e = Config::parse(&doc(
            r#"{"name": "a", "host": "h", "ca_file": "/dev/zero"}"#,
        ))
        .unwrap()
        .problems
        .remove(0)
        .error;
        assert_eq!(e.path, "monitors[0].ca_file");
        assert!(e.message.contains("larger than 4194304 bytes"), "{e}");
    }

    #[tokio::test]
    async fn a_password_file_is_read_up_to_its_cap() {
        let text = r#"{"credentials": {"z": {"username": "u", "password_file": "/dev/zero"}},
            "monitors": [{"name": "a", "host": "h", "credentials": "z"}]}"#;
        let c = load(text, &NoSecrets).await.unwrap();
        assert!(c.monitors.is_empty());
        let e = &c.problems[0].error;
        assert_eq!(e.path, "credentials.z");
        assert!(e.message.contains("larger than 65536 bytes"), "{e}");
    }

    #[test]
    fn the_schema_documents_each_kind_with_its_own_defaults() {
        let v: Value = serde_json::from_str(&json_schema()).unwrap();
        let port = v["definitions"]["Monitor"]["properties"]["port"]["description"]
            .as_str()
            .unwrap();
        assert!(
            port.contains("smtp 465 with `implicit` TLS, else 25"),
            "{port}"
        );
        let tls = v["definitions"]["Defaults"]["properties"]["tls"]["description"]
            .as_str()
            .unwrap();
        assert!(
            tls.ends_with("In `defaults`, for pop3 monitors only."),
            "{tls}"
        );
        let plain = v["definitions"]["Defaults"]["properties"]["allow_plaintext_password"]
            ["description"]
            .as_str()
            .unwrap();
        assert!(plain.ends_with("for pop3 monitors only."), "{plain}");
    }

    #[test]
    fn the_schedule_comes_from_the_document_or_the_runner() {
        let mut c = Config::parse(&doc(r#"{"name": "p", "host": "h"}"#)).unwrap();
        assert_eq!(c.monitors[0].alert.schedule, None);
        c.assume_schedule(Duration::from_secs(60));
        assert_eq!(c.monitors[0].alert.schedule, Some(Duration::from_secs(60)));
        let text = r#"{"run": {"schedule_seconds": 300}, "monitors": [{"name": "p", "host": "h", "auth": "none"}]}"#;
        let mut c = Config::parse(text).unwrap();
        c.assume_schedule(Duration::from_secs(60));
        assert_eq!(c.monitors[0].alert.schedule, Some(Duration::from_secs(300)));
    }
}
