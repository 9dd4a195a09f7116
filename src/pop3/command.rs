//! POP3 commands, one type each. `Display` writes the exact wire line,
//! CRLF included; `masked` is what a transcript may show.
//!
//! There is deliberately no DELE, RETR, TOP, RSET, LIST or UIDL here: a
//! monitor has no business reading or changing mail, and a command that does
//! not exist cannot be sent by accident.

use std::fmt;

use base64::Engine as _;
use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};

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

fn check_arg(value: &str, what: &'static str) -> Result<(), BadArgument> {
    if value.is_empty() {
        return Err(BadArgument::Empty { what });
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(BadArgument::Control { what });
    }
    Ok(())
}

/// What every command offers the client.
pub trait Command: fmt::Display {
    /// The transcript form: secrets replaced by `***`. No CRLF.
    fn masked(&self) -> String {
        self.to_string().trim_end().to_string()
    }
    /// Whether a positive reply is followed by a multi-line body.
    fn multiline(&self) -> bool {
        false
    }
}

macro_rules! simple_command {
    ($name:ident, $wire:literal, $multi:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!($wire, "\r\n"))
            }
        }
        impl Command for $name {
            fn multiline(&self) -> bool {
                $multi
            }
        }
    };
}

simple_command!(Capa, "CAPA", true, "RFC 2449: list capabilities.");
simple_command!(Stls, "STLS", false, "RFC 2595: start TLS.");
simple_command!(Stat, "STAT", false, "RFC 1939: message count and size.");
simple_command!(Quit, "QUIT", false, "RFC 1939: end the session.");

/// `USER name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User<'a>(&'a str);

impl<'a> User<'a> {
    pub fn new(name: &'a str) -> Result<Self, BadArgument> {
        check_arg(name, "user name")?;
        Ok(User(name))
    }
}

impl fmt::Display for User<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "USER {}\r\n", self.0)
    }
}

impl Command for User<'_> {}

/// `PASS secret`. `Debug` and `masked` never show the secret; `Display`
/// must, since it is the wire line.
pub struct Pass<'a>(&'a SecretString);

impl<'a> Pass<'a> {
    pub fn new(secret: &'a SecretString) -> Result<Self, BadArgument> {
        check_arg(secret.expose_secret(), "password")?;
        Ok(Pass(secret))
    }
}

impl fmt::Debug for Pass<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pass(***)")
    }
}

impl fmt::Display for Pass<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PASS {}\r\n", self.0.expose_secret())
    }
}

impl Command for Pass<'_> {
    fn masked(&self) -> String {
        "PASS ***".to_string()
    }
}

/// `APOP name digest` (RFC 1939 section 7). The digest is not the password,
/// but it is replayable against the same greeting, so it is masked too.
#[derive(Clone, PartialEq, Eq)]
pub struct Apop<'a> {
    name: &'a str,
    digest: String,
}

impl<'a> Apop<'a> {
    pub fn new(name: &'a str, timestamp: &str, secret: &SecretString) -> Result<Self, BadArgument> {
        check_arg(name, "user name")?;
        if name.contains(' ') {
            return Err(BadArgument::Space {
                what: "user name",
                command: "APOP",
            });
        }
        check_arg(secret.expose_secret(), "password")?;
        Ok(Apop {
            name,
            digest: apop_digest(timestamp, secret),
        })
    }
}

/// MD5 over the timestamp (brackets included) followed by the secret, as
/// lower-case hex.
pub fn apop_digest(timestamp: &str, secret: &SecretString) -> String {
    let mut hasher = Md5::new();
    hasher.update(timestamp.as_bytes());
    hasher.update(secret.expose_secret().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl fmt::Debug for Apop<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Apop({:?}, ***)", self.name)
    }
}

impl fmt::Display for Apop<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "APOP {} {}\r\n", self.name, self.digest)
    }
}

impl Command for Apop<'_> {
    fn masked(&self) -> String {
        format!("APOP {} ***", self.name)
    }
}

/// RFC 4616 PLAIN message: authzid (empty) NUL authcid NUL passwd, in
/// base64. Held as a secret: base64 is not encryption.
pub fn plain_credentials(user: &str, secret: &SecretString) -> Result<SecretString, BadArgument> {
    check_arg(user, "user name")?;
    // PLAIN separates fields with NUL, so a NUL inside either would shift
    // them; other control characters are legal in a SASL password.
    if secret.expose_secret().is_empty() {
        return Err(BadArgument::Empty { what: "password" });
    }
    if secret.expose_secret().contains('\0') {
        return Err(BadArgument::Control { what: "password" });
    }
    let raw = format!("\0{user}\0{}", secret.expose_secret());
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()),
    ))
}

/// RFC 5034 says the whole `AUTH` line with its initial response must fit
/// in 255 octets; beyond that the response goes on its own line after `+ `.
pub const MAX_AUTH_LINE: usize = 255;

/// `AUTH PLAIN <initial-response>` (RFC 5034 section 4), one round trip.
/// SMTP's (RFC 4954) is the same line under another length limit, so the
/// SMTP client uses this type too, through [`AuthPlain::with_limit`].
pub struct AuthPlain<'a> {
    credentials: &'a SecretString,
    max_line: usize,
}

impl<'a> AuthPlain<'a> {
    /// Under POP3's limit, [`MAX_AUTH_LINE`].
    pub fn new(credentials: &'a SecretString) -> Self {
        Self::with_limit(credentials, MAX_AUTH_LINE)
    }

    /// Under another protocol's line limit (CRLF included).
    pub fn with_limit(credentials: &'a SecretString, max_line: usize) -> Self {
        AuthPlain {
            credentials,
            max_line,
        }
    }

    /// Whether the initial response fits on the command line.
    pub fn fits_initial_response(&self) -> bool {
        "AUTH PLAIN ".len() + self.credentials.expose_secret().len() + 2 <= self.max_line
    }
}

impl fmt::Debug for AuthPlain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthPlain(***)")
    }
}

impl fmt::Display for AuthPlain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AUTH PLAIN {}\r\n", self.credentials.expose_secret())
    }
}

impl Command for AuthPlain<'_> {
    fn masked(&self) -> String {
        "AUTH PLAIN ***".to_string()
    }
}

/// `AUTH PLAIN` without an initial response, for credentials too long for
/// one line; the server answers `+ ` and [`SaslResponse`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPlainStart;

impl fmt::Display for AuthPlainStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AUTH PLAIN\r\n")
    }
}

impl Command for AuthPlainStart {}

/// A base64 SASL response line sent after a `+ ` continuation.
pub struct SaslResponse<'a>(&'a SecretString);

impl<'a> SaslResponse<'a> {
    pub fn new(credentials: &'a SecretString) -> Self {
        SaslResponse(credentials)
    }
}

impl fmt::Debug for SaslResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SaslResponse(***)")
    }
}

impl fmt::Display for SaslResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0.expose_secret())
    }
}

impl Command for SaslResponse<'_> {
    fn masked(&self) -> String {
        "***".to_string()
    }
}

/// `AUTH <mechanism>` without an initial response (RFC 5034's two-line
/// form): the OAuth2 mechanisms always use it, because a token does not
/// fit POP3's 255-octet command line and Microsoft requires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthStart(pub crate::sasl::oauth::OauthMechanism);

impl fmt::Display for AuthStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AUTH {}\r\n", self.0.name())
    }
}

impl Command for AuthStart {}

/// An OAuth2 client response line (XOAUTH2 or OAUTHBEARER), after `+`.
/// The transcript shows its decoded layout with the token masked.
pub struct OauthResponse<'a>(pub &'a crate::sasl::oauth::ClientResponse);

impl fmt::Display for OauthResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0.encoded().expose_secret())
    }
}

impl Command for OauthResponse<'_> {
    fn masked(&self) -> String {
        self.0.masked().to_string()
    }
}

/// The client's answer to an OAuth2 error challenge (see
/// [`crate::sasl::oauth::OauthMechanism::error_reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OauthErrorReply(pub crate::sasl::oauth::OauthMechanism);

impl fmt::Display for OauthErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0.error_reply())
    }
}

impl Command for OauthErrorReply {}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn wire_bytes() {
        assert_eq!(Capa.to_string(), "CAPA\r\n");
        assert_eq!(Stls.to_string(), "STLS\r\n");
        assert_eq!(Stat.to_string(), "STAT\r\n");
        assert_eq!(Quit.to_string(), "QUIT\r\n");
        assert_eq!(User::new("mrose").unwrap().to_string(), "USER mrose\r\n");
        let s = secret("tanstaaf");
        assert_eq!(Pass::new(&s).unwrap().to_string(), "PASS tanstaaf\r\n");
        assert_eq!(AuthPlainStart.to_string(), "AUTH PLAIN\r\n");
    }

    #[test]
    fn rfc1939_apop_example() {
        let s = secret("tanstaaf");
        assert_eq!(
            apop_digest("<1896.697170952@dbc.mtview.ca.us>", &s),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
        let cmd = Apop::new("mrose", "<1896.697170952@dbc.mtview.ca.us>", &s).unwrap();
        assert_eq!(
            cmd.to_string(),
            "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
        );
        assert_eq!(cmd.masked(), "APOP mrose ***");
    }

    #[test]
    fn auth_plain_initial_response() {
        // RFC 4616 example: authcid "tim", password "tanstaaftanstaaf".
        let creds = plain_credentials("tim", &secret("tanstaaftanstaaf")).unwrap();
        let cmd = AuthPlain::new(&creds);
        assert_eq!(
            cmd.to_string(),
            "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
        );
        assert!(cmd.fits_initial_response());
        assert_eq!(cmd.masked(), "AUTH PLAIN ***");
        assert_eq!(SaslResponse::new(&creds).masked(), "***");
    }

    #[test]
    fn long_credentials_do_not_fit_the_initial_line() {
        let creds = plain_credentials("u", &secret(&"x".repeat(300))).unwrap();
        assert!(!AuthPlain::new(&creds).fits_initial_response());
    }

    #[test]
    fn secrets_stay_out_of_debug_and_masked() {
        let s = secret("hunter2");
        let pass = Pass::new(&s).unwrap();
        assert!(!format!("{pass:?}").contains("hunter2"));
        assert!(!pass.masked().contains("hunter2"));
        let creds = plain_credentials("u", &s).unwrap();
        let auth = AuthPlain::new(&creds);
        assert!(!format!("{auth:?}").contains(creds.expose_secret()));
        let apop = Apop::new("u", "<1@x>", &s).unwrap();
        assert!(!format!("{apop:?}").contains(&apop_digest("<1@x>", &s)));
    }

    #[test]
    fn injection_is_refused() {
        assert!(matches!(
            User::new("a\r\nDELE 1"),
            Err(BadArgument::Control { .. })
        ));
        assert!(matches!(User::new(""), Err(BadArgument::Empty { .. })));
        let s = secret("pw\r\nDELE 1");
        assert!(Pass::new(&s).is_err());
        assert!(Apop::new("a b", "<1@x>", &secret("p")).is_err());
        assert!(plain_credentials("u", &secret("a\0b")).is_err());
    }
}
