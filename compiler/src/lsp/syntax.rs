//! A tolerant outline of a KDL document, for answering "what is at this
//! position" while the user types.
//!
//! The `kdl` crate (used by `parse`) rejects a document with any syntax
//! error, and a document being edited is rarely valid: `replicas=` without
//! a value, an unclosed `{`, an unquoted image. The outline reads every
//! document: nodes with their name, arguments, properties and children,
//! each with byte offsets. Where the text is not valid KDL it keeps going
//! with the most likely reading (an unterminated string ends at the line's
//! end, an unclosed block at the end of the text). Diagnostics still come
//! from the real pipeline; the outline only drives completion, hover and
//! navigation.

/// A word of the source: a node name, property key or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The value, with quotes removed and escapes decoded.
    pub text: String,
    pub start: usize,
    pub end: usize,
    /// Written in quotes (or as a raw string).
    pub quoted: bool,
}

impl Word {
    /// Whether `offset` touches the word (its start, inside, or its end).
    pub fn touches(&self, offset: usize) -> bool {
        self.start <= offset && offset <= self.end
    }
}

/// An argument (`key` is `None`) or a property.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Option<Word>,
    /// Offset of the `=` of a property.
    pub eq: Option<usize>,
    /// `None` while a property is being typed (`replicas=`).
    pub value: Option<Word>,
    /// Commented out with `/-`.
    pub commented: bool,
}

impl Entry {
    pub fn end(&self) -> usize {
        self.value.as_ref().map(|v| v.end).or(self.eq.map(|e| e + 1)).or(self.key.as_ref().map(|k| k.end)).unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: Word,
    pub entries: Vec<Entry>,
    pub children: Option<Children>,
    /// Commented out with `/-`.
    pub commented: bool,
}

#[derive(Debug, Clone)]
pub struct Children {
    /// Offset of `{`.
    pub open: usize,
    /// Offset of the matching `}`, if there is one.
    pub close: Option<usize>,
    pub nodes: Vec<Node>,
    pub commented: bool,
}

impl Children {
    /// Whether `offset` is inside the braces.
    pub fn contains(&self, offset: usize) -> bool {
        self.open < offset && self.close.is_none_or(|c| offset <= c)
    }
}

impl Node {
    /// Where the node's name and entries end.
    pub fn head_end(&self) -> usize {
        self.entries.iter().map(Entry::end).max().unwrap_or(self.name.end).max(self.name.end)
    }

    /// Live arguments, in order.
    pub fn args(&self) -> impl Iterator<Item = &Word> {
        self.entries.iter().filter(|e| !e.commented && e.key.is_none()).filter_map(|e| e.value.as_ref())
    }

    pub fn arg(&self, i: usize) -> Option<&Word> {
        self.args().nth(i)
    }

    /// The live property `key`.
    pub fn prop(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| !e.commented && e.key.as_ref().is_some_and(|k| k.text == key))
    }

    /// Live child nodes.
    pub fn child_nodes(&self) -> &[Node] {
        match &self.children {
            Some(c) if !c.commented => &c.nodes,
            _ => &[],
        }
    }
}

/// Deepest block nesting the outline follows; deeper braces are read flat,
/// so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// The outline of a whole document.
pub fn outline(text: &str) -> Vec<Node> {
    let toks = lex(text);
    let mut p = Parser { toks, pos: 0 };
    p.block(0).0
}

#[derive(Debug, Clone)]
enum Tok {
    Word(Word),
    Eq(usize),
    Open(usize),
    Close(usize),
    /// A newline or `;`: the end of a node.
    End,
    Slashdash,
}

fn is_newline(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{0B}' | '\u{0C}' | '\u{2028}' | '\u{2029}')
}

/// Ends a bare word (tolerantly: `/` inside a word is kept, as in an
/// unquoted image reference being typed).
fn ends_word(c: char) -> bool {
    c.is_whitespace() || is_newline(c) || matches!(c, '{' | '}' | '(' | ')' | ';' | '"' | '=' | '\\' | '[' | ']')
}

fn lex(src: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let rest = &src[i..];
        let Some(c) = rest.chars().next() else { break };
        if is_newline(c) {
            toks.push(Tok::End);
            i += c.len_utf8();
        } else if c.is_whitespace() || c == '\u{FEFF}' {
            i += c.len_utf8();
        } else if rest.starts_with("//") {
            i += rest.find(is_newline).unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            // Unterminated: the comment runs to the end of the text.
            i += crate::fmt::block_comment_len(rest).unwrap_or(rest.len());
        } else if rest.starts_with("/-") {
            toks.push(Tok::Slashdash);
            i += 2;
        } else {
            match c {
                '\\' => {
                    // Line continuation: skip to and over the next newline.
                    let line = rest.find(is_newline).unwrap_or(rest.len());
                    let nl = rest[line..].chars().next().map_or(0, char::len_utf8);
                    let nl = if rest[line..].starts_with("\r\n") { 2 } else { nl };
                    i += line + nl;
                }
                '{' => {
                    toks.push(Tok::Open(i));
                    i += 1;
                }
                '}' => {
                    toks.push(Tok::Close(i));
                    i += 1;
                }
                ';' => {
                    toks.push(Tok::End);
                    i += 1;
                }
                '=' => {
                    toks.push(Tok::Eq(i));
                    i += 1;
                }
                '(' => {
                    // A type annotation: skipped up to `)` on the same line.
                    let len = match rest.find([')', '\n', '\r']) {
                        Some(j) if rest[j..].starts_with(')') => j + 1,
                        Some(j) => j,
                        None => rest.len(),
                    };
                    i += len.max(1);
                }
                '"' => {
                    let (word, len) = quoted(rest, i);
                    toks.push(Tok::Word(word));
                    i += len;
                }
                '#' if rest[1..].starts_with(['"', '#']) => match raw(rest, i) {
                    Some((word, len)) => {
                        toks.push(Tok::Word(word));
                        i += len;
                    }
                    None => i += bare(rest, i, &mut toks),
                },
                _ => i += bare(rest, i, &mut toks),
            }
        }
    }
    toks
}

fn bare(rest: &str, at: usize, toks: &mut Vec<Tok>) -> usize {
    let mut len = 0;
    for (j, c) in rest.char_indices() {
        let after = &rest[j..];
        if ends_word(c) || after.starts_with("//") || after.starts_with("/*") || (j > 0 && after.starts_with("/-")) {
            break;
        }
        len = j + c.len_utf8();
    }
    let len = len.max(rest.chars().next().map_or(1, char::len_utf8));
    toks.push(Tok::Word(Word { text: rest[..len].to_owned(), start: at, end: at + len, quoted: false }));
    len
}

/// A quoted string at the start of `s`: single-line (ending at its quote or,
/// unterminated, at the line's end) or multi-line (`"""`).
fn quoted(s: &str, at: usize) -> (Word, usize) {
    if let Some(body) = s.strip_prefix("\"\"\"") {
        let len = body.find("\"\"\"").map_or(s.len(), |j| j + 6);
        let inner = body.get(..len.saturating_sub(6)).unwrap_or(body);
        return (Word { text: inner.to_owned(), start: at, end: at + len, quoted: true }, len);
    }
    let mut text = String::new();
    let mut chars = s.char_indices().skip(1).peekable();
    let mut end = s.len();
    while let Some((j, c)) = chars.next() {
        match c {
            '"' => {
                end = j + 1;
                break;
            }
            c if is_newline(c) => {
                end = j;
                break;
            }
            '\\' => match chars.next() {
                Some((_, 'n')) => text.push('\n'),
                Some((_, 'r')) => text.push('\r'),
                Some((_, 't')) => text.push('\t'),
                Some((_, 's')) => text.push(' '),
                Some((_, 'b')) => text.push('\u{8}'),
                Some((_, 'f')) => text.push('\u{C}'),
                Some((_, 'u')) => {
                    let mut hex = String::new();
                    if chars.peek().is_some_and(|(_, c)| *c == '{') {
                        chars.next();
                        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '}' && !is_newline(*c)) {
                            hex.push(c);
                        }
                        chars.next_if(|(_, c)| *c == '}');
                    }
                    text.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
                }
                Some((_, c)) if c.is_whitespace() || is_newline(c) => {
                    // Whitespace escape: skips all whitespace that follows.
                    while chars.next_if(|(_, c)| c.is_whitespace() || is_newline(*c)).is_some() {}
                }
                Some((_, c)) => text.push(c),
                None => {}
            },
            c => text.push(c),
        }
    }
    (Word { text, start: at, end: at + end, quoted: true }, end)
}

/// A raw string `#"…"#` (any number of `#`) at the start of `s`.
fn raw(s: &str, at: usize) -> Option<(Word, usize)> {
    let hashes = s.bytes().take_while(|b| *b == b'#').count();
    let body = s[hashes..].strip_prefix('"')?;
    let (open, body) = match body.strip_prefix("\"\"") {
        Some(b) => (hashes + 3, b),
        None => (hashes + 1, body),
    };
    let close = format!("{}{}", if open > hashes + 1 { "\"\"\"" } else { "\"" }, "#".repeat(hashes));
    let (inner, len) = match body.find(&close) {
        Some(j) => (&body[..j], open + j + close.len()),
        None => {
            let line = body.find(is_newline).unwrap_or(body.len());
            (&body[..line], open + line)
        }
    };
    Some((Word { text: inner.to_owned(), start: at, end: at + len, quoted: true }, len))
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// Nodes up to the `}` closing this block (returned) or the end.
    fn block(&mut self, depth: usize) -> (Vec<Node>, Option<usize>) {
        let mut nodes = Vec::new();
        let mut commented = false;
        while let Some(tok) = self.next() {
            match tok {
                Tok::Close(at) if depth > 0 => return (nodes, Some(at)),
                Tok::Close(_) | Tok::End | Tok::Eq(_) => commented = false,
                Tok::Slashdash => commented = true,
                Tok::Open(_) => {
                    // A block without a node: read and drop it.
                    if depth < MAX_DEPTH {
                        self.block(depth + 1);
                    }
                    commented = false;
                }
                Tok::Word(name) => {
                    nodes.push(self.node(name, commented, depth));
                    commented = false;
                }
            }
        }
        (nodes, None)
    }

    fn node(&mut self, name: Word, commented: bool, depth: usize) -> Node {
        let mut node = Node { name, entries: Vec::new(), children: None, commented };
        let mut slashdash = false;
        while let Some(tok) = self.peek() {
            match tok {
                Tok::End | Tok::Close(_) => break,
                Tok::Slashdash => {
                    self.pos += 1;
                    slashdash = true;
                }
                Tok::Eq(at) => {
                    // `=` without a key: keep its value as an argument.
                    let at = *at;
                    self.pos += 1;
                    let value = self.value_after();
                    node.entries.push(Entry { key: None, eq: Some(at), value, commented: slashdash });
                    slashdash = false;
                }
                Tok::Word(_) => {
                    let Some(Tok::Word(w)) = self.next() else { break };
                    if let Some(Tok::Eq(at)) = self.peek() {
                        let at = *at;
                        self.pos += 1;
                        let value = self.value_after();
                        node.entries.push(Entry { key: Some(w), eq: Some(at), value, commented: slashdash });
                    } else {
                        node.entries.push(Entry { key: None, eq: None, value: Some(w), commented: slashdash });
                    }
                    slashdash = false;
                }
                Tok::Open(open) => {
                    let open = *open;
                    self.pos += 1;
                    let (nodes, close) = if depth < MAX_DEPTH { self.block(depth + 1) } else { (Vec::new(), None) };
                    let children = Children { open, close, nodes, commented: slashdash };
                    if slashdash {
                        slashdash = false;
                        if node.children.is_none() {
                            node.children = Some(children);
                        }
                        continue;
                    }
                    node.children = Some(children);
                    break;
                }
            }
        }
        node
    }

    /// The value right after a property's `=`, if one follows.
    fn value_after(&mut self) -> Option<Word> {
        match self.peek() {
            Some(Tok::Word(_)) => match self.next() {
                Some(Tok::Word(w)) => Some(w),
                _ => None,
            },
            _ => None,
        }
    }
}

/// What the cursor is on.
#[derive(Debug)]
pub enum Spot<'a> {
    /// Where a node name goes: an empty line, or the name of `node`.
    NodeName { node: Option<&'a Node> },
    /// A property key (`key` of `entry`).
    Key { node: &'a Node, entry: &'a Entry },
    /// A property's value, or the place after its `=`.
    PropValue { node: &'a Node, entry: &'a Entry },
    /// A word in argument position: the `index`-th argument, or the start of
    /// a property key being typed.
    Arg { node: &'a Node, word: &'a Word, index: usize },
    /// Space in a node's head where a new argument or property goes.
    NewEntry { node: &'a Node, index: usize },
}

/// The cursor in a document: the nodes whose blocks enclose it (outermost
/// first) and what it is on.
#[derive(Debug)]
pub struct Cursor<'a> {
    pub path: Vec<&'a Node>,
    pub spot: Spot<'a>,
}

/// Finds what is at `offset` in `nodes` (an outline of `text`).
pub fn cursor<'a>(nodes: &'a [Node], text: &str, offset: usize) -> Cursor<'a> {
    let mut path = Vec::new();
    let mut block = nodes;
    'descend: loop {
        for node in block {
            if let Some(ch) = &node.children
                && ch.contains(offset)
            {
                path.push(node);
                block = &ch.nodes;
                continue 'descend;
            }
        }
        for node in block {
            if let Some(spot) = in_head(node, text, offset) {
                return Cursor { path, spot };
            }
        }
        return Cursor { path, spot: Spot::NodeName { node: None } };
    }
}

/// What `offset` is on within `node`'s head (name and entries), if it is in
/// the head at all: on the name, an entry, or the spaces after them on the
/// same line.
fn in_head<'a>(node: &'a Node, text: &str, offset: usize) -> Option<Spot<'a>> {
    if offset < node.name.start {
        return None;
    }
    if node.name.touches(offset) {
        return Some(Spot::NodeName { node: Some(node) });
    }
    let end = node.head_end();
    let head_limit = node.children.as_ref().map_or(usize::MAX, |c| c.open);
    if offset > head_limit {
        return None;
    }
    if offset > end {
        // Only blanks between the head and the cursor: still in this node.
        let gap = text.get(end..offset)?;
        if gap.chars().any(|c| !(c == ' ' || c == '\t')) {
            return None;
        }
    }
    let mut index = 0;
    for entry in &node.entries {
        if entry.commented {
            continue;
        }
        if let Some(k) = &entry.key
            && k.touches(offset)
        {
            return Some(Spot::Key { node, entry });
        }
        if entry.key.is_some() {
            let after_eq = entry.eq.is_some_and(|e| offset == e + 1);
            if after_eq || entry.value.as_ref().is_some_and(|v| v.touches(offset)) {
                return Some(Spot::PropValue { node, entry });
            }
            continue;
        }
        if let Some(v) = &entry.value {
            if v.touches(offset) {
                return Some(Spot::Arg { node, word: v, index });
            }
            if v.end <= offset {
                index += 1;
            }
        }
    }
    Some(Spot::NewEntry { node, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> (String, usize) {
        let i = text.find('|').expect("cursor");
        (text.replacen('|', "", 1), i)
    }

    #[test]
    fn reads_incomplete_documents() {
        let text = "cluster a {\n  node-pool gpu replicas= {\n    memory \"16Gi\n  host-device nvidia-a100 count=2\n";
        let nodes = outline(text);
        assert_eq!(nodes.len(), 1);
        let pool = &nodes[0].child_nodes()[0];
        assert_eq!(pool.name.text, "node-pool");
        assert_eq!(pool.prop("replicas").and_then(|e| e.value.as_ref()), None);
        let settings = pool.child_nodes();
        assert_eq!(settings[0].arg(0).map(|w| w.text.as_str()), Some("16Gi"));
        assert_eq!(settings[1].prop("count").and_then(|e| e.value.as_ref()).map(|w| w.text.as_str()), Some("2"));
    }

    #[test]
    fn decodes_strings_and_skips_comments() {
        let nodes = outline("/-a 1\nb \"x\\ty\" #\"r\\aw\"# /* c */ k=(t)v // end\nc /-{ d }\n");
        assert!(nodes[0].commented);
        let b = &nodes[1];
        let args: Vec<&str> = b.args().map(|w| w.text.as_str()).collect();
        assert_eq!(args, ["x\ty", "r\\aw"]);
        assert_eq!(b.prop("k").and_then(|e| e.value.as_ref()).map(|w| w.text.as_str()), Some("v"));
        assert!(nodes[2].child_nodes().is_empty());
    }

    #[test]
    fn finds_the_cursor() {
        let (text, i) = at("cluster a {\n    node-pool gpu rep| {\n    }\n}\n");
        let nodes = outline(&text);
        let c = cursor(&nodes, &text, i);
        assert_eq!(c.path.len(), 1);
        assert!(matches!(c.spot, Spot::Arg { index: 1, .. }));

        let (text, i) = at("cluster a {\n    node-pool gpu replicas=| {\n    }\n}\n");
        let nodes = outline(&text);
        assert!(matches!(cursor(&nodes, &text, i).spot, Spot::PropValue { .. }));

        let (text, i) = at("cluster a {\n    node-pool gpu {\n        |\n    }\n}\n");
        let nodes = outline(&text);
        let c = cursor(&nodes, &text, i);
        assert_eq!(c.path.iter().map(|n| n.name.text.as_str()).collect::<Vec<_>>(), ["cluster", "node-pool"]);
        assert!(matches!(c.spot, Spot::NodeName { node: None }));

        let (text, i) = at("cluster a {\n    etcd |\n}\n");
        let nodes = outline(&text);
        assert!(matches!(cursor(&nodes, &text, i).spot, Spot::NewEntry { index: 0, .. }));
    }

    #[test]
    fn survives_hostile_input() {
        let deep = "a {".repeat(10_000);
        let _ = outline(&deep);
        for s in ["\"", "#", "#\"", "/*", "\\", "(", "=", "}}}", "a=", "é\u{2028}", "\"\\u{", "##\"\"\"x"] {
            let nodes = outline(s);
            for i in 0..=s.len() {
                let _ = cursor(&nodes, s, i);
            }
        }
    }
}
