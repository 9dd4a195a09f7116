//! Reply parsing (RFC 5321 section 4.2): a three-digit code on every line,
//! `-` after the code on every line but the last, and enhanced status
//! codes (RFC 3463, `5.7.8`) kept apart from the text so that a failure
//! can be classified by them and still be shown whole.
//!
//! Parsers take raw bytes without the trailing CRLF, as the POP3 ones do:
//! a broken server's words must be reported, not choked on.

use std::fmt;

use crate::wire::ServerText;

/// Lines come off the connection masked (`wire::Conn::read_line`).
fn sanitize(bytes: &[u8]) -> String {
    ServerText::from_masked(bytes).into_string()
}

/// The most lines one reply may have. An EHLO reply lists one extension a
/// line and real servers send a dozen or two; this leaves room for chatty
/// ones and stops a hostile one from growing our memory.
pub const MAX_REPLY_LINES: usize = 128;

/// How much of a reply's text `Display` shows: enough for any real error
/// reply, bounded for alerts and metrics labels.
const MAX_SHOWN: usize = 512;

/// RFC 3463 `class.subject.detail`, e.g. `5.7.8` (authentication
/// credentials invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedCode {
    /// Parse the code at the start of `text`, followed by a space or the
    /// end. Its class must be 2, 4 or 5 (RFC 3463 section 3.1).
    fn parse_prefix(text: &str) -> Option<(EnhancedCode, &str)> {
        let end = text.find(' ').unwrap_or(text.len());
        let mut parts = text[..end].split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let number = |s: &str, max_len: usize| -> Option<u16> {
            if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let class = number(class, 1)? as u8;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        let code = EnhancedCode {
            class,
            subject: number(subject, 3)?,
            detail: number(detail, 3)?,
        };
        Some((code, text[end..].trim_start()))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One line of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub code: u16,
    /// `250-`: more lines follow.
    pub more: bool,
    /// The text after the code and separator, sanitized.
    pub text: String,
}

/// Why a line is not an SMTP reply line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadReply {
    #[error("expected an SMTP reply (three digits), got {shown:?}")]
    NotAReply { shown: String },
    #[error("reply code changed from {first} to {now} inside one multi-line reply")]
    CodeChanged { first: u16, now: u16 },
    #[error("a reply over {MAX_REPLY_LINES} lines")]
    TooManyLines,
}

fn shown(line: &[u8]) -> String {
    let mut shown = sanitize(&line[..line.len().min(80)]);
    if line.len() > 80 {
        shown.push('…');
    }
    shown
}

/// Parse one reply line (CRLF already removed). The first digit must be
/// 2 to 5 and the second 0 to 5 (RFC 5321 section 4.2); a bare `250` with
/// no text is a valid last line.
pub fn parse_line(line: &[u8]) -> Result<ReplyLine, BadReply> {
    let bad = || BadReply::NotAReply { shown: shown(line) };
    let digits = line.get(..3).ok_or_else(bad)?;
    if !matches!(digits[0], b'2'..=b'5')
        || !matches!(digits[1], b'0'..=b'5')
        || !digits[2].is_ascii_digit()
    {
        return Err(bad());
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let (more, rest) = match line.get(3) {
        None => (false, &b""[..]),
        Some(b' ') => (false, &line[4..]),
        Some(b'-') => (true, &line[4..]),
        Some(_) => return Err(bad()),
    };
    Ok(ReplyLine {
        code,
        more,
        text: sanitize(rest),
    })
}

/// A whole reply: one code, the text of every line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The enhanced status code of the first line, if it has one.
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line; where a line starts with the same enhanced
    /// code as the first, that code is removed (servers repeat it).
    pub lines: Vec<String>,
}

impl Reply {
    /// 2yz: the command succeeded.
    pub fn is_positive(&self) -> bool {
        self.code / 100 == 2
    }

    /// 3yz: go on (a SASL challenge, say).
    pub fn is_intermediate(&self) -> bool {
        self.code / 100 == 3
    }

    /// 4yz: failed for now; the same command may work later.
    pub fn is_transient(&self) -> bool {
        self.code / 100 == 4
    }

    /// 5yz: failed for good.
    pub fn is_permanent(&self) -> bool {
        self.code / 100 == 5
    }

    /// The text of the first line (for an EHLO reply: the server's name
    /// and greeting; for the banner: the name and software).
    pub fn first_line(&self) -> &str {
        self.lines.first().map(String::as_str).unwrap_or("")
    }

    fn from_lines(lines: Vec<ReplyLine>) -> Reply {
        let code = lines.first().map(|l| l.code).unwrap_or_default();
        let mut enhanced = None;
        let mut texts = Vec::with_capacity(lines.len());
        for (i, line) in lines.into_iter().enumerate() {
            let parsed = EnhancedCode::parse_prefix(&line.text)
                .filter(|(e, _)| u16::from(e.class) == code / 100);
            let text = match parsed {
                Some((e, rest)) if i == 0 => {
                    enhanced = Some(e);
                    rest.to_string()
                }
                Some((e, rest)) if Some(e) == enhanced => rest.to_string(),
                _ => line.text,
            };
            texts.push(text);
        }
        Reply {
            code,
            enhanced,
            lines: texts,
        }
    }
}

/// `454 4.7.0 TLS not available`; a multi-line reply on one line, its
/// lines joined by spaces, cut at a few hundred characters.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.code.to_string();
        if let Some(e) = self.enhanced {
            out.push(' ');
            out.push_str(&e.to_string());
        }
        for line in self.lines.iter().filter(|l| !l.is_empty()) {
            if out.len() >= MAX_SHOWN {
                break;
            }
            out.push(' ');
            out.push_str(line);
        }
        if out.len() > MAX_SHOWN {
            let mut cut = MAX_SHOWN;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
        }
        f.write_str(&out)
    }
}

/// Collects reply lines as they arrive until the last one.
#[derive(Debug, Default)]
pub struct Assembler {
    lines: Vec<ReplyLine>,
}

impl Assembler {
    /// Add one line. `Ok(Some(reply))` once the last line has come.
    pub fn push(&mut self, raw: &[u8]) -> Result<Option<Reply>, BadReply> {
        let line = parse_line(raw)?;
        if let Some(first) = self.lines.first() {
            if first.code != line.code {
                return Err(BadReply::CodeChanged {
                    first: first.code,
                    now: line.code,
                });
            }
        }
        if self.lines.len() == MAX_REPLY_LINES {
            return Err(BadReply::TooManyLines);
        }
        let more = line.more;
        self.lines.push(line);
        if more {
            return Ok(None);
        }
        Ok(Some(Reply::from_lines(std::mem::take(&mut self.lines))))
    }
}

/// Parse every reply in `bytes` (lines ended by LF, CR optional), for
/// tests and fuzzing; the client reads line by line through
/// [`Assembler`]. Stops at the first bad line. Lines after the last
/// complete reply are ignored.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Reply>, BadReply> {
    let mut replies = Vec::new();
    let mut asm = Assembler::default();
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let mut line = &rest[..i];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        rest = &rest[i + 1..];
        if let Some(reply) = asm.push(line)? {
            replies.push(reply);
        }
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Reply {
        let mut r = parse_all(bytes).unwrap();
        assert_eq!(r.len(), 1, "{r:?}");
        r.remove(0)
    }

    #[test]
    fn single_line_with_enhanced_code() {
        let r = one(b"535 5.7.8 Authentication credentials invalid\r\n");
        assert_eq!(r.code, 535);
        assert_eq!(
            r.enhanced,
            Some(EnhancedCode {
                class: 5,
                subject: 7,
                detail: 8
            })
        );
        assert_eq!(r.lines, vec!["Authentication credentials invalid"]);
        assert!(r.is_permanent() && !r.is_transient());
        assert_eq!(
            r.to_string(),
            "535 5.7.8 Authentication credentials invalid"
        );
    }

    #[test]
    fn multi_line_ehlo() {
        let r = one(b"250-mx.example.org Hello [127.0.0.1]\r\n250-SIZE 52428800\r\n250-STARTTLS\r\n250 HELP\r\n");
        assert_eq!(r.code, 250);
        assert!(r.is_positive());
        assert_eq!(r.enhanced, None);
        assert_eq!(r.first_line(), "mx.example.org Hello [127.0.0.1]");
        assert_eq!(r.lines.len(), 4);
        assert_eq!(r.lines[3], "HELP");
    }

    #[test]
    fn repeated_enhanced_code_is_shown_once() {
        let r = one(b"550-5.7.1 Relaying denied.\r\n550 5.7.1 See the policy page.\r\n");
        assert_eq!(
            r.to_string(),
            "550 5.7.1 Relaying denied. See the policy page."
        );
    }

    #[test]
    fn enhanced_code_must_match_the_class() {
        // A 2.x.x code on a 5yz reply is not an enhanced code; it stays text.
        let r = one(b"550 2.0.0 odd\r\n");
        assert_eq!(r.enhanced, None);
        assert_eq!(r.lines, vec!["2.0.0 odd"]);
        let r = one(b"250 1.2.3 not a class\r\n");
        assert_eq!(r.enhanced, None);
        let r = one(b"454 4.7.0\r\n");
        assert_eq!(r.enhanced.map(|e| e.to_string()).as_deref(), Some("4.7.0"));
        assert_eq!(r.to_string(), "454 4.7.0");
        let r = one(b"250 2.0.0000 too long\r\n");
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn bare_code_and_lf_only() {
        let r = one(b"250\n");
        assert_eq!(r.code, 250);
        assert_eq!(r.lines, vec![""]);
        assert_eq!(r.to_string(), "250");
    }

    #[test]
    fn not_replies() {
        for bad in [
            &b"SSH-2.0-OpenSSH_9.2"[..],
            b"+OK POP3 ready",
            b"25",
            b"2500 x",
            b"250x",
            b"650 x",
            b"190 x",
            b"260 x",
            b"",
        ] {
            assert!(
                matches!(parse_line(bad), Err(BadReply::NotAReply { .. })),
                "{bad:?}"
            );
        }
        let e = parse_line(b"SSH-2.0-OpenSSH_9.2").unwrap_err();
        assert!(e.to_string().contains("SSH-2.0"), "{e}");
    }

    #[test]
    fn code_change_mid_reply_is_an_error() {
        assert_eq!(
            parse_all(b"250-a\r\n550 b\r\n").unwrap_err(),
            BadReply::CodeChanged {
                first: 250,
                now: 550
            }
        );
    }

    #[test]
    fn line_cap_per_reply() {
        let mut ok = Vec::new();
        for _ in 0..MAX_REPLY_LINES - 1 {
            ok.extend_from_slice(b"250-X\r\n");
        }
        ok.extend_from_slice(b"250 end\r\n");
        assert_eq!(one(&ok).lines.len(), MAX_REPLY_LINES);

        let mut over = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            over.extend_from_slice(b"250-X\r\n");
        }
        over.extend_from_slice(b"250 end\r\n");
        assert_eq!(parse_all(&over).unwrap_err(), BadReply::TooManyLines);
    }

    #[test]
    fn control_characters_and_bad_utf8_are_cleaned() {
        let r = one(b"220 evil\x1b[31m \xff host\r\n");
        assert_eq!(r.lines, vec!["evil[31m \u{fffd} host"]);
    }

    #[test]
    fn display_is_bounded() {
        let mut bytes = Vec::new();
        for _ in 0..20 {
            bytes.extend_from_slice(b"550-");
            bytes.extend_from_slice(&[b'x'; 100]);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"550 end\r\n");
        let shown = one(&bytes).to_string();
        assert!(shown.chars().count() <= MAX_SHOWN + 1, "{}", shown.len());
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn several_replies_in_one_buffer() {
        let r = parse_all(b"220 hi\r\n250-a\r\n250 b\r\n221 bye\r\n250-partial").unwrap();
        assert_eq!(
            r.iter().map(|r| r.code).collect::<Vec<_>>(),
            vec![220, 250, 221]
        );
    }
}
