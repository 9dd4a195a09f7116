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

// ---------------------------------------------------------------------------
// Whole probes: token phase, then XOAUTH2 / OAUTHBEARER at the real Dovecot.
// ---------------------------------------------------------------------------

use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::oauth2::OAuth2Servers;
use pop3_probe::probe::{self, AuthMethod, FailureKind, Phase, ProbeResult, Status, Target};

fn target(s: &OAuth2Servers, auth: AuthMethod, cache: &Arc<TokenCache>) -> Target {
    let mut t = Target::new("oauth-pop3s", "127.0.0.1", s.port("POP3S_OAUTH_PORT"));
    t.auth = auth;
    t.username = Some(s.get("MAILBOX").to_string());
    t.ca_pem = Some(s.pem("CA_PEM"));
    t.tls_server_name = Some(s.get("SERVER_NAME").to_string());
    // Generous: fifty logins at once make Dovecot introspect fifty tokens,
    // and no test here judges speed.
    t.timeout = Duration::from_secs(60);
    t.warning = Duration::from_secs(60);
    t.critical = Duration::from_secs(60);
    t.transcript = true;
    t.capabilities = true;
    t.oauth2 = Some(Arc::new(s.credential()));
    t.token_cache = Some(cache.clone());
    t
}

/// Nothing secret in any form, in the human and JSON outputs.
fn assert_no_secrets(s: &OAuth2Servers, r: &ProbeResult, tokens: &[String]) {
    let b64 = |x: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, x);
    let shown = format!(
        "{}\n{}\n{r:?}",
        pop3_probe::output::human(r),
        serde_json::to_string(r).unwrap()
    );
    for secret in s.secrets().iter().chain(tokens) {
        assert!(
            !shown.contains(secret.as_str()),
            "a secret leaked:\n{shown}"
        );
        assert!(
            !shown.contains(&b64(secret)),
            "a base64 secret leaked:\n{shown}"
        );
    }
    for t in tokens {
        let x = b64(&format!(
            "user={}\x01auth=Bearer {t}\x01\x01",
            s.get("MAILBOX")
        ));
        assert!(!shown.contains(&x), "the XOAUTH2 response leaked");
    }
}

fn assert_up_with_stat(s: &OAuth2Servers, r: &ProbeResult) {
    assert_eq!(
        r.status,
        Status::Up,
        "{}\n{:?}",
        pop3_probe::output::human(r),
        r.phases
    );
    let m = r.mailbox.expect("STAT numbers");
    assert_eq!(m.messages.to_string(), s.get("MSG_COUNT"));
    assert_eq!(m.octets.to_string(), s.get("MSG_OCTETS"));
    assert!(r.phase_ms(Phase::Token).is_some(), "a token phase");
    assert_eq!(r.phases[0].phase, Phase::Token, "token comes first");
}

async fn current_token(cache: &TokenCache, s: &OAuth2Servers) -> String {
    token_of(cache, &s.credential(), s).await
}

/// The token `cache` holds (or fetches) for credential `c`.
async fn token_of(cache: &TokenCache, c: &oauth2::Credential, s: &OAuth2Servers) -> String {
    cache
        .get(c, s.get("MAILBOX"), BUDGET)
        .await
        .unwrap()
        .token
        .token
        .expose_secret()
        .to_string()
}

#[tokio::test]
async fn xoauth2_and_oauthbearer_logins_are_up_with_the_mailbox() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    for auth in [AuthMethod::Xoauth2, AuthMethod::Oauthbearer] {
        let r = probe::pop3::probe(&target(s, auth, &cache)).await;
        assert_up_with_stat(s, &r);
        assert_eq!(r.auth_used, Some(auth));
        let o = r.oauth2.as_ref().unwrap();
        assert_eq!(o.grant, "client_credentials");
        assert!(o.token_remaining_s.unwrap() > 500);
        // --verbose shows the masked layout, never the token.
        let sent: Vec<&str> = r.transcript.iter().map(|l| l.line.as_str()).collect();
        assert!(
            sent.iter().any(|l| l.contains("auth=Bearer ***^A^A")),
            "{sent:?}"
        );
        assert_no_secrets(s, &r, &[current_token(&cache, s).await]);
    }
    // One token served both logins.
    assert_eq!(cache.fetches(), 1);
}

#[tokio::test]
async fn auto_picks_oauthbearer_when_advertised() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    let r = probe::pop3::probe(&target(s, AuthMethod::Auto, &cache)).await;
    assert_up_with_stat(s, &r);
    assert_eq!(r.auth_used, Some(AuthMethod::Oauthbearer));
}

#[tokio::test]
async fn wrong_client_secret_is_oauth2_token_failed_in_token() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    let mut t = target(s, AuthMethod::Xoauth2, &cache);
    let mut c = s.credential();
    c.client_secret = Some(SecretString::from("Wrong-Secret-0000".to_string()));
    t.oauth2 = Some(Arc::new(c));
    let r = probe::pop3::probe(&t).await;
    assert_eq!(
        r.failure,
        Some(FailureKind::Oauth2TokenFailed),
        "{}",
        r.message
    );
    assert_eq!(r.failed_phase, Some(Phase::Token));
    let o = r.oauth2.as_ref().unwrap();
    assert_eq!(o.error.as_deref(), Some("invalid_client"));
    assert_eq!(o.category.as_deref(), Some("credentials"));
    assert!(r.is_credentials_problem());
    // The mail server was never contacted.
    assert!(r.phase_ms(Phase::Connect).is_none(), "{:?}", r.phases);
    assert!(r.message.contains("invalid_client"), "{}", r.message);
    let shown = serde_json::to_string(&r).unwrap();
    assert!(!shown.contains("Wrong-Secret-0000"));
    println!("{}", pop3_probe::output::human(&r));
}

#[tokio::test]
async fn a_token_for_another_audience_is_auth_failed_with_the_decoded_status() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    for auth in [AuthMethod::Xoauth2, AuthMethod::Oauthbearer] {
        let mut t = target(s, auth, &cache);
        let mut c = s.credential();
        c.client_id = s.get("OTHER_CLIENT_ID").to_string();
        c.client_secret = Some(SecretString::from(s.get("OTHER_CLIENT_SECRET").to_string()));
        c.scope = None;
        t.oauth2 = Some(Arc::new(c.clone()));
        let r = probe::pop3::probe(&t).await;
        assert_eq!(
            r.failure,
            Some(FailureKind::AuthFailed),
            "{}",
            pop3_probe::output::human(&r)
        );
        assert_eq!(r.failed_phase, Some(Phase::Auth));
        assert!(!r.is_credentials_problem() || r.failure == Some(FailureKind::AuthFailed));
        let status = r.oauth2.as_ref().unwrap().server_status.clone().unwrap();
        let expected = match auth {
            AuthMethod::Xoauth2 => "status=401",
            _ => "status=invalid_token",
        };
        assert!(status.starts_with(expected), "{status}");
        assert!(r.message.contains("freshly issued"), "{}", r.message);
        // Answered as each spec says: XOAUTH2 an empty line, OAUTHBEARER %x01.
        let lines: Vec<&str> = r.transcript.iter().map(|l| l.line.as_str()).collect();
        let reply = match auth {
            AuthMethod::Xoauth2 => "",
            _ => "AQ==",
        };
        assert!(lines.contains(&reply), "{lines:?}");
        let token = token_of(&cache, &c, s).await;
        assert_no_secrets(s, &r, &[token]);
        println!("{}", pop3_probe::output::human(&r));
    }
}

#[tokio::test]
async fn token_endpoint_down_is_oauth2_token_failed_and_spares_the_mail_server() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    let mut t = target(s, AuthMethod::Xoauth2, &cache);
    let mut c = s.credential();
    c.token_url = format!("https://127.0.0.1:{}/token", s.port("OAUTH2_CLOSED_PORT"));
    t.oauth2 = Some(Arc::new(c));
    let r = probe::pop3::probe(&t).await;
    assert_eq!(r.failure, Some(FailureKind::Oauth2TokenFailed));
    assert_eq!(r.failed_phase, Some(Phase::Token));
    assert_eq!(
        r.oauth2.as_ref().unwrap().category.as_deref(),
        Some("probe")
    );
    assert!(!r.is_credentials_problem());
    assert!(r.phase_ms(Phase::Connect).is_none());
    println!("{}", pop3_probe::output::human(&r));
}

#[tokio::test]
async fn an_expired_cached_token_is_replaced_and_the_probe_is_up() {
    let s = servers();
    let now = Arc::new(Mutex::new(Instant::now()));
    let n = now.clone();
    let cache = Arc::new(TokenCache::with_clock(Box::new(move || *n.lock().unwrap())));
    let first = probe::pop3::probe(&target(s, AuthMethod::Xoauth2, &cache)).await;
    assert_up_with_stat(s, &first);
    let second = probe::pop3::probe(&target(s, AuthMethod::Xoauth2, &cache)).await;
    assert!(second.oauth2.as_ref().unwrap().cached);
    assert_eq!(cache.fetches(), 1);
    // Past its lifetime (600 s, less the margin).
    *now.lock().unwrap() += Duration::from_secs(600);
    let third = probe::pop3::probe(&target(s, AuthMethod::Xoauth2, &cache)).await;
    assert_up_with_stat(s, &third);
    assert!(!third.oauth2.as_ref().unwrap().cached);
    assert_eq!(cache.fetches(), 2);
}

/// The authorization server revokes the token; a cache holding it still
/// thinks it good.
fn revoke(s: &OAuth2Servers, token: &str) {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", s.get("REVOCATION_URL_HTTP")])
        .args(["-d", &format!("token={token}")])
        .args(["-d", &format!("client_id={}", s.get("CLIENT_ID"))])
        .args(["-d", &format!("client_secret={}", s.get("CLIENT_SECRET"))])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[tokio::test]
async fn a_revoked_cached_token_is_dropped_fetched_again_once_and_up() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    let token = current_token(&cache, s).await;
    revoke(s, &token);
    let r = probe::pop3::probe(&target(s, AuthMethod::Xoauth2, &cache)).await;
    assert_up_with_stat(s, &r);
    let o = r.oauth2.as_ref().unwrap();
    assert!(o.refetched, "{o:?}");
    assert_eq!(cache.fetches(), 2);
    let fresh = current_token(&cache, s).await;
    assert_ne!(fresh, token);
    assert_no_secrets(s, &r, &[token, fresh]);
}

#[tokio::test]
async fn fifty_monitors_probing_with_one_credential_fetch_one_token() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let mut t = target(s, AuthMethod::Xoauth2, &cache);
            t.name = format!("m{i}");
            t.transcript = false;
            t.capabilities = false;
            tokio::spawn(async move { probe::pop3::probe(&t).await })
        })
        .collect();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, Status::Up, "{}", r.message);
    }
    assert_eq!(cache.fetches(), 1);
}

// ---------------------------------------------------------------------------
// From the monitor list: an `oauth2` credential, resolved like a password.
// ---------------------------------------------------------------------------

fn config_text(s: &OAuth2Servers, oauth2: serde_json::Value) -> String {
    serde_json::json!({
        "credentials": {"m365": {"username": s.get("MAILBOX"), "oauth2": oauth2}},
        "monitors": [{
            "name": "oauth-from-config", "host": "127.0.0.1",
            "port": s.port("POP3S_OAUTH_PORT"), "tls": "implicit", "auth": "xoauth2",
            "credentials": "m365", "ca_file": s.get("CA_PEM"), "tls_server_name": "localhost",
            "warning_ms": 50000, "critical_ms": 55000, "timeout_ms": 60000
        }]
    })
    .to_string()
}

#[tokio::test]
async fn a_config_oauth2_credential_logs_in() {
    let s = servers();
    std::env::set_var("POP3_PROBE_TEST_OAUTH2_SECRET", s.get("CLIENT_SECRET"));
    let text = config_text(
        s,
        serde_json::json!({
            "provider": "generic", "token_url": s.get("TOKEN_URL"), "scope": s.get("SCOPE"),
            "client_id": s.get("CLIENT_ID"), "client_secret_env": "POP3_PROBE_TEST_OAUTH2_SECRET",
            "ca_file": s.get("CA_PEM")
        }),
    );
    let config = pop3_probe::config::load(&text, &common::NoSecrets)
        .await
        .unwrap();
    assert!(config.problems.is_empty(), "{:?}", config.problems);
    let mut target = config.monitors[0].target.clone();
    let cache = Arc::new(TokenCache::new());
    target.token_cache = Some(cache.clone());
    assert!(!format!("{target:?}").contains(s.get("CLIENT_SECRET")));
    let r = probe::pop3::probe(&target).await;
    assert_up_with_stat(s, &r);
    assert_eq!(cache.fetches(), 1);
}

#[tokio::test]
async fn a_broken_oauth2_credential_names_its_field_and_spares_the_rest() {
    let s = servers();
    let text = config_text(
        s,
        serde_json::json!({"provider": "microsoft", "client_id": "x", "client_secret_env": "X"}),
    );
    let config = pop3_probe::config::Config::parse(&text).unwrap();
    let shown = format!("{:?}", config.problems);
    assert!(shown.contains("credentials.m365.oauth2.tenant"), "{shown}");
}

// ---------------------------------------------------------------------------
// SMTP AUTH XOAUTH2 / OAUTHBEARER: a real token, a scripted server that
// records what it was sent (Exim's Dovecot-auth route is not wired yet).
// ---------------------------------------------------------------------------

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Serve one SMTP session: after EHLO offer `mechs`, answer the AUTH
/// response with `after_response` (and whatever the client says next with
/// `after_error_reply`). Returns every line the client sent.
async fn scripted_smtp(
    mechs: &'static str,
    after_response: &'static str,
    after_error_reply: &'static str,
) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        let mut got = Vec::new();
        w.write_all(b"220 mx.test ESMTP\r\n").await.unwrap();
        let mut stage = 0;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            let line = line.trim_end().to_string();
            got.push(line.clone());
            let answer = if line.starts_with("EHLO") {
                format!("250-mx.test\r\n250 AUTH {mechs}\r\n")
            } else if line.starts_with("AUTH ") {
                stage = 1;
                "334 \r\n".to_string()
            } else if line.starts_with("QUIT") {
                w.write_all(b"221 bye\r\n").await.ok();
                break;
            } else if stage == 1 {
                stage = 2;
                format!("{after_response}\r\n")
            } else {
                format!("{after_error_reply}\r\n")
            };
            w.write_all(answer.as_bytes()).await.unwrap();
        }
        got
    });
    (port, task)
}

fn smtp_target(s: &OAuth2Servers, port: u16, auth: AuthMethod, cache: &Arc<TokenCache>) -> Target {
    let mut t = target(s, auth, cache);
    t.kind = pop3_probe::probe::Kind::Smtp;
    t.port = port;
    t.tls = pop3_probe::probe::TlsMode::None;
    // Loopback script without TLS: the token may go in cleartext here only.
    t.allow_plaintext_password = true;
    t.ehlo_name = Some("probe.test".into());
    t
}

#[tokio::test]
async fn smtp_auth_xoauth2_sends_the_layout_in_the_two_step_form() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    let (port, server) =
        scripted_smtp("PLAIN XOAUTH2", "235 2.7.0 Authentication successful", "").await;
    let r = probe::check(&smtp_target(s, port, AuthMethod::Auto, &cache)).await;
    assert_eq!(r.status, Status::Up, "{}", pop3_probe::output::human(&r));
    assert_eq!(r.auth_used, Some(AuthMethod::Xoauth2));
    let sent = server.await.unwrap();
    let token = current_token(&cache, s).await;
    let i = sent
        .iter()
        .position(|l| l == "AUTH XOAUTH2")
        .expect("AUTH XOAUTH2 alone");
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &sent[i + 1]).unwrap();
    assert_eq!(
        decoded,
        format!("user=probe\x01auth=Bearer {token}\x01\x01").into_bytes()
    );
    assert_no_secrets(s, &r, &[token]);
}

#[tokio::test]
async fn smtp_error_challenge_is_answered_and_decoded() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    // Microsoft's and Google's shape: 334 with a base64 JSON status.
    let (port, server) = scripted_smtp(
        "XOAUTH2 OAUTHBEARER",
        "334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJtYWlsIn0=",
        "535 5.7.3 Authentication unsuccessful",
    )
    .await;
    let r = probe::check(&smtp_target(s, port, AuthMethod::Auto, &cache)).await;
    assert_eq!(
        r.failure,
        Some(FailureKind::AuthFailed),
        "{}",
        pop3_probe::output::human(&r)
    );
    assert_eq!(r.auth_used, Some(AuthMethod::Oauthbearer));
    assert_eq!(
        r.oauth2.as_ref().unwrap().server_status.as_deref(),
        Some("status=invalid_token scope=mail")
    );
    let sent = server.await.unwrap();
    let i = sent.iter().position(|l| l == "AUTH OAUTHBEARER").unwrap();
    assert_eq!(
        sent[i + 2],
        "AQ==",
        "RFC 7628's %x01 answers the challenge: {sent:?}"
    );
    assert_no_secrets(s, &r, &[current_token(&cache, s).await]);
}

// ---------------------------------------------------------------------------
// SMTP AUTH against a real server: the harness's Exim hands XOAUTH2 and
// OAUTHBEARER to the same Dovecot's auth service (its `dovecot`
// authenticator), which introspects the token at oidc-provider.
// ---------------------------------------------------------------------------

/// An SMTP check of the harness's Exim: STARTTLS verified against the
/// harness CA, then AUTH with the monitor's token, under an EHLO name of
/// its own by which the test finds its session in Exim's log.
fn exim_target(s: &OAuth2Servers, auth: AuthMethod, cache: &Arc<TokenCache>, tag: &str) -> Target {
    let mut t = target(s, auth, cache);
    t.name = format!("oauth-smtp-{tag}");
    t.kind = pop3_probe::probe::Kind::Smtp;
    t.port = s.port("SMTP_OAUTH_PORT");
    t.tls = pop3_probe::probe::TlsMode::Starttls;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    t.ehlo_name = Some(format!("{tag}-{nanos}.probe.test"));
    t
}

/// Exim's log lines that name this session's EHLO name, once the session
/// is over: the probe may send QUIT without waiting for Exim's answer, so
/// its result can come back before Exim has written the session's last
/// line ("no MAIL in SMTP connection from (NAME) ..."). Waits for that line
/// (up to 30 s, a bound, not a measurement).
fn exim_lines(s: &OAuth2Servers, ehlo: &str) -> Vec<String> {
    let end = format!("no MAIL in SMTP connection from ({ehlo})");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(s.get("EXIM_LOG"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(ehlo))
            .map(str::to_string)
            .collect();
        if lines.iter().any(|l| l.contains(&end)) || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn smtp_xoauth2_and_oauthbearer_log_in_to_exim_through_dovecot_auth() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    for (auth, used, authenticator) in [
        (AuthMethod::Xoauth2, AuthMethod::Xoauth2, "xoauth2"),
        (
            AuthMethod::Oauthbearer,
            AuthMethod::Oauthbearer,
            "oauthbearer",
        ),
        // Exim offers both: auto prefers the standard one.
        (AuthMethod::Auto, AuthMethod::Oauthbearer, "oauthbearer"),
    ] {
        let t = exim_target(s, auth, &cache, authenticator);
        let r = probe::check(&t).await;
        assert_eq!(
            r.status,
            Status::Up,
            "{}\n{:?}",
            pop3_probe::output::human(&r),
            r.phases
        );
        assert_eq!(r.auth_used, Some(used));
        assert_eq!(r.phases[0].phase, Phase::Token, "token comes first");
        assert!(r.tls.is_some(), "AUTH went over TLS");
        // Exim's own word: this session was logged in by the authenticator
        // for that mechanism, as the mailbox.
        let ehlo = t.ehlo_name.as_deref().unwrap();
        let want = format!("quit helo={ehlo} authenticator={authenticator} id=probe");
        let lines = exim_lines(s, ehlo);
        assert!(
            lines.iter().any(|l| l.ends_with(&want)),
            "{want} not in {lines:#?}"
        );
        assert_no_secrets(s, &r, &[current_token(&cache, s).await]);
    }
    assert_eq!(cache.fetches(), 1, "one token served all three logins");
}

#[tokio::test]
async fn smtp_a_revoked_cached_token_is_replaced_in_the_same_session() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    let token = current_token(&cache, s).await;
    revoke(s, &token);
    let t = exim_target(s, AuthMethod::Xoauth2, &cache, "revoked");
    let r = probe::check(&t).await;
    assert_eq!(r.status, Status::Up, "{}", pop3_probe::output::human(&r));
    assert!(r.oauth2.as_ref().unwrap().refetched);
    assert_eq!(
        cache.fetches(),
        2,
        "one fetch for the revoked token, one fresh"
    );
    let fresh = current_token(&cache, s).await;
    assert_ne!(fresh, token);
    // One session: the revoked token refused, the fresh one taken.
    let ehlo = t.ehlo_name.as_deref().unwrap();
    let lines = exim_lines(s, ehlo);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("authenticator failed"))
            .count(),
        1,
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("authenticator=xoauth2 id=probe")),
        "{lines:#?}"
    );
    let sessions = lines
        .iter()
        .filter(|l| l.contains("C=EHLO,STARTTLS,EHLO,AUTH,AUTH,QUIT"))
        .count();
    assert_eq!(sessions, 1, "both AUTHs in one session: {lines:#?}");
    assert_no_secrets(s, &r, &[token, fresh]);
}

#[tokio::test]
async fn smtp_a_token_for_another_audience_is_auth_failed_at_exim() {
    let s = servers();
    let cache = Arc::new(TokenCache::new());
    for auth in [AuthMethod::Xoauth2, AuthMethod::Oauthbearer] {
        let mut t = exim_target(s, auth, &cache, "other-audience");
        let mut c = s.credential();
        c.client_id = s.get("OTHER_CLIENT_ID").to_string();
        c.client_secret = Some(SecretString::from(s.get("OTHER_CLIENT_SECRET").to_string()));
        c.scope = None;
        t.oauth2 = Some(Arc::new(c.clone()));
        let r = probe::check(&t).await;
        assert_eq!(
            r.failure,
            Some(FailureKind::AuthFailed),
            "{}",
            pop3_probe::output::human(&r)
        );
        assert_eq!(r.failed_phase, Some(Phase::Auth));
        assert!(r.message.contains("freshly issued"), "{}", r.message);
        // The token endpoint did its part: the mail server is the one
        // refusing, which is what auth_failed (not oauth2_token_failed) says.
        assert_eq!(r.phases[0].phase, Phase::Token);
        let ehlo = t.ehlo_name.as_deref().unwrap();
        let lines = exim_lines(s, ehlo);
        assert!(
            lines.iter().any(|l| l.contains("authenticator failed")),
            "Exim refused it: {lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("authenticator=none id=none")),
            "{lines:#?}"
        );
        let token = token_of(&cache, &c, s).await;
        assert_no_secrets(s, &r, &[token]);
        println!("{}", pop3_probe::output::human(&r));
    }
}

// ---------------------------------------------------------------------------
// The CLI's --oauth2-* flags.
// ---------------------------------------------------------------------------

fn cli(s: &OAuth2Servers, secret: &str, extra: &[&str]) -> (i32, String, String) {
    let target = format!(
        "pop3s://{}@127.0.0.1:{}",
        s.get("MAILBOX"),
        s.port("POP3S_OAUTH_PORT")
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .args([
            "check",
            &target,
            "--ca-file",
            s.get("CA_PEM"),
            "--tls-server-name",
            "localhost",
        ])
        .args([
            "--oauth2-token-url",
            s.get("TOKEN_URL"),
            "--oauth2-scope",
            s.get("SCOPE"),
        ])
        .args([
            "--oauth2-client-id",
            s.get("CLIENT_ID"),
            "--oauth2-ca-file",
            s.get("CA_PEM"),
        ])
        .args(["--oauth2-client-secret-env", "POP3_PROBE_TEST_CLI_SECRET"])
        .args(["--warn", "20s", "--crit", "25s", "--timeout", "30s"])
        .args(extra)
        .env("POP3_PROBE_TEST_CLI_SECRET", secret)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_logs_in_with_oauth2_flags_and_shows_the_token_phase() {
    let s = servers();
    let (code, out, err) = cli(
        s,
        s.get("CLIENT_SECRET"),
        &["--auth", "xoauth2", "--json", "--verbose"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "up");
    assert_eq!(v["oauth2"]["grant"], "client_credentials");
    assert!(v["phases"][0]["phase"] == "token", "{out}");
    assert!(err.contains("auth=Bearer ***"), "{err}");
    for text in [&out, &err] {
        assert!(!text.contains(s.get("CLIENT_SECRET")));
    }
    let (code, out, _) = cli(s, "Wrong-Secret-0000", &["--auth", "oauthbearer"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("oauth2_token_failed") && out.contains("invalid_client"),
        "{out}"
    );
    assert!(!out.contains("Wrong-Secret-0000"));
}
