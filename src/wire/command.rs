//! What a command is to the connection: a `Display` that writes the exact
//! wire line, CRLF included, and a `masked` form for the transcript. The
//! commands themselves are the protocols' (`pop3::command`,
//! `smtp::command`) and SASL's (`sasl`).

use std::fmt;

/// A command argument that would let a caller smuggle a second command onto
/// the wire (CR, LF, NUL), or an argument that is empty where the protocol
/// needs a word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadArgument {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} contains a control character (CR, LF, NUL or similar)")]
    Control { what: &'static str },
    #[error("{what} contains a space, which {command} cannot carry")]
    Space {
        what: &'static str,
        command: &'static str,
    },
}

/// Refuse an empty argument or one with a control character in it.
pub(crate) fn check_arg(value: &str, what: &'static str) -> Result<(), BadArgument> {
    if value.is_empty() {
        return Err(BadArgument::Empty { what });
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(BadArgument::Control { what });
    }
    Ok(())
}

/// What every command offers the connection.
pub trait Command: fmt::Display {
    /// The transcript form: secrets replaced by `***`. No CRLF.
    fn masked(&self) -> String {
        self.to_string().trim_end().to_string()
    }
    /// The secret this command carries (a password, an APOP digest, a SASL
    /// response), if any. The connection adds it to its masker before the
    /// line goes out, so a server that echoes it is masked like the
    /// command's own argument.
    fn secret(&self) -> Option<String> {
        None
    }
}
