//! CAPA (RFC 2449): what the server says it can do, read into the
//! capability record both protocols share.

use crate::wire::{Capabilities, ServerText};

impl Capabilities {
    /// Build from the lines of a CAPA body (already dot-unstuffed), as the
    /// connection read them: masked.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in lines {
            let text = ServerText::from_masked(line);
            if text.is_empty() {
                continue;
            }
            let words_of = text.clone();
            let mut words = words_of.split_whitespace();
            let name = words.next().unwrap_or_default().to_ascii_uppercase();
            let args: Vec<&str> = words.collect();
            match name.as_str() {
                "STLS" => caps.stls = true,
                "USER" => caps.user = true,
                "SASL" => caps.sasl.extend(
                    args.iter()
                        .map(|m| text.derived(|_| m.to_ascii_uppercase())),
                ),
                "PIPELINING" => caps.pipelining = true,
                "RESP-CODES" => caps.resp_codes = true,
                "AUTH-RESP-CODE" => caps.auth_resp_code = true,
                "LOGIN-DELAY" => caps.login_delay = args.first().and_then(|s| s.parse().ok()),
                "EXPIRE" => caps.expire = Some(text.derived(|_| args.join(" "))),
                "IMPLEMENTATION" => caps.implementation = Some(text.derived(|_| args.join(" "))),
                _ => {}
            }
            caps.raw.push(text);
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_style_capa() {
        let lines: Vec<&[u8]> = vec![
            b"CAPA",
            b"TOP",
            b"UIDL",
            b"RESP-CODES",
            b"PIPELINING",
            b"AUTH-RESP-CODE",
            b"STLS",
            b"USER",
            b"SASL PLAIN login",
            b"LOGIN-DELAY 900",
            b"IMPLEMENTATION Dovecot",
        ];
        let c = Capabilities::from_lines(lines);
        assert!(c.stls && c.user && c.pipelining && c.resp_codes && c.auth_resp_code);
        assert_eq!(c.sasl, vec!["PLAIN", "LOGIN"]);
        assert!(c.has_sasl("plain"));
        assert!(!c.has_sasl("CRAM-MD5"));
        assert_eq!(c.login_delay, Some(900));
        assert_eq!(c.implementation.as_deref(), Some("Dovecot"));
        assert_eq!(c.raw.len(), 11);
    }

    #[test]
    fn empty_and_junk_lines() {
        let c = Capabilities::from_lines(vec![&b""[..], b"\xff\xfe", b"LOGIN-DELAY x"]);
        assert!(!c.stls);
        assert_eq!(c.login_delay, None);
        assert_eq!(c.raw.len(), 2);
    }
}
