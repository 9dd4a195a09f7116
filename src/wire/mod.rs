//! The line transport both mail protocols speak, and nothing of either:
//! a stream that is plain or TLS ([`Stream`]), a connection that writes
//! whole commands and reads lines under a hard cap ([`Conn`]), the
//! transcript that records both ways with secrets masked ([`Transcript`]),
//! the one type every server text becomes ([`ServerText`], made by the
//! [`Masker`], which masks secrets before sanitizing), the
//! command trait ([`Command`]), and the line-level [`Error`].
//!
//! POP3 and SMTP each parse what the lines mean (status lines, replies) and
//! wrap [`Error`] in their own error type; the SASL mechanisms both use are
//! in `sasl`. The capability record both protocols fill lives here too, so
//! that neither protocol module has to know the other.

mod capabilities;
pub mod command;
mod conn;
mod stream;
mod text;
mod transcript;

pub use capabilities::Capabilities;
pub use command::{BadArgument, Command};
pub(crate) use conn::Conn;
pub use stream::Stream;
pub use text::{Masker, ServerText, MASK};
pub use transcript::{Direction, Transcript, WireLine};

/// The longest line accepted from a server, CR LF not counted. RFC 2449
/// allows POP3 responses of 512 octets and RFC 5321 SMTP reply lines of
/// 512; a few KiB leaves room for chatty servers while keeping a hostile
/// one from growing our buffers.
pub const MAX_LINE: usize = 4096;

/// Why a line could not be sent or read. The protocols add their own
/// failures (a reply that says no, words that make no sense) on top.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed by the server")]
    Closed,
    /// A line over [`MAX_LINE`].
    #[error("line too large: over {MAX_LINE} bytes")]
    TooLarge,
    #[error("cannot send command: {0}")]
    Argument(#[from] BadArgument),
}
