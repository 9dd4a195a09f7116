//! The result contract: real outputs validated against the shipped
//! `schema/result.schema.json` with a JSON Schema validator. `check
//! --json` and `run --json` are the built binary against the test Dovecot
//! and Exim (and the OAuth2 server); the Lambda's returned summary and its
//! per-probe log lines come from the handler with in-memory sinks.

// The binary needs the `aws` feature (on by default).
#![cfg(feature = "aws")]

mod common;

use std::process::Command;
use std::time::Duration;

use common::dovecot::dovecot;
use common::mem::{MemAlerts, MemMetrics, MemState};
use common::smtp::exim;
use pop3_probe::contract::{self, SCHEMA_VERSION};
use pop3_probe::credentials::SecretSource;
use pop3_probe::lambda::{self, ConfigCache, Settings};
use pop3_probe::ports::SinkError;
use secrecy::SecretString;
use serde_json::{json, Value};

/// One signing key per test: two round trips at once in the one mailbox
/// then see each other's messages as foreign and leave them alone.
const RUN_KEY: &str = "schema-test-run-signing-key-0123456789";
const LAMBDA_KEY: &str = "schema-test-lambda-signing-key-012345";

/// The shipped schema, not a fresh one: what users validate against.
/// (`contract::tests::result_schema_file_is_current` keeps the two equal.)
struct Schema {
    /// The whole file: one of the documents.
    root: jsonschema::Validator,
    /// One per document, for errors that say where: against the root's
    /// `oneOf` a bad field only reads "not valid under any of the schemas".
    documents: Vec<(&'static str, jsonschema::Validator)>,
}

fn validator() -> Schema {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/result.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let root = jsonschema::draft7::new(&schema).expect("the result schema is valid draft-07");
    let documents = [
        ("probe_result", "ProbeResultDocument"),
        ("run_summary", "RunSummary"),
    ]
    .into_iter()
    .map(|(name, def)| {
        let mut one = schema.clone();
        let obj = one.as_object_mut().unwrap();
        obj.remove("oneOf");
        obj.insert("$ref".into(), json!(format!("#/definitions/{def}")));
        (name, jsonschema::draft7::new(&one).unwrap())
    })
    .collect();
    Schema { root, documents }
}

/// Every way `doc` breaks the schema, one per line (empty: valid).
fn violations(v: &Schema, doc: &Value) -> String {
    let mut errors: Vec<String> = v
        .root
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    if !errors.is_empty() {
        if let Some((_, one)) = v.documents.iter().find(|(n, _)| doc["document"] == *n) {
            errors.extend(
                one.iter_errors(doc)
                    .map(|e| format!("{e} at {}", e.instance_path())),
            );
        }
    }
    errors.join("\n")
}

#[track_caller]
fn assert_valid(v: &Schema, what: &str, doc: &Value) {
    let errors = violations(v, doc);
    assert!(
        errors.is_empty(),
        "{what} breaks the schema:\n{errors}\n{doc:#}"
    );
}

fn check(args: &[&str], password: &str) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .arg("check")
        .args(args)
        .args(["--password-env", "SCHEMA_TEST_PW", "--json"])
        // Statuses are asserted, not speed: a loaded machine is not slow mail.
        .args(["--warn", "20s", "--crit", "25s", "--timeout", "30s"])
        .env("SCHEMA_TEST_PW", password)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "check {args:?}: not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

#[test]
fn check_json_outputs_match_the_schema() {
    let d = dovecot();
    let v = validator();
    let ca = d.get("CA_PEM");
    let url =
        |scheme: &str, key: &str| format!("{scheme}://{}@127.0.0.1:{}", d.get("USER"), d.port(key));
    let pop3s = url("pop3s", "POP3S_PORT");
    let stls = url("pop3", "POP3_PLAIN_STLS_PORT");
    let expired = url("pop3s", "POP3S_EXPIRED_PORT");
    let closed = url("pop3s", "CLOSED_PORT");
    let name = ["--ca-file", ca, "--tls-server-name", d.get("SERVER_NAME")];
    let cases: Vec<(&str, Vec<&str>, &str, &str)> = vec![
        // (what, args, password, expected status)
        (
            "login with CAPA and transcript",
            vec![&pop3s, "--capa", "-v"],
            d.get("PASSWORD"),
            "up",
        ),
        (
            "STLS, USER",
            vec![&stls, "--auth", "user"],
            d.get("PASSWORD"),
            "up",
        ),
        (
            "wrong password",
            vec![&pop3s, "--auth", "user"],
            "Wrong-Pw-1",
            "down",
        ),
        (
            "expired certificate",
            vec![&expired],
            d.get("PASSWORD"),
            "down",
        ),
        (
            "nothing listening",
            vec![&closed],
            d.get("PASSWORD"),
            "down",
        ),
    ];
    let mut seen_kinds = Vec::new();
    for (what, mut args, password, status) in cases {
        args.extend(name);
        let (_, doc) = check(&args, password);
        assert_valid(&v, what, &doc);
        assert_eq!(doc["status"], status, "{what}: {doc:#}");
        assert_eq!(doc["document"], "probe_result", "{what}");
        assert_eq!(doc["schema_version"], SCHEMA_VERSION, "{what}");
        assert!(!doc.to_string().contains(d.get("PASSWORD")), "{what}");
        if args.contains(&"-v") {
            assert!(doc["transcript"].is_array(), "{what}: {doc:#}");
        }
        seen_kinds.push(doc["kind"].clone());
    }
    // POP3 results name their kind like every other kind's.
    assert!(seen_kinds.iter().all(|k| k == "pop3"), "{seen_kinds:?}");
}

#[test]
fn check_json_with_oauth2_matches_the_schema() {
    let s = common::oauth2::servers();
    let v = validator();
    let target = format!(
        "pop3s://{}@127.0.0.1:{}",
        s.get("MAILBOX"),
        s.port("POP3S_OAUTH_PORT")
    );
    for (secret, status) in [
        (s.get("CLIENT_SECRET"), "up"),
        ("Wrong-Secret-0000", "down"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
            .args(["check", &target, "--auth", "xoauth2", "--json"])
            .args([
                "--ca-file",
                s.get("CA_PEM"),
                "--tls-server-name",
                "localhost",
            ])
            .args(["--oauth2-token-url", s.get("TOKEN_URL")])
            .args(["--oauth2-scope", s.get("SCOPE")])
            .args(["--oauth2-client-id", s.get("CLIENT_ID")])
            .args(["--oauth2-ca-file", s.get("CA_PEM")])
            .args(["--oauth2-client-secret-env", "SCHEMA_TEST_SECRET"])
            .args(["--warn", "20s", "--crit", "25s", "--timeout", "30s"])
            .env("SCHEMA_TEST_SECRET", secret)
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_valid(&v, &format!("oauth2 {status}"), &doc);
        assert_eq!(doc["status"], status, "{doc:#}");
        assert!(doc["oauth2"]["grant"].is_string(), "{doc:#}");
    }
}

/// Every kind of monitor, a failure of each sort the summary reports, a
/// round trip (signing with `key`), and one unusable monitor.
fn fleet(key: &str) -> Value {
    let d = dovecot();
    let s = exim();
    json!({
        "run": {"retries": 0, "deadline_ms": 50000},
        "credentials": {
            "pop": {"username": d.get("USER"), "password": d.get("PASSWORD")},
            "wrong": {"username": d.get("USER"), "password": "Wrong-Pw-2"},
            "sender": {"username": s.get("SMTP_USER"), "password": s.get("SMTP_PASSWORD")},
            "roundtrip-box": {"username": d.get("ROUNDTRIP_USER"), "password": d.get("PASSWORD")},
            "roundtrip-key": {"password": key}
        },
        "defaults": {"ca_pem": d.pem("CA_PEM"), "tls_server_name": d.get("SERVER_NAME"),
                     "failures_before_alert": 1, "timeout_ms": 30000,
                     "warning_ms": 20000, "critical_ms": 25000},
        "monitors": [
            {"name": "pop3s", "host": "127.0.0.1", "port": d.port("POP3S_PORT"),
             "credentials": "pop", "capabilities": true},
            {"name": "pop3-stls", "host": "127.0.0.1", "port": d.port("POP3_PLAIN_STLS_PORT"),
             "tls": "starttls", "auth": "user", "credentials": "pop"},
            {"name": "pop3-wrong", "host": "127.0.0.1", "port": d.port("POP3S_NOAPOP_PORT"),
             "auth": "user", "credentials": "wrong"},
            {"name": "pop3-expired", "host": "127.0.0.1", "port": d.port("POP3S_EXPIRED_PORT"),
             "credentials": "pop"},
            {"name": "gone", "kind": "tcp", "host": "127.0.0.1", "port": d.port("CLOSED_PORT")},
            {"name": "behind-gone", "host": "127.0.0.1", "port": d.port("CLOSED_PORT"),
             "credentials": "pop", "depends_on": ["gone"]},
            {"name": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": d.port("POP3S_PORT")},
            {"name": "dns", "kind": "dns", "host": "localhost"},
            {"name": "smtp", "kind": "smtp", "host": "127.0.0.1", "port": s.port("SMTP_SUBMIT_PORT"),
             "tls": "starttls", "ca_pem": s.pem("CA_PEM"), "credentials": "sender"},
            {"name": "rt", "kind": "roundtrip",
             "submit": {"host": "127.0.0.1", "port": s.port("SMTP_SUBMIT_PORT"), "tls": "starttls",
                        "credentials": "sender", "ca_pem": s.pem("CA_PEM"),
                        "ehlo_name": "rt.schema.test"},
             "retrieve": {"host": "127.0.0.1", "port": d.port("POP3S_PORT"), "tls": "implicit",
                          "credentials": "roundtrip-box", "ca_pem": d.pem("CA_PEM")},
             "from": "monitor@localhost", "to": s.get("ROUNDTRIP_RCPT"),
             "signing_key": "roundtrip-key",
             "max_delivery_ms": 300000, "warning_ms": 30000, "critical_ms": 120000,
             "wait_ms": 20000, "poll_interval_ms": 200},
            {"name": "broken", "kind": "tcp", "host": "127.0.0.1", "port": 70000}
        ]
    })
}

/// What a summary from a real run must show for the schema check to mean
/// something: every sort of result is in it.
#[track_caller]
fn assert_covers_the_fleet(what: &str, doc: &Value) {
    assert_eq!(doc["document"], "run_summary", "{what}");
    assert_eq!(doc["schema_version"], SCHEMA_VERSION, "{what}");
    let results = doc["results"].as_array().unwrap();
    let get = |name: &str| {
        results
            .iter()
            .find(|r| r["monitor"] == name)
            .unwrap_or_else(|| panic!("{what}: no result for {name}: {doc:#}"))
    };
    assert_eq!(get("pop3s")["status"], "up", "{what}: {doc:#}");
    assert_eq!(get("pop3s")["kind"], "pop3", "{what}");
    assert!(get("pop3s")["capabilities"].is_object(), "{what}");
    assert_eq!(get("pop3-wrong")["failure"], "auth_failed", "{what}");
    assert_eq!(
        get("pop3-expired")["failure"],
        "certificate_expired",
        "{what}"
    );
    assert!(
        get("behind-gone")["blocked_by"].is_object(),
        "{what}: {doc:#}"
    );
    assert_eq!(get("smtp")["status"], "up", "{what}: {doc:#}");
    let rt = get("rt");
    assert_eq!(rt["status"], "up", "{what}: {rt:#}");
    assert!(rt["roundtrip"]["delivery_ms"].is_number(), "{what}: {rt:#}");
    assert_eq!(doc["config_problems"][0]["monitor"], "broken", "{what}");
    assert!(!doc["alerts_sent"].as_array().unwrap().is_empty(), "{what}");
    let text = doc.to_string();
    for secret in [dovecot().get("PASSWORD"), RUN_KEY, LAMBDA_KEY, "Wrong-Pw-2"] {
        assert!(!text.contains(secret), "{what} shows a secret");
    }
}

#[test]
fn run_json_matches_the_schema() {
    let v = validator();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("monitors.json");
    std::fs::write(&config, fleet(RUN_KEY).to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "run --json: not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(2), "something is down");
    assert_valid(&v, "run --json", &doc);
    assert_covers_the_fleet("run --json", &doc);
}

/// The config secret, from memory.
struct OneSecret(String);

impl SecretSource for OneSecret {
    async fn secret(&self, id: &str) -> Result<SecretString, SinkError> {
        if id == "fleet" {
            Ok(SecretString::from(self.0.clone()))
        } else {
            Err(SinkError::new("test", format!("no secret {id}")))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambdas_summary_and_log_lines_match_the_schema() {
    let v = validator();
    let settings = Settings {
        config_secret: "fleet".into(),
        namespace: None,
        topic_arn: "arn:aws:sns:us-east-1:123456789012:schema".into(),
        state_table: "schema".into(),
        schedule: None,
    };
    let summary = lambda::handle(
        json!({}),
        Duration::from_secs(90),
        &settings,
        &ConfigCache::default(),
        &OneSecret(fleet(LAMBDA_KEY).to_string()),
        &MemMetrics::default(),
        &MemAlerts::default(),
        &MemState::default(),
    )
    .await
    .expect("the run happened and its alerts were delivered");
    // What the runtime sends back: the handler's value, serialised.
    let doc = serde_json::to_value(&summary).unwrap();
    assert_valid(&v, "the Lambda's summary", &doc);
    assert_covers_the_fleet("the Lambda's summary", &doc);
    // One log line per result, each a document of its own.
    for r in &summary.results {
        let line = contract::probe_result_line(r);
        assert!(!line.contains('\n'));
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_valid(&v, &format!("the log line of {}", r.monitor), &doc);
        assert_eq!(doc["document"], "probe_result");
    }
}

/// The schema is closed: an output that grows a field the types do not
/// declare, anywhere, fails; so does another schema version.
#[test]
fn an_undeclared_field_or_another_version_fails_validation() {
    let v = validator();
    let d = dovecot();
    let (_, doc) = check(
        &[
            &format!(
                "pop3s://{}@127.0.0.1:{}",
                d.get("USER"),
                d.port("POP3S_PORT")
            ),
            "--ca-file",
            d.get("CA_PEM"),
            "--capa",
        ],
        d.get("PASSWORD"),
    );
    assert_valid(&v, "check --json", &doc);
    let tamper = |f: &dyn Fn(&mut Value)| {
        let mut t = doc.clone();
        f(&mut t);
        violations(&v, &t)
    };
    let top = tamper(&|t| t["surprise"] = json!(1));
    assert!(top.contains("surprise"), "{top}");
    let nested = tamper(&|t| t["tls"]["certificate"]["surprise"] = json!(1));
    assert!(
        !nested.is_empty(),
        "a field deep in the result must fail too"
    );
    let version = tamper(&|t| t["schema_version"] = json!(SCHEMA_VERSION + 1));
    assert!(!version.is_empty());
    let kindless = tamper(&|t| {
        t.as_object_mut().unwrap().remove("kind");
    });
    assert!(kindless.contains("kind"), "{kindless}");
    // The old `run --json` shape, results merged in beside the summary.
    let old = json!({"summary": {}, "results": [doc]});
    assert!(!violations(&v, &old).is_empty());
}

/// `run --vantage`: the summary's `consensus` part, partial and down.
#[test]
fn run_json_with_a_consensus_matches_the_schema() {
    let v = validator();
    let dir = tempfile::tempdir().unwrap();
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listening.local_addr().unwrap().port();
    let closed = dovecot().port("CLOSED_PORT");
    let run = |vantage: &str, port: u16| {
        let config = dir.path().join(format!("{vantage}.json"));
        let doc = json!({
            "run": {"retries": 0, "schedule_seconds": 60},
            "defaults": {"failures_before_alert": 1, "timeout_ms": 15000,
                         "warning_ms": 5000, "critical_ms": 10000},
            "monitors": [{"name": "mailhost", "kind": "tcp", "host": "127.0.0.1", "port": port}]
        });
        std::fs::write(&config, doc.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--json", "--vantage", vantage])
            .arg("--state")
            .arg(dir.path().join(format!("{vantage}-state.json")))
            .arg("--vantage-state")
            .arg(dir.path().join("vantages.json"))
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let mut conditions = Vec::new();
    for (vantage, port) in [("office", open), ("vpn", closed), ("office", closed)] {
        let doc = run(vantage, port);
        assert_valid(&v, &format!("run --vantage {vantage}"), &doc);
        conditions.push(doc["consensus"]["monitors"][0]["condition"].clone());
    }
    assert_eq!(conditions, [json!("up"), json!("partial"), json!("down")]);
    drop(listening);
}
