//! Capability drift against a real Dovecot: the server is restarted without
//! TLS, STLS disappears, and `pop3-probe run` raises exactly one
//! `capability_changed` alert, then stays quiet. A Dovecot of its own, so
//! the restart disturbs no other test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Its own Dovecot (the test restarts it without TLS), so it never
/// disturbs the shared one; POP3_PROBE_DRIFT_DOVECOT_DIR moves it, as the
/// other harness directories move, so two checkouts can test at once.
fn drift_dir() -> PathBuf {
    std::env::var_os("POP3_PROBE_DRIFT_DOVECOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/pop3-probe-drift-dovecot"))
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/dovecot")
        .join(name)
}

fn sh(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Wait until `port` accepts connections again.
fn wait_listening(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Dovecot did not come back on port {port}");
}

/// Stop the main instance, switch TLS off in its config (STLS then
/// disappears from CAPA; the implicit-TLS listener goes too), start it.
fn restart_without_tls(dir: &Path, stls_port: u16) {
    let conf = dir.join("main/dovecot.conf");
    sh(Command::new("doveadm").arg("-c").arg(&conf).arg("stop"));
    // doveadm stop returns before the listeners are gone.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", stls_port)).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.contains("\nssl = yes\n"),
        "unexpected dovecot.conf:\n{text}"
    );
    let mut out = String::new();
    let mut in_pop3s = false;
    for line in text.lines() {
        let t = line.trim();
        if t == "ssl = yes" && !in_pop3s && line == t {
            out.push_str("ssl = no\n");
            continue;
        }
        if t.starts_with("inet_listener pop3s") {
            in_pop3s = true;
        } else if in_pop3s && t == "}" {
            in_pop3s = false;
        } else if in_pop3s && t.starts_with("port =") {
            out.push_str("    port = 0\n");
            continue;
        } else if in_pop3s && t == "ssl = yes" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    std::fs::write(&conf, out).unwrap();
    // The master daemonizes but would keep captured pipes open: no capture.
    let status = Command::new("dovecot")
        .arg("-c")
        .arg(&conf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "dovecot -c {} failed", conf.display());
    wait_listening(stls_port);
}

fn probe_run(config: &Path, state: &Path) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .args(["run", "--once", "--config"])
        .arg(config)
        .arg("--state")
        .arg(state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "every monitor stays up\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

fn alerts(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("=== ALERT"))
        .collect()
}

#[test]
fn stls_disappearing_is_one_capability_alert() {
    let dir = drift_dir();
    // A clean instance each time: the previous run left TLS switched off.
    let _ = Command::new("bash")
        .arg(script("stop.sh"))
        .arg(&dir)
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let env = common::ensure_harness("dovecot", &dir, "is dovecot-pop3d installed?");
    let stls_port: u16 = env["POP3_PLAIN_STLS_PORT"].parse().unwrap();

    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("monitors.json");
    let state = work.path().join("state.json");
    // starttls-if-available with APOP: the monitor a silent downgrade
    // would not fail, which is why drift must be watched.
    std::fs::write(
        &config,
        serde_json::json!({
            "credentials": {"acct": {"username": env["USER"], "password": env["PASSWORD"]}},
            "monitors": [{
                "name": "mail-110", "host": "127.0.0.1", "port": stls_port,
                "tls": "starttls-if-available", "auth": "apop", "credentials": "acct",
                "ca_file": env["CA_PEM"], "tls_server_name": env["SERVER_NAME"],
                "warning_ms": 5000, "critical_ms": 8000
            }]
        })
        .to_string(),
    )
    .unwrap();

    let (_, first) = probe_run(&config, &state);
    assert!(
        alerts(&first).is_empty(),
        "the first run is the baseline:\n{first}"
    );
    let (_, second) = probe_run(&config, &state);
    assert!(alerts(&second).is_empty(), "nothing changed:\n{second}");

    restart_without_tls(&dir, stls_port);
    let (stdout, third) = probe_run(&config, &state);
    let got = alerts(&third);
    assert_eq!(got.len(), 1, "{third}");
    assert!(
        got[0].starts_with("=== ALERT capability_changed [warning] [CAPABILITIES] mail-110: STLS is no longer offered"),
        "{}",
        got[0]
    );
    assert!(third.contains("  - STLS is no longer offered"), "{third}");
    // The probe itself still logs in (APOP over plaintext) and says it fell back.
    assert!(stdout.contains("mail-110"), "{stdout}");

    let (_, fourth) = probe_run(&config, &state);
    assert!(
        alerts(&fourth).is_empty(),
        "one alert per change:\n{fourth}"
    );

    // The baseline is in the state file for the next run (or the Lambda's table).
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["monitors"]["mail-110"]["capabilities"]["stls"], false);
    assert_eq!(saved["monitors"]["mail-110"]["capabilities"]["apop"], true);

    sh(Command::new("bash").arg(script("stop.sh")).arg(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}
