//! The one capability record both protocols fill: POP3 from CAPA
//! (`pop3::capa`), SMTP from EHLO and the banner (`smtp::ehlo`). Reports,
//! drift detection and stored results need no second shape.

use serde::{Deserialize, Serialize};

use super::ServerText;

/// The capabilities a probe cares about, plus every line verbatim. Every
/// text in it is [`ServerText`]: masked before it was parsed. For
/// SMTP, `stls` means STARTTLS, `sasl` the AUTH mechanisms,
/// `implementation` the software the banner names; the POP3-only fields
/// stay empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Capabilities {
    /// RFC 2595: STLS offered (SMTP: STARTTLS).
    pub stls: bool,
    /// RFC 2449: USER/PASS offered.
    pub user: bool,
    /// RFC 2449/5034: SASL mechanisms, upper-cased.
    pub sasl: Vec<ServerText>,
    pub pipelining: bool,
    pub resp_codes: bool,
    pub auth_resp_code: bool,
    /// Minimum seconds between logins, if announced. `None` when the server
    /// did not say; a per-user value (`USER` suffix) is still a number.
    pub login_delay: Option<u64>,
    pub expire: Option<ServerText>,
    pub implementation: Option<ServerText>,
    /// Every capability line as sent (sanitized), for reports and drift.
    pub raw: Vec<ServerText>,
}

impl Capabilities {
    /// The SASL mechanisms, space-separated, for a report line.
    pub fn sasl_list(&self) -> String {
        self.sasl
            .iter()
            .map(ServerText::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn has_sasl(&self, mechanism: &str) -> bool {
        self.sasl.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}
