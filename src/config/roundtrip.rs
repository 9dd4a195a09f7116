//! `kind: roundtrip` monitors: two endpoints (submit, retrieve), the
//! envelope, a signing key and delivery thresholds. Each leg is read and
//! checked exactly as an `smtp` or `pop3` monitor would be, so its errors
//! name `monitors[i].submit.port` and the like.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{key_path, typed, Config, ConfigError, Defaults, Monitor, MonitorSpec};
use crate::alert::AlertSettings;
use crate::probe::roundtrip::{
    Outstanding, RoundTrip, DEFAULT_POLL_INTERVAL, DEFAULT_STALE_AFTER, DEFAULT_WAIT,
};
use crate::probe::{Kind, Target};
use crate::roundtrip::token::SigningKey;
use crate::roundtrip::Address;

/// The round trip's own settings, resolved except for secrets.
#[derive(Debug, Clone)]
pub struct RoundtripSpec {
    /// The SMTP submission endpoint, kind smtp (password filled in by
    /// `resolve_credentials`).
    pub submit: Target,
    pub submit_credentials: Option<String>,
    /// Name of the credentials entry whose password is the key.
    pub signing_key: String,
    /// Filled in by `resolve_credentials`.
    pub key: Option<SigningKey>,
    pub from: String,
    pub to: String,
    pub max_delivery: Duration,
    pub warning: Duration,
    pub critical: Duration,
    pub wait: Duration,
    pub poll_interval: Duration,
    pub stale_after: Duration,
    /// Messages still awaited, from the state; set by the pipeline before
    /// the run.
    pub state: Outstanding,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoundtripMonitor {
    name: String,
    #[allow(dead_code)]
    kind: Kind,
    submit: Value,
    retrieve: Value,
    from: String,
    to: String,
    signing_key: String,
    max_delivery_ms: Option<u64>,
    warning_ms: Option<u64>,
    critical_ms: Option<u64>,
    /// How long one run polls for its own message. Default 5000.
    wait_ms: Option<u64>,
    poll_interval_ms: Option<u64>,
    /// The probe's own messages older than this are removed. Default a day.
    stale_after_ms: Option<u64>,
    /// The whole run (both legs, every poll). Default 30000.
    timeout_ms: Option<u64>,
    depends_on: Option<Vec<String>>,
    failures_before_alert: Option<u32>,
    renotify_minutes: Option<u64>,
    enabled: Option<bool>,
    detailed_metrics: Option<bool>,
    #[allow(dead_code)]
    notes: Option<String>,
}

/// Read a leg as an smtp or pop3 monitor of its own.
fn leg(
    config: &Config,
    raw: Value,
    name: &str,
    kind: &str,
    path: &str,
) -> Result<MonitorSpec, ConfigError> {
    let Value::Object(mut obj) = raw else {
        return Err(ConfigError::new(
            path,
            "must be an object: host, port, tls, credentials",
        ));
    };
    for own in ["name", "kind", "depends_on", "enabled"] {
        if obj.contains_key(own) {
            return Err(ConfigError::new(
                format!("{path}.{own}"),
                "belongs to the round-trip monitor, not to one of its legs",
            ));
        }
    }
    obj.insert("name".into(), Value::String(name.to_string()));
    obj.insert("kind".into(), Value::String(kind.to_string()));
    let m: Monitor = typed(Value::Object(obj), path)?;
    config
        .monitor(m, &Defaults::default(), path)?
        .ok_or_else(|| ConfigError::new(path, "a leg cannot be disabled"))
}

/// `monitors[i]` with `kind: roundtrip`. `Ok(None)`: disabled.
pub(super) fn parse(
    config: &Config,
    raw: Value,
    path: &str,
) -> Result<Option<MonitorSpec>, ConfigError> {
    let at = |field: &str| format!("{path}.{field}");
    let r: RoundtripMonitor = typed(raw, path)?;
    if !r.enabled.unwrap_or(true) {
        return Ok(None);
    }
    super::check_name(&r.name).map_err(|e| ConfigError::new(at("name"), e))?;
    let mut submit = leg(config, r.submit, &r.name, "smtp", &at("submit"))?;
    if submit.credentials.is_none() {
        return Err(ConfigError::new(
            at("submit.credentials"),
            "required: a submission server takes mail only after AUTH",
        ));
    }
    let retrieve = leg(config, r.retrieve, &r.name, "pop3", &at("retrieve"))?;
    if retrieve.credentials.is_none() {
        return Err(ConfigError::new(
            at("retrieve.credentials"),
            "required: the mailbox is read after login",
        ));
    }
    Address::new(&r.from, "from").map_err(|e| ConfigError::new(at("from"), e.to_string()))?;
    Address::new(&r.to, "to").map_err(|e| ConfigError::new(at("to"), e.to_string()))?;
    match config.credentials.get(&r.signing_key) {
        None => {
            return Err(ConfigError::new(
                at("signing_key"),
                format!("no credentials named {:?}", r.signing_key),
            ))
        }
        Some(Err(e)) => return Err(e.clone()),
        Some(Ok(_)) => {}
    }
    let max_delivery = r.max_delivery_ms.unwrap_or(300_000);
    let warning = r.warning_ms.unwrap_or(30_000);
    let critical = r.critical_ms.unwrap_or(120_000);
    if warning >= critical {
        return Err(ConfigError::new(
            at("warning_ms"),
            format!("warning_ms ({warning}) must be less than critical_ms ({critical})"),
        ));
    }
    if critical > max_delivery {
        return Err(ConfigError::new(
            at("critical_ms"),
            format!("critical_ms ({critical}) must not exceed max_delivery_ms ({max_delivery})"),
        ));
    }
    let timeout = r.timeout_ms.unwrap_or(30_000);
    let deadline = config.run.deadline.as_millis() as u64;
    if timeout == 0 || timeout > deadline {
        return Err(ConfigError::new(
            at("timeout_ms"),
            format!("must be more than 0 and at most run.deadline_ms ({deadline})"),
        ));
    }
    let wait = r.wait_ms.unwrap_or(DEFAULT_WAIT.as_millis() as u64);
    if wait >= timeout {
        return Err(ConfigError::new(
            at("wait_ms"),
            format!("wait_ms ({wait}) must be less than timeout_ms ({timeout})"),
        ));
    }
    let poll = r
        .poll_interval_ms
        .unwrap_or(DEFAULT_POLL_INTERVAL.as_millis() as u64);
    if poll == 0 {
        return Err(ConfigError::new(
            at("poll_interval_ms"),
            "must be more than 0",
        ));
    }
    let stale = r
        .stale_after_ms
        .unwrap_or(DEFAULT_STALE_AFTER.as_millis() as u64);
    if stale < max_delivery {
        return Err(ConfigError::new(
            at("stale_after_ms"),
            format!("must be at least max_delivery_ms ({max_delivery}): a message still awaited is never stale"),
        ));
    }
    let failures_before_alert = r.failures_before_alert.unwrap_or(1);
    if failures_before_alert == 0 {
        return Err(ConfigError::new(
            at("failures_before_alert"),
            "must be at least 1",
        ));
    }
    let depends_on = r.depends_on.unwrap_or_default();
    if let Some(j) = depends_on.iter().position(|d| d == &r.name) {
        return Err(ConfigError::new(
            format!("{}[{j}]", at("depends_on")),
            "a monitor cannot depend on itself",
        ));
    }
    // The spec's target is the retrieve side, named after the monitor: the
    // mailbox it logs in to is what `run` keeps from concurrent logins.
    let mut target = retrieve.target;
    target.kind = Kind::Roundtrip;
    target.timeout = Duration::from_millis(timeout);
    target.warning = Duration::from_millis(warning);
    target.critical = Duration::from_millis(critical);
    submit.target.name = format!("{}/submit", r.name);
    Ok(Some(MonitorSpec {
        alert: AlertSettings {
            failures_before_alert,
            schedule: config.run.schedule,
            certificate_warning_days: retrieve.alert.certificate_warning_days,
            renotify: r
                .renotify_minutes
                .filter(|&m| m > 0)
                .map(|m| Duration::from_secs(m * 60)),
        },
        detailed_metrics: r.detailed_metrics.unwrap_or(false),
        credentials: retrieve.credentials,
        path: path.to_string(),
        shard_key: r.name.clone(),
        depends_on,
        // The consensus' partial warning is for single-protocol monitors; a
        // round trip's two halves already name the side that failed.
        partial_alert: false,
        target,
        roundtrip: Some(Box::new(RoundtripSpec {
            submit: submit.target,
            submit_credentials: submit.credentials,
            signing_key: r.signing_key,
            key: None,
            from: r.from,
            to: r.to,
            max_delivery: Duration::from_millis(max_delivery),
            warning: Duration::from_millis(warning),
            critical: Duration::from_millis(critical),
            wait: Duration::from_millis(wait),
            poll_interval: Duration::from_millis(poll),
            stale_after: Duration::from_millis(stale),
            state: Outstanding::default(),
        })),
    }))
}

impl RoundtripSpec {
    /// The engine's plan, with the retrieve side (the monitor's target,
    /// credentials filled in). `None` until the key is resolved.
    pub fn plan(&self, retrieve: &Target) -> Option<RoundTrip> {
        let mut r = retrieve.clone();
        r.kind = Kind::Pop3;
        r.warning = Duration::MAX;
        r.critical = Duration::MAX;
        Some(RoundTrip {
            name: retrieve.name.clone(),
            submit: self.submit.clone(),
            retrieve: r,
            from: self.from.clone(),
            to: self.to.clone(),
            key: self.key.clone()?,
            max_delivery: self.max_delivery,
            warning: self.warning,
            critical: self.critical,
            wait: self.wait,
            poll_interval: self.poll_interval,
            stale_after: self.stale_after,
            timeout: retrieve.timeout,
        })
    }
}

/// The credentials a round trip uses besides the retrieve side's.
pub(super) fn extra_credentials(spec: &MonitorSpec) -> Vec<&str> {
    match &spec.roundtrip {
        Some(rt) => rt
            .submit_credentials
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(rt.signing_key.as_str()))
            .collect(),
        None => Vec::new(),
    }
}

/// Fill in the submit side's account and the key. `Err`: the path and
/// why, for the monitor's problem.
pub(super) fn resolve(
    config: &Config,
    rt: &mut RoundtripSpec,
    resolved: &std::collections::HashMap<
        String,
        Result<(Option<String>, secrecy::SecretString), String>,
    >,
) -> Result<(), ConfigError> {
    if let Some(name) = rt.submit_credentials.clone() {
        let path = key_path("credentials", &name);
        match resolved.get(&name) {
            Some(Ok((user, password))) => {
                let configured = config
                    .credentials
                    .get(&name)
                    .and_then(|c| c.as_ref().ok())
                    .and_then(|c| c.username.clone());
                rt.submit.username = configured.or(user.clone());
                rt.submit.password = Some(password.clone());
                if rt.submit.username.is_none() {
                    return Err(ConfigError::new(
                        format!("{path}.username"),
                        "no user name: set username here or in the secret",
                    ));
                }
            }
            Some(Err(m)) => return Err(ConfigError::new(path, m.clone())),
            None => return Err(ConfigError::new(path, "unusable")),
        }
    }
    let path = key_path("credentials", &rt.signing_key);
    match resolved.get(&rt.signing_key) {
        Some(Ok((_, secret))) => {
            rt.key = Some(
                SigningKey::new(secret.clone())
                    .map_err(|e| ConfigError::new(format!("{path}.password"), e.to_string()))?,
            );
            Ok(())
        }
        Some(Err(m)) => Err(ConfigError::new(path, m.clone())),
        None => Err(ConfigError::new(path, "unusable")),
    }
}
