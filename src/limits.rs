//! The largest value every duration, count and file the probe takes may
//! have, and the checks that enforce them. Without a ceiling a value that
//! parses can still break the probe later: `--timeout 18446744073709551615s`
//! overflowed when added to an `Instant`, a `renotify_minutes` of 2e14
//! overflowed in the alert machine, `--password-file /dev/zero` grew to
//! gigabytes. Each limit is far above any sensible setting, so only a
//! mistake (or an attack) meets it, and it is met with an error that names
//! the flag or the JSON path.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

/// One probe's (or one discovery connection's) time limit: `--timeout`,
/// `timeout_ms`, `phase_timeout_ms`, the thresholds. An hour is far beyond
/// any mail server that still counts as up.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3_600);

/// A whole run: `run.deadline_ms`. A day, for a local `run` over a huge
/// list (the Lambda's own limit, 15 minutes, applies on top there).
pub const MAX_DEADLINE: Duration = Duration::from_secs(86_400);

/// `run.retry_delay_ms`: a pause longer than this is not a retry any more.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);

/// `run.secrets_ttl_seconds`, `run.schedule_seconds` and `run --every`: a week.
pub const MAX_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

/// `renotify_minutes`: a year.
pub const MAX_RENOTIFY_MINUTES: u64 = 366 * 24 * 60;

/// `certificate_warning_days`, `--cert-warn-days`: ten years (longer than
/// any public certificate lives).
pub const MAX_CERTIFICATE_WARNING_DAYS: u32 = 3_650;

/// `failures_before_alert`.
pub const MAX_FAILURES_BEFORE_ALERT: u32 = 10_000;

/// `discover --max-hosts`: a /16. Targets are generated one by one, but
/// every endpoint found is kept for the proposal, so the count still
/// bounds memory.
pub const MAX_DISCOVER_HOSTS: usize = 65_536;

/// A password file: a password is a line, not a document.
pub const MAX_PASSWORD_FILE_BYTES: u64 = 64 * 1024;

/// A CA bundle (`--ca-file`, `ca_file`): the whole Mozilla bundle is about
/// 200 KB.
pub const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A monitor list (`--config`): 50,000 monitors fit in well under this.
pub const MAX_CONFIG_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Humantime's words, with the ceiling named in the error. For clap's
/// `value_parser`: clap puts the flag's name in front of the message.
pub fn parse_duration(text: &str, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (examples: 800ms, 3s, 1m)"))?;
    if d > max {
        return Err(format!(
            "must be at most {}",
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// A plain number of seconds (`1.5`, as every monitoring plugin takes
/// `-w`/`-c`/`-t`) or humantime's words (`800ms`), at most `max`.
pub fn parse_seconds_or_duration(text: &str, max: Duration) -> Result<Duration, String> {
    let t = text.trim();
    let Ok(secs) = t.parse::<f64>() else {
        return parse_duration(t, max);
    };
    if secs.is_nan() || secs < 0.0 {
        return Err(format!("{t} is not a number of seconds of 0 or more"));
    }
    if secs > max.as_secs_f64() {
        return Err(format!(
            "must be at most {}",
            humantime::format_duration(max)
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// [`parse_duration`] that also refuses zero.
pub fn parse_positive_duration(text: &str, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(text, max)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

/// `run --every`: at most [`MAX_INTERVAL`], more than 0.
pub fn parse_every(text: &str) -> Result<Duration, String> {
    parse_positive_duration(text, MAX_INTERVAL)
}

/// A count or duration from the config against its ceiling; the message
/// is for a [`crate::config::ConfigError`] at the field's path.
pub fn at_most<T: PartialOrd + std::fmt::Display>(value: T, max: T) -> Result<T, String> {
    if value > max {
        Err(format!("{value} is more than the maximum, {max}"))
    } else {
        Ok(value)
    }
}

/// Why a file could not be read into memory.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is larger than {max} bytes, more than this file can sensibly hold")]
    TooLarge { path: String, max: u64 },
    #[error("{path} is not UTF-8 text")]
    NotText { path: String },
}

/// Read a text file of at most `max` bytes. Reads `max + 1` bytes at most,
/// so `/dev/zero` or a huge file costs no more than the limit.
pub fn read_text_file(path: &Path, max: u64) -> Result<String, ReadError> {
    let shown = || crate::text::terminal_safe(&path.display().to_string());
    let io = |source| ReadError::Io {
        path: shown(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge { path: shown(), max });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText { path: shown() })
}

/// The first line of a password file, capped at [`MAX_PASSWORD_FILE_BYTES`].
/// Errors are messages for the caller to prefix with the flag or path.
pub fn read_password_file(path: &Path) -> Result<String, String> {
    let text = read_text_file(path, MAX_PASSWORD_FILE_BYTES).map_err(|e| e.to_string())?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(format!(
            "{} is empty",
            crate::text::terminal_safe(&path.display().to_string())
        ));
    }
    Ok(line)
}

/// A threshold that conflicts with another setting the user wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdConflict {
    /// The critical threshold the user set is longer than the timeout.
    CriticalOverTimeout {
        critical: Duration,
        timeout: Duration,
    },
    /// The warning threshold the user set is not below the critical one;
    /// `critical_set`: the user set that too (else it follows the timeout).
    WarningNotBelowCritical {
        warning: Duration,
        critical: Duration,
        critical_set: bool,
    },
}

/// The warning and critical thresholds of a probe with this timeout. A
/// threshold the user did not set follows the timeout: critical is the
/// default or the timeout, whichever is shorter, and warning the default
/// or critical, whichever is shorter; so `--timeout 3s` alone works. Only
/// thresholds the user set can conflict, and the error says which.
pub fn thresholds(
    timeout: Duration,
    warning: Option<Duration>,
    critical: Option<Duration>,
) -> Result<(Duration, Duration), ThresholdConflict> {
    use crate::probe::{DEFAULT_CRITICAL, DEFAULT_WARNING};
    let crit = match critical {
        Some(c) if c > timeout => {
            return Err(ThresholdConflict::CriticalOverTimeout {
                critical: c,
                timeout,
            })
        }
        Some(c) => c,
        None => DEFAULT_CRITICAL.min(timeout),
    };
    let warn = match warning {
        Some(w) if w >= crit => {
            return Err(ThresholdConflict::WarningNotBelowCritical {
                warning: w,
                critical: crit,
                critical_set: critical.is_some(),
            })
        }
        Some(w) => w,
        None => DEFAULT_WARNING.min(crit),
    };
    Ok((warn, crit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_thresholds_follow_the_timeout() {
        let s = Duration::from_secs;
        assert_eq!(thresholds(s(10), None, None), Ok((s(2), s(8))));
        assert_eq!(thresholds(s(3), None, None), Ok((s(2), s(3))));
        assert_eq!(thresholds(s(1), None, None), Ok((s(1), s(1))));
        assert_eq!(thresholds(s(3), None, Some(s(1))), Ok((s(1), s(1))));
        assert_eq!(thresholds(s(3), Some(s(1)), None), Ok((s(1), s(3))));
        assert_eq!(
            thresholds(s(3), None, Some(s(5))),
            Err(ThresholdConflict::CriticalOverTimeout {
                critical: s(5),
                timeout: s(3)
            })
        );
        assert_eq!(
            thresholds(s(3), Some(s(4)), None),
            Err(ThresholdConflict::WarningNotBelowCritical {
                warning: s(4),
                critical: s(3),
                critical_set: false
            })
        );
        assert!(thresholds(s(10), Some(s(5)), Some(s(5))).is_err());
    }

    #[test]
    fn durations_have_a_ceiling() {
        assert_eq!(
            parse_duration("3s", MAX_TIMEOUT),
            Ok(Duration::from_secs(3))
        );
        let e = parse_duration("18446744073709551615s", MAX_TIMEOUT).unwrap_err();
        assert_eq!(e, "must be at most 1h");
        assert!(parse_duration("soon", MAX_TIMEOUT)
            .unwrap_err()
            .contains("examples"));
        assert_eq!(
            parse_positive_duration("0s", MAX_TIMEOUT).unwrap_err(),
            "must be more than 0"
        );
        assert_eq!(parse_every("8d").unwrap_err(), "must be at most 7days");
        // Numbers past u64 seconds do not parse at all (no panic).
        assert!(parse_duration("99999999999999999999999s", MAX_TIMEOUT).is_err());
        assert_eq!(
            at_most(5u64, 4).unwrap_err(),
            "5 is more than the maximum, 4"
        );
    }

    #[test]
    fn plain_numbers_are_seconds() {
        let m = MAX_TIMEOUT;
        assert_eq!(
            parse_seconds_or_duration("1.5", m),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_seconds_or_duration(" 10 ", m),
            Ok(Duration::from_secs(10))
        );
        assert_eq!(
            parse_seconds_or_duration("800ms", m),
            Ok(Duration::from_millis(800))
        );
        assert_eq!(parse_seconds_or_duration("3600", m), Ok(m));
        assert_eq!(
            parse_seconds_or_duration("3601", m).unwrap_err(),
            "must be at most 1h"
        );
        assert_eq!(
            parse_seconds_or_duration("1e300", m).unwrap_err(),
            "must be at most 1h"
        );
        assert_eq!(
            parse_seconds_or_duration("inf", m).unwrap_err(),
            "must be at most 1h"
        );
        assert!(parse_seconds_or_duration("-1", m).is_err());
        assert!(parse_seconds_or_duration("NaN", m).is_err());
        assert!(parse_seconds_or_duration("soon", m)
            .unwrap_err()
            .contains("examples"));
    }

    #[test]
    fn files_are_read_up_to_their_cap() {
        let e = read_text_file(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { max: 1024, .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "/dev/zero is larger than 1024 bytes, more than this file can sensibly hold"
        );
        let e = read_password_file(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("larger than 65536 bytes"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "secret\nignored\n").unwrap();
        assert_eq!(read_password_file(&p).unwrap(), "secret");
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(read_text_file(&p, 10)
            .unwrap_err()
            .to_string()
            .ends_with("not UTF-8 text"));
        assert!(matches!(
            read_text_file(&dir.path().join("missing"), 10),
            Err(ReadError::Io { .. })
        ));
    }
}
