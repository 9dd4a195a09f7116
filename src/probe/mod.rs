//! One monitor in, one [`ProbeResult`] out — never an `Err`, never a panic.
//!
//! This file is the engine every kind of check runs on: the dispatch by
//! kind ([`check`]), the run state, phases under one deadline, TLS with
//! its certificate facts, the pieces the mail checks share (failure
//! classification below the protocol, the cleartext-password guard, QUIT)
//! and `finish`, which turns a run into its result. The dialogues are in
//! [`pop3`] and [`smtp`]; resolving and connecting, and the `tcp` and
//! `dns` checks, in `tcp`.
//!
//! Each phase runs under its own timeout inside one deadline for the whole
//! probe; a failure is recorded as data (kind, phase, the server's words)
//! and the probe stops there.

pub mod pop3;
pub mod roundtrip;
pub mod smtp;
mod tcp;
mod types;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::clock::now_rfc3339;
use crate::net::{self, TlsClient, TlsFacts};
use crate::pop3::MaildropStat;
use crate::sasl::secret_forms;
use crate::wire::{Capabilities, Masker, Stream, Transcript};
pub use types::*;

/// Why a probe stopped early. Internal: it becomes fields of the result.
#[derive(Debug)]
struct Failure {
    kind: FailureKind,
    phase: Phase,
    message: String,
    reply: Option<String>,
}

impl Failure {
    fn new(kind: FailureKind, phase: Phase, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            phase,
            message: message.into(),
            reply: None,
        }
    }

    /// An I/O error, named by the phase it broke: the peer going away is
    /// told apart from the network failing.
    fn io(io: std::io::Error, phase: Phase) -> Failure {
        use std::io::ErrorKind as K;
        let kind = match io.kind() {
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                FailureKind::ConnectionClosed
            }
            _ => FailureKind::ConnectionFailed,
        };
        Failure::new(kind, phase, format!("{phase}: {io}"))
    }

    /// The server closed the connection where an answer was due.
    fn closed(phase: Phase) -> Failure {
        Failure::new(
            FailureKind::ConnectionClosed,
            phase,
            format!("the server closed the connection during {phase}"),
        )
    }

    /// A line or reply over the protocol's limits; `e` says which.
    fn too_large(e: impl std::fmt::Display, phase: Phase) -> Failure {
        Failure::new(
            FailureKind::ResponseTooLarge,
            phase,
            format!("{phase}: {e}"),
        )
    }

    /// Words that break the protocol.
    fn protocol(p: impl std::fmt::Display, phase: Phase) -> Failure {
        Failure::new(FailureKind::ProtocolError, phase, format!("{phase}: {p}"))
    }
}

/// A protocol client's error, classified by the phase it happened in. The
/// protocols classify their own refusals; the ways a connection breaks
/// below them are the `Failure` constructors above.
trait Classify {
    fn classify(self, phase: Phase) -> Failure;
}

/// How the warning starts when STARTTLS was offered and then refused under
/// `starttls-if-available`: exactly what a man in the middle who strips it
/// produces, so the check is degraded, not up.
const DOWNGRADE: &str = "possible STARTTLS downgrade";

/// The TLS client and the name to verify, when the monitor uses TLS.
type TlsSetup = (Arc<TlsClient>, rustls_pki_types::ServerName<'static>);

/// The state of one probe as it goes.
struct Run<'a> {
    target: &'a Target,
    /// The password and its encodings, masked in every line read and in
    /// every text kept: shared by the connection, the transcript and `scrub`.
    masker: Masker,
    started: Instant,
    deadline: Instant,
    timings: Vec<PhaseTiming>,
    transcript: Transcript,
    address: Option<String>,
    /// Every address the name resolved to.
    addresses: Vec<String>,
    tls: Option<TlsFacts>,
    tls_fallback: bool,
    apop_offered: bool,
    auth_used: Option<AuthMethod>,
    capabilities: Option<Capabilities>,
    mailbox: Option<MaildropStat>,
    warnings: Vec<String>,
    /// What a successful check did, for the message; each check sets it.
    summary: Option<String>,
    /// The OAuth2 facts for the result, and the token the login uses.
    oauth2: Option<OAuth2Facts>,
    token: Option<crate::oauth2::Obtained>,
}

/// Check one target of any kind: the entry point (the CLI, `run`,
/// `serve`). `pop3::probe` and `smtp::probe` are the per-protocol checks
/// it dispatches to; tests that exercise one protocol call those.
pub async fn check(target: &Target) -> ProbeResult {
    match target.kind {
        Kind::Pop3 => pop3::probe(target).await,
        Kind::Smtp => smtp::probe(target).await,
        Kind::Tcp | Kind::Dns => tcp::probe(target).await,
        // A round trip is two endpoints and state, not one target: it runs
        // through `roundtrip::probe`. Reaching here is a caller's mistake.
        Kind::Roundtrip => {
            let run = start(target);
            let started_at = now_rfc3339();
            let f = Failure::new(
                FailureKind::ConfigError,
                Phase::Submit,
                "a roundtrip monitor runs through probe::roundtrip, not probe::check",
            );
            run.finish(Err(f), started_at)
        }
    }
}

/// A run of `target` with its clock started; every engine begins here.
fn start(target: &Target) -> Run<'_> {
    let secrets = target
        .password
        .as_ref()
        .map(|p| secret_forms(p.expose_secret(), target.username.as_deref()))
        .unwrap_or_default();
    let started = Instant::now();
    Run::new(target, started, Masker::new(secrets))
}

impl<'a> Run<'a> {
    fn new(target: &'a Target, started: Instant, masker: Masker) -> Run<'a> {
        Run {
            target,
            started,
            deadline: started + target.timeout,
            timings: Vec::new(),
            transcript: if target.transcript {
                Transcript::recording()
            } else {
                Transcript::off()
            }
            .with_masker(masker.clone()),
            address: None,
            addresses: Vec::new(),
            tls: None,
            tls_fallback: false,
            apop_offered: false,
            auth_used: None,
            capabilities: None,
            mailbox: None,
            warnings: Vec::new(),
            summary: None,
            masker,
            oauth2: None,
            token: None,
        }
    }

    /// The `token` phase: an OAuth2 access token before anything touches
    /// the mail server, so a broken token service is never blamed on it.
    /// Nothing to do without an OAuth2 credential.
    async fn token_phase(&mut self) -> Result<(), Failure> {
        let t = self.target;
        let Some(cred) = t.oauth2.clone() else {
            return Ok(());
        };
        let mut facts = self.oauth2.take().unwrap_or_else(|| OAuth2Facts {
            grant: cred.grant.kind().as_str().to_string(),
            token_endpoint: url::Url::parse(&cred.token_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string)),
            insecure_http: crate::oauth2::uses_insecure_http(&cred),
            ..OAuth2Facts::default()
        });
        if facts.insecure_http && !self.warnings.iter().any(|w| w.contains("http://")) {
            self.warnings.push(
                "the OAuth2 token was fetched over plain http:// from a host that is not loopback (allow_insecure_http)".into(),
            );
        }
        let cache = self.token_cache();
        let user = t.username.clone().unwrap_or_default();
        let budget = self.remaining();
        let got = self
            .phase(Phase::Token, async {
                Ok(cache.get(&cred, &user, budget).await)
            })
            .await;
        let got = match got {
            Ok(g) => g,
            Err(f) => {
                facts.category = Some("probe".into());
                self.oauth2 = Some(facts);
                return Err(Failure {
                    kind: FailureKind::Oauth2TokenFailed,
                    ..f
                });
            }
        };
        match got {
            Ok(obtained) => {
                facts.token_remaining_s = obtained.remaining.map(|d| d.as_secs());
                facts.cached = obtained.cached;
                let host = t.tls_server_name.as_deref().unwrap_or(&t.host);
                let mut forms = crate::sasl::oauth::secret_forms(
                    obtained.token.token.expose_secret(),
                    &user,
                    host,
                    t.port,
                );
                forms.extend(cred.secrets());
                // The one masker the connection, the transcript and `scrub`
                // share: from here on the token and its SASL forms are
                // masked in every line read and every text kept.
                for form in &forms {
                    self.masker.add(form);
                }
                self.token = Some(obtained);
                self.oauth2 = Some(facts);
                Ok(())
            }
            Err(e) => {
                facts.error = e.oauth_error().map(str::to_string);
                if let crate::oauth2::TokenFailure::OAuth { description, .. } = &e.failure {
                    facts.error_description = description.clone();
                }
                facts.category = Some(
                    if e.is_credentials_problem() {
                        "credentials"
                    } else {
                        "probe"
                    }
                    .to_string(),
                );
                self.oauth2 = Some(facts);
                Err(Failure::new(
                    FailureKind::Oauth2TokenFailed,
                    Phase::Token,
                    format!("no OAuth2 access token: {e}"),
                ))
            }
        }
    }

    /// Run `fut` as `phase`: time it, bound it by the phase limit and what
    /// is left of the deadline, and classify a timeout.
    async fn phase<T, F>(&mut self, phase: Phase, fut: F) -> Result<T, Failure>
    where
        F: Future<Output = Result<T, Failure>>,
    {
        let start = Instant::now();
        let left = self.deadline.saturating_duration_since(start);
        let limit = match self.target.phase_timeout {
            Some(p) => p.min(left),
            None => left,
        };
        let result = tokio::time::timeout(limit, fut).await;
        self.timings.push(PhaseTiming {
            phase,
            ms: micros_to_ms(start.elapsed()),
        });
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(mut f)) => {
                f.phase = phase;
                Err(f)
            }
            Err(_) => Err(Failure::new(
                FailureKind::Timeout,
                phase,
                format!(
                    "no answer in {phase} within {}",
                    humantime::format_duration(round_ms(limit))
                ),
            )),
        }
    }

    /// Resolve, connect and, for implicit TLS, handshake. Also hands back
    /// the TLS client and name for a later STARTTLS.
    async fn open(&mut self) -> Result<(Stream, Option<TlsSetup>), Failure> {
        let t = self.target;
        // TLS settings are checked only for monitors that use TLS: a host
        // name that is no valid TLS name is fine for a plaintext check.
        let tls = if t.tls == TlsMode::None {
            None
        } else {
            let name = match &t.tls_server_name {
                Some(n) => net::server_name(n),
                None => net::server_name(&t.host),
            }
            .map_err(|e| Failure::new(FailureKind::ConfigError, Phase::Tls, e))?;
            Some((self.tls_client()?, name))
        };

        let Some(tcp) = self.reach().await? else {
            return Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Connect,
                "this check must connect",
            ));
        };

        let stream = match (&tls, t.tls) {
            (Some((client, name)), TlsMode::Implicit) => {
                self.handshake(client, tcp, name.clone()).await?
            }
            _ => Stream::Plain(tcp),
        };
        Ok((stream, tls))
    }

    fn remaining(&self) -> Duration {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.target.phase_timeout {
            Some(p) => p.min(left),
            None => left,
        }
    }

    fn tls_client(&self) -> Result<Arc<TlsClient>, Failure> {
        match &self.target.ca_pem {
            Some(pem) => TlsClient::from_pem(pem)
                .map_err(|e| Failure::new(FailureKind::ConfigError, Phase::Tls, e.to_string())),
            None => Ok(TlsClient::webpki()),
        }
    }

    fn fall_back(&mut self, why: &str) {
        self.tls_fallback = true;
        self.warnings.push(format!(
            "{why}: continuing WITHOUT TLS (tls mode starttls-if-available)"
        ));
    }

    async fn handshake(
        &mut self,
        tls_client: &TlsClient,
        tcp: tokio::net::TcpStream,
        name: rustls_pki_types::ServerName<'static>,
    ) -> Result<Stream, Failure> {
        let verify = !self.target.insecure_skip_verify;
        self.transcript.note("TLS handshake");
        let outcome = self
            .phase(Phase::Tls, async {
                Ok(tls_client.handshake(tcp, name, verify).await)
            })
            .await?;
        match outcome {
            Ok((tls, facts)) => {
                if !verify {
                    self.warnings.push(
                        "certificate verification is DISABLED (insecure_skip_verify): this probe cannot detect an impostor server".into(),
                    );
                }
                self.note_certificate(&facts);
                self.tls = Some(facts);
                Ok(Stream::Tls(Box::new(tls)))
            }
            Err(e) => {
                self.tls = e.facts.clone();
                let kind = FailureKind::from(e.failure);
                let message = self.describe_tls_failure(&e);
                Err(Failure::new(kind, Phase::Tls, message))
            }
        }
    }

    /// Say what is wrong with the certificate ([`net::TlsError::describe`]).
    fn describe_tls_failure(&self, e: &net::TlsError) -> String {
        let expected = self
            .target
            .tls_server_name
            .as_deref()
            .unwrap_or(&self.target.host);
        e.describe(expected)
    }

    fn note_certificate(&mut self, facts: &TlsFacts) {
        let (Some(days), Some(cert)) = (
            self.target.certificate_warning_days,
            facts.certificate.as_ref(),
        ) else {
            return;
        };
        if cert.days_remaining < i64::from(days) {
            self.warnings.push(format!(
                "certificate expires in {} days ({})",
                cert.days_remaining, cert.not_after
            ));
        }
    }

    /// QUIT, without waiting for the answer (it cannot change the
    /// outcome). Failing even to send it is only a warning: the check
    /// already proved what it set out to.
    async fn quit<F, E>(&mut self, send_quit: F)
    where
        F: Future<Output = Result<(), E>>,
        E: Classify,
    {
        let r = self
            .phase(Phase::Quit, async {
                send_quit.await.map_err(|e| e.classify(Phase::Quit))
            })
            .await;
        if let Err(f) = r {
            self.warnings.push(format!("QUIT: {}", f.message));
        }
    }

    /// Refuse to send a password over a connection without TLS unless the
    /// monitor allows it. `sent` names what would carry the password,
    /// `instead` what would protect it.
    fn refuse_cleartext(&self, encrypted: bool, sent: &str, instead: &str) -> Result<(), Failure> {
        // A password no command can carry is refused before anything is
        // sent, and before `warn_cleartext` could claim it was sent.
        if let Some(p) = &self.target.password {
            if p.expose_secret().chars().any(|c| c.is_control()) {
                return Err(Failure::new(
                    FailureKind::ConfigError,
                    Phase::Auth,
                    "the password contains a control character (CR, LF, TAB or similar) that no login command can carry; nothing was sent",
                ));
            }
        }
        if encrypted || self.target.allow_plaintext_password {
            return Ok(());
        }
        Err(Failure::new(
            FailureKind::PlaintextRefused,
            Phase::Auth,
            format!(
                "refusing to send the password in cleartext ({sent} over a connection without TLS); use {instead}, or set allow_plaintext_password"
            ),
        ))
    }

    /// The password is about to go without TLS, as the monitor allows:
    /// the result says so.
    fn warn_cleartext(&mut self, encrypted: bool) {
        if !encrypted {
            self.warnings
                .push("the password was sent in cleartext (allow_plaintext_password)".into());
        }
    }

    fn finish(self, outcome: Result<(), Failure>, started_at: String) -> ProbeResult {
        let t = self.target;
        let elapsed = self.started.elapsed();
        let response_time_ms = micros_to_ms(elapsed);
        let mut warnings = self.warnings;
        let (status, failure, failed_phase, message, server_reply) = match outcome {
            Err(f) => (
                Status::Down,
                Some(f.kind),
                Some(f.phase),
                f.message,
                f.reply,
            ),
            Ok(()) => {
                let what = self.summary.clone().unwrap_or_default();
                if elapsed > t.critical {
                    (
                        Status::Down,
                        Some(FailureKind::ResponseTimeCritical),
                        None,
                        format!(
                            "{what}, but took {response_time_ms:.0} ms (critical threshold {} ms)",
                            t.critical.as_millis()
                        ),
                        None,
                    )
                } else if elapsed > t.warning {
                    (
                        Status::Degraded,
                        None,
                        None,
                        format!(
                            "{what}; slow: {response_time_ms:.0} ms (warning threshold {} ms)",
                            t.warning.as_millis()
                        ),
                        None,
                    )
                } else if let Some(w) = warnings.iter().find(|w| w.starts_with(DOWNGRADE)) {
                    (Status::Degraded, None, None, format!("{what}; {w}"), None)
                } else if warnings
                    .iter()
                    .any(|w| w.starts_with("certificate expires"))
                {
                    (Status::Degraded, None, None, what, None)
                } else {
                    (Status::Up, None, None, what, None)
                }
            }
        };
        let mut result = ProbeResult {
            kind: t.kind,
            monitor: t.name.clone(),
            host: t.host.clone(),
            port: t.port,
            tls_mode: t.tls,
            auth_method: t.auth,
            status,
            failure,
            failed_phase,
            message,
            server_reply,
            address: self.address,
            response_time_ms,
            warning_ms: t.warning.as_millis() as u64,
            critical_ms: t.critical.as_millis() as u64,
            phases: self.timings,
            tls: self.tls,
            tls_fallback: self.tls_fallback,
            apop_offered: self.apop_offered,
            auth_used: self.auth_used,
            capabilities: self.capabilities,
            mailbox: self.mailbox,
            warnings: std::mem::take(&mut warnings),
            started_at,
            attempts: 1,
            transcript: self.transcript.lines(),
            blocked_by: None,
            blocking: Vec::new(),
            roundtrip: None,
            oauth2: self.oauth2,
        };
        scrub(&mut result, &self.masker);
        result
    }
}

fn micros_to_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

impl Run<'_> {
    /// The token cache of this probe: the target's own (tests), else the
    /// process's, which a warm Lambda keeps between runs.
    fn token_cache(&self) -> Arc<crate::oauth2::TokenCache> {
        self.target
            .token_cache
            .clone()
            .unwrap_or_else(crate::oauth2::TokenCache::global)
    }

    /// Drop a cached token the mail server refused (revoked, or expired
    /// early), so no later login is served it.
    async fn drop_refused_token(&self, obtained: &crate::oauth2::Obtained) {
        if let Some(cred) = self.target.oauth2.as_ref() {
            let user = self.target.username.clone().unwrap_or_default();
            self.token_cache()
                .reject(cred, &user, &obtained.token.token)
                .await;
        }
    }

    /// Fetch the one fresh token a login tries after a refused cached one;
    /// the result says it was refetched.
    async fn refetch_token(&mut self) -> Result<(), Failure> {
        if let Some(f) = self.oauth2.as_mut() {
            f.refetched = true;
        }
        self.token_phase().await
    }

    /// The token phase's token and the SASL response made from it, for the
    /// POP3 and the SMTP OAuth2 logins alike (`host`: OAUTHBEARER's `host=`).
    fn oauth_response(
        &self,
        mechanism: crate::sasl::oauth::OauthMechanism,
        user: &str,
        host: &str,
    ) -> Result<(crate::oauth2::Obtained, crate::sasl::oauth::ClientResponse), Failure> {
        let Some(obtained) = self.token.clone() else {
            return Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                "no OAuth2 token",
            ));
        };
        let token = &obtained.token.token;
        let response = match mechanism {
            crate::sasl::oauth::OauthMechanism::XOauth2 => crate::sasl::oauth::xoauth2(user, token),
            crate::sasl::oauth::OauthMechanism::OauthBearer => {
                crate::sasl::oauth::oauthbearer(user, host, self.target.port, token)
            }
        }
        .map_err(|e| {
            Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                format!("OAuth2 login: {e}"),
            )
        })?;
        Ok((obtained, response))
    }
}

/// The message of an `auth_failed` OAuth2 login, POP3's and SMTP's alike:
/// the token was fresh (a refused cached one is replaced first), so the
/// mail server's side is what is wrong; the decoded status when the server
/// sent one, and the provider's usual causes.
fn oauth_refused(
    mut failure: Failure,
    status: Option<crate::sasl::oauth::ErrorStatus>,
    provider: crate::oauth2::Provider,
) -> Failure {
    let status = status
        .map(|s| format!(" (server status: {s})"))
        .unwrap_or_default();
    failure.message = format!(
        "the mail server refused a freshly issued OAuth2 token{status}: {}. {}",
        failure.reply.as_deref().unwrap_or("").trim_end_matches('.'),
        oauth_hint(provider)
    );
    failure
}

/// What usually breaks when a mail server refuses a token its own
/// authorization server just issued.
pub fn oauth_hint(provider: crate::oauth2::Provider) -> &'static str {
    match provider {
        crate::oauth2::Provider::Microsoft => "Usual causes with Microsoft 365: no Exchange service principal for the app (New-ServicePrincipal with the enterprise application's object ID, not the app registration's), no Add-MailboxPermission for it on this mailbox, POP.AccessAsApp without admin consent, or POP disabled for the mailbox",
        crate::oauth2::Provider::Google => "Usual causes with Google: the refresh token's account is not this mailbox, the scope is not https://mail.google.com/, or POP is disabled for the account",
        crate::oauth2::Provider::Generic => "Usual causes: a token for another audience or scope, or an account the token does not name",
    }
}

/// Outlook's wording when it no longer takes passwords.
pub fn basic_auth_disabled_hint(reply: &str) -> Option<&'static str> {
    reply
        .to_ascii_lowercase()
        .contains("basic authentication is disabled")
        .then_some("the server no longer accepts passwords: log in with OAuth2 (auth xoauth2 with an oauth2 credential; see docs/oauth2.md)")
}

/// A hostile or buggy server can echo what it was sent. Every line the
/// connection read was masked before it was parsed (`wire::Masker`); this
/// last pass covers what the engine composed around those texts (messages,
/// warnings) with the same masker, so a form learnt mid-dialogue (an APOP
/// digest) is hidden there too.
fn scrub(result: &mut ProbeResult, masker: &Masker) {
    masker.mask_str(&mut result.message);
    if let Some(r) = result.server_reply.as_mut() {
        masker.mask_str(r);
    }
    for w in &mut result.warnings {
        masker.mask_str(w);
    }
    // The decoded challenge of a mail server and the token endpoint's error
    // description are server text too.
    if let Some(o) = result.oauth2.as_mut() {
        for s in [
            o.server_status.as_mut(),
            o.error_description.as_mut(),
            o.error.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            masker.mask_str(s);
        }
    }
}
