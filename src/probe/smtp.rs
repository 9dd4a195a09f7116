//! The SMTP check: one monitor in, one [`ProbeResult`] out, like the POP3
//! one and built from the same parts (one deadline, per-phase limits, the
//! TLS handshake that keeps certificate facts on a rejection, the masked
//! transcript, `finish`).
//!
//! resolve → connect → [tls] → greeting (banner) → ehlo → [stls → tls →
//! ehlo] → [auth] → quit. AUTH only when the monitor has credentials. It
//! never sends MAIL, RCPT or DATA: the SMTP client has no such command.
//!
//! A child of `probe` so that it shares the private run state without
//! widening its visibility; so is `probe::pop3`.

use secrecy::SecretString;

use super::{start, Classify, Failure, Run, TlsSetup};
use super::{AuthMethod, FailureKind, Phase, PhaseTiming, ProbeResult, Target, TlsMode};
use crate::clock::now_rfc3339;
use crate::smtp::{
    self, banner_software, AuthFailure, Authenticated, Client, HelloName, Reply, Session,
    StartTlsOutcome,
};
use crate::wire::Stream;

/// Probe one SMTP target.
pub async fn probe(target: &Target) -> ProbeResult {
    let started_at = now_rfc3339();
    let mut run = start(target);
    let outcome = run.smtp_dialogue().await;
    merge_repeats(&mut run.timings);
    run.finish(outcome, started_at)
}

/// EHLO runs twice with STARTTLS (before and after TLS); report the time
/// spent in each phase once, so that a per-phase metric has one value.
fn merge_repeats(timings: &mut Vec<PhaseTiming>) {
    let mut merged: Vec<PhaseTiming> = Vec::with_capacity(timings.len());
    for t in timings.drain(..) {
        match merged.iter_mut().find(|m| m.phase == t.phase) {
            Some(m) => m.ms += t.ms,
            None => merged.push(t),
        }
    }
    *timings = merged;
}

impl Classify for smtp::Error {
    fn classify(self, phase: Phase) -> Failure {
        match self {
            smtp::Error::Io(io) => Failure::io(io, phase),
            smtp::Error::Closed => Failure::closed(phase),
            e @ smtp::Error::TooLarge => Failure::too_large(e, phase),
            smtp::Error::Protocol(p) => Failure::protocol(p, phase),
            smtp::Error::Argument(a) => Failure::new(
                FailureKind::ConfigError,
                phase,
                format!("{phase}: cannot send: {a}"),
            ),
            smtp::Error::Negative(reply) => negative(reply, phase),
        }
    }
}

/// A 4yz or 5yz reply: the phase decides, and in AUTH the code.
fn negative(reply: Reply, phase: Phase) -> Failure {
    let (kind, what) = match phase {
        Phase::Greeting => (
            FailureKind::GreetingRejected,
            "the server rejected the connection",
        ),
        // Refusing EHLO and HELO alike turns the session away as surely
        // as a 554 banner does.
        Phase::Ehlo => (FailureKind::GreetingRejected, "the server refused EHLO"),
        Phase::Stls => (FailureKind::StlsRefused, "STARTTLS refused"),
        Phase::Auth => auth_refusal(&reply),
        _ => (FailureKind::ProtocolError, "unexpected reply"),
    };
    let shown = reply.to_string();
    Failure {
        kind,
        phase,
        message: format!("{what}: {shown}"),
        reply: Some(shown),
    }
}

/// RFC 4954 section 6 and RFC 3463: 535 / 5.7.8 is a wrong password; 4yz
/// (454 4.7.0) a temporary server problem; 538 (5.7.11) a login the server
/// takes only over TLS (as POP3's "plaintext authentication disallowed": a
/// configuration matter, not the credentials); 504 and 534 (5.7.9) a
/// mechanism the server will not take; 500/502 AUTH unknown;
/// 501/503 a broken dialogue; any other 5yz a refusal for good (an
/// account that is disabled, say).
fn auth_refusal(reply: &Reply) -> (FailureKind, &'static str) {
    let enhanced = reply.enhanced.map(|e| (e.class, e.subject, e.detail));
    match (reply.code, enhanced) {
        (535, _) | (_, Some((5, 7, 8))) => (
            FailureKind::AuthFailed,
            "login failed: check the technical account's credentials",
        ),
        (code, _) if code / 100 == 4 => (
            FailureKind::AuthTemporaryFailure,
            "login failed for a temporary server reason",
        ),
        (538, _) | (_, Some((5, 7, 11))) => (
            FailureKind::PlaintextDisallowed,
            "the server takes this login only over TLS: use STARTTLS or implicit TLS",
        ),
        (500 | 502 | 504 | 534, _) | (_, Some((5, 7, 9) | (5, 5, 4))) => (
            FailureKind::AuthUnsupported,
            "the server does not accept this login method",
        ),
        (501 | 503, _) => (
            FailureKind::ProtocolError,
            "the server did not follow the AUTH dialogue",
        ),
        _ => (
            FailureKind::AuthPermanentFailure,
            "login refused for a permanent server reason (account disabled?)",
        ),
    }
}

/// The local address as an EHLO address literal (`[127.0.0.1]`,
/// `[IPv6:::1]`): true, and it names no host the monitor does not own.
pub(super) fn local_literal(stream: &Stream) -> HelloName {
    let tcp = match stream {
        Stream::Plain(tcp) => tcp,
        Stream::Tls(tls) => tls.get_ref().0,
    };
    match tcp.local_addr() {
        Ok(addr) => HelloName::literal(addr.ip()),
        Err(_) => HelloName::literal(std::net::Ipv4Addr::LOCALHOST.into()),
    }
}

impl Run<'_> {
    async fn smtp_dialogue(&mut self) -> Result<(), Failure> {
        let t = self.target;
        // Settings are checked before any traffic: a bad one is the
        // monitor's fault, not the server's.
        let credentials = self.smtp_credentials()?;
        if credentials.is_some() {
            self.token_phase().await?;
        }
        let configured_name = t
            .ehlo_name
            .as_deref()
            .map(HelloName::new)
            .transpose()
            .map_err(|e| {
                Failure::new(
                    FailureKind::ConfigError,
                    Phase::Ehlo,
                    format!("ehlo_name: {e}"),
                )
            })?;

        let (stream, tls) = self.open().await?;
        let name = configured_name.unwrap_or_else(|| local_literal(&stream));

        let transcript = self.transcript.clone();
        let client = self
            .phase(Phase::Greeting, async {
                Client::connect(stream, transcript)
                    .await
                    .map_err(|e| e.classify(Phase::Greeting))
            })
            .await?;
        let software = banner_software(client.banner().first_line());

        let mut session = self.hello(client, &name, &software).await?;
        if let (Some(setup), TlsMode::Starttls | TlsMode::StarttlsIfAvailable) = (&tls, t.tls) {
            session = self.smtp_starttls(session, setup, &name, &software).await?;
        }
        let hello = if session.extensions().helo {
            "HELO"
        } else {
            "EHLO"
        };
        let Some((user, password)) = credentials else {
            self.summary = Some(with_software(
                format!("banner and {hello} received (no login)"),
                &software,
            ));
            self.quit(session.quit_nowait()).await;
            return Ok(());
        };
        let (done, method) = self.smtp_login(session, user, password).await?;
        self.summary = Some(with_software(format!("logged in with {method}"), &software));
        self.quit(done.quit_nowait()).await;
        Ok(())
    }

    /// The user name and password when the monitor logs in; `None` for a
    /// check without AUTH. POP3's methods and half-given credentials are
    /// configuration mistakes.
    pub(super) fn smtp_credentials(&self) -> Result<Option<(String, SecretString)>, Failure> {
        let t = self.target;
        if matches!(t.auth, AuthMethod::Apop | AuthMethod::User) {
            return Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                format!(
                    "auth method {} is POP3's; an smtp monitor logs in with auto, sasl-plain or sasl-login, or not at all (none)",
                    t.auth
                ),
            ));
        }
        if t.auth == AuthMethod::None {
            return Ok(None);
        }
        // OAuth2: the token stands in for the password (the token phase
        // fetches it before the connection).
        if let (Some(_), Some(u)) = (&t.oauth2, &t.username) {
            return Ok(Some((u.clone(), SecretString::from(String::new()))));
        }
        if t.auth.oauth_mechanism().is_some() {
            return Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                format!("auth {} needs an OAuth2 credential and a user name", t.auth),
            ));
        }
        match (&t.username, &t.password) {
            (Some(u), Some(p)) => Ok(Some((u.clone(), p.clone()))),
            (None, None) if t.auth == AuthMethod::Auto => Ok(None),
            _ => Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                format!("auth method {} needs a user name and a password", t.auth),
            )),
        }
    }

    /// EHLO (HELO as a fallback) and record what it announced.
    pub(super) async fn hello(
        &mut self,
        client: Client<Stream>,
        name: &HelloName,
        software: &Option<String>,
    ) -> Result<Session<Stream>, Failure> {
        let session = self
            .phase(Phase::Ehlo, async {
                client
                    .hello(name)
                    .await
                    .map_err(|e| e.classify(Phase::Ehlo))
            })
            .await?;
        if session.extensions().helo {
            self.warnings.push(
                "the server does not understand EHLO: greeted with HELO, so it announces no extensions (no STARTTLS, no AUTH)".into(),
            );
        }
        self.capabilities = Some(session.extensions().capabilities(software.clone()));
        Ok(session)
    }

    /// STARTTLS, the handshake, and EHLO again over TLS. With
    /// `starttls-if-available`, a server that does not offer or refuses
    /// STARTTLS is a recorded fallback instead of a failure.
    pub(super) async fn smtp_starttls(
        &mut self,
        session: Session<Stream>,
        (tls_client, server_name): &TlsSetup,
        name: &HelloName,
        software: &Option<String>,
    ) -> Result<Session<Stream>, Failure> {
        let optional = self.target.tls == TlsMode::StarttlsIfAvailable;
        if !session.extensions().starttls() {
            if optional {
                self.fall_back("the server does not offer STARTTLS");
                return Ok(session);
            }
            let offered = session.extensions().lines.join(", ");
            let failure = Failure::new(
                FailureKind::StlsUnavailable,
                Phase::Stls,
                format!(
                    "STARTTLS is required but the server does not offer it (EHLO: {})",
                    if offered.is_empty() {
                        "no extensions"
                    } else {
                        &offered
                    }
                ),
            );
            self.quit(session.quit_nowait()).await;
            return Err(failure);
        }
        let outcome = self
            .phase(Phase::Stls, async {
                session
                    .starttls()
                    .await
                    .map_err(|e| e.classify(Phase::Stls))
            })
            .await?;
        let (stream, banner) = match outcome {
            StartTlsOutcome::Ready(stream, banner) => (stream, banner),
            StartTlsOutcome::Refused(session, reply) => {
                if optional {
                    self.fall_back(&format!("the server refused STARTTLS ({reply})"));
                    return Ok(session);
                }
                let failure = negative(reply, Phase::Stls);
                self.quit(session.quit_nowait()).await;
                return Err(failure);
            }
        };
        let Stream::Plain(tcp) = stream else {
            return Err(Failure::new(
                FailureKind::ProtocolError,
                Phase::Stls,
                "STARTTLS on a connection that is already TLS",
            ));
        };
        let secured = self.handshake(tls_client, tcp, server_name.clone()).await?;
        // What was announced in plaintext is void (RFC 3207 section 4.2).
        self.capabilities = None;
        let client = Client::resume(secured, banner, self.transcript.clone());
        self.hello(client, name, software).await
    }

    /// Pick the mechanism, refuse a cleartext password, AUTH.
    pub(super) async fn smtp_login(
        &mut self,
        session: Session<Stream>,
        user: String,
        password: SecretString,
    ) -> Result<(Authenticated<Stream>, AuthMethod), Failure> {
        let t = self.target;
        let encrypted = session.stream_ref().is_tls();
        if let Err(refused) = self.refuse_cleartext(encrypted, "AUTH", "tls starttls or implicit") {
            self.quit(session.quit_nowait()).await;
            return Err(refused);
        }
        if t.oauth2.is_some() {
            return self.smtp_login_oauth(session, user).await;
        }
        let ext = session.extensions();
        let method = match t.auth {
            AuthMethod::Auto if ext.has_mechanism("PLAIN") => Some(AuthMethod::SaslPlain),
            AuthMethod::Auto if ext.has_mechanism("LOGIN") => Some(AuthMethod::SaslLogin),
            AuthMethod::SaslPlain if ext.has_mechanism("PLAIN") => Some(AuthMethod::SaslPlain),
            AuthMethod::SaslLogin if ext.has_mechanism("LOGIN") => Some(AuthMethod::SaslLogin),
            _ => None,
        };
        let Some(method) = method else {
            let offered = ext.mechanisms().join(" ");
            let why = match (ext.auth(), t.auth) {
                (true, AuthMethod::SaslPlain) => {
                    format!("the server offers AUTH {offered} but not PLAIN")
                }
                (true, AuthMethod::SaslLogin) => {
                    format!("the server offers AUTH {offered} but not LOGIN")
                }
                (true, _) => {
                    format!("the server offers AUTH {offered} but neither PLAIN nor LOGIN")
                }
                (false, _) if encrypted => "the server does not offer AUTH".to_string(),
                (false, _) => {
                    "the server does not offer AUTH on this connection without TLS".to_string()
                }
            };
            self.quit(session.quit_nowait()).await;
            return Err(Failure::new(FailureKind::AuthUnsupported, Phase::Auth, why));
        };
        self.warn_cleartext(encrypted);
        self.auth_used = Some(method);
        let outcome = self
            .phase(Phase::Auth, async {
                Ok(match method {
                    AuthMethod::SaslLogin => session.auth_login(&user, &password).await,
                    _ => session.auth_plain(&user, &password).await,
                })
            })
            .await?;
        let AuthFailure { error, session } = match outcome {
            Ok(done) => return Ok((done, method)),
            Err(f) => f,
        };
        let failure = error.classify(Phase::Auth);
        if let Some(session) = session {
            self.quit(session.quit_nowait()).await;
        }
        Err(failure)
    }
}

impl Run<'_> {
    /// AUTH XOAUTH2 / OAUTHBEARER with the token phase's token (`auto`:
    /// OAUTHBEARER when EHLO offers it, else XOAUTH2). A cached token the
    /// server refuses (revoked, or expired early) is dropped and one fresh
    /// token tried in the same session, as the POP3 login does; a refused
    /// fresh token is the failure.
    async fn smtp_login_oauth(
        &mut self,
        mut session: Session<Stream>,
        user: String,
    ) -> Result<(Authenticated<Stream>, AuthMethod), Failure> {
        let t = self.target;
        let ext = session.extensions();
        let method = match t.auth {
            AuthMethod::Xoauth2 | AuthMethod::Oauthbearer => t.auth,
            _ if ext.has_mechanism("OAUTHBEARER") => AuthMethod::Oauthbearer,
            _ => AuthMethod::Xoauth2,
        };
        let mechanism = method.oauth_mechanism().expect("an OAuth2 method");
        if !ext.has_mechanism(mechanism.name()) {
            let why = format!(
                "the server does not offer AUTH {} (it offers: {})",
                mechanism.name(),
                ext.mechanisms().join(" ")
            );
            self.quit(session.quit_nowait()).await;
            return Err(Failure::new(FailureKind::AuthUnsupported, Phase::Auth, why));
        }
        self.auth_used = Some(method);
        let host = t.tls_server_name.clone().unwrap_or_else(|| t.host.clone());
        let mut refetched = false;
        loop {
            let (obtained, response) = self.oauth_response(mechanism, &user, &host)?;
            let (outcome, status) = self
                .phase(Phase::Auth, async {
                    Ok(session.auth_oauth(&response, mechanism).await)
                })
                .await?;
            if let (Some(st), Some(facts)) = (&status, self.oauth2.as_mut()) {
                facts.server_status = Some(st.to_string());
            }
            let AuthFailure {
                error,
                session: back,
            } = match outcome {
                Ok(done) => return Ok((done, method)),
                Err(f) => f,
            };
            let mut failure = error.classify(Phase::Auth);
            let mut back = back;
            if let (FailureKind::AuthFailed, Some(cred)) = (failure.kind, t.oauth2.as_ref()) {
                if obtained.cached {
                    self.drop_refused_token(&obtained).await;
                    // SMTP allows another AUTH after a 535: one fresh
                    // token, same session.
                    if let Some(again) = back.take_if(|_| !refetched) {
                        refetched = true;
                        self.refetch_token().await?;
                        session = *again;
                        continue;
                    }
                }
                failure = super::oauth_refused(failure, status, cred.provider);
            }
            if let Some(session) = back {
                self.quit(session.quit_nowait()).await;
            }
            return Err(failure);
        }
    }
}

fn with_software(what: String, software: &Option<String>) -> String {
    match software {
        Some(s) => format!("{what}; {s}"),
        None => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::parse_all;

    fn reply(bytes: &[u8]) -> Reply {
        parse_all(bytes).unwrap().remove(0)
    }

    #[test]
    fn auth_replies_are_classified() {
        let cases: [(&[u8], FailureKind); 10] = [
            (
                b"535 5.7.8 Authentication credentials invalid\r\n",
                FailureKind::AuthFailed,
            ),
            (
                b"535 Incorrect authentication data\r\n",
                FailureKind::AuthFailed,
            ),
            (
                b"454 4.7.0 Temporary authentication failure\r\n",
                FailureKind::AuthTemporaryFailure,
            ),
            (
                b"421 4.7.0 too many errors\r\n",
                FailureKind::AuthTemporaryFailure,
            ),
            (
                b"504 5.5.4 Unrecognized authentication type\r\n",
                FailureKind::AuthUnsupported,
            ),
            (
                b"534 5.7.9 Authentication mechanism is too weak\r\n",
                FailureKind::AuthUnsupported,
            ),
            (
                b"538 5.7.11 Encryption required\r\n",
                FailureKind::PlaintextDisallowed,
            ),
            (
                b"502 5.5.1 AUTH not available\r\n",
                FailureKind::AuthUnsupported,
            ),
            (
                b"503 5.5.1 Already authenticated\r\n",
                FailureKind::ProtocolError,
            ),
            (
                b"554 5.7.0 Account disabled\r\n",
                FailureKind::AuthPermanentFailure,
            ),
        ];
        for (bytes, want) in cases {
            let f = negative(reply(bytes), Phase::Auth);
            assert_eq!(f.kind, want, "{}", String::from_utf8_lossy(bytes));
            assert_eq!(f.phase, Phase::Auth);
            // The server's words, enhanced code included, stay in the message.
            let text = String::from_utf8_lossy(bytes);
            assert!(f.message.ends_with(text.trim_end()), "{}", f.message);
        }
    }

    #[test]
    fn other_phases() {
        let f = negative(
            reply(b"554 5.7.1 No SMTP service here\r\n"),
            Phase::Greeting,
        );
        assert_eq!(f.kind, FailureKind::GreetingRejected);
        assert_eq!(f.reply.as_deref(), Some("554 5.7.1 No SMTP service here"));
        let f = negative(reply(b"454 4.7.0 TLS not available\r\n"), Phase::Stls);
        assert_eq!(f.kind, FailureKind::StlsRefused);
        assert_eq!(f.message, "STARTTLS refused: 454 4.7.0 TLS not available");
        let f = negative(reply(b"550 go away\r\n"), Phase::Ehlo);
        assert_eq!(f.kind, FailureKind::GreetingRejected);
    }

    #[test]
    fn repeated_phases_are_summed_once() {
        let mut t = vec![
            PhaseTiming {
                phase: Phase::Greeting,
                ms: 1.0,
            },
            PhaseTiming {
                phase: Phase::Ehlo,
                ms: 2.0,
            },
            PhaseTiming {
                phase: Phase::Stls,
                ms: 3.0,
            },
            PhaseTiming {
                phase: Phase::Tls,
                ms: 4.0,
            },
            PhaseTiming {
                phase: Phase::Ehlo,
                ms: 5.0,
            },
        ];
        merge_repeats(&mut t);
        let phases: Vec<Phase> = t.iter().map(|p| p.phase).collect();
        assert_eq!(
            phases,
            vec![Phase::Greeting, Phase::Ehlo, Phase::Stls, Phase::Tls]
        );
        assert_eq!(t[1].ms, 7.0);
    }
}
