//! Capability drift: what a server offered last time against what it offers
//! now. A server that quietly stops offering STLS leaves `starttls-if-available`
//! clients sending passwords in the clear, and one that drops a SASL
//! mechanism or APOP breaks the clients that used it — none of which fails
//! a probe that still gets in. So the last set seen is kept with the alert
//! state and compared on every successful probe.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::probe::{Kind, ProbeResult, Status, TlsMode};
use crate::wire::ServerText;

/// The capabilities worth remembering. `None` means "not observable with
/// this monitor's settings", which is never a change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySet {
    /// STLS (POP3) or STARTTLS (SMTP) offered. Unknown under implicit TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stls: Option<bool>,
    /// SASL (POP3 CAPA) or AUTH (SMTP EHLO) mechanisms, upper-case, sorted.
    #[serde(default)]
    pub sasl: BTreeSet<ServerText>,
    /// Under `starttls-if-available`: STLS was advertised and then refused,
    /// so the probe went on without TLS. That is what a man in the middle
    /// who strips STARTTLS produces; a change to it is a security drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stls_refused: Option<bool>,
    /// USER/PASS offered (POP3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<bool>,
    /// The greeting carried an APOP timestamp (POP3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apop: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<ServerText>,
    /// LOGIN-DELAY seconds (POP3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_delay: Option<u64>,
    /// Read over TLS. Servers offer fewer login methods in plaintext
    /// (Dovecot without plaintext auth, Exim's AUTH after STARTTLS), so
    /// mechanisms are compared only between sets read the same way.
    #[serde(default)]
    pub over_tls: bool,
}

impl CapabilitySet {
    /// What a probe saw, if it saw capabilities at all. Failed probes say
    /// nothing: their failure alerts on its own, and a half-finished
    /// dialogue would look like lost capabilities.
    pub fn observe(r: &ProbeResult) -> Option<CapabilitySet> {
        if r.status == Status::Down {
            return None;
        }
        let caps = r.capabilities.as_ref()?;
        let over_tls = r.tls.is_some() && !r.tls_fallback;
        // STLS disappears from CAPA once TLS is up (RFC 2595): after a
        // STARTTLS that worked, it was offered. After a fallback the
        // plaintext capabilities say whether it is advertised; a refusal of
        // an advertised STLS is the fallback's warning, not lost STLS.
        let stls = match r.tls_mode {
            TlsMode::Implicit => None,
            TlsMode::Starttls | TlsMode::StarttlsIfAvailable if over_tls => Some(true),
            TlsMode::Starttls | TlsMode::StarttlsIfAvailable | TlsMode::None => Some(caps.stls),
        };
        let pop3 = r.kind == Kind::Pop3;
        let stls_refused =
            (r.tls_mode == TlsMode::StarttlsIfAvailable).then_some(r.tls_fallback && caps.stls);
        Some(CapabilitySet {
            stls,
            stls_refused,
            sasl: caps
                .sasl
                .iter()
                .map(|m| m.derived(|m| m.to_ascii_uppercase()))
                .collect(),
            user: pop3.then_some(caps.user),
            apop: pop3.then_some(r.apop_offered),
            // SMTP banners carry per-connection tokens (Gmail's does), so
            // only POP3's IMPLEMENTATION is stable enough to compare.
            implementation: if pop3 {
                caps.implementation.clone()
            } else {
                None
            },
            login_delay: caps.login_delay,
            over_tls,
        })
    }
}

/// How two sets differ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Losses that weaken security or break clients: alert.
    pub security: Vec<String>,
    /// Everything else (additions, a new implementation string): recorded.
    pub other: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.security.is_empty() && self.other.is_empty()
    }
}

/// Compare what was seen before with what is seen now.
pub fn compare(before: &CapabilitySet, now: &CapabilitySet, kind: Kind) -> Drift {
    let mut d = Drift::default();
    let stls = if kind == Kind::Smtp {
        "STARTTLS"
    } else {
        "STLS"
    };
    match (before.stls, now.stls) {
        (Some(true), Some(false)) => d.security.push(format!("{stls} is no longer offered")),
        (Some(false), Some(true)) => d.other.push(format!("{stls} is now offered")),
        _ => {}
    }
    match (before.stls_refused, now.stls_refused) {
        (Some(false), Some(true)) => d.security.push(format!(
            "{stls} is advertised but now refused, and the probe went on without TLS: possible STARTTLS downgrade"
        )),
        (Some(true), Some(false)) => d.other.push(format!("{stls} works again")),
        _ => {}
    }
    if before.over_tls == now.over_tls {
        for gone in before.sasl.difference(&now.sasl) {
            d.security
                .push(format!("SASL mechanism {gone} is no longer offered"));
        }
        for new in now.sasl.difference(&before.sasl) {
            d.other.push(format!("SASL mechanism {new} is now offered"));
        }
    }
    match (before.apop, now.apop) {
        (Some(true), Some(false)) => d
            .security
            .push("APOP is no longer offered (no timestamp in the greeting)".into()),
        (Some(false), Some(true)) => d.other.push("APOP is now offered".into()),
        _ => {}
    }
    match (before.user, now.user) {
        _ if before.over_tls != now.over_tls => {}
        (Some(true), Some(false)) => d.other.push("USER/PASS is no longer offered".into()),
        (Some(false), Some(true)) => d.other.push("USER/PASS is now offered".into()),
        _ => {}
    }
    if before.implementation != now.implementation
        && (before.implementation.is_some() || now.implementation.is_some())
    {
        d.other.push(format!(
            "IMPLEMENTATION changed from {} to {}",
            before.implementation.as_deref().unwrap_or("(none)"),
            now.implementation.as_deref().unwrap_or("(none)")
        ));
    }
    if before.login_delay != now.login_delay {
        let show = |v: Option<u64>| v.map_or("none".to_string(), |s| format!("{s} s"));
        d.other.push(format!(
            "LOGIN-DELAY changed from {} to {}",
            show(before.login_delay),
            show(now.login_delay)
        ));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(stls: bool, sasl: &[&str], apop: bool) -> CapabilitySet {
        CapabilitySet {
            stls: Some(stls),
            sasl: sasl
                .iter()
                .map(|s| ServerText::from_masked(s.as_bytes()))
                .collect(),
            stls_refused: None,
            user: Some(true),
            apop: Some(apop),
            implementation: None,
            login_delay: None,
            over_tls: false,
        }
    }

    #[test]
    fn an_advertised_stls_that_starts_being_refused_is_a_security_drift() {
        let mut before = set(true, &["PLAIN"], true);
        before.stls_refused = Some(false);
        let mut now = before.clone();
        now.stls_refused = Some(true);
        let d = compare(&before, &now, Kind::Pop3);
        assert_eq!(d.security.len(), 1, "{d:?}");
        assert!(d.security[0].contains("possible STARTTLS downgrade"));
        // Old state files have no such field: never a change.
        before.stls_refused = None;
        assert!(compare(&before, &now, Kind::Pop3).is_empty());
    }

    #[test]
    fn losing_stls_a_mechanism_or_apop_is_a_security_change() {
        let before = set(true, &["PLAIN", "CRAM-MD5"], true);
        let now = set(false, &["PLAIN"], false);
        let d = compare(&before, &now, Kind::Pop3);
        assert_eq!(
            d.security,
            vec![
                "STLS is no longer offered".to_string(),
                "SASL mechanism CRAM-MD5 is no longer offered".to_string(),
                "APOP is no longer offered (no timestamp in the greeting)".to_string(),
            ]
        );
        assert!(d.other.is_empty());
    }

    #[test]
    fn additions_and_identity_changes_are_recorded_not_alerted() {
        let before = set(false, &["PLAIN"], false);
        let mut now = set(true, &["PLAIN", "SCRAM-SHA-256"], true);
        now.implementation = Some(ServerText::from_masked(b"Dovecot 2.4"));
        now.login_delay = Some(900);
        let d = compare(&before, &now, Kind::Pop3);
        assert!(d.security.is_empty(), "{d:?}");
        assert_eq!(d.other.len(), 5, "{d:?}");
        assert!(d
            .other
            .iter()
            .any(|l| l.contains("LOGIN-DELAY changed from none to 900 s")));
    }

    #[test]
    fn unknown_is_never_a_change() {
        let mut before = set(true, &["PLAIN"], true);
        before.stls = None;
        let now = set(false, &["PLAIN"], true);
        assert!(compare(&before, &now, Kind::Pop3).is_empty());
        assert!(compare(&now, &now, Kind::Pop3).is_empty());
    }

    #[test]
    fn smtp_says_starttls() {
        let before = set(true, &["PLAIN", "LOGIN"], false);
        let now = set(false, &["PLAIN", "LOGIN"], false);
        assert_eq!(
            compare(&before, &now, Kind::Smtp).security,
            vec!["STARTTLS is no longer offered".to_string()]
        );
    }

    #[test]
    fn mechanisms_are_compared_only_between_sets_read_the_same_way() {
        let mut over_tls = set(true, &["PLAIN", "LOGIN"], false);
        over_tls.over_tls = true;
        let plaintext = set(true, &[], false);
        assert!(compare(&over_tls, &plaintext, Kind::Smtp).is_empty());
        let mut fewer = over_tls.clone();
        fewer.sasl.remove(&ServerText::from_masked(b"LOGIN"));
        assert_eq!(compare(&over_tls, &fewer, Kind::Smtp).security.len(), 1);
    }
}
