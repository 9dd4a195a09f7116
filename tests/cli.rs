//! The `pop3-probe check` binary: every output mode, exit codes, and no
//! password anywhere in what it prints.

mod common;

use std::process::{Command, Output};

use base64::Engine as _;
use common::dovecot::{dovecot, Dovecot};

fn check(d: &Dovecot, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .arg("check")
        .args(args)
        .env("TEST_POP3_PASSWORD", d.get("PASSWORD"))
        .output()
        .unwrap()
}

fn secret_forms(d: &Dovecot) -> Vec<String> {
    let pw = d.get("PASSWORD");
    let user = d.get("USER");
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        pw.to_string(),
        b64.encode(pw),
        b64.encode(format!("\0{user}\0{pw}")),
    ]
}

fn url(d: &Dovecot, scheme: &str, key: &str) -> String {
    format!("{scheme}://{}@127.0.0.1:{}", d.get("USER"), d.port(key))
}

#[test]
fn every_output_mode_never_shows_the_password() {
    let d = dovecot();
    let ca = d.get("CA_PEM");
    let mut runs = 0;
    for format in ["human", "json", "nagios"] {
        for auth in ["auto", "apop", "user", "sasl-plain"] {
            for (scheme, key, tls) in [
                ("pop3s", "POP3S_PORT", "implicit"),
                ("pop3", "POP3_PLAIN_STLS_PORT", "starttls"),
            ] {
                let out = check(
                    d,
                    &[
                        &url(d, scheme, key),
                        "--tls",
                        tls,
                        "--auth",
                        auth,
                        "--password-env",
                        "TEST_POP3_PASSWORD",
                        "--ca-file",
                        ca,
                        "--tls-server-name",
                        "localhost",
                        "--format",
                        format,
                        "--verbose",
                    ],
                );
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{format} {auth} {tls}\n{stdout}\n{stderr}"
                );
                for form in secret_forms(d) {
                    assert!(!stdout.contains(&form), "stdout leaks {form}:\n{stdout}");
                    assert!(!stderr.contains(&form), "stderr leaks {form}:\n{stderr}");
                }
                // --verbose shows the dialogue with the secrets masked.
                assert!(stderr.contains("***"), "{stderr}");
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 24);
}

#[test]
fn wrong_password_run_never_shows_either_password() {
    let d = dovecot();
    let out = Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .args([
            "check",
            &url(d, "pop3s", "POP3S_PORT"),
            "--auth",
            "user",
            "--password-env",
            "WRONG",
            "--ca-file",
            d.get("CA_PEM"),
            "--tls-server-name",
            "localhost",
            "--json",
            "-v",
        ])
        .env("WRONG", "Not-The-Password-77")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("Not-The-Password-77"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "down");
    assert_eq!(v["failure"], "auth_failed");
    assert_eq!(v["failed_phase"], "auth");
}

/// Nagios plugin output: `TEXT | label=value[UOM];[warn];[crit];[min];[max] ...`
fn parse_nagios(line: &str) -> (String, Vec<(String, String)>) {
    let (text, perf) = line
        .trim_end()
        .split_once(" | ")
        .expect("perfdata separator");
    let perf = perf
        .split(' ')
        .map(|item| {
            let (label, rest) = item.split_once('=').expect("label=value");
            assert!(!label.is_empty() && !label.contains(['\'', '=']));
            let value = rest.split(';').next().unwrap().to_string();
            let number: String = value
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
                .collect();
            number.parse::<f64>().unwrap_or_else(|_| panic!("{item}"));
            let uom = &value[number.len()..];
            assert!(
                ["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"].contains(&uom),
                "{item}"
            );
            (label.to_string(), value)
        })
        .collect();
    (text.to_string(), perf)
}

#[test]
fn nagios_format_and_exit_codes() {
    let d = dovecot();
    let common = [
        "--password-env",
        "TEST_POP3_PASSWORD",
        "--ca-file",
        d.get("CA_PEM"),
        "--tls-server-name",
        "localhost",
        "--format",
        "nagios",
    ];
    let ok_url = url(d, "pop3s", "POP3S_PORT");
    let mut args = vec![ok_url.as_str()];
    args.extend(common);
    let out = check(d, &args);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let (text, perf) = parse_nagios(&stdout);
    assert!(text.starts_with("POP3 OK - "), "{text}");
    let labels: Vec<&str> = perf.iter().map(|(l, _)| l.as_str()).collect();
    for l in [
        "time",
        "connect",
        "tls",
        "greeting",
        "auth",
        "stat",
        "messages",
        "size",
        "cert_days",
    ] {
        assert!(labels.contains(&l), "{l} missing from {labels:?}");
    }

    // Expired certificate: CRITICAL, exit 2.
    let bad_url = url(d, "pop3s", "POP3S_EXPIRED_PORT");
    let mut args = vec![bad_url.as_str()];
    args.extend(common);
    let out = check(d, &args);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (text, _) = parse_nagios(&stdout);
    assert!(
        text.starts_with("POP3 CRITICAL - ") && text.contains("certificate_expired"),
        "{text}"
    );

    // Slower than --warn: WARNING, exit 1 (a zero-ish threshold makes any
    // real probe slow enough, whatever the machine's speed).
    let mut args = vec![ok_url.as_str(), "--warn", "1us", "--crit", "9s"];
    args.extend(common);
    let out = check(d, &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("POP3 WARNING - "));

    // Bad usage: UNKNOWN, exit 3, still one Nagios line.
    let out = check(d, &[&ok_url, "--format", "nagios", "--auth", "user"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("POP3 UNKNOWN - "));
}

#[test]
fn human_output_has_a_phase_table() {
    let d = dovecot();
    let out = check(
        d,
        &[
            &url(d, "pop3", "POP3_PLAIN_STLS_PORT"),
            "--tls",
            "starttls",
            "--password-env",
            "TEST_POP3_PASSWORD",
            "--ca-file",
            d.get("CA_PEM"),
            "--tls-server-name",
            "localhost",
            "--capa",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("UP 127.0.0.1:"), "{stdout}");
    assert!(
        stdout.contains("caps      USER APOP PIPELINING SASL(PLAIN)"),
        "{stdout}"
    );
    for phase in [
        "resolve", "connect", "greeting", "capa", "stls", "tls", "auth", "stat", "quit",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(phase)),
            "{phase}:\n{stdout}"
        );
    }
    assert!(stdout.contains(&format!("{} messages", d.get("MSG_COUNT"))));
}

#[test]
fn usage_errors_are_unknown_and_name_the_problem() {
    let bin = env!("CARGO_BIN_EXE_pop3-probe");
    let out = Command::new(bin)
        .args(["check", "pop3://u:pw@host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("password in the URL"));
    let out = Command::new(bin)
        .args(["check", "host", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"));
    let out = Command::new(bin)
        .args([
            "check",
            "pop3s://u@host",
            "--password-env",
            "NO_SUCH_VAR_HERE",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NO_SUCH_VAR_HERE"));
    let out = Command::new(bin)
        .args(["check", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--tls",
        "--auth",
        "--user",
        "--password-env",
        "--password-file",
        "--warn",
        "--crit",
        "--timeout",
        "--ca-file",
        "--tls-server-name",
        "--allow-plaintext-password",
        "--insecure-skip-verify",
        "--format",
        "--json",
        "--verbose",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
}

/// Issue 11.6: `--timeout 3s` alone was refused (`--crit (8s) must not
/// exceed --timeout (3s)`). A threshold nobody gave follows the timeout.
#[test]
fn a_timeout_alone_is_enough() {
    let d = dovecot();
    let out = check(
        d,
        &[
            &url(d, "pop3s", "POP3S_PORT"),
            "--password-env",
            "TEST_POP3_PASSWORD",
            "--ca-file",
            d.get("CA_PEM"),
            "--tls-server-name",
            "localhost",
            "--timeout",
            "3s",
            "--json",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["status"], "up");
    assert_eq!(
        (v["warning_ms"].as_u64(), v["critical_ms"].as_u64()),
        (Some(2000), Some(3000))
    );
    // What the user did write can still conflict, and is what is named.
    let out = check(
        d,
        &[
            &url(d, "pop3s", "POP3S_PORT"),
            "--timeout",
            "3s",
            "--crit",
            "5s",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--crit (5s) must not exceed --timeout (3s)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
