//! Text that comes from outside, made safe to show.

/// Text from outside (a KMS's error, an address, a server's reply, a file's header) made safe
/// for a log line, an error reply or a terminal: control characters (newlines that would forge
/// log lines, escape sequences) and the invisible characters that reorder or break lines
/// (bidirectional overrides, line and paragraph separators, zero-width marks) become spaces,
/// and it is bounded.
pub fn printable(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
    };
    text.chars()
        .map(|c| if hidden(c) { ' ' } else { c })
        .take(300)
        .collect()
}
