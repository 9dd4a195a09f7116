//! Resolve, connect, TLS. rustls with webpki roots by default or a PEM CA
//! bundle per monitor; certificate facts for reports and expiry alerts.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::clock;

/// Resolve a host name (or parse an address literal) to socket addresses.
pub async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port)).await?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no addresses"),
        ));
    }
    Ok(addrs)
}

/// Why no address accepted a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Every address refused (RST): nothing listens there.
    Refused,
    /// At least one address timed out and none answered.
    Timeout,
    /// Unreachable, reset or another socket error.
    Other,
}

#[derive(Debug, Clone)]
pub struct ConnectError {
    pub failure: ConnectFailure,
    /// One `address: error` entry per attempt, for the report.
    pub detail: String,
}

/// Try each address in order until one accepts. The budget is shared out so
/// that a black-holed first address (often IPv6 on a half-configured host)
/// cannot use up all the time before the second is tried.
pub async fn connect_any(
    addrs: &[SocketAddr],
    budget: Duration,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let start = tokio::time::Instant::now();
    let mut attempts = Vec::new();
    let mut refused = 0;
    let mut timeouts = 0;
    for (i, addr) in addrs.iter().enumerate() {
        let left = budget.saturating_sub(start.elapsed());
        if left.is_zero() {
            timeouts += 1;
            attempts.push(format!("{addr}: not tried, time is up"));
            continue;
        }
        let share = left / (addrs.len() - i) as u32;
        match tokio::time::timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Commands are small and answered one at a time: Nagle's
                // algorithm would only add delay.
                stream.set_nodelay(true).ok();
                return Ok((stream, *addr));
            }
            Ok(Err(e)) => {
                if e.kind() == io::ErrorKind::ConnectionRefused {
                    refused += 1;
                }
                attempts.push(format!("{addr}: {e}"));
            }
            Err(_) => {
                timeouts += 1;
                attempts.push(format!("{addr}: timed out after {share:?}"));
            }
        }
    }
    let failure = if refused == addrs.len() {
        ConnectFailure::Refused
    } else if timeouts > 0 {
        ConnectFailure::Timeout
    } else {
        ConnectFailure::Other
    };
    Err(ConnectError {
        failure,
        detail: attempts.join("; "),
    })
}

/// Certificate facts, whether or not it verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertificateFacts {
    pub subject: String,
    pub issuer: String,
    /// DNS names and IP addresses from subjectAltName.
    pub names: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    /// Whole days until `not_after`; negative once expired.
    pub days_remaining: i64,
}

/// What the TLS session turned out to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TlsFacts {
    pub version: String,
    pub cipher: String,
    pub certificate: Option<CertificateFacts>,
    /// Whether the certificate was checked, and how that went.
    pub verified: Verification,
    /// The session was resumed (no certificate shown). Never, by design:
    /// resumption is off; recorded so a test can prove it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

/// Why TLS failed. Serialized under the failure kinds' names
/// (`probe::FailureKind`, which `From` maps these to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum TlsFailure {
    #[serde(rename = "tls_handshake_failed")]
    Handshake,
    #[serde(rename = "certificate_expired")]
    Expired,
    #[serde(rename = "certificate_not_yet_valid")]
    NotYetValid,
    #[serde(rename = "certificate_name_mismatch")]
    NameMismatch,
    #[serde(rename = "certificate_invalid")]
    Invalid,
}

/// Certificate verification: not asked for (`insecure_skip_verify`),
/// passed, or failed and why. A `bool` meant "asked" in one place and
/// "passed" in another; a probe failing with `certificate_expired` said
/// `verified: true`. In JSON: `"not_asked"`, `"passed"`, or
/// `{"failed": "certificate_expired"}`; a stored `true`/`false` from
/// before reads as passed/not asked.
// The schema is of what is written; `from` only widens what is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", from = "VerificationRepr")]
pub enum Verification {
    NotAsked,
    Passed,
    Failed(TlsFailure),
}

impl Verification {
    pub fn passed(self) -> bool {
        self == Verification::Passed
    }
}

/// What [`Verification`] reads: its own form, or the older `bool`.
#[derive(Deserialize)]
#[serde(untagged)]
enum VerificationRepr {
    Legacy(bool),
    Current(VerificationForm),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum VerificationForm {
    NotAsked,
    Passed,
    Failed(TlsFailure),
}

impl From<VerificationRepr> for Verification {
    fn from(r: VerificationRepr) -> Verification {
        match r {
            VerificationRepr::Legacy(true) => Verification::Passed,
            VerificationRepr::Legacy(false) => Verification::NotAsked,
            VerificationRepr::Current(VerificationForm::NotAsked) => Verification::NotAsked,
            VerificationRepr::Current(VerificationForm::Passed) => Verification::Passed,
            VerificationRepr::Current(VerificationForm::Failed(f)) => Verification::Failed(f),
        }
    }
}

impl TlsError {
    /// What is wrong with the certificate, in the admin's terms, from the
    /// facts we collected rather than the TLS library's wording; `expected`
    /// is the name it was checked against. The one wording the probe and
    /// discover both use.
    pub fn describe(&self, expected: &str) -> String {
        describe_certificate_failure(
            &self.failure,
            &self.detail,
            self.facts.as_ref().and_then(|f| f.certificate.as_ref()),
            expected,
        )
    }
}

/// See [`TlsError::describe`]; for a failure kept without its error.
pub fn describe_certificate_failure(
    failure: &TlsFailure,
    detail: &str,
    cert: Option<&CertificateFacts>,
    expected: &str,
) -> String {
    let Some(cert) = cert else {
        return format!("TLS handshake failed: {detail}");
    };
    let names = if cert.names.is_empty() {
        cert.subject.clone()
    } else {
        cert.names.join(", ")
    };
    match failure {
        TlsFailure::Expired => format!(
            "certificate for {names} expired {} days ago (valid until {})",
            -cert.days_remaining, cert.not_after
        ),
        TlsFailure::NotYetValid => format!(
            "certificate for {names} is not valid before {}",
            cert.not_before
        ),
        TlsFailure::NameMismatch => format!("certificate is for {names}, not for {expected}"),
        _ => format!(
            "certificate for {names} is not trusted ({detail}); issuer {}",
            cert.issuer
        ),
    }
}

#[derive(Debug, Clone)]
pub struct TlsError {
    pub failure: TlsFailure,
    pub detail: String,
    /// Present when the handshake finished and verification failed after.
    pub facts: Option<TlsFacts>,
}

/// A TLS client for one trust anchor set. Build once and share: parsing the
/// roots costs more than a handshake.
pub struct TlsClient {
    connector: TlsConnector,
    verifier: Arc<WebPkiServerVerifier>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Completes the handshake (signatures checked, so the peer does hold the
/// key) and leaves the chain to [`TlsClient::handshake`], which verifies it
/// before any application byte is sent. Deferring is what lets an expired
/// or mismatched certificate still be described in the report.
#[derive(Debug)]
struct DeferChainCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for DeferChainCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A CA bundle that could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("CA bundle: {0}")]
pub struct CaBundleError(pub String);

impl TlsClient {
    fn new(roots: RootCertStore) -> Result<TlsClient, CaBundleError> {
        let provider = provider();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| CaBundleError(e.to_string()))?;
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| CaBundleError(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(DeferChainCheck(provider)))
            .with_no_client_auth();
        // No session resumption: a resumed session shows no certificate,
        // so a warm process would go on reporting (and trusting) the first
        // handshake's certificate — a renewed or expired one unnoticed
        // until the ticket ran out. A monitor must see it every time.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            verifier,
        })
    }

    /// The Mozilla root set compiled into the binary (webpki-roots).
    pub fn webpki() -> Arc<TlsClient> {
        static CLIENT: OnceLock<Arc<TlsClient>> = OnceLock::new();
        CLIENT
            .get_or_init(|| {
                let roots = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                Arc::new(TlsClient::new(roots).expect("the built-in root set is valid"))
            })
            .clone()
    }

    /// Trust exactly the certificates in a PEM bundle (not the built-in
    /// roots as well: a private CA is usually meant to be the only one).
    /// Cached by content, so a fleet sharing a bundle parses it once.
    pub fn from_pem(pem: &str) -> Result<Arc<TlsClient>, CaBundleError> {
        static CACHE: OnceLock<Mutex<HashMap<String, Arc<TlsClient>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(client) = cache.lock().ok().and_then(|c| c.get(pem).cloned()) {
            return Ok(client);
        }
        let mut roots = RootCertStore::empty();
        let mut count = 0;
        // rustls-pki-types reads PEM itself; rustls-pemfile is unmaintained
        // (RUSTSEC-2025-0134).
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| CaBundleError(format!("unreadable PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| CaBundleError(format!("unusable certificate: {e}")))?;
            count += 1;
        }
        if count == 0 {
            return Err(CaBundleError(
                "no certificates found in the PEM text".into(),
            ));
        }
        let client = Arc::new(TlsClient::new(roots)?);
        if let Ok(mut c) = cache.lock() {
            c.insert(pem.to_string(), client.clone());
        }
        Ok(client)
    }

    /// Handshake, collect facts, then verify the chain for `name` unless
    /// `verify` is false.
    pub async fn handshake<S>(
        &self,
        stream: S,
        name: ServerName<'static>,
        verify: bool,
    ) -> Result<(TlsStream<S>, TlsFacts), TlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = self
            .connector
            .connect(name.clone(), stream)
            .await
            .map_err(|e| TlsError {
                failure: TlsFailure::Handshake,
                detail: describe_io(&e),
                facts: None,
            })?;
        let (_, conn) = tls.get_ref();
        let certs = conn.peer_certificates().unwrap_or_default();
        let mut facts = TlsFacts {
            version: conn
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .replace("TLSv1_", "TLSv1.")
                .to_string(),
            cipher: conn
                .negotiated_cipher_suite()
                .and_then(|c| c.suite().as_str())
                .unwrap_or("unknown")
                .to_string(),
            certificate: certs.first().and_then(|c| certificate_facts(c)),
            verified: Verification::NotAsked,
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        };
        if !verify {
            return Ok((tls, facts));
        }
        match self.verify(&tls, &name) {
            Ok(()) => {
                facts.verified = Verification::Passed;
                Ok((tls, facts))
            }
            Err(e) => {
                facts.verified = Verification::Failed(e.failure);
                Err(TlsError {
                    facts: Some(facts),
                    ..e
                })
            }
        }
    }

    /// Verify the chain an established session showed, for `name`. Apart
    /// from [`TlsClient::handshake`] so that a caller can keep a connection
    /// whose certificate fails (discovery still reads the greeting behind
    /// it) and check one certificate against more than one name. The error
    /// carries no facts: the caller has them from the handshake.
    // The same error as `handshake` (callers handle one type); it is built
    // once per TLS session at most, so its size costs nothing that matters.
    #[allow(clippy::result_large_err)]
    pub fn verify<S>(&self, tls: &TlsStream<S>, name: &ServerName<'_>) -> Result<(), TlsError> {
        let (_, conn) = tls.get_ref();
        let certs = conn.peer_certificates().unwrap_or_default();
        let Some((end_entity, intermediates)) = certs.split_first() else {
            return Err(TlsError {
                failure: TlsFailure::Invalid,
                detail: "the server sent no certificate".into(),
                facts: None,
            });
        };
        self.verifier
            .verify_server_cert(end_entity, intermediates, name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| TlsError {
                failure: classify(&e),
                detail: e.to_string(),
                facts: None,
            })
    }
}

fn classify(e: &rustls::Error) -> TlsFailure {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsFailure::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsFailure::NotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::NameMismatch
            }
            _ => TlsFailure::Invalid,
        },
        _ => TlsFailure::Invalid,
    }
}

/// rustls errors arrive wrapped in io::Error; show the inner one.
fn describe_io(e: &io::Error) -> String {
    match e.get_ref() {
        Some(inner) => inner.to_string(),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "connection closed during the TLS handshake".into()
        }
        None => e.to_string(),
    }
}

/// The name to verify and send as SNI: an explicit override, else the host.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .map_err(|e| format!("{host:?} is not a valid TLS server name: {e}"))
}

fn certificate_facts(der: &CertificateDer<'_>) -> Option<CertificateFacts> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let validity = cert.validity();
    let not_after = validity.not_after.timestamp();
    let now = clock::now_secs();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push(d.to_string()),
                GeneralName::IPAddress(ip) => {
                    if let Ok(b) = <[u8; 4]>::try_from(*ip) {
                        names.push(IpAddr::from(b).to_string());
                    } else if let Ok(b) = <[u8; 16]>::try_from(*ip) {
                        names.push(IpAddr::from(b).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Some(CertificateFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: clock::rfc3339(validity.not_before.timestamp()),
        not_after: clock::rfc3339(not_after),
        days_remaining: (not_after - now).div_euclid(86_400),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literal_addresses_skip_dns() {
        let a = resolve("127.0.0.1", 110).await.unwrap();
        assert_eq!(a, vec!["127.0.0.1:110".parse().unwrap()]);
        let a = resolve("[::1]", 995).await.unwrap();
        assert_eq!(a, vec!["[::1]:995".parse().unwrap()]);
    }

    #[tokio::test]
    async fn refused_on_every_address_is_refused() {
        // Bind then drop: the port is very likely closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addrs = [SocketAddr::from(([127, 0, 0, 1], port))];
        let e = connect_any(&addrs, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(e.failure, ConnectFailure::Refused);
        assert!(e.detail.contains("127.0.0.1"));
    }

    #[tokio::test]
    async fn falls_through_to_the_address_that_answers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = listener.local_addr().unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (_, addr) = connect_any(&[closed, good], Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(addr, good);
    }

    #[test]
    fn bad_pem_is_a_clear_error() {
        let e = TlsClient::from_pem("not a pem").unwrap_err();
        assert!(e.to_string().contains("no certificates"), "{e}");
    }
}
