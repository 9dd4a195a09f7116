//! `pop3-probe init --template NAME`: a starter monitor list for a common
//! setup, with the right ports and TLS modes and notes on what the
//! provider accepts.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use pop3_probe::output;

/// The templates, embedded so the binary needs no data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// Self-hosted Dovecot: 995 implicit TLS and 110 STLS, auth auto (APOP when offered).
    Dovecot,
    /// Exchange Server on-premises (995 implicit, 110 STLS) plus Exchange Online, which needs OAuth2: connectivity and TLS only.
    Exchange,
    /// Gmail / Google Workspace: pop.gmail.com 995 implicit TLS; needs an app password.
    Gmail,
    /// An Internet provider or web host: 995 implicit TLS and 110 STLS.
    GenericIsp,
}

impl Template {
    pub fn text(self) -> &'static str {
        match self {
            Template::Dovecot => include_str!("../../templates/dovecot.json"),
            Template::Exchange => include_str!("../../templates/exchange.json"),
            Template::Gmail => include_str!("../../templates/gmail.json"),
            Template::GenericIsp => include_str!("../../templates/generic-isp.json"),
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  pop3-probe init --list
  pop3-probe init --template dovecot                  # writes ./monitors.json
  pop3-probe init --template gmail --output gmail.json
  pop3-probe init --template exchange --output -      # to stdout

Then edit the hosts and the username, set POP3_PROBE_PASSWORD, and:
  pop3-probe run --config monitors.json --once

Each monitor's `notes` (and the file's `$comment`) say what the provider
accepts: Exchange Online and Outlook.com no longer take a password over POP3,
Gmail only takes an app password. The probe ignores both fields.

Exit codes: 0 written (or listed), 3 usage error or the file exists.")]
pub struct InitArgs {
    /// The setup to start from. Example: --template dovecot
    #[arg(
        long,
        value_enum,
        value_name = "NAME",
        required_unless_present = "list"
    )]
    pub template: Option<Template>,

    /// List the templates with a one-line description.
    #[arg(long, conflicts_with_all = ["template", "output", "force"])]
    pub list: bool,

    /// Where to write; `-` for stdout. Example: --output /etc/pop3-probe/monitors.json
    #[arg(short, long, value_name = "FILE", default_value = "monitors.json")]
    pub output: PathBuf,

    /// Overwrite --output if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Write `text` to `path`; without `force`, fail if it exists (checked by
/// the create itself, so two writers cannot both win).
pub fn write_output(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    let mut file = open.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} exists (use --force to overwrite)", path.display())
        } else {
            anyhow::anyhow!("cannot write {}: {e}", path.display())
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(args: InitArgs) -> i32 {
    if args.list {
        for t in Template::value_variants() {
            if let Some(v) = t.to_possible_value() {
                let help = v.get_help().map(|h| h.to_string()).unwrap_or_default();
                println!("{:<12} {help}", v.get_name());
            }
        }
        return output::EXIT_OK;
    }
    let Some(template) = args.template else {
        eprintln!("pop3-probe init: give --template NAME (see --list)");
        return output::EXIT_UNKNOWN;
    };
    let text = template.text();
    if args.output.as_os_str() == "-" {
        print!("{text}");
        return output::EXIT_OK;
    }
    if let Err(e) = write_output(&args.output, text, args.force) {
        eprintln!("pop3-probe init: --output: {e:#}");
        return output::EXIT_UNKNOWN;
    }
    let name = template
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    eprintln!(
        "wrote {} from the {name} template. Edit the hosts and the username, read each monitor's notes, set POP3_PROBE_PASSWORD, then:\n  pop3-probe run --config {} --once",
        args.output.display(),
        args.output.display()
    );
    output::EXIT_OK
}
