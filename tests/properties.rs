//! Properties over arbitrary input: parsers never panic, oversize input is
//! always "too large", and no server reply can make a result show the
//! password.

mod common;

use std::time::Duration;

use common::fake::{self, line, Reply};
use pop3_probe::config::Config;
use pop3_probe::output;
use pop3_probe::pop3::{response, Client, Error};
use pop3_probe::probe::{self, AuthMethod, Target, TlsMode};
use pop3_probe::wire::{Transcript, MAX_LINE};
use proptest::prelude::*;
use secrecy::SecretString;
use tokio::io::AsyncWriteExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn status_and_greeting_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let status = response::parse_status(&bytes);
        let greeting = response::parse_greeting(&bytes);
        prop_assert_eq!(status.is_ok(), greeting.is_ok());
        if let Ok(s) = status {
            // What is kept is printable: no control characters survive.
            prop_assert!(!s.text.chars().any(char::is_control));
        }
        let _ = response::unstuff(&bytes);
        let _ = response::parse_stat(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn client_survives_any_server_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        runtime().block_on(async {
            let (client, mut server) = tokio::io::duplex(8192);
            server.write_all(&bytes).await.unwrap();
            drop(server);
            // Whatever the bytes, every call returns (no panic, no hang).
            if let Ok(mut c) = Client::connect(client, Transcript::recording()).await {
                let _ = c.capa().await;
            }
        });
    }

    #[test]
    fn oversize_lines_are_always_too_large(extra in 1usize..8192, fill in any::<u8>()) {
        let fill = if fill == b'\n' || fill == b'\r' { b'x' } else { fill };
        let mut bytes = b"+OK ".to_vec();
        bytes.resize(MAX_LINE + extra, fill);
        bytes.extend_from_slice(b"\r\n");
        let r = runtime().block_on(async {
            let (client, mut server) = tokio::io::duplex(MAX_LINE * 4);
            tokio::spawn(async move { let _ = server.write_all(&bytes).await; });
            Client::connect(client, Transcript::off()).await.map(|_| ())
        });
        prop_assert!(matches!(r, Err(Error::TooLarge)), "{:?}", r.err());
    }

    #[test]
    fn config_loader_never_panics(text in "\\PC{0,400}") {
        let _ = Config::parse(&text);
    }

    #[test]
    fn config_loader_never_panics_on_near_misses(
        field in prop::sample::select(vec!["tls", "auth", "port", "timeout_ms", "warning_ms", "name", "host", "credentials", "enabled", "ca_pem"]),
        value in prop_oneof![
            Just(serde_json::json!(null)), Just(serde_json::json!(-1)), Just(serde_json::json!(1e300)),
            Just(serde_json::json!("")), Just(serde_json::json!([])), Just(serde_json::json!({})),
            any::<i64>().prop_map(|n| serde_json::json!(n)), "\\PC{0,20}".prop_map(|s| serde_json::json!(s)),
        ],
    ) {
        let mut monitor = serde_json::json!({"name": "m", "host": "h", "auth": "none"});
        monitor[field] = value;
        let doc = serde_json::json!({"monitors": [monitor, {"name": "ok", "host": "h", "auth": "none"}]});
        let c = Config::parse(&doc.to_string()).unwrap();
        // The healthy neighbour is never lost.
        prop_assert!(c.monitors.iter().any(|m| m.target.name == "ok"));
    }
}

const PASSWORD: &str = "S3cret-Pr0perty";

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the server answers to each step — including echoes of what
    /// it was sent — no rendering of the result shows the password.
    #[test]
    fn no_reply_reveals_the_password(
        greeting_apop in any::<bool>(),
        pass_reply in prop_oneof![
            Just("-ERR [AUTH] you sent {cmd}".to_string()),
            Just("+OK {cmd}".to_string()),
            Just("-ERR {cmd} {cmd}".to_string()),
            "\\PC{0,60}",
        ],
        stat_reply in prop_oneof![Just("+OK 1 2".to_string()), Just("-ERR {cmd}".to_string()), "\\PC{0,40}"],
        auth in prop::sample::select(vec![AuthMethod::Auto, AuthMethod::User, AuthMethod::SaslPlain, AuthMethod::Apop]),
    ) {
        runtime().block_on(async move {
            let greeting = if greeting_apop { "+OK hi <1.2@host>" } else { "+OK hi" };
            let s = fake::spawn(line(greeting), move |cmd: &str| {
                let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
                match verb.as_str() {
                    "CAPA" => fake::polite(&["USER", "SASL PLAIN"])(cmd),
                    "USER" => line("+OK"),
                    "PASS" | "AUTH" | "APOP" => Reply::Line(pass_reply.replace("{cmd}", cmd)),
                    "STAT" => Reply::Line(stat_reply.replace("{cmd}", cmd)),
                    _ => line("+OK"),
                }
            })
            .await;
            let mut t = Target::new("prop", "127.0.0.1", s.port());
            t.tls = TlsMode::None;
            t.auth = auth;
            t.username = Some("probe".into());
            t.password = Some(SecretString::from(PASSWORD.to_string()));
            t.allow_plaintext_password = true;
            t.transcript = true;
            t.timeout = Duration::from_secs(5);
            let r = probe::pop3::probe(&t).await;
            let rendered = format!(
                "{}\n{}\n{}\n{}\n{:?}",
                output::json(&r),
                output::human(&r),
                output::transcript(&r),
                output::nagios(&r, &t),
                r
            );
            for form in pop3_probe::sasl::secret_forms(PASSWORD, Some("probe")) {
                assert!(!rendered.contains(&form), "leaked {form}:\n{rendered}");
            }
        });
    }
}
