//! Wall-clock time, and timestamps as people read them (RFC 3339, UTC).
//! Only for what is recorded or shown: timeouts and deadlines use
//! `tokio::time::Instant`, which the wall clock jumping cannot move.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Since the epoch; zero if the clock is set before it.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    since_epoch().as_millis() as i64
}

/// Whole seconds since the epoch.
pub fn now_secs() -> i64 {
    since_epoch().as_secs() as i64
}

/// Seconds since the epoch, with the fraction (Prometheus timestamps).
pub fn now_secs_f64() -> f64 {
    since_epoch().as_secs_f64()
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// Milliseconds since the epoch as RFC 3339 UTC (whole seconds).
pub fn rfc3339_ms(ms: i64) -> String {
    rfc3339(ms.div_euclid(1000))
}

/// Now as RFC 3339 UTC with milliseconds: they matter when results are
/// compared across a run.
pub fn now_rfc3339() -> String {
    let now = since_epoch();
    let base = rfc3339(now.as_secs() as i64);
    format!("{}.{:03}Z", base.trim_end_matches('Z'), now.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
