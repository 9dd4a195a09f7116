//! The real Dovecot started by `tests/dovecot/ensure.sh`: one shared
//! instance (several listeners) per checkout, started on first use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

pub struct Dovecot {
    env: HashMap<String, String>,
}

impl Dovecot {
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("tests/dovecot/ensure.sh wrote no {key}"))
    }

    pub fn port(&self, key: &str) -> u16 {
        self.get(key).parse().unwrap()
    }

    pub fn pem(&self, key: &str) -> String {
        std::fs::read_to_string(self.get(key)).unwrap()
    }
}

/// Under /tmp, not target/: as root, Dovecot's mail processes run as the
/// `dovecot` user, which cannot enter a checkout under /root. Same default
/// as the Makefile's DOVECOT_DIR.
pub fn dir() -> PathBuf {
    std::env::var_os("POP3_PROBE_DOVECOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/pop3-probe-dovecot"))
}

/// Start (or reuse) the test Dovecot. A missing Dovecot fails the test
/// loudly: `.ci/run` and `make test` install it.
pub fn dovecot() -> &'static Dovecot {
    static D: OnceLock<Dovecot> = OnceLock::new();
    D.get_or_init(|| {
        let env = super::ensure_harness(
            "dovecot",
            &dir(),
            "is dovecot-pop3d installed? `make setup` installs it",
        );
        Dovecot { env }
    })
}
