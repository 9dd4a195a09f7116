//! What a probe takes and what it gives back. These names are contracts:
//! alerts, metrics, the CLI and stored state all use them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::net::TlsFacts;
use crate::pop3::MaildropStat;
use crate::wire::{Capabilities, WireLine};

/// What a monitor checks. `pop3` is the point of the tool; the others are
/// the services a POP3 check depends on, watched so that one broken host
/// gives one alert naming the cause instead of one per service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Greeting, TLS, login and STAT, as a mail client does.
    #[default]
    Pop3,
    /// Banner, EHLO, STARTTLS when asked, certificate, optional AUTH; never
    /// MAIL, RCPT or DATA.
    Smtp,
    /// TCP connect only. Stands in for ping: Lambda cannot send ICMP.
    Tcp,
    /// Name resolution only.
    Dns,
    /// Submit a signed message by SMTP, find it by POP3, remove only the
    /// probe's own messages (`probe::roundtrip`).
    Roundtrip,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pop3 => "pop3",
            Kind::Smtp => "smtp",
            Kind::Tcp => "tcp",
            Kind::Dns => "dns",
            Kind::Roundtrip => "roundtrip",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How TLS is used. The aliases are the names IPHost's monitors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// TLS from the first byte (POP3S, port 995).
    #[serde(alias = "ssl")]
    Implicit,
    /// STLS is required: fail if it is not offered or is refused.
    #[serde(alias = "tls")]
    Starttls,
    /// STLS when offered, otherwise plaintext (reported as a fallback).
    /// A man in the middle can strip STLS: prefer `starttls`.
    #[serde(alias = "tls-if-available")]
    StarttlsIfAvailable,
    /// No TLS at all.
    None,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Implicit => "implicit",
            TlsMode::Starttls => "starttls",
            TlsMode::StarttlsIfAvailable => "starttls-if-available",
            TlsMode::None => "none",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// APOP when the greeting has a timestamp, else SASL PLAIN when
    /// advertised, else USER/PASS.
    Auto,
    /// APOP: an MD5 digest, the password never crosses the wire.
    Apop,
    /// USER then PASS.
    User,
    /// SASL PLAIN with an initial response (RFC 5034): one round trip.
    SaslPlain,
    /// SASL LOGIN (SMTP only): user name and password in two base64 steps.
    SaslLogin,
    /// XOAUTH2 with an OAuth2 access token (Google, Microsoft 365).
    Xoauth2,
    /// OAUTHBEARER (RFC 7628) with an OAuth2 access token.
    Oauthbearer,
    /// Connectivity only: the greeting (and CAPA with `capabilities`), no login.
    None,
}

impl AuthMethod {
    /// The OAuth2 SASL mechanism this method is, if it is one.
    pub fn oauth_mechanism(self) -> Option<crate::sasl::oauth::OauthMechanism> {
        match self {
            AuthMethod::Xoauth2 => Some(crate::sasl::oauth::OauthMechanism::XOauth2),
            AuthMethod::Oauthbearer => Some(crate::sasl::oauth::OauthMechanism::OauthBearer),
            _ => None,
        }
    }
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Auto => "auto",
            AuthMethod::Apop => "apop",
            AuthMethod::User => "user",
            AuthMethod::SaslPlain => "sasl-plain",
            AuthMethod::SaslLogin => "sasl-login",
            AuthMethod::Xoauth2 => "xoauth2",
            AuthMethod::Oauthbearer => "oauthbearer",
            AuthMethod::None => "none",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything one probe needs. Built from the config or the CLI.
#[derive(Clone)]
pub struct Target {
    /// The monitor's name (the metric dimension); the CLI uses host:port.
    pub name: String,
    pub kind: Kind,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub auth: AuthMethod,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The whole probe must finish within this.
    pub timeout: Duration,
    /// Each phase's own limit (still inside `timeout`); `None`: no limit
    /// beyond what is left of `timeout`.
    pub phase_timeout: Option<Duration>,
    /// Slower than this is `degraded`.
    pub warning: Duration,
    /// Slower than this is `down`.
    pub critical: Duration,
    /// PEM text of the CA certificates to trust instead of the built-in roots.
    pub ca_pem: Option<String>,
    /// The name for SNI and certificate checks when it differs from `host`.
    pub tls_server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub allow_plaintext_password: bool,
    /// `degraded` when the certificate expires within this many days.
    pub certificate_warning_days: Option<u32>,
    /// Ask CAPA even when no decision needs it (for reports and drift);
    /// otherwise CAPA is sent only when `auth auto` must learn whether SASL
    /// PLAIN is offered, or to explain a failure.
    pub capabilities: bool,
    /// Record the masked dialogue in the result.
    pub transcript: bool,
    /// Log in with an OAuth2 access token from this credential (the
    /// `token` phase runs before the connection).
    pub oauth2: Option<Arc<crate::oauth2::Credential>>,
    /// Where tokens are kept; `None`: the process-wide cache.
    pub token_cache: Option<Arc<crate::oauth2::TokenCache>>,
    /// SMTP: the name sent with EHLO; `None`: an address literal of the
    /// local address.
    pub ehlo_name: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("oauth2", &self.oauth2)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_WARNING: Duration = Duration::from_secs(2);
pub const DEFAULT_CRITICAL: Duration = Duration::from_secs(8);

impl Target {
    /// A target with the documented defaults; callers fill in the rest.
    pub fn new(name: impl Into<String>, host: impl Into<String>, port: u16) -> Target {
        Target {
            name: name.into(),
            kind: Kind::Pop3,
            host: host.into(),
            port,
            tls: TlsMode::Implicit,
            auth: AuthMethod::Auto,
            username: None,
            password: None,
            timeout: DEFAULT_TIMEOUT,
            phase_timeout: None,
            warning: DEFAULT_WARNING,
            critical: DEFAULT_CRITICAL,
            ca_pem: None,
            tls_server_name: None,
            insecure_skip_verify: false,
            allow_plaintext_password: false,
            certificate_warning_days: None,
            capabilities: false,
            transcript: false,
            ehlo_name: None,
            oauth2: None,
            token_cache: None,
        }
    }
}

/// The outcome in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Up,
    /// Worked, but slower than the warning threshold (or a certificate is
    /// close to expiry).
    Degraded,
    /// Failed, or slower than the critical threshold.
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Degraded => "degraded",
            Status::Down => "down",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The steps of a probe, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Getting an OAuth2 access token (before anything else).
    Token,
    Resolve,
    Connect,
    Tls,
    Greeting,
    /// SMTP's EHLO (its capability list).
    Ehlo,
    Capa,
    Stls,
    Auth,
    Stat,
    Quit,
    /// Round trip: the SMTP leg (everything up to the server taking the
    /// message).
    Submit,
    /// Round trip: the POP3 leg (every look into the mailbox).
    Retrieve,
    /// Round trip: from submission to the message being found.
    Delivery,
}

impl Phase {
    pub const ALL: [Phase; 14] = [
        Phase::Token,
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::Greeting,
        Phase::Ehlo,
        Phase::Capa,
        Phase::Stls,
        Phase::Auth,
        Phase::Stat,
        Phase::Quit,
        Phase::Submit,
        Phase::Retrieve,
        Phase::Delivery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Token => "token",
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Greeting => "greeting",
            Phase::Ehlo => "ehlo",
            Phase::Capa => "capa",
            Phase::Stls => "stls",
            Phase::Auth => "auth",
            Phase::Stat => "stat",
            Phase::Quit => "quit",
            Phase::Submit => "submit",
            Phase::Retrieve => "retrieve",
            Phase::Delivery => "delivery",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed: a closed set with stable names. Alerts, metrics and
/// the CLI report these; renaming one breaks users' filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The host name did not resolve.
    DnsFailure,
    /// Every address refused the connection: nothing listens.
    ConnectionRefused,
    /// Unreachable network or host, or another socket error while connecting.
    ConnectionFailed,
    /// The server closed or reset the connection mid-dialogue.
    ConnectionClosed,
    /// A phase did not finish in time (the failed phase says which).
    Timeout,
    TlsHandshakeFailed,
    CertificateExpired,
    CertificateNotYetValid,
    /// Untrusted issuer, bad signature, or otherwise unusable.
    CertificateInvalid,
    CertificateNameMismatch,
    /// `starttls` required but the server does not offer STLS.
    StlsUnavailable,
    /// The server offered STLS but answered it with -ERR.
    StlsRefused,
    /// The greeting was -ERR.
    GreetingRejected,
    /// The server said something that is not POP3.
    ProtocolError,
    /// A line or reply over the size cap.
    ResponseTooLarge,
    /// Wrong credentials (`[AUTH]` or a bare -ERR at login).
    AuthFailed,
    /// `[SYS/TEMP]` at login: the server has a temporary problem.
    AuthTemporaryFailure,
    /// `[SYS/PERM]` at login: e.g. the account is disabled.
    AuthPermanentFailure,
    /// The chosen method is not available (APOP without a timestamp, PLAIN
    /// not advertised).
    AuthUnsupported,
    /// `[IN-USE]`: the maildrop is locked by another session.
    MailboxInUse,
    /// `[LOGIN-DELAY]`: logged in again too soon.
    LoginDelay,
    /// STAT failed after a successful login.
    MailboxError,
    /// The password would have crossed the network in cleartext.
    PlaintextRefused,
    /// The server refuses password logins without TLS (Dovecot's
    /// `Plaintext authentication disallowed`): a
    /// configuration matter on one side or the other, not the credentials.
    PlaintextDisallowed,
    /// Everything worked, but slower than the critical threshold.
    ResponseTimeCritical,
    /// The monitor's own settings are unusable (bad CA bundle, no password).
    ConfigError,
    /// A monitor this one depends on is down: its alert names the cause,
    /// this one's is held back.
    BlockedByDependency,
    /// Round trip: the probe message was not found within
    /// `max_delivery_ms` of being submitted.
    MessageLost,
    /// No OAuth2 access token: the token endpoint refused the client or
    /// grant (the OAuth `error` is in the result), or could not be reached.
    Oauth2TokenFailed,
}

/// The one mapping from a TLS failure to its kind (the probe's and
/// discover's).
impl From<crate::net::TlsFailure> for FailureKind {
    fn from(f: crate::net::TlsFailure) -> FailureKind {
        use crate::net::TlsFailure;
        match f {
            TlsFailure::Handshake => FailureKind::TlsHandshakeFailed,
            TlsFailure::Expired => FailureKind::CertificateExpired,
            TlsFailure::NotYetValid => FailureKind::CertificateNotYetValid,
            TlsFailure::NameMismatch => FailureKind::CertificateNameMismatch,
            TlsFailure::Invalid => FailureKind::CertificateInvalid,
        }
    }
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::DnsFailure => "dns_failure",
            FailureKind::ConnectionRefused => "connection_refused",
            FailureKind::ConnectionFailed => "connection_failed",
            FailureKind::ConnectionClosed => "connection_closed",
            FailureKind::Timeout => "timeout",
            FailureKind::TlsHandshakeFailed => "tls_handshake_failed",
            FailureKind::CertificateExpired => "certificate_expired",
            FailureKind::CertificateNotYetValid => "certificate_not_yet_valid",
            FailureKind::CertificateInvalid => "certificate_invalid",
            FailureKind::CertificateNameMismatch => "certificate_name_mismatch",
            FailureKind::StlsUnavailable => "stls_unavailable",
            FailureKind::StlsRefused => "stls_refused",
            FailureKind::GreetingRejected => "greeting_rejected",
            FailureKind::ProtocolError => "protocol_error",
            FailureKind::ResponseTooLarge => "response_too_large",
            FailureKind::AuthFailed => "auth_failed",
            FailureKind::AuthTemporaryFailure => "auth_temporary_failure",
            FailureKind::AuthPermanentFailure => "auth_permanent_failure",
            FailureKind::AuthUnsupported => "auth_unsupported",
            FailureKind::MailboxInUse => "mailbox_in_use",
            FailureKind::LoginDelay => "login_delay",
            FailureKind::MailboxError => "mailbox_error",
            FailureKind::PlaintextRefused => "plaintext_refused",
            FailureKind::PlaintextDisallowed => "plaintext_disallowed",
            FailureKind::ResponseTimeCritical => "response_time_critical",
            FailureKind::ConfigError => "config_error",
            FailureKind::BlockedByDependency => "blocked_by_dependency",
            FailureKind::MessageLost => "message_lost",
            FailureKind::Oauth2TokenFailed => "oauth2_token_failed",
        }
    }

    /// Every kind, for docs and exhaustive tests.
    pub const ALL: [FailureKind; 29] = [
        FailureKind::DnsFailure,
        FailureKind::ConnectionRefused,
        FailureKind::ConnectionFailed,
        FailureKind::ConnectionClosed,
        FailureKind::Timeout,
        FailureKind::TlsHandshakeFailed,
        FailureKind::CertificateExpired,
        FailureKind::CertificateNotYetValid,
        FailureKind::CertificateInvalid,
        FailureKind::CertificateNameMismatch,
        FailureKind::StlsUnavailable,
        FailureKind::StlsRefused,
        FailureKind::GreetingRejected,
        FailureKind::ProtocolError,
        FailureKind::ResponseTooLarge,
        FailureKind::AuthFailed,
        FailureKind::AuthTemporaryFailure,
        FailureKind::AuthPermanentFailure,
        FailureKind::AuthUnsupported,
        FailureKind::MailboxInUse,
        FailureKind::LoginDelay,
        FailureKind::MailboxError,
        FailureKind::PlaintextRefused,
        FailureKind::PlaintextDisallowed,
        FailureKind::ResponseTimeCritical,
        FailureKind::ConfigError,
        FailureKind::BlockedByDependency,
        FailureKind::MessageLost,
        FailureKind::Oauth2TokenFailed,
    ];

    /// Failures that are about the technical account rather than the mail
    /// service: page whoever owns the credentials, not the mail team.
    pub fn is_credentials_problem(self) -> bool {
        matches!(
            self,
            FailureKind::AuthFailed | FailureKind::AuthPermanentFailure
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Time spent in one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseTiming {
    pub phase: Phase,
    /// Milliseconds, measured at microsecond resolution.
    pub ms: f64,
}

/// Why a monitor is `blocked_by_dependency`: the dependency at the root of
/// the failure, and what the monitor's own probe saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockedBy {
    /// The down dependency furthest up the chain: the one that alerts.
    pub monitor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// Its message.
    pub message: String,
    /// This monitor's own failure, kept for the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own_failure: Option<FailureKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own_phase: Option<Phase>,
}

/// Everything one probe found out. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeResult {
    pub monitor: String,
    /// Always written (readers should not have to know the default);
    /// results stored before it was are POP3.
    #[serde(default)]
    pub kind: Kind,
    pub host: String,
    pub port: u16,
    pub tls_mode: TlsMode,
    pub auth_method: AuthMethod,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<Phase>,
    /// One human sentence: what happened.
    pub message: String,
    /// The server's reply that decided a failure (sanitized).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_reply: Option<String>,
    /// The address that answered (or was last tried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Total wall time in milliseconds.
    pub response_time_ms: f64,
    /// The thresholds it was judged by.
    pub warning_ms: u64,
    pub critical_ms: u64,
    pub phases: Vec<PhaseTiming>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// `starttls-if-available` went on without TLS.
    #[serde(default)]
    pub tls_fallback: bool,
    /// The greeting carried an APOP timestamp.
    #[serde(default)]
    pub apop_offered: bool,
    /// The login method actually used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_used: Option<AuthMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<MaildropStat>,
    /// Things that did not fail the probe but deserve a look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// RFC 3339 start time.
    pub started_at: String,
    /// How many attempts the runner made (1 without retries).
    #[serde(default = "one")]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<WireLine>,
    /// Set when a dependency's failure explains this one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<BlockedBy>,
    /// The monitors this one's failure blocks (it alerts for them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocking: Vec<String>,
    /// Round trip only: delivery, cleanup and the leg that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roundtrip: Option<RoundtripFacts>,
    /// The OAuth2 side of the login: the token phase's outcome, and the
    /// status a server sent when it refused the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Facts>,
}

/// What a round trip found beyond the common fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoundtripFacts {
    /// The leg that failed: `submit` (SMTP) or `retrieve` (POP3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_leg: Option<Phase>,
    /// The phase inside that leg (`connect`, `auth`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leg_phase: Option<Phase>,
    /// The sequence number of the message this run sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_seq: Option<u64>,
    /// Found minus sent, ms, for the message delivered this run (the
    /// newest, when an earlier one also arrived); polling limits its
    /// precision to `poll_interval_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_ms: Option<f64>,
    /// The same from the newest `Received:` header (second precision).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_delivery_ms: Option<f64>,
    pub poll_interval_ms: u64,
    /// How many times the mailbox was looked into.
    pub polls: u32,
    /// Messages that are not the probe's (forged tokens included): never
    /// touched.
    pub foreign_messages: u64,
    /// The probe's own messages removed (found and stale).
    pub deleted: u64,
    pub stale_deleted: u64,
    /// Sent messages still awaited after this run.
    pub outstanding: u64,
    /// Messages this run declared lost.
    pub lost: u64,
    /// The state to keep for the next run (the pipeline stores it with the
    /// monitor's alert state); not part of the reported result.
    #[serde(skip)]
    pub next_state: Option<super::roundtrip::Outstanding>,
}

/// What the output says about an OAuth2 login. Never the token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct OAuth2Facts {
    /// `client_credentials`, `refresh_token` or `ready`.
    pub grant: String,
    /// The token endpoint's host (not the whole URL: a query may carry
    /// something private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// Seconds the token had left when the login used it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_remaining_s: Option<u64>,
    /// The token came from the cache (no request this time).
    #[serde(default)]
    pub cached: bool,
    /// A cached token was refused and one fresh token was fetched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refetched: bool,
    /// Plain `http://` to a host that is not loopback (allowed by the flag).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_http: bool,
    /// The token endpoint's OAuth `error` code (`invalid_client`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// `credentials` (the endpoint refused the client or grant) or `probe`
    /// (it could not be reached or made no sense), for a token failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The decoded error challenge of a mail server that refused the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_status: Option<String>,
}

fn one() -> u32 {
    1
}

impl ProbeResult {
    /// Is the failure about the technical account (page whoever owns the
    /// credentials) rather than the mail service? A token failure is when
    /// the endpoint refused the client or grant, not when it was down.
    pub fn is_credentials_problem(&self) -> bool {
        match self.failure {
            Some(FailureKind::Oauth2TokenFailed) => self
                .oauth2
                .as_ref()
                .is_some_and(|o| o.category.as_deref() == Some("credentials")),
            Some(k) => k.is_credentials_problem(),
            None => false,
        }
    }

    pub fn phase_ms(&self, phase: Phase) -> Option<f64> {
        self.phases.iter().find(|p| p.phase == phase).map(|p| p.ms)
    }
}
