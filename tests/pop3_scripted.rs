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
    let r = probe::pop3::probe(&t).await;
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
    let r = probe::pop3::probe(&t).await;
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
    let r = probe::pop3::probe(&t).await;
    assert_eq!(r.status, Status::Degraded, "{r:?}");
    assert_eq!(r.failure, None);

    t.warning = Duration::from_millis(50);
    t.critical = Duration::from_millis(100);
    let r = probe::pop3::probe(&t).await;
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
    let r = probe::pop3::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
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
    let r = probe::pop3::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
    assert_eq!(r.failure, Some(FailureKind::ProtocolError));
    assert!(r.message.contains("SSH-2.0"), "{}", r.message);
}

#[tokio::test]
async fn close_right_after_connect() {
    let s = fake::spawn(Reply::Close, fake::polite(&[])).await;
    let r = probe::pop3::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
    assert_eq!(r.failure, Some(FailureKind::ConnectionClosed));
    assert_eq!(r.failed_phase, Some(Phase::Greeting));
}

#[tokio::test]
async fn endless_line_is_too_large() {
    let s = fake::spawn(Reply::Raw(vec![b'A'; 64 * 1024]), fake::polite(&[])).await;
    let r = probe::pop3::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
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
    let r = probe::pop3::probe(&t).await;
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
    probe::pop3::probe(&plain_allowed(s.port(), AuthMethod::User)).await
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
    let r = probe::pop3::probe(&target(s.port(), TlsMode::Starttls, AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::StlsRefused));
    assert_eq!(r.failed_phase, Some(Phase::Stls));

    // If-available falls back, says so, and may still log in with APOP;
    // but STLS offered and then refused is what a man in the middle who
    // strips STLS produces (issue 11.6): degraded, naming the downgrade.
    let r = probe::pop3::probe(&target(
        s.port(),
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    ))
    .await;
    assert_eq!(r.status, Status::Degraded, "{r:?}");
    assert!(r.tls_fallback);
    assert_eq!(r.auth_used, Some(AuthMethod::Apop));
    assert!(r.warnings.iter().any(|w| w.contains("WITHOUT TLS")));
    assert!(
        r.message.contains("possible STARTTLS downgrade"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn stripped_stls_never_gets_a_password() {
    // A man in the middle removed STLS from CAPA.
    let s = fake::spawn(line("+OK hi"), fake::polite(&["USER", "SASL PLAIN"])).await;
    let r = probe::pop3::probe(&target(s.port(), TlsMode::Starttls, AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::StlsUnavailable));
    let r = probe::pop3::probe(&target(
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
        let r = probe::pop3::probe(&target(s.port(), TlsMode::None, auth)).await;
        assert_eq!(r.failure, Some(FailureKind::PlaintextRefused), "{auth}");
        assert_eq!(r.failed_phase, Some(Phase::Auth));
    }
    assert!(s.commands().iter().all(|c| !c.contains(PASSWORD)));

    let s = fake::spawn(line("+OK hi <9.9@host>"), fake::polite(&[])).await;
    let r = probe::pop3::probe(&target(s.port(), TlsMode::None, AuthMethod::Auto)).await;
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
    let r = probe::pop3::probe(&target(s.port(), TlsMode::None, AuthMethod::Apop)).await;
    assert_eq!(r.failure, Some(FailureKind::AuthUnsupported));
    assert!(
        s.commands().is_empty(),
        "APOP without a timestamp is not even tried"
    );
    let mut t = plain_allowed(s.port(), AuthMethod::SaslPlain);
    t.tls = TlsMode::StarttlsIfAvailable;
    let r = probe::pop3::probe(&t).await;
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
    let r = probe::pop3::probe(&plain_allowed(s.port(), AuthMethod::SaslPlain)).await;
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
    let r = probe::pop3::probe(&target(s.port(), TlsMode::None, AuthMethod::Auto)).await;
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
    let r = probe::pop3::probe(&target(s.port(), TlsMode::None, AuthMethod::None)).await;
    assert_eq!(r.status, Status::Up);
    assert_eq!(s.commands_until("QUIT").await, ["QUIT"]);
    assert!(r.capabilities.is_none());
    // ...unless capabilities are asked for.
    let mut t = target(s.port(), TlsMode::None, AuthMethod::None);
    t.capabilities = true;
    let r = probe::pop3::probe(&t).await;
    assert!(r.capabilities.unwrap().user);
    // No APOP: auto needs CAPA to find SASL PLAIN, then one AUTH line.
    let s = fake::spawn(line("+OK hi"), fake::polite(&["USER", "SASL PLAIN"])).await;
    let r = probe::pop3::probe(&plain_allowed(s.port(), AuthMethod::Auto)).await;
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
    let r = probe::pop3::probe(&plain_allowed(s.port(), AuthMethod::User)).await;
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
    let r = probe::pop3::probe(&t).await;
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
        let r = probe::pop3::probe(&plain_allowed(s.port(), auth)).await;
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
                probe::pop3::probe(&t).await;
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
    assert_eq!(probe::pop3::probe(&t).await.status, Status::Up);
    t.tls = TlsMode::Implicit;
    assert_eq!(
        probe::pop3::probe(&t).await.failure,
        Some(FailureKind::ConfigError)
    );
}

#[tokio::test]
async fn unknown_host_is_a_dns_failure() {
    let mut t = target(110, TlsMode::None, AuthMethod::None);
    t.host = "no-such-host.invalid".into();
    let r = probe::pop3::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::DnsFailure));
    assert_eq!(r.failed_phase, Some(Phase::Resolve));
}

#[tokio::test]
async fn missing_credentials_is_a_config_error() {
    let s = fake::spawn(line("+OK hi"), fake::polite(&[])).await;
    let mut t = target(s.port(), TlsMode::None, AuthMethod::User);
    t.password = None;
    let r = probe::pop3::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::ConfigError));
    assert_eq!(pop3_probe::output::exit_code(&r), 3);
}

/// Every form a leaked password could take in our output: as configured,
/// trimmed, with control characters dropped, the pieces a CR LF or TAB
/// splits it into, and its wire encodings. Compared ignoring case, since a
/// server may upper-case what it echoes.
fn leak_forms(pw: &str) -> Vec<String> {
    let mut forms = vec![
        pw.to_string(),
        pw.trim().to_string(),
        pw.replace(|c: char| c.is_control(), ""),
    ];
    forms.extend(
        pw.split(|c: char| c.is_control())
            .map(|p| p.trim().to_string())
            .filter(|p| p.len() >= 3),
    );
    forms.extend(pop3_probe::sasl::secret_forms(pw, Some("probe")));
    forms.retain(|f| !f.trim().is_empty());
    forms.iter().map(|f| f.to_ascii_lowercase()).collect()
}

fn assert_no_leak(pw: &str, what: &str, rendered: &str) {
    let lower = rendered.to_ascii_lowercase();
    for form in leak_forms(pw) {
        assert!(
            !lower.contains(&form),
            "{what}: password {pw:?} leaked as {form:?} in:\n{rendered}"
        );
    }
}

/// Issue 11.1: a server that echoes the password in its greeting, in the
/// CAPA `SASL` list and IMPLEMENTATION (before and after a failed AUTH), in
/// the `-ERR` to PASS/AUTH/APOP, upper-cased or as sent: no output mode,
/// no drift record (the state file's baseline and the capability_changed
/// alert's source) and no transcript shows any form of it. The passwords
/// are all upper case, have leading and trailing spaces, a TAB, a CR LF.
#[tokio::test]
async fn a_server_echoing_the_password_anywhere_never_gets_it_printed() {
    for pw in [
        "HUNTER2SECRETPW",
        "  lead and trail  ",
        "tab\there9x",
        "abc\r\nDELE 1",
    ] {
        let echo = pw.to_string();
        let upper = pw.to_ascii_uppercase();
        let greeting = Reply::Raw(format!("+OK <1.2@fake> hi {upper}\r\n").into_bytes());
        let s = fake::spawn(greeting, move |cmd: &str| {
            let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "CAPA" => Reply::Raw(
                    format!("+OK\r\nUSER\r\nSASL PLAIN {echo}\r\nIMPLEMENTATION x{echo}y\r\n.\r\n")
                        .into_bytes(),
                ),
                "PASS" | "AUTH" | "APOP" => {
                    Reply::Raw(format!("-ERR [AUTH] bad: {cmd} ({echo})\r\n").into_bytes())
                }
                _ => fake::polite(&[])(cmd),
            }
        })
        .await;
        for auth in [AuthMethod::SaslPlain, AuthMethod::User, AuthMethod::Apop] {
            let mut t = plain_allowed(s.port(), auth);
            t.password = Some(SecretString::from(pw.to_string()));
            let r = probe::pop3::probe(&t).await;
            assert_eq!(r.status, Status::Down, "{pw:?} {auth}: {r:?}");
            let what = format!("{pw:?} {auth}");
            assert_no_leak(pw, &what, &pop3_probe::output::json(&r));
            assert_no_leak(pw, &what, &pop3_probe::output::human(&r));
            assert_no_leak(pw, &what, &pop3_probe::output::nagios(&r, &t));
            assert_no_leak(pw, &what, &pop3_probe::output::transcript(&r));
            assert_no_leak(pw, &what, &format!("{r:?}"));
            let set = pop3_probe::drift::CapabilitySet::observe(&r);
            assert_no_leak(pw, &what, &serde_json::to_string(&set).unwrap());
            // The APOP digest the server echoed is masked like the
            // command's own argument.
            if auth == AuthMethod::Apop && !pw.contains(|c: char| c.is_control()) {
                let digest = pop3_probe::pop3::command::apop_digest(
                    "<1.2@fake>",
                    &SecretString::from(pw.to_string()),
                );
                let all = format!(
                    "{}{}",
                    pop3_probe::output::json(&r),
                    pop3_probe::output::transcript(&r)
                );
                assert!(all.contains("bad: APOP probe ***"), "{all}");
                assert!(!all.contains(&digest), "APOP digest leaked: {all}");
            }
        }
    }
}

/// Issue 11.6: a password with CR or LF is a config_error, nothing is sent,
/// and the result does not claim it was sent in cleartext.
#[tokio::test]
async fn a_password_with_crlf_is_config_error_without_a_cleartext_warning() {
    let s = fake::spawn(line("+OK hi"), fake::polite(&["USER", "SASL PLAIN"])).await;
    for auth in [AuthMethod::User, AuthMethod::SaslPlain] {
        let mut t = plain_allowed(s.port(), auth);
        t.password = Some(SecretString::from("abc\r\nDELE 1".to_string()));
        let r = probe::pop3::probe(&t).await;
        assert_eq!(r.failure, Some(FailureKind::ConfigError), "{auth}: {r:?}");
        assert!(
            !r.warnings.iter().any(|w| w.contains("cleartext")),
            "{auth}: {:?}",
            r.warnings
        );
        let sent = s.commands();
        assert!(
            !sent
                .iter()
                .any(|c| c.starts_with("PASS") || c.starts_with("AUTH") || c.starts_with("DELE")),
            "{sent:?}"
        );
    }
}

/// Issue 11.6: Dovecot's refusal of plaintext logins is the server's
/// configuration, not a wrong password.
#[tokio::test]
async fn plaintext_disallowed_is_its_own_kind_not_auth_failed() {
    let s = fake::spawn(line("+OK hi"), |cmd: &str| {
        if cmd.starts_with("USER") || cmd.starts_with("AUTH") {
            line("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
        } else {
            fake::polite(&["USER", "SASL PLAIN"])(cmd)
        }
    })
    .await;
    for auth in [AuthMethod::User, AuthMethod::SaslPlain] {
        let r = probe::pop3::probe(&plain_allowed(s.port(), auth)).await;
        assert_eq!(
            r.failure,
            Some(FailureKind::PlaintextDisallowed),
            "{auth}: {r:?}"
        );
        assert_eq!(
            FailureKind::PlaintextDisallowed.as_str(),
            "plaintext_disallowed"
        );
        assert!(!FailureKind::PlaintextDisallowed.is_credentials_problem());
    }
}

/// Outlook's answer to a password once basic authentication is off: still
/// `auth_failed` (the login was refused), but the message points to OAuth2
/// instead of leaving the account owner to reset a password that is fine.
#[tokio::test]
async fn basic_authentication_disabled_points_to_oauth2() {
    let s = fake::spawn(line("+OK hi"), |cmd: &str| {
        if cmd.starts_with("PASS") || cmd.starts_with("AUTH") {
            line("-ERR Logon failure: unknown user name or bad password. Basic authentication is disabled.")
        } else {
            fake::polite(&["USER", "SASL PLAIN"])(cmd)
        }
    })
    .await;
    for auth in [AuthMethod::User, AuthMethod::SaslPlain] {
        let r = probe::pop3::probe(&plain_allowed(s.port(), auth)).await;
        assert_eq!(r.failure, Some(FailureKind::AuthFailed), "{auth}: {r:?}");
        assert!(
            r.message.contains("OAuth2") && r.message.contains("docs/oauth2.md"),
            "{auth}: {}",
            r.message
        );
    }
    // An ordinary refusal gets no such hint.
    let s = fake::spawn(line("+OK hi"), |cmd: &str| {
        if cmd.starts_with("PASS") {
            line("-ERR [AUTH] Authentication failed.")
        } else {
            fake::polite(&["USER"])(cmd)
        }
    })
    .await;
    let r = probe::pop3::probe(&plain_allowed(s.port(), AuthMethod::User)).await;
    assert_eq!(r.failure, Some(FailureKind::AuthFailed), "{r:?}");
    assert!(!r.message.contains("OAuth2"), "{}", r.message);
}

/// The repro through the binary: CAPA answers `SASL PLAIN
/// <password>`; `check --auth sasl-plain --allow-plaintext-password` in
/// every output mode, `--verbose` included, shows no form of it.
#[tokio::test]
async fn the_cli_never_prints_a_password_the_capa_list_echoed() {
    for pw in ["HUNTER2SECRETPW", "  lead and trail  "] {
        let echo = pw.to_string();
        let s = fake::spawn(line("+OK hi"), move |cmd: &str| {
            if cmd.eq_ignore_ascii_case("CAPA") {
                Reply::Raw(format!("+OK\r\nUSER\r\nSASL PLAIN {echo}\r\n.\r\n").into_bytes())
            } else if cmd.starts_with("AUTH") {
                Reply::Raw(format!("-ERR [AUTH] no {echo}\r\n").into_bytes())
            } else {
                fake::polite(&[])(cmd)
            }
        })
        .await;
        for format in ["human", "json", "nagios"] {
            let port = s.port();
            let pw2 = pw.to_string();
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
                    .args([
                        "check",
                        &format!("pop3://probe@127.0.0.1:{port}"),
                        "--tls",
                        "none",
                        "--auth",
                        "sasl-plain",
                        "--allow-plaintext-password",
                        "--password-env",
                        "SCRUB_TEST_PW",
                        "--format",
                        format,
                        "--verbose",
                    ])
                    .env("SCRUB_TEST_PW", pw2)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(all.contains("***"), "{format}: {all}");
            assert_no_leak(pw, format, &all);
        }
    }
}

/// Issue 11.1, the pipeline's outputs: a server that echoes the password in
/// its CAPA list, IMPLEMENTATION and the `-ERR` to AUTH, probed by `run`
/// twice (the second run has a drift baseline to compare with and an
/// outage to alert on). Nothing `run` writes holds any form of it: stdout
/// (`--json`), stderr (the alerts and logs, at debug level), the state file
/// and the metrics file in each format.
#[tokio::test]
async fn run_outputs_state_metrics_and_logs_never_hold_an_echoed_password() {
    for (pw, metrics) in [
        ("HUNTER2SECRETPW", "jsonl"),
        ("  lead and trail  ", "emf"),
        ("mixed Case p4ss", "prometheus"),
    ] {
        let echo = pw.to_string();
        // The first login succeeds (the CAPA with the echo becomes the drift
        // baseline in the state file), the second fails (a down alert
        // quoting the -ERR).
        let logins = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let s = fake::spawn(line("+OK hi"), move |cmd: &str| {
            if cmd.starts_with("AUTH")
                && logins.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
            {
                line("+OK")
            } else if cmd.eq_ignore_ascii_case("CAPA") {
                Reply::Raw(
                    format!("+OK\r\nUSER\r\nSASL PLAIN {echo}\r\nIMPLEMENTATION {echo}\r\n.\r\n")
                        .into_bytes(),
                )
            } else if cmd.starts_with("AUTH") {
                Reply::Raw(format!("-ERR [AUTH] no {echo}\r\n").into_bytes())
            } else {
                fake::polite(&[])(cmd)
            }
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("monitors.json");
        let state = dir.path().join("state.json");
        let metrics_file = dir.path().join("metrics.out");
        let doc = serde_json::json!({
            "credentials": {"box": {"username": "probe", "password_env": "SCRUB_RUN_PW"}},
            "defaults": {"failures_before_alert": 1},
            "monitors": [{"name": "echo", "host": "127.0.0.1", "port": s.port(),
                          "tls": "none", "auth": "sasl-plain", "credentials": "box",
                          "allow_plaintext_password": true, "capabilities": true}]
        });
        std::fs::write(&config, doc.to_string()).unwrap();
        let mut seen = String::new();
        for run in 0..2 {
            let (config, state, metrics_file, pw2) = (
                config.clone(),
                state.clone(),
                metrics_file.clone(),
                pw.to_string(),
            );
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
                    .arg("run")
                    .arg("--config")
                    .arg(&config)
                    .arg("--state")
                    .arg(&state)
                    .args(["--metrics", metrics, "--metrics-file"])
                    .arg(&metrics_file)
                    .arg("--json")
                    .env("SCRUB_RUN_PW", pw2)
                    .env("RUST_LOG", "debug")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            // The run did see what it must report without the secret.
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let expect = if run == 0 { "\"up\"" } else { "auth_failed" };
            assert!(stdout.contains(expect), "{metrics} run {run}: {stdout}");
            seen.push_str(&stdout);
            seen.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        let state_text = std::fs::read_to_string(&state).unwrap();
        // The baseline is there, masked.
        assert!(state_text.contains("***"), "{state_text}");
        let metrics_text = std::fs::read_to_string(&metrics_file).unwrap();
        assert!(!metrics_text.is_empty(), "{metrics}: no metrics written");
        assert_no_leak(pw, "run stdout/stderr", &seen);
        assert_no_leak(pw, "state file", &state_text);
        assert_no_leak(pw, metrics, &metrics_text);
    }
}
