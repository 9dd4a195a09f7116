//! Server text, scrubbed: the one way words a server sent reach a result,
//! the state file, an alert or a log.
//!
//! A hostile or buggy server can echo the password (in a reply, a CAPA
//! `SASL` list, an EHLO `AUTH` line, after a failed AUTH, upper-cased).
//! [`Masker`] holds every form of the secret the probe may send and masks
//! them in the raw bytes of each line as the connection reads it, BEFORE
//! the text is trimmed and stripped of control characters: a password with
//! a trailing space, a TAB or a CR LF in it would otherwise survive as its
//! trimmed or joined remainder. [`ServerText`] is what comes out; its field
//! is private, so a new result field that holds server words has to be
//! filled from the masker's output.

use std::fmt;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// What replaces a masked secret.
pub const MASK: &str = "***";

/// The pieces of a password split at control characters shorter than this
/// are not masked on their own: masking every `a` would make the report
/// unreadable, and two characters tell an attacker little.
const MIN_PIECE: usize = 3;

/// The secrets to mask, shared by the connection, the transcript and the
/// engine's last pass over the result. Cloning shares the list, so a form
/// learnt mid-dialogue (an APOP digest) is masked everywhere from then on.
#[derive(Clone, Default)]
pub struct Masker(Arc<RwLock<Vec<Vec<u8>>>>);

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Masker(***)")
    }
}

impl Masker {
    /// A masker for these texts (the password and its encodings). Each is
    /// also masked as the server might mangle it: trimmed, with control
    /// characters removed, and piece by piece where a CR, LF or TAB splits
    /// it. Matching ignores ASCII case, so an upper-cased echo is caught.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Masker {
        let m = Masker::default();
        for s in secrets {
            m.add(&s);
        }
        m
    }

    /// Mask this text too, and the forms derived from it (see [`Masker::new`]).
    pub fn add(&self, secret: &str) {
        let mut forms = vec![secret.to_string(), secret.trim().to_string()];
        forms.push(secret.chars().filter(|c| !c.is_control()).collect());
        forms.extend(
            secret
                .split(|c: char| c.is_control())
                .map(|p| p.trim().to_string())
                .filter(|p| p.len() >= MIN_PIECE),
        );
        let Ok(mut list) = self.0.write() else {
            return;
        };
        for f in forms {
            let f = f.into_bytes();
            if !f.is_empty() && !list.contains(&f) {
                list.push(f);
            }
        }
        // Longest first, so a form that contains another is masked whole.
        list.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// Replace every secret form in `bytes`, ignoring ASCII case.
    pub fn mask_bytes(&self, bytes: &mut Vec<u8>) {
        let Ok(list) = self.0.read() else {
            // A poisoned lock cannot tell us what to hide: hide everything.
            bytes.clear();
            bytes.extend_from_slice(MASK.as_bytes());
            return;
        };
        for form in list.iter() {
            if bytes.len() < form.len() {
                continue;
            }
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            let mut hit = false;
            while i < bytes.len() {
                if bytes.len() - i >= form.len()
                    && bytes[i..i + form.len()].eq_ignore_ascii_case(form)
                {
                    out.extend_from_slice(MASK.as_bytes());
                    i += form.len();
                    hit = true;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            if hit {
                *bytes = out;
            }
        }
    }

    /// Mask a text we composed ourselves (a message quoting a reply).
    pub fn mask_str(&self, s: &mut String) {
        let mut b = std::mem::take(s).into_bytes();
        self.mask_bytes(&mut b);
        *s = String::from_utf8_lossy(&b).into_owned();
    }

    /// Server bytes to text: secrets masked first, then [`sanitize`]d.
    pub fn text(&self, bytes: &[u8]) -> ServerText {
        let mut b = bytes.to_vec();
        self.mask_bytes(&mut b);
        ServerText(sanitize(&b))
    }
}

/// Turn server bytes into text that is safe to print and log: invalid UTF-8
/// becomes U+FFFD, control characters (including ANSI escapes) are dropped,
/// surrounding blanks trimmed. Only for bytes already masked.
fn sanitize(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string()
}

/// Words a server sent, secrets masked and control characters removed.
/// Made only by [`Masker::text`], or from bytes the connection has already
/// masked ([`ServerText::from_masked`]), or read back from a result we
/// stored ourselves (`Deserialize`).
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct ServerText(String);

impl ServerText {
    /// Bytes out of [`super::Conn::read_line`], which masks every line as it
    /// reads it; the parsers below the connection use this.
    pub(crate) fn from_masked(bytes: &[u8]) -> ServerText {
        ServerText(sanitize(bytes))
    }

    /// A part of a text that is already clean (a word of it, upper-cased).
    pub(crate) fn derived(&self, f: impl FnOnce(&str) -> String) -> ServerText {
        ServerText(sanitize(f(&self.0).as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::ops::Deref for ServerText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Sets of server words can be asked about a plain name (`"PLAIN"`).
impl std::borrow::Borrow<str> for ServerText {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for ServerText {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ServerText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_drops_controls_and_bad_utf8() {
        let s = Masker::default().text(b"  bad \xff\xfe byte \x1b[31mred\x07 ");
        assert_eq!(s, "bad \u{fffd}\u{fffd} byte [31mred");
    }

    #[test]
    fn masks_before_trimming_and_stripping() {
        for pw in [
            "abc  ",
            " Secret9",
            "ab\tcd99",
            "abc\r\nDELE 1",
            "HUNTER2XY",
        ] {
            let m = Masker::new([pw.to_string()]);
            for echoed in [
                format!("SASL PLAIN {pw}"),
                format!("-ERR bad {}", pw.to_ascii_lowercase()),
                format!("-ERR bad {}", pw.to_ascii_uppercase()),
                format!("x {}", pw.trim()),
                format!("x {}", pw.replace(|c: char| c.is_control(), "")),
            ] {
                for line in echoed.split("\r\n") {
                    let t = m.text(line.as_bytes());
                    let left = pw.trim().replace(|c: char| c.is_control(), "");
                    assert!(
                        !t.to_ascii_lowercase().contains(&left.to_ascii_lowercase()),
                        "{pw:?} leaked in {t:?}"
                    );
                    for piece in pw.split(|c: char| c.is_control()) {
                        let piece = piece.trim();
                        if piece.len() >= MIN_PIECE {
                            assert!(!t.contains(piece), "{piece:?} leaked in {t:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_form_added_later_is_masked_by_every_clone() {
        let m = Masker::new(["s3cret".to_string()]);
        let shared = m.clone();
        m.add("287be4ab");
        assert_eq!(
            shared.text(b"-ERR bad digest 287BE4AB"),
            "-ERR bad digest ***"
        );
    }
}
