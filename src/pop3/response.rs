//! Response parsing: status lines and greetings (RFC 1939), extended
//! response codes (RFC 2449 section 8, RFC 3206), multi-line bodies.
//!
//! Parsers take raw bytes without the trailing CRLF: servers are not
//! obliged to send UTF-8, and a monitor must report what a broken server
//! said rather than choke on it.

use std::fmt;

use crate::wire::ServerText;

/// Lines come off the connection masked (`wire::Conn::read_line`).
fn sanitize(bytes: &[u8]) -> String {
    ServerText::from_masked(bytes).into_string()
}

/// `+OK` or `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Err,
}

/// An extended response code in brackets at the start of the text
/// (`-ERR [IN-USE] ...`). The ones a monitor acts on get their own variant;
/// anything else is kept verbatim so it can still be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseCode {
    /// RFC 3206: the credentials are wrong (not a server fault).
    Auth,
    /// RFC 3206: a temporary system problem; try again later.
    SysTemp,
    /// RFC 3206: a permanent system problem.
    SysPerm,
    /// RFC 2449: the maildrop is locked by another session.
    InUse,
    /// RFC 2449: logged in again too soon after the last login.
    LoginDelay,
    /// Any other code, as sent (upper-cased).
    Other(String),
}

impl ResponseCode {
    fn parse(code: &str) -> ResponseCode {
        let upper = code.to_ascii_uppercase();
        match upper.as_str() {
            "AUTH" => ResponseCode::Auth,
            "SYS/TEMP" => ResponseCode::SysTemp,
            "SYS/PERM" => ResponseCode::SysPerm,
            "IN-USE" => ResponseCode::InUse,
            "LOGIN-DELAY" => ResponseCode::LoginDelay,
            _ => ResponseCode::Other(upper),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ResponseCode::Auth => "AUTH",
            ResponseCode::SysTemp => "SYS/TEMP",
            ResponseCode::SysPerm => "SYS/PERM",
            ResponseCode::InUse => "IN-USE",
            ResponseCode::LoginDelay => "LOGIN-DELAY",
            ResponseCode::Other(s) => s,
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One status line: `+OK text` or `-ERR [CODE] text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub status: Status,
    pub code: Option<ResponseCode>,
    /// The text after the status (and after the code, if any), with control
    /// characters removed and invalid UTF-8 replaced.
    pub text: String,
}

impl StatusLine {
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

impl fmt::Display for StatusLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Status::Ok => "+OK",
            Status::Err => "-ERR",
        };
        f.write_str(status)?;
        if let Some(code) = &self.code {
            write!(f, " [{code}]")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// Why a line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected +OK or -ERR, got {shown:?}")]
pub struct BadStatus {
    /// A sanitized prefix of what arrived, for the report.
    pub shown: String,
}

/// Parse one status line (CRLF already removed).
pub fn parse_status(line: &[u8]) -> Result<StatusLine, BadStatus> {
    let (status, rest) = if let Some(rest) = strip_keyword(line, b"+OK") {
        (Status::Ok, rest)
    } else if let Some(rest) = strip_keyword(line, b"-ERR") {
        (Status::Err, rest)
    } else {
        let mut shown = sanitize(&line[..line.len().min(80)]);
        if line.len() > 80 {
            shown.push('…');
        }
        return Err(BadStatus { shown });
    };
    let text = sanitize(rest);
    let (code, text) = split_code(&text);
    Ok(StatusLine { status, code, text })
}

/// The keyword must be followed by a space or the end of the line, so that
/// `+OKAY` is not taken for `+OK`. Keywords are case-sensitive in practice
/// but servers exist that send `+ok`; accept those too.
fn strip_keyword<'a>(line: &'a [u8], keyword: &[u8]) -> Option<&'a [u8]> {
    if line.len() < keyword.len() || !line[..keyword.len()].eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = &line[keyword.len()..];
    match rest.first() {
        None => Some(rest),
        Some(b' ') | Some(b'\t') => Some(&rest[1..]),
        Some(_) => None,
    }
}

/// RFC 2449 section 8: a response code is `[` atom *( `/` atom ) `]` right
/// at the start of the text. Anything else in brackets is plain text.
fn split_code(text: &str) -> (Option<ResponseCode>, String) {
    let Some(inner) = text.strip_prefix('[') else {
        return (None, text.to_string());
    };
    let Some(end) = inner.find(']') else {
        return (None, text.to_string());
    };
    let code = &inner[..end];
    let well_formed = !code.is_empty()
        && code.split('/').all(|atom| {
            !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !well_formed {
        return (None, text.to_string());
    }
    (
        Some(ResponseCode::parse(code)),
        inner[end + 1..].trim().to_string(),
    )
}

/// The server greeting: its status line and, if present, the APOP
/// timestamp (RFC 1939 section 7: a msg-id `<...>` in the greeting text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub line: StatusLine,
    /// Exactly as sent, brackets included: the APOP digest is computed over
    /// these bytes, so any rewriting would break authentication.
    pub apop_timestamp: Option<String>,
}

/// Parse a greeting line (CRLF removed).
pub fn parse_greeting(line: &[u8]) -> Result<Greeting, BadStatus> {
    let status = parse_status(line)?;
    Ok(Greeting {
        apop_timestamp: find_timestamp(line),
        line: status,
    })
}

/// The first `<local@domain>` in the line, taken from the raw bytes. Only
/// printable ASCII without spaces or nested brackets is accepted: the digest
/// must be computed over exactly what the server will use.
fn find_timestamp(line: &[u8]) -> Option<String> {
    let start = line.iter().position(|&b| b == b'<')?;
    let len = line[start + 1..].iter().position(|&b| b == b'>')?;
    let inner = &line[start + 1..start + 1 + len];
    let ok = inner.contains(&b'@')
        && inner
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    if !ok {
        return None;
    }
    Some(String::from_utf8_lossy(&line[start..start + len + 2]).into_owned())
}

/// RFC 1939 section 3: a line of a multi-line body that starts with the
/// termination octet has it doubled; remove the extra one. Returns `None`
/// for the terminating `.` line itself.
pub fn unstuff(line: &[u8]) -> Option<&[u8]> {
    if line == b"." {
        None
    } else if let Some(rest) = line.strip_prefix(b".") {
        Some(rest)
    } else {
        Some(line)
    }
}

/// `+OK nn mm` from STAT (RFC 1939 section 5).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct MaildropStat {
    pub messages: u64,
    pub octets: u64,
}

/// Parse the text of a positive STAT reply.
pub fn parse_stat(text: &str) -> Option<MaildropStat> {
    let mut parts = text.split_whitespace();
    let messages = parts.next()?.parse().ok()?;
    let octets = parts.next()?.parse().ok()?;
    Some(MaildropStat { messages, octets })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_line_with_text() {
        let s = parse_status(b"+OK Dovecot ready.").unwrap();
        assert_eq!(s.status, Status::Ok);
        assert_eq!(s.code, None);
        assert_eq!(s.text, "Dovecot ready.");
    }

    #[test]
    fn bare_keywords() {
        assert_eq!(parse_status(b"+OK").unwrap().text, "");
        assert_eq!(parse_status(b"-ERR").unwrap().status, Status::Err);
    }

    #[test]
    fn keyword_must_end_at_space() {
        assert!(parse_status(b"+OKAY fine").is_err());
        assert!(parse_status(b"-ERRor").is_err());
        assert!(parse_status(b"").is_err());
        assert!(parse_status(b"* OK IMAP4rev1").is_err());
    }

    #[test]
    fn response_codes() {
        let cases: &[(&[u8], ResponseCode, &str)] = &[
            (
                b"-ERR [AUTH] Authentication failed.",
                ResponseCode::Auth,
                "Authentication failed.",
            ),
            (
                b"-ERR [SYS/TEMP] try later",
                ResponseCode::SysTemp,
                "try later",
            ),
            (b"-ERR [SYS/PERM] gone", ResponseCode::SysPerm, "gone"),
            (
                b"-ERR [IN-USE] Mailbox locked",
                ResponseCode::InUse,
                "Mailbox locked",
            ),
            (b"-ERR [LOGIN-DELAY] wait", ResponseCode::LoginDelay, "wait"),
            (b"-ERR [in-use] lower", ResponseCode::InUse, "lower"),
            (
                b"-ERR [SYS/TEMP/DISK] full",
                ResponseCode::Other("SYS/TEMP/DISK".into()),
                "full",
            ),
        ];
        for (line, code, text) in cases {
            let s = parse_status(line).unwrap();
            assert_eq!(s.code.as_ref(), Some(code), "{line:?}");
            assert_eq!(s.text, *text);
        }
    }

    #[test]
    fn brackets_that_are_not_codes_stay_text() {
        let s = parse_status(b"-ERR [not a code] x").unwrap();
        assert_eq!(s.code, None);
        assert_eq!(s.text, "[not a code] x");
        let s = parse_status(b"-ERR [unterminated").unwrap();
        assert_eq!(s.code, None);
        let s = parse_status(b"-ERR []").unwrap();
        assert_eq!(s.code, None);
    }

    #[test]
    fn non_utf8_and_control_bytes_are_sanitized() {
        let s = parse_status(b"-ERR bad \xff\xfe byte \x1b[31mred\x07").unwrap();
        assert_eq!(s.text, "bad \u{fffd}\u{fffd} byte [31mred");
        assert!(!s.text.chars().any(|c| c.is_control()));
    }

    #[test]
    fn greeting_timestamp() {
        let g = parse_greeting(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>").unwrap();
        assert_eq!(
            g.apop_timestamp.as_deref(),
            Some("<1896.697170952@dbc.mtview.ca.us>")
        );
        let g = parse_greeting(b"+OK Dovecot ready.").unwrap();
        assert_eq!(g.apop_timestamp, None);
        // Brackets without an @ are not a msg-id.
        let g = parse_greeting(b"+OK <hello>").unwrap();
        assert_eq!(g.apop_timestamp, None);
        let g = parse_greeting(b"+OK <a b@c>").unwrap();
        assert_eq!(g.apop_timestamp, None);
    }

    #[test]
    fn negative_greeting_parses() {
        let g = parse_greeting(b"-ERR [SYS/TEMP] too many connections").unwrap();
        assert_eq!(g.line.status, Status::Err);
        assert_eq!(g.line.code, Some(ResponseCode::SysTemp));
    }

    #[test]
    fn dot_unstuffing() {
        assert_eq!(unstuff(b"."), None);
        assert_eq!(unstuff(b".."), Some(&b"."[..]));
        assert_eq!(unstuff(b"..foo"), Some(&b".foo"[..]));
        assert_eq!(unstuff(b"USER"), Some(&b"USER"[..]));
        assert_eq!(unstuff(b""), Some(&b""[..]));
    }

    #[test]
    fn stat_reply() {
        assert_eq!(
            parse_stat("2 320"),
            Some(MaildropStat {
                messages: 2,
                octets: 320
            })
        );
        assert_eq!(parse_stat("2"), None);
        assert_eq!(parse_stat("x 1"), None);
        assert_eq!(parse_stat("-1 5"), None);
    }

    #[test]
    fn status_line_display_round_trip() {
        let s = parse_status(b"-ERR [IN-USE] locked").unwrap();
        assert_eq!(s.to_string(), "-ERR [IN-USE] locked");
    }
}
