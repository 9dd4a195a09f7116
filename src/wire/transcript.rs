//! The record of a dialogue, secrets masked as each line is kept.

use std::sync::{Arc, Mutex};

use super::{Masker, ServerText};

/// Which way a transcript line went.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Client,
    Server,
}

/// One line of the dialogue, secrets already masked, server text sanitized.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct WireLine {
    pub direction: Direction,
    pub line: String,
}

/// A shared, append-only record of the dialogue, and the masker every line
/// read on the connection goes through (recording or not). Shared so that
/// it survives a connection dropped mid-command by a timeout.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    lines: Option<Arc<Mutex<Vec<WireLine>>>>,
    masker: Masker,
}

impl Transcript {
    /// A transcript that records (and masks nothing).
    pub fn recording() -> Self {
        Transcript {
            lines: Some(Arc::default()),
            masker: Masker::default(),
        }
    }

    /// A transcript that records and masks these texts (the password and
    /// its encodings) wherever they appear.
    pub fn masking(secrets: Vec<String>) -> Self {
        Transcript::recording().with_masker(Masker::new(secrets))
    }

    /// A transcript that records nothing (the cheap default).
    pub fn off() -> Self {
        Transcript::default()
    }

    /// Mask with `masker` (shared: forms added to it later count too).
    pub fn with_masker(mut self, masker: Masker) -> Self {
        self.masker = masker;
        self
    }

    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Keep one line; the masking happens here, so no line is kept unmasked.
    pub(crate) fn push(&self, direction: Direction, mut line: String) {
        if let Some(lines) = &self.lines {
            self.masker.mask_str(&mut line);
            if let Ok(mut lines) = lines.lock() {
                lines.push(WireLine { direction, line });
            }
        }
    }

    /// Keep a server line the connection has masked already.
    pub(crate) fn push_server(&self, line: &ServerText) {
        self.push(Direction::Server, line.to_string());
    }

    /// Note something that is not a protocol line (a TLS handshake, say).
    pub fn note(&self, text: impl Into<String>) {
        self.push(Direction::Client, format!("[{}]", text.into()));
    }

    pub fn lines(&self) -> Vec<WireLine> {
        match &self.lines {
            Some(l) => l.lock().map(|l| l.clone()).unwrap_or_default(),
            None => Vec::new(),
        }
    }
}
