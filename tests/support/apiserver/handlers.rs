//! The resource operations: GET, LIST, POST, PUT, PATCH (apply, merge, JSON
//! patch), DELETE, and the `status` and `scale` subresources.
//!
//! Each write runs the same steps as the real server, in its order:
//! decode → identity checks (name, namespace) → typed check (apply only, 500)
//! → namespace exists (404) → field ownership / conflicts (409) → defaults
//! → no-op detection → validation (422) → resourceVersion/generation → store.
//! `dryRun=All` runs every step and stores nothing.

use serde_json::{Map, Value, json};

use super::object::{
    SYSTEM_METADATA, apply_defaults, being_deleted, has_finalizers, meta, meta_mut, meta_str, prepare, same_content,
    same_ignoring_times, set_field, stamp_new, stamp_update,
};
use super::patch::{json_patch, merge_patch};
use super::resources::ResourceType;
use super::router::{Api, Reply, Request, ResourcePath};
use super::schema::Node;
use super::selector::Selector;
use super::ssa::{self, Scope};
use super::status::{self, ApiError, ApiResult, FieldError};
use super::store::{Key, Store};
use super::typecheck;
use super::util;
use super::validation;

/// Query parameters of one request.
struct Query<'a>(&'a [(String, String)]);

impl Query<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }

    fn dry_run(&self) -> ApiResult<bool> {
        let mut dry = false;
        for (_, value) in self.0.iter().filter(|(k, _)| k == "dryRun") {
            match value.as_str() {
                "All" => dry = true,
                "" => {}
                other => {
                    return Err(status::bad_request(&format!(
                        "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                    )));
                }
            }
        }
        Ok(dry)
    }
}

/// Everything an operation needs to know about its request.
struct Op<'a> {
    req: &'a Request,
    rt: &'a ResourceType,
    namespace: Option<&'a str>,
    query: Query<'a>,
}

impl Op<'_> {
    /// The manager of a non-apply write: `fieldManager`, else the client's
    /// user-agent up to the first `/`, as the server derives it.
    fn manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.to_string();
        }
        let agent = self.req.user_agent.split('/').next().unwrap_or_default();
        if agent.is_empty() { "unknown".into() } else { agent.to_string() }
    }

    fn key(&self, name: &str) -> Key {
        Key::new(self.rt, self.namespace, name)
    }

    fn schema(&self) -> Node<'_> {
        Node(&self.rt.schema)
    }

    fn main_scope(&self) -> Scope {
        Scope::Main { status_subresource: self.rt.status_subresource }
    }

    fn invalid(&self, name: &str, errors: Vec<FieldError>) -> ApiError {
        status::invalid(&self.rt.kind, &self.rt.group, name, errors)
    }
}

/// Routes a resource request to its operation.
pub fn dispatch(api: &Api, req: &Request, path: &ResourcePath) -> ApiResult<Reply> {
    let op = Op { req, rt: &path.rt, namespace: path.namespace.as_deref(), query: Query(&req.query) };
    let mut store = api.store();
    let store = &mut *store;
    let name = path.name.as_deref();
    match (req.method.as_str(), name, path.subresource.as_deref()) {
        ("GET", None, None) if op.query.flag("watch") => {
            Err(status::method_not_allowed("watch is not supported by the in-process test API server"))
        }
        ("GET", None, None) => list(&op, store),
        ("POST", None, None) if op.rt.namespaced && op.namespace.is_none() => Err(status::unknown_path()),
        ("POST", None, None) => create(&op, store),
        ("DELETE", None, None) => delete_collection(&op, store),
        ("GET", Some(name), None) => get(&op, store, name).map(|o| Reply::json(200, o)),
        ("PUT", Some(name), None) => update(&op, store, name),
        ("PATCH", Some(name), None) => patch(&op, store, name),
        ("DELETE", Some(name), None) => delete(&op, store, name),
        (method, Some(name), Some("status")) if op.rt.status_subresource => {
            status_subresource(&op, store, method, name)
        }
        (method, Some(name), Some("scale")) if op.rt.scale.is_some() => scale_subresource(&op, store, method, name),
        (_, _, Some(_)) => Err(status::unknown_path()),
        (method, _, _) => Err(status::method_not_allowed(&format!("{method} is not supported on this path"))),
    }
}

// ---------------------------------------------------------- request helpers

fn parse_json_object(body: &[u8]) -> ApiResult<Value> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| status::bad_request(&format!("couldn't get version/kind; json parse error: {e}")))?;
    if value.is_object() { Ok(value) } else { Err(status::bad_request("the request body must be a JSON object")) }
}

/// Apply bodies are YAML; JSON (a YAML subset) is tried first as it is what
/// most clients send.
fn parse_apply_body(body: &[u8]) -> ApiResult<Value> {
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        Err(_) => {
            let text =
                std::str::from_utf8(body).map_err(|e| status::bad_request(&format!("error decoding YAML: {e}")))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| status::bad_request(&format!("error decoding YAML: {e}")))?
        }
    };
    if value.is_object() {
        Ok(value)
    } else {
        Err(status::bad_request("error decoding YAML: the apply configuration must be an object"))
    }
}

/// Checks `apiVersion`/`kind` in a body against the URL; fills them in when
/// absent unless `required` (apply insists on them).
fn check_type_meta(rt: &ResourceType, body: &mut Value, required: bool) -> ApiResult<()> {
    let api_version = rt.api_version();
    for (field, expected) in [("apiVersion", api_version.as_str()), ("kind", rt.kind.as_str())] {
        match body.get(field).and_then(Value::as_str) {
            Some(actual) if actual == expected => {}
            Some(actual) => {
                return Err(status::bad_request(&format!(
                    "the {field} in the data ({actual}) does not match the expected {field} \
                     ({expected})"
                )));
            }
            None if required => {
                let label = if field == "kind" { "Kind" } else { "apiVersion" };
                return Err(status::bad_request(&format!("Object '{label}' is missing in '{body}'")));
            }
            None => set_field(body, field, json!(expected)),
        }
    }
    Ok(())
}

/// Rejects a body whose name or namespace contradicts the URL.
fn check_identity(op: &Op<'_>, body: &Value, name: Option<&str>) -> ApiResult<()> {
    if let (Some(url_name), Some(body_name)) = (name, meta_str(body, "name"))
        && url_name != body_name
    {
        return Err(status::bad_request(&format!(
            "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
        )));
    }
    if op.rt.namespaced
        && let (Some(url_ns), Some(body_ns)) = (op.namespace, meta_str(body, "namespace"))
        && !body_ns.is_empty()
        && url_ns != body_ns
    {
        return Err(status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn require_namespace(op: &Op<'_>, store: &Store) -> ApiResult<()> {
    match op.namespace {
        Some(ns) if op.rt.namespaced && !store.namespace_exists(ns) => Err(status::namespace_not_found(ns)),
        _ => Ok(()),
    }
}

fn check_resource_version(op: &Op<'_>, name: &str, body: &Value, live: &Value) -> ApiResult<()> {
    match meta_str(body, "resourceVersion") {
        Some(rv) if !rv.is_empty() && Some(rv) != meta_str(live, "resourceVersion") => {
            Err(status::conflict(op.rt, name, status::STALE_OBJECT))
        }
        _ => Ok(()),
    }
}

// ------------------------------------------------------------------- reads

fn get(op: &Op<'_>, store: &Store, name: &str) -> ApiResult<Value> {
    store.get(&op.key(name)).cloned().ok_or_else(|| status::not_found(op.rt, name))
}

/// Continue tokens are `namespace/name` of the last item returned.
fn list(op: &Op<'_>, store: &Store) -> ApiResult<Reply> {
    let labels =
        Selector::parse(op.query.get("labelSelector").unwrap_or_default()).map_err(|e| status::bad_request(&e))?;
    let fields = Selector::parse_fields(op.query.get("fieldSelector").unwrap_or_default())
        .map_err(|e| status::bad_request(&e))?;
    let limit = match op.query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(l.parse::<usize>().map_err(|_| status::bad_request(&format!("invalid limit {l:?}")))?),
        None => None,
    };
    let after = op.query.get("continue").filter(|c| !c.is_empty()).map(|c| {
        let (ns, name) = c.split_once('/').unwrap_or(("", c));
        (ns.to_string(), name.to_string())
    });
    let mut items: Vec<(String, String, Value)> = store
        .list(op.rt, op.namespace)
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|(ns, name)| (&k.namespace, &k.name) > (ns, name)))
        .filter(|(_, obj)| labels.matches_labels(meta(obj).and_then(|m| m.get("labels"))) && fields.matches_fields(obj))
        .map(|(k, obj)| (k.namespace.clone(), k.name.clone(), obj.clone()))
        .collect();
    let mut list_meta = Map::new();
    list_meta.insert("resourceVersion".into(), json!(store.current_resource_version()));
    let mut next = String::new();
    if let Some(limit) = limit.filter(|l| *l > 0)
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some((ns, name, _)) = items.last() {
            next = format!("{ns}/{name}");
        }
        list_meta.insert("remainingItemCount".into(), json!(remaining));
    }
    if op.rt.custom || !next.is_empty() {
        list_meta.insert("continue".into(), json!(next));
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|(_, _, mut obj)| {
            // Built-in lists carry the type only on the list, not on items.
            if !op.rt.custom
                && let Some(map) = obj.as_object_mut()
            {
                map.remove("apiVersion");
                map.remove("kind");
            }
            obj
        })
        .collect();
    Ok(Reply::json(
        200,
        json!({
            "apiVersion": op.rt.api_version(),
            "kind": op.rt.list_kind(),
            "metadata": list_meta,
            "items": items,
        }),
    ))
}

// ------------------------------------------------------------------ writes

fn create(op: &Op<'_>, store: &mut Store) -> ApiResult<Reply> {
    let dry_run = op.query.dry_run()?;
    let mut obj = parse_json_object(&op.req.body)?;
    check_type_meta(op.rt, &mut obj, false)?;
    check_identity(op, &obj, None)?;
    let name = match meta_str(&obj, "name").filter(|n| !n.is_empty()) {
        Some(name) => name.to_string(),
        None => match meta_str(&obj, "generateName").filter(|n| !n.is_empty()) {
            Some(prefix) => format!("{prefix}{}", util::random_suffix(5)),
            None => {
                return Err(op.invalid(
                    "",
                    vec![FieldError {
                        field: "metadata.name".into(),
                        reason: "FieldValueRequired",
                        message: "Required value: name or generateName is required".into(),
                    }],
                ));
            }
        },
    };
    require_namespace(op, store)?;
    let key = op.key(&name);
    if store.get(&key).is_some() {
        return Err(status::already_exists(op.rt, &name));
    }
    {
        let meta = meta_mut(&mut obj);
        for field in SYSTEM_METADATA {
            meta.remove(field);
        }
        meta.insert("name".into(), json!(name));
        match op.namespace {
            Some(ns) if op.rt.namespaced => {
                meta.insert("namespace".into(), json!(ns));
            }
            _ => {
                meta.remove("namespace");
            }
        }
    }
    if op.rt.custom
        && op.rt.status_subresource
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    apply_defaults(op.rt, &mut obj);
    let mut entries = Vec::new();
    let changed = ssa::changed_set(None, &ssa::tracked_view(&obj, op.main_scope()), op.schema());
    ssa::record_update(&mut entries, &changed, &op.manager(), &op.rt.api_version(), None, &util::now_rfc3339());
    ssa::write_entries(&mut obj, &entries);
    prepare(op.rt, &mut obj);
    validate_new(op, &name, &obj)?;
    stamp_new(store, op.rt, &mut obj, dry_run);
    if !dry_run {
        store.put(key, obj.clone());
    }
    Ok(Reply::json(201, obj))
}

fn validate_new(op: &Op<'_>, name: &str, obj: &Value) -> ApiResult<()> {
    let mut errors: Vec<FieldError> = validation::validate_name(name, op.rt.kind == "Namespace").into_iter().collect();
    if op.rt.structural {
        errors.extend(validation::validate(op.rt, obj, None));
    }
    if errors.is_empty() { Ok(()) } else { Err(op.invalid(name, errors)) }
}

fn update(op: &Op<'_>, store: &mut Store, name: &str) -> ApiResult<Reply> {
    let dry_run = op.query.dry_run()?;
    let mut body = parse_json_object(&op.req.body)?;
    check_type_meta(op.rt, &mut body, false)?;
    check_identity(op, &body, Some(name))?;
    let live = get(op, store, name)?;
    check_resource_version(op, name, &body, &live)?;
    let obj = commit_update(op, store, name, &live, body, op.main_scope(), dry_run)?;
    Ok(Reply::json(200, obj))
}

fn patch(op: &Op<'_>, store: &mut Store, name: &str) -> ApiResult<Reply> {
    let content_type = op.req.content_type.split(';').next().unwrap_or_default().trim();
    match content_type {
        "application/apply-patch+yaml" => apply(op, store, name),
        "application/merge-patch+json" | "application/json-patch+json" => {
            plain_patch(op, store, name, content_type == "application/json-patch+json")
        }
        // Built-in kinds accept strategic merge patches; treated as merge
        // patches here (no patch-strategy directives).
        "application/strategic-merge-patch+json" if !op.rt.custom => plain_patch(op, store, name, false),
        other => Err(status::unsupported_media_type(other)),
    }
}

/// Merge patch or JSON patch of the main resource.
fn plain_patch(op: &Op<'_>, store: &mut Store, name: &str, json: bool) -> ApiResult<Reply> {
    let dry_run = op.query.dry_run()?;
    let patch: Value =
        serde_json::from_slice(&op.req.body).map_err(|e| status::bad_request(&format!("error decoding patch: {e}")))?;
    let live = get(op, store, name)?;
    let mut obj = live.clone();
    if json {
        json_patch(&mut obj, &patch)?;
    } else {
        check_resource_version(op, name, &patch, &live)?;
        merge_patch(&mut obj, &patch);
    }
    let obj = commit_update(op, store, name, &live, obj, op.main_scope(), dry_run)?;
    Ok(Reply::json(200, obj))
}

/// The tail of every non-apply update: keep what the client may not change,
/// default, record ownership, detect no-ops, validate, version and store.
/// Returns the object as stored (or as it would be, for a dry run).
fn commit_update(
    op: &Op<'_>,
    store: &mut Store,
    name: &str,
    live: &Value,
    mut obj: Value,
    scope: Scope,
    dry_run: bool,
) -> ApiResult<Value> {
    match scope {
        Scope::Status => {
            // Only status changes through the status subresource.
            let status = obj.get("status").cloned();
            obj = live.clone();
            match status {
                Some(status) => set_field(&mut obj, "status", status),
                None => {
                    if let Some(map) = obj.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        Scope::Main { status_subresource } => {
            set_field(&mut obj, "apiVersion", json!(op.rt.api_version()));
            set_field(&mut obj, "kind", json!(op.rt.kind));
            if status_subresource {
                match live.get("status") {
                    Some(status) => set_field(&mut obj, "status", status.clone()),
                    None => {
                        if let Some(map) = obj.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            let live_meta = meta(live).cloned().unwrap_or_default();
            let meta = meta_mut(&mut obj);
            for field in SYSTEM_METADATA.iter().chain(&["name", "namespace"]) {
                match live_meta.get(*field) {
                    Some(v) => meta.insert((*field).into(), v.clone()),
                    None => meta.remove(*field),
                };
            }
        }
    }
    apply_defaults(op.rt, &mut obj);
    prepare(op.rt, &mut obj);

    let subresource = (scope == Scope::Status).then_some("status");
    let mut entries = ssa::read_entries(live);
    let changed = ssa::changed_set(Some(&ssa::tracked_view(live, scope)), &ssa::tracked_view(&obj, scope), op.schema());
    ssa::record_update(&mut entries, &changed, &op.manager(), &op.rt.api_version(), subresource, &util::now_rfc3339());
    finish_entries(op, &mut obj, &mut entries);
    if same_ignoring_times(live, &obj) {
        return Ok(live.clone());
    }
    if op.rt.structural {
        let errors = validation::validate(op.rt, &obj, Some(live));
        if !errors.is_empty() {
            return Err(op.invalid(name, errors));
        }
    }
    stamp_update(store, op.rt, live, &mut obj, dry_run);
    if !dry_run {
        store_or_finalize(store, op.key(name), &obj);
    }
    Ok(obj)
}

/// Forgets ownership of vanished fields and writes managedFields.
fn finish_entries(op: &Op<'_>, obj: &mut Value, entries: &mut [ssa::Entry]) {
    let main = ssa::tracked_view(obj, op.main_scope());
    let status = ssa::tracked_view(obj, Scope::Status);
    ssa::forget_missing(entries, &main, &status);
    ssa::write_entries(obj, entries);
}

/// Stores an object, or removes it when it was waiting for its last
/// finalizer and that one is gone.
fn store_or_finalize(store: &mut Store, key: Key, obj: &Value) {
    if being_deleted(obj) && !has_finalizers(obj) {
        store.remove(&key);
    } else {
        store.put(key, obj.clone());
    }
}

/// Server-side apply (`PATCH` with `application/apply-patch+yaml`).
fn apply(op: &Op<'_>, store: &mut Store, name: &str) -> ApiResult<Reply> {
    let manager = op
        .query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| status::bad_request("fieldManager is required for apply requests"))?
        .to_string();
    let dry_run = op.query.dry_run()?;
    let force = op.query.flag("force");
    let mut body = parse_apply_body(&op.req.body)?;
    check_type_meta(op.rt, &mut body, true)?;
    check_identity(op, &body, Some(name))?;
    if op.rt.structural {
        let errors = typecheck::check(&body, op.schema());
        if !errors.is_empty() {
            let detail = match errors.as_slice() {
                [one] => one.clone(),
                many => format!("errors:\n  {}", many.join("\n  ")),
            };
            let group_version = format!("{}/{}", op.rt.group, op.rt.version);
            return Err(status::internal(&format!(
                "failed to create typed patch object ({}/{name}; {group_version}, Kind={}): {detail}",
                op.namespace.filter(|_| op.rt.namespaced).unwrap_or_default(),
                op.rt.kind
            )));
        }
    }
    require_namespace(op, store)?;
    let key = op.key(name);
    let live = store.get(&key).cloned();
    if let Some(live) = &live {
        check_resource_version(op, name, &body, live)?;
    }
    let view = ssa::tracked_view(&body, op.main_scope());
    let now = util::now_rfc3339();
    let base = live.clone().unwrap_or_else(|| {
        let mut skeleton = json!({
            "apiVersion": op.rt.api_version(),
            "kind": op.rt.kind,
            "metadata": {"name": name},
        });
        if let Some(ns) = op.namespace.filter(|_| op.rt.namespaced) {
            meta_mut(&mut skeleton).insert("namespace".into(), json!(ns));
        }
        skeleton
    });
    let applied = ssa::apply(&base, &view, op.schema(), &manager, &op.rt.api_version(), force, &now)
        .map_err(status::apply_conflict)?;
    let mut obj = applied.object;
    let mut entries = applied.entries;
    apply_defaults(op.rt, &mut obj);
    prepare(op.rt, &mut obj);
    if let Some(live) = &live
        && same_content(live, &obj)
    {
        // Only ownership changed: the applier's entry keeps its old time
        // (or gets none), as on the real server.
        let mine = |e: &ssa::Entry| e.manager == manager && e.operation == "Apply" && e.subresource.is_none();
        let before = ssa::read_entries(live).into_iter().find(mine).and_then(|e| e.time);
        if let Some(entry) = entries.iter_mut().find(|e| mine(e)) {
            entry.time = before;
        }
    }
    finish_entries(op, &mut obj, &mut entries);

    let Some(live) = live else {
        validate_new(op, name, &obj)?;
        stamp_new(store, op.rt, &mut obj, dry_run);
        if !dry_run {
            store.put(key, obj.clone());
        }
        return Ok(Reply::json(201, obj));
    };
    if same_ignoring_times(&live, &obj) {
        return Ok(Reply::json(200, live));
    }
    if op.rt.structural {
        let errors = validation::validate(op.rt, &obj, Some(&live));
        if !errors.is_empty() {
            return Err(op.invalid(name, errors));
        }
    }
    stamp_update(store, op.rt, &live, &mut obj, dry_run);
    if !dry_run {
        store_or_finalize(store, key, &obj);
    }
    Ok(Reply::json(200, obj))
}

fn status_subresource(op: &Op<'_>, store: &mut Store, method: &str, name: &str) -> ApiResult<Reply> {
    let live = get(op, store, name)?;
    let dry_run = op.query.dry_run()?;
    let obj = match method {
        "GET" => return Ok(Reply::json(200, live)),
        "PUT" => {
            let mut body = parse_json_object(&op.req.body)?;
            check_type_meta(op.rt, &mut body, false)?;
            check_identity(op, &body, Some(name))?;
            check_resource_version(op, name, &body, &live)?;
            body
        }
        "PATCH" => {
            let content_type = op.req.content_type.split(';').next().unwrap_or_default();
            let patch: Value = serde_json::from_slice(&op.req.body)
                .map_err(|e| status::bad_request(&format!("error decoding patch: {e}")))?;
            let mut obj = live.clone();
            match content_type.trim() {
                "application/merge-patch+json" => {
                    check_resource_version(op, name, &patch, &live)?;
                    merge_patch(&mut obj, &patch);
                }
                "application/json-patch+json" => json_patch(&mut obj, &patch)?,
                other => return Err(status::unsupported_media_type(other)),
            }
            obj
        }
        other => {
            return Err(status::method_not_allowed(&format!("{other} is not supported on the status subresource")));
        }
    };
    let obj = commit_update(op, store, name, &live, obj, Scope::Status, dry_run)?;
    Ok(Reply::json(200, obj))
}

/// The `Scale` view of an object with a scale subresource.
fn scale_view(op: &Op<'_>, obj: &Value) -> Value {
    let pointer = |path: &str| path.replace('.', "/");
    let replicas = |path: &str| obj.pointer(&pointer(path)).cloned().unwrap_or(json!(0));
    let (spec_path, status_path) = op
        .rt
        .scale
        .as_ref()
        .map(|s| (s.spec_replicas_path.as_str(), s.status_replicas_path.as_str()))
        .unwrap_or((".spec.replicas", ".status.replicas"));
    let mut metadata = Map::new();
    for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = meta(obj).and_then(|m| m.get(field)) {
            metadata.insert(field.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": replicas(spec_path)},
        "status": {"replicas": replicas(status_path)},
    })
}

fn scale_subresource(op: &Op<'_>, store: &mut Store, method: &str, name: &str) -> ApiResult<Reply> {
    let live = get(op, store, name)?;
    let dry_run = op.query.dry_run()?;
    let mut scale = scale_view(op, &live);
    match method {
        "GET" => return Ok(Reply::json(200, scale)),
        "PUT" => scale = parse_json_object(&op.req.body)?,
        "PATCH" => {
            let patch: Value = serde_json::from_slice(&op.req.body)
                .map_err(|e| status::bad_request(&format!("error decoding patch: {e}")))?;
            merge_patch(&mut scale, &patch);
        }
        other => {
            return Err(status::method_not_allowed(&format!("{other} is not supported on the scale subresource")));
        }
    }
    check_resource_version(op, name, &scale, &live)?;
    let Some(replicas) = scale.pointer("/spec/replicas").cloned() else {
        return Err(status::bad_request("spec.replicas is required"));
    };
    let spec_path =
        op.rt.scale.as_ref().map(|s| s.spec_replicas_path.clone()).unwrap_or_else(|| ".spec.replicas".into());
    let mut obj = live.clone();
    let segments: Vec<&str> = spec_path.split('.').filter(|s| !s.is_empty()).collect();
    let Some((last, parents)) = segments.split_last() else {
        return Err(status::internal("the scale subresource has no replicas path"));
    };
    let parent: String = parents.iter().map(|s| format!("/{s}")).collect();
    match obj.pointer_mut(&parent).and_then(Value::as_object_mut) {
        Some(map) => {
            map.insert((*last).to_string(), replicas);
        }
        None => {
            return Err(status::bad_request(&format!("the object has no {parent} to scale")));
        }
    }
    let obj = commit_update(op, store, name, &live, obj, op.main_scope(), dry_run)?;
    Ok(Reply::json(200, scale_view(op, &obj)))
}

fn delete(op: &Op<'_>, store: &mut Store, name: &str) -> ApiResult<Reply> {
    let dry_run = op.query.dry_run()?;
    let live = get(op, store, name)?;
    if !op.req.body.is_empty()
        && let Ok(options) = serde_json::from_slice::<Value>(&op.req.body)
    {
        let preconditions = options.get("preconditions");
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            let wanted = preconditions.and_then(|p| p.get(field)).and_then(Value::as_str);
            let actual = meta_str(&live, field).unwrap_or_default();
            if let Some(wanted) = wanted
                && wanted != actual
            {
                return Err(status::conflict(
                    op.rt,
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {wanted}, {label} in \
                         object meta: {actual}"
                    ),
                ));
            }
        }
    }
    delete_one(op, store, name, live, dry_run)
}

/// Deletes one existing object. Objects with finalizers only get a
/// deletionTimestamp; a Namespace is emptied and removed at once, standing
/// in for the namespace controller.
fn delete_one(op: &Op<'_>, store: &mut Store, name: &str, live: Value, dry_run: bool) -> ApiResult<Reply> {
    let key = op.key(name);
    let now = util::now_rfc3339();
    if op.rt.kind == "Namespace" {
        let mut obj = live;
        if !being_deleted(&obj) {
            meta_mut(&mut obj).insert("deletionTimestamp".into(), json!(now));
        }
        if let Some(map) = obj.as_object_mut() {
            map.insert("status".into(), json!({"phase": "Terminating"}));
        }
        if !dry_run {
            let rv = store.next_resource_version();
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
            store.purge_namespace(name);
            store.remove(&key);
        }
        return Ok(Reply::json(200, obj));
    }
    if has_finalizers(&live) {
        let mut obj = live;
        if !being_deleted(&obj) {
            let meta = meta_mut(&mut obj);
            meta.insert("deletionTimestamp".into(), json!(now));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if !dry_run {
                let rv = store.next_resource_version();
                meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
                store.put(key, obj.clone());
            }
        }
        return Ok(Reply::json(200, obj));
    }
    let uid = meta_str(&live, "uid").unwrap_or_default().to_string();
    if !dry_run {
        store.remove(&key);
    }
    Ok(Reply::json(200, status::delete_success(op.rt, name, &uid)))
}

/// DELETE on a collection: deletes what the selectors match and returns
/// the list of deleted objects.
fn delete_collection(op: &Op<'_>, store: &mut Store) -> ApiResult<Reply> {
    let dry_run = op.query.dry_run()?;
    let labels =
        Selector::parse(op.query.get("labelSelector").unwrap_or_default()).map_err(|e| status::bad_request(&e))?;
    let fields = Selector::parse_fields(op.query.get("fieldSelector").unwrap_or_default())
        .map_err(|e| status::bad_request(&e))?;
    let victims: Vec<(Option<String>, String, Value)> = store
        .list(op.rt, op.namespace)
        .into_iter()
        .filter(|(_, obj)| labels.matches_labels(meta(obj).and_then(|m| m.get("labels"))) && fields.matches_fields(obj))
        .map(|(k, obj)| {
            let ns = (!k.namespace.is_empty()).then(|| k.namespace.clone());
            (ns, k.name.clone(), obj.clone())
        })
        .collect();
    let mut deleted = Vec::new();
    for (namespace, name, obj) in victims {
        let scoped = Op { req: op.req, rt: op.rt, namespace: namespace.as_deref(), query: Query(op.query.0) };
        delete_one(&scoped, store, &name, obj.clone(), dry_run)?;
        deleted.push(obj);
    }
    Ok(Reply::json(
        200,
        json!({
            "apiVersion": op.rt.api_version(),
            "kind": op.rt.list_kind(),
            "metadata": {"resourceVersion": store.current_resource_version()},
            "items": deleted,
        }),
    ))
}

// --------------------------------------------------------- direct test access

/// Stores an object as given (for test setup), filling in whatever
/// server-set metadata it lacks. No validation, defaults or ownership.
pub fn insert(api: &Api, mut obj: Value) -> Result<Value, String> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).ok_or("object without apiVersion")?.to_string();
    let kind = obj.get("kind").and_then(Value::as_str).ok_or("object without kind")?.to_string();
    let rt = api
        .registry
        .find_kind(&api_version, &kind)
        .ok_or_else(|| format!("the test API server does not serve {api_version} {kind}"))?;
    let name = meta_str(&obj, "name").ok_or("object without metadata.name")?.to_string();
    let namespace = meta_str(&obj, "namespace").map(str::to_string);
    if rt.namespaced && namespace.is_none() {
        return Err(format!("{kind} {name} needs metadata.namespace"));
    }
    if !rt.custom && !rt.structural {
        apply_defaults(&rt, &mut obj);
        prepare(&rt, &mut obj);
    }
    let mut store = api.store();
    let meta = meta_mut(&mut obj);
    if !rt.namespaced {
        meta.remove("namespace");
    }
    meta.entry("uid").or_insert_with(|| json!(util::new_uid()));
    meta.entry("creationTimestamp").or_insert_with(|| json!(util::now_rfc3339()));
    if rt.has_generation() {
        meta.entry("generation").or_insert(json!(1));
    }
    match meta.get("resourceVersion").and_then(Value::as_str) {
        Some(rv) => store.observe_resource_version(rv),
        None => {
            let rv = store.next_resource_version();
            meta.insert("resourceVersion".into(), json!(rv));
        }
    }
    store.put(Key::new(&rt, namespace.as_deref(), &name), obj.clone());
    Ok(obj)
}

/// Replaces an object's status directly, as a controller would; bumps the
/// resourceVersion. `None` when the object does not exist.
pub fn set_status(api: &Api, plural: &str, namespace: Option<&str>, name: &str, status: Value) -> Option<Value> {
    let rt = api.registry.find_plural(plural)?;
    let key = Key::new(&rt, namespace, name);
    let mut store = api.store();
    let mut obj = store.get(&key)?.clone();
    set_field(&mut obj, "status", status);
    let rv = store.next_resource_version();
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
    store.put(key, obj.clone());
    Some(obj)
}
