//! Text from outside hcpc made safe to print: a value read from a fleet
//! file, a message from the API server. Control characters (ESC starts
//! terminal sequences that retitle windows or rewrite lines; a newline
//! forges an output line such as `Plan: 0 to add`) and bidirectional
//! overrides (which reorder what a reviewer reads) are written as escapes,
//! `\u{1b}`, the way the fleet's KDL would spell them; and a text longer
//! than a limit is cut, saying how much was left out.
//!
//! Every output format reads the same escaped text, so a terminal, a
//! GitHub annotation and a markdown comment show the same thing; JSON
//! escapes what remains itself.

use std::borrow::Cow;

/// The longest server message printed whole (Kubernetes' own messages are
/// far shorter; a webhook's can list many fields).
pub const SERVER_MESSAGE_LIMIT: usize = 2048;

/// The longest text of one diagnostic field (message, label, help).
pub const DIAGNOSTIC_LIMIT: usize = 8192;

/// Whether `c` must not reach a terminal as itself.
fn hostile(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One line of untrusted text (a server message): every control
/// character escaped, newlines included, and at most `limit` bytes kept.
pub fn line(s: &str, limit: usize) -> Cow<'_, str> {
    escaped(s, limit, false)
}

/// Text hcpc composed around untrusted values (a diagnostic): its own line
/// breaks and tabs kept, every other control character escaped, at most
/// `limit` bytes kept.
pub fn text(s: &str, limit: usize) -> Cow<'_, str> {
    escaped(s, limit, true)
}

fn escaped(s: &str, limit: usize, keep_breaks: bool) -> Cow<'_, str> {
    let keep = |c: char| !hostile(c) || (keep_breaks && (c == '\n' || c == '\t'));
    if s.len() <= limit && s.chars().all(keep) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(limit) + 16);
    for (at, c) in s.char_indices() {
        if out.len() >= limit {
            out.push_str(&format!("… ({} more bytes not shown)", s.len() - at));
            break;
        }
        match c {
            c if keep(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

/// Source text for a snippet drawn under a diagnostic: each hostile
/// character becomes `?` repeated over its UTF-8 length, so byte offsets
/// (the spans) still point at the same text.
pub fn source(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| hostile(c) && c != '\n' && c != '\t' && c != '\r') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if hostile(c) && c != '\n' && c != '\t' && c != '\r' { "?".repeat(c.len_utf8()) } else { c.to_string() }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sequences_and_forged_lines_are_escaped() {
        assert_eq!(line("ns\u{1b}]0;PWNED\u{7}x", 100), "ns\\u{1b}]0;PWNED\\u{7}x");
        assert_eq!(line("denied\nPlan: 0 to add", 100), "denied\\nPlan: 0 to add");
        assert_eq!(text("first\n  help: \u{9b}2J", 100), "first\n  help: \\u{9b}2J");
        assert_eq!(line("a\u{202e}b", 100), "a\\u{202e}b");
        assert!(matches!(line("plain text, ünïcode", 100), Cow::Borrowed(_)));
    }

    #[test]
    fn long_text_is_cut_saying_how_much() {
        let long = "x".repeat(5000);
        let cut = line(&long, 100);
        assert!(cut.starts_with(&"x".repeat(100)));
        assert!(cut.ends_with("… (4900 more bytes not shown)"), "{cut}");
    }

    #[test]
    fn source_keeps_byte_offsets() {
        let s = "a \u{1b}[2J b \u{85} c\n";
        let safe = source(s);
        assert_eq!(safe.len(), s.len());
        assert_eq!(safe, "a ?[2J b ?? c\n");
    }
}
