//! The type check that server-side apply runs on the request body before
//! merging (the real server's "typed patch"). A value of the wrong type or a
//! field the schema does not declare fails the request with a 500, e.g.
//! `.spec.replicas: expected numeric (int or float), got string`.
//!
//! Only the numeric message is confirmed by the recordings; the other
//! messages follow the same layout.

use serde_json::Value;

use super::fields;
use super::schema::{ListType, Node};

/// Type errors in `body`, each as `path: message`; empty when it is fine.
pub fn check(body: &Value, schema: Node<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    walk(body, schema, "", &mut errors);
    errors
}

/// The Go type name the server prints for a decoded JSON value.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn walk(value: &Value, node: Node<'_>, path: &str, errors: &mut Vec<String>) {
    if value.is_null() {
        return;
    }
    let mismatch = |expected: &str| format!("{path}: expected {expected}, got {value}");
    if node.int_or_string() {
        if !(value.is_string() || value.is_number()) {
            errors.push(mismatch("string or numeric"));
        }
        return;
    }
    let type_name = node.type_name().or(if node.properties().is_some() { Some("object") } else { None });
    match type_name {
        Some("integer" | "number") if !value.is_number() => {
            errors.push(format!("{path}: expected numeric (int or float), got {}", go_type(value)))
        }
        Some("string") if !value.is_string() => errors.push(mismatch("string")),
        Some("boolean") if !value.is_boolean() => errors.push(mismatch("boolean")),
        Some("object") => match value.as_object() {
            None => errors.push(mismatch("map")),
            Some(map) => {
                for (key, child) in map {
                    let child_path = format!("{path}.{key}");
                    if node.declares(key) {
                        walk(child, node.child(key), &child_path, errors);
                    } else if !node.preserves_unknown() {
                        errors.push(format!("{child_path}: field not declared in schema"));
                    }
                }
            }
        },
        Some("array") => match value.as_array() {
            None => errors.push(mismatch("list")),
            Some(items) => walk_list(items, node, path, errors),
        },
        _ => {}
    }
}

fn walk_list(items: &[Value], node: Node<'_>, path: &str, errors: &mut Vec<String>) {
    let item_node = node.items();
    match node.list_type() {
        ListType::Map(keys) => {
            let mut seen: Vec<String> = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let Some(map) = item.as_object() else {
                    errors.push(format!("{path}: element {index}: expected map, got {item}"));
                    continue;
                };
                for key in &keys {
                    let defaulted = item_node.child(key).get("default").is_some();
                    if !map.contains_key(key) && !defaulted {
                        errors.push(format!(
                            "{path}: element {index}: associative list with keys has an \
                             element that omits key field {key:?}"
                        ));
                    }
                }
                let Some(element) = fields::key_element(item, &keys) else {
                    continue;
                };
                let shown = fields::display(std::slice::from_ref(&element));
                if seen.contains(&element) {
                    errors.push(format!("{path}: duplicate entries for key {shown}"));
                }
                walk(item, item_node, &format!("{path}{shown}"), errors);
                seen.push(element);
            }
        }
        ListType::Set => {
            for item in items {
                let shown = fields::display(&[fields::value_element(item)]);
                walk(item, item_node, &format!("{path}{shown}"), errors);
            }
        }
        ListType::Atomic => {
            for (index, item) in items.iter().enumerate() {
                walk(item, item_node, &format!("{path}[{index}]"), errors);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_wrong_types_and_unknown_fields() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer"},
                "size": {"x-kubernetes-int-or-string": true}
            }}
        }});
        let body = json!({"spec": {"replicas": "five", "size": 3, "bogus": 1}});
        let mut errors = check(&body, Node(&schema));
        errors.sort();
        assert_eq!(
            errors,
            vec![
                ".spec.bogus: field not declared in schema".to_string(),
                ".spec.replicas: expected numeric (int or float), got string".to_string(),
            ]
        );
    }
}
