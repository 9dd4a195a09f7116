//! `pop3-probe discover TARGET...`: find the POP3 endpoints of some hosts
//! and propose a monitor list for them, without logging in.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};

use pop3_probe::discover::{
    self, Endpoint, Found, Options, ProposalSettings, ProposedConfig, StlsResult, TargetError,
};
use pop3_probe::net::{self, TlsClient};
use pop3_probe::probe::{AuthMethod, FailureKind, TlsMode};
use pop3_probe::text::terminal_safe;
use pop3_probe::{limits, output};

use super::init::write_output;

/// No monitor to propose (usage errors are 3, as everywhere in the CLI).
const EXIT_NOTHING_FOUND: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The proposed monitor list (JSON, loads with `run --config`) on
    /// stdout or --output; the table on stderr.
    Config,
    /// Everything found (greetings, CAPA, STLS, certificates, the
    /// connections made) plus the proposed config, as JSON; the table on stderr.
    Json,
    /// Only the table, on stdout or --output.
    Table,
}

/// A connection's durations: more than 0, at most [`limits::MAX_TIMEOUT`]
/// (a larger one overflowed when added to the clock).
fn duration(s: &str) -> Result<Duration, String> {
    limits::parse_positive_duration(s, limits::MAX_TIMEOUT)
}

fn max_hosts(s: &str) -> Result<usize, String> {
    // Parsed wide so that a huge number gets the limit, not "too large".
    let n: u128 = s.trim().parse().map_err(|e| format!("{e}"))?;
    limits::at_most(n, limits::MAX_DISCOVER_HOSTS as u128).map(|n| n as usize)
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  # The usual ports (110 and 995) of one server; config to a file, table on the terminal:
  pop3-probe discover mail.example.com --user monitor@example.com > monitors.json

  # A test server on its own ports only, trusting a private CA:
  pop3-probe discover 127.0.0.1 --only-ports -p 2110 -p 2995 --ca-file /etc/ssl/private-ca.pem -o monitors.json

  # A small network, everything found as JSON:
  pop3-probe discover 192.0.2.0/28 2001:db8::/124 --format json

Per host and port it connects, tells plaintext POP3 from implicit TLS by what
the server sends first, reads the greeting (APOP) and CAPA (SASL, LOGIN-DELAY),
tries STLS, and describes the certificate even when it does not verify. It
never logs in: the only commands sent are CAPA, STLS and QUIT. Only the hosts
given are contacted.

Proposed monitors, one per working connection type: implicit TLS -> tls
implicit; plaintext with working STLS -> tls starttls; plaintext without TLS ->
tls none with auth apop when the greeting offers APOP, else auth none (a
connectivity check: the password would cross in cleartext). Every note is in
the monitor's `notes`.

Exit codes: 0 at least one monitor proposed, 1 nothing found, 3 usage error.")]
pub struct DiscoverArgs {
    /// Host names, IP addresses or CIDR blocks (IPv4 or IPv6). Example: 192.0.2.0/28
    #[arg(required = true, value_name = "HOST|CIDR")]
    pub targets: Vec<String>,

    /// Also try this port (repeat for more); 110 and 995 are always tried
    /// unless --only-ports. Example: -p 2110 -p 2995
    #[arg(short, long = "port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,

    /// Try only the --port ports, not 110 and 995.
    #[arg(long, requires = "ports")]
    pub only_ports: bool,

    /// Each connection's time limit (connect, TLS, every reply). Example: --timeout 3s
    #[arg(long, value_parser = duration, default_value = "5s")]
    pub timeout: Duration,

    /// How long a plaintext connection waits for the greeting before
    /// implicit TLS is tried instead (a TLS server waits for the client).
    /// A slower plaintext server is still found, one connection later. Example: --greeting-wait 1s
    #[arg(long, value_parser = duration, default_value = "2s")]
    pub greeting_wait: Duration,

    /// Endpoints (host and port) looked at in parallel. Example: --concurrency 8
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,

    /// Refuse targets that make more hosts than this (CIDR blocks are
    /// counted before anything is contacted); at most 65536. Example: --max-hosts 1024
    #[arg(long, default_value = "256", value_parser = max_hosts)]
    pub max_hosts: usize,

    /// Check certificates against the CAs in this PEM file instead of the
    /// built-in Mozilla roots; the proposed TLS monitors get it as ca_file.
    /// Example: --ca-file /etc/ssl/private-ca.pem
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Send this name as SNI and check certificates for it, on every host;
    /// the proposed TLS monitors get it as tls_server_name. Without it, an
    /// address is checked for the DNS names its certificate carries.
    /// Example: --tls-server-name mail.example.com
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// The technical account's user name, written into the proposed
    /// credentials (nothing logs in with it here). Example: --user monitor@example.com
    #[arg(long)]
    pub user: Option<String>,

    /// The environment variable the proposed credentials read the password
    /// from when the config runs; discovery itself reads no password.
    /// Example: --password-env MONITOR_PASSWORD
    #[arg(long, value_name = "VAR", default_value = discover::DEFAULT_PASSWORD_ENV)]
    pub password_env: String,

    /// What to print. Example: --format json
    #[arg(long, value_enum, default_value = "config")]
    pub format: Format,

    /// Write the config (or JSON, or table) to this file instead of stdout
    /// (refuses to overwrite without --force). Example: -o monitors.json
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Overwrite --output if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,

    /// No table on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Print each endpoint's POP3 dialogue to stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

/// The settings that need checking before anything is contacted.
struct Prepared {
    /// Made one at a time while the work goes on.
    targets: discover::Targets,
    opts: Options,
    settings: ProposalSettings,
}

fn prepare(args: &DiscoverArgs) -> anyhow::Result<Prepared> {
    let targets = discover::plan_targets(&args.targets, args.max_hosts).map_err(|e| match e {
        TargetError::TooMany { count, max } => anyhow::anyhow!(
            "the targets make {count} hosts, more than --max-hosts {max}: narrow the range or raise --max-hosts"
        ),
        other => anyhow::anyhow!(other),
    })?;
    let mut ports: Vec<u16> = if args.only_ports {
        Vec::new()
    } else {
        discover::DEFAULT_PORTS.to_vec()
    };
    for p in &args.ports {
        if !ports.contains(p) {
            ports.push(*p);
        }
    }
    let (tls, ca_file) = match &args.ca_file {
        Some(path) => {
            let pem = limits::read_text_file(path, limits::MAX_CA_FILE_BYTES)
                .map_err(|e| anyhow::anyhow!("--ca-file: {e}"))?;
            let client = TlsClient::from_pem(&pem).context("--ca-file")?;
            // Absolute, so the config works from any directory.
            let abs = std::fs::canonicalize(path)
                .with_context(|| format!("--ca-file: {}", path.display()))?;
            (client, Some(abs))
        }
        None => (TlsClient::webpki(), None),
    };
    if let Some(name) = &args.tls_server_name {
        net::server_name(name).map_err(|e| anyhow::anyhow!("--tls-server-name: {e}"))?;
    }
    if let Some(user) = &args.user {
        if user.is_empty() || user.chars().any(char::is_control) {
            bail!("--user: must be non-empty without control characters");
        }
    }
    let var = &args.password_env;
    let var_ok = var
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !var_ok {
        bail!(
            "--password-env: {:?} is not an environment variable name (letters, digits, _)",
            terminal_safe(var)
        );
    }
    let command = std::iter::once("pop3-probe discover".to_string())
        .chain(args.targets.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Prepared {
        targets,
        opts: Options {
            ports,
            timeout: args.timeout,
            greeting_wait: args.greeting_wait,
            concurrency: usize::from(args.concurrency),
            tls,
            tls_server_name: args.tls_server_name.clone(),
            transcript: args.verbose,
        },
        settings: ProposalSettings {
            username: args.user.clone(),
            password_env: args.password_env.clone(),
            ca_file,
            tls_server_name: args.tls_server_name.clone(),
            command,
        },
    })
}

/// Run discovery and print; returns the exit code.
pub async fn run(args: DiscoverArgs) -> i32 {
    let prepared = match prepare(&args) {
        Ok(p) => p,
        Err(e) => {
            // Targets and file names come back in the message: no
            // control character reaches the terminal.
            eprintln!("pop3-probe discover: {}", terminal_safe(&format!("{e:#}")));
            return output::EXIT_UNKNOWN;
        }
    };
    if let Some(path) = &args.output {
        // Before the work, not after: a long scan should not end in "exists".
        if path.as_os_str() != "-" && path.exists() && !args.force {
            eprintln!(
                "pop3-probe discover: --output: {} exists (use --force to overwrite)",
                path.display()
            );
            return output::EXIT_UNKNOWN;
        }
    }
    let endpoints = discover::discover(prepared.targets.hosts(), &prepared.opts).await;
    // Hosts looked at (each once), for the summary line.
    let hosts = {
        let mut seen: Vec<&str> = endpoints.iter().map(|e| e.host.as_str()).collect();
        seen.dedup();
        seen.len()
    };
    let config = discover::proposed_config(&endpoints, &prepared.settings);
    let table = table(&endpoints, &config, &prepared.settings, hosts);
    if args.verbose {
        eprint!("{}", transcripts(&endpoints));
    }
    let text = match args.format {
        Format::Config => pretty(&config),
        Format::Json => pretty(&serde_json::json!({
            "endpoints": &endpoints,
            "config": &config,
        })),
        Format::Table => table.clone(),
    };
    if args.format != Format::Table && !args.quiet {
        eprint!("{table}");
    }
    let written = match &args.output {
        Some(path) if path.as_os_str() != "-" => write_output(path, &text, args.force).map(|()| {
            if !args.quiet {
                eprintln!("written to {}", path.display());
            }
        }),
        _ => {
            print!("{text}");
            Ok(())
        }
    };
    if let Err(e) = written {
        eprintln!("pop3-probe discover: --output: {e:#}");
        return output::EXIT_UNKNOWN;
    }
    if config.monitors.is_empty() {
        EXIT_NOTHING_FOUND
    } else {
        output::EXIT_OK
    }
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn found_label(ep: &Endpoint) -> String {
    match ep.found {
        Found::Pop3s => "pop3s (implicit TLS)".into(),
        Found::Pop3 => match ep.stls.as_ref().map(|s| s.result) {
            Some(StlsResult::Ok) => "pop3 + STLS".into(),
            Some(StlsResult::TlsFailed) => "pop3, STLS broken".into(),
            _ => "pop3, no TLS".into(),
        },
        other => other.as_str().replace('_', " "),
    }
}

fn certificate_label(ep: &Endpoint) -> String {
    let Some(tls) = &ep.tls else {
        return "-".into();
    };
    let Some(cert) = &tls.facts.certificate else {
        return tls.failure.map_or("none", FailureKind::as_str).to_string();
    };
    match tls.failure {
        None => format!(
            "ok for {}, {} days left",
            tls.server_name, cert.days_remaining
        ),
        Some(FailureKind::CertificateExpired) => {
            format!("EXPIRED {} days ago", -cert.days_remaining)
        }
        Some(FailureKind::CertificateNotYetValid) => "NOT YET VALID".into(),
        Some(FailureKind::CertificateNameMismatch) => format!("NOT FOR {}", tls.server_name),
        Some(_) => "UNTRUSTED".into(),
    }
}

/// One row per endpoint, then what needs a person's attention.
fn table(
    endpoints: &[Endpoint],
    config: &ProposedConfig,
    settings: &ProposalSettings,
    hosts: usize,
) -> String {
    let header = [
        "HOST",
        "PORT",
        "FOUND",
        "TLS",
        "CERTIFICATE",
        "APOP",
        "SASL",
        "LOGIN-DELAY",
        "MONITOR",
    ];
    let mut rows: Vec<[String; 9]> = Vec::new();
    let mut attention: Vec<String> = Vec::new();
    let mut proposed = 0;
    for ep in endpoints {
        let pop3 = ep.found.is_pop3();
        // The config's monitor, not `propose`'s: the config may have
        // changed its login (LOGIN-DELAY).
        let proposal = config
            .monitors
            .iter()
            .find(|m| m.host == ep.host && m.port == ep.port)
            .ok_or_else(|| discover::propose(ep, settings).err().unwrap_or_default());
        let where_ = format!("{}:{}", ep.host, ep.port);
        let monitor = match &proposal {
            Ok(m) => {
                proposed += 1;
                m.name.clone()
            }
            Err(_) => "-".into(),
        };
        let sasl = ep.sasl();
        rows.push([
            ep.host.clone(),
            ep.port.to_string(),
            found_label(ep),
            ep.tls
                .as_ref()
                .map(|t| t.facts.version.clone())
                .unwrap_or_else(|| "-".into()),
            certificate_label(ep),
            if pop3 {
                if ep.apop { "yes" } else { "no" }.into()
            } else {
                "-".into()
            },
            if sasl.is_empty() {
                "-".into()
            } else {
                sasl.join(",")
            },
            ep.login_delay()
                .map(|d| format!("{d} s"))
                .unwrap_or_else(|| "-".into()),
            monitor,
        ]);
        if let Some(tls) = ep.tls.as_ref().filter(|_| pop3) {
            if let (Some(kind), Some(what)) = (tls.failure, discover::certificate_problem(tls)) {
                attention.push(format!("{where_}: {kind}: {what}"));
            }
        }
        if let Some(d) = ep.login_delay() {
            attention.push(format!(
                "{where_}: LOGIN-DELAY {d}: schedule the monitor less often than every {d} s"
            ));
        }
        match &proposal {
            Ok(m) if m.tls == TlsMode::None => attention.push(format!(
                "{where_}: no TLS: proposed with auth {} ({})",
                m.auth,
                if m.auth == AuthMethod::Apop {
                    "the password stays off the wire, the session is not encrypted"
                } else {
                    "a connectivity check: a login would send the password in cleartext"
                }
            )),
            Ok(m) if m.auth == AuthMethod::None => attention.push(format!(
                "{where_}: {} does not log in (auth none): another monitor of this mailbox does, within LOGIN-DELAY",
                m.name
            )),
            Ok(_) => {}
            Err(why) if pop3 => attention.push(format!("{where_}: not proposed: {why}")),
            Err(_) => {}
        }
    }
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut out, &header.map(String::from));
    for row in &rows {
        line(&mut out, row);
    }
    if !attention.is_empty() {
        let _ = writeln!(out, "\nAttention:");
        for a in &attention {
            let _ = writeln!(out, "  {a}");
        }
    }
    let found = endpoints.iter().filter(|e| e.found.is_pop3()).count();
    let _ = writeln!(
        out,
        "\n{} endpoint(s) on {hosts} host(s): {found} POP3, {proposed} monitor(s) proposed; nothing logged in.",
        endpoints.len()
    );
    out
}

fn transcripts(endpoints: &[Endpoint]) -> String {
    let mut out = String::new();
    for ep in endpoints.iter().filter(|e| !e.transcript.is_empty()) {
        let _ = writeln!(out, "== {}:{}", ep.host, ep.port);
        for l in &ep.transcript {
            let who = match l.direction {
                pop3_probe::wire::Direction::Client => "C:",
                pop3_probe::wire::Direction::Server => "S:",
            };
            let _ = writeln!(out, "{who} {}", l.line);
        }
    }
    out
}
