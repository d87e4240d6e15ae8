//! Validation of custom resources against their CRD, producing the causes of
//! a 422 Invalid:
//! - the OpenAPI checks: type, enum, required, minimum/maximum, lengths,
//!   pattern, item and property counts, duplicate keys in keyed lists and sets
//!   (`format` is not checked);
//! - the `x-kubernetes-validations` CEL rules that [`cel`] understands; rules
//!   using `oldSelf` run only on update and only where the old object has the
//!   field, as on the real server;
//! - the replica check of the scale subresource (`.spec.replicas` must not be
//!   negative), which is where the recorded
//!   `.spec.replicas: Invalid value: -3: should be a non-negative integer` comes from.
//!
//! On update, parts of the object equal to the stored ones are not checked
//! again (the server's validation ratcheting).

use serde_json::Value;

use super::cel;
use super::fields;
use super::resources::ResourceType;
use super::schema::{ListType, Node};
use super::status::FieldError;

/// All validation errors of `obj` (already defaulted); `old` on update.
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let root = Node(&rt.schema);
    if let Some(map) = obj.as_object() {
        let old_map = old.and_then(Value::as_object);
        for (key, value) in map {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if root.declares(key) {
                walk(value, old_map.and_then(|m| m.get(key)), root.child(key), key, &mut errors);
            }
        }
    }
    run_rules(obj, old, root, "", &mut errors);
    if let Some(scale) = &rt.scale {
        check_replicas(obj, &scale.spec_replicas_path, &mut errors);
    }
    errors
}

/// The name check the server applies to every new object.
pub fn validate_name(name: &str, dns_label: bool) -> Option<FieldError> {
    const LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    let (pattern, max, explanation) = if dns_label {
        (
            format!("^{LABEL}$"),
            63,
            format!(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
                 '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or \
                 '123-abc', regex used for validation is '{LABEL}')"
            ),
        )
    } else {
        let subdomain = format!("{LABEL}(\\.{LABEL})*");
        (
            format!("^{subdomain}$"),
            253,
            format!(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
                 characters, '-' or '.', and must start and end with an alphanumeric character \
                 (e.g. 'example.com', regex used for validation is '{subdomain}')"
            ),
        )
    };
    if name.len() > max {
        return Some(FieldError {
            field: "metadata.name".into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {name:?}: must be no more than {max} characters"),
        });
    }
    if cel::regex_matches(&pattern, name) == Some(false) {
        return Some(FieldError {
            field: "metadata.name".into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {name:?}: {explanation}"),
        });
    }
    None
}

/// How the server prints a bad value: strings quoted, the rest as JSON.
fn repr(value: &Value) -> String {
    value.to_string()
}

fn invalid(path: &str, value: impl std::fmt::Display, detail: &str) -> FieldError {
    FieldError { field: path.into(), reason: "FieldValueInvalid", message: format!("Invalid value: {value}: {detail}") }
}

fn too_many(path: &str, count: usize, max: u64) -> FieldError {
    FieldError {
        field: path.into(),
        reason: "FieldValueTooMany",
        message: format!("Too many: {count}: must have at most {max} items"),
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// The JSON Schema type name of a value.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        other => json_type(value) == other,
    }
}

fn walk(value: &Value, old: Option<&Value>, node: Node<'_>, path: &str, errors: &mut Vec<FieldError>) {
    if old == Some(value) {
        return; // unchanged: ratcheted
    }
    if value.is_null() {
        return;
    }
    if node.int_or_string() {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            let got = json_type(value);
            errors.push(invalid(
                path,
                format!("{got:?}"),
                &format!("{path} in body must be of type integer or string: {got:?}"),
            ));
            return;
        }
    } else if let Some(expected) = node.type_name()
        && !type_matches(expected, value)
    {
        let got = json_type(value);
        errors.push(invalid(path, format!("{got:?}"), &format!("{path} in body must be of type {expected}: {got:?}")));
        return;
    }
    if let Some(allowed) = node.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(repr).collect();
        errors.push(FieldError {
            field: path.into(),
            reason: "FieldValueNotSupported",
            message: format!("Unsupported value: {}: supported values: {}", repr(value), list.join(", ")),
        });
    }
    let bound = |key: &str| node.get(key).and_then(Value::as_u64);
    match value {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(max) = bound("maxLength")
                && len > max
            {
                errors.push(FieldError {
                    field: path.into(),
                    reason: "FieldValueTooLong",
                    message: format!("Too long: may not be more than {max} bytes"),
                });
            }
            if let Some(min) = bound("minLength")
                && len < min
            {
                errors.push(invalid(path, repr(value), &format!("{path} in body should be at least {min} chars long")));
            }
            if let Some(pattern) = node.get("pattern").and_then(Value::as_str)
                && cel::regex_matches(pattern, s) == Some(false)
            {
                errors.push(invalid(path, repr(value), &format!("{path} in body should match '{pattern}'")));
            }
        }
        Value::Number(n) => check_number(n.as_f64().unwrap_or(0.0), value, node, path, errors),
        Value::Array(items) => check_list(items, old, node, path, errors),
        Value::Object(map) => {
            for required in
                node.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
            {
                if !map.contains_key(required) {
                    errors.push(FieldError {
                        field: child_path(path, required),
                        reason: "FieldValueRequired",
                        message: "Required value".into(),
                    });
                }
            }
            let count = map.len() as u64;
            if let Some(max) = bound("maxProperties")
                && count > max
            {
                errors.push(too_many(path, map.len(), max));
            }
            if let Some(min) = bound("minProperties")
                && count < min
            {
                errors.push(invalid(path, count, &format!("{path} in body should have at least {min} properties")));
            }
            let old_map = old.and_then(Value::as_object);
            for (key, child) in map {
                let before = old_map.and_then(|m| m.get(key));
                if let Some(prop) = node.properties().and_then(|p| p.get(key)) {
                    walk(child, before, Node(prop), &child_path(path, key), errors);
                } else if let Some(values) = node.additional() {
                    walk(child, before, values, &format!("{path}[{key}]"), errors);
                }
            }
        }
        _ => {}
    }
    run_rules(value, old, node, path, errors);
}

fn check_number(n: f64, value: &Value, node: Node<'_>, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(min) = node.get("minimum").and_then(Value::as_f64) {
        let exclusive = node.flag("exclusiveMinimum");
        if n < min || (exclusive && n == min) {
            let relation = if exclusive { "greater than" } else { "greater than or equal to" };
            errors.push(invalid(path, repr(value), &format!("{path} in body should be {relation} {}", fmt_bound(min))));
        }
    }
    if let Some(max) = node.get("maximum").and_then(Value::as_f64) {
        let exclusive = node.flag("exclusiveMaximum");
        if n > max || (exclusive && n == max) {
            let relation = if exclusive { "less than" } else { "less than or equal to" };
            errors.push(invalid(path, repr(value), &format!("{path} in body should be {relation} {}", fmt_bound(max))));
        }
    }
}

/// Bounds print without a fraction when whole (`1`, not `1.0`).
fn fmt_bound(bound: f64) -> String {
    if bound.fract() == 0.0 && bound.abs() < 1e15 { format!("{}", bound as i64) } else { bound.to_string() }
}

fn check_list(items: &[Value], old: Option<&Value>, node: Node<'_>, path: &str, errors: &mut Vec<FieldError>) {
    let bound = |key: &str| node.get(key).and_then(Value::as_u64);
    let count = items.len() as u64;
    if let Some(max) = bound("maxItems")
        && count > max
    {
        errors.push(too_many(path, items.len(), max));
    }
    if let Some(min) = bound("minItems")
        && count < min
    {
        errors.push(invalid(path, count, &format!("{path} in body should have at least {min} items")));
    }
    let item_node = node.items();
    let old_items = old.and_then(Value::as_array);
    match node.list_type() {
        ListType::Map(keys) => {
            let mut seen = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let element = fields::key_element(item, &keys);
                let item_path = format!("{path}[{index}]");
                if element.is_some() && seen.contains(&element) {
                    let key: serde_json::Map<String, Value> =
                        keys.iter().filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone()))).collect();
                    errors.push(FieldError {
                        field: item_path.clone(),
                        reason: "FieldValueDuplicate",
                        message: format!("Duplicate value: {}", Value::Object(key)),
                    });
                }
                // Items of keyed lists are correlated with the old list by key.
                let before = old_items.and_then(|list| {
                    list.iter().find(|o| element.is_some() && fields::key_element(o, &keys) == element)
                });
                walk(item, before, item_node, &item_path, errors);
                seen.push(element);
            }
        }
        list_type => {
            for (index, item) in items.iter().enumerate() {
                if list_type == ListType::Set && items[..index].contains(item) {
                    errors.push(FieldError {
                        field: format!("{path}[{index}]"),
                        reason: "FieldValueDuplicate",
                        message: format!("Duplicate value: {}", repr(item)),
                    });
                }
                walk(item, None, item_node, &format!("{path}[{index}]"), errors);
            }
        }
    }
}

fn run_rules(value: &Value, old: Option<&Value>, node: Node<'_>, path: &str, errors: &mut Vec<FieldError>) {
    for (source, message) in node.rules() {
        let Some(rule) = cel::compile(source) else {
            continue; // not understood: skipped
        };
        if rule.uses_old_self && old.is_none() {
            continue;
        }
        if rule.check(value, old) == Some(false) {
            let message = message.map(str::to_string).unwrap_or_else(|| format!("failed rule: {source}"));
            errors.push(FieldError {
                field: path.into(),
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {message}"),
            });
        }
    }
}

fn check_replicas(obj: &Value, spec_path: &str, errors: &mut Vec<FieldError>) {
    let pointer = spec_path.replace('.', "/");
    let Some(replicas) = obj.pointer(&pointer).and_then(Value::as_i64) else {
        return;
    };
    if replicas < 0 {
        errors.push(invalid(spec_path, replicas, "should be a non-negative integer"));
    } else if replicas > i64::from(i32::MAX) {
        errors.push(invalid(spec_path, replicas, &format!("should be less than or equal to {}", i32::MAX)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("prod-a", true).is_none());
        assert!(validate_name("a.b", false).is_none());
        assert!(validate_name("a.b", true).is_some());
        assert!(validate_name("Bad", false).is_some());
    }

    #[test]
    fn schema_checks_produce_server_messages() {
        let schema = json!({"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 3},
            "mode": {"type": "string", "enum": ["A", "B"]},
            "cores": {"type": "integer", "minimum": 1},
            "list": {"type": "array", "maxItems": 1, "items": {"type": "string"}}
        }});
        let mut errors = Vec::new();
        walk(&json!({"mode": "C", "cores": 0, "list": ["a", "b"]}), None, Node(&schema), "spec", &mut errors);
        errors.sort();
        let rendered: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        assert_eq!(
            rendered,
            vec![
                "spec.cores: Invalid value: 0: spec.cores in body should be greater than or equal to 1",
                "spec.list: Too many: 2: must have at most 1 items",
                "spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\"",
                "spec.name: Required value",
            ]
        );
    }
}
