//! One connection: a buffered stream and the transcript. Commands go out
//! whole; lines come in one at a time, each under [`MAX_LINE`].

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::{Command, Direction, Error, ServerText, Transcript, MAX_LINE};

/// The buffered stream plus the transcript; reads are capped per line.
/// POP3 and SMTP read their lines the same way; what a line means is
/// theirs to parse.
pub(crate) struct Conn<S> {
    io: BufReader<S>,
    transcript: Transcript,
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

    /// Write one command and flush it; the transcript gets its masked form.
    pub(crate) async fn send<C: Command + ?Sized>(&mut self, cmd: &C) -> Result<(), Error> {
        if let Some(secret) = cmd.secret() {
            self.transcript.masker().add(&secret);
        }
        self.transcript.push(Direction::Client, cmd.masked());
        self.io
            .get_mut()
            .write_all(cmd.to_string().as_bytes())
            .await?;
        self.io.get_mut().flush().await?;
        Ok(())
    }

    /// Read one line without its CR LF, secrets masked. Fails with `TooLarge` as soon as
    /// the line passes `MAX_LINE`, without reading the rest of it.
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
        // Mask the raw bytes before anything parses, trims or strips them:
        // every text a parser makes from this line is already clean.
        self.transcript.masker().mask_bytes(&mut self.line);
        self.transcript
            .push_server(&ServerText::from_masked(&self.line));
        Ok(&self.line)
    }

    /// Whether the server sent bytes we have not read yet. Before a TLS
    /// handshake that is an attack (STARTTLS command injection).
    pub(crate) fn has_buffered(&self) -> bool {
        !self.io.buffer().is_empty()
    }

    /// The stream under the dialogue, to ask whether it is encrypted.
    pub(crate) fn stream_ref(&self) -> &S {
        self.io.get_ref()
    }

    /// The stream itself, for a TLS handshake; check [`Conn::has_buffered`]
    /// first, since buffered bytes are dropped.
    pub(crate) fn into_stream(self) -> S {
        self.io.into_inner()
    }

    pub(crate) fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Send the last command and close our side at once: FIN (and TLS
    /// close_notify) after it, so the server reads the command first and
    /// ends the session cleanly without our waiting for its answer.
    pub(crate) async fn send_and_close<C: Command>(mut self, cmd: &C) -> Result<(), Error> {
        self.send(cmd).await?;
        self.io.get_mut().shutdown().await?;
        Ok(())
    }
}
