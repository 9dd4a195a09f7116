//! End to end: the real `pop3-probe-lambda` binary under cargo-lambda's
//! emulator (`cargo lambda watch`), driven with `cargo lambda invoke`,
//! against moto (Secrets Manager, CloudWatch, SNS → SQS, DynamoDB) and the
//! test Dovecot. The technical account's password is rotated to a wrong one
//! and back in Secrets Manager while the function stays warm.

// The AWS adapters exist only with the `aws` feature (on by default).
#![cfg(feature = "aws")]

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::dovecot::dovecot;
use common::moto::{self, attr, Notification};
use serde_json::{json, Value};

const FUNCTION: &str = "pop3-probe-lambda";

/// `cargo lambda watch`, in its own process group, killed (group and all,
/// function included) on drop, and by a watchdog if the test process dies
/// without unwinding.
struct Watch {
    child: Child,
    watchdog: Child,
    port: u16,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Watch {
    fn start(dir: &Path, env_file: &Path) -> Watch {
        let port = moto::free_port();
        let stdout = dir.join("watch.stdout");
        let stderr = dir.join("watch.stderr");
        let mut cmd = Command::new("cargo");
        // Not what `cargo test` set for this test binary: the nested build
        // would see e.g. CARGO_MANIFEST_DIR, which ring's build script
        // tracks, and rebuild half the dependency tree (and `cargo test`
        // again after it) for nothing.
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            let set_by_cargo_test = k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_BIN_")
                || k.starts_with("CARGO_MANIFEST_")
                || [
                    "CARGO_CRATE_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&k.as_ref());
            if set_by_cargo_test {
                cmd.env_remove(&key);
            }
        }
        let child = cmd
            .args(["lambda", "watch", "--bin", FUNCTION, "--ignore-changes"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .arg("--env-file")
            .arg(env_file)
            // Plenty for one run (the function's own deadline is inside).
            .args(["--timeout", "120"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .process_group(0)
            .spawn()
            .expect("run `cargo lambda watch` (pip install cargo-lambda)");
        let pgid = child.id();
        // The watchdog: if this test process goes away without dropping
        // the guard (abort, SIGKILL), take the emulator with it.
        let watchdog = Command::new("bash")
            .args([
                "-c",
                &format!(
                    "while kill -0 {me} 2>/dev/null && kill -0 -{pgid} 2>/dev/null; do sleep 0.5; done; \
                     kill -TERM -- -{pgid} 2>/dev/null; sleep 3; kill -KILL -- -{pgid} 2>/dev/null; exit 0",
                    me = std::process::id()
                ),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the watchdog");
        Watch {
            child,
            watchdog,
            port,
            stdout,
            stderr,
        }
    }

    /// Wait until the emulator listens (it builds the function later, on
    /// the first invocation).
    fn wait_listening(&mut self, limit: Duration) {
        let until = Instant::now() + limit;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(why) = self.broken() {
                panic!("{why}\n--- cargo lambda watch ---\n{}", self.tail());
            }
            assert!(
                Instant::now() < until,
                "cargo lambda watch did not listen on 127.0.0.1:{} within {limit:?}\n{}",
                self.port,
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self) -> String {
        format!(
            "{}{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    fn tail(&self) -> String {
        let logs = self.logs();
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Why the emulator cannot answer, if it cannot.
    fn broken(&mut self) -> Option<String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(format!("cargo lambda watch exited ({status})"));
        }
        let logs = self.logs();
        [
            "error: could not compile",
            "ERROR command exited",
            "error[E",
        ]
        .iter()
        .find(|m| logs.contains(**m))
        .map(|m| format!("the function did not build or start ({m:?})"))
    }

    /// Invoke the function; the JSON it returned, or the error text.
    fn invoke(&mut self, payload: &Value, limit: Duration) -> Result<Value, String> {
        let dir = self.stdout.parent().unwrap().to_path_buf();
        let out_path = dir.join("invoke.stdout");
        let err_path = dir.join("invoke.stderr");
        let mut child = Command::new("cargo")
            .args(["lambda", "invoke", FUNCTION])
            .args(["--data-ascii", &payload.to_string()])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string()])
            .args(["--output-format", "json"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("run `cargo lambda invoke`");
        let until = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            let why = self.broken().or_else(|| {
                (Instant::now() > until).then(|| format!("no answer within {limit:?}"))
            });
            if let Some(why) = why {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "invoke failed: {why}\n--- cargo lambda watch ---\n{}",
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let mut out = String::new();
        std::fs::File::open(&out_path)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        if !status.success() {
            return Err(format!("{status}: {out}{err}"));
        }
        serde_json::from_str(out.trim()).map_err(|e| format!("not JSON ({e}): {out}\n{err}"))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let pgid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

fn alerts_sent(summary: &Value) -> Vec<String> {
    let mut v: Vec<String> = summary["alerts_sent"]
        .as_array()
        .unwrap_or_else(|| panic!("no alerts_sent in {summary}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn counts(summary: &Value) -> (u64, u64, u64) {
    (
        summary["probed"].as_u64().unwrap(),
        summary["up"].as_u64().unwrap(),
        summary["down"].as_u64().unwrap(),
    )
}

fn by_monitor(mut n: Vec<Notification>) -> Vec<Notification> {
    n.sort_by(|a, b| a.attr("monitor").cmp(b.attr("monitor")));
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_alerts_once_per_transition_and_never_leaks_the_password() {
    let d = dovecot();
    let m = moto::moto();
    let sdk = moto::sdk_config().await;
    let right = d.get("PASSWORD").to_string();
    let wrong = format!("Wr0ng-{}", moto::unique("pw"));
    let user = d.get("EMPTY_USER").to_string();
    let account_json = |pw: &str| json!({"username": user, "password": pw}).to_string();

    let account = moto::unique("e2e-account");
    let config_secret = moto::unique("e2e-config");
    let table = moto::unique("e2e-state");
    let namespace = moto::unique("E2E");
    let (topic, queue) = moto::topic_with_queue(&sdk, &moto::unique("e2e-alerts")).await;
    moto::create_table(&sdk, &table).await;
    moto::create_secret(&sdk, &account, &account_json(&right)).await;
    let monitors = ["e2e-pop3s", "e2e-stls"];
    let e = common::smtp::exim();
    let config = json!({
        "version": 1,
        "run": {"retries": 0, "deadline_ms": 20000, "secrets_ttl_seconds": 0},
        "credentials": {"probe": {"secret_id": account}},
        "defaults": {
            "credentials": "probe",
            "ca_pem": d.pem("CA_PEM"),
            "tls_server_name": d.get("SERVER_NAME"),
            "failures_before_alert": 2,
            "timeout_ms": 10000,
            "warning_ms": 5000,
            "critical_ms": 8000
        },
        "monitors": [
            {"name": monitors[0], "host": "127.0.0.1", "port": d.port("POP3S_PORT"), "tls": "implicit",
             "depends_on": ["e2e-host"]},
            {"name": monitors[1], "host": "127.0.0.1", "port": d.port("POP3_PLAIN_STLS_PORT"),
             "tls": "starttls", "depends_on": ["e2e-host"]},
            // The other kinds run in the Lambda too. The host is up, so the
            // POP3 monitors' own failures below are theirs to report.
            {"name": "e2e-host", "kind": "tcp", "host": "127.0.0.1", "port": d.port("POP3S_PORT")},
            {"name": "e2e-smtp", "kind": "smtp", "host": "127.0.0.1", "port": e.port("SMTP_PORT"),
             "tls": "starttls", "ca_pem": e.pem("CA_PEM"), "depends_on": ["e2e-host"]}
        ]
    });
    moto::create_secret(&sdk, &config_secret, &config.to_string()).await;

    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("lambda.env");
    std::fs::write(
        &env_file,
        format!(
            "POP3_PROBE_CONFIG_SECRET={config_secret}\nPOP3_PROBE_TOPIC_ARN={topic}\n\
             POP3_PROBE_STATE_TABLE={table}\nPOP3_PROBE_NAMESPACE={namespace}\n\
             POP3_PROBE_SCHEDULE_SECONDS=60\n\
             AWS_ENDPOINT_URL={}\nAWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n\
             AWS_REGION={}\nRUST_LOG=info\n",
            m.endpoint,
            moto::REGION
        ),
    )
    .unwrap();

    let mut watch = Watch::start(dir.path(), &env_file);
    watch.wait_listening(Duration::from_secs(120));
    let payload = json!({"shard": 0, "shards": 1});
    let started = Instant::now();
    // Warm-up: the emulator builds the binary on the first call (minutes on
    // a cold target dir with 2 cores), and counts that time against the
    // invocation's deadline. An out-of-range shard is refused before
    // anything is read or probed, so this call changes nothing.
    // On a cold target dir the emulator may answer before the function
    // exists (an empty error payload while it still compiles): ask again
    // until the function itself refuses the shard, within one budget.
    let budget = Duration::from_secs(1200);
    let refused = loop {
        let left = budget.saturating_sub(started.elapsed());
        assert!(
            !left.is_zero(),
            "the function never answered the warm-up within {budget:?}"
        );
        let answer = watch
            .invoke(&json!({"shard": 3, "shards": 2}), left)
            .expect_err("shard 3 of 2 must be refused");
        if answer.contains("InvalidInput") {
            break answer;
        }
        eprintln!(
            "warm-up: not the function's answer yet ({}), retrying",
            answer.lines().next().unwrap_or("")
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    eprintln!("warm-up (build included) took {:?}", started.elapsed());
    assert!(
        refused.contains("InvalidInput")
            && refused.contains("shard 3 is out of range for 2 shards"),
        "{refused}"
    );
    assert!(moto::drain(&sdk, &queue).await.is_empty());
    assert!(moto::scan_table(&sdk, &table).await.is_empty());

    let started = Instant::now();
    let first = watch
        .invoke(&payload, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("first invocation: {e}\n{}", watch.tail()));
    eprintln!("first invocation took {:?}", started.elapsed());
    assert_eq!(counts(&first), (4, 4, 0), "{first}");
    assert_eq!(first["shard"], json!({"shard": 0, "shards": 1}));
    assert!(alerts_sent(&first).is_empty(), "{first}");
    assert_eq!(first["metrics_unpublished"], 0, "{first}");
    assert!(first["metrics_published"].as_u64().unwrap() >= 8, "{first}");
    assert!(moto::drain(&sdk, &queue).await.is_empty());
    let rows = moto::scan_table(&sdk, &table).await;
    for mon in monitors {
        assert_eq!(attr(&rows[mon], "status"), "up", "{mon}");
    }
    // The SMTP check ran in the function: its state row holds what EHLO
    // offered after STARTTLS (the drift baseline).
    let smtp: serde_json::Value = serde_json::from_str(&attr(&rows["e2e-smtp"], "state")).unwrap();
    assert_eq!(smtp["status"], "up", "{smtp}");
    assert_eq!(smtp["capabilities"]["stls"], true, "{smtp}");
    assert_eq!(smtp["capabilities"]["over_tls"], true, "{smtp}");

    let mut invoke = |label: &str| {
        let t = Instant::now();
        let v = watch
            .invoke(&payload, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        eprintln!("{label} took {:?}", t.elapsed());
        v
    };

    // The account's password is changed behind the probe's back.
    moto::put_secret(&sdk, &account, &account_json(&wrong)).await;
    let second = invoke("second invocation (wrong password, 1st failure)");
    assert_eq!(
        counts(&second),
        (4, 2, 2),
        "the rotated secret was not re-read: {second}"
    );
    for f in second["failures"].as_array().unwrap() {
        assert_eq!(f["failure"], "auth_failed", "{second}");
    }
    assert!(
        alerts_sent(&second).is_empty(),
        "below failures_before_alert: {second}"
    );
    assert!(moto::drain(&sdk, &queue).await.is_empty());

    let third = invoke("third invocation (wrong password, 2nd failure)");
    assert_eq!(counts(&third), (4, 2, 2), "{third}");
    assert_eq!(
        alerts_sent(&third),
        monitors.map(|m| format!("{m}: down")),
        "{third}"
    );
    let n = by_monitor(moto::drain(&sdk, &queue).await);
    assert_eq!(n.len(), 2, "{n:?}");
    for (note, mon) in n.iter().zip(monitors) {
        assert_eq!(note.attr("monitor"), mon);
        assert_eq!(note.attr("status"), "down");
        assert_eq!(note.attr("cause"), "auth_failed");
        assert_eq!(note.attr("category"), "credentials");
        assert_eq!(note.attr("severity"), "warning");
        assert!(
            note.subject
                .starts_with(&format!("[DOWN: CREDENTIALS] {mon}")),
            "{}",
            note.subject
        );
    }
    let rows = moto::scan_table(&sdk, &table).await;
    for mon in monitors {
        assert_eq!(attr(&rows[mon], "status"), "down", "{mon}");
    }

    let fourth = invoke("fourth invocation (still failing)");
    assert_eq!(counts(&fourth), (4, 2, 2), "{fourth}");
    assert!(alerts_sent(&fourth).is_empty(), "alerted twice: {fourth}");
    assert!(moto::drain(&sdk, &queue).await.is_empty());

    // The password is put right.
    moto::put_secret(&sdk, &account, &account_json(&right)).await;
    let fifth = invoke("fifth invocation (password restored)");
    assert_eq!(counts(&fifth), (4, 4, 0), "{fifth}");
    assert_eq!(
        alerts_sent(&fifth),
        monitors.map(|m| format!("{m}: recovered")),
        "{fifth}"
    );
    let n = by_monitor(moto::drain(&sdk, &queue).await);
    assert_eq!(n.len(), 2, "{n:?}");
    for (note, mon) in n.iter().zip(monitors) {
        assert_eq!(note.attr("monitor"), mon);
        assert_eq!(note.attr("status"), "recovered");
        assert_eq!(note.attr("category"), "credentials");
        assert_eq!(note.attr("cause"), "auth_failed");
        assert_eq!(note.attr("severity"), "info");
    }
    let rows = moto::scan_table(&sdk, &table).await;
    for mon in monitors {
        assert_eq!(attr(&rows[mon], "status"), "up", "{mon}");
        // Saved on every change: new, 1st failure, down, 3rd failure, recovered.
        assert_eq!(attr(&rows[mon], "version"), "5", "{mon}");
    }

    // What the function printed: its JSON logs reached us, and no password.
    let logs = watch.logs();
    assert!(
        logs.contains("run finished"),
        "function logs not captured:\n{logs}"
    );
    assert!(logs.contains("auth_failed"), "{logs}");
    assert!(!logs.contains(&right), "the real password is in the logs");
    assert!(!logs.contains(&wrong), "the wrong password is in the logs");
    for (i, s) in [&first, &second, &third, &fourth, &fifth]
        .iter()
        .enumerate()
    {
        let text = s.to_string();
        assert!(
            !text.contains(&right) && !text.contains(&wrong),
            "summary {i} has a password"
        );
    }
    drop(watch);
}
