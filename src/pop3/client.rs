//! The POP3 dialogue over any byte stream.
//!
//! `Client<S>` is the AUTHORIZATION state; only a successful login turns it
//! into a `Session<S>` (TRANSACTION state), so a command in the wrong state
//! does not compile. Neither type knows about time: the caller wraps each
//! call in its own timeout, and drops the connection when one fires.

use secrecy::SecretString;
use tokio::io::{AsyncRead, AsyncWrite};

use super::command::{self, MAX_AUTH_LINE};
use super::response::{self, Greeting, MaildropStat, StatusLine};
use crate::sasl::{self, oauth, Auth, AuthStart, Mechanism, SecretResponse};
use crate::wire::{self, BadArgument, Capabilities, Conn, Transcript, MAX_LINE};

/// The most lines a multi-line reply (CAPA) may have.
pub const MAX_LINES: usize = 256;

/// Why a POP3 exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed by the server")]
    Closed,
    #[error("response too large: a line over {MAX_LINE} bytes or a reply over {MAX_LINES} lines")]
    TooLarge,
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server answered `-ERR`; the line says why.
    #[error("server replied: {0}")]
    Negative(StatusLine),
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

impl From<response::BadStatus> for Error {
    fn from(e: response::BadStatus) -> Self {
        Error::Protocol(e.to_string())
    }
}

async fn read_status<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
) -> Result<StatusLine, Error> {
    let line = conn.read_line().await?;
    Ok(response::parse_status(line)?)
}

/// A status line that must be `+OK`; `-ERR` becomes `Error::Negative`.
async fn expect_ok<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
) -> Result<StatusLine, Error> {
    let status = read_status(conn).await?;
    if status.is_ok() {
        Ok(status)
    } else {
        Err(Error::Negative(status))
    }
}

/// The body of a multi-line reply, dot-unstuffed, up to `MAX_LINES`.
async fn read_body<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
) -> Result<Vec<Vec<u8>>, Error> {
    let mut lines = Vec::new();
    loop {
        let line = conn.read_line().await?;
        let Some(content) = response::unstuff(line) else {
            return Ok(lines);
        };
        if lines.len() == MAX_LINES {
            return Err(Error::TooLarge);
        }
        lines.push(content.to_vec());
    }
}

async fn capa<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
) -> Result<Capabilities, Error> {
    conn.send(&command::Capa).await?;
    expect_ok(conn).await?;
    let body = read_body(conn).await?;
    Ok(Capabilities::from_lines(body.iter().map(Vec::as_slice)))
}

async fn quit<S: AsyncRead + AsyncWrite + Unpin>(mut conn: Conn<S>) -> Result<StatusLine, Error> {
    conn.send(&command::Quit).await?;
    expect_ok(&mut conn).await
}

/// What STLS led to.
pub enum StlsOutcome<S> {
    /// `+OK`: the raw stream, ready for the TLS handshake, and the greeting.
    Ready(S, Greeting),
    /// `-ERR`: still in plaintext AUTHORIZATION state.
    Refused(Client<S>, StatusLine),
}

/// The outcome of an OAuth2 login, with the status from the server's error
/// challenge when it sent one.
pub struct OauthLogin<S> {
    pub result: Result<Session<S>, LoginFailure<S>>,
    pub status: Option<oauth::ErrorStatus>,
}

/// The text after `+` of a SASL continuation line (`+` alone: empty).
fn continuation(line: &[u8]) -> Option<&[u8]> {
    match line {
        [b'+'] => Some(&[]),
        [b'+', b' ', rest @ ..] => Some(rest),
        _ => None,
    }
}

/// AUTHORIZATION state.
pub struct Client<S> {
    conn: Conn<S>,
    greeting: Greeting,
}

/// TRANSACTION state: reached only through a successful login.
pub struct Session<S> {
    conn: Conn<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Read the greeting. A `-ERR` greeting is `Error::Negative`.
    pub async fn connect(stream: S, transcript: Transcript) -> Result<Client<S>, Error> {
        let mut conn = Conn::new(stream, transcript);
        let greeting = response::parse_greeting(conn.read_line().await?)?;
        if !greeting.line.is_ok() {
            return Err(Error::Negative(greeting.line));
        }
        Ok(Client { conn, greeting })
    }

    /// Continue on a stream that has just been secured after STLS. RFC 2595
    /// says the server sends no new greeting, so the old one stays.
    pub fn resume(stream: S, greeting: Greeting, transcript: Transcript) -> Client<S> {
        Client {
            conn: Conn::new(stream, transcript),
            greeting,
        }
    }

    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// CAPA. A server without CAPA answers `-ERR`: that is
    /// `Error::Negative`, and callers usually treat it as "no capabilities".
    pub async fn capa(&mut self) -> Result<Capabilities, Error> {
        capa(&mut self.conn).await
    }

    /// STLS. On `+OK`, hands back the raw stream for the TLS handshake.
    ///
    /// Bytes already buffered after the `+OK` were sent before TLS began and
    /// would be read as if they came over TLS (the STARTTLS injection flaw,
    /// CVE-2011-0411 and kin), so they make this fail instead.
    pub async fn stls(mut self) -> Result<StlsOutcome<S>, Error> {
        self.conn.send(&command::Stls).await?;
        let status = read_status(&mut self.conn).await?;
        if !status.is_ok() {
            return Ok(StlsOutcome::Refused(self, status));
        }
        if self.conn.has_buffered() {
            return Err(Error::Protocol(
                "server sent data after the STLS reply, before TLS began".into(),
            ));
        }
        Ok(StlsOutcome::Ready(self.conn.into_stream(), self.greeting))
    }

    /// The stream under the dialogue, to ask whether it is encrypted.
    pub fn stream_ref(&self) -> &S {
        self.conn.stream_ref()
    }

    /// The transcript this client records into.
    pub fn transcript(&self) -> &Transcript {
        self.conn.transcript()
    }

    /// USER then PASS.
    pub async fn login_user(
        mut self,
        user: &str,
        password: &SecretString,
    ) -> Result<Session<S>, LoginFailure<S>> {
        let r = self.user_pass(user, password).await;
        self.finish_login(r)
    }

    /// APOP with the greeting's timestamp; fails with a protocol error if
    /// the greeting had none.
    pub async fn login_apop(
        mut self,
        user: &str,
        password: &SecretString,
    ) -> Result<Session<S>, LoginFailure<S>> {
        let r = self.apop(user, password).await;
        self.finish_login(r)
    }

    /// SASL PLAIN, with the initial response on the AUTH line when it fits
    /// (one round trip) and as a continuation when it does not.
    pub async fn login_plain(
        mut self,
        user: &str,
        password: &SecretString,
    ) -> Result<Session<S>, LoginFailure<S>> {
        let r = self.plain(user, password).await;
        self.finish_login(r)
    }

    /// XOAUTH2 or OAUTHBEARER in the two-line form: `AUTH <mech>`, wait for
    /// `+`, send the client response. A server that refuses the token may
    /// first send an error challenge (`+ <base64 JSON>`): it is answered as
    /// the mechanism's spec says, and its decoded status handed back with
    /// the `-ERR` that follows.
    pub async fn login_oauth(
        mut self,
        response: &oauth::ClientResponse,
        mechanism: oauth::OauthMechanism,
    ) -> OauthLogin<S> {
        let mut status = None;
        let r = self.oauth(mechanism, response, &mut status).await;
        OauthLogin {
            result: self.finish_login(r),
            status,
        }
    }

    async fn oauth(
        &mut self,
        mechanism: oauth::OauthMechanism,
        response: &oauth::ClientResponse,
        status: &mut Option<oauth::ErrorStatus>,
    ) -> Result<(), Error> {
        self.conn.send(&AuthStart(mechanism.mechanism())).await?;
        let line = self.conn.read_line().await?.to_vec();
        if continuation(&line).is_none() {
            return Err(match response::parse_status(&line) {
                Ok(s) if !s.is_ok() => Error::Negative(s),
                _ => Error::Protocol("expected a SASL continuation (+)".into()),
            });
        }
        self.conn.send(&oauth::OauthResponse(response)).await?;
        let line = self.conn.read_line().await?.to_vec();
        if let Some(challenge) = continuation(&line) {
            *status = oauth::decode_error_challenge(&String::from_utf8_lossy(challenge));
            self.conn.send(&oauth::OauthErrorReply(mechanism)).await?;
            // The failure reply; a server that accepts after its own error
            // challenge is odd, but its +OK is what counts.
            expect_ok(&mut self.conn).await?;
            return Ok(());
        }
        match response::parse_status(&line)? {
            s if s.is_ok() => Ok(()),
            s => Err(Error::Negative(s)),
        }
    }

    /// A `-ERR` leaves the session in AUTHORIZATION state, so the client is
    /// handed back (to ask CAPA why, say); any other error ends it.
    fn finish_login(self, r: Result<(), Error>) -> Result<Session<S>, LoginFailure<S>> {
        match r {
            Ok(()) => Ok(Session { conn: self.conn }),
            Err(error @ Error::Negative(_)) => Err(LoginFailure {
                error,
                client: Some(Box::new(self)),
            }),
            Err(error) => Err(LoginFailure {
                error,
                client: None,
            }),
        }
    }

    async fn user_pass(&mut self, user: &str, password: &SecretString) -> Result<(), Error> {
        let user_cmd = command::User::new(user)?;
        let pass_cmd = command::Pass::new(password)?;
        self.conn.send(&user_cmd).await?;
        expect_ok(&mut self.conn).await?;
        self.conn.send(&pass_cmd).await?;
        expect_ok(&mut self.conn).await?;
        Ok(())
    }

    async fn apop(&mut self, user: &str, password: &SecretString) -> Result<(), Error> {
        let Some(timestamp) = self.greeting.apop_timestamp.as_deref() else {
            return Err(Error::Protocol(
                "APOP requested but the greeting has no timestamp".into(),
            ));
        };
        let cmd = command::Apop::new(user, timestamp, password)?;
        self.conn.send(&cmd).await?;
        expect_ok(&mut self.conn).await?;
        Ok(())
    }

    async fn plain(&mut self, user: &str, password: &SecretString) -> Result<(), Error> {
        let creds = sasl::plain::initial_response(user, password)?;
        let auth = Auth::new(Mechanism::Plain, &creds, MAX_AUTH_LINE);
        if auth.fits_initial_response() {
            self.conn.send(&auth).await?;
        } else {
            self.conn.send(&AuthStart(Mechanism::Plain)).await?;
            let line = self.conn.read_line().await?;
            if !line.starts_with(b"+ ") && line != b"+" {
                return Err(match response::parse_status(line) {
                    Ok(status) if !status.is_ok() => Error::Negative(status),
                    _ => Error::Protocol("expected a SASL continuation (+)".into()),
                });
            }
            self.conn.send(&SecretResponse::encoded(&creds)).await?;
        }
        expect_ok(&mut self.conn).await?;
        Ok(())
    }

    /// QUIT without logging in.
    pub async fn quit(self) -> Result<StatusLine, Error> {
        quit(self.conn).await
    }

    /// Send QUIT and close without waiting for the answer.
    pub async fn quit_nowait(self) -> Result<(), Error> {
        Ok(self.conn.send_and_close(&command::Quit).await?)
    }
}

/// A login the server refused, or that broke.
pub struct LoginFailure<S> {
    pub error: Error,
    /// Still in AUTHORIZATION state, when the server answered `-ERR`.
    pub client: Option<Box<Client<S>>>,
}

impl<S> std::fmt::Debug for LoginFailure<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFailure")
            .field("error", &self.error)
            .field("client", &self.client.as_ref().map(|_| "Client"))
            .finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// STAT: message count and size. Reads nothing and changes nothing.
    pub async fn stat(&mut self) -> Result<MaildropStat, Error> {
        self.conn.send(&command::Stat).await?;
        let status = expect_ok(&mut self.conn).await?;
        response::parse_stat(&status.text)
            .ok_or_else(|| Error::Protocol(format!("unreadable STAT reply {:?}", status.text)))
    }

    /// CAPA in the TRANSACTION state (RFC 2449 allows it; some servers
    /// announce different capabilities after login).
    pub async fn capa(&mut self) -> Result<Capabilities, Error> {
        capa(&mut self.conn).await
    }

    /// The connection, for the round-trip monitor's mailbox session
    /// (`roundtrip::mailbox`), the one place with UIDL, TOP and DELE. This
    /// type stays without them.
    pub(crate) fn into_conn(self) -> Conn<S> {
        self.conn
    }

    /// QUIT. With no DELE ever sent, the UPDATE state removes nothing.
    pub async fn quit(self) -> Result<StatusLine, Error> {
        quit(self.conn).await
    }

    /// Send QUIT and close without waiting for the answer: once STAT has
    /// answered, the reply to QUIT cannot change the outcome, and waiting
    /// for it costs a round trip.
    pub async fn quit_nowait(self) -> Result<(), Error> {
        Ok(self.conn.send_and_close(&command::Quit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A scripted peer: `tokio::io::duplex` with the server side driven by
    /// a task that answers each expected command and records what it got.
    async fn script(
        server_lines: &'static [&'static [u8]],
    ) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<Vec<u8>>) {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(async move {
            for chunk in server_lines {
                if server.write_all(chunk).await.is_err() {
                    break;
                }
            }
            server.shutdown().await.ok();
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.ok();
            got
        });
        (client, task)
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[tokio::test]
    async fn full_user_pass_session_writes_exact_bytes() {
        let (stream, server) = script(&[
            b"+OK ready\r\n",
            b"+OK\r\n",
            b"+OK logged in\r\n",
            b"+OK 2 320\r\n",
            b"+OK bye\r\n",
        ])
        .await;
        let t = Transcript::recording();
        let client = Client::connect(stream, t.clone()).await.unwrap();
        let mut session = client.login_user("bob", &secret("s3cret")).await.unwrap();
        let stat = session.stat().await.unwrap();
        assert_eq!(stat.messages, 2);
        assert_eq!(stat.octets, 320);
        session.quit().await.unwrap();
        let wire = server.await.unwrap();
        assert_eq!(wire, b"USER bob\r\nPASS s3cret\r\nSTAT\r\nQUIT\r\n");
        let shown: Vec<String> = t.lines().into_iter().map(|l| l.line).collect();
        assert!(shown.contains(&"PASS ***".to_string()));
        assert!(!shown.iter().any(|l| l.contains("s3cret")));
    }

    /// Found by the session fuzz target: a server that sends the password
    /// back had it recorded verbatim.
    #[tokio::test]
    async fn an_echoed_password_is_masked_in_the_transcript() {
        let (stream, _server) = script(&[
            b"+OK hi\r\n",
            b"+OK\r\n",
            b"-ERR [AUTH] got PASS s3cret\r\n",
        ])
        .await;
        let t = Transcript::masking(vec!["s3cret".into()]);
        let client = Client::connect(stream, t.clone()).await.unwrap();
        assert!(client.login_user("bob", &secret("s3cret")).await.is_err());
        let shown: Vec<String> = t.lines().into_iter().map(|l| l.line).collect();
        assert!(
            shown.contains(&"-ERR [AUTH] got PASS ***".to_string()),
            "{shown:?}"
        );
        assert!(!shown.iter().any(|l| l.contains("s3cret")));
    }

    #[tokio::test]
    async fn capa_body_is_parsed_and_unstuffed() {
        let (stream, _server) = script(&[
            b"+OK hi\r\n",
            b"+OK list follows\r\nSTLS\r\nSASL PLAIN\r\n..odd\r\n.\r\n",
        ])
        .await;
        let mut client = Client::connect(stream, Transcript::off()).await.unwrap();
        let caps = client.capa().await.unwrap();
        assert!(caps.stls);
        assert_eq!(caps.sasl, vec!["PLAIN"]);
        assert_eq!(caps.raw.last().unwrap(), ".odd");
    }

    #[tokio::test]
    async fn oversize_line_fails_without_reading_on() {
        static LONG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let long = LONG.get_or_init(|| vec![b'x'; MAX_LINE * 4]);
        let (client, mut server) = tokio::io::duplex(MAX_LINE * 8);
        server.write_all(b"+OK ").await.unwrap();
        server.write_all(long).await.unwrap();
        // No newline ever arrives: the reader must give up on size alone.
        let r = Client::connect(client, Transcript::off()).await;
        assert!(matches!(r, Err(Error::TooLarge)));
    }

    #[tokio::test]
    async fn line_exactly_at_the_cap_is_accepted() {
        let (client, mut server) = tokio::io::duplex(MAX_LINE * 2);
        let mut line = b"+OK ".to_vec();
        line.resize(MAX_LINE, b'a');
        line.extend_from_slice(b"\r\n");
        server.write_all(&line).await.unwrap();
        let c = Client::connect(client, Transcript::off()).await.unwrap();
        assert_eq!(c.greeting().line.text.len(), MAX_LINE - 4);
    }

    #[tokio::test]
    async fn endless_capa_fails_as_too_large() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        server.write_all(b"+OK\r\n+OK\r\n").await.unwrap();
        for _ in 0..(MAX_LINES + 10) {
            server.write_all(b"X-JUNK\r\n").await.unwrap();
        }
        let mut c = Client::connect(client, Transcript::off()).await.unwrap();
        assert!(matches!(c.capa().await, Err(Error::TooLarge)));
    }

    #[tokio::test]
    async fn negative_greeting_and_eof() {
        let (stream, _s) = script(&[b"-ERR [SYS/TEMP] busy\r\n"]).await;
        match Client::connect(stream, Transcript::off()).await {
            Err(Error::Negative(s)) => assert_eq!(s.code, Some(response::ResponseCode::SysTemp)),
            other => panic!("unexpected {:?}", other.err()),
        }
        let (stream, _s) = script(&[]).await;
        assert!(matches!(
            Client::connect(stream, Transcript::off()).await,
            Err(Error::Closed)
        ));
    }

    #[tokio::test]
    async fn data_after_stls_reply_is_refused() {
        let (stream, _s) = script(&[b"+OK hi\r\n", b"+OK begin TLS\r\n+OK injected\r\n"]).await;
        let client = Client::connect(stream, Transcript::off()).await.unwrap();
        assert!(matches!(client.stls().await, Err(Error::Protocol(_))));
        let (stream, _s) = script(&[b"+OK hi\r\n", b"-ERR not now\r\n"]).await;
        let client = Client::connect(stream, Transcript::off()).await.unwrap();
        match client.stls().await {
            Ok(StlsOutcome::Refused(_, line)) => assert_eq!(line.text, "not now"),
            _ => panic!("expected a refusal"),
        }
    }

    #[tokio::test]
    async fn apop_and_plain_wire_bytes() {
        let (stream, server) = script(&[
            b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n",
            b"+OK maildrop has 1 message (369 octets)\r\n",
            b"+OK bye\r\n",
        ])
        .await;
        let c = Client::connect(stream, Transcript::off()).await.unwrap();
        let s = c.login_apop("mrose", &secret("tanstaaf")).await.unwrap();
        s.quit().await.unwrap();
        assert_eq!(
            server.await.unwrap(),
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\nQUIT\r\n"
        );

        let (stream, server) = script(&[b"+OK hi\r\n", b"+OK\r\n"]).await;
        let c = Client::connect(stream, Transcript::off()).await.unwrap();
        c.login_plain("tim", &secret("tanstaaftanstaaf"))
            .await
            .unwrap();
        assert_eq!(
            server.await.unwrap(),
            b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
        );
    }

    #[tokio::test]
    async fn plain_with_continuation_for_long_credentials() {
        let (stream, server) = script(&[b"+OK hi\r\n", b"+ \r\n", b"+OK\r\n"]).await;
        let c = Client::connect(stream, Transcript::off()).await.unwrap();
        let long = "p".repeat(300);
        c.login_plain("u", &secret(&long)).await.unwrap();
        let wire = server.await.unwrap();
        assert!(wire.starts_with(b"AUTH PLAIN\r\n"));
        assert!(wire.ends_with(b"\r\n"));
        assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 2);
    }
}
