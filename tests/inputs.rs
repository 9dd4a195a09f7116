//! Bad input from the command line (issue 11.4, 11.5): every duration and
//! count has a ceiling with an error that names the flag, files are read
//! up to a cap, nothing panics, and nothing a user typed reaches the
//! terminal with its control characters. No server needed: each case is
//! refused before anything is contacted.

use std::process::{Command, Output};

fn probe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pop3-probe"))
        .args(args)
        .env("INPUTS_TEST_PW", "pw")
        .output()
        .unwrap()
}

/// Exit code and stderr; a panic (exit 101) fails with what it printed.
fn refused(args: &[&str]) -> (Option<i32>, String) {
    let out = probe(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(out.status.code(), Some(101), "{args:?} panicked:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
    (out.status.code(), stderr)
}

const HUGE: &str = "18446744073709551615s";

#[test]
fn huge_durations_and_counts_name_their_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "tcp://127.0.0.1:995", "--timeout", HUGE],
            "--timeout",
        ),
        (
            &["check", "tcp://127.0.0.1:995", "--phase-timeout", HUGE],
            "--phase-timeout",
        ),
        (&["check", "tcp://127.0.0.1:995", "--warn", HUGE], "--warn"),
        (&["check", "tcp://127.0.0.1:995", "--crit", HUGE], "--crit"),
        (
            &[
                "check",
                "127.0.0.1",
                "--auth",
                "none",
                "--cert-warn-days",
                "99999999999",
            ],
            "--cert-warn-days",
        ),
        (
            &[
                "check",
                "127.0.0.1",
                "--auth",
                "none",
                "--cert-warn-days",
                "3651",
            ],
            "--cert-warn-days",
        ),
        (&["discover", "127.0.0.1", "--timeout", HUGE], "--timeout"),
        (
            &["discover", "127.0.0.1", "--greeting-wait", HUGE],
            "--greeting-wait",
        ),
        (
            &[
                "discover",
                "127.0.0.1",
                "--max-hosts",
                "18446744073709551615",
            ],
            "--max-hosts",
        ),
        (
            &["discover", "127.0.0.1", "--max-hosts", "65537"],
            "--max-hosts",
        ),
    ];
    for (args, flag) in cases {
        let (code, stderr) = refused(args);
        assert!(
            code == Some(2) || code == Some(3),
            "{args:?}: exit {code:?}\n{stderr}"
        );
        assert!(
            stderr.contains(flag),
            "{args:?} does not name {flag}:\n{stderr}"
        );
        assert!(
            stderr.contains("at most") || stderr.contains("maximum"),
            "{args:?} does not give the limit:\n{stderr}"
        );
    }
}

#[test]
fn endless_files_are_refused_at_their_cap() {
    for (flag, args) in [
        (
            "--password-file",
            vec![
                "check",
                "pop3s://u@127.0.0.1:1",
                "--password-file",
                "/dev/zero",
            ],
        ),
        (
            "--ca-file",
            vec![
                "check",
                "127.0.0.1:1",
                "--auth",
                "none",
                "--ca-file",
                "/dev/zero",
            ],
        ),
        (
            "--ca-file",
            vec!["discover", "127.0.0.1", "--ca-file", "/dev/zero"],
        ),
    ] {
        let (code, stderr) = refused(&args);
        assert_eq!(code, Some(3), "{args:?}\n{stderr}");
        assert!(
            stderr.contains(&format!("{flag}: /dev/zero is larger than")),
            "{args:?}:\n{stderr}"
        );
    }
}

#[test]
fn what_the_user_typed_reaches_the_terminal_without_control_characters() {
    let evil = "mail\u{1b}]0;owned\u{7}\r\nUP fake 0 ms";
    let var = "NO_SUCH\u{1b}[2J_VAR";
    for args in [
        vec!["check", evil],
        vec!["check", &format!("imap://{evil}")],
        vec!["check", "pop3s://u@127.0.0.1:1", "--password-env", var],
        vec![
            "check",
            "pop3s://u@127.0.0.1:1",
            "--password-file",
            "/nonexistent/\u{1b}[31mred",
        ],
        vec!["check", evil, "--format", "nagios"],
        vec!["discover", evil],
        vec!["discover", "127.0.0.1", "--password-env", var],
    ] {
        let out = probe(&args);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(out.status.code(), Some(101), "{args:?}\n{all}");
        assert!(
            !all.contains(['\u{1b}', '\u{7}', '\r']),
            "{args:?} printed a control character: {all:?}"
        );
        // One message line, not a forged second one.
        assert!(
            !all.lines().any(|l| l.starts_with("UP fake")),
            "{args:?}: {all:?}"
        );
    }
}
