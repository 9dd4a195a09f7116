#![allow(dead_code)]
pub mod dovecot;
pub mod fake;
pub mod mem;
pub mod moto;
pub mod relay;
pub mod smtp;

/// A secret source with no secrets: for configs whose credentials are
/// inline or in the environment.
pub struct NoSecrets;

impl pop3_probe::sinks::SecretSource for NoSecrets {
    async fn secret(
        &self,
        id: &str,
    ) -> Result<secrecy::SecretString, pop3_probe::sinks::SinkError> {
        Err(pop3_probe::sinks::SinkError::new(
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
