//! Security review, as tests: a man in the middle that strips STLS, alerts
//! and results under hostile replies, and certificate checks that cannot be
//! switched off by accident.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::dovecot::{dovecot, Dovecot};
use pop3_probe::alert;
use pop3_probe::alert::AlertSettings;
use pop3_probe::config::Config;
use pop3_probe::probe::{self, AuthMethod, FailureKind, Target, TlsMode};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A proxy in front of Dovecot's STLS listener that removes STLS from CAPA
/// and answers STLS itself with -ERR, recording every byte the client sent.
async fn stripping_proxy(upstream: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                let (cr, mut cw) = client.into_split();
                let (sr, mut sw) = server.into_split();
                let mut cr = BufReader::new(cr);
                let mut sr = BufReader::new(sr);
                let mut greeting = String::new();
                sr.read_line(&mut greeting).await.unwrap();
                cw.write_all(greeting.as_bytes()).await.unwrap();
                let mut line = Vec::new();
                loop {
                    line.clear();
                    if cr.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    seen.lock().unwrap().extend_from_slice(&line);
                    let upper = String::from_utf8_lossy(&line).trim().to_ascii_uppercase();
                    if upper == "STLS" {
                        cw.write_all(b"-ERR STLS unknown command\r\n")
                            .await
                            .unwrap();
                        continue;
                    }
                    sw.write_all(&line).await.unwrap();
                    // Relay the answer; strip STLS from a CAPA listing.
                    let mut reply = String::new();
                    if sr.read_line(&mut reply).await.unwrap_or(0) == 0 {
                        return;
                    }
                    cw.write_all(reply.as_bytes()).await.unwrap();
                    if upper == "CAPA" && reply.starts_with("+OK") {
                        loop {
                            let mut l = String::new();
                            sr.read_line(&mut l).await.unwrap();
                            if l.trim() != "STLS" {
                                cw.write_all(l.as_bytes()).await.unwrap();
                            }
                            if l.trim() == "." {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    (port, seen)
}

fn target(d: &Dovecot, port: u16, tls: TlsMode, auth: AuthMethod) -> Target {
    let mut t = Target::new("mitm", "127.0.0.1", port);
    t.tls = tls;
    t.auth = auth;
    t.username = Some(d.get("USER").to_string());
    t.password = Some(SecretString::from(d.get("PASSWORD").to_string()));
    t.ca_pem = Some(d.pem("CA_PEM"));
    t.tls_server_name = Some("localhost".into());
    t.timeout = Duration::from_secs(5);
    t
}

#[tokio::test]
async fn a_stls_stripping_proxy_never_sees_the_password() {
    let d = dovecot();
    let (port, seen) = stripping_proxy(d.port("POP3_PLAIN_STLS_PORT")).await;
    for auth in [
        AuthMethod::Auto,
        AuthMethod::User,
        AuthMethod::SaslPlain,
        AuthMethod::Apop,
    ] {
        let r = probe::pop3::probe(&target(d, port, TlsMode::Starttls, auth)).await;
        assert_eq!(
            r.failure,
            Some(FailureKind::StlsUnavailable),
            "{auth}: {r:?}"
        );
        assert!(r.auth_used.is_none());
    }
    // If-available falls back and says so; without permission only APOP
    // (which never sends the password) may log in.
    for auth in [AuthMethod::User, AuthMethod::SaslPlain] {
        let r = probe::pop3::probe(&target(d, port, TlsMode::StarttlsIfAvailable, auth)).await;
        assert!(r.tls_fallback);
        assert_eq!(r.failure, Some(FailureKind::PlaintextRefused), "{auth}");
        assert!(r.warnings.iter().any(|w| w.contains("WITHOUT TLS")));
    }
    let r = probe::pop3::probe(&target(
        d,
        port,
        TlsMode::StarttlsIfAvailable,
        AuthMethod::Auto,
    ))
    .await;
    assert!(r.tls_fallback);
    assert_eq!(r.auth_used, Some(AuthMethod::Apop), "{r:?}");
    assert_eq!(r.failure, None);

    let bytes = seen.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("STLS"), "the proxy saw the probe: {text}");
    for form in pop3_probe::sasl::secret_forms(d.get("PASSWORD"), Some(d.get("USER"))) {
        assert!(!text.contains(&form), "the proxy saw {form}:\n{text}");
    }
    assert!(!text.contains("PASS ") && !text.contains("AUTH "), "{text}");
}

#[tokio::test]
async fn alerts_never_carry_the_password_whatever_the_server_said() {
    let d = dovecot();
    // A real failure with the password in every field a server controls.
    let mut t = target(d, d.port("POP3S_PORT"), TlsMode::Implicit, AuthMethod::User);
    t.password = Some(SecretString::from("Wrong-But-Secret-1".to_string()));
    let r = probe::pop3::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::AuthFailed));
    // Every alert text (subject, SMS, e-mail body) is built from the
    // result, which never holds the password it was probed with.
    let settings = AlertSettings {
        failures_before_alert: 1,
        certificate_warning_days: 14,
        renotify: None,
        schedule: None,
    };
    let step = alert::evaluate(None, &r, &settings, 0);
    assert_eq!(step.alerts.len(), 1);
    for a in &step.alerts {
        let all = format!("{}{}{}{:?}", a.subject, a.sms, a.body, a);
        assert!(!all.contains("Wrong-But-Secret-1"), "{all}");
    }
    // ...while the server's own words do reach the alert.
    assert!(step.alerts[0]
        .body
        .contains("-ERR [AUTH] Authentication failed."));
}

#[test]
fn certificate_checks_cannot_be_disabled_by_accident() {
    // Off unless a monitor says exactly `true`.
    assert!(!Target::new("x", "h", 995).insecure_skip_verify);
    let parse = |v: &str| {
        Config::parse(&format!(
            r#"{{"monitors": [{{"name": "m", "host": "h", "auth": "none", "insecure_skip_verify": {v}}}]}}"#
        ))
        .unwrap()
    };
    assert!(!parse("false").monitors[0].target.insecure_skip_verify);
    assert!(parse("true").monitors[0].target.insecure_skip_verify);
    for sloppy in [r#""true""#, "1", r#""yes""#, "null"] {
        let c = parse(sloppy);
        if sloppy == "null" {
            assert!(!c.monitors[0].target.insecure_skip_verify);
        } else {
            assert_eq!(c.monitors.len(), 0, "{sloppy} must be refused");
            assert!(c.problems[0]
                .error
                .to_string()
                .contains("insecure_skip_verify"));
        }
    }
    // No environment variable turns verification off: the only switch is
    // the field above (and the CLI flag with "insecure" in its name).
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/net.rs")).unwrap();
    assert!(
        !src.contains("env::var"),
        "net.rs must not read the environment"
    );
}

#[tokio::test]
async fn verification_happens_before_any_pop3_byte() {
    // A TLS server with an untrusted certificate never receives a command.
    let d = dovecot();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let got2 = got.clone();
    let upstream = d.port("POP3S_PORT");
    tokio::spawn(async move {
        // A transparent relay to Dovecot's implicit TLS port that records
        // how many bytes the client sends after the handshake would start.
        while let Ok((mut c, _)) = listener.accept().await {
            let got = got2.clone();
            tokio::spawn(async move {
                let mut s = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                let (mut cr, mut cw) = c.split();
                let (mut sr, mut sw) = s.split();
                let up = async {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        got.lock().unwrap().push(n);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                let _ = tokio::join!(up, down);
            });
        }
    });
    let mut t = target(d, port, TlsMode::Implicit, AuthMethod::User);
    t.ca_pem = Some(d.pem("OTHER_CA_PEM"));
    let r = probe::pop3::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::CertificateInvalid));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ClientHello, then the client's Finished (TLS 1.3) and the alert or
    // close: a few small records, none the size of a login line's record.
    let writes = got.lock().unwrap().clone();
    assert!(!writes.is_empty());
    assert!(writes.len() <= 3, "client wrote {writes:?}");
    assert!(r.phases.last().map(|p| p.phase) == Some(probe::Phase::Tls));
}

/// RUSTSEC-2025-0134: rustls-pemfile is unmaintained; PEM is read through
/// rustls-pki-types. Nothing in the build may pull it back in.
#[test]
fn rustls_pemfile_is_not_a_dependency() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    assert!(
        !lock.contains("name = \"rustls-pemfile\""),
        "rustls-pemfile is back in Cargo.lock"
    );
}

/// Issue 12.6: a probe that fails with `certificate_expired` no longer says
/// `verified: true`; the field says the check failed, and how.
#[tokio::test]
async fn an_expired_certificate_is_recorded_as_a_failed_verification() {
    let d = dovecot();
    let port: u16 = d.get("POP3S_EXPIRED_PORT").parse().unwrap();
    let r = probe::pop3::probe(&target(d, port, TlsMode::Implicit, AuthMethod::Auto)).await;
    assert_eq!(r.failure, Some(FailureKind::CertificateExpired), "{r:?}");
    let tls = r.tls.as_ref().expect("facts kept on a rejection");
    assert_eq!(
        tls.verified,
        pop3_probe::net::Verification::Failed(pop3_probe::net::TlsFailure::Expired)
    );
    let json: serde_json::Value = serde_json::from_str(&pop3_probe::output::json(&r)).unwrap();
    assert_eq!(
        json["tls"]["verified"],
        serde_json::json!({"failed": "certificate_expired"})
    );
    // A result stored before the change (a bool) still reads.
    let old: pop3_probe::net::TlsFacts = serde_json::from_value(serde_json::json!({
        "version": "TLSv1.3", "cipher": "x", "certificate": null, "verified": true
    }))
    .unwrap();
    assert!(old.verified.passed());
}

/// Issue 11.1, through the pipeline: a server whose CAPA starts echoing
/// the password (upper-cased, in SASL and IMPLEMENTATION) after a good
/// run changes its capabilities, so the `capability_changed` alert, the
/// state rows (the drift baseline) and the metrics are all written from
/// what it said. None of them holds the password.
#[tokio::test]
async fn state_alerts_and_metrics_never_hold_an_echoed_password() {
    use common::mem::{MemAlerts, MemMetrics, MemState};
    use std::sync::atomic::{AtomicBool, Ordering};

    const PW: &str = "HUNTER2SECRETPW";
    let echo = Arc::new(AtomicBool::new(false));
    let echo2 = echo.clone();
    let s = common::fake::spawn(common::fake::line("+OK hi"), move |cmd: &str| {
        if cmd.eq_ignore_ascii_case("CAPA") {
            let body = if echo2.load(Ordering::SeqCst) {
                format!("+OK\r\nUSER\r\nSASL LOGIN {PW}\r\nIMPLEMENTATION {PW}\r\n.\r\n")
            } else {
                "+OK\r\nUSER\r\nSASL PLAIN\r\nIMPLEMENTATION calm\r\n.\r\n".to_string()
            };
            common::fake::Reply::Raw(body.into_bytes())
        } else {
            common::fake::polite(&[])(cmd)
        }
    })
    .await;
    let text = format!(
        r#"{{"run": {{"retries": 0, "deadline_ms": 10000}},
             "credentials": {{"a": {{"username": "probe", "password": "{pw}"}}}},
             "defaults": {{"tls": "none", "allow_plaintext_password": true, "auth": "user",
                          "credentials": "a", "failures_before_alert": 1, "timeout_ms": 3000,
                          "warning_ms": 2000, "critical_ms": 2500}},
             "monitors": [{{"name": "echo", "host": "127.0.0.1", "port": {port}}}]}}"#,
        pw = PW.to_ascii_lowercase(),
        port = s.port()
    );
    let c = pop3_probe::config::load(&text, &common::NoSecrets)
        .await
        .unwrap();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let (m, a, st) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );
    for round in 0..2 {
        echo.store(round == 1, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + c.run.deadline;
        pop3_probe::pipeline::execute(
            &c,
            "Test",
            pop3_probe::pipeline::Shard::default(),
            deadline,
            &m,
            &a,
            &st,
        )
        .await;
    }
    let alerts = format!("{:?}", a.got.lock().unwrap());
    assert!(
        alerts.contains("apability"),
        "a capability alert was expected: {alerts}"
    );
    let everything = format!(
        "{alerts}\n{:?}\n{:?}\n{:?}",
        st.rows.lock().unwrap(),
        st.pending.lock().unwrap(),
        m.got.lock().unwrap()
    )
    .to_ascii_lowercase();
    assert!(
        !everything.contains(&PW.to_ascii_lowercase()),
        "leaked: {everything}"
    );
}

/// The same hostile server, through `pop3-probe run --vantage` (a process
/// of its own, as an operator runs it): after a good run its CAPA echoes
/// the password upper-cased and its PASS refusal echoes it as sent, so the
/// run has an `auth_failed` result, echoed capabilities, a vantage verdict
/// and a `down` alert, all written from what it said. The password is in
/// none of stdout (`--json`), stderr (the alerts), the state file or the
/// shared vantage file.
#[tokio::test]
async fn run_vantage_outputs_and_files_never_hold_an_echoed_password() {
    use std::sync::atomic::{AtomicBool, Ordering};

    const PW: &str = "hunter2vantagepw";
    let echo = Arc::new(AtomicBool::new(false));
    let echo2 = echo.clone();
    let s = common::fake::spawn(common::fake::line("+OK hi"), move |cmd: &str| {
        let hostile = echo2.load(Ordering::SeqCst);
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match (verb.as_str(), hostile) {
            ("CAPA", true) => common::fake::Reply::Raw(
                format!(
                    "+OK\r\nUSER\r\nSASL LOGIN {up}\r\nIMPLEMENTATION {up}\r\n.\r\n",
                    up = PW.to_ascii_uppercase()
                )
                .into_bytes(),
            ),
            ("PASS", true) => common::fake::line(&format!("-ERR [AUTH] not {PW}, {PW} is wrong")),
            ("CAPA", false) => common::fake::Reply::Raw(
                b"+OK\r\nUSER\r\nSASL PLAIN\r\nIMPLEMENTATION calm\r\n.\r\n".to_vec(),
            ),
            _ => common::fake::polite(&[])(cmd),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("monitors.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"run": {{"retries": 0, "deadline_ms": 10000, "schedule_seconds": 60}},
                 "credentials": {{"a": {{"username": "probe", "password_env": "ECHO_PW"}}}},
                 "defaults": {{"tls": "none", "allow_plaintext_password": true, "auth": "user",
                              "credentials": "a", "failures_before_alert": 1, "timeout_ms": 3000,
                              "warning_ms": 2000, "critical_ms": 2500}},
                 "monitors": [{{"name": "echo", "host": "127.0.0.1", "port": {}}}]}}"#,
            s.port()
        ),
    )
    .unwrap();
    let (state, vantages) = (
        dir.path().join("state.json"),
        dir.path().join("vantages.json"),
    );
    let mut shown = String::new();
    for round in 0..2 {
        echo.store(round == 1, Ordering::SeqCst);
        let (config, state, vantages) = (config.clone(), state.clone(), vantages.clone());
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
                .args(["run", "--json", "--vantage", "office"])
                .arg("--config")
                .arg(&config)
                .arg("--state")
                .arg(&state)
                .arg("--vantage-state")
                .arg(&vantages)
                .env("ECHO_PW", PW)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        shown.push_str(&String::from_utf8_lossy(&out.stdout));
        shown.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // The second run saw everything the test means it to see.
    assert!(shown.contains("auth_failed"), "{shown}");
    assert!(
        shown.contains(r#""implementation": "***""#),
        "the echoing CAPA reached the result, masked: {shown}"
    );
    assert!(
        shown.contains("[DOWN: CREDENTIALS] echo"),
        "a down alert: {shown}"
    );
    let files = format!(
        "{}\n{}",
        std::fs::read_to_string(&state).unwrap(),
        std::fs::read_to_string(&vantages).unwrap()
    );
    assert!(
        files.contains("auth_failed"),
        "the verdict is stored: {files}"
    );
    let everything = format!("{shown}\n{files}").to_ascii_lowercase();
    assert!(!everything.contains(PW), "leaked: {everything}");
}
