//! Nagios habits (issue 14.3) against the test Dovecot: check_pop's short
//! options, threshold ranges, plugin-style usage errors, the exit code of
//! each, and Debian's own check_pop / check_spop command definitions with
//! the binary swapped.

mod common;

use std::process::{Command, Output};

use common::dovecot::{dovecot, Dovecot};

const BIN: &str = env!("CARGO_BIN_EXE_pop3-probe");

fn check(d: &Dovecot, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("check")
        .args(args)
        .env("TEST_POP3_PASSWORD", d.get("PASSWORD"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit code and stdout; the message says both when it fails.
fn run(d: &Dovecot, args: &[&str]) -> (Option<i32>, String) {
    let out = check(d, args);
    let stdout = text(&out.stdout);
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{args:?}\n{}",
        text(&out.stderr)
    );
    (out.status.code(), stdout)
}

/// The perfdata item `label=...` of a Nagios line.
fn perf<'a>(line: &'a str, label: &str) -> &'a str {
    let (_, perf) = line.trim_end().split_once(" | ").expect("perfdata");
    perf.split(' ')
        .find_map(|i| i.strip_prefix(&format!("{label}=")))
        .unwrap_or_else(|| panic!("no {label} in {line}"))
}

/// `-H 127.0.0.1 -p <POP3S> -S --ca-file CA` and then `extra`.
fn spop(d: &Dovecot, key: &str, extra: &[&str]) -> (Option<i32>, String) {
    let port = d.get(key).to_string();
    let mut args = vec![
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-S",
        "--ca-file",
        d.get("CA_PEM"),
    ];
    args.extend(extra);
    run(d, &args)
}

#[test]
fn short_options_imply_nagios_output_and_a_greeting_check() {
    let d = dovecot();
    let (code, out) = spop(
        d,
        "POP3S_PORT",
        &["-w", "2", "-c", "5", "-t", "10", "-D", "14"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("POP3 OK - 127.0.0.1:"), "{out}");
    let time = perf(&out, "time");
    assert!(
        time.ends_with(";2.000000;5.000000;0.000000;10.000000"),
        "{time}"
    );
    // -D 14 is check_pop's: warn below 14 days, critical (default 0) when expired.
    assert!(perf(&out, "cert_days").ends_with(";14:;0:;;"), "{out}");
    // Without --user, no login: nothing about a mailbox.
    assert!(!out.contains("messages="), "{out}");

    // With --user and a password it logs in, still Nagios output.
    let (code, out) = spop(
        d,
        "POP3S_PORT",
        &[
            "--user",
            d.get("USER"),
            "--password-env",
            "TEST_POP3_PASSWORD",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        perf(&out, "messages"),
        format!("{};;;0", d.get("MSG_COUNT"))
    );

    // --format still wins over the implied one.
    let (code, out) = spop(d, "POP3S_PORT", &["--format", "human"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("UP 127.0.0.1:"), "{out}");
}

#[test]
fn each_threshold_form_gives_its_exit_code() {
    let d = dovecot();
    // (extra args, exit code, state word, perfdata label, what it ends with)
    let cases: &[(&[&str], i32, &str, &str, &str)] = &[
        // A plain number is seconds; tiny thresholds make any probe slow.
        (
            &["-w", "0.000001", "-c", "9"],
            1,
            "WARNING",
            "time",
            ";0.000001;9.000000;0.000000;10.000000",
        ),
        (
            &["-c", "0.000001"],
            2,
            "CRITICAL",
            "time",
            ";0.000001;0.000001;0.000000;10.000000",
        ),
        (
            &["-w", "~:0.000001"],
            1,
            "WARNING",
            "time",
            ";0.000001;8.000000;0.000000;10.000000",
        ),
        // Ranges the engine cannot express, rated after the probe.
        (
            &["-w", "@0:3600"],
            1,
            "WARNING",
            "time",
            ";@0.000000:3600.000000;8.000000;0.000000;10.000000",
        ),
        (
            &["-c", "3000:"],
            2,
            "CRITICAL",
            "time",
            ";2.000000;3000.000000:;0.000000;10.000000",
        ),
        (
            &["-w", "3000:3600", "-c", "@3000:3600"],
            1,
            "WARNING",
            "time",
            ";3000.000000:3600.000000;@3000.000000:3600.000000;",
        ),
        (
            &["-w", "@3000:3600", "-c", "@1000:2000"],
            0,
            "OK",
            "time",
            ";@3000.000000:3600.000000;@1000.000000:2000.000000;",
        ),
        // Certificate days (the test certificate has about a year left).
        (&["-D", "3000"], 1, "WARNING", "cert_days", ";3000:;0:;;"),
        (
            &["-D", "10,3000"],
            2,
            "CRITICAL",
            "cert_days",
            ";10:;3000:;;",
        ),
        (
            &["-D", "@0:3650"],
            1,
            "WARNING",
            "cert_days",
            ";@0:3650;0:;;",
        ),
        (
            &["-D", "10,@1:3650"],
            2,
            "CRITICAL",
            "cert_days",
            ";10:;@1:3650;;",
        ),
        (
            &["-D", "@3000:3650,@-10:-1"],
            0,
            "OK",
            "cert_days",
            ";@3000:3650;@-10:-1;;",
        ),
        (
            &["--cert-warn-days", "3000"],
            1,
            "WARNING",
            "cert_days",
            ";3000:;;;",
        ),
        (
            &["--cert-crit-days", "3000:"],
            2,
            "CRITICAL",
            "cert_days",
            ";14:;3000:;;",
        ),
    ];
    for (extra, code, state, label, ends) in cases {
        let (got, out) = spop(d, "POP3S_PORT", extra);
        assert_eq!(got, Some(*code), "{extra:?}: {out}");
        assert!(
            out.starts_with(&format!("POP3 {state} - ")),
            "{extra:?}: {out}"
        );
        assert!(perf(&out, label).contains(ends), "{extra:?}: {out}");
    }
    // Down stays down whatever the thresholds say.
    let (code, out) = spop(d, "POP3S_EXPIRED_PORT", &["-w", "@3000:3600"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("certificate_expired"), "{out}");
    let (code, out) = spop(d, "CLOSED_PORT", &["-D", "@0:3650"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.starts_with("POP3 CRITICAL - "), "{out}");
}

#[test]
fn plain_numbers_are_seconds_for_the_long_flags_too() {
    let d = dovecot();
    let url = format!(
        "pop3s://{}@127.0.0.1:{}",
        d.get("USER"),
        d.port("POP3S_PORT")
    );
    let (code, out) = run(
        d,
        &[
            &url,
            "--password-env",
            "TEST_POP3_PASSWORD",
            "--ca-file",
            d.get("CA_PEM"),
            "--tls-server-name",
            "localhost",
            "--warn",
            "1.5",
            "--crit",
            "5",
            "--timeout",
            "6",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["warning_ms"].as_u64(), v["critical_ms"].as_u64()),
        (Some(1500), Some(5000))
    );
    // Durations still work, and the limits still hold.
    let (code, out) = run(
        d,
        &[
            &url,
            "--warn",
            "800ms",
            "--crit",
            "3s",
            "--auth",
            "none",
            "--format",
            "nagios",
            "--ca-file",
            d.get("CA_PEM"),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(perf(&out, "time").contains(";0.800000;3.000000;"), "{out}");
    let out = check(d, &[&url, "--timeout", "3601"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("at most 1h"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_in_plugin_style_are_unknown_with_the_usage_on_stdout() {
    let d = dovecot();
    let port = d.get("POP3S_PORT");
    let cases: &[(&[&str], &str)] = &[
        // clap's own errors.
        (&["-H", "127.0.0.1", "-w", "soon"], "-w"),
        (&["-H", "127.0.0.1", "-D", "14,x"], "--certificate"),
        (&["-H", "127.0.0.1", "-p", "0"], "-p"),
        (&["-H", "127.0.0.1", "-S", "--tls", "starttls"], "--tls"),
        (&["-H", "127.0.0.1", "--no-such-flag"], "--no-such-flag"),
        // How the options combine.
        (&["-w", "2"], "no server"),
        (&["-H", "127.0.0.1", "pop3s://127.0.0.1"], "-H and the URL"),
        (&["-H", "/var/run/pop3.sock"], "-H"),
        (
            &["-H", "127.0.0.1", "-p", port, "-w", "5", "-c", "2"],
            "-w (5s) must be less than -c (2s)",
        ),
        (
            &["-H", "127.0.0.1", "-c", "20", "-t", "10"],
            "-c (20s) must not exceed -t (10s)",
        ),
        (&["-H", "127.0.0.1", "--auth", "user"], "needs a user name"),
        (
            &["pop3s://127.0.0.1", "--format", "nagios", "--warn", "x"],
            "--warn",
        ),
    ];
    for (args, says) in cases {
        let out = check(d, args);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {stdout}{}",
            text(&out.stderr)
        );
        let first = stdout.lines().next().unwrap_or("");
        assert!(first.starts_with("POP3 UNKNOWN - "), "{args:?}: {stdout}");
        assert!(
            first.contains(says),
            "{args:?} does not say {says}: {stdout}"
        );
        assert!(
            stdout.contains("\nUsage:\npop3-probe check -H host"),
            "{args:?}: {stdout}"
        );
    }
    // Not plugin style: clap's error on stderr, as before, still exit 3.
    let out = check(d, &["pop3s://127.0.0.1", "--warn", "x"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("--warn"));
    // --help is not an error.
    let out = check(d, &["-H", "127.0.0.1", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    for opt in [
        "-H, --hostname",
        "-p, --port",
        "-w, --warning",
        "-c, --critical",
        "-t <SECONDS>",
        "-S, --ssl",
        "-D, --certificate",
    ] {
        assert!(text(&out.stdout).contains(opt), "--help lacks {opt}");
    }
}

/// A Nagios `command_line` with its macros filled in, the plugin's path
/// replaced by `pop3-probe check`, split as Nagios does (single quotes
/// group; nothing else is special in these definitions).
fn swapped(command_line: &str, port_from: &str, port_to: &str, arg1: &str) -> Vec<String> {
    let line = command_line
        .replace("/usr/lib/nagios/plugins/check_pop", "")
        .replace("$HOSTADDRESS$", "127.0.0.1")
        .replace("$ARG1$", arg1);
    let mut words = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    // The test Dovecot does not listen on check_spop's 995.
    words
        .into_iter()
        .map(|w| {
            if w == port_from {
                port_to.to_string()
            } else {
                w
            }
        })
        .collect()
}

/// Debian's definitions (monitoring-plugins-basic's mail.cfg), as shipped.
fn debian_command_line(name: &str) -> String {
    let cfg = [
        "/etc/nagios-plugins/config/mail.cfg",
        "/usr/share/monitoring-plugins/templates-basic/mail.cfg",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .expect("mail.cfg of monitoring-plugins-basic (scripts/packages.debian installs it)");
    let block = cfg
        .split("define command")
        .find(|b| {
            b.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["command_name", name])
        })
        .unwrap_or_else(|| panic!("no {name} in mail.cfg"));
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix("command_line"))
        .unwrap_or_else(|| panic!("no command_line for {name}"))
        .trim()
        .to_string()
}

#[test]
fn debian_check_pop_and_check_spop_definitions_work_with_the_binary_swapped() {
    let d = dovecot();
    let spop = debian_command_line("check_spop");
    assert!(spop.contains("-p 995") && spop.contains("-S"), "{spop}");
    // $ARG1$ carries what the test needs (its own CA), one argument.
    let ca = format!("--ca-file={}", d.get("CA_PEM"));
    let args = swapped(&spop, "995", d.get("POP3S_PORT"), &ca);
    let (code, out) = run(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{args:?}: {out}");
    assert!(out.starts_with("POP3 OK - 127.0.0.1:"), "{out}");
    perf(&out, "cert_days");

    // check_pop with an empty $ARG1$ (Nagios still passes '') and with
    // `-p PORT` in it (one argument, the value after a space).
    let pop = debian_command_line("check_pop");
    let args = swapped(&pop, "", "", &format!("-p {}", d.get("POP3_NOTLS_PORT")));
    let (code, out) = run(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{args:?}: {out}");
    assert!(out.starts_with("POP3 OK - 127.0.0.1:"), "{out}");
    let mut args = swapped(&pop, "", "", "");
    assert_eq!(args.last().map(String::as_str), Some(""), "{args:?}");
    args.extend(["-p".to_string(), d.get("CLOSED_PORT").to_string()]);
    let (code, out) = run(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(2), "{args:?}: {out}");
    assert!(out.starts_with("POP3 CRITICAL - "), "{out}");
}
