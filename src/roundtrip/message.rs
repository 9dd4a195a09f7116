//! The probe message: what a human who finds one needs to know (a subject
//! that says what it is, a unique Message-ID, `Auto-Submitted`), the token
//! header, and reading back the delivery time from a `Received:` header.

use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

use super::token::{Token, HEADER};

/// A message ready for DATA (LF line ends; the submitter makes them CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeMessage {
    pub message_id: String,
    pub text: String,
}

/// Printable ASCII only, at most `max` characters: config text goes into
/// headers, and a header must not break or fold.
fn header_safe(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(max)
        .collect()
}

/// The message for one send. `token_value` is the signed header value.
pub fn build(
    monitor: &str,
    from: &str,
    to: &str,
    token: Token,
    token_value: &str,
    sent: OffsetDateTime,
) -> ProbeMessage {
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| {
            !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
        .unwrap_or("pop3-probe.invalid");
    // The tag is unpredictable, so a piece of it makes the id unique across
    // monitors that share a sequence number and millisecond.
    let nonce: String = token_value
        .rsplit_once("h=")
        .map(|(_, t)| t.chars().take(12).collect())
        .unwrap_or_default();
    let message_id = format!(
        "<pop3-probe.roundtrip.{}.{}.{nonce}@{domain}>",
        token.seq, token.sent_ms
    );
    let date = sent
        .format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".into());
    let name = header_safe(monitor, 100);
    let text = format!(
        "From: pop3-probe round trip <{from}>\n\
         To: <{to}>\n\
         Subject: [pop3-probe] round-trip test message {seq} of monitor {name} - please ignore\n\
         Date: {date}\n\
         Message-ID: {message_id}\n\
         Auto-Submitted: auto-generated\n\
         {HEADER}: {token_value}\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=us-ascii\n\
         \n\
         This message was sent by the pop3-probe round-trip monitor \"{name}\"\n\
         to measure mail delivery. The monitor finds it by POP3 and deletes it;\n\
         if you see it, it may be ignored or deleted.\n",
        seq = token.seq,
        from = header_safe(from, 254),
        to = header_safe(to, 254),
    );
    ProbeMessage { message_id, text }
}

/// The timestamp of a `Received:` header value (after its last `;`, RFC
/// 5322 section 3.6.7), in milliseconds since the epoch.
pub fn received_ms(value: &str) -> Option<i64> {
    let (_, date) = value.rsplit_once(';')?;
    // Some servers add a comment after the date: `... +0000 (UTC)`.
    let date = date.trim();
    let date = match date.find(" (") {
        Some(i) => &date[..i],
        None => date,
    };
    let t = OffsetDateTime::parse(date, &Rfc2822).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_what_it_is() {
        let t = Token {
            seq: 4,
            sent_ms: 1_000,
        };
        let sent = OffsetDateTime::from_unix_timestamp(1).unwrap();
        let m = build(
            "mail\r\nBcc: x@y",
            "monitor@example.com",
            "rt@example.com",
            t,
            "v1 s=4 t=1000 h=ABCDEFGHIJKLMNOP",
            sent,
        );
        assert_eq!(
            m.message_id,
            "<pop3-probe.roundtrip.4.1000.ABCDEFGHIJKL@example.com>"
        );
        assert!(m
            .text
            .contains("\nX-Pop3-Probe-Token: v1 s=4 t=1000 h=ABCDEFGHIJKLMNOP\n"));
        assert!(m.text.contains("Subject: [pop3-probe] round-trip test message 4 of monitor mail??Bcc: x@y - please ignore\n"));
        assert!(!m.text.contains("\nBcc:"), "a name cannot add a header");
        assert!(m.text.contains("Date: Thu, 01 Jan 1970 00:00:01 +0000\n"));
    }

    #[test]
    fn received_dates_are_read() {
        assert_eq!(
            received_ms("from x by y with esmtpsa id 1; Thu, 01 Jan 1970 00:00:02 +0000"),
            Some(2000)
        );
        assert_eq!(
            received_ms("by y; Thu, 01 Jan 1970 01:00:02 +0100 (CET)"),
            Some(2000)
        );
        assert_eq!(received_ms("no date here"), None);
        assert_eq!(received_ms("by y; yesterday"), None);
    }
}
