//! The probe against a real Dovecot (Debian dovecot-pop3d) on loopback,
//! with test-generated certificates.

mod common;

use std::time::Duration;

use common::dovecot::{dovecot, Dovecot};
use pop3_probe::probe::{
    self, AuthMethod, FailureKind, Phase, ProbeResult, Status, Target, TlsMode,
};
use secrecy::SecretString;

fn target(d: &Dovecot, port_key: &str, tls: TlsMode, auth: AuthMethod) -> Target {
    let mut t = Target::new(port_key, "127.0.0.1", d.port(port_key));
    t.tls = tls;
    t.auth = auth;
    t.username = Some(d.get("USER").to_string());
    t.password = Some(SecretString::from(d.get("PASSWORD").to_string()));
    t.ca_pem = Some(d.pem("CA_PEM"));
    t.tls_server_name = Some(d.get("SERVER_NAME").to_string());
    t.timeout = Duration::from_secs(10);
    t.warning = Duration::from_secs(5);
    t.critical = Duration::from_secs(8);
    t.certificate_warning_days = Some(14);
    t
}

fn assert_up(r: &ProbeResult) {
    assert_eq!(r.status, Status::Up, "{}", pop3_probe::output::human(r));
    assert_eq!(r.failure, None);
}

fn assert_mailbox(d: &Dovecot, r: &ProbeResult) {
    let m = r.mailbox.expect("STAT numbers");
    assert_eq!(m.messages.to_string(), d.get("MSG_COUNT"));
    assert_eq!(m.octets.to_string(), d.get("MSG_OCTETS"));
}

#[tokio::test]
async fn implicit_tls_with_trusted_ca() {
    let d = dovecot();
    let r = probe::pop3::probe(&target(
        d,
        "POP3S_PORT",
        TlsMode::Implicit,
        AuthMethod::Auto,
    ))
    .await;
    assert_up(&r);
    assert_mailbox(d, &r);
    let tls = r.tls.as_ref().unwrap();
    assert!(tls.verified.passed());
    assert!(tls.version.starts_with("TLSv1."), "{}", tls.version);
    let cert = tls.certificate.as_ref().unwrap();
    assert!(cert.days_remaining > 300, "{cert:?}");
    assert!(cert.names.iter().any(|n| n == "localhost"), "{cert:?}");
    assert_eq!(
        r.address.as_deref(),
        Some(format!("127.0.0.1:{}", d.port("POP3S_PORT")).as_str())
    );
    // Dovecot offers APOP here, so auto picks it.
    assert!(r.apop_offered);
    assert_eq!(r.auth_used, Some(AuthMethod::Apop));
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.phase).collect();
    assert_eq!(
        phases,
        [
            Phase::Resolve,
            Phase::Connect,
            Phase::Tls,
            Phase::Greeting,
            Phase::Auth,
            Phase::Stat,
            Phase::Quit
        ]
    );
}

#[tokio::test]
async fn every_login_method_over_tls() {
    let d = dovecot();
    for auth in [AuthMethod::Apop, AuthMethod::User, AuthMethod::SaslPlain] {
        let r = probe::pop3::probe(&target(d, "POP3S_PORT", TlsMode::Implicit, auth)).await;
        assert_up(&r);
        assert_eq!(r.auth_used, Some(auth));
        assert_mailbox(d, &r);
    }
    // Without an APOP timestamp, auto chooses SASL PLAIN (advertised).
    let r = probe::pop3::probe(&target(
        d,
        "POP3S_NOAPOP_PORT",
        TlsMode::Implicit,
        AuthMethod::Auto,
    ))
    .await;
    assert_up(&r);
    assert!(!r.apop_offered);
    assert_eq!(r.auth_used, Some(AuthMethod::SaslPlain));
}

#[tokio::test]
async fn stls_required() {
    let d = dovecot();
    let r = probe::pop3::probe(&target(
        d,
        "POP3_PLAIN_STLS_PORT",
        TlsMode::Starttls,
        AuthMethod::User,
    ))
    .await;
    assert_up(&r);
    assert!(r.tls.as_ref().unwrap().verified.passed());
    assert!(!r.tls_fallback);
    assert_mailbox(d, &r);
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.phase).collect();
    // No CAPA: STLS goes first, APOP needs none.
    assert_eq!(
        phases,
        [
            Phase::Resolve,
            Phase::Connect,
            Phase::Greeting,
            Phase::Stls,
            Phase::Tls,
            Phase::Auth,
            Phase::Stat,
            Phase::Quit
        ]
    );

    // The listener without TLS cannot satisfy a required STLS.
    let r = probe::pop3::probe(&target(
        d,
        "POP3_NOTLS_PORT",
        TlsMode::Starttls,
        AuthMethod::User,
    ))
    .await;
    assert_eq!(r.failure, Some(FailureKind::StlsUnavailable));
    assert_eq!(r.failed_phase, Some(Phase::Stls));
    assert_eq!(
        r.server_reply.as_deref(),
        Some("-ERR TLS support isn't enabled.")
    );
}

#[tokio::test]
async fn stls_if_available_with_and_without_stls() {
    let d = dovecot();
    let r = probe::pop3::probe(&target(
        d,
        "POP3_PLAIN_STLS_PORT",
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    ))
    .await;
    assert_up(&r);
    assert!(!r.tls_fallback);
    assert!(r.tls.is_some());

    // No STLS there: fall back, and refuse to send a password in the clear.
    let r = probe::pop3::probe(&target(
        d,
        "POP3_NOTLS_PORT",
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    ))
    .await;
    assert!(r.tls_fallback);
    assert_eq!(r.failure, Some(FailureKind::PlaintextRefused));
    assert!(r.tls.is_none());

    // Allowed explicitly: it logs in, and says the password went in clear.
    let mut t = target(
        d,
        "POP3_NOTLS_PORT",
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    );
    t.allow_plaintext_password = true;
    let r = probe::pop3::probe(&t).await;
    assert_up(&r);
    assert!(r.tls_fallback);
    assert!(
        r.warnings.iter().any(|w| w.contains("cleartext")),
        "{:?}",
        r.warnings
    );
    assert_mailbox(d, &r);
}

#[tokio::test]
async fn apop_over_stls_listener_in_plaintext_mode() {
    // APOP never sends the password, so it is allowed without TLS.
    let d = dovecot();
    let r = probe::pop3::probe(&target(
        d,
        "POP3_PLAIN_STLS_PORT",
        TlsMode::None,
        AuthMethod::Apop,
    ))
    .await;
    assert_up(&r);
    assert!(r.tls.is_none());
    assert_eq!(r.auth_used, Some(AuthMethod::Apop));
}

#[tokio::test]
async fn wrong_password_is_auth_failed_with_dovecots_words() {
    let d = dovecot();
    for auth in [AuthMethod::User, AuthMethod::SaslPlain, AuthMethod::Apop] {
        let mut t = target(d, "POP3S_PORT", TlsMode::Implicit, auth);
        t.password = Some(SecretString::from("wrong-password".to_string()));
        let r = probe::pop3::probe(&t).await;
        assert_eq!(r.failure, Some(FailureKind::AuthFailed), "{auth}: {r:?}");
        assert_eq!(r.failed_phase, Some(Phase::Auth));
        let reply = r.server_reply.as_deref().unwrap();
        assert!(reply.starts_with("-ERR [AUTH]"), "{reply}");
        assert!(FailureKind::AuthFailed.is_credentials_problem());
    }
}

#[tokio::test]
async fn certificate_failures() {
    let d = dovecot();
    let r = probe::pop3::probe(&target(
        d,
        "POP3S_EXPIRED_PORT",
        TlsMode::Implicit,
        AuthMethod::Auto,
    ))
    .await;
    assert_eq!(r.failure, Some(FailureKind::CertificateExpired), "{r:?}");
    assert_eq!(r.failed_phase, Some(Phase::Tls));
    // The facts of the rejected certificate are still reported.
    let cert = r.tls.as_ref().unwrap().certificate.as_ref().unwrap();
    assert!(cert.days_remaining < 0, "{cert:?}");
    // The probe stopped at TLS: not even the greeting was read, let alone a
    // password sent, over the unverified connection.
    assert_eq!(r.phases.last().map(|p| p.phase), Some(Phase::Tls));
    assert!(r.auth_used.is_none());

    let mut t = target(d, "POP3S_PORT", TlsMode::Implicit, AuthMethod::Auto);
    t.tls_server_name = Some("mail.wrong-name.test".into());
    let r = probe::pop3::probe(&t).await;
    assert_eq!(
        r.failure,
        Some(FailureKind::CertificateNameMismatch),
        "{r:?}"
    );

    let mut t = target(d, "POP3S_PORT", TlsMode::Implicit, AuthMethod::Auto);
    t.ca_pem = Some(d.pem("OTHER_CA_PEM"));
    let r = probe::pop3::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::CertificateInvalid), "{r:?}");

    // The built-in Mozilla roots do not trust a test CA either.
    let mut t = target(d, "POP3S_PORT", TlsMode::Implicit, AuthMethod::Auto);
    t.ca_pem = None;
    let r = probe::pop3::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::CertificateInvalid), "{r:?}");

    // Verification by IP address against the cert's IP SAN works.
    let mut t = target(d, "POP3S_PORT", TlsMode::Implicit, AuthMethod::Auto);
    t.tls_server_name = None;
    let r = probe::pop3::probe(&t).await;
    assert_up(&r);
}

#[tokio::test]
async fn insecure_skip_verify_is_flagged() {
    let d = dovecot();
    let mut t = target(d, "POP3S_EXPIRED_PORT", TlsMode::Implicit, AuthMethod::Auto);
    t.insecure_skip_verify = true;
    let r = probe::pop3::probe(&t).await;
    assert_ne!(r.status, Status::Down, "{r:?}");
    assert_eq!(
        r.tls.as_ref().unwrap().verified,
        pop3_probe::net::Verification::NotAsked
    );
    assert!(r.warnings.iter().any(|w| w.contains("DISABLED")));
}

#[tokio::test]
async fn closed_port_and_empty_mailbox_and_no_login() {
    let d = dovecot();
    let r = probe::pop3::probe(&target(
        d,
        "CLOSED_PORT",
        TlsMode::Implicit,
        AuthMethod::Auto,
    ))
    .await;
    assert_eq!(r.failure, Some(FailureKind::ConnectionRefused));
    assert_eq!(r.failed_phase, Some(Phase::Connect));

    let mut t = target(d, "POP3S_PORT", TlsMode::Implicit, AuthMethod::User);
    t.username = Some(d.get("EMPTY_USER").to_string());
    let r = probe::pop3::probe(&t).await;
    assert_up(&r);
    let m = r.mailbox.unwrap();
    assert_eq!((m.messages, m.octets), (0, 0));

    let mut t = target(d, "POP3S_PORT", TlsMode::Implicit, AuthMethod::None);
    t.capabilities = true;
    let r = probe::pop3::probe(&t).await;
    assert_up(&r);
    assert!(r.mailbox.is_none());
    let caps = r.capabilities.unwrap();
    assert!(caps.user && caps.has_sasl("PLAIN"), "{caps:?}");
}

#[tokio::test]
async fn repeated_probes_leave_the_mailbox_alone() {
    let d = dovecot();
    for _ in 0..3 {
        let r = probe::pop3::probe(&target(
            d,
            "POP3S_PORT",
            TlsMode::Implicit,
            AuthMethod::Auto,
        ))
        .await;
        assert_up(&r);
        assert_mailbox(d, &r);
    }
}

#[tokio::test]
async fn every_probe_sees_the_certificate_no_session_resumption() {
    // Several probes in one process: each must do a full handshake and
    // report the certificate (a resumed session would carry none).
    let d = dovecot();
    for _ in 0..3 {
        let r = probe::pop3::probe(&target(
            d,
            "POP3S_PORT",
            TlsMode::Implicit,
            AuthMethod::None,
        ))
        .await;
        assert_up(&r);
        let tls = r.tls.as_ref().unwrap();
        assert!(!tls.resumed, "a TLS session was resumed: {tls:?}");
        let cert = tls.certificate.as_ref();
        assert!(
            cert.is_some_and(|c| c.names.iter().any(|n| n == "localhost")),
            "{r:?}"
        );
    }
}
