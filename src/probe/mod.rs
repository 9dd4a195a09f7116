//! One monitor in, one [`ProbeResult`] out — never an `Err`, never a panic.
//!
//! resolve → connect → [tls] → greeting → [capa] → [stls → tls → capa] →
//! auth → stat → quit. Each phase runs under its own timeout inside one
//! deadline for the whole probe; a failure is recorded as data (kind, phase,
//! the server's words) and the probe stops there.

pub mod smtp;
mod stream;
mod types;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::net::{self, ConnectFailure, TlsClient, TlsFacts, TlsFailure};
use crate::pop3::{
    self, Capabilities, Client, LoginFailure, ResponseCode, Session, StatusLine, StlsOutcome,
    Transcript,
};
pub use stream::Stream;
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

    /// Classify a protocol error by the phase it happened in.
    fn from_pop3(e: pop3::Error, phase: Phase) -> Failure {
        use std::io::ErrorKind as K;
        match e {
            pop3::Error::Io(io) => {
                let kind = match io.kind() {
                    K::ConnectionReset
                    | K::ConnectionAborted
                    | K::BrokenPipe
                    | K::UnexpectedEof => FailureKind::ConnectionClosed,
                    _ => FailureKind::ConnectionFailed,
                };
                Failure::new(kind, phase, format!("{phase}: {io}"))
            }
            pop3::Error::Closed => Failure::new(
                FailureKind::ConnectionClosed,
                phase,
                format!("the server closed the connection during {phase}"),
            ),
            pop3::Error::TooLarge => Failure::new(
                FailureKind::ResponseTooLarge,
                phase,
                format!("{phase}: {e}"),
            ),
            pop3::Error::Protocol(p) => {
                Failure::new(FailureKind::ProtocolError, phase, format!("{phase}: {p}"))
            }
            pop3::Error::Argument(a) => {
                Failure::new(FailureKind::ConfigError, phase, format!("credentials: {a}"))
            }
            pop3::Error::Negative(line) => Failure::negative(line, phase),
        }
    }

    /// A `-ERR` reply: the response code decides, then the phase.
    fn negative(line: StatusLine, phase: Phase) -> Failure {
        let (kind, what) = match (phase, &line.code) {
            (_, Some(ResponseCode::InUse)) => (
                FailureKind::MailboxInUse,
                "the mailbox is locked by another session",
            ),
            (_, Some(ResponseCode::LoginDelay)) => (
                FailureKind::LoginDelay,
                "logged in again sooner than the server's LOGIN-DELAY allows",
            ),
            (Phase::Greeting, _) => (
                FailureKind::GreetingRejected,
                "the server rejected the connection",
            ),
            (Phase::Stls, _) => (FailureKind::StlsRefused, "the server refused STLS"),
            (Phase::Auth, Some(ResponseCode::SysTemp)) => (
                FailureKind::AuthTemporaryFailure,
                "login failed for a temporary server reason",
            ),
            (Phase::Auth, Some(ResponseCode::SysPerm)) => (
                FailureKind::AuthPermanentFailure,
                "login failed for a permanent server reason (account disabled?)",
            ),
            (Phase::Auth, _) => (
                FailureKind::AuthFailed,
                "login failed: check the technical account's credentials",
            ),
            (Phase::Stat, _) => (FailureKind::MailboxError, "STAT failed after login"),
            _ => (FailureKind::ProtocolError, "unexpected -ERR"),
        };
        let reply = line.to_string();
        Failure {
            kind,
            phase,
            message: format!("{what}: {reply}"),
            reply: Some(reply),
        }
    }
}

/// The TLS client and the name to verify, when the monitor uses TLS.
type TlsSetup = (Arc<TlsClient>, rustls_pki_types::ServerName<'static>);

/// The state of one probe as it goes.
struct Run<'a> {
    target: &'a Target,
    /// The password and its encodings, masked wherever a server's words
    /// are kept: computed once, used by the transcript and by `scrub`.
    secrets: Vec<String>,
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
    mailbox: Option<pop3::MaildropStat>,
    warnings: Vec<String>,
    /// What a successful dialogue other than POP3's did, for the message.
    summary: Option<String>,
    /// The OAuth2 facts for the result, and the token the login uses.
    oauth2: Option<OAuth2Facts>,
    token: Option<crate::oauth2::Obtained>,
}

/// Check one target of any kind.
pub async fn check(target: &Target) -> ProbeResult {
    match target.kind {
        Kind::Pop3 => probe(target).await,
        Kind::Smtp => smtp::probe(target).await,
        Kind::Tcp | Kind::Dns => probe_basic(target).await,
    }
}

/// A `tcp` (resolve, connect) or `dns` (resolve) check.
async fn probe_basic(target: &Target) -> ProbeResult {
    let started_at = now_rfc3339();
    let mut run = start(target);
    let outcome = run.reach().await.map(drop);
    run.finish(outcome, started_at)
}

/// Probe one POP3 target.
pub async fn probe(target: &Target) -> ProbeResult {
    let started_at = now_rfc3339();
    let mut run = start(target);
    let outcome = run.dialogue().await;
    run.finish(outcome, started_at)
}

/// A run of `target` with its clock started; every engine begins here.
fn start(target: &Target) -> Run<'_> {
    let secrets = target
        .password
        .as_ref()
        .map(|p| secret_forms(p.expose_secret(), target.username.as_deref()))
        .unwrap_or_default();
    let started = Instant::now();
    Run::new(target, started, secrets)
}

fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // Milliseconds matter when results are compared across a run.
    let base = net::rfc3339(now.as_secs() as i64);
    format!("{}.{:03}Z", base.trim_end_matches('Z'), now.subsec_millis())
}

impl<'a> Run<'a> {
    fn new(target: &'a Target, started: Instant, secrets: Vec<String>) -> Run<'a> {
        Run {
            target,
            started,
            deadline: started + target.timeout,
            timings: Vec::new(),
            transcript: if target.transcript {
                Transcript::masking(secrets.clone())
            } else {
                Transcript::off()
            },
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
            secrets,
            oauth2: None,
            token: None,
        }
    }

    /// Resolve, and connect unless this is a `dns` check.
    async fn reach(&mut self) -> Result<Option<tokio::net::TcpStream>, Failure> {
        let t = self.target;
        let host = t.host.clone();
        let addrs = self
            .phase(Phase::Resolve, async {
                net::resolve(&host, t.port).await.map_err(|e| {
                    Failure::new(
                        FailureKind::DnsFailure,
                        Phase::Resolve,
                        format!("cannot resolve {host}: {e}"),
                    )
                })
            })
            .await?;
        self.addresses = addrs.iter().map(|a| a.ip().to_string()).collect();
        if t.kind == Kind::Dns {
            return Ok(None);
        }
        let budget = self.remaining();
        let (tcp, addr) = self
            .phase(Phase::Connect, async {
                net::connect_any(&addrs, budget).await.map_err(|e| {
                    let kind = match e.failure {
                        ConnectFailure::Refused => FailureKind::ConnectionRefused,
                        ConnectFailure::Timeout => FailureKind::Timeout,
                        ConnectFailure::Other => FailureKind::ConnectionFailed,
                    };
                    Failure::new(
                        kind,
                        Phase::Connect,
                        format!("cannot connect: {}", e.detail),
                    )
                })
            })
            .await
            .inspect_err(|_| {
                self.address = addrs.last().map(|a| a.to_string());
            })?;
        self.address = Some(addr.to_string());
        Ok(Some(tcp))
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

    async fn dialogue(&mut self) -> Result<(), Failure> {
        let t = self.target;
        if t.auth != AuthMethod::None {
            self.token_phase().await?;
        }
        let (stream, tls) = self.open().await?;

        let transcript = self.transcript.clone();
        let mut client = self
            .phase(Phase::Greeting, async {
                Client::connect(stream, transcript)
                    .await
                    .map_err(|e| Failure::from_pop3(e, Phase::Greeting))
            })
            .await?;
        self.apop_offered = client.greeting().apop_timestamp.is_some();

        if let (Some((tls_client, name)), TlsMode::Starttls | TlsMode::StarttlsIfAvailable) =
            (&tls, t.tls)
        {
            // STLS straight away, no CAPA first: a -ERR says as much as a
            // missing capability would, a round trip sooner, and a proxy
            // that strips STLS from CAPA gains nothing.
            client = self.starttls(client, tls_client, name.clone()).await?;
        }
        if t.capabilities && self.capabilities.is_none() {
            self.capa(&mut client).await?;
        }
        if t.auth == AuthMethod::None {
            self.quit(client.quit_nowait()).await;
            return Ok(());
        }
        let mut session = self.login(client).await?;

        let stat = self
            .phase(Phase::Stat, async {
                session
                    .stat()
                    .await
                    .map_err(|e| Failure::from_pop3(e, Phase::Stat))
            })
            .await?;
        self.mailbox = Some(stat);
        self.quit(session.quit_nowait()).await;
        Ok(())
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
                let kind = match e.failure {
                    TlsFailure::Handshake => FailureKind::TlsHandshakeFailed,
                    TlsFailure::Expired => FailureKind::CertificateExpired,
                    TlsFailure::NotYetValid => FailureKind::CertificateNotYetValid,
                    TlsFailure::NameMismatch => FailureKind::CertificateNameMismatch,
                    TlsFailure::Invalid => FailureKind::CertificateInvalid,
                };
                let message = self.describe_tls_failure(&e);
                Err(Failure::new(kind, Phase::Tls, message))
            }
        }
    }

    /// Say what is wrong with the certificate in the admin's terms, from
    /// the facts we collected rather than the TLS library's wording.
    fn describe_tls_failure(&self, e: &net::TlsError) -> String {
        let Some(cert) = e.facts.as_ref().and_then(|f| f.certificate.as_ref()) else {
            return format!("TLS handshake failed: {}", e.detail);
        };
        let names = if cert.names.is_empty() {
            cert.subject.clone()
        } else {
            cert.names.join(", ")
        };
        let expected = self
            .target
            .tls_server_name
            .as_deref()
            .unwrap_or(&self.target.host);
        match e.failure {
            TlsFailure::Expired => format!(
                "certificate for {names} expired {} days ago (valid until {})",
                -cert.days_remaining, cert.not_after
            ),
            TlsFailure::NotYetValid => format!(
                "certificate for {names} is not valid before {}",
                cert.not_before
            ),
            TlsFailure::NameMismatch => {
                format!("certificate is for {names}, not for {expected}")
            }
            _ => format!(
                "certificate for {names} is not trusted ({}); issuer {}",
                e.detail, cert.issuer
            ),
        }
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

    /// CAPA; a server without CAPA (-ERR) is not a failure, just unknown.
    async fn capa(&mut self, client: &mut Client<Stream>) -> Result<Option<Capabilities>, Failure> {
        let result = self
            .phase(Phase::Capa, async {
                match client.capa().await {
                    Ok(c) => Ok(Some(c)),
                    Err(pop3::Error::Negative(_)) => Ok(None),
                    Err(e) => Err(Failure::from_pop3(e, Phase::Capa)),
                }
            })
            .await?;
        if let Some(caps) = &result {
            self.capabilities = Some(caps.clone());
        }
        Ok(result)
    }

    async fn starttls(
        &mut self,
        client: Client<Stream>,
        tls_client: &TlsClient,
        name: rustls_pki_types::ServerName<'static>,
    ) -> Result<Client<Stream>, Failure> {
        let transcript = self.transcript.clone();
        let outcome = self
            .phase(Phase::Stls, async {
                client
                    .stls()
                    .await
                    .map_err(|e| Failure::from_pop3(e, Phase::Stls))
            })
            .await?;
        let (stream, greeting) = match outcome {
            StlsOutcome::Ready(stream, greeting) => (stream, greeting),
            StlsOutcome::Refused(mut client, line) => {
                // Only now ask CAPA, to tell "not offered" from "refused".
                let offered = matches!(self.capa(&mut client).await, Ok(Some(c)) if c.stls);
                if self.target.tls == TlsMode::StarttlsIfAvailable {
                    let why = if offered {
                        format!("the server refused STLS ({line})")
                    } else {
                        "the server does not offer STLS".to_string()
                    };
                    self.fall_back(&why);
                    return Ok(client);
                }
                if offered {
                    return Err(Failure::negative(line, Phase::Stls));
                }
                let mut f = Failure::new(
                    FailureKind::StlsUnavailable,
                    Phase::Stls,
                    format!("STLS is required but the server does not offer it: {line}"),
                );
                f.reply = Some(line.to_string());
                return Err(f);
            }
        };
        let Stream::Plain(tcp) = stream else {
            return Err(Failure::new(
                FailureKind::ProtocolError,
                Phase::Stls,
                "STLS on a connection that is already TLS",
            ));
        };
        let secured = self.handshake(tls_client, tcp, name).await?;
        // Capabilities may change once TLS is up (RFC 2595 section 4);
        // what was advertised in plaintext is stale.
        self.capabilities = None;
        Ok(Client::resume(secured, greeting, transcript))
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
        let cache = t
            .token_cache
            .clone()
            .unwrap_or_else(crate::oauth2::TokenCache::global);
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
                self.secrets.extend(forms);
                self.secrets.sort_by_key(|f| std::cmp::Reverse(f.len()));
                self.secrets.dedup();
                // Nothing is recorded yet: start the transcript again with
                // the token among the texts it masks.
                if t.transcript && t.oauth2.is_some() && self.transcript.lines().is_empty() {
                    self.transcript = Transcript::masking(self.secrets.clone());
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

    /// Log in with the OAuth2 token (XOAUTH2 or OAUTHBEARER, two-line
    /// form). A cached token the server refuses is dropped and one fresh
    /// token tried on the same connection (POP3 stays in AUTHORIZATION
    /// after -ERR); a fresh token refused is `auth_failed`.
    async fn login_oauth(
        &mut self,
        mut client: Client<Stream>,
    ) -> Result<Session<Stream>, Failure> {
        let t = self.target;
        let (Some(cred), Some(user)) = (t.oauth2.clone(), t.username.clone()) else {
            return Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                "an OAuth2 login needs a user name",
            ));
        };
        let method = match t.auth {
            AuthMethod::Xoauth2 | AuthMethod::Oauthbearer => t.auth,
            AuthMethod::Auto => {
                if self.capabilities.is_none() {
                    self.capa(&mut client).await?;
                }
                if self
                    .capabilities
                    .as_ref()
                    .is_some_and(|c| c.has_sasl("OAUTHBEARER"))
                {
                    AuthMethod::Oauthbearer
                } else {
                    AuthMethod::Xoauth2
                }
            }
            other => {
                return Err(Failure::new(
                    FailureKind::ConfigError,
                    Phase::Auth,
                    format!("auth {other} cannot use an OAuth2 credential: use xoauth2, oauthbearer or auto"),
                ))
            }
        };
        let mechanism = method.oauth_mechanism().expect("an OAuth2 method");
        if let Some(caps) = self
            .capabilities
            .as_ref()
            .filter(|c| !c.has_sasl(mechanism.name()))
        {
            return Err(Failure::new(
                FailureKind::AuthUnsupported,
                Phase::Auth,
                format!(
                    "{} is not offered by the server (CAPA: SASL {})",
                    mechanism.name(),
                    caps.sasl.join(" ")
                ),
            ));
        }
        if !client_is_tls(&client) && !t.allow_plaintext_password {
            return Err(Failure::new(
                FailureKind::PlaintextRefused,
                Phase::Auth,
                "refusing to send the OAuth2 token in cleartext (a connection without TLS); use TLS, or set allow_plaintext_password",
            ));
        }
        self.auth_used = Some(method);
        let host = t.tls_server_name.clone().unwrap_or_else(|| t.host.clone());
        let mut refetched = false;
        loop {
            let Some(obtained) = self.token.clone() else {
                return Err(Failure::new(
                    FailureKind::ConfigError,
                    Phase::Auth,
                    "no OAuth2 token",
                ));
            };
            let token = &obtained.token.token;
            let response = match mechanism {
                crate::sasl::oauth::OauthMechanism::XOauth2 => {
                    crate::sasl::oauth::xoauth2(&user, token)
                }
                crate::sasl::oauth::OauthMechanism::OauthBearer => {
                    crate::sasl::oauth::oauthbearer(&user, &host, t.port, token)
                }
            }
            .map_err(|e| {
                Failure::new(
                    FailureKind::ConfigError,
                    Phase::Auth,
                    format!("OAuth2 login: {e}"),
                )
            })?;
            let outcome = self
                .phase(Phase::Auth, async move {
                    Ok(client.login_oauth(&response, mechanism).await)
                })
                .await?;
            if let (Some(status), Some(facts)) = (&outcome.status, self.oauth2.as_mut()) {
                facts.server_status = Some(status.to_string());
            }
            let LoginFailure {
                error,
                client: back,
            } = match outcome.result {
                Ok(session) => return Ok(session),
                Err(f) => f,
            };
            let negative = matches!(error, pop3::Error::Negative(_));
            if let (true, false, true, Some(back)) = (obtained.cached, refetched, negative, back) {
                // Revoked or expired early: drop it, fetch one fresh token.
                let cache = t
                    .token_cache
                    .clone()
                    .unwrap_or_else(crate::oauth2::TokenCache::global);
                cache.reject(&cred, &user, token).await;
                refetched = true;
                if let Some(f) = self.oauth2.as_mut() {
                    f.refetched = true;
                }
                self.token_phase().await?;
                client = *back;
                continue;
            }
            let mut failure = Failure::from_pop3(error, Phase::Auth);
            if failure.kind == FailureKind::AuthFailed {
                let status = outcome
                    .status
                    .map(|s| format!(" (server status: {s})"))
                    .unwrap_or_default();
                failure.message = format!(
                    "the mail server refused a freshly issued OAuth2 token{status}: {}. {}",
                    failure.reply.as_deref().unwrap_or(""),
                    oauth_hint(cred.provider)
                );
            }
            return Err(failure);
        }
    }

    /// Pick the method, refuse plaintext passwords, log in.
    async fn login(&mut self, mut client: Client<Stream>) -> Result<Session<Stream>, Failure> {
        let t = self.target;
        if t.oauth2.is_some() {
            return self.login_oauth(client).await;
        }
        if t.auth.oauth_mechanism().is_some() {
            return Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                format!("auth {} needs an OAuth2 credential (an oauth2 block in credentials, or --oauth2-* flags)", t.auth),
            ));
        }
        let (Some(user), Some(password)) = (t.username.clone(), t.password.clone()) else {
            return Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                format!("auth method {} needs a user name and a password", t.auth),
            ));
        };
        let encrypted = client_is_tls(&client);
        let method = match t.auth {
            AuthMethod::Auto if self.apop_offered => AuthMethod::Apop,
            AuthMethod::Auto => {
                // Only here do we need (post-TLS) capabilities.
                if self.capabilities.is_none() {
                    self.capa(&mut client).await?;
                }
                if self
                    .capabilities
                    .as_ref()
                    .is_some_and(|c| c.has_sasl("PLAIN"))
                {
                    AuthMethod::SaslPlain
                } else {
                    AuthMethod::User
                }
            }
            m => m,
        };
        if method == AuthMethod::Apop && !self.apop_offered {
            return Err(Failure::new(
                FailureKind::AuthUnsupported,
                Phase::Auth,
                "APOP requested but the greeting carries no timestamp (APOP is not offered)",
            ));
        }
        if method == AuthMethod::SaslPlain {
            if let Some(caps) = self.capabilities.as_ref().filter(|c| !c.has_sasl("PLAIN")) {
                return Err(Failure::new(
                    FailureKind::AuthUnsupported,
                    Phase::Auth,
                    format!(
                        "SASL PLAIN is not offered by the server (CAPA: SASL {})",
                        caps.sasl.join(" ")
                    ),
                ));
            }
        }
        if matches!(method, AuthMethod::User | AuthMethod::SaslPlain)
            && !encrypted
            && !t.allow_plaintext_password
        {
            return Err(Failure::new(
                FailureKind::PlaintextRefused,
                Phase::Auth,
                format!(
                    "refusing to send the password in cleartext ({} over a connection without TLS); use TLS, APOP, or set allow_plaintext_password",
                    method
                ),
            ));
        }
        if matches!(method, AuthMethod::User | AuthMethod::SaslPlain) && !encrypted {
            self.warnings
                .push("the password was sent in cleartext (allow_plaintext_password)".into());
        }
        self.auth_used = Some(method);
        let outcome = self
            .phase(Phase::Auth, async move {
                Ok(match method {
                    AuthMethod::Apop => client.login_apop(&user, &password).await,
                    AuthMethod::SaslPlain => client.login_plain(&user, &password).await,
                    _ => client.login_user(&user, &password).await,
                })
            })
            .await?;
        let LoginFailure { error, client } = match outcome {
            Ok(session) => return Ok(session),
            Err(failure) => failure,
        };
        let mut failure = Failure::from_pop3(error, Phase::Auth);
        if let Some(hint) = basic_auth_disabled_hint(failure.reply.as_deref().unwrap_or("")) {
            failure.message = format!("{}; {hint}", failure.message);
        }
        // PLAIN was tried without knowing it is offered; Dovecot, for one,
        // answers an unknown mechanism with [AUTH], which would read as a
        // wrong password. Ask CAPA now, on the failure path only.
        if let (AuthMethod::SaslPlain, None, Some(mut client)) =
            (method, self.capabilities.as_ref(), client)
        {
            if let Ok(Some(caps)) = self.capa(&mut client).await {
                if !caps.has_sasl("PLAIN") {
                    failure.kind = FailureKind::AuthUnsupported;
                    failure.message = format!(
                        "SASL PLAIN is not offered by the server (CAPA: SASL {}): {}",
                        caps.sasl.join(" "),
                        failure.reply.as_deref().unwrap_or("")
                    );
                }
            }
        }
        Err(failure)
    }

    /// QUIT, without waiting for the answer (it cannot change the
    /// outcome). Failing even to send it is only a warning: the check
    /// already proved what it set out to.
    async fn quit<F>(&mut self, send_quit: F)
    where
        F: Future<Output = Result<(), pop3::Error>>,
    {
        let r = self
            .phase(Phase::Quit, async {
                send_quit
                    .await
                    .map_err(|e| Failure::from_pop3(e, Phase::Quit))
            })
            .await;
        if let Err(f) = r {
            self.warnings.push(format!("QUIT: {}", f.message));
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
                let what = match (&self.mailbox, self.auth_used) {
                    _ if self.summary.is_some() => self.summary.clone().unwrap_or_default(),
                    _ if t.kind == Kind::Dns => {
                        format!("{} resolves to {}", t.host, self.addresses.join(", "))
                    }
                    _ if t.kind == Kind::Tcp => format!(
                        "connected to {}",
                        self.address.as_deref().unwrap_or(t.host.as_str())
                    ),
                    (Some(m), Some(method)) => format!(
                        "logged in with {method}; {} messages, {} octets",
                        m.messages, m.octets
                    ),
                    _ if self.capabilities.is_some() => {
                        "greeting and capabilities received (no login)".to_string()
                    }
                    _ => "greeting received (no login)".to_string(),
                };
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
            oauth2: self.oauth2,
        };
        scrub(&mut result, &self.secrets);
        result
    }
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

fn client_is_tls(client: &Client<Stream>) -> bool {
    client.stream_ref().is_tls()
}

fn micros_to_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// A hostile or buggy server can echo what it was sent. Remove every form of
/// the password we might have sent from every text in the result.
fn scrub(result: &mut ProbeResult, forms: &[String]) {
    if forms.is_empty() {
        return;
    }
    let clean = |s: &mut String| {
        for form in forms {
            if s.contains(form.as_str()) {
                *s = s.replace(form.as_str(), "***");
            }
        }
    };
    clean(&mut result.message);
    if let Some(r) = result.server_reply.as_mut() {
        clean(r);
    }
    for w in &mut result.warnings {
        clean(w);
    }
    // The transcript was masked as it was recorded (`Transcript::masking`),
    // but a token fetched again mid-dialogue joined the list later.
    for l in &mut result.transcript {
        clean(&mut l.line);
    }
    if let Some(caps) = result.capabilities.as_mut() {
        for l in &mut caps.raw {
            clean(l);
        }
        if let Some(i) = caps.implementation.as_mut() {
            clean(i);
        }
    }
}

/// The password and its encodings that could appear on the wire.
pub fn secret_forms(password: &str, user: Option<&str>) -> Vec<String> {
    if password.is_empty() {
        return Vec::new();
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forms = vec![password.to_string(), b64.encode(password)];
    if let Some(user) = user {
        forms.push(b64.encode(format!("\0{user}\0{password}")));
    }
    // Longest first so a form that contains another is replaced whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}
