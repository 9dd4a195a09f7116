//! Fleet-scale driver for `make bench`.
//!
//!   fleet serve --fast K --hang H --max-seconds S
//!       K fast fake POP3 servers and H that accept and never answer, on
//!       127.0.0.1; prints `{"fast":[ports],"hang":[ports]}` and serves
//!       until stdin closes or S seconds pass. A separate process, so the
//!       run's RSS, CPU and descriptors are the prober's alone.
//!   fleet run --n N --env DOVECOT_ENV --servers JSON --concurrency C
//!             --deadline-ms D --timeout-ms T
//!       Builds N monitors (mix below), runs `pipeline::execute` once with
//!       in-memory sinks, prints one JSON line: wall, peak RSS (VmHWM),
//!       CPU, most open descriptors, results + skipped.
//!
//!   fleet first-run --n N --store mem|file|dynamodb [--endpoint URL]
//!       The first run of N new TCP monitors (one local listener), so every
//!       monitor's state is new and saved: with the state in memory, in a
//!       state file, or in DynamoDB at URL (moto: `moto_server -p PORT`).
//!       Prints one JSON line: execute time, state writes, errors.
//!
//! Mix: 3% hanging servers; of the rest, half on the fake servers (half of
//! those auth none, half APOP with their own account each) and half on the
//! test Dovecot (auth none over plain, STLS and implicit TLS, plus 1% logins
//! to its two mailboxes, which the run serializes per mailbox).

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pop3_probe::alert::MonitorState;
use pop3_probe::config;
use pop3_probe::credentials::SecretSource;
use pop3_probe::local::{PrintAlerts, WriterMetrics};
use pop3_probe::pipeline::{self, Shard};
use pop3_probe::ports::{Datum, SaveReport, SinkError, StateChanges, StateStore};
use secrecy::SecretString;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args),
        Some("run") => run(&args),
        Some("first-run") => first_run(&args),
        _ => eprintln!(
            "usage: fleet serve ... | fleet run ... | fleet first-run ... (see the file header)"
        ),
    }
}

// ---------------------------------------------------------------- servers

fn serve(args: &[String]) {
    let fast: usize = arg(args, "--fast").map_or(8, |v| v.parse().unwrap());
    let hang: usize = arg(args, "--hang").map_or(2, |v| v.parse().unwrap());
    let max = Duration::from_secs(arg(args, "--max-seconds").map_or(900, |v| v.parse().unwrap()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut fast_ports = Vec::new();
        let mut hang_ports = Vec::new();
        for _ in 0..fast {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            fast_ports.push(l.local_addr().unwrap().port());
            tokio::spawn(accept_loop(l, false));
        }
        for _ in 0..hang {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            hang_ports.push(l.local_addr().unwrap().port());
            tokio::spawn(accept_loop(l, true));
        }
        println!("{}", json!({"fast": fast_ports, "hang": hang_ports}));
        // Until stdin closes (the parent is gone) or the time is up.
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().lock().read_to_end(&mut sink);
        });
        let _ = tokio::time::timeout(max, stdin_closed).await;
    });
    rt.shutdown_timeout(Duration::from_millis(100));
}

async fn accept_loop(l: TcpListener, hang: bool) {
    loop {
        let Ok((s, _)) = l.accept().await else { return };
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            if hang {
                // Accept, say nothing; let the client give up (at most 60 s).
                let mut s = s;
                let mut buf = [0u8; 512];
                let _ = tokio::time::timeout(Duration::from_secs(60), async {
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                })
                .await;
                return;
            }
            let _ = fake_session(s).await;
        });
    }
}

/// A polite POP3 server: APOP timestamp in the greeting, accepts any
/// login, STAT 2 320, QUIT closes. At most 64 commands per connection.
async fn fake_session(s: tokio::net::TcpStream) -> std::io::Result<()> {
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"+OK fake POP3 ready <1.2@bench>\r\n").await?;
    let mut line = String::new();
    for _ in 0..64 {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "CAPA" => b"+OK\r\nUSER\r\nSASL PLAIN\r\nPIPELINING\r\n.\r\n",
            "USER" | "PASS" | "APOP" | "AUTH" => b"+OK\r\n",
            "STAT" => b"+OK 2 320\r\n",
            "QUIT" => {
                w.write_all(b"+OK bye\r\n").await?;
                return Ok(());
            }
            _ => b"-ERR unknown command\r\n",
        };
        w.write_all(reply).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- run

struct NoSecrets;

impl SecretSource for NoSecrets {
    async fn secret(&self, id: &str) -> Result<SecretString, SinkError> {
        Err(SinkError::new(
            "secrets",
            format!("no secret store in the benchmark ({id})"),
        ))
    }
}

/// Alert state in memory (the Lambda keeps it in DynamoDB).
#[derive(Default)]
struct MemState {
    states: Mutex<HashMap<String, MonitorState>>,
}

impl StateStore for MemState {
    async fn load(&self, monitors: &[String]) -> Result<HashMap<String, MonitorState>, SinkError> {
        let s = self.states.lock().unwrap();
        Ok(monitors
            .iter()
            .filter_map(|m| s.get(m).map(|v| (m.clone(), v.clone())))
            .collect())
    }
    async fn save(&self, changes: StateChanges) -> SaveReport {
        let mut s = self.states.lock().unwrap();
        for state in changes.monitors {
            s.insert(state.monitor.clone(), state);
        }
        SaveReport {
            writes: 1,
            errors: Vec::new(),
        }
    }
    async fn load_pending_metrics(&self, _shard: u32) -> Result<Vec<Datum>, SinkError> {
        Ok(Vec::new())
    }
}

fn proc_status(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn build_config(
    n: usize,
    env: &HashMap<String, String>,
    fast: &[u64],
    hang: &[u64],
    concurrency: usize,
    deadline_ms: u64,
    timeout_ms: u64,
) -> String {
    let mut monitors = Vec::with_capacity(n);
    let mut credentials = serde_json::Map::new();
    let password = env["PASSWORD"].clone();
    credentials.insert(
        "probe".into(),
        json!({"username": env["USER"], "password": password}),
    );
    credentials.insert(
        "empty".into(),
        json!({"username": env["EMPTY_USER"], "password": password}),
    );
    let port = |k: &str| env[k].parse::<u64>().unwrap();
    for i in 0..n {
        let name = format!("m{i:05}");
        // A fixed pattern over 100 slots: 3 hang, 48 fake, 49 Dovecot.
        let slot = i % 100;
        let m = if slot < 3 {
            json!({"name": name, "host": "127.0.0.1", "port": hang[i % hang.len()], "tls": "none", "auth": "none"})
        } else if slot < 27 {
            json!({"name": name, "host": "127.0.0.1", "port": fast[i % fast.len()], "tls": "none", "auth": "none"})
        } else if slot < 51 {
            // APOP, each with its own account (own mailbox: not serialized).
            let cred = format!("acct{i}");
            credentials.insert(
                cred.clone(),
                json!({"username": format!("user{i}"), "password": "fake-pw"}),
            );
            json!({"name": name, "host": "127.0.0.1", "port": fast[i % fast.len()], "tls": "none", "auth": "apop", "credentials": cred})
        } else if slot < 63 {
            json!({"name": name, "host": "127.0.0.1", "port": port("POP3_NOTLS_PORT"), "tls": "none", "auth": "none"})
        } else if slot < 75 {
            json!({"name": name, "host": "127.0.0.1", "port": port("POP3_PLAIN_STLS_PORT"), "tls": "starttls", "auth": "none"})
        } else if slot < 87 {
            json!({"name": name, "host": "127.0.0.1", "port": port("POP3S_PORT"), "tls": "implicit", "auth": "none"})
        } else if slot < 99 {
            json!({"name": name, "host": "127.0.0.1", "port": port("POP3S_NOAPOP_PORT"), "tls": "implicit", "auth": "none"})
        } else {
            // 1%: real logins, alternating between the two mailboxes.
            let cred = if (i / 100) % 2 == 0 { "probe" } else { "empty" };
            json!({"name": name, "host": "127.0.0.1", "port": port("POP3S_PORT"), "tls": "implicit", "auth": "auto", "credentials": cred})
        };
        monitors.push(m);
    }
    json!({
        "version": 1,
        "run": {"concurrency": concurrency, "retries": 0, "deadline_ms": deadline_ms},
        "defaults": {
            "ca_file": env["CA_PEM"],
            "timeout_ms": timeout_ms,
            "warning_ms": timeout_ms - 2,
            "critical_ms": timeout_ms - 1,
        },
        "credentials": credentials,
        "monitors": monitors,
    })
    .to_string()
}

fn run(args: &[String]) {
    let n: usize = arg(args, "--n").map_or(100, |v| v.parse().unwrap());
    let concurrency: usize = arg(args, "--concurrency").map_or(200, |v| v.parse().unwrap());
    let deadline_ms: u64 = arg(args, "--deadline-ms").map_or(50_000, |v| v.parse().unwrap());
    let timeout_ms: u64 = arg(args, "--timeout-ms").map_or(5_000, |v| v.parse().unwrap());
    let env_file = arg(args, "--env").unwrap_or_else(|| {
        format!(
            "{}/env",
            std::env::var("POP3_PROBE_DOVECOT_DIR").unwrap_or("/tmp/pop3-probe-dovecot".into())
        )
    });
    let servers: serde_json::Value =
        serde_json::from_str(&arg(args, "--servers").expect("--servers JSON"))
            .expect("servers JSON");
    let ports = |k: &str| -> Vec<u64> {
        servers[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap())
            .collect()
    };
    let env: HashMap<String, String> = std::fs::read_to_string(&env_file)
        .expect("dovecot env")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    // Sample open descriptors and RSS while the run goes (every 10 ms, for
    // at most the deadline plus a minute).
    let stop = Arc::new(AtomicBool::new(false));
    let max_fds = Arc::new(AtomicUsize::new(open_fds()));
    let sampler = {
        let (stop, max_fds) = (stop.clone(), max_fds.clone());
        let limit = Duration::from_millis(deadline_ms + 60_000);
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) && t0.elapsed() < limit {
                max_fds.fetch_max(open_fds(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let rss_before_kb = proc_status("VmRSS:");
    let fds_before = open_fds();

    // The same runtime as the Lambda's #[tokio::main]: multi-threaded.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let c0 = cpu_ms();
    let t0 = Instant::now();
    let text = build_config(
        n,
        &env,
        &ports("fast"),
        &ports("hang"),
        concurrency,
        deadline_ms,
        timeout_ms,
    );
    let config_bytes = text.len();
    let summary = rt.block_on(async {
        let config = config::load(&text, &NoSecrets).await.expect("config");
        drop(text);
        let problems = config.problems.len();
        if let Some(p) = config.problems.first() {
            eprintln!(
                "config problem (first of {problems}): {}: {:?}",
                p.monitor, p.error
            );
        }
        let deadline = tokio::time::Instant::now() + config.run.deadline;
        let metrics = WriterMetrics::discard();
        let alerts = PrintAlerts::new(Box::new(std::io::sink()));
        let state = MemState::default();
        let t_probe = Instant::now();
        let s = pipeline::execute(
            &config,
            "Bench",
            Shard::default(),
            deadline,
            &metrics,
            &alerts,
            &state,
        )
        .await;
        (s, problems, t_probe.elapsed())
    });
    let wall = t0.elapsed();
    let cpu = cpu_ms() - c0;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let (s, problems, probe_wall) = summary;
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for f in &s.failures {
        let k = f
            .failure
            .map(|k| k.as_str().to_string())
            .unwrap_or_else(|| f.status.to_string());
        *kinds.entry(k).or_default() += 1;
    }
    let out = json!({
        "n": n,
        "concurrency": concurrency,
        "deadline_ms": deadline_ms,
        "timeout_ms": timeout_ms,
        "config_bytes": config_bytes,
        "config_problems": problems,
        "wall_ms": wall.as_secs_f64() * 1e3,
        "execute_ms": probe_wall.as_secs_f64() * 1e3,
        "run_duration_ms": s.duration_ms,
        "cpu_ms": cpu,
        "cpu_ms_per_probe": cpu / n as f64,
        "rss_before_kb": rss_before_kb,
        "peak_rss_kb": proc_status("VmHWM:"),
        "fds_before": fds_before,
        "max_fds": max_fds.load(Ordering::Relaxed),
        "probed": s.probed,
        "up": s.up,
        "degraded": s.degraded,
        "down": s.down,
        "skipped": s.skipped.len(),
        "lost": n as i64 - s.probed as i64 - s.skipped.len() as i64 - problems as i64,
        "failure_kinds": kinds,
        "metrics_published": s.metrics_published,
    });
    println!("{out}");
    // Keep stdin-driven servers honest: nothing else to do.
    let _ = std::io::stdin().lock().lines().next().filter(|_| false);
}

// ------------------------------------------------------------ first run

fn first_run(args: &[String]) {
    let n: usize = arg(args, "--n").map_or(10_000, |v| v.parse().unwrap());
    let store = arg(args, "--store").unwrap_or_else(|| "file".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Accept and drop: a TCP check needs nothing more.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        let monitors: Vec<_> = (0..n)
            .map(|i| json!({"name": format!("m{i:05}"), "kind": "tcp", "host": "127.0.0.1", "port": port}))
            .collect();
        let text = json!({
            "version": 1,
            "run": {"concurrency": 200, "retries": 0, "deadline_ms": 50_000},
            "monitors": monitors,
        })
        .to_string();
        let config = config::load(&text, &NoSecrets).await.expect("config");
        assert!(config.problems.is_empty(), "{:?}", config.problems.first());
        let deadline = tokio::time::Instant::now() + config.run.deadline;
        let metrics = WriterMetrics::discard();
        let alerts = PrintAlerts::new(Box::new(std::io::sink()));
        let t0 = Instant::now();
        let summary = match store.as_str() {
            "mem" => {
                let state = MemState::default();
                pipeline::execute(&config, "Bench", Shard::default(), deadline, &metrics, &alerts, &state).await
            }
            "file" => {
                let dir = tempfile_dir();
                let state = pop3_probe::local::FileState::open(&dir.join("state.json")).unwrap();
                let s = pipeline::execute(&config, "Bench", Shard::default(), deadline, &metrics, &alerts, &state).await;
                let _ = std::fs::remove_dir_all(&dir);
                s
            }
            "dynamodb" => {
                let endpoint = arg(args, "--endpoint").expect("--endpoint URL");
                let sdk = pop3_probe::aws::with_limits(
                    aws_config::defaults(aws_config::BehaviorVersion::latest())
                        .region(aws_config::Region::new("us-east-1"))
                        .endpoint_url(&endpoint)
                        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                            "testing", "testing", None, None, "bench",
                        )),
                )
                .load()
                .await;
                let client = aws_sdk_dynamodb::Client::new(&sdk);
                let table = format!("bench-{}", std::process::id());
                create_table(&client, &table).await;
                let state = pop3_probe::aws::DynamoState::new(client, table);
                pipeline::execute(&config, "Bench", Shard::default(), deadline, &metrics, &alerts, &state).await
            }
            other => panic!("--store mem|file|dynamodb, not {other}"),
        };
        let execute = t0.elapsed();
        println!(
            "{}",
            json!({
                "n": n,
                "store": store,
                "execute_ms": execute.as_secs_f64() * 1e3,
                "probed": summary.probed,
                "up": summary.up,
                "state_writes": summary.state_writes,
                "state_errors": summary.state_errors.len(),
                "first_state_error": summary.state_errors.first(),
            })
        );
    });
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fleet-first-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
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
        .send()
        .await
        .expect("create table");
}
