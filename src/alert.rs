//! The alert state machine: one alert per transition, never one per run.
//!
//! up → down after `failures_before_alert` consecutive failed runs;
//! down → up (or degraded) is a recovery; up → degraded after as many slow
//! runs; a certificate close to expiry at most once a day; while down, an
//! optional reminder every `renotify`. The caller saves the next state only
//! after every alert of the step was accepted, so a lost alert is retried on
//! the next run (at least once; a crash between send and save repeats it).

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::drift::{self, CapabilitySet, Drift};
use crate::probe::{FailureKind, ProbeResult, Status};

/// Alerting settings of one monitor (the config fills them in; the state
/// machine below is what reads them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub failures_before_alert: u32,
    /// How often the monitor is probed, when known (LOGIN-DELAY warning).
    pub schedule: Option<Duration>,
    pub certificate_warning_days: u32,
    pub renotify: Option<Duration>,
}

// An alert that was not accepted for delivery; retried next run. (A
// plain comment: a doc comment would change the result schema.)
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AlertFailure {
    pub monitor: String,
    pub kind: &'static str,
    pub error: String,
}

/// What the last alert told people, per monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorState {
    pub monitor: String,
    /// The status people were last told about (`up` for a new monitor).
    pub status: Status,
    pub consecutive_failures: u32,
    pub consecutive_degraded: u32,
    /// The cause of the current outage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// Whether the current outage was announced as a credentials problem.
    #[serde(default)]
    pub credentials_problem: bool,
    /// When `status` began, ms since the epoch.
    pub since_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_alert_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_certificate_alert_ms: Option<i64>,
    pub last_result_ms: i64,
    /// Bumped on every save; stores write only over `version - 1`.
    pub version: u64,
    /// The dependency whose outage holds this monitor's alerts back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// The capabilities the last successful probe saw (drift baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<CapabilitySet>,
    /// The LOGIN-DELAY already warned about, so the warning comes once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_delay_warned: Option<u64>,
    /// The config problem already announced (`path: message`), so a broken
    /// entry alerts once until it is fixed or changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
    /// Round trip: the next sequence number and the messages sent but not
    /// yet found (in the file or the DynamoDB item like the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roundtrip: Option<crate::probe::roundtrip::Outstanding>,
}

impl MonitorState {
    pub fn new(monitor: &str, now_ms: i64) -> MonitorState {
        MonitorState {
            monitor: monitor.to_string(),
            status: Status::Up,
            consecutive_failures: 0,
            consecutive_degraded: 0,
            failure: None,
            credentials_problem: false,
            since_ms: now_ms,
            last_alert_ms: None,
            last_certificate_alert_ms: None,
            last_result_ms: now_ms,
            version: 0,
            blocked_by: None,
            capabilities: None,
            login_delay_warned: None,
            config_error: None,
            roundtrip: None,
        }
    }
}

/// Kinds of alert, as the SNS `status` attribute names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Down,
    StillDown,
    Recovered,
    Degraded,
    CertificateExpiring,
    /// The probe itself cannot run (config unreadable, say).
    ProbeError,
    /// The server stopped offering STLS, a SASL mechanism or APOP.
    CapabilityChanged,
    /// The server's LOGIN-DELAY is longer than the schedule: logins will
    /// start failing with [LOGIN-DELAY].
    LoginDelayConflict,
    /// The monitor's config entry is unusable, so it is not being watched.
    ConfigError,
    /// Multi-vantage: some vantages, fewer than the quorum, see the monitor
    /// fail (opt-in per monitor; a warning, never a page).
    Partial,
    /// Multi-vantage: a vantage stopped reporting and left the quorum.
    VantageDown,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Down => "down",
            AlertKind::StillDown => "still_down",
            AlertKind::Recovered => "recovered",
            AlertKind::Degraded => "degraded",
            AlertKind::CertificateExpiring => "certificate_expiring",
            AlertKind::ProbeError => "probe_error",
            AlertKind::CapabilityChanged => "capability_changed",
            AlertKind::LoginDelayConflict => "login_delay_conflict",
            AlertKind::ConfigError => "config_error",
            AlertKind::Partial => "partial",
            AlertKind::VantageDown => "vantage_down",
        }
    }
}

/// Who an alert is for; the SNS `category` attribute, so subscriptions can
/// filter (the on-call SMS need not hear about the probe's own password).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The mail service.
    Service,
    /// The technical account's login is rejected: for whoever owns the
    /// account; the mail service may be fine.
    Credentials,
    /// The probe itself.
    Probe,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Service => "service",
            Category::Credentials => "credentials",
            Category::Probe => "probe",
        }
    }
}

/// One message for people, in the three sizes SNS subscribers need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub monitor: String,
    pub kind: AlertKind,
    pub category: Category,
    /// The failure kind behind it (`auth_failed`, …), if any.
    pub cause: Option<FailureKind>,
    /// At most [`SUBJECT_MAX`] ASCII characters (what SNS accepts).
    pub subject: String,
    /// At most 140 characters: monitor, status, cause.
    pub sms: String,
    /// The full story for e-mail.
    pub body: String,
    pub at_ms: i64,
}

impl Alert {
    pub fn severity(&self) -> &'static str {
        match (self.kind, self.category) {
            (AlertKind::Recovered, _) => "info",
            (_, Category::Credentials) => "warning",
            (AlertKind::Down | AlertKind::StillDown | AlertKind::ProbeError, _) => "critical",
            (
                AlertKind::Degraded
                | AlertKind::CertificateExpiring
                | AlertKind::CapabilityChanged
                | AlertKind::LoginDelayConflict
                | AlertKind::ConfigError
                | AlertKind::Partial
                | AlertKind::VantageDown,
                _,
            ) => "warning",
        }
    }
}

/// The next state and the alerts that move to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub next: MonitorState,
    pub alerts: Vec<Alert>,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Decide what one probe result means for one monitor.
pub fn evaluate(
    prev: Option<&MonitorState>,
    result: &ProbeResult,
    settings: &AlertSettings,
    now_ms: i64,
) -> Step {
    let mut s = prev
        .cloned()
        .unwrap_or_else(|| MonitorState::new(&result.monitor, now_ms));
    s.version += 1;
    s.last_result_ms = now_ms;
    // Probed, so its entry is usable again.
    s.config_error = None;
    let mut alerts = Vec::new();
    let needed = settings.failures_before_alert.max(1);
    if let Some(b) = &result.blocked_by {
        // The dependency alerts for this monitor. Its own count starts
        // afresh once the dependency is back, so a monitor that stays down
        // then alerts on its own after `failures_before_alert` runs.
        s.blocked_by = Some(b.monitor.clone());
        s.consecutive_failures = 0;
        s.consecutive_degraded = 0;
        return Step { next: s, alerts };
    }
    s.blocked_by = None;
    match result.status {
        Status::Down => {
            s.consecutive_failures += 1;
            s.consecutive_degraded = 0;
            if s.status != Status::Down && s.consecutive_failures >= needed {
                s.status = Status::Down;
                s.failure = result.failure;
                s.credentials_problem = result.is_credentials_problem();
                s.since_ms = now_ms;
                s.last_alert_ms = Some(now_ms);
                alerts.push(render(AlertKind::Down, result, &s, settings, now_ms));
            } else if s.status == Status::Down {
                s.failure = result.failure;
                let due = settings.renotify.is_some_and(|every| {
                    now_ms - s.last_alert_ms.unwrap_or(s.since_ms) >= every.as_millis() as i64
                });
                if due {
                    s.last_alert_ms = Some(now_ms);
                    alerts.push(render(AlertKind::StillDown, result, &s, settings, now_ms));
                }
            }
        }
        Status::Degraded | Status::Up => {
            s.consecutive_failures = 0;
            if result.status == Status::Degraded {
                s.consecutive_degraded += 1;
            } else {
                s.consecutive_degraded = 0;
            }
            let was = s.status;
            let recovering =
                was == Status::Down || (was == Status::Degraded && result.status == Status::Up);
            if recovering {
                // Render with the outage's start still in `since_ms`.
                alerts.push(render(AlertKind::Recovered, result, &s, settings, now_ms));
                s.status = result.status;
                s.failure = None;
                s.credentials_problem = false;
                s.since_ms = now_ms;
                s.last_alert_ms = Some(now_ms);
            } else if was == Status::Up
                && result.status == Status::Degraded
                && s.consecutive_degraded >= needed
            {
                s.status = Status::Degraded;
                s.since_ms = now_ms;
                s.last_alert_ms = Some(now_ms);
                alerts.push(render(AlertKind::Degraded, result, &s, settings, now_ms));
            }
        }
    }
    // A certificate close to expiry, on a server that still works: once a
    // day. (An expired one fails the probe and alerts as down.)
    if result.status != Status::Down {
        if let Some(days) = certificate_days(result) {
            let due = s
                .last_certificate_alert_ms
                .is_none_or(|last| now_ms - last >= DAY_MS);
            if days < i64::from(settings.certificate_warning_days) && due {
                s.last_certificate_alert_ms = Some(now_ms);
                alerts.push(render(
                    AlertKind::CertificateExpiring,
                    result,
                    &s,
                    settings,
                    now_ms,
                ));
            }
        }
    }
    if let Some(seen) = CapabilitySet::observe(result) {
        if let Some(before) = &s.capabilities {
            let drift = drift::compare(before, &seen, result.kind);
            if !drift.security.is_empty() {
                alerts.push(render_with(
                    AlertKind::CapabilityChanged,
                    result,
                    &s,
                    settings,
                    now_ms,
                    Some(&drift),
                ));
            }
        }
        // Only a monitor that logs in is refused by LOGIN-DELAY.
        let logs_in = result.auth_used.is_some();
        if let (Some(delay), Some(every), true) = (seen.login_delay, settings.schedule, logs_in) {
            if delay > every.as_secs() && s.login_delay_warned != Some(delay) {
                s.login_delay_warned = Some(delay);
                alerts.push(render(
                    AlertKind::LoginDelayConflict,
                    result,
                    &s,
                    settings,
                    now_ms,
                ));
            }
        }
        s.capabilities = Some(seen);
    }
    Step { next: s, alerts }
}

fn certificate_days(r: &ProbeResult) -> Option<i64> {
    r.tls
        .as_ref()?
        .certificate
        .as_ref()
        .map(|c| c.days_remaining)
}

/// Cut to at most `max` characters, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    // ASCII dots, not an ellipsis: SNS subjects must be ASCII, and a non-GSM
    // character shortens every SMS segment to 70 characters.
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

fn duration_words(ms: i64) -> String {
    let d = Duration::from_secs((ms.max(0) / 1000) as u64);
    if d.as_secs() == 0 {
        return "under a second".into();
    }
    humantime::format_duration(d).to_string()
}

/// What to look at first, per cause.
pub fn runbook_hint(kind: Option<FailureKind>) -> &'static str {
    use FailureKind as F;
    match kind {
        Some(F::DnsFailure) => "Check the DNS records of the host and the resolver the probe uses.",
        Some(F::ConnectionRefused) => "Nothing listens on the port: is the mail service (dovecot, exim, postfix, …) running, and is the port right?",
        Some(F::ConnectionFailed) => "The host is unreachable: check routing, security groups and firewalls between the probe and the server.",
        Some(F::ConnectionClosed) => "The server dropped the connection: look at its logs (process limits, crashes, tarpitting).",
        Some(F::Timeout) => "The server did not answer in time in the failed phase: check load, storage latency and the network path.",
        Some(F::TlsHandshakeFailed) => "No TLS session: check the server's TLS configuration (protocol versions, ciphers, certificate key).",
        Some(F::CertificateExpired) => "Renew the server certificate and reload the mail server.",
        Some(F::CertificateNotYetValid) => "The certificate starts in the future: check the server's clock and the certificate dates.",
        Some(F::CertificateInvalid) => "The certificate is not trusted: install the full chain, or give the monitor the right CA bundle.",
        Some(F::CertificateNameMismatch) => "The certificate does not name this host: fix the certificate's subjectAltName or the monitor's tls_server_name.",
        Some(F::StlsUnavailable) => "STLS is required but not offered: check the server's TLS setup, or something between that strips STLS.",
        Some(F::StlsRefused) => "The server advertises STLS but refuses it: check its certificate and TLS configuration.",
        Some(F::GreetingRejected) => "The server refuses connections: check its connection limits and logs.",
        Some(F::ProtocolError) | Some(F::ResponseTooLarge) => "Something that is not a healthy POP3 or SMTP server answered: check what listens on that port (proxy, wrong service).",
        Some(F::AuthFailed) => "The technical account's login is rejected: check its password and whether it is locked or expired. The mail service itself may be fine.",
        Some(F::AuthTemporaryFailure) => "The server's authentication backend has a temporary problem (LDAP, SQL, …): check it.",
        Some(F::AuthPermanentFailure) => "The account is refused permanently (disabled?): check the technical account.",
        Some(F::AuthUnsupported) => "The login method is not offered: check the monitor's auth setting against the server's capabilities.",
        Some(F::MailboxInUse) => "The mailbox is locked: another client is logged in to the technical account, or a stale lock remains.",
        Some(F::LoginDelay) => "The server enforces LOGIN-DELAY: probe less often than the delay it announces.",
        Some(F::MailboxError) => "Login works but the mailbox cannot be opened: check mail storage (disk, permissions, index corruption).",
        Some(F::PlaintextRefused) => "The probe refused to send the password without TLS: enable TLS on the server or use APOP.",
        Some(F::PlaintextDisallowed) => "The server refuses password logins without TLS: use tls implicit or starttls, or APOP; the password itself is not at fault.",
        Some(F::ResponseTimeCritical) => "Everything works but very slowly: check server load and storage latency.",
        Some(F::ConfigError) => "The monitor's configuration is unusable: fix the monitor list.",
        Some(F::BlockedByDependency) => "A monitor this one depends on is down: that monitor's alert names the cause.",
        Some(F::MessageLost) => "Submission accepted the probe message but it never reached the mailbox: check the submission server's queue and logs (deferred, bounced, filtered as spam), then the delivery path to the mailbox.",
        Some(F::Oauth2TokenFailed) => "No OAuth2 access token: with an OAuth error (invalid_client, unauthorized_client, invalid_grant, invalid_scope) check the app registration, its client secret (expired?) and consent; without one, check the probe's route to the token endpoint.",
        None => "",
    }
}

fn render(
    kind: AlertKind,
    r: &ProbeResult,
    s: &MonitorState,
    settings: &AlertSettings,
    now_ms: i64,
) -> Alert {
    render_with(kind, r, s, settings, now_ms, None)
}

/// The alert for `kind`; `drift` is what a `capability_changed` alert
/// reports (its subject and a section of the body).
fn render_with(
    kind: AlertKind,
    r: &ProbeResult,
    s: &MonitorState,
    settings: &AlertSettings,
    now_ms: i64,
    drift: Option<&Drift>,
) -> Alert {
    let name = &r.monitor;
    let cause = match (r.failure, r.failed_phase) {
        (Some(f), Some(p)) => format!("{f} in {p}"),
        (Some(f), None) => f.to_string(),
        (None, _) => String::new(),
    };
    let reply = r.server_reply.as_deref().unwrap_or("");
    let outage = duration_words(now_ms - s.since_ms);
    let days = certificate_days(r).unwrap_or_default();
    // A credentials problem stays one until it is resolved, recovery included.
    let category = if s.credentials_problem {
        Category::Credentials
    } else {
        Category::Service
    };
    let (subject, sms) = match kind {
        AlertKind::Down if category == Category::Credentials => (
            format!("[DOWN: CREDENTIALS] {name}: the probe's login is rejected ({cause})"),
            format!("CREDENTIALS {name}: probe login rejected ({cause}) {reply}"),
        ),
        AlertKind::Down => (
            format!("[DOWN] {name}: {cause}"),
            format!("DOWN {name}: {cause} {reply}"),
        ),
        AlertKind::StillDown => (
            format!("[STILL DOWN] {name} for {outage}: {cause}"),
            format!("STILL DOWN {name} ({outage}): {cause}"),
        ),
        AlertKind::Recovered => (
            format!("[RECOVERED] {name} is {} after {outage}", r.status),
            format!("RECOVERED {name}: {} after {outage}", r.status),
        ),
        AlertKind::Degraded => (
            format!(
                "[DEGRADED] {name}: {:.0} ms (warning {} ms)",
                r.response_time_ms, r.warning_ms
            ),
            format!("DEGRADED {name}: slow, {:.0} ms", r.response_time_ms),
        ),
        AlertKind::CertificateExpiring => (
            format!("[CERTIFICATE] {name}: expires in {days} days"),
            format!("CERT {name}: expires in {days} days"),
        ),
        AlertKind::ProbeError => (
            format!("[PROBE ERROR] {name}"),
            format!("PROBE ERROR {name}"),
        ),
        AlertKind::CapabilityChanged => match drift.filter(|d| !d.security.is_empty()) {
            Some(d) => (
                format!("[CAPABILITIES] {name}: {}", d.security.join("; ")),
                format!("CAPABILITIES {name}: {}", d.security.join("; ")),
            ),
            None => (
                format!("[CAPABILITIES] {name}: capabilities changed"),
                format!("CAPABILITIES {name}: changed"),
            ),
        },
        // Rendered by the consensus renderers below, which know the
        // vantages; a single machine's state machine never raises them.
        AlertKind::Partial | AlertKind::VantageDown => (
            format!("[{}] {name}", kind.as_str()),
            format!("{} {name}", kind.as_str()),
        ),
        // Rendered by `config_problem`, which has no probe result.
        AlertKind::ConfigError => (
            format!("[CONFIG ERROR] {name}"),
            format!("CONFIG ERROR {name}"),
        ),
        AlertKind::LoginDelayConflict => {
            let delay = r
                .capabilities
                .as_ref()
                .and_then(|c| c.login_delay)
                .unwrap_or_default();
            let every = settings.schedule.map(|d| d.as_secs()).unwrap_or_default();
            (
                format!("[LOGIN-DELAY] {name}: server asks {delay} s between logins, probed every {every} s"),
                format!("LOGIN-DELAY {name}: {delay} s > schedule {every} s"),
            )
        }
    };
    // The one alert for a failure that others depend on names them.
    let (subject, sms) =
        if r.blocking.is_empty() || !matches!(kind, AlertKind::Down | AlertKind::StillDown) {
            (subject, sms)
        } else {
            let n = r.blocking.len();
            (
                format!(
                    "{subject} (+{n} dependent monitor{})",
                    if n == 1 { "" } else { "s" }
                ),
                format!("{sms} (+{n} dependent)"),
            )
        };
    let subject = subject_line(&subject);
    let mut body = String::new();
    let _ = writeln!(body, "{subject}");
    let _ = writeln!(body);
    if let Some(d) = drift {
        let _ = writeln!(body, "Changed since the last probe:");
        for line in d.security.iter().chain(&d.other) {
            let _ = writeln!(body, "  - {line}");
        }
        let _ = writeln!(body);
    }
    let _ = writeln!(
        body,
        "Monitor:   {name} ({}:{}, tls {}, auth {})",
        r.host, r.port, r.tls_mode, r.auth_method
    );
    let _ = writeln!(body, "Status:    {} ({})", r.status, kind.as_str());
    if !cause.is_empty() {
        let _ = writeln!(body, "Cause:     {cause}");
    }
    let _ = writeln!(body, "Details:   {}", r.message);
    if !r.blocking.is_empty() {
        let _ = writeln!(
            body,
            "Affected:  {} (they depend on {name}; their own alerts are held back)",
            r.blocking.join(", ")
        );
    }
    if !reply.is_empty() {
        let _ = writeln!(body, "Server:    {reply}");
    }
    if matches!(kind, AlertKind::Down | AlertKind::StillDown) {
        let _ = writeln!(
            body,
            "Since:     {} ({} consecutive failed runs)",
            rfc3339(s.since_ms / 1000),
            s.consecutive_failures
        );
    }
    if matches!(kind, AlertKind::Recovered) {
        let _ = writeln!(
            body,
            "Outage:    {outage}, since {}",
            rfc3339(s.since_ms / 1000)
        );
    }
    if let Some(addr) = &r.address {
        let _ = writeln!(body, "Address:   {addr}");
    }
    let _ = writeln!(body, "Time:      {:.1} ms", r.response_time_ms);
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|p| format!("{} {:.1}", p.phase, p.ms))
        .collect();
    let _ = writeln!(body, "Phases ms: {}", phases.join(", "));
    if let Some(tls) = &r.tls {
        let _ = writeln!(
            body,
            "TLS:       {} {}{}",
            tls.version,
            tls.cipher,
            if tls.verified.passed() {
                ""
            } else {
                " (NOT VERIFIED)"
            }
        );
        if let Some(c) = &tls.certificate {
            let _ = writeln!(
                body,
                "Cert:      {} — expires {} ({} days), issuer {}",
                c.names.join(", "),
                c.not_after,
                c.days_remaining,
                c.issuer
            );
        }
    }
    for w in &r.warnings {
        let _ = writeln!(body, "Warning:   {w}");
    }
    let hint = match kind {
        AlertKind::CertificateExpiring => "Renew the certificate before it expires.",
        AlertKind::CapabilityChanged => "Check the server's recent configuration changes (TLS, auth_mechanisms) and whether something between the probe and the server now strips capabilities.",
        AlertKind::LoginDelayConflict => "Probe this mailbox less often than the server's LOGIN-DELAY (the schedule, or a monitor of its own), or ask for the technical account to be exempt.",
        AlertKind::Degraded => runbook_hint(Some(FailureKind::ResponseTimeCritical)),
        AlertKind::Recovered => "",
        _ => runbook_hint(r.failure),
    };
    if !hint.is_empty() {
        let _ = writeln!(body, "\nWhat to check: {hint}");
    }
    let _ = writeln!(
        body,
        "\nAlerts after {} consecutive failed runs; checked at {}.",
        settings.failures_before_alert,
        rfc3339(now_ms / 1000)
    );
    let cause_kind = match kind {
        AlertKind::Recovered => s.failure,
        _ => r.failure,
    };
    Alert {
        monitor: name.clone(),
        kind,
        category,
        cause: cause_kind,
        subject,
        sms: truncate(sms.trim(), SMS_MAX),
        body,
        at_ms: now_ms,
    }
}

/// SNS subjects are ASCII without control characters and under 100
/// characters: the one limit every alert's subject is cut to.
pub const SUBJECT_MAX: usize = 99;
/// One SMS segment in the GSM alphabet.
pub const SMS_MAX: usize = 140;

/// A subject SNS accepts: ASCII, no control characters, at most
/// [`SUBJECT_MAX`] characters.
pub fn subject_line(s: &str) -> String {
    let ascii: String = s
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    truncate(&ascii, SUBJECT_MAX)
}

/// An alert about the probe itself (nothing could be probed).
pub fn probe_error(source: &str, message: &str, now_ms: i64) -> Alert {
    let subject = subject_line(&format!("[PROBE ERROR] pop3-probe cannot run: {message}"));
    let sms = truncate(&format!("PROBE ERROR pop3-probe: {message}"), SMS_MAX);
    let body = format!(
        "The POP3 probe could not run, so no monitor was checked.\n\nSource: {source}\nError:  {message}\nAt:     {}\n\nWhat to check: the config secret (its JSON and the Lambda's permission to read it), then the Lambda's logs.\n",
        rfc3339(now_ms / 1000)
    );
    Alert {
        monitor: "pop3-probe".into(),
        kind: AlertKind::ProbeError,
        category: Category::Probe,
        cause: None,
        subject,
        sms,
        body,
        at_ms: now_ms,
    }
}

/// The probe runs again after a `probe_error`.
pub fn probe_recovered(source: &str, now_ms: i64) -> Alert {
    let subject = subject_line("[RECOVERED] pop3-probe runs again");
    let body = format!(
        "{subject}\n\nThe POP3 probe can read its configuration again and checks the monitors.\n\nSource: {source}\nAt:     {}\n",
        rfc3339(now_ms / 1000)
    );
    Alert {
        monitor: "pop3-probe".into(),
        kind: AlertKind::Recovered,
        category: Category::Probe,
        cause: None,
        subject,
        sms: "RECOVERED pop3-probe runs again".into(),
        body,
        at_ms: now_ms,
    }
}

/// A monitor whose config entry is unusable is not probed: say so once
/// (until the entry is fixed or its error changes), so it is never
/// silently unwatched. `path` is the JSON path of the offending field.
pub fn config_problem(
    prev: Option<&MonitorState>,
    monitor: &str,
    path: &str,
    message: &str,
    now_ms: i64,
) -> Step {
    let mut s = prev
        .cloned()
        .unwrap_or_else(|| MonitorState::new(monitor, now_ms));
    let error = format!("{path}: {message}");
    let mut alerts = Vec::new();
    if s.config_error.as_deref() != Some(error.as_str()) {
        s.version += 1;
        s.config_error = Some(error);
        let subject = subject_line(&format!("[CONFIG ERROR] {monitor} is not watched: {path}"));
        let sms = truncate(
            &format!("CONFIG ERROR {monitor} not watched: {path}: {message}"),
            SMS_MAX,
        );
        let body = format!(
            "{subject}\n\nMonitor:   {monitor}\nField:     {path}\nError:     {message}\nAt:        {}\n\nThis monitor is not probed until its entry in the monitor list is fixed; no other alert will come for it meanwhile.\n\nWhat to check: {}\n",
            rfc3339(now_ms / 1000),
            runbook_hint(Some(FailureKind::ConfigError))
        );
        alerts.push(Alert {
            monitor: monitor.to_string(),
            kind: AlertKind::ConfigError,
            category: Category::Probe,
            cause: Some(FailureKind::ConfigError),
            subject,
            sms,
            body,
            at_ms: now_ms,
        });
    }
    Step { next: s, alerts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{CertificateFacts, TlsFacts};
    use crate::probe::{AuthMethod, Phase, TlsMode};

    const MIN: i64 = 60_000;

    fn settings(n: u32, renotify_min: Option<u64>) -> AlertSettings {
        AlertSettings {
            failures_before_alert: n,
            certificate_warning_days: 14,
            renotify: renotify_min.map(|m| Duration::from_secs(m * 60)),
            schedule: None,
        }
    }

    fn result(status: Status, failure: Option<FailureKind>) -> ProbeResult {
        ProbeResult {
            kind: crate::probe::Kind::Pop3,
            monitor: "mail-995".into(),
            host: "mail.example.com".into(),
            port: 995,
            tls_mode: TlsMode::Implicit,
            auth_method: AuthMethod::Auto,
            status,
            failure,
            failed_phase: failure.map(|_| Phase::Auth),
            message: "something happened".into(),
            server_reply: failure.map(|_| "-ERR [AUTH] Authentication failed.".into()),
            address: Some("192.0.2.1:995".into()),
            response_time_ms: 42.0,
            warning_ms: 2000,
            critical_ms: 8000,
            phases: vec![],
            tls: None,
            tls_fallback: false,
            apop_offered: false,
            auth_used: None,
            capabilities: None,
            mailbox: None,
            warnings: vec![],
            started_at: "2026-01-01T00:00:00.000Z".into(),
            attempts: 1,
            transcript: vec![],
            blocked_by: None,
            blocking: vec![],
            roundtrip: None,
            oauth2: None,
        }
    }

    fn up() -> ProbeResult {
        result(Status::Up, None)
    }
    fn down(kind: FailureKind) -> ProbeResult {
        result(Status::Down, Some(kind))
    }

    /// Feed results one minute apart; return the alert kinds per step.
    fn play(results: &[ProbeResult], s: &AlertSettings) -> (Vec<Vec<AlertKind>>, MonitorState) {
        let mut state: Option<MonitorState> = None;
        let mut out = Vec::new();
        for (i, r) in results.iter().enumerate() {
            let step = evaluate(state.as_ref(), r, s, i as i64 * MIN);
            out.push(step.alerts.iter().map(|a| a.kind).collect());
            state = Some(step.next);
        }
        (out, state.unwrap())
    }

    #[test]
    fn down_needs_n_consecutive_failures_and_alerts_once() {
        let t = FailureKind::Timeout;
        let (alerts, state) = play(
            &[up(), down(t), down(t), down(t), down(t)],
            &settings(2, None),
        );
        assert_eq!(
            alerts,
            [vec![], vec![], vec![AlertKind::Down], vec![], vec![]]
        );
        assert_eq!(state.status, Status::Down);
        assert_eq!(state.consecutive_failures, 4);
        assert_eq!(state.since_ms, 2 * MIN);
    }

    #[test]
    fn flapping_below_the_threshold_never_alerts() {
        let t = FailureKind::ConnectionRefused;
        let seq = [down(t), up(), down(t), up(), down(t), up()];
        let (alerts, state) = play(&seq, &settings(2, None));
        assert!(alerts.iter().all(Vec::is_empty), "{alerts:?}");
        assert_eq!(state.status, Status::Up);
    }

    #[test]
    fn recovery_alerts_once_with_the_outage_length() {
        let t = FailureKind::Timeout;
        let s = settings(1, None);
        let mut state = evaluate(None, &down(t), &s, 0).next;
        state = evaluate(Some(&state), &down(t), &s, 5 * MIN).next;
        let step = evaluate(Some(&state), &up(), &s, 12 * MIN);
        assert_eq!(step.alerts.len(), 1);
        let a = &step.alerts[0];
        assert_eq!(a.kind, AlertKind::Recovered);
        assert_eq!(a.cause, Some(FailureKind::Timeout));
        assert!(a.subject.contains("after 12m"), "{}", a.subject);
        assert_eq!(step.next.status, Status::Up);
        let again = evaluate(Some(&step.next), &up(), &s, 13 * MIN);
        assert!(again.alerts.is_empty());
    }

    #[test]
    fn renotify_while_down() {
        let t = FailureKind::Timeout;
        let seq: Vec<ProbeResult> = (0..8).map(|_| down(t)).collect();
        let (alerts, _) = play(&seq, &settings(1, Some(3)));
        let kinds: Vec<_> = alerts.iter().map(|a| a.first().copied()).collect();
        assert_eq!(
            kinds,
            [
                Some(AlertKind::Down),
                None,
                None,
                Some(AlertKind::StillDown),
                None,
                None,
                Some(AlertKind::StillDown),
                None
            ]
        );
    }

    #[test]
    fn a_rejected_alert_is_repeated_next_run() {
        // The caller does not save the state when sending failed, so the
        // next run starts from the old state and alerts again.
        let t = FailureKind::Timeout;
        let s = settings(1, None);
        let old = evaluate(None, &up(), &s, 0).next;
        let first = evaluate(Some(&old), &down(t), &s, MIN);
        assert_eq!(first.alerts.len(), 1);
        // (send failed: `first.next` is dropped)
        let retry = evaluate(Some(&old), &down(t), &s, 2 * MIN);
        assert_eq!(
            retry.alerts.iter().map(|a| a.kind).collect::<Vec<_>>(),
            [AlertKind::Down]
        );
        assert_eq!(retry.next.version, old.version + 1);
    }

    #[test]
    fn degraded_and_back() {
        let slow = result(Status::Degraded, None);
        let (alerts, state) = play(
            &[up(), slow.clone(), slow.clone(), slow, up()],
            &settings(2, None),
        );
        assert_eq!(
            alerts,
            [
                vec![],
                vec![],
                vec![AlertKind::Degraded],
                vec![],
                vec![AlertKind::Recovered]
            ]
        );
        assert_eq!(state.status, Status::Up);
    }

    #[test]
    fn credentials_problems_are_their_own_category() {
        let s = settings(1, None);
        let step = evaluate(None, &down(FailureKind::AuthFailed), &s, 0);
        let a = &step.alerts[0];
        assert_eq!(
            (a.kind, a.category, a.cause),
            (
                AlertKind::Down,
                Category::Credentials,
                Some(FailureKind::AuthFailed)
            )
        );
        assert_eq!(a.severity(), "warning");
        assert!(a.subject.contains("CREDENTIALS"), "{}", a.subject);
        assert!(a.body.contains("technical account"), "{}", a.body);
        let back = evaluate(Some(&step.next), &up(), &s, MIN);
        assert_eq!(
            (back.alerts[0].kind, back.alerts[0].category),
            (AlertKind::Recovered, Category::Credentials)
        );
        // A service outage is not.
        let step = evaluate(None, &down(FailureKind::Timeout), &s, 0);
        assert_eq!(
            (step.alerts[0].category, step.alerts[0].severity()),
            (Category::Service, "critical")
        );
    }

    fn with_cert(days: i64) -> ProbeResult {
        let mut r = up();
        r.tls = Some(TlsFacts {
            version: "TLSv1.3".into(),
            cipher: "x".into(),
            verified: crate::net::Verification::Passed,
            resumed: false,
            certificate: Some(CertificateFacts {
                subject: "CN=mail".into(),
                issuer: "CN=ca".into(),
                names: vec!["mail.example.com".into()],
                not_before: "x".into(),
                not_after: "y".into(),
                days_remaining: days,
            }),
        });
        r
    }

    #[test]
    fn certificate_expiring_at_most_once_a_day() {
        let s = settings(2, None);
        let mut state = None;
        let mut sent = 0;
        // Every 10 minutes for two days.
        for i in 0..(2 * 24 * 6) {
            let step = evaluate(state.as_ref(), &with_cert(9), &s, i * 10 * MIN);
            sent += step
                .alerts
                .iter()
                .filter(|a| a.kind == AlertKind::CertificateExpiring)
                .count();
            state = Some(step.next);
        }
        assert_eq!(sent, 2);
        // Plenty of time left: never.
        let step = evaluate(None, &with_cert(60), &s, 0);
        assert!(step.alerts.is_empty());
    }

    #[test]
    fn texts_fit_their_channels() {
        let mut r = down(FailureKind::ProtocolError);
        r.monitor = "m".repeat(200);
        r.server_reply = Some("x".repeat(500));
        let step = evaluate(None, &r, &settings(1, None), 0);
        let a = &step.alerts[0];
        assert!(a.subject.chars().count() <= 100);
        assert!(a.sms.chars().count() <= 140);
        assert!(a.sms.is_ascii() && a.subject.ends_with("..."));
        assert!(a.body.contains(&"x".repeat(500)));
        assert!(a.body.contains("What to check:"));
    }

    #[test]
    fn every_failure_kind_has_a_hint() {
        for k in FailureKind::ALL {
            assert!(!runbook_hint(Some(k)).is_empty(), "{k}");
        }
    }

    fn blocked() -> ProbeResult {
        let mut r = down(FailureKind::ConnectionRefused);
        r.failure = Some(FailureKind::BlockedByDependency);
        r.blocked_by = Some(crate::probe::BlockedBy {
            monitor: "mail-tcp".into(),
            failure: Some(FailureKind::ConnectionRefused),
            message: "cannot connect".into(),
            own_failure: Some(FailureKind::ConnectionRefused),
            own_phase: Some(Phase::Connect),
        });
        r
    }

    #[test]
    fn a_blocked_monitor_never_alerts_and_starts_counting_afresh() {
        let set = settings(2, Some(1));
        let mut state = None;
        for i in 0..5 {
            let step = evaluate(state.as_ref(), &blocked(), &set, i * MIN);
            assert!(step.alerts.is_empty(), "run {i}: {:?}", step.alerts);
            assert_eq!(step.next.status, Status::Up);
            assert_eq!(step.next.blocked_by.as_deref(), Some("mail-tcp"));
            state = Some(step.next);
        }
        // The dependency is back but this monitor is still down: its own
        // alert after failures_before_alert runs, not at once.
        let step = evaluate(
            state.as_ref(),
            &down(FailureKind::AuthFailed),
            &set,
            6 * MIN,
        );
        assert!(step.alerts.is_empty());
        assert_eq!(step.next.blocked_by, None);
        let step = evaluate(
            Some(&step.next),
            &down(FailureKind::AuthFailed),
            &set,
            7 * MIN,
        );
        assert_eq!(step.alerts.len(), 1);
        assert_eq!(step.alerts[0].kind, AlertKind::Down);
    }

    #[test]
    fn an_announced_outage_stays_quiet_while_blocked_then_recovers_once() {
        let set = settings(1, Some(1));
        let step = evaluate(None, &down(FailureKind::Timeout), &set, 0);
        assert_eq!(step.alerts.len(), 1);
        // Blocked: no reminder although renotify is due.
        let step = evaluate(Some(&step.next), &blocked(), &set, 10 * MIN);
        assert!(step.alerts.is_empty());
        assert_eq!(step.next.status, Status::Down);
        let step = evaluate(Some(&step.next), &up(), &set, 11 * MIN);
        assert_eq!(step.alerts.len(), 1);
        assert_eq!(step.alerts[0].kind, AlertKind::Recovered);
    }

    #[test]
    fn the_root_alert_names_the_blocked_monitors() {
        let mut r = down(FailureKind::ConnectionRefused);
        r.blocking = vec!["mail-pop3".into(), "mail-smtp".into()];
        let step = evaluate(None, &r, &settings(1, None), 0);
        let a = &step.alerts[0];
        assert!(
            a.subject.ends_with("(+2 dependent monitors)"),
            "{}",
            a.subject
        );
        assert!(
            a.body.contains("Affected:  mail-pop3, mail-smtp"),
            "{}",
            a.body
        );
        assert!(a.sms.len() <= 140);
    }

    fn with_caps(
        stls_offered: bool,
        sasl: &[&str],
        apop: bool,
        login_delay: Option<u64>,
    ) -> ProbeResult {
        let mut r = up();
        r.tls_mode = TlsMode::None;
        r.apop_offered = apop;
        r.auth_used = Some(AuthMethod::Apop);
        r.capabilities = Some(crate::wire::Capabilities {
            stls: stls_offered,
            user: true,
            sasl: sasl
                .iter()
                .map(|s| crate::wire::Masker::default().text(s.as_bytes()))
                .collect(),
            login_delay,
            ..Default::default()
        });
        r
    }

    #[test]
    fn losing_stls_alerts_once_and_becomes_the_new_baseline() {
        let set = settings(2, None);
        let step = evaluate(None, &with_caps(true, &["PLAIN"], true, None), &set, 0);
        assert!(step.alerts.is_empty(), "the first sighting is the baseline");
        let step = evaluate(
            Some(&step.next),
            &with_caps(true, &["PLAIN"], true, None),
            &set,
            MIN,
        );
        assert!(step.alerts.is_empty());
        let step = evaluate(
            Some(&step.next),
            &with_caps(false, &["PLAIN"], true, None),
            &set,
            2 * MIN,
        );
        assert_eq!(step.alerts.len(), 1);
        let a = &step.alerts[0];
        assert_eq!(a.kind, AlertKind::CapabilityChanged);
        assert_eq!(a.severity(), "warning");
        assert!(
            a.subject.contains("STLS is no longer offered"),
            "{}",
            a.subject
        );
        assert!(
            a.body.contains("  - STLS is no longer offered"),
            "{}",
            a.body
        );
        let step = evaluate(
            Some(&step.next),
            &with_caps(false, &["PLAIN"], true, None),
            &set,
            3 * MIN,
        );
        assert!(step.alerts.is_empty(), "once per change");
        // A failed probe says nothing about capabilities.
        let failed = down(FailureKind::Timeout);
        let next = evaluate(Some(&step.next), &failed, &set, 4 * MIN).next;
        assert_eq!(next.capabilities, step.next.capabilities);
    }

    #[test]
    fn additions_are_recorded_without_an_alert() {
        let set = settings(2, None);
        let step = evaluate(None, &with_caps(false, &["PLAIN"], false, None), &set, 0);
        let step = evaluate(
            Some(&step.next),
            &with_caps(true, &["PLAIN", "SCRAM-SHA-256"], true, None),
            &set,
            MIN,
        );
        assert!(step.alerts.is_empty());
        assert!(step
            .next
            .capabilities
            .unwrap()
            .sasl
            .contains("SCRAM-SHA-256"));
    }

    #[test]
    fn login_delay_longer_than_the_schedule_warns_once_per_value() {
        let mut set = settings(2, None);
        set.schedule = Some(Duration::from_secs(300));
        let step = evaluate(None, &with_caps(false, &[], false, Some(60)), &set, 0);
        assert!(step.alerts.is_empty(), "60 s fits a 300 s schedule");
        let step = evaluate(
            Some(&step.next),
            &with_caps(false, &[], false, Some(900)),
            &set,
            MIN,
        );
        assert_eq!(step.alerts.len(), 1);
        assert_eq!(step.alerts[0].kind, AlertKind::LoginDelayConflict);
        assert!(
            step.alerts[0].subject.contains("900 s"),
            "{}",
            step.alerts[0].subject
        );
        let step = evaluate(
            Some(&step.next),
            &with_caps(false, &[], false, Some(900)),
            &set,
            2 * MIN,
        );
        assert!(step.alerts.is_empty());
        // A connectivity-only monitor is never refused by LOGIN-DELAY.
        let mut no_login = with_caps(false, &[], false, Some(900));
        no_login.auth_used = None;
        assert!(evaluate(None, &no_login, &set, 0).alerts.is_empty());
    }

    #[test]
    fn every_subject_fits_sns_whoever_renders_it() {
        let long = format!("{}\u{e9}\u{1b}]0;x", "m".repeat(150));
        let mut r = down(FailureKind::Timeout);
        r.monitor = long.clone();
        let subjects = [
            evaluate(None, &r, &settings(1, None), 0).alerts[0]
                .subject
                .clone(),
            probe_error("config", &long, 0).subject,
            probe_recovered("config", 0).subject,
            config_problem(None, &long, "monitors[0].tls", "bad", 0).alerts[0]
                .subject
                .clone(),
        ];
        for s in subjects {
            assert!(s.chars().count() <= SUBJECT_MAX, "{s}");
            assert!(
                s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()),
                "{s:?}"
            );
            // The SNS adapter changes nothing more.
            assert_eq!(subject_line(&s), s);
        }
    }

    #[test]
    fn a_config_problem_alerts_once_per_error_and_clears_when_probed() {
        let first = config_problem(None, "m", "monitors[3].port", "out of range", 0);
        assert_eq!(first.alerts.len(), 1);
        assert_eq!(first.alerts[0].kind, AlertKind::ConfigError);
        assert!(first.alerts[0].body.contains("monitors[3].port"));
        let again = config_problem(
            Some(&first.next),
            "m",
            "monitors[3].port",
            "out of range",
            1,
        );
        assert!(again.alerts.is_empty());
        assert_eq!(again.next, first.next, "nothing to save");
        let other = config_problem(Some(&again.next), "m", "monitors[3].host", "empty", 2);
        assert_eq!(other.alerts.len(), 1);
        let mut fixed = up();
        fixed.monitor = "m".into();
        let probed = evaluate(Some(&other.next), &fixed, &settings(1, None), 3);
        assert_eq!(probed.next.config_error, None);
    }
}
