//! Stage 1: text → KDL syntax trees, one per file, in parallel.
//!
//! Each file is read by `fast` (the plain subset of KDL that configurations
//! use, about fifty times faster than the `kdl` crate) and, when that
//! declines, by the `kdl` crate, which is the reference for the language and
//! the source of every syntax diagnostic. Both build the same trees. Files
//! are parsed on all cores when there is enough text to be worth it.

#![deny(clippy::disallowed_methods)]

mod fast;

use kdl::KdlDocument;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, SourceMap, Span};

/// A parsed file.
pub struct ParsedFile {
    pub file: FileId,
    pub doc: KdlDocument,
}

/// Parses every file of the map. Files that fail to parse are left out and
/// reported; the others are returned in file order.
pub fn parse(sources: &SourceMap) -> (Vec<ParsedFile>, Diagnostics) {
    let files: Vec<(FileId, &str)> = sources.iter().map(|(id, f)| (id, f.text.as_str())).collect();
    let bytes = files.iter().map(|(_, t)| t.len()).sum();
    let results = crate::parallel::map(files, bytes, |(id, text)| (id, parse_file(text)));
    let mut diags = Diagnostics::default();
    let mut parsed = Vec::with_capacity(results.len());
    for (file, result) in results {
        match result {
            Ok(doc) => parsed.push(ParsedFile { file, doc }),
            Err(Failure::Syntax(err)) => {
                for d in report_syntax(file, err) {
                    diags.push(d);
                }
            }
            Err(Failure::TooDeep(offset)) => diags.push(
                Diagnostic::error(
                    Code::Syntax,
                    format!("nested more than {MAX_DEPTH} levels deep (blocks, block comments or `/-` chains)"),
                )
                .label(Span { file, offset, len: 1 }, "too deep")
                .help("hcpc's language nests at most four levels: close what was left open"),
            ),
        }
    }
    (parsed, diags)
}

/// Why a file has no syntax tree.
enum Failure {
    Syntax(kdl::KdlError),
    /// Nested deeper than [`MAX_DEPTH`], at this offset.
    TooDeep(usize),
}

/// One file's text to its syntax tree.
fn parse_file(text: &str) -> Result<KdlDocument, Failure> {
    if let Some(offset) = too_deep(text) {
        return Err(Failure::TooDeep(offset));
    }
    match fast::parse(text) {
        Some(doc) => Ok(doc),
        None => KdlDocument::parse_v2(text).map_err(Failure::Syntax),
    }
}

/// Most rounds of [`report_syntax`]: each fixes every mistake it was told.
const REPAIR_ROUNDS: usize = 32;

/// The syntax diagnostics of a file the kdl crate refused. The crate stops
/// at some mistakes (an unquoted `size=16Gi`), so what follows goes
/// unreported: each mistake with a known fix is reported, fixed in a
/// scratch copy, and the copy parsed again, until no known fix is left.
/// Spans point into the text as written.
fn report_syntax(file: FileId, first: kdl::KdlError) -> Vec<Diagnostic> {
    let mut scratch = first.input.to_string();
    // For each byte of the scratch copy (and its end), its offset as written.
    let mut origin: Vec<usize> = (0..=scratch.len()).collect();
    let mut out: Vec<Diagnostic> = Vec::new();
    let mut err = first;
    for _ in 0..REPAIR_ROUNDS {
        let mut fixes: Vec<(usize, usize, String)> = Vec::new();
        for mut d in syntax_diagnostics(file, &err) {
            if let Some(s) = &d.suggestion {
                fixes.push((s.span.offset, s.span.len, s.replacement.clone()));
            }
            let at = |offset: usize| origin[offset.min(origin.len() - 1)];
            for l in &mut d.labels {
                let (from, to) = (at(l.span.offset), at(l.span.offset + l.span.len));
                l.span = Span { file, offset: from, len: to.saturating_sub(from) };
            }
            if let Some(s) = &mut d.suggestion {
                let (from, to) = (at(s.span.offset), at(s.span.offset + s.span.len));
                s.span = Span { file, offset: from, len: to.saturating_sub(from) };
            }
            if !out.contains(&d) {
                out.push(d);
            }
        }
        // Last first, so earlier offsets stay put; overlapping fixes wait.
        fixes.sort();
        fixes.dedup_by(|b, a| b.0 < a.0 + a.1);
        if fixes.is_empty() {
            break;
        }
        for (at, len, with) in fixes.into_iter().rev() {
            let (Some(end), true) = (at.checked_add(len), scratch.is_char_boundary(at)) else { continue };
            if end > scratch.len() || !scratch.is_char_boundary(end) {
                continue;
            }
            let from = origin[at];
            scratch.replace_range(at..end, &with);
            origin.splice(at..end, std::iter::repeat_n(from, with.len()));
        }
        match KdlDocument::parse_v2(&scratch) {
            Ok(_) => break,
            Err(e) => err = e,
        }
    }
    out
}

/// A span that runs over several lines (the parser sometimes reports from
/// far before the mistake) is cut to its last line's text.
fn clamp_to_last_line(text: &str, offset: usize, len: usize) -> (usize, usize) {
    let end = (offset + len).min(text.len());
    let offset = offset.min(end);
    let Some(span) = text.get(offset..end) else { return (offset, len) };
    match span.rfind('\n') {
        Some(nl) => {
            let start = offset + nl + 1;
            let rest = text.get(start..end).unwrap_or("");
            let skip = rest.len() - rest.trim_start().len();
            (start + skip, end - start - skip)
        }
        None => (offset, end - offset),
    }
}

/// The one fix the quoting help names for the bare word around `at`: an
/// image, path, CIDR or quantity in quotes, or a boolean as `#true`/`#false`.
/// Returns the value's offset, length and replacement; `None` when the word
/// is not such a value (the help then stays general).
fn unquoted_fix(text: &str, at: usize) -> Option<(usize, usize, String)> {
    let stop = |c: char| c.is_whitespace() || matches!(c, ';' | '{' | '}');
    let at = (0..=at.min(text.len())).rev().find(|i| text.is_char_boundary(*i))?;
    let start = text.get(..at)?.rfind(stop).map_or(0, |i| i + 1);
    let end = text.get(at..)?.find(stop).map_or(text.len(), |i| at + i);
    let word = text.get(start..end)?;
    if word.is_empty() || word.contains(['"', '#', '(', ')', '\\']) || word.contains("//") || word.contains("/*") {
        return None;
    }
    // A property: only its value needs fixing.
    let (start, value) = match word.split_once('=') {
        Some((key, value)) if !key.is_empty() && !value.is_empty() && !value.contains('=') => {
            (start + key.len() + 1, value)
        }
        Some(_) => return None,
        None => (start, word),
    };
    if let Some(inner) = typographic_quotes(value) {
        return Some((start, value.len(), crate::fmt::quote(inner)));
    }
    let fixed = match value {
        "true" | "false" => format!("#{value}"),
        _ if value.parse::<f64>().is_ok() => return None,
        _ if value.contains(['/', ':']) || value.starts_with(|c: char| c.is_ascii_digit()) => crate::fmt::quote(value),
        _ => return None,
    };
    Some((start, value.len(), fixed))
}

/// The text inside single or typographic quotes (`'16Gi'`, `“16Gi”`,
/// `‘16Gi’`, `„16Gi“`), which KDL reads as part of a bare word.
pub fn typographic_quotes(s: &str) -> Option<&str> {
    const QUOTES: &[char] = &['\'', '“', '”', '‘', '’', '„', '«', '»'];
    let inner = s.strip_prefix(QUOTES)?.strip_suffix(QUOTES)?;
    (!inner.is_empty()).then_some(inner)
}

/// Deepest nesting accepted. The KDL parser recurses once per block (and
/// per nested comment or slashdash), so absurd nesting overflows its stack,
/// and nested slashdashed blocks take time exponential in their depth;
/// hcpc's language needs four levels at most.
pub const MAX_DEPTH: usize = 8;

/// The offset of the first `{` nested deeper than [`MAX_DEPTH`], skipping
/// strings and comments (approximately: a miscount can only reject a file
/// that is already deeper than any real configuration).
pub fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // Skip a string only if it ends: an unterminated one must
                // not hide the nesting after it.
                if b[i..].starts_with(b"\"\"\"") {
                    // Multi-line string: up to the closing triple quote.
                    if let Some(p) = b[i + 3..].windows(3).position(|w| w == b"\"\"\"") {
                        i += p + 5;
                    }
                } else {
                    // A single-line string ends at its quote, never at a newline.
                    let mut j = i + 1;
                    while j < b.len() && b[j] != b'"' && b[j] != b'\n' {
                        j += if b[j] == b'\\' { 2 } else { 1 };
                    }
                    if j < b.len() && b[j] == b'"' {
                        i = j;
                    }
                }
            }
            b'#' if b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#') => {
                // Raw string: #"…"#, ##"…"##, …
                let hashes = b[i..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + hashes) == Some(&b'"') {
                    let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                    let mut j = i + hashes + 1;
                    while j < b.len() && !b[j..].starts_with(&close) {
                        j += 1;
                    }
                    if j < b.len() {
                        i = j + close.len() - 1;
                    } else {
                        // Unterminated: step over the opener and keep counting.
                        i += hashes;
                    }
                } else {
                    i += hashes - 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'-') => {
                // Chained slashdashes (`/- /- /- …`) nest in the parser too.
                let start = i;
                let mut chain = 0;
                while b.get(i) == Some(&b'/') && b.get(i + 1) == Some(&b'-') {
                    chain += 1;
                    if chain > MAX_DEPTH {
                        return Some(start);
                    }
                    i += 2;
                    // Whitespace and block comments do not break a chain.
                    loop {
                        while i < b.len() && b[i].is_ascii_whitespace() {
                            i += 1;
                        }
                        if b.get(i) == Some(&b'/') && b.get(i + 1) == Some(&b'*') {
                            match b[i + 2..].windows(2).position(|w| w == b"*/") {
                                Some(p) => i += p + 4,
                                None => break,
                            }
                        } else {
                            break;
                        }
                    }
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = i;
                let mut level = 1;
                i += 2;
                while i < b.len() && level > 0 {
                    if b[i..].starts_with(b"/*") {
                        level += 1;
                        if level > MAX_DEPTH {
                            return Some(start);
                        }
                        i += 1;
                    } else if b[i..].starts_with(b"*/") {
                        level -= 1;
                        i += 1;
                    }
                    i += 1;
                }
                continue;
            }
            // Type annotations `(…)` nest in the parser as blocks do.
            b'{' | b'(' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            b'}' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

fn syntax_diagnostics(file: FileId, err: &kdl::KdlError) -> Vec<Diagnostic> {
    const QUOTING: &str = "KDL 2: quote strings that contain `/`, spaces or `=`, or start with a digit \
         (e.g. \"quay.io/image:tag\", cluster-cidr=\"10.0.0.0/8\"); booleans are #true and #false";
    const UNCLOSED: &str = "every `{` needs a matching `}`: close this block before the next node that is \
         not part of it (or remove the `{`)";
    let text = err.input.as_str();
    let mut out = Vec::new();
    for d in &err.diagnostics {
        let message = d.message.clone().unwrap_or_else(|| "invalid KDL".to_string());
        let (offset, len) = clamp_to_last_line(text, d.span.offset(), d.span.len());
        let snippet = text.get(offset..offset + len).unwrap_or("");
        // The parser's own advice for an unquoted image, path or CIDR is
        // about spacing; the real fix is quoting.
        let line_start = text.get(..offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
        let line_end = text.get(offset..).and_then(|t| t.find('\n')).map_or(text.len(), |i| offset + i);
        let line = text.get(line_start..line_end).unwrap_or("");
        let unquoted = snippet.contains('/')
            || snippet.contains(':')
            || snippet.starts_with(|c: char| c.is_ascii_digit())
            || ((line.contains('/') || line.contains(':')) && !line.contains('"'));
        let help = match &d.help {
            Some(h) if !unquoted => h.clone(),
            // Quoting has nothing to do with a block left open.
            None if !unquoted && (message.starts_with("No closing '}'") || message.starts_with("Closing '}'")) => {
                UNCLOSED.to_string()
            }
            _ => QUOTING.to_string(),
        };
        let quoting = help == QUOTING;
        let label = d.label.clone().unwrap_or_else(|| "here".to_string());
        // A bare `size=16Gi` is reported as a property without a value.
        let property = message.starts_with("Expected property value");
        let fix = (quoting || property).then(|| unquoted_fix(text, offset + len.saturating_sub(1))).flatten();
        // When the fix is known (an hcp-style `32Gi`, `true` or CIDR), the
        // message says it rather than the parser's "Expected …".
        let diag = match fix {
            Some((at, word_len, fixed)) => {
                let value = text.get(at..at + word_len).unwrap_or("");
                let said = if typographic_quotes(value).is_some() {
                    format!("{value} is not a string in KDL, which uses straight double quotes: write {fixed}")
                } else if fixed.starts_with('#') {
                    format!("`{value}` is not a boolean in KDL 2: write `{fixed}`")
                } else {
                    format!("`{value}` must be quoted in KDL 2: write `{fixed}`")
                };
                // Under the value itself, not the whole node.
                Diagnostic::error(Code::Syntax, said)
                    .label(
                        Span { file, offset: at, len: word_len },
                        if typographic_quotes(value).is_some() {
                            "not KDL quotes"
                        } else if fixed.starts_with('#') {
                            "not a boolean"
                        } else {
                            "not quoted"
                        },
                    )
                    .help(if typographic_quotes(value).is_some() {
                        format!("KDL uses straight double quotes: write {fixed}")
                    } else {
                        format!("write `{fixed}`: in KDL 2, quote strings that start with a digit or contain `/` or `:`; booleans are #true and #false")
                    })
                    .suggest(Span { file, offset: at, len: word_len }, fixed)
            }
            None => Diagnostic::error(Code::Syntax, message).label(Span { file, offset, len }, label).help(help),
        };
        out.push(diag);
    }
    if out.is_empty() {
        out.push(
            Diagnostic::error(Code::Syntax, "invalid KDL document")
                .label(Span { file, offset: 0, len: 0 }, "in this file")
                .help("check the file is KDL 2"),
        );
    }
    out
}
