//! Dependencies with real servers: a "host" (a relay in front of the test
//! Dovecot and Exim) goes down, and the mail team gets one alert naming the
//! cause, not one per service; when it comes back, one recovery.

mod common;

use common::dovecot::dovecot;
use common::mem::{MemAlerts, MemMetrics, MemState};
use common::relay::Host;
use common::smtp::exim;
use pop3_probe::alert::AlertKind;
use pop3_probe::config::Config;
use pop3_probe::pipeline::{self, RunSummary, Shard};
use pop3_probe::probe::{FailureKind, Status};
use serde_json::json;
use tokio::time::Instant;

struct Sinks {
    metrics: MemMetrics,
    alerts: MemAlerts,
    state: MemState,
}

impl Sinks {
    fn new() -> Sinks {
        Sinks {
            metrics: MemMetrics::default(),
            alerts: MemAlerts::default(),
            state: MemState::default(),
        }
    }

    async fn run(&self, c: &Config) -> RunSummary {
        let deadline = Instant::now() + c.run.deadline;
        pipeline::execute(
            c,
            "Test",
            Shard::default(),
            deadline,
            &self.metrics,
            &self.alerts,
            &self.state,
        )
        .await
    }

    /// The alerts since the last call.
    fn take(&self) -> Vec<pop3_probe::alert::Alert> {
        std::mem::take(&mut *self.alerts.got.lock().unwrap())
    }
}

/// tcp check of the host, and POP3S and SMTP (STARTTLS + AUTH) through
/// it; with `linked`, the services depend on the tcp check.
async fn config(host: &Host, linked: bool) -> Config {
    let d = dovecot();
    let s = exim();
    let pop3s = host.port(d.port("POP3S_PORT"));
    let submission = host.port(s.port("SMTP_PORT"));
    let deps = if linked {
        json!(["mailhost"])
    } else {
        json!([])
    };
    let text = json!({
        "run": {"retries": 0, "deadline_ms": 30000},
        "credentials": {
            "pop": {"username": d.get("USER"), "password": d.get("PASSWORD")},
            "smtp": {"username": s.get("SMTP_USER"), "password": s.get("SMTP_PASSWORD")}
        },
        "defaults": {"ca_pem": d.pem("CA_PEM"), "tls_server_name": d.get("SERVER_NAME"),
                     "failures_before_alert": 2, "timeout_ms": 10000,
                     "warning_ms": 5000, "critical_ms": 8000},
        "monitors": [
            {"name": "mailhost", "kind": "tcp", "host": "127.0.0.1", "port": pop3s},
            {"name": "mailhost-pop3s", "host": "127.0.0.1", "port": pop3s,
             "credentials": "pop", "depends_on": deps},
            {"name": "mailhost-smtp", "kind": "smtp", "host": "127.0.0.1", "port": submission,
             "tls": "starttls", "ca_pem": s.pem("CA_PEM"), "credentials": "smtp",
             "depends_on": deps}
        ]
    })
    .to_string();
    let c = pop3_probe::config::load(&text, &common::NoSecrets)
        .await
        .unwrap();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_outage_is_one_alert_naming_the_cause() {
    let d = dovecot();
    let s = exim();
    let host = Host::new(&[d.port("POP3S_PORT"), s.port("SMTP_PORT")]).await;
    let c = config(&host, true).await;
    let sinks = Sinks::new();

    let all_up = sinks.run(&c).await;
    assert_eq!(all_up.up, 3, "{:?}", all_up.failures);
    assert!(sinks.take().is_empty());

    host.down();
    // failures_before_alert is 2: the first failed run alerts no one.
    let first = sinks.run(&c).await;
    assert_eq!(first.down, 3, "{:?}", first.failures);
    assert!(sinks.take().is_empty());
    let second = sinks.run(&c).await;
    let alerts = sinks.take();
    assert_eq!(
        alerts.len(),
        1,
        "one alert, not one per service: {:?}",
        alerts.iter().map(|a| &a.subject).collect::<Vec<_>>()
    );
    let a = &alerts[0];
    assert_eq!((a.monitor.as_str(), a.kind), ("mailhost", AlertKind::Down));
    assert_eq!(a.cause, Some(FailureKind::ConnectionRefused));
    assert!(
        a.subject
            .starts_with("[DOWN] mailhost: connection_refused in connect"),
        "{}",
        a.subject
    );
    assert!(
        a.subject.ends_with("(+2 dependent monitors)"),
        "{}",
        a.subject
    );
    assert!(
        a.body.contains("Affected:  mailhost-pop3s, mailhost-smtp"),
        "{}",
        a.body
    );
    for name in ["mailhost-pop3s", "mailhost-smtp"] {
        let r = second.results.iter().find(|r| r.monitor == name).unwrap();
        assert_eq!(r.status, Status::Down, "the service is unreachable");
        assert_eq!(r.failure, Some(FailureKind::BlockedByDependency));
        let b = r.blocked_by.as_ref().unwrap();
        assert_eq!(b.monitor, "mailhost");
        assert_eq!(b.failure, Some(FailureKind::ConnectionRefused));
        assert_eq!(b.own_failure, Some(FailureKind::ConnectionRefused));
    }
    // Metrics stay truthful: every service reports unavailable.
    let zeros = sinks
        .metrics
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.name == "Availability" && d.value == 0.0)
        .count();
    assert_eq!(zeros, 6, "three monitors, two failed runs");

    // More failed runs: still nothing new.
    sinks.run(&c).await;
    assert!(sinks.take().is_empty());

    host.up().await;
    let back = sinks.run(&c).await;
    assert_eq!(back.up, 3, "{:?}", back.failures);
    let alerts = sinks.take();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0].monitor.as_str(), alerts[0].kind),
        ("mailhost", AlertKind::Recovered)
    );
}

/// The same outage without `depends_on`: three alerts. Shows that the
/// test above measures the dependency, not a quiet setup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dependencies_every_service_alerts() {
    let d = dovecot();
    let s = exim();
    let host = Host::new(&[d.port("POP3S_PORT"), s.port("SMTP_PORT")]).await;
    let c = config(&host, false).await;
    let sinks = Sinks::new();
    host.down();
    sinks.run(&c).await;
    sinks.run(&c).await;
    let mut names: Vec<String> = sinks.take().into_iter().map(|a| a.monitor).collect();
    names.sort();
    assert_eq!(names, ["mailhost", "mailhost-pop3s", "mailhost-smtp"]);
}
