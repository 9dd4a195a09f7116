//! Nagios threshold ranges (the plugin guidelines' `10`, `10:`, `~:10`,
//! `10:20`, `@10:20`) for response time and certificate days, and the
//! rating of a result against the ranges the probe engine cannot express
//! itself (a lower bound, an inverted range, a critical certificate age).
//! The engine rates "slower than N" and "expires within N days"; anything
//! else is rated here, after the probe, so the engine stays simple.

use std::fmt;
use std::time::Duration;

use crate::limits;
use crate::probe::{FailureKind, ProbeResult, Status, Target};

/// `[@]start:end`: alert when the value is outside `start..=end`, or
/// inside it with `@`. `start` is `-inf` for `~`, `end` `+inf` when empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub start: f64,
    pub end: f64,
    pub inside: bool,
}

impl Range {
    /// Whether `value` should raise the alert this range stands for.
    pub fn alerts(&self, value: f64) -> bool {
        let within = self.start <= value && value <= self.end;
        within == self.inside
    }

    /// "Alert above `end`" with nothing below 0 excluded: a plain
    /// response-time threshold the engine can apply itself.
    pub fn upper_bound(&self) -> Option<f64> {
        (!self.inside && self.start <= 0.0 && self.end.is_finite()).then_some(self.end)
    }

    /// "Alert below `start`": a plain minimum of days.
    pub fn lower_bound(&self) -> Option<f64> {
        (!self.inside && self.start.is_finite() && self.end == f64::INFINITY).then_some(self.start)
    }

    /// The range as Nagios writes it (for perfdata and messages), each
    /// bound written by `bound`.
    pub fn render(&self, bound: impl Fn(f64) -> String) -> String {
        let mut s = String::new();
        if self.inside {
            s.push('@');
        }
        if self.start == f64::NEG_INFINITY {
            s.push('~');
        } else {
            s.push_str(&bound(self.start));
        }
        s.push(':');
        if self.end.is_finite() {
            s.push_str(&bound(self.end));
        }
        s
    }

    /// Parse `text`; `bound` reads one bound, `plain` turns a lone
    /// number (no `:`) into its range.
    fn parse(
        text: &str,
        bound: impl Fn(&str) -> Result<f64, String>,
        plain: impl Fn(f64) -> Range,
    ) -> Result<Range, String> {
        let text = text.trim();
        let (inside, body) = match text.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if body.is_empty() {
            return Err(format!(
                "{:?} is not a threshold (examples: 2, 10:, ~:10, 5:10, @5:10)",
                crate::text::terminal_safe(text)
            ));
        }
        let Some((start, end)) = body.split_once(':') else {
            let mut r = plain(bound(body)?);
            r.inside = inside;
            return Ok(r);
        };
        let start = match start.trim() {
            "~" => f64::NEG_INFINITY,
            "" => 0.0,
            s => bound(s)?,
        };
        let end = match end.trim() {
            "" => f64::INFINITY,
            e => bound(e)?,
        };
        if start > end {
            return Err(format!(
                "the range {:?} starts after it ends",
                crate::text::terminal_safe(text)
            ));
        }
        Ok(Range { start, end, inside })
    }

    /// A response-time range in seconds. A bound is a plain number of
    /// seconds (`1.5`) or a duration (`800ms`), at most
    /// [`limits::MAX_TIMEOUT`]; a lone value `N` means `0:N` (alert when
    /// slower), as in every monitoring plugin.
    pub fn parse_time(text: &str) -> Result<Range, String> {
        Range::parse(
            text,
            |b| limits::parse_seconds_or_duration(b, limits::MAX_TIMEOUT).map(|d| d.as_secs_f64()),
            |n| Range {
                start: 0.0,
                end: n,
                inside: false,
            },
        )
    }

    /// A certificate-days range. A bound is a whole number of days
    /// (negative: expired), at most [`limits::MAX_CERTIFICATE_WARNING_DAYS`]
    /// either way; a lone value `N` means `N:` (alert when fewer than N
    /// days are left), as check_pop's `-D` and `--cert-warn-days` mean it.
    pub fn parse_days(text: &str) -> Result<Range, String> {
        let max = i64::from(limits::MAX_CERTIFICATE_WARNING_DAYS);
        Range::parse(
            text,
            |b| {
                let d: i128 = b
                    .trim()
                    .parse()
                    .map_err(|e| format!("{e} (a whole number of days)"))?;
                if d.abs() > i128::from(max) {
                    return Err(format!("{d} days: must be at most {max} either way"));
                }
                Ok(d as f64)
            },
            |n| Range {
                start: n,
                end: f64::INFINITY,
                inside: false,
            },
        )
    }
}

/// Seconds for perfdata and messages: `{:.6}`, as the rest of the perfdata.
pub fn seconds(v: f64) -> String {
    format!("{v:.6}")
}

/// Days: whole numbers.
pub fn days(v: f64) -> String {
    format!("{}", v as i64)
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(|v| format!("{v}")))
    }
}

/// `-D WARN[,CRIT]` (check_pop's `--certificate`): the warning and the
/// optional critical certificate-days ranges.
pub fn parse_certificate(text: &str) -> Result<(Range, Option<Range>), String> {
    match text.split_once(',') {
        Some((w, c)) => Ok((Range::parse_days(w)?, Some(Range::parse_days(c)?))),
        None => Ok((Range::parse_days(text)?, None)),
    }
}

/// Every threshold a check is rated against. The engine has already
/// applied the plain ones (`target.warning`/`critical`,
/// `certificate_warning_days`); [`rate`] applies the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub time_warning: Range,
    pub time_critical: Range,
    pub days_warning: Option<Range>,
    pub days_critical: Option<Range>,
}

impl Thresholds {
    /// The plain thresholds a target carries (what the engine rates).
    pub fn of(target: &Target) -> Thresholds {
        let up_to = |d: Duration| Range {
            start: 0.0,
            end: d.as_secs_f64(),
            inside: false,
        };
        Thresholds {
            time_warning: up_to(target.warning),
            time_critical: up_to(target.critical),
            days_warning: target.certificate_warning_days.map(|d| Range {
                start: f64::from(d),
                end: f64::INFINITY,
                inside: false,
            }),
            days_critical: None,
        }
    }

    /// The warning and critical ranges in perfdata form: a plain
    /// threshold as a number (as check_pop writes it), any other range in
    /// range syntax.
    pub fn time_perfdata(&self) -> (String, String) {
        let one = |r: &Range| match r.upper_bound() {
            Some(end) => seconds(end),
            None => r.render(seconds),
        };
        (one(&self.time_warning), one(&self.time_critical))
    }
}

/// Rate `r` against the thresholds the engine could not apply (those that
/// are not a plain upper bound of time or a plain minimum of days). A
/// failed check stays as it is; a critical range makes a working check
/// `down`, a warning range `degraded`.
pub fn rate(r: &mut ProbeResult, t: &Thresholds) {
    if r.failure.is_some() {
        return;
    }
    let secs = r.response_time_ms / 1000.0;
    let ms = r.response_time_ms;
    if t.time_critical.upper_bound().is_none() && t.time_critical.alerts(secs) {
        r.status = Status::Down;
        r.failure = Some(FailureKind::ResponseTimeCritical);
        r.message = format!(
            "{}, but took {ms:.0} ms (critical range {} s)",
            r.message,
            t.time_critical.render(seconds)
        );
        return;
    }
    if t.time_warning.upper_bound().is_none() && t.time_warning.alerts(secs) {
        r.message = format!(
            "{}; response time {ms:.0} ms (warning range {} s)",
            r.message,
            t.time_warning.render(seconds)
        );
        if r.status == Status::Up {
            r.status = Status::Degraded;
        }
    }
    let Some(cert) = r.tls.as_ref().and_then(|t| t.certificate.as_ref()) else {
        return;
    };
    let left = cert.days_remaining as f64;
    let expiry = format!(
        "certificate expires in {} days ({})",
        cert.days_remaining, cert.not_after
    );
    if let Some(crit) = t.days_critical.filter(|c| c.alerts(left)) {
        // No failure kind: the check worked; its certificate is what is
        // critical (the message and the perfdata say so).
        r.status = Status::Down;
        r.message = format!(
            "{}; {expiry}, critical range {} days",
            r.message,
            crit.render(days)
        );
        return;
    }
    let engine_rated = t
        .days_warning
        .is_some_and(|w| w.lower_bound().is_some_and(|d| d >= 0.0));
    if let Some(warn) = t.days_warning.filter(|w| !engine_rated && w.alerts(left)) {
        r.warnings.push(format!(
            "{expiry}, warning range {} days",
            warn.render(days)
        ));
        if r.status == Status::Up {
            r.status = Status::Degraded;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Range {
        Range::parse_time(s).unwrap()
    }

    fn day(s: &str) -> Range {
        Range::parse_days(s).unwrap()
    }

    #[test]
    fn the_guidelines_forms() {
        // 10: alert outside 0..10.
        let r = time("10");
        assert!(!r.alerts(0.0) && !r.alerts(10.0) && r.alerts(10.5));
        assert_eq!(r.upper_bound(), Some(10.0));
        // 10: alert below 10.
        let r = time("10:");
        assert!(r.alerts(9.9) && !r.alerts(10.0) && !r.alerts(1e6));
        assert_eq!(r.upper_bound(), None);
        // ~:10 alert above 10 (no lower bound).
        let r = time("~:10");
        assert!(!r.alerts(0.0) && r.alerts(10.1));
        assert_eq!(r.upper_bound(), Some(10.0));
        // 5:10 alert outside, both ends inclusive.
        let r = time("5:10");
        assert!(r.alerts(4.9) && !r.alerts(5.0) && !r.alerts(10.0) && r.alerts(10.1));
        // @5:10 alert inside.
        let r = time("@5:10");
        assert!(!r.alerts(4.9) && r.alerts(5.0) && r.alerts(10.0) && !r.alerts(10.1));
        assert_eq!(r.upper_bound(), None);
        // @10 alert inside 0..10.
        let r = time("@10");
        assert!(r.alerts(3.0) && !r.alerts(11.0));
    }

    #[test]
    fn time_bounds_are_seconds_or_durations() {
        assert_eq!(time("1.5").end, 1.5);
        assert_eq!(time("800ms").end, 0.8);
        assert_eq!(
            time("500ms:2s"),
            Range {
                start: 0.5,
                end: 2.0,
                inside: false
            }
        );
        assert_eq!(time(" 2 ").end, 2.0);
        for bad in [
            "", "@", "soon", "-1", "5:1", "inf", "NaN", "3601", "2h", "1:x",
        ] {
            assert!(Range::parse_time(bad).is_err(), "{bad:?} parsed");
        }
        assert!(Range::parse_time("3601")
            .unwrap_err()
            .contains("at most 1h"));
        assert!(Range::parse_time("5:1")
            .unwrap_err()
            .contains("starts after it ends"));
    }

    #[test]
    fn days_plain_is_a_minimum() {
        let r = day("14");
        assert!(r.alerts(13.0) && !r.alerts(14.0) && !r.alerts(400.0));
        assert_eq!(r.lower_bound(), Some(14.0));
        let r = day("@0:7");
        assert!(r.alerts(3.0) && !r.alerts(8.0) && !r.alerts(-1.0));
        assert_eq!(r.lower_bound(), None);
        assert!(day("-5:").alerts(-6.0));
        for bad in ["1.5", "x", "3651", "99999999999999999999999", "9:1"] {
            assert!(Range::parse_days(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            parse_certificate("14,7").unwrap(),
            (day("14"), Some(day("7")))
        );
        assert_eq!(parse_certificate("30:").unwrap(), (day("30"), None));
        assert!(parse_certificate("14,").is_err());
    }

    #[test]
    fn rendering_round_trips() {
        for s in ["0:10", "10:", "~:10", "5:10", "@5:10", "@~:3"] {
            let r = time(s);
            assert_eq!(r.to_string(), s);
            assert_eq!(time(&r.render(seconds)), r);
        }
        assert_eq!(day("14").render(days), "14:");
        assert_eq!(time("@5:10").render(seconds), "@5.000000:10.000000");
    }
}
