//! `pop3-probe report`, the real binary, on a history whose figures are
//! known: from local files written by the real metrics writer (JSON lines,
//! EMF, mixed, cut short), from CloudWatch in moto, and as HTML rendered by
//! headless Chromium.
//!
//! The history: monitor A probed 100 times a minute apart, down at probes
//! 10-12 (an outage of 3 minutes) and 50-54 (5 minutes), so 92% available;
//! its 92 response times are 1..=92 ms in a scrambled order, so the
//! nearest-rank percentiles are exactly p50 = 46 (⌈46⌉-th), p95 = 88
//! (⌈87.4⌉-th), p99 = 92 (⌈91.08⌉-th). Monitor B: always up, 20 probes
//! each of 10, 10.25, 10.5, 10.75, 11 ms: p50 10.5, p95 11, p99 11.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pop3_probe::local::{MetricsFormat, WriterMetrics};
use pop3_probe::ports::{Datum, MetricsSink, Unit};

const NS: &str = "Pop3Probe";
const MINUTE: i64 = 60_000;
/// 2025-05-01T00:00:00Z
const T0: i64 = 1_746_057_600_000;

fn is_down(i: i64) -> bool {
    (10..13).contains(&i) || (50..55).contains(&i)
}

/// One run's values per minute `i`, as `pipeline::metrics` makes them.
fn run_data(t0: i64, i: i64, a: &str, b: &str) -> Vec<Datum> {
    let at = t0 + i * MINUTE;
    let d = |name: &str, monitor: Option<&str>, value: f64, unit: Unit| Datum {
        name: name.into(),
        monitor: monitor.map(str::to_string),
        shard: None,
        value,
        unit,
        timestamp_ms: at,
        vantage: None,
    };
    let mut out = Vec::new();
    out.push(d(
        "Availability",
        Some(a),
        if is_down(i) { 0.0 } else { 1.0 },
        Unit::None,
    ));
    if !is_down(i) {
        // The k-th up probe answers in ((37 k) mod 92) + 1 ms: 1..=92, scrambled.
        let k = (0..i).filter(|j| !is_down(*j)).count() as f64;
        out.push(d(
            "ResponseTime",
            Some(a),
            (37.0 * k) % 92.0 + 1.0,
            Unit::Milliseconds,
        ));
        out.push(d("CertificateDaysRemaining", Some(a), 40.0, Unit::None));
    }
    out.push(d("Availability", Some(b), 1.0, Unit::None));
    out.push(d(
        "ResponseTime",
        Some(b),
        10.0 + (i % 5) as f64 * 0.25,
        Unit::Milliseconds,
    ));
    out.push(d("ProbeRuns", None, 1.0, Unit::Count));
    out.push(d(
        "MonitorsDown",
        None,
        if is_down(i) { 1.0 } else { 0.0 },
        Unit::Count,
    ));
    out
}

/// Append runs `range` to `path` with the metrics writer `run` uses.
async fn append_runs(
    path: &Path,
    format: MetricsFormat,
    range: std::ops::Range<i64>,
    t0: i64,
    a: &str,
    b: &str,
) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let sink = WriterMetrics::new(Box::new(file), format);
    for i in range {
        let report = sink.publish(NS, run_data(t0, i, a, b)).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
}

fn append_text(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn rfc3339(ms: i64) -> String {
    pop3_probe::clock::rfc3339_ms(ms)
}

fn report(args: &[&str]) -> Output {
    report_with_env(args, &[])
}

fn report_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pop3-probe"));
    cmd.arg("report").args(args).stdin(Stdio::null());
    for var in [
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL_CLOUDWATCH",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(o: &Output) -> String {
    let (stdout, stderr) = text(o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

fn fails(o: &Output) -> String {
    let (stdout, stderr) = text(o);
    assert_eq!(
        o.status.code(),
        Some(3),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stderr
}

/// CSV rows by monitor, each a column → value map (RFC 4180, CRLF).
fn csv_rows(csv: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert!(
        !csv.contains('\n') || csv.matches('\n').count() == lines.len(),
        "not CRLF:\n{csv}"
    );
    let header: Vec<&str> = lines[0].split(',').collect();
    lines[1..]
        .iter()
        .map(|l| {
            let row: BTreeMap<String, String> = header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            assert_eq!(row.len(), header.len(), "{l}");
            (row["monitor"].clone(), row)
        })
        .collect()
}

/// The figures the constructed history must give.
fn assert_known_figures(csv: &str, a: &str, b: &str, t0: i64) {
    let rows = csv_rows(csv);
    assert_eq!(rows.len(), 2, "{csv}");
    let expect_a = [
        ("probes", "100".to_string()),
        ("availability_percent", "92.0000".into()),
        ("outages", "2".into()),
        ("downtime_seconds", "480".into()),
        ("longest_outage_seconds", "300".into()),
        ("ongoing_outage", "false".into()),
        (
            "outage_starts",
            format!(
                "{};{}",
                rfc3339(t0 + 10 * MINUTE),
                rfc3339(t0 + 50 * MINUTE)
            ),
        ),
        ("outage_seconds", "180;300".into()),
        ("response_samples", "92".into()),
        ("p50_ms", "46".into()),
        ("p95_ms", "88".into()),
        ("p99_ms", "92".into()),
    ];
    for (col, want) in expect_a {
        assert_eq!(rows[a][col], want, "{a} {col}\n{csv}");
    }
    let expect_b = [
        ("probes", "100"),
        ("availability_percent", "100.0000"),
        ("outages", "0"),
        ("downtime_seconds", "0"),
        ("longest_outage_seconds", ""),
        ("ongoing_outage", "false"),
        ("outage_seconds", ""),
        ("response_samples", "100"),
        ("p50_ms", "10.5"),
        ("p95_ms", "11"),
        ("p99_ms", "11"),
    ];
    for (col, want) in expect_b {
        assert_eq!(rows[b][col], want, "{b} {col}\n{csv}");
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn range_args(t0: i64) -> [String; 4] {
    [
        "--from".into(),
        rfc3339(t0),
        "--to".into(),
        rfc3339(t0 + 100 * MINUTE),
    ]
}

#[tokio::test]
async fn local_json_lines_give_the_known_figures() {
    let dir = tmp();
    let file = dir.path().join("metrics.jsonl");
    append_runs(&file, MetricsFormat::JsonLines, 0..100, T0, "alpha", "beta").await;
    // Runs outside the range do not count.
    append_runs(
        &file,
        MetricsFormat::JsonLines,
        100..110,
        T0,
        "alpha",
        "beta",
    )
    .await;
    let r = range_args(T0);
    let mut args: Vec<&str> = vec!["--history", file.to_str().unwrap(), "--format", "csv"];
    args.extend(r.iter().map(String::as_str));
    let out = report(&args);
    let (_, stderr) = text(&out);
    assert_known_figures(&ok(&out), "alpha", "beta", T0);
    assert!(stderr.is_empty(), "{stderr}");

    // The table says the same, with the outages listed.
    let mut table_args = vec!["--history", file.to_str().unwrap()];
    table_args.extend(r.iter().map(String::as_str));
    let table = ok(&report(&table_args));
    assert!(
        table.contains(&format!("from history file {}", file.display())),
        "{table}"
    );
    let alpha = table.lines().find(|l| l.starts_with("alpha ")).unwrap();
    let cols: Vec<&str> = alpha.split_whitespace().collect();
    assert_eq!(
        cols,
        ["alpha", "100", "92.000%", "2", "8m", "5m", "46.0", "88.0", "92.0"],
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "{} to {}  3m (3 probes down)",
            rfc3339(T0 + 10 * MINUTE),
            rfc3339(T0 + 13 * MINUTE)
        )),
        "{table}"
    );
}

#[tokio::test]
async fn emf_and_mixed_files_give_the_same_figures() {
    let dir = tmp();
    let emf = dir.path().join("metrics.emf.log");
    append_runs(&emf, MetricsFormat::Emf, 0..100, T0, "alpha", "beta").await;
    let r = range_args(T0);
    let mut args: Vec<&str> = vec!["--history", emf.to_str().unwrap(), "--format", "csv"];
    args.extend(r.iter().map(String::as_str));
    assert_known_figures(&ok(&report(&args)), "alpha", "beta", T0);

    // A file that switched format half-way, and a history split in two files.
    let mixed = dir.path().join("mixed.log");
    append_runs(&mixed, MetricsFormat::JsonLines, 0..40, T0, "alpha", "beta").await;
    append_runs(&mixed, MetricsFormat::Emf, 40..70, T0, "alpha", "beta").await;
    let rest = dir.path().join("rest.jsonl");
    append_runs(
        &rest,
        MetricsFormat::JsonLines,
        70..100,
        T0,
        "alpha",
        "beta",
    )
    .await;
    let mut args: Vec<&str> = vec![
        "--history",
        mixed.to_str().unwrap(),
        "--history",
        rest.to_str().unwrap(),
        "--output",
    ];
    let out_file = dir.path().join("r.csv");
    args.push(out_file.to_str().unwrap());
    args.extend(r.iter().map(String::as_str));
    let stdout = ok(&report(&args));
    assert!(stdout.is_empty(), "{stdout}");
    assert_known_figures(
        &std::fs::read_to_string(&out_file).unwrap(),
        "alpha",
        "beta",
        T0,
    );
}

#[tokio::test]
async fn a_run_killed_mid_write_costs_one_line_not_the_report() {
    let dir = tmp();
    let file = dir.path().join("metrics.jsonl");
    append_runs(&file, MetricsFormat::JsonLines, 0..60, T0, "alpha", "beta").await;
    // Killed mid-line; the next run appends right after the cut.
    append_text(&file, "{\"namespace\":\"Pop3Probe\",\"metric\":\"Availabi");
    append_runs(
        &file,
        MetricsFormat::JsonLines,
        60..100,
        T0,
        "alpha",
        "beta",
    )
    .await;
    let glued = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l.contains("Availabi{"))
        .unwrap()
        + 1;
    // And the last run killed too: a cut last line, no newline.
    append_text(&file, "{\"_aws\":{\"Timestamp\":17460");
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();

    let r = range_args(T0);
    let mut args: Vec<&str> = vec!["--history", file.to_str().unwrap(), "--format", "csv"];
    args.extend(r.iter().map(String::as_str));
    let out = report(&args);
    let csv = ok(&out);
    let (_, stderr) = text(&out);
    // The glued line held one Availability of alpha for minute 60, which is
    // lost with it; everything else is known.
    let rows = csv_rows(&csv);
    assert_eq!(rows["alpha"]["probes"], "99", "{csv}");
    assert_eq!(rows["alpha"]["outage_seconds"], "180;300", "{csv}");
    assert_eq!(rows["beta"]["probes"], "100", "{csv}");
    let name = file.display();
    assert!(
        stderr.contains(&format!("skipped 2 of {lines} lines")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{name}:{glued}: not JSON")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{name}:{lines}: cut short at the end of the file")),
        "{stderr}"
    );

    // --strict refuses, naming the first bad line.
    args.push("--strict");
    let stderr = fails(&report(&args));
    assert!(
        stderr.contains(&format!("--history: {name}:{glued}: not JSON")),
        "{stderr}"
    );
}

#[test]
fn bad_input_gets_an_error_that_names_it() {
    let dir = tmp();
    let file = dir.path().join("metrics.jsonl");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(append_runs(
        &file,
        MetricsFormat::JsonLines,
        0..100,
        T0,
        "alpha",
        "beta",
    ));
    let f = file.to_str().unwrap();
    let from = rfc3339(T0);
    let to = rfc3339(T0 + 100 * MINUTE);

    let e = fails(&report(&["--history", f, "--from", &to, "--to", &from]));
    assert!(
        e.contains(&format!("--from {to} is not before --to {from}")),
        "{e}"
    );

    let e = fails(&report(&["--history", f, "--from", "yesterday"]));
    assert!(
        e.contains("--from \"yesterday\" is neither an RFC 3339 time"),
        "{e}"
    );

    // A range with no data says where the data is.
    let e = fails(&report(&["--history", f, "--from", "2h"]));
    assert!(
        e.contains("no data: nothing for any monitor in namespace Pop3Probe"),
        "{e}"
    );
    assert!(
        e.contains(&format!("spans {from} to {}", rfc3339(T0 + 99 * MINUTE))),
        "{e}"
    );

    let e = fails(&report(&[
        "--history",
        f,
        "--from",
        &from,
        "--to",
        &to,
        "--namespace",
        "Other",
    ]));
    assert!(e.contains("namespace Other"), "{e}");
    assert!(
        e.contains("other namespaces there: Pop3Probe (choose with --namespace)"),
        "{e}"
    );

    let e = fails(&report(&[
        "--history",
        f,
        "--from",
        &from,
        "--to",
        &to,
        "--monitor",
        "gamma",
    ]));
    assert!(e.contains("monitor(s) gamma"), "{e}");
    assert!(e.contains("monitors with data: alpha, beta"), "{e}");

    // A monitor named but silent is a row saying so, with a note.
    let out = report(&[
        "--history",
        f,
        "--from",
        &from,
        "--to",
        &to,
        "--monitor",
        "gamma",
        "--monitor",
        "beta",
        "--format",
        "csv",
    ]);
    let rows = csv_rows(&ok(&out));
    assert_eq!(rows["gamma"]["probes"], "0");
    assert_eq!(rows["gamma"]["availability_percent"], "");
    assert_eq!(rows["beta"]["availability_percent"], "100.0000");
    assert!(text(&out).1.contains("note: no data for gamma"));

    let missing = dir.path().join("nope.jsonl");
    let e = fails(&report(&[
        "--history",
        missing.to_str().unwrap(),
        "--from",
        "1h",
    ]));
    assert!(
        e.contains(&format!("--history: cannot read {}", missing.display())),
        "{e}"
    );

    let config = dir.path().join("monitors.json");
    std::fs::write(&config, "{\n  \"monitors\": []\n}\n").unwrap();
    let e = fails(&report(&[
        "--history",
        config.to_str().unwrap(),
        "--from",
        "1h",
    ]));
    assert!(
        e.contains(&format!("--history: {} holds no metrics", config.display())),
        "{e}"
    );

    let e = fails(&report(&["--history", f, "--from", "1h", "--period", "60"]));
    assert!(e.contains("--period") && e.contains("--history"), "{e}");
    let e = fails(&report(&["--source", "local", "--from", "1h"]));
    assert!(e.contains("--source local needs --history FILE"), "{e}");
    let e = fails(&report(&[
        "--from",
        "1h",
        "--period",
        "90",
        "--region",
        "us-east-1",
    ]));
    assert!(
        e.contains("--period: 90 is not a multiple of 60 seconds"),
        "{e}"
    );
    let e = fails(&report(&[
        "--from",
        "20d",
        "--period",
        "60",
        "--region",
        "us-east-1",
    ]));
    assert!(e.contains("use a multiple of 300"), "{e}");
}

#[test]
fn namespace_comes_from_the_config() {
    let dir = tmp();
    let file = dir.path().join("metrics.jsonl");
    std::fs::write(
        &file,
        format!("{{\"namespace\":\"Mail/Prod\",\"metric\":\"Availability\",\"monitor\":\"m\",\"value\":1,\"unit\":\"None\",\"timestamp_ms\":{T0}}}\n"),
    )
    .unwrap();
    let config = dir.path().join("monitors.json");
    std::fs::write(
        &config,
        r#"{"run": {"namespace": "Mail/Prod"}, "monitors": []}"#,
    )
    .unwrap();
    let (from, to) = (rfc3339(T0), rfc3339(T0 + MINUTE));
    let f = file.to_str().unwrap();
    let out = ok(&report(&[
        "--history",
        f,
        "--from",
        &from,
        "--to",
        &to,
        "--config",
        config.to_str().unwrap(),
        "--format",
        "csv",
    ]));
    assert_eq!(csv_rows(&out)["m"]["availability_percent"], "100.0000");
    let e = fails(&report(&["--history", f, "--from", &from, "--to", &to]));
    assert!(e.contains("other namespaces there: Mail/Prod"), "{e}");
}

/// The whole path: `pop3-probe run` probes the real Dovecot and appends to
/// its metrics file, run after run; `report` reads what it wrote.
#[test]
fn report_reads_what_run_appends() {
    let d = common::dovecot::dovecot();
    let dir = tmp();
    let config = dir.path().join("monitors.json");
    let monitors = serde_json::json!({
        "version": 1,
        "run": { "namespace": "Pop3Probe/E2E", "retries": 0 },
        "defaults": { "ca_file": d.get("CA_PEM"), "tls_server_name": "localhost", "tls": "implicit",
                      "credentials": "probe", "failures_before_alert": 1 },
        "credentials": { "probe": { "username": d.get("USER"), "password_env": "TEST_POP3_PASSWORD" } },
        "monitors": [
            { "name": "good", "host": "127.0.0.1", "port": d.port("POP3S_PORT") },
            { "name": "expired", "host": "127.0.0.1", "port": d.port("POP3S_EXPIRED_PORT") }
        ]
    });
    std::fs::write(&config, monitors.to_string()).unwrap();
    let history = dir.path().join("metrics.log");
    let started = pop3_probe::clock::now_ms();
    for _ in 0..3 {
        let out = Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--state")
            .arg(dir.path().join("state.json"))
            .args(["--metrics", "emf", "--metrics-file"])
            .arg(&history)
            .env("TEST_POP3_PASSWORD", d.get("PASSWORD"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    }
    let from = rfc3339(started - 2000);
    let out = report(&[
        "--history",
        history.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--from",
        &from,
        "--format",
        "csv",
    ]);
    let rows = csv_rows(&ok(&out));
    let good = &rows["good"];
    assert_eq!(
        (
            good["probes"].as_str(),
            good["availability_percent"].as_str(),
            good["outages"].as_str()
        ),
        ("3", "100.0000", "0")
    );
    assert_eq!(good["response_samples"], "3");
    assert!(good["p50_ms"].parse::<f64>().unwrap() > 0.0, "{good:?}");
    let expired = &rows["expired"];
    assert_eq!(
        (
            expired["probes"].as_str(),
            expired["availability_percent"].as_str(),
            expired["outages"].as_str()
        ),
        ("3", "0.0000", "1")
    );
    assert_eq!(expired["ongoing_outage"], "true");
    assert_eq!(expired["response_samples"], "0");
    assert_eq!(expired["p50_ms"], "");
}

// ------------------------------------------------------------- CloudWatch

mod cloudwatch {
    use super::*;
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    use common::moto::{moto, sdk_config, unique, REGION};

    fn datum(d: &Datum) -> MetricDatum {
        let unit = match d.unit {
            Unit::Milliseconds => StandardUnit::Milliseconds,
            Unit::Count => StandardUnit::Count,
            _ => StandardUnit::None,
        };
        let mut b = MetricDatum::builder()
            .metric_name(&d.name)
            .value(d.value)
            .unit(unit)
            .timestamp(DateTime::from_millis(d.timestamp_ms));
        if let Some(m) = &d.monitor {
            b = b.dimensions(Dimension::builder().name("Monitor").value(m).build());
        }
        b.build()
    }

    /// The known history, put into moto with explicit timestamps.
    async fn put_history(ns: &str, t0: i64, a: &str, b: &str) {
        let cw = aws_sdk_cloudwatch::Client::new(&sdk_config().await);
        let data: Vec<MetricDatum> = (0..100)
            .flat_map(|i| run_data(t0, i, a, b))
            .map(|d| datum(&d))
            .collect();
        for chunk in data.chunks(500) {
            cw.put_metric_data()
                .namespace(ns)
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await
                .expect("PutMetricData");
        }
    }

    fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    fn run(args: &[&str], endpoint: &str) -> Output {
        let env = aws_env(endpoint);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        report_with_env(args, &env)
    }

    /// Three hours ago, on a ten-minute boundary: recent enough for
    /// one-minute periods, and whole periods of 2 or 5 minutes fit the
    /// range exactly (the report counts only periods inside the range).
    fn recent_t0() -> i64 {
        let now = pop3_probe::clock::now_ms();
        now - now.rem_euclid(10 * MINUTE) - 180 * MINUTE
    }

    #[tokio::test]
    async fn cloudwatch_gives_the_known_figures() {
        let ns = unique("Report");
        // moto matches a query's dimensions without its namespace: names
        // no other test uses keep the data apart.
        let (a, b) = (unique("alpha"), unique("beta"));
        let t0 = recent_t0();
        put_history(&ns, t0, &a, &b).await;
        let r = range_args(t0);
        let m = moto();

        // Every monitor found by ListMetrics.
        let mut args = vec!["--namespace", ns.as_str(), "--format", "csv"];
        args.extend(r.iter().map(String::as_str));
        let out = run(&args, &m.endpoint);
        let csv = ok(&out);
        assert_known_figures(&csv, &a, &b, t0);
        assert!(text(&out).1.is_empty(), "{}", text(&out).1);

        // Named monitors, a 60 s period given.
        let mut args = vec![
            "--namespace",
            ns.as_str(),
            "--format",
            "csv",
            "--monitor",
            a.as_str(),
            "--monitor",
            b.as_str(),
            "--period",
            "60",
            "--source",
            "cloudwatch",
        ];
        args.extend(r.iter().map(String::as_str));
        assert_known_figures(&ok(&run(&args, &m.endpoint)), &a, &b, t0);

        // The table names the source.
        let mut args = vec!["--namespace", ns.as_str()];
        args.extend(r.iter().map(String::as_str));
        let table = ok(&run(&args, &m.endpoint));
        assert!(
            table.contains(&format!(
                "namespace {ns}, from CloudWatch in {REGION} (period 60 s)"
            )),
            "{table}"
        );
    }

    #[tokio::test]
    async fn two_probes_per_period_keep_availability_exact_and_say_so() {
        let ns = unique("Report");
        let (a, b) = (unique("alpha"), unique("beta"));
        let t0 = recent_t0();
        put_history(&ns, t0, &a, &b).await;
        let r = range_args(t0);
        let mut args = vec![
            "--namespace",
            ns.as_str(),
            "--format",
            "csv",
            "--period",
            "2m",
        ];
        args.extend(r.iter().map(String::as_str));
        let out = run(&args, &moto().endpoint);
        let rows = csv_rows(&ok(&out));
        // Weighted by SampleCount: still 92 of 100 probes up.
        assert_eq!(rows[&a]["probes"], "100");
        assert_eq!(rows[&a]["availability_percent"], "92.0000");
        assert_eq!(rows[&b]["availability_percent"], "100.0000");
        // Minutes 10-12 down: period 10-11 is down, 12-13 half up.
        assert_eq!(rows[&a]["outages"], "2");
        let stderr = text(&out).1;
        assert!(
            stderr.contains("periods of 120 s held more than one probe"),
            "{stderr}"
        );
    }

    #[tokio::test]
    async fn cloudwatch_errors_name_the_call_and_the_namespace() {
        let ns = unique("Empty");
        let m = moto();
        let e = fails(&run(&["--namespace", &ns, "--from", "1h"], &m.endpoint));
        assert!(
            e.contains(&format!(
                "no Availability metric in namespace {ns} in CloudWatch in {REGION}"
            )),
            "{e}"
        );

        let e = fails(&run(
            &[
                "--namespace",
                &ns,
                "--from",
                "1h",
                "--monitor",
                "nobody-here",
            ],
            &m.endpoint,
        ));
        assert!(
            e.contains(&format!(
                "nothing for monitor(s) nobody-here in namespace {ns}"
            )),
            "{e}"
        );

        // Nothing listens there: an error, soon (the SDK's timeouts and retries).
        let closed = format!("http://127.0.0.1:{}", common::moto::free_port());
        let started = Instant::now();
        let e = fails(&run(&["--from", "1h", "--monitor", "m"], &closed));
        assert!(e.contains("CloudWatch GetMetricData: "), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(170),
            "{:?}",
            started.elapsed()
        );
    }
}

// ------------------------------------------------------ HTML in Chromium

const CHROMIUM: &str = "/usr/bin/chromium";

/// Run headless Chromium, killed after 60 s (with its renderer and GPU
/// processes: it runs in a process group of its own); its stdout.
fn chromium(args: &[&str], profile: &Path) -> String {
    use std::os::unix::process::CommandExt as _;
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run installs it); this test never skips"
    );
    let out_file = profile.join("stdout");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {args:?}: {status}");
            return std::fs::read_to_string(&out_file).unwrap();
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rgb_pixels(png_path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::io::BufReader::new(std::fs::File::open(png_path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).expect("a decodable PNG");
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

fn hex(c: &str) -> [u8; 3] {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

#[tokio::test]
async fn the_html_report_renders_in_chromium_with_its_charts() {
    use pop3_probe::report::html::{DOWN, LINE, P95, UP};
    let dir = tmp();
    let file = dir.path().join("metrics.jsonl");
    append_runs(
        &file,
        MetricsFormat::JsonLines,
        0..100,
        T0,
        "alpha",
        "<script>alert(1)</script>",
    )
    .await;
    // Kept for people to look at: target/tmp/report.html and report.png.
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let page = keep.join("report.html");
    let shot = keep.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let r = range_args(T0);
    let mut args = vec![
        "--history",
        file.to_str().unwrap(),
        "--output",
        page.to_str().unwrap(),
    ];
    args.extend(r.iter().map(String::as_str));
    let out = report(&args);
    ok(&out);
    assert!(text(&out)
        .1
        .contains(&format!("wrote {} (2 monitors)", page.display())));
    let source = std::fs::read_to_string(&page).unwrap();
    assert!(
        !source.contains("<script>"),
        "the monitor's name must come out escaped"
    );

    let url = format!("file://{}", page.display());
    let profile = tmp();
    chromium(
        &[
            "--window-size=1280,2000",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
        profile.path(),
    );
    eprintln!("screenshot of the HTML report: {}", shot.display());
    let (w, h, pixels) = rgb_pixels(&shot);
    assert_eq!((w, h), (1280, 2000));
    let distinct: std::collections::HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(
        distinct.len() > 100,
        "{} colours: a blank page?",
        distinct.len()
    );
    let count = |c: &str| pixels.iter().filter(|p| **p == hex(c)).count();
    // Two availability strips 880 px wide and 28 high, mostly green; two
    // outages of alpha in red; two response-time lines; two p95 lines.
    assert!(count(UP) > 2 * 800 * 20, "green (up): {}", count(UP));
    assert!(count(DOWN) > 2 * 28, "red (outages): {}", count(DOWN));
    assert!(count(LINE) > 500, "blue (response time): {}", count(LINE));
    assert!(count(P95) > 200, "orange (p95): {}", count(P95));

    // The DOM as Chromium parsed it: two charts per monitor, no script.
    let profile = tmp();
    let dom = chromium(&["--dump-dom", &url], profile.path());
    assert_eq!(dom.matches("<svg ").count(), 4, "{dom}");
    assert_eq!(dom.matches("<svg class=\"chart availability\"").count(), 2);
    assert_eq!(dom.matches("<svg class=\"chart response\"").count(), 2);
    // Alpha's line is cut where its outages left no response time.
    assert_eq!(dom.matches("<polyline ").count(), 4);
    assert_eq!(dom.matches("<rect class=\"outage\"").count(), 2);
    assert!(!dom.contains("<script"), "{dom}");
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(dom.contains("92.000%") && dom.contains("100.000%"));
}

/// Issue 11.4/11.5: a history can hold any monitor name (the metrics file
/// is anyone's to write). A name over 65,535 characters made the table's
/// column width panic; an `ESC ]0;` retitled the terminal; `=...` ran as a
/// formula in the spreadsheet that opened the CSV.
#[tokio::test]
async fn hostile_monitor_names_in_the_history_are_harmless() {
    let dir = tmp();
    let file = dir.path().join("metrics.jsonl");
    let long = "x".repeat(70_000);
    let escape = "mail\u{1b}]0;owned\u{7}\r\nFAKE 100 100.000%";
    let formula = "=HYPERLINK(\"http://evil.example\",\"click\")";
    append_runs(&file, MetricsFormat::JsonLines, 0..5, T0, &long, escape).await;
    append_runs(&file, MetricsFormat::JsonLines, 0..5, T0, formula, "-2+3").await;
    let r = range_args(T0);
    let mut args: Vec<&str> = vec!["--history", file.to_str().unwrap()];
    args.extend(r.iter().map(String::as_str));
    let out = report(&args);
    assert_ne!(out.status.code(), Some(101), "report panicked");
    let table = ok(&out);
    assert!(
        !table.contains(['\u{1b}', '\u{7}', '\r']),
        "{:?}",
        &table[..400]
    );
    assert!(!table.lines().any(|l| l.starts_with("FAKE")));
    assert!(table.lines().all(|l| l.chars().count() < 300));

    args.extend(["--format", "csv"]);
    let csv = ok(&report(&args));
    for line in csv.split_terminator("\r\n").skip(1) {
        let first = line.trim_start_matches('"');
        assert!(
            !first.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a cell starts a formula: {:?}",
            &line[..line.len().min(120)]
        );
    }
    assert!(csv.contains("\"'=HYPERLINK("), "{csv:.300}");
    assert!(csv.contains("'-2+3,"), "{csv:.300}");
}
