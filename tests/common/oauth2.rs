//! The real OAuth2 server (oidc-provider) and the Dovecot that accepts its
//! tokens, started by `tests/oauth2/ensure.sh`: one shared set per checkout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use pop3_probe::oauth2::{ClientAuth, Credential, Grant, Provider};
use secrecy::SecretString;

pub struct OAuth2Servers {
    env: HashMap<String, String>,
}

impl OAuth2Servers {
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("tests/oauth2/ensure.sh wrote no {key}"))
    }

    pub fn port(&self, key: &str) -> u16 {
        self.get(key).parse().unwrap()
    }

    pub fn pem(&self, key: &str) -> String {
        std::fs::read_to_string(self.get(key)).unwrap()
    }

    /// Tokens the server has issued so far (its own count).
    pub fn issued(&self) -> u64 {
        let url = self.get("COUNT_URL_HTTP");
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "5", url])
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// The monitor's client-credentials credential, over HTTPS with the
    /// harness CA.
    pub fn credential(&self) -> Credential {
        Credential {
            provider: Provider::Generic,
            token_url: self.get("TOKEN_URL").to_string(),
            scope: Some(self.get("SCOPE").to_string()),
            client_id: self.get("CLIENT_ID").to_string(),
            client_secret: Some(SecretString::from(self.get("CLIENT_SECRET").to_string())),
            client_auth: ClientAuth::Post,
            grant: Grant::ClientCredentials,
            ca_pem: Some(self.pem("CA_PEM")),
            allow_insecure_http: false,
        }
    }

    /// Every secret the harness holds: none may appear in any output.
    pub fn secrets(&self) -> Vec<String> {
        ["CLIENT_SECRET", "OTHER_CLIENT_SECRET"]
            .iter()
            .map(|k| self.get(k).to_string())
            .collect()
    }
}

pub fn dir() -> PathBuf {
    std::env::var_os("POP3_PROBE_OAUTH2_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/pop3-probe-oauth2"))
}

/// Start (or reuse) the servers. Missing Dovecot, node or npm fail the
/// test loudly: `.ci/run` and `make setup` install them.
pub fn servers() -> &'static OAuth2Servers {
    static S: OnceLock<OAuth2Servers> = OnceLock::new();
    S.get_or_init(|| OAuth2Servers {
        env: super::ensure_harness(
            "oauth2",
            &dir(),
            "are dovecot-pop3d, exim4-daemon-heavy, nodejs and npm installed? `make setup` installs them",
        ),
    })
}
