//! Helpers for objects as JSON values: metadata access, the changes the
//! server itself makes to objects (defaults, identity stamping) and the
//! comparisons that decide whether a write changed anything.

use serde_json::{Map, Value, json};

use super::resources::ResourceType;
use super::schema::{self, Node};
use super::store::Store;
use super::util;

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_str<'v>(obj: &'v Value, key: &str) -> Option<&'v str> {
    meta(obj).and_then(|m| m.get(key)).and_then(Value::as_str)
}

/// `metadata` as a mutable map, created (and the object made an object)
/// when missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(map) = obj else {
        unreachable!("made an object above");
    };
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let Value::Object(meta) = meta else {
        unreachable!("made an object above");
    };
    meta
}

pub fn set_field(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert(key.into(), value);
    }
}

/// Defaulting, which happens as the request is decoded (so a non-apply
/// writer owns what it fills in): pruning and CRD defaults for custom
/// resources, the `kubernetes.io/metadata.name` label of Namespaces and the
/// `type` of Secrets.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    if rt.structural {
        let root = Node(&rt.schema);
        schema::prune_unknown(obj, root);
        if let Some(map) = obj.as_object_mut() {
            for (key, value) in map.iter_mut() {
                if key != "metadata" {
                    schema::apply_defaults(value, root.child(key));
                }
            }
        }
        return;
    }
    match rt.kind.as_str() {
        "Namespace" => {
            let name = meta_str(obj, "name").unwrap_or_default().to_string();
            let labels = meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        "Secret" => {
            if let Some(map) = obj.as_object_mut() {
                map.entry("type").or_insert_with(|| json!("Opaque"));
            }
        }
        _ => {}
    }
}

/// Changes the server makes after field ownership is recorded (owned by
/// nobody): a Namespace's `kubernetes` finalizer and `Active` phase.
pub fn prepare(rt: &ResourceType, obj: &mut Value) {
    if rt.kind != "Namespace" || rt.custom {
        return;
    }
    if let Some(map) = obj.as_object_mut() {
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut() {
            spec.entry("finalizers").or_insert_with(|| json!(["kubernetes"]));
        }
        let status = map.entry("status").or_insert_with(|| json!({}));
        if let Some(status) = status.as_object_mut() {
            status.entry("phase").or_insert_with(|| json!("Active"));
        }
    }
}

/// The server-maintained metadata a client cannot set on create.
pub const SYSTEM_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Stamps identity on a new object. A dry run gets everything but a
/// resourceVersion, like on the real server.
pub fn stamp_new(store: &mut Store, rt: &ResourceType, obj: &mut Value, dry_run: bool) {
    let meta = meta_mut(obj);
    meta.insert("uid".into(), json!(util::new_uid()));
    meta.insert("creationTimestamp".into(), json!(util::now_rfc3339()));
    if rt.has_generation() {
        meta.insert("generation".into(), json!(1));
    }
    if !dry_run {
        meta.insert("resourceVersion".into(), json!(store.next_resource_version()));
    }
}

/// Everything outside metadata and status: a change there bumps generation.
fn spec_part(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn stamp_update(store: &mut Store, rt: &ResourceType, live: &Value, obj: &mut Value, dry_run: bool) {
    let generation = meta(live).and_then(|m| m.get("generation")).and_then(Value::as_i64);
    let bump = spec_part(live) != spec_part(obj);
    let live_rv = meta_str(live, "resourceVersion").unwrap_or_default().to_string();
    let meta = meta_mut(obj);
    if rt.has_generation() {
        let generation = generation.unwrap_or(1) + i64::from(bump);
        meta.insert("generation".into(), json!(generation));
    }
    let rv = if dry_run { live_rv } else { store.next_resource_version() };
    meta.insert("resourceVersion".into(), json!(rv));
}

/// Equality of everything but managedFields.
pub fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

/// Equality that ignores the `time` of managedFields entries.
pub fn same_ignoring_times(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(entries) = v.pointer_mut("/metadata/managedFields").and_then(Value::as_array_mut) {
            for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                entry.remove("time");
            }
        }
        v
    };
    strip(a) == strip(b)
}

pub fn has_finalizers(obj: &Value) -> bool {
    meta(obj).and_then(|m| m.get("finalizers")).and_then(Value::as_array).is_some_and(|f| !f.is_empty())
}

pub fn being_deleted(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.contains_key("deletionTimestamp"))
}
