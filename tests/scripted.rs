//! The probe against scripted in-process servers: behaviour that real
//! servers will not show on demand.

mod common;

use std::time::Duration;

use common::fake::{self, line, Reply};
use pop3_probe::probe::{self, AuthMethod, FailureKind, Phase, Status, Target, TlsMode};
use secrecy::SecretString;

const PASSWORD: &str = "Sup3r-Secret-Pw";

fn target(port: u16, tls: TlsMode, auth: AuthMethod) -> Target {
    let mut t = Target::new("fake", "127.0.0.1", port);
    t.tls = tls;
    t.auth = auth;
    t.username = Some("probe".into());
    t.password = Some(SecretString::from(PASSWORD.to_string()));
    t.timeout = Duration::from_secs(2);
    t.warning = Duration::from_millis(1000);
    t.critical = Duration::from_millis(1500);
    t.transcript = true;
    t
}

fn plain_allowed(port: u16, auth: AuthMethod) -> Target {
    let mut t = target(port, TlsMode::None, auth);
    t.allow_plaintext_password = true;
    t
}

#[tokio::test]
async fn no_greeting_times_out_in_greeting() {
    let s = fake::spawn(Reply::Hang, fake::polite(&[])).await;
    let mut t = target(s.port(), TlsMode::None, AuthMethod::None);
    t.timeout = Duration::from_millis(300);
    let r = probe::probe(&t).await;
    assert_eq!(r.status, Status::Down);
    assert_eq!(r.failure, Some(FailureKind::Timeout));
    assert_eq!(r.failed_phase, Some(Phase::Greeting));
    assert!(r.response_time_ms < 2000.0, "{}", r.response_time_ms);
}

#[tokio::test]
async fn phase_timeout_bounds_one_phase() {
    let s = fake::spawn(Reply::Hang, fake::polite(&[])).await;
    let mut t = target(s.port(), TlsMode::None, AuthMethod::None);
    t.timeout = Duration::from_secs(5);
    t.phase_timeout = Some(Duration::from_millis(200));
    let r = probe::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::Timeout));
    assert!(r.message.contains("200ms"), "{}", r.message);
}

#[tokio::test]
async fn slow_greeting_is_degraded_then_down() {
    let greet = Reply::Delayed(Duration::from_millis(150), "+OK slow".into());
    let s = fake::spawn(greet, fake::polite(&[])).await;
    let mut t = target(s.port(), TlsMode::None, AuthMethod::None);
    t.warning = Duration::from_millis(100);
    t.critical = Duration::from_millis(1000);
    let r = probe::probe(&t).await;
    assert_eq!(r.status, Status::Degraded, "{r:?}");
    assert_eq!(r.failure, None);

    t.warning = Duration::from_millis(50);
    t.critical = Duration::from_millis(100);
    let r = probe::probe(&t).await;
    assert_eq!(r.status, Status::Down);
    assert_eq!(r.failure, Some(FailureKind::ResponseTimeCritical));
}

#[tokio::test]
async fn err_greeting_is_rejected_with_the_servers_words() {
    let s = fake::spawn(
        line("-ERR [SYS/TEMP] too many connections"),
        fake::polite(&[]),
    )
    .await;
    let r = probe::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
    assert_eq!(r.failure, Some(FailureKind::GreetingRejected));
    assert_eq!(r.failed_phase, Some(Phase::Greeting));
    assert_eq!(
        r.server_reply.as_deref(),
        Some("-ERR [SYS/TEMP] too many connections")
    );
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let s = fake::spawn(line("SSH-2.0-OpenSSH_9.2"), fake::polite(&[])).await;
    let r = probe::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
    assert_eq!(r.failure, Some(FailureKind::ProtocolError));
    assert!(r.message.contains("SSH-2.0"), "{}", r.message);
}

#[tokio::test]
async fn close_right_after_connect() {
    let s = fake::spawn(Reply::Close, fake::polite(&[])).await;
    let r = probe::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
    assert_eq!(r.failure, Some(FailureKind::ConnectionClosed));
    assert_eq!(r.failed_phase, Some(Phase::Greeting));
}

#[tokio::test]
async fn endless_line_is_too_large() {
    let s = fake::spawn(Reply::Raw(vec![b'A'; 64 * 1024]), fake::polite(&[])).await;
    let r = probe::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
    assert_eq!(r.failure, Some(FailureKind::ResponseTooLarge));
}

#[tokio::test]
async fn stall_after_user_times_out_in_auth() {
    let s = fake::spawn(line("+OK hi"), |cmd: &str| {
        if cmd.starts_with("USER") {
            Reply::Hang
        } else {
            fake::polite(&["USER"])(cmd)
        }
    })
    .await;
    let mut t = plain_allowed(s.port(), AuthMethod::User);
    t.timeout = Duration::from_millis(400);
    let r = probe::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::Timeout));
    assert_eq!(r.failed_phase, Some(Phase::Auth));
    // It never got as far as the password.
    assert!(!s.commands().iter().any(|c| c.starts_with("PASS")));
}

async fn login_reply(reply: &'static str) -> probe::ProbeResult {
    let s = fake::spawn(line("+OK hi"), move |cmd: &str| {
        if cmd.starts_with("PASS") {
            line(reply)
        } else {
            fake::polite(&["USER"])(cmd)
        }
    })
    .await;
    probe::probe(&plain_allowed(s.port(), AuthMethod::User)).await
}

#[tokio::test]
async fn login_response_codes_are_classified() {
    let cases = [
        (
            "-ERR [SYS/TEMP] backend down",
            FailureKind::AuthTemporaryFailure,
        ),
        (
            "-ERR [SYS/PERM] account disabled",
            FailureKind::AuthPermanentFailure,
        ),
        ("-ERR [IN-USE] mailbox locked", FailureKind::MailboxInUse),
        (
            "-ERR [LOGIN-DELAY] wait 15 minutes",
            FailureKind::LoginDelay,
        ),
        (
            "-ERR [AUTH] Authentication failed.",
            FailureKind::AuthFailed,
        ),
        ("-ERR invalid password", FailureKind::AuthFailed),
    ];
    for (reply, kind) in cases {
        let r = login_reply(reply).await;
        assert_eq!(r.failure, Some(kind), "{reply}");
        assert_eq!(r.failed_phase, Some(Phase::Auth));
        assert_eq!(r.server_reply.as_deref(), Some(reply));
    }
}

#[tokio::test]
async fn stls_advertised_but_refused() {
    let handler = |cmd: &str| {
        if cmd == "STLS" {
            line("-ERR TLS not configured")
        } else {
            fake::polite(&["STLS", "USER"])(cmd)
        }
    };
    let s = fake::spawn(line("+OK hi <1.2@host>"), handler).await;
    let r = probe::probe(&target(s.port(), TlsMode::Starttls, AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::StlsRefused));
    assert_eq!(r.failed_phase, Some(Phase::Stls));

    // If-available falls back, says so, and may still log in with APOP.
    let r = probe::probe(&target(
        s.port(),
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    ))
    .await;
    assert_eq!(r.status, Status::Up, "{r:?}");
    assert!(r.tls_fallback);
    assert_eq!(r.auth_used, Some(AuthMethod::Apop));
    assert!(r.warnings.iter().any(|w| w.contains("WITHOUT TLS")));
}

#[tokio::test]
async fn stripped_stls_never_gets_a_password() {
    // A man in the middle removed STLS from CAPA.
    let s = fake::spawn(line("+OK hi"), fake::polite(&["USER", "SASL PLAIN"])).await;
    let r = probe::probe(&target(s.port(), TlsMode::Starttls, AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::StlsUnavailable));
    let r = probe::probe(&target(
        s.port(),
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    ))
    .await;
    assert_eq!(r.failure, Some(FailureKind::PlaintextRefused));
    assert!(r.tls_fallback);
    for c in s.commands() {
        assert!(
            !c.starts_with("PASS") && !c.starts_with("AUTH") && !c.starts_with("USER"),
            "sent {c}"
        );
        assert!(!c.contains(PASSWORD));
    }
}

#[tokio::test]
async fn plaintext_refused_for_user_and_plain_but_not_apop() {
    let s = fake::spawn(line("+OK hi"), fake::polite(&["USER", "SASL PLAIN"])).await;
    for auth in [AuthMethod::User, AuthMethod::SaslPlain, AuthMethod::Auto] {
        let r = probe::probe(&target(s.port(), TlsMode::None, auth)).await;
        assert_eq!(r.failure, Some(FailureKind::PlaintextRefused), "{auth}");
        assert_eq!(r.failed_phase, Some(Phase::Auth));
    }
    assert!(s.commands().iter().all(|c| !c.contains(PASSWORD)));

    let s = fake::spawn(line("+OK hi <9.9@host>"), fake::polite(&[])).await;
    let r = probe::probe(&target(s.port(), TlsMode::None, AuthMethod::Auto)).await;
    assert_eq!(r.status, Status::Up, "{r:?}");
    assert_eq!(r.auth_used, Some(AuthMethod::Apop));
    assert_eq!(r.mailbox.unwrap().messages, 2);
}

#[tokio::test]
async fn auth_unsupported_cases() {
    // Dovecot's words for an unknown mechanism carry [AUTH], which alone
    // would read as a wrong password.
    let s = fake::spawn(line("+OK hi"), |cmd: &str| {
        if cmd.starts_with("AUTH") {
            line("-ERR [AUTH] Unsupported authentication mechanism.")
        } else {
            fake::polite(&["USER", "SASL LOGIN"])(cmd)
        }
    })
    .await;
    let r = probe::probe(&target(s.port(), TlsMode::None, AuthMethod::Apop)).await;
    assert_eq!(r.failure, Some(FailureKind::AuthUnsupported));
    assert!(
        s.commands().is_empty(),
        "APOP without a timestamp is not even tried"
    );
    let mut t = plain_allowed(s.port(), AuthMethod::SaslPlain);
    t.tls = TlsMode::StarttlsIfAvailable;
    let r = probe::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::AuthUnsupported), "{r:?}");
    assert!(r.message.contains("SASL LOGIN"), "{}", r.message);
    // A wrong password on a server that does offer PLAIN stays auth_failed.
    let s = fake::spawn(line("+OK hi"), |cmd: &str| {
        if cmd.starts_with("AUTH") {
            line("-ERR [AUTH] Authentication failed.")
        } else {
            fake::polite(&["USER", "SASL PLAIN"])(cmd)
        }
    })
    .await;
    let r = probe::probe(&plain_allowed(s.port(), AuthMethod::SaslPlain)).await;
    assert_eq!(r.failure, Some(FailureKind::AuthFailed), "{r:?}");
}

#[tokio::test]
async fn round_trips_are_only_what_the_check_needs() {
    // APOP offered: greeting, APOP, STAT, QUIT — no CAPA at all.
    let s = fake::spawn(
        line("+OK hi <1.2@host>"),
        fake::polite(&["USER", "SASL PLAIN", "STLS"]),
    )
    .await;
    let r = probe::probe(&target(s.port(), TlsMode::None, AuthMethod::Auto)).await;
    assert_eq!(r.status, Status::Up);
    let verbs: Vec<String> = s
        .commands_until("QUIT")
        .await
        .iter()
        .map(|c| c.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(verbs, ["APOP", "STAT", "QUIT"]);
    // Connectivity only: nothing but QUIT after the greeting...
    let s = fake::spawn(line("+OK hi"), fake::polite(&["USER"])).await;
    let r = probe::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
    assert_eq!(r.status, Status::Up);
    assert_eq!(s.commands_until("QUIT").await, ["QUIT"]);
    assert!(r.capabilities.is_none());
    // ...unless capabilities are asked for.
    let mut t = target(s.port(), TlsMode::None, AuthMethod::None);
    t.capabilities = true;
    let r = probe::probe(&t).await;
    assert!(r.capabilities.unwrap().user);
    // No APOP: auto needs CAPA to find SASL PLAIN, then one AUTH line.
    let s = fake::spawn(line("+OK hi"), fake::polite(&["USER", "SASL PLAIN"])).await;
    let r = probe::probe(&plain_allowed(s.port(), AuthMethod::Auto)).await;
    assert_eq!(r.auth_used, Some(AuthMethod::SaslPlain));
    let verbs: Vec<String> = s
        .commands_until("QUIT")
        .await
        .iter()
        .map(|c| c.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(verbs, ["CAPA", "AUTH", "STAT", "QUIT"]);
}

#[tokio::test]
async fn stat_failure_and_quit_failure() {
    let s = fake::spawn(line("+OK hi"), |cmd: &str| match cmd {
        "STAT" => line("-ERR [SYS/TEMP] index broken"),
        _ => fake::polite(&[])(cmd),
    })
    .await;
    let r = probe::probe(&plain_allowed(s.port(), AuthMethod::User)).await;
    assert_eq!(r.failure, Some(FailureKind::MailboxError));
    assert_eq!(r.failed_phase, Some(Phase::Stat));

    // QUIT is sent but its answer not awaited: a server that hangs on it
    // costs the probe nothing.
    let s = fake::spawn(line("+OK hi"), |cmd: &str| match cmd {
        "QUIT" => Reply::Hang,
        _ => fake::polite(&[])(cmd),
    })
    .await;
    let mut t = plain_allowed(s.port(), AuthMethod::User);
    t.timeout = Duration::from_secs(30);
    let r = probe::probe(&t).await;
    assert_eq!(r.status, Status::Up, "{r:?}");
    assert!(r.response_time_ms < 10_000.0);
    assert_eq!(
        s.commands_until("QUIT").await.last().map(String::as_str),
        Some("QUIT")
    );
}

#[tokio::test]
async fn server_echoing_the_password_is_scrubbed() {
    let s = fake::spawn(line("+OK hi"), |cmd: &str| {
        if cmd.starts_with("PASS") || cmd.starts_with("AUTH") {
            Reply::Line(format!("-ERR [AUTH] you said {cmd}"))
        } else {
            fake::polite(&["USER", "SASL PLAIN"])(cmd)
        }
    })
    .await;
    for auth in [AuthMethod::User, AuthMethod::SaslPlain] {
        let r = probe::probe(&plain_allowed(s.port(), auth)).await;
        assert_eq!(r.failure, Some(FailureKind::AuthFailed));
        let rendered = format!(
            "{}{}{}",
            pop3_probe::output::json(&r),
            pop3_probe::output::human(&r),
            pop3_probe::output::transcript(&r)
        );
        for form in pop3_probe::sasl::secret_forms(PASSWORD, Some("probe")) {
            assert!(!rendered.contains(&form), "{auth}: leaked {form}");
        }
        assert!(rendered.contains("***"));
    }
}

#[tokio::test]
async fn never_sends_a_mailbox_changing_command() {
    // Whatever the server answers, a probe sends none of these.
    let replies = [
        "+OK",
        "-ERR",
        "-ERR [IN-USE]",
        "+OK 1 1",
        "+OK DELE RETR TOP RSET",
    ];
    let mut all = Vec::new();
    for reply in replies {
        let s = fake::spawn(line("+OK hi <1@x>"), move |cmd: &str| match cmd {
            "CAPA" => fake::polite(&["USER", "SASL PLAIN", "STLS", "TOP", "UIDL"])(cmd),
            _ => line(reply),
        })
        .await;
        for auth in [
            AuthMethod::Auto,
            AuthMethod::Apop,
            AuthMethod::User,
            AuthMethod::SaslPlain,
            AuthMethod::None,
        ] {
            for tls in [TlsMode::None, TlsMode::StarttlsIfAvailable] {
                let mut t = plain_allowed(s.port(), auth);
                t.tls = tls;
                probe::probe(&t).await;
            }
        }
        all.extend(s.commands());
    }
    assert!(all.len() > 40, "the servers saw too little: {all:?}");
    for c in &all {
        let verb = c.split(' ').next().unwrap_or("").to_ascii_uppercase();
        assert!(
            !["DELE", "RETR", "TOP", "RSET", "LIST", "UIDL"].contains(&verb.as_str()),
            "probe sent {c}"
        );
    }
}

#[tokio::test]
async fn tls_settings_do_not_matter_without_tls() {
    // "bad_name" is no valid TLS name, and the CA text is junk: neither is
    // used by a plaintext check, so neither may fail it.
    let s = fake::spawn(line("+OK hi"), fake::polite(&[])).await;
    let mut t = target(s.port(), TlsMode::None, AuthMethod::None);
    t.tls_server_name = Some("bad_name".into());
    t.ca_pem = Some("junk".into());
    assert_eq!(probe::probe(&t).await.status, Status::Up);
    t.tls = TlsMode::Implicit;
    assert_eq!(
        probe::probe(&t).await.failure,
        Some(FailureKind::ConfigError)
    );
}

#[tokio::test]
async fn unknown_host_is_a_dns_failure() {
    let mut t = target(110, TlsMode::None, AuthMethod::None);
    t.host = "no-such-host.invalid".into();
    let r = probe::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::DnsFailure));
    assert_eq!(r.failed_phase, Some(Phase::Resolve));
}

#[tokio::test]
async fn missing_credentials_is_a_config_error() {
    let s = fake::spawn(line("+OK hi"), fake::polite(&[])).await;
    let mut t = target(s.port(), TlsMode::None, AuthMethod::User);
    t.password = None;
    let r = probe::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::ConfigError));
    assert_eq!(pop3_probe::output::exit_code(&r), 3);
}
