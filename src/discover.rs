//! Discovery: which POP3 endpoints a host offers, and a monitor list to
//! watch them.
//!
//! For each host and port: connect, tell plaintext POP3 from implicit TLS by
//! what the server sends first, read the greeting and CAPA, try STLS, and
//! describe the certificate even when it does not verify. It never logs in:
//! the only commands it sends are CAPA, STLS and QUIT.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt as _;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::net::{self, ConnectFailure, TlsClient, TlsFacts, TlsFailure};
use crate::pop3::{self, Client, StlsOutcome};
use crate::probe::{AuthMethod, FailureKind, TlsMode};
use crate::wire::{self, Capabilities, Transcript, WireLine};

/// The ports tried unless told otherwise: POP3 and POP3S (the profile
/// table's POP3 ports).
pub const DEFAULT_PORTS: [u16; 2] = [crate::profile::POP3_PORT, crate::profile::POP3S_PORT];

/// The environment variable the proposed credentials read the password from.
pub const DEFAULT_PASSWORD_ENV: &str = "POP3_PROBE_PASSWORD";

/// The user name put into the proposed credentials when none was given.
pub const PLACEHOLDER_USER: &str = "CHANGE-ME";

/// The name of the credentials entry in the proposed config.
pub const CREDENTIALS_NAME: &str = "probe-account";

/// The credentials entry proposed for servers that take only OAuth2
/// (Exchange Online, Gmail): an `oauth2` block to fill in.
pub const OAUTH2_CREDENTIALS_NAME: &str = "probe-oauth2";

/// The environment variable the proposed OAuth2 client secret is read from.
pub const DEFAULT_CLIENT_SECRET_ENV: &str = "POP3_PROBE_OAUTH2_CLIENT_SECRET";

// ---------------------------------------------------------------- targets

/// One host to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// As it goes into a monitor's `host`: the name as given, or the address.
    pub name: String,
    /// Set when the target is an address (no DNS lookup needed).
    pub ip: Option<IpAddr>,
}

/// A target that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("target {target:?}: {reason}")]
    Invalid { target: String, reason: String },
    /// More hosts than the caller allows; `count` is a lower bound.
    #[error("the targets make {count} hosts, more than the limit of {max}")]
    TooMany { count: u128, max: usize },
}

/// Host names, addresses and CIDR blocks (IPv4 and IPv6) to a list of
/// hosts, in order, without duplicates. A block is checked against
/// `max_hosts` before it is expanded, so `::/0` costs nothing. IPv4 blocks
/// wider than /31 leave out their network and broadcast addresses.
pub fn expand_targets(targets: &[String], max_hosts: usize) -> Result<Vec<Host>, TargetError> {
    plan_targets(targets, max_hosts).map(|t| t.hosts().collect())
}

/// Checked targets whose hosts are made one at a time, as they are looked
/// at: a large `--max-hosts` no longer builds every host before the first
/// connection (it took 920 MB before printing anything).
#[derive(Debug)]
pub struct Targets {
    specs: Vec<Spec>,
    count: u128,
}

#[derive(Debug)]
enum Spec {
    Block(Block),
    Name(String),
}

impl Spec {
    fn contains(&self, host: &Host) -> bool {
        match (self, host.ip) {
            (Spec::Block(b), Some(ip)) => b.contains(ip),
            (Spec::Name(n), None) => *n == host.name,
            _ => false,
        }
    }
}

/// Check every target and count its hosts against `max_hosts`, making
/// none of them yet. The count is an upper bound: a host named twice, or
/// in two overlapping blocks, counts twice (and is looked at once).
pub fn plan_targets(targets: &[String], max_hosts: usize) -> Result<Targets, TargetError> {
    let mut specs = Vec::with_capacity(targets.len());
    let mut count: u128 = 0;
    for raw in targets {
        let invalid = |reason: &str| TargetError::Invalid {
            target: raw.clone(),
            reason: reason.to_string(),
        };
        let t = raw.trim();
        if t.is_empty() {
            return Err(invalid("empty"));
        }
        let spec = if let Some((addr, len)) = t.split_once('/') {
            let addr: IpAddr = strip_brackets(addr).parse().map_err(|_| {
                invalid("not a CIDR block: the part before / must be an IPv4 or IPv6 address")
            })?;
            let len: u8 = len
                .parse()
                .map_err(|_| invalid("the prefix length after / must be a number"))?;
            Spec::Block(Block::new(addr, len).map_err(|e| invalid(&e))?)
        } else if let Ok(ip) = strip_brackets(t).parse::<IpAddr>() {
            Spec::Block(Block::single(ip))
        } else {
            check_host_name(t).map_err(|e| invalid(&e))?;
            Spec::Name(t.trim_end_matches('.').to_ascii_lowercase())
        };
        // The same target twice is one host, not a reason to refuse.
        let repeat = specs.iter().any(|s: &Spec| match (s, &spec) {
            (Spec::Name(a), Spec::Name(b)) => a == b,
            (Spec::Block(a), Spec::Block(b)) => a.first == b.first && a.count == b.count,
            _ => false,
        });
        if repeat {
            continue;
        }
        count = count.saturating_add(match &spec {
            Spec::Block(b) => b.count,
            Spec::Name(_) => 1,
        });
        if count > max_hosts as u128 {
            return Err(TargetError::TooMany {
                count,
                max: max_hosts,
            });
        }
        specs.push(spec);
    }
    Ok(Targets { specs, count })
}

impl Targets {
    /// How many hosts at most (see [`plan_targets`]).
    pub fn count(&self) -> u128 {
        self.count
    }

    /// The hosts, in order, each once: a host an earlier target already
    /// gave is skipped (checked against the targets, not a set of every
    /// host seen, so memory does not grow with the hosts).
    pub fn hosts(&self) -> impl Iterator<Item = Host> + '_ {
        self.specs.iter().enumerate().flat_map(move |(i, spec)| {
            let earlier = &self.specs[..i];
            let hosts: Box<dyn Iterator<Item = Host>> = match spec {
                Spec::Block(b) => Box::new((0..b.count).map(|k| {
                    let ip = b.nth(k);
                    Host {
                        name: ip.to_string(),
                        ip: Some(ip),
                    }
                })),
                Spec::Name(n) => Box::new(std::iter::once(Host {
                    name: n.clone(),
                    ip: None,
                })),
            };
            hosts.filter(move |h| !earlier.iter().any(|s| s.contains(h)))
        })
    }
}

fn strip_brackets(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s)
}

fn check_host_name(name: &str) -> Result<(), String> {
    if name.contains(':') {
        return Err("not a host name or address (choose ports with --port, not host:port)".into());
    }
    let bare = name.trim_end_matches('.');
    if bare.len() > 253 {
        return Err("a host name has at most 253 characters".into());
    }
    let ok = !bare.is_empty()
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err("not a host name, IP address or CIDR block".into())
    }
}

/// The hosts of one CIDR block.
#[derive(Debug)]
struct Block {
    first: IpAddr,
    count: u128,
}

impl Block {
    fn single(ip: IpAddr) -> Block {
        Block {
            first: ip,
            count: 1,
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.first, ip) {
            (IpAddr::V4(f), IpAddr::V4(a)) => {
                let (f, a) = (u128::from(u32::from(f)), u128::from(u32::from(a)));
                a >= f && a - f < self.count
            }
            (IpAddr::V6(f), IpAddr::V6(a)) => {
                let (f, a) = (u128::from(f), u128::from(a));
                a >= f && a - f < self.count
            }
            _ => false,
        }
    }

    fn new(addr: IpAddr, len: u8) -> Result<Block, String> {
        match addr {
            IpAddr::V4(a) => {
                if len > 32 {
                    return Err("an IPv4 prefix length is at most 32".into());
                }
                let bits = u32::from(a);
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                let net = bits & mask;
                let size = 1u128 << (32 - len);
                // Network and broadcast addresses are no hosts, except in
                // /31 (RFC 3021) and /32.
                let (first, count) = if len >= 31 {
                    (net, size)
                } else {
                    (net + 1, size - 2)
                };
                Ok(Block {
                    first: IpAddr::V4(Ipv4Addr::from(first)),
                    count,
                })
            }
            IpAddr::V6(a) => {
                if len > 128 {
                    return Err("an IPv6 prefix length is at most 128".into());
                }
                let bits = u128::from(a);
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                let count = 1u128.checked_shl(128 - u32::from(len)).unwrap_or(u128::MAX);
                Ok(Block {
                    first: IpAddr::V6(Ipv6Addr::from(bits & mask)),
                    count,
                })
            }
        }
    }

    fn nth(&self, i: u128) -> IpAddr {
        match self.first {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) + i as u32)),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) + i)),
        }
    }
}

// ---------------------------------------------------------------- report

/// What answered on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// POP3 with TLS from the first byte.
    Pop3s,
    /// POP3 in plaintext (STLS may upgrade it: see `stls`).
    Pop3,
    /// A POP3 server that refused the session (`-ERR` greeting) or broke
    /// off during it.
    Pop3Error,
    /// Something listens, but it does not speak POP3 (or TLS then POP3).
    NotPop3,
    /// Nothing listens: the connection was refused.
    Closed,
    /// The connection attempt got no answer (filtered, or the host is down).
    NoAnswer,
    /// The connection failed otherwise (unreachable network, say).
    Unreachable,
    /// The host name does not resolve.
    DnsFailure,
}

impl Found {
    pub fn as_str(self) -> &'static str {
        match self {
            Found::Pop3s => "pop3s",
            Found::Pop3 => "pop3",
            Found::Pop3Error => "pop3_error",
            Found::NotPop3 => "not_pop3",
            Found::Closed => "closed",
            Found::NoAnswer => "no_answer",
            Found::Unreachable => "unreachable",
            Found::DnsFailure => "dns_failure",
        }
    }

    /// A POP3 server answered (working or not).
    pub fn is_pop3(self) -> bool {
        matches!(self, Found::Pop3s | Found::Pop3 | Found::Pop3Error)
    }
}

/// How STLS went on a plaintext endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StlsResult {
    /// `+OK`, and the TLS handshake completed (see `tls` for the certificate).
    Ok,
    /// The server answered `-ERR`.
    Refused,
    /// `+OK`, then the TLS handshake failed.
    TlsFailed,
    /// The dialogue broke before STLS had an answer.
    NoAnswer,
}

/// STLS on a plaintext endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Stls {
    /// CAPA listed STLS. Discovery sends STLS either way: some servers
    /// accept it without listing it.
    pub advertised: bool,
    pub result: StlsResult,
    /// The server's answer to STLS, or what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The TLS session and what its certificate is good for.
#[derive(Debug, Clone, Serialize)]
pub struct TlsReport {
    /// Version, cipher, certificate; `verified` is the outcome of the check
    /// against the trust roots for `server_name`.
    #[serde(flatten)]
    pub facts: TlsFacts,
    /// The name the certificate was checked against (and the one a monitor
    /// should use): `--tls-server-name`, the host name, or for an address a
    /// DNS name from the certificate when one fits.
    pub server_name: String,
    /// Why it did not verify, as a failure kind (`certificate_expired`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The TLS failure behind `failure`, for [`certificate_problem`].
    #[serde(skip)]
    pub cause: Option<TlsFailure>,
}

/// One TCP connection discovery made, so that it can be found in the
/// server's logs.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    /// `plaintext` or `implicit_tls`: what the connection tried first.
    pub attempt: &'static str,
    pub local: Option<String>,
    pub remote: String,
}

/// Everything learned about one host and port.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub found: Found,
    /// The address that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The greeting line, sanitized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// The greeting carries an APOP timestamp.
    pub apop: bool,
    /// CAPA as first answered: in plaintext, or over implicit TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stls: Option<Stls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    /// CAPA again after STLS: servers may offer other SASL mechanisms
    /// once the session is encrypted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities_after_stls: Option<Capabilities>,
    /// What failed along the way, in order (a failed attempt is not
    /// always a failed endpoint: see `found`).
    pub problems: Vec<String>,
    pub connections: Vec<Connection>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<WireLine>,
    /// CAPA that never ended (a list over the line cap, or one that kept
    /// streaming until the timeout): a monitor would fail the same way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capa_failure: Option<CapaFailure>,
}

/// Why CAPA did not finish, as the probe would classify it.
#[derive(Debug, Clone, Serialize)]
pub struct CapaFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl Endpoint {
    fn new(host: &Host, port: u16) -> Endpoint {
        Endpoint {
            host: host.name.clone(),
            port,
            found: Found::NotPop3,
            address: None,
            greeting: None,
            apop: false,
            capabilities: None,
            stls: None,
            tls: None,
            capabilities_after_stls: None,
            problems: Vec::new(),
            connections: Vec::new(),
            transcript: Vec::new(),
            capa_failure: None,
        }
    }

    /// The capabilities that hold where a client would log in: after STLS
    /// when it worked, else the first answer.
    pub fn effective_capabilities(&self) -> Option<&Capabilities> {
        self.capabilities_after_stls
            .as_ref()
            .or(self.capabilities.as_ref())
    }

    pub fn sasl(&self) -> Vec<String> {
        self.effective_capabilities()
            .map(|c| c.sasl.iter().map(|m| m.to_string()).collect())
            .unwrap_or_default()
    }

    pub fn login_delay(&self) -> Option<u64> {
        self.effective_capabilities().and_then(|c| c.login_delay)
    }

    /// The connection type that works, if one does.
    pub fn working_tls(&self) -> Option<TlsMode> {
        match self.found {
            Found::Pop3s => Some(TlsMode::Implicit),
            Found::Pop3 => match &self.stls {
                Some(s) if s.result == StlsResult::Ok => Some(TlsMode::Starttls),
                _ => Some(TlsMode::None),
            },
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- discovery

/// How to look.
#[derive(Clone)]
pub struct Options {
    pub ports: Vec<u16>,
    /// Each connection's time limit: connect, TLS and every reply.
    pub timeout: Duration,
    /// How long a plaintext connection waits for a greeting before trying
    /// implicit TLS instead (TLS servers wait for the client to speak).
    pub greeting_wait: Duration,
    /// Endpoints (host and port) looked at in parallel.
    pub concurrency: usize,
    /// The trust roots for the certificate check.
    pub tls: Arc<TlsClient>,
    /// SNI and certificate name for every host, instead of the host itself.
    pub tls_server_name: Option<String>,
    /// Keep each endpoint's dialogue in its report.
    pub transcript: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("ports", &self.ports)
            .field("timeout", &self.timeout)
            .field("greeting_wait", &self.greeting_wait)
            .field("concurrency", &self.concurrency)
            .field("tls_server_name", &self.tls_server_name)
            .finish()
    }
}

/// Look at every port of every host, at most `concurrency` at a time.
/// Results are in host order, then port order. The hosts are taken one at
/// a time as the work needs them (see [`Targets::hosts`]).
pub async fn discover<I>(hosts: I, opts: &Options) -> Vec<Endpoint>
where
    I: IntoIterator,
    I::Item: std::borrow::Borrow<Host>,
{
    use std::borrow::Borrow as _;
    let concurrency = opts.concurrency.max(1);
    futures::stream::iter(hosts)
        .map(|h| async move {
            let addrs = resolve(h.borrow(), opts.timeout).await;
            (h.borrow().clone(), Arc::new(addrs))
        })
        .buffered(concurrency)
        .flat_map(|(host, addrs)| {
            futures::stream::iter(
                opts.ports
                    .iter()
                    .map(move |&port| (host.clone(), Arc::clone(&addrs), port)),
            )
        })
        .map(|(host, addrs, port)| async move {
            match addrs.as_ref() {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs
                        .iter()
                        .map(|a| SocketAddr::new(a.ip(), port))
                        .collect();
                    endpoint(&host, &addrs, port, opts).await
                }
                Err(e) => {
                    let mut ep = Endpoint::new(&host, port);
                    ep.found = Found::DnsFailure;
                    ep.problems.push(e.clone());
                    ep
                }
            }
        })
        .buffered(concurrency)
        .collect()
        .await
}

async fn resolve(host: &Host, limit: Duration) -> Result<Vec<SocketAddr>, String> {
    if let Some(ip) = host.ip {
        return Ok(vec![SocketAddr::new(ip, 0)]);
    }
    match tokio::time::timeout(limit, net::resolve(&host.name, 0)).await {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(format!("cannot resolve {}: {e}", host.name)),
        Err(_) => Err(format!(
            "cannot resolve {}: no answer within {}",
            host.name,
            humantime::format_duration(limit)
        )),
    }
}

/// What to try next on an endpoint.
enum NextAttempt {
    /// Nothing: the endpoint is found out (or cannot be).
    Finished,
    ImplicitTls,
    /// Plaintext, waiting this long for the greeting.
    Plaintext(Duration),
}

/// One host and port. Port 995 starts with implicit TLS, every other port
/// with plaintext; either way the other is tried when the first does not
/// lead to POP3.
async fn endpoint(host: &Host, addrs: &[SocketAddr], port: u16, opts: &Options) -> Endpoint {
    let mut discovery = EndpointDiscovery {
        host,
        addrs,
        opts,
        ep: Endpoint::new(host, port),
        transcript: if opts.transcript {
            Transcript::recording()
        } else {
            Transcript::off()
        },
        plain_tried: false,
    };
    let mut next = if port == crate::profile::POP3S_PORT {
        NextAttempt::ImplicitTls
    } else {
        NextAttempt::Plaintext(opts.greeting_wait.min(opts.timeout))
    };
    // At most three connections: plaintext, TLS, and plaintext again for a
    // server that greets slowly.
    for _ in 0..3 {
        next = match next {
            NextAttempt::Finished => break,
            NextAttempt::ImplicitTls => discovery.try_implicit_tls().await,
            NextAttempt::Plaintext(wait) => discovery.try_plaintext(wait).await,
        };
    }
    let mut ep = discovery.ep;
    ep.transcript = discovery.transcript.lines();
    ep
}

/// One endpoint being found out: its connections so far, what they
/// showed, and the transcript.
struct EndpointDiscovery<'a> {
    host: &'a Host,
    addrs: &'a [SocketAddr],
    opts: &'a Options,
    ep: Endpoint,
    transcript: Transcript,
    plain_tried: bool,
}

/// What the first bytes from the server look like.
fn looks_pop3(first: &[u8]) -> bool {
    let n = first.len();
    n > 0 && (prefix_ci(b"+OK", first) || prefix_ci(b"-ERR", first))
}

/// `bytes` starts with `word` (ASCII case-insensitive), or is the
/// beginning of it.
fn prefix_ci(word: &[u8], bytes: &[u8]) -> bool {
    let n = word.len().min(bytes.len());
    word[..n].eq_ignore_ascii_case(&bytes[..n])
}

/// A TLS record: handshake (0x16) or alert (0x15), version major 3.
fn looks_tls(first: &[u8]) -> bool {
    matches!(first.first(), Some(0x15) | Some(0x16)) && first.get(1).is_none_or(|&b| b == 3)
}

impl EndpointDiscovery<'_> {
    /// Connect; `None` when the endpoint is finished (closed, no answer).
    async fn connect(&mut self, attempt: &'static str) -> Option<(TcpStream, Instant)> {
        let deadline = Instant::now() + self.opts.timeout;
        match net::connect_any(self.addrs, self.opts.timeout).await {
            Ok((tcp, remote)) => {
                self.ep.address = Some(remote.to_string());
                self.ep.connections.push(Connection {
                    attempt,
                    local: tcp.local_addr().ok().map(|a| a.to_string()),
                    remote: remote.to_string(),
                });
                self.transcript
                    .note(format!("connected to {remote} ({attempt})"));
                Some((tcp, deadline))
            }
            Err(e) => {
                // Only the first connection decides: a later one failing
                // (a server that stopped listening) leaves the first's verdict.
                if self.ep.connections.is_empty() {
                    self.ep.found = match e.failure {
                        ConnectFailure::Refused => Found::Closed,
                        ConnectFailure::Timeout => Found::NoAnswer,
                        ConnectFailure::Other => Found::Unreachable,
                    };
                }
                self.ep
                    .problems
                    .push(format!("cannot connect: {}", e.detail));
                None
            }
        }
    }

    async fn try_plaintext(&mut self, wait: Duration) -> NextAttempt {
        self.plain_tried = true;
        let Some((tcp, deadline)) = self.connect("plaintext").await else {
            return NextAttempt::Finished;
        };
        let mut first = [0u8; 8];
        let wait_until = deadline.min(Instant::now() + wait);
        let n = match tokio::time::timeout_at(wait_until, tcp.peek(&mut first)).await {
            Err(_) => {
                self.ep.problems.push(format!(
                    "plaintext: no greeting within {}",
                    humantime::format_duration(wait)
                ));
                return NextAttempt::ImplicitTls;
            }
            Ok(Err(e)) => {
                self.ep.problems.push(format!("plaintext: {e}"));
                return NextAttempt::ImplicitTls;
            }
            Ok(Ok(0)) => {
                self.ep
                    .problems
                    .push("plaintext: the server closed the connection without a greeting".into());
                return NextAttempt::ImplicitTls;
            }
            Ok(Ok(n)) => n,
        };
        let first = &first[..n];
        if looks_tls(first) {
            self.ep
                .problems
                .push("plaintext: the server sent TLS data first".into());
            return NextAttempt::ImplicitTls;
        }
        if !looks_pop3(first) {
            // Read the line for the report: SSH, SMTP and IMAP say who they are.
            let said = first_line(tcp, deadline).await;
            self.ep.found = Found::NotPop3;
            self.ep
                .problems
                .push(format!("plaintext: not a POP3 greeting: {said:?}"));
            return NextAttempt::Finished;
        }
        let Some(mut client) = self.greeting(tcp, deadline).await else {
            return NextAttempt::Finished;
        };
        self.ep.found = Found::Pop3;
        self.ep.capabilities = self.capa(&mut client, deadline, "plaintext").await;
        let advertised = self.ep.capabilities.as_ref().is_some_and(|c| c.stls);
        let stls = match tokio::time::timeout_at(deadline, client.stls()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.stls(advertised, StlsResult::NoAnswer, Some(e.to_string()));
                return NextAttempt::Finished;
            }
            Err(_) => {
                self.stls(advertised, StlsResult::NoAnswer, Some(timed_out(self.opts)));
                return NextAttempt::Finished;
            }
        };
        let (tcp, greeting) = match stls {
            StlsOutcome::Refused(client, line) => {
                self.stls(advertised, StlsResult::Refused, Some(line.to_string()));
                quit(client, deadline).await;
                return NextAttempt::Finished;
            }
            StlsOutcome::Ready(tcp, greeting) => (tcp, greeting),
        };
        match self.handshake(tcp, deadline).await {
            Ok(tls) => {
                self.stls(advertised, StlsResult::Ok, None);
                let mut client = Client::resume(tls, greeting, self.transcript.clone());
                self.ep.capabilities_after_stls =
                    self.capa(&mut client, deadline, "after STLS").await;
                quit(client, deadline).await;
            }
            Err(detail) => self.stls(advertised, StlsResult::TlsFailed, Some(detail)),
        }
        NextAttempt::Finished
    }

    fn stls(&mut self, advertised: bool, result: StlsResult, detail: Option<String>) {
        if result != StlsResult::Ok {
            if let Some(d) = &detail {
                self.ep.problems.push(format!("STLS: {d}"));
            }
        }
        self.ep.stls = Some(Stls {
            advertised,
            result,
            detail,
        });
    }

    async fn try_implicit_tls(&mut self) -> NextAttempt {
        let Some((tcp, deadline)) = self.connect("implicit_tls").await else {
            return NextAttempt::Finished;
        };
        let tap = FirstBytesTap::new(tcp);
        let first = tap.first.clone();
        let failure = match self.handshake(tap, deadline).await {
            Ok(tls) => {
                let Some(mut client) = self.greeting(tls, deadline).await else {
                    return NextAttempt::Finished;
                };
                self.ep.found = Found::Pop3s;
                self.ep.capabilities = self.capa(&mut client, deadline, "over TLS").await;
                quit(client, deadline).await;
                return NextAttempt::Finished;
            }
            Err(detail) => detail,
        };
        let sent = first.lock().map(|f| f.clone()).unwrap_or_default();
        if looks_pop3(&sent) {
            self.ep
                .problems
                .push("implicit TLS: the server answered in plaintext POP3".into());
            // Plaintext again, this time waiting as long as it takes: the
            // server greets, just slowly (or this is port 995 in plaintext).
            return NextAttempt::Plaintext(self.opts.timeout);
        }
        self.ep.problems.push(format!("implicit TLS: {failure}"));
        if !self.ep.found.is_pop3() {
            self.ep.found = Found::NotPop3;
        }
        if self.plain_tried {
            NextAttempt::Finished
        } else {
            NextAttempt::Plaintext(self.opts.greeting_wait.min(self.opts.timeout))
        }
    }

    /// TLS handshake with the chain check deferred, then the check itself,
    /// for each name that could fit: the session is kept either way, and
    /// the report says what the certificate is good for.
    async fn handshake<S>(
        &mut self,
        stream: S,
        deadline: Instant,
    ) -> Result<tokio_rustls::client::TlsStream<S>, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let sni = self
            .opts
            .tls_server_name
            .clone()
            .unwrap_or_else(|| self.host.name.clone());
        let sni = net::server_name(&sni)?;
        self.transcript.note("TLS handshake");
        let (tls, facts) =
            match tokio::time::timeout_at(deadline, self.opts.tls.handshake(stream, sni, false))
                .await
            {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => return Err(format!("TLS handshake failed: {}", e.detail)),
                Err(_) => return Err(format!("TLS handshake: {}", timed_out(self.opts))),
            };
        self.ep.tls = Some(self.check_certificate(&tls, facts));
        Ok(tls)
    }

    fn check_certificate<S>(
        &self,
        tls: &tokio_rustls::client::TlsStream<S>,
        mut facts: TlsFacts,
    ) -> TlsReport {
        let mut candidates: Vec<String> = Vec::new();
        if let Some(name) = &self.opts.tls_server_name {
            candidates.push(name.clone());
        } else if self.host.ip.is_some() {
            // Mail clients connect by name: prefer a DNS name the
            // certificate carries, then the address itself.
            if let Some(cert) = &facts.certificate {
                candidates.extend(
                    cert.names
                        .iter()
                        .filter(|n| !n.starts_with("*.") && n.parse::<IpAddr>().is_err())
                        .cloned(),
                );
            }
            candidates.push(self.host.name.clone());
        } else {
            candidates.push(self.host.name.clone());
        }
        let mut fallback: Option<(String, net::TlsError)> = None;
        for name in &candidates {
            let Ok(server_name) = net::server_name(name) else {
                continue;
            };
            match self.opts.tls.verify(tls, &server_name) {
                Ok(()) => {
                    facts.verified = net::Verification::Passed;
                    return TlsReport {
                        facts,
                        server_name: name.clone(),
                        failure: None,
                        detail: None,
                        cause: None,
                    };
                }
                Err(e) => {
                    // A name that fits with an otherwise bad chain (expired,
                    // unknown issuer) beats a name that does not fit at all.
                    let better = match &fallback {
                        None => true,
                        Some((_, prev)) => {
                            prev.failure == TlsFailure::NameMismatch
                                && e.failure != TlsFailure::NameMismatch
                        }
                    };
                    if better {
                        fallback = Some((name.clone(), e));
                    }
                }
            }
        }
        let (name, e) = fallback.unwrap_or_else(|| {
            (
                self.host.name.clone(),
                net::TlsError {
                    failure: TlsFailure::Invalid,
                    detail: "no usable name to check the certificate against".into(),
                    facts: None,
                },
            )
        });
        facts.verified = net::Verification::Failed(e.failure);
        TlsReport {
            facts,
            server_name: name,
            failure: Some(FailureKind::from(e.failure)),
            detail: Some(e.detail),
            cause: Some(e.failure),
        }
    }

    /// Read the greeting; `None` (and the endpoint described) when there is
    /// no usable one.
    async fn greeting<S>(&mut self, stream: S, deadline: Instant) -> Option<Client<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = self.ep.tls.is_some();
        let over = if tls { "over TLS" } else { "plaintext" };
        match tokio::time::timeout_at(deadline, Client::connect(stream, self.transcript.clone()))
            .await
        {
            Ok(Ok(client)) => {
                self.ep.greeting = Some(client.greeting().line.to_string());
                self.ep.apop = client.greeting().apop_timestamp.is_some();
                Some(client)
            }
            Ok(Err(pop3::Error::Negative(line))) => {
                self.ep.found = Found::Pop3Error;
                self.ep.greeting = Some(line.to_string());
                self.ep
                    .problems
                    .push(format!("{over}: the server refused the session: {line}"));
                None
            }
            Ok(Err(pop3::Error::Protocol(p))) => {
                self.ep.found = Found::NotPop3;
                self.ep
                    .problems
                    .push(format!("{over}: not a POP3 greeting: {p}"));
                None
            }
            Ok(Err(e)) => {
                self.ep.found = Found::NotPop3;
                self.ep.problems.push(format!("{over}: no greeting: {e}"));
                None
            }
            Err(_) => {
                self.ep.found = Found::NotPop3;
                self.ep
                    .problems
                    .push(format!("{over}: no greeting: {}", timed_out(self.opts)));
                None
            }
        }
    }

    fn unfinished_capa(&mut self, kind: FailureKind, message: String) {
        self.ep.problems.push(message.clone());
        self.ep.capa_failure = Some(CapaFailure { kind, message });
    }

    async fn capa<S>(
        &mut self,
        client: &mut Client<S>,
        deadline: Instant,
        when: &str,
    ) -> Option<Capabilities>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout_at(deadline, client.capa()).await {
            Ok(Ok(c)) => Some(c),
            Ok(Err(pop3::Error::Negative(line))) => {
                self.ep
                    .problems
                    .push(format!("CAPA {when}: not supported: {line}"));
                None
            }
            Ok(Err(pop3::Error::TooLarge)) => {
                let message = format!(
                    "CAPA {when}: response_too_large in capa: the capability list did not end within {} lines",
                    pop3::MAX_LINES
                );
                self.unfinished_capa(FailureKind::ResponseTooLarge, message);
                None
            }
            Ok(Err(e)) => {
                self.ep.problems.push(format!("CAPA {when}: {e}"));
                None
            }
            Err(_) => {
                // The server may have been sending all along: say so, not
                // "no answer".
                let message = format!(
                    "CAPA {when}: timeout in capa: the capability list did not end within {} (--timeout)",
                    humantime::format_duration(self.opts.timeout)
                );
                self.unfinished_capa(FailureKind::Timeout, message);
                None
            }
        }
    }
}

fn timed_out(opts: &Options) -> String {
    format!(
        "no answer within {} (--timeout)",
        humantime::format_duration(opts.timeout)
    )
}

/// QUIT and wait for the answer, so the server logs a clean logout; a
/// server that does not answer in time is simply dropped.
async fn quit<S: AsyncRead + AsyncWrite + Unpin>(client: Client<S>, deadline: Instant) {
    let _ = tokio::time::timeout_at(deadline, client.quit()).await;
}

/// The first line a non-POP3 server sent, for the report.
async fn first_line(tcp: TcpStream, deadline: Instant) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut buf = vec![0u8; 160];
    let mut tcp = tcp;
    let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    let line = buf[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    // Discover sends no password: nothing to mask but control characters.
    wire::Masker::default().text(line).into_string()
}

/// Keeps the first bytes the server sent, so that a failed TLS handshake
/// can tell "this port speaks plaintext POP3" from other failures.
struct FirstBytesTap<S> {
    inner: S,
    first: Arc<Mutex<Vec<u8>>>,
}

const FIRST_BYTES_KEPT: usize = 8;

impl<S> FirstBytesTap<S> {
    fn new(inner: S) -> FirstBytesTap<S> {
        FirstBytesTap {
            inner,
            first: Arc::default(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstBytesTap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            if let Ok(mut first) = this.first.lock() {
                let room = FIRST_BYTES_KEPT.saturating_sub(first.len());
                let new = &buf.filled()[before..];
                first.extend_from_slice(&new[..new.len().min(room)]);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstBytesTap<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------- proposal

/// What goes into the proposed config besides the endpoints.
#[derive(Debug, Clone)]
pub struct ProposalSettings {
    /// The technical account's user name; a placeholder when `None`.
    pub username: Option<String>,
    /// The environment variable `run` reads the password from.
    pub password_env: String,
    /// Written into every TLS monitor as `ca_file` (discovery checked the
    /// certificates against it).
    pub ca_file: Option<PathBuf>,
    /// Written into every TLS monitor as `tls_server_name`.
    pub tls_server_name: Option<String>,
    /// Shown in the `$comment`: what was run.
    pub command: String,
}

/// A monitor, in the config file's own format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposedMonitor {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub auth: AuthMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Set only when the monitor needs another login than the defaults'
    /// password credential (an OAuth2-only server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProposedCredential {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// For [`OAUTH2_CREDENTIALS_NAME`]: the token endpoint's settings, with
    /// CHANGE-ME where discovery cannot know them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<serde_json::Value>,
}

/// The OAuth2 block proposed for a host: the provider's preset when the
/// name is one of theirs, else a generic endpoint to fill in.
fn proposed_oauth2(host: &str) -> serde_json::Value {
    let h = host.to_ascii_lowercase();
    if h.ends_with("office365.com") || h.ends_with("outlook.com") {
        serde_json::json!({"provider": "microsoft", "tenant": PLACEHOLDER_USER,
                           "client_id": PLACEHOLDER_USER, "client_secret_env": DEFAULT_CLIENT_SECRET_ENV})
    } else if h.ends_with("gmail.com") || h.ends_with("googlemail.com") {
        serde_json::json!({"provider": "google", "grant": "refresh_token",
                           "client_id": PLACEHOLDER_USER, "client_secret_env": DEFAULT_CLIENT_SECRET_ENV,
                           "refresh_token_env": "POP3_PROBE_OAUTH2_REFRESH_TOKEN"})
    } else {
        serde_json::json!({"provider": "generic", "token_url": format!("https://{PLACEHOLDER_USER}/oauth2/token"),
                           "scope": PLACEHOLDER_USER, "client_id": PLACEHOLDER_USER,
                           "client_secret_env": DEFAULT_CLIENT_SECRET_ENV})
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProposedDefaults {
    pub credentials: String,
}

/// A monitor list that `Config::parse` loads as it is.
#[derive(Debug, Clone, Serialize)]
pub struct ProposedConfig {
    #[serde(rename = "$comment")]
    pub comment: String,
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defaults: Option<ProposedDefaults>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub credentials: BTreeMap<String, ProposedCredential>,
    pub monitors: Vec<ProposedMonitor>,
}

/// The monitor for one endpoint, or why there is none. One monitor per
/// working connection type: an endpoint is one host, one port, one type.
pub fn propose(ep: &Endpoint, s: &ProposalSettings) -> Result<ProposedMonitor, String> {
    draft(ep, s).map(Draft::finish)
}

/// A proposed monitor whose notes are still apart, so that the config as a
/// whole can change its login (see [`proposed_config`]).
struct Draft {
    monitor: ProposedMonitor,
    /// How `auth auto` will log in; dropped when the login is.
    auth_note: Option<String>,
    notes: Vec<String>,
    login_delay: Option<u64>,
}

impl Draft {
    fn finish(self) -> ProposedMonitor {
        let notes: Vec<String> = self.notes.into_iter().chain(self.auth_note).collect();
        ProposedMonitor {
            notes: if notes.is_empty() {
                None
            } else {
                Some(notes.join(" "))
            },
            ..self.monitor
        }
    }
}

fn draft(ep: &Endpoint, s: &ProposalSettings) -> Result<Draft, String> {
    if let Some(c) = &ep.capa_failure {
        return Err(format!(
            "no monitor proposed: CAPA never ended ({}); a monitor would fail with {} in capa",
            c.message, c.kind
        ));
    }
    let mut notes: Vec<String> = Vec::new();
    let mut auth_note = None;
    let (name, tls, mut auth) = match ep.found {
        Found::Pop3s => (
            format!("{}-pop3s-{}", ep.host, ep.port),
            TlsMode::Implicit,
            AuthMethod::Auto,
        ),
        Found::Pop3 => {
            match ep.stls.as_ref().map(|s| s.result) {
                Some(StlsResult::Ok) => (
                    format!("{}-pop3-{}-starttls", ep.host, ep.port),
                    TlsMode::Starttls,
                    AuthMethod::Auto,
                ),
                // Advertised, then refused: a misconfiguration, or a man in the
                // middle stripping STARTTLS. A plaintext proposal would make the
                // downgrade the baseline.
                Some(StlsResult::Refused) if ep.stls.as_ref().is_some_and(|s| s.advertised) => {
                    notes.push(format!(
                    "The server advertises STLS but refused it when discover asked ({}): TLS is \
                     misconfigured, or something on the path strips STARTTLS. This monitor uses \
                     starttls and will be down with stls_refused until that is fixed; a plaintext \
                     monitor would hide a downgrade.",
                    ep.stls.as_ref().and_then(|s| s.detail.as_deref()).unwrap_or("-ERR")
                ));
                    (
                        format!("{}-pop3-{}-starttls", ep.host, ep.port),
                        TlsMode::Starttls,
                        AuthMethod::Auto,
                    )
                }
                Some(StlsResult::TlsFailed) => {
                    return Err(format!(
                    "STLS is accepted but TLS fails ({}); no monitor proposed: a plaintext one would hide the broken TLS",
                    ep.stls.as_ref().and_then(|s| s.detail.as_deref()).unwrap_or("handshake failed")
                ));
                }
                _ if ep.apop => {
                    notes.push(
                    "No TLS on this port (STLS is not available), so the session is not encrypted. \
                     APOP keeps the password itself off the wire (the server sends a challenge, the \
                     probe answers with an MD5 digest), but APOP is weak by today's standards: \
                     prefer a TLS port if the server has one."
                        .into(),
                );
                    (
                        format!("{}-pop3-{}-apop", ep.host, ep.port),
                        TlsMode::None,
                        AuthMethod::Apop,
                    )
                }
                _ => {
                    notes.push(
                        "No TLS on this port (STLS is not available) and no APOP in the greeting: \
                     logging in would send the password in cleartext. This monitor therefore \
                     checks connectivity and the greeting only (auth none). To log in anyway, \
                     set auth to user and allow_plaintext_password to true, knowingly."
                            .into(),
                    );
                    (
                        format!("{}-pop3-{}-connect", ep.host, ep.port),
                        TlsMode::None,
                        AuthMethod::None,
                    )
                }
            }
        }
        Found::Pop3Error => {
            return Err(format!(
                "the POP3 server did not complete a session: {}",
                ep.problems.last().map(String::as_str).unwrap_or("unknown")
            ))
        }
        other => {
            return Err(match other {
                Found::Closed => "nothing listens (connection refused)".to_string(),
                Found::NoAnswer => "no answer to the connection attempt".to_string(),
                Found::DnsFailure => "the host name does not resolve".to_string(),
                _ => format!(
                    "no POP3 here: {}",
                    ep.problems.last().map(String::as_str).unwrap_or("unknown")
                ),
            })
        }
    };
    let mut tls_server_name = None;
    let mut ca_file = None;
    let mut oauth2_login = false;
    if tls != TlsMode::None {
        if let Some(report) = &ep.tls {
            if let Some(n) = &s.tls_server_name {
                tls_server_name = Some(n.clone());
            } else if report.server_name != ep.host {
                tls_server_name = Some(report.server_name.clone());
                notes.push(format!(
                    "The certificate is checked for {} (a name it carries), not for the address.",
                    report.server_name
                ));
            }
            if let Some(kind) = report.failure {
                notes.push(certificate_note(report, kind, s.ca_file.is_some()));
            }
            if let Some(c) = &report.facts.certificate {
                if report.failure.is_none() && c.days_remaining < 30 {
                    notes.push(format!(
                        "The certificate expires in {} days ({}).",
                        c.days_remaining, c.not_after
                    ));
                }
            }
        }
        ca_file = s.ca_file.clone();
        if auth == AuthMethod::Auto {
            let sasl = ep.sasl();
            let how = if ep.apop {
                "APOP (the greeting has a timestamp)".to_string()
            } else if sasl.iter().any(|m| m == "PLAIN") {
                "SASL PLAIN (over TLS)".to_string()
            } else {
                "USER/PASS (over TLS)".to_string()
            };
            let oauth: Vec<&String> = sasl
                .iter()
                .filter(|m| *m == "XOAUTH2" || *m == "OAUTHBEARER")
                .collect();
            auth_note = Some(
                if !oauth.is_empty() && !ep.apop && !sasl.iter().any(|m| m == "PLAIN") {
                    // Exchange Online and Gmail: a password login will fail,
                    // so the proposal logs in with OAuth2 (OAUTHBEARER, the
                    // standard, when offered).
                    let mech = if oauth.iter().any(|m| *m == "OAUTHBEARER") {
                        AuthMethod::Oauthbearer
                    } else {
                        AuthMethod::Xoauth2
                    };
                    auth = mech;
                    oauth2_login = true;
                    format!(
                    "The server offers OAuth2 logins (SASL {}) and no SASL PLAIN, as Exchange Online and Gmail do: this monitor logs in with {mech} using credentials.{OAUTH2_CREDENTIALS_NAME}; fill in its oauth2 block (docs/oauth2.md has the setup steps). If the server does take passwords, set auth to auto and drop the credentials line: it would log in with {how}.",
                    oauth.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" ")
                )
                } else {
                    format!("auth auto will log in with {how}.")
                },
            );
        }
    }
    if let Some(delay) = ep.login_delay() {
        notes.push(format!(
            "The server announces LOGIN-DELAY {delay}: it refuses a login sooner than {delay} s \
             after the last one to the same mailbox. Probe this monitor less often than every \
             {delay} s, and do not let other monitors (or people) log in to the same mailbox in \
             between."
        ));
    }
    Ok(Draft {
        monitor: ProposedMonitor {
            name,
            host: ep.host.clone(),
            port: ep.port,
            tls,
            auth,
            tls_server_name,
            ca_file,
            credentials: oauth2_login.then(|| OAUTH2_CREDENTIALS_NAME.to_string()),
            notes: None,
        },
        auth_note,
        notes,
        login_delay: ep.login_delay(),
    })
}

/// What is wrong with the certificate, in the admin's terms; `None` when
/// it verified. The probe's wording ([`net::describe_certificate_failure`]),
/// so discover and the monitor it proposes say the same thing.
pub fn certificate_problem(report: &TlsReport) -> Option<String> {
    let kind = report.failure?;
    let cause = report.cause.unwrap_or(TlsFailure::Invalid);
    let detail = report.detail.as_deref().unwrap_or(kind.as_str());
    Some(net::describe_certificate_failure(
        &cause,
        detail,
        report.facts.certificate.as_ref(),
        &report.server_name,
    ))
}

fn certificate_note(report: &TlsReport, kind: FailureKind, ca_file: bool) -> String {
    let what = certificate_problem(report).unwrap_or_default();
    let hint = if kind == FailureKind::CertificateInvalid && !ca_file {
        " If the server uses a private CA, run discover again with --ca-file (the monitor then gets ca_file)."
    } else {
        ""
    };
    let mut what = what;
    if let Some(first) = what.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    format!("{what}: this monitor will be down with {kind} until that is fixed.{hint}")
}

/// The config for every endpoint that has a working connection type.
///
/// When a host announces LOGIN-DELAY, only one of its monitors logs in
/// (implicit TLS if there is one): a second login to the same mailbox
/// within the delay would be refused on every run. The others check
/// connectivity, TLS and the greeting, and say why in their notes.
pub fn proposed_config(endpoints: &[Endpoint], s: &ProposalSettings) -> ProposedConfig {
    let mut drafts: Vec<Draft> = endpoints
        .iter()
        .filter_map(|ep| draft(ep, s).ok())
        .collect();
    let delayed: Vec<String> = drafts
        .iter()
        .filter(|d| d.login_delay.is_some())
        .map(|d| d.monitor.host.clone())
        .collect();
    for host in &delayed {
        let logins: Vec<usize> = (0..drafts.len())
            .filter(|&i| {
                &drafts[i].monitor.host == host && drafts[i].monitor.auth != AuthMethod::None
            })
            .collect();
        let Some(&keep) = logins
            .iter()
            .find(|&&i| drafts[i].monitor.tls == TlsMode::Implicit)
            .or(logins.first())
        else {
            continue;
        };
        let kept = drafts[keep].monitor.name.clone();
        for &i in logins.iter().filter(|&&i| i != keep) {
            let d = &mut drafts[i];
            d.monitor.auth = AuthMethod::None;
            d.monitor.credentials = None;
            d.auth_note = None;
            d.notes.insert(
                0,
                format!(
                    "Only {kept} logs in: this server announces LOGIN-DELAY, and a second login \
                     to the same mailbox within the delay would be refused on every run. This \
                     monitor checks connectivity, TLS and the greeting (auth none)."
                ),
            );
        }
    }
    let monitors: Vec<ProposedMonitor> = drafts.into_iter().map(Draft::finish).collect();
    // Password logins use the defaults' credential; OAuth2-only servers
    // name their own.
    let logs_in = monitors
        .iter()
        .any(|m| m.auth != AuthMethod::None && m.credentials.is_none());
    let username = s
        .username
        .clone()
        .unwrap_or_else(|| PLACEHOLDER_USER.to_string());
    let mut credentials = BTreeMap::new();
    if logs_in {
        credentials.insert(
            CREDENTIALS_NAME.to_string(),
            ProposedCredential {
                username: username.clone(),
                password_env: Some(s.password_env.clone()),
                oauth2: None,
            },
        );
    }
    if let Some(m) = monitors
        .iter()
        .find(|m| m.credentials.as_deref() == Some(OAUTH2_CREDENTIALS_NAME))
    {
        credentials.insert(
            OAUTH2_CREDENTIALS_NAME.to_string(),
            ProposedCredential {
                username,
                password_env: None,
                oauth2: Some(proposed_oauth2(&m.host)),
            },
        );
    }
    let mut comment = format!(
        "Proposed by `{}`: {} monitor(s), one per working connection type. It never logged in.",
        s.command,
        monitors.len()
    );
    if logs_in {
        comment.push_str(&format!(
            " Before `pop3-probe run --config FILE`: {}set {} to the technical account's password.",
            if s.username.is_none() {
                format!(
                    "replace {PLACEHOLDER_USER} in credentials.{CREDENTIALS_NAME}.username, and "
                )
            } else {
                String::new()
            },
            s.password_env
        ));
    }
    if credentials.contains_key(OAUTH2_CREDENTIALS_NAME) {
        comment.push_str(&format!(
            " OAuth2-only servers log in with credentials.{OAUTH2_CREDENTIALS_NAME}: replace each {PLACEHOLDER_USER} in it and set {DEFAULT_CLIENT_SECRET_ENV} (docs/oauth2.md)."
        ));
    }
    ProposedConfig {
        comment,
        version: 1,
        defaults: logs_in.then(|| ProposedDefaults {
            credentials: CREDENTIALS_NAME.to_string(),
        }),
        credentials,
        monitors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(targets: &[&str], max: usize) -> Result<Vec<String>, TargetError> {
        let t: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
        expand_targets(&t, max).map(|h| h.into_iter().map(|h| h.name).collect())
    }

    #[test]
    fn targets_expand_in_order_without_duplicates() {
        assert_eq!(
            names(
                &["Mail.Example.com.", "127.0.0.1", "[::1]", "127.0.0.1"],
                10
            )
            .unwrap(),
            ["mail.example.com", "127.0.0.1", "::1"]
        );
        assert_eq!(
            names(&["192.0.2.7/30"], 10).unwrap(),
            ["192.0.2.5", "192.0.2.6"]
        );
        assert_eq!(
            names(&["192.0.2.0/31", "192.0.2.9/32"], 10).unwrap(),
            ["192.0.2.0", "192.0.2.1", "192.0.2.9"]
        );
        assert_eq!(
            names(&["2001:db8::/126"], 10).unwrap(),
            ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]
        );
        assert_eq!(names(&["192.0.2.0/24"], 254).unwrap().len(), 254);
    }

    #[test]
    fn too_many_hosts_is_refused_before_expanding() {
        assert_eq!(
            names(&["10.0.0.0/8"], 256),
            Err(TargetError::TooMany {
                count: (1 << 24) - 2,
                max: 256
            })
        );
        assert!(matches!(
            names(&["::/0"], 256),
            Err(TargetError::TooMany { max: 256, .. })
        ));
        assert!(matches!(
            names(&["a.example", "b.example", "c.example"], 2),
            Err(TargetError::TooMany { count: 3, max: 2 })
        ));
    }

    #[test]
    fn hosts_are_made_lazily_and_each_once() {
        let t: Vec<String> = ["10.0.0.0/16", "10.0.0.5", "b.example", "B.example."]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let plan = plan_targets(&t, 1 << 16).unwrap();
        // Planned, not built: the first hosts come without the other 65,532.
        let first: Vec<String> = plan.hosts().take(2).map(|h| h.name).collect();
        assert_eq!(first, ["10.0.0.1", "10.0.0.2"]);
        // 10.0.0.5 is inside the block: skipped; the name given twice: once.
        let tail: Vec<String> = plan.hosts().skip((1 << 16) - 3).map(|h| h.name).collect();
        assert_eq!(tail, ["10.0.255.254", "b.example"]);
        assert_eq!(plan.count(), (1 << 16) - 2 + 1 + 1);
    }

    #[test]
    fn bad_targets_say_why() {
        for (t, why) in [
            ("mail.example.com:110", "--port"),
            ("10.0.0.0/33", "at most 32"),
            ("::1/129", "at most 128"),
            ("mail/24", "must be an IPv4 or IPv6 address"),
            ("10.0.0.0/x", "must be a number"),
            ("bad host", "not a host name"),
            ("", "empty"),
        ] {
            let e = names(&[t], 10).unwrap_err().to_string();
            assert!(e.contains(why), "{t}: {e}");
            assert!(e.contains(&format!("{t:?}")), "{t}: {e}");
        }
    }

    #[test]
    fn first_bytes() {
        assert!(looks_pop3(b"+OK Dovecot ready."));
        assert!(looks_pop3(b"+o"));
        assert!(looks_pop3(b"-ERR [SYS/TEMP]"));
        assert!(!looks_pop3(b"* OK IMAP"));
        assert!(!looks_pop3(b"220 smtp"));
        assert!(!looks_pop3(b""));
        assert!(looks_tls(&[0x15, 0x03, 0x01]));
        assert!(looks_tls(&[0x16]));
        assert!(!looks_tls(b"+OK"));
    }

    fn endpoint(found: Found) -> Endpoint {
        let mut ep = Endpoint::new(
            &Host {
                name: "192.0.2.1".into(),
                ip: Some("192.0.2.1".parse().unwrap()),
            },
            110,
        );
        ep.found = found;
        ep
    }

    fn settings() -> ProposalSettings {
        ProposalSettings {
            username: None,
            password_env: DEFAULT_PASSWORD_ENV.into(),
            ca_file: None,
            tls_server_name: None,
            command: "pop3-probe discover 192.0.2.1".into(),
        }
    }

    #[test]
    fn plaintext_without_tls_never_proposes_a_cleartext_password() {
        let mut ep = endpoint(Found::Pop3);
        ep.stls = Some(Stls {
            advertised: false,
            result: StlsResult::Refused,
            detail: Some("-ERR unknown command".into()),
        });
        let m = propose(&ep, &settings()).unwrap();
        assert_eq!((m.tls, m.auth), (TlsMode::None, AuthMethod::None));
        assert!(m.notes.unwrap().contains("cleartext"));
        ep.apop = true;
        let m = propose(&ep, &settings()).unwrap();
        assert_eq!((m.tls, m.auth), (TlsMode::None, AuthMethod::Apop));
        assert_eq!(m.name, "192.0.2.1-pop3-110-apop");
        // Issue 11.6: STLS advertised, then refused: starttls, with a note.
        ep.stls.as_mut().unwrap().advertised = true;
        let m = propose(&ep, &settings()).unwrap();
        assert_eq!(m.tls, TlsMode::Starttls);
        assert!(m.notes.unwrap().contains("strips STARTTLS"));
        // A CAPA that never ends: no monitor, and the reason.
        let mut endless = ep.clone();
        endless.capa_failure = Some(CapaFailure {
            kind: FailureKind::ResponseTooLarge,
            message: "CAPA: response_too_large in capa".into(),
        });
        let why = propose(&endless, &settings()).unwrap_err();
        assert!(why.contains("CAPA never ended"), "{why}");
        // STLS accepted but TLS broken: nothing, and a reason.
        ep.stls.as_mut().unwrap().result = StlsResult::TlsFailed;
        assert!(propose(&ep, &settings()).unwrap_err().contains("STLS"));
    }

    #[test]
    fn nothing_there_is_a_reason_not_a_monitor() {
        for found in [
            Found::Closed,
            Found::NoAnswer,
            Found::NotPop3,
            Found::DnsFailure,
        ] {
            assert!(propose(&endpoint(found), &settings()).is_err());
        }
        let c = proposed_config(&[endpoint(Found::Closed)], &settings());
        assert!(c.monitors.is_empty() && c.credentials.is_empty() && c.defaults.is_none());
    }

    #[test]
    fn with_login_delay_only_one_monitor_per_host_logs_in() {
        let caps = Capabilities::from_lines(vec![&b"STLS"[..], b"LOGIN-DELAY 300"]);
        let mut plain = endpoint(Found::Pop3);
        plain.capabilities_after_stls = Some(caps.clone());
        plain.stls = Some(Stls {
            advertised: true,
            result: StlsResult::Ok,
            detail: None,
        });
        let mut implicit = endpoint(Found::Pop3s);
        implicit.port = 995;
        implicit.capabilities = Some(caps);
        let c = proposed_config(&[plain, implicit], &settings());
        let got: Vec<(&str, AuthMethod)> = c
            .monitors
            .iter()
            .map(|m| (m.name.as_str(), m.auth))
            .collect();
        assert_eq!(
            got,
            [
                ("192.0.2.1-pop3-110-starttls", AuthMethod::None),
                ("192.0.2.1-pop3s-995", AuthMethod::Auto),
            ]
        );
        let notes = c.monitors[0].notes.as_deref().unwrap();
        assert!(
            notes.starts_with("Only 192.0.2.1-pop3s-995 logs in"),
            "{notes}"
        );
        assert!(!notes.contains("auth auto"), "{notes}");
        // Without LOGIN-DELAY both log in.
        let mut a = endpoint(Found::Pop3s);
        a.port = 995;
        let mut b = endpoint(Found::Pop3s);
        b.port = 1995;
        let c = proposed_config(&[a, b], &settings());
        assert!(c.monitors.iter().all(|m| m.auth == AuthMethod::Auto));
    }

    #[test]
    fn an_oauth2_only_server_gets_an_oauth2_proposal_note() {
        let mut ep = endpoint(Found::Pop3s);
        ep.port = 995;
        ep.capabilities = Some(Capabilities::from_lines(vec![
            &b"USER"[..],
            &b"SASL XOAUTH2 OAUTHBEARER"[..],
        ]));
        let notes = proposed_config(&[ep.clone()], &settings()).monitors[0]
            .notes
            .clone()
            .unwrap_or_default();
        assert!(
            notes.contains("SASL XOAUTH2 OAUTHBEARER") && notes.contains("oauth2 block"),
            "{notes}"
        );
        // The proposal logs in with OAuth2 through an oauth2 credential of
        // its own, and the whole document loads with no problem.
        let mut outlook = ep.clone();
        outlook.host = "outlook.office365.com".into();
        let doc = proposed_config(&[outlook], &settings());
        assert_eq!(doc.monitors[0].auth, AuthMethod::Oauthbearer);
        assert_eq!(
            doc.monitors[0].credentials.as_deref(),
            Some(OAUTH2_CREDENTIALS_NAME)
        );
        let cred = &doc.credentials[OAUTH2_CREDENTIALS_NAME];
        assert_eq!(cred.oauth2.as_ref().unwrap()["provider"], "microsoft");
        assert!(cred.password_env.is_none());
        assert!(!doc.credentials.contains_key(CREDENTIALS_NAME));
        let text = serde_json::to_string(&doc).unwrap();
        let config = crate::config::Config::parse(&text).unwrap();
        assert!(config.problems.is_empty(), "{:?}\n{text}", config.problems);
        assert_eq!(config.monitors.len(), 1, "{text}");
        ep.capabilities = Some(Capabilities::from_lines(vec![&b"SASL PLAIN XOAUTH2"[..]]));
        let notes = proposed_config(&[ep.clone()], &settings()).monitors[0]
            .notes
            .clone()
            .unwrap_or_default();
        assert!(!notes.contains("oauth2 block"), "{notes}");
        let doc = proposed_config(&[ep], &settings());
        assert_eq!(doc.monitors[0].credentials, None);
        assert!(!doc.credentials.contains_key(OAUTH2_CREDENTIALS_NAME));
    }

    #[test]
    fn login_delay_is_a_note() {
        let mut ep = endpoint(Found::Pop3);
        ep.apop = true;
        ep.capabilities = Some(Capabilities::from_lines(vec![&b"LOGIN-DELAY 900"[..]]));
        let notes = propose(&ep, &settings()).unwrap().notes.unwrap();
        assert!(notes.contains("LOGIN-DELAY 900"), "{notes}");
    }
}
