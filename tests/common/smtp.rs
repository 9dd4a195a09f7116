//! The real Exim started by `tests/smtp/ensure.sh`: one shared daemon (one
//! listener per behaviour) per machine, started on first use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

pub struct Exim {
    env: HashMap<String, String>,
}

impl Exim {
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("tests/smtp/ensure.sh wrote no {key}"))
    }

    pub fn port(&self, key: &str) -> u16 {
        self.get(key).parse().unwrap()
    }

    pub fn pem(&self, key: &str) -> String {
        std::fs::read_to_string(self.get(key)).unwrap()
    }

    /// The log lines of the session that sent EHLO `name` (a name unique
    /// to one test), up to Exim's summary of it (`no MAIL in SMTP
    /// connection ... C=EHLO,STARTTLS,...`). Exim writes that summary after
    /// the probe has gone, so this waits for it, a bounded while, and
    /// returns what it has when the wait runs out. The session is found by
    /// the client port the harness's HELO ACL logs with the name: Exim
    /// forgets the name at STARTTLS.
    pub async fn session(&self, name: &str) -> Vec<String> {
        let marker = format!("helo {name} from port ");
        let mut found = Vec::new();
        for _ in 0..100 {
            let log = std::fs::read_to_string(self.get("EXIM_LOG")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            found.clear();
            if let Some((start, port)) = lines.iter().enumerate().find_map(|(i, l)| {
                l.split_once(&marker)
                    .map(|(_, port)| (i, format!("[127.0.0.1]:{} ", port.trim())))
            }) {
                for l in &lines[start..] {
                    if l.contains(&port) || l.contains(&marker) {
                        found.push(l.to_string());
                    }
                    if l.contains(&port) && l.contains("no MAIL in SMTP connection") {
                        return found;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        found
    }
}

/// Same default as the Makefile's SMTP_DIR.
pub fn dir() -> PathBuf {
    std::env::var_os("POP3_PROBE_SMTP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/pop3-probe-smtp"))
}

/// Start (or reuse) the test Exim. A missing Exim fails the test loudly:
/// `.ci/run` and `make setup` install it.
pub fn exim() -> &'static Exim {
    static E: OnceLock<Exim> = OnceLock::new();
    E.get_or_init(|| {
        let env = super::ensure_harness(
            "smtp",
            &dir(),
            "is exim4-daemon-heavy installed? `make setup` installs it",
        );
        Exim { env }
    })
}
