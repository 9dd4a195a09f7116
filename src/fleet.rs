//! Many monitors under one deadline: bounded concurrency, no two logins to
//! the same mailbox at once (POP3 locks the maildrop, and the second login
//! would fail with [IN-USE]), a retry for a failed probe when time allows,
//! and stable sharding across schedules.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::{MonitorSpec, RunConfig};
use crate::probe::{self, AuthMethod, BlockedBy, FailureKind, ProbeResult, Status};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Skipped {
    pub monitor: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct FleetResults {
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
pub fn mailbox_key(m: &MonitorSpec) -> Option<(String, String)> {
    if m.target.auth == AuthMethod::None {
        return None;
    }
    Some((
        m.target.host.to_ascii_lowercase(),
        m.target.username.clone().unwrap_or_default(),
    ))
}

/// Probe every monitor; finish by `deadline`.
pub async fn probe_all(
    monitors: Vec<MonitorSpec>,
    cfg: &RunConfig,
    deadline: Instant,
) -> FleetResults {
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
    let outcomes: Vec<FleetResults> = stream::iter(all_groups)
        .map(|group| run_group(group, cfg, deadline))
        .buffer_unordered(cfg.concurrency)
        .collect()
        .await;
    let mut merged = FleetResults::default();
    for o in outcomes {
        merged.results.extend(o.results);
        merged.skipped.extend(o.skipped);
    }
    merged.results.sort_by(|a, b| a.monitor.cmp(&b.monitor));
    merged
}

async fn run_group(group: Vec<MonitorSpec>, cfg: &RunConfig, deadline: Instant) -> FleetResults {
    let mut out = FleetResults::default();
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
    if let Some(rt) = &m.roundtrip {
        // Never retried: every attempt sends mail, and a slow delivery is
        // picked up by the next run anyway.
        let Some(plan) = rt.plan(&target) else {
            return Err("round trip without its signing key (credentials not resolved)".into());
        };
        return Ok(probe::roundtrip::probe_keeping_state(&plan, &rt.state).await);
    }
    let mut result = probe::check(&target).await;
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
        result = probe::check(&m.target).await;
        result.warnings.insert(0, first);
    }
    result.attempts = attempts;
    Ok(result)
}

/// Mark each down result whose failure a down dependency explains as
/// `blocked_by_dependency`, naming the root: the down dependency furthest up
/// the chain. The root's result lists whom it blocks, so its one alert can
/// say so. A dependency that was not probed this run (skipped, disabled)
/// blocks no one: without its result nothing is known.
pub fn apply_dependencies(results: &mut [ProbeResult], depends_on: &HashMap<String, Vec<String>>) {
    let index: HashMap<String, usize> = results
        .iter()
        .enumerate()
        .map(|(i, r)| (r.monitor.clone(), i))
        .collect();
    let down = |i: usize| results[i].status == Status::Down;
    // The root of each down monitor: itself, or its first down
    // dependency's root. Config validation ruled out cycles; the depth
    // bound guards against a list that was not validated.
    fn root_of(
        i: usize,
        results: &[ProbeResult],
        index: &HashMap<String, usize>,
        depends_on: &HashMap<String, Vec<String>>,
        memo: &mut HashMap<usize, usize>,
        depth: usize,
    ) -> usize {
        if let Some(&r) = memo.get(&i) {
            return r;
        }
        let mut root = i;
        if depth < 64 {
            let deps = depends_on.get(&results[i].monitor);
            for dep in deps.into_iter().flatten() {
                if let Some(&j) = index.get(dep) {
                    if results[j].status == Status::Down {
                        root = root_of(j, results, index, depends_on, memo, depth + 1);
                        break;
                    }
                }
            }
        }
        memo.insert(i, root);
        root
    }
    let mut memo = HashMap::new();
    let mut blocked: Vec<(usize, usize)> = Vec::new();
    for i in 0..results.len() {
        if down(i) {
            let root = root_of(i, results, &index, depends_on, &mut memo, 0);
            if root != i {
                blocked.push((i, root));
            }
        }
    }
    for (i, root) in blocked {
        let (failure, message, root_name) = {
            let r = &results[root];
            (r.failure, r.message.clone(), r.monitor.clone())
        };
        results[root].blocking.push(results[i].monitor.clone());
        let r = &mut results[i];
        r.blocked_by = Some(BlockedBy {
            monitor: root_name.clone(),
            failure,
            message: message.clone(),
            own_failure: r.failure,
            own_phase: r.failed_phase,
        });
        r.message = format!(
            "blocked by dependency {root_name} ({}): {message}; own check: {}",
            failure.map(|f| f.as_str()).unwrap_or("down"),
            r.message
        );
        r.failure = Some(FailureKind::BlockedByDependency);
    }
    for r in results.iter_mut() {
        r.blocking.sort();
    }
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

    fn result(name: &str, status: Status, failure: Option<FailureKind>) -> ProbeResult {
        ProbeResult {
            status,
            failure,
            message: format!("{name} said so"),
            ..serde_json::from_value(serde_json::json!({
                "monitor": name, "host": "h", "port": 1, "tls_mode": "none",
                "auth_method": "none", "status": "up", "message": "",
                "response_time_ms": 1.0, "warning_ms": 1, "critical_ms": 2,
                "phases": [], "started_at": "2026-01-01T00:00:00Z"
            }))
            .unwrap()
        }
    }

    #[test]
    fn the_root_of_a_chain_blocks_everything_below_it() {
        let deps: HashMap<String, Vec<String>> = [
            ("tcp", vec!["dns"]),
            ("pop3", vec!["tcp"]),
            ("smtp", vec!["tcp"]),
            ("other", vec!["tcp"]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        let refused = Some(FailureKind::ConnectionRefused);
        let mut results = vec![
            result("dns", Status::Up, None),
            result("tcp", Status::Down, refused),
            result("pop3", Status::Down, refused),
            result("smtp", Status::Down, Some(FailureKind::Timeout)),
            result("other", Status::Up, None),
        ];
        apply_dependencies(&mut results, &deps);
        assert_eq!(results[1].failure, refused, "the root keeps its own cause");
        assert_eq!(results[1].blocking, ["pop3", "smtp"]);
        for r in &results[2..4] {
            assert_eq!(r.failure, Some(FailureKind::BlockedByDependency));
            let b = r.blocked_by.as_ref().unwrap();
            assert_eq!((b.monitor.as_str(), b.failure), ("tcp", refused));
            assert!(
                r.message
                    .starts_with("blocked by dependency tcp (connection_refused)"),
                "{}",
                r.message
            );
        }
        assert_eq!(
            results[3].blocked_by.as_ref().unwrap().own_failure,
            Some(FailureKind::Timeout)
        );
        assert_eq!(results[4].blocked_by, None, "up stays up");

        // DNS down: the root is the dns monitor, two levels up.
        let mut results = vec![
            result("dns", Status::Down, Some(FailureKind::DnsFailure)),
            result("tcp", Status::Down, Some(FailureKind::DnsFailure)),
            result("pop3", Status::Down, Some(FailureKind::DnsFailure)),
        ];
        apply_dependencies(&mut results, &deps);
        assert_eq!(results[0].blocking, ["pop3", "tcp"]);
        assert_eq!(results[2].blocked_by.as_ref().unwrap().monitor, "dns");
        assert_eq!(
            results[2].blocked_by.as_ref().unwrap().failure,
            Some(FailureKind::DnsFailure)
        );
    }

    #[test]
    fn a_dependency_without_a_result_blocks_no_one() {
        let deps: HashMap<String, Vec<String>> =
            [("pop3".to_string(), vec!["skipped".to_string()])]
                .into_iter()
                .collect();
        let mut results = vec![result("pop3", Status::Down, Some(FailureKind::Timeout))];
        apply_dependencies(&mut results, &deps);
        assert_eq!(results[0].failure, Some(FailureKind::Timeout));
    }
}
