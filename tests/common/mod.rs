#![allow(dead_code)]
pub mod dovecot;
pub mod fake;
pub mod mem;
pub mod moto;
pub mod oauth2;
pub mod relay;
pub mod smtp;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Run a test-server harness (`tests/<harness>/ensure.sh DIR`: starts the
/// servers or reuses running ones) and read the `DIR/env` it writes
/// (KEY=VALUE lines: ports, accounts, certificate paths). A failure shows
/// the script's output and `hint` (what to install).
pub fn ensure_harness(harness: &str, dir: &Path, hint: &str) -> HashMap<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(harness)
        .join("ensure.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "tests/{harness}/ensure.sh failed ({hint}):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("env"))
        .unwrap_or_else(|e| panic!("read {}/env: {e}", dir.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A secret source with no secrets: for configs whose credentials are
/// inline or in the environment.
pub struct NoSecrets;

impl pop3_probe::credentials::SecretSource for NoSecrets {
    async fn secret(
        &self,
        id: &str,
    ) -> Result<secrecy::SecretString, pop3_probe::ports::SinkError> {
        Err(pop3_probe::ports::SinkError::new(
            "test",
            format!("no secret {id}"),
        ))
    }
}

/// A field of /proc/self/status in KiB (`VmRSS:`, `VmHWM:`).
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
