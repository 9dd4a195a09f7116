//! `pop3-probe init`: every template is a config that loads cleanly, the
//! list shows them all, and an existing file is never overwritten by
//! accident.

use std::process::{Command, Output};

use serde_json::Value;

use pop3_probe::config::Config;
use pop3_probe::probe::{AuthMethod, TlsMode};

fn init(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .arg("init")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Names from `init --list`, which prints `name  description` lines.
fn listed(dir: &std::path::Path) -> Vec<(String, String)> {
    let out = init(&["--list"], dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let (name, desc) = l.split_once(' ').unwrap();
            (name.to_string(), desc.trim().to_string())
        })
        .collect()
}

#[test]
fn every_template_is_listed_and_loads_without_problems() {
    let dir = tempfile::tempdir().unwrap();
    let list = listed(dir.path());
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["dovecot", "exchange", "gmail", "generic-isp"]);
    for (name, desc) in &list {
        assert!(desc.len() > 20, "{name} needs a description: {desc:?}");
    }
    // Every file under templates/ is one of them (none shipped unlisted).
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    files.sort();
    let mut expected: Vec<String> = names.iter().map(|n| format!("{n}.json")).collect();
    expected.sort();
    assert_eq!(files, expected);

    for name in &names {
        let out = init(&["--template", name, "--output", "-"], dir.path());
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let printed = text(&out.stdout);
        // The embedded copy is the file in the repository.
        let file = std::fs::read_to_string(format!(
            "{}/templates/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(printed, file, "{name}");
        let config = Config::parse(&printed).unwrap();
        assert!(config.problems.is_empty(), "{name}: {:?}", config.problems);
        assert!(!config.monitors.is_empty(), "{name}");
        let raw: Value = serde_json::from_str(&printed).unwrap();
        assert!(raw["$comment"].as_str().unwrap().len() > 40, "{name}");
        for m in raw["monitors"].as_array().unwrap() {
            let notes = m["notes"].as_str().unwrap_or_default();
            assert!(notes.len() > 40, "{name}: {} has no notes", m["name"]);
        }
        for m in &config.monitors {
            // No template logs in without TLS.
            assert_ne!(m.target.tls, TlsMode::None, "{name}: {}", m.target.name);
            assert!(!m.target.allow_plaintext_password);
            assert!(!m.target.insecure_skip_verify);
        }
    }
    // The loader ignores nothing it should not: stdout held only the config.
    assert!(dir.path().read_dir().unwrap().next().is_none());
}

#[test]
fn templates_have_the_right_ports_modes_and_auth_notes() {
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str| {
        let out = init(&["--template", name, "--output", "-"], dir.path());
        let t = text(&out.stdout);
        (
            Config::parse(&t).unwrap(),
            serde_json::from_str::<Value>(&t).unwrap(),
        )
    };
    let modes = |c: &Config| -> Vec<(String, u16, TlsMode, AuthMethod)> {
        c.monitors
            .iter()
            .map(|m| {
                (
                    m.target.host.clone(),
                    m.target.port,
                    m.target.tls,
                    m.target.auth,
                )
            })
            .collect()
    };
    let notes = |v: &Value| -> String {
        v["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["notes"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };

    let (c, _) = load("dovecot");
    assert_eq!(
        modes(&c),
        [
            (
                "mail.example.com".into(),
                995,
                TlsMode::Implicit,
                AuthMethod::Auto
            ),
            (
                "mail.example.com".into(),
                110,
                TlsMode::Starttls,
                AuthMethod::Auto
            ),
        ]
    );

    let (c, v) = load("exchange");
    assert_eq!(
        modes(&c),
        [
            (
                "mail.example.com".into(),
                995,
                TlsMode::Implicit,
                AuthMethod::Auto
            ),
            (
                "mail.example.com".into(),
                110,
                TlsMode::Starttls,
                AuthMethod::Auto
            ),
            // Exchange Online takes no password over POP3: OAuth2.
            (
                "outlook.office365.com".into(),
                995,
                TlsMode::Implicit,
                AuthMethod::Xoauth2
            ),
        ]
    );
    let n = notes(&v);
    assert!(
        n.contains("OAuth2") && n.contains("basic authentication"),
        "{n}"
    );
    for step in [
        "POP.AccessAsApp",
        "New-ServicePrincipal",
        "Add-MailboxPermission",
        "admin consent",
    ] {
        assert!(n.contains(step), "{step}: {n}");
    }

    let (c, v) = load("gmail");
    assert_eq!(
        modes(&c),
        [
            (
                "pop.gmail.com".into(),
                995,
                TlsMode::Implicit,
                AuthMethod::Auto
            ),
            (
                "pop.gmail.com".into(),
                995,
                TlsMode::Implicit,
                AuthMethod::Xoauth2
            )
        ]
    );
    let n = notes(&v);
    assert!(
        n.contains("app password")
            && n.contains("2-Step Verification")
            && n.contains("refresh token"),
        "{n}"
    );

    let (c, _) = load("generic-isp");
    assert_eq!(
        modes(&c),
        [
            (
                "pop.example.net".into(),
                995,
                TlsMode::Implicit,
                AuthMethod::Auto
            ),
            (
                "pop.example.net".into(),
                110,
                TlsMode::Starttls,
                AuthMethod::Auto
            ),
        ]
    );
}

#[test]
fn init_writes_monitors_json_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(&["--template", "gmail"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let path = dir.path().join("monitors.json");
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("pop.gmail.com"));
    assert!(text(&out.stderr).contains("pop3-probe run --config monitors.json"));

    std::fs::write(&path, "my own config").unwrap();
    let out = init(&["--template", "dovecot"], dir.path());
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "my own config");

    let out = init(&["--template", "dovecot", "--force"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("dovecot-pop3s-995"));

    let out = init(
        &["--template", "exchange", "--output", "sub/dir/x.json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("cannot write"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unknown_or_missing_template_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(&["--template", "yahoo"], dir.path());
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    for name in ["dovecot", "exchange", "gmail", "generic-isp"] {
        assert!(stderr.contains(name), "{stderr}");
    }
    let out = init(&[], dir.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("--template"));
    let out = init(&["--list", "--template", "gmail"], dir.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(dir.path().read_dir().unwrap().next().is_none());
}
