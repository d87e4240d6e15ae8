//! YAML output. serde-saphyr writes it (see README for why that crate);
//! keys come out sorted because objects are `serde_json::Value`s, whose
//! maps are ordered.

use serde_json::Value;

/// One YAML document, without a leading `---`.
pub fn to_yaml(v: &Value) -> String {
    // Plain scalars only: folded `>-` blocks for long base64 strings are
    // valid YAML but hard to read and to diff.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    let mut s = serde_saphyr::to_string_with_options(v, options).unwrap_or_default();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Several documents separated by `---` lines.
pub fn to_multi_yaml<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(d));
    }
    out
}

/// Parses one YAML document into a JSON value.
pub fn from_yaml(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str(text).map_err(|e| e.to_string())
}
