//! The fleet at a glance: per cluster, whether the management cluster
//! matches the configuration (sync), what the operator reports (health,
//! versions, nodes) and where a roll-out stands, with the counts an
//! operator reads first.
//!
//! Pure, like the plan's views: the plan, the live HostedClusters and
//! NodePools (status included), the rollout standing and the clock are
//! read beforehand and passed in.

#![deny(clippy::disallowed_methods)]

pub mod html;
pub mod text;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::object::Kind;
use crate::plan::rollout::{POOL_FAILURES, Phase, Standing};
use crate::plan::{Action, Change};

/// A cluster's health, worst first: the order the views list them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Not available, degraded, failing, a pool that cannot roll or nodes
    /// not ready outside an update, or failed in the roll-out.
    Degraded,
    /// A control-plane update or a node roll-out under way.
    Upgrading,
    /// Declared, not on the management cluster yet: `apply` creates it.
    #[serde(rename = "not-created")]
    Absent,
    /// On the target, with no status (a directory target, or the operator
    /// has not reconciled it yet).
    #[serde(rename = "no-status")]
    Unknown,
    Healthy,
}

impl Health {
    pub const ALL: [Health; 5] =
        [Health::Degraded, Health::Upgrading, Health::Absent, Health::Unknown, Health::Healthy];

    /// The word the views use.
    pub fn word(self) -> &'static str {
        match self {
            Health::Degraded => "degraded",
            Health::Upgrading => "upgrading",
            Health::Absent => "not created",
            Health::Unknown => "no status",
            Health::Healthy => "healthy",
        }
    }
}

/// A status condition as the operator wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    /// `lastTransitionTime`, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

impl Condition {
    /// `Degraded=True (Reason): message`.
    pub fn line(&self) -> String {
        let mut out = format!("{}={}", self.kind, self.status);
        if !self.reason.is_empty() {
            out += &format!(" ({})", self.reason);
        }
        if !self.message.is_empty() {
            out += &format!(": {}", self.message);
        }
        out
    }
}

/// The control plane's version: what runs, what is asked for, and the
/// state of the latest update (`status.version.history[0]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The newest `Completed` history entry's version.
    pub running: String,
    /// `status.version.desired.version`, else the tag of `spec.release.image`.
    pub desired: String,
    /// `Completed` or `Partial`; empty before the first entry.
    pub state: String,
}

/// One NodePool of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePool {
    /// Its name without the cluster's prefix.
    pub name: String,
    /// `status.replicas`.
    pub ready: u64,
    /// `spec.replicas`, or the autoscaling minimum.
    pub desired: u64,
    /// `spec.autoScaling`: (min, max).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<(u64, u64)>,
    /// `status.version`.
    pub version: String,
    /// The conditions that are not as they should be (a failed validation,
    /// `Ready=False`, an update under way).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(skip)]
    updating: bool,
    #[serde(skip)]
    failing: bool,
}

impl NodePool {
    /// `workers 2/3 ready, 4.20.1` or `workers 2 ready (autoscaling 1–5), 4.20.1`.
    pub fn line(&self) -> String {
        let nodes = match self.autoscaling {
            Some((min, max)) => format!("{} ready (autoscaling {min}–{max})", self.ready),
            None => format!("{}/{} ready", self.ready, self.desired),
        };
        let version = if self.version.is_empty() { String::new() } else { format!(", {}", self.version) };
        format!("{} {nodes}{version}", self.name)
    }
}

/// Whether the management cluster matches the configuration for a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sync {
    /// Objects to add, change, replace and destroy (the plan's summary).
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
    /// Of those, the changes the roll-out holds back for now (a pool's
    /// release waiting for its control plane, a cluster waiting for its
    /// wave): the next applies make them, in order.
    pub held: usize,
}

impl Sync {
    pub fn pending(&self) -> usize {
        self.add + self.change + self.replace + self.destroy
    }

    /// Differs from the configuration in a way an apply would change now.
    pub fn out_of_sync(&self) -> bool {
        self.pending() > self.held
    }

    /// `in sync`, or `3 changes pending (1 to add, 2 to change)`.
    pub fn line(&self) -> String {
        let n = self.pending();
        if n == 0 {
            return "in sync".to_string();
        }
        let parts: Vec<String> = [
            (self.add, "to add"),
            (self.change, "to change"),
            (self.replace, "to replace"),
            (self.destroy, "to destroy"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
        let changes = crate::plan::names::plural(n as u64, "change");
        match self.held {
            0 => format!("{changes} pending ({})", parts.join(", ")),
            held if held == n => format!("{changes} waiting for the roll-out ({})", parts.join(", ")),
            held => format!("{changes} pending ({}), {held} of them waiting for the roll-out", parts.join(", ")),
        }
    }
}

/// Where a cluster stands in the roll-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    pub wave: String,
    #[serde(flatten)]
    pub phase: Phase,
}

impl Rollout {
    pub fn line(&self) -> String {
        let state = match &self.phase {
            Phase::Waiting => "waiting".to_string(),
            Phase::Starting => "starts on the next apply".to_string(),
            Phase::ControlPlane => "control plane upgrading".to_string(),
            Phase::NodePools => "node pools rolling".to_string(),
            Phase::Failed { reason, .. } => format!("failed ({reason})"),
        };
        format!("wave {}: {state}", self.wave)
    }
}

/// One step of the latest upgrade, for the timeline (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// `control plane` or the pool's name.
    pub what: String,
    pub version: String,
    /// When it started; for a pool that finished, the control plane's
    /// completion (a pool's own start is not kept once it is done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<i64>,
    /// When it finished; `None` while under way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<i64>,
}

/// One hosted cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    pub name: String,
    pub namespace: String,
    /// `kube:CONTEXT` or `dir:PATH`.
    pub target: String,
    pub health: Health,
    pub sync: Sync,
    pub version: Version,
    /// The HostedCluster's conditions that are not as expected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    pub node_pools: Vec<NodePool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// The latest upgrade: the control plane, then each pool.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Span>,
}

/// How many clusters are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub clusters: usize,
    pub healthy: usize,
    pub upgrading: usize,
    pub degraded: usize,
    pub not_created: usize,
    pub no_status: usize,
    pub out_of_sync: usize,
}

impl Counts {
    /// `200 clusters: 196 healthy · 3 upgrading · 1 degraded · 2 out of sync`
    /// (states with no cluster left out, but for `healthy`).
    pub fn line(&self) -> String {
        let mut parts = vec![format!("{} healthy", self.healthy)];
        for (n, word) in [
            (self.upgrading, "upgrading"),
            (self.degraded, "degraded"),
            (self.not_created, "not created"),
            (self.no_status, "no status"),
            (self.out_of_sync, "out of sync"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {word}"));
            }
        }
        format!("{}: {}", crate::plan::names::plural(self.clusters as u64, "cluster"), parts.join(" · "))
    }
}

/// The whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fleet {
    pub counts: Counts,
    /// When the status was read, RFC 3339.
    pub observed: String,
    /// In name order (then target).
    pub clusters: Vec<Cluster>,
    /// The roll-out, when one is under way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Standing>,
}

impl Fleet {
    /// Anything an on-call operator must act on: `--detailed-exitcode`.
    pub fn needs_attention(&self) -> bool {
        self.counts.degraded > 0 || self.counts.out_of_sync > 0
    }
}

/// What one target contributes.
pub struct TargetInput<'a> {
    /// `kube:CONTEXT` or `dir:PATH`.
    pub target: &'a str,
    /// The plan's changes on this target.
    pub changes: &'a [Change],
    /// The clusters the configuration declares there: (namespace, name).
    pub declared: Vec<(String, String)>,
    /// The live HostedClusters and NodePools, status included.
    pub hosted_clusters: Vec<&'a Value>,
    pub node_pools: Vec<&'a Value>,
}

/// The fleet's status from every target's inputs; `only`: the clusters
/// `--cluster` selected (`None`: all).
pub fn build(
    targets: &[TargetInput<'_>],
    standing: Option<&Standing>,
    only: Option<&BTreeSet<String>>,
    now: &str,
) -> Fleet {
    let several = targets.len() > 1;
    let mut waves: BTreeMap<(Option<&str>, &str), (&str, &Phase)> = BTreeMap::new();
    for w in standing.map(|s| s.waves.as_slice()).unwrap_or_default() {
        for c in &w.clusters {
            waves.insert((c.target.as_deref(), c.cluster.as_str()), (w.name.as_str(), &c.phase));
        }
    }
    let held = standing.map(|s| &s.held);
    let mut clusters = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        // Declared clusters, and live ones of the fleet no longer declared
        // (the plan destroys them).
        let mut names: BTreeSet<(String, String)> = t.declared.iter().cloned().collect();
        for hc in &t.hosted_clusters {
            names.insert((str_at(hc, "/metadata/namespace").to_string(), str_at(hc, "/metadata/name").to_string()));
        }
        for (namespace, name) in names {
            if only.is_some_and(|o| !o.contains(&name)) {
                continue;
            }
            let hc = t
                .hosted_clusters
                .iter()
                .copied()
                .find(|hc| str_at(hc, "/metadata/name") == name && str_at(hc, "/metadata/namespace") == namespace);
            let pools: Vec<&Value> = t
                .node_pools
                .iter()
                .copied()
                .filter(|p| str_at(p, "/spec/clusterName") == name && str_at(p, "/metadata/namespace") == namespace)
                .collect();
            let key = (several.then_some(t.target), name.as_str());
            let rollout =
                waves.get(&key).map(|(wave, phase)| Rollout { wave: wave.to_string(), phase: (*phase).clone() });
            let mut c = cluster(t, &namespace, &name, hc, &pools, rollout);
            c.sync.held = t
                .changes
                .iter()
                .filter(|ch| ch.cluster.as_deref() == Some(name.as_str()) && ch.id.namespace == namespace)
                .filter(|ch| held.is_some_and(|h| h.contains(&(i, ch.id.clone()))))
                .count();
            clusters.push(c);
        }
    }
    clusters.sort_by(|a, b| (&a.name, &a.target).cmp(&(&b.name, &b.target)));
    let mut counts = Counts { clusters: clusters.len(), ..Counts::default() };
    for c in &clusters {
        *match c.health {
            Health::Degraded => &mut counts.degraded,
            Health::Upgrading => &mut counts.upgrading,
            Health::Absent => &mut counts.not_created,
            Health::Unknown => &mut counts.no_status,
            Health::Healthy => &mut counts.healthy,
        } += 1;
        counts.out_of_sync += usize::from(c.sync.out_of_sync());
    }
    Fleet { counts, observed: now.to_string(), clusters, rollout: standing.filter(|s| s.is_active()).cloned() }
}

/// HostedCluster conditions and the status each should have.
const EXPECTED: [(&str, &str); 7] = [
    ("Available", "True"),
    ("Degraded", "False"),
    ("Progressing", "False"),
    ("ClusterVersionAvailable", "True"),
    ("ClusterVersionSucceeding", "True"),
    ("ClusterVersionFailing", "False"),
    ("ClusterVersionProgressing", "False"),
];

/// NodePool conditions that, True, say an update is under way.
const POOL_UPDATING: [&str; 3] = ["UpdatingVersion", "UpdatingConfig", "UpdatingPlatformMachineTemplate"];

fn cluster(
    t: &TargetInput<'_>,
    namespace: &str,
    name: &str,
    hc: Option<&Value>,
    pools: &[&Value],
    rollout: Option<Rollout>,
) -> Cluster {
    let mut sync = Sync::default();
    for c in t.changes.iter().filter(|c| c.cluster.as_deref() == Some(name) && c.id.namespace == namespace) {
        match c.action {
            Action::Create => sync.add += 1,
            Action::Update => sync.change += 1,
            Action::Replace => sync.replace += 1,
            Action::Delete => sync.destroy += 1,
            Action::NoOp => {}
        }
    }
    let node_pools: Vec<NodePool> = pools.iter().map(|p| node_pool(p, name)).collect();
    let mut out = Cluster {
        name: name.to_string(),
        namespace: namespace.to_string(),
        target: t.target.to_string(),
        health: Health::Absent,
        sync,
        version: Version::default(),
        conditions: Vec::new(),
        node_pools,
        rollout,
        timeline: Vec::new(),
    };
    let Some(hc) = hc else { return out };
    let history =
        hc.pointer("/status/version/history").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    out.version = Version {
        running: history
            .iter()
            .find(|h| str_at(h, "/state") == "Completed")
            .map(|h| str_at(h, "/version").to_string())
            .unwrap_or_default(),
        desired: Some(str_at(hc, "/status/version/desired/version"))
            .filter(|v| !v.is_empty())
            .map_or_else(|| tag_version(str_at(hc, "/spec/release/image")), str::to_string),
        state: history.first().map(|h| str_at(h, "/state").to_string()).unwrap_or_default(),
    };
    let conditions = conditions(hc);
    out.conditions = EXPECTED
        .iter()
        .filter_map(|(kind, expected)| conditions.iter().find(|c| c.kind == *kind && c.status != *expected))
        .cloned()
        .collect();
    out.timeline = timeline(history, pools, &out.node_pools);
    let has_status = hc.get("status").is_some_and(|s| s.as_object().is_some_and(|m| !m.is_empty()));
    let is = |kind: &str, status: &str| out.conditions.iter().any(|c| c.kind == kind && c.status == status);
    // A first install is not available yet: that is its progress, not a fault.
    let installing = history.len() <= 1 && out.version.state != "Completed";
    let degraded = (out.conditions.iter().any(|c| c.kind == "Available") && !installing)
        || is("Degraded", "True")
        || is("ClusterVersionFailing", "True")
        || out.node_pools.iter().any(|p| p.failing)
        || matches!(out.rollout.as_ref().map(|r| &r.phase), Some(Phase::Failed { .. }));
    let upgrading = (!out.version.state.is_empty() && out.version.state != "Completed")
        || out.node_pools.iter().any(|p| p.updating)
        || out.node_pools.iter().any(|p| !p.version.is_empty() && p.version != out.version.running)
        || matches!(out.rollout.as_ref().map(|r| &r.phase), Some(Phase::ControlPlane | Phase::NodePools));
    out.health = if !has_status {
        Health::Unknown
    } else if degraded {
        Health::Degraded
    } else if upgrading {
        Health::Upgrading
    } else if out.node_pools.iter().any(|p| p.ready < p.desired) {
        // Nodes missing outside any update.
        Health::Degraded
    } else {
        Health::Healthy
    };
    out
}

fn node_pool(p: &Value, cluster: &str) -> NodePool {
    let name = str_at(p, "/metadata/name");
    let short = name.strip_prefix(cluster).and_then(|n| n.strip_prefix('-')).unwrap_or(name).to_string();
    let count = |pointer: &str| p.pointer(pointer).and_then(Value::as_u64);
    let autoscaling = count("/spec/autoScaling/min").map(|min| (min, count("/spec/autoScaling/max").unwrap_or(min)));
    let conditions = conditions(p);
    let failing: Vec<Condition> = conditions
        .iter()
        .filter(|c| POOL_FAILURES.contains(&c.kind.as_str()) && c.status == "False")
        .cloned()
        .collect();
    let updating: Vec<Condition> =
        conditions.iter().filter(|c| POOL_UPDATING.contains(&c.kind.as_str()) && c.status == "True").cloned().collect();
    let unready = conditions.iter().filter(|c| c.kind == "Ready" && c.status == "False").cloned();
    NodePool {
        name: short,
        ready: count("/status/replicas").unwrap_or(0),
        desired: count("/spec/replicas").or_else(|| autoscaling.map(|a| a.0)).unwrap_or(0),
        autoscaling,
        version: str_at(p, "/status/version").to_string(),
        failing: !failing.is_empty(),
        updating: !updating.is_empty(),
        conditions: failing.into_iter().chain(unready).chain(updating).collect(),
    }
}

/// The latest upgrade: the control plane's newest history entry, then
/// each pool, from its `UpdatingVersion` condition (True: under way since
/// its transition; False: done at its transition, after the control plane).
fn timeline(history: &[Value], pools: &[&Value], shown: &[NodePool]) -> Vec<Span> {
    let Some(head) = history.first() else { return Vec::new() };
    let cp_done = seconds(head.get("completionTime")).filter(|_| str_at(head, "/state") == "Completed");
    let mut out = vec![Span {
        what: "control plane".to_string(),
        version: str_at(head, "/version").to_string(),
        started: seconds(head.get("startedTime")),
        completed: cp_done,
    }];
    for (p, shown) in pools.iter().zip(shown) {
        let Some(updating) = conditions(p).into_iter().find(|c| c.kind == "UpdatingVersion") else { continue };
        let at = seconds(updating.since.as_ref().map(|s| Value::String(s.clone())).as_ref());
        let (started, completed) = match updating.status.as_str() {
            "True" => (at, None),
            // Done with this upgrade; a pool still on an older version has
            // not started it.
            _ if shown.version == str_at(head, "/version") => (cp_done.or(at), at),
            _ => continue,
        };
        out.push(Span { what: shown.name.clone(), version: shown.version.clone(), started, completed });
    }
    out
}

fn conditions(obj: &Value) -> Vec<Condition> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .map(|c| Condition {
                    kind: str_at(c, "/type").to_string(),
                    status: str_at(c, "/status").to_string(),
                    reason: str_at(c, "/reason").to_string(),
                    message: str_at(c, "/message").to_string(),
                    since: c.get("lastTransitionTime").and_then(Value::as_str).map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn seconds(v: Option<&Value>) -> Option<i64> {
    let t: k8s_openapi::jiff::Timestamp = v?.as_str()?.parse().ok()?;
    Some(t.as_second())
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// `4.20.1` from `…:4.20.1-x86_64`, as the release payload would say it.
fn tag_version(image: &str) -> String {
    if image.contains('@') {
        return String::new();
    }
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
    tag.split_once('-').map_or(tag, |(v, _)| v).to_string()
}

/// The kinds whose status `status` reads.
pub const KINDS: [Kind; 2] = [Kind::HostedCluster, Kind::NodePool];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn condition(kind: &str, status: &str, reason: &str) -> Value {
        json!({"type": kind, "status": status, "reason": reason, "message": "", "lastTransitionTime": "2026-12-01T10:00:00Z"})
    }

    /// A HostedCluster with `history` ((version, state) newest first) and `conditions`.
    fn hc(name: &str, history: &[(&str, &str)], conditions: Vec<Value>) -> Value {
        let history: Vec<Value> = history
            .iter()
            .map(|(v, state)| {
                json!({"version": v, "state": state, "image": format!("r:{v}-x86_64"),
                "startedTime": "2026-12-01T09:00:00Z", "completionTime": "2026-12-01T09:30:00Z"})
            })
            .collect();
        json!({"metadata": {"name": name, "namespace": "clusters"},
            "spec": {"release": {"image": "r:4.20.1-x86_64"}},
            "status": {"version": {"history": history}, "conditions": conditions}})
    }

    fn pool(cluster: &str, spec: Value, replicas: u64, version: &str, conditions: Vec<Value>) -> Value {
        json!({"metadata": {"name": format!("{cluster}-workers"), "namespace": "clusters"},
            "spec": spec.as_object().cloned().map(|mut m| { m.insert("clusterName".into(), json!(cluster)); Value::Object(m) }),
            "status": {"replicas": replicas, "version": version, "conditions": conditions}})
    }

    fn fleet(hcs: &[Value], pools: &[Value]) -> Fleet {
        let input = TargetInput {
            target: "kube:mgmt",
            changes: &[],
            declared: Vec::new(),
            hosted_clusters: hcs.iter().collect(),
            node_pools: pools.iter().collect(),
        };
        build(&[input], None, None, "2026-12-01T10:00:00Z")
    }

    fn fine() -> Vec<Value> {
        vec![condition("Available", "True", "AsExpected"), condition("Degraded", "False", "AsExpected")]
    }

    #[test]
    fn a_first_install_not_yet_available_is_upgrading_not_degraded() {
        let installing = hc("a", &[("4.20.1", "Partial")], vec![condition("Available", "False", "Installing")]);
        let f = fleet(&[installing], &[]);
        assert_eq!(f.clusters[0].health, Health::Upgrading);
        // After the install, the same condition is a fault.
        let upgraded = hc(
            "b",
            &[("4.20.1", "Completed"), ("4.20.0", "Completed")],
            vec![condition("Available", "False", "KASLoadBalancerNotReachable")],
        );
        let f = fleet(&[upgraded], &[]);
        assert_eq!(f.clusters[0].health, Health::Degraded);
        assert_eq!(f.clusters[0].conditions[0].line(), "Available=False (KASLoadBalancerNotReachable)");
    }

    #[test]
    fn a_pool_that_cannot_roll_degrades_its_cluster() {
        let h = hc("a", &[("4.20.1", "Completed")], fine());
        let p = pool(
            "a",
            json!({"replicas": 2}),
            2,
            "4.20.1",
            vec![
                condition("ValidMachineConfig", "False", "ValidationFailed"),
                condition("Ready", "True", "AsExpected"),
            ],
        );
        let f = fleet(&[h], &[p]);
        let c = &f.clusters[0];
        assert_eq!(c.health, Health::Degraded);
        assert_eq!(c.node_pools[0].line(), "workers 2/2 ready, 4.20.1");
        assert_eq!(c.node_pools[0].conditions[0].line(), "ValidMachineConfig=False (ValidationFailed)");
    }

    #[test]
    fn a_pool_behind_its_control_plane_is_upgrading_and_autoscaling_reads_min_max() {
        let h = hc("a", &[("4.20.1", "Completed"), ("4.20.0", "Completed")], fine());
        let p = pool("a", json!({"autoScaling": {"min": 1, "max": 5}}), 3, "4.20.0", vec![]);
        let f = fleet(&[h], &[p]);
        let c = &f.clusters[0];
        assert_eq!(c.health, Health::Upgrading);
        assert_eq!(c.node_pools[0].line(), "workers 3 ready (autoscaling 1–5), 4.20.0");
        assert_eq!(f.counts.line(), "1 cluster: 0 healthy · 1 upgrading");
    }

    #[test]
    fn held_changes_do_not_make_a_cluster_out_of_sync() {
        let held = Sync { change: 1, held: 1, ..Sync::default() };
        assert!(!held.out_of_sync());
        assert_eq!(held.line(), "1 change waiting for the roll-out (1 to change)");
        let mixed = Sync { add: 1, change: 2, held: 1, ..Sync::default() };
        assert!(mixed.out_of_sync());
        assert_eq!(mixed.line(), "3 changes pending (1 to add, 2 to change), 1 of them waiting for the roll-out");
    }

    #[test]
    fn clusters_alike_are_one_entry_named_by_ranges() {
        let hcs: Vec<Value> = (0..12)
            .map(|i| hc(&format!("c{i:03}"), &[("4.20.1", "Partial"), ("4.20.0", "Completed")], fine()))
            .collect();
        let text = text::text(&fleet(&hcs, &[]), false);
        assert!(text.starts_with("12 clusters: 0 healthy · 12 upgrading\n\nupgrading: c000 … c011\n"), "{text}");
    }
}
