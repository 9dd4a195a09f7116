//! OAuth2 against real servers: oidc-provider (npm) as the authorization
//! server, and a Dovecot whose `passdb oauth2` introspects every token
//! there (tests/oauth2/ensure.sh).

mod common;

use std::time::Duration;

use common::oauth2::servers;
use pop3_probe::oauth2::{self, ClientAuth, TokenCache, TokenFailure};
use secrecy::{ExposeSecret, SecretString};

const BUDGET: Duration = Duration::from_secs(10);

#[tokio::test]
async fn client_credentials_over_https_with_the_ca_file() {
    let s = servers();
    let t = oauth2::fetch(&s.credential(), BUDGET).await.unwrap();
    assert!(!t.token.expose_secret().is_empty());
    assert_eq!(t.expires_in, Some(600));
    assert_eq!(t.grant.as_str(), "client_credentials");
}

#[tokio::test]
async fn basic_client_authentication_works_too() {
    let s = servers();
    let mut c = s.credential();
    c.client_auth = ClientAuth::Basic;
    oauth2::fetch(&c, BUDGET).await.unwrap();
}

#[tokio::test]
async fn wrong_secret_is_invalid_client_a_credentials_problem() {
    let s = servers();
    let mut c = s.credential();
    c.client_secret = Some(SecretString::from("Wrong-Secret-0000".to_string()));
    let e = oauth2::fetch(&c, BUDGET).await.unwrap_err();
    assert_eq!(e.oauth_error(), Some("invalid_client"), "{e}");
    assert!(e.is_credentials_problem());
    assert_eq!(e.http_status, Some(401));
    assert!(!e.detail.contains("Wrong-Secret-0000"));
}

#[tokio::test]
async fn without_the_ca_file_the_private_certificate_is_a_tls_failure() {
    let s = servers();
    let mut c = s.credential();
    c.ca_pem = None;
    let e = oauth2::fetch(&c, BUDGET).await.unwrap_err();
    assert_eq!(e.failure, TokenFailure::Tls, "{e}");
    assert!(!e.is_credentials_problem());
}

#[tokio::test]
async fn endpoint_down_is_unreachable_a_probe_problem() {
    let s = servers();
    let mut c = s.credential();
    c.token_url = format!("https://127.0.0.1:{}/token", s.port("OAUTH2_CLOSED_PORT"));
    let e = oauth2::fetch(&c, BUDGET).await.unwrap_err();
    assert_eq!(e.failure, TokenFailure::Unreachable, "{e}");
    assert!(!e.is_credentials_problem());
}

#[tokio::test]
async fn plain_http_to_loopback_is_allowed() {
    let s = servers();
    let mut c = s.credential();
    c.token_url = s.get("TOKEN_URL_HTTP").to_string();
    c.ca_pem = None;
    assert!(!oauth2::uses_insecure_http(&c));
    oauth2::fetch(&c, BUDGET).await.unwrap();
}

#[tokio::test]
async fn fifty_monitors_sharing_one_credential_fetch_one_token() {
    let s = servers();
    let cache = std::sync::Arc::new(TokenCache::new());
    let before = s.issued();
    let c = s.credential();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (cache, c) = (cache.clone(), c.clone());
            tokio::spawn(async move { cache.get(&c, "probe", BUDGET).await.unwrap() })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().token.token.expose_secret().to_string());
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(cache.fetches(), 1);
    // The server saw it too (other tests of this file fetch alongside, so
    // only "at least one" can be said of the server's own count).
    assert!(s.issued() > before);
}
