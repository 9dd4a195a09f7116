//! Every metric the probe publishes, in one table: its name, unit and
//! dimensions. The pipeline publishes only these, the report reads these,
//! and `infra/tests/metrics_vs_code.py` checks that every metric an alarm or
//! the dashboard in `infra/*.tf` names is one of these (it reads the string
//! literals of this file, so keep names here and nowhere else).

use crate::ports::Unit;
use crate::probe::Phase;

/// Which dimensions a metric carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimensions {
    /// `Monitor` = the monitor's name.
    Monitor,
    /// `Shard` = the shard index as a decimal string ("0" unsharded), so a
    /// heartbeat alarm per shard notices one dead shard.
    Shard,
    /// None: one series for the whole fleet.
    None,
}

/// One metric the code publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub dimensions: Dimensions,
}

const fn m(name: &'static str, unit: Unit, dimensions: Dimensions) -> Metric {
    Metric {
        name,
        unit,
        dimensions,
    }
}

// Per monitor.
/// In a multi-vantage run this is the consensus; with `consensus.metrics:
/// per_vantage` each vantage adds its own view under the same name with a
/// `Vantage` dimension beside `Monitor` (docs/vantages.md).
pub const AVAILABILITY: &str = "Availability";
pub const RESPONSE_TIME: &str = "ResponseTime";
pub const CERTIFICATE_DAYS_REMAINING: &str = "CertificateDaysRemaining";
pub const MAILBOX_MESSAGES: &str = "MailboxMessages";
pub const MAILBOX_SIZE: &str = "MailboxSize";
/// Round trip: submitted to found (always published for a round trip that
/// found a message; it is also the `delivery` phase's timing name).
pub const DELIVERY_TIME: &str = "DeliveryTime";
// Per run.
pub const PROBE_RUNS: &str = "ProbeRuns";
pub const MONITORS_UP: &str = "MonitorsUp";
pub const MONITORS_DOWN: &str = "MonitorsDown";
pub const RUN_DURATION: &str = "RunDuration";
/// Alerts SNS (or the local sink) did not accept this run.
pub const ALERTS_FAILED: &str = "AlertsFailed";
/// Values from earlier runs that were still unpublished when this run began.
pub const METRICS_PENDING: &str = "MetricsPending";
/// Monitors not probed because the run's deadline came first.
pub const MONITORS_SKIPPED: &str = "MonitorsSkipped";
/// Monitors whose config entry is unusable (and so are not probed).
pub const MONITORS_MISCONFIGURED: &str = "MonitorsMisconfigured";
/// Multi-vantage: monitors that some vantages, fewer than the quorum, see fail.
pub const MONITORS_PARTIAL: &str = "MonitorsPartial";

/// The per-phase timing of a monitor with `detailed_metrics` (an exhaustive
/// match, so a new phase cannot be published under a name missing here).
pub fn phase_time(p: Phase) -> &'static str {
    match p {
        Phase::Token => "TokenTime",
        Phase::Resolve => "ResolveTime",
        Phase::Connect => "ConnectTime",
        Phase::Tls => "TlsTime",
        Phase::Greeting => "GreetingTime",
        Phase::Ehlo => "EhloTime",
        Phase::Capa => "CapaTime",
        Phase::Stls => "StlsTime",
        Phase::Auth => "AuthTime",
        Phase::Stat => "StatTime",
        Phase::Quit => "QuitTime",
        Phase::Submit => "SubmitTime",
        Phase::Retrieve => "RetrieveTime",
        Phase::Delivery => DELIVERY_TIME,
    }
}

/// Every metric, with its unit and dimensions (phase timings included).
pub fn all() -> Vec<Metric> {
    use Dimensions as D;
    let mut out = vec![
        m(AVAILABILITY, Unit::None, D::Monitor),
        m(RESPONSE_TIME, Unit::Milliseconds, D::Monitor),
        m(CERTIFICATE_DAYS_REMAINING, Unit::None, D::Monitor),
        m(MAILBOX_MESSAGES, Unit::Count, D::Monitor),
        m(MAILBOX_SIZE, Unit::Bytes, D::Monitor),
        m(PROBE_RUNS, Unit::Count, D::Shard),
        m(MONITORS_UP, Unit::Count, D::None),
        m(MONITORS_DOWN, Unit::Count, D::None),
        m(RUN_DURATION, Unit::Milliseconds, D::None),
        m(ALERTS_FAILED, Unit::Count, D::None),
        m(METRICS_PENDING, Unit::Count, D::None),
        m(MONITORS_SKIPPED, Unit::Count, D::None),
        m(MONITORS_MISCONFIGURED, Unit::Count, D::None),
        m(MONITORS_PARTIAL, Unit::Count, D::None),
    ];
    out.extend(
        Phase::ALL
            .iter()
            .map(|&p| m(phase_time(p), Unit::Milliseconds, D::Monitor)),
    );
    out
}

/// The table entry for `name`.
pub fn lookup(name: &str) -> Option<Metric> {
    all().into_iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_cloudwatch_safe() {
        let all = all();
        let mut names: Vec<_> = all.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for n in names {
            assert!(n.chars().all(|c| c.is_ascii_alphanumeric()), "{n}");
            assert!(n.starts_with(|c: char| c.is_ascii_uppercase()), "{n}");
        }
    }

    #[test]
    fn the_alarmed_run_level_names_are_exact() {
        // The infra's alarms use these spellings; a rename breaks them.
        for (name, dims) in [
            ("AlertsFailed", Dimensions::None),
            ("MetricsPending", Dimensions::None),
            ("MonitorsSkipped", Dimensions::None),
            ("MonitorsMisconfigured", Dimensions::None),
            ("ProbeRuns", Dimensions::Shard),
        ] {
            let m = lookup(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!((m.unit, m.dimensions), (Unit::Count, dims), "{name}");
        }
    }
}
