//! `pop3-probe serve`: the Prometheus exporter (see docs/serve.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::sync::mpsc;

use pop3_probe::output;
use pop3_probe::serve::{self, BasicAuth, Exporter, ReloadRequest, ServeConfig};

use super::run::LazySecrets;

#[derive(Debug, Args)]
#[command(after_help = "\
Endpoints:
  /probe?target=<monitor>                   one monitor of --config
  /probe?module=<name>&target=<host[:port]>  a module of --config on an ad-hoc host
  /metrics                                  the exporter's own metrics
  /-/healthy, POST /-/reload                 (SIGHUP reloads as well)

Examples:
  pop3-probe serve --config monitors.json
  pop3-probe serve --config monitors.json --listen 0.0.0.0:9115 \\
      --tls-cert /etc/pop3-probe/cert.pem --tls-key /etc/pop3-probe/key.pem \\
      --basic-auth-file /etc/pop3-probe/users

No alert state here: Prometheus and Alertmanager decide what alerts.")]
pub struct ServeArgs {
    /// The monitor list (JSON), with an optional \"modules\" object. Example: --config monitors.json
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Address to listen on. Loopback by default: a probe with credentials
    /// should not be open to the network without TLS and --basic-auth-file.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9116")]
    pub listen: SocketAddr,

    /// Probes running at once; more wait (until their scrape deadline).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub concurrency: usize,

    /// Subtracted from X-Prometheus-Scrape-Timeout-Seconds (as blackbox's --timeout-offset).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", default_value = "500ms")]
    pub timeout_offset: Duration,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require HTTP basic auth: lines of user:sha256:<hex of the password's SHA-256>.
    #[arg(long, value_name = "FILE")]
    pub basic_auth_file: Option<PathBuf>,
}

async fn load(path: &PathBuf, secrets: &LazySecrets) -> anyhow::Result<ServeConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let cfg = serve::load(&text, secrets)
        .await
        .map_err(anyhow::Error::new)?;
    for p in &cfg.config.problems {
        eprintln!(
            "pop3-probe serve: monitor {}: {}: {}",
            p.monitor, p.error.path, p.error.message
        );
    }
    for (name, m) in &cfg.modules {
        if let Err(e) = m {
            eprintln!("pop3-probe serve: module {name}: {}: {}", e.path, e.message);
        }
    }
    Ok(cfg)
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    // Capped reads, like every file the probe takes into memory.
    let cert_pem = pop3_probe::limits::read_text_file(cert, pop3_probe::limits::MAX_CA_FILE_BYTES)
        .context("--tls-cert")?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--tls-cert {}: unreadable PEM", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "--tls-cert {}: no certificate",
        cert.display()
    );
    let key_pem = pop3_probe::limits::read_text_file(key, pop3_probe::limits::MAX_CA_FILE_BYTES)
        .context("--tls-key")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .with_context(|| format!("--tls-key {}: no readable private key", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("--tls-cert/--tls-key")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

pub async fn run(args: ServeArgs) -> i32 {
    match serve_main(args).await {
        Ok(()) => output::EXIT_OK,
        Err(e) => {
            eprintln!("pop3-probe serve: {e:#}");
            output::EXIT_UNKNOWN
        }
    }
}

async fn serve_main(args: ServeArgs) -> anyhow::Result<()> {
    let secrets = LazySecrets::new();
    let cfg = load(&args.config, &secrets).await.context("--config")?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(tls_acceptor(c, k)?),
        _ => None,
    };
    let auth = match &args.basic_auth_file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("--basic-auth-file {}", p.display()))?;
            Some(Arc::new(BasicAuth::parse(&text).map_err(|e| {
                anyhow::anyhow!("--basic-auth-file {}: {e}", p.display())
            })?))
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen {}", args.listen))?;
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let exporter = Exporter::new(cfg, args.concurrency, args.timeout_offset, reload_tx);
    eprintln!(
        "pop3-probe serve: listening on {}://{}",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr().unwrap_or(args.listen)
    );
    let server = tokio::spawn(serve::serve(exporter.clone(), listener, tls, auth, async {
        let _ = tokio::signal::ctrl_c().await;
    }));
    // Reloads happen here, on the task that owns the secret source: one at a
    // time, whether asked by HTTP or by SIGHUP.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")?;
    tokio::pin!(server);
    loop {
        let reply = tokio::select! {
            done = &mut server => {
                done.context("the server task failed")?;
                return Ok(());
            }
            _ = hangup.recv() => None,
            Some(req) = reload_rx.recv() => Some(req),
        };
        let result = match load(&args.config, &secrets).await {
            Ok(cfg) => {
                exporter.replace(cfg);
                eprintln!("pop3-probe serve: config reloaded");
                Ok(())
            }
            Err(e) => {
                exporter.reload_failed();
                eprintln!("pop3-probe serve: reload failed, keeping the previous config: {e:#}");
                Err(format!("{e:#}"))
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}
