//! Reading OpenAPI v3 schema nodes (as found in a CRD) and the two schema
//! driven mutations the server performs on custom resources: pruning of
//! unknown fields and defaulting.
//!
//! Schemas are walked as raw `serde_json::Value`s; a node that says nothing
//! (`{}`) means "untyped": objects are open, lists are atomic.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

static UNTYPED: LazyLock<Value> = LazyLock::new(|| json!({}));

/// How a list is merged and owned (`x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// How server-side apply treats a value at some schema node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Scalars, atomic maps and atomic lists: owned and replaced as a whole.
    Atomic,
    /// An object with named fields.
    Struct,
    /// An object whose keys are free (`additionalProperties`).
    Map,
    /// A list whose items are identified by key fields.
    ListMap(Vec<String>),
    /// A list of unique scalars.
    ListSet,
}

/// A borrowed schema node.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a>(pub &'a Value);

impl<'a> Node<'a> {
    pub fn untyped() -> Node<'static> {
        Node(&UNTYPED)
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }

    pub fn type_name(&self) -> Option<&'a str> {
        self.0.get("type").and_then(Value::as_str)
    }

    pub fn properties(&self) -> Option<&'a Map<String, Value>> {
        self.0.get("properties").and_then(Value::as_object)
    }

    /// The schema of free-form map values, if this node is a map.
    pub fn additional(&self) -> Option<Node<'a>> {
        self.0.get("additionalProperties").filter(|v| v.is_object()).map(Node)
    }

    /// The schema of field `key`, falling back to map values, then untyped.
    pub fn child(&self, key: &str) -> Node<'a> {
        if let Some(p) = self.properties().and_then(|p| p.get(key)) {
            return Node(p);
        }
        self.additional().unwrap_or(Node(&UNTYPED))
    }

    pub fn declares(&self, key: &str) -> bool {
        self.properties().is_some_and(|p| p.contains_key(key)) || self.additional().is_some()
    }

    pub fn items(&self) -> Node<'a> {
        self.0.get("items").filter(|v| v.is_object()).map(Node).unwrap_or(Node(&UNTYPED))
    }

    pub fn flag(&self, key: &str) -> bool {
        self.0.get(key).and_then(Value::as_bool) == Some(true)
    }

    pub fn preserves_unknown(&self) -> bool {
        self.flag("x-kubernetes-preserve-unknown-fields")
    }

    pub fn int_or_string(&self) -> bool {
        self.flag("x-kubernetes-int-or-string")
    }

    pub fn nullable(&self) -> bool {
        self.flag("nullable")
    }

    pub fn list_type(&self) -> ListType {
        match self.0.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => {
                let keys: Vec<String> = self
                    .0
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                if keys.is_empty() { ListType::Atomic } else { ListType::Map(keys) }
            }
            _ => ListType::Atomic,
        }
    }

    pub fn atomic_map(&self) -> bool {
        self.0.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
    }

    /// How a value found at this node merges and is owned.
    pub fn shape(&self, value: &Value) -> Shape {
        match value {
            Value::Object(_) if self.atomic_map() => Shape::Atomic,
            Value::Object(_) if self.properties().is_none() && self.additional().is_some() => Shape::Map,
            Value::Object(_) => Shape::Struct,
            Value::Array(_) => match self.list_type() {
                ListType::Map(keys) => Shape::ListMap(keys),
                ListType::Set => Shape::ListSet,
                ListType::Atomic => Shape::Atomic,
            },
            _ => Shape::Atomic,
        }
    }

    /// The `x-kubernetes-validations` rules at this node: (rule, message).
    pub fn rules(&self) -> Vec<(&'a str, Option<&'a str>)> {
        self.0
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .filter_map(|r| {
                        let rule = r.get("rule")?.as_str()?;
                        Some((rule, r.get("message").and_then(Value::as_str)))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The part of ObjectMeta that field management covers: labels and
/// annotations are free-form maps, finalizers a set, ownerReferences keyed by
/// uid. Everything else in metadata is server-owned and accepted as is.
pub fn metadata_schema() -> Value {
    json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "generateName": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {
                "type": "array",
                "items": {"type": "string"},
                "x-kubernetes-list-type": "set"
            },
            "ownerReferences": {
                "type": "array",
                "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["uid"]
            }
        }
    })
}

/// Drops fields the schema does not declare, as the server does for custom
/// resources written with POST/PUT/PATCH (apply rejects them instead).
pub fn prune_unknown(value: &mut Value, node: Node<'_>) {
    if node.preserves_unknown() && node.properties().is_none() {
        return;
    }
    match value {
        Value::Object(map) => {
            if !node.preserves_unknown() {
                map.retain(|k, _| node.declares(k));
            }
            for (k, v) in map.iter_mut() {
                prune_unknown(v, node.child(k));
            }
        }
        Value::Array(items) => {
            let item_node = node.items();
            for item in items {
                prune_unknown(item, item_node);
            }
        }
        _ => {}
    }
}

/// Applies `default:` values top-down, like the server's structural
/// defaulting: a default fills a missing (or non-nullable null) field of an
/// object that is present, then defaulting continues inside it. Nulls in
/// non-nullable fields without a default are dropped.
pub fn apply_defaults(value: &mut Value, node: Node<'_>) {
    match value {
        Value::Object(map) => {
            if let Some(props) = node.properties() {
                for (key, prop) in props {
                    let prop = Node(prop);
                    let missing = match map.get(key) {
                        None => true,
                        Some(Value::Null) => !prop.nullable(),
                        Some(_) => false,
                    };
                    if !missing {
                        continue;
                    }
                    match prop.get("default") {
                        Some(default) => {
                            map.insert(key.clone(), default.clone());
                        }
                        None => {
                            map.remove(key);
                        }
                    }
                }
            }
            for (k, v) in map.iter_mut() {
                apply_defaults(v, node.child(k));
            }
        }
        Value::Array(items) => {
            let item_node = node.items();
            for item in items {
                apply_defaults(item, item_node);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_present_parents_only() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "object", "properties": {"x": {"type": "string", "default": "d"}}},
                "b": {"type": "object", "properties": {"y": {"type": "string", "default": "e"}}},
                "c": {"type": "object", "default": {}, "properties": {"z": {"type": "integer", "default": 1}}}
            }
        });
        let mut v = json!({"a": {}});
        apply_defaults(&mut v, Node(&schema));
        assert_eq!(v, json!({"a": {"x": "d"}, "c": {"z": 1}}));
    }

    #[test]
    fn shapes_follow_schema_markers() {
        let s = json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]});
        assert_eq!(Node(&s).shape(&json!([])), Shape::ListMap(vec!["name".into()]));
        let atomic = json!({"type": "object", "x-kubernetes-map-type": "atomic"});
        assert_eq!(Node(&atomic).shape(&json!({})), Shape::Atomic);
        assert_eq!(Node::untyped().shape(&json!([1])), Shape::Atomic);
        assert_eq!(Node::untyped().shape(&json!({})), Shape::Struct);
    }
}
