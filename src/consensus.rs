//! Several vantages (one deployment per region), one decision: is the
//! monitor down for everyone, for some (`partial`), or up?
//!
//! Pure: verdicts, heartbeats, the last consensus state and the time go in;
//! the next state and the alerts it owes come out. The store and the
//! conditional write that makes one vantage the sender live in
//! `crate::vantage`.
//!
//! Rules (docs/vantages.md says the same for users):
//! - A vantage is alive while its heartbeat is younger than the freshness
//!   window (default: two schedule intervals).
//! - Only verdicts of alive vantages, younger than the window, count.
//! - The quorum is a majority of the alive vantages, or the configured
//!   number, lowered to the alive count so that losing a region does not
//!   blind the probe (the `vantage_down` alert says the quorum shrank).
//! - At least `quorum` failing verdicts: the outage is confirmed; after
//!   `failures_before_alert` confirmed rounds, one `down`.
//! - Fewer failing verdicts: `partial` (shown; alerts only by opt-in, as a
//!   warning, never as a page).
//! - Recovery by the same rule: `quorum` verdicts that the monitor works.
//! - A round is one schedule interval: confirmations less than half an
//!   interval apart (the other vantages of the same minute) count once, so
//!   N vantages do not make `failures_before_alert` N times faster.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::alert::{runbook_hint, subject_line, truncate, Alert, AlertKind, Category, SMS_MAX};
use crate::clock::rfc3339;
use crate::probe::{FailureKind, Phase, ProbeResult, Status};

/// Without a known schedule, rounds and freshness assume this interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Longest message kept in a verdict (it is already scrubbed; this bounds
/// the item size and the alert body).
const MAX_MESSAGE: usize = 300;

/// A vantage name: it becomes part of state keys, a metric dimension and
/// alert text, so it is kept to a plain, short alphabet.
pub fn validate_vantage_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "vantage name {:?} must be 1 to 64 characters of A-Z a-z 0-9 - _ .",
            truncate(name, 70)
        ))
    }
}

/// One vantage's latest verdict on one monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub vantage: String,
    pub monitor: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// When the vantage probed, ms since the epoch.
    pub at_ms: i64,
    /// The run that produced it (the vantage and its start time).
    pub run_id: String,
    /// The result's one sentence, already scrubbed by the probe.
    #[serde(default)]
    pub message: String,
}

impl Verdict {
    pub fn from_result(vantage: &str, run_id: &str, r: &ProbeResult, at_ms: i64) -> Verdict {
        Verdict {
            vantage: vantage.to_string(),
            monitor: r.monitor.clone(),
            status: r.status,
            failure: r.failure,
            phase: r.failed_phase,
            at_ms,
            run_id: run_id.to_string(),
            message: truncate(&r.message, MAX_MESSAGE),
        }
    }

    /// Failed for its own reasons. A monitor held back by its dependency
    /// neither confirms an outage (the dependency's alert covers it) nor
    /// proves the service works.
    pub fn fails(&self) -> bool {
        self.status == Status::Down && self.failure != Some(FailureKind::BlockedByDependency)
    }

    pub fn works(&self) -> bool {
        self.status != Status::Down
    }

    fn cause(&self) -> String {
        match (self.failure, self.phase) {
            (Some(f), Some(p)) => format!("{f} in {p}"),
            (Some(f), None) => f.to_string(),
            (None, _) => self.status.to_string(),
        }
    }
}

/// What the vantages together say about a monitor right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Up,
    /// Failing from some vantages, fewer than the quorum.
    Partial,
    /// Failing from at least the quorum.
    Down,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Up => "up",
            Condition::Partial => "partial",
            Condition::Down => "down",
        }
    }
}

/// How `Availability` is published when vantages are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricsMode {
    /// One series per monitor, the consensus (1 unless confirmed down):
    /// the same metric count as one region.
    Consensus,
    /// The consensus series plus one per vantage (`Monitor`, `Vantage`
    /// dimensions): N vantages cost N more metrics per monitor.
    #[default]
    PerVantage,
}

/// The document's `consensus` block.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsensusSettings {
    /// Vantages that must see a failure to confirm an outage (and success
    /// to confirm recovery). Default: a majority of the alive vantages.
    pub quorum: Option<u32>,
    /// Verdicts and heartbeats older than this do not count. Default: two
    /// schedule intervals (120 without a known schedule).
    pub freshness_seconds: Option<u64>,
    /// `per_vantage` (default) or `consensus`.
    pub metrics: Option<MetricsMode>,
}

/// The `consensus` block with its values checked (defaults that depend on
/// the schedule are applied in [`ConsensusConfig::policy`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsensusConfig {
    pub quorum: Option<u32>,
    pub freshness: Option<Duration>,
    pub metrics: MetricsMode,
}

impl ConsensusConfig {
    /// Check the block; errors name the field.
    pub fn from_settings(s: &ConsensusSettings) -> Result<ConsensusConfig, (String, String)> {
        if s.quorum == Some(0) {
            return Err(("consensus.quorum".into(), "must be at least 1".into()));
        }
        if s.freshness_seconds == Some(0) {
            return Err((
                "consensus.freshness_seconds".into(),
                "must be at least 1".into(),
            ));
        }
        Ok(ConsensusConfig {
            quorum: s.quorum,
            freshness: s.freshness_seconds.map(Duration::from_secs),
            metrics: s.metrics.unwrap_or_default(),
        })
    }

    /// The rules for one monitor.
    pub fn policy(
        &self,
        schedule: Option<Duration>,
        failures_before_alert: u32,
        partial_alert: bool,
        lease: Duration,
    ) -> Policy {
        let interval = schedule.unwrap_or(DEFAULT_INTERVAL);
        Policy {
            quorum: self.quorum,
            window_ms: self.freshness.unwrap_or(interval * 2).as_millis() as i64,
            interval_ms: interval.as_millis().max(1) as i64,
            failures_before_alert: failures_before_alert.max(1),
            partial_alert,
            lease_ms: lease.as_millis() as i64,
        }
    }
}

/// The rules for one monitor, all in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub quorum: Option<u32>,
    pub window_ms: i64,
    pub interval_ms: i64,
    pub failures_before_alert: u32,
    pub partial_alert: bool,
    /// How long an evaluator that claimed an alert has to send it before
    /// another evaluator takes it over.
    pub lease_ms: i64,
}

/// An alert that was decided but not yet accepted by the alert sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsent {
    /// Unique per decision: monitor, kind and the version that decided it.
    pub id: String,
    pub alert: Alert,
    /// The vantage that is sending it.
    pub claimed_by: String,
    pub claimed_ms: i64,
}

/// The per-monitor consensus item: what people were told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsensusState {
    pub monitor: String,
    /// Bumped on every write; a write succeeds only over `version - 1`.
    pub version: u64,
    /// `up` or `down`: the last status announced.
    pub status: Status,
    /// A partial condition is going on (announced if the monitor opted in).
    #[serde(default)]
    pub partial: bool,
    /// Confirmed rounds towards `failures_before_alert`.
    #[serde(default)]
    pub confirmed_rounds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_round_ms: Option<i64>,
    pub since_ms: i64,
    /// The vantages that saw the current outage, for the recovery text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub down_from: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// Decided, not yet accepted by the sink: sent by whoever holds the
    /// claim, or by the next evaluator once the claim's lease ran out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsent: Vec<Unsent>,
}

impl ConsensusState {
    pub fn new(monitor: &str, now_ms: i64) -> ConsensusState {
        ConsensusState {
            monitor: monitor.to_string(),
            version: 0,
            status: Status::Up,
            partial: false,
            confirmed_rounds: 0,
            last_round_ms: None,
            since_ms: now_ms,
            down_from: Vec::new(),
            failure: None,
            unsent: Vec::new(),
        }
    }
}

/// What the fresh verdicts say, before any state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub monitor: String,
    pub condition: Condition,
    pub quorum: usize,
    pub alive: Vec<String>,
    /// Fresh failing verdicts, by vantage name.
    #[serde(skip)]
    pub failing: Vec<Verdict>,
    /// Vantages whose fresh verdict says it works.
    pub working: Vec<String>,
    /// Alive vantages without a fresh verdict (they have not probed it yet).
    pub silent: Vec<String>,
    /// One line for people: "mail-995 fails from eu-west-1 only: …".
    pub text: String,
}

impl View {
    pub fn failing_vantages(&self) -> Vec<String> {
        self.failing.iter().map(|v| v.vantage.clone()).collect()
    }
}

/// The quorum among `alive` vantages.
pub fn quorum(configured: Option<u32>, alive: usize) -> usize {
    let alive = alive.max(1);
    match configured {
        Some(q) => (q as usize).clamp(1, alive),
        None => alive / 2 + 1,
    }
}

/// The most common failure among failing verdicts (ties: the first vantage
/// by name), with its phase.
fn main_cause(failing: &[Verdict]) -> (Option<FailureKind>, String) {
    let mut counts: BTreeMap<String, (usize, Option<FailureKind>)> = BTreeMap::new();
    for v in failing {
        let e = counts.entry(v.cause()).or_insert((0, v.failure));
        e.0 += 1;
    }
    let mut best: Option<(String, usize, Option<FailureKind>)> = None;
    for v in failing {
        let c = v.cause();
        let (n, f) = counts[&c];
        if best.as_ref().is_none_or(|b| n > b.1) {
            best = Some((c, n, f));
        }
    }
    best.map(|(c, _, f)| (f, c))
        .unwrap_or((None, String::new()))
}

/// Judge the fresh verdicts of the alive vantages.
pub fn view(
    monitor: &str,
    verdicts: &[Verdict],
    alive: &BTreeSet<String>,
    policy: &Policy,
    now_ms: i64,
) -> View {
    let q = quorum(policy.quorum, alive.len());
    let mut latest: BTreeMap<&str, &Verdict> = BTreeMap::new();
    for v in verdicts {
        if v.monitor != monitor || !alive.contains(&v.vantage) {
            continue;
        }
        if now_ms - v.at_ms > policy.window_ms {
            continue;
        }
        let keep = latest
            .get(v.vantage.as_str())
            .is_none_or(|w| w.at_ms < v.at_ms);
        if keep {
            latest.insert(&v.vantage, v);
        }
    }
    let failing: Vec<Verdict> = latest
        .values()
        .filter(|v| v.fails())
        .map(|v| (*v).clone())
        .collect();
    let working: Vec<String> = latest
        .values()
        .filter(|v| v.works())
        .map(|v| v.vantage.clone())
        .collect();
    let silent: Vec<String> = alive
        .iter()
        .filter(|a| !latest.contains_key(a.as_str()))
        .cloned()
        .collect();
    let condition = if failing.len() >= q {
        Condition::Down
    } else if !failing.is_empty() {
        Condition::Partial
    } else {
        Condition::Up
    };
    let names: Vec<String> = failing.iter().map(|v| v.vantage.clone()).collect();
    let (_, cause) = main_cause(&failing);
    let text = match condition {
        Condition::Up => format!("{monitor} works from {}", list(&working)),
        Condition::Partial => format!(
            "{monitor} fails from {} only: {cause} ({} of {} alive vantages, quorum {q})",
            list(&names),
            names.len(),
            alive.len()
        ),
        Condition::Down => format!(
            "{monitor} fails from {}: {cause} ({} of {} alive vantages, quorum {q})",
            list(&names),
            names.len(),
            alive.len()
        ),
    };
    View {
        monitor: monitor.to_string(),
        condition,
        quorum: q,
        alive: alive.iter().cloned().collect(),
        failing,
        working,
        silent,
        text,
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no vantage".into()
    } else {
        names.join(", ")
    }
}

/// The next state, and the alerts this evaluator must send now.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub next: ConsensusState,
    /// Alerts this evaluator now holds the claim for: new ones and ones a
    /// previous evaluator left unsent.
    pub to_send: Vec<Unsent>,
    /// Whether `next` differs from the state read (a write is needed).
    pub changed: bool,
    pub view: View,
}

/// Decide for one monitor, as `evaluator`. Writing `next` conditionally on
/// the version read is what makes the decision (and the claims) this
/// evaluator's; see `crate::vantage`.
pub fn evaluate(
    prev: Option<&ConsensusState>,
    monitor: &str,
    verdicts: &[Verdict],
    alive: &BTreeSet<String>,
    policy: &Policy,
    evaluator: &str,
    now_ms: i64,
) -> Decision {
    let before = prev
        .cloned()
        .unwrap_or_else(|| ConsensusState::new(monitor, now_ms));
    let mut s = before.clone();
    let v = view(monitor, verdicts, alive, policy, now_ms);
    let version = s.version + 1;
    let mut new_alerts = Vec::new();
    if s.status != Status::Down {
        if v.condition == Condition::Down {
            let new_round = s
                .last_round_ms
                .is_none_or(|t| now_ms - t >= policy.interval_ms / 2);
            if new_round {
                s.confirmed_rounds += 1;
                s.last_round_ms = Some(now_ms);
            }
            if s.confirmed_rounds >= policy.failures_before_alert {
                let (failure, _) = main_cause(&v.failing);
                s.status = Status::Down;
                s.since_ms = now_ms;
                s.failure = failure;
                s.down_from = v.failing_vantages();
                s.confirmed_rounds = 0;
                s.last_round_ms = None;
                s.partial = false;
                new_alerts.push(render_down(&v, &s, policy, now_ms));
            }
        } else {
            s.confirmed_rounds = 0;
            s.last_round_ms = None;
        }
    } else if v.working.len() >= v.quorum {
        new_alerts.push(render_recovered(&v, &s, now_ms));
        s.status = Status::Up;
        s.since_ms = now_ms;
        s.failure = None;
        s.down_from.clear();
    }
    if s.status != Status::Down {
        let partial = v.condition == Condition::Partial;
        if partial && !s.partial && policy.partial_alert {
            new_alerts.push(render_partial(&v, now_ms));
        }
        s.partial = partial;
    }
    // Claims: ours, and any whose holder had its lease and did not clear.
    let mut to_send = Vec::new();
    for u in &mut s.unsent {
        if u.claimed_by == evaluator || now_ms - u.claimed_ms >= policy.lease_ms {
            u.claimed_by = evaluator.to_string();
            u.claimed_ms = now_ms;
            to_send.push(u.clone());
        }
    }
    for a in new_alerts {
        let u = Unsent {
            id: format!("{monitor}:{}:{version}", a.kind.as_str()),
            alert: a,
            claimed_by: evaluator.to_string(),
            claimed_ms: now_ms,
        };
        s.unsent.push(u.clone());
        to_send.push(u);
    }
    // Sending always follows a won conditional write, even a retry of our
    // own claim: a decision made from a stale read can then never send.
    let changed = s != before || !to_send.is_empty();
    if changed {
        s.version = version;
    }
    Decision {
        next: s,
        to_send,
        changed,
        view: v,
    }
}

/// `state` after the alerts with `sent` ids were accepted: they leave the
/// item. None when nothing changes.
pub fn without_sent(state: &ConsensusState, sent: &[String]) -> Option<ConsensusState> {
    if !state.unsent.iter().any(|u| sent.contains(&u.id)) {
        return None;
    }
    let mut s = state.clone();
    s.unsent.retain(|u| !sent.contains(&u.id));
    s.version += 1;
    Some(s)
}

fn vantage_lines(body: &mut String, v: &View) {
    let _ = writeln!(
        body,
        "Vantages (quorum {} of {} alive):",
        v.quorum,
        v.alive.len()
    );
    for f in &v.failing {
        let _ = writeln!(
            body,
            "  {:<16} down  {} at {} (run {}): {}",
            f.vantage,
            f.cause(),
            rfc3339(f.at_ms / 1000),
            f.run_id,
            f.message
        );
    }
    for w in &v.working {
        let _ = writeln!(body, "  {w:<16} works");
    }
    for s in &v.silent {
        let _ = writeln!(body, "  {s:<16} no fresh verdict yet");
    }
}

fn render_down(v: &View, s: &ConsensusState, policy: &Policy, now_ms: i64) -> Alert {
    let name = &v.monitor;
    let (failure, cause) = main_cause(&v.failing);
    let from = v.failing_vantages().join(", ");
    let credentials = !v.failing.is_empty()
        && v.failing
            .iter()
            .all(|f| f.failure.is_some_and(FailureKind::is_credentials_problem));
    let (category, subject, sms) = if credentials {
        (
            Category::Credentials,
            format!(
                "[DOWN: CREDENTIALS] {name}: the probe's login is rejected ({cause}) from {from}"
            ),
            format!("CREDENTIALS {name}: probe login rejected ({cause}) from {from}"),
        )
    } else {
        (
            Category::Service,
            format!("[DOWN] {name}: {cause} from {from}"),
            format!("DOWN {name}: {cause} from {from}"),
        )
    };
    let mut body = format!("{subject}\n\n");
    let _ = writeln!(body, "Monitor:   {name}");
    let _ = writeln!(
        body,
        "Status:    down (confirmed by {} vantages)",
        v.failing.len()
    );
    let _ = writeln!(body, "Cause:     {cause}");
    let _ = writeln!(body, "Since:     {}", rfc3339(s.since_ms / 1000));
    let _ = writeln!(body);
    vantage_lines(&mut body, v);
    let hint = runbook_hint(failure);
    if !hint.is_empty() {
        let _ = writeln!(body, "\nWhat to check: {hint}");
    }
    let _ = writeln!(
        body,
        "\nAlerts after {} confirmed rounds; checked at {}.",
        policy.failures_before_alert,
        rfc3339(now_ms / 1000)
    );
    Alert {
        monitor: name.clone(),
        kind: AlertKind::Down,
        category,
        cause: failure,
        subject: subject_line(&subject),
        sms: truncate(&sms, SMS_MAX),
        body,
        at_ms: now_ms,
    }
}

fn render_recovered(v: &View, s: &ConsensusState, now_ms: i64) -> Alert {
    let name = &v.monitor;
    let outage = humantime::format_duration(Duration::from_secs(
        ((now_ms - s.since_ms).max(0) / 1000) as u64,
    ))
    .to_string();
    let from = v.working.join(", ");
    let subject = format!("[RECOVERED] {name} is up after {outage} (from {from})");
    let sms = format!("RECOVERED {name}: up after {outage} from {from}");
    let mut body = format!("{subject}\n\n");
    let _ = writeln!(body, "Monitor:   {name}");
    let _ = writeln!(
        body,
        "Outage:    {outage}, since {}, seen from {}",
        rfc3339(s.since_ms / 1000),
        s.down_from.join(", ")
    );
    let _ = writeln!(body);
    vantage_lines(&mut body, v);
    Alert {
        monitor: name.clone(),
        kind: AlertKind::Recovered,
        category: if s.failure.is_some_and(FailureKind::is_credentials_problem) {
            Category::Credentials
        } else {
            Category::Service
        },
        cause: s.failure,
        subject: subject_line(&subject),
        sms: truncate(&sms, SMS_MAX),
        body,
        at_ms: now_ms,
    }
}

fn render_partial(v: &View, now_ms: i64) -> Alert {
    let (failure, _) = main_cause(&v.failing);
    let subject = format!("[PARTIAL] {}", v.text);
    let mut body = format!("{subject}\n\n");
    let _ = writeln!(
        body,
        "Fewer vantages than the quorum see this failure: most likely the network path from {} to the server, not the server itself. This is a warning; the monitor is not reported down.\n",
        v.failing_vantages().join(", ")
    );
    vantage_lines(&mut body, v);
    Alert {
        monitor: v.monitor.clone(),
        kind: AlertKind::Partial,
        category: Category::Service,
        cause: failure,
        subject: subject_line(&subject),
        sms: truncate(&format!("PARTIAL {}", v.text), SMS_MAX),
        body,
        at_ms: now_ms,
    }
}

/// The fleet item: which vantages count as members (announced alive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetState {
    pub version: u64,
    /// Vantages in the quorum, with their last heartbeat as last seen here.
    pub members: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsent: Vec<Unsent>,
}

/// The fleet row's name in alerts (the SNS `monitor` attribute).
pub const FLEET: &str = "pop3-probe-vantages";

/// The next fleet state: members whose heartbeat went stale leave with one
/// `vantage_down`; vantages with a fresh heartbeat join silently.
pub fn evaluate_fleet(
    prev: &FleetState,
    heartbeats: &BTreeMap<String, i64>,
    window_ms: i64,
    lease_ms: i64,
    evaluator: &str,
    now_ms: i64,
) -> (FleetState, Vec<Unsent>, bool) {
    let mut s = prev.clone();
    let version = s.version + 1;
    let fresh: BTreeMap<&String, i64> = heartbeats
        .iter()
        .filter(|(_, &at)| now_ms - at <= window_ms)
        .map(|(n, &at)| (n, at))
        .collect();
    let gone: Vec<String> = s
        .members
        .keys()
        .filter(|m| !fresh.contains_key(m))
        .cloned()
        .collect();
    let mut new_alerts = Vec::new();
    for g in &gone {
        let last = heartbeats.get(g).copied().unwrap_or(s.members[g]);
        s.members.remove(g);
        let left: Vec<String> = fresh.keys().map(|k| k.to_string()).collect();
        new_alerts.push(render_vantage_down(g, last, &left, now_ms));
    }
    for (n, at) in &fresh {
        // The stored time only changes on joins: a heartbeat every run
        // must not cost a fleet write every run.
        s.members.entry((*n).clone()).or_insert(*at);
    }
    let mut to_send = Vec::new();
    for u in &mut s.unsent {
        if u.claimed_by == evaluator || now_ms - u.claimed_ms >= lease_ms {
            u.claimed_by = evaluator.to_string();
            u.claimed_ms = now_ms;
            to_send.push(u.clone());
        }
    }
    for a in new_alerts {
        let u = Unsent {
            id: format!("{}:vantage_down:{version}", a.monitor),
            alert: a,
            claimed_by: evaluator.to_string(),
            claimed_ms: now_ms,
        };
        s.unsent.push(u.clone());
        to_send.push(u);
    }
    let changed = s != *prev || !to_send.is_empty();
    if changed {
        s.version = version;
    }
    (s, to_send, changed)
}

fn render_vantage_down(name: &str, last_ms: i64, left: &[String], now_ms: i64) -> Alert {
    let q = quorum(None, left.len());
    let subject = format!(
        "[VANTAGE DOWN] {name} stopped reporting; quorum now from {}",
        list(left)
    );
    let body = format!(
        "{subject}\n\nVantage:   {name}\nLast seen: {}\nRemaining: {} ({} alive, majority {q})\n\nThe vantage's verdicts no longer count. What to check: the probe function in that region (its schedule, errors and logs), and whether it can reach the state table.\n",
        rfc3339(last_ms / 1000),
        list(left),
        left.len()
    );
    Alert {
        monitor: format!("vantage:{name}"),
        kind: AlertKind::VantageDown,
        category: Category::Probe,
        cause: None,
        subject: subject_line(&subject),
        sms: truncate(&format!("VANTAGE DOWN {name}: stopped reporting"), SMS_MAX),
        body,
        at_ms: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn policy(n: u32, partial: bool) -> Policy {
        ConsensusConfig::default().policy(
            Some(Duration::from_secs(60)),
            n,
            partial,
            Duration::from_secs(60),
        )
    }

    fn verdict(vantage: &str, down: bool, at_ms: i64) -> Verdict {
        Verdict {
            vantage: vantage.into(),
            monitor: "mail-995".into(),
            status: if down { Status::Down } else { Status::Up },
            failure: down.then_some(FailureKind::ConnectionRefused),
            phase: down.then_some(Phase::Connect),
            at_ms,
            run_id: format!("{vantage}-{at_ms}"),
            message: "Connection refused".into(),
        }
    }

    fn alive(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    const ABC: [&str; 3] = ["ap-southeast-2", "eu-west-1", "us-east-1"];

    #[test]
    fn quorum_is_a_majority_or_the_setting_within_the_alive() {
        assert_eq!(quorum(None, 3), 2);
        assert_eq!(quorum(None, 2), 2);
        assert_eq!(quorum(None, 1), 1);
        assert_eq!(quorum(None, 4), 3);
        assert_eq!(quorum(Some(3), 3), 3);
        assert_eq!(quorum(Some(3), 2), 2, "lowered to the alive");
        assert_eq!(quorum(Some(1), 3), 1);
    }

    #[test]
    fn one_region_of_three_is_partial_with_the_issue_wording() {
        let t = 10 * MIN;
        let vs = [
            verdict("eu-west-1", true, t),
            verdict("us-east-1", false, t),
            verdict("ap-southeast-2", false, t),
        ];
        let d = evaluate(
            None,
            "mail-995",
            &vs,
            &alive(&ABC),
            &policy(1, false),
            "us-east-1",
            t,
        );
        assert_eq!(d.view.condition, Condition::Partial);
        assert!(
            d.view
                .text
                .starts_with("mail-995 fails from eu-west-1 only: connection_refused in connect"),
            "{}",
            d.view.text
        );
        assert!(d.to_send.is_empty(), "no alert without the opt-in");
        assert!(d.next.partial);
        // Opted in: one warning, once.
        let d = evaluate(
            None,
            "mail-995",
            &vs,
            &alive(&ABC),
            &policy(1, true),
            "us-east-1",
            t,
        );
        assert_eq!(d.to_send.len(), 1);
        let a = &d.to_send[0].alert;
        assert_eq!((a.kind, a.severity()), (AlertKind::Partial, "warning"));
        let sent = without_sent(&d.next, &[d.to_send[0].id.clone()]).unwrap();
        let again = evaluate(
            Some(&sent),
            "mail-995",
            &vs,
            &alive(&ABC),
            &policy(1, true),
            "eu-west-1",
            t + MIN,
        );
        assert!(
            again.to_send.is_empty(),
            "one warning per partial condition"
        );
    }

    #[test]
    fn all_down_is_one_down_naming_the_vantages_then_one_recovery() {
        let p = policy(1, false);
        let t = 10 * MIN;
        let down: Vec<Verdict> = ABC.iter().map(|v| verdict(v, true, t)).collect();
        let d = evaluate(None, "mail-995", &down, &alive(&ABC), &p, "us-east-1", t);
        assert_eq!(d.to_send.len(), 1);
        let a = &d.to_send[0].alert;
        assert_eq!(a.kind, AlertKind::Down);
        assert_eq!(
            a.subject,
            "[DOWN] mail-995: connection_refused in connect from ap-southeast-2, eu-west-1, us-east-1"
        );
        assert!(
            a.body.contains("down  connection_refused in connect"),
            "{}",
            a.body
        );
        // Sent: the claim leaves the item; the next evaluator has nothing to say.
        let sent = without_sent(&d.next, &[d.to_send[0].id.clone()]).unwrap();
        let d2 = evaluate(
            Some(&sent),
            "mail-995",
            &down,
            &alive(&ABC),
            &p,
            "eu-west-1",
            t + 1000,
        );
        assert!(d2.to_send.is_empty() && !d2.changed);
        let up: Vec<Verdict> = ABC.iter().map(|v| verdict(v, false, t + MIN)).collect();
        let d3 = evaluate(
            Some(&sent),
            "mail-995",
            &up,
            &alive(&ABC),
            &p,
            "eu-west-1",
            t + MIN,
        );
        assert_eq!(d3.to_send.len(), 1);
        assert_eq!(d3.to_send[0].alert.kind, AlertKind::Recovered);
        assert!(d3.to_send[0]
            .alert
            .body
            .contains("seen from ap-southeast-2, eu-west-1, us-east-1"));
    }

    #[test]
    fn failures_before_alert_counts_rounds_not_vantages() {
        let p = policy(2, false);
        let t = 10 * MIN;
        let down: Vec<Verdict> = ABC.iter().map(|v| verdict(v, true, t)).collect();
        let mut s = None;
        // Three vantages in the same minute: one round.
        for (i, v) in ABC.iter().enumerate() {
            let d = evaluate(
                s.as_ref(),
                "mail-995",
                &down,
                &alive(&ABC),
                &p,
                v,
                t + i as i64 * 1000,
            );
            assert!(d.to_send.is_empty(), "{v}");
            s = Some(d.next);
        }
        assert_eq!(s.as_ref().unwrap().confirmed_rounds, 1);
        let down2: Vec<Verdict> = ABC.iter().map(|v| verdict(v, true, t + MIN)).collect();
        let d = evaluate(
            s.as_ref(),
            "mail-995",
            &down2,
            &alive(&ABC),
            &p,
            "eu-west-1",
            t + MIN,
        );
        assert_eq!(d.to_send.len(), 1, "the second round alerts");
    }

    #[test]
    fn stale_verdicts_and_dead_vantages_do_not_count() {
        let p = policy(1, false);
        let t = 10 * MIN;
        // eu-west-1's failure is older than two intervals.
        let vs = [
            verdict("eu-west-1", true, t - 3 * MIN),
            verdict("us-east-1", true, t),
            verdict("ap-southeast-2", false, t),
        ];
        let v = view("mail-995", &vs, &alive(&ABC), &p, t);
        assert_eq!(v.condition, Condition::Partial);
        assert_eq!(v.silent, ["eu-west-1"]);
        // With ap-southeast-2 dead, the two alive ones decide (quorum 2 of 2).
        let vs = [
            verdict("eu-west-1", true, t),
            verdict("us-east-1", true, t),
            verdict("ap-southeast-2", false, t),
        ];
        let v = view("mail-995", &vs, &alive(&["eu-west-1", "us-east-1"]), &p, t);
        assert_eq!((v.condition, v.quorum), (Condition::Down, 2));
    }

    #[test]
    fn an_unsent_alert_is_taken_over_after_the_lease() {
        let p = policy(1, false);
        let t = 10 * MIN;
        let down: Vec<Verdict> = ABC.iter().map(|v| verdict(v, true, t)).collect();
        // us-east-1 won and died before sending.
        let won = evaluate(None, "mail-995", &down, &alive(&ABC), &p, "us-east-1", t).next;
        let early = evaluate(
            Some(&won),
            "mail-995",
            &down,
            &alive(&ABC),
            &p,
            "eu-west-1",
            t + 1000,
        );
        assert!(early.to_send.is_empty(), "the claim is still us-east-1's");
        let late = evaluate(
            Some(&won),
            "mail-995",
            &down,
            &alive(&ABC),
            &p,
            "eu-west-1",
            t + MIN,
        );
        assert_eq!(late.to_send.len(), 1);
        assert_eq!(late.to_send[0].alert.kind, AlertKind::Down);
        assert_eq!(late.next.unsent[0].claimed_by, "eu-west-1");
        assert!(late.changed, "the take-over is itself a conditional write");
    }

    #[test]
    fn a_silent_vantage_leaves_with_one_alert() {
        let mut beats =
            BTreeMap::from([("eu-west-1".to_string(), 0), ("us-east-1".to_string(), 0)]);
        let (s, sent, changed) =
            evaluate_fleet(&FleetState::default(), &beats, 2 * MIN, MIN, "us-east-1", 0);
        assert!(changed && sent.is_empty());
        assert_eq!(s.members.len(), 2);
        beats.insert("us-east-1".into(), MIN);
        let (s2, _, changed) = evaluate_fleet(&s, &beats, 2 * MIN, MIN, "us-east-1", MIN);
        assert!(!changed, "a heartbeat alone costs no fleet write");
        beats.insert("us-east-1".into(), 3 * MIN);
        let (s3, sent, _) = evaluate_fleet(&s2, &beats, 2 * MIN, MIN, "us-east-1", 3 * MIN);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].alert.kind, AlertKind::VantageDown);
        assert_eq!(sent[0].alert.monitor, "vantage:eu-west-1");
        assert!(!s3.members.contains_key("eu-west-1"));
        let cleared = FleetState {
            unsent: vec![],
            ..s3
        };
        let (_, sent, _) = evaluate_fleet(&cleared, &beats, 2 * MIN, MIN, "us-east-1", 4 * MIN);
        assert!(sent.is_empty(), "once");
    }

    /// One step of a simulated fleet: vantage `v` probes (sees the monitor
    /// down or not), then evaluates. `stale` makes it evaluate from the
    /// state before the last write (a concurrent evaluator): its write
    /// loses and it retries from the fresh state. `crash` kills it between
    /// winning and sending; `send_fails` makes the sink refuse.
    #[derive(Debug, Clone)]
    struct Event {
        v: usize,
        down: bool,
        gap_ms: i64,
        stale: bool,
        crash: bool,
        send_fails: bool,
    }

    fn event() -> impl Strategy<Value = Event> {
        (
            0..3usize,
            any::<bool>(),
            0..90_000i64,
            any::<bool>(),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(v, down, gap_ms, stale, crash, send_fails)| Event {
                v,
                down,
                gap_ms,
                stale,
                crash,
                send_fails,
            })
    }

    /// The store's conditional write: only over the version it replaces.
    fn commit(stored: &mut Option<ConsensusState>, next: ConsensusState) -> bool {
        let current = stored.as_ref().map_or(0, |s| s.version);
        if next.version != current + 1 {
            return false;
        }
        *stored = Some(next);
        true
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// At most one alert per transition (down and recovered alternate,
        /// each delivered once unless its sender crashed after the sink
        /// accepted it), and no confirmed outage is missed: once the
        /// consensus has been confirmed for `failures_before_alert` rounds,
        /// the state is down and its alert is delivered or still owed.
        #[test]
        fn one_alert_per_transition_and_no_outage_missed(
            events in prop::collection::vec(event(), 1..60),
            n in 1u32..3,
        ) {
            let p = policy(n, false);
            let names = ABC;
            let all = alive(&names);
            let mut t = 10 * MIN;
            let mut verdicts: Vec<Verdict> = Vec::new();
            let mut stored: Option<ConsensusState> = None;
            let mut older: Option<ConsensusState> = None;
            let mut delivered: Vec<(String, AlertKind)> = Vec::new();
            // Model of the rounds rule: confirmed evaluations in the
            // current streak, greedily spaced by half an interval.
            let mut streak: Vec<i64> = Vec::new();
            for e in &events {
                t += e.gap_ms;
                verdicts.retain(|x| x.vantage != names[e.v]);
                verdicts.push(verdict(names[e.v], e.down, t));
                let me = names[e.v];
                let mut base = if e.stale { older.clone() } else { stored.clone() };
                let mut stale_read = e.stale && base != stored;
                let decision = loop {
                    let d = evaluate(base.as_ref(), "mail-995", &verdicts, &all, &p, me, t);
                    if !d.changed { break Some(d); }
                    let before = stored.clone();
                    if commit(&mut stored, d.next.clone()) {
                        older = before;
                        break Some(d);
                    }
                    // Lost the race: read again, decide again.
                    base = stored.clone();
                    stale_read = false;
                };
                let Some(d) = decision else { continue };
                // Nothing to write from a read that another write overtook:
                // as if this evaluation came before that write. The next
                // fresh evaluation is the one the model checks.
                if stale_read {
                    prop_assert!(d.to_send.is_empty());
                    continue;
                }
                // The model: is the consensus confirmed down now?
                let confirmed = view("mail-995", &verdicts, &all, &p, t).condition == Condition::Down;
                if confirmed {
                    if streak.last().is_none_or(|&l| t - l >= p.interval_ms / 2) { streak.push(t); }
                } else {
                    streak.clear();
                }
                if streak.len() as u32 >= n {
                    prop_assert_eq!(stored.as_ref().unwrap().status, Status::Down,
                        "confirmed for {} rounds but not down", streak.len());
                    streak.clear();
                }
                if stored.as_ref().is_some_and(|s| s.status == Status::Down) { streak.clear(); }
                if e.crash { continue; }
                let mut sent_ids = Vec::new();
                for u in &d.to_send {
                    if e.send_fails { break; }
                    delivered.push((u.id.clone(), u.alert.kind));
                    sent_ids.push(u.id.clone());
                }
                if sent_ids.is_empty() { continue; }
                // Clear, re-reading on conflict; a crash here would repeat.
                // Sequential here, so the clearing write cannot lose.
                if let Some(next) = stored.as_ref().and_then(|s| without_sent(s, &sent_ids)) {
                    let before = stored.clone();
                    prop_assert!(commit(&mut stored, next));
                    older = before;
                }
            }
            // Flush: time passes beyond every lease, sends succeed.
            t += 10 * MIN;
            for v in names {
                let d = evaluate(stored.as_ref(), "mail-995", &verdicts, &all, &p, v, t);
                if d.changed { stored = Some(d.next.clone()); }
                for u in &d.to_send { delivered.push((u.id.clone(), u.alert.kind)); }
                if let Some(next) = stored.as_ref().and_then(|s| without_sent(s, &d.to_send.iter().map(|u| u.id.clone()).collect::<Vec<_>>())) {
                    stored = Some(next);
                }
            }
            prop_assert!(stored.as_ref().is_none_or(|s| s.unsent.is_empty()), "nothing owed after the flush");
            // Each decision delivered exactly once (no crash after accept
            // is simulated), and decisions alternate down / recovered.
            let mut ids: Vec<&String> = delivered.iter().map(|d| &d.0).collect();
            ids.sort();
            let before = ids.len();
            ids.dedup();
            prop_assert_eq!(before, ids.len(), "an alert delivered twice: {:?}", delivered);
            let mut by_version: Vec<(u64, AlertKind)> = delivered
                .iter()
                .map(|(id, k)| (id.rsplit(':').next().unwrap().parse::<u64>().unwrap(), *k))
                .collect();
            by_version.sort_by_key(|x| x.0);
            let mut last = AlertKind::Recovered;
            for (_, k) in by_version {
                prop_assert_ne!(k, last, "two {:?} alerts in a row", k);
                last = k;
            }
        }
    }
}
