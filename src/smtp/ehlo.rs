//! What the EHLO reply says the server can do (RFC 5321 section 4.1.1.1,
//! RFC 3207 STARTTLS, RFC 4954 AUTH), and what the banner says it is.
//!
//! The result lands in the same [`Capabilities`] record POP3's CAPA fills,
//! so reports, drift detection and stored results need no second shape:
//! `stls` means STARTTLS, `sasl` the AUTH mechanisms, `pipelining`
//! PIPELINING, `implementation` the software named in the banner, and `raw`
//! every extension line. The POP3-only fields stay empty.

use crate::wire::{Capabilities, ServerText};

/// Reply text came off the connection masked (`wire::Conn::read_line`).
fn clean(s: &str) -> ServerText {
    ServerText::from_masked(s.as_bytes())
}

use super::reply::Reply;

/// A parsed EHLO (or HELO) reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions {
    /// The first line: the server's name and greeting.
    pub greeting: String,
    /// Every extension line, as sent (sanitized).
    pub lines: Vec<String>,
    /// The server answered HELO, not EHLO: it announced no extensions.
    pub helo: bool,
}

impl Extensions {
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        Extensions {
            greeting: reply.first_line().to_string(),
            lines: reply
                .lines
                .iter()
                .skip(1)
                .filter(|l| !l.is_empty())
                .cloned()
                .collect(),
            helo: false,
        }
    }

    pub fn from_helo(reply: &Reply) -> Extensions {
        Extensions {
            greeting: reply.first_line().to_string(),
            lines: Vec::new(),
            helo: true,
        }
    }

    fn keyword(line: &str) -> (String, &str) {
        let line = line.trim();
        let (word, args) = line.split_once([' ', '=']).unwrap_or((line, ""));
        (word.to_ascii_uppercase(), args)
    }

    pub fn has(&self, keyword: &str) -> bool {
        self.lines
            .iter()
            .any(|l| Self::keyword(l).0.eq_ignore_ascii_case(keyword))
    }

    pub fn starttls(&self) -> bool {
        self.has("STARTTLS")
    }

    /// Whether AUTH is announced at all.
    pub fn auth(&self) -> bool {
        self.has("AUTH")
    }

    /// The SASL mechanisms, upper-cased, without repeats. Old servers also
    /// send the pre-standard `AUTH=LOGIN PLAIN` form; both count.
    pub fn mechanisms(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in &self.lines {
            let (word, args) = Self::keyword(line);
            if word != "AUTH" {
                continue;
            }
            for m in args.split_whitespace() {
                let m = m.to_ascii_uppercase();
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }

    pub fn has_mechanism(&self, mechanism: &str) -> bool {
        self.mechanisms()
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// The shared capability record; `software` is what the banner names.
    pub fn capabilities(&self, software: Option<String>) -> Capabilities {
        Capabilities {
            stls: self.starttls(),
            sasl: self.mechanisms().iter().map(|m| clean(m)).collect(),
            pipelining: self.has("PIPELINING"),
            implementation: software.as_deref().map(clean),
            raw: self.lines.iter().map(|l| clean(l)).collect(),
            ..Capabilities::default()
        }
    }
}

/// The software a banner names, without the host name in front or the date
/// many servers append: `mx.example.org ESMTP Exim 4.96 Mon, 01 Jan 2024
/// 00:00:00 +0000` gives `ESMTP Exim 4.96`. Stable from one probe to the
/// next, so a change means the software changed. `None` when nothing is
/// left.
pub fn banner_software(banner: &str) -> Option<String> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut words = banner.split_whitespace().peekable();
    // The first word is the server's name (RFC 5321: "220 domain text"),
    // unless the server skipped it.
    if words
        .peek()
        .is_some_and(|w| w.contains('.') || w.starts_with('['))
    {
        words.next();
    }
    let mut kept: Vec<&str> = Vec::new();
    for w in words {
        let bare = w.trim_end_matches([',', ';']).to_ascii_lowercase();
        let is_day = DAYS.contains(&bare.as_str());
        let is_time = w.contains(':') && w.bytes().any(|b| b.is_ascii_digit());
        if is_day || is_time {
            break;
        }
        kept.push(w);
    }
    // "... ready at Mon, 01 Jan ..." leaves a dangling "at".
    while kept
        .last()
        .is_some_and(|w| w.eq_ignore_ascii_case("at") || w.eq_ignore_ascii_case("on"))
    {
        kept.pop();
    }
    let mut text = kept.join(" ");
    text = text.trim_end_matches([',', ';', ' ']).to_string();
    if text.chars().count() > 80 {
        text = text.chars().take(80).collect::<String>() + "…";
    }
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::parse_all;

    fn ehlo(bytes: &[u8]) -> Extensions {
        Extensions::from_ehlo(&parse_all(bytes).unwrap()[0])
    }

    #[test]
    fn exim_ehlo_after_starttls() {
        let e = ehlo(b"250-mx.example.org Hello x [127.0.0.1]\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250-CHUNKING\r\n250 HELP\r\n");
        assert_eq!(e.greeting, "mx.example.org Hello x [127.0.0.1]");
        assert!(!e.starttls());
        assert!(e.auth());
        assert_eq!(e.mechanisms(), vec!["PLAIN", "LOGIN"]);
        assert!(e.has_mechanism("login"));
        let c = e.capabilities(Some("ESMTP Exim 4.96".into()));
        assert!(c.pipelining && !c.stls && !c.user);
        assert_eq!(c.sasl, vec!["PLAIN", "LOGIN"]);
        assert_eq!(c.implementation.as_deref(), Some("ESMTP Exim 4.96"));
        assert_eq!(c.raw.len(), 6);
        assert_eq!(c.raw[0], "SIZE 52428800");
    }

    #[test]
    fn starttls_and_old_auth_form() {
        let e = ehlo(
            b"250-mx Hello\r\n250-STARTTLS\r\n250-AUTH=LOGIN PLAIN\r\n250 AUTH PLAIN cram-md5\r\n",
        );
        assert!(e.starttls());
        assert_eq!(e.mechanisms(), vec!["LOGIN", "PLAIN", "CRAM-MD5"]);
        assert!(e.capabilities(None).stls);
    }

    #[test]
    fn single_line_ehlo_has_no_extensions() {
        let e = ehlo(b"250 mx.example.org\r\n");
        assert!(e.lines.is_empty());
        assert!(!e.auth() && !e.starttls());
        assert!(e.mechanisms().is_empty());
    }

    #[test]
    fn software_from_banners() {
        let cases = [
            (
                "mx.example.org ESMTP Exim 4.96 Fri, 27 Nov 2026 08:12:56 +0000",
                Some("ESMTP Exim 4.96"),
            ),
            (
                "mail.example.com ESMTP Postfix (Debian/GNU)",
                Some("ESMTP Postfix (Debian/GNU)"),
            ),
            (
                "mx.example.com ESMTP Sendmail 8.15.2/8.15.2; Fri, 27 Nov 2026 08:12:56 GMT",
                Some("ESMTP Sendmail 8.15.2/8.15.2"),
            ),
            (
                "EX01.corp.example Microsoft ESMTP MAIL Service ready at Fri, 27 Nov 2026 08:12:56 +0000",
                Some("Microsoft ESMTP MAIL Service ready"),
            ),
            ("ESMTP ready", Some("ESMTP ready")),
            ("mx.example.org", None),
            ("", None),
        ];
        for (banner, want) in cases {
            assert_eq!(banner_software(banner).as_deref(), want, "{banner}");
        }
        let long = format!("mx.example.org {}", "x".repeat(200));
        assert!(banner_software(&long).unwrap().chars().count() <= 81);
    }
}
