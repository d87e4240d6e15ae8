//! `hcpc fmt`: rewrites KDL source into hcpc's canonical layout, keeping every
//! comment.
//!
//! The canonical form:
//!
//! - one node per line, children indented by four spaces, `}` on its own line
//!   (an empty children block is written `{}`);
//! - one space between a node's name, its entries and its children block;
//! - one blank line where the source had one or more between two nodes or
//!   comments; none at the start or end of a file or block;
//! - no trailing whitespace, `\n` line endings, exactly one newline at the end;
//! - strings keep the user's choice: a bare (identifier) string stays bare,
//!   a quoted, raw or multi-line one is written as one quoted line with
//!   escapes (the docs and examples quote paths, images and quantities that
//!   KDL 2 would also read bare); numbers in decimal; `#true`, `#false`,
//!   `#null`;
//! - comments stay where they were: comments on their own line stay on their
//!   own line, comments after a node stay at the end of its line, block
//!   comments between entries stay between those entries (one inside an
//!   entry, around its `=` or in its type annotation, moves just before it),
//!   and slashdashed nodes, entries and children blocks (`/-`) are laid out
//!   like live ones.
//!
//! The kdl crate validates the input and decodes each value; the layout is
//! produced from a small concrete syntax tree built here. The crate's own
//! `autoformat` is not enough for this: it drops comments between entries,
//! slashdashed entries and children blocks, a line comment that ends a node,
//! and blank lines, and its parser does not record a comment that follows a
//! closing `}`. Every result is re-parsed and compared with the input; if the
//! two ever differed in meaning, the input would be returned unchanged rather
//! than rewritten wrongly.

#![deny(clippy::disallowed_methods)]

use kdl::{KdlDocument, KdlEntry, KdlError, KdlNode, KdlValue};

const INDENT: &str = "    ";

/// Formats one KDL 2 document. Fails only when `text` is not valid KDL 2.
pub fn format_source(text: &str) -> Result<String, KdlError> {
    let doc = KdlDocument::parse_v2(text)?;
    Ok(layout_checked(text, &doc).unwrap_or_else(|| text.to_owned()))
}

/// The canonical layout of `text`, or `None` if it could not be produced
/// with the same meaning as `doc` (the parsed `text`).
fn layout_checked(text: &str, doc: &KdlDocument) -> Option<String> {
    let toks = lex(text)?;
    let tree = Parser { toks, pos: 0 }.document()?;
    let mut out = Out::default();
    out.doc(&tree, 0);
    if out.state != LineState::Fresh {
        out.buf.push('\n');
    }
    let again = KdlDocument::parse_v2(&out.buf).ok()?;
    (Shape::doc(doc) == Shape::doc(&again)).then_some(out.buf)
}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Space,
    Newline,
    LineComment,
    BlockComment,
    Slashdash,
    Escline,
    Open,
    Close,
    Semi,
    Equals,
    LParen,
    RParen,
    /// A string, number or keyword.
    Value,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Tok,
    text: &'a str,
    /// Column (in characters) where the token starts in the source.
    col: usize,
}

const NEWLINES: [&str; 8] = ["\r\n", "\r", "\n", "\u{85}", "\u{0B}", "\u{0C}", "\u{2028}", "\u{2029}"];

fn newline_len(s: &str) -> Option<usize> {
    NEWLINES.iter().find(|n| s.starts_with(**n)).map(|n| n.len())
}

fn is_newline(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{0B}' | '\u{0C}' | '\u{2028}' | '\u{2029}')
}

fn is_space(c: char) -> bool {
    matches!(c, '\t' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}')
}

/// Code points KDL 2 forbids anywhere in a document except through escapes.
fn is_disallowed(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{E}'..='\u{1F}'
            | '\u{7F}'
            | '\u{200E}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

fn is_ident_char(c: char) -> bool {
    !(is_space(c) || is_newline(c) || is_disallowed(c) || "\\/(){}[];\"#=".contains(c))
}

/// Splits a document into tokens. `None` for input this lexer does not
/// understand (the kdl crate has already accepted it, so that is a bug here;
/// the caller then leaves the text alone).
fn lex(src: &str) -> Option<Vec<Token<'_>>> {
    let src = src.strip_prefix('\u{FEFF}').unwrap_or(src);
    let mut toks = Vec::new();
    let mut i = 0;
    let mut col = 0;
    while i < src.len() {
        let rest = &src[i..];
        let c = rest.chars().next()?;
        let (kind, len) = if let Some(n) = newline_len(rest) {
            (Tok::Newline, n)
        } else if is_space(c) {
            (Tok::Space, rest.find(|c| !is_space(c)).unwrap_or(rest.len()))
        } else if rest.starts_with("//") {
            (Tok::LineComment, rest.find(is_newline).unwrap_or(rest.len()))
        } else if rest.starts_with("/*") {
            (Tok::BlockComment, block_comment_len(rest)?)
        } else if rest.starts_with("/-") {
            (Tok::Slashdash, 2)
        } else {
            match c {
                '\\' => (Tok::Escline, 1),
                '{' => (Tok::Open, 1),
                '}' => (Tok::Close, 1),
                ';' => (Tok::Semi, 1),
                '=' => (Tok::Equals, 1),
                '(' => (Tok::LParen, 1),
                ')' => (Tok::RParen, 1),
                '"' => (Tok::Value, quoted_len(rest)?),
                '#' => (Tok::Value, hash_len(rest)?),
                c if is_ident_char(c) => (Tok::Value, rest.find(|c| !is_ident_char(c)).unwrap_or(rest.len())),
                _ => return None,
            }
        };
        if len == 0 {
            return None;
        }
        let text = &src[i..i + len];
        toks.push(Token { kind, text, col });
        i += len;
        col = match text.rfind(is_newline) {
            Some(last) => text[last..].chars().count() - 1,
            None => col + text.chars().count(),
        };
    }
    Some(toks)
}

/// Length of a (nested) block comment at the start of `s`; `None` when
/// it is not closed.
pub(crate) fn block_comment_len(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with("/*") {
            depth += 1;
            i += 2;
        } else if s[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += s[i..].chars().next()?.len_utf8();
        }
    }
    None
}

/// Length of a quoted (single- or multi-line) string at the start of `s`.
fn quoted_len(s: &str) -> Option<usize> {
    let (mut i, close) = if s.starts_with("\"\"\"") { (3, "\"\"\"") } else { (1, "\"") };
    while i < s.len() {
        let rest = &s[i..];
        if let Some(escaped) = rest.strip_prefix('\\') {
            i += 1 + escaped.chars().next().map_or(0, char::len_utf8);
        } else if rest.starts_with(close) {
            return Some(i + close.len());
        } else {
            i += rest.chars().next()?.len_utf8();
        }
    }
    None
}

/// Length of a raw string (`#"…"#`, `#"""…"""#`) or a keyword (`#true`) at
/// the start of `s`.
fn hash_len(s: &str) -> Option<usize> {
    let hashes = s.find(|c| c != '#').unwrap_or(s.len());
    let body = &s[hashes..];
    if !body.starts_with('"') {
        return Some(1 + s[1..].find(|c| !is_ident_char(c)).unwrap_or(s.len() - 1));
    }
    let quotes = if body.starts_with("\"\"\"") { "\"\"\"" } else { "\"" };
    let close = format!("{quotes}{}", "#".repeat(hashes));
    let from = hashes + quotes.len();
    Some(from + s[from..].find(&close)? + close.len())
}

// ---------------------------------------------------------------------------
// Concrete syntax tree

#[derive(Debug)]
struct Doc {
    items: Vec<Item>,
}

#[derive(Debug)]
struct Item {
    /// A newline separates this item from the previous one (or from the
    /// start of its block).
    newline_before: bool,
    /// A blank line does.
    blank_before: bool,
    kind: ItemKind,
}

#[derive(Debug)]
enum ItemKind {
    Comment(Comment),
    Node(Node),
}

#[derive(Debug, Clone)]
struct Comment {
    text: String,
    /// `//` rather than `/* */`.
    line: bool,
    /// Source column of the comment's first character.
    col: usize,
}

#[derive(Debug)]
struct Node {
    slashdash: bool,
    /// The node's name, with its type annotation, in canonical form.
    head: String,
    parts: Vec<Part>,
    /// The line comment that ends the node.
    end: Option<Comment>,
}

#[derive(Debug)]
enum Part {
    /// An argument or property in canonical form (`/-` included).
    Entry(String),
    /// A block comment between entries.
    Comment(Comment),
    /// A line comment after an escaped line break (`\ // …`): the node goes
    /// on on the next line.
    Break(Comment),
    Children {
        slashdash: bool,
        doc: Doc,
    },
    /// A newline after a slashdash; only seen while parsing.
    Newline,
}

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Tok> {
        self.toks.get(self.pos).map(|t| t.kind)
    }

    fn bump(&mut self) -> Option<Token<'_>> {
        let t = *self.toks.get(self.pos)?;
        self.pos += 1;
        Some(t)
    }

    fn comment(&self) -> Comment {
        let t = &self.toks[self.pos];
        Comment { text: t.text.to_owned(), line: t.kind == Tok::LineComment, col: t.col }
    }

    fn document(mut self) -> Option<Doc> {
        let doc = self.nodes(false)?;
        (self.pos == self.toks.len()).then_some(doc)
    }

    /// `nodes` up to the end of the input or, in a children block, up to the
    /// closing `}` (not consumed).
    fn nodes(&mut self, nested: bool) -> Option<Doc> {
        let mut items = Vec::new();
        let mut newlines = 0usize;
        let push = |items: &mut Vec<Item>, newlines: &mut usize, kind| {
            items.push(Item { newline_before: *newlines > 0, blank_before: *newlines > 1, kind });
            *newlines = 0;
        };
        while let Some(kind) = self.peek() {
            match kind {
                Tok::Close if nested => break,
                Tok::Space | Tok::Escline | Tok::Semi => self.pos += 1,
                Tok::Newline => {
                    newlines += 1;
                    self.pos += 1;
                }
                Tok::LineComment | Tok::BlockComment => {
                    let c = self.comment();
                    self.pos += 1;
                    push(&mut items, &mut newlines, ItemKind::Comment(c));
                }
                Tok::Slashdash | Tok::LParen | Tok::Value => {
                    let slashdash = kind == Tok::Slashdash;
                    let mut lead = Vec::new();
                    if slashdash {
                        self.pos += 1;
                        self.gap(&mut lead, true)?;
                    }
                    let node = self.node(slashdash, &mut lead)?;
                    for part in lead {
                        match part {
                            Part::Comment(c) | Part::Break(c) => push(&mut items, &mut newlines, ItemKind::Comment(c)),
                            Part::Newline => newlines += 1,
                            Part::Entry(_) | Part::Children { .. } => return None,
                        }
                    }
                    push(&mut items, &mut newlines, ItemKind::Node(node));
                }
                _ => return None,
            }
        }
        Some(Doc { items })
    }

    /// Whitespace, comments and escaped newlines between tokens of one node.
    /// Block comments become `Part::Comment`, line comments `Part::Break`.
    /// With `newlines` (after a slashdash) plain newlines and line comments
    /// may appear too; newlines are recorded as `Part::Newline`.
    fn gap(&mut self, parts: &mut Vec<Part>, newlines: bool) -> Option<()> {
        while let Some(kind) = self.peek() {
            match kind {
                Tok::Space => self.pos += 1,
                Tok::BlockComment => {
                    parts.push(Part::Comment(self.comment()));
                    self.pos += 1;
                }
                Tok::Escline => {
                    self.pos += 1;
                    while self.peek() == Some(Tok::Space) || self.peek() == Some(Tok::BlockComment) {
                        if self.peek() == Some(Tok::BlockComment) {
                            parts.push(Part::Comment(self.comment()));
                        }
                        self.pos += 1;
                    }
                    match self.peek() {
                        Some(Tok::LineComment) => {
                            parts.push(Part::Break(self.comment()));
                            self.pos += 1;
                            if self.peek() == Some(Tok::Newline) {
                                self.pos += 1;
                            }
                        }
                        Some(Tok::Newline) => self.pos += 1,
                        None => {}
                        _ => return None,
                    }
                }
                Tok::Newline if newlines => {
                    parts.push(Part::Newline);
                    self.pos += 1;
                }
                Tok::LineComment if newlines => {
                    parts.push(Part::Break(self.comment()));
                    self.pos += 1;
                }
                _ => break,
            }
        }
        Some(())
    }

    /// A node from its type annotation or name to its terminator. Comments
    /// before the name (inside or after the type annotation) go to `lead`.
    fn node(&mut self, slashdash: bool, lead: &mut Vec<Part>) -> Option<Node> {
        let mut head = String::new();
        if self.peek() == Some(Tok::LParen) {
            head = self.annotation(lead)?;
            self.gap(lead, false)?;
        }
        head.push_str(&self.string()?);
        let mut parts = Vec::new();
        let mut end = None;
        while let Some(kind) = self.peek() {
            match kind {
                Tok::Space | Tok::BlockComment | Tok::Escline => self.gap(&mut parts, false)?,
                Tok::Newline | Tok::Close => break,
                Tok::Semi => {
                    self.pos += 1;
                    break;
                }
                Tok::LineComment => {
                    end = Some(self.comment());
                    self.pos += 1;
                    break;
                }
                Tok::Slashdash => {
                    self.pos += 1;
                    let mut gap = Vec::new();
                    self.gap(&mut gap, true)?;
                    // Newlines after `/-` are dropped; comments move before it.
                    parts.extend(gap.into_iter().filter(|p| !matches!(p, Part::Newline)));
                    if self.peek() == Some(Tok::Open) {
                        let doc = self.children()?;
                        parts.push(Part::Children { slashdash: true, doc });
                    } else {
                        let entry = self.entry(&mut parts)?;
                        parts.push(Part::Entry(format!("/-{entry}")));
                    }
                }
                Tok::Open => {
                    let doc = self.children()?;
                    parts.push(Part::Children { slashdash: false, doc });
                }
                Tok::Value | Tok::LParen => {
                    let entry = self.entry(&mut parts)?;
                    parts.push(Part::Entry(entry));
                }
                _ => return None,
            }
        }
        Some(Node { slashdash, head, parts, end })
    }

    /// `{ nodes }`.
    fn children(&mut self) -> Option<Doc> {
        self.pos += 1;
        let doc = self.nodes(true)?;
        (self.bump()?.kind == Tok::Close).then_some(doc)
    }

    /// An argument or property, in canonical form. Comments inside it (around
    /// `=`, in a type annotation) are moved to `parts`, before it.
    fn entry(&mut self, parts: &mut Vec<Part>) -> Option<String> {
        if self.peek() == Some(Tok::LParen) {
            return self.typed_value(parts);
        }
        let first = self.pos;
        (self.bump()?.kind == Tok::Value).then_some(())?;
        let mut gap = Vec::new();
        self.gap(&mut gap, false)?;
        if self.peek() == Some(Tok::Equals) {
            self.pos += 1;
            parts.extend(gap);
            self.gap(parts, false)?;
            let key = string_text(self.toks[first].text)?;
            let value = self.typed_value(parts)?;
            Some(format!("{key}={value}"))
        } else {
            self.pos = first + 1;
            value_text(self.toks[first].text)
        }
    }

    /// `(type)? value`.
    fn typed_value(&mut self, parts: &mut Vec<Part>) -> Option<String> {
        let mut out = String::new();
        if self.peek() == Some(Tok::LParen) {
            out = self.annotation(parts)?;
            self.gap(parts, false)?;
        }
        let t = self.bump()?;
        (t.kind == Tok::Value).then_some(())?;
        out.push_str(&value_text(t.text)?);
        Some(out)
    }

    /// `( type )`, as `(type)`.
    fn annotation(&mut self, parts: &mut Vec<Part>) -> Option<String> {
        self.pos += 1;
        self.gap(parts, false)?;
        let name = self.string()?;
        self.gap(parts, false)?;
        (self.bump()?.kind == Tok::RParen).then(|| format!("({name})"))
    }

    /// A string token, in canonical form.
    fn string(&mut self) -> Option<String> {
        let t = self.bump()?;
        (t.kind == Tok::Value).then_some(())?;
        string_text(t.text)
    }
}

// ---------------------------------------------------------------------------
// Values

fn decode(token: &str) -> Option<KdlValue> {
    let entry = KdlEntry::parse(token).ok()?;
    (entry.name().is_none() && entry.ty().is_none()).then(|| entry.value().clone())
}

/// Whether a string token was written bare (an identifier string) rather
/// than quoted, raw or multi-line.
fn written_bare(token: &str) -> bool {
    !token.starts_with(['"', '#'])
}

/// A decoded string, spelled as its token was: bare stays bare (it is an
/// identifier string, or the kdl crate would not have read it so), quoted
/// stays quoted.
fn string_as_written(token: &str, s: &str) -> String {
    if written_bare(token) { quote(s) } else { quote_always(s) }
}

fn string_text(token: &str) -> Option<String> {
    match decode(token)? {
        KdlValue::String(s) => Some(string_as_written(token, &s)),
        _ => None,
    }
}

/// The canonical spelling of a value token.
fn value_text(token: &str) -> Option<String> {
    Some(match decode(token)? {
        KdlValue::String(s) => string_as_written(token, &s),
        KdlValue::Integer(i) => i.to_string(),
        KdlValue::Float(f) if f.is_nan() => "#nan".to_owned(),
        KdlValue::Float(f) if f == f64::INFINITY => "#inf".to_owned(),
        KdlValue::Float(f) if f == f64::NEG_INFINITY => "#-inf".to_owned(),
        KdlValue::Float(f) => format!("{f:?}"),
        KdlValue::Bool(b) => format!("#{b}"),
        KdlValue::Null => "#null".to_owned(),
    })
}

/// Whether KDL 2 reads `s` unquoted as the string `s` (an identifier string).
fn is_bare(s: &str) -> bool {
    if s.is_empty() || !s.chars().all(is_ident_char) || matches!(s, "true" | "false" | "null" | "inf" | "-inf" | "nan")
    {
        return false;
    }
    let rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    !rest.starts_with(|c: char| c.is_ascii_digit())
}

/// A string as KDL 2 source: bare when possible, quoted otherwise.
pub fn quote(s: &str) -> String {
    if is_bare(s) {
        return s.to_owned();
    }
    quote_always(s)
}

/// A string as a quoted KDL 2 string, whatever it holds. Everything KDL 2
/// forbids raw in a document (control characters, bidi marks, U+FEFF) and
/// every newline (including U+0085, U+2028 and U+2029) is escaped, so the
/// result is always valid KDL and reads back as `s`.
pub fn quote_always(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{C}' => out.push_str("\\f"),
            c if is_newline(c) || is_disallowed(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// Layout

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum LineState {
    /// Nothing written on the current line.
    #[default]
    Fresh,
    /// Only block comments on the current line.
    Comments,
    /// A node on the current line; another node needs a new line.
    Node,
    /// The line ends in the `{` of a children block: only a line comment
    /// stays on it.
    Open,
    /// The line ends in a line comment.
    Closed,
}

#[derive(Default)]
struct Out {
    buf: String,
    state: LineState,
}

impl Out {
    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.buf.push_str(INDENT);
        }
    }

    /// Ends the current line (if anything is on it), adds a blank line if
    /// asked, and indents the next one.
    fn new_line(&mut self, blank: bool, depth: usize) {
        if self.state != LineState::Fresh {
            self.buf.push('\n');
        }
        if blank {
            self.buf.push('\n');
        }
        self.indent(depth);
        self.state = LineState::Fresh;
    }

    fn column(&self) -> usize {
        self.buf.rsplit('\n').next().map_or(0, |l| l.chars().count())
    }

    fn doc(&mut self, doc: &Doc, depth: usize) {
        for (i, item) in doc.items.iter().enumerate() {
            let blank = item.blank_before && i > 0;
            let same_line = !item.newline_before
                && match &item.kind {
                    ItemKind::Comment(c) if c.line => {
                        matches!(self.state, LineState::Comments | LineState::Node | LineState::Open)
                    }
                    _ => matches!(self.state, LineState::Comments | LineState::Node),
                };
            match &item.kind {
                ItemKind::Node(node) => {
                    if same_line && self.state == LineState::Comments {
                        self.buf.push(' ');
                    } else if self.state == LineState::Fresh {
                        self.indent(depth);
                    } else {
                        self.new_line(blank, depth);
                    }
                    self.node(node, depth);
                }
                ItemKind::Comment(c) => {
                    let after_node = same_line && self.state == LineState::Node;
                    if same_line {
                        self.buf.push(' ');
                    } else if self.state == LineState::Fresh {
                        self.indent(depth);
                    } else {
                        self.new_line(blank, depth);
                    }
                    self.comment(c);
                    self.state = if c.line {
                        LineState::Closed
                    } else if after_node {
                        LineState::Node
                    } else {
                        LineState::Comments
                    };
                }
            }
        }
    }

    fn node(&mut self, node: &Node, depth: usize) {
        if node.slashdash {
            self.buf.push_str("/-");
        }
        self.buf.push_str(&node.head);
        // A node cannot end in an escaped newline: its last line comment
        // becomes the one that ends it.
        let (parts, end) = match (&node.end, node.parts.last()) {
            (None, Some(Part::Break(c))) => (&node.parts[..node.parts.len() - 1], Some(c)),
            _ => (&node.parts[..], node.end.as_ref()),
        };
        let mut continued = false;
        let sep = |out: &mut Self, continued: &mut bool| {
            if std::mem::take(continued) {
                out.buf.push('\n');
                out.indent(depth + 1);
            } else {
                out.buf.push(' ');
            }
        };
        for part in parts {
            sep(self, &mut continued);
            match part {
                Part::Entry(text) => self.buf.push_str(text),
                Part::Comment(c) => self.comment(c),
                Part::Break(c) => {
                    self.buf.push_str("\\ ");
                    self.comment(c);
                    continued = true;
                }
                Part::Newline => {}
                Part::Children { slashdash, doc } => {
                    if *slashdash {
                        self.buf.push_str("/-");
                    }
                    self.buf.push('{');
                    if !doc.items.is_empty() {
                        self.state = LineState::Open;
                        self.doc(doc, depth + 1);
                        self.new_line(false, depth);
                    }
                    self.buf.push('}');
                }
            }
        }
        if let Some(c) = end {
            sep(self, &mut continued);
            self.comment(c);
            self.state = LineState::Closed;
        } else {
            self.state = LineState::Node;
        }
    }

    /// Writes a comment at the current position. Lines after the first of a
    /// block comment move with it, so its inner layout is kept; trailing
    /// whitespace goes and runs of blank lines collapse to one.
    fn comment(&mut self, c: &Comment) {
        let shift = self.column() as isize - c.col as isize;
        let mut lines = split_lines(&c.text);
        if let Some(first) = lines.next() {
            self.buf.push_str(first.trim_end());
        }
        let mut blank = false;
        for line in lines {
            let line = line.trim_end();
            if line.is_empty() {
                // Runs of blank lines collapse here too.
                if !blank {
                    self.buf.push('\n');
                }
                blank = true;
                continue;
            }
            blank = false;
            self.buf.push('\n');
            if shift >= 0 {
                self.buf.extend(std::iter::repeat_n(' ', shift.unsigned_abs()));
                self.buf.push_str(line);
            } else {
                let mut rest = line;
                for _ in 0..shift.unsigned_abs() {
                    match rest.strip_prefix([' ', '\t']) {
                        Some(r) => rest = r,
                        None => break,
                    }
                }
                self.buf.push_str(rest);
            }
        }
    }
}

/// Splits text on every KDL newline.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(is_newline) {
            Some(i) => {
                let n = newline_len(&s[i..]).unwrap_or(1);
                rest = Some(&s[i + n..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Meaning

/// What a document means, without its formatting: node types, names,
/// entries and values, and children.
#[derive(Debug, PartialEq)]
struct Shape {
    ty: Option<String>,
    name: String,
    entries: Vec<(Option<String>, Option<String>, Val)>,
    children: Option<Vec<Shape>>,
}

#[derive(Debug, PartialEq)]
enum Val {
    String(String),
    Integer(i128),
    /// Compared bit for bit.
    Float(u64),
    Bool(bool),
    Null,
}

impl Shape {
    fn doc(doc: &KdlDocument) -> Vec<Shape> {
        doc.nodes().iter().map(Shape::node).collect()
    }

    fn node(node: &KdlNode) -> Shape {
        Shape {
            ty: node.ty().map(|t| t.value().to_owned()),
            name: node.name().value().to_owned(),
            entries: node
                .entries()
                .iter()
                .map(|e| {
                    let val = match e.value() {
                        KdlValue::String(s) => Val::String(s.clone()),
                        KdlValue::Integer(i) => Val::Integer(*i),
                        KdlValue::Float(f) => Val::Float(f.to_bits()),
                        KdlValue::Bool(b) => Val::Bool(*b),
                        KdlValue::Null => Val::Null,
                    };
                    (e.name().map(|n| n.value().to_owned()), e.ty().map(|t| t.value().to_owned()), val)
                })
                .collect(),
            children: node.children().map(Shape::doc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats `text`, failing the test if the layout could not be produced
    /// (rather than silently getting the input back).
    fn fmt(text: &str) -> String {
        let doc = KdlDocument::parse_v2(text).expect("test input is valid KDL");
        layout_checked(text, &doc).expect("canonical layout")
    }

    fn meaning(text: &str) -> Vec<Shape> {
        Shape::doc(&KdlDocument::parse_v2(text).expect("valid KDL"))
    }

    /// Formatting is idempotent and keeps the meaning.
    fn check(input: &str, expected: &str) {
        let out = fmt(input);
        assert_eq!(out, expected, "formatting\n{input}");
        assert_eq!(fmt(&out), out, "formatting twice\n{input}");
        assert_eq!(meaning(&out), meaning(input), "meaning of\n{input}");
    }

    const SPEC_EXAMPLE: &str = r#"// fleet.kdl
target kube context="mgmt"          // or: target dir "rendered/"

defaults {
    namespace clusters
    release "quay.io/openshift-release-dev/ocp-release:4.17.3-multi"
    pull-secret file="secrets/pull-secret.json"
    node-pool {
        cores 2
        memory "8Gi"
    }
}

infra {
    storage-class ocs-storagecluster-ceph-rbd access=RWX volume-mode=Block default=#true
    storage-class lvm-storageclass access=RWO
    snapshot-class ocs-storagecluster-rbdplugin-snapclass
    host-device nvidia-a100 capacity=8
}

cluster example {
    ssh-key file="~/.ssh/id_ed25519.pub"
    etcd storage-class=lvm-storageclass size="8Gi"

    storage {
        group ceph {
            class ocs-storagecluster-ceph-rbd hosted=ceph-rbd
            snapshot-class ocs-storagecluster-rbdplugin-snapclass hosted=ceph-snap
        }
        class nfs-rwx hosted=nfs
    }

    node-pool workers replicas=2

    node-pool gpu replicas=3 {
        memory "16Gi"
        root-volume storage-class=ocs-storagecluster-ceph-rbd size="64Gi" cache=pvc
        host-device nvidia-a100 count=2
        host-device nvidia-t4
    }
}
"#;

    #[test]
    fn spec_example_changes_only_comment_spacing() {
        let expected =
            SPEC_EXAMPLE.replace("target kube context=\"mgmt\"          // or", "target kube context=\"mgmt\" // or");
        check(SPEC_EXAMPLE, &expected);
    }

    #[test]
    fn spec_example_reindented_comes_back() {
        let messy: String = SPEC_EXAMPLE
            .lines()
            .map(|l| format!("\t{}  \r\n", l.trim_start()))
            .collect::<String>()
            .replace("\r\n\r\n", "\r\n\r\n\r\n\r\n");
        let expected = fmt(SPEC_EXAMPLE);
        assert_eq!(fmt(&messy), expected);
    }

    #[test]
    fn every_kind_of_comment_is_kept() {
        let input = r#"// file header

/* block
   before a node */
target kube   context="mgmt"   // trailing
cluster   "a" /* between */ x=1 /-y=2 /-"skipped" {
  /- pool one
  node-pool two replicas=3 // inline
  // last in block
} // after the brace
/-cluster gone {
  release "x"
}
cluster b /-{ release y } // end
// end of file
"#;
        let expected = r#"// file header

/* block
   before a node */
target kube context="mgmt" // trailing
cluster "a" /* between */ x=1 /-y=2 /-"skipped" {
    /-pool one
    node-pool two replicas=3 // inline
    // last in block
} // after the brace
/-cluster gone {
    release "x"
}
cluster b /-{
    release y
} // end
// end of file
"#;
        check(input, expected);
    }

    #[test]
    fn comments_inside_entries_move_before_them() {
        check("a key /* k */ = /* v */ 1 (/* t */ u8)2\n", "a /* k */ /* v */ key=1 /* t */ (u8)2\n");
    }

    #[test]
    fn comment_blocks_open_and_close_on_their_own_lines() {
        check("a { // open\n b }\n", "a { // open\n    b\n}\n");
        check("a { /* c */ b }\n", "a {\n    /* c */ b\n}\n");
        check("a { /* c */ }\n", "a {\n    /* c */\n}\n");
        check("a {\n\n}\nb { }\n", "a {}\nb {}\n");
    }

    #[test]
    fn multi_line_block_comments_move_with_their_start() {
        check("a {\n        /* one\n           two */\n  b\n}\n", "a {\n    /* one\n       two */\n    b\n}\n");
    }

    #[test]
    fn escaped_newlines_are_joined_unless_they_carry_a_comment() {
        check("a 1 \\\n   2 \\ // why\n 3\n", "a 1 2 \\ // why\n    3\n");
        check("a 1 \\ // only\n", "a 1 // only\n");
        check("a /- // gone\n 1\n", "a \\ // gone\n    /-1\n");
    }

    #[test]
    fn blank_lines_collapse_and_vanish_at_edges() {
        check("\n\n\na\n\n\n\nb\nc\n\n\n", "a\n\nb\nc\n");
        check("a {\n\n  b\n\n\n  c\n\n}\n", "a {\n    b\n\n    c\n}\n");
        check("// x\n\n\n// y\na\n", "// x\n\n// y\na\n");
    }

    #[test]
    fn one_node_per_line() {
        check("a; b; c { d; e }", "a\nb\nc {\n    d\n    e\n}\n");
    }

    #[test]
    fn strings_keep_the_users_quoting() {
        check(
            r##"n "plain" "8Gi" "ns/nad" "a b" "" "true" "-" "-1x" ".5" "a:b" #"raw\n"# k="v" "a/b"=c"##,
            "n \"plain\" \"8Gi\" \"ns/nad\" \"a b\" \"\" \"true\" \"-\" \"-1x\" \".5\" \"a:b\" \"raw\\\\n\" k=\"v\" \"a/b\"=c\n",
        );
        check(
            "pull-secret file=\"pull-secret.json\"\nn plain k=v a:b\n",
            "pull-secret file=\"pull-secret.json\"\nn plain k=v a:b\n",
        );
        check("n \"\"\"\n  two\n  lines\n  \"\"\"\n", "n \"two\\nlines\"\n");
        check("n \"tab\\there\" \"\\u{2028}\" \"\\u{7f}\"\n", "n \"tab\\there\" \"\\u{2028}\" \"\\u{7f}\"\n");
    }

    #[test]
    fn numbers_and_keywords_are_canonical() {
        check(
            "n 0x1F 0o17 0b11 1_000 +5 1.50 1e3 #true #false #null #inf #-inf #nan\n",
            "n 31 15 3 1000 5 1.5 1000.0 #true #false #null #inf #-inf #nan\n",
        );
    }

    #[test]
    fn byte_order_mark_and_line_endings() {
        check("\u{feff}a 1\r\nb 2\r\n", "a 1\nb 2\n");
        check("a 1", "a 1\n");
        check("", "");
        check("\n\n", "");
        check("// only a comment", "// only a comment\n");
    }

    #[test]
    fn invalid_input_is_an_error() {
        assert!(format_source("a {").is_err());
        assert!(format_source("a b=").is_err());
        assert!(format_source("image quay.io/x:1").is_err());
        assert!(format_source("fips true").is_err());
    }

    #[test]
    fn input_the_layout_cannot_reproduce_is_left_alone() {
        // The kdl crate accepts a literal DEL in a bare string, which KDL 2
        // forbids; rather than guess, the text comes back unchanged.
        let text = "n  a\u{7f}b\n";
        assert!(KdlDocument::parse_v2(text).is_ok());
        assert_eq!(format_source(text).unwrap(), text);
    }

    #[test]
    fn format_source_agrees_with_the_checked_layout() {
        assert_eq!(format_source(SPEC_EXAMPLE).unwrap(), fmt(SPEC_EXAMPLE));
    }
}

#[cfg(test)]
mod proptests {
    //! Random small documents, written in a random (valid) style: the
    //! formatter keeps their meaning and comments and is idempotent.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Value {
        Ident(String),
        Quoted(String),
        Int(i64),
        Bool(bool),
    }

    #[derive(Debug, Clone)]
    struct Entry {
        slashdash: bool,
        comment: Option<String>,
        key: Option<Value>,
        value: Value,
    }

    #[derive(Debug, Clone)]
    struct Node {
        slashdash: bool,
        name: Value,
        entries: Vec<Entry>,
        children: Option<Vec<Item>>,
        trailing: Option<String>,
        /// Bits choosing how this node is written.
        style: u8,
    }

    #[derive(Debug, Clone)]
    enum Item {
        Node(Node),
        Line(String),
        Block(String),
        Blank,
    }

    fn ident() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9.:-]{0,6}"
            .prop_filter("keyword", |s| !matches!(s.as_str(), "true" | "false" | "null" | "inf" | "nan"))
    }

    fn string() -> impl Strategy<Value = Value> {
        prop_oneof![ident().prop_map(Value::Ident), "[a-zA-Z0-9 /:=#{}\"\\\\.-]{0,8}".prop_map(Value::Quoted)]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => string(),
            1 => any::<i64>().prop_map(Value::Int),
            1 => any::<bool>().prop_map(Value::Bool),
        ]
    }

    fn line_text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ,.*/{}\"#=-]{0,16}"
    }

    fn block_text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ,.{}\"#=\n-]{0,20}"
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (prop::bool::weighted(0.15), prop::option::weighted(0.15, block_text()), prop::option::of(string()), value())
            .prop_map(|(slashdash, comment, key, value)| Entry { slashdash, comment, key, value })
    }

    fn node(children: BoxedStrategy<Option<Vec<Item>>>) -> impl Strategy<Value = Item> {
        (
            prop::bool::weighted(0.1),
            string(),
            prop::collection::vec(entry(), 0..4),
            children,
            prop::option::weighted(0.3, line_text()),
            any::<u8>(),
        )
            .prop_map(|(slashdash, name, entries, children, trailing, style)| {
                Item::Node(Node { slashdash, name, entries, children, trailing, style })
            })
    }

    fn item() -> BoxedStrategy<Item> {
        let leaf = prop_oneof![
            4 => node(Just(None).boxed()),
            1 => line_text().prop_map(Item::Line),
            1 => block_text().prop_map(Item::Block),
            1 => Just(Item::Blank),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                4 => node(prop::option::of(prop::collection::vec(inner, 0..5)).boxed()),
                1 => line_text().prop_map(Item::Line),
                1 => block_text().prop_map(Item::Block),
                1 => Just(Item::Blank),
            ]
        })
        .boxed()
    }

    fn write_value(v: &Value, style: u8, out: &mut String) {
        match v {
            Value::Ident(s) if style & 0x20 != 0 => out.push_str(&format!("\"{s}\"")),
            Value::Ident(s) => out.push_str(s),
            Value::Quoted(s) if style & 0x80 != 0 && !s.contains('"') => out.push_str(&format!("#\"{s}\"#")),
            Value::Quoted(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
            Value::Int(i) if style & 0x40 != 0 && *i >= 0 => out.push_str(&format!("0x{i:x}")),
            Value::Int(i) if style & 0x40 != 0 => {
                let digits = i.unsigned_abs().to_string();
                out.push_str(&format!("-{}_{}", &digits[..1], &digits[1..]));
            }
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Bool(b) => out.push_str(&format!("#{b}")),
        }
    }

    fn write_items(items: &[Item], depth: usize, out: &mut String) {
        for item in items {
            let indent = "  ".repeat(depth);
            match item {
                Item::Blank => out.push('\n'),
                Item::Line(t) => out.push_str(&format!("{indent}//{t}\n")),
                Item::Block(t) => out.push_str(&format!("{indent}/*{t}*/\n")),
                Item::Node(n) => {
                    let indent = if n.style & 1 != 0 { "\t".repeat(depth) } else { indent };
                    let gap = if n.style & 2 != 0 { "   " } else { " " };
                    out.push_str(&indent);
                    if n.slashdash {
                        out.push_str(if n.style & 4 != 0 { "/- " } else { "/-" });
                    }
                    write_value(&n.name, n.style, out);
                    for e in &n.entries {
                        out.push_str(gap);
                        if n.style & 4 != 0 && n.style & 8 != 0 {
                            out.push_str("\\\n    ");
                        }
                        if let Some(c) = &e.comment {
                            out.push_str(&format!("/*{c}*/ "));
                        }
                        if e.slashdash {
                            out.push_str("/-");
                        }
                        if let Some(k) = &e.key {
                            write_value(k, n.style, out);
                            out.push_str(if n.style & 0x10 != 0 { " = " } else { "=" });
                        }
                        write_value(&e.value, n.style, out);
                    }
                    if let Some(children) = &n.children {
                        out.push_str(gap);
                        out.push_str("{\n");
                        write_items(children, depth + 1, out);
                        out.push_str(&indent);
                        out.push('}');
                    }
                    if n.style & 8 != 0 && n.style & 4 == 0 && !n.slashdash {
                        out.push(';');
                    }
                    if let Some(t) = &n.trailing {
                        out.push_str(&format!("{gap}//{t}"));
                    }
                    out.push('\n');
                }
            }
        }
    }

    fn comments(items: &[Item], out: &mut Vec<String>) {
        for item in items {
            match item {
                Item::Line(t) => out.push(format!("//{}", t.trim_end())),
                Item::Block(t) => out.extend(t.split('\n').map(|l| l.trim().to_owned()).filter(|l| !l.is_empty())),
                Item::Blank => {}
                Item::Node(n) => {
                    for e in &n.entries {
                        if let Some(c) = &e.comment {
                            out.extend(c.split('\n').map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()));
                        }
                    }
                    if let Some(t) = &n.trailing {
                        out.push(format!("//{}", t.trim_end()));
                    }
                    if let Some(children) = &n.children {
                        comments(children, out);
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn formatting_keeps_meaning_and_comments_and_is_idempotent(
            items in prop::collection::vec(item(), 0..8)
        ) {
            let mut input = String::new();
            write_items(&items, 0, &mut input);
            let doc = KdlDocument::parse_v2(&input);
            prop_assert!(doc.is_ok(), "generated input is not valid KDL:\n{}", input);
            let doc = doc.unwrap();

            let out = layout_checked(&input, &doc);
            prop_assert!(out.is_some(), "no canonical layout for:\n{}", input);
            let out = out.unwrap();
            prop_assert_eq!(format_source(&input).unwrap(), out.clone());

            let again = KdlDocument::parse_v2(&out).unwrap();
            prop_assert_eq!(Shape::doc(&again), Shape::doc(&doc));
            prop_assert_eq!(format_source(&out).unwrap(), out.clone(), "not idempotent; input:\n{}", input);

            let mut expected = Vec::new();
            comments(&items, &mut expected);
            for c in expected {
                prop_assert!(out.contains(&c), "comment {:?} lost from:\n{}\noutput:\n{}", c, input, out);
            }

            prop_assert!(out.is_empty() || (out.ends_with('\n') && !out.ends_with("\n\n")));
            prop_assert!(!out.starts_with('\n'));
            prop_assert!(!out.contains("\n\n\n"));
            for line in out.lines() {
                prop_assert_eq!(line.trim_end(), line, "trailing whitespace in:\n{}", out);
                prop_assert!(!line.starts_with('\t'), "tab indentation in:\n{}", out);
            }
        }
    }
}
