//! Request routing: authentication, then discovery documents or a resource
//! path handed to [`handlers`]. Everything here is synchronous and works on
//! plain values, so it does not care which HTTP stack feeds it.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use super::discovery;
use super::faults::Faults;
use super::handlers;
use super::resources::{Registry, ResourceType};
use super::status::{self, ApiError};
use super::store::{Key, Store};
use super::util;

/// A request as the router sees it.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: String,
    pub accept: String,
    pub authorization: Option<String>,
    pub user_agent: String,
    pub body: Vec<u8>,
}

/// What to send back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub content_type: &'static str,
    pub retry_after: Option<u64>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body, content_type: "application/json", retry_after: None }
    }
}

impl From<ApiError> for Reply {
    fn from(err: ApiError) -> Reply {
        Reply { status: err.code, body: err.body, content_type: "application/json", retry_after: err.retry_after }
    }
}

/// A request path that names resources.
#[derive(Debug, Clone)]
pub struct ResourcePath {
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

enum Target {
    Version,
    Health,
    CoreVersions,
    GroupList,
    Group(String),
    ResourceList(String, String),
    Resource(ResourcePath),
}

/// The state shared by every request of one server.
#[derive(Debug)]
pub struct Api {
    pub token: String,
    pub registry: Arc<Registry>,
    pub faults: Faults,
    /// `host:port`, echoed in `/api` as the real server does.
    pub server_address: String,
    store: Mutex<Store>,
    requests: Mutex<Vec<(String, String)>>,
}

impl Api {
    pub fn new(token: String, server_address: String, registry: Arc<Registry>) -> Api {
        let api = Api {
            token,
            registry,
            faults: Faults::default(),
            server_address,
            store: Mutex::new(Store::default()),
            requests: Mutex::new(Vec::new()),
        };
        api.seed();
        api
    }

    /// Stores the CRDs (readable under apiextensions.k8s.io) and the
    /// namespaces every cluster has.
    fn seed(&self) {
        let mut store = self.store();
        let crd_type = self.registry.find("apiextensions.k8s.io", "v1", "customresourcedefinitions");
        if let Some(crd_type) = crd_type {
            for crd in &self.registry.crds {
                let mut obj = crd.clone();
                let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
                let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
                let versions: Vec<Value> = obj
                    .pointer("/spec/versions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned())
                    .collect();
                let now = util::now_rfc3339();
                let rv = store.next_resource_version();
                if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("uid".into(), json!(util::new_uid()));
                    meta.insert("resourceVersion".into(), json!(rv));
                    meta.insert("generation".into(), json!(1));
                    meta.insert("creationTimestamp".into(), json!(now));
                }
                if let Some(map) = obj.as_object_mut() {
                    let condition = |kind: &str, reason: &str, message: &str| {
                        json!({"type": kind, "status": "True", "lastTransitionTime": now,
                               "reason": reason, "message": message})
                    };
                    map.insert(
                        "status".into(),
                        json!({
                            "acceptedNames": names,
                            "storedVersions": versions,
                            "conditions": [
                                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                                condition("Established", "InitialNamesAccepted",
                                          "the initial names have been accepted"),
                            ],
                        }),
                    );
                }
                store.put(Key::new(&crd_type, None, &name), obj);
            }
        }
        drop(store);
        for namespace in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            self.ensure_namespace(namespace);
        }
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, method: &str, path_and_query: &str) {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).push((method.to_string(), path_and_query.to_string()));
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn clear_requests(&self) {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Creates a namespace (with the server's defaults) unless it exists.
    pub fn ensure_namespace(&self, name: &str) {
        if self.store().namespace_exists(name) {
            return;
        }
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        if let Err(e) = handlers::insert(self, obj) {
            panic!("cannot create namespace {name}: {e}");
        }
    }

    /// Handles one request; never panics on request content.
    pub fn handle(&self, req: &Request) -> Reply {
        let authorized = req
            .authorization
            .as_deref()
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|t| t.trim() == self.token);
        if !authorized {
            return status::unauthorized().into();
        }
        let Some(target) = self.parse_target(&req.path) else {
            return status::unknown_path().into();
        };
        let result = match target {
            Target::Version => Ok(Reply::json(200, discovery::version())),
            Target::Health => Ok(Reply {
                status: 200,
                body: Value::String("ok".into()),
                content_type: "text/plain",
                retry_after: None,
            }),
            Target::CoreVersions if discovery::wants_aggregated(&req.accept) => {
                Ok(aggregated(discovery::aggregated(&self.registry, true)))
            }
            Target::CoreVersions => Ok(Reply::json(200, discovery::core_versions(&self.server_address))),
            Target::GroupList if discovery::wants_aggregated(&req.accept) => {
                Ok(aggregated(discovery::aggregated(&self.registry, false)))
            }
            Target::GroupList => Ok(Reply::json(200, discovery::api_group_list(&self.registry))),
            Target::Group(group) => discovery::api_group(&self.registry, &group)
                .map(|v| Reply::json(200, v))
                .ok_or_else(status::unknown_path),
            Target::ResourceList(group, version) => discovery::resource_list(&self.registry, &group, &version)
                .map(|v| Reply::json(200, v))
                .ok_or_else(status::unknown_path),
            Target::Resource(path) => handlers::dispatch(self, req, &path),
        };
        result.unwrap_or_else(Reply::from)
    }

    fn parse_target(&self, path: &str) -> Option<Target> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["version"] => Some(Target::Version),
            ["healthz" | "readyz" | "livez"] => Some(Target::Health),
            ["api"] => Some(Target::CoreVersions),
            ["api", version] => Some(Target::ResourceList(String::new(), (*version).into())),
            ["api", version, rest @ ..] => self.resource_path("", version, rest),
            ["apis"] => Some(Target::GroupList),
            ["apis", group] => Some(Target::Group((*group).into())),
            ["apis", group, version] => Some(Target::ResourceList((*group).into(), (*version).into())),
            ["apis", group, version, rest @ ..] => self.resource_path(group, version, rest),
            _ => None,
        }
    }

    fn resource_path(&self, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
        let target = |rt, namespace: Option<&str>, name: Option<&&str>, sub: Option<&&str>| {
            Some(Target::Resource(ResourcePath {
                rt,
                namespace: namespace.map(str::to_string),
                name: name.map(|s| s.to_string()),
                subresource: sub.map(|s| s.to_string()),
            }))
        };
        if let ["namespaces", namespace, plural, tail @ ..] = rest
            && tail.len() <= 2
            && let Some(rt) = self.registry.find(group, version, plural)
            && rt.namespaced
        {
            return target(rt, Some(namespace), tail.first(), tail.get(1));
        }
        let rt = self.registry.find(group, version, rest.first()?)?;
        match rest.len() {
            1 => target(rt, None, None, None),
            2 | 3 if !rt.namespaced => target(rt, None, rest.get(1), rest.get(2)),
            _ => None,
        }
    }
}

fn aggregated(body: Value) -> Reply {
    Reply { status: 200, body, content_type: discovery::AGGREGATED_CONTENT_TYPE, retry_after: None }
}
