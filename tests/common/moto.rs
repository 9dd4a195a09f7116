//! One moto server (the local AWS emulator) per test process, on a free
//! loopback port, plus small helpers to create and read the resources the
//! AWS adapters use. Tests use unique resource names (they run in
//! parallel), so the server is never reset.
//!
//! The server is started through a bash watchdog that kills it as soon as
//! the test process is gone: statics are never dropped, and
//! PR_SET_PDEATHSIG would fire when the spawning *thread* ends (test
//! threads end all the time).

#![cfg(feature = "aws")]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_secretsmanager::config::Credentials;

pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub log: PathBuf,
    /// The watchdog (bash); kept so that it is not reaped early.
    _watchdog: Mutex<Child>,
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

fn log_tail(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Whether an HTTP server answers `GET /moto-api/` on `port`.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf.starts_with(b"HTTP/1.") && got >= 12
}

/// One request to each service the tests use, before any test does. moto
/// imports a service's backend on its first request, which on a loaded
/// 2-core CI machine has taken longer than the probe's own 2 s operation
/// timeout (`aws::OPERATION_TIMEOUT`): the test would then measure moto's
/// start-up, not the probe. The answers do not matter; the imports do.
fn warm_up(port: u16) {
    const JSON: &[(&str, &str, &str)] = &[
        ("secretsmanager", "secretsmanager.ListSecrets", "1.1"),
        ("dynamodb", "DynamoDB_20120810.ListTables", "1.0"),
    ];
    const QUERY: &[(&str, &str)] = &[
        ("monitoring", "Action=ListMetrics&Version=2010-08-01"),
        ("sns", "Action=ListTopics&Version=2010-03-31"),
        ("sqs", "Action=ListQueues&Version=2012-11-05"),
    ];
    let auth = |service: &str| {
        format!(
            "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n"
        )
    };
    let mut requests: Vec<String> = Vec::new();
    for (service, target, version) in JSON {
        requests.push(format!(
            "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\n{}X-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-{version}\r\nContent-Length: 2\r\n\r\n{{}}",
            auth(service)
        ));
    }
    for (service, body) in QUERY {
        requests.push(format!(
            "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\n{}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            auth(service),
            body.len()
        ));
    }
    for r in requests {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        if s.write_all(r.as_bytes()).is_ok() {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
    }
}

fn start() -> Moto {
    let found = Command::new("bash")
        .args(["-c", "command -v moto_server"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "moto_server is not installed: `pip install 'moto[server]'` (make setup / .ci/run install it); \
         these tests never skip"
    );
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("pop3-probe-moto-{}-{port}.log", std::process::id()));
        let script = format!(
            "moto_server -H 127.0.0.1 -p {port} >'{log}' 2>&1 & m=$!; \
             while kill -0 {pid} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; \
             kill $m 2>/dev/null; sleep 2; kill -9 $m 2>/dev/null; exit 0",
            log = log.display(),
            pid = std::process::id()
        );
        let mut child = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bash for moto_server");
        let until = Instant::now() + Duration::from_secs(45);
        loop {
            if answers(port) {
                warm_up(port);
                return Moto {
                    port,
                    endpoint: format!("http://127.0.0.1:{port}"),
                    log,
                    _watchdog: Mutex::new(child),
                };
            }
            if let Ok(Some(_)) = child.try_wait() {
                last = format!("moto_server on port {port} exited:\n{}", log_tail(&log));
                break;
            }
            if Instant::now() > until {
                let _ = child.kill();
                last = format!(
                    "moto_server on port {port} did not answer within 45 s:\n{}",
                    log_tail(&log)
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    panic!("could not start moto_server (3 tries): {last}");
}

/// The test process's moto server, started on first use.
pub fn moto() -> &'static Moto {
    static M: OnceLock<Moto> = OnceLock::new();
    M.get_or_init(start)
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// SDK config for clients pointed at `endpoint` with test credentials,
/// without touching the process environment.
pub async fn sdk_config_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// SDK config for clients of the test's moto server.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_at(&moto().endpoint).await
}

/// Clients that give up fast: no SDK retries, short timeouts (for tests
/// against an endpoint that does not answer).
pub async fn sdk_config_impatient(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await
}

/// Remove everything from the server (not used by parallel tests).
pub fn reset() {
    let mut s = TcpStream::connect(("127.0.0.1", moto().port)).expect("connect to moto");
    s.write_all(b"POST /moto-api/reset HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.") && out.contains(" 200 "), "{out}");
}

pub async fn create_secret(sdk: &SdkConfig, name: &str, value: &str) {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateSecret {name}: {e:?}"));
}

pub async fn put_secret(sdk: &SdkConfig, name: &str, value: &str) {
    aws_sdk_secretsmanager::Client::new(sdk)
        .put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutSecretValue {name}: {e:?}"));
}

/// A state table as infra/ creates it: partition key `monitor` (S).
pub async fn create_table(sdk: &SdkConfig, name: &str) {
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("monitor")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("monitor")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
}

/// Every item of a table (Scan, all pages), keyed by `monitor`.
pub async fn scan_table(
    sdk: &SdkConfig,
    name: &str,
) -> HashMap<String, HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut out = HashMap::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = client
            .scan()
            .table_name(name)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("Scan {name}: {e:?}"));
        for item in page.items() {
            let key = item
                .get("monitor")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .expect("item without a monitor key");
            out.insert(key, item.clone());
        }
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => break,
        }
    }
    out
}

/// A string attribute of a scanned item (`N` values as their text).
pub fn attr(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        other => panic!("attribute {name} is {other:?}"),
    }
}

/// An SNS topic with an SQS queue subscribed to it, raw delivery off (the
/// queue gets the SNS envelope JSON). Returns (topic ARN, queue URL).
pub async fn topic_with_queue(sdk: &SdkConfig, name: &str) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTopic {name}: {e:?}"))
        .topic_arn()
        .expect("topic ARN")
        .to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateQueue {name}: {e:?}"))
        .queue_url()
        .expect("queue URL")
        .to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue ARN")
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "false")
        .send()
        .await
        .unwrap_or_else(|e| panic!("Subscribe {queue_arn}: {e:?}"));
    (topic, queue)
}

/// One SNS notification as the SQS subscriber sees it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub subject: String,
    /// The `sqs` (else `default`) text of the message.
    pub message: String,
    /// MessageAttributes, name → string value.
    pub attributes: HashMap<String, String>,
    /// The whole SQS body.
    pub raw: String,
}

impl Notification {
    pub fn attr(&self, name: &str) -> &str {
        self.attributes
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no attribute {name} in {:?}", self.attributes))
    }
}

/// Take every message now in the queue (and delete them).
pub async fn drain(sdk: &SdkConfig, queue_url: &str) -> Vec<Notification> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ReceiveMessage {queue_url}: {e:?}"));
        let messages = got.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let body = m.body().unwrap_or_default().to_string();
            let v: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("SQS body is not the SNS envelope ({e}): {body}"));
            let attributes = v["MessageAttributes"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, a)| (k.clone(), a["Value"].as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Notification {
                subject: v["Subject"].as_str().unwrap_or("").to_string(),
                message: v["Message"].as_str().unwrap_or("").to_string(),
                attributes,
                raw: body,
            });
            if let Some(h) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    out
}
