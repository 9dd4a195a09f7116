//! The response parsers on arbitrary bytes: status lines, greetings,
//! multi-line bodies (dot-unstuffing), CAPA, STAT.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_probe::pop3::response;
use pop3_probe::wire::Capabilities;

fuzz_target!(|data: &[u8]| {
    let status = response::parse_status(data);
    let greeting = response::parse_greeting(data);
    assert_eq!(status.is_ok(), greeting.is_ok());
    if let Ok(s) = &status {
        assert!(!s.text.chars().any(char::is_control));
        // What we render parses back to the same status and code.
        let again = response::parse_status(s.to_string().as_bytes()).expect("rendered line parses");
        assert_eq!(again.status, s.status);
    }
    if let Ok(g) = greeting {
        if let Some(ts) = g.apop_timestamp {
            assert!(ts.starts_with('<') && ts.ends_with('>') && ts.contains('@'));
        }
    }
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').filter_map(response::unstuff).collect();
    let caps = Capabilities::from_lines(lines);
    assert!(caps.raw.iter().all(|l| !l.chars().any(char::is_control)));
    let _ = response::parse_stat(&String::from_utf8_lossy(data));
});
