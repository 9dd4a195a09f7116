//! Whole-probe driver for `make bench`: calls `pop3_probe::probe::probe`
//! N times in a row per check, in this process, and prints one JSON line per
//! (check, variant) with the wall time and the process CPU time (getrusage:
//! user + system) of every probe. `peer-bench/run.py` turns it into tables.
//!
//!   cargo bench --bench probes -- --env /tmp/pop3-probe-dovecot/env --n 200
//!
//! Options: --n N (probes per variant), --warmup N, --checks a,b,c,d,
//! --plain-port P / --pop3s-port P (point at a delay proxy instead of the
//! ports in the env file), --label TEXT (copied into every line),
//! --max-seconds S (stop a variant early once it has run this long).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pop3_probe::probe::{self, AuthMethod, Status, Target, TlsMode};
use secrecy::SecretString;

struct Args {
    env: HashMap<String, String>,
    n: usize,
    warmup: usize,
    checks: String,
    plain_port: u16,
    pop3s_port: u16,
    label: String,
    max_seconds: f64,
}

fn parse_args() -> Args {
    let mut argv = std::env::args().skip(1);
    // The tests' Dovecot, where the tests look for it (cargo test runs
    // this file once as a smoke test, inside make's POP3_PROBE_DOVECOT_DIR).
    let mut env_file = format!(
        "{}/env",
        std::env::var("POP3_PROBE_DOVECOT_DIR").unwrap_or("/tmp/pop3-probe-dovecot".into())
    );
    let mut n = 200;
    let mut warmup = 5;
    let mut checks = String::from("a,b,c,d");
    let mut plain_port = None;
    let mut pop3s_port = None;
    let mut label = String::from("loopback");
    let mut max_seconds = 120.0;
    while let Some(a) = argv.next() {
        let mut val = || argv.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--env" => env_file = val(),
            "--n" => n = val().parse().expect("--n"),
            "--warmup" => warmup = val().parse().expect("--warmup"),
            "--checks" => checks = val(),
            "--plain-port" => plain_port = Some(val().parse().expect("--plain-port")),
            "--pop3s-port" => pop3s_port = Some(val().parse().expect("--pop3s-port")),
            "--label" => label = val(),
            "--max-seconds" => max_seconds = val().parse().expect("--max-seconds"),
            // `cargo bench` passes --bench; ignore it and anything unknown.
            _ => {}
        }
    }
    let text = std::fs::read_to_string(&env_file)
        .unwrap_or_else(|e| panic!("read {env_file}: {e} (run tests/dovecot/ensure.sh)"));
    let env: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let port = |k: &str| env[k].parse::<u16>().expect(k);
    Args {
        plain_port: plain_port.unwrap_or_else(|| port("POP3_PLAIN_STLS_PORT")),
        pop3s_port: pop3s_port.unwrap_or_else(|| port("POP3S_PORT")),
        env,
        n,
        warmup,
        checks,
        label,
        max_seconds,
    }
}

/// Process CPU time (user + system), all threads, in milliseconds.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

struct Variant {
    check: &'static str,
    name: String,
    target: Target,
    /// A different CA text per probe: a fresh TLS client config each time,
    /// so no TLS session is resumed (as in a new process).
    fresh_tls: bool,
}

fn variants(a: &Args) -> Vec<Variant> {
    let ca = std::fs::read_to_string(&a.env["CA_PEM"]).expect("CA_PEM");
    let base = |name: &str, port: u16, tls: TlsMode, auth: AuthMethod| {
        let mut t = Target::new(name, "127.0.0.1", port);
        t.tls = tls;
        t.auth = auth;
        t.ca_pem = Some(ca.clone());
        t.timeout = Duration::from_secs(10);
        t.warning = Duration::from_secs(10);
        t.critical = Duration::from_secs(10);
        if auth != AuthMethod::None {
            t.username = Some(a.env["USER"].clone());
            t.password = Some(SecretString::from(a.env["PASSWORD"].clone()));
        }
        t
    };
    let mut v = Vec::new();
    let mut add = |check: &'static str, name: &str, t: Target, fresh_tls: bool| {
        if a.checks.split(',').any(|c| c == check) {
            v.push(Variant {
                check,
                name: name.to_string(),
                target: t,
                fresh_tls,
            });
        }
    };
    use AuthMethod as A;
    use TlsMode as T;
    add(
        "a",
        "tls none, auth none",
        base("a", a.plain_port, T::None, A::None),
        false,
    );
    add(
        "b",
        "implicit TLS, auth none",
        base("b", a.pop3s_port, T::Implicit, A::None),
        false,
    );
    add(
        "b",
        "implicit TLS, auth none, no TLS resumption",
        base("b", a.pop3s_port, T::Implicit, A::None),
        true,
    );
    for (auth, label) in [
        (A::Auto, "auth auto (APOP)"),
        (A::User, "auth user"),
        (A::SaslPlain, "auth sasl-plain"),
    ] {
        add(
            "c",
            &format!("starttls, {label}"),
            base("c", a.plain_port, T::Starttls, auth),
            false,
        );
        add(
            "d",
            &format!("implicit TLS, {label}"),
            base("d", a.pop3s_port, T::Implicit, auth),
            false,
        );
    }
    add(
        "c",
        "starttls, auth auto (APOP), no TLS resumption",
        base("c", a.plain_port, T::Starttls, A::Auto),
        true,
    );
    add(
        "d",
        "implicit TLS, auth auto (APOP), no TLS resumption",
        base("d", a.pop3s_port, T::Implicit, A::Auto),
        true,
    );
    add(
        "d",
        "implicit TLS, auth user, no TLS resumption",
        base("d", a.pop3s_port, T::Implicit, A::User),
        true,
    );
    v
}

/// `--init`: what a process pays once before its first TLS probe, step by
/// step (CPU and wall per step), then exits.
fn init_profile(a: &Args) {
    let ca = std::fs::read_to_string(&a.env["CA_PEM"]).expect("CA_PEM");
    let mut steps = Vec::new();
    let mut step = |name: &str, f: &mut dyn FnMut()| {
        let (c0, w0) = (cpu_ms(), Instant::now());
        f();
        steps.push(serde_json::json!({"step": name, "wall_ms": w0.elapsed().as_secs_f64() * 1e3, "cpu_ms": cpu_ms() - c0}));
    };
    step("crypto provider (aws-lc-rs)", &mut || {
        black(rustls::crypto::aws_lc_rs::default_provider());
    });
    step("first random bytes", &mut || {
        let mut b = [0u8; 32];
        let p = rustls::crypto::aws_lc_rs::default_provider();
        p.secure_random.fill(&mut b).expect("random");
        black(b);
    });
    step("first X25519 key share", &mut || {
        let p = rustls::crypto::aws_lc_rs::default_provider();
        let kx = p
            .kx_groups
            .iter()
            .find(|g| format!("{:?}", g.name()) == "X25519")
            .expect("x25519");
        black(kx.start().map(|k| k.pub_key().len()).ok());
    });
    step("first X25519MLKEM768 key share", &mut || {
        let p = rustls::crypto::aws_lc_rs::default_provider();
        if let Some(kx) = p
            .kx_groups
            .iter()
            .find(|g| format!("{:?}", g.name()).contains("MLKEM"))
        {
            black(kx.start().map(|k| k.pub_key().len()).ok());
        }
    });
    step("TlsClient::webpki (built-in roots)", &mut || {
        black(pop3_probe::net::TlsClient::webpki());
    });
    step("TlsClient::from_pem (test CA)", &mut || {
        black(pop3_probe::net::TlsClient::from_pem(&ca).ok());
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for i in 0..2 {
        let mut t = Target::new("init", "127.0.0.1", a.pop3s_port);
        t.auth = AuthMethod::None;
        t.ca_pem = Some(ca.clone());
        step(&format!("probe (b) #{}", i + 1), &mut || {
            black(rt.block_on(probe::pop3::probe(&t)).status);
        });
    }
    println!(
        "{}",
        serde_json::json!({"tool": "init-profile", "steps": steps})
    );
}

fn black<T>(t: T) -> T {
    std::hint::black_box(t)
}

fn main() {
    // `cargo test --all-targets` runs this binary with no arguments (and
    // no `--bench`): do one probe per variant as a smoke test, not a bench.
    let smoke = std::env::args().len() == 1;
    let mut a = parse_args();
    if smoke {
        a.n = 1;
        a.warmup = 0;
    }
    if std::env::args().any(|x| x == "--init") {
        init_profile(&a);
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut serial = 0u64;
    for v in variants(&a) {
        let mut wall = Vec::with_capacity(a.n);
        let mut cpu = Vec::with_capacity(a.n);
        let mut failures: HashMap<String, usize> = HashMap::new();
        let started = Instant::now();
        for i in 0..(a.warmup + a.n) {
            if started.elapsed().as_secs_f64() > a.max_seconds {
                break;
            }
            let mut t = v.target.clone();
            if v.fresh_tls {
                serial += 1;
                // Text outside the PEM block is ignored by the parser but
                // makes a new cache key, hence a new TLS client.
                t.ca_pem = t.ca_pem.map(|p| format!("bench {serial}\n{p}"));
            }
            let c0 = cpu_ms();
            let w0 = Instant::now();
            let r = rt.block_on(probe::pop3::probe(&t));
            let w = w0.elapsed().as_secs_f64() * 1e3;
            let c = cpu_ms() - c0;
            if r.status != Status::Up {
                let k = r
                    .failure
                    .map(|f| f.as_str().to_string())
                    .unwrap_or_else(|| r.status.to_string());
                *failures.entry(format!("{k}: {}", r.message)).or_default() += 1;
            }
            if i >= a.warmup {
                wall.push(w);
                cpu.push(c);
            }
        }
        let line = serde_json::json!({
            "tool": "pop3-probe (in-process)",
            "label": a.label,
            "check": v.check,
            "variant": v.name,
            "wall_ms": wall,
            "cpu_ms": cpu,
            "failures": failures,
        });
        println!("{line}");
        if smoke {
            assert!(failures.is_empty(), "{}: {failures:?}", v.name);
        }
    }
}
