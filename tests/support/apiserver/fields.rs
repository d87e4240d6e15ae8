//! Field sets in the `FieldsV1` format of `metadata.managedFields`.
//!
//! A field set is a tree of path elements: `f:<name>` for a field or map key,
//! `k:{"name":"x"}` for an item of a keyed list, `v:<json>` for an item of a
//! set, `i:<n>` for a list position. A node belongs to the set when it is a
//! leaf (`{}`) or carries the `"."` marker next to its children.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// One path into an object, as a list of path elements (`f:spec`, ...).
pub type Path = Vec<String>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// Reads a `fieldsV1` object. Unknown shapes are ignored, not rejected.
    pub fn from_fields_v1(value: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Some(map) = value.as_object() {
            for (key, child) in map {
                if key == "." {
                    set.member = true;
                    continue;
                }
                let mut node = FieldSet::from_fields_v1(child);
                if node.children.is_empty() {
                    node.member = true;
                }
                set.children.insert(key.clone(), node);
            }
        }
        set
    }

    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        for (key, child) in &self.children {
            if child.children.is_empty() {
                if child.member {
                    map.insert(key.clone(), json!({}));
                }
                continue;
            }
            let mut inner = child.to_fields_v1();
            if child.member
                && let Some(obj) = inner.as_object_mut()
            {
                obj.insert(".".into(), json!({}));
            }
            map.insert(key.clone(), inner);
        }
        Value::Object(map)
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Makes this node itself a member of the set.
    pub fn mark(&mut self) {
        self.member = true;
    }

    /// The child node for `element`, created if absent.
    pub fn entry(&mut self, element: String) -> &mut FieldSet {
        self.children.entry(element).or_default()
    }

    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for element in path {
            node = node.entry(element.clone());
        }
        node.member = true;
    }

    fn node(&self, path: &[String]) -> Option<&FieldSet> {
        let mut node = self;
        for element in path {
            node = node.children.get(element)?;
        }
        Some(node)
    }

    pub fn contains(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|n| n.member)
    }

    /// True when `path` or anything below it is in the set.
    pub fn touches(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|n| !n.is_empty())
    }

    pub fn remove(&mut self, path: &[String]) {
        let Some((last, parents)) = path.split_last() else {
            self.member = false;
            return;
        };
        let mut node = &mut *self;
        for element in parents {
            match node.children.get_mut(element) {
                Some(child) => node = child,
                None => return,
            }
        }
        if let Some(child) = node.children.get_mut(last) {
            child.member = false;
        }
        self.prune();
    }

    pub fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (key, theirs) in &other.children {
            self.entry(key.clone()).union_with(theirs);
        }
    }

    /// Removes every member of `other` from this set.
    pub fn subtract(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (key, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(key) {
                mine.subtract(theirs);
            }
        }
        self.prune();
    }

    /// All member paths, parents before children.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.member && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (key, child) in &self.children {
            prefix.push(key.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Forgets members whose path no longer exists in `value`.
    pub fn retain_existing(&mut self, value: &Value) {
        self.children.retain(|key, child| match step(value, key) {
            Some(inner) => {
                child.retain_existing(inner);
                true
            }
            None => false,
        });
        self.prune();
    }

    /// Drops child nodes that hold no member.
    fn prune(&mut self) {
        self.children.retain(|_, child| {
            child.prune();
            !child.is_empty()
        });
    }
}

/// The `k:` element naming the item of a keyed list, built from the key
/// fields the item has (compact JSON, keys sorted, as the server writes it).
pub fn key_element(item: &Value, keys: &[String]) -> Option<String> {
    let obj = item.as_object()?;
    let mut fields = BTreeMap::new();
    for key in keys {
        if let Some(v) = obj.get(key) {
            fields.insert(key.clone(), v.clone());
        }
    }
    if fields.is_empty() {
        return None;
    }
    serde_json::to_string(&fields).ok().map(|json| format!("k:{json}"))
}

/// The `v:` element naming an item of a set.
pub fn value_element(item: &Value) -> String {
    format!("v:{}", serde_json::to_string(item).unwrap_or_default())
}

/// Whether list item `item` is the one `element` names.
fn matches_element(item: &Value, element: &str, position: usize) -> bool {
    if let Some(keys) = element.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(keys) else {
            return false;
        };
        keys.iter().all(|(k, v)| item.get(k) == Some(v))
    } else if let Some(v) = element.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|v| &v == item)
    } else if let Some(i) = element.strip_prefix("i:") {
        i.parse::<usize>() == Ok(position)
    } else {
        false
    }
}

/// Follows one path element into a value.
pub fn step<'a>(value: &'a Value, element: &str) -> Option<&'a Value> {
    if let Some(field) = element.strip_prefix("f:") {
        return value.as_object()?.get(field);
    }
    value.as_array()?.iter().enumerate().find(|(i, item)| matches_element(item, element, *i)).map(|(_, item)| item)
}

pub fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, element| step(v, element))
}

fn step_mut<'a>(value: &'a mut Value, element: &str) -> Option<&'a mut Value> {
    if let Some(field) = element.strip_prefix("f:") {
        return value.as_object_mut()?.get_mut(field);
    }
    value
        .as_array_mut()?
        .iter_mut()
        .enumerate()
        .find(|(i, item)| matches_element(item, element, *i))
        .map(|(_, item)| item)
}

/// Removes the value at `path`; returns whether something was removed.
pub fn remove_at(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut parent = value;
    for element in parents {
        match step_mut(parent, element) {
            Some(next) => parent = next,
            None => return false,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        return parent.as_object_mut().is_some_and(|o| o.remove(field).is_some());
    }
    let Some(items) = parent.as_array_mut() else {
        return false;
    };
    match items.iter().enumerate().position(|(i, item)| matches_element(item, last, i)) {
        Some(index) => {
            items.remove(index);
            true
        }
        None => false,
    }
}

/// A path as the server prints it in conflicts: `.spec.replicas`,
/// `.spec.list[name="a"].value`, `.metadata.finalizers[="x"]`, `.items[3]`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(keys) = element.strip_prefix("k:") {
            let rendered = match serde_json::from_str::<Value>(keys) {
                Ok(Value::Object(keys)) => keys.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                _ => keys.to_string(),
            };
            out.push_str(&format!("[{rendered}]"));
        } else if let Some(v) = element.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = element.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(elements: &[&str]) -> Path {
        elements.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn round_trips_fields_v1() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
            "f:spec": {"f:list": {"k:{\"name\":\"x\"}": {".": {}, "f:name": {}}}, "f:replicas": {}}
        });
        let set = FieldSet::from_fields_v1(&v);
        assert_eq!(set.to_fields_v1(), v);
        assert!(set.contains(&p(&["f:spec", "f:replicas"])));
        assert!(set.contains(&p(&["f:metadata", "f:labels"])));
        assert!(!set.contains(&p(&["f:spec"])));
        assert!(set.touches(&p(&["f:spec"])));
    }

    #[test]
    fn subtracts_and_prunes() {
        let mut a = FieldSet::default();
        a.insert(&p(&["f:spec", "f:a"]));
        a.insert(&p(&["f:spec", "f:b"]));
        let mut b = FieldSet::default();
        b.insert(&p(&["f:spec", "f:a"]));
        a.subtract(&b);
        assert_eq!(a.to_fields_v1(), json!({"f:spec": {"f:b": {}}}));
        a.subtract(&a.clone());
        assert!(a.is_empty());
        assert_eq!(a.to_fields_v1(), json!({}));
    }

    #[test]
    fn walks_keyed_lists() {
        let obj = json!({"spec": {"list": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}});
        let path = p(&["f:spec", "f:list", "k:{\"name\":\"y\"}", "f:v"]);
        assert_eq!(lookup(&obj, &path), Some(&json!(2)));
        assert_eq!(display(&path), ".spec.list[name=\"y\"].v");
        let mut obj2 = obj.clone();
        assert!(remove_at(&mut obj2, &path[..3]));
        assert_eq!(obj2, json!({"spec": {"list": [{"name": "x", "v": 1}]}}));
    }
}
