//! A stand-in for the HyperShift operator, for tests and benchmarks against
//! the real kube-apiserver (no HyperShift runs there). It watches the
//! HostedClusters and NodePools of one namespace and writes, through the
//! status subresource, the status HyperShift writes while it installs and
//! upgrades them, after configurable delays:
//!
//! - HostedCluster (the control plane's cluster-version operator, reported
//!   by the hosted-cluster controller): when `spec.release.image` is not
//!   `status.version.history[0].image`, a new history entry goes first,
//!   state `Partial` with no `completionTime` (the update in progress),
//!   `status.version.desired` names the new release, and `Progressing` is
//!   True; after the control-plane delay the entry becomes `Completed`
//!   with its `completionTime`, and `Progressing` False. Older entries keep
//!   their state and get a `completionTime` if they had none, as the CRD
//!   says. Every item carries `image`, `state`, `startedTime`,
//!   `completionTime` and `verified`, which the CRD requires.
//! - NodePool: HyperShift never rolls a NodePool to a release its control
//!   plane has not completed (the version-skew policy): such a pool waits,
//!   and the stand-in records it as a [`Violation`]. Otherwise, when
//!   `status.version` is not the release's version, `UpdatingVersion`
//!   becomes True and `Ready` False; after the node-pool delay
//!   `status.version` is the new version, `status.replicas` the desired
//!   count (`spec.replicas`, or `spec.autoScaling.min`), `UpdatingVersion`
//!   False and `Ready` True. A replica change alone is reported at once.
//! - NodePool configuration: a change of `spec.platform` (the VMs' compute,
//!   storage, network) rolls the nodes with `UpdatingPlatformMachineTemplate`
//!   True, one of `spec.config` with `UpdatingConfig` True, `Ready` False
//!   meanwhile, for the node-pool delay; the shape the nodes were first
//!   made with (the install) rolls nothing. Every condition carries the
//!   `observedGeneration` it was written for, and a spec change that needs
//!   no work is observed at once.
//! - Version skew: a NodePool may run any release not newer than its
//!   control plane's newest completed one (a pool pinned to 4.20.6 under a
//!   control plane on 4.20.7), as HyperShift allows.
//! - A chosen cluster's nodes can stay unready ([`Operator::hold_ready`]):
//!   its pools reach their version, but report one node fewer than desired
//!   and `Ready` False (`WaitingForAvailableMachines`), as HyperShift does
//!   while machines have not joined; [`Operator::release_ready`] lets them
//!   join.
//! - A chosen cluster can fail ([`Failure`]): `Degraded=True` on the
//!   HostedCluster, a `Partial` history entry with `ClusterVersionFailing`
//!   True, or a NodePool whose `ValidMachineConfig` is False (the
//!   condition HyperShift sets when it cannot build the nodes' config).
//!   [`Operator::heal`] lets it go on.
//! - A chosen cluster can be left alone ([`Operator::pause`]): nothing of
//!   it or its pools is reconciled until [`Operator::resume`], as when the
//!   operator is slow to take a change up, or stuck.
//! - [`Operator::timeline`]: when it first saw each object name a release,
//!   and when the server accepted each status that completed a step, so a
//!   benchmark can tell the time hcpc took to react from its own.
//!
//! The version of a release is read from its tag (`…:4.18.5-x86_64` is
//! `4.18.5`), as the release payload would say it.
//!
//! Used as a module of the test binary and, by `#[path]`, of the benches:
//! it depends on nothing else in `tests/support/`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

/// The field manager the stand-in writes status as.
pub const MANAGER: &str = "hypershift-operator";

/// How long each step takes.
#[derive(Debug, Clone, Copy)]
pub struct Delays {
    /// From a new release on a HostedCluster to its history entry `Completed`.
    pub control_plane: Duration,
    /// From a NodePool's upgrade starting to its new version reported.
    pub node_pool: Duration,
}

impl Default for Delays {
    fn default() -> Delays {
        Delays { control_plane: Duration::from_millis(800), node_pool: Duration::from_millis(800) }
    }
}

/// How a chosen cluster fails.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// `Degraded=True` on the HostedCluster, its update left `Partial`.
    Degraded { reason: String, message: String },
    /// The update left `Partial`, with `ClusterVersionFailing=True`.
    Partial { reason: String, message: String },
    /// Every NodePool of the cluster: `ValidMachineConfig=False`, not rolled.
    NodePool { reason: String, message: String },
}

/// A NodePool told to go to a release its control plane had not completed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub node_pool: String,
    pub image: String,
}

/// What the test controls and reads while the stand-in runs.
#[derive(Default)]
struct Shared {
    delays: Delays,
    failures: BTreeMap<String, Failure>,
    /// Clusters whose nodes do not become ready.
    unready: BTreeSet<String>,
    /// Clusters the operator does not reconcile (it is stuck, or slow to
    /// take a change up): no status is written for them or their pools.
    paused: BTreeSet<String>,
    violations: BTreeSet<Violation>,
    /// Completed control-plane upgrades and NodePool roll-outs, in order:
    /// (`HostedCluster/NAME` or `NodePool/NAME`, image), for tests of order.
    completed: Vec<(String, String)>,
    /// When each release was first seen and each step acknowledged done.
    timeline: Vec<Moment>,
}

/// Something the stand-in saw or did, and when: what a benchmark needs to
/// tell the time hcpc took to react from the time the "operator" took.
#[derive(Debug, Clone)]
pub struct Moment {
    pub at: Instant,
    /// `HostedCluster/NAME` or `NodePool/NAME`.
    pub object: String,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A spec naming this release image, first seen through the watch (or
    /// the answer to a status write).
    Release(String),
    /// The status reporting this release done, as the server accepted it.
    Completed(String),
}

/// A running stand-in; stops when dropped.
pub struct Operator {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Operator {
    /// Starts watching `namespace` on the server `kubeconfig` (YAML) points at.
    pub fn start(kubeconfig: &str, namespace: &str, delays: Delays) -> Operator {
        let shared = Arc::new(Mutex::new(Shared { delays, ..Shared::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (shared, stop, requests) = (shared.clone(), stop.clone(), requests.clone());
            let (kubeconfig, namespace) = (kubeconfig.to_string(), namespace.to_string());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("cannot start a runtime: {e}"));
                runtime.block_on(async move {
                    let config = kube::config::Kubeconfig::from_yaml(&kubeconfig)
                        .unwrap_or_else(|e| panic!("kubeconfig does not parse: {e}"));
                    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
                        .await
                        .unwrap_or_else(|e| panic!("kubeconfig is not usable: {e}"));
                    let client = kube::Client::try_from(config).unwrap_or_else(|e| panic!("no client: {e}"));
                    let mut sim = Sim {
                        hcs: Api::namespaced_with(client.clone(), &namespace, &hosted_clusters()),
                        nps: Api::namespaced_with(client, &namespace, &node_pools()),
                        shared,
                        requests,
                        cache: BTreeMap::new(),
                        started: BTreeMap::new(),
                        written: BTreeMap::new(),
                        completing: BTreeMap::new(),
                        shapes: BTreeMap::new(),
                        reshaping: BTreeMap::new(),
                    };
                    sim.run(&stop, ready_tx).await;
                });
            })
        };
        // Watching before the test writes anything.
        let _ = ready_rx.recv_timeout(Duration::from_secs(30));
        Operator { shared, stop, requests, thread: Some(thread) }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes how long the next steps take.
    pub fn set_delays(&self, delays: Delays) {
        self.shared().delays = delays;
    }

    /// Makes `cluster` fail from now on (its current or next update).
    pub fn fail(&self, cluster: &str, failure: Failure) {
        self.shared().failures.insert(cluster.to_string(), failure);
    }

    /// Lets a failed cluster go on: its update completes after the delay.
    pub fn heal(&self, cluster: &str) {
        self.shared().failures.remove(cluster);
    }

    /// Keeps `cluster`'s nodes from becoming ready, from now on.
    pub fn hold_ready(&self, cluster: &str) {
        self.shared().unready.insert(cluster.to_string());
    }

    /// Stops reconciling `cluster` and its NodePools, from now on.
    pub fn pause(&self, cluster: &str) {
        self.shared().paused.insert(cluster.to_string());
    }

    /// Reconciles `cluster` again.
    pub fn resume(&self, cluster: &str) {
        self.shared().paused.remove(cluster);
    }

    /// Lets `cluster`'s nodes become ready.
    pub fn release_ready(&self, cluster: &str) {
        self.shared().unready.remove(cluster);
    }

    /// NodePools that were told to go to a release before their control
    /// plane had completed it.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared().violations.iter().cloned().collect()
    }

    /// Completed steps in order: (`HostedCluster/NAME` or `NodePool/NAME`, image).
    pub fn completed(&self) -> Vec<(String, String)> {
        self.shared().completed.clone()
    }

    /// What the stand-in saw and did, in order.
    pub fn timeline(&self) -> Vec<Moment> {
        self.shared().timeline.clone()
    }

    /// Requests the stand-in itself made (to subtract from the server's counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hosted_clusters() -> ApiResource {
    ApiResource {
        group: "hypershift.openshift.io".into(),
        version: "v1beta1".into(),
        api_version: "hypershift.openshift.io/v1beta1".into(),
        kind: "HostedCluster".into(),
        plural: "hostedclusters".into(),
    }
}

fn node_pools() -> ApiResource {
    ApiResource { kind: "NodePool".into(), plural: "nodepools".into(), ..hosted_clusters() }
}

/// `4.18.5` from `…:4.18.5-x86_64`; empty when the tag carries no version.
pub fn version_of(image: &str) -> String {
    let tag = image.rsplit_once(':').map(|(_, t)| t).filter(|_| !image.contains('@')).unwrap_or_default();
    let v = tag.split('-').next().unwrap_or_default();
    if v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u32>().is_ok()) {
        v.to_string()
    } else {
        String::new()
    }
}

/// Whether version `a` (`4.20.6`) is not newer than `b`; false when
/// either is not a version.
fn not_newer(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Option<Vec<u32>> { v.split('.').map(|p| p.parse().ok()).collect() };
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => a <= b,
        _ => false,
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A condition as HyperShift writes it (metav1.Condition: every field).
fn condition(ty: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": now()})
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    HostedCluster,
    NodePool,
}

impl Kind {
    /// `HostedCluster/NAME`, as tests name objects.
    fn path(self, name: &str) -> String {
        match self {
            Kind::HostedCluster => format!("HostedCluster/{name}"),
            Kind::NodePool => format!("NodePool/{name}"),
        }
    }
}

struct Sim {
    hcs: Api<DynamicObject>,
    nps: Api<DynamicObject>,
    shared: Arc<Mutex<Shared>>,
    requests: Arc<AtomicU64>,
    /// The objects as last seen through the watches.
    cache: BTreeMap<(Kind, String), Value>,
    /// When each step in progress started here (image it started for).
    started: BTreeMap<(Kind, String), (String, Instant)>,
    /// The status last written, so a step is written once even before the
    /// watch brings it back.
    written: BTreeMap<(Kind, String), Value>,
    /// Steps whose completing status is being written (with the image).
    completing: BTreeMap<(Kind, String), String>,
    /// The configuration (`spec.platform`, `spec.config`) each NodePool's
    /// nodes were last made with.
    shapes: BTreeMap<String, Value>,
    /// Configuration roll-outs in progress: the shape they go to, since when.
    reshaping: BTreeMap<String, (Value, Instant)>,
}

impl Sim {
    async fn run(&mut self, stop: &AtomicBool, ready: std::sync::mpsc::Sender<()>) {
        let mut ready = Some(ready);
        while !stop.load(Ordering::SeqCst) {
            // LIST, then WATCH from there; again when a watch ends.
            let (Some(hc_version), Some(np_version)) =
                (self.list(Kind::HostedCluster).await, self.list(Kind::NodePool).await)
            else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let params = WatchParams::default().timeout(60);
            self.requests.fetch_add(2, Ordering::Relaxed);
            let (Ok(hc_stream), Ok(np_stream)) =
                (self.hcs.watch(&params, &hc_version).await, self.nps.watch(&params, &np_version).await)
            else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
            let mut hc_stream = std::pin::pin!(hc_stream);
            let mut np_stream = std::pin::pin!(np_stream);
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let event = tokio::select! {
                    e = hc_stream.next() => e.map(|e| (Kind::HostedCluster, e)),
                    e = np_stream.next() => e.map(|e| (Kind::NodePool, e)),
                    _ = tick.tick() => { self.reconcile().await; continue; }
                };
                match event {
                    Some((kind, Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)))) => self.remember(kind, &o),
                    Some((kind, Ok(WatchEvent::Deleted(o)))) => {
                        let name = o.metadata.name.clone().unwrap_or_default();
                        self.cache.remove(&(kind, name.clone()));
                        self.started.remove(&(kind, name.clone()));
                        self.completing.remove(&(kind, name.clone()));
                        self.written.remove(&(kind, name.clone()));
                        if kind == Kind::NodePool {
                            self.shapes.remove(&name);
                            self.reshaping.remove(&name);
                        }
                    }
                    Some((_, Ok(WatchEvent::Bookmark(_)))) => {}
                    // Expired or failed: start again from a LIST.
                    Some((_, Ok(WatchEvent::Error(_)) | Err(_))) | None => break,
                }
            }
        }
    }

    async fn list(&mut self, kind: Kind) -> Option<String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let list = tokio::time::timeout(Duration::from_secs(10), self.api(kind).list(&ListParams::default()))
            .await
            .ok()?
            .ok()?;
        self.cache.retain(|(k, _), _| *k != kind);
        for o in &list.items {
            self.remember(kind, o);
        }
        list.metadata.resource_version
    }

    fn api(&self, kind: Kind) -> &Api<DynamicObject> {
        match kind {
            Kind::HostedCluster => &self.hcs,
            Kind::NodePool => &self.nps,
        }
    }

    /// Keeps the newest version of each object: a watch event can arrive
    /// after the answer to a later write, and must not undo it.
    fn remember(&mut self, kind: Kind, o: &DynamicObject) {
        let name = o.metadata.name.clone().unwrap_or_default();
        let version = |v: &Value| {
            v.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|r| r.parse::<u64>().ok())
        };
        let Ok(v) = serde_json::to_value(o) else { return };
        let key = (kind, name);
        let before = self.cache.get(&key);
        if let (Some(new), Some(old)) = (version(&v), before.and_then(version))
            && new < old
        {
            return;
        }
        let image = str_at(&v, "/spec/release/image");
        if before.is_none_or(|b| str_at(b, "/spec/release/image") != image) {
            let moment = Moment { at: Instant::now(), object: kind.path(&key.1), event: Event::Release(image.into()) };
            self.shared.lock().unwrap_or_else(|e| e.into_inner()).timeline.push(moment);
        }
        self.cache.insert(key, v);
    }

    fn delays(&self) -> Delays {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).delays
    }

    fn failure(&self, cluster: &str) -> Option<Failure> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).failures.get(cluster).cloned()
    }

    /// The nodes a pool of `cluster` that reached its version reports, and
    /// its `Ready` condition: all of `desired` and ready, or one fewer and
    /// not ready while the cluster is held.
    fn settled(&self, cluster: &str, desired: u64) -> (u64, Value) {
        if self.shared.lock().unwrap_or_else(|e| e.into_inner()).unready.contains(cluster) {
            let count = desired.saturating_sub(1);
            let message = format!("Minimum availability requires {desired} replicas, current {count} available");
            (count, condition("Ready", "False", "WaitingForAvailableMachines", &message))
        } else {
            (desired, condition("Ready", "True", "AsExpected", ""))
        }
    }

    /// Writes the next status of every object that has one due, several
    /// at a time, as HyperShift's controllers reconcile objects
    /// concurrently: a wave of 75 clusters moves together, not one by one.
    async fn reconcile(&mut self) {
        // Read in place (a tick looks at every object; copying 800 of them
        // 20 times a second would cost more than the API server's work).
        let cache = std::mem::take(&mut self.cache);
        let paused = self.shared.lock().unwrap_or_else(|e| e.into_inner()).paused.clone();
        let mut due = Vec::new();
        for (key, obj) in &cache {
            let cluster = match key.0 {
                Kind::HostedCluster => key.1.as_str(),
                Kind::NodePool => str_at(obj, "/spec/clusterName"),
            };
            if paused.contains(cluster) {
                continue;
            }
            let next = match key.0 {
                Kind::HostedCluster => self.hosted_cluster(&key.1, obj),
                Kind::NodePool => self.node_pool(&cache, &key.1, obj),
            };
            if let Some(status) = next.filter(|s| self.written.get(key) != Some(s)) {
                due.push((key.clone(), obj.clone(), status));
            }
        }
        self.cache = cache;
        let writes = due.into_iter().map(|(key, obj, status)| {
            let api = self.api(key.0).clone();
            self.requests.fetch_add(1, Ordering::Relaxed);
            async move {
                let body = json!({"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                                  "metadata": {"name": key.1, "namespace": obj["metadata"]["namespace"]},
                                  "status": status});
                let params = PatchParams::apply(MANAGER).force();
                let patch = Patch::Apply(&body);
                // A server too busy to answer is asked again on a later tick.
                let answer =
                    tokio::time::timeout(Duration::from_secs(10), api.patch_status(&key.1, &params, &patch)).await;
                (key, status, answer)
            }
        });
        let answers: Vec<_> = futures_util::stream::iter(writes).buffer_unordered(16).collect().await;
        for (key, status, answer) in answers {
            match answer {
                Ok(Ok(o)) => {
                    if let Some(image) = self.completing.remove(&key) {
                        let object = key.0.path(&key.1);
                        let moment = Moment { at: Instant::now(), object, event: Event::Completed(image) };
                        self.shared.lock().unwrap_or_else(|e| e.into_inner()).timeline.push(moment);
                    }
                    self.remember(key.0, &o);
                    self.written.insert(key, status);
                }
                Ok(Err(e)) => eprintln!("operator stand-in: status of {}: {e}", key.1),
                Err(_) => {}
            }
        }
    }

    fn record_completed(&mut self, kind: Kind, name: &str, image: &str) {
        self.completing.insert((kind, name.to_string()), image.to_string());
        let what = kind.path(name);
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).completed.push((what, image.to_string()));
    }

    /// The next status of a HostedCluster, when one is due.
    fn hosted_cluster(&mut self, name: &str, hc: &Value) -> Option<Value> {
        let image = str_at(hc, "/spec/release/image").to_string();
        let history: Vec<Value> =
            hc.pointer("/status/version/history").and_then(Value::as_array).cloned().unwrap_or_default();
        let generation = hc.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
        let key = (Kind::HostedCluster, name.to_string());
        let failure = self.failure(name);
        let version = |history: Vec<Value>, conditions: Vec<Value>| {
            json!({"version": {"desired": {"image": image, "version": version_of(&image)},
                               "history": history, "observedGeneration": generation, "availableUpdates": null},
                   "conditions": conditions})
        };
        let head_image = history.first().map(|h| str_at(h, "/image").to_string());
        if head_image.as_deref() != Some(image.as_str()) {
            // A new release: its entry goes first, in progress.
            let started = now();
            let mut entries = vec![json!({"image": image, "version": version_of(&image), "state": "Partial",
                                          "startedTime": started, "completionTime": null, "verified": false})];
            entries.extend(history.into_iter().map(|mut h| {
                if h["completionTime"].is_null() {
                    h["completionTime"] = json!(started);
                }
                h
            }));
            self.started.insert(key, (image.clone(), Instant::now()));
            let conditions = vec![
                condition("Available", "True", "AsExpected", "The hosted control plane is available"),
                condition("Progressing", "True", "Progressing", &format!("Working towards {}", version_of(&image))),
                condition("Degraded", "False", "AsExpected", ""),
            ];
            return Some(version(entries, conditions));
        }
        if str_at(&history[0], "/state") != "Partial" {
            return None;
        }
        let started = self.started.entry(key).or_insert_with(|| (image.clone(), Instant::now())).1;
        let mut entries = history;
        let progressing =
            condition("Progressing", "True", "Progressing", &format!("Working towards {}", version_of(&image)));
        match failure {
            Some(Failure::Degraded { reason, message }) => Some(version(
                entries,
                vec![
                    condition("Available", "True", "AsExpected", "The hosted control plane is available"),
                    progressing,
                    condition("Degraded", "True", &reason, &message),
                ],
            )),
            Some(Failure::Partial { reason, message }) => Some(version(
                entries,
                vec![
                    condition("Available", "True", "AsExpected", "The hosted control plane is available"),
                    progressing,
                    condition("Degraded", "False", "AsExpected", ""),
                    condition("ClusterVersionFailing", "True", &reason, &message),
                ],
            )),
            _ if started.elapsed() < self.delays().control_plane => None,
            _ => {
                entries[0]["state"] = json!("Completed");
                entries[0]["completionTime"] = json!(now());
                entries[0]["verified"] = json!(true);
                self.record_completed(Kind::HostedCluster, name, &image);
                Some(version(
                    entries,
                    vec![
                        condition("Available", "True", "AsExpected", "The hosted control plane is available"),
                        condition(
                            "Progressing",
                            "False",
                            "AsExpected",
                            &format!("Cluster version is {}", version_of(&image)),
                        ),
                        condition("Degraded", "False", "AsExpected", ""),
                        condition("ClusterVersionFailing", "False", "AsExpected", ""),
                    ],
                ))
            }
        }
    }

    /// The next status of a NodePool, when one is due, every condition
    /// stamped with the generation it was written for; a spec observed
    /// that needs no work gets its last status, stamped anew.
    fn node_pool(&mut self, cache: &BTreeMap<(Kind, String), Value>, name: &str, np: &Value) -> Option<Value> {
        let generation = np.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
        let observed = np
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("observedGeneration").and_then(Value::as_i64))
            .max();
        let mut status = match self.node_pool_next(cache, name, np) {
            Some(s) => s,
            None if observed.is_some_and(|o| o < generation) => np["status"].clone(),
            None => return None,
        };
        for c in status.get_mut("conditions").and_then(Value::as_array_mut).into_iter().flatten() {
            c["observedGeneration"] = json!(generation);
        }
        Some(status)
    }

    /// The next status of a NodePool, when one is due.
    fn node_pool_next(&mut self, cache: &BTreeMap<(Kind, String), Value>, name: &str, np: &Value) -> Option<Value> {
        let image = str_at(np, "/spec/release/image").to_string();
        let want = version_of(&image);
        let cluster = str_at(np, "/spec/clusterName").to_string();
        let hc = cache.get(&(Kind::HostedCluster, cluster.clone()))?;
        let completed: Vec<&str> = hc
            .pointer("/status/version/history")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|h| str_at(h, "/state") == "Completed")
            .map(|h| str_at(h, "/image"))
            .collect();
        let replicas = np
            .pointer("/spec/replicas")
            .or_else(|| np.pointer("/spec/autoScaling/min"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let have = str_at(np, "/status/version").to_string();
        let key = (Kind::NodePool, name.to_string());
        let carried = completed.contains(&image.as_str())
            || completed.first().is_some_and(|cp| not_newer(&want, &version_of(cp)));
        if !carried {
            // Ahead of its control plane: HyperShift does not roll it. A
            // new cluster's pools wait for the first install; that is no
            // violation.
            if !completed.is_empty() {
                let v = Violation { node_pool: name.to_string(), image: image.clone() };
                self.shared.lock().unwrap_or_else(|e| e.into_inner()).violations.insert(v);
            }
            return None;
        }
        let ready = |version: &str, updating: Value, ready: Value, count: u64, extra: Option<Value>| {
            let mut conditions = vec![updating, ready];
            conditions.extend(extra);
            let mut s = json!({"replicas": count, "conditions": conditions});
            if !version.is_empty() {
                s["version"] = json!(version);
            }
            s
        };
        let shape = json!({"platform": np.pointer("/spec/platform"), "config": np.pointer("/spec/config")});
        let made = self.shapes.entry(name.to_string()).or_insert_with(|| shape.clone()).clone();
        if have == want && made != shape && self.started.get(&key).is_none_or(|(i, _)| *i == image) {
            // The nodes roll to a new configuration.
            let ty = if made["platform"] != shape["platform"] {
                "UpdatingPlatformMachineTemplate"
            } else {
                "UpdatingConfig"
            };
            let old = np.pointer("/status/replicas").and_then(Value::as_u64).unwrap_or(0);
            let since = match self.reshaping.get(name) {
                Some((to, t)) if *to == shape => *t,
                _ => {
                    self.reshaping.insert(name.to_string(), (shape, Instant::now()));
                    return Some(ready(
                        &have,
                        condition(ty, "True", "AsExpected", "Rolling out the new configuration"),
                        condition("Ready", "False", "WaitingForAvailableMachines", "Nodes are being replaced"),
                        old,
                        Some(condition("UpdatingVersion", "False", "AsExpected", "")),
                    ));
                }
            };
            if since.elapsed() < self.delays().node_pool {
                return None;
            }
            self.reshaping.remove(name);
            self.shapes.insert(name.to_string(), shape);
            self.record_completed(Kind::NodePool, name, "config");
            let (count, is_ready) = self.settled(&cluster, replicas);
            return Some(ready(
                &have,
                condition(ty, "False", "AsExpected", ""),
                is_ready,
                count,
                Some(condition("UpdatingVersion", "False", "AsExpected", "")),
            ));
        }
        if have == want && self.started.get(&key).is_none_or(|(i, _)| *i == image) {
            let (count, is_ready) = self.settled(&cluster, replicas);
            let ready_now = np
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| c["status"].clone());
            if np.pointer("/status/replicas").and_then(Value::as_u64) == Some(count)
                && ready_now.is_none_or(|s| s == is_ready["status"])
            {
                return None;
            }
            // Scaling, or nodes becoming ready (or not).
            return Some(ready(&have, condition("UpdatingVersion", "False", "AsExpected", ""), is_ready, count, None));
        }
        let old = np.pointer("/status/replicas").and_then(Value::as_u64).unwrap_or(0);
        let started = match self.started.get(&key) {
            Some((i, t)) if *i == image => *t,
            _ => {
                self.started.insert(key.clone(), (image.clone(), Instant::now()));
                return Some(ready(
                    &have,
                    condition(
                        "UpdatingVersion",
                        "True",
                        "AsExpected",
                        &format!("Updating version in progress. Target version: {want}"),
                    ),
                    condition("Ready", "False", "WaitingForAvailableMachines", "Nodes are being replaced"),
                    old,
                    None,
                ));
            }
        };
        if let Some(Failure::NodePool { reason, message }) = self.failure(&cluster) {
            return Some(ready(
                &have,
                condition(
                    "UpdatingVersion",
                    "True",
                    "AsExpected",
                    &format!("Updating version in progress. Target version: {want}"),
                ),
                condition("Ready", "False", "WaitingForAvailableMachines", "Nodes are being replaced"),
                old,
                Some(condition("ValidMachineConfig", "False", &reason, &message)),
            ));
        }
        if started.elapsed() < self.delays().node_pool {
            return None;
        }
        self.started.remove(&key);
        // New nodes: made with the configuration of now.
        self.shapes.insert(name.to_string(), shape);
        self.reshaping.remove(name);
        self.record_completed(Kind::NodePool, name, &image);
        let (count, is_ready) = self.settled(&cluster, replicas);
        Some(ready(
            &want,
            condition("UpdatingVersion", "False", "AsExpected", ""),
            is_ready,
            count,
            Some(condition("ValidMachineConfig", "True", "AsExpected", "")),
        ))
    }
}
