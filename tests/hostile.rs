//! One run over a few hundred monitors pointed at hostile in-process
//! servers (hang, trickle, endless data, close mid-reply, stall inside or
//! after the TLS handshake) mixed with healthy Dovecot monitors: the run
//! ends by its deadline, every hostile monitor fails in the right phase
//! with the right kind, the healthy ones are up and published, and file
//! descriptors and memory stay bounded.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::dovecot::dovecot;
use pop3_probe::config::Config;
use pop3_probe::probe::{FailureKind, Phase, Status};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Hostile {
    Hang,
    Trickle,
    Endless,
    CloseMidReply,
    TlsHandshakeStall,
    TlsThenStall,
}

impl Hostile {
    const ALL: [Hostile; 6] = [
        Hostile::Hang,
        Hostile::Trickle,
        Hostile::Endless,
        Hostile::CloseMidReply,
        Hostile::TlsHandshakeStall,
        Hostile::TlsThenStall,
    ];

    fn tls(self) -> bool {
        matches!(self, Hostile::TlsHandshakeStall | Hostile::TlsThenStall)
    }

    /// What the probe must report.
    fn expected(self) -> (FailureKind, Phase) {
        match self {
            Hostile::Hang | Hostile::Trickle => (FailureKind::Timeout, Phase::Greeting),
            Hostile::Endless => (FailureKind::ResponseTooLarge, Phase::Greeting),
            Hostile::CloseMidReply => (FailureKind::ConnectionClosed, Phase::Greeting),
            Hostile::TlsHandshakeStall => (FailureKind::Timeout, Phase::Tls),
            Hostile::TlsThenStall => (FailureKind::Timeout, Phase::Greeting),
        }
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let dir = common::dovecot::dir().join("pki");
    let certs: Vec<_> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Bytes the endless servers have sent, to show they really pushed data.
static ENDLESS_SENT: AtomicUsize = AtomicUsize::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

/// Wait until the client goes away (EOF or error), discarding what it
/// sends: the servers must release their socket when the probe gives up,
/// or the fd count below would measure the test's servers, not the probe.
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(120), async {
        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn behave(kind: Hostile, mut s: TcpStream, acceptor: tokio_rustls::TlsAcceptor) {
    match kind {
        Hostile::Hang | Hostile::TlsHandshakeStall => until_closed(&mut s).await,
        Hostile::Trickle => {
            let (mut r, mut w) = s.into_split();
            let trickle = async {
                for b in b"+OK this greeting takes its time" {
                    if STOP.load(Ordering::Relaxed) || w.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            };
            tokio::select! {
                _ = trickle => {}
                _ = until_closed(&mut r) => {}
            }
        }
        Hostile::Endless => {
            let chunk = [b'A'; 1024];
            let _ = s.write_all(b"+OK ").await;
            // Bounded: stops when the client gives up, or after 64 MiB.
            for _ in 0..65536 {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
                ENDLESS_SENT.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        }
        Hostile::CloseMidReply => {
            let _ = s.write_all(b"+OK Dove").await;
        }
        Hostile::TlsThenStall => {
            if let Ok(mut tls) = acceptor.accept(s).await {
                until_closed(&mut tls).await;
            }
        }
    }
}

async fn hostile_server(kind: Hostile) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls_acceptor();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(behave(kind, s, acceptor.clone()));
        }
    });
    port
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_hostile_servers_stays_inside_its_bounds() {
    let d = dovecot();
    let per_kind = 40;
    let concurrency = 100;
    let mut ports = HashMap::new();
    for kind in Hostile::ALL {
        ports.insert(kind, hostile_server(kind).await);
    }
    let mut monitors = Vec::new();
    let mut expected = HashMap::new();
    for kind in Hostile::ALL {
        for i in 0..per_kind {
            let name = format!("{kind:?}-{i}");
            expected.insert(name.clone(), kind);
            monitors.push(serde_json::json!({
                "name": name, "host": "127.0.0.1", "port": ports[&kind],
                "tls": if kind.tls() { "implicit" } else { "none" },
                "auth": "none",
            }));
        }
    }
    // Healthy: connectivity checks and real logins (serialized: one mailbox).
    for i in 0..40 {
        monitors.push(
            serde_json::json!({"name": format!("dovecot-connect-{i}"), "host": "127.0.0.1",
            "port": d.port("POP3S_PORT"), "tls": "implicit", "auth": "none"}),
        );
    }
    for i in 0..20 {
        monitors.push(
            serde_json::json!({"name": format!("dovecot-login-{i}"), "host": "127.0.0.1",
            "port": d.port("POP3S_PORT"), "tls": "implicit", "credentials": "probe"}),
        );
    }
    let total = monitors.len();
    let doc = serde_json::json!({
        "run": {"concurrency": concurrency, "retries": 0, "deadline_ms": 20000},
        "defaults": {"timeout_ms": 1500, "warning_ms": 1000, "critical_ms": 1400,
                     "ca_file": d.get("CA_PEM"), "tls_server_name": "localhost"},
        "credentials": {"probe": {"username": d.get("USER"), "password": d.get("PASSWORD")}},
        "monitors": monitors,
    });
    let config = pop3_probe::config::load(&doc.to_string(), &common::NoSecrets)
        .await
        .unwrap();
    assert!(config.problems.is_empty(), "{:?}", config.problems);
    assert_eq!(config.monitors.len(), total);
    let _: &Config = &config;

    // Watch file descriptors while the run goes.
    let baseline_fds = open_fds();
    let peak_fds = Arc::new(AtomicUsize::new(0));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (peak, on) = (peak_fds.clone(), watching.clone());
        tokio::spawn(async move {
            while on.load(Ordering::Relaxed) {
                peak.fetch_max(open_fds(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let rss_before = common::status_kib("VmRSS:");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    let results =
        pop3_probe::fleet::probe_all(config.monitors.clone(), &config.run, deadline).await;
    let elapsed = started.elapsed();
    watching.store(false, Ordering::Relaxed);
    STOP.store(true, Ordering::Relaxed);
    watcher.await.unwrap();

    // No monitor lost; all probed (the deadline leaves room for every wave).
    assert_eq!(results.results.len() + results.skipped.len(), total);
    assert!(results.skipped.is_empty(), "{:?}", results.skipped);
    assert!(
        elapsed < Duration::from_secs(10),
        "the run overran its deadline: {elapsed:?}"
    );

    let mut by_kind: HashMap<Hostile, usize> = HashMap::new();
    for r in &results.results {
        if let Some(kind) = expected.get(&r.monitor) {
            let (failure, phase) = kind.expected();
            assert_eq!(
                (r.status, r.failure, r.failed_phase),
                (Status::Down, Some(failure), Some(phase)),
                "{}: {}",
                r.monitor,
                r.message
            );
            // Never longer than its own timeout, plus scheduling slack.
            assert!(
                r.response_time_ms < 1500.0 + 1000.0,
                "{} took {} ms",
                r.monitor,
                r.response_time_ms
            );
            *by_kind.entry(*kind).or_default() += 1;
        } else {
            assert_eq!(r.status, Status::Up, "{}: {}", r.monitor, r.message);
        }
    }
    for kind in Hostile::ALL {
        assert_eq!(by_kind.get(&kind), Some(&per_kind), "{kind:?}");
    }
    assert!(
        ENDLESS_SENT.load(Ordering::Relaxed) >= 4096 * per_kind,
        "the endless servers did not push data"
    );

    // Each probe holds one client socket, and the in-process servers one
    // more per accepted connection: bounded by the concurrency, not by
    // the number of monitors.
    let peak = peak_fds.load(Ordering::Relaxed);
    assert!(peak > baseline_fds, "the watcher saw no sockets at all");
    assert!(
        peak <= baseline_fds + 2 * concurrency + 16,
        "fds peaked at {peak} (baseline {baseline_fds}, concurrency {concurrency})"
    );
    // Memory: no buffer grows with what a server sends (the endless
    // servers pushed far more than this bound).
    let grown_mib = common::status_kib("VmRSS:").saturating_sub(rss_before) / 1024;
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB over one run");
}
