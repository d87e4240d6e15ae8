//! Field ownership: server-side apply (merge, conflicts, removal of fields a
//! manager stopped applying) and the bookkeeping done for ordinary writes.
//!
//! Rules implemented, as the real server behaves:
//! - An applier's new field set replaces its previous one. Fields it no
//!   longer applies and nobody else owns are removed from the object.
//! - Applying a different value to a scalar or atomic field owned by another
//!   manager is a conflict unless `force=true`, which moves ownership.
//!   The same value from two managers is shared ownership.
//! - Non-apply writes give the writer every field they changed and take
//!   those fields away from other managers.
//! - Defaults filled in by the server are owned by nobody.

use serde_json::{Map, Value, json};

use super::fields::{self, FieldSet, Path};
use super::schema::{Node, Shape};
use super::status::Conflict;

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == subresource
    }

    /// The manager as conflict messages print it.
    fn display(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

pub fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
            Some(Entry {
                manager: text("manager")?,
                operation: text("operation").unwrap_or_else(|| "Update".into()),
                api_version: text("apiVersion").unwrap_or_default(),
                time: text("time"),
                subresource: text("subresource"),
                fields: e.get("fieldsV1").map(FieldSet::from_fields_v1).unwrap_or_default(),
            })
        })
        .collect()
}

/// Writes the entries back, dropping empty ones and in the server's order:
/// by operation (`Apply` first), then time (none first), manager, apiVersion.
pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let mut sorted: Vec<&Entry> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    sorted.sort_by(|a, b| {
        (&a.operation, a.time.as_deref().unwrap_or(""), &a.manager, &a.api_version).cmp(&(
            &b.operation,
            b.time.as_deref().unwrap_or(""),
            &b.manager,
            &b.api_version,
        ))
    });
    let list: Vec<Value> = sorted
        .into_iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), json!(e.manager));
            m.insert("operation".into(), json!(e.operation));
            m.insert("apiVersion".into(), json!(e.api_version));
            if let Some(time) = &e.time {
                m.insert("time".into(), json!(time));
            }
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), e.fields.to_fields_v1());
            if let Some(sub) = &e.subresource {
                m.insert("subresource".into(), json!(sub));
            }
            Value::Object(m)
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Which part of an object a write may change and own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `status` is excluded when it is a subresource.
    Main { status_subresource: bool },
    /// The `status` subresource.
    Status,
}

const OWNABLE_METADATA: [&str; 4] = ["labels", "annotations", "finalizers", "ownerReferences"];

/// The part of `obj` that field management sees in `scope`: no
/// apiVersion/kind, only the user-settable metadata, and no nulls.
pub fn tracked_view(obj: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    let Some(map) = obj.as_object() else {
        return Value::Object(out);
    };
    for (key, value) in map {
        let keep = match (scope, key.as_str()) {
            (_, "apiVersion" | "kind" | "metadata") => false,
            (Scope::Status, k) => k == "status",
            (Scope::Main { status_subresource }, "status") => !status_subresource,
            _ => true,
        };
        if keep && !value.is_null() {
            out.insert(key.clone(), without_nulls(value));
        }
    }
    if scope != Scope::Status
        && let Some(meta) = map.get("metadata").and_then(Value::as_object)
    {
        let owned: Map<String, Value> = OWNABLE_METADATA
            .iter()
            .filter_map(|k| meta.get(*k).filter(|v| !v.is_null()).map(|v| ((*k).to_string(), v.clone())))
            .collect();
        if !owned.is_empty() {
            out.insert("metadata".into(), Value::Object(owned));
        }
    }
    Value::Object(out)
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The field set an apply configuration claims: every leaf, every keyed list
/// item, every atomic value, and empty objects and lists as leaves.
pub fn applied_set(view: &Value, schema: Node<'_>) -> FieldSet {
    let mut set = FieldSet::default();
    if let Some(map) = view.as_object() {
        for (key, value) in map {
            walk_applied(value, schema.child(key), set.entry(format!("f:{key}")));
        }
    }
    set
}

fn walk_applied(value: &Value, schema: Node<'_>, node: &mut FieldSet) {
    match schema.shape(value) {
        Shape::Atomic => node.mark(),
        Shape::Struct | Shape::Map => match value.as_object() {
            Some(map) if !map.is_empty() => {
                for (key, child) in map {
                    walk_applied(child, schema.child(key), node.entry(format!("f:{key}")));
                }
            }
            _ => node.mark(),
        },
        Shape::ListMap(keys) => {
            let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.is_empty() {
                node.mark();
            }
            let item_schema = schema.items();
            for item in items {
                let Some(element) = fields::key_element(item, &keys) else {
                    node.mark();
                    continue;
                };
                let item_node = node.entry(element);
                item_node.mark();
                if let Some(map) = item.as_object()
                    && item_schema.shape(item) != Shape::Atomic
                {
                    for (key, child) in map {
                        walk_applied(child, item_schema.child(key), item_node.entry(format!("f:{key}")));
                    }
                }
            }
        }
        Shape::ListSet => {
            let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
            if items.is_empty() {
                node.mark();
            }
            for item in items {
                node.entry(fields::value_element(item)).mark();
            }
        }
    }
}

/// The fields a non-apply write changed or added. Maps and lists created by
/// the write are members themselves (the `"."` the server records).
pub fn changed_set(old: Option<&Value>, new: &Value, schema: Node<'_>) -> FieldSet {
    let mut set = FieldSet::default();
    if let Some(map) = new.as_object() {
        let old_map = old.and_then(Value::as_object);
        for (key, value) in map {
            let before = old_map.and_then(|m| m.get(key));
            walk_changed(before, value, schema.child(key), set.entry(format!("f:{key}")));
        }
    }
    set.retain_existing(new);
    set
}

fn walk_changed(old: Option<&Value>, new: &Value, schema: Node<'_>, node: &mut FieldSet) {
    if old == Some(new) {
        return;
    }
    match schema.shape(new) {
        Shape::Atomic => node.mark(),
        shape @ (Shape::Struct | Shape::Map) => {
            let old_map = old.and_then(Value::as_object);
            let map = new.as_object();
            if old_map.is_none() && (shape == Shape::Map || map.is_none_or(Map::is_empty)) {
                node.mark();
            }
            for (key, child) in map.into_iter().flatten() {
                walk_changed(
                    old_map.and_then(|m| m.get(key)),
                    child,
                    schema.child(key),
                    node.entry(format!("f:{key}")),
                );
            }
        }
        Shape::ListMap(keys) => {
            let old_items = old.and_then(Value::as_array);
            let items = new.as_array().map(Vec::as_slice).unwrap_or_default();
            if old_items.is_none() || items.is_empty() {
                node.mark();
            }
            let item_schema = schema.items();
            for item in items {
                let Some(element) = fields::key_element(item, &keys) else {
                    node.mark();
                    continue;
                };
                let before = old_items
                    .and_then(|list| list.iter().find(|o| fields::key_element(o, &keys).as_deref() == Some(&element)));
                let item_node = node.entry(element);
                if before.is_none() {
                    item_node.mark();
                }
                if before == Some(item) {
                    continue;
                }
                for (key, child) in item.as_object().into_iter().flatten() {
                    walk_changed(
                        before.and_then(|b| b.get(key)),
                        child,
                        item_schema.child(key),
                        item_node.entry(format!("f:{key}")),
                    );
                }
            }
        }
        Shape::ListSet => {
            let old_items = old.and_then(Value::as_array);
            let items = new.as_array().map(Vec::as_slice).unwrap_or_default();
            if old_items.is_none() {
                node.mark();
            }
            for item in items {
                if !old_items.is_some_and(|list| list.contains(item)) {
                    node.entry(fields::value_element(item)).mark();
                }
            }
        }
    }
}

/// Merges an apply configuration into a live value: objects field by field,
/// keyed lists item by item (applied order first, then the live-only items),
/// sets by union, everything else replaced.
pub fn merge_into(target: &mut Value, patch: &Value, schema: Node<'_>) {
    match schema.shape(patch) {
        Shape::Atomic => *target = patch.clone(),
        Shape::Struct | Shape::Map => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let (Some(live), Some(applied)) = (target.as_object_mut(), patch.as_object()) {
                for (key, value) in applied {
                    match live.get_mut(key) {
                        Some(existing) => merge_into(existing, value, schema.child(key)),
                        None => {
                            live.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
        }
        Shape::ListMap(keys) => {
            let live: Vec<Value> = target.as_array().cloned().unwrap_or_default();
            let applied = patch.as_array().map(Vec::as_slice).unwrap_or_default();
            let item_schema = schema.items();
            let mut used = vec![false; live.len()];
            let mut out = Vec::with_capacity(live.len() + applied.len());
            for item in applied {
                let element = fields::key_element(item, &keys);
                let found = live
                    .iter()
                    .enumerate()
                    .position(|(i, l)| !used[i] && element.is_some() && fields::key_element(l, &keys) == element);
                match found {
                    Some(i) => {
                        used[i] = true;
                        let mut merged = live[i].clone();
                        merge_into(&mut merged, item, item_schema);
                        out.push(merged);
                    }
                    None => out.push(item.clone()),
                }
            }
            out.extend(live.into_iter().zip(used).filter(|(_, used)| !used).map(|(item, _)| item));
            *target = Value::Array(out);
        }
        Shape::ListSet => {
            let live: Vec<Value> = target.as_array().cloned().unwrap_or_default();
            let mut out: Vec<Value> = patch.as_array().cloned().unwrap_or_default();
            for item in live {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
            *target = Value::Array(out);
        }
    }
}

/// The schema node at `path` (list elements step into `items`).
fn schema_at<'a>(schema: Node<'a>, path: &[String]) -> Node<'a> {
    path.iter().fold(schema, |node, element| match element.strip_prefix("f:") {
        Some(field) => node.child(field),
        None => node.items(),
    })
}

/// Whether the value at `path` is owned as a whole (only those can conflict;
/// objects and keyed lists conflict through their leaves).
fn is_atomic_at(schema: Node<'_>, obj: &Value, path: &[String]) -> bool {
    let Some(value) = fields::lookup(obj, path) else {
        return true;
    };
    if path.last().is_some_and(|e| e.starts_with("k:")) {
        return false;
    }
    schema_at(schema, path).shape(value) == Shape::Atomic
}

/// What an apply produced: the merged object (before defaulting) and the new
/// managedFields entries, the applier's last.
pub struct Applied {
    pub object: Value,
    pub entries: Vec<Entry>,
}

/// Server-side apply of `patch_view` (a [`tracked_view`] of the request body)
/// by `manager` onto `live`.
pub fn apply(
    live: &Value,
    patch_view: &Value,
    schema: Node<'_>,
    manager: &str,
    api_version: &str,
    force: bool,
    now: &str,
) -> Result<Applied, Vec<Conflict>> {
    let applied = applied_set(patch_view, schema);
    let mut merged = live.clone();
    merge_into(&mut merged, patch_view, schema);

    let mut entries = read_entries(live);
    let is_mine = |e: &Entry| e.is(manager, "Apply", None);
    let mut conflicts = Vec::new();
    let mut taken: Vec<(usize, Path)> = Vec::new();
    for (index, entry) in entries.iter().enumerate().filter(|(_, e)| !is_mine(e)) {
        for path in applied.paths() {
            if entry.fields.contains(&path)
                && is_atomic_at(schema, &merged, &path)
                && fields::lookup(live, &path) != fields::lookup(&merged, &path)
            {
                conflicts.push(Conflict { manager: entry.display(), path: fields::display(&path) });
                taken.push((index, path));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for (index, path) in &taken {
        entries[*index].fields.remove(path);
    }

    let previous = entries.iter().find(|e| is_mine(e)).map(|e| e.fields.clone()).unwrap_or_default();
    let mut others = FieldSet::default();
    for entry in entries.iter().filter(|e| !is_mine(e)) {
        others.union_with(&entry.fields);
    }
    let mut dropped = previous;
    dropped.subtract(&applied);
    for path in dropped.paths() {
        if !others.touches(&path) && !applied.touches(&path) {
            fields::remove_at(&mut merged, &path);
        }
    }

    match entries.iter_mut().find(|e| is_mine(e)) {
        Some(entry) => {
            entry.fields = applied;
            entry.api_version = api_version.to_string();
            entry.time = Some(now.to_string());
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            subresource: None,
            fields: applied,
        }),
    }
    Ok(Applied { object: merged, entries })
}

/// Ownership bookkeeping for a non-apply write by `manager` at `now`.
pub fn record_update(
    entries: &mut Vec<Entry>,
    changed: &FieldSet,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    now: &str,
) {
    if changed.is_empty() {
        return;
    }
    for entry in entries.iter_mut() {
        if !entry.is(manager, "Update", subresource) {
            entry.fields.subtract(changed);
        }
    }
    match entries.iter_mut().find(|e| e.is(manager, "Update", subresource)) {
        Some(entry) => {
            entry.fields.union_with(changed);
            entry.api_version = api_version.to_string();
            entry.time = Some(now.to_string());
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            subresource: subresource.map(str::to_string),
            fields: changed.clone(),
        }),
    }
}

/// Final tidy-up once the object content is settled: ownership of fields
/// that no longer exist is forgotten. Each entry is checked against the
/// tracked view of its own scope (main resource or status).
pub fn forget_missing(entries: &mut [Entry], main_view: &Value, status_view: &Value) {
    for entry in entries.iter_mut() {
        let view = if entry.subresource.as_deref() == Some("status") { status_view } else { main_view };
        entry.fields.retain_existing(view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer"},
                        "name": {"type": "string"},
                        "list": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}
                        },
                        "atomic": {"type": "array", "items": {"type": "string"}}
                    }
                }
            }
        })
    }

    #[test]
    fn applied_set_marks_keyed_items() {
        let s = schema();
        let view = json!({"spec": {"list": [{"name": "a", "v": 1}], "atomic": ["x"], "replicas": 1}});
        let set = applied_set(&view, Node(&s));
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:spec": {
                "f:atomic": {},
                "f:list": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:v": {}}},
                "f:replicas": {}
            }})
        );
    }

    #[test]
    fn conflicts_then_force_moves_ownership() {
        let s = schema();
        let live_view = json!({"spec": {"replicas": 1, "name": "n"}});
        let Ok(first) = apply(&json!({"metadata": {}}), &live_view, Node(&s), "a", "v1", false, "t") else {
            panic!("first apply failed");
        };
        let mut live = first.object;
        write_entries(&mut live, &first.entries);
        let change = json!({"spec": {"replicas": 2, "name": "n"}});
        let Err(conflicts) = apply(&live, &change, Node(&s), "b", "v1", false, "t") else {
            panic!("expected a conflict");
        };
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].path, ".spec.replicas");
        assert_eq!(conflicts[0].manager, "\"a\"");
        let Ok(forced) = apply(&live, &change, Node(&s), "b", "v1", true, "t") else {
            panic!("forced apply failed");
        };
        let a = &forced.entries[0];
        assert_eq!(a.fields.to_fields_v1(), json!({"f:spec": {"f:name": {}}}));
        assert_eq!(forced.object["spec"]["replicas"], json!(2));
    }

    #[test]
    fn dropping_a_field_removes_it_unless_shared() {
        let s = schema();
        let Ok(first) = apply(
            &json!({"metadata": {}}),
            &json!({"spec": {"replicas": 1, "name": "n"}}),
            Node(&s),
            "a",
            "v1",
            false,
            "t",
        ) else {
            panic!("apply failed");
        };
        let mut live = first.object;
        write_entries(&mut live, &first.entries);
        let Ok(second) = apply(&live, &json!({"spec": {"name": "n"}}), Node(&s), "a", "v1", false, "t") else {
            panic!("apply failed");
        };
        assert_eq!(second.object["spec"], json!({"name": "n"}));
    }
}
