//! A real Kubernetes API server for the tests and benchmarks, as
//! controller-runtime's *envtest* provides one: etcd and kube-apiserver
//! started by the tests themselves, with the HyperShift CRDs installed, a
//! default storage class and snapshot class as a management cluster has,
//! and no controllers.
//!
//! - [`Envtest::shared`]: one server per test binary, started on first use;
//!   tests isolate themselves with [`Envtest::scope`] (their own namespace
//!   and fleet name). [`Envtest::start`]: a server of one's own, stopped
//!   when dropped (for cluster-scoped objects, or several targets).
//! - Binaries are found as envtest finds them (see [`assets`]). When they
//!   are missing, these return `None` after saying why on stderr, so the
//!   test can return early; with `CI=true` that is a failure instead.
//! - Both processes stop and their data is removed when the test process
//!   ends, panics and signals included (see [`process`]).
//!
//! Used as a module of the test binary and, by `#[path]`, of the benches: it
//! depends on nothing else in `tests/support/`.

mod assets;
mod certs;
mod process;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use process::Servers;

/// The context the written kubeconfigs make current.
pub const DEFAULT_CONTEXT: &str = "hcpc-test";

/// The default StorageClass and VolumeSnapshotClass every server has.
pub const DEFAULT_STORAGE_CLASS: &str = "standard";
pub const DEFAULT_SNAPSHOT_CLASS: &str = "standard-snapshot";

/// How long a server may take to answer `/readyz` (about 5 s on 2 cores).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A running etcd + kube-apiserver pair.
pub struct Envtest {
    url: String,
    token: String,
    ca_pem: String,
    servers: Mutex<Servers>,
    scopes: AtomicU32,
}

/// A test's own corner of a shared server: a namespace for its clusters and
/// a fleet name (hence its own ApplySet and lock). Both are the same
/// DNS label, unique per server.
#[derive(Debug, Clone)]
pub struct Scope {
    pub namespace: String,
    pub fleet: String,
}

enum Unavailable {
    /// A binary is missing: skip, or fail under CI.
    Missing(String),
    /// The binaries are there but the server did not come up: always a failure.
    Failed(String),
}

static SHARED: OnceLock<Result<Envtest, Unavailable>> = OnceLock::new();

/// `CI` set to anything but empty, `0` or `false`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

fn unavailable<T>(why: &Unavailable) -> Option<T> {
    match why {
        Unavailable::Failed(why) => panic!("the test API server did not start: {why}"),
        Unavailable::Missing(why) if in_ci() => {
            panic!("CI is set, so a real API server is required: {why}")
        }
        Unavailable::Missing(why) => {
            static SAID: Once = Once::new();
            // Straight to stderr: the test harness would hide a passing test's output.
            SAID.call_once(|| {
                let _ = writeln!(std::io::stderr(), "\nskipping the tests that need a real API server: {why}\n");
            });
            None
        }
    }
}

/// The repository root (this file is in `tests/support/envtest/`).
fn repo() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    repo.canonicalize().unwrap_or(repo)
}

impl Envtest {
    /// The server shared by every test of this process, started on first
    /// use; `None` (after saying why) when its binaries are missing.
    pub fn shared() -> Option<&'static Envtest> {
        match SHARED.get_or_init(Envtest::launch) {
            Ok(envtest) => Some(envtest),
            Err(why) => unavailable(why),
        }
    }

    /// A server of one's own, stopped when dropped; `None` (after saying
    /// why) when its binaries are missing.
    pub fn start() -> Option<Envtest> {
        match Envtest::launch() {
            Ok(envtest) => Some(envtest),
            Err(why) => unavailable(&why),
        }
    }

    fn launch() -> Result<Envtest, Unavailable> {
        let assets = assets::Assets::find().map_err(Unavailable::Missing)?;
        // A port picked as free can be taken by someone else before the
        // server binds it: try again with new ones.
        let mut last = String::new();
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("hcpc-envtest-")
                .tempdir()
                .map_err(|e| Unavailable::Failed(format!("cannot make a temporary directory: {e}")))?
                .keep();
            match Envtest::launch_in(&assets, &dir) {
                Ok(envtest) => return Ok(envtest),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    let retry = e.contains("address already in use");
                    last = e;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(Unavailable::Failed(last))
    }

    fn launch_in(assets: &assets::Assets, dir: &Path) -> Result<Envtest, String> {
        let assets = assets.runnable(dir).map_err(|e| format!("cannot make kube-apiserver executable: {e}"))?;
        let certs = certs::generate(dir)?;
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes for a token: {e}"))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let tokens = dir.join("tokens.csv");
        std::fs::write(&tokens, format!("{token},admin,admin,system:masters\n"))
            .map_err(|e| format!("cannot write {}: {e}", tokens.display()))?;
        let servers = Servers::spawn(&assets, dir, &certs, &tokens)?;
        // From here on, an error drops `envtest`, which stops the servers.
        let envtest = Envtest {
            url: format!("https://127.0.0.1:{}", servers.port),
            token,
            ca_pem: certs.ca_pem,
            servers: Mutex::new(servers),
            scopes: AtomicU32::new(0),
        };
        blocking(|| async {
            envtest.wait_ready().await?;
            envtest.install_crds().await?;
            envtest.install_default_classes().await
        })?;
        Ok(envtest)
    }

    fn servers(&self) -> std::sync::MutexGuard<'_, Servers> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let mut config = self.config().await;
        config.default_retry = false;
        let client = kube::Client::try_from(config).map_err(|e| format!("cannot build a client: {e}"))?;
        let started = Instant::now();
        loop {
            if let Some(why) = self.servers().exited() {
                return Err(why);
            }
            let request = http::Request::get("/readyz").body(Vec::new()).map_err(|e| e.to_string())?;
            if client.request_text(request).await.is_ok_and(|t| t.trim() == "ok") {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "kube-apiserver not ready after {}s:\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.servers().log_tail("kube-apiserver")
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A default StorageClass and a default VolumeSnapshotClass, as every
    /// management cluster for OpenShift Virtualization has them (hcpc
    /// refuses a fleet that relies on defaults the cluster lacks).
    async fn install_default_classes(&self) -> Result<(), String> {
        let client = self.client().await;
        for obj in [
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                   "metadata": {"name": DEFAULT_STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                   "provisioner": "csi.example.com"}),
            json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
                   "metadata": {"name": DEFAULT_SNAPSHOT_CLASS, "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"}},
                   "driver": "csi.example.com", "deletionPolicy": "Delete"}),
        ] {
            let (plural, _, name) = locate(&obj);
            let dynamic: DynamicObject = serde_json::from_value(obj).map_err(|e| e.to_string())?;
            api(client.clone(), plural, None)
                .create(&PostParams::default(), &dynamic)
                .await
                .map_err(|e| format!("cannot create {plural}/{name}: {e}"))?;
        }
        Ok(())
    }

    /// The HyperShift CRDs, and stand-ins for VolumeSnapshotClass, CDI's
    /// StorageProfile and KubeVirt; returns once every one is Established.
    async fn install_crds(&self) -> Result<(), String> {
        let crds = repo().join("../shared/conformance/crds");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&crds)
            .map_err(|e| format!("cannot list {}: {e}", crds.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".crd.yaml"))
            .collect();
        files.sort();
        files.push(repo().join("../shared/envtest/volumesnapshotclass.crd.yaml"));
        files.push(repo().join("tests/support/envtest/storageprofile.crd.yaml"));
        files.push(repo().join("tests/support/envtest/kubevirt.crd.yaml"));
        let client = self.client().await;
        let api: Api<DynamicObject> = Api::all_with(client, &resource("customresourcedefinitions").0);
        let mut names = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let crd: DynamicObject =
                serde_saphyr::from_str(&text).map_err(|e| format!("{} is not a CRD: {e}", file.display()))?;
            api.create(&PostParams::default(), &crd)
                .await
                .map_err(|e| format!("cannot install {}: {e}", file.display()))?;
            names.push(crd.metadata.name.unwrap_or_default());
        }
        let started = Instant::now();
        for name in names {
            loop {
                let crd = api.get(&name).await.map_err(|e| format!("cannot read CRD {name}: {e}"))?;
                let established = crd.data["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
                if established {
                    break;
                }
                if started.elapsed() > Duration::from_secs(30) {
                    return Err(format!("CRD {name} not Established after 30s"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// `https://127.0.0.1:PORT`.
    /// CPU time etcd and kube-apiserver have used so far.
    pub fn server_cpu(&self) -> Duration {
        self.servers.lock().unwrap_or_else(|e| e.into_inner()).cpu()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the server keeps its data, logs and certificates (removed when it stops).
    pub fn data_dir(&self) -> PathBuf {
        self.servers().dir().to_path_buf()
    }

    /// The bearer token of the `system:masters` user.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA that signed the serving certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kubeconfig with one cluster, one token user and one context
    /// (`context`), which is current.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        kubeconfig_yaml(context, &self.url, &self.token, Some(&self.ca_pem))
    }

    /// Writes `dir/kubeconfig` with context [`DEFAULT_CONTEXT`].
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml(DEFAULT_CONTEXT))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// A client configuration for this server.
    pub async fn config(&self) -> kube::Config {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml(DEFAULT_CONTEXT))
            .unwrap_or_else(|e| panic!("generated kubeconfig does not parse: {e}"));
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("generated kubeconfig is not usable: {e}"))
    }

    /// A client for this server, on the caller's runtime.
    pub async fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config().await).unwrap_or_else(|e| panic!("cannot build a client: {e}"))
    }

    /// Runs `f` with a client on a runtime of its own, and waits for it
    /// (from synchronous tests, and from async ones too).
    pub fn block_on<T: Send>(&self, f: impl AsyncFnOnce(kube::Client) -> T + Send) -> T {
        blocking(|| async { f(self.client().await).await })
    }

    /// A namespace and fleet name no other test of this server uses.
    pub fn scope(&self, what: &str) -> Scope {
        let n = self.scopes.fetch_add(1, Ordering::Relaxed);
        let name = format!("{what}-{n}");
        assert!(name.len() <= 40, "scope name {name} is too long for a namespace plus a cluster name");
        Scope { namespace: name.clone(), fleet: name }
    }

    // ----------------------------------------------------------- objects

    /// An object by resource plural (`nodepools`), namespace (`None` for
    /// cluster-scoped kinds) and name.
    pub fn get(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.block_on(async |client| {
            let found = api(client, plural, namespace).get_opt(name).await;
            found.unwrap_or_else(|e| panic!("GET {plural} {name}: {e}")).map(|o| to_value(&o))
        })
    }

    /// Objects of one resource, in one namespace or all (`None`).
    pub fn list(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        self.block_on(async |client| {
            let list = api(client, plural, namespace).list(&ListParams::default()).await;
            list.unwrap_or_else(|e| panic!("LIST {plural}: {e}")).items.iter().map(to_value).collect()
        })
    }

    /// Server-side applies `obj` (apiVersion, kind, name and, if namespaced,
    /// namespace set) as field manager `manager`, forcing conflicts.
    pub fn apply_as(&self, manager: &str, obj: &Value) -> Value {
        self.try_apply_as(manager, obj, true).unwrap_or_else(|e| panic!("apply as {manager}: {e}\n{obj:#}"))
    }

    /// Server-side apply that returns the server's refusal.
    pub fn try_apply_as(&self, manager: &str, obj: &Value, force: bool) -> Result<Value, kube::Error> {
        let (plural, namespace, name) = locate(obj);
        self.block_on(async |client| {
            let mut params = PatchParams::apply(manager);
            params.force = force;
            let applied = api(client, plural, namespace.as_deref()).patch(&name, &params, &Patch::Apply(obj)).await?;
            Ok(to_value(&applied))
        })
    }

    /// Creates `obj` (POST, field manager `envtest`).
    pub fn create(&self, obj: &Value) -> Value {
        let (plural, namespace, _) = locate(obj);
        self.block_on(async |client| {
            let body: DynamicObject = serde_json::from_value(obj.clone()).unwrap_or_else(|e| panic!("{e}: {obj:#}"));
            let params = PostParams { field_manager: Some("envtest".into()), ..PostParams::default() };
            let created = api(client, plural, namespace.as_deref()).create(&params, &body).await;
            to_value(&created.unwrap_or_else(|e| panic!("create: {e}\n{obj:#}")))
        })
    }

    /// Deletes an object; `false` when it did not exist.
    pub fn delete(&self, plural: &str, namespace: Option<&str>, name: &str) -> bool {
        self.block_on(async |client| match api(client, plural, namespace).delete(name, &Default::default()).await {
            Ok(_) => true,
            Err(kube::Error::Api(s)) if s.code == 404 => false,
            Err(e) => panic!("DELETE {plural} {name}: {e}"),
        })
    }

    /// Creates a namespace unless it exists.
    pub fn ensure_namespace(&self, name: &str) {
        self.apply_as("envtest", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
    }

    /// Writes `status` through the status subresource, as the operator
    /// `manager` would (server-side apply: fields it set before and no
    /// longer sends are removed). Returns the updated object.
    pub fn set_status_as(
        &self,
        manager: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Value {
        let (ar, _) = resource(plural);
        let mut body =
            json!({"apiVersion": ar.api_version, "kind": ar.kind, "metadata": {"name": name}, "status": status});
        if let Some(ns) = namespace {
            body["metadata"]["namespace"] = json!(ns);
        }
        self.block_on(async |client| {
            let params = PatchParams::apply(manager).force();
            let patched = api(client, plural, namespace).patch_status(name, &params, &Patch::Apply(&body)).await;
            to_value(&patched.unwrap_or_else(|e| panic!("status of {plural} {name}: {e}\n{body:#}")))
        })
    }

    /// Request counts from `/metrics` (`apiserver_request_total`), by
    /// verb and resource.
    pub fn request_counts(&self) -> RequestCounts {
        let text = self.block_on(async |client| {
            let request = http::Request::get("/metrics").body(Vec::new()).unwrap_or_else(|e| panic!("{e}"));
            client.request_text(request).await.unwrap_or_else(|e| panic!("GET /metrics: {e}"))
        });
        RequestCounts::parse(&text)
    }
}

/// `apiserver_request_total` summed by (verb, resource, subresource).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestCounts(pub BTreeMap<(String, String, String), f64>);

impl RequestCounts {
    fn parse(metrics: &str) -> RequestCounts {
        let mut counts = BTreeMap::new();
        for line in metrics.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
            let Some((labels, value)) = line.rsplit_once(' ') else { continue };
            let label = |name: &str| {
                labels
                    .split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_default()
                    .to_string()
            };
            let key = (label("verb"), label("resource"), label("subresource"));
            *counts.entry(key).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
        }
        RequestCounts(counts)
    }

    /// What was counted since `before`, leaving out requests for `/metrics`
    /// itself and the health checks (no resource).
    pub fn since(&self, before: &RequestCounts) -> RequestCounts {
        RequestCounts(
            self.0
                .iter()
                .filter(|((_, resource, _), _)| !resource.is_empty())
                .map(|(k, n)| (k.clone(), n - before.0.get(k).copied().unwrap_or(0.0)))
                .filter(|(_, n)| *n > 0.0)
                .collect(),
        )
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum::<f64>() as u64
    }
}

impl std::fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|((verb, resource, sub), n)| {
                let sub = if sub.is_empty() { String::new() } else { format!("/{sub}") };
                format!("{verb} {resource}{sub}: {n}")
            })
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// Runs `future` to completion on a runtime of its own, on a thread of its
/// own, so that it works whether or not the caller is inside a runtime.
fn blocking<T: Send, F: Future<Output = T>>(future: impl FnOnce() -> F + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot start a runtime: {e}"));
            runtime.block_on(future())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn to_value(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or_else(|e| panic!("object does not serialize: {e}"))
}

/// The resources tests touch, by plural: (resource, namespaced).
fn resource(plural: &str) -> (ApiResource, bool) {
    let (group, version, kind, namespaced) = match plural {
        "namespaces" => ("", "v1", "Namespace", false),
        "secrets" => ("", "v1", "Secret", true),
        "configmaps" => ("", "v1", "ConfigMap", true),
        "nodes" => ("", "v1", "Node", false),
        "leases" => ("coordination.k8s.io", "v1", "Lease", true),
        "hostedclusters" => ("hypershift.openshift.io", "v1beta1", "HostedCluster", true),
        "nodepools" => ("hypershift.openshift.io", "v1beta1", "NodePool", true),
        "storageclasses" => ("storage.k8s.io", "v1", "StorageClass", false),
        "storageprofiles" => ("cdi.kubevirt.io", "v1beta1", "StorageProfile", false),
        "volumesnapshotclasses" => ("snapshot.storage.k8s.io", "v1", "VolumeSnapshotClass", false),
        "kubevirts" => ("kubevirt.io", "v1", "KubeVirt", true),
        "customresourcedefinitions" => ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", false),
        "validatingadmissionpolicies" => ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", false),
        "serviceaccounts" => ("", "v1", "ServiceAccount", true),
        "roles" => ("rbac.authorization.k8s.io", "v1", "Role", true),
        "rolebindings" => ("rbac.authorization.k8s.io", "v1", "RoleBinding", true),
        "clusterroles" => ("rbac.authorization.k8s.io", "v1", "ClusterRole", false),
        "clusterrolebindings" => ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", false),
        "validatingadmissionpolicybindings" => {
            ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", false)
        }
        other => panic!("the test harness does not know resource {other}"),
    };
    let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version,
        kind: kind.into(),
        plural: plural.into(),
    };
    (ar, namespaced)
}

/// The plural of a kind the harness knows.
fn plural_of(kind: &str) -> &'static str {
    [
        "namespaces",
        "secrets",
        "configmaps",
        "nodes",
        "leases",
        "hostedclusters",
        "nodepools",
        "storageclasses",
        "storageprofiles",
        "volumesnapshotclasses",
        "kubevirts",
        "customresourcedefinitions",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "serviceaccounts",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    ]
    .into_iter()
    .find(|p| resource(p).0.kind == kind)
    .unwrap_or_else(|| panic!("the test harness does not know kind {kind}"))
}

/// (plural, namespace, name) of an object body.
fn locate(obj: &Value) -> (&'static str, Option<String>, String) {
    let plural = plural_of(obj["kind"].as_str().unwrap_or_default());
    let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string).filter(|_| resource(plural).1);
    let name = obj["metadata"]["name"].as_str().unwrap_or_else(|| panic!("object without a name: {obj:#}"));
    (plural, namespace, name.to_string())
}

fn api(client: kube::Client, plural: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let (ar, namespaced) = resource(plural);
    match namespace.filter(|_| namespaced) {
        Some(ns) => Api::namespaced_with(client, ns, &ar),
        None => Api::all_with(client, &ar),
    }
}

/// A kubeconfig with one cluster at `url`, one user with `token` and one
/// context (`context`), which is current; `ca_pem` is the CA of an HTTPS
/// server (none for plain HTTP).
pub fn kubeconfig_yaml(context: &str, url: &str, token: &str, ca_pem: Option<&str>) -> String {
    use base64::Engine;
    let ca = ca_pem
        .map(|pem| {
            format!("    certificate-authority-data: {}\n", base64::engine::general_purpose::STANDARD.encode(pem))
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: {context}\n  cluster:\n    server: {url}\n{ca}\
         users:\n- name: {context}\n  user:\n    token: {token}\n\
         contexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n\
         current-context: {context}\n",
    )
}
