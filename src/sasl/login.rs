//! LOGIN: the user name, then the password, each in base64 after a
//! challenge (`Username:`, `Password:`). Not standardised, but the one
//! mechanism many SMTP servers offer besides PLAIN.

use std::fmt;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use super::SecretResponse;
use crate::wire::{BadArgument, Command};

/// The user name in base64, answering the first challenge. Not a secret:
/// the transcript shows it as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(String);

impl User {
    pub fn new(user: &str) -> Result<User, BadArgument> {
        if user.is_empty() {
            return Err(BadArgument::Empty { what: "user name" });
        }
        // Base64 cannot carry a line break onto the wire, but a NUL or CR
        // in a user name is a configuration mistake worth saying so.
        if user.chars().any(char::is_control) {
            return Err(BadArgument::Control { what: "user name" });
        }
        Ok(User(base64::engine::general_purpose::STANDARD.encode(user)))
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

impl Command for User {}

/// The password in base64, answering the second challenge.
pub fn password(password: &SecretString) -> Result<SecretResponse, BadArgument> {
    if password.expose_secret().is_empty() {
        return Err(BadArgument::Empty { what: "password" });
    }
    Ok(SecretResponse(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(password.expose_secret()),
    )))
}
