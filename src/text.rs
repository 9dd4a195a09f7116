//! Making text safe for where it is shown. A monitor name, a field name or
//! an environment variable name comes from a file or an argument someone
//! else may have written; with an `ESC ]0;…` in it, printing it changed the
//! terminal's title and drew a fake table row. A CSV cell that starts with
//! `=` runs as a formula in a spreadsheet.

/// Control characters (ESC, CR, LF, BEL, the C1 range, ...) replaced by
/// `?`, so a line stays one line and the terminal interprets nothing. `?`
/// rather than nothing: a name that is shown differently from how it is
/// written should look different.
pub fn terminal_safe(s: &str) -> String {
    if !s.chars().any(unsafe_char) {
        return s.to_string();
    }
    s.chars()
        .map(|c| if unsafe_char(c) { '?' } else { c })
        .collect()
}

/// Control characters, and the bidirectional overrides that make a
/// terminal show text in another order than it is written.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// At most `max` characters of `s`, ending in `…` when cut: for table
/// columns, which must not grow with a hostile name.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A CSV cell that a spreadsheet will not run: a cell starting with `=`,
/// `+`, `-`, `@`, TAB or CR gets a leading `'` (OWASP's rule for CSV
/// injection). Quoting for RFC 4180 is the caller's, after this.
pub fn csv_neutral(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_has_no_control_characters() {
        let hostile = "mail\u{1b}]0;owned\u{7}\r\nFAKE ROW\u{9b}31m\u{202e}x";
        let safe = terminal_safe(hostile);
        assert!(!safe.chars().any(unsafe_char), "{safe:?}");
        assert_eq!(safe, "mail?]0;owned???FAKE ROW?31m?x");
        assert_eq!(terminal_safe("plain name ü"), "plain name ü");
    }

    #[test]
    fn clipping_counts_characters() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("üüüü", 2), "ü…");
    }

    #[test]
    fn formulas_are_neutralised() {
        for s in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_neutral(s), format!("'{s}"));
        }
        assert_eq!(csv_neutral("mail-1"), "mail-1");
        assert_eq!(csv_neutral(""), "");
    }
}
