//! Tokens kept per (token URL, client, scope, user) until shortly before
//! they expire. One process-wide cache ([`TokenCache::global`]) serves
//! every monitor of a run and, because a warm Lambda keeps its process,
//! the runs after it. A per-key async lock makes fifty monitors that start
//! together wait for one request instead of sending fifty.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::{fetch, AccessToken, Credential, Grant, TokenError};

/// What identifies one token: the same credential used by many monitors
/// (and the same user, for delegated grants) shares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub token_url: String,
    pub client_id: String,
    pub scope: Option<String>,
    pub user: String,
}

impl CacheKey {
    pub fn new(cred: &Credential, user: &str) -> CacheKey {
        CacheKey {
            token_url: cred.token_url.clone(),
            client_id: cred.client_id.clone(),
            scope: cred.scope.clone(),
            user: user.to_string(),
        }
    }
}

/// A token endpoint that gives no `expires_in` leaves the lifetime to its
/// documentation; five minutes is shorter than any we know of.
const UNSTATED_LIFETIME: Duration = Duration::from_secs(300);
/// A failed request is reused this long by monitors that were waiting on
/// it, so a hanging endpoint costs one timeout per run, not one per monitor.
const FAILURE_REUSE: Duration = Duration::from_secs(10);

/// Stop using a token this long before it expires: a minute, or a quarter
/// of a short lifetime, so that a login never starts with a token about to
/// run out.
fn margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(60))
}

enum Slot {
    Token {
        token: AccessToken,
        expires_at: Instant,
    },
    Failed {
        error: TokenError,
        at: Instant,
    },
}

/// A token for one login, and where it came from.
#[derive(Debug, Clone)]
pub struct Obtained {
    pub token: AccessToken,
    /// Time left before the token expires (`None`: unknown, e.g. a ready token).
    pub remaining: Option<Duration>,
    /// Served from the cache (so a refusal may mean it was revoked early,
    /// and one fresh token is worth a try).
    pub cached: bool,
}

type Clock = Box<dyn Fn() -> Instant + Send + Sync>;

pub struct TokenCache {
    slots: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<Option<Slot>>>>>,
    fetches: AtomicU64,
    clock: Clock,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new()
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new() -> TokenCache {
        TokenCache::with_clock(Box::new(Instant::now))
    }

    /// A cache that reads the time from `clock` (tests move it forward to
    /// expire tokens without waiting).
    pub fn with_clock(clock: Clock) -> TokenCache {
        TokenCache {
            slots: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
            clock,
        }
    }

    /// The process-wide cache.
    pub fn global() -> Arc<TokenCache> {
        static GLOBAL: OnceLock<Arc<TokenCache>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(TokenCache::new())).clone()
    }

    /// How many token requests this cache has sent.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn slot(&self, key: CacheKey) -> Arc<tokio::sync::Mutex<Option<Slot>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key).or_default().clone()
    }

    /// A token for `user` with `cred`: the cached one while it has life
    /// left, else a new one from the endpoint (within `budget`).
    pub async fn get(
        &self,
        cred: &Credential,
        user: &str,
        budget: Duration,
    ) -> Result<Obtained, TokenError> {
        if let Grant::Ready(_) = cred.grant {
            let token = fetch(cred, budget).await?;
            return Ok(Obtained {
                token,
                remaining: None,
                cached: false,
            });
        }
        let slot = self.slot(CacheKey::new(cred, user));
        let waited = tokio::time::timeout(budget, slot.lock())
            .await
            .map_err(|_| {
                TokenError::new(
                    super::TokenFailure::Timeout,
                    format!("no token within {budget:?} (another monitor's request for the same credential is still running)"),
                )
            });
        let mut guard = waited?;
        let now = (self.clock)();
        match &*guard {
            Some(Slot::Token { token, expires_at }) if *expires_at > now => {
                return Ok(Obtained {
                    token: token.clone(),
                    remaining: Some(*expires_at - now),
                    cached: true,
                });
            }
            Some(Slot::Failed { error, at }) if now.duration_since(*at) < FAILURE_REUSE => {
                return Err(error.clone());
            }
            _ => {}
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match fetch(cred, budget).await {
            Ok(token) => {
                let lifetime = token
                    .expires_in
                    .map(Duration::from_secs)
                    .unwrap_or(UNSTATED_LIFETIME);
                let now = (self.clock)();
                *guard = Some(Slot::Token {
                    token: token.clone(),
                    expires_at: now + lifetime - margin(lifetime),
                });
                Ok(Obtained {
                    token,
                    remaining: Some(lifetime),
                    cached: false,
                })
            }
            Err(error) => {
                *guard = Some(Slot::Failed {
                    error: error.clone(),
                    at: (self.clock)(),
                });
                Err(error)
            }
        }
    }

    /// The mail server refused `token`: forget it, so the next `get`
    /// fetches a new one. A token another monitor already replaced stays.
    pub async fn reject(&self, cred: &Credential, user: &str, token: &SecretString) {
        let slot = self.slot(CacheKey::new(cred, user));
        let mut guard = slot.lock().await;
        if let Some(Slot::Token { token: held, .. }) = &*guard {
            if held.token.expose_secret() == token.expose_secret() {
                *guard = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ClientAuth, Provider};
    use super::*;
    use std::sync::atomic::AtomicU64;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A scripted token endpoint: answers every request with a new token
    /// `tok<N>` of `expires_in` seconds and counts requests.
    async fn endpoint(expires_in: u64) -> (String, Arc<AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let mut buf = vec![0; 4096];
                    let mut got = Vec::new();
                    // Read the headers and the (small) form body.
                    while !String::from_utf8_lossy(&got).contains("grant_type") {
                        let k = s.read(&mut buf).await.unwrap();
                        if k == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..k]);
                    }
                    let body = format!(
                        r#"{{"access_token":"tok{n}","token_type":"Bearer","expires_in":{expires_in}}}"#
                    );
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    s.write_all(reply.as_bytes()).await.unwrap();
                });
            }
        });
        (url, count)
    }

    fn cred(url: &str) -> Credential {
        Credential {
            provider: Provider::Generic,
            token_url: url.to_string(),
            scope: Some("mail".into()),
            client_id: "c".into(),
            client_secret: Some(SecretString::from("s".to_string())),
            client_auth: ClientAuth::Post,
            grant: Grant::ClientCredentials,
            ca_pem: None,
            allow_insecure_http: false,
        }
    }

    /// A clock the test moves.
    fn manual_clock() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let n = now.clone();
        (Box::new(move || *n.lock().unwrap()), now)
    }

    const BUDGET: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn many_monitors_share_one_fetch() {
        let (url, count) = endpoint(3600).await;
        let cache = Arc::new(TokenCache::new());
        let c = cred(&url);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (cache, c) = (cache.clone(), c.clone());
                tokio::spawn(async move { cache.get(&c, "u", BUDGET).await.unwrap() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().token.token.expose_secret(), "tok1");
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(cache.fetches(), 1);
    }

    #[tokio::test]
    async fn tokens_expire_shortly_before_expires_in() {
        let (url, count) = endpoint(600).await;
        let (clock, now) = manual_clock();
        let cache = TokenCache::with_clock(clock);
        let c = cred(&url);
        let first = cache.get(&c, "u", BUDGET).await.unwrap();
        assert!(!first.cached);
        assert_eq!(first.remaining, Some(Duration::from_secs(600)));
        *now.lock().unwrap() += Duration::from_secs(539);
        let again = cache.get(&c, "u", BUDGET).await.unwrap();
        assert!(again.cached);
        assert_eq!(again.token.token.expose_secret(), "tok1");
        assert_eq!(again.remaining, Some(Duration::from_secs(1)));
        // Inside the last minute: a new token.
        *now.lock().unwrap() += Duration::from_secs(1);
        let renewed = cache.get(&c, "u", BUDGET).await.unwrap();
        assert_eq!(renewed.token.token.expose_secret(), "tok2");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_rejected_token_is_dropped_and_fetched_again() {
        let (url, count) = endpoint(3600).await;
        let cache = TokenCache::new();
        let c = cred(&url);
        let t1 = cache.get(&c, "u", BUDGET).await.unwrap().token.token;
        // A stale token (another monitor already replaced it) changes nothing.
        cache
            .reject(&c, "u", &SecretString::from("old".to_string()))
            .await;
        assert!(cache.get(&c, "u", BUDGET).await.unwrap().cached);
        cache.reject(&c, "u", &t1).await;
        let t2 = cache.get(&c, "u", BUDGET).await.unwrap();
        assert!(!t2.cached);
        assert_eq!(t2.token.token.expose_secret(), "tok2");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn keys_separate_users_scopes_and_clients() {
        let (url, count) = endpoint(3600).await;
        let cache = TokenCache::new();
        let a = cred(&url);
        let mut b = cred(&url);
        b.scope = Some("other".into());
        let mut d = cred(&url);
        d.client_id = "d".into();
        cache.get(&a, "u", BUDGET).await.unwrap();
        cache.get(&a, "v", BUDGET).await.unwrap();
        cache.get(&b, "u", BUDGET).await.unwrap();
        cache.get(&d, "u", BUDGET).await.unwrap();
        cache.get(&a, "u", BUDGET).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_failure_is_shared_by_waiters_then_retried() {
        // Nothing listens: every request fails fast.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        drop(listener);
        let (clock, now) = manual_clock();
        let cache = TokenCache::with_clock(clock);
        let c = cred(&url);
        let e = cache.get(&c, "u", BUDGET).await.unwrap_err();
        assert_eq!(e.failure, super::super::TokenFailure::Unreachable);
        assert!(!e.is_credentials_problem());
        cache.get(&c, "u", BUDGET).await.unwrap_err();
        assert_eq!(cache.fetches(), 1);
        *now.lock().unwrap() += FAILURE_REUSE;
        cache.get(&c, "u", BUDGET).await.unwrap_err();
        assert_eq!(cache.fetches(), 2);
    }

    #[tokio::test]
    async fn a_ready_token_is_used_as_given() {
        let cache = TokenCache::new();
        let mut c = cred("https://unused.invalid/token");
        c.grant = Grant::Ready(SecretString::from("given".to_string()));
        let got = cache.get(&c, "u", BUDGET).await.unwrap();
        assert_eq!(got.token.token.expose_secret(), "given");
        assert_eq!(cache.fetches(), 0);
    }
}
