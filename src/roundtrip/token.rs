//! The probe message's token: an HMAC-SHA256, made with the monitor's
//! signing key, over the monitor's name, a sequence number and the send
//! time. It travels in one header, `X-Pop3-Probe-Token`, so that the
//! retrieving side can tell the probe's own messages from everything else
//! in the mailbox by reading headers alone (`TOP n 0`).
//!
//! The monitor's name is inside the MAC but not in the header: a verifier
//! recomputes the MAC with its own name, so a token made by another monitor
//! (even one sharing the key) never verifies here, and nothing a server
//! echoes back decides whose message it is.
//!
//! [`Verified`] is the proof that a message's token verified. It has private
//! fields and is made only by [`Verifier::verify_message`], from headers
//! the round-trip mailbox session read for one message: the deleting
//! session's `DELE` takes it by value, so no code path can delete a message
//! whose token was not verified.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The header that carries the token.
pub const HEADER: &str = "X-Pop3-Probe-Token";
/// The token format's version, first in the header value.
const VERSION: &str = "v1";
/// Domain separation: a MAC made for anything else with the same key is
/// never a valid token.
const CONTEXT: &[u8] = b"pop3-probe roundtrip token v1\0";
/// Shorter keys are refused: the key is all that stops a stranger from
/// making messages the probe would delete.
pub const MIN_KEY_BYTES: usize = 16;
/// The MAC is compared whole: a truncated tag never verifies.
const TAG_BYTES: usize = 32;

/// The monitor's signing key. `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey(SecretString);

impl SigningKey {
    /// The key is the secret's bytes as given (UTF-8), at least
    /// [`MIN_KEY_BYTES`] long.
    pub fn new(secret: SecretString) -> Result<SigningKey, KeyTooShort> {
        let len = secret.expose_secret().len();
        if len < MIN_KEY_BYTES {
            return Err(KeyTooShort { len });
        }
        Ok(SigningKey(secret))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length; `new_from_slice` cannot fail.
        <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// A signing key shorter than [`MIN_KEY_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signing key has {len} bytes; at least {MIN_KEY_BYTES} are needed")]
pub struct KeyTooShort {
    pub len: usize,
}

/// What a token says: which send of the monitor it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Token {
    /// Counts up by one per message sent, kept in state between runs.
    pub seq: u64,
    /// When it was submitted, milliseconds since the Unix epoch.
    pub sent_ms: i64,
}

fn input(mac: &mut Hmac<Sha256>, monitor: &str, token: Token) {
    mac.update(CONTEXT);
    // Length-prefixed, so no two (name, seq, time) triples share an input.
    mac.update(&(monitor.len() as u64).to_be_bytes());
    mac.update(monitor.as_bytes());
    mac.update(&token.seq.to_be_bytes());
    mac.update(&token.sent_ms.to_be_bytes());
}

impl Token {
    /// The header value: `v1 s=SEQ t=MILLIS h=TAG` (TAG base64url, no
    /// padding). ASCII only and short, so no transport folds or rewrites it.
    pub fn header_value(&self, monitor: &str, key: &SigningKey) -> String {
        let mut mac = key.mac();
        input(&mut mac, monitor, *self);
        let tag = mac.finalize().into_bytes();
        format!(
            "{VERSION} s={} t={} h={}",
            self.seq,
            self.sent_ms,
            URL_SAFE_NO_PAD.encode(tag)
        )
    }
}

/// Why a header value is not this monitor's token. Every variant means the
/// same to the mailbox: the message is not ours, and it is left alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no {HEADER} header")]
    Missing,
    #[error("more than one {HEADER} header")]
    Ambiguous,
    #[error("the {HEADER} header is not a v1 token")]
    Malformed,
    /// Made with another key, for another monitor, or altered.
    #[error("the token does not verify with this monitor's key")]
    BadSignature,
}

/// Checks tokens for one monitor with its key.
#[derive(Clone)]
pub struct Verifier {
    monitor: String,
    key: SigningKey,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("monitor", &self.monitor)
            .field("key", &self.key)
            .finish()
    }
}

/// Proof that one message's token verified with the monitor's key: made
/// only by [`Verifier::verify_message`], consumed by `DELE`.
#[derive(Debug)]
pub struct Verified {
    session: u64,
    msg: u32,
    uidl: String,
    token: Token,
}

impl Verified {
    pub fn token(&self) -> Token {
        self.token
    }

    pub fn uidl(&self) -> &str {
        &self.uidl
    }

    /// The POP3 session (by its number) and message this proof is for.
    pub(super) fn target(&self) -> (u64, u32) {
        (self.session, self.msg)
    }
}

impl Verifier {
    pub fn new(monitor: impl Into<String>, key: SigningKey) -> Verifier {
        Verifier {
            monitor: monitor.into(),
            key,
        }
    }

    pub fn monitor(&self) -> &str {
        &self.monitor
    }

    /// A token for this monitor (what the sender puts in the header).
    pub fn sign(&self, token: Token) -> String {
        token.header_value(&self.monitor, &self.key)
    }

    /// Parse and verify one header value (surrounding blanks ignored).
    /// The tag is compared in constant time and must be whole.
    pub fn verify_value(&self, value: &str) -> Result<Token, Rejection> {
        let mut parts = value.split_ascii_whitespace();
        if parts.next() != Some(VERSION) {
            return Err(Rejection::Malformed);
        }
        let field = |part: Option<&str>, name: &str| -> Result<String, Rejection> {
            part.and_then(|p| p.strip_prefix(name))
                .map(str::to_string)
                .ok_or(Rejection::Malformed)
        };
        let seq = field(parts.next(), "s=")?;
        let sent = field(parts.next(), "t=")?;
        let tag = field(parts.next(), "h=")?;
        if parts.next().is_some() {
            return Err(Rejection::Malformed);
        }
        // Digits only: `+5` or ` 5` would parse but is not what we write.
        let number_ok =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !number_ok(&seq) || !(number_ok(&sent) || sent.strip_prefix('-').is_some_and(number_ok))
        {
            return Err(Rejection::Malformed);
        }
        let token = Token {
            seq: seq.parse().map_err(|_| Rejection::Malformed)?,
            sent_ms: sent.parse().map_err(|_| Rejection::Malformed)?,
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag.as_bytes())
            .map_err(|_| Rejection::Malformed)?;
        if tag.len() != TAG_BYTES {
            return Err(Rejection::Malformed);
        }
        let mut mac = self.key.mac();
        input(&mut mac, &self.monitor, token);
        mac.verify_slice(&tag)
            .map_err(|_| Rejection::BadSignature)?;
        Ok(token)
    }

    /// Verify the token in one message's headers, as the round-trip mailbox
    /// session read them, and on success hand out the proof `DELE` needs.
    pub(super) fn verify_message(
        &self,
        headers: &super::mailbox::TopHeaders,
    ) -> Result<Verified, Rejection> {
        let values = headers.values(HEADER);
        let value = match values.as_slice() {
            [] => return Err(Rejection::Missing),
            [one] => one,
            _ => return Err(Rejection::Ambiguous),
        };
        let token = self.verify_value(value)?;
        Ok(Verified {
            session: headers.session(),
            msg: headers.msg(),
            uidl: headers.uidl().to_string(),
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SigningKey {
        SigningKey::new(SecretString::from(s.to_string())).unwrap()
    }

    fn verifier(name: &str) -> Verifier {
        Verifier::new(name, key("a key of sufficient length"))
    }

    const T: Token = Token {
        seq: 7,
        sent_ms: 1_796_161_182_123,
    };

    #[test]
    fn signed_value_verifies_and_reads_back() {
        let v = verifier("mail-roundtrip");
        let header = v.sign(T);
        assert!(header.starts_with("v1 s=7 t=1796161182123 h="), "{header}");
        assert!(header.is_ascii() && header.len() < 100);
        assert_eq!(v.verify_value(&header), Ok(T));
        assert_eq!(v.verify_value(&format!("  {header}\t")), Ok(T));
    }

    #[test]
    fn the_header_is_deterministic_and_covers_every_field() {
        let v = Verifier::new("m", key("0123456789abcdef"));
        let a = v.sign(Token { seq: 1, sent_ms: 0 });
        assert_eq!(a, v.sign(Token { seq: 1, sent_ms: 0 }));
        assert_ne!(a, v.sign(Token { seq: 2, sent_ms: 0 }));
        assert_ne!(a, v.sign(Token { seq: 1, sent_ms: 1 }));
    }

    #[test]
    fn truncated_tokens_never_verify() {
        let v = verifier("mail-roundtrip");
        let header = v.sign(T);
        for cut in 0..header.len() {
            assert!(
                v.verify_value(&header[..cut]).is_err(),
                "a token cut to {cut} bytes verified: {:?}",
                &header[..cut]
            );
        }
        // A tag that is a prefix of the right one is refused even when it
        // decodes (verify_truncated_* is never used).
        let (head, tag) = header.rsplit_once("h=").unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(tag).unwrap();
        let short = format!("{head}h={}", URL_SAFE_NO_PAD.encode(&bytes[..16]));
        assert_eq!(v.verify_value(&short), Err(Rejection::Malformed));
    }

    #[test]
    fn a_wrong_key_is_a_bad_signature() {
        let header = verifier("mail-roundtrip").sign(T);
        let other = Verifier::new("mail-roundtrip", key("another key, same length"));
        assert_eq!(other.verify_value(&header), Err(Rejection::BadSignature));
    }

    #[test]
    fn replay_across_monitors_fails_even_with_the_same_key() {
        let header = verifier("roundtrip-a").sign(T);
        assert_eq!(
            verifier("roundtrip-b").verify_value(&header),
            Err(Rejection::BadSignature)
        );
        // Length prefixes: "ab"+"c" and "a"+"bc" are different inputs.
        assert_ne!(verifier("ab").sign(T), verifier("a").sign(T));
    }

    #[test]
    fn altered_fields_are_bad_signatures() {
        let v = verifier("mail-roundtrip");
        let header = v.sign(T);
        let later = header.replace("s=7 ", "s=8 ");
        assert_eq!(v.verify_value(&later), Err(Rejection::BadSignature));
        let moved = header.replace("t=1796161182123", "t=1796161182124");
        assert_eq!(v.verify_value(&moved), Err(Rejection::BadSignature));
        // Flip one character of the tag.
        let mut bytes = header.into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(v.verify_value(&flipped).is_err());
    }

    #[test]
    fn malformed_values_are_refused() {
        let v = verifier("mail-roundtrip");
        let good = v.sign(T);
        let tag = good.rsplit_once("h=").unwrap().1;
        for bad in [
            String::new(),
            "v2 s=7 t=1 h=x".to_string(),
            format!("v1 s=+7 t=1796161182123 h={tag}"),
            format!("v1 t=1796161182123 s=7 h={tag}"),
            format!("v1 s=7 t=1796161182123 h={tag} extra"),
            format!("v1 s=99999999999999999999999 t=1 h={tag}"),
            format!("v1 s=7 t=1796161182123 h={tag}=="),
            format!("V1 s=7 t=1796161182123 h={tag}"),
        ] {
            assert!(v.verify_value(&bad).is_err(), "{bad:?} verified");
        }
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_print() {
        let e = SigningKey::new(SecretString::from("short".to_string())).unwrap_err();
        assert_eq!(e, KeyTooShort { len: 5 });
        let k = key("a key of sufficient length");
        assert_eq!(format!("{k:?}"), "SigningKey(***)");
        let v = Verifier::new("m", k);
        assert!(!format!("{v:?}").contains("sufficient"));
    }
}
