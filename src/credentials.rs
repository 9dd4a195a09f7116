//! Where secret values come from.

use std::future::Future;

use secrecy::SecretString;

use crate::outside::SinkError;

/// Where secrets (the config document, credential secrets) come from.
pub trait SecretSource: Sync {
    fn secret(&self, id: &str) -> impl Future<Output = Result<SecretString, SinkError>> + Send;

    /// How long a value read may be reused (the config's
    /// `run.secrets_ttl_seconds`). Sources without a cache ignore it.
    fn set_ttl(&self, _ttl: std::time::Duration) {}
}
