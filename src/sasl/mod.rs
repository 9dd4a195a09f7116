//! SASL (RFC 4422) as both mail protocols use it: the mechanisms' client
//! responses, the `AUTH` command lines that carry them, and the forms a
//! password takes on the wire, so that every one of them can be masked.
//!
//! POP3 (RFC 5034) and SMTP (RFC 4954) send the same `AUTH <mechanism>
//! [initial-response]` line under different length limits, and answer a
//! continuation (`+ ` in POP3, `334` in SMTP) with a base64 line; only the
//! continuation differs, and that is each client's to read.
//!
//! One file per mechanism: [`plain`] (RFC 4616), [`login`] (the
//! pre-standard LOGIN). A new mechanism (XOAUTH2, OAUTHBEARER) gets a file
//! beside them, a [`Mechanism`] variant, and its forms in
//! [`secret_forms`].

pub mod login;
pub mod oauth;
pub mod plain;

use std::fmt;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::wire::Command;

/// A mechanism this client can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// RFC 4616: user and password in one base64 message.
    Plain,
    /// User name and password in base64, each after a challenge.
    Login,
    /// Google's and Microsoft's OAuth2 mechanism ([`oauth`]).
    XOauth2,
    /// RFC 7628's OAuth2 mechanism ([`oauth`]).
    OauthBearer,
}

impl Mechanism {
    /// The name as `AUTH` and the capability lists spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOauth2 => "XOAUTH2",
            Mechanism::OauthBearer => "OAUTHBEARER",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `AUTH <mechanism> <initial-response>`: one round trip when the line
/// fits the protocol's limit (POP3 255 octets, SMTP 512).
pub struct Auth<'a> {
    mechanism: Mechanism,
    initial_response: &'a SecretString,
    max_line: usize,
}

impl<'a> Auth<'a> {
    /// `max_line` is the protocol's limit on the whole line, CRLF included.
    pub fn new(mechanism: Mechanism, initial_response: &'a SecretString, max_line: usize) -> Self {
        Auth {
            mechanism,
            initial_response,
            max_line,
        }
    }

    /// Whether the initial response fits on the command line; when it does
    /// not, send [`AuthStart`] and the response after the continuation.
    pub fn fits_initial_response(&self) -> bool {
        "AUTH ".len()
            + self.mechanism.as_str().len()
            + 1
            + self.initial_response.expose_secret().len()
            + 2
            <= self.max_line
    }
}

impl fmt::Debug for Auth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Auth({}, ***)", self.mechanism)
    }
}

impl fmt::Display for Auth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AUTH {} {}\r\n",
            self.mechanism,
            self.initial_response.expose_secret()
        )
    }
}

impl Command for Auth<'_> {
    fn masked(&self) -> String {
        format!("AUTH {} ***", self.mechanism)
    }
    fn secret(&self) -> Option<String> {
        Some(self.initial_response.expose_secret().to_string())
    }
}

/// `AUTH <mechanism>` without an initial response: LOGIN always, PLAIN
/// when its response is too long for one line, XOAUTH2 and OAUTHBEARER
/// always (a token does not fit POP3's command line, and Microsoft
/// requires the two-line form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthStart(pub Mechanism);

impl fmt::Display for AuthStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AUTH {}\r\n", self.0)
    }
}

impl Command for AuthStart {}

/// A secret response line sent after a continuation: PLAIN's message, or
/// LOGIN's password. Shown as `***` in the transcript and in `Debug`.
pub struct SecretResponse(SecretString);

impl SecretResponse {
    /// A response that is already base64 (see [`plain::initial_response`]).
    pub fn encoded(response: &SecretString) -> SecretResponse {
        SecretResponse(response.clone())
    }
}

impl fmt::Debug for SecretResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretResponse(***)")
    }
}

impl fmt::Display for SecretResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0.expose_secret())
    }
}

impl Command for SecretResponse {
    fn masked(&self) -> String {
        "***".to_string()
    }
    fn secret(&self) -> Option<String> {
        Some(self.0.expose_secret().to_string())
    }
}

/// The password and its encodings that could appear on the wire: as sent
/// by USER/PASS, in base64 (LOGIN), and inside PLAIN's message. Longest
/// first, so a form that contains another is replaced whole.
pub fn secret_forms(password: &str, user: Option<&str>) -> Vec<String> {
    if password.is_empty() {
        return Vec::new();
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forms = vec![password.to_string(), b64.encode(password)];
    if let Some(user) = user {
        forms.push(b64.encode(format!("\0{user}\0{password}")));
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn auth_lines() {
        let creds = plain::initial_response("tim", &secret("tanstaaftanstaaf")).unwrap();
        let cmd = Auth::new(Mechanism::Plain, &creds, 255);
        assert_eq!(
            cmd.to_string(),
            "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
        );
        assert_eq!(cmd.masked(), "AUTH PLAIN ***");
        assert!(!format!("{cmd:?}").contains("AHRpbQ"));
        assert_eq!(AuthStart(Mechanism::Plain).to_string(), "AUTH PLAIN\r\n");
        assert_eq!(AuthStart(Mechanism::Login).to_string(), "AUTH LOGIN\r\n");
        assert_eq!(SecretResponse::encoded(&creds).masked(), "***");
    }

    #[test]
    fn the_limit_counts_the_whole_line() {
        // "AUTH PLAIN " + 242 + CRLF is exactly 255.
        let r = secret(&"x".repeat(242));
        assert!(Auth::new(Mechanism::Plain, &r, 255).fits_initial_response());
        let r = secret(&"x".repeat(243));
        assert!(!Auth::new(Mechanism::Plain, &r, 255).fits_initial_response());
    }

    #[test]
    fn every_form_of_the_password() {
        let forms = secret_forms("s3cret", Some("bob"));
        assert!(forms.contains(&"s3cret".to_string()));
        assert!(forms.contains(&"czNjcmV0".to_string()));
        assert!(forms.contains(&"AGJvYgBzM2NyZXQ=".to_string()));
        assert!(secret_forms("", Some("bob")).is_empty());
    }
}
