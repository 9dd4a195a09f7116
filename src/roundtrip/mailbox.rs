//! The one POP3 session that can remove mail: the round-trip monitor's.
//!
//! This module is private to `roundtrip`, so nothing else can name
//! [`DeletingSession`], [`TopHeaders`] or the UIDL, TOP and DELE commands;
//! `pop3::Session` has none of them. Within the module the rule is kept by
//! types as well: [`DeletingSession::dele`] takes a [`Verified`] by value,
//! which only `token::Verifier::verify_message` makes, from the headers this
//! session read with `TOP n 0` for that message. The proof also names the
//! session it was made in, because message numbers mean nothing in another
//! one.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::pop3::response::{self, StatusLine};
use crate::pop3::{self, Error, Session};
use crate::wire::{Command, Conn, ServerText};

use super::token::Verified;

/// The most messages listed; a larger maildrop is not a probe mailbox.
pub(super) const MAX_LISTED: usize = 10_000;
/// Header lines kept per message. The token header is near the top (the
/// probe writes it before the body and transports prepend above it), so a
/// cap loses nothing of ours; lines past it are read and dropped, keeping
/// the dialogue in step.
const MAX_HEADER_LINES: usize = 400;

/// `UIDL` with no argument (RFC 1939 section 7): every message's unique id.
struct Uidl;

impl fmt::Display for Uidl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UIDL\r\n")
    }
}

impl Command for Uidl {}

/// `TOP msg 0`: the headers of one message, no body line.
struct TopZero(u32);

impl fmt::Display for TopZero {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TOP {} 0\r\n", self.0)
    }
}

impl Command for TopZero {}

/// `DELE msg`. Made only from a proof, inside [`DeletingSession::dele`].
struct Dele(u32);

impl fmt::Display for Dele {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DELE {}\r\n", self.0)
    }
}

impl Command for Dele {}

/// Numbers the sessions of this process, so a proof made in one cannot
/// delete in another.
static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// One message's header block as `TOP n 0` returned it. Made only here.
pub(super) struct TopHeaders {
    session: u64,
    msg: u32,
    uidl: String,
    /// Unfolded header fields, raw bytes made text (lossy); never logged.
    fields: Vec<String>,
}

impl TopHeaders {
    pub(super) fn session(&self) -> u64 {
        self.session
    }

    pub(super) fn msg(&self) -> u32 {
        self.msg
    }

    pub(super) fn uidl(&self) -> &str {
        &self.uidl
    }

    /// The values of every field called `name` (case-insensitive), in order.
    pub(super) fn values(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter_map(|f| {
                let (n, v) = f.split_once(':')?;
                n.trim_end().eq_ignore_ascii_case(name).then_some(v.trim())
            })
            .collect()
    }

    /// The first value of `name`, if any.
    pub(super) fn first(&self, name: &str) -> Option<&str> {
        self.values(name).into_iter().next()
    }
}

/// A logged-in POP3 session that can list, read headers and delete.
pub(super) struct DeletingSession<S> {
    conn: Conn<S>,
    id: u64,
    listing: HashMap<u32, String>,
    deleted: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> DeletingSession<S> {
    /// Take over a logged-in session.
    pub(super) fn open(session: Session<S>) -> DeletingSession<S> {
        DeletingSession {
            conn: session.into_conn(),
            id: SESSIONS.fetch_add(1, Ordering::Relaxed),
            listing: HashMap::new(),
            deleted: 0,
        }
    }

    async fn expect_ok(&mut self) -> Result<StatusLine, Error> {
        let line = self.conn.read_line().await?;
        let status = response::parse_status(line)?;
        if status.is_ok() {
            Ok(status)
        } else {
            Err(Error::Negative(status))
        }
    }

    /// `UIDL`: (message number, unique id) for every message, in the
    /// server's order. Lines that are not `n id` fail the session: a server
    /// that cannot list its messages cannot be trusted with DELE.
    pub(super) async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Error> {
        self.conn.send(&Uidl).await?;
        self.expect_ok().await?;
        let mut out = Vec::new();
        loop {
            let line = self.conn.read_line().await?;
            let Some(content) = response::unstuff(line) else {
                break;
            };
            if out.len() == MAX_LISTED {
                return Err(Error::TooLarge);
            }
            let text = std::str::from_utf8(content)
                .map_err(|_| Error::Protocol("UIDL line is not text".into()))?;
            let mut parts = text.split_ascii_whitespace();
            let (Some(n), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(Error::Protocol(format!(
                    "unreadable UIDL line {:?}",
                    ServerText::from_masked(content)
                )));
            };
            // RFC 1939: 1 to 70 characters in 0x21..0x7E.
            let id_ok = id.len() <= 70 && id.bytes().all(|b| (0x21..=0x7e).contains(&b));
            let n: u32 = n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                // Server text reaches the result only as a `ServerText` (the
                // connection masked the line as it read it).
                Error::Protocol(format!(
                    "bad message number in UIDL line {:?}",
                    ServerText::from_masked(content)
                ))
            })?;
            if !id_ok {
                return Err(Error::Protocol(format!(
                    "bad unique id in UIDL line {:?}",
                    ServerText::from_masked(content)
                )));
            }
            out.push((n, id.to_string()));
        }
        self.listing = out.iter().cloned().collect();
        Ok(out)
    }

    /// `TOP msg 0` for a message the last `UIDL` listed.
    pub(super) async fn top_headers(&mut self, msg: u32) -> Result<TopHeaders, Error> {
        let uidl = self
            .listing
            .get(&msg)
            .cloned()
            .ok_or_else(|| Error::Protocol(format!("message {msg} was not listed by UIDL")))?;
        self.conn.send(&TopZero(msg)).await?;
        self.expect_ok().await?;
        let mut fields: Vec<String> = Vec::new();
        let mut in_headers = true;
        loop {
            let line = self.conn.read_line().await?;
            let Some(content) = response::unstuff(line) else {
                break;
            };
            // `TOP n 0` still sends the blank line after the headers; some
            // servers send a body line anyway. Neither is a header.
            if content.is_empty() {
                in_headers = false;
            }
            if !in_headers {
                continue;
            }
            let text = String::from_utf8_lossy(content);
            if text.starts_with([' ', '\t']) {
                if let Some(last) = fields.last_mut() {
                    last.push(' ');
                    last.push_str(text.trim());
                }
            } else if fields.len() < MAX_HEADER_LINES {
                fields.push(text.into_owned());
            }
        }
        Ok(TopHeaders {
            session: self.id,
            msg,
            uidl,
            fields,
        })
    }

    /// `DELE` the message a proof is for. The proof is consumed: one
    /// verification, one deletion.
    pub(super) async fn dele(&mut self, proof: Verified) -> Result<(), Error> {
        let (session, msg) = proof.target();
        if session != self.id {
            return Err(Error::Protocol(
                "a token verified in another POP3 session cannot delete here".into(),
            ));
        }
        self.conn.send(&Dele(msg)).await?;
        self.expect_ok().await?;
        self.deleted += 1;
        Ok(())
    }

    /// Messages marked for deletion so far.
    pub(super) fn deleted(&self) -> usize {
        self.deleted
    }

    /// `QUIT`, waiting for its answer: the server removes the marked
    /// messages only in the UPDATE state, and `+OK` says it did.
    pub(super) async fn quit(mut self) -> Result<StatusLine, Error> {
        self.conn.send(&pop3::command::Quit).await?;
        self.expect_ok().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pop3::Client;
    use crate::roundtrip::token::{SigningKey, Token, Verifier};
    use crate::wire::Transcript;
    use secrecy::SecretString;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn verifier() -> Verifier {
        Verifier::new(
            "rt",
            SigningKey::new(SecretString::from("0123456789abcdef!".to_string())).unwrap(),
        )
    }

    /// A scripted server: answers each command line with the next canned
    /// reply, and hands back every line it was sent.
    async fn serve(mut server: tokio::io::DuplexStream, replies: Vec<String>) -> Vec<String> {
        let mut got = Vec::new();
        server.write_all(b"+OK ready\r\n").await.unwrap();
        let mut buf = Vec::new();
        let mut replies = replies.into_iter();
        loop {
            let mut byte = [0u8; 1];
            match server.read(&mut byte).await {
                Ok(0) | Err(_) => return got,
                Ok(_) => {}
            }
            buf.push(byte[0]);
            if buf.ends_with(b"\r\n") {
                let line = String::from_utf8(buf.clone()).unwrap();
                got.push(line.trim_end().to_string());
                buf.clear();
                match replies.next() {
                    Some(r) => server.write_all(r.as_bytes()).await.unwrap(),
                    None => return got,
                }
            }
        }
    }

    async fn logged_in(
        replies: Vec<String>,
    ) -> (
        DeletingSession<tokio::io::DuplexStream>,
        tokio::task::JoinHandle<Vec<String>>,
    ) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut all = vec!["+OK\r\n".to_string(), "+OK logged in\r\n".to_string()];
        all.extend(replies);
        let task = tokio::spawn(serve(server, all));
        let c = Client::connect(client, Transcript::off()).await.unwrap();
        let session = c
            // Long enough not to occur in the scripted headers: every line
            // read is masked for the password, as on a real connection.
            .login_user("u", &SecretString::from("s3cret-of-the-box".to_string()))
            .await
            .unwrap();
        (DeletingSession::open(session), task)
    }

    #[tokio::test]
    async fn only_a_verified_message_is_deleted_and_quit_commits() {
        let v = verifier();
        let ours = v.sign(Token { seq: 3, sent_ms: 5 });
        let forged = "v1 s=3 t=5 h=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let (mut s, task) = logged_in(vec![
            "+OK\r\n1 aaa\r\n2 bbb\r\n3 ccc\r\n.\r\n".into(),
            "+OK\r\nSubject: hello\r\n\r\n.\r\n".into(),
            format!("+OK\r\nX-Pop3-Probe-Token: {forged}\r\n\r\n.\r\n"),
            format!("+OK\r\nReceived: by x;\r\n Tue, 1 Dec 2026 00:00:00 +0000\r\nx-pop3-probe-token:\r\n {ours}\r\n\r\n.\r\n"),
            "+OK marked\r\n".into(),
            "+OK bye\r\n".into(),
        ])
        .await;
        let list = s.uidl().await.unwrap();
        assert_eq!(list.len(), 3);
        let mut proofs = Vec::new();
        for (n, _) in &list {
            let top = s.top_headers(*n).await.unwrap();
            if let Ok(p) = v.verify_message(&top) {
                proofs.push(p);
            }
        }
        assert_eq!(proofs.len(), 1, "only the folded, genuine token verifies");
        assert_eq!(proofs[0].uidl(), "ccc");
        for p in proofs {
            s.dele(p).await.unwrap();
        }
        assert_eq!(s.deleted(), 1);
        s.quit().await.unwrap();
        let sent = task.await.unwrap();
        assert_eq!(
            &sent[2..],
            ["UIDL", "TOP 1 0", "TOP 2 0", "TOP 3 0", "DELE 3", "QUIT"]
        );
    }

    #[tokio::test]
    async fn a_proof_from_another_session_deletes_nothing() {
        let v = verifier();
        let ours = v.sign(Token { seq: 1, sent_ms: 1 });
        let script = || {
            vec![
                "+OK\r\n1 aaa\r\n.\r\n".to_string(),
                format!("+OK\r\nX-Pop3-Probe-Token: {ours}\r\n\r\n.\r\n"),
                "+OK\r\n".to_string(),
            ]
        };
        let (mut a, _ta) = logged_in(script()).await;
        let (mut b, tb) = logged_in(script()).await;
        a.uidl().await.unwrap();
        let proof = v.verify_message(&a.top_headers(1).await.unwrap()).unwrap();
        b.uidl().await.unwrap();
        assert!(b.dele(proof).await.is_err());
        drop(b);
        assert!(!tb.await.unwrap().iter().any(|l| l.starts_with("DELE")));
    }

    #[tokio::test]
    async fn unlisted_messages_and_bad_listings_are_refused() {
        let (mut s, _t) = logged_in(vec!["+OK\r\n1 aaa\r\n2 b\x01b\r\n.\r\n".into()]).await;
        assert!(s.uidl().await.is_err());
        assert!(s.top_headers(9).await.is_err());
    }

    /// The type rule: `dele` accepts nothing but a proof. This does not
    /// compile if its argument becomes a message number (the trybuild
    /// tests show a proof cannot be made outside `token`).
    #[allow(dead_code)]
    fn dele_takes_a_proof() {
        fn is_dele<'a, S: AsyncRead + AsyncWrite + Unpin + 'a, F, Fut>(_: F)
        where
            F: Fn(&'a mut DeletingSession<S>, Verified) -> Fut,
        {
        }
        is_dele::<tokio::io::DuplexStream, _, _>(DeletingSession::dele);
    }
}
