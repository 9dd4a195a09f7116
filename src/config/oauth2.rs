//! The `oauth2` block of a credential in the monitor list, its checks
//! (errors name the JSON path) and its resolution into a [`Credential`]
//! with the secrets read, exactly as passwords are: env, file, inline
//! (only in a config that is itself a secret) or a Secrets Manager secret.

use std::path::PathBuf;

use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::credentials::{self, SecretSource};
use crate::oauth2::{ClientAuth, Credential, Grant, GrantKind, Provider};

/// `credentials.<name>.oauth2`: how to get an access token.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// `microsoft`, `google` or `generic`: the preset token URL and scope.
    pub provider: Provider,
    /// Microsoft: the tenant (`contoso.onmicrosoft.com` or its GUID).
    pub tenant: Option<String>,
    /// Overrides the preset; required for `generic`.
    pub token_url: Option<String>,
    /// Overrides the preset; required for `generic`.
    pub scope: Option<String>,
    /// The application (client) ID. Required unless the token is ready.
    pub client_id: Option<String>,
    /// Default `client_credentials`; `refresh_token` with a refresh token
    /// source; `ready` with `token_env` / `token_file`. Inferred from the
    /// sources given when not set.
    pub grant: Option<GrantKind>,
    /// How the client authenticates to the token endpoint (default `post`).
    pub client_auth: Option<ClientAuth>,
    /// Inline client secret: only inside a config that is itself a secret.
    #[schemars(with = "Option<String>")]
    pub client_secret: Option<SecretString>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// A Secrets Manager secret (name or ARN) holding the client secret.
    pub client_secret_id: Option<String>,
    /// Inline refresh token: only inside a config that is itself a secret.
    #[schemars(with = "Option<String>")]
    pub refresh_token: Option<SecretString>,
    pub refresh_token_env: Option<String>,
    pub refresh_token_file: Option<PathBuf>,
    /// A Secrets Manager secret holding the refresh token.
    pub refresh_token_secret_id: Option<String>,
    /// A ready bearer token (one-off checks): no token request.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Trust these CA certificates for the token endpoint instead of the
    /// built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Allow `http://` to a host that is not loopback (the output says so).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl std::fmt::Debug for OAuth2Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Config")
            .field("provider", &self.provider)
            .field("tenant", &self.tenant)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

/// One secret's sources, as a password's are.
struct Sources<'a> {
    what: &'a str,
    inline: Option<&'a SecretString>,
    env: Option<&'a String>,
    file: Option<&'a PathBuf>,
    secret_id: Option<&'a String>,
}

impl Sources<'_> {
    fn count(&self) -> usize {
        [
            self.inline.is_some(),
            self.env.is_some(),
            self.file.is_some(),
            self.secret_id.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count()
    }

    async fn read<S: SecretSource>(&self, secrets: &S) -> Result<SecretString, String> {
        let what = self.what;
        let value = if let Some(v) = self.inline {
            v.expose_secret().to_string()
        } else if let Some(var) = self.env {
            credentials::from_env(var)
                .map_err(|e| format!("{what}: {e}"))?
                .expose_secret()
                .to_string()
        } else if let Some(file) = self.file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("{what}: cannot read {}: {e}", file.display()))?;
            text.lines().next().unwrap_or("").to_string()
        } else if let Some(id) = self.secret_id {
            credentials::from_secret(secrets, id)
                .await
                .map_err(|e| format!("{what}: {e}"))?
                .expose_secret()
                .trim()
                .to_string()
        } else {
            return Err(format!("{what}: no source"));
        };
        if value.trim().is_empty() {
            return Err(format!("{what} is empty"));
        }
        Ok(SecretString::from(value.trim().to_string()))
    }
}

impl OAuth2Config {
    fn client_secret(&self) -> Sources<'_> {
        Sources {
            what: "client_secret",
            inline: self.client_secret.as_ref(),
            env: self.client_secret_env.as_ref(),
            file: self.client_secret_file.as_ref(),
            secret_id: self.client_secret_id.as_ref(),
        }
    }

    fn refresh_token(&self) -> Sources<'_> {
        Sources {
            what: "refresh_token",
            inline: self.refresh_token.as_ref(),
            env: self.refresh_token_env.as_ref(),
            file: self.refresh_token_file.as_ref(),
            secret_id: self.refresh_token_secret_id.as_ref(),
        }
    }

    fn ready(&self) -> Sources<'_> {
        Sources {
            what: "token",
            inline: None,
            env: self.token_env.as_ref(),
            file: self.token_file.as_ref(),
            secret_id: None,
        }
    }

    /// The grant this block asks for.
    pub fn grant_kind(&self) -> GrantKind {
        self.grant.unwrap_or(if self.ready().count() > 0 {
            GrantKind::Ready
        } else if self.refresh_token().count() > 0 {
            GrantKind::RefreshToken
        } else {
            GrantKind::ClientCredentials
        })
    }

    /// The token URL, from the override or the preset.
    pub fn token_url(&self) -> Option<String> {
        self.token_url
            .clone()
            .or_else(|| self.provider.token_url(self.tenant.as_deref()))
    }

    /// Check the block; `path` is its JSON path (`credentials.m365.oauth2`).
    pub fn validate(&self, path: &str) -> Result<(), (String, String)> {
        let at = |field: &str| format!("{path}.{field}");
        let err = |field: &str, msg: &str| Err((at(field), msg.to_string()));
        let grant = self.grant_kind();
        if grant == GrantKind::Ready {
            if self.ready().count() != 1 {
                return err(
                    "token_env",
                    "a ready token needs exactly one of token_env, token_file",
                );
            }
            return Ok(());
        }
        if self.ready().count() > 0 {
            return err(
                "token_env",
                "a ready token (token_env, token_file) goes with grant ready only",
            );
        }
        if self
            .client_id
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
        {
            return err("client_id", "required: the application (client) ID");
        }
        if let Some(t) = &self.tenant {
            if t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
            {
                return err("tenant", "must be a domain name or a GUID");
            }
        }
        match self.token_url() {
            None if self.provider == Provider::Microsoft => {
                return err(
                    "tenant",
                    "required for provider microsoft (or give token_url)",
                )
            }
            None => return err("token_url", "required for provider generic"),
            Some(u) => match url::Url::parse(&u) {
                Ok(url) if url.scheme() == "https" || url.scheme() == "http" => {}
                Ok(_) => return err("token_url", "must be an https:// URL"),
                Err(e) => return Err((at("token_url"), format!("not a URL: {e}"))),
            },
        }
        if self.scope.is_none() && self.provider.scope().is_none() {
            return err("scope", "required for provider generic");
        }
        let secrets = self.client_secret().count();
        if secrets > 1 {
            return err(
                "client_secret",
                "set at most one of client_secret, client_secret_env, client_secret_file, client_secret_id",
            );
        }
        match grant {
            GrantKind::ClientCredentials => {
                if secrets == 0 {
                    return err(
                        "client_secret_env",
                        "the client_credentials grant needs a client secret: one of client_secret, client_secret_env, client_secret_file, client_secret_id",
                    );
                }
                if self.refresh_token().count() > 0 {
                    return err(
                        "refresh_token",
                        "a refresh token goes with grant refresh_token only",
                    );
                }
            }
            GrantKind::RefreshToken => {
                if self.refresh_token().count() != 1 {
                    return err(
                        "refresh_token_env",
                        "the refresh_token grant needs exactly one of refresh_token, refresh_token_env, refresh_token_file, refresh_token_secret_id",
                    );
                }
            }
            GrantKind::Ready => {}
        }
        Ok(())
    }

    /// Read the secrets and build the credential.
    pub async fn resolve<S: SecretSource>(&self, secrets: &S) -> Result<Credential, String> {
        let grant = match self.grant_kind() {
            GrantKind::Ready => Grant::Ready(self.ready().read(secrets).await?),
            GrantKind::RefreshToken => {
                Grant::RefreshToken(self.refresh_token().read(secrets).await?)
            }
            GrantKind::ClientCredentials => Grant::ClientCredentials,
        };
        let client_secret = if self.client_secret().count() > 0 {
            Some(self.client_secret().read(secrets).await?)
        } else {
            None
        };
        let ca_pem = match &self.ca_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| format!("ca_file: cannot read {}: {e}", f.display()))?,
            ),
            None => None,
        };
        Ok(Credential {
            provider: self.provider,
            token_url: self.token_url().unwrap_or_default(),
            scope: self
                .scope
                .clone()
                .or_else(|| self.provider.scope().map(str::to_string)),
            client_id: self.client_id.clone().unwrap_or_default(),
            client_secret,
            client_auth: self.client_auth.unwrap_or_default(),
            grant,
            ca_pem,
            allow_insecure_http: self.allow_insecure_http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> OAuth2Config {
        serde_json::from_value(json).unwrap()
    }

    struct NoSecrets;
    impl SecretSource for NoSecrets {
        async fn secret(&self, id: &str) -> Result<SecretString, crate::outside::SinkError> {
            if id == "sm-secret" {
                return Ok(SecretString::from(" from-sm \n".to_string()));
            }
            Err(crate::outside::SinkError::new(
                "test",
                format!("no secret {id}"),
            ))
        }
    }

    #[test]
    fn presets_apply_and_can_be_overridden() {
        let c = parse(
            serde_json::json!({"provider": "microsoft", "tenant": "contoso.onmicrosoft.com",
            "client_id": "id", "client_secret_env": "X"}),
        );
        c.validate("p").unwrap();
        assert_eq!(
            c.token_url().unwrap(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(c.grant_kind(), GrantKind::ClientCredentials);
        let g = parse(serde_json::json!({"provider": "google", "client_id": "id",
            "client_secret_env": "X", "refresh_token_env": "R", "token_url": "https://t.example/x"}));
        g.validate("p").unwrap();
        assert_eq!(g.grant_kind(), GrantKind::RefreshToken);
        assert_eq!(g.token_url().unwrap(), "https://t.example/x");
    }

    #[test]
    fn errors_name_the_field() {
        for (json, field) in [
            (
                serde_json::json!({"provider": "microsoft", "client_id": "i", "client_secret_env": "X"}),
                "p.tenant",
            ),
            (
                serde_json::json!({"provider": "generic", "client_id": "i", "client_secret_env": "X", "scope": "s"}),
                "p.token_url",
            ),
            (
                serde_json::json!({"provider": "generic", "client_id": "i", "client_secret_env": "X", "token_url": "https://x/t"}),
                "p.scope",
            ),
            (
                serde_json::json!({"provider": "google", "client_secret_env": "X"}),
                "p.client_id",
            ),
            (
                serde_json::json!({"provider": "google", "client_id": "i"}),
                "p.client_secret_env",
            ),
            (
                serde_json::json!({"provider": "google", "client_id": "i", "client_secret_env": "X", "client_secret_file": "f"}),
                "p.client_secret",
            ),
            (
                serde_json::json!({"provider": "google", "client_id": "i", "grant": "refresh_token"}),
                "p.refresh_token_env",
            ),
            (
                serde_json::json!({"provider": "microsoft", "tenant": "a/b", "client_id": "i", "client_secret_env": "X"}),
                "p.tenant",
            ),
            (
                serde_json::json!({"provider": "generic", "token_url": "ftp://x", "scope": "s", "client_id": "i", "client_secret_env": "X"}),
                "p.token_url",
            ),
        ] {
            let (path, msg) = parse(json.clone()).validate("p").unwrap_err();
            assert_eq!(path, field, "{json}: {msg}");
        }
        assert!(
            serde_json::from_value::<OAuth2Config>(serde_json::json!({"provider": "yahoo"}))
                .is_err()
        );
        assert!(serde_json::from_value::<OAuth2Config>(
            serde_json::json!({"provider": "google", "secret": 1})
        )
        .is_err());
    }

    #[tokio::test]
    async fn secrets_resolve_like_passwords() {
        std::env::set_var("POP3_PROBE_TEST_OAUTH_SECRET", "env-secret");
        let c = parse(serde_json::json!({"provider": "google", "client_id": "id",
            "client_secret_env": "POP3_PROBE_TEST_OAUTH_SECRET", "refresh_token_secret_id": "sm-secret"}));
        let cred = c.resolve(&NoSecrets).await.unwrap();
        assert_eq!(cred.client_secret.unwrap().expose_secret(), "env-secret");
        match cred.grant {
            Grant::RefreshToken(rt) => assert_eq!(rt.expose_secret(), "from-sm"),
            _ => panic!("refresh token grant"),
        }
        assert_eq!(cred.scope.as_deref(), Some("https://mail.google.com/"));
        let missing = parse(serde_json::json!({"provider": "google", "client_id": "id",
            "client_secret_env": "POP3_PROBE_TEST_UNSET_VAR_X"}));
        let e = missing.resolve(&NoSecrets).await.unwrap_err();
        assert!(e.contains("POP3_PROBE_TEST_UNSET_VAR_X"), "{e}");
    }
}
