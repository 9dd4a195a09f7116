//! POP3 commands, one type each. `Display` writes the exact wire line,
//! CRLF included; `masked` is what a transcript may show. `AUTH` and the
//! SASL responses are `sasl`'s, shared with SMTP.
//!
//! There is deliberately no DELE, RETR, TOP, RSET, LIST or UIDL here: a
//! monitor has no business reading or changing mail, and a command that does
//! not exist cannot be sent by accident.

use std::fmt;

use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};

use crate::wire::command::check_arg;
use crate::wire::{BadArgument, Command};

macro_rules! simple_command {
    ($name:ident, $wire:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!($wire, "\r\n"))
            }
        }
        impl Command for $name {}
    };
}

simple_command!(Capa, "CAPA", "RFC 2449: list capabilities.");
simple_command!(Stls, "STLS", "RFC 2595: start TLS.");
simple_command!(Stat, "STAT", "RFC 1939: message count and size.");
simple_command!(Quit, "QUIT", "RFC 1939: end the session.");

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
    fn secret(&self) -> Option<String> {
        Some(self.0.expose_secret().to_string())
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
    /// With the greeting's timestamp the digest can be brute-forced
    /// offline: an echo of it is as bad as an echo of the password.
    fn secret(&self) -> Option<String> {
        Some(self.digest.clone())
    }
}

/// RFC 5034 says the whole `AUTH` line with its initial response must fit
/// in 255 octets; beyond that the response goes on its own line after `+ `.
pub const MAX_AUTH_LINE: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::{self, Auth, AuthStart, Mechanism, SecretResponse};

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
        assert_eq!(AuthStart(Mechanism::Plain).to_string(), "AUTH PLAIN\r\n");
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
        let creds = sasl::plain::initial_response("tim", &secret("tanstaaftanstaaf")).unwrap();
        let cmd = Auth::new(Mechanism::Plain, &creds, MAX_AUTH_LINE);
        assert_eq!(
            cmd.to_string(),
            "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
        );
        assert!(cmd.fits_initial_response());
        assert_eq!(cmd.masked(), "AUTH PLAIN ***");
        assert_eq!(SecretResponse::encoded(&creds).masked(), "***");
    }

    #[test]
    fn long_credentials_do_not_fit_the_initial_line() {
        let creds = sasl::plain::initial_response("u", &secret(&"x".repeat(300))).unwrap();
        assert!(!Auth::new(Mechanism::Plain, &creds, MAX_AUTH_LINE).fits_initial_response());
    }

    #[test]
    fn secrets_stay_out_of_debug_and_masked() {
        let s = secret("hunter2");
        let pass = Pass::new(&s).unwrap();
        assert!(!format!("{pass:?}").contains("hunter2"));
        assert!(!pass.masked().contains("hunter2"));
        let creds = sasl::plain::initial_response("u", &s).unwrap();
        let auth = Auth::new(Mechanism::Plain, &creds, MAX_AUTH_LINE);
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
        assert!(sasl::plain::initial_response("u", &secret("a\0b")).is_err());
    }
}
