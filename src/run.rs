//! Many monitors under one deadline: bounded concurrency, no two logins to
//! the same mailbox at once (POP3 locks the maildrop, and the second login
//! would fail with [IN-USE]), a retry for a failed probe when time allows,
//! and stable sharding across schedules.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::{MonitorSpec, RunConfig};
use crate::probe::{self, AuthMethod, FailureKind, ProbeResult, Status};

/// FNV-1a, 64 bit: stable across builds and platforms (unlike std's
/// hasher), so a monitor stays in its shard from one release to the next.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Which shard of `shards` a monitor belongs to.
pub fn shard_of(name: &str, shards: u32) -> u32 {
    (stable_hash(name) % u64::from(shards.max(1))) as u32
}

/// A monitor the run could not start before its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub monitor: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct RunResults {
    pub results: Vec<ProbeResult>,
    pub skipped: Vec<Skipped>,
}

/// The shortest time worth starting a probe in; less and it is skipped
/// (reported, not counted as down: the server did nothing wrong).
const MIN_PROBE_TIME: Duration = Duration::from_millis(250);

/// Failures a second attempt may cure. Not retried: wrong credentials (a
/// retry only adds a failed login that may lock the account), certificate
/// and configuration faults (deterministic), LOGIN-DELAY (a retry makes it
/// worse), plaintext refusal.
fn retryable(kind: Option<FailureKind>) -> bool {
    use FailureKind as F;
    matches!(
        kind,
        Some(
            F::DnsFailure
                | F::ConnectionRefused
                | F::ConnectionFailed
                | F::ConnectionClosed
                | F::Timeout
                | F::TlsHandshakeFailed
                | F::GreetingRejected
                | F::ProtocolError
                | F::AuthTemporaryFailure
                | F::MailboxInUse
                | F::MailboxError
                | F::ResponseTimeCritical
        )
    )
}

/// The mailbox a monitor logs in to, if it logs in: same host and user
/// means the same maildrop lock.
fn mailbox_key(m: &MonitorSpec) -> Option<(String, String)> {
    if m.target.auth == AuthMethod::None {
        return None;
    }
    Some((
        m.target.host.to_ascii_lowercase(),
        m.target.username.clone().unwrap_or_default(),
    ))
}

/// Probe every monitor; finish by `deadline`.
pub async fn run_all(monitors: Vec<MonitorSpec>, cfg: &RunConfig, deadline: Instant) -> RunResults {
    // Monitors sharing a mailbox form one group, probed one after another;
    // groups run concurrently.
    let mut groups: BTreeMap<(String, String), Vec<MonitorSpec>> = BTreeMap::new();
    let mut singles: Vec<Vec<MonitorSpec>> = Vec::new();
    for m in monitors {
        match mailbox_key(&m) {
            Some(key) => groups.entry(key).or_default().push(m),
            None => singles.push(vec![m]),
        }
    }
    let all_groups = groups.into_values().chain(singles);
    let outcomes: Vec<RunResults> = stream::iter(all_groups)
        .map(|group| run_group(group, cfg, deadline))
        .buffer_unordered(cfg.concurrency)
        .collect()
        .await;
    let mut merged = RunResults::default();
    for o in outcomes {
        merged.results.extend(o.results);
        merged.skipped.extend(o.skipped);
    }
    merged.results.sort_by(|a, b| a.monitor.cmp(&b.monitor));
    merged
}

async fn run_group(group: Vec<MonitorSpec>, cfg: &RunConfig, deadline: Instant) -> RunResults {
    let mut out = RunResults::default();
    for m in group {
        match probe_with_retries(&m, cfg, deadline).await {
            Ok(r) => out.results.push(r),
            Err(reason) => out.skipped.push(Skipped {
                monitor: m.target.name.clone(),
                reason,
            }),
        }
    }
    out
}

async fn probe_with_retries(
    m: &MonitorSpec,
    cfg: &RunConfig,
    deadline: Instant,
) -> Result<ProbeResult, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < MIN_PROBE_TIME {
        return Err(format!(
            "not started: the run deadline was {} ms away",
            left.as_millis()
        ));
    }
    let mut target = m.target.clone();
    target.timeout = target.timeout.min(left);
    let mut result = probe::probe(&target).await;
    let mut attempts = 1;
    while result.status == Status::Down && retryable(result.failure) && attempts <= cfg.retries {
        // Only retry when the whole attempt fits before the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        if left < cfg.retry_delay + m.target.timeout {
            result.warnings.push(format!(
                "not retried: only {} ms left in the run",
                left.as_millis()
            ));
            break;
        }
        tokio::time::sleep(cfg.retry_delay).await;
        let first = format!(
            "attempt {attempts} failed: {}{}",
            result.failure.map(|f| f.as_str()).unwrap_or("?"),
            result
                .failed_phase
                .map(|p| format!(" in {p}"))
                .unwrap_or_default()
        );
        attempts += 1;
        result = probe::probe(&m.target).await;
        result.warnings.insert(0, first);
    }
    result.attempts = attempts;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_fnv1a() {
        // Reference values of FNV-1a 64.
        assert_eq!(stable_hash(""), 0xcbf29ce484222325);
        assert_eq!(stable_hash("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(stable_hash("foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn shards_partition_the_fleet() {
        let names: Vec<String> = (0..1000).map(|i| format!("mon-{i}")).collect();
        let shards = 4;
        let mut counts = [0; 4];
        for n in &names {
            let s = shard_of(n, shards);
            counts[s as usize] += 1;
            // Stable: asking again gives the same shard.
            assert_eq!(shard_of(n, shards), s);
        }
        assert_eq!(counts.iter().sum::<i32>(), 1000);
        // Roughly even: no shard gets less than half its share.
        assert!(counts.iter().all(|&c| c > 125), "{counts:?}");
        assert_eq!(shard_of("x", 1), 0);
        assert_eq!(shard_of("x", 0), 0);
    }
}
