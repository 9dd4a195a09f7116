//! The one error every outside system reports, whatever port it sits
//! behind. It lives below the ports so that `credentials` (used by
//! `oauth2`, and so by `probe`) can report it without depending on them.

/// Why an outside system did not do what was asked. The message is for
/// people and never contains a secret value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{system}: {message}")]
pub struct SinkError {
    pub system: &'static str,
    pub message: String,
    /// Worth retrying soon (throttled, timed out, 5xx).
    pub transient: bool,
}

impl SinkError {
    pub fn new(system: &'static str, message: impl Into<String>) -> Self {
        SinkError {
            system,
            message: message.into(),
            transient: false,
        }
    }

    pub fn transient(system: &'static str, message: impl Into<String>) -> Self {
        SinkError {
            system,
            message: message.into(),
            transient: true,
        }
    }
}
