//! The round-trip monitor against a real delivery path: the test Exim takes
//! authenticated submission (STARTTLS) and delivers into the test Dovecot's
//! `roundtrip` Maildir (tests/smtp/ensure.sh); blackhole@localhost is
//! accepted and thrown away. Every test uses its own monitor name, so the
//! others' messages are foreign to it, as a stranger's would be.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use pop3_probe::probe::roundtrip::{self, Outstanding, RoundTrip};
use pop3_probe::probe::{AuthMethod, FailureKind, Kind, Phase, Status, Target, TlsMode};
use pop3_probe::roundtrip::token::{SigningKey, Token, Verifier};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const KEY: &str = "roundtrip-test-signing-key-0123";

fn key() -> SigningKey {
    SigningKey::new(SecretString::from(KEY.to_string())).unwrap()
}

fn monitor(name: &str) -> RoundTrip {
    let exim = common::smtp::exim();
    let dovecot = common::dovecot::dovecot();
    let mut submit = Target::new(
        format!("{name}-submit"),
        "127.0.0.1",
        exim.port("SMTP_SUBMIT_PORT"),
    );
    submit.kind = Kind::Smtp;
    submit.tls = TlsMode::Starttls;
    submit.auth = AuthMethod::Auto;
    submit.username = Some(exim.get("SMTP_USER").into());
    submit.password = Some(SecretString::from(exim.get("SMTP_PASSWORD").to_string()));
    submit.ca_pem = Some(exim.pem("CA_PEM"));
    submit.ehlo_name = Some(format!("{name}.roundtrip.test"));
    let mut retrieve = Target::new(
        format!("{name}-retrieve"),
        "127.0.0.1",
        dovecot.port("POP3S_PORT"),
    );
    retrieve.tls = TlsMode::Implicit;
    retrieve.username = Some(dovecot.get("ROUNDTRIP_USER").into());
    retrieve.password = Some(SecretString::from(dovecot.get("PASSWORD").to_string()));
    retrieve.ca_pem = Some(dovecot.pem("CA_PEM"));
    RoundTrip {
        name: name.into(),
        submit,
        retrieve,
        from: "monitor@localhost".into(),
        to: exim.get("ROUNDTRIP_RCPT").into(),
        key: key(),
        max_delivery: Duration::from_secs(60),
        warning: Duration::from_secs(20),
        critical: Duration::from_secs(40),
        wait: Duration::from_secs(8),
        poll_interval: Duration::from_millis(200),
        stale_after: Duration::from_secs(3600),
        timeout: Duration::from_secs(20),
    }
}

/// A message written straight into the roundtrip Maildir, as if another
/// sender's mail (or a forger's) had arrived. Owned by Dovecot's mail user.
fn plant(name: &str, message_id: &str, extra_header: Option<String>) {
    let d = common::dovecot::dovecot();
    let dir = std::path::Path::new(d.get("ROUNDTRIP_MAILDIR")).join("new");
    let base = format!("1700000000.{name}.planted");
    // Left by an earlier test run (Dovecot moved it to cur/): reuse it, so
    // the shared mailbox does not grow run after run.
    let cur = dir.parent().unwrap().join("cur");
    let exists = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .map(|mut r| {
                r.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with(&base)))
            })
            .unwrap_or(false)
    };
    if exists(&dir) || exists(&cur) {
        return;
    }
    let path = dir.join(&base);
    let mut text = format!(
        "From: someone@example.test\nTo: roundtrip@localhost\nSubject: {name}\nMessage-ID: {message_id}\n"
    );
    if let Some(h) = extra_header {
        text.push_str(&h);
        text.push('\n');
    }
    text.push_str("\nNot the probe's.\n");
    std::fs::write(&path, text).unwrap();
    let uid: u32 = d.get("MAIL_UID").parse().unwrap();
    let gid: u32 = d.get("MAIL_GID").parse().unwrap();
    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
}

/// UIDL → Message-ID of the roundtrip mailbox, read over plain POP3 by the
/// test itself (USER/PASS on the no-TLS listener, TOP n 0, no DELE).
async fn listing() -> HashMap<String, String> {
    let d = common::dovecot::dovecot();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", d.port("POP3_NOTLS_PORT")))
        .await
        .unwrap();
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    async fn read(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, line: &mut String) -> String {
        line.clear();
        r.read_line(line).await.unwrap();
        line.trim_end().to_string()
    }
    assert!(read(&mut r, &mut line).await.starts_with("+OK"));
    for cmd in [
        format!("USER {}\r\n", d.get("ROUNDTRIP_USER")),
        format!("PASS {}\r\n", d.get("PASSWORD")),
    ] {
        w.write_all(cmd.as_bytes()).await.unwrap();
        assert!(read(&mut r, &mut line).await.starts_with("+OK"));
    }
    w.write_all(b"UIDL\r\n").await.unwrap();
    assert!(read(&mut r, &mut line).await.starts_with("+OK"));
    let mut uidls = Vec::new();
    loop {
        let l = read(&mut r, &mut line).await;
        if l == "." {
            break;
        }
        let (n, u) = l.split_once(' ').unwrap();
        uidls.push((n.to_string(), u.to_string()));
    }
    let mut out = HashMap::new();
    for (n, u) in uidls {
        w.write_all(format!("TOP {n} 0\r\n").as_bytes())
            .await
            .unwrap();
        assert!(read(&mut r, &mut line).await.starts_with("+OK"));
        let mut id = String::new();
        loop {
            let l = read(&mut r, &mut line).await;
            if l == "." {
                break;
            }
            if let Some(v) = l.strip_prefix("Message-ID: ") {
                id = v.trim().to_string();
            }
        }
        out.insert(u, id);
    }
    w.write_all(b"QUIT\r\n").await.unwrap();
    let _ = read(&mut r, &mut line).await;
    out
}

/// Dovecot's log lines that record a message removed (mail_log plugin).
fn expunges() -> Vec<String> {
    let d = common::dovecot::dovecot();
    std::fs::read_to_string(d.get("DOVECOT_LOG"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("expunge:") || l.contains("delete:"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_round_trip_is_up_with_a_delivery_time_and_removes_its_message() {
    let rt = monitor("rt-up");
    let (r, state) = roundtrip::probe(&rt, &Outstanding::default()).await;
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert_eq!(r.kind, Kind::Roundtrip);
    let facts = r.roundtrip.clone().unwrap();
    assert_eq!(facts.sent_seq, Some(0));
    let delivery = facts.delivery_ms.expect("a delivery time");
    assert!(delivery >= 0.0);
    // Exim's Received: header agrees to within its one-second precision
    // plus a poll interval.
    let by_header = facts.received_delivery_ms.expect("a Received: header");
    assert!(
        (by_header - delivery).abs() < 1000.0 + 200.0 + 1000.0,
        "{facts:?}"
    );
    assert_eq!(facts.deleted, 1);
    assert_eq!(facts.outstanding, 0);
    for p in [Phase::Submit, Phase::Retrieve, Phase::Delivery] {
        assert!(r.phase_ms(p).is_some(), "phase {p} missing: {:?}", r.phases);
    }
    assert_eq!(state.next_seq, 1);
    assert!(state.sent.is_empty());
    // No secret in the result.
    let json = serde_json::to_string(&r).unwrap();
    for secret in [
        KEY,
        common::smtp::exim().get("SMTP_PASSWORD"),
        common::dovecot::dovecot().get("PASSWORD"),
    ] {
        assert!(!json.contains(secret), "a secret leaked into the result");
    }

    // The next run goes on counting.
    let (r2, state2) = roundtrip::probe(&rt, &state).await;
    assert_eq!(r2.status, Status::Up, "{r2:#?}");
    assert_eq!(r2.roundtrip.unwrap().sent_seq, Some(1));
    assert_eq!(state2.next_seq, 2);
}

#[tokio::test]
async fn a_blackhole_route_is_message_lost() {
    let mut rt = monitor("rt-lost");
    rt.to = common::smtp::exim().get("BLACKHOLE_RCPT").into();
    rt.max_delivery = Duration::from_millis(1500);
    rt.wait = Duration::from_millis(2500);
    rt.poll_interval = Duration::from_millis(500);
    let (r, state) = roundtrip::probe(&rt, &Outstanding::default()).await;
    assert_eq!(r.status, Status::Down, "{r:#?}");
    assert_eq!(r.failure, Some(FailureKind::MessageLost), "{r:#?}");
    assert_eq!(r.failed_phase, Some(Phase::Delivery));
    let facts = r.roundtrip.unwrap();
    assert_eq!(facts.lost, 1);
    assert!(facts.polls >= 2, "{facts:?}");
    // Counted once: the lost message is forgotten, not lost again next run.
    assert!(state.sent.is_empty());
    assert_eq!(state.next_seq, 1);
}

#[tokio::test]
async fn foreign_and_forged_messages_are_never_touched_and_stale_ones_go() {
    let name = "rt-clean";
    let rt = monitor(name);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ours = Verifier::new(name, key());
    let header = pop3_probe::roundtrip::token::HEADER;
    // A stranger's mail; a forged token (right shape, wrong tag); a genuine
    // token of another monitor with the same key (a replay); and a stale
    // message of this monitor from two days ago.
    let forged_tag = "v1 s=5 t=1 h=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let replayed = Verifier::new("rt-someone-else", key()).sign(Token {
        seq: 0,
        sent_ms: now_ms,
    });
    let stale = ours.sign(Token {
        seq: 900,
        sent_ms: now_ms - 2 * 24 * 3600 * 1000,
    });
    plant("rt-clean-foreign", "<foreign.rt-clean@example.test>", None);
    plant(
        "rt-clean-forged",
        "<forged.rt-clean@example.test>",
        Some(format!("{header}: {forged_tag}")),
    );
    plant(
        "rt-clean-replay",
        "<replay.rt-clean@example.test>",
        Some(format!("{header}: {replayed}")),
    );
    plant(
        "rt-clean-stale",
        "<stale.rt-clean@example.test>",
        Some(format!("{header}: {stale}")),
    );
    let before = listing().await;
    let uidl_of = |id: &str| {
        before
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| panic!("{id} not in the mailbox: {before:?}"))
    };
    let kept = [
        uidl_of("<foreign.rt-clean@example.test>"),
        uidl_of("<forged.rt-clean@example.test>"),
        uidl_of("<replay.rt-clean@example.test>"),
    ];
    uidl_of("<stale.rt-clean@example.test>");

    let (r, _) = roundtrip::probe(&rt, &Outstanding::default()).await;
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let facts = r.roundtrip.unwrap();
    assert!(facts.foreign_messages >= 3, "{facts:?}");
    assert_eq!(facts.stale_deleted, 1, "{facts:?}");
    assert_eq!(
        facts.deleted, 2,
        "its own message and the stale one: {facts:?}"
    );

    let after = listing().await;
    for u in &kept {
        assert!(after.contains_key(u), "UIDL {u} is gone: {after:?}");
    }
    assert!(!after.values().any(|v| v == "<stale.rt-clean@example.test>"));
    // Dovecot's own record: an expunge for the stale one, none for the rest.
    let log = expunges();
    assert!(
        log.iter()
            .any(|l| l.contains("<stale.rt-clean@example.test>")),
        "{log:#?}"
    );
    for id in [
        "<foreign.rt-clean@example.test>",
        "<forged.rt-clean@example.test>",
        "<replay.rt-clean@example.test>",
    ] {
        assert!(
            !log.iter().any(|l| l.contains(id)),
            "{id} was removed: {log:#?}"
        );
    }
}

#[tokio::test]
async fn the_submission_server_down_is_blamed_on_submit() {
    let mut rt = monitor("rt-submit-down");
    rt.submit.port = common::dovecot::dovecot().port("CLOSED_PORT");
    let (r, state) = roundtrip::probe(&rt, &Outstanding::default()).await;
    assert_eq!(r.status, Status::Down);
    assert_eq!(r.failure, Some(FailureKind::ConnectionRefused), "{r:#?}");
    assert_eq!(r.failed_phase, Some(Phase::Submit));
    let facts = r.roundtrip.unwrap();
    assert_eq!(facts.failed_leg, Some(Phase::Submit));
    assert_eq!(facts.leg_phase, Some(Phase::Connect));
    assert_eq!(facts.polls, 0, "POP3 is not even tried");
    assert!(r.message.starts_with("submit (127.0.0.1:"), "{}", r.message);
    assert!(state.sent.is_empty());
}

#[tokio::test]
async fn a_wrong_submission_password_is_an_smtp_auth_failure_in_submit() {
    let mut rt = monitor("rt-submit-auth");
    rt.submit.password = Some(SecretString::from("not-the-password".to_string()));
    let (r, _) = roundtrip::probe(&rt, &Outstanding::default()).await;
    assert_eq!(r.failure, Some(FailureKind::AuthFailed), "{r:#?}");
    assert_eq!(r.failed_phase, Some(Phase::Submit));
    assert_eq!(r.roundtrip.unwrap().leg_phase, Some(Phase::Auth));
    assert!(!serde_json::to_string(&r.message)
        .unwrap()
        .contains("not-the-password"));
}

#[tokio::test]
async fn the_pop3_server_down_is_blamed_on_retrieve() {
    let mut rt = monitor("rt-retrieve-down");
    // Into the blackhole: nothing is left behind in the shared mailbox.
    rt.to = common::smtp::exim().get("BLACKHOLE_RCPT").into();
    rt.retrieve.port = common::dovecot::dovecot().port("CLOSED_PORT");
    let (r, state) = roundtrip::probe(&rt, &Outstanding::default()).await;
    assert_eq!(r.status, Status::Down);
    assert_eq!(r.failure, Some(FailureKind::ConnectionRefused), "{r:#?}");
    assert_eq!(r.failed_phase, Some(Phase::Retrieve));
    let facts = r.roundtrip.unwrap();
    assert_eq!(facts.failed_leg, Some(Phase::Retrieve));
    assert_eq!(facts.leg_phase, Some(Phase::Connect));
    assert!(
        r.message.starts_with("retrieve (127.0.0.1:"),
        "{}",
        r.message
    );
    // Sent, so still awaited by the next run.
    assert_eq!(state.sent.len(), 1);
    assert_eq!(state.next_seq, 1);
}

#[tokio::test]
async fn a_message_found_by_a_later_run_completes_there() {
    // The first run's wait is too short for anything but the submission;
    // the second run finds the first run's message (and its own).
    let mut rt = monitor("rt-slow");
    rt.wait = Duration::ZERO;
    let (r1, state) = roundtrip::probe(&rt, &Outstanding::default()).await;
    assert_ne!(r1.status, Status::Down, "{r1:#?}");
    let f1 = r1.roundtrip.unwrap();
    assert_eq!(f1.polls, 1);
    // Exim delivers at once, but one poll straight after submission may
    // or may not see it; either way the state is consistent.
    if f1.delivery_ms.is_none() {
        assert_eq!(state.sent.len(), 1);
        rt.wait = Duration::from_secs(8);
        let (r2, state2) = roundtrip::probe(&rt, &state).await;
        assert_eq!(r2.status, Status::Up, "{r2:#?}");
        assert!(state2.sent.is_empty(), "{state2:?}");
        assert_eq!(r2.roundtrip.unwrap().deleted, 2);
    }
}

// ------------------------------------------------- config, state, alerts

use common::mem::{MemAlerts, MemMetrics, MemState};
use pop3_probe::alert::AlertKind;
use pop3_probe::config::Config;
use pop3_probe::pipeline::{self, RunSummary, Shard};
use serde_json::json;

/// The config shape, pointed at the test servers.
fn config_json(name: &str, to: &str, extra: serde_json::Value) -> serde_json::Value {
    let d = common::dovecot::dovecot();
    let s = common::smtp::exim();
    let mut m = json!({
        "name": name, "kind": "roundtrip",
        "submit": {"host": "127.0.0.1", "port": s.port("SMTP_SUBMIT_PORT"), "tls": "starttls",
                   "credentials": "sender", "ca_pem": s.pem("CA_PEM"),
                   "ehlo_name": format!("{name}.roundtrip.test")},
        "retrieve": {"host": "127.0.0.1", "port": d.port("POP3S_PORT"), "tls": "implicit",
                     "credentials": "roundtrip-box", "ca_pem": d.pem("CA_PEM")},
        "from": "monitor@localhost", "to": to,
        "signing_key": "roundtrip-key",
        "max_delivery_ms": 300000, "warning_ms": 30000, "critical_ms": 120000,
        "wait_ms": 8000, "poll_interval_ms": 200
    });
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    json!({
        "run": {"retries": 0, "deadline_ms": 30000},
        "credentials": {
            "sender": {"username": s.get("SMTP_USER"), "password": s.get("SMTP_PASSWORD")},
            "roundtrip-box": {"username": d.get("ROUNDTRIP_USER"), "password": d.get("PASSWORD")},
            "roundtrip-key": {"password": KEY}
        },
        "monitors": [m]
    })
}

async fn load(doc: &serde_json::Value) -> Config {
    let c = pop3_probe::config::load(&doc.to_string(), &common::NoSecrets)
        .await
        .unwrap();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    c
}

struct Sinks {
    metrics: MemMetrics,
    alerts: MemAlerts,
    state: MemState,
}

impl Sinks {
    fn new() -> Sinks {
        Sinks {
            metrics: MemMetrics::default(),
            alerts: MemAlerts::default(),
            state: MemState::default(),
        }
    }

    async fn run(&self, c: &Config) -> RunSummary {
        let deadline = tokio::time::Instant::now() + c.run.deadline;
        pipeline::execute(
            c,
            "Test",
            Shard::default(),
            deadline,
            &self.metrics,
            &self.alerts,
            &self.state,
        )
        .await
    }
}

#[tokio::test]
async fn from_the_config_the_state_keeps_counting_and_delivery_time_is_a_metric() {
    let c = load(&config_json(
        "rt-pipeline",
        "roundtrip@localhost",
        json!({}),
    ))
    .await;
    let sinks = Sinks::new();
    let first = sinks.run(&c).await;
    assert_eq!(first.up, 1, "{:?}", first.failures);
    let row = sinks
        .state
        .rows
        .lock()
        .unwrap()
        .get("rt-pipeline")
        .cloned()
        .unwrap();
    assert_eq!(row.roundtrip.as_ref().unwrap().next_seq, 1, "{row:?}");
    let second = sinks.run(&c).await;
    assert_eq!(second.up, 1, "{:?}", second.failures);
    let row = sinks
        .state
        .rows
        .lock()
        .unwrap()
        .get("rt-pipeline")
        .cloned()
        .unwrap();
    assert_eq!(row.roundtrip.unwrap().next_seq, 2);
    let delivery: Vec<_> = sinks
        .metrics
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.name == "DeliveryTime")
        .cloned()
        .collect();
    assert_eq!(delivery.len(), 2, "one DeliveryTime per run");
    assert_eq!(delivery[0].monitor.as_deref(), Some("rt-pipeline"));
    assert!(sinks.alerts.got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_lossy_route_gives_one_message_lost_alert() {
    let blackhole = common::smtp::exim().get("BLACKHOLE_RCPT").to_string();
    let c = load(&config_json(
        "rt-pipeline-lost",
        &blackhole,
        json!({"max_delivery_ms": 1500, "warning_ms": 500, "critical_ms": 1000,
               "wait_ms": 2500, "poll_interval_ms": 500}),
    ))
    .await;
    let sinks = Sinks::new();
    for _ in 0..2 {
        let s = sinks.run(&c).await;
        assert_eq!(s.down, 1);
        assert_eq!(
            s.failures[0].failure,
            Some(FailureKind::MessageLost),
            "{:?}",
            s.failures
        );
    }
    let alerts = sinks.alerts.got.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].kind, AlertKind::Down);
    assert!(
        alerts[0].subject.contains("message_lost"),
        "{}",
        alerts[0].subject
    );
}

#[tokio::test]
async fn the_alert_names_the_leg_and_a_dependency_holds_it_back() {
    let closed = common::dovecot::dovecot().port("CLOSED_PORT");
    // Alone: the submission server is down, and the alert says so.
    let mut doc = config_json("rt-pipeline-leg", "roundtrip@localhost", json!({}));
    doc["monitors"][0]["submit"]["port"] = json!(closed);
    let c = load(&doc).await;
    let sinks = Sinks::new();
    sinks.run(&c).await;
    let alerts = sinks.alerts.got.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(
        alerts[0].subject.contains("connection_refused in submit"),
        "{}",
        alerts[0].subject
    );

    // With the host's smtp check as a dependency: one alert, the smtp
    // check's; the round trip is blocked, not alerting.
    let mut doc = config_json(
        "rt-pipeline-dep",
        "roundtrip@localhost",
        json!({"depends_on": ["rt-pipeline-dep-smtp"]}),
    );
    doc["monitors"][0]["submit"]["port"] = json!(closed);
    doc["monitors"].as_array_mut().unwrap().push(json!({
        "name": "rt-pipeline-dep-smtp", "kind": "smtp", "host": "127.0.0.1", "port": closed,
        "failures_before_alert": 1
    }));
    let c = load(&doc).await;
    let sinks = Sinks::new();
    let s = sinks.run(&c).await;
    let rt = s
        .results
        .iter()
        .find(|r| r.monitor == "rt-pipeline-dep")
        .unwrap();
    assert_eq!(
        rt.failure,
        Some(FailureKind::BlockedByDependency),
        "{rt:#?}"
    );
    let alerts = sinks.alerts.got.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].monitor, "rt-pipeline-dep-smtp");
}

#[tokio::test]
async fn config_errors_name_the_path() {
    let doc = config_json(
        "rt-bad",
        "roundtrip@localhost",
        json!({"signing_key": "nope"}),
    );
    let c = Config::parse(&doc.to_string()).unwrap();
    assert_eq!(c.problems.len(), 1);
    assert_eq!(c.problems[0].error.path, "monitors[0].signing_key");
    let mut doc = config_json("rt-bad", "roundtrip@localhost", json!({}));
    doc["monitors"][0]["submit"]["port"] = json!(0);
    let c = Config::parse(&doc.to_string()).unwrap();
    assert_eq!(
        c.problems[0].error.path, "monitors[0].submit.port",
        "{:?}",
        c.problems
    );
    let mut doc = config_json("rt-bad", "roundtrip@localhost", json!({}));
    doc["credentials"]["roundtrip-key"]["password"] = json!("short");
    let c = pop3_probe::config::load(&doc.to_string(), &common::NoSecrets)
        .await
        .unwrap();
    assert_eq!(
        c.problems[0].error.path, "credentials.roundtrip-key.password",
        "{:?}",
        c.problems
    );
    assert!(!format!("{:?}", c.problems).contains("short"));
}

#[tokio::test]
async fn check_runs_one_round_trip_from_a_config_with_a_bounded_wait() {
    let doc = config_json("rt-cli", "roundtrip@localhost", json!({}));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("monitors.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .args(["check", "roundtrip://rt-cli", "--config"])
        .arg(&file)
        .args(["--wait", "8s", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["kind"], "roundtrip");
    assert_eq!(r["status"], "up");
    assert!(r["roundtrip"]["delivery_ms"].is_number(), "{r}");
    assert!(!stdout.contains(KEY));
    // Without --config it is an unknown (3), naming the flag.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .args(["check", "roundtrip://rt-cli"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

// ------------------------------------------------- the Lambda, against moto

/// The Lambda handler with the real AWS adapters against moto: the config
/// and the signing key in Secrets Manager, the outstanding messages in the
/// DynamoDB state item, the alert through SNS.
#[cfg(feature = "aws")]
#[tokio::test]
async fn the_lambda_keeps_round_trip_state_in_dynamodb() {
    use common::moto;
    use pop3_probe::aws::{AwsSecrets, CloudWatchMetrics, DynamoState, SnsAlerts};
    use pop3_probe::lambda::{self, ConfigCache, Settings};

    let sdk = moto::sdk_config().await;
    let table = moto::unique("rt-state");
    moto::create_table(&sdk, &table).await;
    let (topic, queue) = moto::topic_with_queue(&sdk, &moto::unique("rt-alerts")).await;
    let key_secret = moto::unique("rt-key");
    moto::create_secret(&sdk, &key_secret, KEY).await;
    let mut doc = config_json("rt-lambda", "roundtrip@localhost", json!({}));
    doc["credentials"]["roundtrip-key"] = json!({"secret_id": key_secret});
    let down = doc["monitors"][0].clone();
    let mut down = down;
    down["name"] = json!("rt-lambda-submit-down");
    down["submit"]["port"] = json!(common::dovecot::dovecot().port("CLOSED_PORT"));
    doc["monitors"].as_array_mut().unwrap().push(down);
    let config_secret = moto::unique("rt-config");
    moto::create_secret(&sdk, &config_secret, &doc.to_string()).await;
    let settings = Settings {
        config_secret,
        namespace: Some(moto::unique("Test/rt")),
        topic_arn: topic.clone(),
        state_table: table.clone(),
        schedule: None,
    };
    let cache = ConfigCache::default();
    let invoke = || async {
        lambda::handle(
            json!({"shard": 0, "shards": 1}),
            Duration::from_secs(60),
            &settings,
            &cache,
            &AwsSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk), Duration::ZERO),
            &CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk)),
            &SnsAlerts::new(aws_sdk_sns::Client::new(&sdk), topic.clone()),
            &DynamoState::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone()),
        )
        .await
        .expect("the run")
    };
    let state_of =
        |rows: &HashMap<String, HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
         m: &str| {
            let st: pop3_probe::alert::MonitorState =
                serde_json::from_str(&moto::attr(&rows[m], "state")).unwrap();
            st
        };

    let first = invoke().await;
    assert_eq!((first.up, first.down), (1, 1), "{:?}", first.failures);
    let rows = moto::scan_table(&sdk, &table).await;
    let st = state_of(&rows, "rt-lambda");
    assert_eq!(st.roundtrip.as_ref().unwrap().next_seq, 1, "{st:?}");
    assert!(st.roundtrip.unwrap().sent.is_empty());
    let n = moto::drain(&sdk, &queue).await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].attr("monitor"), "rt-lambda-submit-down");
    assert_eq!(n[0].attr("cause"), "connection_refused");
    assert!(n[0].message.contains("in submit"), "{}", n[0].message);

    let second = invoke().await;
    assert_eq!(second.up, 1, "{:?}", second.failures);
    let rows = moto::scan_table(&sdk, &table).await;
    assert_eq!(state_of(&rows, "rt-lambda").roundtrip.unwrap().next_seq, 2);
    assert!(
        moto::drain(&sdk, &queue).await.is_empty(),
        "still down: no second alert"
    );
}
