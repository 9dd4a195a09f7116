//! Fault soak: the Lambda's handler (`lambda::handle`, the same code the
//! binary runs) with the real AWS adapters against moto's server and a
//! Dovecot of its own, for many runs, while faults are injected on a
//! schedule: Dovecot stopped and started, the technical account's password
//! changed and restored on the server, SNS publish failing (topic gone),
//! AWS unreachable, a run killed in the middle.
//!
//! Invariants: every real transition produces exactly one alert, in the
//! run it is first visible or, when delivery was impossible then, the
//! first run after (none lost, none repeated); DynamoDB ends in the real
//! state; every completed run's heartbeat reaches CloudWatch; no panic; no
//! password in any log line or message; memory flat across cycles.
//!
//! `SOAK_CYCLES` sets the length (CI: 2; `make soak`: 30).

#![cfg(feature = "aws")]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use common::moto;
use pop3_probe::aws::{AwsSecrets, CloudWatchMetrics, DynamoState, SnsAlerts};
use pop3_probe::lambda::{self, ConfigCache, Settings};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const PASSWORD: &str = "Pr0be-Secret-42";
const WRONG: &str = "Changed-By-The-Admin-7";

/// A TCP relay to moto that can be switched off (connections are cut at
/// once): AWS unreachable, without losing moto's in-memory state.
async fn switchable_relay(upstream: u16) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let up = Arc::new(AtomicBool::new(true));
    let up2 = up.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            if !up2.load(Ordering::SeqCst) {
                continue; // dropped: the client sees the connection close
            }
            tokio::spawn(async move {
                if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                }
            });
        }
    });
    (port, up)
}

/// A server that accepts and never speaks: keeps a run busy probing.
async fn hanging_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    port
}

struct SoakDovecot {
    dir: PathBuf,
    script_dir: PathBuf,
}

impl SoakDovecot {
    fn start(&self) -> HashMap<String, String> {
        common::ensure_harness("dovecot", &self.dir, "is dovecot-pop3d installed?")
    }

    fn stop(&self) {
        let out = Command::new("bash")
            .arg(self.script_dir.join("stop.sh"))
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "stop.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Change the technical account's password on the server (Dovecot
    /// re-reads its passwd-file when it changes).
    fn set_password(&self, from: &str, to: &str) {
        let path = self.dir.join("users");
        let text = std::fs::read_to_string(&path).unwrap();
        let line_from = format!("probe:{{PLAIN}}{from}:");
        assert!(text.contains(&line_from), "passwd-file has no {line_from}");
        std::fs::write(
            &path,
            text.replace(&line_from, &format!("probe:{{PLAIN}}{to}:")),
        )
        .unwrap();
        // Dovecot's passwd-file driver looks at the file at most once per
        // second (db-passwd-file.c: last_sync_time == ioloop_time).
        std::thread::sleep(Duration::from_millis(1100));
    }
}

fn config(env: &HashMap<String, String>, ca: &str, hang_port: Option<u16>) -> String {
    let port = |k: &str| env[k].parse::<u16>().unwrap();
    let mut monitors = vec![
        serde_json::json!({"name": "soak-pop3s-apop", "host": "127.0.0.1", "port": port("POP3S_PORT"), "tls": "implicit"}),
        serde_json::json!({"name": "soak-stls-user", "host": "127.0.0.1", "port": port("POP3_PLAIN_STLS_PORT"), "tls": "starttls", "auth": "user"}),
        serde_json::json!({"name": "soak-pop3s-plain", "host": "127.0.0.1", "port": port("POP3S_NOAPOP_PORT"), "tls": "implicit"}),
        serde_json::json!({"name": "soak-connect", "host": "127.0.0.1", "port": port("POP3S_PORT"), "tls": "implicit", "auth": "none"}),
    ];
    if let Some(p) = hang_port {
        monitors.push(serde_json::json!({"name": "soak-hang", "host": "127.0.0.1", "port": p, "tls": "none", "auth": "none", "timeout_ms": 5000, "warning_ms": 3000, "critical_ms": 4000}));
    }
    serde_json::json!({
        "run": {"retries": 0, "secrets_ttl_seconds": 0, "deadline_ms": 20000},
        "defaults": {"ca_pem": ca, "tls_server_name": "localhost", "credentials": "account",
                     "failures_before_alert": 1, "timeout_ms": 4000, "warning_ms": 2000, "critical_ms": 3000},
        "credentials": {"account": {"secret_id": "soak-account"}},
        "monitors": monitors,
    })
    .to_string()
}

/// Captures every log line the handler writes.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn heartbeats(sdk: &SdkConfig, namespace: &str) -> f64 {
    let cw = aws_sdk_cloudwatch::Client::new(sdk);
    let now = std::time::SystemTime::now();
    let out = cw
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name("ProbeRuns")
        .start_time(aws_smithy_types::DateTime::from(
            now - Duration::from_secs(3600),
        ))
        .end_time(aws_smithy_types::DateTime::from(
            now + Duration::from_secs(600),
        ))
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .unwrap();
    out.datapoints().iter().filter_map(|d| d.sum()).sum()
}

type Alerts = Vec<(String, String, String)>; // (monitor, status, category)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_soak() {
    let cycles: usize = std::env::var("SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let logs = LogBuffer::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_writer(move || sink.clone())
        .init();

    let m = moto::moto();
    let (relay, aws_up) = switchable_relay(m.port).await;
    let admin = moto::sdk_config().await; // direct, for setup and checks
    let sdk = moto::sdk_config_impatient(&format!("http://127.0.0.1:{relay}")).await;
    let table = moto::unique("soak-state");
    let topic_name = moto::unique("soak-alerts");
    let namespace = moto::unique("Pop3ProbeSoak");
    let config_secret = moto::unique("soak-config");
    moto::create_table(&admin, &table).await;
    let (topic, queue) = moto::topic_with_queue(&admin, &topic_name).await;
    moto::create_secret(
        &admin,
        "soak-account",
        &format!(r#"{{"username": "probe", "password": "{PASSWORD}"}}"#),
    )
    .await;

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dovecot = SoakDovecot {
        dir: PathBuf::from(
            std::env::var("POP3_PROBE_SOAK_DOVECOT_DIR")
                .unwrap_or("/tmp/pop3-probe-soak-dovecot".into()),
        ),
        script_dir: root.join("tests/dovecot"),
    };
    // From a known state: a fresh instance, the password as issued.
    dovecot.stop();
    let mut env = dovecot.start();
    let ca = |env: &HashMap<String, String>| std::fs::read_to_string(&env["CA_PEM"]).unwrap();
    moto::create_secret(&admin, &config_secret, &config(&env, &ca(&env), None)).await;
    let hang = hanging_server().await;

    let settings = Settings {
        config_secret: config_secret.clone(),
        namespace: Some(namespace.clone()),
        topic_arn: topic.clone(),
        state_table: table.clone(),
        schedule: None,
    };
    let cache = ConfigCache::default();
    let secrets = AwsSecrets::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        Duration::from_secs(300),
    );
    let metrics = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let alerts = SnsAlerts::new(aws_sdk_sns::Client::new(&sdk), topic.clone());
    let state = DynamoState::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
    let input = serde_json::json!({"shard": 0, "shards": 1});

    let logins = ["soak-pop3s-apop", "soak-stls-user", "soak-pop3s-plain"];
    let everyone = [
        "soak-pop3s-apop",
        "soak-stls-user",
        "soak-pop3s-plain",
        "soak-connect",
    ];
    let expect = |names: &[&str], status: &str, category: &str| -> Alerts {
        let mut v: Alerts = names
            .iter()
            .map(|n| (n.to_string(), status.to_string(), category.to_string()))
            .collect();
        v.sort();
        v
    };

    let mut completed_runs = 0usize;
    let mut faults = 0usize;
    let mut transitions_checked = 0usize;
    let mut rss_after_first_cycle = 0;
    for cycle in 0..cycles {
        for step in 0..11 {
            let mut kill = false;
            let mut want: Alerts = Vec::new();
            match step {
                0 => {}
                1 => {
                    dovecot.stop();
                    faults += 1;
                    want = expect(&everyone, "down", "service");
                }
                2 => {}
                3 => {
                    env = dovecot.start();
                    moto::put_secret(&admin, &config_secret, &config(&env, &ca(&env), None)).await;
                    want = expect(&everyone, "recovered", "service");
                }
                4 => {
                    dovecot.set_password(PASSWORD, WRONG);
                    faults += 1;
                    want = expect(&logins, "down", "credentials");
                }
                5 => {
                    // Fixed on the server, but SNS cannot deliver: the
                    // recoveries wait for the next run.
                    dovecot.set_password(WRONG, PASSWORD);
                    aws_sdk_sns::Client::new(&admin)
                        .delete_topic()
                        .topic_arn(&topic)
                        .send()
                        .await
                        .unwrap();
                    faults += 1;
                }
                6 => {
                    let (again, _) = moto::topic_with_queue(&admin, &topic_name).await;
                    assert_eq!(again, topic);
                    want = expect(&logins, "recovered", "credentials");
                }
                7 => {
                    // AWS unreachable while the password breaks: the run
                    // still probes (cached config and secrets) but cannot
                    // load state, so it alerts nothing yet.
                    aws_up.store(false, Ordering::SeqCst);
                    dovecot.set_password(PASSWORD, WRONG);
                    faults += 2;
                }
                8 => {
                    aws_up.store(true, Ordering::SeqCst);
                    want = expect(&logins, "down", "credentials");
                }
                9 => {
                    // Killed mid-run: a monitor that hangs keeps it probing
                    // when the kill comes, before anything is sent.
                    dovecot.set_password(WRONG, PASSWORD);
                    moto::put_secret(&admin, &config_secret, &config(&env, &ca(&env), Some(hang)))
                        .await;
                    kill = true;
                    faults += 1;
                }
                10 => {
                    moto::put_secret(&admin, &config_secret, &config(&env, &ca(&env), None)).await;
                    want = expect(&logins, "recovered", "credentials");
                }
                _ => unreachable!(),
            }
            let run = lambda::handle(
                input.clone(),
                Duration::from_secs(30),
                &settings,
                &cache,
                &secrets,
                &metrics,
                &alerts,
                &state,
            );
            if kill {
                assert!(
                    tokio::time::timeout(Duration::from_millis(1500), run)
                        .await
                        .is_err(),
                    "the run ended before the kill"
                );
            } else {
                // Lost alerts fail the invocation, with the run's summary.
                let summary = match run.await {
                    Ok(s) => s,
                    Err(lambda::InvocationError::AlertsUndelivered { summary, .. }) => *summary,
                    Err(e) => panic!("cycle {cycle} step {step}: {e}"),
                };
                if std::env::var_os("SOAK_DEBUG").is_some() {
                    eprintln!(
                        "step {step}: up {} down {} sent {:?} failed {:?} state {:?} failures {:?}",
                        summary.up,
                        summary.down,
                        summary.alerts_sent,
                        summary.alerts_failed,
                        summary.state_errors,
                        summary.failures
                    );
                }
                completed_runs += 1;
                assert!(
                    summary.config_problems.is_empty(),
                    "{:?}",
                    summary.config_problems
                );
                if step == 7 {
                    assert!(
                        summary.metrics_unpublished > 0 && !summary.state_errors.is_empty(),
                        "{summary:?}"
                    );
                    assert_eq!(summary.probed, 4, "the run must still probe: {summary:?}");
                }
                if step == 5 {
                    assert_eq!(
                        summary.alerts_failed.len(),
                        3,
                        "{:?}",
                        summary.alerts_failed
                    );
                }
            }
            let mut got: Alerts = moto::drain(&admin, &queue)
                .await
                .into_iter()
                .map(|n| {
                    (
                        n.attr("monitor").to_string(),
                        n.attr("status").to_string(),
                        n.attr("category").to_string(),
                    )
                })
                .collect();
            got.sort();
            assert_eq!(got, want, "cycle {cycle} step {step}: alerts");
            transitions_checked += want.len();
        }
        if cycle == 0 {
            rss_after_first_cycle = common::status_kib("VmRSS:");
        }
    }

    // DynamoDB ends in the real state: everything up.
    let rows = moto::scan_table(&admin, &table).await;
    for name in everyone {
        let row = rows
            .get(name)
            .unwrap_or_else(|| panic!("no row for {name}"));
        assert_eq!(moto::attr(row, "status"), "up", "{name}");
    }
    // Every completed run's heartbeat arrived, including the one published
    // a run late after AWS was unreachable.
    assert_eq!(
        heartbeats(&admin, &namespace).await as usize,
        completed_runs
    );
    // No password in any log line (right or wrong one).
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(
        text.lines().count() > completed_runs,
        "the handler logged too little"
    );
    for secret in [PASSWORD, WRONG] {
        assert!(!text.contains(secret), "a log line holds a password");
    }
    if cycles > 2 {
        let grown = common::status_kib("VmRSS:").saturating_sub(rss_after_first_cycle) / 1024;
        assert!(grown < 32, "RSS grew by {grown} MiB over {cycles} cycles");
    }
    dovecot.stop();
    println!(
        "soak: {cycles} cycles, {completed_runs} completed runs + {cycles} killed, {faults} faults injected, {transitions_checked} transitions checked (each exactly one alert), rss {} MiB",
        common::status_kib("VmRSS:") / 1024
    );
}
