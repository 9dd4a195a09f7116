//! The one place that sends mail: MAIL, RCPT and DATA for the round-trip
//! monitor's probe message. Private to `roundtrip`, so no other check can
//! name these commands; `smtp::Authenticated` has none of them.

use std::fmt;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::smtp::reply::{Assembler, Reply};
use crate::smtp::{Authenticated, Error};
use crate::wire::{BadArgument, Command, Conn};

/// An envelope address (RFC 5321 `Mailbox`), checked so it cannot break out
/// of its command line: no control characters, spaces or angle brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address(String);

impl Address {
    pub(crate) fn new(addr: &str, what: &'static str) -> Result<Address, BadArgument> {
        if addr.is_empty() {
            return Err(BadArgument::Empty { what });
        }
        if addr.chars().any(char::is_control) {
            return Err(BadArgument::Control { what });
        }
        if addr
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>')
        {
            return Err(BadArgument::Space {
                what,
                command: "MAIL/RCPT",
            });
        }
        Ok(Address(addr.to_string()))
    }
}

struct MailFrom<'a>(&'a Address);

impl fmt::Display for MailFrom<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MAIL FROM:<{}>\r\n", self.0 .0)
    }
}

impl Command for MailFrom<'_> {}

struct RcptTo<'a>(&'a Address);

impl fmt::Display for RcptTo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RCPT TO:<{}>\r\n", self.0 .0)
    }
}

impl Command for RcptTo<'_> {}

struct Data;

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DATA\r\n")
    }
}

impl Command for Data {}

struct Quit;

impl fmt::Display for Quit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QUIT\r\n")
    }
}

impl Command for Quit {}

/// The message after DATA's 354, dot-stuffed, with the final `.`: sent
/// whole like a command. The transcript shows its size, not its text.
struct MessageBody(String);

impl fmt::Display for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Command for MessageBody {
    fn masked(&self) -> String {
        format!("(the message, {} bytes)", self.0.len())
    }
}

/// Which step of the submission a reply refused (the result says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Mail,
    Rcpt,
    Data,
    /// The reply after the message's final `.`: the server took it.
    Message,
}

impl Step {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Step::Mail => "MAIL FROM",
            Step::Rcpt => "RCPT TO",
            Step::Data => "DATA",
            Step::Message => "end of DATA",
        }
    }
}

/// The message as lines: CRLF line ends and dot-stuffing (RFC 5321
/// section 4.5.2), then the final `.`.
pub(super) fn data_bytes(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 64);
    for line in message.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// After AUTH: the envelope and the message.
pub(super) struct Submission<S> {
    conn: Conn<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Submission<S> {
    pub(super) fn open(session: Authenticated<S>) -> Submission<S> {
        Submission {
            conn: session.into_conn(),
        }
    }

    async fn reply(&mut self) -> Result<Reply, Error> {
        let mut assembler = Assembler::default();
        loop {
            let line = self.conn.read_line().await?;
            if let Some(reply) = assembler.push(line)? {
                return Ok(reply);
            }
        }
    }

    async fn expect(&mut self, step: Step, code_class: u16) -> Result<Reply, (Step, Error)> {
        let reply = self.reply().await.map_err(|e| (step, e))?;
        if reply.code / 100 == code_class {
            Ok(reply)
        } else if reply.is_transient() || reply.is_permanent() {
            Err((step, Error::Negative(reply)))
        } else {
            Err((
                step,
                Error::Protocol(format!("unexpected reply to {}: {reply}", step.as_str())),
            ))
        }
    }

    /// MAIL, RCPT, DATA and the message, one reply at a time (no
    /// pipelining: a refusal names the step it refused). Returns the
    /// server's reply to the message (its queue id is in the text).
    pub(super) async fn send(
        &mut self,
        from: &Address,
        to: &Address,
        message: &str,
    ) -> Result<Reply, (Step, Error)> {
        let io = |step: Step| move |e: crate::wire::Error| (step, Error::from(e));
        self.conn
            .send(&MailFrom(from))
            .await
            .map_err(io(Step::Mail))?;
        self.expect(Step::Mail, 2).await?;
        self.conn.send(&RcptTo(to)).await.map_err(io(Step::Rcpt))?;
        self.expect(Step::Rcpt, 2).await?;
        self.conn.send(&Data).await.map_err(io(Step::Data))?;
        self.expect(Step::Data, 3).await?;
        self.conn
            .send(&MessageBody(data_bytes(message)))
            .await
            .map_err(io(Step::Message))?;
        self.expect(Step::Message, 2).await
    }

    /// QUIT without waiting: the server has the message already.
    pub(super) async fn quit_nowait(self) -> Result<(), Error> {
        Ok(self.conn.send_and_close(&Quit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_lines_are_pinned() {
        let a = Address::new("monitor@example.com", "from").unwrap();
        assert_eq!(
            MailFrom(&a).to_string(),
            "MAIL FROM:<monitor@example.com>\r\n"
        );
        assert_eq!(RcptTo(&a).to_string(), "RCPT TO:<monitor@example.com>\r\n");
        assert_eq!(Data.to_string(), "DATA\r\n");
    }

    #[test]
    fn addresses_cannot_smuggle_commands() {
        for bad in ["", "a@b\r\nRSET", "a b@c", "a>@b", "<a@b"] {
            assert!(Address::new(bad, "from").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn data_is_dot_stuffed_with_crlf() {
        assert_eq!(
            data_bytes("Subject: x\n\n.hidden\nplain\n"),
            "Subject: x\r\n\r\n..hidden\r\nplain\r\n.\r\n"
        );
        assert_eq!(data_bytes("a\r\nb"), "a\r\nb\r\n.\r\n");
    }
}
