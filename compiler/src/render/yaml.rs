//! YAML output: block style, two-space indent, list items at their key's
//! indent, keys in the order the value gives them (sorted: typed objects
//! declare their fields in order, maps are `BTreeMap`s).
//!
//! serde-saphyr (see docs/design.md for why that crate) defines the output. The
//! objects hcpc renders are maps, lists, strings, integers and booleans, so
//! a small streaming writer here produces the same bytes about ten times
//! faster: it writes the strings that are plainly safe as they are and asks
//! serde-saphyr how to quote every other one; for any shape it does not
//! handle (a list in a list, a map opening a list item, floats, nulls) it
//! gives up and serde-saphyr writes the whole document. The tests compare
//! the two on generated values.

use std::fmt::Write as _;

use serde::Serialize;
use serde::ser::{self, Impossible, SerializeMap, SerializeSeq, SerializeStruct};
use serde_json::Value;

/// One YAML document, without a leading `---`.
pub fn to_yaml<T: Serialize>(v: &T) -> String {
    let mut out = String::new();
    write_yaml(&mut out, v);
    out
}

/// Appends one YAML document (without a leading `---`) to `out`.
pub fn write_yaml<T: Serialize>(out: &mut String, v: &T) {
    let start = out.len();
    if v.serialize(Ser { out, pos: Pos::Top }).is_err() {
        out.truncate(start);
        out.push_str(&reference_yaml(v));
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Several documents separated by `---` lines.
pub fn to_multi_yaml<'a, T: Serialize + 'a>(docs: impl IntoIterator<Item = &'a T>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        write_yaml(&mut out, d);
    }
    out
}

/// Parses one YAML document into a JSON value.
pub fn from_yaml(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str(text).map_err(|e| e.to_string())
}

fn options() -> serde_saphyr::SerializerOptions {
    // Plain scalars only: folded `>-` blocks for long base64 strings are
    // valid YAML but hard to read and to diff.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    options
}

/// The document as serde-saphyr writes it: the definition of the output.
pub fn reference_yaml<T: Serialize>(v: &T) -> String {
    let mut s = serde_saphyr::to_string_with_options(v, options()).unwrap_or_default();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Strings written plain by any YAML writer: a letter, then letters,
/// digits and `-_./` (and, for values, `:`), and no word that YAML 1.1
/// reads as a boolean, null or number.
fn surely_plain(s: &str, value: bool) -> bool {
    let b = s.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_alphabetic) || (value && b.last() == Some(&b':')) {
        return false;
    }
    if !b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/') || (value && *c == b':')) {
        return false;
    }
    s.len() > 5
        || !["y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"]
            .iter()
            .any(|w| s.eq_ignore_ascii_case(w))
}

/// A map value or list item as serde-saphyr writes it.
fn value_scalar(s: &str, out: &mut String) -> Result<(), Unsupported> {
    if surely_plain(s, true) {
        out.push_str(s);
        return Ok(());
    }
    ask(&VALUES, s, out, |s| {
        let quoted = serde_saphyr::to_string_with_options(&s, options()).ok()?;
        let quoted = quoted.strip_suffix('\n').unwrap_or(&quoted);
        (!quoted.contains('\n') && !quoted.is_empty()).then(|| quoted.to_string())
    })
}

/// Scalars serde-saphyr was asked about, and its answers: a fleet repeats
/// the same sizes, durations and CIDRs in every cluster.
type Answers = std::cell::RefCell<std::collections::HashMap<Box<str>, Option<Box<str>>>>;

thread_local! {
    static VALUES: Answers = Answers::default();
    static KEYS: Answers = Answers::default();
}

/// Writes serde-saphyr's spelling of `s` (from `answers`, or from `how`).
fn ask(
    answers: &'static std::thread::LocalKey<Answers>,
    s: &str,
    out: &mut String,
    how: impl FnOnce(&str) -> Option<String>,
) -> Result<(), Unsupported> {
    answers.with(|a| {
        let known = a.borrow().get(s).cloned();
        let answer = match known {
            Some(answer) => answer,
            None => {
                let answer = how(s).map(String::into_boxed_str);
                let mut a = a.borrow_mut();
                if a.len() < 4096 {
                    a.insert(s.into(), answer.clone());
                }
                answer
            }
        };
        out.push_str(&answer.ok_or(Unsupported)?);
        Ok(())
    })
}

/// A map key as serde-saphyr writes it.
fn key_scalar(s: &str, out: &mut String) -> Result<(), Unsupported> {
    if surely_plain(s, false) {
        out.push_str(s);
        return Ok(());
    }
    ask(&KEYS, s, out, |s| {
        let map = std::collections::BTreeMap::from([(s, 0)]);
        let line = serde_saphyr::to_string_with_options(&map, options()).ok()?;
        let key = line.strip_suffix(": 0\n")?;
        (!key.contains('\n') && !key.is_empty() && !key.starts_with('?')).then(|| key.to_string())
    })
}

/// A shape this writer leaves to serde-saphyr.
#[derive(Debug)]
pub struct Unsupported;

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("shape left to serde-saphyr")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

/// Where the next value goes.
#[derive(Clone, Copy)]
enum Pos {
    /// The whole document.
    Top,
    /// After `key:` written at this column; `first_in_item` when the key
    /// is the first of a list item (`- key:`).
    Value { col: usize, first_in_item: bool },
    /// After `- ` written at this column.
    Item { col: usize },
}

struct Ser<'o> {
    out: &'o mut String,
    pos: Pos,
}

impl<'o> Ser<'o> {
    fn scalar(self, f: impl FnOnce(&mut String) -> Result<(), Unsupported>) -> Result<(), Unsupported> {
        match self.pos {
            Pos::Top => return Err(Unsupported),
            Pos::Value { .. } => self.out.push(' '),
            Pos::Item { .. } => {}
        }
        f(self.out)?;
        self.out.push('\n');
        Ok(())
    }

    fn int(self, v: impl std::fmt::Display) -> Result<(), Unsupported> {
        self.scalar(|out| write!(out, "{v}").map_err(|_| Unsupported))
    }

    fn map(self, len: Option<usize>) -> Result<MapSer<'o>, Unsupported> {
        let len = len.ok_or(Unsupported)?;
        if len == 0 {
            // `{}` inline; never reached by rendered objects, which skip empty maps.
            return Err(Unsupported);
        }
        let (col, inline_first) = match self.pos {
            Pos::Top => (0, false),
            Pos::Value { first_in_item: true, .. } => return Err(Unsupported),
            Pos::Value { col, .. } => {
                self.out.push('\n');
                (col + 2, false)
            }
            Pos::Item { col } => (col + 2, true),
        };
        Ok(MapSer { out: self.out, col, inline_first, left: len, pending: None })
    }
}

struct MapSer<'o> {
    out: &'o mut String,
    /// Column of the keys.
    col: usize,
    /// The next key follows `- ` on the same line.
    inline_first: bool,
    /// Entries announced and not yet written.
    left: usize,
    /// Where the value of the key just written goes.
    pending: Option<Pos>,
}

impl MapSer<'_> {
    fn key(&mut self, key: &str) -> Result<Pos, Unsupported> {
        self.left = self.left.checked_sub(1).ok_or(Unsupported)?;
        let first_in_item = std::mem::take(&mut self.inline_first);
        if !first_in_item {
            indent(self.out, self.col);
        }
        key_scalar(key, self.out)?;
        self.out.push(':');
        Ok(Pos::Value { col: self.col, first_in_item })
    }

    fn value<T: Serialize + ?Sized>(&mut self, pos: Pos, value: &T) -> Result<(), Unsupported> {
        value.serialize(Ser { out: self.out, pos })
    }
}

fn indent(out: &mut String, col: usize) {
    out.extend(std::iter::repeat_n(' ', col));
}

/// A key: only strings are keys in the objects hcpc writes.
struct KeySer<'k>(&'k mut String);

impl SerializeMap for MapSer<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        let mut text = String::new();
        key.serialize(KeySer(&mut text))?;
        self.pending = Some(self.key(&text)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        let pos = self.pending.take().ok_or(Unsupported)?;
        self.value(pos, value)
    }

    fn end(self) -> Result<(), Unsupported> {
        if self.left == 0 { Ok(()) } else { Err(Unsupported) }
    }
}

impl SerializeStruct for MapSer<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Unsupported> {
        let pos = self.key(key)?;
        self.value(pos, value)
    }

    fn end(self) -> Result<(), Unsupported> {
        SerializeMap::end(self)
    }
}

struct SeqSer<'o> {
    out: &'o mut String,
    /// Column of the `- `.
    col: usize,
    left: usize,
}

impl SerializeSeq for SeqSer<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.left = self.left.checked_sub(1).ok_or(Unsupported)?;
        indent(self.out, self.col);
        self.out.push_str("- ");
        value.serialize(Ser { out: self.out, pos: Pos::Item { col: self.col } })
    }

    fn end(self) -> Result<(), Unsupported> {
        if self.left == 0 { Ok(()) } else { Err(Unsupported) }
    }
}

/// The serde data model methods this writer does not take.
macro_rules! unsupported {
    ($($name:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ret, Unsupported> { Err(Unsupported) })*
    };
}

impl<'o> ser::Serializer for Ser<'o> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = SeqSer<'o>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = MapSer<'o>;
    type SerializeStruct = MapSer<'o>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.scalar(|out| {
            out.push_str(if v { "true" } else { "false" });
            Ok(())
        })
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.int(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.int(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.int(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.int(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.int(v)
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.scalar(|out| value_scalar(v, out))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer<'o>, Unsupported> {
        let left = len.ok_or(Unsupported)?;
        let col = match self.pos {
            Pos::Value { col, first_in_item: false } if left > 0 => {
                self.out.push('\n');
                col
            }
            // Empty lists (`[]`), lists in lists and lists opening a list item are left to serde-saphyr.
            _ => return Err(Unsupported),
        };
        Ok(SeqSer { out: self.out, col, left })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapSer<'o>, Unsupported> {
        self.map(len)
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapSer<'o>, Unsupported> {
        self.map(Some(len))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    unsupported! {
        serialize_i128(i128) -> ();
        serialize_u128(u128) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_tuple(usize) -> Impossible<(), Unsupported>;
        serialize_tuple_struct(&'static str, usize) -> Impossible<(), Unsupported>;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Impossible<(), Unsupported>;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Impossible<(), Unsupported>;
    }
}

impl ser::Serializer for KeySer<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.0.push_str(v);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    unsupported! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_i128(i128) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_u128(u128) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Impossible<(), Unsupported>;
        serialize_tuple(usize) -> Impossible<(), Unsupported>;
        serialize_tuple_struct(&'static str, usize) -> Impossible<(), Unsupported>;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Impossible<(), Unsupported>;
        serialize_map(Option<usize>) -> Impossible<(), Unsupported>;
        serialize_struct(&'static str, usize) -> Impossible<(), Unsupported>;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Impossible<(), Unsupported>;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::{reference_yaml, to_yaml};

    #[test]
    fn objects_shaped_like_rendered_ones_match_serde_saphyr() {
        let v = json!({
            "apiVersion": "hypershift.openshift.io/v1beta1",
            "kind": "NodePool",
            "metadata": {"labels": {"a.b/c": "true", "team": "x y", "n": "007"}, "name": "c-w"},
            "spec": {
                "replicas": 3,
                "flag": false,
                "services": [{"service": "APIServer", "strategy": {"type": "Route"}}, {"service": "x"}],
                "modes": ["ReadWriteMany", "yes"],
                "image": "quay.io/openshift-release-dev/ocp-release:4.17.3-multi",
                "odd": ["", " lead", "trail ", "a: b", "#c", "- d", "multi\nline", "tab\there", "ünï", "1.5", "0x1f", "2024-01-01", "~", "null", "<<", "---", "a #b", "end:"],
            },
        });
        assert_eq!(to_yaml(&v), reference_yaml(&v));
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "a",
                "name",
                "example.com/team",
                "y",
                "No",
                "1",
                "a:b",
                "a b",
                "-x",
                "",
                "#k",
                "ü"
            ])
            .prop_map(String::from),
            "[ -~]{0,6}",
        ]
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop::sample::select(vec![
                "plain",
                "true",
                "Off",
                "8Gi",
                "10.0.0.0/8",
                "quay.io/x:1",
                "5m0s",
                "a: b",
                "x:",
                "",
                " ",
                "'q'",
                "\"d\"",
                "line\nbreak",
                "é",
                "a#b",
                "a #b",
                "%x",
                "@x",
                "`x",
                "!x",
                "&x",
                "*x",
                "|",
                ">",
                "[x]",
                "{x}",
                "x,y",
                "-",
                "- x",
                "?",
                "? x",
                ".5",
                "+1",
                "0o7",
                "1e3",
                "12:30",
                "2001-12-14",
                "=",
                "<<",
            ])
            .prop_map(|s| Value::String(s.to_string())),
            "[ -~]{0,12}".prop_map(Value::String),
            "\\PC{0,6}".prop_map(Value::String),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        #[test]
        fn generated_values_match_serde_saphyr(v in value()) {
            let doc = json!({"top": v, "kind": "x"});
            prop_assert_eq!(to_yaml(&doc), reference_yaml(&doc));
        }
    }
}
