//! The POP3 dialogue over any byte stream.
//!
//! `Client<S>` is the AUTHORIZATION state; only a successful login turns it
//! into a `Session<S>` (TRANSACTION state), so a command in the wrong state
//! does not compile. Neither type knows about time: the caller wraps each
//! call in its own timeout, and drops the connection when one fires.

use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::command::{self, BadArgument, Command};
use super::response::{self, Greeting, MaildropStat, StatusLine};
use super::Capabilities;

/// The longest status or body line accepted. RFC 2449 allows responses of
/// 512 octets; a few KiB leaves room for chatty servers while keeping a
/// hostile one from growing our buffers.
pub const MAX_LINE: usize = 4096;
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

impl From<response::BadStatus> for Error {
    fn from(e: response::BadStatus) -> Self {
        Error::Protocol(e.to_string())
    }
}

/// Which way a transcript line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Client,
    Server,
}

/// One line of the dialogue, secrets already masked, server text sanitized.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WireLine {
    pub direction: Direction,
    pub line: String,
}

/// A shared, append-only record of the dialogue. Shared so that it survives
/// a connection dropped mid-command by a timeout.
#[derive(Debug, Clone, Default)]
pub struct Transcript(Option<Arc<Recording>>);

#[derive(Default)]
struct Recording {
    lines: Mutex<Vec<WireLine>>,
    /// Texts masked in every line as it is recorded, server lines included:
    /// a hostile server may echo what it was sent.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recording")
    }
}

impl Transcript {
    /// A transcript that records.
    pub fn recording() -> Self {
        Transcript(Some(Arc::default()))
    }

    /// A transcript that records and masks these texts (the password and
    /// its encodings) wherever they appear.
    pub fn masking(secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // Longest first, so a form that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Transcript(Some(Arc::new(Recording {
            lines: Mutex::default(),
            secrets,
        })))
    }

    /// A transcript that records nothing (the cheap default).
    pub fn off() -> Self {
        Transcript(None)
    }

    fn push(&self, direction: Direction, mut line: String) {
        if let Some(rec) = &self.0 {
            for secret in &rec.secrets {
                if line.contains(secret.as_str()) {
                    line = line.replace(secret.as_str(), "***");
                }
            }
            if let Ok(mut lines) = rec.lines.lock() {
                lines.push(WireLine { direction, line });
            }
        }
    }

    /// Note something that is not a POP3 line (a TLS handshake, say).
    pub fn note(&self, text: impl Into<String>) {
        self.push(Direction::Client, format!("[{}]", text.into()));
    }

    pub fn lines(&self) -> Vec<WireLine> {
        match &self.0 {
            Some(rec) => rec.lines.lock().map(|l| l.clone()).unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

/// The outcome of an OAuth2 login, with the status from the server's error
/// challenge when it sent one.
pub struct OauthLogin<S> {
    pub result: Result<Session<S>, LoginFailure<S>>,
    pub status: Option<crate::sasl::oauth::ErrorStatus>,
}

/// The text after `+` of a SASL continuation line (`+` alone: empty).
fn continuation(line: &[u8]) -> Option<&[u8]> {
    match line {
        [b'+'] => Some(&[]),
        [b'+', b' ', rest @ ..] => Some(rest),
        _ => None,
    }
}

/// The buffered stream plus the transcript; reads are capped per line.
/// Shared with the SMTP client, whose lines are read the same way.
pub(crate) struct Conn<S> {
    pub(crate) io: BufReader<S>,
    pub(crate) transcript: Transcript,
    line: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(crate) fn new(stream: S, transcript: Transcript) -> Self {
        Conn {
            io: BufReader::with_capacity(MAX_LINE, stream),
            transcript,
            line: Vec::with_capacity(128),
        }
    }

    pub(crate) async fn send<C: Command>(&mut self, cmd: &C) -> Result<(), Error> {
        self.transcript.push(Direction::Client, cmd.masked());
        self.io
            .get_mut()
            .write_all(cmd.to_string().as_bytes())
            .await?;
        self.io.get_mut().flush().await?;
        Ok(())
    }

    /// Read one line without its CR LF into `self.line`. Fails with
    /// `TooLarge` as soon as the line passes `MAX_LINE`, without reading the
    /// rest of it.
    pub(crate) async fn read_line(&mut self) -> Result<&[u8], Error> {
        self.line.clear();
        loop {
            let available = self.io.fill_buf().await?;
            if available.is_empty() {
                return Err(Error::Closed);
            }
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            if self.line.len() + chunk.len() > MAX_LINE + 2 {
                return Err(Error::TooLarge);
            }
            self.line.extend_from_slice(chunk);
            let used = chunk.len();
            self.io.consume(used);
            if done {
                break;
            }
        }
        // Accept a bare LF as well as CR LF: lenient in what we read.
        self.line.pop();
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if self.line.len() > MAX_LINE {
            return Err(Error::TooLarge);
        }
        self.transcript
            .push(Direction::Server, response::sanitize(&self.line));
        Ok(&self.line)
    }

    async fn read_status(&mut self) -> Result<StatusLine, Error> {
        let line = self.read_line().await?;
        Ok(response::parse_status(line)?)
    }

    /// A status line that must be `+OK`; `-ERR` becomes `Error::Negative`.
    async fn expect_ok(&mut self) -> Result<StatusLine, Error> {
        let status = self.read_status().await?;
        if status.is_ok() {
            Ok(status)
        } else {
            Err(Error::Negative(status))
        }
    }

    /// The body of a multi-line reply, dot-unstuffed, up to `MAX_LINES`.
    async fn read_body(&mut self) -> Result<Vec<Vec<u8>>, Error> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await?;
            let Some(content) = response::unstuff(line) else {
                return Ok(lines);
            };
            if lines.len() == MAX_LINES {
                return Err(Error::TooLarge);
            }
            lines.push(content.to_vec());
        }
    }

    async fn quit_nowait(mut self) -> Result<(), Error> {
        self.send(&command::Quit).await?;
        // FIN (and TLS close_notify) after QUIT: the server reads QUIT
        // first, so it ends the session cleanly.
        self.io.get_mut().shutdown().await?;
        Ok(())
    }

    async fn capa(&mut self) -> Result<Capabilities, Error> {
        self.send(&command::Capa).await?;
        self.expect_ok().await?;
        let body = self.read_body().await?;
        Ok(Capabilities::from_lines(body.iter().map(Vec::as_slice)))
    }
}

/// What STLS led to.
pub enum StlsOutcome<S> {
    /// `+OK`: the raw stream, ready for the TLS handshake, and the greeting.
    Ready(S, Greeting),
    /// `-ERR`: still in plaintext AUTHORIZATION state.
    Refused(Client<S>, StatusLine),
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
        self.conn.capa().await
    }

    /// STLS. On `+OK`, hands back the raw stream for the TLS handshake.
    ///
    /// Bytes already buffered after the `+OK` were sent before TLS began and
    /// would be read as if they came over TLS (the STARTTLS injection flaw,
    /// CVE-2011-0411 and kin), so they make this fail instead.
    pub async fn stls(mut self) -> Result<StlsOutcome<S>, Error> {
        self.conn.send(&command::Stls).await?;
        let status = self.conn.read_status().await?;
        if !status.is_ok() {
            return Ok(StlsOutcome::Refused(self, status));
        }
        if !self.conn.io.buffer().is_empty() {
            return Err(Error::Protocol(
                "server sent data after the STLS reply, before TLS began".into(),
            ));
        }
        Ok(StlsOutcome::Ready(self.conn.io.into_inner(), self.greeting))
    }

    /// The stream under the dialogue, to ask whether it is encrypted.
    pub fn stream_ref(&self) -> &S {
        self.conn.io.get_ref()
    }

    /// The transcript this client records into.
    pub fn transcript(&self) -> &Transcript {
        &self.conn.transcript
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
        response: &crate::sasl::oauth::ClientResponse,
        mechanism: crate::sasl::oauth::OauthMechanism,
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
        mechanism: crate::sasl::oauth::OauthMechanism,
        response: &crate::sasl::oauth::ClientResponse,
        status: &mut Option<crate::sasl::oauth::ErrorStatus>,
    ) -> Result<(), Error> {
        self.conn.send(&command::AuthStart(mechanism)).await?;
        let line = self.conn.read_line().await?.to_vec();
        if continuation(&line).is_none() {
            return Err(match response::parse_status(&line) {
                Ok(s) if !s.is_ok() => Error::Negative(s),
                _ => Error::Protocol("expected a SASL continuation (+)".into()),
            });
        }
        self.conn.send(&command::OauthResponse(response)).await?;
        let line = self.conn.read_line().await?.to_vec();
        if let Some(challenge) = continuation(&line) {
            *status =
                crate::sasl::oauth::decode_error_challenge(&String::from_utf8_lossy(challenge));
            self.conn.send(&command::OauthErrorReply(mechanism)).await?;
            self.conn.expect_ok().await?;
            // A server that accepts after its own error challenge is
            // broken; take the +OK it sent.
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
        self.conn.expect_ok().await?;
        self.conn.send(&pass_cmd).await?;
        self.conn.expect_ok().await?;
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
        self.conn.expect_ok().await?;
        Ok(())
    }

    async fn plain(&mut self, user: &str, password: &SecretString) -> Result<(), Error> {
        let creds = command::plain_credentials(user, password)?;
        let auth = command::AuthPlain::new(&creds);
        if auth.fits_initial_response() {
            self.conn.send(&auth).await?;
        } else {
            self.conn.send(&command::AuthPlainStart).await?;
            let line = self.conn.read_line().await?;
            if !line.starts_with(b"+ ") && line != b"+" {
                return Err(match response::parse_status(line) {
                    Ok(status) if !status.is_ok() => Error::Negative(status),
                    _ => Error::Protocol("expected a SASL continuation (+)".into()),
                });
            }
            self.conn.send(&command::SaslResponse::new(&creds)).await?;
        }
        self.conn.expect_ok().await?;
        Ok(())
    }

    /// QUIT without logging in.
    pub async fn quit(mut self) -> Result<StatusLine, Error> {
        self.conn.send(&command::Quit).await?;
        self.conn.expect_ok().await
    }

    /// Send QUIT and close without waiting for the answer.
    pub async fn quit_nowait(self) -> Result<(), Error> {
        self.conn.quit_nowait().await
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
        let status = self.conn.expect_ok().await?;
        response::parse_stat(&status.text)
            .ok_or_else(|| Error::Protocol(format!("unreadable STAT reply {:?}", status.text)))
    }

    /// CAPA in the TRANSACTION state (RFC 2449 allows it; some servers
    /// announce different capabilities after login).
    pub async fn capa(&mut self) -> Result<Capabilities, Error> {
        self.conn.capa().await
    }

    /// QUIT. With no DELE ever sent, the UPDATE state removes nothing.
    pub async fn quit(mut self) -> Result<StatusLine, Error> {
        self.conn.send(&command::Quit).await?;
        self.conn.expect_ok().await
    }

    /// Send QUIT and close without waiting for the answer: once STAT has
    /// answered, the reply to QUIT cannot change the outcome, and waiting
    /// for it costs a round trip.
    pub async fn quit_nowait(self) -> Result<(), Error> {
        self.conn.quit_nowait().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

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
