//! The run pipeline with in-memory sinks: what reaches metrics, alerts and
//! state, mailbox locking, deadlines, retries of failed deliveries.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake::{self, line, Reply};
use common::mem::{MemAlerts, MemMetrics, MemState};
use pop3_probe::alert::AlertKind;
use pop3_probe::config::Config;
use pop3_probe::local::FileState;
use pop3_probe::metrics;
use pop3_probe::pipeline::{self, Shard};
use pop3_probe::probe::{FailureKind, Phase, Status};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;

async fn config(monitors: &str, extra_run: &str) -> Config {
    let text = format!(
        r#"{{"run": {{"retries": 0, "deadline_ms": 10000 {extra_run}}},
             "credentials": {{"a": {{"username": "alice", "password": "pw"}},
                              "b": {{"username": "bob", "password": "pw"}}}},
             "defaults": {{"tls": "none", "allow_plaintext_password": true, "auth": "user",
                          "credentials": "a", "failures_before_alert": 1, "timeout_ms": 3000,
                          "warning_ms": 2000, "critical_ms": 2500}},
             "monitors": [{monitors}]}}"#
    );
    let c = pop3_probe::config::load(&text, &common::NoSecrets)
        .await
        .unwrap();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    c
}

async fn run(c: &Config, m: &MemMetrics, a: &MemAlerts, s: &MemState) -> pipeline::RunSummary {
    let deadline = Instant::now() + c.run.deadline;
    pipeline::execute(c, "Test", Shard::default(), deadline, m, a, s).await
}

/// A POP3 server that holds each login for a while and records the most
/// sessions per user it saw at once.
async fn lock_watching_server() -> (u16, Arc<Mutex<HashMap<String, (usize, usize)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<HashMap<String, (usize, usize)>>> = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"+OK hi\r\n").await.unwrap();
                let mut user = None;
                let mut buf = String::new();
                while r.read_line(&mut buf).await.unwrap_or(0) > 0 {
                    let cmd = buf.trim_end().to_string();
                    buf.clear();
                    let reply: &[u8] = if let Some(u) = cmd.strip_prefix("USER ") {
                        let mut s = seen.lock().unwrap();
                        // Per user, and "*" for all sessions together.
                        for key in [u, "*"] {
                            let e = s.entry(key.to_string()).or_default();
                            e.0 += 1;
                            e.1 = e.1.max(e.0);
                        }
                        user = Some(u.to_string());
                        b"+OK\r\n"
                    } else if cmd == "CAPA" {
                        b"+OK\r\nUSER\r\n.\r\n"
                    } else if cmd == "STAT" {
                        // Hold the "maildrop lock" long enough to overlap.
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        b"+OK 0 0\r\n"
                    } else if cmd == "QUIT" {
                        w.write_all(b"+OK\r\n").await.ok();
                        break;
                    } else {
                        b"+OK\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
                if let Some(u) = user {
                    let mut s = seen.lock().unwrap();
                    s.get_mut(&u).unwrap().0 -= 1;
                    s.get_mut("*").unwrap().0 -= 1;
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn monitors_sharing_a_mailbox_never_log_in_at_once() {
    let (port, seen) = lock_watching_server().await;
    let monitors: Vec<String> = (0..4)
        .map(|i| format!(r#"{{"name": "alice-{i}", "host": "127.0.0.1", "port": {port}}}"#))
        .chain((0..4).map(|i| {
            format!(
                r#"{{"name": "bob-{i}", "host": "127.0.0.1", "port": {port}, "credentials": "b"}}"#
            )
        }))
        .chain(std::iter::once(format!(
            r#"{{"name": "alice-5", "host": "127.0.0.1", "port": {port}}}"#
        )))
        .collect();
    let c = config(&monitors.join(","), "").await;
    let (m, a, s) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );
    let summary = run(&c, &m, &a, &s).await;
    assert_eq!(summary.up, 9, "{:?}", summary.failures);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen["alice"].1, 1,
        "alice's mailbox was opened twice at once"
    );
    assert_eq!(seen["bob"].1, 1);
    // Different mailboxes did overlap: the server can see concurrency, so
    // the two assertions above are not vacuous.
    assert!(seen["*"].1 >= 2, "alice and bob never overlapped: {seen:?}");
}

#[tokio::test]
async fn one_alert_per_transition_and_a_failed_send_is_retried() {
    let good = fake::spawn(line("+OK hi"), fake::polite(&[])).await;
    let flaky_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = flaky_up.clone();
    let flaky = fake::spawn(line("+OK hi"), move |cmd: &str| {
        if cmd.starts_with("PASS") && !flag.load(Ordering::SeqCst) {
            line("-ERR [SYS/TEMP] backend down")
        } else {
            fake::polite(&[])(cmd)
        }
    })
    .await;
    let c = config(
        &format!(
            r#"{{"name": "good", "host": "127.0.0.1", "port": {}}},
               {{"name": "flaky", "host": "127.0.0.1", "port": {}, "failures_before_alert": 2}}"#,
            good.port(),
            flaky.port()
        ),
        "",
    )
    .await;
    let (m, a, s) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );

    // Run 1: first failure, below the threshold.
    let r = run(&c, &m, &a, &s).await;
    assert_eq!((r.up, r.down), (1, 1));
    assert!(a.kinds().is_empty());
    // Run 2: threshold reached, but SNS refuses: nothing recorded as sent.
    a.fail_next.store(1, Ordering::SeqCst);
    let r = run(&c, &m, &a, &s).await;
    assert_eq!(r.alerts_failed.len(), 1);
    assert!(a.kinds().is_empty());
    assert_eq!(
        s.rows.lock().unwrap()["flaky"].status,
        Status::Up,
        "state moved without the alert"
    );
    // Run 3: the alert goes out now.
    let r = run(&c, &m, &a, &s).await;
    assert_eq!(r.alerts_sent, ["flaky: down"]);
    assert_eq!(a.kinds(), [("flaky".to_string(), AlertKind::Down)]);
    let alert = a.got.lock().unwrap()[0].clone();
    assert_eq!(alert.cause, Some(FailureKind::AuthTemporaryFailure));
    // Run 4: still down, no repeat.
    run(&c, &m, &a, &s).await;
    assert_eq!(a.kinds().len(), 1);
    // Run 5: recovered, once.
    flaky_up.store(true, Ordering::SeqCst);
    run(&c, &m, &a, &s).await;
    run(&c, &m, &a, &s).await;
    assert_eq!(
        a.kinds(),
        [
            ("flaky".to_string(), AlertKind::Down),
            ("flaky".to_string(), AlertKind::Recovered)
        ]
    );
    assert_eq!(s.rows.lock().unwrap()["flaky"].status, Status::Up);
}

#[tokio::test]
async fn a_steady_fleet_costs_no_state_writes() {
    let good = fake::spawn(line("+OK hi"), fake::polite(&[])).await;
    let c = config(
        &format!(
            r#"{{"name": "good", "host": "127.0.0.1", "port": {}}}"#,
            good.port()
        ),
        "",
    )
    .await;
    let (m, a, s) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );
    for _ in 0..5 {
        run(&c, &m, &a, &s).await;
    }
    assert_eq!(
        s.saves.load(Ordering::SeqCst),
        1,
        "only the first sighting is written"
    );
}

#[tokio::test]
async fn unpublished_metrics_are_kept_and_sent_next_run() {
    let good = fake::spawn(line("+OK hi"), fake::polite(&[])).await;
    let c = config(
        &format!(
            r#"{{"name": "good", "host": "127.0.0.1", "port": {}}}"#,
            good.port()
        ),
        "",
    )
    .await;
    let (m, a, s) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );
    m.fail_next.store(1, Ordering::SeqCst);
    let r = run(&c, &m, &a, &s).await;
    assert_eq!(r.metrics_published, 0);
    let kept = r.metrics_unpublished;
    assert!(kept >= 6, "{kept}");
    assert_eq!(s.pending_of(0).len(), kept);
    let r = run(&c, &m, &a, &s).await;
    assert_eq!(
        r.metrics_published,
        2 * kept,
        "old values go out with the new"
    );
    assert!(s.pending_of(0).is_empty());
    let runs = m
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.name == "ProbeRuns")
        .count();
    assert_eq!(runs, 2);
}

#[tokio::test]
async fn hanging_servers_do_not_hold_up_the_run() {
    let hang = fake::spawn(Reply::Hang, fake::polite(&[])).await;
    let good = fake::spawn(line("+OK hi"), fake::polite(&[])).await;
    let mut monitors: Vec<String> = (0..6)
        .map(|i| format!(r#"{{"name": "hung-{i}", "host": "127.0.0.1", "port": {}, "auth": "none", "timeout_ms": 60000, "critical_ms": 9000}}"#, hang.port()))
        .collect();
    monitors.push(format!(
        r#"{{"name": "good", "host": "127.0.0.1", "port": {}}}"#,
        good.port()
    ));
    let c = config(
        &monitors.join(","),
        r#", "deadline_ms": 60000, "concurrency": 3"#,
    )
    .await;
    let (m, a, s) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );
    let started = Instant::now();
    let deadline = started + Duration::from_millis(1500);
    let r = pipeline::execute(&c, "Test", Shard::default(), deadline, &m, &a, &s).await;
    // Every hung monitor was started (3 at a time) and cut at the deadline;
    // the run ends right after it, with everything published.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let hung: Vec<_> = r
        .results
        .iter()
        .filter(|x| x.monitor.starts_with("hung"))
        .collect();
    assert_eq!(hung.len() + r.skipped.len(), 6);
    for h in &hung {
        assert_eq!(
            (h.failure, h.failed_phase),
            (Some(FailureKind::Timeout), Some(Phase::Greeting))
        );
    }
    assert!(r
        .results
        .iter()
        .any(|x| x.monitor == "good" && x.status == Status::Up));
    let got = m.got.lock().unwrap();
    assert!(got.iter().any(|d| d.name == "Availability"
        && d.monitor.as_deref() == Some("good")
        && d.value == 1.0));
    assert_eq!(r.metrics_unpublished, 0);
}

#[tokio::test]
async fn shards_split_the_fleet_without_overlap() {
    let good = fake::spawn(line("+OK hi"), fake::polite(&[])).await;
    let monitors: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"name": "m{i}", "host": "127.0.0.{}", "port": {}, "auth": "none"}}"#,
                i + 1,
                good.port()
            )
        })
        .collect();
    let c = config(&monitors.join(","), "").await;
    let mut all = Vec::new();
    for shard in 0..3 {
        let (m, a, s) = (
            MemMetrics::default(),
            MemAlerts::default(),
            MemState::default(),
        );
        let r = pipeline::execute(
            &c,
            "T",
            Shard { shard, shards: 3 },
            Instant::now() + Duration::from_secs(10),
            &m,
            &a,
            &s,
        )
        .await;
        assert!(r.probed > 0, "shard {shard} is empty");
        all.extend(r.results.into_iter().map(|x| x.monitor));
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 20);
    assert!(Shard {
        shard: 3,
        shards: 3
    }
    .validate()
    .is_err());
}

#[tokio::test]
async fn default_metrics_are_few_and_detailed_ones_opt_in() {
    let good = fake::spawn(line("+OK hi"), fake::polite(&[])).await;
    let c = config(
        &format!(
            r#"{{"name": "plain", "host": "127.0.0.1", "port": {p}}},
               {{"name": "detailed", "host": "127.0.0.1", "port": {p}, "credentials": "b", "detailed_metrics": true}},
               {{"name": "dead", "host": "127.0.0.1", "port": 1, "auth": "none"}}"#,
            p = good.port()
        ),
        "",
    ).await;
    let (m, a, s) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );
    run(&c, &m, &a, &s).await;
    let got = m.got.lock().unwrap();
    let names_for = |mon: Option<&str>| {
        let mut v: Vec<String> = got
            .iter()
            .filter(|d| d.monitor.as_deref() == mon)
            .map(|d| d.name.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names_for(Some("plain")), ["Availability", "ResponseTime"]);
    // A down monitor has availability 0 and no response time.
    assert_eq!(names_for(Some("dead")), ["Availability"]);
    assert!(got
        .iter()
        .any(|d| d.monitor.as_deref() == Some("dead") && d.value == 0.0));
    let detailed = names_for(Some("detailed"));
    for n in [
        "AuthTime",
        "ConnectTime",
        "GreetingTime",
        "MailboxMessages",
        "MailboxSize",
        "StatTime",
    ] {
        assert!(
            detailed.iter().any(|d| d == n),
            "{n} missing from {detailed:?}"
        );
    }
    let mut run_level = vec![
        metrics::ALERTS_FAILED,
        metrics::METRICS_PENDING,
        metrics::MONITORS_DOWN,
        metrics::MONITORS_MISCONFIGURED,
        metrics::MONITORS_SKIPPED,
        metrics::MONITORS_UP,
        metrics::PROBE_RUNS,
        metrics::RUN_DURATION,
    ];
    run_level.sort();
    assert_eq!(names_for(None), run_level);
    // Every published name is in the one table, with its unit.
    for d in got.iter() {
        let def =
            metrics::lookup(&d.name).unwrap_or_else(|| panic!("{} not in metrics.rs", d.name));
        assert_eq!(def.unit, d.unit, "{}", d.name);
    }
    let down = got.iter().find(|d| d.name == "MonitorsDown").unwrap();
    assert_eq!(down.value, 1.0);
}

/// A listener that accepts and hangs up: all a TCP check needs.
async fn accepting() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    port
}

async fn tcp_fleet(n: usize, port: u16, extra: &str) -> Config {
    let mut monitors: Vec<String> = (0..n)
        .map(|i| {
            format!(r#"{{"name": "t{i:05}", "kind": "tcp", "host": "127.0.0.1", "port": {port}}}"#)
        })
        .collect();
    if !extra.is_empty() {
        monitors.push(extra.to_string());
    }
    let text = format!(
        r#"{{"run": {{"retries": 0, "deadline_ms": 30000, "concurrency": 100}},
             "defaults": {{"failures_before_alert": 1}},
             "monitors": [{}]}}"#,
        monitors.join(",")
    );
    pop3_probe::config::load(&text, &common::NoSecrets)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_of_thousands_of_new_monitors_is_one_state_write() {
    let port = accepting().await;
    let n = 3000;
    let c = tcp_fleet(n, port, "").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let state = FileState::open(&path).unwrap();
    let (m, a) = (MemMetrics::default(), MemAlerts::default());
    let deadline = Instant::now() + c.run.deadline;
    let r = pipeline::execute(&c, "Test", Shard::default(), deadline, &m, &a, &state).await;
    assert_eq!(r.probed, n, "{:?}", r.skipped.first());
    assert!(r.state_errors.is_empty(), "{:?}", r.state_errors);
    assert_eq!(
        state.writes(),
        1,
        "one state write for the whole run, not one per monitor"
    );
    assert_eq!(r.state_writes, 1);
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["monitors"].as_object().unwrap().len(), n);
    // The same through the port: one save call.
    let mem = MemState::default();
    let r = run(&c, &m, &a, &mem).await;
    assert_eq!(r.probed, n);
    assert_eq!(mem.writes.load(Ordering::SeqCst), 1);
    assert_eq!(mem.saves.load(Ordering::SeqCst), n);
}

#[tokio::test]
async fn a_broken_monitor_alerts_once_until_fixed_and_is_counted() {
    let port = accepting().await;
    let broken = r#"{"name": "cfg-typo", "kind": "tcp", "host": "127.0.0.1", "port": 70000}"#;
    let c = tcp_fleet(1, port, broken).await;
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    let path = c.problems[0].error.path.clone();
    assert!(path.starts_with("monitors[1]"), "{path}");
    let (m, a, s) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );
    let misconfigured = |m: &MemMetrics| -> Vec<f64> {
        m.got
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.name == metrics::MONITORS_MISCONFIGURED)
            .map(|d| d.value)
            .collect()
    };
    for _ in 0..3 {
        run(&c, &m, &a, &s).await;
    }
    assert_eq!(
        a.kinds(),
        [("cfg-typo".to_string(), AlertKind::ConfigError)]
    );
    let alert = a.got.lock().unwrap()[0].clone();
    assert!(
        alert.subject.contains("cfg-typo") && alert.subject.contains(&path),
        "{}",
        alert.subject
    );
    assert!(alert.body.contains(&path), "{}", alert.body);
    assert_eq!(alert.severity(), "warning");
    assert_eq!(misconfigured(&m), [1.0, 1.0, 1.0]);
    assert!(s.rows.lock().unwrap()["cfg-typo"].config_error.is_some());

    // Fixed: watched again, the remembered error is cleared.
    let fixed =
        format!(r#"{{"name": "cfg-typo", "kind": "tcp", "host": "127.0.0.1", "port": {port}}}"#);
    let good = tcp_fleet(1, port, &fixed).await;
    let r = run(&good, &m, &a, &s).await;
    assert_eq!(r.probed, 2);
    assert_eq!(s.rows.lock().unwrap()["cfg-typo"].config_error, None);
    assert_eq!(a.kinds().len(), 1);
    // Broken again: said again.
    run(&c, &m, &a, &s).await;
    assert_eq!(a.kinds().len(), 2);
}

#[tokio::test]
async fn lost_alerts_are_counted_and_the_state_still_saved_once() {
    let c = config(
        r#"{"name": "dead-1", "host": "127.0.0.1", "port": 1, "auth": "none"},
           {"name": "dead-2", "host": "127.0.0.1", "port": 1, "auth": "none"}"#,
        "",
    )
    .await;
    let (m, a, s) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );
    a.fail_next.store(1, Ordering::SeqCst);
    let r = run(&c, &m, &a, &s).await;
    assert!(r.has_undelivered_alerts());
    assert_eq!(r.alerts_failed.len(), 1);
    assert_eq!(r.alerts_sent.len(), 1);
    // The delivered alert's state is saved; the lost one is retried.
    assert_eq!(s.writes.load(Ordering::SeqCst), 1);
    assert_eq!(s.rows.lock().unwrap().len(), 1);
    let failed: Vec<f64> = m
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.name == metrics::ALERTS_FAILED)
        .map(|d| d.value)
        .collect();
    assert_eq!(failed, [1.0]);
    let r = run(&c, &m, &a, &s).await;
    assert!(!r.has_undelivered_alerts());
    assert_eq!(r.alerts_sent.len(), 1, "only the lost one again");
}

#[tokio::test]
async fn probe_runs_carries_the_shard_and_pending_values_are_counted() {
    let port = accepting().await;
    let c = tcp_fleet(20, port, "").await;
    let (m, a, s) = (
        MemMetrics::default(),
        MemAlerts::default(),
        MemState::default(),
    );
    m.fail_next.store(1, Ordering::SeqCst);
    let shard = Shard {
        shard: 1,
        shards: 3,
    };
    let deadline = Instant::now() + c.run.deadline;
    let first = pipeline::execute(&c, "Test", shard, deadline, &m, &a, &s).await;
    assert!(first.metrics_unpublished > 0);
    assert!(s.pending_of(0).is_empty(), "kept under the shard's own key");
    assert_eq!(s.pending_of(1).len(), first.metrics_unpublished);
    let deadline = Instant::now() + c.run.deadline;
    let second = pipeline::execute(&c, "Test", shard, deadline, &m, &a, &s).await;
    assert_eq!(second.metrics_pending, first.metrics_unpublished);
    let got = m.got.lock().unwrap();
    let runs: Vec<_> = got
        .iter()
        .filter(|d| d.name == metrics::PROBE_RUNS)
        .collect();
    assert_eq!(runs.len(), 2, "this run's and the one kept from the last");
    assert!(runs.iter().all(|d| d.shard == Some(1)), "{runs:?}");
    assert!(got
        .iter()
        .filter(|d| d.name != metrics::PROBE_RUNS)
        .all(|d| d.shard.is_none()));
    let pending: Vec<f64> = got
        .iter()
        .filter(|d| d.name == metrics::METRICS_PENDING)
        .map(|d| d.value)
        .collect();
    assert!(
        pending.contains(&(first.metrics_unpublished as f64)),
        "{pending:?}"
    );
}
