//! Prometheus exposition: the text format (0.0.4) and OpenMetrics 1.0, for
//! `serve`'s `/probe` and `/metrics` and for `run --metrics prometheus`
//! (node_exporter's textfile collector).
//!
//! Names follow blackbox_exporter's where the meaning is the same
//! (`probe_success`, `probe_duration_seconds`, `probe_ssl_earliest_cert_expiry`,
//! `probe_tls_version_info`, `probe_dns_lookup_time_seconds`), so existing
//! dashboards and alert rules keep working. Label values come only from the
//! operator's config and from our own closed enums (phase, failure kind,
//! login method, TLS version): nothing a server sends becomes a label, and
//! no credential is ever one.

use std::fmt::Write as _;

use crate::probe::{AuthMethod, ProbeResult, Status};

/// Which exposition format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// From an `Accept` header: OpenMetrics when it is offered at all (as
    /// Prometheus does when it prefers it), the classic text otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a)
                if a.split(',').any(|part| {
                    part.trim()
                        .to_ascii_lowercase()
                        .starts_with("application/openmetrics-text")
                }) =>
            {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Gauge,
    Counter,
}

/// Escape a label value: backslash, double quote and line feed, as both
/// formats require. Everything else is passed through (UTF-8 is allowed).
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// One metric family being written: header once, then its samples.
pub struct Family<'a> {
    out: &'a mut Exposition,
    name: &'static str,
}

impl Family<'_> {
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let out = &mut self.out.text;
        out.push_str(self.name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"{}\"", escape_label(v));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", number(value));
        self
    }
}

/// An exposition document under construction.
pub struct Exposition {
    format: Format,
    text: String,
}

impl Exposition {
    pub fn new(format: Format) -> Exposition {
        Exposition {
            format,
            text: String::new(),
        }
    }

    /// Start a family. A counter's name ends in `_total`; OpenMetrics names
    /// the family without it.
    pub fn family(&mut self, name: &'static str, kind: Type, help: &str) -> Family<'_> {
        let family_name = match (self.format, kind) {
            (Format::OpenMetrics, Type::Counter) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let kind = match kind {
            Type::Gauge => "gauge",
            Type::Counter => "counter",
        };
        let _ = writeln!(self.text, "# HELP {family_name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {family_name} {kind}");
        Family { out: self, name }
    }

    /// A comment line (text format only; OpenMetrics has no comments).
    pub fn comment(&mut self, text: &str) {
        if self.format == Format::Text {
            let _ = writeln!(self.text, "# {}", text.replace('\n', " "));
        }
    }

    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.text.push_str("# EOF\n");
        }
        self.text
    }
}

/// The login method as a label: the name users know.
fn login_method(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::Apop => "apop",
        AuthMethod::User => "user",
        AuthMethod::SaslPlain => "plain",
        AuthMethod::SaslLogin => "login",
        AuthMethod::Xoauth2 => "xoauth2",
        AuthMethod::Oauthbearer => "oauthbearer",
        AuthMethod::Auto => "auto",
        AuthMethod::None => "none",
    }
}

/// blackbox writes "TLS 1.3"; our results say "TLSv1.3".
fn tls_version_label(v: &str) -> String {
    match v.strip_prefix("TLSv") {
        Some(rest) => format!("TLS {rest}"),
        None => v.to_string(),
    }
}

fn cert_expiry(r: &ProbeResult) -> Option<f64> {
    let not_after = r.tls.as_ref()?.certificate.as_ref()?.not_after.as_str();
    time::OffsetDateTime::parse(not_after, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp() as f64)
}

/// The per-probe series for `results`. With `monitor_label`, every sample
/// carries `monitor="<name>"` (the textfile, many monitors in one file);
/// without, it is one target's `/probe` answer and Prometheus adds the
/// target's labels itself.
pub fn render_results(results: &[ProbeResult], monitor_label: bool, format: Format) -> String {
    let mut e = Exposition::new(format);
    write_results(&mut e, results, monitor_label);
    e.finish()
}

/// Write the per-probe families into `e` (one header per family).
pub fn write_results(e: &mut Exposition, results: &[ProbeResult], monitor_label: bool) {
    // Each family: its samples per result as (extra labels, value).
    type Samples = Vec<(Vec<(&'static str, String)>, f64)>;
    type Family = (&'static str, &'static str, fn(&ProbeResult) -> Samples);
    let families: [Family; 12] = [
        (
            "probe_success",
            "Whether the probe succeeded (1: up or degraded, 0: down).",
            |r| vec![(vec![], f64::from(u8::from(r.status != Status::Down)))],
        ),
        (
            "probe_degraded",
            "The probe worked but was slower than its warning threshold, or the certificate expires soon.",
            |r| vec![(vec![], f64::from(u8::from(r.status == Status::Degraded)))],
        ),
        (
            "probe_duration_seconds",
            "How long the probe took, all phases.",
            |r| vec![(vec![], r.response_time_ms / 1000.0)],
        ),
        (
            "probe_phase_duration_seconds",
            "Time spent in each phase of the probe.",
            |r| {
                r.phases
                    .iter()
                    .map(|p| (vec![("phase", p.phase.as_str().to_string())], p.ms / 1000.0))
                    .collect()
            },
        ),
        (
            "probe_dns_lookup_time_seconds",
            "Time taken to resolve the host name.",
            |r| {
                r.phase_ms(crate::probe::Phase::Resolve)
                    .map(|ms| vec![(vec![], ms / 1000.0)])
                    .unwrap_or_default()
            },
        ),
        (
            "probe_failure_info",
            "Why a failed probe failed: its failure kind and the phase it failed in.",
            |r| match r.failure {
                Some(kind) => vec![(
                    vec![
                        ("kind", kind.as_str().to_string()),
                        (
                            "phase",
                            r.failed_phase.map(|p| p.as_str()).unwrap_or("").to_string(),
                        ),
                    ],
                    1.0,
                )],
                None => vec![],
            },
        ),
        (
            "probe_ssl_earliest_cert_expiry",
            "The server certificate's notAfter, as a Unix time.",
            |r| {
                cert_expiry(r)
                    .map(|t| vec![(vec![], t)])
                    .unwrap_or_default()
            },
        ),
        (
            "probe_tls_version_info",
            "The TLS version negotiated.",
            |r| match &r.tls {
                Some(t) => vec![(vec![("version", tls_version_label(&t.version))], 1.0)],
                None => vec![],
            },
        ),
        (
            "probe_pop3_login_method_info",
            "How the probe logged in (apop, user, plain, login).",
            |r| match r.auth_used {
                Some(m) => vec![(vec![("method", login_method(m).to_string())], 1.0)],
                None => vec![],
            },
        ),
        (
            "probe_pop3_mailbox_messages",
            "Messages in the maildrop (STAT).",
            |r| match &r.mailbox {
                Some(m) => vec![(vec![], m.messages as f64)],
                None => vec![],
            },
        ),
        (
            "probe_pop3_mailbox_size_bytes",
            "Size of the maildrop in octets (STAT).",
            |r| match &r.mailbox {
                Some(m) => vec![(vec![], m.octets as f64)],
                None => vec![],
            },
        ),
        (
            "probe_attempts",
            "Attempts made (more than 1 when a failure was retried).",
            |r| vec![(vec![], f64::from(r.attempts))],
        ),
    ];
    for (name, help, samples) in families {
        let per_result: Vec<(&ProbeResult, Samples)> =
            results.iter().map(|r| (r, samples(r))).collect();
        if per_result.iter().all(|(_, s)| s.is_empty()) {
            continue;
        }
        let mut fam = e.family(name, Type::Gauge, help);
        for (r, samples) in per_result {
            for (extra, value) in samples {
                let mut labels: Vec<(&str, &str)> = Vec::with_capacity(extra.len() + 1);
                if monitor_label {
                    labels.push(("monitor", r.monitor.as_str()));
                }
                labels.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
                fam.sample(&labels, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::FailureKind;

    fn result(name: &str) -> ProbeResult {
        serde_json::from_value(serde_json::json!({
            "monitor": name, "host": "mail.example.net", "port": 995, "tls_mode": "implicit",
            "auth_method": "auto", "status": "up", "message": "ok",
            "response_time_ms": 12.5, "warning_ms": 2000, "critical_ms": 8000,
            "phases": [{"phase": "resolve", "ms": 0.5}, {"phase": "tls", "ms": 4.0}],
            "started_at": "2026-01-01T00:00:00Z",
            "tls": {"version": "TLSv1.3", "cipher": "TLS13_AES_256_GCM_SHA384", "verified": true,
                    "certificate": {"subject": "CN=x", "issuer": "CN=ca", "names": ["x"],
                                    "not_before": "2026-01-01T00:00:00Z",
                                    "not_after": "2027-01-01T00:00:00Z", "days_remaining": 365}},
            "auth_used": "apop",
            "mailbox": {"messages": 3, "octets": 885}
        }))
        .unwrap()
    }

    #[test]
    fn probe_series_use_blackbox_names() {
        let text = render_results(&[result("m")], false, Format::Text);
        for line in [
            "probe_success 1",
            "probe_degraded 0",
            "probe_duration_seconds 0.0125",
            "probe_phase_duration_seconds{phase=\"resolve\"} 0.0005",
            "probe_phase_duration_seconds{phase=\"tls\"} 0.004",
            "probe_dns_lookup_time_seconds 0.0005",
            "probe_ssl_earliest_cert_expiry 1798761600",
            "probe_tls_version_info{version=\"TLS 1.3\"} 1",
            "probe_pop3_login_method_info{method=\"apop\"} 1",
            "probe_pop3_mailbox_messages 3",
            "probe_pop3_mailbox_size_bytes 885",
            "probe_attempts 1",
            "# TYPE probe_success gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("probe_failure_info"), "{text}");
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn a_failure_is_an_info_metric_with_kind_and_phase() {
        let mut r = result("m");
        r.status = Status::Down;
        r.failure = Some(FailureKind::CertificateExpired);
        r.failed_phase = Some(crate::probe::Phase::Tls);
        let text = render_results(&[r], false, Format::Text);
        assert!(text.contains("probe_success 0\n"), "{text}");
        assert!(
            text.contains("probe_failure_info{kind=\"certificate_expired\",phase=\"tls\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("line\nbreak"), "line\\nbreak");
        let text = render_results(&[result("we\"ird\\\nname")], true, Format::Text);
        assert!(
            text.contains("probe_success{monitor=\"we\\\"ird\\\\\\nname\"} 1\n"),
            "{text}"
        );
        // Every sample line is one line: no raw line feed got through.
        for line in text.lines() {
            assert!(
                line.starts_with('#') || line.starts_with("probe_"),
                "{line:?}"
            );
        }
    }

    #[test]
    fn no_server_text_or_secret_reaches_a_label() {
        let mut r = result("m");
        r.status = Status::Down;
        r.failure = Some(FailureKind::AuthFailed);
        r.failed_phase = Some(crate::probe::Phase::Auth);
        r.message = "-ERR [AUTH] Pr0be-Secret-42 evil".into();
        r.server_reply = Some("-ERR Pr0be-Secret-42".into());
        r.warnings = vec!["Pr0be-Secret-42".into()];
        for f in [Format::Text, Format::OpenMetrics] {
            let text = render_results(&[r.clone()], true, f);
            assert!(!text.contains("Pr0be-Secret-42"), "{text}");
            assert!(!text.contains("evil"), "{text}");
        }
    }

    #[test]
    fn one_header_per_family_across_monitors() {
        let text = render_results(&[result("a"), result("b")], true, Format::Text);
        assert_eq!(text.matches("# TYPE probe_success gauge").count(), 1);
        assert!(text.contains("probe_success{monitor=\"a\"} 1\n"));
        assert!(text.contains("probe_success{monitor=\"b\"} 1\n"));
        assert!(text.contains("probe_phase_duration_seconds{monitor=\"b\",phase=\"tls\"} 0.004\n"));
    }

    #[test]
    fn openmetrics_ends_with_eof_and_names_counter_families_without_total() {
        let mut e = Exposition::new(Format::OpenMetrics);
        e.family("x_probes_total", Type::Counter, "Probes.")
            .sample(&[], 3.0);
        e.comment("dropped in OpenMetrics");
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_probes Probes.\n# TYPE x_probes counter\nx_probes_total 3\n# EOF\n"
        );
        let mut e = Exposition::new(Format::Text);
        e.family("x_probes_total", Type::Counter, "Probes.")
            .sample(&[], 3.0);
        assert!(e
            .finish()
            .starts_with("# HELP x_probes_total Probes.\n# TYPE x_probes_total counter\n"));
    }

    #[test]
    fn accept_header_negotiation() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            Format::OpenMetrics
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(1798761600.0), "1798761600");
    }
}
