//! Several vantages through the Lambda handler, against one moto server
//! with the real SDK: each vantage has its own name, region (its metrics
//! go to its own region's CloudWatch) and path to the real Dovecot (a relay
//! that the test cuts per vantage); all share the home region's state table
//! and alert topic, as infra/examples/multi-region deploys them.

#![cfg(feature = "aws")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::Credentials;
use common::dovecot::dovecot;
use common::moto::{self, Notification};
use common::relay::Host;
use pop3_probe::aws::{AwsSecrets, CloudWatchMetrics, DynamoState, SnsAlerts};
use pop3_probe::consensus::Condition;
use pop3_probe::lambda::{self, ConfigCache, Settings};
use pop3_probe::pipeline::RunSummary;
use pop3_probe::ports::SinkError;
use pop3_probe::vantage::{Doc, DynamoVantages, Vantage, VantageStore, Written};
use serde_json::{json, Value};
use tokio::sync::Barrier;

const MONITOR: &str = "mail-995";

/// The home region's shared resources.
struct Home {
    sdk: SdkConfig,
    table: String,
    topic: String,
    queue: String,
    namespace: String,
}

async fn home(prefix: &str) -> Home {
    let sdk = moto::sdk_config().await;
    let table = moto::unique(&format!("{prefix}-state"));
    moto::create_table(&sdk, &table).await;
    let (topic, queue) =
        moto::topic_with_queue(&sdk, &moto::unique(&format!("{prefix}-alerts"))).await;
    Home {
        namespace: moto::unique(&format!("Test/{prefix}")),
        sdk,
        table,
        topic,
        queue,
    }
}

impl Home {
    async fn notifications(&self) -> Vec<Notification> {
        moto::drain(&self.sdk, &self.queue).await
    }
}

async fn sdk_in(region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto::moto().endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// One deployment of the function: its region, its path to the server,
/// its own config secret (the same monitor, reached through its relay).
struct Vantage1 {
    name: String,
    regional: SdkConfig,
    host: Host,
    settings: Settings,
    cache: ConfigCache,
}

async fn vantage(h: &Home, name: &str, consensus: Value, monitor: Value) -> Vantage1 {
    let d = dovecot();
    let pop3s = d.port("POP3S_PORT");
    let host = Host::new(&[pop3s]).await;
    let mut m = monitor;
    m["name"] = json!(MONITOR);
    m["host"] = json!("127.0.0.1");
    m["port"] = json!(host.port(pop3s));
    m["tls"] = json!("implicit");
    // No login: three vantages at once would lock one mailbox ([IN-USE]).
    m["auth"] = json!("none");
    let doc = json!({
        "version": 1,
        "run": {"retries": 0, "deadline_ms": 30000, "schedule_seconds": 60},
        "defaults": {"ca_pem": d.pem("CA_PEM"), "tls_server_name": d.get("SERVER_NAME"),
                     "timeout_ms": 10000, "warning_ms": 5000, "critical_ms": 8000,
                     "failures_before_alert": 1},
        "consensus": consensus,
        "monitors": [m]
    })
    .to_string();
    let secret = moto::unique(&format!("config-{name}"));
    moto::create_secret(&h.sdk, &secret, &doc).await;
    Vantage1 {
        name: name.to_string(),
        regional: sdk_in(name).await,
        host,
        settings: Settings {
            config_secret: secret,
            namespace: Some(h.namespace.clone()),
            topic_arn: h.topic.clone(),
            state_table: h.table.clone(),
            schedule: None,
        },
        cache: ConfigCache::default(),
    }
}

impl Vantage1 {
    /// One invocation. State and alerts go to the home region; metrics to
    /// the vantage's own.
    async fn run_with<V: VantageStore>(&self, h: &Home, store: &V) -> RunSummary {
        let v = Vantage::new(&self.name, store).unwrap();
        lambda::handle_with_vantage(
            json!({}),
            Duration::from_secs(60),
            &self.settings,
            &self.cache,
            &AwsSecrets::new(aws_sdk_secretsmanager::Client::new(&h.sdk), Duration::ZERO),
            &CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&self.regional)),
            &SnsAlerts::new(aws_sdk_sns::Client::new(&h.sdk), h.topic.clone()),
            &DynamoState::new(aws_sdk_dynamodb::Client::new(&h.sdk), h.table.clone()),
            Some(&v),
        )
        .await
        .unwrap_or_else(|e| panic!("{} run failed: {e}", self.name))
    }

    async fn run(&self, h: &Home) -> RunSummary {
        let store = DynamoVantages::new(aws_sdk_dynamodb::Client::new(&h.sdk), h.table.clone());
        let s = self.run_with(h, &store).await;
        assert!(
            s.state_errors.is_empty(),
            "{}: {:?}",
            self.name,
            s.state_errors
        );
        s
    }
}

fn line(s: &RunSummary) -> (Condition, Vec<String>) {
    let c = s.consensus.as_ref().expect("a consensus summary");
    let m = c
        .monitors
        .iter()
        .find(|m| m.monitor == MONITOR)
        .expect("the monitor's consensus");
    (m.condition, m.failing_from.clone())
}

fn kinds(n: &[Notification]) -> Vec<(String, String)> {
    n.iter()
        .map(|n| (n.attr("monitor").to_string(), n.attr("status").to_string()))
        .collect()
}

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

async fn three(h: &Home, consensus: Value, monitor: Value) -> Vec<Vantage1> {
    let mut out = Vec::new();
    for r in REGIONS {
        out.push(vantage(h, r, consensus.clone(), monitor.clone()).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vantage_down_is_one_down_naming_them_then_one_recovery() {
    let h = home("vall").await;
    let vs = three(&h, json!({"quorum": 3}), json!({})).await;
    for v in &vs {
        let s = v.run(&h).await;
        assert_eq!(s.up, 1, "{}: {:?}", v.name, s.failures);
    }
    assert!(h.notifications().await.is_empty());

    for v in &vs {
        v.host.down();
    }
    let mut sent = Vec::new();
    for v in &vs {
        let s = v.run(&h).await;
        assert_eq!(s.down, 1);
        sent.extend(s.alerts_sent.clone());
    }
    assert_eq!(
        sent,
        [format!("{MONITOR}: down")],
        "the third vantage confirms"
    );
    let n = h.notifications().await;
    assert_eq!(kinds(&n), [(MONITOR.to_string(), "down".to_string())]);
    assert_eq!(n[0].attr("severity"), "critical");
    assert_eq!(n[0].attr("cause"), "connection_refused");
    for r in REGIONS {
        assert!(n[0].subject.contains(r), "{r} not named: {}", n[0].subject);
        assert!(n[0].message.contains(r), "{}", n[0].message);
    }
    // More failed runs: nothing new.
    for v in &vs {
        assert!(v.run(&h).await.alerts_sent.is_empty());
    }
    assert!(h.notifications().await.is_empty());

    for v in &vs {
        v.host.up().await;
    }
    let mut sent = Vec::new();
    for v in &vs {
        sent.extend(v.run(&h).await.alerts_sent);
    }
    assert_eq!(sent, [format!("{MONITOR}: recovered")]);
    let n = h.notifications().await;
    assert_eq!(kinds(&n), [(MONITOR.to_string(), "recovered".to_string())]);

    // Availability per vantage, in each vantage's own region, with the
    // consensus series beside it.
    let cw = aws_sdk_cloudwatch::Client::new(&vs[1].regional);
    let listed = cw
        .list_metrics()
        .namespace(&h.namespace)
        .metric_name("Availability")
        .send()
        .await
        .unwrap();
    let dims: Vec<Vec<(String, String)>> = listed
        .metrics()
        .iter()
        .map(|m| {
            let mut d: Vec<(String, String)> = m
                .dimensions()
                .iter()
                .map(|d| {
                    (
                        d.name().unwrap_or_default().to_string(),
                        d.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            d.sort();
            d
        })
        .collect();
    assert!(
        dims.contains(&vec![
            ("Monitor".to_string(), MONITOR.to_string()),
            ("Vantage".to_string(), "eu-west-1".to_string())
        ]),
        "{dims:?}"
    );
    assert!(
        dims.contains(&vec![("Monitor".to_string(), MONITOR.to_string())]),
        "{dims:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_vantage_of_three_down_is_partial_and_never_pages() {
    let h = home("vpart").await;
    let vs = three(&h, json!({}), json!({"partial_alert": true})).await;
    for v in &vs {
        v.run(&h).await;
    }
    vs[1].host.down(); // eu-west-1's path is broken
    let mut last = None;
    for _ in 0..2 {
        // eu-west-1 first: the others then see its fresh failure.
        for v in [&vs[1], &vs[0], &vs[2]] {
            let s = v.run(&h).await;
            let (condition, from) = line(&s);
            assert_eq!(condition, Condition::Partial, "{}", v.name);
            assert_eq!(from, ["eu-west-1"]);
            last = Some(s);
        }
    }
    let s = last.unwrap();
    let c = s.consensus.as_ref().unwrap();
    assert_eq!(c.partial, 1);
    assert!(
        c.monitors[0]
            .text
            .starts_with("mail-995 fails from eu-west-1 only: connection_refused in connect"),
        "{}",
        c.monitors[0].text
    );
    let n = h.notifications().await;
    assert_eq!(
        kinds(&n),
        [(MONITOR.to_string(), "partial".to_string())],
        "one warning, no down"
    );
    assert_eq!(n[0].attr("severity"), "warning");
    assert!(n[0]
        .subject
        .starts_with("[PARTIAL] mail-995 fails from eu-west-1 only"));
    // The run's JSON says so too.
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["consensus"]["monitors"][0]["condition"], "partial");
}

/// A store that holds every vantage at its first read of the consensus
/// item until all of them got there: they decide the same transition from
/// the same version, and the conditional write picks one.
struct Gated {
    inner: DynamoVantages,
    barrier: Arc<Barrier>,
    waited: AtomicBool,
    lost: Arc<AtomicUsize>,
}

impl VantageStore for Gated {
    async fn get(&self, keys: &[String]) -> Result<HashMap<String, Doc>, SinkError> {
        let consensus = keys.iter().any(|k| k.starts_with("#consensus#"));
        if consensus && !self.waited.swap(true, Ordering::SeqCst) {
            self.barrier.wait().await;
        }
        self.inner.get(keys).await
    }
    async fn put(&self, key: &str, doc: &Doc) -> Result<(), SinkError> {
        self.inner.put(key, doc).await
    }
    async fn put_if(&self, key: &str, doc: &Doc) -> Result<Written, SinkError> {
        let w = self.inner.put_if(key, doc).await?;
        if w == Written::Lost && key.starts_with("#consensus#") {
            self.lost.fetch_add(1, Ordering::SeqCst);
        }
        Ok(w)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vantages_deciding_the_same_transition_send_one_alert() {
    let h = home("vrace").await;
    let a = vantage(&h, "us-east-1", json!({}), json!({})).await;
    let b = vantage(&h, "eu-west-1", json!({}), json!({})).await;
    a.run(&h).await;
    b.run(&h).await;
    a.host.down();
    b.host.down();
    let barrier = Arc::new(Barrier::new(2));
    let lost = Arc::new(AtomicUsize::new(0));
    let gated = || Gated {
        inner: DynamoVantages::new(aws_sdk_dynamodb::Client::new(&h.sdk), h.table.clone()),
        barrier: barrier.clone(),
        waited: AtomicBool::new(false),
        lost: lost.clone(),
    };
    let (ga, gb) = (gated(), gated());
    let (sa, sb) = tokio::join!(a.run_with(&h, &ga), b.run_with(&h, &gb));
    assert_eq!((sa.down, sb.down), (1, 1));
    assert_eq!(line(&sa).0, Condition::Down);
    assert_eq!(line(&sb).0, Condition::Down);
    assert_eq!(
        lost.load(Ordering::SeqCst),
        1,
        "both decided from the same version; one write lost"
    );
    let mut sent: Vec<String> = sa
        .alerts_sent
        .iter()
        .chain(&sb.alerts_sent)
        .cloned()
        .collect();
    sent.sort();
    assert_eq!(sent, [format!("{MONITOR}: down")], "{sa:?} {sb:?}");
    let n = h.notifications().await;
    assert_eq!(kinds(&n), [(MONITOR.to_string(), "down".to_string())]);
    assert!(n[0].subject.contains("eu-west-1") && n[0].subject.contains("us-east-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_vantage_leaves_the_quorum_with_one_vantage_down() {
    let h = home("vsilent").await;
    let vs = three(&h, json!({"freshness_seconds": 4}), json!({})).await;
    for v in &vs {
        v.run(&h).await;
    }
    assert!(h.notifications().await.is_empty());
    // ap-southeast-2 stops running; the others go on until its heartbeat
    // is older than the window (theirs stays younger).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for v in &vs[..2] {
        assert!(v.run(&h).await.alerts_sent.is_empty());
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let s = vs[0].run(&h).await;
    assert_eq!(s.alerts_sent, ["vantage:ap-southeast-2: vantage_down"]);
    assert_eq!(
        s.consensus.as_ref().unwrap().alive,
        ["eu-west-1", "us-east-1"]
    );
    assert!(vs[1].run(&h).await.alerts_sent.is_empty(), "once");
    let n = h.notifications().await;
    assert_eq!(
        kinds(&n),
        [(
            "vantage:ap-southeast-2".to_string(),
            "vantage_down".to_string()
        )]
    );
    assert_eq!(n[0].attr("category"), "probe");
    assert_eq!(n[0].attr("severity"), "warning");

    // The quorum is now two of two: both remaining paths cut is an outage.
    vs[0].host.down();
    vs[1].host.down();
    let first = vs[0].run(&h).await;
    assert_eq!(line(&first).0, Condition::Partial);
    let second = vs[1].run(&h).await;
    assert_eq!(line(&second).0, Condition::Down);
    assert_eq!(second.alerts_sent, [format!("{MONITOR}: down")]);
    let n = h.notifications().await;
    assert_eq!(kinds(&n), [(MONITOR.to_string(), "down".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_winner_that_dies_before_sending_leaves_the_alert_to_the_next() {
    let h = home("vdead").await;
    let vs = three(&h, json!({}), json!({})).await;
    for v in &vs {
        v.run(&h).await;
    }
    for v in &vs {
        v.host.down();
    }
    vs[0].run(&h).await; // partial
                         // eu-west-1 decides the outage and dies before SNS accepts: here its
                         // topic refuses (a topic that does not exist), the same for the store.
    let store = DynamoVantages::new(aws_sdk_dynamodb::Client::new(&h.sdk), h.table.clone());
    let v = Vantage::new(&vs[1].name, &store).unwrap();
    let dead = lambda::handle_with_vantage(
        json!({}),
        Duration::from_secs(60),
        &vs[1].settings,
        &vs[1].cache,
        &AwsSecrets::new(aws_sdk_secretsmanager::Client::new(&h.sdk), Duration::ZERO),
        &CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&vs[1].regional)),
        &SnsAlerts::new(
            aws_sdk_sns::Client::new(&h.sdk),
            format!("{}-gone", h.topic),
        ),
        &DynamoState::new(aws_sdk_dynamodb::Client::new(&h.sdk), h.table.clone()),
        Some(&v),
    )
    .await
    .unwrap_err();
    // A lost alert fails the invocation (so the probe's own failure is
    // heard), with the summary of what happened.
    let lambda::InvocationError::AlertsUndelivered { summary: dead, .. } = dead else {
        panic!("{dead:?}");
    };
    assert_eq!(line(&dead).0, Condition::Down);
    assert!(dead.alerts_sent.is_empty());
    assert_eq!(dead.alerts_failed.len(), 1, "{dead:?}");
    let rows = moto::scan_table(&h.sdk, &h.table).await;
    let item: Value = serde_json::from_str(&moto::attr(
        &rows[&format!("#consensus#{MONITOR}")],
        "state",
    ))
    .unwrap();
    assert_eq!(item["status"], "down");
    assert_eq!(item["unsent"][0]["alert"]["kind"], "down", "{item}");
    assert_eq!(item["unsent"][0]["claimed_by"], "eu-west-1");
    assert!(h.notifications().await.is_empty());
    // The claim's lease (the run deadline, 30 s) has not run out: the next
    // vantage leaves it alone...
    assert!(vs[2].run(&h).await.alerts_sent.is_empty());
    // ...until it has: move the claim back in time as if 31 s had passed.
    let mut moved = item.clone();
    let claimed = moved["unsent"][0]["claimed_ms"].as_i64().unwrap();
    moved["unsent"][0]["claimed_ms"] = json!(claimed - 31_000);
    let version: u64 = moto::attr(&rows[&format!("#consensus#{MONITOR}")], "version")
        .parse()
        .unwrap();
    store
        .put(
            &format!("#consensus#{MONITOR}"),
            &Doc {
                version,
                body: moved.to_string(),
            },
        )
        .await
        .unwrap();
    let s = vs[2].run(&h).await;
    assert_eq!(s.alerts_sent, [format!("{MONITOR}: down")]);
    let n = h.notifications().await;
    assert_eq!(kinds(&n), [(MONITOR.to_string(), "down".to_string())]);
    let rows = moto::scan_table(&h.sdk, &h.table).await;
    let item: Value = serde_json::from_str(&moto::attr(
        &rows[&format!("#consensus#{MONITOR}")],
        "state",
    ))
    .unwrap();
    assert!(item.get("unsent").is_none(), "sent and cleared: {item}");
}

// ---------------------------------------------------------------- locally

/// `pop3-probe run --vantage`: two processes of one machine share a
/// vantage file; one path failing is partial, both failing is one `down`.
#[test]
fn run_vantage_shares_a_file_between_processes() {
    let dir = tempfile::tempdir().unwrap();
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listening.local_addr().unwrap().port();
    let closed = moto::free_port();
    let config = |name: &str, port: u16| {
        let path = dir.path().join(format!("{name}.json"));
        let doc = json!({
            "run": {"retries": 0, "schedule_seconds": 60},
            "defaults": {"failures_before_alert": 1, "timeout_ms": 2000, "warning_ms": 1000, "critical_ms": 1500},
            "monitors": [{"name": "mailhost", "kind": "tcp", "host": "127.0.0.1", "port": port}]
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    };
    let run = |vantage: &str, port: u16| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
            .arg("run")
            .arg("--config")
            .arg(config(vantage, port))
            .args(["--json", "--vantage", vantage])
            .arg("--state")
            .arg(dir.path().join(format!("{vantage}-state.json")))
            .arg("--vantage-state")
            .arg(dir.path().join("vantages.json"))
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (doc, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (doc, err) = run("office", open);
    assert_eq!(doc["consensus"]["alive"], json!(["office"]), "{err}");
    let (doc, err) = run("vpn", closed);
    let c = &doc["consensus"];
    assert_eq!(c["alive"], json!(["office", "vpn"]));
    assert_eq!(c["monitors"][0]["condition"], "partial", "{c}");
    assert!(!err.contains("[DOWN]"), "{err}");
    let (doc, err) = run("office", closed);
    assert_eq!(doc["consensus"]["monitors"][0]["condition"], "down");
    assert_eq!(doc["alerts_sent"], json!(["mailhost: down"]), "{err}");
    assert!(err.contains("[DOWN] mailhost"), "{err}");
    let (doc, _) = run("vpn", closed);
    assert_eq!(doc["alerts_sent"], json!([]), "once");
    drop(listening);
}
