//! The POP3 check: one monitor in, one [`ProbeResult`] out, on the
//! engine's parts (one deadline, per-phase limits, TLS with certificate
//! facts, the masked transcript, `finish`).
//!
//! resolve → connect → [tls] → greeting → [capa] → [stls → tls → capa] →
//! auth → stat → quit. Nothing is read or changed in the mailbox: STAT
//! only, and the POP3 client has no command that would.

use super::{start, Classify, Failure, Run, DOWNGRADE};
use super::{AuthMethod, FailureKind, Phase, ProbeResult, Target, TlsMode};
use crate::clock::now_rfc3339;
use crate::net::TlsClient;
use crate::pop3::{self, Client, LoginFailure, ResponseCode, Session, StatusLine, StlsOutcome};
use crate::wire::{Capabilities, Stream};

/// Probe one POP3 target.
pub async fn probe(target: &Target) -> ProbeResult {
    let started_at = now_rfc3339();
    let mut run = start(target);
    let outcome = run.pop3_dialogue().await;
    run.finish(outcome, started_at)
}

impl Classify for pop3::Error {
    fn classify(self, phase: Phase) -> Failure {
        match self {
            pop3::Error::Io(io) => Failure::io(io, phase),
            pop3::Error::Closed => Failure::closed(phase),
            e @ pop3::Error::TooLarge => Failure::too_large(e, phase),
            pop3::Error::Protocol(p) => Failure::protocol(p, phase),
            pop3::Error::Argument(a) => {
                Failure::new(FailureKind::ConfigError, phase, format!("credentials: {a}"))
            }
            pop3::Error::Negative(line) => negative(line, phase),
        }
    }
}

/// Dovecot answers a login on a plaintext connection, when its
/// `disable_plaintext_auth` is on, with `-ERR [AUTH] Plaintext
/// authentication disallowed on non-secure (SSL/TLS) connections`: the
/// `[AUTH]` code would read as a wrong password, the words say otherwise.
fn disallows_plaintext(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("plaintext") && (t.contains("disallowed") || t.contains("not allowed"))
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
        (Phase::Auth, _) if disallows_plaintext(&line.text) => (
            FailureKind::PlaintextDisallowed,
            "the server refuses password logins without TLS (a configuration matter, not the credentials): use TLS or APOP",
        ),
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

impl Run<'_> {
    async fn pop3_dialogue(&mut self) -> Result<(), Failure> {
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
                    .map_err(|e| e.classify(Phase::Greeting))
            })
            .await?;
        self.apop_offered = client.greeting().apop_timestamp.is_some();

        if let (Some((tls_client, name)), TlsMode::Starttls | TlsMode::StarttlsIfAvailable) =
            (&tls, t.tls)
        {
            // STLS straight away, no CAPA first: a -ERR says as much as a
            // missing capability would, a round trip sooner, and a proxy
            // that strips STLS from CAPA gains nothing.
            client = self.stls(client, tls_client, name.clone()).await?;
        }
        if t.capabilities && self.capabilities.is_none() {
            self.capa(&mut client).await?;
        }
        if t.auth == AuthMethod::None {
            self.quit(client.quit_nowait()).await;
            self.summary = Some(if self.capabilities.is_some() {
                "greeting and capabilities received (no login)".to_string()
            } else {
                "greeting received (no login)".to_string()
            });
            return Ok(());
        }
        let mut session = self.pop3_login(client).await?;

        let stat = self
            .phase(Phase::Stat, async {
                session.stat().await.map_err(|e| e.classify(Phase::Stat))
            })
            .await?;
        self.mailbox = Some(stat);
        self.quit(session.quit_nowait()).await;
        if let Some(method) = self.auth_used {
            self.summary = Some(format!(
                "logged in with {method}; {} messages, {} octets",
                stat.messages, stat.octets
            ));
        }
        Ok(())
    }

    /// CAPA; a server without CAPA (-ERR) is not a failure, just unknown.
    async fn capa(&mut self, client: &mut Client<Stream>) -> Result<Option<Capabilities>, Failure> {
        let result = self
            .phase(Phase::Capa, async {
                match client.capa().await {
                    Ok(c) => Ok(Some(c)),
                    Err(pop3::Error::Negative(_)) => Ok(None),
                    Err(e) => Err(e.classify(Phase::Capa)),
                }
            })
            .await?;
        if let Some(caps) = &result {
            self.capabilities = Some(caps.clone());
        }
        Ok(result)
    }

    pub(super) async fn stls(
        &mut self,
        client: Client<Stream>,
        tls_client: &TlsClient,
        name: rustls_pki_types::ServerName<'static>,
    ) -> Result<Client<Stream>, Failure> {
        let transcript = self.transcript.clone();
        let outcome = self
            .phase(Phase::Stls, async {
                client.stls().await.map_err(|e| e.classify(Phase::Stls))
            })
            .await?;
        let (stream, greeting) = match outcome {
            StlsOutcome::Ready(stream, greeting) => (stream, greeting),
            StlsOutcome::Refused(mut client, line) => {
                // Only now ask CAPA, to tell "not offered" from "refused".
                let offered = matches!(self.capa(&mut client).await, Ok(Some(c)) if c.stls);
                if self.target.tls == TlsMode::StarttlsIfAvailable {
                    let why = if offered {
                        format!("{DOWNGRADE}: the server offered STLS, then refused it ({line})")
                    } else {
                        "the server does not offer STLS".to_string()
                    };
                    self.fall_back(&why);
                    return Ok(client);
                }
                if offered {
                    return Err(negative(line, Phase::Stls));
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

    /// Log in with the OAuth2 token (XOAUTH2 or OAUTHBEARER, two-line
    /// form). A cached token the server refuses is dropped and one fresh
    /// token tried on the same connection (POP3 stays in AUTHORIZATION
    /// after -ERR); a fresh token refused is `auth_failed`.
    async fn pop3_login_oauth(
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
        if !client.stream_ref().is_tls() && !t.allow_plaintext_password {
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
            let (obtained, response) = self.oauth_response(mechanism, &user, &host)?;
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
                self.drop_refused_token(&obtained).await;
                refetched = true;
                self.refetch_token().await?;
                client = *back;
                continue;
            }
            let mut failure = error.classify(Phase::Auth);
            if failure.kind == FailureKind::AuthFailed {
                failure = super::oauth_refused(failure, outcome.status, cred.provider);
            }
            return Err(failure);
        }
    }

    /// Pick the method, refuse plaintext passwords, log in.
    pub(super) async fn pop3_login(
        &mut self,
        mut client: Client<Stream>,
    ) -> Result<Session<Stream>, Failure> {
        let t = self.target;
        if t.oauth2.is_some() {
            return self.pop3_login_oauth(client).await;
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
        let encrypted = client.stream_ref().is_tls();
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
                        caps.sasl_list()
                    ),
                ));
            }
        }
        // APOP sends a digest, never the password itself.
        if matches!(method, AuthMethod::User | AuthMethod::SaslPlain) {
            self.refuse_cleartext(encrypted, &method.to_string(), "TLS, APOP")?;
            self.warn_cleartext(encrypted);
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
        let mut failure = error.classify(Phase::Auth);
        if let Some(hint) = super::basic_auth_disabled_hint(failure.reply.as_deref().unwrap_or(""))
        {
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
                        caps.sasl_list(),
                        failure.reply.as_deref().unwrap_or("")
                    );
                }
            }
        }
        Err(failure)
    }
}
