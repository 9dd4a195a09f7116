//! SMTP commands, one type each. `Display` writes the exact wire line,
//! CRLF included; `masked` is what a transcript may show. `AUTH` and the
//! SASL responses are `sasl`'s, shared with POP3; they are sealed in here
//! as SMTP commands.
//!
//! There is deliberately no MAIL, RCPT, DATA, BDAT, VRFY, EXPN, ETRN or
//! RSET here: a monitor has no business sending mail or asking about
//! mailboxes, and a command that does not exist cannot be sent by
//! accident. The client sends only types that implement the sealed
//! [`SmtpCommand`], so POP3 commands cannot slip onto an SMTP connection
//! either.

use std::fmt;

use crate::sasl::{login, oauth, Auth, AuthStart, SecretResponse};
use crate::wire::{BadArgument, Command};

/// RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets with
/// its CRLF. RFC 4954 says an initial response that would not fit goes on
/// its own line after a `334` challenge instead.
pub const MAX_COMMAND_LINE: usize = 512;

mod sealed {
    pub trait Sealed {}
}

/// The commands this client may send. Sealed: implemented here only.
pub trait SmtpCommand: Command + sealed::Sealed {}

macro_rules! smtp_command {
    ($($t:ty),*) => {
        $(
            impl sealed::Sealed for $t {}
            impl SmtpCommand for $t {}
        )*
    };
}

/// The name given with EHLO or HELO: a domain or an address literal
/// (`[192.0.2.1]`, `[IPv6:2001:db8::1]`). One word, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloName(String);

impl HelloName {
    pub fn new(name: &str) -> Result<HelloName, BadArgument> {
        let what = "EHLO name";
        if name.is_empty() {
            return Err(BadArgument::Empty { what });
        }
        if name.chars().any(char::is_control) {
            return Err(BadArgument::Control { what });
        }
        if name.chars().any(char::is_whitespace) {
            return Err(BadArgument::Space {
                what,
                command: "EHLO",
            });
        }
        Ok(HelloName(name.to_string()))
    }

    /// The address literal for `addr` (RFC 5321 section 4.1.3), for a
    /// client that has no name of its own to give.
    pub fn literal(addr: std::net::IpAddr) -> HelloName {
        match addr {
            std::net::IpAddr::V4(a) => HelloName(format!("[{a}]")),
            std::net::IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => HelloName(format!("[{v4}]")),
                None => HelloName(format!("[IPv6:{a}]")),
            },
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HelloName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `EHLO name` (RFC 5321 section 4.1.1.1): hello, and list your extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ehlo<'a>(pub &'a HelloName);

impl fmt::Display for Ehlo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EHLO {}\r\n", self.0)
    }
}

impl Command for Ehlo<'_> {}

/// `HELO name`: for servers that answer EHLO with 5yz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helo<'a>(pub &'a HelloName);

impl fmt::Display for Helo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HELO {}\r\n", self.0)
    }
}

impl Command for Helo<'_> {}

/// `STARTTLS` (RFC 3207).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartTls;

impl fmt::Display for StartTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("STARTTLS\r\n")
    }
}

impl Command for StartTls {}

/// `QUIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quit;

impl fmt::Display for Quit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QUIT\r\n")
    }
}

impl Command for Quit {}

smtp_command!(
    Ehlo<'_>,
    Helo<'_>,
    StartTls,
    Quit,
    Auth<'_>,
    AuthStart,
    login::User,
    SecretResponse,
    oauth::OauthResponse<'_>,
    oauth::OauthErrorReply
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::{self, Mechanism};
    use secrecy::SecretString;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn wire_bytes() {
        let name = HelloName::new("probe.example.org").unwrap();
        assert_eq!(Ehlo(&name).to_string(), "EHLO probe.example.org\r\n");
        assert_eq!(Helo(&name).to_string(), "HELO probe.example.org\r\n");
        assert_eq!(StartTls.to_string(), "STARTTLS\r\n");
        assert_eq!(Quit.to_string(), "QUIT\r\n");
        assert_eq!(AuthStart(Mechanism::Plain).to_string(), "AUTH PLAIN\r\n");
        assert_eq!(AuthStart(Mechanism::Login).to_string(), "AUTH LOGIN\r\n");
        assert_eq!(login::User::new("tim").unwrap().to_string(), "dGlt\r\n");
        let pw = secret("tanstaaftanstaaf");
        assert_eq!(
            login::password(&pw).unwrap().to_string(),
            "dGFuc3RhYWZ0YW5zdGFhZg==\r\n"
        );
    }

    #[test]
    fn auth_plain_rfc4616_example() {
        let creds = sasl::plain::initial_response("tim", &secret("tanstaaftanstaaf")).unwrap();
        let cmd = Auth::new(Mechanism::Plain, &creds, MAX_COMMAND_LINE);
        assert_eq!(
            cmd.to_string(),
            "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
        );
        assert!(cmd.fits_initial_response());
        assert_eq!(cmd.masked(), "AUTH PLAIN ***");
        assert!(!format!("{cmd:?}").contains("AHRpbQ"));
    }

    #[test]
    fn initial_response_limit_is_smtps_512() {
        // 300 characters would not fit POP3's 255 but fits SMTP's 512.
        let creds = sasl::plain::initial_response("u", &secret(&"x".repeat(300))).unwrap();
        assert!(Auth::new(Mechanism::Plain, &creds, MAX_COMMAND_LINE).fits_initial_response());
        let creds = sasl::plain::initial_response("u", &secret(&"x".repeat(400))).unwrap();
        assert!(!Auth::new(Mechanism::Plain, &creds, MAX_COMMAND_LINE).fits_initial_response());
    }

    #[test]
    fn secrets_are_masked() {
        let pw = secret("hunter2");
        let s = login::password(&pw).unwrap();
        assert_eq!(s.masked(), "***");
        assert!(!format!("{s:?}").contains("aHVudGVyMg"));
        // The user name is no secret: shown as sent.
        assert_eq!(login::User::new("bob").unwrap().masked(), "Ym9i");
    }

    #[test]
    fn hello_names() {
        assert!(matches!(
            HelloName::new("a\r\nMAIL FROM:<x>"),
            Err(BadArgument::Control { .. })
        ));
        assert!(matches!(
            HelloName::new("two words"),
            Err(BadArgument::Space { .. })
        ));
        assert!(matches!(HelloName::new(""), Err(BadArgument::Empty { .. })));
        assert_eq!(
            HelloName::literal("127.0.0.1".parse().unwrap()).as_str(),
            "[127.0.0.1]"
        );
        assert_eq!(
            HelloName::literal("::1".parse().unwrap()).as_str(),
            "[IPv6:::1]"
        );
        assert_eq!(
            HelloName::literal("::ffff:192.0.2.1".parse().unwrap()).as_str(),
            "[192.0.2.1]"
        );
    }

    #[test]
    fn bad_credentials_are_refused() {
        assert!(login::User::new("").is_err());
        assert!(login::User::new("a\0b").is_err());
        assert!(login::password(&secret("")).is_err());
        assert!(sasl::plain::initial_response("u", &secret("a\0b")).is_err());
    }
}
