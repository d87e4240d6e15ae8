//! Comparing desired objects with live ones, field by field.
//!
//! Only fields hcpc sets are compared: for maps, only the desired keys are
//! looked at, so whatever the API server or the HyperShift operator adds
//! (status, managedFields, CRD defaults, generateID, baseDomain under
//! passthrough, operator annotations) never shows as a change. Lists are
//! compared item by item the same way; a different length changes the
//! whole list.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::plan::model::FieldChange;

/// Top-level fields never compared: identity and server bookkeeping.
const IGNORED_TOP: &[&str] = &["apiVersion", "kind", "status"];
/// Metadata fields never compared.
const IGNORED_META: &[&str] =
    &["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"];

/// The field changes that turn `live` into `desired` (only fields of `desired`).
pub fn diff_object(desired: &Value, live: &Value, sensitive: bool) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let (Some(d), Some(l)) = (desired.as_object(), live.as_object()) else {
        return out;
    };
    for (k, dv) in d {
        if IGNORED_TOP.contains(&k.as_str()) {
            continue;
        }
        let lv = l.get(k);
        match (k.as_str(), dv, lv) {
            ("metadata", Value::Object(dm), Some(Value::Object(lm))) => {
                let mut path = "metadata".to_string();
                for (k, dv) in dm.iter().filter(|(k, _)| !IGNORED_META.contains(&k.as_str())) {
                    push_key(&mut path, k);
                    compare(dv, lm.get(k).unwrap_or(&Value::Null), &mut path, &mut out);
                    path.truncate("metadata".len());
                }
            }
            ("data" | "stringData", Value::Object(dm), lv) if sensitive => {
                let empty = Map::new();
                let lm = lv.and_then(Value::as_object).unwrap_or(&empty);
                for (key, value) in dm {
                    let path = format!("{k}{}", key_path(key));
                    match lm.get(key) {
                        Some(old) if digest_value(old) == digest_value(value) => {}
                        old => out.push(FieldChange {
                            path,
                            before: old.map(|_| Value::String("(sensitive)".into())),
                            after: Some(Value::String("(sensitive)".into())),
                            sensitive: true,
                            forces_replacement: false,
                        }),
                    }
                }
            }
            _ => compare(dv, lv.unwrap_or(&Value::Null), &mut k.clone(), &mut out),
        }
    }
    out
}

fn key_path(key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!(".{key}")
    } else {
        format!("[{}]", serde_json::to_string(key).unwrap_or_default())
    }
}

/// `path` is the path of `desired`; it is extended in place while walking
/// (and restored), so equal fields cost no allocation.
fn compare(desired: &Value, live: &Value, path: &mut String, out: &mut Vec<FieldChange>) {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            for (k, dv) in d {
                let len = path.len();
                push_key(path, k);
                compare(dv, l.get(k).unwrap_or(&Value::Null), path, out);
                path.truncate(len);
            }
        }
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            let mut inner = Vec::new();
            for (i, (dv, lv)) in d.iter().zip(l).enumerate() {
                let len = path.len();
                let _ = write!(path, "[{i}]");
                compare(dv, lv, path, &mut inner);
                path.truncate(len);
            }
            if !inner.is_empty() {
                // Lists are atomic for HyperShift (services, networks,
                // mappings): show the whole list so the change reads clearly.
                out.push(change(path, live, desired));
            }
        }
        (d, l) if values_equal(d, l) => {}
        (d, l) => out.push(change(path, l, d)),
    }
}

/// Appends `key` to `path` as [`key_path`] writes it (bare at the root).
fn push_key(path: &mut String, key: &str) {
    if path.is_empty() {
        path.push_str(key);
    } else if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::to_string(key).unwrap_or_default());
        path.push(']');
    }
}

/// Numbers compare by value (the server may return `2` where hcpc sent `2.0`).
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn change(path: &str, before: &Value, after: &Value) -> FieldChange {
    FieldChange {
        path: path.to_string(),
        before: (!before.is_null()).then(|| before.clone()),
        after: (!after.is_null()).then(|| after.clone()),
        sensitive: false,
        forces_replacement: false,
    }
}

/// Every leaf of a new object, for showing a create.
pub fn all_fields(desired: &Value, sensitive: bool) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if let Some(d) = desired.as_object() {
        for (k, v) in d {
            if IGNORED_TOP.contains(&k.as_str()) {
                continue;
            }
            let masked = sensitive && (k == "data" || k == "stringData");
            leaves(v, k, masked, &mut out);
        }
    }
    out
}

fn leaves(v: &Value, path: &str, sensitive: bool, out: &mut Vec<FieldChange>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                leaves(v, &format!("{path}{}", key_path(k)), sensitive, out);
            }
        }
        v => out.push(FieldChange {
            path: path.to_string(),
            before: None,
            after: Some(if sensitive { Value::String("(sensitive)".into()) } else { v.clone() }),
            sensitive,
            forces_replacement: false,
        }),
    }
}

/// A digest of a value, used for Secret data and saved plans.
pub fn digest_value(v: &Value) -> String {
    let text = serde_json::to_string(v).unwrap_or_default();
    format!("sha256:{:x}", Sha256::digest(text.as_bytes()))
}

/// Fields hcpc set before but no longer sets: with server-side apply they
/// are removed when hcpc applies without them, so the plan must show it.
///
/// `owned` is hcpc's `fieldsV1` set from the live object's managedFields
/// (kube), or `None` when the whole live object is hcpc's (dir).
pub fn removed_fields(desired: &Value, live: &Value, owned: Option<&Value>, sensitive: bool) -> Vec<FieldChange> {
    let mut out = Vec::new();
    match owned {
        Some(fields) => walk_owned(fields, desired, live, &mut String::new(), &mut out),
        None => walk_all(desired, live, "", &mut out),
    }
    out.retain(|f| !f.path.starts_with("status") && !f.path.starts_with("metadata.managedFields"));
    if sensitive {
        // Anything at or under a Secret's data is secret, whatever its key.
        for f in out.iter_mut().filter(|f| f.path.starts_with("data") || f.path.starts_with("stringData")) {
            f.before = Some(Value::String("(sensitive)".into()));
            f.sensitive = true;
        }
    }
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}{}", key_path(key)) }
}

fn removal(path: String, before: &Value) -> FieldChange {
    FieldChange { path, before: Some(before.clone()), after: None, sensitive: false, forces_replacement: false }
}

fn walk_owned(fields: &Value, desired: &Value, live: &Value, path: &mut String, out: &mut Vec<FieldChange>) {
    let Some(fields) = fields.as_object() else { return };
    let top = path.is_empty();
    for (k, sub) in fields {
        // Only map keys; list items (`k:`/`v:`/`i:`) belong to lists compared whole.
        let Some(key) = k.strip_prefix("f:") else { continue };
        let (Some(lv), d) = (live.get(key), desired.get(key)) else { continue };
        let len = path.len();
        push_key(path, key);
        match d {
            None if top && IGNORED_TOP.contains(&key) => {}
            None => out.push(removal(path.clone(), lv)),
            Some(dv) if dv.is_object() && lv.is_object() => walk_owned(sub, dv, lv, path, out),
            Some(_) => {}
        }
        path.truncate(len);
    }
}

fn walk_all(desired: &Value, live: &Value, path: &str, out: &mut Vec<FieldChange>) {
    let (Some(d), Some(l)) = (desired.as_object(), live.as_object()) else { return };
    for (key, lv) in l {
        if path.is_empty() && IGNORED_TOP.contains(&key.as_str()) {
            continue;
        }
        let p = join(path, key);
        match d.get(key) {
            None => out.push(removal(p, lv)),
            Some(dv) => walk_all(dv, lv, &p, out),
        }
    }
}

/// hcpc's `fieldsV1` from a live object's managedFields, if hcpc applied it.
pub fn owned_fields<'a>(live: &'a Value, manager: &str) -> Option<&'a Value> {
    live.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|m| {
            m.get("manager").and_then(Value::as_str) == Some(manager)
                && m.get("operation").and_then(Value::as_str) == Some("Apply")
        })?
        .get("fieldsV1")
}
