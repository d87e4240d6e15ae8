//! The `kube` target: the management cluster through the `kube` client.
//!
//! Reads with one LIST per kind (by the fleet's ApplySet label, so the
//! number of requests does not grow with the fleet), all in parallel and
//! while the configuration compiles ([`KubeTarget::read_while`]); a plan
//! that is only shown reads from the API server's watch cache
//! ([`Freshness`]). Writes with server-side apply under the field manager
//! `hcpc`, and retries transient failures under the one policy of
//! [`super::retry`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use kube::{Client, Config};
use serde_json::Value;

use super::lease::KubeLock;
use super::retry::{Backoff, RetryAfterLayer, is_connect_error, is_tls_verification_error, transport_cause};
use super::{LiveObject, LiveState, Lock, Target, WriteError, generate_key};
use crate::object::{Kind, ObjectId};
use crate::printable;
use crate::render::DesiredObject;
use hcpc_schema::labels;

mod bounded;
mod credentials;
mod watch;
pub use bounded::MAX_RESPONSE_BYTES;
pub use watch::{Seen, WatchFailure};

/// A failed API call, reduced to what messages and retry decisions need.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status; 0 for failures below HTTP (connection, timeout).
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `(field, message)` from `details.causes`, sorted.
    pub causes: Vec<(String, String)>,
    /// How long the server asked to wait before trying again (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The server was never reached (nothing listening, name not resolved).
    pub unreachable: bool,
    /// Set when hcpc stopped retrying: the server, attempts and time spent.
    pub gave_up: Option<String>,
    /// Some attempt got no answer after it may have reached the server
    /// (connection lost, timeout, gateway timeout, abandoned): a write may
    /// have been carried out even though the request failed.
    pub possibly_applied: bool,
}

impl ApiError {
    /// An error that did not come from the server.
    pub fn local(reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code: 0,
            reason: reason.to_string(),
            message: message.into(),
            causes: Vec::new(),
            retry_after: None,
            unreachable: false,
            gave_up: None,
            possibly_applied: false,
        }
    }

    /// Worth another attempt: the server may answer differently soon.
    pub fn transient(&self) -> bool {
        match self.code {
            0 => self.reason == "Transport" || self.reason == "Timeout",
            429 | 503 | 504 => true,
            500 => !self.message.contains("failed to create typed patch object"),
            _ => false,
        }
    }

    /// No answer came for this attempt although it may have reached the
    /// server (a refused connection never did).
    fn unanswered(&self) -> bool {
        match self.code {
            0 => !self.unreachable && matches!(self.reason.as_str(), "Transport" | "Timeout" | "Interrupted"),
            504 => true,
            _ => false,
        }
    }

    /// For a failed write: its message, and whether it may have been applied.
    pub fn to_write_error(&self) -> super::WriteError {
        super::WriteError { message: describe(self), possibly_applied: self.possibly_applied }
    }

    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }

    fn from_kube(e: kube::Error, server: &str) -> ApiError {
        match e {
            kube::Error::Api(status) => {
                // The server's words are printed: escaped and bounded.
                let said = |s: &str| printable::line(s, printable::SERVER_MESSAGE_LIMIT).into_owned();
                let mut causes: Vec<(String, String)> = status
                    .details
                    .as_ref()
                    .map(|d| d.causes.iter().map(|c| (said(&c.field), said(&c.message))).collect())
                    .unwrap_or_default();
                causes.sort();
                let retry_after = status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(s.into()));
                ApiError {
                    code: status.code,
                    reason: said(&status.reason),
                    message: said(&status.message),
                    causes,
                    retry_after,
                    unreachable: false,
                    gave_up: None,
                    possibly_applied: false,
                }
            }
            kube::Error::HyperError(e) => ApiError::transport(&e, server),
            kube::Error::Service(e) => ApiError::transport(e.as_ref(), server),
            other => ApiError::local("Client", printable::line(&other.to_string(), printable::SERVER_MESSAGE_LIMIT)),
        }
    }

    fn transport(e: &(dyn std::error::Error + 'static), server: &str) -> ApiError {
        if bounded::is_too_large(e) {
            // Not `Transport`: asking again streams the same again.
            return ApiError::local(
                "TooLarge",
                format!(
                    "{server} answered with more than {} MiB; hcpc reads no response larger than that\n  help: a LIST this large is not a fleet's; check that the kubeconfig points at the API server and not at a proxy or another service",
                    bounded::MAX_RESPONSE_BYTES >> 20
                ),
            );
        }
        if is_tls_verification_error(e) {
            // Not `Transport`: a certificate does not change by asking again.
            return ApiError::local(
                "TLS",
                format!(
                    "cannot verify {server}: {}\n  help: the kubeconfig context's certificate-authority(-data) must be the CA that signed the server's certificate",
                    transport_cause(e)
                ),
            );
        }
        let unreachable = is_connect_error(e);
        let what = if unreachable { "cannot connect to" } else { "lost the connection to" };
        ApiError { unreachable, ..ApiError::local("Transport", format!("{what} {server}: {}", transport_cause(e))) }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code == 0 {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{} {}: {}", self.code, self.reason, self.message)?;
        }
        if let Some(gave_up) = &self.gave_up {
            write!(f, " ({gave_up})")?;
        }
        Ok(())
    }
}

/// Infrastructure facts found on the cluster.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    pub storage_classes: Vec<DiscoveredClass>,
    /// `None` when the snapshot API is not installed.
    pub snapshot_classes: Option<Vec<(String, bool)>>,
    /// Host device resources summed over nodes' allocatable.
    pub host_devices: Vec<(String, u64)>,
    /// Schedulable nodes grouped by allocatable shape; `None` when a node
    /// does not report its CPU or memory.
    pub nodes: Option<Vec<DiscoveredNodes>>,
    /// The KubeVirt resource, when there is one.
    pub kubevirt: Option<super::inventory::DiscoveredKubevirt>,
    /// Per host device, the Nodes that have it in their allocatable.
    pub device_nodes: Vec<(String, Vec<String>)>,
    /// The releases the HyperShift operator supports (`live::supported`).
    pub supported_versions: crate::release::rules::SupportedVersions,
    /// The LISTs the identity was refused; what they would have told is
    /// taken from the fleet's `infra` declaration, unchecked.
    pub denied: Vec<Denied>,
}

/// A request the identity may not make: its verb, resource and scope, as
/// an RBAC rule would name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub verb: &'static str,
    /// `storageclasses.storage.k8s.io`, `nodes`.
    pub resource: String,
    /// `None`: the cluster scope.
    pub namespace: Option<String>,
}

impl Denied {
    fn list(ar: &ApiResource) -> Denied {
        let resource = if ar.group.is_empty() { ar.plural.clone() } else { format!("{}.{}", ar.plural, ar.group) };
        Denied { verb: "list", resource, namespace: None }
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            None => write!(f, "`{}` on {} at the cluster scope", self.verb, self.resource),
            Some(ns) => write!(f, "`{}` on {} in namespace {ns}", self.verb, self.resource),
        }
    }
}

/// A StorageClass and what its CDI StorageProfile says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredClass {
    pub name: String,
    /// RWX and Block capable; `None` when no StorageProfile describes the class.
    pub rwx: Option<bool>,
    pub block: Option<bool>,
    pub default: bool,
    pub clone: Option<crate::ir::CloneStrategy>,
    /// `metadata.creationTimestamp`: of several default classes, Kubernetes
    /// uses the newest.
    pub created: String,
}

/// Nodes of one allocatable shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredNodes {
    /// The first node's name, in name order.
    pub first: String,
    pub count: u32,
    pub cpu_millis: u64,
    pub memory: u128,
    pub devices: Vec<(String, u32)>,
}

/// How current a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Served from the API server's watch cache (`resourceVersion=0`):
    /// several times faster on a large fleet, and may lag the latest
    /// writes by a moment. For plans that are only shown.
    Cached,
    /// Consistent with every write made before the read (a quorum read):
    /// what apply re-reads under its lock and writes from.
    Latest,
}

/// Cheap to clone: clones share the runtime and the connection, so the
/// fleet lock's keeper renews on its own thread with the same client.
#[derive(Clone)]
pub struct KubeTarget {
    rt: Arc<tokio::runtime::Runtime>,
    client: Client,
    /// `kube:CONTEXT (SERVER)`.
    described: String,
    /// The server's URL, for messages.
    server: String,
    /// The deadline of one request, all its attempts included.
    request_timeout: Duration,
    /// Whether the server has answered anything yet: until it has, a
    /// refused connection is a wrong address, reported at once; after, it
    /// is a restart, retried.
    answered: Arc<AtomicBool>,
}

fn resource(kind: Kind) -> ApiResource {
    ApiResource {
        group: kind.group().to_string(),
        version: kind.api_version().rsplit('/').next().unwrap_or("v1").to_string(),
        api_version: kind.api_version().to_string(),
        kind: kind.as_str().to_string(),
        plural: kind.plural().to_string(),
    }
}

fn other(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: if group.is_empty() { version.to_string() } else { format!("{group}/{version}") },
        kind: kind.to_string(),
        plural: plural.to_string(),
    }
}

/// The URL path of a kind's objects, in `namespace` or across all.
fn collection_path(ar: &ApiResource, namespace: Option<&str>) -> String {
    let base =
        if ar.group.is_empty() { format!("/api/{}", ar.version) } else { format!("/apis/{}/{}", ar.group, ar.version) };
    match namespace.filter(|n| !n.is_empty()) {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", ar.plural),
        None => format!("{base}/{}", ar.plural),
    }
}

fn lease_resource() -> ApiResource {
    other("coordination.k8s.io", "v1", "Lease", "leases")
}

impl KubeTarget {
    /// Connects as kubectl would: `KUBECONFIG`, else `~/.kube/config`; the
    /// given context or the current one. Each request, with its retries,
    /// must finish within `request_timeout`.
    pub fn connect(context: Option<&str>, request_timeout: Duration) -> Result<KubeTarget, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
        let kubeconfig = read_kubeconfig()?;
        let context_name = choose_context(&kubeconfig, context)?;
        let options = KubeConfigOptions { context: Some(context_name.clone()), ..KubeConfigOptions::default() };
        let mut config = rt
            .block_on(Config::from_custom_kubeconfig(kubeconfig, &options))
            .map_err(|e| format!("cannot use kubeconfig context `{context_name}`: {e}"))?;
        let exec_token = credentials::prepare(&mut config.auth_info, &context_name)?;
        // Name the cluster exactly, so a saved plan made against one
        // context is never applied to another.
        let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let described = format!("kube:{context_name} ({server})");
        // One retry policy: hcpc's (see `retry`), not kube's as well.
        config.default_retry = false;
        config.connect_timeout = Some(request_timeout.min(Duration::from_secs(10)));
        config.read_timeout = None;
        // The client spawns its request buffer onto the current runtime.
        let client = {
            let _guard = rt.enter();
            kube::client::ClientBuilder::try_from(config)
                .map_err(|e| format!("cannot build a Kubernetes client for {server}: {e}"))?
                // Innermost, so no layer reads an unbounded body.
                .with_layer(&bounded::BoundedLayer)
                .with_layer(&RetryAfterLayer)
                .with_layer(&exec_token)
                .build()
        };
        Ok(KubeTarget {
            rt: Arc::new(rt),
            client,
            described,
            server,
            request_timeout,
            answered: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Runs a request under the retry policy: transient failures are
    /// retried, honouring `Retry-After`, until the request's deadline.
    fn call<T, F, Fut>(&self, mut f: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let start = Instant::now();
        let mut backoff = Backoff::new(self.request_timeout);
        let mut attempts = 0u32;
        // A request running when a signal stops the apply gets a few
        // seconds more and no retry (`crate::interrupt`).
        let before_stop = crate::interrupt::requested().is_none();
        let mut unanswered = false;
        loop {
            attempts += 1;
            let limit = backoff.attempt_limit(start.elapsed());
            let attempt = f();
            let outcome = self.rt.block_on(async {
                tokio::select! {
                    r = tokio::time::timeout(limit, attempt) => Some(r),
                    () = crate::interrupt::abandon_if_in_flight(before_stop) => None,
                }
            });
            let Some(outcome) = outcome else {
                return Err(ApiError {
                    possibly_applied: true,
                    ..ApiError::local(
                        "Interrupted",
                        format!(
                            "abandoned {}s after the signal, still waiting for {}: it may or may not have been applied",
                            crate::interrupt::GRACE.as_secs(),
                            self.server
                        ),
                    )
                });
            };
            let err = match outcome {
                Ok(Ok(v)) => {
                    self.answered.store(true, Ordering::Relaxed);
                    return Ok(v);
                }
                Ok(Err(e)) => ApiError::from_kube(e, &self.server),
                Err(_) => {
                    ApiError::local("Timeout", format!("{} did not answer within {}", self.server, seconds(limit)))
                }
            };
            if err.code != 0 {
                self.answered.store(true, Ordering::Relaxed);
            }
            unanswered |= err.unanswered();
            let err = ApiError { possibly_applied: unanswered, ..err };
            let first_contact = err.unreachable && !self.answered.load(Ordering::Relaxed);
            let stopped = before_stop && crate::interrupt::requested().is_some();
            if !err.transient() || first_contact || stopped {
                return Err(err);
            }
            let elapsed = start.elapsed();
            match backoff.pause(elapsed, err.retry_after) {
                Some(pause) => std::thread::sleep(pause),
                None => return Err(self.gave_up(err, attempts, elapsed)),
            }
        }
    }

    /// The last error of a request hcpc stopped retrying, saying why.
    fn gave_up(&self, mut err: ApiError, attempts: u32, elapsed: Duration) -> ApiError {
        let tries = if attempts == 1 { "1 attempt".to_string() } else { format!("{attempts} attempts") };
        let limit = seconds(self.request_timeout);
        let mut why = if err.code == 0 {
            format!("gave up after {tries} over {}; --request-timeout is {limit}", seconds(elapsed))
        } else {
            format!("{} answered this to {tries} over {}; --request-timeout is {limit}", self.server, seconds(elapsed))
        };
        if let Some(after) = err.retry_after.filter(|a| elapsed + *a >= self.request_timeout) {
            why.push_str(&format!("; it asked to retry after {}, past that deadline", seconds(after)));
        }
        err.gave_up = Some(why);
        err
    }

    fn api(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|n| !n.is_empty()) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    fn list_values(&self, ar: &ApiResource, selector: Option<&str>) -> Result<Vec<Value>, ApiError> {
        self.list_as::<Value>(ar, None, selector, Freshness::Latest)
    }

    /// One LIST (across namespaces when `namespace` is `None`), its items
    /// decoded straight from the response into `T`.
    fn list_as<T: serde::de::DeserializeOwned>(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        selector: Option<&str>,
        freshness: Freshness,
    ) -> Result<Vec<T>, ApiError> {
        #[derive(serde::Deserialize)]
        struct List<T> {
            items: Vec<T>,
        }
        let mut params = ListParams::default();
        if let Some(s) = selector {
            params = params.labels(s);
        }
        if freshness == Freshness::Cached {
            // resourceVersion=0: any version the watch cache holds.
            params = params.match_any();
        }
        let request = kube::core::Request::new(collection_path(ar, namespace));
        let list: List<T> = self.call(|| {
            let request = request.list(&params);
            async move { self.client.request(request.map_err(kube::Error::BuildRequest)?).await }
        })?;
        Ok(list.items)
    }

    /// One object, or `None` when it does not exist.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Option<Value>, ApiError> {
        self.get_resource(&resource(kind), Some(namespace), name)
    }

    pub fn get_resource(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        let api = self.api(ar, namespace);
        match self.call(|| api.get(name)) {
            Ok(o) => Ok(serde_json::to_value(o).ok()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// HostedClusters and NodePools, for `import`.
    pub fn list_kind(&self, kind: Kind, selector: Option<&str>) -> Result<Vec<Value>, ApiError> {
        self.list_values(&resource(kind), selector)
    }

    /// Server-side apply of one object with field manager `hcpc`.
    ///
    /// The server's answer (the whole object, managedFields included) is
    /// not decoded: nothing reads it, and a fleet's apply would spend its
    /// share of two cores on it.
    pub fn apply(&self, id: &ObjectId, body: &Value, force: bool) -> Result<(), ApiError> {
        let mut params = PatchParams::apply(labels::FIELD_MANAGER);
        if force {
            params = params.force();
        }
        let patch = Patch::Apply(body);
        let request = kube::core::Request::new(collection_path(&resource(id.kind), Some(&id.namespace)));
        self.call(|| {
            let request = request.patch(&id.name, &params, &patch);
            async move { self.client.request_text(request.map_err(kube::Error::BuildRequest)?).await.map(drop) }
        })
    }

    /// Server-side apply of one object with `dryRun=All`: admission
    /// (webhooks, ValidatingAdmissionPolicies), CEL rules and the schema
    /// judge it; nothing is stored. Sent as the real write will be: a
    /// field another manager owns is a conflict naming that manager unless
    /// `force` (`--force-conflicts`), so the plan foresees it.
    pub fn dry_run_apply(&self, id: &ObjectId, body: &Value, force: bool) -> Result<(), ApiError> {
        let mut params = PatchParams::apply(labels::FIELD_MANAGER);
        if force {
            params = params.force();
        }
        params.dry_run = true;
        let patch = Patch::Apply(body);
        let request = kube::core::Request::new(collection_path(&resource(id.kind), Some(&id.namespace)));
        self.call(|| {
            let request = request.patch(&id.name, &params, &patch);
            async move { self.client.request_text(request.map_err(kube::Error::BuildRequest)?).await.map(drop) }
        })
    }

    /// Creates one object (field manager `hcpc`); `Ok(false)` when it
    /// already exists, which is left untouched.
    pub fn create(&self, id: &ObjectId, body: &Value) -> Result<bool, ApiError> {
        let api = self.api(&resource(id.kind), Some(&id.namespace));
        let obj = dynamic(body)?;
        let params = PostParams { field_manager: Some(labels::FIELD_MANAGER.to_string()), ..PostParams::default() };
        match self.call(|| api.create(&params, &obj)) {
            Ok(_) => Ok(true),
            Err(e) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes one object; a missing object counts as deleted.
    pub fn delete(&self, id: &ObjectId) -> Result<(), ApiError> {
        let api = self.api(&resource(id.kind), Some(&id.namespace));
        let params = DeleteParams::default();
        match self.call(|| api.delete(&id.name, &params)) {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// StorageClasses (with CDI StorageProfiles for access and volume
    /// modes), VolumeSnapshotClasses and host-device resources of nodes.
    /// A LIST the identity may not make is left out and named in
    /// [`Discovered::denied`]: a plan-only identity need not see Nodes.
    pub fn discover(&self) -> Result<Discovered, ApiError> {
        let mut out = Discovered::default();
        let mut denied = Vec::new();
        // `Ok(None)`: not installed (404) or not permitted (403, recorded).
        let mut optional = |r: Result<Vec<Value>, ApiError>, ar: &ApiResource| match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) if e.code == 403 => {
                denied.push(Denied::list(ar));
                Ok(None)
            }
            Err(e) => Err(e),
        };
        let profiles_ar = other("cdi.kubevirt.io", "v1beta1", "StorageProfile", "storageprofiles");
        let profiles = optional(self.list_values(&profiles_ar, None), &profiles_ar)?.unwrap_or_default();
        let classes_ar = other("storage.k8s.io", "v1", "StorageClass", "storageclasses");
        for sc in optional(self.list_values(&classes_ar, None), &classes_ar)?.into_iter().flatten() {
            let Some(name) = sc.pointer("/metadata/name").and_then(Value::as_str) else { continue };
            out.storage_classes.push(storage_class(name, &sc, &profiles));
        }
        let snapshots_ar = other("snapshot.storage.k8s.io", "v1", "VolumeSnapshotClass", "volumesnapshotclasses");
        out.snapshot_classes = optional(self.list_values(&snapshots_ar, None), &snapshots_ar)?.map(|list| {
            list.iter()
                .filter_map(|v| {
                    let name = v.pointer("/metadata/name")?.as_str()?.to_string();
                    let default = v
                        .pointer("/metadata/annotations/snapshot.storage.kubernetes.io~1is-default-class")
                        .and_then(Value::as_str)
                        == Some("true");
                    Some((name, default))
                })
                .collect()
        });
        let nodes_ar = other("", "v1", "Node", "nodes");
        if let Some(nodes) = optional(self.list_values(&nodes_ar, None), &nodes_ar)? {
            out.host_devices = device_totals(&nodes);
            out.nodes = node_shapes(&nodes);
            out.device_nodes = super::inventory::device_nodes(&nodes, node_devices);
        }
        let kubevirt_ar = other("kubevirt.io", "v1", "KubeVirt", "kubevirts");
        out.kubevirt = optional(self.list_values(&kubevirt_ar, None), &kubevirt_ar)?
            .and_then(|list| super::inventory::kubevirt(&list));
        out.denied = denied;
        Ok(out)
    }

    pub fn get_lease(&self, namespace: &str, name: &str) -> Result<Option<Value>, ApiError> {
        self.get_resource(&lease_resource(), Some(namespace), name)
    }

    /// Creates a Lease; `Ok(false)` when it already exists.
    pub fn create_lease(&self, namespace: &str, body: &Value) -> Result<bool, ApiError> {
        let api = self.api(&lease_resource(), Some(namespace));
        let obj = dynamic(body)?;
        let params = PostParams::default();
        match self.call(|| api.create(&params, &obj)) {
            Ok(_) => Ok(true),
            Err(e) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Replaces a Lease with optimistic concurrency (body carries resourceVersion).
    pub fn replace_lease(&self, namespace: &str, name: &str, body: &Value) -> Result<Value, ApiError> {
        let api = self.api(&lease_resource(), Some(namespace));
        let obj = dynamic(body)?;
        let params = PostParams::default();
        let done = self.call(|| api.replace(name, &params, &obj))?;
        Ok(serde_json::to_value(done).unwrap_or(Value::Null))
    }

    /// Deletes a Lease, only at `resource_version` when given (so a Lease
    /// someone else took over is left alone).
    pub fn delete_lease(&self, namespace: &str, name: &str, resource_version: Option<String>) -> Result<(), ApiError> {
        let api = self.api(&lease_resource(), Some(namespace));
        let params = DeleteParams {
            preconditions: resource_version
                .map(|rv| kube::api::Preconditions { resource_version: Some(rv), uid: None }),
            ..DeleteParams::default()
        };
        match self.call(|| api.delete(name, &params)) {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A Secret's data value, decoded.
    pub fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
        use base64::Engine;
        let Some(s) = self.get(Kind::Secret, namespace, name)? else { return Ok(None) };
        Ok(s.pointer(&format!("/data/{}", key.replace('~', "~0").replace('/', "~1")))
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()))
    }
}

/// A StorageClass with its access and volume modes and clone strategy
/// from the CDI StorageProfile of the same name, where there is one.
fn storage_class(name: &str, sc: &Value, profiles: &[Value]) -> DiscoveredClass {
    let default = super::inventory::marked_default(sc);
    let created = sc.pointer("/metadata/creationTimestamp").and_then(Value::as_str).unwrap_or_default().to_string();
    let profile = profiles.iter().find(|p| p.pointer("/metadata/name").and_then(Value::as_str) == Some(name));
    let sets: Vec<&Value> = profile
        .into_iter()
        .flat_map(|p| p.pointer("/status/claimPropertySets").and_then(Value::as_array).into_iter().flatten())
        .collect();
    let rwx = sets.iter().any(|s| {
        s.get("accessModes").and_then(Value::as_array).is_some_and(|m| m.iter().any(|a| a == "ReadWriteMany"))
    });
    let block = sets.iter().any(|s| s.get("volumeMode") == Some(&Value::String("Block".into())));
    let known = !sets.is_empty();
    // The status holds the strategy in effect; the spec an override.
    let clone = profile
        .and_then(|p| p.pointer("/status/cloneStrategy").or_else(|| p.pointer("/spec/cloneStrategy")))
        .and_then(Value::as_str)
        .and_then(crate::ir::CloneStrategy::from_word);
    DiscoveredClass {
        name: name.to_string(),
        rwx: known.then_some(rwx),
        block: known.then_some(block),
        default,
        clone,
        created,
    }
}

/// Whether VMs and control planes can be scheduled on a node: not cordoned
/// and not a control-plane node of the management cluster.
fn schedulable(node: &Value) -> bool {
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        return false;
    }
    let taints = node.pointer("/spec/taints").and_then(Value::as_array).into_iter().flatten();
    !taints.into_iter().any(|t| {
        let key = t.get("key").and_then(Value::as_str).unwrap_or_default();
        let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
        matches!(key, "node-role.kubernetes.io/master" | "node-role.kubernetes.io/control-plane")
            && matches!(effect, "NoSchedule" | "NoExecute")
    })
}

/// Extended resources of a node's allocatable that are devices, not
/// KubeVirt's own (`devices.kubevirt.io/kvm`, …) or built-in resources.
fn node_devices(node: &Value) -> Vec<(String, u64)> {
    let Some(alloc) = node.pointer("/status/allocatable").and_then(Value::as_object) else { return Vec::new() };
    let mut out: Vec<(String, u64)> = alloc
        .iter()
        .filter(|(res, _)| {
            let builtin = ["cpu", "memory", "pods", "ephemeral-storage"].contains(&res.as_str())
                || res.starts_with("hugepages-")
                || res.starts_with("devices.kubevirt.io/");
            !builtin && res.contains('/')
        })
        // A quantity, as the API server writes it: 1000 devices are `1k`.
        .map(|(res, qty)| {
            let n = qty.as_str().and_then(|s| crate::quantity::Quantity::parse(s).ok()).map_or(0, |q| q.whole());
            (res.clone(), u64::try_from(n).unwrap_or(u64::MAX))
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    out.sort();
    out
}

/// Device totals over every node, as before node shapes were known.
fn device_totals(nodes: &[Value]) -> Vec<(String, u64)> {
    let mut devices: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for node in nodes {
        for (res, n) in node_devices(node) {
            let total = devices.entry(res).or_default();
            *total = total.saturating_add(n);
        }
    }
    devices.into_iter().collect()
}

/// Schedulable nodes grouped by identical allocatable CPU, memory and
/// devices, in order of their first node's name.
fn node_shapes(nodes: &[Value]) -> Option<Vec<DiscoveredNodes>> {
    let mut named: Vec<(&str, &Value)> = nodes
        .iter()
        .filter(|n| schedulable(n))
        .filter_map(|n| Some((n.pointer("/metadata/name")?.as_str()?, n)))
        .collect();
    named.sort_by_key(|(name, _)| *name);
    let mut groups: Vec<DiscoveredNodes> = Vec::new();
    for (name, node) in named {
        let quantity = |key: &str| {
            node.pointer(&format!("/status/allocatable/{key}"))
                .and_then(Value::as_str)
                .and_then(|s| crate::quantity::Quantity::parse(s).ok())
        };
        let cpu_millis = u64::try_from(quantity("cpu")?.millis()).unwrap_or(u64::MAX);
        let memory = quantity("memory")?.whole();
        let devices: Vec<(String, u32)> =
            node_devices(node).into_iter().map(|(d, n)| (d, u32::try_from(n).unwrap_or(u32::MAX))).collect();
        match groups.iter_mut().find(|g| g.cpu_millis == cpu_millis && g.memory == memory && g.devices == devices) {
            Some(g) => g.count += 1,
            None => groups.push(DiscoveredNodes { first: name.to_string(), count: 1, cpu_millis, memory, devices }),
        }
    }
    Some(groups)
}

/// A version of what an object says, not of when it was last written:
/// status updates by the operator bump resourceVersion but must not make a
/// saved plan stale; any change to metadata, spec or data does. The digest
/// of the body without those fields, streamed (no copy of the body).
fn content_version(body: &Value) -> String {
    use sha2::Digest;
    /// Serializes a body without status and server bookkeeping: the same
    /// bytes as serializing a copy with those fields removed.
    struct Content<'a>(&'a Value);
    struct Metadata<'a>(&'a serde_json::Map<String, Value>);
    enum Field<'a> {
        Metadata(Metadata<'a>),
        Other(&'a Value),
    }
    impl serde::Serialize for Content<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let Value::Object(map) = self.0 else { return self.0.serialize(s) };
            s.collect_map(map.iter().filter(|(k, _)| *k != "status").map(|(k, v)| match v {
                Value::Object(meta) if k == "metadata" => (k, Field::Metadata(Metadata(meta))),
                v => (k, Field::Other(v)),
            }))
        }
    }
    impl serde::Serialize for Field<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Field::Metadata(m) => m.serialize(s),
                Field::Other(v) => v.serialize(s),
            }
        }
    }
    impl serde::Serialize for Metadata<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            const SERVER_SET: [&str; 5] =
                ["resourceVersion", "managedFields", "generation", "creationTimestamp", "uid"];
            s.collect_map(self.0.iter().filter(|(k, _)| !SERVER_SET.contains(&k.as_str())))
        }
    }
    struct Hasher(sha2::Sha256);
    impl std::io::Write for Hasher {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hasher = Hasher(sha2::Sha256::new());
    // Writing into a hasher cannot fail, nor can serializing a JSON value.
    let _ = serde_json::to_writer(&mut hasher, &Content(body));
    format!("sha256:{:x}", hasher.0.finalize())
}

/// A listed object as planning needs it, decoded straight from the LIST
/// response: without `status` (the operator's, never compared) but its
/// `version` (the version rules read it) and with
/// only hcpc's own managedFields entry (the only one the diff reads), so
/// a fleet's worth of operator status is never built in memory.
struct Lean(Value);

impl<'de> serde::Deserialize<'de> for Lean {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Lean, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, Visitor};
        use serde_json::Map;
        struct Object {
            top: bool,
        }
        impl<'de> Visitor<'de> for Object {
            type Value = Map<String, Value>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Kubernetes object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    match (self.top, key.as_str()) {
                        (true, "status") => {
                            if let Some(status) = map.next_value_seed(super::supported::StatusVersion)? {
                                out.insert(key, status);
                            }
                        }
                        (true, "metadata") => {
                            let metadata = map.next_value_seed(Metadata)?;
                            out.insert(key, Value::Object(metadata));
                        }
                        (false, "managedFields") => {
                            let entries = map.next_value_seed(Entries)?;
                            out.insert(key, Value::Array(entries));
                        }
                        _ => {
                            let value = map.next_value()?;
                            out.insert(key, value);
                        }
                    }
                }
                Ok(out)
            }
        }
        struct Metadata;
        impl<'de> serde::de::DeserializeSeed<'de> for Metadata {
            type Value = Map<String, Value>;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(Object { top: false })
            }
        }
        /// managedFields: hcpc's entries only. The server writes
        /// `manager` first, so another manager's `fieldsV1` (the operator's
        /// status, mostly) is skipped without being built.
        struct Entries;
        impl<'de> serde::de::DeserializeSeed<'de> for Entries {
            type Value = Vec<Value>;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_seq(self)
            }
        }
        impl<'de> Visitor<'de> for Entries {
            type Value = Vec<Value>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("managedFields entries")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = seq.next_element_seed(Entry)? {
                    out.extend(entry);
                }
                Ok(out)
            }
        }
        struct Entry;
        impl<'de> serde::de::DeserializeSeed<'de> for Entry {
            type Value = Option<Value>;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
        }
        impl<'de> Visitor<'de> for Entry {
            type Value = Option<Value>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a managedFields entry")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Map::new();
                let mut ours = false;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "manager" {
                        let manager: Value = map.next_value()?;
                        ours = manager.as_str() == Some(labels::FIELD_MANAGER);
                        if !ours {
                            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                            return Ok(None);
                        }
                        out.insert(key, manager);
                    } else {
                        out.insert(key, map.next_value()?);
                    }
                }
                Ok(ours.then_some(Value::Object(out)))
            }
        }
        d.deserialize_map(Object { top: true }).map(|m| Lean(Value::Object(m)))
    }
}

/// Up to this many unlabelled objects of one kind in one namespace are
/// looked up one by one; more, with one LIST.
const GETS_BEFORE_LIST: usize = 8;

/// `12s`, `1.5s`: a duration for messages.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() < 0.05 { format!("{}s", s.round()) } else { format!("{s:.1}s") }
}

/// The kubeconfig as kubectl finds it: the files in `KUBECONFIG`, merged,
/// else `~/.kube/config`.
fn read_kubeconfig() -> Result<Kubeconfig, String> {
    let from_env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
    Kubeconfig::read().map_err(|e| match (&from_env, &e) {
        (None, kube::config::KubeconfigError::FindPath | kube::config::KubeconfigError::ReadConfig(..)) => {
            "no kubeconfig: KUBECONFIG is not set and ~/.kube/config cannot be read\n  help: set KUBECONFIG to your management cluster's kubeconfig, or plan against a directory with `--target dir:PATH`".to_string()
        }
        // The path plainly, not as kube's debug-quoted `'"…"'`.
        (Some(_), kube::config::KubeconfigError::ReadConfig(io, path)) => {
            format!("cannot read the kubeconfig {} (from KUBECONFIG): {io}", path.display())
        }
        (Some(paths), _) => format!("cannot read the kubeconfig in KUBECONFIG ({}): {e}", paths.to_string_lossy()),
        (None, _) => format!("cannot read ~/.kube/config: {e}"),
    })
}

/// The context to use: the one asked for, else the current one; either
/// must exist, and when it does not the message lists those that do.
fn choose_context(kubeconfig: &Kubeconfig, wanted: Option<&str>) -> Result<String, String> {
    let names: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
    let listed = if names.is_empty() { "it has none".to_string() } else { format!("it has: {}", names.join(", ")) };
    match wanted {
        Some(name) if names.contains(&name) => Ok(name.to_string()),
        Some(name) => Err(match crate::diagnostic::closest(name, names.iter().copied()) {
            Some(near) => format!("the kubeconfig has no context `{name}`; {listed}\n  help: did you mean `{near}`?"),
            None => format!(
                "the kubeconfig has no context `{name}`; {listed}\n  help: pass one of them with --context NAME or `target kube context=NAME`"
            ),
        }),
        None => match kubeconfig.current_context.as_deref().filter(|c| !c.is_empty()) {
            Some(current) if names.contains(&current) => Ok(current.to_string()),
            Some(current) => Err(format!(
                "the kubeconfig's current-context `{current}` does not exist; {listed}\n  help: pass one of them with --context NAME or `target kube context=NAME`"
            )),
            None => Err(format!(
                "the kubeconfig sets no current-context; {listed}\n  help: pass one of them with --context NAME or `target kube context=NAME`"
            )),
        },
    }
}

/// A JSON body as the client's dynamic object type.
fn dynamic(body: &Value) -> Result<DynamicObject, ApiError> {
    serde_json::from_value(body.clone()).map_err(|e| ApiError::local("Invalid", e.to_string()))
}

impl LiveState for KubeTarget {
    fn describe(&self) -> String {
        self.described.clone()
    }

    fn hosted_clusters(&self, namespace: &str) -> Result<Vec<Value>, String> {
        let api = self.api(&resource(Kind::HostedCluster), Some(namespace));
        let params = ListParams::default();
        let list =
            self.call(|| api.list(&params)).map_err(|e| format!("cannot list HostedClusters in {namespace}: {e}"))?;
        Ok(list.items.into_iter().filter_map(|o| serde_json::to_value(o).ok()).collect())
    }

    fn node_pools(&self, namespace: &str) -> Result<Vec<Value>, String> {
        let api = self.api(&resource(Kind::NodePool), Some(namespace));
        let params = ListParams::default();
        let list = self.call(|| api.list(&params)).map_err(|e| format!("cannot list NodePools in {namespace}: {e}"))?;
        Ok(list.items.into_iter().filter_map(|o| serde_json::to_value(o).ok()).collect())
    }

    fn read(&self, applyset: &str, wanted: &[ObjectId]) -> Result<Vec<LiveObject>, String> {
        let listed = self.list_fleet(applyset, Freshness::Latest)?;
        self.complete(listed, applyset, wanted, Freshness::Latest)
    }
}

impl KubeTarget {
    /// Reads the fleet's live objects while `compile` runs: the LISTs start
    /// at once, in parallel, and `compile` gets the discovered
    /// infrastructure (read meanwhile) and returns what it compiled and the
    /// ids it wants. `Ok(None)` when `compile` gave up.
    pub fn read_while<T>(
        &self,
        applyset: &str,
        freshness: Freshness,
        compile: impl FnOnce(Result<Discovered, ApiError>) -> Option<(T, Vec<ObjectId>)>,
    ) -> Result<Option<(T, Vec<LiveObject>)>, String> {
        std::thread::scope(|s| {
            let listing = s.spawn(|| self.list_fleet(applyset, freshness));
            // Beside discovery, not after it: no round trip added.
            let supported = s.spawn(|| super::supported::read(self));
            let discovered = self.discover().and_then(|mut d| {
                d.supported_versions = supported.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                Ok(d)
            });
            let compiled = compile(discovered);
            let listed = listing.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            let Some((t, wanted)) = compiled else { return Ok(None) };
            Ok(Some((t, self.complete(listed?, applyset, &wanted, freshness)?)))
        })
    }

    /// Four LISTs at once: Namespaces (all: a Namespace may exist before
    /// hcpc labels it), and Secrets, HostedClusters and NodePools carrying
    /// the fleet's ApplySet label. Items are decoded [`Lean`]. A kind the
    /// identity may not list across namespaces is read per namespace by
    /// [`KubeTarget::complete`], once the fleet's namespaces are known: a
    /// CI identity needs no cluster-wide access to Secrets.
    fn list_fleet(&self, applyset: &str, freshness: Freshness) -> Result<Listed, String> {
        let selector = format!("{}={applyset}", labels::APPLYSET_PART_OF);
        let lists: Vec<(Kind, Result<Vec<LiveObject>, ApiError>)> = std::thread::scope(|s| {
            let threads: Vec<_> = Kind::ALL
                .into_iter()
                .map(|kind| {
                    let selector = (kind != Kind::Namespace).then_some(selector.as_str());
                    s.spawn(move || {
                        let items = self.list_as::<Lean>(&resource(kind), None, selector, freshness);
                        (
                            kind,
                            items.map(|items| {
                                items.into_iter().map(|Lean(body)| live_object(kind, None, body)).collect()
                            }),
                        )
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        });
        let mut out = Listed::default();
        let mut failed = Vec::new();
        for (kind, list) in lists {
            match list {
                Ok(objects) => out.objects.extend(objects),
                Err(e) if e.code == 403 => out.per_namespace.push(kind),
                Err(e) => failed.push(format!("cannot list {}: {e}", kind.plural())),
            }
        }
        if !failed.is_empty() {
            return Err(failed.join("\n"));
        }
        Ok(out)
    }

    /// Keeps the Namespaces that are wanted, and looks up wanted objects
    /// hcpc has not labelled yet (adopted from `hcp`, or a create-only
    /// key): they can only exist in namespaces that exist. One GET each
    /// when few, else one LIST of the kind in that namespace (a first
    /// apply into a busy namespace would otherwise GET every object). An
    /// applied fleet needs none of these. Kinds refused across namespaces
    /// are read here in each of the fleet's namespaces; every refusal is
    /// reported, not only the first.
    fn complete(
        &self,
        listed: Listed,
        applyset: &str,
        wanted: &[ObjectId],
        freshness: Freshness,
    ) -> Result<Vec<LiveObject>, String> {
        let Listed { objects: mut listed, per_namespace } = listed;
        let mut refused: Vec<String> = Vec::new();
        let mut refuse = |verb: &str, kind: Kind, namespace: Option<&str>, e: &ApiError| {
            let resource = if kind.group().is_empty() {
                kind.plural().to_string()
            } else {
                format!("{}.{}", kind.plural(), kind.group())
            };
            let scope = namespace.map_or_else(|| "at the cluster scope".to_string(), |ns| format!("in namespace {ns}"));
            refused.push(format!("may not `{verb}` {resource} {scope} ({} {})", e.code, e.reason));
        };
        if per_namespace.contains(&Kind::Namespace) {
            // Refused the cluster-wide LIST: each of the fleet's Namespaces by name.
            for id in wanted.iter().filter(|id| id.kind == Kind::Namespace) {
                match self.get(Kind::Namespace, "", &id.name) {
                    Ok(Some(body)) => listed.push(live_object(Kind::Namespace, None, body)),
                    Ok(None) => {}
                    Err(e) if e.code == 403 => refuse("get", Kind::Namespace, None, &e),
                    Err(e) => return Err(format!("cannot read namespace {}: {e}", id.name)),
                }
            }
        }
        let fleet_namespaces: std::collections::BTreeSet<&str> =
            wanted.iter().filter(|id| id.kind != Kind::Namespace).map(|id| id.namespace.as_str()).collect();
        let existing: std::collections::BTreeSet<String> =
            listed.iter().filter(|o| o.id.kind == Kind::Namespace).map(|o| o.id.name.clone()).collect();
        let selector = format!("{}={applyset}", labels::APPLYSET_PART_OF);
        for kind in per_namespace.iter().copied().filter(|k| *k != Kind::Namespace) {
            for ns in fleet_namespaces.iter().filter(|ns| existing.contains(**ns)) {
                match self.list_as::<Lean>(&resource(kind), Some(ns), Some(&selector), freshness) {
                    Ok(items) => listed.extend(items.into_iter().map(|Lean(body)| live_object(kind, Some(ns), body))),
                    Err(e) if e.code == 403 => refuse("list", kind, Some(ns), &e),
                    Err(e) => return Err(format!("cannot list {} in {ns}: {e}", kind.plural())),
                }
            }
        }
        if !refused.is_empty() {
            return Err(format!(
                "the identity of this kubeconfig is refused {} permission{}:\n  {}\n  help: grant each (a Role in each fleet namespace is enough for Secrets, HostedClusters and NodePools)",
                refused.len(),
                if refused.len() == 1 { "" } else { "s" },
                refused.join("\n  ")
            ));
        }
        let wanted_namespaces: std::collections::BTreeSet<&ObjectId> =
            wanted.iter().filter(|id| id.kind == Kind::Namespace).collect();
        let mut out: Vec<LiveObject> =
            listed.into_iter().filter(|o| o.id.kind != Kind::Namespace || wanted_namespaces.contains(&o.id)).collect();
        let namespaces: std::collections::BTreeSet<String> =
            out.iter().filter(|o| o.id.kind == Kind::Namespace).map(|o| o.id.name.clone()).collect();
        let found: std::collections::BTreeSet<ObjectId> = out.iter().map(|o| o.id.clone()).collect();
        let mut missing: std::collections::BTreeMap<(Kind, &str), Vec<&ObjectId>> = Default::default();
        for id in wanted
            .iter()
            .filter(|id| id.kind != Kind::Namespace && !found.contains(*id) && namespaces.contains(&id.namespace))
        {
            missing.entry((id.kind, id.namespace.as_str())).or_default().push(id);
        }
        for ((kind, namespace), ids) in missing {
            if ids.len() <= GETS_BEFORE_LIST {
                for id in ids {
                    if let Some(body) =
                        self.get(id.kind, &id.namespace, &id.name).map_err(|e| format!("cannot read {id}: {e}"))?
                    {
                        out.push(live_object(id.kind, Some(&id.namespace), body));
                    }
                }
                continue;
            }
            let ids: std::collections::BTreeSet<&ObjectId> = ids.into_iter().collect();
            let items: Vec<Lean> = self
                .list_as(&resource(kind), Some(namespace), None, freshness)
                .map_err(|e| format!("cannot list {} in {namespace}: {e}", kind.plural()))?;
            for Lean(body) in items {
                let object = live_object(kind, Some(namespace), body);
                if ids.contains(&object.id) {
                    out.push(object);
                }
            }
        }
        Ok(out)
    }
}

/// What the fleet's LISTs across namespaces returned, and the kinds the
/// identity may list only per namespace.
#[derive(Default)]
struct Listed {
    objects: Vec<LiveObject>,
    per_namespace: Vec<Kind>,
}

/// A listed or fetched object, versioned by content. `namespace` when the
/// request named it.
fn live_object(kind: Kind, namespace: Option<&str>, body: Value) -> LiveObject {
    let name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let ns = namespace.or_else(|| body.pointer("/metadata/namespace").and_then(Value::as_str)).unwrap_or_default();
    let id = ObjectId::new(kind, ns, name);
    let version = Some(content_version(&body));
    LiveObject { id, body, version }
}

impl Target for KubeTarget {
    fn lock(
        &self,
        fleet: &str,
        namespace: &DesiredObject,
        timeout: Duration,
        say: &dyn Fn(&str),
    ) -> Result<Box<dyn Lock + Send + '_>, String> {
        // The Lease lives in the fleet's namespace: create it if missing. One
        // that exists is left alone; another fleet may own it.
        let ns = &namespace.id.name;
        let exists = self.get(Kind::Namespace, "", ns).map_err(|e| format!("cannot read namespace {ns}: {e}"))?;
        if exists.is_none() {
            self.apply(&namespace.id, namespace.body(), false)
                .map_err(|e| format!("cannot create namespace {ns}: {}", describe(&e)))?;
        }
        let lock = KubeLock::acquire(self, ns, &format!("hcpc-lock-{fleet}"), timeout, say)?;
        Ok(Box::new(lock))
    }

    fn record_applyset(&self, parent: &DesiredObject) -> Result<(), String> {
        self.apply(&parent.id, parent.body(), true).map(|_| ()).map_err(|e| describe(&e))
    }

    fn apply_one(&self, o: &DesiredObject, force_conflicts: bool) -> Result<(), WriteError> {
        if o.create_only {
            // Created, never rewritten: a create the server refuses because
            // the object exists leaves the existing key as it is.
            let mut body = o.body().clone();
            body["data"] = serde_json::json!({ "key": generate_key()? });
            return self.create(&o.id, &body).map(|_| ()).map_err(|e| e.to_write_error());
        }
        self.apply(&o.id, o.body(), force_conflicts).map(|_| ()).map_err(|e| e.to_write_error())
    }

    fn delete_one(&self, id: &ObjectId) -> Result<(), WriteError> {
        self.delete(id).map_err(|e| e.to_write_error())
    }

    fn dry_run(
        &self,
        objects: &[&DesiredObject],
        parallelism: usize,
        force_conflicts: bool,
    ) -> Vec<super::dry_run::Rejection> {
        super::dry_run::check(self, objects, parallelism, force_conflicts)
    }

    fn wait_gone(&self, id: &ObjectId, timeout: Duration, progress: &dyn Fn(&str)) -> Result<(), String> {
        /// How often the wait says what holds the object.
        const TELL_EVERY: Duration = Duration::from_secs(10);
        let start = Instant::now();
        let mut told = start;
        loop {
            let Some(live) = self.get(id.kind, &id.namespace, &id.name).map_err(|e| describe(&e))? else {
                return Ok(());
            };
            let holders = live
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|f| f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                .filter(|f| !f.is_empty())
                .map_or_else(String::new, |f| format!(" (waiting for finalizers: {f})"));
            if let Some(stop) = crate::interrupt::requested() {
                return Err(format!("interrupted by {} while waiting for it to be deleted", stop.name()));
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "still being deleted after {}s (--timeout){holders}; it is not created again until it is gone: run apply again later, it continues from there",
                    timeout.as_secs()
                ));
            }
            if told.elapsed() >= TELL_EVERY {
                progress(&format!("{id}: deleting, before it is created again{holders}"));
                told = Instant::now();
            }
            std::thread::sleep(Duration::from_secs(2).min(timeout.saturating_sub(start.elapsed())));
        }
    }
}

/// An API error in words, with conflicts and validation failures spelt out.
pub fn describe(e: &ApiError) -> String {
    if e.code == 409 && !e.causes.is_empty() {
        let fields: Vec<String> = e.causes.iter().map(|(field, msg)| format!("{field} ({msg})")).collect();
        return format!(
            "server-side apply conflict: {}\n  help: another field manager owns these fields; re-run with --force-conflicts to take them over",
            fields.join(", ")
        );
    }
    if e.code == 422 && !e.causes.is_empty() {
        let fields: Vec<String> = e.causes.iter().map(|(field, msg)| format!("{field}: {msg}")).collect();
        return format!("rejected by the API server: {}", fields.join("; "));
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The API server writes 1000 devices as `1k`: still 1000 devices.
    #[test]
    fn node_devices_are_quantities() {
        let node = json!({"status": {"allocatable": {
            "nvidia.com/GA102GL_A10": "1k", "example.com/fpga": "2", "cpu": "64", "devices.kubevirt.io/kvm": "1k"
        }}});
        assert_eq!(
            node_devices(&node),
            vec![("example.com/fpga".to_string(), 2), ("nvidia.com/GA102GL_A10".to_string(), 1000)]
        );
    }

    fn pool(status: Value, resource_version: &str) -> Value {
        json!({
            "apiVersion": "hypershift.openshift.io/v1beta1", "kind": "NodePool",
            "metadata": {"name": "a-w", "namespace": "clusters", "resourceVersion": resource_version,
                         "uid": "u", "generation": 2, "labels": {"team": "x"},
                         "managedFields": [
                             {"manager": "hypershift-operator", "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {}}},
                             {"manager": "hcpc", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                         ]},
            "spec": {"replicas": 2},
            "status": status,
        })
    }

    #[test]
    fn content_version_ignores_status_and_bookkeeping_but_not_content() {
        let v = content_version(&pool(json!({"replicas": 1}), "10"));
        assert_eq!(v, content_version(&pool(json!({"replicas": 2, "conditions": []}), "11")));
        let mut labelled = pool(json!({}), "12");
        labelled["metadata"]["labels"]["team"] = json!("y");
        assert_ne!(v, content_version(&labelled));
        // The same digest as a stripped copy: saved plans of earlier versions stay valid.
        let stripped = json!({"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "NodePool",
            "metadata": {"name": "a-w", "namespace": "clusters", "labels": {"team": "x"}}, "spec": {"replicas": 2}});
        assert_eq!(v, crate::plan::diff::digest_value(&stripped));
    }

    #[test]
    fn listed_objects_keep_only_what_planning_reads() {
        let text = json!({"items": [pool(json!({"replicas": 1}), "10")]}).to_string();
        #[derive(serde::Deserialize)]
        struct List {
            items: Vec<Lean>,
        }
        let list: List = serde_json::from_str(&text).unwrap();
        let body = &list.items[0].0;
        assert!(body.get("status").is_none());
        assert_eq!(body["spec"]["replicas"], 2);
        assert_eq!(body["metadata"]["labels"]["team"], "x");
        let managers: Vec<&Value> =
            body["metadata"]["managedFields"].as_array().unwrap().iter().map(|e| &e["manager"]).collect();
        assert_eq!(managers, [&json!("hcpc")]);
        assert_eq!(content_version(body), content_version(&pool(json!({}), "10")));
    }

    #[test]
    fn managed_fields_of_other_managers_are_dropped_whatever_the_key_order() {
        // As the server writes them (manager first), and with manager last.
        let text = r#"{"items": [{"metadata": {"name": "a", "managedFields": [
            {"manager": "hypershift-operator", "operation": "Update", "fieldsV1": {"f:status": {"f:conditions": {}}}},
            {"manager": "hcpc", "operation": "Apply", "fieldsV1": {"f:spec": {}}},
            {"operation": "Update", "fieldsV1": {"f:metadata": {}}, "manager": "kubectl-edit"}
        ]}}]}"#;
        #[derive(serde::Deserialize)]
        struct List {
            items: Vec<Lean>,
        }
        let list: List = serde_json::from_str(text).unwrap();
        assert_eq!(
            list.items[0].0["metadata"]["managedFields"],
            json!([{"manager": "hcpc", "operation": "Apply", "fieldsV1": {"f:spec": {}}}])
        );
    }
}
