//! The SMTP check against a real Exim (Debian exim4-daemon-heavy) on
//! loopback, started by tests/smtp/ensure.sh with test-made certificates.
//! Exim's own log is the witness that no MAIL, RCPT or DATA was sent.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::smtp::{exim, Exim};
use pop3_probe::probe::{
    self, AuthMethod, FailureKind, Kind, Phase, ProbeResult, Status, Target, TlsMode,
};
use pop3_probe::{output, wire::Direction};
use secrecy::SecretString;

/// An EHLO name no other session in Exim's log has, to find this test's
/// lines there.
fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    // Host name characters only: Exim refuses an EHLO name with `_`.
    let tag = tag.to_ascii_lowercase().replace('_', "-");
    format!(
        "{tag}-{}-{nanos}-{}.probe.test",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn target(e: &Exim, port_key: &str, tls: TlsMode, auth: AuthMethod) -> Target {
    let mut t = Target::new(port_key, "127.0.0.1", e.port(port_key));
    t.kind = Kind::Smtp;
    t.tls = tls;
    t.auth = auth;
    t.username = Some(e.get("SMTP_USER").to_string());
    t.password = Some(SecretString::from(e.get("SMTP_PASSWORD").to_string()));
    t.ca_pem = Some(e.pem("CA_PEM"));
    t.tls_server_name = Some(e.get("SERVER_NAME").to_string());
    t.timeout = Duration::from_secs(10);
    t.warning = Duration::from_secs(5);
    t.critical = Duration::from_secs(8);
    t.transcript = true;
    t.ehlo_name = Some(unique(port_key));
    t
}

fn no_credentials(mut t: Target) -> Target {
    t.username = None;
    t.password = None;
    t
}

fn assert_up(r: &ProbeResult) {
    assert_eq!(r.status, Status::Up, "{}", output::human(r));
    assert_eq!(r.failure, None);
    assert_eq!(r.kind, Kind::Smtp);
}

fn client_lines(r: &ProbeResult) -> Vec<String> {
    r.transcript
        .iter()
        .filter(|l| l.direction == Direction::Client)
        .map(|l| l.line.clone())
        .collect()
}

/// Everything a user or a log could see of the result: no form of the
/// password may be in it.
fn assert_no_secret(e: &Exim, r: &ProbeResult, t: &Target) {
    let shown = [
        output::json(r),
        output::human(r),
        output::transcript(r),
        output::nagios(r, t),
        format!("{r:?}"),
        format!("{t:?}"),
    ]
    .join("\n");
    for form in pop3_probe::sasl::secret_forms(e.get("SMTP_PASSWORD"), Some(e.get("SMTP_USER"))) {
        assert!(!shown.contains(&form), "a form of the password leaked");
    }
}

/// The commands Exim saw in this session (its `C=` list), once it has
/// logged the session's end; and no line saying mail was tried.
async fn commands_seen(e: &Exim, t: &Target) -> String {
    let name = t.ehlo_name.as_deref().unwrap();
    let lines = e.session(name).await;
    for l in &lines {
        assert!(
            !l.contains("rejected MAIL") && !l.contains("rejected RCPT"),
            "the probe tried to send mail: {l}"
        );
    }
    let summary = lines
        .iter()
        .find(|l| l.contains("no MAIL in SMTP connection"))
        .unwrap_or_else(|| panic!("Exim logged no end of session for {name}: {lines:?}"));
    let commands = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("C="))
        .unwrap_or_else(|| panic!("no C= in {summary}"))
        .to_string();
    for verb in commands.split(',') {
        assert!(
            matches!(verb, "EHLO" | "HELO" | "STARTTLS" | "AUTH" | "QUIT"),
            "unexpected command {verb} in {commands}"
        );
    }
    commands
}

#[tokio::test]
async fn starttls_with_a_good_certificate_is_up_with_tls_facts_and_ehlo_keywords() {
    let e = exim();
    let t = no_credentials(target(e, "SMTP_PORT", TlsMode::Starttls, AuthMethod::Auto));
    let r = probe::smtp::probe(&t).await;
    assert_up(&r);
    assert!(
        r.message
            .starts_with("banner and EHLO received (no login); ESMTP Exim 4."),
        "{}",
        r.message
    );
    assert_eq!(r.auth_used, None);
    assert!(!r.tls_fallback);

    let tls = r.tls.as_ref().expect("TLS facts");
    assert!(tls.verified.passed());
    assert!(tls.version.starts_with("TLSv1."), "{}", tls.version);
    let cert = tls.certificate.as_ref().unwrap();
    assert!(cert.names.iter().any(|n| n == "localhost"), "{cert:?}");
    assert!(cert.issuer.contains("pop3-probe SMTP Test CA"), "{cert:?}");
    assert!(cert.days_remaining > 300, "{cert:?}");

    // The capabilities are those announced over TLS: AUTH now, STARTTLS no
    // longer.
    let caps = r.capabilities.as_ref().expect("EHLO keywords");
    assert!(!caps.stls, "{caps:?}");
    assert_eq!(caps.sasl, vec!["PLAIN", "LOGIN"]);
    assert!(caps.pipelining);
    assert!(caps.raw.iter().any(|l| l.starts_with("SIZE ")), "{caps:?}");
    assert!(
        caps.implementation
            .as_deref()
            .is_some_and(|i| i.starts_with("ESMTP Exim 4.")),
        "{caps:?}"
    );

    let phases: Vec<Phase> = r.phases.iter().map(|p| p.phase).collect();
    assert_eq!(
        phases,
        vec![
            Phase::Resolve,
            Phase::Connect,
            Phase::Greeting,
            Phase::Ehlo,
            Phase::Stls,
            Phase::Tls,
            Phase::Quit
        ]
    );
    let name = t.ehlo_name.clone().unwrap();
    assert_eq!(
        client_lines(&r),
        vec![
            format!("EHLO {name}"),
            "STARTTLS".to_string(),
            "[TLS handshake]".to_string(),
            format!("EHLO {name}"),
            "QUIT".to_string()
        ]
    );
    assert_eq!(commands_seen(e, &t).await, "EHLO,STARTTLS,EHLO,QUIT");
}

#[tokio::test]
async fn implicit_tls_is_up() {
    let e = exim();
    let t = no_credentials(target(e, "SMTPS_PORT", TlsMode::Implicit, AuthMethod::None));
    let r = probe::smtp::probe(&t).await;
    assert_up(&r);
    assert!(r.tls.as_ref().is_some_and(|t| t.verified.passed()));
    assert_eq!(r.phases[2].phase, Phase::Tls, "{:?}", r.phases);
    assert_eq!(
        r.capabilities.as_ref().unwrap().sasl,
        vec!["PLAIN", "LOGIN"]
    );
    assert_eq!(commands_seen(e, &t).await, "EHLO,QUIT");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_down_and_described() {
    let e = exim();
    // With credentials: the password must not follow a bad certificate.
    let t = target(
        e,
        "SMTP_WRONGCERT_PORT",
        TlsMode::Starttls,
        AuthMethod::Auto,
    );
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.status, Status::Down);
    assert_eq!(r.failure, Some(FailureKind::CertificateNameMismatch));
    assert_eq!(r.failed_phase, Some(Phase::Tls));
    let wrong = e.get("WRONG_NAME");
    assert_eq!(
        r.message,
        format!("certificate is for {wrong}, not for localhost")
    );
    // The certificate is still described, for the admin who must fix it.
    let cert = r.tls.as_ref().unwrap().certificate.as_ref().unwrap();
    assert_eq!(cert.names, vec![wrong.to_string()]);
    assert_eq!(r.auth_used, None);
    assert_eq!(commands_seen(e, &t).await, "EHLO,STARTTLS");
    assert_no_secret(e, &r, &t);

    // starttls-if-available falls back only when STARTTLS is missing, never
    // past a certificate that fails.
    let t = target(
        e,
        "SMTP_WRONGCERT_PORT",
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    );
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::CertificateNameMismatch));
    assert!(!r.tls_fallback);
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_invalid() {
    let e = exim();
    let mut t = target(e, "SMTP_PORT", TlsMode::Starttls, AuthMethod::Auto);
    t.ca_pem = Some(e.pem("OTHER_CA_PEM"));
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::CertificateInvalid));
    assert_eq!(r.failed_phase, Some(Phase::Tls));
    assert!(r.message.contains("not trusted"), "{}", r.message);
    assert!(
        r.message.contains("pop3-probe SMTP Test CA"),
        "{}",
        r.message
    );
    assert_eq!(commands_seen(e, &t).await, "EHLO,STARTTLS");
}

#[tokio::test]
async fn no_starttls_offered() {
    let e = exim();
    let t = no_credentials(target(
        e,
        "SMTP_NOTLS_PORT",
        TlsMode::Starttls,
        AuthMethod::Auto,
    ));
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::StlsUnavailable));
    assert_eq!(r.failed_phase, Some(Phase::Stls));
    assert!(
        r.message
            .starts_with("STARTTLS is required but the server does not offer it (EHLO: SIZE"),
        "{}",
        r.message
    );
    assert!(!client_lines(&r).contains(&"STARTTLS".to_string()));
    assert_eq!(commands_seen(e, &t).await, "EHLO,QUIT");

    let t = no_credentials(target(
        e,
        "SMTP_NOTLS_PORT",
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    ));
    let r = probe::smtp::probe(&t).await;
    assert_up(&r);
    assert!(r.tls_fallback);
    assert!(r.tls.is_none());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("the server does not offer STARTTLS: continuing WITHOUT TLS")),
        "{:?}",
        r.warnings
    );
}

#[tokio::test]
async fn auth_with_the_right_password_is_up() {
    let e = exim();
    let t = target(e, "SMTP_PORT", TlsMode::Starttls, AuthMethod::Auto);
    let r = probe::smtp::probe(&t).await;
    assert_up(&r);
    assert_eq!(r.auth_used, Some(AuthMethod::SaslPlain));
    assert!(
        r.message
            .starts_with("logged in with sasl-plain; ESMTP Exim 4."),
        "{}",
        r.message
    );
    assert!(r.phase_ms(Phase::Auth).is_some());
    assert!(client_lines(&r).contains(&"AUTH PLAIN ***".to_string()));
    assert_eq!(commands_seen(e, &t).await, "EHLO,STARTTLS,EHLO,AUTH,QUIT");
    assert_no_secret(e, &r, &t);

    let t = target(e, "SMTP_PORT", TlsMode::Starttls, AuthMethod::SaslLogin);
    let r = probe::smtp::probe(&t).await;
    assert_up(&r);
    assert_eq!(r.auth_used, Some(AuthMethod::SaslLogin));
    assert!(client_lines(&r).contains(&"***".to_string()));
    assert_eq!(commands_seen(e, &t).await, "EHLO,STARTTLS,EHLO,AUTH,QUIT");
    assert_no_secret(e, &r, &t);

    let t = target(e, "SMTPS_PORT", TlsMode::Implicit, AuthMethod::SaslPlain);
    let r = probe::smtp::probe(&t).await;
    assert_up(&r);
    assert_eq!(commands_seen(e, &t).await, "EHLO,AUTH,QUIT");
}

#[tokio::test]
async fn a_wrong_password_is_auth_failed() {
    let e = exim();
    for method in [AuthMethod::SaslPlain, AuthMethod::SaslLogin] {
        let mut t = target(e, "SMTP_PORT", TlsMode::Starttls, method);
        t.password = Some(SecretString::from("not-the-password".to_string()));
        let r = probe::smtp::probe(&t).await;
        assert_eq!(r.failure, Some(FailureKind::AuthFailed), "{method}");
        assert_eq!(r.failed_phase, Some(Phase::Auth));
        assert_eq!(
            r.server_reply.as_deref(),
            Some("535 Incorrect authentication data")
        );
        assert!(
            r.message
                .starts_with("login failed: check the technical account's credentials: 535"),
            "{}",
            r.message
        );
        // The session is ended politely after the refusal.
        assert_eq!(commands_seen(e, &t).await, "EHLO,STARTTLS,EHLO,AUTH,QUIT");
        for form in pop3_probe::sasl::secret_forms("not-the-password", Some("probe")) {
            assert!(!output::json(&r).contains(&form));
        }
    }
}

#[tokio::test]
async fn the_password_never_crosses_in_cleartext_unless_allowed() {
    let e = exim();
    // The no-TLS port offers AUTH in plaintext; the probe must not take it.
    let t = target(e, "SMTP_NOTLS_PORT", TlsMode::None, AuthMethod::Auto);
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::PlaintextRefused));
    assert_eq!(r.failed_phase, Some(Phase::Auth));
    assert_eq!(commands_seen(e, &t).await, "EHLO,QUIT");
    assert_no_secret(e, &r, &t);

    // Nor after a STARTTLS fallback.
    let t = target(
        e,
        "SMTP_NOTLS_PORT",
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    );
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::PlaintextRefused));
    assert!(r.tls_fallback);

    let mut t = target(e, "SMTP_NOTLS_PORT", TlsMode::None, AuthMethod::Auto);
    t.allow_plaintext_password = true;
    let r = probe::smtp::probe(&t).await;
    assert_up(&r);
    assert!(
        r.warnings.iter().any(|w| w.contains("cleartext")),
        "{:?}",
        r.warnings
    );
    assert_eq!(commands_seen(e, &t).await, "EHLO,AUTH,QUIT");
    assert_no_secret(e, &r, &t);
}

#[tokio::test]
async fn a_554_banner_is_greeting_rejected() {
    let e = exim();
    let t = no_credentials(target(
        e,
        "SMTP_REJECT_PORT",
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    ));
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::GreetingRejected));
    assert_eq!(r.failed_phase, Some(Phase::Greeting));
    assert_eq!(
        r.server_reply.as_deref(),
        Some("554 5.7.1 no SMTP service here (pop3-probe test)")
    );
    assert!(client_lines(&r).is_empty(), "{:?}", r.transcript);
}

#[tokio::test]
async fn the_default_ehlo_name_is_the_local_address_literal() {
    let e = exim();
    let mut t = no_credentials(target(
        e,
        "SMTP_NOTLS_PORT",
        TlsMode::None,
        AuthMethod::None,
    ));
    t.ehlo_name = None;
    let r = probe::smtp::probe(&t).await;
    assert_up(&r);
    assert_eq!(client_lines(&r)[0], "EHLO [127.0.0.1]");
    // Exim echoes the name it was given in its EHLO greeting line.
    assert!(
        r.transcript
            .iter()
            .any(|l| l.direction == Direction::Server && l.line.contains("Hello [127.0.0.1]")),
        "{:?}",
        r.transcript
    );
}
