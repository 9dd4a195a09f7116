//! `check`'s arguments and the duration, count and URL readers on
//! arbitrary input (issue 11.4): clap's parse, then building the target.
//! An error or a target, never a panic; and whatever was accepted is
//! inside the documented limits, so no later clock arithmetic overflows.
//! The input is the argument list, NUL-separated.
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use pop3_probe::limits;

// The real argument definitions, as the binary compiles them.
#[allow(dead_code)]
#[path = "../../src/cli/check.rs"]
mod check;

/// `check.rs` reads Secrets Manager through the CLI's lazy client
/// (`cli/run.rs`, AWS only). The fuzz build has no AWS adapters, and no
/// fuzzed argument list reaches that call: it needs a `roundtrip://` target
/// and a config file.
mod run {
    pub struct LazySecrets;

    impl LazySecrets {
        pub fn new() -> Self {
            LazySecrets
        }
    }

    impl pop3_probe::credentials::SecretSource for LazySecrets {
        async fn secret(
            &self,
            id: &str,
        ) -> Result<secrecy::SecretString, pop3_probe::ports::SinkError> {
            Err(pop3_probe::ports::SinkError::new(
                "fuzz",
                format!("no Secrets Manager in the fuzz build ({id})"),
            ))
        }
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: check::CheckArgs,
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The readers alone, on the whole text.
    if let Ok(d) = limits::parse_duration(text, limits::MAX_TIMEOUT) {
        assert!(d <= limits::MAX_TIMEOUT);
    }
    if let Ok(d) = limits::parse_every(text) {
        assert!(!d.is_zero() && d <= limits::MAX_INTERVAL);
    }
    let _ = pop3_probe::profile::parse_url(text);
    assert!(!pop3_probe::text::terminal_safe(text).chars().any(char::is_control));

    let argv = std::iter::once("check").chain(text.split('\0'));
    let Ok(mut cli) = Cli::try_parse_from(argv) else { return };
    // No file reads (a fuzzed path could be a FIFO that blocks) and no
    // environment lookups: the readers are tested on their own.
    cli.args.password_file = None;
    cli.args.ca_file = None;
    cli.args.password_env = None;
    if let Ok(t) = check::target(&cli.args) {
        assert!(t.timeout <= limits::MAX_TIMEOUT);
        assert!(t.phase_timeout.is_none_or(|p| p <= limits::MAX_TIMEOUT));
        assert!(t.warning <= t.critical && t.critical <= t.timeout);
        let _ = std::time::Instant::now() + t.timeout;
    }
});
