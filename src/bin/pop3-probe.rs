//! The command-line tool: `check` one endpoint, `run` a monitor list.

#[path = "../cli/mod.rs"]
mod cli;

use clap::{Parser, Subcommand};

/// POP3 mail-server monitor: checks connectivity, TLS and login the way a
/// mail client does, and says exactly which step failed and why. Never
/// changes a mailbox: it sends no DELE, RETR, TOP or RSET.
#[derive(Debug, Parser)]
#[command(name = "pop3-probe", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Check one POP3 endpoint (also a Nagios/Icinga plugin with --format nagios).
    Check(cli::check::CheckArgs),
    /// Probe every monitor of a config, publish metrics, alert on transitions.
    Run(cli::run::RunArgs),
    /// Availability, outages and response-time percentiles over a period, from CloudWatch or a local history.
    Report(cli::report::ReportArgs),
    /// Prometheus exporter: /probe?target=<monitor> (blackbox's multi-target pattern).
    Serve(cli::serve::ServeArgs),
    /// Print the JSON Schema of the monitor list (for editor completion).
    Schema,
    /// Find the POP3 endpoints of hosts or networks and propose a monitor list (never logs in).
    Discover(cli::discover::DiscoverArgs),
    /// Write a starter monitor list for a common setup (Dovecot, Exchange, Gmail, an ISP).
    Init(cli::init::InitArgs),
}

fn main() {
    // Usage errors exit 3 (UNKNOWN), not clap's 2, which Nagios would read
    // as CRITICAL; --help and --version still exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `check` run as a Nagios plugin: the UNKNOWN line and the
            // short usage on stdout, where plugins print them.
            if let Some(code) = cli::check::plugin_usage_error(&e) {
                std::process::exit(code);
            }
            let code = if e.use_stderr() { 3 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // One check is one connection: run as a plugin, one process per check,
    // a single-threaded runtime spares starting a worker per core each time.
    let mut builder = if matches!(cli.command, Command::Check(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pop3-probe: cannot start the async runtime: {e}");
            std::process::exit(3);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Check(args) => cli::check::run(args).await,
            Command::Run(args) => cli::run::run(args).await,
            Command::Serve(args) => cli::serve::run(args).await,
            Command::Report(args) => cli::report::run(args).await,
            Command::Schema => {
                print!("{}", pop3_probe::config::json_schema());
                0
            }
            Command::Discover(args) => cli::discover::run(args).await,
            Command::Init(args) => cli::init::run(args),
        }
    });
    std::process::exit(code);
}
