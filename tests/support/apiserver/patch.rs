//! The two non-apply patch formats: JSON merge patch (RFC 7386) and JSON
//! patch (RFC 6902, operations `add`, `remove`, `replace` and `test`).

use serde_json::{Map, Value};

use super::status::{self, ApiResult};

/// Applies a JSON merge patch (RFC 7386).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Some(target_map) = target.as_object_mut() {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Splits a JSON pointer into unescaped tokens.
fn pointer_tokens(pointer: &str) -> ApiResult<Vec<String>> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest =
        pointer.strip_prefix('/').ok_or_else(|| status::bad_request(&format!("invalid JSON pointer {pointer:?}")))?;
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

/// Applies a JSON patch (RFC 6902); `add`, `remove`, `replace` and `test`.
pub fn json_patch(doc: &mut Value, ops: &Value) -> ApiResult<()> {
    let ops = ops.as_array().ok_or_else(|| status::bad_request("a JSON patch must be an array of operations"))?;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let failed = |why: &str| status::internal(&format!("jsonpatch {kind} operation does not apply: {why}"));
        let mut tokens = pointer_tokens(path)?;
        let last = tokens.pop();
        let parent = tokens
            .iter()
            .try_fold(&mut *doc, |v, t| match v {
                Value::Object(m) => m.get_mut(t.as_str()),
                Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                _ => None,
            })
            .ok_or_else(|| failed(&format!("doc is missing path: {path:?}")))?;
        let Some(last) = last else {
            return Err(failed("the whole document cannot be patched"));
        };
        let value = op.get("value").cloned();
        match (kind, parent) {
            ("test", parent) => {
                let current = match parent {
                    Value::Object(m) => m.get(&last),
                    Value::Array(a) => last.parse::<usize>().ok().and_then(|i| a.get(i)),
                    _ => None,
                };
                if current != value.as_ref() {
                    return Err(failed(&format!("testing value {path:?} failed")));
                }
            }
            ("add" | "replace", Value::Object(m)) => {
                if kind == "replace" && !m.contains_key(&last) {
                    return Err(failed(&format!("doc is missing key: {path:?}")));
                }
                m.insert(last, value.ok_or_else(|| failed("missing value"))?);
            }
            ("add", Value::Array(a)) => {
                let index = if last == "-" {
                    a.len()
                } else {
                    last.parse::<usize>().ok().filter(|i| *i <= a.len()).ok_or_else(|| failed("index out of range"))?
                };
                a.insert(index, value.ok_or_else(|| failed("missing value"))?);
            }
            ("replace", Value::Array(a)) => {
                let slot = last
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get_mut(i))
                    .ok_or_else(|| failed("index out of range"))?;
                *slot = value.ok_or_else(|| failed("missing value"))?;
            }
            ("remove", Value::Object(m)) => {
                m.remove(&last).ok_or_else(|| failed(&format!("doc is missing key: {path:?}")))?;
            }
            ("remove", Value::Array(a)) => {
                let index =
                    last.parse::<usize>().ok().filter(|i| *i < a.len()).ok_or_else(|| failed("index out of range"))?;
                a.remove(index);
            }
            _ => return Err(failed("unsupported operation")),
        }
    }
    Ok(())
}
