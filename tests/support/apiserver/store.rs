//! In-memory object storage with one global resourceVersion counter, the way
//! etcd backs a real server. Objects are kept sorted by
//! (group, version, resource, namespace, name), which is also the order the
//! real server lists them in.

use std::collections::BTreeMap;

use serde_json::Value;

use super::resources::ResourceType;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub group: String,
    pub version: String,
    pub plural: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
        Key {
            group: rt.group.clone(),
            version: rt.version.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced { namespace.unwrap_or_default().to_string() } else { String::new() },
            name: name.to_string(),
        }
    }

    fn namespace_object(name: &str) -> Key {
        Key {
            group: String::new(),
            version: "v1".into(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: name.into(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    last_resource_version: u64,
}

impl Store {
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    pub fn put(&mut self, key: Key, obj: Value) {
        self.objects.insert(key, obj);
    }

    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        self.objects.remove(key)
    }

    /// Objects of one type, in one namespace or (with `None`) in all.
    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> Vec<(&Key, &Value)> {
        let start = Key::new(rt, namespace, "");
        self.objects
            .range(start..)
            .take_while(|(k, _)| {
                k.group == rt.group
                    && k.version == rt.version
                    && k.plural == rt.plural
                    && namespace.is_none_or(|ns| !rt.namespaced || k.namespace == ns)
            })
            .collect()
    }

    /// Hands out the next resourceVersion.
    pub fn next_resource_version(&mut self) -> String {
        self.last_resource_version += 1;
        self.last_resource_version.to_string()
    }

    /// The resourceVersion a LIST reports.
    pub fn current_resource_version(&self) -> String {
        self.last_resource_version.to_string()
    }

    /// Keeps the counter ahead of versions inserted from outside.
    pub fn observe_resource_version(&mut self, version: &str) {
        if let Ok(v) = version.parse::<u64>() {
            self.last_resource_version = self.last_resource_version.max(v);
        }
    }

    pub fn namespace_exists(&self, name: &str) -> bool {
        self.objects.contains_key(&Key::namespace_object(name))
    }

    /// Removes every namespaced object in `namespace` (what the namespace
    /// controller does before the namespace itself goes away).
    pub fn purge_namespace(&mut self, namespace: &str) {
        self.objects.retain(|k, _| k.namespace != namespace);
    }
}
