//! The SMTP dialogue over any byte stream, as far as a monitor goes: banner,
//! EHLO, STARTTLS, AUTH, QUIT.
//!
//! `Client<S>` has read the banner; only EHLO (or HELO) turns it into a
//! `Session<S>`, the one state that can STARTTLS or AUTH; a successful
//! AUTH gives `Authenticated<S>`, which can only QUIT. No state has a way
//! to send MAIL, RCPT or DATA. Like the POP3 client, none of these types
//! knows about time: the caller bounds each call and drops the connection
//! when a limit fires.

use secrecy::SecretString;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::sasl::{self, login, oauth, Auth, AuthStart, Mechanism, SecretResponse};
use crate::wire::{self, BadArgument, Conn, Transcript};

use super::command::{self, Ehlo, HelloName, Helo, SmtpCommand, StartTls};
use super::ehlo::Extensions;
use super::reply::{Assembler, BadReply, Reply, MAX_REPLY_LINES};

/// Why an SMTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("connection closed by the server")]
    Closed,
    #[error(
        "response too large: a line over {} bytes or a reply over {MAX_REPLY_LINES} lines",
        wire::MAX_LINE
    )]
    TooLarge,
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server answered 4yz or 5yz where the dialogue needed success.
    #[error("server replied: {0}")]
    Negative(Reply),
    #[error("cannot send command: {0}")]
    Argument(#[from] BadArgument),
}

impl From<wire::Error> for Error {
    fn from(e: wire::Error) -> Self {
        match e {
            wire::Error::Io(io) => Error::Io(io),
            wire::Error::Closed => Error::Closed,
            wire::Error::TooLarge => Error::TooLarge,
            wire::Error::Argument(a) => Error::Argument(a),
        }
    }
}

impl From<BadReply> for Error {
    fn from(e: BadReply) -> Self {
        match e {
            BadReply::TooManyLines => Error::TooLarge,
            other => Error::Protocol(other.to_string()),
        }
    }
}

async fn send<S, C>(conn: &mut Conn<S>, cmd: &C) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: SmtpCommand,
{
    Ok(conn.send(cmd).await?)
}

async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>) -> Result<Reply, Error> {
    let mut assembler = Assembler::default();
    loop {
        let line = conn.read_line().await?;
        if let Some(reply) = assembler.push(line)? {
            return Ok(reply);
        }
    }
}

/// A reply that must be positive (2yz); 4yz and 5yz become
/// `Error::Negative`, anything else a protocol error naming `expected`.
fn positive(reply: Reply, expected: &str) -> Result<Reply, Error> {
    if reply.is_positive() {
        Ok(reply)
    } else if reply.is_transient() || reply.is_permanent() {
        Err(Error::Negative(reply))
    } else {
        Err(Error::Protocol(format!("expected {expected}, got {reply}")))
    }
}

/// A SASL challenge (`334`) was needed; 4yz and 5yz end the exchange.
fn challenge(reply: Reply) -> Result<(), Error> {
    if reply.code == 334 {
        Ok(())
    } else if reply.is_transient() || reply.is_permanent() {
        Err(Error::Negative(reply))
    } else {
        Err(Error::Protocol(format!(
            "expected a SASL challenge (334), got {reply}"
        )))
    }
}

/// QUIT, then FIN at once: the server reads QUIT first, so it logs a
/// clean end of session rather than a lost connection.
async fn quit_nowait<S: AsyncRead + AsyncWrite + Unpin>(conn: Conn<S>) -> Result<(), Error> {
    Ok(conn.send_and_close(&command::Quit).await?)
}

/// The banner has been read; EHLO comes next.
pub struct Client<S> {
    conn: Conn<S>,
    banner: Reply,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Read the banner. `220` is a welcome; a 4yz or 5yz banner (`554 no
    /// service`, `421 busy`) is `Error::Negative`.
    pub async fn connect(stream: S, transcript: Transcript) -> Result<Client<S>, Error> {
        let mut conn = Conn::new(stream, transcript);
        let banner = positive(read_reply(&mut conn).await?, "a 220 greeting")?;
        if banner.code != 220 {
            return Err(Error::Protocol(format!(
                "expected a 220 greeting, got {banner}"
            )));
        }
        Ok(Client { conn, banner })
    }

    /// Go on over a stream secured after STARTTLS. The server sends no new
    /// banner (RFC 3207 section 4.2), so the old one stays, and EHLO must
    /// be sent again: what was learnt in plaintext is void.
    pub fn resume(stream: S, banner: Reply, transcript: Transcript) -> Client<S> {
        Client {
            conn: Conn::new(stream, transcript),
            banner,
        }
    }

    pub fn banner(&self) -> &Reply {
        &self.banner
    }

    pub fn stream_ref(&self) -> &S {
        self.conn.stream_ref()
    }

    /// EHLO; when the server answers it with 5yz (it does not know ESMTP),
    /// HELO (RFC 5321 section 4.1.4). A 4yz to EHLO is the server turning
    /// the session away, not a lack of ESMTP, so it is not retried.
    pub async fn hello(mut self, name: &HelloName) -> Result<Session<S>, Error> {
        send(&mut self.conn, &Ehlo(name)).await?;
        let reply = read_reply(&mut self.conn).await?;
        let extensions = if reply.is_permanent() {
            send(&mut self.conn, &Helo(name)).await?;
            let reply = positive(read_reply(&mut self.conn).await?, "250 to HELO")?;
            Extensions::from_helo(&reply)
        } else {
            Extensions::from_ehlo(&positive(reply, "250 to EHLO")?)
        };
        Ok(Session {
            conn: self.conn,
            banner: self.banner,
            extensions,
        })
    }

    /// Send QUIT and close without waiting for the answer.
    pub async fn quit_nowait(self) -> Result<(), Error> {
        quit_nowait(self.conn).await
    }
}

/// What STARTTLS led to.
pub enum StartTlsOutcome<S> {
    /// `220`: the raw stream, ready for the TLS handshake, and the banner.
    Ready(S, Reply),
    /// 4yz or 5yz: still in plaintext, still greeted.
    Refused(Session<S>, Reply),
}

/// Greeted: the extensions are known; STARTTLS, AUTH and QUIT are possible.
pub struct Session<S> {
    conn: Conn<S>,
    banner: Reply,
    extensions: Extensions,
}

/// A login the server refused, or that broke.
pub struct AuthFailure<S> {
    pub error: Error,
    /// Still greeted, when the server answered with a reply (so the caller
    /// can end the session with QUIT); `None` when the connection broke.
    pub session: Option<Box<Session<S>>>,
}

impl<S> std::fmt::Debug for AuthFailure<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFailure")
            .field("error", &self.error)
            .field("session", &self.session.as_ref().map(|_| "Session"))
            .finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    pub fn banner(&self) -> &Reply {
        &self.banner
    }

    pub fn stream_ref(&self) -> &S {
        self.conn.stream_ref()
    }

    /// STARTTLS. On `220`, hands back the raw stream for the handshake.
    ///
    /// Bytes already buffered after the `220` were sent before TLS began
    /// and would be read as if they came over TLS (CVE-2011-0411 and kin),
    /// so they make this fail instead.
    pub async fn starttls(mut self) -> Result<StartTlsOutcome<S>, Error> {
        send(&mut self.conn, &StartTls).await?;
        let reply = read_reply(&mut self.conn).await?;
        if reply.is_transient() || reply.is_permanent() {
            return Ok(StartTlsOutcome::Refused(self, reply));
        }
        if reply.code != 220 {
            return Err(Error::Protocol(format!(
                "expected 220 to STARTTLS, got {reply}"
            )));
        }
        if self.conn.has_buffered() {
            return Err(Error::Protocol(
                "server sent data after the STARTTLS reply, before TLS began".into(),
            ));
        }
        Ok(StartTlsOutcome::Ready(self.conn.into_stream(), self.banner))
    }

    /// AUTH PLAIN, with the initial response on the AUTH line when it fits
    /// (one round trip) and after a `334` when it does not.
    pub async fn auth_plain(
        mut self,
        user: &str,
        password: &SecretString,
    ) -> Result<Authenticated<S>, AuthFailure<S>> {
        let r = self.plain(user, password).await;
        self.finish_auth(r)
    }

    /// AUTH LOGIN: the user name, then the password, each in base64 after
    /// a `334` challenge.
    pub async fn auth_login(
        mut self,
        user: &str,
        password: &SecretString,
    ) -> Result<Authenticated<S>, AuthFailure<S>> {
        let r = self.login(user, password).await;
        self.finish_auth(r)
    }

    /// XOAUTH2 or OAUTHBEARER (Microsoft's SMTP AUTH client submission
    /// uses XOAUTH2): `AUTH <mech>`, `334`, the client response. A refused
    /// token may come back as a `334 <base64 JSON>` error challenge, which
    /// is answered as each spec says; its decoded status is returned.
    pub async fn auth_oauth(
        mut self,
        response: &oauth::ClientResponse,
        mechanism: oauth::OauthMechanism,
    ) -> (
        Result<Authenticated<S>, AuthFailure<S>>,
        Option<oauth::ErrorStatus>,
    ) {
        let mut status = None;
        let r = self.oauth(response, mechanism, &mut status).await;
        (self.finish_auth(r), status)
    }

    async fn oauth(
        &mut self,
        response: &oauth::ClientResponse,
        mechanism: oauth::OauthMechanism,
        status: &mut Option<oauth::ErrorStatus>,
    ) -> Result<(), Error> {
        send(&mut self.conn, &AuthStart(mechanism.mechanism())).await?;
        challenge(read_reply(&mut self.conn).await?)?;
        send(&mut self.conn, &oauth::OauthResponse(response)).await?;
        let reply = read_reply(&mut self.conn).await?;
        if reply.code == 334 {
            *status = oauth::decode_error_challenge(reply.first_line());
            send(&mut self.conn, &oauth::OauthErrorReply(mechanism)).await?;
            positive(read_reply(&mut self.conn).await?, "235 to AUTH")?;
            return Ok(());
        }
        positive(reply, "235 to AUTH")?;
        Ok(())
    }

    async fn plain(&mut self, user: &str, password: &SecretString) -> Result<(), Error> {
        let creds = sasl::plain::initial_response(user, password)?;
        let auth = Auth::new(Mechanism::Plain, &creds, command::MAX_COMMAND_LINE);
        if auth.fits_initial_response() {
            send(&mut self.conn, &auth).await?;
        } else {
            send(&mut self.conn, &AuthStart(Mechanism::Plain)).await?;
            challenge(read_reply(&mut self.conn).await?)?;
            send(&mut self.conn, &SecretResponse::encoded(&creds)).await?;
        }
        positive(read_reply(&mut self.conn).await?, "235 to AUTH")?;
        Ok(())
    }

    async fn login(&mut self, user: &str, password: &SecretString) -> Result<(), Error> {
        let user = login::User::new(user)?;
        let password = login::password(password)?;
        send(&mut self.conn, &AuthStart(Mechanism::Login)).await?;
        challenge(read_reply(&mut self.conn).await?)?;
        send(&mut self.conn, &user).await?;
        challenge(read_reply(&mut self.conn).await?)?;
        send(&mut self.conn, &password).await?;
        positive(read_reply(&mut self.conn).await?, "235 to AUTH")?;
        Ok(())
    }

    /// A reply leaves the session greeted (RFC 4954: a failed AUTH may be
    /// followed by other commands), so it is handed back; a broken
    /// connection or a malformed reply ends it.
    fn finish_auth(self, r: Result<(), Error>) -> Result<Authenticated<S>, AuthFailure<S>> {
        match r {
            Ok(()) => Ok(Authenticated { conn: self.conn }),
            Err(error @ (Error::Negative(_) | Error::Argument(_))) => Err(AuthFailure {
                error,
                session: Some(Box::new(self)),
            }),
            Err(error) => Err(AuthFailure {
                error,
                session: None,
            }),
        }
    }

    /// Send QUIT and close without waiting for the answer.
    pub async fn quit_nowait(self) -> Result<(), Error> {
        quit_nowait(self.conn).await
    }
}

/// Logged in. Only QUIT is left.
pub struct Authenticated<S> {
    conn: Conn<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Authenticated<S> {
    /// The connection, for the round-trip monitor's submission
    /// (`roundtrip::submit`), the one place with MAIL, RCPT and DATA. This
    /// type stays without them.
    pub(crate) fn into_conn(self) -> Conn<S> {
        self.conn
    }

    /// Send QUIT and close without waiting for the answer: once AUTH has
    /// succeeded, the reply to QUIT cannot change the outcome.
    pub async fn quit_nowait(self) -> Result<(), Error> {
        quit_nowait(self.conn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A scripted peer: the server side writes all its chunks up front and
    /// closes its half, then records every byte the client sends.
    async fn script(
        server: &'static [&'static [u8]],
    ) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<Vec<u8>>) {
        let (client, mut peer) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(async move {
            for chunk in server {
                if peer.write_all(chunk).await.is_err() {
                    break;
                }
            }
            peer.shutdown().await.ok();
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.ok();
            got
        });
        (client, task)
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    fn name() -> HelloName {
        HelloName::new("probe.test").unwrap()
    }

    #[tokio::test]
    async fn ehlo_plain_quit_writes_exact_bytes() {
        let (stream, server) = script(&[
            b"220 mx.test ESMTP ready\r\n",
            b"250-mx.test Hello\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n",
            b"235 2.7.0 Authentication succeeded\r\n",
        ])
        .await;
        let t = Transcript::masking(vec!["AHByb2JlAHMzY3JldA==".into(), "s3cret".into()]);
        let client = Client::connect(stream, t.clone()).await.unwrap();
        assert_eq!(client.banner().code, 220);
        let session = client.hello(&name()).await.unwrap();
        assert_eq!(session.extensions().mechanisms(), vec!["PLAIN", "LOGIN"]);
        let done = session
            .auth_plain("probe", &secret("s3cret"))
            .await
            .unwrap();
        done.quit_nowait().await.unwrap();
        assert_eq!(
            server.await.unwrap(),
            b"EHLO probe.test\r\nAUTH PLAIN AHByb2JlAHMzY3JldA==\r\nQUIT\r\n"
        );
        let shown: Vec<String> = t.lines().into_iter().map(|l| l.line).collect();
        assert!(shown.contains(&"AUTH PLAIN ***".to_string()), "{shown:?}");
        assert!(!shown
            .iter()
            .any(|l| l.contains("s3cret") || l.contains("AHByb2")));
    }

    #[tokio::test]
    async fn auth_login_steps() {
        let (stream, server) = script(&[
            b"220 mx\r\n",
            b"250-mx\r\n250 AUTH LOGIN\r\n",
            b"334 VXNlcm5hbWU6\r\n",
            b"334 UGFzc3dvcmQ6\r\n",
            b"235 ok\r\n",
        ])
        .await;
        let t = Transcript::masking(vec!["czNjcmV0".into()]);
        let session = Client::connect(stream, t.clone())
            .await
            .unwrap()
            .hello(&name())
            .await
            .unwrap();
        let done = session
            .auth_login("probe", &secret("s3cret"))
            .await
            .unwrap();
        drop(done);
        assert_eq!(
            server.await.unwrap(),
            b"EHLO probe.test\r\nAUTH LOGIN\r\ncHJvYmU=\r\nczNjcmV0\r\n"
        );
        let shown: Vec<String> = t.lines().into_iter().map(|l| l.line).collect();
        assert!(shown.contains(&"***".to_string()), "{shown:?}");
        assert!(!shown.iter().any(|l| l.contains("czNjcmV0")));
    }

    #[tokio::test]
    async fn failed_auth_hands_the_session_back() {
        let (stream, server) = script(&[
            b"220 mx\r\n",
            b"250-mx\r\n250 AUTH PLAIN\r\n",
            b"535 5.7.8 Authentication credentials invalid\r\n",
        ])
        .await;
        let session = Client::connect(stream, Transcript::off())
            .await
            .unwrap()
            .hello(&name())
            .await
            .unwrap();
        let Err(failure) = session.auth_plain("u", &secret("p")).await else {
            panic!("535 must fail the login");
        };
        match &failure.error {
            Error::Negative(r) => assert_eq!(r.code, 535),
            other => panic!("unexpected {other:?}"),
        }
        failure.session.unwrap().quit_nowait().await.unwrap();
        assert!(server.await.unwrap().ends_with(b"QUIT\r\n"));
    }

    #[tokio::test]
    async fn helo_fallback_after_5yz() {
        let (stream, server) = script(&[
            b"220 old.mx\r\n",
            b"502 5.5.2 Command not recognized\r\n",
            b"250 old.mx\r\n",
        ])
        .await;
        let session = Client::connect(stream, Transcript::off())
            .await
            .unwrap()
            .hello(&name())
            .await
            .unwrap();
        assert!(session.extensions().helo);
        assert!(!session.extensions().starttls());
        session.quit_nowait().await.unwrap();
        assert_eq!(
            server.await.unwrap(),
            b"EHLO probe.test\r\nHELO probe.test\r\nQUIT\r\n"
        );
    }

    #[tokio::test]
    async fn transient_ehlo_reply_is_not_retried_with_helo() {
        let (stream, server) = script(&[b"220 mx\r\n", b"421 4.3.2 shutting down\r\n"]).await;
        let client = Client::connect(stream, Transcript::off()).await.unwrap();
        match client.hello(&name()).await {
            Err(Error::Negative(r)) => assert_eq!(r.code, 421),
            other => panic!("unexpected {:?}", other.err()),
        }
        assert_eq!(server.await.unwrap(), b"EHLO probe.test\r\n");
    }

    #[tokio::test]
    async fn banners() {
        let (stream, _s) = script(&[b"554 5.7.1 no service for you\r\n"]).await;
        match Client::connect(stream, Transcript::off()).await {
            Err(Error::Negative(r)) => {
                assert_eq!(r.to_string(), "554 5.7.1 no service for you")
            }
            other => panic!("unexpected {:?}", other.err()),
        }
        let (stream, _s) = script(&[b"250 not a greeting\r\n"]).await;
        assert!(matches!(
            Client::connect(stream, Transcript::off()).await,
            Err(Error::Protocol(_))
        ));
        let (stream, _s) = script(&[b"220-mx.test first\r\n220 second\r\n"]).await;
        let c = Client::connect(stream, Transcript::off()).await.unwrap();
        assert_eq!(c.banner().lines, vec!["mx.test first", "second"]);
        let (stream, _s) = script(&[b"220-mx.test cut"]).await;
        assert!(matches!(
            Client::connect(stream, Transcript::off()).await,
            Err(Error::Closed)
        ));
    }

    #[tokio::test]
    async fn starttls_refused_and_injection() {
        let (stream, _s) = script(&[
            b"220 mx\r\n",
            b"250-mx\r\n250 STARTTLS\r\n",
            b"454 4.7.0 TLS not available due to local problem\r\n",
        ])
        .await;
        let session = Client::connect(stream, Transcript::off())
            .await
            .unwrap()
            .hello(&name())
            .await
            .unwrap();
        match session.starttls().await {
            Ok(StartTlsOutcome::Refused(_, r)) => assert_eq!(r.code, 454),
            _ => panic!("expected a refusal"),
        }

        let (stream, _s) = script(&[
            b"220 mx\r\n",
            b"250-mx\r\n250 STARTTLS\r\n",
            b"220 go ahead\r\n250 injected\r\n",
        ])
        .await;
        let session = Client::connect(stream, Transcript::off())
            .await
            .unwrap()
            .hello(&name())
            .await
            .unwrap();
        assert!(matches!(session.starttls().await, Err(Error::Protocol(_))));
    }

    #[tokio::test]
    async fn endless_multi_line_reply_is_too_large() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        server.write_all(b"220 mx\r\n").await.unwrap();
        for _ in 0..MAX_REPLY_LINES + 10 {
            server.write_all(b"250-X-JUNK\r\n").await.unwrap();
        }
        let c = Client::connect(client, Transcript::off()).await.unwrap();
        assert!(matches!(c.hello(&name()).await, Err(Error::TooLarge)));
    }

    #[tokio::test]
    async fn long_plain_credentials_go_after_a_challenge() {
        let (stream, server) = script(&[
            b"220 mx\r\n",
            b"250-mx\r\n250 AUTH PLAIN\r\n",
            b"334 \r\n",
            b"235 ok\r\n",
        ])
        .await;
        let session = Client::connect(stream, Transcript::off())
            .await
            .unwrap()
            .hello(&name())
            .await
            .unwrap();
        let long = "p".repeat(600);
        drop(session.auth_plain("u", &secret(&long)).await.unwrap());
        let wire = server.await.unwrap();
        assert!(wire.starts_with(b"EHLO probe.test\r\nAUTH PLAIN\r\n"));
        assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 3);
    }
}
