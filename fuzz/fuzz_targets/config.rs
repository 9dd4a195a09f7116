//! The config loader on arbitrary text: an error or a config, never a
//! panic, and a password never in an error message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_probe::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text) {
        Ok(c) => {
            for p in &c.problems {
                assert!(!p.error.path.is_empty());
            }
        }
        Err(e) => assert!(!e.path.is_empty()),
    }
});
