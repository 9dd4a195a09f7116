//! `pop3-probe check TARGET`: one endpoint, one result.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use secrecy::SecretString;

use pop3_probe::limits::{self, ThresholdConflict};
use pop3_probe::nagios::{self, Range, Thresholds};
use pop3_probe::probe::{self, AuthMethod, Target, TlsMode};
use pop3_probe::text::terminal_safe;
use pop3_probe::{credentials, output, profile};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A summary with a phase table.
    Human,
    /// The full result as JSON.
    Json,
    /// One Nagios/Icinga plugin line with perfdata.
    Nagios,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TlsArg {
    /// TLS from the first byte (pop3s, port 995). Alias: ssl.
    #[value(alias = "ssl")]
    Implicit,
    /// STLS required: fail if not offered or refused. Alias: tls.
    #[value(alias = "tls")]
    Starttls,
    /// STLS when offered, else plaintext (reported). Alias: tls-if-available.
    #[value(alias = "tls-if-available")]
    StarttlsIfAvailable,
    /// No TLS.
    None,
}

impl From<TlsArg> for TlsMode {
    fn from(t: TlsArg) -> TlsMode {
        match t {
            TlsArg::Implicit => TlsMode::Implicit,
            TlsArg::Starttls => TlsMode::Starttls,
            TlsArg::StarttlsIfAvailable => TlsMode::StarttlsIfAvailable,
            TlsArg::None => TlsMode::None,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthArg {
    /// APOP if the greeting offers it, else SASL PLAIN if advertised, else USER/PASS.
    Auto,
    /// APOP (MD5 digest; the password itself never crosses the wire).
    Apop,
    /// USER then PASS.
    User,
    /// SASL PLAIN with initial response (RFC 5034).
    SaslPlain,
    /// SASL LOGIN (smtp only).
    SaslLogin,
    /// XOAUTH2 with an OAuth2 access token (needs the --oauth2-* flags).
    Xoauth2,
    /// OAUTHBEARER (RFC 7628) with an OAuth2 access token.
    Oauthbearer,
    /// No login: connectivity, greeting and CAPA only.
    None,
}

impl From<AuthArg> for AuthMethod {
    fn from(a: AuthArg) -> AuthMethod {
        match a {
            AuthArg::Auto => AuthMethod::Auto,
            AuthArg::Apop => AuthMethod::Apop,
            AuthArg::User => AuthMethod::User,
            AuthArg::SaslPlain => AuthMethod::SaslPlain,
            AuthArg::SaslLogin => AuthMethod::SaslLogin,
            AuthArg::Xoauth2 => AuthMethod::Xoauth2,
            AuthArg::Oauthbearer => AuthMethod::Oauthbearer,
            AuthArg::None => AuthMethod::None,
        }
    }
}

/// A probe's durations: at most [`limits::MAX_TIMEOUT`] (a larger one
/// overflowed when added to the clock). A plain number is seconds, as
/// every monitoring plugin reads `-t 10`.
fn duration(s: &str) -> Result<Duration, String> {
    limits::parse_seconds_or_duration(s, limits::MAX_TIMEOUT)
}

/// check_pop's `-p`: trimmed, because Nagios passes `'$ARG1$'` as one
/// argument and `-p 110` arrives as `-p` with the value ` 110`.
fn port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{:?} is not a port (1-65535)", terminal_safe(s))),
        Ok(p) => Ok(p),
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  # Implicit TLS on 995, log in (APOP / PLAIN / USER chosen automatically):
  POP3_PASSWORD=... pop3-probe check pop3s://monitor@mail.example.com --password-env POP3_PASSWORD

  # STLS required on 110, as a Nagios plugin:
  pop3-probe check pop3://monitor@mail.example.com --tls starttls \\
      --password-file /etc/pop3-probe/monitor.pw --format nagios --warn 1s --crit 5s

  # Connectivity only, by IP, checking the certificate for the real name:
  pop3-probe check pop3s://[2001:db8::25]:995 --auth none --tls-server-name mail.example.com

  # The services POP3 depends on: SMTP submission with STARTTLS and AUTH,
  # an MX's banner and certificate, a TCP port (for ping), a DNS name:
  SMTP_PASSWORD=... pop3-probe check submission://monitor@mail.example.com --password-env SMTP_PASSWORD
  pop3-probe check smtp://mx.example.com --tls starttls
  pop3-probe check tcp://mail.example.com:995
  pop3-probe check dns://mail.example.com

  # One mail round trip: the roundtrip monitor mail-roundtrip of a config
  # file (its credentials and key as the file says), polling up to 20 s:
  pop3-probe check roundtrip://mail-roundtrip --config monitors.json --wait 20s

  # check_pop / check_spop's options, as a Nagios command definition has them
  # (prints Nagios output; without --user it stops after the greeting, as check_pop):
  pop3-probe check -H mail.example.com -p 995 -S -w 2 -c 5 -t 10 -D 14,7

Thresholds (--warn/-w, --crit/-c, --cert-warn-days, -D) take Nagios ranges:
  N (alert above N s; for days: below N), N: (below N), ~:N (above N),
  M:N (outside M..N), @M:N (inside M..N). A time bound is seconds (1.5)
  or a duration (800ms).

Exit codes: 0 up, 1 degraded (slow, or certificate expiring), 2 down, 3 unknown
(bad arguments or an unusable monitor setting), as Nagios plugins use them.")]
pub struct CheckArgs {
    /// The server as a URL: pop3://[user@]host[:port] (default port 110,
    /// default --tls starttls-if-available) or pop3s://[user@]host[:port]
    /// (default port 995, --tls implicit). IPv6: pop3s://user@[::1]:995.
    /// A bare host[:port] is taken as pop3s. Other checks: smtp:// (port
    /// 25, STARTTLS if offered), submission:// (587, STARTTLS required),
    /// smtps:// (465, implicit TLS); with a user name SMTP logs in (AUTH).
    /// tcp://host:port connects only; dns://host resolves only.
    /// roundtrip://NAME runs the round-trip monitor NAME of --config once.
    /// Not needed with -H (check_pop's way of naming the server).
    pub target: Option<String>,

    /// The monitor list that roundtrip://NAME comes from. Example: --config monitors.json
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Round trip: poll the mailbox for the message this long (default the
    /// monitor's wait_ms); the run's time limit grows to fit. Example: --wait 20s
    #[arg(long, value_parser = duration)]
    pub wait: Option<Duration>,

    /// TLS mode; overrides what the URL scheme implies. Example: --tls starttls
    #[arg(long, value_enum)]
    pub tls: Option<TlsArg>,

    /// Login method. Example: --auth apop
    #[arg(long, value_enum, default_value = "auto")]
    pub auth: AuthArg,

    /// User name; overrides the one in the URL. Example: --user monitor@example.com
    #[arg(long)]
    pub user: Option<String>,

    /// Read the password from this environment variable (the password is
    /// never accepted as a command-line value: other users can read those).
    /// Example: --password-env POP3_PASSWORD
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,

    /// Read the password from this file (first line; a trailing newline is
    /// ignored). Example: --password-file /etc/pop3-probe/monitor.pw
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Slower than this is WARNING (degraded). Default 2s, or --crit when
    /// that is shorter. Seconds (1.5), a duration (800ms) or a Nagios
    /// range (@1:3). Example: --warn 800ms
    #[arg(long, value_name = "RANGE", value_parser = Range::parse_time)]
    pub warn: Option<Range>,

    /// Slower than this is CRITICAL (down); at most --timeout. Default 8s,
    /// or --timeout when that is shorter. Seconds, a duration or a Nagios
    /// range. Example: --crit 5s
    #[arg(long, value_name = "RANGE", value_parser = Range::parse_time)]
    pub crit: Option<Range>,

    /// The whole check must finish within this (at most 1h); every phase
    /// (resolve, connect, TLS, each command) is bounded by what is left.
    /// A plain number is seconds. Example: --timeout 10s
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub timeout: Duration,

    /// Also limit each single phase to this (at most 1h). Example: --phase-timeout 3s
    #[arg(long, value_parser = duration)]
    pub phase_timeout: Option<Duration>,

    /// Trust the CA certificates in this PEM file instead of the built-in
    /// Mozilla roots. Example: --ca-file /etc/ssl/private-ca.pem
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// The name to send as SNI and to check the certificate against, when
    /// connecting by address. Example: --tls-server-name mail.example.com
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// Allow USER/PASS or SASL PLAIN without TLS (the password crosses the
    /// network in cleartext). Without it the check stops before sending the
    /// password and reports plaintext_refused.
    #[arg(long)]
    pub allow_plaintext_password: bool,

    /// DANGEROUS: accept any certificate. The output says so loudly; an
    /// impostor server would pass the check.
    #[arg(long)]
    pub insecure_skip_verify: bool,

    /// Degraded (WARNING) when the certificate expires within this many
    /// days (at most 3650), or outside a Nagios range of days. Example:
    /// --cert-warn-days 21
    #[arg(long, value_name = "DAYS", default_value = "14", value_parser = Range::parse_days)]
    pub cert_warn_days: Range,

    /// Down (CRITICAL) when the certificate expires within this many days,
    /// or outside a Nagios range of days. Default: none. Example:
    /// --cert-crit-days 7
    #[arg(long, value_name = "DAYS", value_parser = Range::parse_days)]
    pub cert_crit_days: Option<Range>,

    /// Also ask CAPA and show the server's capabilities (one more round
    /// trip; by default CAPA is sent only when a decision needs it).
    #[arg(long)]
    pub capa: bool,

    /// Output format: human by default, nagios when check_pop's options
    /// (-H -p -w -c -t -S -D) are used. Example: --format nagios
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Print the POP3 dialogue to stderr (PASS, APOP and AUTH arguments masked).
    #[arg(long, short)]
    pub verbose: bool,

    // check_pop / check_spop's options (monitoring-plugins), so that a
    // Nagios command definition works with the binary swapped. Fields of
    // their own rather than short names on --warn etc.: using any of them
    // is what makes the output Nagios's without --format.
    /// check_pop's -H: the server's name or address, instead of the URL
    /// (a POP3 check; port 110, or 995 with -S or -D).
    #[arg(short = 'H', long = "hostname", value_name = "ADDRESS", help_heading = NAGIOS)]
    pub nagios_host: Option<String>,

    /// check_pop's -p: the port (also overrides the URL's).
    #[arg(short = 'p', long = "port", value_name = "PORT", value_parser = port, help_heading = NAGIOS)]
    pub nagios_port: Option<u16>,

    /// check_pop's -w: as --warn (seconds or a range).
    #[arg(short = 'w', long = "warning", value_name = "RANGE", value_parser = Range::parse_time,
          conflicts_with = "warn", help_heading = NAGIOS)]
    pub nagios_warn: Option<Range>,

    /// check_pop's -c: as --crit (seconds or a range).
    #[arg(short = 'c', long = "critical", value_name = "RANGE", value_parser = Range::parse_time,
          conflicts_with = "crit", help_heading = NAGIOS)]
    pub nagios_crit: Option<Range>,

    /// check_pop's -t: as --timeout (seconds).
    #[arg(short = 't', value_name = "SECONDS", value_parser = duration, conflicts_with = "timeout",
          help_heading = NAGIOS)]
    pub nagios_timeout: Option<Duration>,

    /// check_pop's -S: implicit TLS (as --tls implicit).
    #[arg(short = 'S', long = "ssl", conflicts_with = "tls", help_heading = NAGIOS)]
    pub nagios_ssl: bool,

    /// check_pop's -D WARN[,CRIT]: certificate days for WARNING and
    /// CRITICAL (default 0: expired), as --cert-warn-days and
    /// --cert-crit-days; implies -S unless --tls is given.
    #[arg(short = 'D', long = "certificate", value_name = "WARN[,CRIT]",
          value_parser = nagios::parse_certificate,
          conflicts_with_all = ["cert_warn_days", "cert_crit_days"], help_heading = NAGIOS)]
    pub nagios_certificate: Option<(Range, Option<Range>)>,

    /// Boxed: the OAuth2 flags would make every other subcommand's
    /// arguments as large as these.
    #[command(flatten)]
    pub oauth2: Box<OAuth2Args>,
}

/// Log in with an OAuth2 access token (XOAUTH2 / OAUTHBEARER); see docs/oauth2.md.
#[derive(Debug, Args, Default)]
pub struct OAuth2Args {
    /// The token endpoint's presets: microsoft (needs --oauth2-tenant),
    /// google, or generic (needs --oauth2-token-url and --oauth2-scope).
    /// Example: --oauth2-provider microsoft
    #[arg(long, value_enum, value_name = "PROVIDER")]
    pub oauth2_provider: Option<ProviderArg>,
    /// Microsoft tenant (domain or GUID). Example: --oauth2-tenant contoso.onmicrosoft.com
    #[arg(long, value_name = "TENANT")]
    pub oauth2_tenant: Option<String>,
    /// The application (client) ID.
    #[arg(long, value_name = "ID")]
    pub oauth2_client_id: Option<String>,
    /// Read the client secret from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "oauth2_client_secret_file")]
    pub oauth2_client_secret_env: Option<String>,
    /// Read the client secret from this file (first line).
    #[arg(long, value_name = "FILE")]
    pub oauth2_client_secret_file: Option<PathBuf>,
    /// The token endpoint; overrides the preset. Example: --oauth2-token-url https://idp.example.com/token
    #[arg(long, value_name = "URL")]
    pub oauth2_token_url: Option<String>,
    /// The scope to ask for; overrides the preset.
    #[arg(long, value_name = "SCOPE")]
    pub oauth2_scope: Option<String>,
    /// Delegated login: read a refresh token from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "oauth2_refresh_token_file")]
    pub oauth2_refresh_token_env: Option<String>,
    /// Delegated login: read a refresh token from this file (first line).
    #[arg(long, value_name = "FILE")]
    pub oauth2_refresh_token_file: Option<PathBuf>,
    /// Use a ready access token from this environment variable (no token request).
    #[arg(long, value_name = "VAR", conflicts_with = "oauth2_token_file")]
    pub oauth2_token_env: Option<String>,
    /// Use a ready access token from this file (first line).
    #[arg(long, value_name = "FILE")]
    pub oauth2_token_file: Option<PathBuf>,
    /// Trust these CA certificates for the token endpoint instead of the built-in roots.
    #[arg(long, value_name = "PEM")]
    pub oauth2_ca_file: Option<PathBuf>,
    /// DANGEROUS: allow a plain http:// token URL to a host that is not
    /// loopback (the output says so).
    #[arg(long)]
    pub oauth2_allow_insecure_http: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProviderArg {
    Microsoft,
    Google,
    Generic,
}

impl OAuth2Args {
    fn given(&self) -> bool {
        self.oauth2_provider.is_some()
            || self.oauth2_client_id.is_some()
            || self.oauth2_token_url.is_some()
            || self.oauth2_token_env.is_some()
            || self.oauth2_token_file.is_some()
            || self.oauth2_refresh_token_env.is_some()
            || self.oauth2_refresh_token_file.is_some()
    }

    /// The credential, with its secrets read; `None` without OAuth2 flags.
    fn credential(&self) -> anyhow::Result<Option<pop3_probe::oauth2::Credential>> {
        if !self.given() {
            return Ok(None);
        }
        let provider = match self.oauth2_provider {
            Some(ProviderArg::Microsoft) => "microsoft",
            Some(ProviderArg::Google) => "google",
            Some(ProviderArg::Generic) | None => "generic",
        };
        let json = serde_json::json!({
            "provider": provider,
            "tenant": self.oauth2_tenant,
            "client_id": self.oauth2_client_id,
            "client_secret_env": self.oauth2_client_secret_env,
            "client_secret_file": self.oauth2_client_secret_file,
            "token_url": self.oauth2_token_url,
            "scope": self.oauth2_scope,
            "refresh_token_env": self.oauth2_refresh_token_env,
            "refresh_token_file": self.oauth2_refresh_token_file,
            "token_env": self.oauth2_token_env,
            "token_file": self.oauth2_token_file,
            "ca_file": self.oauth2_ca_file,
            "allow_insecure_http": self.oauth2_allow_insecure_http,
        });
        // Drop the unset flags: the config shape treats a null as a value.
        let json: serde_json::Map<String, serde_json::Value> = json
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let config: pop3_probe::config::oauth2::OAuth2Config =
            serde_json::from_value(serde_json::Value::Object(json))
                .map_err(|e| anyhow::anyhow!("--oauth2-* flags: {e}"))?;
        if let Err((path, message)) = config.validate("oauth2") {
            // `oauth2.client_id` is the flag --oauth2-client-id.
            let flag = path.replace(['.', '_'], "-");
            bail!("--{flag}: {message}");
        }
        // Env and file sources only: nothing here waits on the network.
        let cred = futures::executor::block_on(config.resolve(&NoSecretSource))
            .map_err(|e| anyhow::anyhow!("--oauth2-*: {e}"))?;
        Ok(Some(cred))
    }
}

/// The CLI reads secrets from the environment and files only.
struct NoSecretSource;

impl pop3_probe::credentials::SecretSource for NoSecretSource {
    async fn secret(&self, id: &str) -> Result<SecretString, pop3_probe::ports::SinkError> {
        Err(pop3_probe::ports::SinkError::new(
            "cli",
            format!("no Secrets Manager from the command line ({id})"),
        ))
    }
}

const NAGIOS: &str = "check_pop compatibility";

/// check_pop's usage, for usage errors in plugin style (plugins print it
/// on stdout after the one status line).
pub const SHORT_USAGE: &str = "\
Usage:
pop3-probe check -H host [-p port] [-S] [-w <warning>] [-c <critical>] [-t <timeout>]
  [-D <warn days>[,<crit days>]] [--user USER --password-file FILE] [--tls MODE] [--ca-file PEM]
pop3-probe check URL [options]
`pop3-probe check --help` lists every option.
";

/// A mistake in how the options combine (shown with [`SHORT_USAGE`] in
/// plugin style), as opposed to a file or variable that cannot be read.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

impl CheckArgs {
    /// Whether any of check_pop's options is used.
    pub fn nagios_options(&self) -> bool {
        self.nagios_host.is_some()
            || self.nagios_port.is_some()
            || self.nagios_warn.is_some()
            || self.nagios_crit.is_some()
            || self.nagios_timeout.is_some()
            || self.nagios_ssl
            || self.nagios_certificate.is_some()
    }

    /// The output format: --json, --format, else Nagios when check_pop's
    /// options are used (a swapped-in check_pop must print what Nagios
    /// reads), else human.
    pub fn output_format(&self) -> Format {
        match (self.json, self.format) {
            (true, _) => Format::Json,
            (false, Some(f)) => f,
            (false, None) if self.nagios_options() => Format::Nagios,
            (false, None) => Format::Human,
        }
    }

    fn timeout(&self) -> Duration {
        self.nagios_timeout.unwrap_or(self.timeout)
    }
}

/// Plugin style for a usage error clap found, judged from the raw
/// arguments after `check` (the parse failed, so there are no
/// [`CheckArgs`]): `--format nagios`, or one of check_pop's options
/// without `--format`/`--json`.
pub fn plugin_style(args: &[String]) -> bool {
    let mut format = None;
    let mut nagios = false;
    let mut it = args.iter().map(String::as_str);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--json" {
            format = Some("json".to_string());
        } else if a == "--format" {
            format = Some(it.next().unwrap_or("").to_string());
        } else if let Some(v) = a.strip_prefix("--format=") {
            format = Some(v.to_string());
        } else if let Some(long) = a.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or("");
            nagios |= [
                "hostname",
                "port",
                "warning",
                "critical",
                "ssl",
                "certificate",
            ]
            .contains(&name);
        } else if let Some(short) = a.strip_prefix('-') {
            nagios |= short.starts_with(['H', 'p', 'w', 'c', 't', 'S', 'D']);
        }
    }
    match format {
        Some(f) => f.trim() == "nagios",
        None => nagios,
    }
}

/// A clap error for `check` in plugin style: the UNKNOWN line and the
/// short usage on stdout, exit 3. `None`: not `check`, not plugin style,
/// or not an error (help, version); the caller prints it as clap does.
pub fn plugin_usage_error(e: &clap::Error) -> Option<i32> {
    // Lossy: `args()` panics on an argument that is not UTF-8.
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if !e.use_stderr() || argv.first().map(String::as_str) != Some("check") {
        return None;
    }
    if !plugin_style(&argv[1..]) {
        return None;
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("bad arguments");
    let msg = first.strip_prefix("error: ").unwrap_or(first);
    print!(
        "POP3 UNKNOWN - {}\n{SHORT_USAGE}",
        terminal_safe(msg).replace('|', "/")
    );
    Some(output::EXIT_UNKNOWN)
}

/// What a target URL says (the profile table reads it).
pub use pop3_probe::profile::ParsedUrl as ParsedTarget;

/// Parse the target URL.
pub fn parse_target(raw: &str) -> anyhow::Result<ParsedTarget> {
    profile::parse_url(raw).map_err(anyhow::Error::msg)
}

fn read_password(args: &CheckArgs) -> anyhow::Result<Option<SecretString>> {
    if let Some(var) = &args.password_env {
        let value = credentials::from_env(var).map_err(|_| {
            // The variable's name as typed, made safe for the terminal.
            anyhow::anyhow!(
                "--password-env: environment variable {} is not set",
                terminal_safe(var)
            )
        })?;
        return Ok(Some(value));
    }
    if let Some(path) = &args.password_file {
        let value =
            credentials::from_file(path).map_err(|e| anyhow::anyhow!("--password-file: {e}"))?;
        return Ok(Some(value));
    }
    Ok(None)
}

/// The engine's thresholds and every range the check is rated against.
/// --warn and --crit (or -w/-c) against --timeout (or -t): one the user
/// did not give follows the timeout, so `--timeout 3s` alone works. Only
/// a plain upper bound reaches the engine; a range it cannot express
/// (`10:`, `@5:10`) leaves the engine's critical at the timeout (which
/// fails the check anyway) and its warning at the critical one, and is
/// rated after the probe by [`nagios::rate`].
fn thresholds(args: &CheckArgs) -> anyhow::Result<(Duration, Duration, Thresholds)> {
    let words = |d: Duration| humantime::format_duration(d).to_string();
    let (warn, warn_flag) = match args.nagios_warn {
        Some(r) => (Some(r), "-w"),
        None => (args.warn, "--warn"),
    };
    let (crit, crit_flag) = match args.nagios_crit {
        Some(r) => (Some(r), "-c"),
        None => (args.crit, "--crit"),
    };
    let timeout = args.timeout();
    let timeout_flag = if args.nagios_timeout.is_some() {
        "-t"
    } else {
        "--timeout"
    };
    let plain = |r: Option<Range>| r.and_then(|r| r.upper_bound()).map(Duration::from_secs_f64);
    let warn_ranged = warn.is_some_and(|r| r.upper_bound().is_none());
    let crit_ranged = crit.is_some_and(|r| r.upper_bound().is_none());
    let engine_crit = if crit_ranged {
        Some(timeout)
    } else {
        plain(crit)
    };
    let (mut w, c) =
        limits::thresholds(timeout, plain(warn), engine_crit).map_err(|conflict| match conflict {
            ThresholdConflict::CriticalOverTimeout { critical, timeout } => usage(format!(
                "{crit_flag} ({}) must not exceed {timeout_flag} ({})",
                words(critical),
                words(timeout)
            )),
            ThresholdConflict::WarningNotBelowCritical {
                warning,
                critical,
                critical_set,
            } => usage(format!(
                "{warn_flag} ({}) must be less than {} ({})",
                words(warning),
                if crit_ranged {
                    timeout_flag.to_string()
                } else if critical_set {
                    crit_flag.to_string()
                } else {
                    format!("the critical threshold, which follows {timeout_flag} without {crit_flag}")
                },
                words(critical)
            )),
        })?;
    if warn_ranged {
        w = c;
    }
    let up_to = |d: Duration| Range {
        start: 0.0,
        end: d.as_secs_f64(),
        inside: false,
    };
    let (days_warning, days_critical) = match args.nagios_certificate {
        // check_pop: "2nd is critical (if not specified - 0)".
        Some((warn, crit)) => (
            warn,
            Some(crit.unwrap_or(Range {
                start: 0.0,
                end: f64::INFINITY,
                inside: false,
            })),
        ),
        None => (args.cert_warn_days, args.cert_crit_days),
    };
    let ranges = Thresholds {
        time_warning: warn.unwrap_or(up_to(w)),
        time_critical: crit.unwrap_or(up_to(c)),
        days_warning: Some(days_warning),
        days_critical,
    };
    Ok((w, c, ranges))
}

/// `-H`'s value as a URL host: a name or an address (brackets optional
/// for IPv6). check_pop also takes a Unix socket path; a POP3 monitor
/// over a socket is not something this probe does, so that is refused.
fn host_url(host: &str, implicit: bool) -> anyhow::Result<String> {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    if h.is_empty()
        || !h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:%".contains(c))
    {
        return Err(usage(format!(
            "-H: {:?} is not a host name or address",
            terminal_safe(host)
        )));
    }
    let scheme = if implicit { "pop3s" } else { "pop3" };
    Ok(if h.contains(':') {
        format!("{scheme}://[{h}]")
    } else {
        format!("{scheme}://{h}")
    })
}

/// Build the probe target from the arguments (the fuzz target's entry).
#[allow(dead_code)]
pub fn target(args: &CheckArgs) -> anyhow::Result<Target> {
    plan(args).map(|(t, _)| t)
}

/// The probe target and the thresholds its result is rated against.
pub fn plan(args: &CheckArgs) -> anyhow::Result<(Target, Thresholds)> {
    // -S, and -D without --tls (check_pop's -D turns SSL on too).
    let tls_flag: Option<TlsMode> =
        if args.nagios_ssl || (args.tls.is_none() && args.nagios_certificate.is_some()) {
            Some(TlsMode::Implicit)
        } else {
            args.tls.map(Into::into)
        };
    // Nagios passes `'$ARG1$'` even when it is empty: an empty URL is none.
    let url = args
        .target
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let parsed = match (&args.nagios_host, url) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "-H and the URL both name the server: give one of them",
            ))
        }
        (None, None) => {
            return Err(usage(
                "no server: give it as a URL (pop3s://user@host) or with -H host",
            ))
        }
        (None, Some(u)) => parse_target(u)?,
        (Some(h), None) => parse_target(&host_url(h, tls_flag == Some(TlsMode::Implicit))?)?,
    };
    let ParsedTarget {
        kind,
        host,
        port,
        user: url_user,
        tls: scheme_tls,
    } = parsed;
    let kind_profile = profile::of(kind);
    let port = match args.nagios_port {
        Some(_) if kind_profile.port == profile::PortRule::NoPort => {
            bail!(Usage(format!("-p: a {kind} check has no port")))
        }
        Some(p) => p,
        None => port,
    };
    let (warning, critical, ranges) = thresholds(args)?;
    let username = args.user.clone().or(url_user);
    let password = read_password(args)?;
    let oauth2 = args.oauth2.credential()?;
    // `auto` is --auth's default, so it means "the kind's default login"
    // (SMTP logs in only when a user is given). check_pop's way (-H)
    // without a user stops after the greeting, as check_pop does.
    let requested = match args.auth {
        AuthArg::Auto if args.nagios_host.is_some() && username.is_none() => Some(AuthMethod::None),
        AuthArg::Auto => None,
        a => Some(AuthMethod::from(a)),
    };
    let auth = kind_profile
        .auth(requested, username.is_some(), "targets")
        .map_err(|e| usage(format!("--auth: {e}")))?;
    if !kind_profile.uses_tls() && tls_flag.is_some() {
        bail!(Usage(format!("--tls: a {kind} check does not use TLS")));
    }
    if auth != AuthMethod::None {
        if username.is_none() {
            bail!(Usage(format!("--auth {auth} needs a user name: put it in the URL (pop3s://user@host) or pass --user (or use --auth none for a connectivity check)")));
        }
        if password.is_none() && oauth2.is_none() && auth.oauth_mechanism().is_some() {
            bail!(Usage(format!("--auth {auth} needs an OAuth2 credential: --oauth2-provider with --oauth2-client-id and --oauth2-client-secret-env (or --oauth2-token-env)")));
        }
        if password.is_none() && oauth2.is_none() {
            bail!(Usage(format!("--auth {auth} needs a password: pass --password-env VAR or --password-file FILE (or use --auth none)")));
        }
    }
    let ca_pem = match &args.ca_file {
        Some(path) => Some(
            limits::read_text_file(path, limits::MAX_CA_FILE_BYTES)
                .map_err(|e| anyhow::anyhow!("--ca-file: {e}"))?,
        ),
        None => None,
    };
    let name = if kind_profile.port == profile::PortRule::NoPort {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let mut t = Target::new(name, host, port);
    t.kind = kind;
    t.tls = tls_flag.unwrap_or(scheme_tls);
    t.auth = auth;
    t.username = username;
    t.password = password;
    t.timeout = args.timeout();
    t.phase_timeout = args.phase_timeout;
    t.warning = warning;
    t.critical = critical;
    t.ca_pem = ca_pem;
    t.tls_server_name = args.tls_server_name.clone();
    t.insecure_skip_verify = args.insecure_skip_verify;
    t.allow_plaintext_password = args.allow_plaintext_password;
    // The engine rates a plain minimum of days; any other range is
    // rated after the probe.
    t.certificate_warning_days = ranges
        .days_warning
        .and_then(|r| r.lower_bound())
        .filter(|d| *d >= 0.0)
        .map(|d| d as u32);
    t.capabilities = args.capa;
    t.transcript = args.verbose;
    t.oauth2 = oauth2.map(std::sync::Arc::new);
    Ok((t, ranges))
}

/// Run the check and print; returns the process exit code.
/// `check roundtrip://NAME --config FILE`: one round trip, no state kept
/// (earlier checks' messages are removed as stale by later runs).
async fn roundtrip(args: &CheckArgs, name: &str) -> anyhow::Result<(probe::ProbeResult, Target)> {
    let Some(file) = &args.config else {
        bail!("roundtrip://{name} needs --config FILE, the monitor list that defines it");
    };
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--config: cannot read {}", file.display()))?;
    let config = pop3_probe::config::load(&text, &super::run::LazySecrets::new())
        .await
        .map_err(anyhow::Error::new)
        .context("--config")?;
    if let Some(p) = config.problems.iter().find(|p| p.monitor == name) {
        bail!("monitor {name}: {}", p.error);
    }
    let Some(m) = config.monitors.iter().find(|m| m.target.name == name) else {
        bail!(
            "--config {} has no enabled monitor named {name:?}",
            file.display()
        );
    };
    let Some(plan) = m.roundtrip.as_ref().and_then(|rt| rt.plan(&m.target)) else {
        bail!("monitor {name} is not a roundtrip monitor");
    };
    let mut plan = plan;
    if let Some(wait) = args.wait {
        plan.wait = wait;
        plan.timeout = plan.timeout.max(wait + Duration::from_secs(10));
    }
    let (result, _) = probe::roundtrip::probe(&plan, &Default::default()).await;
    Ok((result, m.target.clone()))
}

pub async fn run(args: CheckArgs) -> i32 {
    let format = args.output_format();
    if let Some(name) = args
        .target
        .as_deref()
        .and_then(|t| t.strip_prefix("roundtrip://"))
    {
        return match roundtrip(&args, name).await {
            Ok((result, target)) => {
                if args.verbose {
                    eprint!("{}", output::transcript(&result));
                }
                match format {
                    Format::Human => print!("{}", output::human(&result)),
                    Format::Json => println!("{}", output::json(&result)),
                    Format::Nagios => print!("{}", output::nagios(&result, &target)),
                }
                output::exit_code(&result)
            }
            Err(e) => {
                let msg = format!("{e:#}");
                if format == Format::Nagios {
                    println!("ROUNDTRIP UNKNOWN - {}", msg.replace('|', "/"));
                } else {
                    eprintln!("pop3-probe check: {msg}");
                }
                output::EXIT_UNKNOWN
            }
        };
    }
    let (target, ranges) = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            // Arguments and file names come back in the message: no
            // control character reaches the terminal.
            let msg = terminal_safe(&format!("{e:#}"));
            if format == Format::Nagios {
                println!("POP3 UNKNOWN - {}", msg.replace('|', "/"));
                if e.downcast_ref::<Usage>().is_some() {
                    print!("{SHORT_USAGE}");
                }
            } else {
                eprintln!("pop3-probe check: {msg}");
            }
            return output::EXIT_UNKNOWN;
        }
    };
    let mut result = probe::check(&target).await;
    nagios::rate(&mut result, &ranges);
    if args.verbose {
        eprint!("{}", output::transcript(&result));
    }
    match format {
        Format::Human => print!("{}", output::human(&result)),
        Format::Json => println!("{}", output::json(&result)),
        Format::Nagios => print!("{}", output::nagios_rated(&result, &target, &ranges)),
    }
    output::exit_code(&result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pop3_probe::probe::Kind;

    fn parts(raw: &str) -> (Kind, String, u16, Option<String>, TlsMode) {
        let t = parse_target(raw).unwrap();
        (t.kind, t.host, t.port, t.user, t.tls)
    }

    #[test]
    fn urls() {
        let some = |s: &str| Some(s.to_string());
        let host = |s: &str| s.to_string();
        assert_eq!(
            parts("pop3s://mon@mail.example.com"),
            (
                Kind::Pop3,
                host("mail.example.com"),
                995,
                some("mon"),
                TlsMode::Implicit
            )
        );
        assert_eq!(
            parts("pop3://a%40b.c@127.0.0.1:1110"),
            (
                Kind::Pop3,
                host("127.0.0.1"),
                1110,
                some("a@b.c"),
                TlsMode::StarttlsIfAvailable
            )
        );
        assert_eq!(parts("pop3s://user@[::1]:995").1, "::1");
        assert_eq!(
            parts("mail.example.com:9995"),
            (
                Kind::Pop3,
                host("mail.example.com"),
                9995,
                None,
                TlsMode::Implicit
            )
        );
        assert_eq!(
            parts("submission://mon@mail.example.com"),
            (
                Kind::Smtp,
                host("mail.example.com"),
                587,
                some("mon"),
                TlsMode::Starttls
            )
        );
        assert_eq!(parts("smtp://mx.example.com").2, 25);
        assert_eq!(parts("smtps://mx.example.com").4, TlsMode::Implicit);
        assert_eq!(
            parts("tcp://mail.example.com:995"),
            (
                Kind::Tcp,
                host("mail.example.com"),
                995,
                None,
                TlsMode::None
            )
        );
        assert_eq!(parts("dns://mail.example.com").0, Kind::Dns);
    }

    #[test]
    fn kind_specific_mistakes_are_named() {
        let err = |raw: &str| parse_target(raw).unwrap_err().to_string();
        assert!(err("tcp://h").contains("needs the port"));
        assert!(err("dns://h:53").contains("has no port"));
        assert!(err("tcp://u@h:22").contains("does not log in"));
    }

    #[test]
    fn plugin_style_is_read_from_the_raw_arguments() {
        let style = |a: &[&str]| plugin_style(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(style(&["-H", "h", "-w", "x"]));
        assert!(style(&["-p995", "-S"]));
        assert!(style(&["pop3s://h", "--warning=x"]));
        assert!(style(&["pop3s://h", "--format", "nagios", "--warn", "x"]));
        assert!(style(&["pop3s://h", "--format=nagios"]));
        assert!(!style(&["pop3s://h", "--warn", "x"]));
        assert!(!style(&["-H", "h", "--json"]));
        assert!(!style(&["-H", "h", "--format", "human"]));
        assert!(!style(&["pop3s://h", "-v"]));
    }

    #[test]
    fn bad_urls() {
        assert!(parse_target("imap://h")
            .unwrap_err()
            .to_string()
            .contains("not supported"));
        assert!(parse_target("pop3://u:pw@h")
            .unwrap_err()
            .to_string()
            .contains("password in the URL"));
        assert!(parse_target("pop3://h/INBOX").is_err());
    }
}
