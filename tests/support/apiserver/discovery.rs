//! Discovery documents, in the shapes recorded from the real server: the
//! legacy `APIVersions`/`APIGroupList`/`APIResourceList` and the aggregated
//! `APIGroupDiscoveryList` (apidiscovery.k8s.io/v2) that clients ask for
//! through the `Accept` header. Only the served groups are listed.

use serde_json::{Map, Value, json};

use super::resources::{Registry, ResourceType};

/// The Accept value that selects aggregated discovery.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let part = part.replace(' ', "");
        part.contains("as=APIGroupDiscoveryList") && part.contains("g=apidiscovery.k8s.io")
    })
}

pub const AGGREGATED_CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `GET /api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
    })
}

fn group_version(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// `GET /apis/<group>`.
pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let versions: Vec<Value> =
        registry.groups().into_iter().filter(|(g, _)| g == group).map(|(g, v)| group_version(&g, &v)).collect();
    let preferred = versions.first()?.clone();
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": preferred,
    }))
}

/// `GET /apis` in the legacy form.
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .filter_map(|(g, _)| {
            let mut group = api_group(registry, &g)?;
            let obj = group.as_object_mut()?;
            obj.remove("kind");
            obj.remove("apiVersion");
            Some(group)
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for rt in registry.in_group_version(group, version) {
        resources.push(legacy_resource(rt));
        if rt.status_subresource {
            resources.push(legacy_subresource(rt, "status", None));
        }
        if rt.scale.is_some() {
            resources.push(legacy_subresource(rt, "scale", Some(("autoscaling", "v1", "Scale"))));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let mut list = Map::new();
    list.insert("kind".into(), json!("APIResourceList"));
    if group.is_empty() {
        list.insert("groupVersion".into(), json!(version));
    } else {
        list.insert("apiVersion".into(), json!("v1"));
        list.insert("groupVersion".into(), json!(format!("{group}/{version}")));
    }
    list.insert("resources".into(), Value::Array(resources));
    Some(Value::Object(list))
}

fn legacy_resource(rt: &ResourceType) -> Value {
    let mut r = Map::new();
    r.insert("name".into(), json!(rt.plural));
    r.insert("singularName".into(), json!(rt.singular));
    r.insert("namespaced".into(), json!(rt.namespaced));
    r.insert("kind".into(), json!(rt.kind));
    r.insert("verbs".into(), json!(rt.verbs()));
    if !rt.short_names.is_empty() {
        r.insert("shortNames".into(), json!(rt.short_names));
    }
    if !rt.categories.is_empty() {
        r.insert("categories".into(), json!(rt.categories));
    }
    if let Some(hash) = rt.storage_version_hash {
        r.insert("storageVersionHash".into(), json!(hash));
    }
    Value::Object(r)
}

fn legacy_subresource(rt: &ResourceType, sub: &str, other_kind: Option<(&str, &str, &str)>) -> Value {
    let mut r = Map::new();
    r.insert("name".into(), json!(format!("{}/{sub}", rt.plural)));
    r.insert("singularName".into(), json!(""));
    r.insert("namespaced".into(), json!(rt.namespaced));
    if let Some((group, version, kind)) = other_kind {
        r.insert("group".into(), json!(group));
        r.insert("version".into(), json!(version));
        r.insert("kind".into(), json!(kind));
    } else {
        r.insert("kind".into(), json!(rt.kind));
    }
    r.insert("verbs".into(), json!(["get", "patch", "update"]));
    Value::Object(r)
}

/// `responseKind` as the aggregated document writes it: group and version
/// are filled in for CRD-backed types only.
fn response_kind(rt: &ResourceType) -> Value {
    if rt.custom {
        json!({"group": rt.group, "version": rt.version, "kind": rt.kind})
    } else {
        json!({"group": "", "version": "", "kind": rt.kind})
    }
}

fn aggregated_resource(rt: &ResourceType) -> Value {
    let mut r = Map::new();
    r.insert("resource".into(), json!(rt.plural));
    r.insert("responseKind".into(), response_kind(rt));
    r.insert("scope".into(), json!(if rt.namespaced { "Namespaced" } else { "Cluster" }));
    r.insert("singularResource".into(), json!(rt.singular));
    r.insert("verbs".into(), json!(rt.verbs()));
    if !rt.short_names.is_empty() {
        r.insert("shortNames".into(), json!(rt.short_names));
    }
    if !rt.categories.is_empty() {
        r.insert("categories".into(), json!(rt.categories));
    }
    let mut subresources = Vec::new();
    if rt.status_subresource {
        subresources.push(json!({
            "subresource": "status",
            "responseKind": response_kind(rt),
            "verbs": ["get", "patch", "update"],
        }));
    }
    if rt.scale.is_some() {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": ["get", "patch", "update"],
        }));
    }
    if !subresources.is_empty() {
        r.insert("subresources".into(), Value::Array(subresources));
    }
    Value::Object(r)
}

/// `GET /api` (core only) or `GET /apis` (all named groups) in the
/// aggregated form.
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, version)| {
            let resources: Vec<Value> =
                registry.in_group_version(&group, &version).map(|rt| aggregated_resource(rt)).collect();
            let metadata = if group.is_empty() { json!({}) } else { json!({"name": group}) };
            json!({
                "metadata": metadata,
                "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
            })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "gitVersion": "v1.36.2",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}
