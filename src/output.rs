//! Rendering a probe result for people (a phase table), machines (JSON) and
//! Nagios/Icinga (one status line with perfdata, and the plugin exit code).

use std::fmt::Write as _;

use crate::net::Verification;
use crate::probe::{FailureKind, Kind, Phase, ProbeResult, Status, Target};
use crate::wire::Direction;

/// Exit codes shared by every output mode, as the Nagios plugin API has them.
pub const EXIT_OK: i32 = 0;
pub const EXIT_WARNING: i32 = 1;
pub const EXIT_CRITICAL: i32 = 2;
pub const EXIT_UNKNOWN: i32 = 3;

/// Up 0, degraded 1, down 2; a monitor that could not even be set up (its
/// own configuration is broken) is UNKNOWN, as Nagios expects.
pub fn exit_code(r: &ProbeResult) -> i32 {
    match (r.status, r.failure) {
        (_, Some(FailureKind::ConfigError)) => EXIT_UNKNOWN,
        (Status::Up, _) => EXIT_OK,
        (Status::Degraded, _) => EXIT_WARNING,
        (Status::Down, _) => EXIT_CRITICAL,
    }
}

/// The full result as pretty JSON: the `probe_result` document
/// (`crate::contract`).
pub fn json(r: &ProbeResult) -> String {
    serde_json::to_string_pretty(&crate::contract::ProbeResultDocument::new(r))
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn mode_label(r: &ProbeResult) -> String {
    match r.kind {
        Kind::Pop3 => format!("tls {}, auth {}", r.tls_mode, r.auth_method),
        Kind::Smtp => format!("smtp, tls {}, auth {}", r.tls_mode, r.auth_method),
        Kind::Tcp => "tcp connect".to_string(),
        Kind::Dns => "dns".to_string(),
        Kind::Roundtrip => format!("round trip, retrieve tls {}", r.tls_mode),
    }
}

/// `host:port`, or the bare name for a DNS check (which has no port).
fn endpoint(r: &ProbeResult) -> String {
    if r.kind == Kind::Dns {
        r.host.clone()
    } else {
        format!("{}:{}", r.host, r.port)
    }
}

/// A summary with a phase table.
pub fn human(r: &ProbeResult) -> String {
    let mut out = String::new();
    let status = r.status.as_str().to_uppercase();
    let _ = writeln!(out, "{status} {} ({})", endpoint(r), mode_label(r));
    if let Some(kind) = r.failure {
        match r.failed_phase {
            Some(phase) => {
                let _ = writeln!(out, "  failure   {kind} in {phase}");
            }
            None => {
                let _ = writeln!(out, "  failure   {kind}");
            }
        }
    }
    let _ = writeln!(out, "  result    {}", r.message);
    if let Some(reply) = &r.server_reply {
        let _ = writeln!(out, "  server    {reply}");
    }
    if let Some(addr) = &r.address {
        let _ = writeln!(out, "  address   {addr}");
    }
    let _ = writeln!(out, "  time      {:.1} ms", r.response_time_ms);
    if let Some(o) = &r.oauth2 {
        let mut line = format!("grant {}", o.grant);
        if let Some(host) = &o.token_endpoint {
            line.push_str(&format!(" from {host}"));
        }
        if let Some(left) = o.token_remaining_s {
            line.push_str(&format!(", token valid {left} s more"));
        }
        if o.cached {
            line.push_str(" (cached)");
        }
        if o.refetched {
            line.push_str(", refused cached token replaced");
        }
        if o.insecure_http {
            line.push_str(", INSECURE plain http:// token endpoint");
        }
        if let Some(e) = &o.error {
            line.push_str(&format!(", error {e}"));
            if let Some(d) = &o.error_description {
                line.push_str(&format!(": {d}"));
            }
        }
        if let Some(c) = &o.category {
            line.push_str(&format!(" [{c}]"));
        }
        if let Some(st) = &o.server_status {
            line.push_str(&format!(", server status {st}"));
        }
        let _ = writeln!(out, "  oauth2    {line}");
    }
    if let Some(tls) = &r.tls {
        let verified = match tls.verified {
            Verification::Passed => "",
            Verification::NotAsked => "  [CERTIFICATE NOT VERIFIED]",
            Verification::Failed(_) => "  [CERTIFICATE DID NOT VERIFY]",
        };
        let _ = writeln!(
            out,
            "  tls       {} {}{}",
            tls.version, tls.cipher, verified
        );
        if let Some(c) = &tls.certificate {
            let names = if c.names.is_empty() {
                c.subject.clone()
            } else {
                c.names.join(", ")
            };
            let _ = writeln!(
                out,
                "  cert      {names}; expires {} ({} days); issuer {}",
                c.not_after, c.days_remaining, c.issuer
            );
        }
    }
    if r.tls_fallback {
        let _ = writeln!(out, "  tls       NONE: fell back to plaintext");
    }
    if let Some(caps) = &r.capabilities {
        let mut list: Vec<&str> = Vec::new();
        if caps.stls {
            list.push("STLS");
        }
        if caps.user {
            list.push("USER");
        }
        if r.apop_offered {
            list.push("APOP");
        }
        if caps.pipelining {
            list.push("PIPELINING");
        }
        let sasl = if caps.sasl.is_empty() {
            String::new()
        } else {
            format!(" SASL({})", caps.sasl_list())
        };
        let _ = writeln!(out, "  caps      {}{}", list.join(" "), sasl);
    }
    if let Some(m) = &r.mailbox {
        let _ = writeln!(
            out,
            "  mailbox   {} messages, {} octets",
            m.messages, m.octets
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  WARNING   {w}");
    }
    let _ = writeln!(out, "  phase          ms");
    for p in &r.phases {
        let mark = if Some(p.phase) == r.failed_phase {
            "  <- failed"
        } else {
            ""
        };
        let _ = writeln!(out, "  {:<10} {:>8.3}{mark}", p.phase.as_str(), p.ms);
    }
    out
}

/// The masked dialogue, `C:`/`S:` prefixed, for `--verbose`.
pub fn transcript(r: &ProbeResult) -> String {
    let mut out = String::new();
    for line in &r.transcript {
        let who = match line.direction {
            Direction::Client => "C:",
            Direction::Server => "S:",
        };
        let _ = writeln!(out, "{who} {}", line.line);
    }
    out
}

/// Nagios plugin output: `POP3 STATE - text | perfdata`, one line.
/// Thresholds in perfdata are in seconds, as check_pop reports `time`.
pub fn nagios(r: &ProbeResult, target: &Target) -> String {
    nagios_rated(r, target, &crate::nagios::Thresholds::of(target))
}

/// [`nagios`] with the threshold ranges the result was rated against
/// (`check -w 10: -D 14,7`): they are the perfdata's warn and crit fields,
/// in range syntax where they are not a plain threshold.
pub fn nagios_rated(
    r: &ProbeResult,
    target: &Target,
    ranges: &crate::nagios::Thresholds,
) -> String {
    let state = match exit_code(r) {
        EXIT_OK => "OK",
        EXIT_WARNING => "WARNING",
        EXIT_CRITICAL => "CRITICAL",
        _ => "UNKNOWN",
    };
    let service = r.kind.as_str().to_ascii_uppercase();
    let mut text = format!("{service} {state} - {} ", endpoint(r));
    match (r.failure, r.failed_phase) {
        (Some(kind), Some(phase)) => {
            let _ = write!(text, "{kind} in {phase}: {}", r.message);
        }
        (Some(kind), None) => {
            let _ = write!(text, "{kind}: {}", r.message);
        }
        (None, _) => {
            let _ = write!(text, "{} in {:.1} ms", r.message, r.response_time_ms);
        }
    }
    let days = r
        .tls
        .as_ref()
        .and_then(|t| t.certificate.as_ref())
        .map(|c| c.days_remaining);
    if let (Some(days), None) = (days, r.failure) {
        let _ = write!(text, ", certificate expires in {days} days");
    }
    for w in &r.warnings {
        let _ = write!(text, "; WARNING: {w}");
    }
    // `|` separates perfdata; a server reply must not inject any.
    let text = text.replace('|', "/");
    let secs = |ms: f64| ms / 1000.0;
    let (warn, crit) = ranges.time_perfdata();
    let mut perf = format!(
        "time={:.6}s;{warn};{crit};0.000000;{:.6}",
        secs(r.response_time_ms),
        target.timeout.as_secs_f64()
    );
    for phase in Phase::ALL {
        if let Some(ms) = r.phase_ms(phase) {
            let _ = write!(perf, " {}={:.6}s", phase.as_str(), secs(ms));
        }
    }
    if let Some(m) = &r.mailbox {
        let _ = write!(perf, " messages={};;;0 size={}B;;;0", m.messages, m.octets);
    }
    if let Some(c) = r.tls.as_ref().and_then(|t| t.certificate.as_ref()) {
        let range = |r: Option<crate::nagios::Range>| {
            r.map(|r| r.render(crate::nagios::days)).unwrap_or_default()
        };
        let _ = write!(
            perf,
            " cert_days={};{};{};;",
            c.days_remaining,
            range(ranges.days_warning),
            range(ranges.days_critical)
        );
    }
    format!("{text} | {perf}\n")
}
