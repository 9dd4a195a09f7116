//! Where secret values come from, and how each source is read: inline, an
//! environment variable, a file's first line, or a [`SecretSource`]
//! (Secrets Manager). The config's credentials, its OAuth2 secrets and the
//! CLI's `--password-env` / `--password-file` all read through here, so a
//! source behaves (and fails, with the same words) the same everywhere.

use std::future::Future;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::limits;
use crate::outside::SinkError;

/// Where secrets (the config document, credential secrets) come from.
pub trait SecretSource: Sync {
    fn secret(&self, id: &str) -> impl Future<Output = Result<SecretString, SinkError>> + Send;

    /// How long a value read may be reused (the config's
    /// `run.secrets_ttl_seconds`). Sources without a cache ignore it.
    fn set_ttl(&self, _ttl: std::time::Duration) {}
}

/// One place a secret is read from; a credential names exactly one.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// Written in the document: only inside a config that is itself a secret.
    Inline(&'a SecretString),
    Env(&'a str),
    File(&'a Path),
    /// A secret's name or ARN in the [`SecretSource`].
    Secret(&'a str),
}

/// An environment variable's value, as it is.
pub fn from_env(var: &str) -> Result<SecretString, String> {
    std::env::var(var)
        .map(SecretString::from)
        .map_err(|_| format!("environment variable {var} is not set"))
}

/// A file's first line, read up to [`limits::MAX_PASSWORD_FILE_BYTES`].
pub fn from_file(path: &Path) -> Result<SecretString, String> {
    limits::read_password_file(path).map(SecretString::from)
}

/// A secret's value, as stored.
pub async fn from_secret<S: SecretSource>(secrets: &S, id: &str) -> Result<SecretString, String> {
    secrets
        .secret(id)
        .await
        .map_err(|e| format!("secret {id}: {e}"))
}

/// A login's password, and its user name when a secret carries one.
pub async fn read_account<S: SecretSource>(
    source: Source<'_>,
    secrets: &S,
) -> Result<(Option<String>, SecretString), String> {
    match source {
        Source::Inline(p) => Ok((None, p.clone())),
        Source::Env(var) => from_env(var).map(|p| (None, p)),
        Source::File(file) => from_file(file).map(|p| (None, p)),
        Source::Secret(id) => {
            let value = from_secret(secrets, id).await?;
            parse_account_secret(value.expose_secret()).map_err(|e| format!("secret {id}: {e}"))
        }
    }
}

/// A credential secret is `{"username": ..., "password": ...}` (username
/// optional) or the bare password.
pub fn parse_account_secret(text: &str) -> Result<(Option<String>, SecretString), String> {
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        if trimmed.is_empty() {
            return Err("the secret is empty".into());
        }
        return Ok((None, SecretString::from(trimmed.to_string())));
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Account {
        username: Option<String>,
        password: SecretString,
    }
    // Deliberately no serde error text: it can quote the secret's content.
    let a: Account = serde_json::from_str(trimmed).map_err(|e| {
        format!(
            "not {{\"username\": ..., \"password\": ...}} JSON (line {} column {})",
            e.line(),
            e.column()
        )
    })?;
    Ok((a.username, a.password))
}
