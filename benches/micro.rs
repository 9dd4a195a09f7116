//! Micro-benchmarks (criterion) of the per-probe work that is not I/O:
//! parsing a greeting and a status line, the APOP digest, scrubbing
//! forms of the password, and parsing a 1,000-monitor config (the Lambda
//! does that on a cold start).
//!
//!   cargo bench --bench micro

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pop3_probe::config::Config;
use pop3_probe::pop3::{command, response};
use secrecy::SecretString;

fn fleet_doc(n: usize) -> String {
    let monitors: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"name": "m{i}", "host": "mail{i}.example.com", "tls": "implicit"}}"#))
        .collect();
    format!(
        r#"{{"version": 1, "credentials": {{"acct": {{"username": "probe", "password": "pw"}}}},
            "defaults": {{"credentials": "acct"}}, "monitors": [{}]}}"#,
        monitors.join(",")
    )
}

fn benches(c: &mut Criterion) {
    let greeting = b"+OK Dovecot (Debian) ready. <750.1.6b091b55.YWS3t/o4y86+VjKVO4UFqg==@vm>";
    c.bench_function("parse_greeting", |b| {
        b.iter(|| response::parse_greeting(black_box(greeting)))
    });
    c.bench_function("parse_status", |b| {
        b.iter(|| response::parse_status(black_box(b"+OK 3 885")))
    });
    let secret = SecretString::from("Pr0be-Secret-42".to_string());
    c.bench_function("apop_digest", |b| {
        b.iter(|| command::apop_digest(black_box("<750.1.6b091b55.YWS3t@vm>"), &secret))
    });
    c.bench_function("secret_forms", |b| {
        b.iter(|| pop3_probe::sasl::secret_forms(black_box("Pr0be-Secret-42"), Some("probe")))
    });
    let doc = fleet_doc(1000);
    c.bench_function("config_parse_1000_monitors", |b| {
        b.iter(|| Config::parse(black_box(&doc)).map(|c| c.monitors.len()))
    });
}

criterion_group! {
    name = micro;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = benches
}
criterion_main!(micro);
