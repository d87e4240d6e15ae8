//! A fast reader for the plain subset of KDL 2 that configurations are
//! written in, building the same `kdl` trees (values and spans) as the
//! `kdl` crate's parser does, about fifty times faster.
//!
//! The subset: nodes with bare or quoted names; arguments and `key=value`
//! properties whose values are bare strings, quoted strings with the simple
//! escapes, decimal integers and `#true`/`#false`/`#null`; child blocks;
//! `;`, newlines, `//` and `/* */` comments. Anything else (slashdash,
//! type annotations, raw and multi-line strings, floats and other number
//! forms, line continuations, spaces around `=`, unusual whitespace or
//! newline characters) makes [`parse`] return `None`, and so does any
//! syntax error: the caller then parses with the `kdl` crate, which stays
//! the reference for the language and the source of every syntax
//! diagnostic. Returning `None` is always safe; returning a tree is only
//! allowed when the `kdl` crate would return the same one, which the tests
//! below check on generated input.

use kdl::{KdlDocument, KdlEntry, KdlIdentifier, KdlNode, KdlValue};

/// Parses `text`, or returns `None` when it is outside the subset or invalid.
pub fn parse(text: &str) -> Option<KdlDocument> {
    let mut c = Cursor { b: text.as_bytes(), text, i: 0 };
    let doc = c.nodes(false)?;
    (c.i == c.b.len()).then_some(doc)
}

struct Cursor<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.b.get(self.i + n).copied()
    }

    /// `nodes`: the nodes of a document or of a child block (up to its `}`).
    fn nodes(&mut self, nested: bool) -> Option<KdlDocument> {
        self.line_space()?;
        let start = self.i;
        let mut end = start;
        let mut doc = KdlDocument::new();
        loop {
            match self.peek() {
                None if nested => return None,
                None => break,
                Some(b'}') if nested => break,
                _ => {}
            }
            let node = self.node()?;
            end = self.i;
            doc.nodes_mut().push(node);
            // The node's terminator.
            match self.peek() {
                None => {}
                Some(b'}') if nested => {}
                Some(b';' | b'\n' | b'\r') => self.i += 1,
                Some(b'/') if self.peek_at(1) == Some(b'/') => self.line_comment()?,
                _ => return None,
            }
            self.line_space()?;
        }
        doc.set_span((start, end - start));
        Some(doc)
    }

    /// One node, up to (not including) its terminator. Its span ends after
    /// the spaces that follow it, as the `kdl` crate's does.
    fn node(&mut self) -> Option<KdlNode> {
        let start = self.i;
        let name = self.name()?;
        let mut node = KdlNode::new(name);
        loop {
            let before = self.i;
            self.node_space()?;
            let spaced = self.i > before;
            match self.peek() {
                None | Some(b'\n' | b'\r' | b';' | b'}') => break,
                Some(b'/') if self.peek_at(1) == Some(b'/') => break,
                Some(b'{') if spaced => {
                    self.i += 1;
                    let children = self.nodes(true)?;
                    self.i += 1; // the `}` that ended `nodes`
                    node.set_children(children);
                    self.node_space()?;
                    match self.peek() {
                        None | Some(b'\n' | b'\r' | b';' | b'}') => break,
                        Some(b'/') if self.peek_at(1) == Some(b'/') => break,
                        _ => return None,
                    }
                }
                _ if spaced => {
                    let entry = self.entry()?;
                    node.entries_mut().push(entry);
                }
                _ => return None,
            }
        }
        node.set_span((start, self.i - start));
        Some(node)
    }

    /// A node name: a bare or quoted string.
    fn name(&mut self) -> Option<KdlIdentifier> {
        let start = self.i;
        let value = match self.peek()? {
            b'"' => self.quoted()?,
            _ => self.bare()?.to_string(),
        };
        if !self.value_ends() {
            return None;
        }
        let mut id = KdlIdentifier::from(value);
        id.set_span((start, self.i - start));
        Some(id)
    }

    /// An argument or a `key=value` property.
    fn entry(&mut self) -> Option<KdlEntry> {
        let start = self.i;
        let first = self.peek()?;
        let string = match first {
            b'"' => Some(self.quoted()?),
            b'#' | b'0'..=b'9' | b'+' | b'-' | b'.' => None,
            _ => Some(self.bare()?.to_string()),
        };
        let Some(string) = string else {
            let value = self.scalar()?;
            if !self.value_ends() || self.peek() == Some(b'=') {
                return None;
            }
            let mut e = KdlEntry::new(value);
            e.set_span((start, self.i - start));
            return Some(e);
        };
        if !self.value_ends() {
            return None;
        }
        if self.peek() == Some(b'=') {
            let mut key = KdlIdentifier::from(string);
            key.set_span((start, self.i - start));
            self.i += 1;
            let value = match self.peek()? {
                b'"' => KdlValue::String(self.quoted()?),
                b'#' | b'0'..=b'9' | b'+' | b'-' | b'.' => self.scalar()?,
                _ => KdlValue::String(self.bare()?.to_string()),
            };
            if !self.value_ends() || self.peek() == Some(b'=') {
                return None;
            }
            let mut e = KdlEntry::new_prop(key, value);
            e.set_span((start, self.i - start));
            return Some(e);
        }
        // `key =value` and `key = value` are properties too: leave them to the crate.
        let rest = &self.b[self.i..];
        let next = rest.iter().position(|c| *c != b' ' && *c != b'\t').map(|p| rest[p]);
        if next == Some(b'=') {
            return None;
        }
        let mut e = KdlEntry::new(KdlValue::String(string));
        e.set_span((start, self.i - start));
        Some(e)
    }

    /// `#true`, `#false`, `#null` or a decimal integer.
    fn scalar(&mut self) -> Option<KdlValue> {
        if self.peek() == Some(b'#') {
            let rest = &self.b[self.i + 1..];
            for (word, value) in
                [(&b"true"[..], KdlValue::Bool(true)), (b"false", KdlValue::Bool(false)), (b"null", KdlValue::Null)]
            {
                if rest.starts_with(word) {
                    self.i += 1 + word.len();
                    return Some(value);
                }
            }
            return None;
        }
        let start = self.i;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.i += 1;
        }
        let digits = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        // Floats, `_` separators, hex, octal and binary are left to the crate.
        if self.i == digits || self.i - digits > 30 || !self.value_ends() {
            return None;
        }
        self.text.get(start..self.i)?.parse::<i128>().ok().map(KdlValue::Integer)
    }

    /// An unambiguous bare string of printable ASCII (`workers`,
    /// `ocs-storagecluster-ceph-rbd`, `example.com`); not a keyword.
    fn bare(&mut self) -> Option<&str> {
        let start = self.i;
        if matches!(self.peek()?, b'0'..=b'9' | b'+' | b'-' | b'.') {
            return None;
        }
        while self.peek().is_some_and(is_bare_byte) {
            self.i += 1;
        }
        let s = self.text.get(start..self.i)?;
        match s {
            "" | "true" | "false" | "null" | "inf" | "nan" => None,
            s => Some(s),
        }
    }

    /// A single-line quoted string with the simple escapes.
    fn quoted(&mut self) -> Option<String> {
        self.i += 1; // opening quote
        if self.peek() == Some(b'"') && self.peek_at(1) == Some(b'"') {
            return None; // multi-line string
        }
        let mut out = String::new();
        loop {
            let run = self.i;
            while self.peek().is_some_and(|c| c != b'"' && c != b'\\' && (b' '..0x7f).contains(&c)) {
                self.i += 1;
            }
            out.push_str(self.text.get(run..self.i)?);
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                b'\\' => {
                    out.push(match self.peek_at(1)? {
                        b'\\' => '\\',
                        b'"' => '"',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b's' => ' ',
                        _ => return None,
                    });
                    self.i += 2;
                }
                b'\t' => {
                    out.push('\t');
                    self.i += 1;
                }
                c if c >= 0x80 => {
                    let ch = self.text.get(self.i..)?.chars().next()?;
                    if special_char(ch) {
                        return None;
                    }
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
                _ => return None, // control characters, newlines
            }
        }
    }

    /// Whether a value may end here (what follows is a space, a
    /// terminator, a brace, `=` or a comment).
    fn value_ends(&self) -> bool {
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b';' | b'{' | b'}' | b'=') => true,
            Some(b'/') => matches!(self.peek_at(1), Some(b'/' | b'*')),
            _ => false,
        }
    }

    /// Spaces, tabs and block comments inside a node.
    fn node_space(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.i += 1,
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                Some(b'\\') => return None, // line continuation
                _ => return Some(()),
            }
        }
    }

    /// Spaces, newlines and comments between nodes.
    fn line_space(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.i += 1,
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                Some(b'/') if self.peek_at(1) == Some(b'/') => self.line_comment()?,
                _ => return Some(()),
            }
        }
    }

    /// `// …` up to and including the end of the line.
    fn line_comment(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                None => return Some(()),
                Some(b'\n' | b'\r') => {
                    self.i += 1;
                    return Some(());
                }
                // Vertical tab and form feed end a line in KDL 2.
                Some(0x0b | 0x0c) => return None,
                Some(c) if c >= 0x80 => {
                    let ch = self.text.get(self.i..)?.chars().next()?;
                    if special_char(ch) {
                        return None;
                    }
                    self.i += ch.len_utf8();
                }
                Some(_) => self.i += 1,
            }
        }
    }

    /// `/* … */`, nested.
    fn block_comment(&mut self) -> Option<()> {
        self.i += 2;
        let mut depth = 1;
        while depth > 0 {
            match (self.peek()?, self.peek_at(1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.i += 2;
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    self.i += 2;
                }
                _ => self.i += 1,
            }
        }
        // Leave a comment that does not end on a character boundary to the crate.
        self.text.is_char_boundary(self.i).then_some(())
    }
}

/// Bytes of a bare string in the subset: printable ASCII except KDL's
/// delimiters.
fn is_bare_byte(c: u8) -> bool {
    (0x21..0x7f).contains(&c)
        && !matches!(c, b'\\' | b'/' | b'(' | b')' | b'{' | b'}' | b'[' | b']' | b';' | b'"' | b'#' | b'=')
}

/// Characters that KDL 2 treats as newlines, spaces or disallowed: outside
/// the subset wherever they appear.
fn special_char(c: char) -> bool {
    matches!(c,
        '\u{0085}' | '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200F}' | '\u{2028}'..='\u{202F}'
        | '\u{205F}' | '\u{2066}'..='\u{2069}' | '\u{3000}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use kdl::{KdlDocument, KdlNode};
    use proptest::prelude::*;

    /// Everything lowering reads: names, values, property keys and spans.
    fn same_doc(a: &KdlDocument, b: &KdlDocument) -> Result<(), String> {
        if a.span() != b.span() {
            return Err(format!("document span {:?} != {:?}", a.span(), b.span()));
        }
        if a.nodes().len() != b.nodes().len() {
            return Err(format!("{} nodes != {}", a.nodes().len(), b.nodes().len()));
        }
        a.nodes().iter().zip(b.nodes()).try_for_each(|(x, y)| same_node(x, y))
    }

    fn same_node(a: &KdlNode, b: &KdlNode) -> Result<(), String> {
        let name = a.name().value();
        if name != b.name().value() || a.name().span() != b.name().span() || a.span() != b.span() {
            return Err(format!(
                "node {name:?} {:?} {:?} != {:?} {:?} {:?}",
                a.name().span(),
                a.span(),
                b.name().value(),
                b.name().span(),
                b.span()
            ));
        }
        if a.ty().is_some() || b.ty().is_some() || a.entries().len() != b.entries().len() {
            return Err(format!("node {name:?}: entries or type differ"));
        }
        for (x, y) in a.entries().iter().zip(b.entries()) {
            let names = (x.name().map(|n| (n.value(), n.span())), y.name().map(|n| (n.value(), n.span())));
            if x.value() != y.value() || x.span() != y.span() || names.0 != names.1 || y.ty().is_some() {
                return Err(format!("node {name:?}: entry {x:?} != {y:?}"));
            }
        }
        match (a.children(), b.children()) {
            (None, None) => Ok(()),
            (Some(x), Some(y)) => same_doc(x, y),
            _ => Err(format!("node {name:?}: children differ")),
        }
    }

    /// The fast path must agree with the crate whenever it returns a tree.
    fn agree(text: &str) -> Result<bool, String> {
        let Some(fast) = super::parse(text) else { return Ok(false) };
        let reference = KdlDocument::parse_v2(text).map_err(|e| format!("fast path accepted invalid KDL: {e:?}"))?;
        same_doc(&fast, &reference).map(|()| true)
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // reads the examples
    fn examples_take_the_fast_path_and_agree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        let mut dirs = vec![root.join("tests/conformance")];
        for e in std::fs::read_dir(root.join("examples")).expect("examples") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            }
        }
        for dir in dirs {
            for e in std::fs::read_dir(dir).expect("examples") {
                let p = e.expect("entry").path();
                if p.extension().is_some_and(|x| x == "kdl") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() > 20);
        for p in files {
            let text = std::fs::read_to_string(&p).expect("readable");
            assert_eq!(agree(&text), Ok(true), "{}", p.display());
        }
    }

    #[test]
    fn spans_match_the_crate_around_blocks_comments_and_terminators() {
        for text in [
            "a 1 b=2 \"c d\" { x; y /* c */ z=#true\n  w }  // t\nn2 k=v\n",
            "a {}\nb { }\nc {\n}\n",
            "a{\n  b\n}\n",
            "\"quoted name\" \"k\"=\"v\" -1 +2 0 007 #null\r\nnext\rlast",
            "a \"esc \\\" \\\\ \\n \\t \\s\" // comment ü\n/* block /* nested */ */ b",
            "cluster x {\n    labels \"example.com/team\"=a b=\"ünï 😀\"\n}\n",
            "a;b;c\n;",
            "a 1; b { c; d }; e",
        ] {
            assert!(agree(text).is_ok(), "{text:?}: {:?}", agree(text));
        }
    }

    #[test]
    fn outside_the_subset_falls_back() {
        for text in [
            "/- a\nb",
            "a /-1 2",
            "(t)a",
            "a (t)1",
            "a #\"raw\"#",
            "a \"\"\"\n  x\n  \"\"\"",
            "a 1.5",
            "a 0x10",
            "a 1_000",
            "a \\\n 1",
            "a k = 1",
            "a k =1",
            "a true",
            "a \"\\u{41}\"",
            "a\u{2028}b",
            "a\u{a0}b",
            "\u{feff}a",
            "a #inf",
            "a b=c=d",
            "a\u{b}b",
        ] {
            assert!(super::parse(text).is_none(), "{text:?} should be left to the kdl crate");
        }
    }

    #[test]
    fn invalid_kdl_is_never_accepted() {
        for text in [
            "a {",
            "a }",
            "}",
            "a \"unterminated",
            "a quay.io/x",
            "a 1a",
            "a \"x\"y",
            "a b=",
            "a {} b",
            "a;;",
            "a /* open",
            "a \"line\nbreak\"",
            "a #truex",
            "a =1",
            "{ a }",
        ] {
            assert_eq!(super::parse(text).map(|d| d.to_string()), None, "{text:?}");
            assert_eq!(agree(text), Ok(false));
        }
    }

    /// Pieces of KDL, valid and not, in and out of the subset.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "node",
            "cluster",
            "a-b",
            "x.y",
            "k",
            "=",
            "\"q\"",
            "\"s p\"",
            "\"e\\\"\\n\"",
            "\"ü\"",
            "\"\"",
            "1",
            "-2",
            "+3",
            "007",
            "1.5",
            "1e3",
            "0x1f",
            "1_0",
            "#true",
            "#false",
            "#null",
            "#inf",
            "#\"r\"#",
            "true",
            " ",
            "  ",
            "\t",
            "\n",
            "\r\n",
            "\r",
            ";",
            "{",
            "}",
            "{ }",
            "// c\n",
            "// c",
            "/* c */",
            "/* /* n */ */",
            "/*",
            "*/",
            "/-",
            "(t)",
            "\\\n",
            "\\",
            "\u{a0}",
            "\u{2028}",
            "\u{b}",
            "ü",
            "/",
            "\"\"\"\n x\n \"\"\"",
            "-",
            ".5",
            "null",
        ])
    }

    fn document() -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 0..40).prop_map(|v| v.concat())
    }

    /// Documents made of valid nodes and blocks, so that most take the fast path.
    fn structured() -> impl Strategy<Value = String> {
        let value = prop::sample::select(vec!["v", "\"s\"", "1", "-4", "#true", "#null", "\"a b\"", "x.y", "\"ü\""]);
        let entry = (prop::bool::ANY, prop::sample::select(vec!["k", "key", "\"q k\""]), value)
            .prop_map(|(prop, k, v)| if prop { format!("{k}={v}") } else { v.to_string() });
        let space = prop::sample::select(vec![" ", "  ", "\t", " /* c */ "]);
        let head =
            (prop::sample::select(vec!["n", "node-pool", "\"quoted\""]), prop::collection::vec((space, entry), 0..4))
                .prop_map(|(name, entries)| {
                    let mut s = name.to_string();
                    for (sp, e) in entries {
                        s.push_str(sp);
                        s.push_str(&e);
                    }
                    s
                });
        let sep = prop::sample::select(vec!["\n", ";", "; ", " // c\n", "\r\n", "\n\n  ", "  \n", "\n/* b */\n"]);
        let leaf = (head.clone(), sep.clone()).prop_map(|(h, s)| format!("{h}{s}"));
        let nodes = leaf.prop_recursive(3, 24, 4, move |inner| {
            (
                head.clone(),
                prop::sample::select(vec![" {", " {\n", " { "]),
                prop::collection::vec(inner, 0..4),
                prop::sample::select(vec!["}", " }", "\n}"]),
                sep.clone(),
            )
                .prop_map(|(h, open, children, close, s)| format!("{h}{open}{}{close}{s}", children.concat()))
        });
        prop::collection::vec(nodes, 1..8).prop_map(|v| v.concat())
    }

    /// The generated node lists mostly take the fast path, so the
    /// comparison above is not vacuous.
    #[test]
    fn generated_node_lists_mostly_take_the_fast_path() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = structured();
        let mut fast = 0;
        for _ in 0..500 {
            let text = strategy.new_tree(&mut runner).expect("a document").current();
            if agree(&text) == Ok(true) {
                fast += 1;
            }
        }
        assert!(fast > 150, "only {fast} of 500 took the fast path");
    }

    proptest! {
        #[test]
        fn agrees_with_the_kdl_crate_on_token_soup(text in document()) {
            prop_assert!(agree(&text).is_ok(), "{:?}: {:?}", text, agree(&text));
        }

        #[test]
        fn agrees_with_the_kdl_crate_on_node_lists(text in structured()) {
            prop_assert!(agree(&text).is_ok(), "{:?}: {:?}", text, agree(&text));
        }
    }
}
