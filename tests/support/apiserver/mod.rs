//! An in-process Kubernetes API endpoint for the end-to-end tests.
//!
//! No real kube-apiserver can run where the tests run, so [`ApiServer`]
//! serves the slice of the Kubernetes API that hcpc uses, over plain HTTP on
//! 127.0.0.1, to the real `kube` client (or the `hcpc` binary pointed at it
//! with `KUBECONFIG`). Its answers copy the real server's as recorded in
//! `shared/conformance/apiserver/` (statuses, bodies, error wording), and the
//! HostedCluster and NodePool CRDs from `shared/conformance/crds/` drive
//! defaulting, validation and field ownership.
//!
//! Served: discovery (legacy and aggregated), Namespaces, Secrets,
//! ConfigMaps, Nodes, Leases, StorageClasses, VolumeSnapshotClasses,
//! StorageProfiles, KubeVirts, CustomResourceDefinitions, HostedClusters,
//! NodePools.
//! Not served: watch, protobuf, tables, admission webhooks, controllers
//! (except that deleting a Namespace deletes its content at once).
//!
//! Layout:
//! - [`http`]: axum/tokio glue, cuttable connections, fault hooks
//! - [`router`]: authentication, discovery, path parsing
//! - [`handlers`]: get/list/create/update/patch/apply/delete, subresources;
//!   [`object`] and [`patch`]: object helpers and the non-apply patch formats
//! - [`ssa`] and [`fields`]: server-side apply and `managedFields`
//! - [`schema`], [`typecheck`], [`validation`], [`cel`]: CRD schema handling
//! - [`store`], [`selector`]: storage and LIST filtering
//! - [`faults`]: fault injection; [`discovery`], [`status`]: response bodies

mod cel;
mod discovery;
mod faults;
mod fields;
mod handlers;
mod http;
mod object;
mod patch;
mod resources;
mod router;
mod schema;
mod selector;
mod ssa;
mod status;
mod store;
mod typecheck;
mod util;
mod validation;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::oneshot;

pub use faults::Faults;

use router::Api;

/// The context name [`ApiServer::write_kubeconfig`] makes current.
pub const DEFAULT_CONTEXT: &str = "hcpc-test";

/// A running in-process API server; it stops when dropped.
pub struct ApiServer {
    addr: SocketAddr,
    api: Arc<Api>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Starts a server on a free loopback port, on its own thread and tokio
    /// runtime (so it works from sync tests and from any async runtime).
    pub fn start() -> ApiServer {
        let registry = resources::registry();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .unwrap_or_else(|e| panic!("test API server cannot bind 127.0.0.1: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("test API server has no local address: {e}"));
        let token = format!("{:016x}{:016x}", util::random_u64(), util::random_u64());
        let api = Arc::new(Api::new(token, addr.to_string(), registry));
        let (shutdown, stopped) = oneshot::channel();
        let served = api.clone();
        let thread = std::thread::Builder::new()
            .name(format!("apiserver-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("test API server cannot start a runtime: {e}");
                        return;
                    }
                };
                runtime.block_on(http::serve(listener, served, stopped));
                // Open connections and pending handlers are dropped here.
                runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            })
            .unwrap_or_else(|e| panic!("test API server cannot spawn its thread: {e}"));
        ApiServer { addr, api, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bearer token requests must carry.
    pub fn token(&self) -> &str {
        &self.api.token
    }

    /// A kubeconfig with one cluster, one token user and one context
    /// (`context`), which is current.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: {context}\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: {context}\n  user:\n    token: {token}\n\
             contexts:\n\
             - name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n\
             current-context: {context}\n",
            url = self.url(),
            token = self.token(),
        )
    }

    /// Writes `dir/kubeconfig` with context [`DEFAULT_CONTEXT`].
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        self.write_kubeconfig_file(dir, "kubeconfig", DEFAULT_CONTEXT)
    }

    /// Writes `dir/kubeconfig-<context>` whose current context is `context`.
    pub fn write_kubeconfig_with_context(&self, dir: &Path, context: &str) -> PathBuf {
        self.write_kubeconfig_file(dir, &format!("kubeconfig-{context}"), context)
    }

    fn write_kubeconfig_file(&self, dir: &Path, file: &str, context: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.kubeconfig_yaml(context))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// A `kube::Client` authenticated against this server.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml(DEFAULT_CONTEXT))
            .unwrap_or_else(|e| panic!("generated kubeconfig does not parse: {e}"));
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("generated kubeconfig is not usable: {e}"));
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a client: {e}"))
    }

    /// A `kube::Client` that sends no credentials.
    pub fn anonymous_client(&self) -> kube::Client {
        let url = self.url().parse().unwrap_or_else(|e| panic!("server URL does not parse: {e}"));
        kube::Client::try_from(kube::Config::new(url)).unwrap_or_else(|e| panic!("cannot build a client: {e}"))
    }

    /// Fault injection for the following requests.
    pub fn faults(&self) -> &Faults {
        &self.api.faults
    }

    /// Every request received so far, as (method, path with query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.api.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.api.clear_requests();
    }

    /// Stores `obj` as given (it must have apiVersion, kind, name and, if
    /// namespaced, namespace), filling in missing server-set metadata.
    /// No validation, CRD defaults or ownership are applied; the namespace
    /// need not exist. Returns the stored object.
    pub fn insert(&self, obj: Value) -> Value {
        handlers::insert(&self.api, obj).unwrap_or_else(|e| panic!("insert: {e}"))
    }

    /// Creates a namespace unless it exists.
    pub fn ensure_namespace(&self, name: &str) {
        self.api.ensure_namespace(name);
    }

    /// The stored object, by resource plural (`nodepools`), namespace
    /// (`None` for cluster-scoped kinds) and name.
    pub fn get(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let rt = self.api.registry.find_plural(plural)?;
        self.api.store().get(&store::Key::new(&rt, namespace, name)).cloned()
    }

    /// Stored objects of one resource, in one namespace or all (`None`).
    pub fn list(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(rt) = self.api.registry.find_plural(plural) else {
            return Vec::new();
        };
        self.api.store().list(&rt, namespace).into_iter().map(|(_, obj)| obj.clone()).collect()
    }

    /// Removes a stored object at once (no finalizers, no checks).
    pub fn remove(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let rt = self.api.registry.find_plural(plural)?;
        self.api.store().remove(&store::Key::new(&rt, namespace, name))
    }

    /// Replaces an object's `status` as a controller would, bumping its
    /// resourceVersion; returns the updated object, `None` if it is missing.
    pub fn set_status(&self, plural: &str, namespace: Option<&str>, name: &str, status: Value) -> Option<Value> {
        handlers::set_status(&self.api, plural, namespace, name, status)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
