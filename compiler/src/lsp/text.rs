//! Documents as the editor sees them: text, line starts, and conversion
//! between byte offsets (what every hcpc span holds) and LSP positions
//! (line and character, counted in the negotiated encoding).
//!
//! LSP counts lines at `\n`, `\r\n` and `\r`, and characters in UTF-16 code
//! units unless client and server agreed on UTF-8. Every conversion clamps:
//! a position past the end of a line or of the document, or inside a
//! character, lands on the nearest boundary before it, so no request can
//! make the server slice text out of bounds.

use std::sync::Arc;

use lsp_types::{Position, Range};

/// How `Position::character` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// A text and where its lines start.
#[derive(Debug, Clone)]
pub struct Text {
    pub text: Arc<String>,
    /// Byte offset of the start of each line; the first is 0.
    line_starts: Vec<usize>,
}

impl Text {
    pub fn new(text: Arc<String>) -> Text {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => line_starts.push(i + 1),
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    line_starts.push(i + 2);
                    i += 1;
                }
                b'\r' => line_starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        Text { text, line_starts }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The byte range of line `line` without its line break.
    fn line_bounds(&self, line: usize) -> (usize, usize) {
        let start = self.line_starts[line];
        let mut end = self.line_starts.get(line + 1).copied().unwrap_or(self.text.len());
        let bytes = self.text.as_bytes();
        if end > start && bytes.get(end - 1) == Some(&b'\n') {
            end -= 1;
        }
        if end > start && bytes.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        (start, end)
    }

    /// The LSP position of a byte offset (clamped to the text).
    pub fn position(&self, offset: usize, enc: Encoding) -> Position {
        let offset = floor_boundary(&self.text, offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|s| *s <= offset) - 1;
        let (start, end) = self.line_bounds(line);
        let upto = &self.text[start..offset.min(end).max(start)];
        let character = match enc {
            Encoding::Utf8 => upto.len(),
            Encoding::Utf16 => upto.encode_utf16().count(),
        };
        Position { line: line as u32, character: character as u32 }
    }

    /// The byte offset of an LSP position counted in `enc` (clamped to its
    /// line and the text).
    pub fn offset(&self, pos: Position, enc: Encoding) -> usize {
        let line = pos.line as usize;
        if line >= self.line_starts.len() {
            return self.text.len();
        }
        let (start, end) = self.line_bounds(line);
        let mut units = 0usize;
        let want = pos.character as usize;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= want {
                return start + i;
            }
            units += match enc {
                Encoding::Utf8 => c.len_utf8(),
                Encoding::Utf16 => c.len_utf16(),
            };
            if units > want {
                // Inside a character: its start.
                return start + i;
            }
        }
        end
    }

    pub fn range(&self, start: usize, end: usize, enc: Encoding) -> Range {
        Range { start: self.position(start, enc), end: self.position(end.max(start), enc) }
    }
}

/// The largest char boundary at or before `i`.
pub fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Applies a `didChange` range edit (from clients that send them even
/// though the server asks for full text).
pub fn apply_change(text: &Text, r: Range, new: &str, enc: Encoding) -> String {
    let start = text.offset(r.start, enc);
    let end = text.offset(r.end, enc).max(start);
    let mut out = String::with_capacity(text.text.len() + new.len());
    out.push_str(&text.text[..start]);
    out.push_str(new);
    out.push_str(&text.text[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Text {
        Text::new(Arc::new(s.to_owned()))
    }

    #[test]
    fn utf16_counts_surrogate_pairs_and_clamps() {
        let text = t("a😀b\r\nsecond\rthird");
        let b = text.text.find('b').unwrap();
        assert_eq!(text.position(b, Encoding::Utf16), Position { line: 0, character: 3 });
        assert_eq!(text.position(b, Encoding::Utf8), Position { line: 0, character: 5 });
        assert_eq!(text.offset(Position { line: 0, character: 3 }, Encoding::Utf16), b);
        // Inside the emoji: its start.
        assert_eq!(text.offset(Position { line: 0, character: 2 }, Encoding::Utf16), 1);
        // Past the end of a line: the line's end, not the next line.
        assert_eq!(text.offset(Position { line: 0, character: 99 }, Encoding::Utf16), b + 1);
        assert_eq!(
            text.position(text.text.find("third").unwrap(), Encoding::Utf16),
            Position { line: 2, character: 0 }
        );
        assert_eq!(text.offset(Position { line: 9, character: 0 }, Encoding::Utf16), text.text.len());
    }

    #[test]
    fn range_edits_apply_in_either_encoding() {
        let text = t("é = 1\nx");
        let r = Range { start: Position { line: 0, character: 4 }, end: Position { line: 0, character: 5 } };
        assert_eq!(apply_change(&text, r, "2", Encoding::Utf16), "é = 2\nx");
        let r = Range { start: Position { line: 0, character: 5 }, end: Position { line: 0, character: 6 } };
        assert_eq!(apply_change(&text, r, "3", Encoding::Utf8), "é = 3\nx");
    }
}
