//! `pop3-probe discover` against the test Dovecot (every listener found,
//! the right TLS mode proposed, the config loads and probes green, and no
//! connection ever logged in) and against scripted servers for what
//! Dovecot won't do (greet slowly, speak another protocol, stay silent).

mod common;

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::Value;

use common::dovecot::{dovecot, Dovecot};
use common::fake::{self, line, Reply};
use pop3_probe::config::Config;
use pop3_probe::discover::{self, Found, Host, Options, StlsResult};
use pop3_probe::net::{TlsClient, TlsFailure};
use pop3_probe::probe::{AuthMethod, TlsMode};

const LISTENERS: [&str; 6] = [
    "POP3_PLAIN_STLS_PORT",
    "POP3S_PORT",
    "POP3S_EXPIRED_PORT",
    "POP3_NOTLS_PORT",
    "POP3S_NOAPOP_PORT",
    "CLOSED_PORT",
];

fn bin(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pop3-probe"));
    c.args(args);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `discover 127.0.0.1` on exactly the test listeners.
fn discover_dovecot(d: &Dovecot, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec![
        "discover".into(),
        "127.0.0.1".into(),
        "--only-ports".into(),
        "--ca-file".into(),
        d.get("CA_PEM").into(),
        "--user".into(),
        d.get("USER").into(),
    ];
    for key in LISTENERS {
        args.push("-p".into());
        args.push(d.get(key).into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bin(&args).output().unwrap()
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Dovecot's login session id is base64 of 6 bytes of time (µs since the
/// epoch, lowest 48 bits, little-endian), 2 bytes of the client's port,
/// then the client's address: enough to find one connection in a log that
/// other tests write to at the same time.
fn session_port_and_time(id: &str) -> Option<(u16, u64)> {
    let b = base64::engine::general_purpose::STANDARD.decode(id).ok()?;
    if b.len() < 8 {
        return None;
    }
    let mut t = [0u8; 8];
    t[..6].copy_from_slice(&b[..6]);
    Some((u16::from_le_bytes([b[6], b[7]]), u64::from_le_bytes(t)))
}

const WRAP: u64 = 1 << 48;

/// `t` in [lo, hi], all modulo 2^48 (the session id keeps 48 bits).
fn within(t: u64, lo: u64, hi: u64) -> bool {
    (t.wrapping_sub(lo) % WRAP) <= (hi.wrapping_sub(lo) % WRAP)
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    let end = rest.find([',', '>', ' ']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The Dovecot log lines of the connections discovery made (found by
/// listener port, client port and time), waiting until each has at least
/// one: Dovecot logs a disconnect as soon as it notices the close.
fn log_lines_of(
    d: &Dovecot,
    connections: &[(u16, u16)],
    lo: u64,
    hi: u64,
) -> HashMap<(u16, u16), Vec<String>> {
    let mut found = HashMap::new();
    for _ in 0..100 {
        let log = std::fs::read_to_string(d.get("DOVECOT_LOG")).unwrap();
        found.clear();
        for l in log.lines() {
            let (Some(lport), Some(session)) = (field(l, "lport="), field(l, "session=<")) else {
                continue;
            };
            let Ok(lport) = lport.parse::<u16>() else {
                continue;
            };
            let Some((rport, t)) = session_port_and_time(session) else {
                continue;
            };
            if connections.contains(&(lport, rport)) && within(t & (WRAP - 1), lo, hi) {
                found
                    .entry((lport, rport))
                    .or_insert_with(Vec::new)
                    .push(l.to_string());
            }
        }
        if connections.iter().all(|c| found.contains_key(c)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    found
}

#[test]
fn discovery_finds_every_dovecot_listener_and_its_config_probes_green() {
    let d = dovecot();
    let port = |k: &str| d.port(k);
    let lo = now_micros().saturating_sub(2_000_000) & (WRAP - 1);
    let out = discover_dovecot(d, &["--format", "json"]);
    let hi = (now_micros() + 2_000_000) & (WRAP - 1);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let endpoints: HashMap<u16, &Value> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["port"].as_u64().unwrap() as u16, e))
        .collect();
    assert_eq!(endpoints.len(), LISTENERS.len(), "{stdout}");
    let ep = |k: &str| endpoints[&port(k)];
    let sasl = |e: &Value, key: &str| -> Vec<String> {
        serde_json::from_value(e[key]["sasl"].clone()).unwrap()
    };

    let stls = ep("POP3_PLAIN_STLS_PORT");
    assert_eq!(stls["found"], "pop3", "{stls}");
    assert_eq!(stls["apop"], true);
    assert_eq!(stls["stls"]["advertised"], true);
    assert_eq!(stls["stls"]["result"], "ok");
    assert_eq!(stls["tls"]["verified"], "passed", "{stls}");
    assert_eq!(stls["capabilities"]["stls"], true);
    // After STLS, STLS is no longer offered: the second CAPA was over TLS.
    assert_eq!(stls["capabilities_after_stls"]["stls"], false);
    assert_eq!(sasl(stls, "capabilities_after_stls"), ["PLAIN"]);

    for key in ["POP3S_PORT", "POP3S_NOAPOP_PORT"] {
        let e = ep(key);
        assert_eq!(e["found"], "pop3s", "{key}: {e}");
        assert_eq!(e["tls"]["verified"], "passed", "{key}: {e}");
        assert_eq!(e["tls"]["server_name"], "localhost", "{key}: {e}");
        assert!(e["tls"]["certificate"]["days_remaining"].as_i64().unwrap() > 0);
        assert_eq!(sasl(e, "capabilities"), ["PLAIN"], "{key}");
        assert!(e.get("stls").is_none(), "{key}: no STLS on implicit TLS");
    }
    assert_eq!(ep("POP3S_PORT")["apop"], true);
    assert_eq!(ep("POP3S_NOAPOP_PORT")["apop"], false);

    let expired = ep("POP3S_EXPIRED_PORT");
    assert_eq!(expired["found"], "pop3s", "{expired}");
    // Issue 12.6: three states; a failed check says how it failed.
    assert_eq!(
        expired["tls"]["verified"],
        serde_json::json!({"failed": "certificate_expired"})
    );
    assert_eq!(expired["tls"]["failure"], "certificate_expired");
    assert!(
        expired["tls"]["certificate"]["days_remaining"]
            .as_i64()
            .unwrap()
            < 0
    );
    assert_eq!(expired["apop"], true);

    let notls = ep("POP3_NOTLS_PORT");
    assert_eq!(notls["found"], "pop3", "{notls}");
    assert_eq!(notls["apop"], false);
    assert_eq!(notls["stls"]["advertised"], false);
    assert_eq!(notls["stls"]["result"], "refused");
    assert!(notls.get("tls").is_none());
    assert_eq!(sasl(notls, "capabilities"), ["PLAIN"]);

    let closed = ep("CLOSED_PORT");
    assert_eq!(closed["found"], "closed", "{closed}");
    assert_eq!(closed["connections"].as_array().unwrap().len(), 0);

    // The table (stderr) names every listener and flags the expired one.
    for key in LISTENERS {
        assert!(stderr.contains(&port(key).to_string()), "{key}\n{stderr}");
    }
    assert!(stderr.contains("EXPIRED"), "{stderr}");
    assert!(stderr.contains("certificate_expired"), "{stderr}");
    assert!(stderr.contains("nothing logged in"), "{stderr}");

    // Discovery never logged in: every connection it made shows up in
    // Dovecot's log as a disconnect with no auth attempts, none as a login.
    let mut conns = Vec::new();
    for e in endpoints.values() {
        for c in e["connections"].as_array().unwrap() {
            let local: std::net::SocketAddr = c["local"].as_str().unwrap().parse().unwrap();
            conns.push((e["port"].as_u64().unwrap() as u16, local.port()));
        }
    }
    // One per plaintext listener; two per implicit one (plaintext first,
    // then TLS once no greeting came).
    assert_eq!(conns.len(), 2 + 2 * 3, "{conns:?}");
    let lines = log_lines_of(d, &conns, lo, hi);
    for c in &conns {
        let Some(ls) = lines.get(c) else {
            panic!("no Dovecot log line for discovery connection {c:?}");
        };
        for l in ls {
            assert!(!l.contains("Login:"), "discovery logged in: {l}");
            assert!(
                l.contains("Disconnected") && l.contains("no auth attempts"),
                "{l}"
            );
        }
    }

    // The proposed config: one monitor per working connection type.
    let config_text = serde_json::to_string(&report["config"]).unwrap();
    let config = Config::parse(&config_text).unwrap();
    assert!(config.problems.is_empty(), "{:?}", config.problems);
    let modes: HashMap<u16, (TlsMode, AuthMethod)> = config
        .monitors
        .iter()
        .map(|m| (m.target.port, (m.target.tls, m.target.auth)))
        .collect();
    assert_eq!(
        modes,
        HashMap::from([
            (
                port("POP3_PLAIN_STLS_PORT"),
                (TlsMode::Starttls, AuthMethod::Auto)
            ),
            (port("POP3S_PORT"), (TlsMode::Implicit, AuthMethod::Auto)),
            (
                port("POP3S_EXPIRED_PORT"),
                (TlsMode::Implicit, AuthMethod::Auto)
            ),
            (
                port("POP3S_NOAPOP_PORT"),
                (TlsMode::Implicit, AuthMethod::Auto)
            ),
            // No TLS and no APOP: a connectivity check, never a cleartext password.
            (port("POP3_NOTLS_PORT"), (TlsMode::None, AuthMethod::None)),
        ])
    );
    for m in &config.monitors {
        assert!(!m.target.allow_plaintext_password, "{}", m.target.name);
        if m.target.tls != TlsMode::None {
            assert_eq!(m.target.ca_pem.as_deref(), Some(d.pem("CA_PEM").as_str()));
        }
    }
    let raw: Value = serde_json::from_str(&config_text).unwrap();
    let notes_of = |p: u16| -> String {
        raw["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["port"] == p)
            .and_then(|m| m["notes"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(notes_of(port("POP3S_EXPIRED_PORT")).contains("certificate_expired"));
    assert!(notes_of(port("POP3_NOTLS_PORT")).contains("cleartext"));
}

#[test]
fn the_default_output_is_a_config_that_runs() {
    let d = dovecot();
    let dir = tempfile::tempdir().unwrap();
    // What a user types: `pop3-probe discover ... > monitors.json`.
    let out = discover_dovecot(d, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let config_path = dir.path().join("monitors.json");
    std::fs::write(&config_path, &out.stdout).unwrap();
    let config = Config::parse(&text(&out.stdout)).unwrap();
    assert!(config.problems.is_empty(), "{:?}", config.problems);
    assert_eq!(config.monitors.len(), 5);

    let run = bin(&[
        "run",
        "--config",
        config_path.to_str().unwrap(),
        "--once",
        "--json",
        "--state",
        dir.path().join("state.json").to_str().unwrap(),
    ])
    .env("POP3_PROBE_PASSWORD", d.get("PASSWORD"))
    .output()
    .unwrap();
    let stdout = text(&run.stdout);
    // 2: one monitor (the expired certificate) is down, as it should be.
    assert_eq!(
        run.status.code(),
        Some(2),
        "{stdout}\n{}",
        text(&run.stderr)
    );
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let results: HashMap<u16, &Value> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["port"].as_u64().unwrap() as u16, r))
        .collect();
    assert_eq!(results.len(), 5, "{stdout}");
    for key in [
        "POP3_PLAIN_STLS_PORT",
        "POP3S_PORT",
        "POP3S_NOAPOP_PORT",
        "POP3_NOTLS_PORT",
    ] {
        let r = results[&d.port(key)];
        assert_eq!(r["status"], "up", "{key}: {r}");
    }
    for key in ["POP3_PLAIN_STLS_PORT", "POP3S_PORT", "POP3S_NOAPOP_PORT"] {
        let r = results[&d.port(key)];
        assert_eq!(
            r["mailbox"]["messages"].as_u64(),
            Some(d.get("MSG_COUNT").parse().unwrap()),
            "{key}: {r}"
        );
    }
    let expired = results[&d.port("POP3S_EXPIRED_PORT")];
    assert_eq!(expired["status"], "down", "{expired}");
    assert_eq!(expired["failure"], "certificate_expired", "{expired}");
    assert!(!stdout.contains(d.get("PASSWORD")));
}

#[test]
fn a_cidr_block_finds_the_host_that_listens() {
    let d = dovecot();
    let pop3s = d.get("POP3S_PORT");
    // 127.0.0.0/30: hosts .1 (Dovecot) and .2 (nothing on that port).
    let out = bin(&[
        "discover",
        "127.0.0.0/30",
        "--only-ports",
        "-p",
        pop3s,
        "--ca-file",
        d.get("CA_PEM"),
        "--format",
        "json",
        "--quiet",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "--quiet: {}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(String, String)> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["host"].as_str().unwrap().to_string(),
                e["found"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("127.0.0.1".to_string(), "pop3s".to_string()),
            ("127.0.0.2".to_string(), "closed".to_string())
        ]
    );
    let names: Vec<&str> = report["config"]["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("127.0.0.1-pop3s-{pop3s}")]);
}

#[test]
fn nothing_found_exits_1_with_a_config_that_still_loads() {
    let d = dovecot();
    let closed = d.get("CLOSED_PORT");
    let out = bin(&["discover", "127.0.0.1", "::1", "--only-ports", "-p", closed])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let config = Config::parse(&text(&out.stdout)).unwrap();
    assert!(config.monitors.is_empty() && config.problems.is_empty());
    let table = text(&out.stderr);
    assert!(table.contains("::1") && table.contains("closed"), "{table}");
    assert!(table.contains("0 monitor(s) proposed"), "{table}");
}

#[test]
fn usage_errors_exit_3_and_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("monitors.json");
    std::fs::write(&existing, "keep me").unwrap();
    let existing = existing.to_str().unwrap();
    for (args, says) in [
        (vec!["10.0.0.0/8"], "--max-hosts 256"),
        (
            vec!["127.0.0.0/24", "--max-hosts", "100"],
            "--max-hosts 100",
        ),
        (vec!["127.0.0.1:110"], "--port"),
        (vec!["not a host"], "not a host name"),
        (vec!["127.0.0.1", "--only-ports"], "--port"),
        (vec!["127.0.0.1", "-p", "0"], "--port"),
        (
            vec!["127.0.0.1", "--ca-file", "/nonexistent.pem"],
            "--ca-file",
        ),
        (
            vec!["127.0.0.1", "--password-env", "NOT A VAR"],
            "--password-env",
        ),
        (vec!["127.0.0.1", "--timeout", "0s"], "--timeout"),
        (vec!["127.0.0.1", "-o", existing], "--force"),
        (vec![], "HOST|CIDR"),
    ] {
        let mut all = vec!["discover"];
        all.extend(&args);
        let out = bin(&all).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(std::fs::read_to_string(existing).unwrap(), "keep me");
}

#[test]
fn output_file_is_written_and_not_overwritten_without_force() {
    let d = dovecot();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("found.json");
    let p = path.to_str().unwrap();
    let args = [
        "discover",
        "127.0.0.1",
        "--only-ports",
        "-p",
        d.get("POP3_PLAIN_STLS_PORT"),
        "--ca-file",
        d.get("CA_PEM"),
        "-o",
        p,
    ];
    let out = bin(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "the config went to the file");
    let config = Config::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(config.problems.is_empty(), "{:?}", config.problems);
    assert_eq!(config.monitors[0].target.tls, TlsMode::Starttls);
    // No --user: the placeholder, which the $comment tells to replace.
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        raw["credentials"]["probe-account"]["username"],
        discover::PLACEHOLDER_USER
    );
    assert!(raw["$comment"]
        .as_str()
        .unwrap()
        .contains(discover::PLACEHOLDER_USER));

    std::fs::write(&path, "mine").unwrap();
    let out = bin(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = bin(&forced).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(Config::parse(&std::fs::read_to_string(&path).unwrap()).is_ok());
}

/// The new `TlsClient::verify`: one session, checked for several names,
/// kept even when its certificate fails.
#[tokio::test]
async fn verify_checks_an_established_session_for_any_name() {
    let d = dovecot();
    let ca = TlsClient::from_pem(&d.pem("CA_PEM")).unwrap();
    let connect = |key: &str| {
        let port = d.port(key);
        async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap()
        }
    };
    let name = |n: &str| pop3_probe::net::server_name(n).unwrap();

    let (tls, facts) = ca
        .handshake(connect("POP3S_PORT").await, name("localhost"), false)
        .await
        .unwrap();
    assert_eq!(
        facts.verified,
        pop3_probe::net::Verification::NotAsked,
        "verification was skipped on purpose"
    );
    assert!(ca.verify(&tls, &name("localhost")).is_ok());
    assert!(ca.verify(&tls, &name("127.0.0.1")).is_ok());
    let e = ca.verify(&tls, &name("mail.example.org")).unwrap_err();
    assert_eq!(e.failure, TlsFailure::NameMismatch);
    let e = TlsClient::webpki()
        .verify(&tls, &name("localhost"))
        .unwrap_err();
    assert_eq!(e.failure, TlsFailure::Invalid, "{}", e.detail);

    // An expired certificate fails the check, and the session still works.
    let (tls, _) = ca
        .handshake(
            connect("POP3S_EXPIRED_PORT").await,
            name("localhost"),
            false,
        )
        .await
        .unwrap();
    let e = ca.verify(&tls, &name("localhost")).unwrap_err();
    assert_eq!(e.failure, TlsFailure::Expired);
    let client = pop3_probe::pop3::Client::connect(tls, pop3_probe::wire::Transcript::off())
        .await
        .unwrap();
    assert!(client.greeting().line.is_ok());
    client.quit().await.unwrap();

    // And `handshake` with verification still fails, with the facts.
    let e = ca
        .handshake(connect("POP3S_EXPIRED_PORT").await, name("localhost"), true)
        .await
        .unwrap_err();
    assert_eq!(e.failure, TlsFailure::Expired);
    assert!(e.facts.unwrap().certificate.is_some());
}

fn options(port: u16, greeting_wait: Duration, timeout: Duration) -> Options {
    Options {
        ports: vec![port],
        timeout,
        greeting_wait,
        concurrency: 4,
        tls: TlsClient::webpki(),
        tls_server_name: None,
        transcript: true,
    }
}

fn localhost() -> Vec<Host> {
    discover::expand_targets(&["127.0.0.1".to_string()], 1).unwrap()
}

/// Every command a scripted server received, minus the TLS ClientHello
/// that a plaintext server reads as a line of junk.
fn commands(f: &fake::Fake) -> Vec<String> {
    f.commands()
        .into_iter()
        .filter(|c| c.chars().all(|ch| ch.is_ascii_graphic() || ch == ' '))
        .collect()
}

fn assert_no_login(cmds: &[String]) {
    for c in cmds {
        let verb = c.split(' ').next().unwrap_or("").to_ascii_uppercase();
        assert!(
            ["CAPA", "STLS", "QUIT"].contains(&verb.as_str()),
            "discovery sent {c:?}"
        );
    }
}

#[tokio::test]
async fn a_slow_greeting_is_found_after_the_tls_attempt() {
    let server = fake::spawn(
        Reply::Delayed(
            Duration::from_millis(1500),
            "+OK slow server <1.2@fake>".into(),
        ),
        fake::polite(&["USER", "SASL PLAIN", "LOGIN-DELAY 900"]),
    )
    .await;
    let opts = options(
        server.port(),
        Duration::from_millis(100),
        Duration::from_secs(10),
    );
    let eps = discover::discover(&localhost(), &opts).await;
    let ep = &eps[0];
    assert_eq!(ep.found, Found::Pop3, "{ep:#?}");
    assert!(ep.apop);
    assert_eq!(ep.login_delay(), Some(900));
    assert_eq!(ep.stls.as_ref().unwrap().result, StlsResult::Refused);
    assert!(
        ep.problems
            .iter()
            .any(|p| p.contains("answered in plaintext")),
        "{:?}",
        ep.problems
    );
    let settings = discover::ProposalSettings {
        username: Some("probe".into()),
        password_env: discover::DEFAULT_PASSWORD_ENV.into(),
        ca_file: None,
        tls_server_name: None,
        command: "test".into(),
    };
    let m = discover::propose(ep, &settings).unwrap();
    assert_eq!((m.tls, m.auth), (TlsMode::None, AuthMethod::Apop));
    assert!(m.notes.unwrap().contains("LOGIN-DELAY 900"));
    let cmds = server.commands_until("QUIT").await;
    assert!(!cmds.is_empty());
    assert_no_login(&commands(&server));
}

#[tokio::test]
async fn other_protocols_silence_and_refusals_are_not_monitors() {
    let smtp = fake::spawn(line("220 mx.example.org ESMTP"), |_| Reply::Close).await;
    let silent = fake::spawn(Reply::Hang, |_| Reply::Hang).await;
    let busy = fake::spawn(line("-ERR [SYS/TEMP] too busy"), |_| Reply::Close).await;
    let settings = discover::ProposalSettings {
        username: None,
        password_env: discover::DEFAULT_PASSWORD_ENV.into(),
        ca_file: None,
        tls_server_name: None,
        command: "test".into(),
    };

    let ep = &discover::discover(
        &localhost(),
        &options(smtp.port(), Duration::from_secs(2), Duration::from_secs(5)),
    )
    .await[0];
    assert_eq!(ep.found, Found::NotPop3, "{ep:#?}");
    assert!(
        ep.problems.iter().any(|p| p.contains("220 mx.example.org")),
        "{:?}",
        ep.problems
    );
    assert!(discover::propose(ep, &settings).is_err());

    let ep = &discover::discover(
        &localhost(),
        &options(
            silent.port(),
            Duration::from_millis(100),
            Duration::from_millis(500),
        ),
    )
    .await[0];
    assert_eq!(ep.found, Found::NotPop3, "{ep:#?}");
    // Plaintext first, then implicit TLS: both were tried.
    assert_eq!(ep.connections.len(), 2, "{ep:#?}");
    assert!(discover::propose(ep, &settings).is_err());

    let ep = &discover::discover(
        &localhost(),
        &options(busy.port(), Duration::from_secs(2), Duration::from_secs(5)),
    )
    .await[0];
    assert_eq!(ep.found, Found::Pop3Error, "{ep:#?}");
    assert!(ep.greeting.as_deref().unwrap().contains("too busy"));
    let why = discover::propose(ep, &settings).unwrap_err();
    assert!(why.contains("too busy"), "{why}");

    for f in [&smtp, &silent, &busy] {
        assert_no_login(&commands(f));
    }
}

/// Issue 11.6: STLS advertised and refused proposes `starttls` with a
/// note (not `tls: none` with APOP); a CAPA that never ends proposes no
/// monitor, and says it was `response_too_large` in `capa`.
#[tokio::test]
async fn refused_stls_and_endless_capa_are_not_proposed_as_plaintext() {
    let settings = discover::ProposalSettings {
        username: Some("probe".into()),
        password_env: discover::DEFAULT_PASSWORD_ENV.into(),
        ca_file: None,
        tls_server_name: None,
        command: "test".into(),
    };
    let refusing = fake::spawn(line("+OK hi <1.2@fake>"), |cmd: &str| {
        if cmd.eq_ignore_ascii_case("STLS") {
            line("-ERR TLS not available")
        } else {
            fake::polite(&["STLS", "USER"])(cmd)
        }
    })
    .await;
    let ep = &discover::discover(
        &localhost(),
        &options(
            refusing.port(),
            Duration::from_secs(2),
            Duration::from_secs(5),
        ),
    )
    .await[0];
    assert_eq!(ep.found, Found::Pop3, "{ep:#?}");
    let m = discover::propose(ep, &settings).unwrap();
    assert_eq!(m.tls, TlsMode::Starttls, "{m:?}");
    assert!(m.notes.unwrap().contains("strips STARTTLS"));

    let endless = fake::spawn(line("+OK hi <1.2@fake>"), |cmd: &str| {
        if cmd.eq_ignore_ascii_case("CAPA") {
            let mut body = String::from("+OK\r\n");
            for i in 0..5000 {
                body.push_str(&format!("X-CAP-{i}\r\n"));
            }
            Reply::Raw(body.into_bytes())
        } else {
            fake::polite(&[])(cmd)
        }
    })
    .await;
    let ep = &discover::discover(
        &localhost(),
        &options(
            endless.port(),
            Duration::from_secs(2),
            Duration::from_secs(5),
        ),
    )
    .await[0];
    let why = discover::propose(ep, &settings).unwrap_err();
    assert!(why.contains("CAPA never ended"), "{why}");
    assert!(why.contains("response_too_large in capa"), "{why}");
    assert_no_login(&commands(&refusing));
    assert_no_login(&commands(&endless));
}
