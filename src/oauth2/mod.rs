//! OAuth2 token acquisition: the `token` phase before a login with XOAUTH2
//! or OAUTHBEARER.
//!
//! - [`Credential`]: a provider preset (Microsoft, Google, generic) with
//!   overrides, and a grant: client credentials, a refresh token, or a
//!   ready bearer token.
//! - [`fetch`]: one token request (RFC 6749 §4.4 / §6) over HTTPS with the
//!   probe's trust options, inside the probe's deadline.
//! - [`TokenCache`]: one token per (token URL, client, scope, user) until
//!   shortly before it expires, shared by every monitor of a run and, in a
//!   warm Lambda, by later runs; a token the mail server refused is dropped.
//!
//! HTTP is hyper's HTTP/1.1 client connection (already in the build
//! through the AWS SDK, so it adds almost nothing to the Lambda zip) over
//! the probe's own [`net`] connect and rustls handshake: the same roots, CA
//! bundles, timeouts and error words as the mail connection, and no second
//! TLS stack or connection pool. The exchange itself is a form POST and a
//! JSON answer, small enough that a full OAuth2 client crate would bring
//! more (its own HTTP client, async traits) than it saves.

mod cache;
mod http;

pub use cache::{CacheKey, Obtained, TokenCache};

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::net::TlsClient;

/// Which authorization server's defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Microsoft identity platform (Entra ID): token URL per tenant, scope
    /// `https://outlook.office365.com/.default`.
    Microsoft,
    /// Google: `https://oauth2.googleapis.com/token`, scope `https://mail.google.com/`.
    Google,
    /// Any RFC 6749 server: `token_url` and `scope` must be given.
    Generic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Microsoft => "microsoft",
            Provider::Google => "google",
            Provider::Generic => "generic",
        }
    }

    /// The preset token URL (`None` for generic, and for Microsoft without a tenant).
    pub fn token_url(self, tenant: Option<&str>) -> Option<String> {
        match self {
            Provider::Microsoft => tenant.map(|t| {
                // A tenant is a domain or a GUID; anything else is encoded
                // so it stays one path segment.
                const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
                    .remove(b'.')
                    .remove(b'-')
                    .remove(b'_');
                format!(
                    "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                    percent_encoding::utf8_percent_encode(t, SEGMENT)
                )
            }),
            Provider::Google => Some("https://oauth2.googleapis.com/token".into()),
            Provider::Generic => None,
        }
    }

    /// The preset scope.
    pub fn scope(self) -> Option<&'static str> {
        match self {
            Provider::Microsoft => Some("https://outlook.office365.com/.default"),
            Provider::Google => Some("https://mail.google.com/"),
            Provider::Generic => None,
        }
    }
}

/// How the token is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    /// RFC 6749 §4.4, Microsoft's app-only flow (`POP.AccessAsApp`).
    ClientCredentials,
    /// RFC 6749 §6: a delegated refresh token (Google accounts, Microsoft
    /// `POP.AccessAsUser.All` with `offline_access`).
    RefreshToken,
    /// A bearer token given as it is: no token request.
    Ready,
}

impl GrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::ClientCredentials => "client_credentials",
            GrantKind::RefreshToken => "refresh_token",
            GrantKind::Ready => "ready",
        }
    }
}

/// How the client authenticates to the token endpoint.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (what Microsoft's
    /// and Google's examples use).
    #[default]
    Post,
    /// HTTP Basic (RFC 6749 §2.3.1, which every server must accept).
    Basic,
}

/// The secret part of a grant.
#[derive(Clone)]
pub enum Grant {
    ClientCredentials,
    RefreshToken(SecretString),
    Ready(SecretString),
}

impl Grant {
    pub fn kind(&self) -> GrantKind {
        match self {
            Grant::ClientCredentials => GrantKind::ClientCredentials,
            Grant::RefreshToken(_) => GrantKind::RefreshToken,
            Grant::Ready(_) => GrantKind::Ready,
        }
    }
}

/// One OAuth2 credential with its secrets loaded.
#[derive(Clone)]
pub struct Credential {
    pub provider: Provider,
    pub token_url: String,
    pub scope: Option<String>,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub client_auth: ClientAuth,
    pub grant: Grant,
    /// Trust for the token endpoint: these CA certificates (PEM) instead of
    /// the built-in roots.
    pub ca_pem: Option<String>,
    /// Let `http://` reach a host that is not a loopback address. Shown in
    /// the output whenever it was needed.
    pub allow_insecure_http: bool,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("provider", &self.provider)
            .field("token_url", &self.token_url)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("grant", &self.grant.kind())
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Every secret of this credential, for scrubbing server text.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = &self.client_secret {
            out.push(s.expose_secret().to_string());
        }
        match &self.grant {
            Grant::RefreshToken(s) | Grant::Ready(s) => out.push(s.expose_secret().to_string()),
            Grant::ClientCredentials => {}
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

/// An access token and what the output may say about it.
#[derive(Clone)]
pub struct AccessToken {
    pub token: SecretString,
    /// Seconds of life the endpoint gave it (`None`: it did not say, or a ready token).
    pub expires_in: Option<u64>,
    pub grant: GrantKind,
    pub scope: Option<String>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"***")
            .field("expires_in", &self.expires_in)
            .field("grant", &self.grant)
            .finish()
    }
}

/// Why no token came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// The endpoint's name did not resolve, or no address accepted.
    Unreachable,
    Timeout,
    /// TLS handshake or certificate failure.
    Tls,
    /// An answer that is not a token response (not JSON, no token, HTTP
    /// error without an OAuth error, a token with characters a bearer token
    /// cannot have).
    BadResponse,
    /// An OAuth error response (RFC 6749 §5.2).
    OAuth {
        error: String,
        description: Option<String>,
    },
    /// The credential cannot be used as configured (e.g. `http://` to a
    /// remote host without the flag).
    Config,
}

/// A failed token request: what happened, in words safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct TokenError {
    pub failure: TokenFailure,
    pub detail: String,
    pub http_status: Option<u16>,
}

impl TokenError {
    pub(crate) fn new(failure: TokenFailure, detail: impl Into<String>) -> TokenError {
        TokenError {
            failure,
            detail: detail.into(),
            http_status: None,
        }
    }

    /// The OAuth `error` code, when the endpoint sent one.
    pub fn oauth_error(&self) -> Option<&str> {
        match &self.failure {
            TokenFailure::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The endpoint refused the client or the grant: whoever owns the app
    /// registration must act, not whoever runs the probe or the network.
    /// `server_error` and `temporarily_unavailable` are the endpoint's own
    /// trouble.
    pub fn is_credentials_problem(&self) -> bool {
        match &self.failure {
            TokenFailure::OAuth { error, .. } => {
                !matches!(error.as_str(), "server_error" | "temporarily_unavailable")
            }
            TokenFailure::Config => true,
            _ => false,
        }
    }
}

/// Is `host` (from a URL) a loopback address or `localhost`?
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

/// Does this credential need its insecure flag (plain `http://` to a host
/// that is not loopback)? The output says so when it does.
pub fn uses_insecure_http(cred: &Credential) -> bool {
    url::Url::parse(&cred.token_url)
        .ok()
        .is_some_and(|u| u.scheme() == "http" && !u.host().is_some_and(|h| is_loopback(&h)))
}

/// Ask the token endpoint for an access token, all within `budget`.
/// A ready token is returned as it is.
pub async fn fetch(cred: &Credential, budget: Duration) -> Result<AccessToken, TokenError> {
    let grant = cred.grant.kind();
    if let Grant::Ready(token) = &cred.grant {
        return Ok(AccessToken {
            token: token.clone(),
            expires_in: None,
            grant,
            scope: cred.scope.clone(),
        });
    }
    let url = url::Url::parse(&cred.token_url)
        .map_err(|e| TokenError::new(TokenFailure::Config, format!("token URL: {e}")))?;
    let tls = match url.scheme() {
        "https" => Some(match &cred.ca_pem {
            Some(pem) => TlsClient::from_pem(pem)
                .map_err(|e| TokenError::new(TokenFailure::Config, e.to_string()))?,
            None => TlsClient::webpki(),
        }),
        "http" if url.host().is_some_and(|h| is_loopback(&h)) || cred.allow_insecure_http => None,
        "http" => {
            return Err(TokenError::new(
                TokenFailure::Config,
                "the token URL is plain http:// to a host that is not loopback; use https:// (or allow_insecure_http)",
            ))
        }
        other => {
            return Err(TokenError::new(
                TokenFailure::Config,
                format!("token URL scheme {other}: is not http(s)"),
            ))
        }
    };
    let (body, basic) = request_form(cred);
    let secrets = cred.secrets();
    let answer = tokio::time::timeout(
        budget,
        http::post_form(&url, tls.as_deref(), body, basic, budget),
    )
    .await
    .map_err(|_| {
        TokenError::new(
            TokenFailure::Timeout,
            format!("the token endpoint did not answer within {budget:?}"),
        )
    })??;
    parse_token_response(answer.status, &answer.body, grant, &secrets)
}

/// The form body and, for Basic client authentication, the `id:secret`
/// pair. Built apart from the async request (the form serializer is not
/// `Send`).
fn request_form(cred: &Credential) -> (SecretString, Option<SecretString>) {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    match &cred.grant {
        Grant::ClientCredentials => form.append_pair("grant_type", "client_credentials"),
        Grant::RefreshToken(rt) => form
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", rt.expose_secret()),
        Grant::Ready(_) => &mut form,
    };
    if let Some(scope) = &cred.scope {
        form.append_pair("scope", scope);
    }
    let mut basic = None;
    match cred.client_auth {
        ClientAuth::Post => {
            form.append_pair("client_id", &cred.client_id);
            if let Some(secret) = &cred.client_secret {
                form.append_pair("client_secret", secret.expose_secret());
            }
        }
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: each part form-encoded before base64.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let secret = cred
                .client_secret
                .as_ref()
                .map(|s| enc(s.expose_secret()))
                .unwrap_or_default();
            basic = Some(SecretString::from(format!(
                "{}:{secret}",
                enc(&cred.client_id)
            )));
        }
    }
    let body = SecretString::from(form.finish());
    (body, basic)
}

/// Cap on a text from the endpoint kept in a result.
const TEXT_CAP: usize = 300;

/// Server text made safe: control characters dropped, capped, and every
/// secret of the credential (any form the request carried) removed.
fn clean(text: &str, secrets: &[String]) -> String {
    let mut text: String = text
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string();
    for s in secrets {
        for form in [
            s.clone(),
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>(),
        ] {
            if !form.is_empty() && text.contains(&form) {
                text = text.replace(&form, "***");
            }
        }
    }
    if text.chars().count() > TEXT_CAP {
        text = text.chars().take(TEXT_CAP).collect::<String>() + "…";
    }
    text
}

#[derive(Deserialize)]
struct RawResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    scope: Option<String>,
    error: Option<serde_json::Value>,
    error_description: Option<serde_json::Value>,
}

/// Read a token endpoint's answer (RFC 6749 §5.1 / §5.2).
fn parse_token_response(
    status: u16,
    body: &[u8],
    grant: GrantKind,
    secrets: &[String],
) -> Result<AccessToken, TokenError> {
    let with_status = |mut e: TokenError| {
        e.http_status = Some(status);
        e
    };
    let raw: RawResponse = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => {
            let shown = clean(
                &String::from_utf8_lossy(&body[..body.len().min(120)]),
                secrets,
            );
            return Err(with_status(TokenError::new(
                TokenFailure::BadResponse,
                format!("the token endpoint answered HTTP {status} that is not JSON: {shown:?}"),
            )));
        }
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => clean(s, secrets),
        other => clean(&other.to_string(), secrets),
    };
    if let Some(error) = raw.error.as_ref().map(text).filter(|e| !e.is_empty()) {
        let description = raw
            .error_description
            .as_ref()
            .map(text)
            .filter(|d| !d.is_empty());
        let detail = match &description {
            Some(d) => format!("the token endpoint refused (HTTP {status}): {error}: {d}"),
            None => format!("the token endpoint refused (HTTP {status}): {error}"),
        };
        return Err(with_status(TokenError::new(
            TokenFailure::OAuth { error, description },
            detail,
        )));
    }
    if !(200..300).contains(&status) {
        return Err(with_status(TokenError::new(
            TokenFailure::BadResponse,
            format!("the token endpoint answered HTTP {status} without an OAuth error"),
        )));
    }
    let Some(token) = raw.access_token.filter(|t| !t.is_empty()) else {
        return Err(with_status(TokenError::new(
            TokenFailure::BadResponse,
            "the token endpoint's answer has no access_token",
        )));
    };
    // The token goes into a SASL line: refuse what could break out of it.
    if !crate::sasl::oauth::is_bearer_token(&token) {
        return Err(with_status(TokenError::new(
            TokenFailure::BadResponse,
            "the token endpoint's access_token has characters a bearer token cannot have",
        )));
    }
    if let Some(tt) = &raw.token_type {
        if !tt.eq_ignore_ascii_case("bearer") {
            return Err(with_status(TokenError::new(
                TokenFailure::BadResponse,
                format!("token_type {:?} is not Bearer", clean(tt, secrets)),
            )));
        }
    }
    // A number, or (older Microsoft endpoints) a string of digits.
    let expires_in = match raw.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(AccessToken {
        token: SecretString::from(token),
        expires_in,
        grant,
        scope: raw.scope.map(|s| clean(&s, secrets)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRANT: GrantKind = GrantKind::ClientCredentials;

    #[test]
    fn presets_and_overrides() {
        assert_eq!(
            Provider::Microsoft
                .token_url(Some("contoso.onmicrosoft.com"))
                .unwrap(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            Provider::Microsoft.token_url(Some("a/b?c")).unwrap(),
            "https://login.microsoftonline.com/a%2Fb%3Fc/oauth2/v2.0/token"
        );
        assert_eq!(Provider::Microsoft.token_url(None), None);
        assert_eq!(
            Provider::Google.token_url(None).unwrap(),
            "https://oauth2.googleapis.com/token"
        );
        assert_eq!(Provider::Google.scope(), Some("https://mail.google.com/"));
        assert_eq!(Provider::Generic.scope(), None);
    }

    #[test]
    fn a_token_response_is_read() {
        let t = parse_token_response(
            200,
            br#"{"access_token":"abc.def","token_type":"Bearer","expires_in":3599,"scope":"mail.pop"}"#,
            GRANT,
            &[],
        )
        .unwrap();
        assert_eq!(t.token.expose_secret(), "abc.def");
        assert_eq!(t.expires_in, Some(3599));
        assert_eq!(t.scope.as_deref(), Some("mail.pop"));
        let t = parse_token_response(
            200,
            br#"{"access_token":"x","expires_in":"60"}"#,
            GRANT,
            &[],
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(60));
    }

    #[test]
    fn oauth_errors_keep_code_and_description_and_classify() {
        let e = parse_token_response(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
            GRANT,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.oauth_error(), Some("invalid_client"));
        assert!(e.is_credentials_problem());
        assert_eq!(e.http_status, Some(401));
        assert!(e.detail.contains("AADSTS7000215"));
        for (code, credentials) in [
            ("unauthorized_client", true),
            ("invalid_grant", true),
            ("invalid_scope", true),
            ("server_error", false),
            ("temporarily_unavailable", false),
        ] {
            let body = format!(r#"{{"error":"{code}"}}"#);
            let e = parse_token_response(400, body.as_bytes(), GRANT, &[]).unwrap_err();
            assert_eq!(e.is_credentials_problem(), credentials, "{code}");
        }
    }

    #[test]
    fn bad_answers_are_probe_problems() {
        for (status, body) in [
            (200, &b"<html>login</html>"[..]),
            (502, b"{}"),
            (200, br#"{"token_type":"Bearer"}"#),
            (200, br#"{"access_token":"a b\r\nQUIT"}"#),
            (200, br#"{"access_token":"abc","token_type":"mac"}"#),
        ] {
            let e = parse_token_response(status, body, GRANT, &[]).unwrap_err();
            assert_eq!(e.failure, TokenFailure::BadResponse, "{body:?}");
            assert!(!e.is_credentials_problem());
        }
    }

    #[test]
    fn endpoint_text_is_cleaned_of_secrets_and_controls() {
        let secrets = vec!["S3cr3t/+x".to_string()];
        let body = br#"{"error":"invalid_client","error_description":"bad secret S3cr3t/+x or S3cr3t%2F%2Bx \u001b[2J"}"#;
        let e = parse_token_response(401, body, GRANT, &secrets).unwrap_err();
        assert!(!e.detail.contains("S3cr3t"), "{}", e.detail);
        assert!(!e.detail.contains('\u{1b}'));
        let e = parse_token_response(500, b"echo: S3cr3t/+x", GRANT, &secrets).unwrap_err();
        assert!(!e.detail.contains("S3cr3t"), "{}", e.detail);
    }

    #[test]
    fn insecure_http_is_only_for_loopback_or_with_the_flag() {
        let mut c = Credential {
            provider: Provider::Generic,
            token_url: "http://127.0.0.1:1/token".into(),
            scope: None,
            client_id: "c".into(),
            client_secret: None,
            client_auth: ClientAuth::Post,
            grant: Grant::ClientCredentials,
            ca_pem: None,
            allow_insecure_http: false,
        };
        assert!(!uses_insecure_http(&c));
        c.token_url = "http://[::1]/t".into();
        assert!(!uses_insecure_http(&c));
        c.token_url = "http://localhost/t".into();
        assert!(!uses_insecure_http(&c));
        c.token_url = "http://idp.example.com/t".into();
        assert!(uses_insecure_http(&c));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt.block_on(fetch(&c, Duration::from_secs(1))).unwrap_err();
        assert_eq!(e.failure, TokenFailure::Config);
        assert!(e.detail.contains("http://"));
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credential {
            provider: Provider::Generic,
            token_url: "https://x/t".into(),
            scope: None,
            client_id: "c".into(),
            client_secret: Some(SecretString::from("Hidden-1".to_string())),
            client_auth: ClientAuth::Post,
            grant: Grant::RefreshToken(SecretString::from("Hidden-2".to_string())),
            ca_pem: None,
            allow_insecure_http: false,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("Hidden"));
        let t = AccessToken {
            token: SecretString::from("Hidden-3".to_string()),
            expires_in: None,
            grant: GRANT,
            scope: None,
        };
        assert!(!format!("{t:?}").contains("Hidden"));
    }
}
