//! `pop3-probe serve` scraped by a real Prometheus (Debian's `prometheus`
//! package) with the multi-target relabeling blackbox users copy, watching
//! the test Dovecot; and `run --metrics prometheus` read by `promtool`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::dovecot::dovecot;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pop3-probe");

/// Kills the child when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bare HTTP/1.0 request on loopback: (status, body).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    try_http(port, method, path, headers).expect("connect")
}

/// As [`http`], `None` while nothing listens yet.
fn try_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Poll `ready` (at most `tries` times, 250 ms apart); the count bounds the
/// wait, nothing asserts how long it took.
fn wait_for<T>(what: &str, tries: u32, mut ready: impl FnMut() -> Option<T>) -> T {
    for _ in 0..tries {
        if let Some(v) = ready() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("gave up waiting for {what}");
}

fn config(dir: &Path) -> std::path::PathBuf {
    let d = dovecot();
    let doc = serde_json::json!({
        "credentials": {"probe": {"username": d.get("USER"), "password_env": "SERVE_TEST_PASSWORD"}},
        "defaults": {"ca_file": d.get("CA_PEM"), "tls_server_name": d.get("SERVER_NAME"),
                     "capabilities": false},
        "monitors": [
            {"name": "good", "host": "127.0.0.1", "port": d.port("POP3S_PORT"),
             "tls": "implicit", "credentials": "probe"},
            {"name": "expired", "host": "127.0.0.1", "port": d.port("POP3S_EXPIRED_PORT"),
             "tls": "implicit", "auth": "none"}
        ],
        "modules": {
            "pop3s": {"tls": "implicit", "credentials": "probe", "allowed_hosts": ["127.0.0.1"]}
        }
    });
    let path = dir.join("monitors.json");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    path
}

fn not_after_unix(pem: &str) -> f64 {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-in", pem])
        .output()
        .expect("openssl");
    let text = String::from_utf8(out.stdout).unwrap();
    let date = text.trim().strip_prefix("notAfter=").unwrap().to_string();
    let out = Command::new("date")
        .args(["-u", "-d", &date, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Prometheus' instant query: (labels, value) per series.
fn query(port: u16, q: &str) -> Vec<(serde_json::Map<String, Value>, f64)> {
    let path = format!(
        "/api/v1/query?query={}",
        percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC)
    );
    let Some((status, body)) = try_http(port, "GET", &path, &[]) else {
        return vec![];
    };
    if status != 200 {
        return vec![];
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let labels = s["metric"].as_object().cloned().unwrap_or_default();
            let value = s["value"][1].as_str().unwrap().parse().unwrap();
            (labels, value)
        })
        .collect()
}

fn one(port: u16, q: &str) -> Option<(serde_json::Map<String, Value>, f64)> {
    let mut r = query(port, q);
    (r.len() == 1).then(|| r.remove(0))
}

#[test]
fn prometheus_scrapes_serve_with_multi_target_relabeling() {
    let d = dovecot();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let serve_port = free_port();
    let serve = Killed(
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&cfg)
            .args(["--listen", &format!("127.0.0.1:{serve_port}")])
            .env("SERVE_TEST_PASSWORD", d.get("PASSWORD"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pop3-probe serve"),
    );
    wait_for("serve's /-/healthy", 120, || {
        TcpStream::connect(("127.0.0.1", serve_port))
            .ok()
            .map(|_| ())
    });
    assert_eq!(http(serve_port, "GET", "/-/healthy", &[]).0, 200);

    // The endpoints themselves, before Prometheus.
    let (status, body) = http(serve_port, "GET", "/probe?target=nope", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown monitor \"nope\""), "{body}");
    let (status, body) = http(
        serve_port,
        "GET",
        "/probe?module=nope&target=127.0.0.1",
        &[],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown module \"nope\""), "{body}");
    let (status, body) = http(
        serve_port,
        "GET",
        "/probe?target=good",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("probe_success 1\n"), "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(!body.contains(d.get("PASSWORD")), "{body}");

    // Prometheus, scraping the exporter the way blackbox users set it up.
    let prom_port = free_port();
    let target = format!("127.0.0.1:{serve_port}");
    let relabel = format!(
        r#"
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: {target}"#
    );
    let prom_cfg = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pop3
    metrics_path: /probe
    static_configs:
      - targets: [good, expired]{relabel}
  - job_name: pop3_module
    metrics_path: /probe
    params:
      module: [pop3s]
    static_configs:
      - targets: ["127.0.0.1:{pop3s}"]{relabel}
  - job_name: pop3_probe_exporter
    static_configs:
      - targets: ["{target}"]
"#,
        pop3s = d.port("POP3S_PORT"),
    );
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(&prom_yml, prom_cfg).unwrap();
    let check = Command::new("promtool")
        .args(["check", "config"])
        .arg(&prom_yml)
        .output()
        .expect("promtool (Debian package prometheus; `make setup` installs it)");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_yml.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus (Debian package prometheus; `make setup` installs it)"),
    );

    let (labels, good) = wait_for("probe_success of good", 240, || {
        one(prom_port, r#"probe_success{job="pop3",instance="good"}"#)
    });
    assert_eq!(good, 1.0, "{labels:?}");
    let (_, expired) = wait_for("probe_success of expired", 120, || {
        one(prom_port, r#"probe_success{job="pop3",instance="expired"}"#)
    });
    assert_eq!(expired, 0.0);
    let (info, _) = wait_for("probe_failure_info of expired", 120, || {
        one(prom_port, r#"probe_failure_info{instance="expired"}"#)
    });
    assert_eq!(info["kind"], "certificate_expired", "{info:?}");
    assert_eq!(info["phase"], "tls", "{info:?}");

    let pki = Path::new(d.get("CA_PEM")).parent().unwrap().to_path_buf();
    let (_, expiry) = wait_for("cert expiry of good", 120, || {
        one(
            prom_port,
            r#"probe_ssl_earliest_cert_expiry{instance="good"}"#,
        )
    });
    assert_eq!(
        expiry,
        not_after_unix(pki.join("server.pem").to_str().unwrap())
    );
    let (_, expiry) = wait_for("cert expiry of expired", 120, || {
        one(
            prom_port,
            r#"probe_ssl_earliest_cert_expiry{instance="expired"}"#,
        )
    });
    assert_eq!(
        expiry,
        not_after_unix(pki.join("expired.pem").to_str().unwrap())
    );
    let (tls, _) = wait_for("TLS version of good", 40, || {
        one(prom_port, r#"probe_tls_version_info{instance="good"}"#)
    });
    assert_eq!(tls["version"], "TLS 1.3");

    // The module on an ad-hoc target logs in and reads the mailbox.
    let instance = format!("127.0.0.1:{}", d.port("POP3S_PORT"));
    let (_, ok) = wait_for("the module's probe_success", 120, || {
        one(
            prom_port,
            &format!(r#"probe_success{{job="pop3_module",instance="{instance}"}}"#),
        )
    });
    assert_eq!(ok, 1.0);
    let (_, messages) = wait_for("mailbox messages", 40, || {
        one(
            prom_port,
            &format!(r#"probe_pop3_mailbox_messages{{instance="{instance}"}}"#),
        )
    });
    assert_eq!(messages, d.get("MSG_COUNT").parse::<f64>().unwrap());
    let (method, _) = wait_for("login method", 40, || {
        one(
            prom_port,
            r#"probe_pop3_login_method_info{instance="good"}"#,
        )
    });
    assert_eq!(method["method"], "apop", "the test Dovecot offers APOP");

    // The exporter's own metrics, scraped too; and a reload counted.
    let (status, _) = http(serve_port, "POST", "/-/reload", &[]);
    assert_eq!(status, 200);
    let (_, body) = http(serve_port, "GET", "/metrics", &[]);
    assert!(
        body.contains("pop3_probe_exporter_config_reloads_total{result=\"success\"} 1\n"),
        "{body}"
    );
    let (_, probes) = wait_for("the exporter's probe count", 120, || {
        one(
            prom_port,
            r#"pop3_probe_exporter_probes_total{result="success"} > 0"#,
        )
    });
    assert!(probes > 0.0);
    drop(serve);
}

#[test]
fn run_writes_a_textfile_promtool_accepts() {
    let d = dovecot();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let file = dir.path().join("pop3.prom");
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--metrics", "prometheus", "--metrics-file"])
        .arg(&file)
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .env("SERVE_TEST_PASSWORD", d.get("PASSWORD"))
        .output()
        .unwrap();
    // One monitor is down on purpose (expired certificate): exit 2.
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("probe_success{monitor=\"good\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("probe_success{monitor=\"expired\"} 0\n"),
        "{text}"
    );
    assert!(!text.contains(d.get("PASSWORD")));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let res = check.wait_with_output().unwrap();
    assert!(
        res.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    // No temporary file left next to it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
}

/// The scrape config and alert rules in docs/serve.md are what users copy:
/// promtool must accept them as they are.
#[test]
fn docs_scrape_config_and_rules_pass_promtool() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/serve.md"))
        .unwrap();
    let block = |heading: &str| {
        let at = doc.find(heading).unwrap_or_else(|| panic!("no {heading}"));
        let rest = &doc[at..];
        let start = rest.find("```yaml\n").unwrap() + "```yaml\n".len();
        let len = rest[start..].find("```").unwrap();
        rest[start..start + len].to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    for (heading, what, file) in [
        ("## Prometheus scrape config", "config", "prometheus.yml"),
        ("## Alert rules", "rules", "rules.yml"),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, block(heading)).unwrap();
        let out = Command::new("promtool")
            .args(["check", what])
            .arg(&path)
            .output()
            .expect("promtool (Debian package prometheus)");
        assert!(
            out.status.success(),
            "docs/serve.md {heading}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
