//! The AWS adapters (src/aws.rs) with the real SDK clients against moto's
//! server, and whole runs (`lambda::handle`) against moto plus the test
//! Dovecot. Every test makes its own secrets, namespace, topic, queue and
//! table, so they run in parallel against one moto server.

// The AWS adapters exist only with the `aws` feature (on by default).
#![cfg(feature = "aws")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StandardUnit};
use common::dovecot::dovecot;
use common::fake::{self, Reply};
use common::moto::{self, attr, Notification};
use pop3_probe::alert::{Alert, AlertKind, Category, MonitorState};
use pop3_probe::aws::{self, AwsSecrets, CloudWatchMetrics, DynamoState, SnsAlerts};
use pop3_probe::config;
use pop3_probe::credentials::SecretSource;
use pop3_probe::lambda::{self, ConfigCache, InvocationError, Settings};
use pop3_probe::pipeline::{self, RunSummary, Shard};
use pop3_probe::ports::{Datum, MetricsSink, StateChanges, StateStore, Unit};
use pop3_probe::probe::{FailureKind, Status};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::time::Instant;

// ---------------------------------------------------------------- helpers

/// One test's own resources in moto.
struct Stack {
    sdk: SdkConfig,
    namespace: String,
    table: String,
    topic: String,
    queue: String,
    config_secret: String,
}

async fn stack(prefix: &str) -> Stack {
    let sdk = moto::sdk_config().await;
    let table = moto::unique(&format!("{prefix}-state"));
    moto::create_table(&sdk, &table).await;
    let (topic, queue) =
        moto::topic_with_queue(&sdk, &moto::unique(&format!("{prefix}-alerts"))).await;
    Stack {
        namespace: moto::unique(&format!("Test/{prefix}")),
        config_secret: moto::unique(&format!("{prefix}-config")),
        sdk,
        table,
        topic,
        queue,
    }
}

impl Stack {
    fn secrets(&self) -> AwsSecrets {
        AwsSecrets::new(
            aws_sdk_secretsmanager::Client::new(&self.sdk),
            Duration::ZERO,
        )
    }
    fn metrics(&self) -> CloudWatchMetrics {
        CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&self.sdk))
    }
    fn alerts(&self) -> SnsAlerts {
        SnsAlerts::new(aws_sdk_sns::Client::new(&self.sdk), self.topic.clone())
    }
    fn state(&self) -> DynamoState {
        DynamoState::new(aws_sdk_dynamodb::Client::new(&self.sdk), self.table.clone())
    }
    fn settings(&self) -> Settings {
        Settings {
            config_secret: self.config_secret.clone(),
            namespace: Some(self.namespace.clone()),
            topic_arn: self.topic.clone(),
            state_table: self.table.clone(),
            schedule: None,
        }
    }
    async fn notifications(&self) -> Vec<Notification> {
        moto::drain(&self.sdk, &self.queue).await
    }
    /// One invocation with the real adapters.
    async fn invoke(
        &self,
        cache: &ConfigCache,
        remaining: Duration,
    ) -> Result<RunSummary, InvocationError> {
        lambda::handle(
            json!({"shard": 0, "shards": 1}),
            remaining,
            &self.settings(),
            cache,
            &self.secrets(),
            &self.metrics(),
            &self.alerts(),
            &self.state(),
        )
        .await
    }
}

fn now_ms() -> i64 {
    pop3_probe::clock::now_ms()
}

fn datum(name: &str, monitor: Option<&str>, value: f64, unit: Unit, ts: i64) -> Datum {
    Datum {
        name: name.into(),
        monitor: monitor.map(str::to_string),
        shard: None,
        value,
        unit,
        timestamp_ms: ts,
        vantage: None,
    }
}

/// Every metric in a namespace: name → set of Monitor dimension values
/// ("" for a metric without dimensions).
async fn list_metrics(sdk: &SdkConfig, namespace: &str) -> BTreeMap<String, BTreeSet<String>> {
    let cw = aws_sdk_cloudwatch::Client::new(sdk);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let page = cw
            .list_metrics()
            .namespace(namespace)
            .set_next_token(token.take())
            .send()
            .await
            .expect("ListMetrics");
        for m in page.metrics() {
            let dims = m.dimensions();
            assert!(dims.len() <= 1, "more than one dimension: {m:?}");
            // A Monitor dimension as its value; any other as name=value.
            let monitor = match dims.first() {
                Some(d) if d.name() == Some("Monitor") => d.value().unwrap_or_default().to_string(),
                Some(d) => format!(
                    "{}={}",
                    d.name().unwrap_or_default(),
                    d.value().unwrap_or_default()
                ),
                None => String::new(),
            };
            out.entry(m.metric_name().unwrap_or_default().to_string())
                .or_default()
                .insert(monitor);
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return out,
        }
    }
    panic!("ListMetrics never ended");
}

/// The values of one statistic (all datapoints of the last hour, added up)
/// for each (metric, monitor), asked with `unit`: a metric stored with
/// another unit gives nothing.
async fn stats(
    sdk: &SdkConfig,
    namespace: &str,
    queries: &[(&str, Option<&str>)],
    unit: StandardUnit,
    stat: &str,
) -> Vec<Option<f64>> {
    let cw = aws_sdk_cloudwatch::Client::new(sdk);
    let now = now_ms();
    let mut out = Vec::new();
    for (chunk_no, chunk) in queries.chunks(100).enumerate() {
        let mut req = cw
            .get_metric_data()
            .start_time(DateTime::from_millis(now - 3_600_000))
            .end_time(DateTime::from_millis(now + 300_000));
        for (i, (name, monitor)) in chunk.iter().enumerate() {
            let mut metric = Metric::builder().namespace(namespace).metric_name(*name);
            // "Shard=0" asks for that dimension; anything else is a monitor.
            if let Some(m) = monitor {
                let (dim, value) = m
                    .strip_prefix("Shard=")
                    .map_or(("Monitor", *m), |v| ("Shard", v));
                metric = metric.dimensions(Dimension::builder().name(dim).value(value).build());
            }
            req = req.metric_data_queries(
                MetricDataQuery::builder()
                    .id(format!("q{chunk_no}x{i}"))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric.build())
                            .period(60)
                            .stat(stat)
                            .unit(unit.clone())
                            .build(),
                    )
                    .build(),
            );
        }
        let res = req.send().await.expect("GetMetricData");
        let by_id: BTreeMap<String, Vec<f64>> = res
            .metric_data_results()
            .iter()
            .map(|r| (r.id().unwrap_or_default().to_string(), r.values().to_vec()))
            .collect();
        for i in 0..chunk.len() {
            let values = by_id
                .get(&format!("q{chunk_no}x{i}"))
                .cloned()
                .unwrap_or_default();
            out.push(if values.is_empty() {
                None
            } else {
                Some(values.iter().sum())
            });
        }
    }
    out
}

async fn stat1(
    sdk: &SdkConfig,
    ns: &str,
    name: &str,
    monitor: Option<&str>,
    unit: StandardUnit,
    stat: &str,
) -> Option<f64> {
    stats(sdk, ns, &[(name, monitor)], unit, stat).await[0]
}

/// The account secret of the test Dovecot's `empty` user (its own mailbox,
/// so no other test's session locks it).
fn account_json() -> String {
    let d = dovecot();
    json!({"username": d.get("EMPTY_USER"), "password": d.get("PASSWORD")}).to_string()
}

/// A config document for monitors of the test Dovecot.
fn dovecot_config(credential_secret: &str, monitors: serde_json::Value) -> String {
    let d = dovecot();
    json!({
        "version": 1,
        "run": {"retries": 0, "deadline_ms": 30000, "secrets_ttl_seconds": 0},
        "credentials": {"acct": {"secret_id": credential_secret}},
        "defaults": {
            "credentials": "acct",
            "ca_pem": d.pem("CA_PEM"),
            "tls_server_name": d.get("SERVER_NAME"),
            "timeout_ms": 10000,
            "warning_ms": 5000,
            "critical_ms": 8000
        },
        "monitors": monitors
    })
    .to_string()
}

fn good_and_expired(prefix: &str) -> serde_json::Value {
    let d = dovecot();
    json!([
        {"name": format!("{prefix}good"), "host": "127.0.0.1", "port": d.port("POP3S_PORT"), "tls": "implicit"},
        {"name": format!("{prefix}expired"), "host": "127.0.0.1", "port": d.port("POP3S_EXPIRED_PORT"),
         "tls": "implicit", "failures_before_alert": 1}
    ])
}

// ---------------------------------------------------------------- secrets

#[tokio::test]
async fn credentials_come_from_secrets_manager() {
    let sdk = moto::sdk_config().await;
    let json_secret = moto::unique("acct-json");
    let bare_secret = moto::unique("acct-bare");
    let missing = moto::unique("does-not-exist");
    moto::create_secret(
        &sdk,
        &json_secret,
        r#"{"username": "alice", "password": "pw-json-1"}"#,
    )
    .await;
    moto::create_secret(&sdk, &bare_secret, "pw-bare-2\n").await;
    let config_secret = moto::unique("config");
    let doc = json!({
        "credentials": {
            "from_json": {"secret_id": json_secret},
            "from_bare": {"username": "bob", "secret_id": bare_secret},
            "overridden": {"username": "carol", "secret_id": json_secret},
            "gone": {"username": "dave", "secret_id": missing}
        },
        "defaults": {"host": "mail.example.com"},
        "monitors": [
            {"name": "m-json", "host": "a.example.com", "credentials": "from_json"},
            {"name": "m-bare", "host": "b.example.com", "credentials": "from_bare"},
            {"name": "m-over", "host": "c.example.com", "credentials": "overridden"},
            {"name": "m-gone", "host": "d.example.com", "credentials": "gone"}
        ]
    });
    // "host" in defaults is not a setting: that is a document error.
    let bad = doc.to_string();
    let mut doc = doc;
    doc["defaults"] = json!({});
    moto::create_secret(&sdk, &config_secret, &doc.to_string()).await;

    let secrets = AwsSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk), Duration::ZERO);
    let err = config::load(&bad, &secrets).await.unwrap_err();
    assert!(err.path.starts_with("defaults"), "{err}");
    assert!(err.to_string().contains("unknown field \"host\""), "{err}");

    let text = secrets.secret(&config_secret).await.expect("config secret");
    let c = config::load(text.expose_secret(), &secrets)
        .await
        .expect("config loads");
    let by_name = |n: &str| {
        c.monitors
            .iter()
            .find(|m| m.target.name == n)
            .unwrap_or_else(|| panic!("{n} not ready: {:?}", c.problems))
    };
    let m = by_name("m-json");
    assert_eq!(m.target.username.as_deref(), Some("alice"));
    assert_eq!(
        m.target.password.as_ref().unwrap().expose_secret(),
        "pw-json-1"
    );
    let m = by_name("m-bare");
    assert_eq!(m.target.username.as_deref(), Some("bob"));
    assert_eq!(
        m.target.password.as_ref().unwrap().expose_secret(),
        "pw-bare-2"
    );
    // A username in the config wins over the secret's.
    let m = by_name("m-over");
    assert_eq!(m.target.username.as_deref(), Some("carol"));
    assert_eq!(
        m.target.password.as_ref().unwrap().expose_secret(),
        "pw-json-1"
    );

    assert_eq!(c.monitors.len(), 3);
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    let p = &c.problems[0];
    assert_eq!(p.monitor, "m-gone");
    assert_eq!(p.error.path, "credentials.gone");
    assert!(
        p.error.message.contains(&missing) && p.error.message.contains("does not exist"),
        "{}",
        p.error
    );
    // Nothing prints a password.
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("pw-json-1") && !debug.contains("pw-bare-2"),
        "{debug}"
    );
}

#[tokio::test]
async fn secrets_are_cached_for_their_ttl() {
    let sdk = moto::sdk_config().await;
    let name = moto::unique("rotated");
    moto::create_secret(&sdk, &name, "old").await;
    let cached = AwsSecrets::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        Duration::from_secs(300),
    );
    let fresh = AwsSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk), Duration::ZERO);
    assert_eq!(cached.secret(&name).await.unwrap().expose_secret(), "old");
    assert_eq!(fresh.secret(&name).await.unwrap().expose_secret(), "old");
    moto::put_secret(&sdk, &name, "new").await;
    assert_eq!(cached.secret(&name).await.unwrap().expose_secret(), "old");
    assert_eq!(fresh.secret(&name).await.unwrap().expose_secret(), "new");
    cached.set_ttl(Duration::ZERO);
    assert_eq!(cached.secret(&name).await.unwrap().expose_secret(), "new");
    let err = fresh.secret(&moto::unique("nope")).await.unwrap_err();
    assert!(
        !err.transient && err.message.contains("does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn a_malformed_config_secret_aborts_the_run_with_its_json_path() {
    let s = stack("badcfg").await;
    let cache = ConfigCache::default();

    // Not JSON at all.
    moto::create_secret(&s.sdk, &s.config_secret, "{\"monitors\": [ {\"name\": ").await;
    let err = s.invoke(&cache, Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(err, InvocationError::Config { .. }), "{err:?}");
    assert_eq!(err.kind(), "ConfigUnavailable");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "config secret {}: config: not valid JSON at line 1",
            s.config_secret
        )),
        "{text}"
    );
    // The probe says once that it cannot run.
    let n = s.notifications().await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].attr("status"), "probe_error");
    assert_eq!(n[0].attr("category"), "probe");
    assert_eq!(n[0].attr("severity"), "critical");
    assert!(n[0].message.contains("not valid JSON"), "{}", n[0].message);

    // A misspelt TLS mode in the defaults sinks the whole document.
    moto::put_secret(
        &s.sdk,
        &s.config_secret,
        &json!({"defaults": {"tls": "startls"}, "monitors": []}).to_string(),
    )
    .await;
    let err = s.invoke(&cache, Duration::from_secs(30)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "config secret {}: defaults.tls: unknown variant \"startls\"",
            s.config_secret
        )),
        "{text}"
    );
    assert!(
        text.contains("starttls"),
        "the message lists the valid modes: {text}"
    );
    // Still broken: no second probe_error alert.
    assert!(s.notifications().await.is_empty());
    let rows = moto::scan_table(&s.sdk, &s.table).await;
    assert_eq!(attr(&rows[&lambda::probe_row(0)], "status"), "down");

    // In one monitor it only takes that monitor out; the others run.
    let d = dovecot();
    moto::put_secret(
        &s.sdk,
        &s.config_secret,
        &json!({
            "run": {"retries": 0, "deadline_ms": 20000},
            "monitors": [
                {"name": "cfg-typo", "host": "127.0.0.1", "tls": "startls", "auth": "none"},
                {"name": "cfg-fine", "host": "127.0.0.1", "port": d.port("POP3_NOTLS_PORT"),
                 "tls": "none", "auth": "none"}
            ]
        })
        .to_string(),
    )
    .await;
    let summary = s
        .invoke(&cache, Duration::from_secs(30))
        .await
        .expect("runs");
    assert_eq!(
        summary.config_problems.len(),
        1,
        "{:?}",
        summary.config_problems
    );
    let p = &summary.config_problems[0];
    assert_eq!(p.monitor, "cfg-typo");
    assert!(
        p.error
            .to_string()
            .starts_with("monitors[0].tls: unknown variant \"startls\""),
        "{}",
        p.error
    );
    assert_eq!((summary.probed, summary.up), (1, 1), "{summary:?}");
    // And the probe runs again: one recovery notice, and one config_error
    // for the monitor that is not watched, naming it and the JSON path.
    let mut n = s.notifications().await;
    n.sort_by_key(|x| x.attr("status").to_string());
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(
        (
            n[0].attr("status"),
            n[0].attr("monitor"),
            n[0].attr("category")
        ),
        ("config_error", "cfg-typo", "probe")
    );
    assert!(n[0].subject.contains("monitors[0].tls"), "{}", n[0].subject);
    assert!(n[0].message.contains("unknown variant"), "{}", n[0].message);
    assert_eq!(
        (n[1].attr("status"), n[1].attr("category")),
        ("recovered", "probe")
    );
    // Still broken next run: said once, kept in the state row; counted.
    s.invoke(&cache, Duration::from_secs(30))
        .await
        .expect("runs");
    assert!(s.notifications().await.is_empty());
    let rows = moto::scan_table(&s.sdk, &s.table).await;
    assert!(rows["cfg-typo"]["state"]
        .as_s()
        .unwrap()
        .contains("monitors[0].tls"));
    assert_eq!(
        stat1(
            &s.sdk,
            &s.namespace,
            "MonitorsMisconfigured",
            None,
            StandardUnit::Count,
            "Sum"
        )
        .await,
        Some(2.0)
    );
    let rows = moto::scan_table(&s.sdk, &s.table).await;
    assert_eq!(attr(&rows[&lambda::probe_row(0)], "status"), "up");
}

// ---------------------------------------------------------------- metrics

#[tokio::test]
async fn metrics_land_in_cloudwatch_with_units_and_dimensions() {
    let sdk = moto::sdk_config().await;
    let ns = moto::unique("Test/metrics");
    let now = now_ms();
    let data = vec![
        datum("Availability", Some("mail-a"), 1.0, Unit::None, now),
        datum("Availability", Some("mail-b"), 0.0, Unit::None, now),
        datum(
            "ResponseTime",
            Some("mail-a"),
            123.5,
            Unit::Milliseconds,
            now,
        ),
        datum("ProbeRuns", None, 1.0, Unit::Count, now),
        datum("MonitorsUp", None, 1.0, Unit::Count, now),
        datum("MonitorsDown", None, 1.0, Unit::Count, now),
        datum("RunDuration", None, 456.0, Unit::Milliseconds, now),
    ];
    let sink = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let report = sink.publish(&ns, data).await;
    assert_eq!(report.errors, Vec::<String>::new());
    assert_eq!(
        (report.published, report.requests, report.failed.len()),
        (7, 1, 0)
    );

    let listed = list_metrics(&sdk, &ns).await;
    let expect: BTreeMap<String, BTreeSet<String>> = [
        ("Availability", vec!["mail-a", "mail-b"]),
        ("ResponseTime", vec!["mail-a"]),
        ("ProbeRuns", vec![""]),
        ("MonitorsUp", vec![""]),
        ("MonitorsDown", vec![""]),
        ("RunDuration", vec![""]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(listed, expect);

    use StandardUnit as U;
    let got = stats(
        &sdk,
        &ns,
        &[
            ("Availability", Some("mail-a")),
            ("Availability", Some("mail-b")),
        ],
        U::None,
        "Average",
    )
    .await;
    assert_eq!(got, [Some(1.0), Some(0.0)]);
    assert_eq!(
        stat1(
            &sdk,
            &ns,
            "ResponseTime",
            Some("mail-a"),
            U::Milliseconds,
            "Maximum"
        )
        .await,
        Some(123.5)
    );
    assert_eq!(
        stat1(&sdk, &ns, "RunDuration", None, U::Milliseconds, "Sum").await,
        Some(456.0)
    );
    let counts = stats(
        &sdk,
        &ns,
        &[
            ("ProbeRuns", None),
            ("MonitorsUp", None),
            ("MonitorsDown", None),
        ],
        U::Count,
        "Sum",
    )
    .await;
    assert_eq!(counts, [Some(1.0), Some(1.0), Some(1.0)]);
    // The units are really stored: asked in another unit, nothing.
    assert_eq!(
        stat1(&sdk, &ns, "ResponseTime", Some("mail-a"), U::Count, "Sum").await,
        None
    );
    assert_eq!(
        stat1(&sdk, &ns, "ProbeRuns", None, U::Milliseconds, "Sum").await,
        None
    );
}

#[tokio::test]
async fn more_than_a_thousand_values_are_split_and_all_published() {
    let sdk = moto::sdk_config().await;
    let ns = moto::unique("Test/batches");
    let now = now_ms();
    // 500 monitors x 5 minutes = 2,500 values.
    let monitors: Vec<String> = (0..500).map(|i| format!("mon-{i:03}")).collect();
    let mut data = Vec::new();
    for k in 0..5 {
        for (i, m) in monitors.iter().enumerate() {
            let v = if i % 2 == 0 { 1.0 } else { 0.0 };
            data.push(datum(
                "Availability",
                Some(m),
                v,
                Unit::None,
                now - k * 60_000,
            ));
        }
    }
    let split: Vec<usize> = aws::batches(data.clone()).iter().map(Vec::len).collect();
    assert_eq!(split, [1000, 1000, 500]);

    let sink = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let report = sink.publish(&ns, data).await;
    assert_eq!(report.errors, Vec::<String>::new());
    assert_eq!(report.requests, split.len());
    assert_eq!((report.published, report.failed.len()), (2500, 0));

    let listed = list_metrics(&sdk, &ns).await;
    assert_eq!(listed.len(), 1, "{:?}", listed.keys());
    assert_eq!(
        listed["Availability"],
        monitors.iter().cloned().collect::<BTreeSet<_>>()
    );
    let queries: Vec<(&str, Option<&str>)> = monitors
        .iter()
        .map(|m| ("Availability", Some(m.as_str())))
        .collect();
    let samples = stats(&sdk, &ns, &queries, StandardUnit::None, "SampleCount").await;
    assert!(samples.iter().all(|s| *s == Some(5.0)), "{samples:?}");
    let sums = stats(&sdk, &ns, &queries, StandardUnit::None, "Sum").await;
    for (i, s) in sums.iter().enumerate() {
        assert_eq!(
            *s,
            Some(if i % 2 == 0 { 5.0 } else { 0.0 }),
            "{}",
            monitors[i]
        );
    }
}

#[tokio::test]
async fn long_monitor_names_are_split_by_size() {
    let sdk = moto::sdk_config().await;
    let ns = moto::unique("Test/bytes");
    let now = now_ms();
    let data: Vec<Datum> = (0..1000)
        .map(|i| {
            let name = format!("{i:04}-{}", "x".repeat(245));
            datum(
                "ResponseTime",
                Some(&name),
                i as f64,
                Unit::Milliseconds,
                now,
            )
        })
        .collect();
    let split: Vec<usize> = aws::batches(data.clone()).iter().map(Vec::len).collect();
    assert!(
        split.len() >= 2 && split.iter().all(|&n| n < 1000),
        "{split:?}"
    );
    assert_eq!(split.iter().sum::<usize>(), 1000);
    let report = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk))
        .publish(&ns, data)
        .await;
    assert_eq!(report.errors, Vec::<String>::new());
    assert_eq!((report.published, report.requests), (1000, split.len()));
    let listed = list_metrics(&sdk, &ns).await;
    assert_eq!(listed["ResponseTime"].len(), 1000);
}

// ---------------------------------------------------------------- alerts

fn alert(monitor: &str, kind: AlertKind, category: Category, cause: Option<FailureKind>) -> Alert {
    Alert {
        monitor: monitor.into(),
        kind,
        category,
        cause,
        subject: format!("[{}] {monitor}: über-broken", kind.as_str()),
        sms: format!("{} {monitor}", kind.as_str()),
        body: format!("Full story of {monitor}\nline two\n"),
        at_ms: now_ms(),
    }
}

#[tokio::test]
async fn alerts_reach_an_sqs_subscriber_with_attributes() {
    let s = stack("sns").await;
    let sink = s.alerts();
    use pop3_probe::ports::AlertSink;
    sink.send(&alert(
        "mail-1",
        AlertKind::Down,
        Category::Credentials,
        Some(FailureKind::AuthFailed),
    ))
    .await
    .expect("published");
    sink.send(&alert(
        "mail-2",
        AlertKind::Recovered,
        Category::Service,
        None,
    ))
    .await
    .expect("published");

    let mut n = s.notifications().await;
    n.sort_by(|a, b| a.attr("monitor").cmp(b.attr("monitor")));
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(n[0].message, "Full story of mail-1\nline two\n");
    // ASCII only: the "ü" became "?".
    assert_eq!(n[0].subject, "[down] mail-1: ?ber-broken");
    let attrs = |x: &Notification| {
        ["severity", "monitor", "status", "category", "cause"].map(|k| x.attr(k).to_string())
    };
    assert_eq!(
        attrs(&n[0]),
        ["warning", "mail-1", "down", "credentials", "auth_failed"]
    );
    assert_eq!(
        attrs(&n[1]),
        ["info", "mail-2", "recovered", "service", "none"]
    );
    assert!(
        !n[1].raw.contains("recovered mail-2\""),
        "the SMS text went to SQS: {}",
        n[1].raw
    );

    // A topic that does not exist is an error, not a silent loss.
    let lost = SnsAlerts::new(
        aws_sdk_sns::Client::new(&s.sdk),
        format!("{}-missing", s.topic),
    );
    let err = lost
        .send(&alert("mail-3", AlertKind::Down, Category::Service, None))
        .await
        .unwrap_err();
    assert_eq!(err.system, "sns");
    assert!(s.notifications().await.is_empty());
}

// ---------------------------------------------------------------- state

fn state_of(monitor: &str, version: u64, status: Status) -> MonitorState {
    let mut st = MonitorState::new(monitor, now_ms());
    st.version = version;
    st.status = status;
    if status == Status::Down {
        st.consecutive_failures = 2;
        st.failure = Some(FailureKind::Timeout);
        st.last_alert_ms = Some(now_ms());
    }
    st
}

fn changes(shard: u32, monitors: Vec<MonitorState>, pending: Option<Vec<Datum>>) -> StateChanges {
    StateChanges {
        shard,
        monitors,
        pending_metrics: pending,
    }
}

#[tokio::test]
async fn dynamodb_state_is_one_conditional_put_per_change_with_rows_per_shard() {
    let s = stack("state").await;
    let store = s.state();
    let names: Vec<String> = (0..150).map(|i| format!("m{i:03}")).collect();
    assert!(store.load(&names).await.unwrap().is_empty());

    // 150 new monitors and shard 0's pending metrics: 151 items.
    let pending = vec![
        datum(
            "Availability",
            Some("m000"),
            0.0,
            Unit::None,
            1_700_000_000_000,
        ),
        datum("ProbeRuns", None, 1.0, Unit::Count, 1_700_000_060_000),
    ];
    let first: Vec<MonitorState> = names.iter().map(|n| state_of(n, 1, Status::Up)).collect();
    let saved = store.save(changes(0, first, Some(pending.clone()))).await;
    assert!(saved.errors.is_empty(), "{:?}", saved.errors);
    assert_eq!(saved.writes, 151, "one conditional PutItem per item");
    let second = state_of("m000", 2, Status::Down);
    let saved = store.save(changes(0, vec![second.clone()], None)).await;
    assert!(saved.errors.is_empty(), "{:?}", saved.errors);
    assert_eq!(saved.writes, 1);

    // More than one BatchGetItem's worth (100 keys).
    let all = store.load(&names).await.unwrap();
    assert_eq!(all.len(), 150);
    assert_eq!(all["m149"].status, Status::Up);
    assert_eq!(all["m000"], second);

    // Pending metrics are per shard: shard 1 neither sees nor clears
    // shard 0's values.
    assert_eq!(store.load_pending_metrics(0).await.unwrap(), pending);
    assert!(store.load_pending_metrics(1).await.unwrap().is_empty());
    let other = vec![datum(
        "ProbeRuns",
        None,
        1.0,
        Unit::Count,
        1_700_000_120_000,
    )];
    store.save(changes(1, vec![], Some(other.clone()))).await;
    assert_eq!(store.load_pending_metrics(1).await.unwrap(), other);
    assert_eq!(store.load_pending_metrics(0).await.unwrap(), pending);
    store.save(changes(0, vec![], Some(vec![]))).await;
    assert!(store.load_pending_metrics(0).await.unwrap().is_empty());
    assert_eq!(store.load_pending_metrics(1).await.unwrap(), other);

    let rows = moto::scan_table(&s.sdk, &s.table).await;
    assert_eq!(rows.len(), 152, "150 monitors and two shards' pending rows");
    assert_eq!(attr(&rows["m000"], "status"), "down");
    assert_eq!(attr(&rows["m000"], "version"), "2");
    assert_eq!(attr(&rows["m042"], "status"), "up");
    assert_eq!(attr(&rows["m042"], "version"), "1");
    assert!(attr(&rows["m000"], "since").ends_with('Z'));
    assert!(rows.contains_key(&pop3_probe::aws::pending_key(0)));
    assert!(rows.contains_key(&pop3_probe::aws::pending_key(1)));
    assert!(
        !rows.contains_key("#pending-metrics"),
        "no row shared by all shards"
    );
}

// ---------------------------------------------------------------- whole runs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_against_moto_and_dovecot_alerts_once() {
    let s = stack("run").await;
    let account = moto::unique("account");
    moto::create_secret(&s.sdk, &account, &account_json()).await;
    moto::create_secret(
        &s.sdk,
        &s.config_secret,
        &dovecot_config(&account, good_and_expired("run-")),
    )
    .await;
    let cache = ConfigCache::default();

    let first = s
        .invoke(&cache, Duration::from_secs(60))
        .await
        .expect("first run");
    assert_eq!((first.probed, first.up, first.down), (2, 1, 1), "{first:?}");
    assert_eq!(first.failures.len(), 1);
    assert_eq!(first.failures[0].monitor, "run-expired");
    assert_eq!(
        first.failures[0].failure,
        Some(FailureKind::CertificateExpired)
    );
    assert_eq!(first.alerts_sent, ["run-expired: down"]);
    assert!(first.alerts_failed.is_empty(), "{:?}", first.alerts_failed);
    assert!(!first.has_delivery_errors(), "{first:?}");
    assert!(first.metrics_published >= 7, "{first:?}");
    let good = first
        .results
        .iter()
        .find(|r| r.monitor == "run-good")
        .unwrap();
    assert_eq!(
        good.mailbox.as_ref().map(|m| m.messages),
        Some(0),
        "the empty mailbox"
    );

    let n = s.notifications().await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].attr("monitor"), "run-expired");
    assert_eq!(n[0].attr("status"), "down");
    assert_eq!(n[0].attr("cause"), "certificate_expired");
    assert_eq!(n[0].attr("category"), "service");
    assert_eq!(n[0].attr("severity"), "critical");
    assert!(
        n[0].subject
            .starts_with("[DOWN] run-expired: certificate_expired in tls"),
        "{}",
        n[0].subject
    );
    assert!(
        n[0].message.contains("Renew the server certificate"),
        "{}",
        n[0].message
    );

    let listed = list_metrics(&s.sdk, &s.namespace).await;
    assert_eq!(
        listed["Availability"],
        ["run-expired", "run-good"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert!(listed["ResponseTime"].contains("run-good"), "{listed:?}");
    assert!(
        !listed["ResponseTime"].contains("run-expired"),
        "{listed:?}"
    );
    for run_level in [
        "MonitorsUp",
        "MonitorsDown",
        "RunDuration",
        "AlertsFailed",
        "MetricsPending",
        "MonitorsSkipped",
        "MonitorsMisconfigured",
    ] {
        assert_eq!(
            listed[run_level],
            BTreeSet::from([String::new()]),
            "{run_level}"
        );
    }
    // The heartbeat is per shard, and only per shard.
    assert_eq!(
        listed["ProbeRuns"],
        BTreeSet::from(["Shard=0".to_string()]),
        "{listed:?}"
    );
    let avail = stats(
        &s.sdk,
        &s.namespace,
        &[
            ("Availability", Some("run-good")),
            ("Availability", Some("run-expired")),
        ],
        StandardUnit::None,
        "Sum",
    )
    .await;
    assert_eq!(avail, [Some(1.0), Some(0.0)]);
    let rt = stat1(
        &s.sdk,
        &s.namespace,
        "ResponseTime",
        Some("run-good"),
        StandardUnit::Milliseconds,
        "Sum",
    )
    .await
    .expect("a response time");
    assert!(
        (rt - good.response_time_ms).abs() < 0.01,
        "{rt} vs {}",
        good.response_time_ms
    );

    let rows = moto::scan_table(&s.sdk, &s.table).await;
    assert_eq!(attr(&rows["run-expired"], "status"), "down");
    assert_eq!(attr(&rows["run-expired"], "version"), "1");
    assert_eq!(attr(&rows["run-good"], "status"), "up");

    // Same state again: no alert, metrics again.
    let second = s
        .invoke(&cache, Duration::from_secs(60))
        .await
        .expect("second run");
    assert_eq!((second.probed, second.up, second.down), (2, 1, 1));
    assert!(second.alerts_sent.is_empty(), "{:?}", second.alerts_sent);
    assert!(!second.has_delivery_errors(), "{second:?}");
    assert!(s.notifications().await.is_empty());
    // GetMetricStatistics: moto's GetMetricData drops the namespace filter
    // once dimensions are given (other tests' shard 0 would count).
    let now = std::time::SystemTime::now();
    let out = aws_sdk_cloudwatch::Client::new(&s.sdk)
        .get_metric_statistics()
        .namespace(&s.namespace)
        .metric_name("ProbeRuns")
        .dimensions(Dimension::builder().name("Shard").value("0").build())
        .start_time(DateTime::from(now - Duration::from_secs(3600)))
        .end_time(DateTime::from(now + Duration::from_secs(600)))
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .expect("GetMetricStatistics");
    let runs: f64 = out.datapoints().iter().filter_map(|d| d.sum()).sum();
    assert_eq!(runs, 2.0);
    // (No dimensionless ProbeRuns: `listed` above has only Shard=0.)
    let down = stat1(
        &s.sdk,
        &s.namespace,
        "MonitorsDown",
        None,
        StandardUnit::Count,
        "Sum",
    )
    .await;
    assert_eq!(down, Some(2.0));
    let rows = moto::scan_table(&s.sdk, &s.table).await;
    assert_eq!(attr(&rows["run-expired"], "status"), "down");
    assert_eq!(
        attr(&rows["run-expired"], "version"),
        "2",
        "consecutive failures counted"
    );
    assert_eq!(
        attr(&rows["run-good"], "version"),
        "1",
        "a steady monitor costs no write"
    );
}

// ---------------------------------------------------------------- faults

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_unreachable_the_run_still_probes_and_reports() {
    let closed = format!("http://127.0.0.1:{}", moto::free_port());
    let sdk = moto::sdk_config_impatient(&closed).await;
    let d = dovecot();
    // Inline credentials: this run needs no secret.
    let text = json!({
        "run": {"retries": 0, "deadline_ms": 20000},
        "credentials": {"acct": {"username": d.get("EMPTY_USER"), "password": d.get("PASSWORD")}},
        "defaults": {"credentials": "acct", "ca_pem": d.pem("CA_PEM"),
                     "tls_server_name": d.get("SERVER_NAME"), "failures_before_alert": 1},
        "monitors": good_and_expired("")
    })
    .to_string();
    let secrets = AwsSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk), Duration::ZERO);
    let c = config::load(&text, &secrets).await.unwrap();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let metrics = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let alerts = SnsAlerts::new(
        aws_sdk_sns::Client::new(&sdk),
        "arn:aws:sns:us-east-1:123456789012:x",
    );
    let state = DynamoState::new(aws_sdk_dynamodb::Client::new(&sdk), "nowhere");

    let started = Instant::now();
    let summary = pipeline::execute(
        &c,
        "Test/unreachable",
        Shard::default(),
        Instant::now() + Duration::from_secs(20),
        &metrics,
        &alerts,
        &state,
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(
        (summary.probed, summary.up, summary.down),
        (2, 1, 1),
        "{summary:?}"
    );
    assert_eq!(summary.metrics_published, 0);
    // 2 x Availability, 1 x ResponseTime, 4 run-level, maybe certificate days.
    assert!(summary.metrics_unpublished >= 7, "{summary:?}");
    assert!(
        summary
            .metric_errors
            .iter()
            .any(|e| e.contains("PutMetricData")),
        "{:?}",
        summary.metric_errors
    );
    assert!(
        summary
            .state_errors
            .iter()
            .any(|e| e.contains("alert state not loaded")),
        "{:?}",
        summary.state_errors
    );
    assert!(
        summary
            .state_errors
            .iter()
            .any(|e| e.starts_with("pending metrics")),
        "{:?}",
        summary.state_errors
    );
    // No state, no way to tell a transition: no alert attempted.
    assert!(summary.alerts_sent.is_empty() && summary.alerts_failed.is_empty());
    assert!(summary.has_delivery_errors());
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["metrics_unpublished"], summary.metrics_unpublished);

    // The Lambda handler: no config, so a clean error, also in bounded time.
    let settings = Settings {
        config_secret: "cfg".into(),
        namespace: None,
        topic_arn: "arn:aws:sns:us-east-1:123456789012:x".into(),
        state_table: "nowhere".into(),
        schedule: None,
    };
    let started = Instant::now();
    let err = lambda::handle(
        json!({}),
        Duration::from_secs(30),
        &settings,
        &ConfigCache::default(),
        &secrets,
        &metrics,
        &alerts,
        &state,
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, InvocationError::Config { .. }));
    assert!(
        err.to_string()
            .starts_with("config secret cfg: secretsmanager: reading secret cfg"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_sns_refused_is_sent_on_the_next_run() {
    let s = stack("snsdown").await;
    let account = moto::unique("account");
    moto::create_secret(&s.sdk, &account, &account_json()).await;
    moto::create_secret(
        &s.sdk,
        &s.config_secret,
        &dovecot_config(&account, good_and_expired("sns-")),
    )
    .await;
    let closed =
        moto::sdk_config_impatient(&format!("http://127.0.0.1:{}", moto::free_port())).await;
    let broken_sns = SnsAlerts::new(aws_sdk_sns::Client::new(&closed), s.topic.clone());
    let cache = ConfigCache::default();
    let err = lambda::handle(
        json!({"shard": 0, "shards": 1}),
        Duration::from_secs(60),
        &s.settings(),
        &cache,
        &s.secrets(),
        &s.metrics(),
        &broken_sns,
        &s.state(),
    )
    .await
    .expect_err("a lost alert fails the invocation");
    // The invocation reports an error (the Lambda's Errors metric counts
    // it), after the run's state was saved.
    assert_eq!(err.kind(), "AlertsUndelivered");
    assert!(
        err.to_string()
            .starts_with("1 alert(s) could not be delivered (sns-expired down: sns: Publish to"),
        "{err}"
    );
    let InvocationError::AlertsUndelivered { summary, .. } = err else {
        unreachable!()
    };
    assert_eq!(summary.down, 1);
    assert!(summary.alerts_sent.is_empty());
    assert_eq!(
        summary.alerts_failed.len(),
        1,
        "{:?}",
        summary.alerts_failed
    );
    assert_eq!(summary.alerts_failed[0].monitor, "sns-expired");
    assert_eq!(summary.alerts_failed[0].kind, "down");
    assert!(
        summary.alerts_failed[0]
            .error
            .starts_with("sns: Publish to"),
        "{:?}",
        summary.alerts_failed
    );
    assert_eq!(summary.metrics_unpublished, 0);
    // State moves forward only after SNS took the alert.
    let rows = moto::scan_table(&s.sdk, &s.table).await;
    assert!(!rows.contains_key("sns-expired"), "{:?}", rows.keys());
    assert_eq!(attr(&rows["sns-good"], "status"), "up");
    // The metric the alarm watches.
    assert_eq!(
        stat1(
            &s.sdk,
            &s.namespace,
            "AlertsFailed",
            None,
            StandardUnit::Count,
            "Sum"
        )
        .await,
        Some(1.0)
    );

    let next = s
        .invoke(&cache, Duration::from_secs(60))
        .await
        .expect("runs");
    assert_eq!(next.alerts_sent, ["sns-expired: down"]);
    let n = s.notifications().await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (n[0].attr("monitor"), n[0].attr("status")),
        ("sns-expired", "down")
    );
    let rows = moto::scan_table(&s.sdk, &s.table).await;
    assert_eq!(attr(&rows["sns-expired"], "status"), "down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_does_not_hold_up_the_run() {
    let s = stack("hang").await;
    let hung = fake::spawn(Reply::Hang, fake::polite(&[])).await;
    let d = dovecot();
    moto::create_secret(
        &s.sdk,
        &s.config_secret,
        &json!({
            "run": {"retries": 1, "retry_delay_ms": 100, "deadline_ms": 60000},
            "defaults": {"tls": "none", "auth": "none", "failures_before_alert": 1,
                         "timeout_ms": 40000, "warning_ms": 20000, "critical_ms": 30000},
            "monitors": [
                {"name": "hang-hung", "host": "127.0.0.1", "port": hung.port()},
                {"name": "hang-fine", "host": "127.0.0.1", "port": d.port("POP3_NOTLS_PORT")}
            ]
        })
        .to_string(),
    )
    .await;
    // The invocation has 25 s left: a fifth (5 s) is kept for delivery, so
    // the hung probe is cut at about 20 s. The margin is wide because moto
    // on a loaded 2-core CI machine can take most of a second per call, and
    // what is checked here is the cut, not how fast delivery is.
    let remaining = Duration::from_secs(25);
    let started = Instant::now();
    let summary = s
        .invoke(&ConfigCache::default(), remaining)
        .await
        .expect("runs");
    let took = started.elapsed();
    assert!(took < remaining, "took {took:?}");
    assert!(
        took >= Duration::from_secs(15),
        "the hung probe had ~20 s: {took:?}"
    );
    assert_eq!(
        (summary.probed, summary.up, summary.down),
        (2, 1, 1),
        "{summary:?}"
    );
    let r = summary
        .results
        .iter()
        .find(|r| r.monitor == "hang-hung")
        .unwrap();
    assert_eq!(r.failure, Some(FailureKind::Timeout), "{r:?}");
    assert_eq!(r.attempts, 1, "no time for a retry");
    assert_eq!(summary.alerts_sent, ["hang-hung: down"]);
    assert!(!summary.has_delivery_errors(), "{summary:?}");
    assert!(summary.metrics_published >= 7);
    let avail = stats(
        &s.sdk,
        &s.namespace,
        &[
            ("Availability", Some("hang-fine")),
            ("Availability", Some("hang-hung")),
        ],
        StandardUnit::None,
        "Sum",
    )
    .await;
    assert_eq!(avail, [Some(1.0), Some(0.0)], "{summary:?}");
    let n = s.notifications().await;
    assert_eq!(n.len(), 1);
    assert_eq!(
        (n[0].attr("monitor"), n[0].attr("cause")),
        ("hang-hung", "timeout")
    );
    // The probe waited for a greeting that never came: it sent nothing.
    assert_eq!(hung.commands(), Vec::<String>::new());
}

// ---------------------------------------------------------------- dependencies, SMTP, drift

/// The Lambda's handler with the real adapters, for what issue 7 added: a
/// host outage through a relay in front of Dovecot and Exim is one SNS
/// message naming the cause (not one per service) and one recovery; then
/// the address starts answering from a server without STLS and APOP, which
/// is one capability_changed message. The state rows keep the baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_smtp_and_drift_through_the_handler() {
    let s = stack("deps").await;
    let d = dovecot();
    let e = common::smtp::exim();
    let (stls, notls) = (d.port("POP3_PLAIN_STLS_PORT"), d.port("POP3_NOTLS_PORT"));
    let host = common::relay::Host::new(&[d.port("POP3S_PORT"), e.port("SMTP_PORT"), stls]).await;
    let config = json!({
        "run": {"retries": 0, "deadline_ms": 30000},
        "credentials": {
            "pop": {"username": d.get("EMPTY_USER"), "password": d.get("PASSWORD")},
            "smtp": {"username": e.get("SMTP_USER"), "password": e.get("SMTP_PASSWORD")}
        },
        "defaults": {"ca_pem": d.pem("CA_PEM"), "tls_server_name": d.get("SERVER_NAME"),
                     "credentials": "pop", "failures_before_alert": 2, "timeout_ms": 10000,
                     "warning_ms": 5000, "critical_ms": 8000},
        "monitors": [
            {"name": "deps-host", "kind": "tcp", "host": "127.0.0.1",
             "port": host.port(d.port("POP3S_PORT"))},
            {"name": "deps-pop3s", "host": "127.0.0.1", "port": host.port(d.port("POP3S_PORT")),
             "depends_on": ["deps-host"]},
            {"name": "deps-smtp", "kind": "smtp", "host": "127.0.0.1",
             "port": host.port(e.port("SMTP_PORT")), "tls": "starttls",
             "ca_pem": e.pem("CA_PEM"), "credentials": "smtp", "depends_on": ["deps-host"]},
            {"name": "deps-110", "host": "127.0.0.1", "port": host.port(stls),
             "tls": "starttls-if-available", "allow_plaintext_password": true,
             "depends_on": ["deps-host"]}
        ]
    });
    moto::create_secret(&s.sdk, &s.config_secret, &config.to_string()).await;
    let cache = ConfigCache::default();
    let run = || s.invoke(&cache, Duration::from_secs(60));

    let first = run().await.expect("first run");
    assert_eq!(first.up, 4, "{:?}", first.failures);
    assert!(s.notifications().await.is_empty());

    host.down();
    let quiet = run().await.expect("host down, first failure");
    assert_eq!(quiet.down, 4, "{:?}", quiet.failures);
    assert!(
        s.notifications().await.is_empty(),
        "failures_before_alert is 2"
    );
    run().await.expect("host down, second failure");
    let n = s.notifications().await;
    assert_eq!(n.len(), 1, "one alert, not four: {n:?}");
    assert_eq!(n[0].attr("monitor"), "deps-host");
    assert_eq!(n[0].attr("status"), "down");
    assert_eq!(n[0].attr("cause"), "connection_refused");
    assert!(
        n[0].message
            .contains("Affected:  deps-110, deps-pop3s, deps-smtp"),
        "{}",
        n[0].message
    );
    let rows = moto::scan_table(&s.sdk, &s.table).await;
    assert_eq!(attr(&rows["deps-smtp"], "status"), "up", "never announced");

    host.up().await;
    let back = run().await.expect("host back");
    assert_eq!(back.up, 4, "{:?}", back.failures);
    let n = s.notifications().await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (n[0].attr("monitor"), n[0].attr("status")),
        ("deps-host", "recovered")
    );

    // Same address, a server without TLS and without APOP behind it.
    host.reroute(stls, notls).await;
    let drifted = run().await.expect("after the change");
    assert_eq!(drifted.up, 4, "still logs in: {:?}", drifted.failures);
    let n = s.notifications().await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].attr("monitor"), "deps-110");
    assert_eq!(n[0].attr("status"), "capability_changed");
    assert_eq!(n[0].attr("severity"), "warning");
    assert!(
        n[0].message.contains("  - STLS is no longer offered")
            && n[0].message.contains("  - APOP is no longer offered"),
        "{}",
        n[0].message
    );
    run().await.expect("steady again");
    assert!(s.notifications().await.is_empty(), "once per change");
    let rows = moto::scan_table(&s.sdk, &s.table).await;
    let state: MonitorState = serde_json::from_str(&attr(&rows["deps-110"], "state")).unwrap();
    let caps = state.capabilities.expect("the baseline is stored");
    assert_eq!((caps.stls, caps.apop), (Some(false), Some(false)));
    let smtp: MonitorState = serde_json::from_str(&attr(&rows["deps-smtp"], "state")).unwrap();
    assert!(
        smtp.capabilities.is_some_and(|c| c.sasl.contains("PLAIN")),
        "SMTP's AUTH mechanisms are tracked too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exits_non_zero_when_an_alert_is_lost_and_keeps_the_state() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = dir.path().join("monitors.json");
    let write_config = |port: u16| {
        let doc = json!({
            "run": {"retries": 0, "deadline_ms": 10000},
            "defaults": {"failures_before_alert": 1, "timeout_ms": 2000,
                         "warning_ms": 1000, "critical_ms": 1500},
            "monitors": [
                {"name": "cli-flip", "kind": "tcp", "host": "127.0.0.1", "port": port},
                {"name": "cli-steady", "kind": "tcp", "host": "127.0.0.1", "port": open}
            ]
        });
        std::fs::write(&config, doc.to_string()).unwrap();
    };
    let closed_sns = format!("http://127.0.0.1:{}", moto::free_port());
    let run = |sns: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pop3-probe"));
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--state")
            .arg(&state)
            .arg("--json")
            .env("AWS_ENDPOINT_URL", &closed_sns)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", moto::REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if sns {
            cmd.args([
                "--sns-topic-arn",
                "arn:aws:sns:us-east-1:123456789012:unreachable",
            ]);
        }
        cmd.output().unwrap()
    };
    // Down, announced on stderr (no SNS): the state says down.
    write_config(moto::free_port());
    let out = run(false);
    assert_eq!(out.status.code(), Some(2));
    // Back up, but the recovery cannot be delivered: everything is up, yet
    // the run must not exit 0, and what was saved stays saved.
    write_config(open);
    let out = run(true);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // `run --json` is the run_summary document itself.
    let summary = &doc;
    assert_eq!(summary["down"], 0, "{summary}");
    assert_eq!(
        summary["alerts_failed"].as_array().unwrap().len(),
        1,
        "{summary}"
    );
    assert_eq!(summary["alerts_failed"][0]["kind"], "recovered");
    assert_eq!(out.status.code(), Some(2), "{summary}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    // Not moved forward: the recovery is retried next run.
    assert_eq!(saved["monitors"]["cli-flip"]["status"], "down");
    assert_eq!(saved["monitors"]["cli-steady"]["status"], "up");
}

// ---------------------------------------------------------------- OAuth2

/// The handler with an OAuth2 credential whose client secret is in Secrets
/// Manager, against the real oidc-provider and its Dovecot: two warm
/// invocations, one token request (the process-wide cache).
#[tokio::test]
async fn oauth2_client_secret_from_secrets_manager_one_fetch_per_warm_container() {
    let o = common::oauth2::servers();
    let s = stack("oauth").await;
    let client_secret = moto::unique("oauth-client-secret");
    moto::create_secret(&s.sdk, &client_secret, o.get("CLIENT_SECRET")).await;
    let monitors: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            json!({"name": format!("oauth-{i}"), "host": "127.0.0.1",
                   "port": o.port("POP3S_OAUTH_PORT"), "tls": "implicit", "auth": "xoauth2"})
        })
        .collect();
    let doc = json!({
        "version": 1,
        "run": {"retries": 0, "deadline_ms": 50000, "secrets_ttl_seconds": 0},
        "credentials": {"m365": {"username": o.get("MAILBOX"), "oauth2": {
            "provider": "generic", "token_url": o.get("TOKEN_URL"), "scope": o.get("SCOPE"),
            "client_id": o.get("CLIENT_ID"), "client_secret_id": client_secret,
            "ca_file": o.get("CA_PEM")}}},
        "defaults": {"credentials": "m365", "ca_pem": o.pem("CA_PEM"), "tls_server_name": "localhost",
                     "timeout_ms": 40000, "warning_ms": 30000, "critical_ms": 35000},
        "monitors": monitors
    });
    moto::create_secret(&s.sdk, &s.config_secret, &doc.to_string()).await;
    let cache = ConfigCache::default();
    let before = pop3_probe::oauth2::TokenCache::global().fetches();
    for run in 0..2 {
        let summary = s
            .invoke(&cache, Duration::from_secs(60))
            .await
            .expect("run");
        assert_eq!(
            (summary.probed, summary.up),
            (5, 5),
            "run {run}: {summary:?}"
        );
        let shown = format!(
            "{}\n{:?}",
            serde_json::to_string(&summary).unwrap(),
            summary.results
        );
        assert!(!shown.contains(o.get("CLIENT_SECRET")), "{shown}");
    }
    assert_eq!(
        pop3_probe::oauth2::TokenCache::global().fetches() - before,
        1
    );
}
