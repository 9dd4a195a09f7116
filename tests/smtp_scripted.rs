//! The SMTP check against scripted in-process servers: what a real server
//! will not do on demand (hang, lie, flood, refuse STARTTLS, close
//! mid-reply). The scripted server logs every line it receives, so each
//! test can also say what the probe sent.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::fake::{self, line, Fake, Reply};
use pop3_probe::probe::{
    self, AuthMethod, FailureKind, Kind, Phase, ProbeResult, Status, Target, TlsMode,
};
use secrecy::SecretString;

const USER: &str = "probe";
const PASSWORD: &str = "Sup3r-Secret-Pw";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn target(port: u16, tls: TlsMode, auth: AuthMethod) -> Target {
    let mut t = Target::new("fake", "127.0.0.1", port);
    t.kind = Kind::Smtp;
    t.tls = tls;
    t.auth = auth;
    t.username = Some(USER.into());
    t.password = Some(SecretString::from(PASSWORD.to_string()));
    t.timeout = Duration::from_secs(2);
    t.warning = Duration::from_millis(1000);
    t.critical = Duration::from_millis(1500);
    t.transcript = true;
    t.ehlo_name = Some("probe.test".into());
    t
}

/// Plaintext, no TLS, password allowed in cleartext: the scripted servers
/// speak no TLS.
fn plain(port: u16, auth: AuthMethod) -> Target {
    let mut t = target(port, TlsMode::None, auth);
    t.allow_plaintext_password = true;
    t
}

fn no_login(port: u16, tls: TlsMode) -> Target {
    let mut t = target(port, tls, AuthMethod::None);
    t.username = None;
    t.password = None;
    t
}

/// A well-behaved server: EHLO lists `extensions`; AUTH PLAIN and LOGIN
/// succeed with the right credentials; STARTTLS is refused (no TLS here).
fn polite(extensions: &'static [&'static str]) -> impl Fn(&str) -> Reply + Send + Sync {
    move |cmd: &str| {
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                let mut body = String::from("250");
                body.push(if extensions.is_empty() { ' ' } else { '-' });
                body.push_str("mx.test Hello\r\n");
                for (i, e) in extensions.iter().enumerate() {
                    let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
                    body.push_str(&format!("250{sep}{e}\r\n"));
                }
                Reply::Raw(body.into_bytes())
            }
            "HELO" => line("250 mx.test"),
            "STARTTLS" => line("454 4.7.0 TLS not available"),
            "AUTH" if cmd == format!("AUTH PLAIN {}", b64(&format!("\0{USER}\0{PASSWORD}"))) => {
                line("235 2.7.0 Authentication successful")
            }
            "AUTH" if cmd == "AUTH LOGIN" => line("334 VXNlcm5hbWU6"),
            "AUTH" => line("535 5.7.8 Authentication credentials invalid"),
            "QUIT" => line("221 2.0.0 bye"),
            _ if cmd == b64(USER) => line("334 UGFzc3dvcmQ6"),
            _ if cmd == b64(PASSWORD) => line("235 2.7.0 Authentication successful"),
            _ => line("500 5.5.1 unrecognized command"),
        }
    }
}

const BANNER: &str = "220 mx.test ESMTP Scripted 1.0 Mon, 01 Jan 2024 00:00:00 +0000";

async fn server(extensions: &'static [&'static str]) -> Fake {
    fake::spawn(line(BANNER), polite(extensions)).await
}

/// Only these may ever reach a server: hello, STARTTLS, AUTH and its
/// base64 answers, QUIT.
fn assert_only_allowed_commands(commands: &[String]) {
    let secrets = [b64(USER), b64(PASSWORD)];
    for c in commands {
        let verb = c.split(' ').next().unwrap_or("").to_ascii_uppercase();
        assert!(
            matches!(
                verb.as_str(),
                "EHLO" | "HELO" | "STARTTLS" | "AUTH" | "QUIT"
            ) || secrets.contains(c),
            "the probe sent {c:?}"
        );
    }
}

fn assert_no_secret(r: &ProbeResult) {
    let shown = format!(
        "{}\n{}\n{r:?}",
        pop3_probe::output::json(r),
        pop3_probe::output::transcript(r)
    );
    for form in pop3_probe::sasl::secret_forms(PASSWORD, Some(USER)) {
        assert!(!shown.contains(&form), "a form of the password leaked");
    }
}

#[tokio::test]
async fn rejecting_banners() {
    for banner in [
        "554 5.7.1 No SMTP service here",
        "421 4.3.2 Service not available, closing transmission channel",
    ] {
        let s = fake::spawn(line(banner), polite(&[])).await;
        let r = probe::smtp::probe(&no_login(s.port(), TlsMode::None)).await;
        assert_eq!(r.failure, Some(FailureKind::GreetingRejected));
        assert_eq!(r.failed_phase, Some(Phase::Greeting));
        assert_eq!(r.server_reply.as_deref(), Some(banner));
        assert_eq!(
            r.message,
            format!("the server rejected the connection: {banner}")
        );
        assert_eq!(r.kind, Kind::Smtp);
        assert!(s.commands().is_empty());
    }
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    for (greeting, phase) in [
        (line("SSH-2.0-OpenSSH_9.2"), Phase::Greeting),
        (line("+OK POP3 ready"), Phase::Greeting),
        (line("250 not a greeting"), Phase::Greeting),
    ] {
        let s = fake::spawn(greeting, polite(&[])).await;
        let r = probe::smtp::probe(&no_login(s.port(), TlsMode::None)).await;
        assert_eq!(r.failure, Some(FailureKind::ProtocolError), "{}", r.message);
        assert_eq!(r.failed_phase, Some(phase));
    }
    let s = fake::spawn(line("SSH-2.0-OpenSSH_9.2"), polite(&[])).await;
    let r = probe::smtp::probe(&no_login(s.port(), TlsMode::None)).await;
    assert!(r.message.contains("SSH-2.0"), "{}", r.message);

    // A reply whose code changes halfway is no reply either.
    let s = fake::spawn(line(BANNER), |cmd: &str| {
        if cmd.starts_with("EHLO") {
            Reply::Raw(b"250-mx.test\r\n550 changed my mind\r\n".to_vec())
        } else {
            line("221 bye")
        }
    })
    .await;
    let r = probe::smtp::probe(&no_login(s.port(), TlsMode::None)).await;
    assert_eq!(r.failure, Some(FailureKind::ProtocolError));
    assert_eq!(r.failed_phase, Some(Phase::Ehlo));
    assert!(
        r.message.contains("changed from 250 to 550"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn replies_over_the_caps_are_too_large() {
    // One endless line.
    let s = fake::spawn(Reply::Raw(vec![b'2'; 64 * 1024]), polite(&[])).await;
    let r = probe::smtp::probe(&no_login(s.port(), TlsMode::None)).await;
    assert_eq!(r.failure, Some(FailureKind::ResponseTooLarge));
    assert_eq!(r.failed_phase, Some(Phase::Greeting));

    // A multi-line EHLO reply with more lines than any server needs.
    let s = fake::spawn(line(BANNER), |cmd: &str| {
        if cmd.starts_with("EHLO") {
            let mut body = Vec::new();
            for i in 0..(pop3_probe::smtp::MAX_REPLY_LINES + 5) {
                body.extend_from_slice(format!("250-X-JUNK-{i}\r\n").as_bytes());
            }
            body.extend_from_slice(b"250 HELP\r\n");
            Reply::Raw(body)
        } else {
            line("221 bye")
        }
    })
    .await;
    let r = probe::smtp::probe(&no_login(s.port(), TlsMode::None)).await;
    assert_eq!(r.failure, Some(FailureKind::ResponseTooLarge));
    assert_eq!(r.failed_phase, Some(Phase::Ehlo));
    assert!(r.message.contains("128 lines"), "{}", r.message);
}

#[tokio::test]
async fn silence_times_out_in_the_phase_it_happens() {
    let s = fake::spawn(Reply::Hang, polite(&[])).await;
    let mut t = no_login(s.port(), TlsMode::None);
    t.timeout = Duration::from_millis(300);
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::Timeout));
    assert_eq!(r.failed_phase, Some(Phase::Greeting));

    let s = fake::spawn(line(BANNER), |cmd: &str| {
        if cmd.starts_with("EHLO") {
            Reply::Hang
        } else {
            line("221 bye")
        }
    })
    .await;
    let mut t = no_login(s.port(), TlsMode::None);
    t.timeout = Duration::from_secs(5);
    t.phase_timeout = Some(Duration::from_millis(200));
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::Timeout));
    assert_eq!(r.failed_phase, Some(Phase::Ehlo));
    assert!(r.message.contains("200ms"), "{}", r.message);
}

#[tokio::test]
async fn a_slow_banner_is_judged_by_the_thresholds() {
    let greet = Reply::Delayed(Duration::from_millis(150), BANNER.into());
    let s = fake::spawn(greet, polite(&[])).await;
    let mut t = no_login(s.port(), TlsMode::None);
    t.warning = Duration::from_millis(100);
    t.critical = Duration::from_millis(1000);
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.status, Status::Degraded, "{r:?}");
    assert!(
        r.message
            .starts_with("banner and EHLO received (no login); ESMTP Scripted 1.0; slow:"),
        "{}",
        r.message
    );
}

/// A server that greets, reads EHLO, sends `partial` and closes.
async fn cut_after_ehlo(partial: &'static [u8]) -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut stream = BufReader::new(stream);
        stream
            .get_mut()
            .write_all(b"220 mx.test\r\n")
            .await
            .unwrap();
        let mut ehlo = String::new();
        stream.read_line(&mut ehlo).await.unwrap();
        stream.get_mut().write_all(partial).await.unwrap();
        // Dropped here: FIN mid-reply.
    });
    port
}

#[tokio::test]
async fn closed_mid_ehlo() {
    for partial in [
        &b""[..],
        b"250-mx.test Hello\r\n250-PIPELI",
        b"250-mx.test Hello\r\n",
    ] {
        let port = cut_after_ehlo(partial).await;
        let r = probe::smtp::probe(&no_login(port, TlsMode::None)).await;
        assert_eq!(
            r.failure,
            Some(FailureKind::ConnectionClosed),
            "{}",
            r.message
        );
        assert_eq!(r.failed_phase, Some(Phase::Ehlo));
        assert_eq!(r.message, "the server closed the connection during ehlo");
    }
}

#[tokio::test]
async fn starttls_answered_454() {
    let s = server(&["STARTTLS", "AUTH PLAIN LOGIN"]).await;
    let r = probe::smtp::probe(&target(s.port(), TlsMode::Starttls, AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::StlsRefused));
    assert_eq!(r.failed_phase, Some(Phase::Stls));
    assert_eq!(r.message, "STARTTLS refused: 454 4.7.0 TLS not available");
    assert_eq!(
        r.server_reply.as_deref(),
        Some("454 4.7.0 TLS not available")
    );
    let commands = s.commands_until("QUIT").await;
    assert_eq!(commands, vec!["EHLO probe.test", "STARTTLS", "QUIT"]);

    // Optional TLS goes on without it, but still keeps the password home.
    let s = server(&["STARTTLS", "AUTH PLAIN LOGIN"]).await;
    let r = probe::smtp::probe(&target(
        s.port(),
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    ))
    .await;
    assert_eq!(r.failure, Some(FailureKind::PlaintextRefused));
    assert!(r.tls_fallback);
    assert!(
        r.warnings.iter().any(|w| w
            == "the server refused STARTTLS (454 4.7.0 TLS not available): continuing WITHOUT TLS (tls mode starttls-if-available)"),
        "{:?}",
        r.warnings
    );
    let commands = s.commands_until("QUIT").await;
    assert_eq!(commands, vec!["EHLO probe.test", "STARTTLS", "QUIT"]);

    let s = server(&["STARTTLS"]).await;
    let r = probe::smtp::probe(&no_login(s.port(), TlsMode::StarttlsIfAvailable)).await;
    assert_eq!(r.status, Status::Up, "{}", r.message);
    assert!(r.tls_fallback);
}

#[tokio::test]
async fn data_before_tls_is_refused() {
    // CVE-2011-0411 style: a reply smuggled in before the handshake.
    let s = fake::spawn(line(BANNER), |cmd: &str| {
        if cmd == "STARTTLS" {
            Reply::Raw(b"220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n".to_vec())
        } else {
            polite(&["STARTTLS"])(cmd)
        }
    })
    .await;
    let r = probe::smtp::probe(&target(s.port(), TlsMode::Starttls, AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::ProtocolError));
    assert_eq!(r.failed_phase, Some(Phase::Stls));
    assert!(r.message.contains("before TLS began"), "{}", r.message);
}

#[tokio::test]
async fn helo_when_ehlo_is_not_understood() {
    let s = fake::spawn(line("220 old.mx.test SMTP"), |cmd: &str| {
        if cmd.starts_with("EHLO") {
            line("502 5.5.2 Error: command not recognized")
        } else {
            polite(&[])(cmd)
        }
    })
    .await;
    let r = probe::smtp::probe(&no_login(s.port(), TlsMode::StarttlsIfAvailable)).await;
    assert_eq!(r.status, Status::Up, "{}", r.message);
    assert!(
        r.message.starts_with("banner and HELO received"),
        "{}",
        r.message
    );
    assert!(r.tls_fallback);
    assert!(
        r.warnings.iter().any(|w| w.contains("HELO")),
        "{:?}",
        r.warnings
    );
    assert_eq!(
        s.commands_until("QUIT").await,
        vec!["EHLO probe.test", "HELO probe.test", "QUIT"]
    );

    // A 4yz to EHLO turns the session away: no HELO after it.
    let s = fake::spawn(line(BANNER), |cmd: &str| {
        if cmd.starts_with("EHLO") {
            line("421 4.7.0 Too many connections")
        } else {
            polite(&[])(cmd)
        }
    })
    .await;
    let r = probe::smtp::probe(&no_login(s.port(), TlsMode::None)).await;
    assert_eq!(r.failure, Some(FailureKind::GreetingRejected));
    assert_eq!(r.failed_phase, Some(Phase::Ehlo));
    assert_eq!(s.commands(), vec!["EHLO probe.test"]);
}

#[tokio::test]
async fn auth_picks_plain_then_login() {
    let s = server(&["AUTH LOGIN PLAIN"]).await;
    let r = probe::smtp::probe(&plain(s.port(), AuthMethod::Auto)).await;
    assert_eq!(r.status, Status::Up, "{}", r.message);
    assert_eq!(r.auth_used, Some(AuthMethod::SaslPlain));
    assert!(r.warnings.iter().any(|w| w.contains("cleartext")));
    assert_no_secret(&r);

    let s = server(&["AUTH LOGIN"]).await;
    let r = probe::smtp::probe(&plain(s.port(), AuthMethod::Auto)).await;
    assert_eq!(r.status, Status::Up, "{}", r.message);
    assert_eq!(r.auth_used, Some(AuthMethod::SaslLogin));
    assert_eq!(r.message, "logged in with sasl-login; ESMTP Scripted 1.0");
    let commands = s.commands_until("QUIT").await;
    assert_eq!(
        commands,
        vec![
            "EHLO probe.test".to_string(),
            "AUTH LOGIN".to_string(),
            b64(USER),
            b64(PASSWORD),
            "QUIT".to_string()
        ]
    );
    assert_no_secret(&r);
}

#[tokio::test]
async fn auth_failures_are_classified() {
    let s = server(&["AUTH PLAIN"]).await;
    let mut t = plain(s.port(), AuthMethod::SaslPlain);
    t.password = Some(SecretString::from("wrong".to_string()));
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::AuthFailed));
    assert_eq!(
        r.server_reply.as_deref(),
        Some("535 5.7.8 Authentication credentials invalid")
    );

    let s = fake::spawn(line(BANNER), |cmd: &str| {
        if cmd.starts_with("AUTH") {
            line("454 4.7.0 Temporary authentication failure")
        } else {
            polite(&["AUTH PLAIN"])(cmd)
        }
    })
    .await;
    let r = probe::smtp::probe(&plain(s.port(), AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::AuthTemporaryFailure));
    assert_eq!(r.failed_phase, Some(Phase::Auth));
    assert_eq!(s.commands_until("QUIT").await.last().unwrap(), "QUIT");

    // Nothing to log in with.
    let s = server(&["SIZE 1000"]).await;
    let r = probe::smtp::probe(&plain(s.port(), AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::AuthUnsupported));
    assert_eq!(
        r.message,
        "the server does not offer AUTH on this connection without TLS"
    );
    let s = server(&["AUTH LOGIN CRAM-MD5"]).await;
    let r = probe::smtp::probe(&plain(s.port(), AuthMethod::SaslPlain)).await;
    assert_eq!(r.failure, Some(FailureKind::AuthUnsupported));
    assert_eq!(
        r.message,
        "the server offers AUTH LOGIN CRAM-MD5 but not PLAIN"
    );
    // Neither was AUTH sent.
    assert!(!s
        .commands_until("QUIT")
        .await
        .iter()
        .any(|c| c.starts_with("AUTH")));
}

#[tokio::test]
async fn the_password_stays_home_without_tls() {
    let s = server(&["AUTH PLAIN LOGIN"]).await;
    let r = probe::smtp::probe(&target(s.port(), TlsMode::None, AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::PlaintextRefused));
    assert_eq!(
        s.commands_until("QUIT").await,
        vec!["EHLO probe.test", "QUIT"]
    );
}

#[tokio::test]
async fn a_server_echoing_the_password_is_scrubbed() {
    let s = fake::spawn(line(BANNER), |cmd: &str| {
        if cmd.starts_with("AUTH") {
            line(&format!("535 5.7.8 you sent {cmd}"))
        } else if cmd.starts_with("EHLO") {
            Reply::Raw(format!("250-mx.test {PASSWORD}\r\n250 AUTH PLAIN\r\n").into_bytes())
        } else {
            polite(&[])(cmd)
        }
    })
    .await;
    let r = probe::smtp::probe(&plain(s.port(), AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::AuthFailed));
    assert!(
        r.message.contains("you sent AUTH PLAIN ***"),
        "{}",
        r.message
    );
    assert_no_secret(&r);
}

#[tokio::test]
async fn settings_are_checked_before_any_traffic() {
    for (auth, want) in [
        (AuthMethod::Apop, "auth method apop is POP3's"),
        (AuthMethod::User, "auth method user is POP3's"),
    ] {
        let s = server(&[]).await;
        let r = probe::smtp::probe(&plain(s.port(), auth)).await;
        assert_eq!(r.failure, Some(FailureKind::ConfigError));
        assert!(r.message.starts_with(want), "{}", r.message);
        assert!(r.phases.is_empty(), "{:?}", r.phases);
    }

    let s = server(&[]).await;
    let mut t = plain(s.port(), AuthMethod::SaslLogin);
    t.password = None;
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::ConfigError));
    assert_eq!(
        r.message,
        "auth method sasl-login needs a user name and a password"
    );

    let mut t = no_login(s.port(), TlsMode::None);
    t.ehlo_name = Some("two words".into());
    let r = probe::smtp::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::ConfigError));
    assert_eq!(r.failed_phase, Some(Phase::Ehlo));
    assert!(r.message.starts_with("ehlo_name: "), "{}", r.message);
    assert!(s.commands().is_empty());
}

#[tokio::test]
async fn never_a_command_that_sends_or_asks_about_mail() {
    // Every path that reaches a server, on one server that accepts all.
    let s = server(&["STARTTLS", "AUTH PLAIN LOGIN", "PIPELINING", "SIZE 1000"]).await;
    let cases = [
        plain(s.port(), AuthMethod::Auto),
        plain(s.port(), AuthMethod::SaslLogin),
        target(s.port(), TlsMode::Starttls, AuthMethod::Auto),
        target(s.port(), TlsMode::StarttlsIfAvailable, AuthMethod::Auto),
        no_login(s.port(), TlsMode::None),
    ];
    for t in &cases {
        let r = probe::smtp::probe(t).await;
        assert_no_secret(&r);
    }
    let commands = s.commands_until("QUIT").await;
    assert!(commands.len() >= 10, "{commands:?}");
    assert_only_allowed_commands(&commands);
}

/// Issue 11.1: the EHLO `AUTH` list, the banner, other EHLO keywords and
/// the replies to AUTH echo the password (upper-cased, with its spaces):
/// no output, drift record or transcript shows any form of it.
#[tokio::test]
async fn a_password_echoed_in_the_ehlo_auth_list_never_reaches_any_output() {
    for pw in ["HUNTER2SECRETPW", "  lead and trail  ", "Mixed-Case-Pw9"] {
        let echo = pw.to_string();
        let upper = pw.to_ascii_uppercase();
        let banner = Reply::Raw(format!("220 mx.test ESMTP {upper}\r\n").into_bytes());
        let s = fake::spawn(banner, move |cmd: &str| {
            if cmd.starts_with("AUTH") {
                Reply::Raw(format!("535 5.7.8 no {echo} {cmd}\r\n").into_bytes())
            } else if cmd.starts_with("EHLO") {
                Reply::Raw(
                    format!("250-mx.test\r\n250-X-{echo}\r\n250 AUTH PLAIN LOGIN {echo}\r\n")
                        .into_bytes(),
                )
            } else {
                polite(&[])(cmd)
            }
        })
        .await;
        for auth in [AuthMethod::SaslPlain, AuthMethod::SaslLogin] {
            let mut t = plain(s.port(), auth);
            t.password = Some(SecretString::from(pw.to_string()));
            let r = probe::smtp::probe(&t).await;
            assert_eq!(r.status, Status::Down, "{r:?}");
            let set = pop3_probe::drift::CapabilitySet::observe(&r);
            let rendered = format!(
                "{}\n{}\n{}\n{}\n{r:?}\n{}",
                pop3_probe::output::json(&r),
                pop3_probe::output::human(&r),
                pop3_probe::output::nagios(&r, &t),
                pop3_probe::output::transcript(&r),
                serde_json::to_string(&set).unwrap()
            )
            .to_ascii_lowercase();
            let mut forms = vec![pw.to_string(), pw.trim().to_string()];
            forms.extend(pop3_probe::sasl::secret_forms(pw, Some(USER)));
            for f in forms {
                assert!(
                    !rendered.contains(&f.to_ascii_lowercase()),
                    "{pw:?} {auth}: leaked {f:?}:\n{rendered}"
                );
            }
        }
    }
}
