//! The record of a dialogue, secrets masked as each line is kept.

use std::sync::{Arc, Mutex};

/// Which way a transcript line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Client,
    Server,
}

/// One line of the dialogue, secrets already masked, server text sanitized.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WireLine {
    pub direction: Direction,
    pub line: String,
}

/// A shared, append-only record of the dialogue. Shared so that it survives
/// a connection dropped mid-command by a timeout.
#[derive(Debug, Clone, Default)]
pub struct Transcript(Option<Arc<Recording>>);

#[derive(Default)]
struct Recording {
    lines: Mutex<Vec<WireLine>>,
    /// Texts masked in every line as it is recorded, server lines included:
    /// a hostile server may echo what it was sent.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recording")
    }
}

impl Transcript {
    /// A transcript that records.
    pub fn recording() -> Self {
        Transcript(Some(Arc::default()))
    }

    /// A transcript that records and masks these texts (the password and
    /// its encodings) wherever they appear.
    pub fn masking(secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // Longest first, so a form that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Transcript(Some(Arc::new(Recording {
            lines: Mutex::default(),
            secrets,
        })))
    }

    /// A transcript that records nothing (the cheap default).
    pub fn off() -> Self {
        Transcript(None)
    }

    /// Keep one line. Callers pass server text through `sanitize` first;
    /// the masking happens here, so no line is kept unmasked.
    pub(crate) fn push(&self, direction: Direction, mut line: String) {
        if let Some(rec) = &self.0 {
            for secret in &rec.secrets {
                if line.contains(secret.as_str()) {
                    line = line.replace(secret.as_str(), "***");
                }
            }
            if let Ok(mut lines) = rec.lines.lock() {
                lines.push(WireLine { direction, line });
            }
        }
    }

    /// Note something that is not a protocol line (a TLS handshake, say).
    pub fn note(&self, text: impl Into<String>) {
        self.push(Direction::Client, format!("[{}]", text.into()));
    }

    pub fn lines(&self) -> Vec<WireLine> {
        match &self.0 {
            Some(rec) => rec.lines.lock().map(|l| l.clone()).unwrap_or_default(),
            None => Vec::new(),
        }
    }
}
