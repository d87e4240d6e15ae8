//! Where a fleet's upgrade stands and which of a plan's changes may be
//! made now: control plane first, then waves.
//!
//! Pure: the live status (what the HyperShift operator wrote on each
//! HostedCluster and NodePool) is read beforehand and passed in, with the
//! clock. Nothing is remembered between runs: every apply derives the
//! standing from the live state, so a re-run (or a run after a crash)
//! continues where the fleet is.
//!
//! - A change that changes a release or rolls nodes is *governed*; every
//!   other change (labels, replicas, new clusters, deletes) is made at once.
//! - Control plane first: a NodePool's change to its cluster's release
//!   waits until the HostedCluster's `status.version.history[0]` is that
//!   release and `Completed`; a pool pinned to another release waits until
//!   the control plane completed a version not older (HyperShift: a
//!   NodePool is never newer than its control plane).
//! - Waves: a cluster's governed changes start when every earlier wave is
//!   done (after its upgrade, a cluster is done once its pools reached the
//!   control plane's version and their nodes are ready as desired; a
//!   configuration roll-out, once its pools report `UpdatingConfig` and
//!   `UpdatingPlatformMachineTemplate` not True for the spec written and
//!   their nodes are ready as desired) and
//!   fewer than `max-parallel` of its wave are in progress;
//!   clusters start in name order. A cluster in flight whose release
//!   changes again finishes its current step, then waits for its wave.
//! - A failed cluster halts the rollout: no further step is made, on any
//!   target, whether the apply follows the rollout or not.
//! - `--rollout-timeout` times each step from its own start: the history
//!   entry of the release it goes to, or, until the operator wrote one,
//!   hcpc's write of it; the caller may put these times on its own clock
//!   ([`ClusterStatus::retime`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::ir::{MaxParallel, Rollout};
use crate::object::ObjectId;
use crate::selector::Selector;

/// The `status.version.history[0]` of a HostedCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub image: String,
    pub completed: bool,
    /// `startedTime`, seconds since the epoch.
    pub started: Option<i64>,
}

/// What the operator reports on one NodePool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolStatus {
    pub name: String,
    /// `spec.release.image` as live.
    pub release: String,
    /// `status.version`.
    pub version: String,
    /// `UpdatingVersion=True`, and since when (seconds since the epoch).
    pub updating: Option<Option<i64>>,
    /// A condition saying the pool cannot roll: (type, reason, message).
    pub failure: Option<(String, String, String)>,
    /// `status.replicas`: the nodes the pool reports.
    pub nodes: u64,
    /// The nodes it should have: `spec.replicas`, or `spec.autoScaling.min`.
    pub desired: u64,
    /// `Ready=False`: its reason, and since when (seconds since the epoch).
    pub unready: Option<(String, Option<i64>)>,
    /// Rolling its nodes for a change other than its version:
    /// `UpdatingConfig` or `UpdatingPlatformMachineTemplate` True (since
    /// then), or a spec the operator has not observed yet (since hcpc
    /// wrote it).
    pub rolling: Option<Option<i64>>,
}

impl PoolStatus {
    /// Its nodes are there as desired and it does not say it is not ready.
    pub fn ready(&self) -> bool {
        self.unready.is_none() && self.nodes >= self.desired
    }

    /// Why it is not ready, in words: `2 of 3 nodes ready in pool workers`
    /// (the pool's name without its cluster's prefix).
    fn waits_for(&self, cluster: &str) -> String {
        let pool = self.name.strip_prefix(cluster).and_then(|n| n.strip_prefix('-')).unwrap_or(&self.name);
        match &self.unready {
            _ if self.nodes < self.desired => format!("{} of {} nodes ready in pool {pool}", self.nodes, self.desired),
            Some((reason, _)) if !reason.is_empty() => format!("pool {pool} not ready ({reason})"),
            _ => format!("pool {pool} not ready"),
        }
    }
}

/// What the operator reports on one hosted cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterStatus {
    /// `spec.release.image` as live.
    pub release: String,
    pub head: Option<Head>,
    /// How many history entries there are (one: the first install).
    pub history: usize,
    /// `history[0].version` (or `desired.version`).
    pub version: String,
    /// `Degraded=True`, or `ClusterVersionFailing=True`: (type, reason, message).
    pub failure: Option<(String, String, String)>,
    pub pools: Vec<PoolStatus>,
    /// The newest `Completed` history entry's version: what the control
    /// plane runs, whatever it is moving to.
    pub completed: String,
    /// The `Completed` version before it (the one the last upgrade left).
    pub previous: String,
    /// When hcpc last wrote the object (its managedFields entry): when an
    /// upgrade the operator has not taken up yet started.
    pub written: Option<i64>,
}

/// NodePool conditions that, False, mean the pool cannot roll out
/// (HyperShift stops the roll-out and reports why).
pub const POOL_FAILURES: [&str; 3] = ["ValidReleaseImage", "ValidMachineConfig", "ValidPlatformImage"];

fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
}

/// A condition's field, as the operator (or anyone who can write status)
/// wrote it, made safe to print.
fn text(v: &Value, key: &str) -> String {
    crate::printable::line(
        v.get(key).and_then(Value::as_str).unwrap_or_default(),
        crate::printable::SERVER_MESSAGE_LIMIT,
    )
    .into_owned()
}

fn seconds(v: Option<&Value>) -> Option<i64> {
    let t: k8s_openapi::jiff::Timestamp = v?.as_str()?.parse().ok()?;
    Some(t.as_second())
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// When hcpc's field manager last wrote `obj`, from its managedFields.
fn written_at(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .filter(|f| f.get("manager").and_then(Value::as_str) == Some(hcpc_schema::labels::FIELD_MANAGER))
        .filter_map(|f| seconds(f.get("time")))
        .max()
}

/// Whether the operator has not yet observed a NodePool's spec: its
/// generation is newer than every condition's `observedGeneration` (a
/// status that carries none says nothing either way).
fn unobserved_pool(p: &Value) -> bool {
    let generation = p.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let observed = p
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("observedGeneration").and_then(Value::as_i64))
        .max();
    observed.is_some_and(|o| o < generation)
}

/// A release's OpenShift version, from its tag; `None` for a digest or a
/// tag without one.
fn version_of(release: &str) -> Option<crate::release::Version> {
    crate::release::ReleaseImage::parse(release).ok()?.version().cloned()
}

/// Whether a version (`4.20.6`) is not newer than `than`; `None` when
/// either does not parse.
fn not_newer(version: Option<crate::release::Version>, than: &str) -> Option<bool> {
    Some(version? <= crate::release::Version::from_tag(than)?)
}

impl ClusterStatus {
    /// From a live HostedCluster and its NodePools, status included.
    pub fn from_live(hc: &Value, pools: &[&Value]) -> ClusterStatus {
        let history = hc.pointer("/status/version/history").and_then(Value::as_array);
        let head = history.and_then(|h| h.first()).map(|h| Head {
            image: text(h, "image"),
            completed: text(h, "state") == "Completed",
            started: seconds(h.get("startedTime")),
        });
        let version = history
            .and_then(|h| h.first())
            .map(|h| text(h, "version"))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| str_at(hc, "/status/version/desired/version").to_string());
        let failed = |ty: &str| {
            condition(hc, ty)
                .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                .map(|c| (ty.to_string(), text(c, "reason"), text(c, "message")))
        };
        let in_progress = head.as_ref().is_some_and(|h| !h.completed);
        let failure = failed("Degraded").or_else(|| failed("ClusterVersionFailing").filter(|_| in_progress));
        let pools = pools
            .iter()
            .map(|p| {
                let updating = condition(p, "UpdatingVersion")
                    .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                    .map(|c| seconds(c.get("lastTransitionTime")));
                let failure = POOL_FAILURES.iter().find_map(|ty| {
                    condition(p, ty)
                        .filter(|c| c.get("status").and_then(Value::as_str) == Some("False"))
                        .map(|c| (ty.to_string(), text(c, "reason"), text(c, "message")))
                });
                let count = |pointer: &str| p.pointer(pointer).and_then(Value::as_u64);
                let unready = condition(p, "Ready")
                    .filter(|c| c.get("status").and_then(Value::as_str) == Some("False"))
                    .map(|c| (text(c, "reason"), seconds(c.get("lastTransitionTime"))));
                let rolling = ["UpdatingConfig", "UpdatingPlatformMachineTemplate"]
                    .iter()
                    .find_map(|ty| {
                        condition(p, ty)
                            .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                            .map(|c| seconds(c.get("lastTransitionTime")))
                    })
                    .or_else(|| unobserved_pool(p).then(|| written_at(p)));
                PoolStatus {
                    name: str_at(p, "/metadata/name").to_string(),
                    release: str_at(p, "/spec/release/image").to_string(),
                    version: str_at(p, "/status/version").to_string(),
                    updating,
                    failure,
                    nodes: count("/status/replicas").unwrap_or(0),
                    desired: count("/spec/replicas").or_else(|| count("/spec/autoScaling/min")).unwrap_or(0),
                    unready,
                    rolling,
                }
            })
            .collect();
        let mut completed =
            history.into_iter().flatten().filter(|h| text(h, "state") == "Completed").map(|h| text(h, "version"));
        ClusterStatus {
            release: str_at(hc, "/spec/release/image").to_string(),
            head,
            history: history.map_or(0, Vec::len),
            version,
            failure,
            pools,
            completed: completed.next().unwrap_or_default(),
            previous: completed.next().unwrap_or_default(),
            written: written_at(hc),
        }
    }
}

impl ClusterStatus {
    /// Puts every point in time the standing is judged by on the caller's
    /// clock: `f` gets what the time is of (`a-workers rolling`) and the
    /// server's timestamp, and returns the time to judge by.
    pub fn retime(&mut self, f: &mut dyn FnMut(&str, i64) -> i64) {
        let mut at = |what: &str, t: &mut Option<i64>| {
            if let Some(v) = t {
                *v = f(what, *v);
            }
        };
        if let Some(h) = &mut self.head {
            at(&format!("started {}", h.image), &mut h.started);
        }
        at(&format!("written {}", self.release), &mut self.written);
        for p in &mut self.pools {
            if let Some(u) = &mut p.updating {
                at(&format!("{} updating", p.name), u);
            }
            if let Some(r) = &mut p.rolling {
                at(&format!("{} rolling", p.name), r);
            }
            if let Some((_, since)) = &mut p.unready {
                at(&format!("{} unready", p.name), since);
            }
        }
    }
}

/// One governed change of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: ObjectId,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// The HostedCluster's release changes.
    ControlPlane,
    /// A NodePool changes release or rolls its nodes. `waved`: governed by
    /// the waves (an update); a new pool only waits for its control plane.
    Pool { release: String, nodes: Option<u64>, waved: bool },
}

/// One cluster of the fleet, for the rollout.
#[derive(Debug, Clone)]
pub struct Member {
    pub cluster: String,
    /// Index of its target in the fleet's target order.
    pub target: usize,
    pub labels: BTreeMap<String, String>,
    /// The HostedCluster release the configuration asks for.
    pub release: String,
    /// `None`: no live HostedCluster (a new cluster; nothing waits).
    pub status: Option<ClusterStatus>,
    pub steps: Vec<Step>,
    /// Outside a limited apply (`--cluster`): its steps take their place
    /// in the waves, and this apply makes none of them.
    pub outside: bool,
}

/// Where one cluster stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Phase {
    /// Waits for an earlier wave, or for room under `max-parallel`.
    Waiting,
    /// Starts now: its control plane (or, without one, its pools) is written.
    Starting,
    /// Its control plane is upgrading; its pools wait.
    ControlPlane,
    /// Its control plane is done; its pools are rolling or written now.
    NodePools,
    /// Failed: the rollout halts.
    Failed { reason: String, message: String },
}

/// One cluster in the rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStanding {
    pub cluster: String,
    /// The target it is on (`kube:…`), in a fleet of several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(flatten)]
    pub phase: Phase,
    /// The control-plane step: the release it goes to, if it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<String>,
    /// The NodePools step: how many pools, rolling how many nodes.
    pub node_pools: usize,
    pub nodes: u64,
    /// Its pools reached the new version; what it waits for: nodes ready
    /// as desired (`2 of 3 nodes ready in pool workers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

/// One wave and its clusters that have something to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaveStanding {
    pub name: String,
    /// `2`, `50%` or `all`; a count is a number in JSON.
    #[serde(serialize_with = "count_or_text")]
    pub max_parallel: String,
    /// How many clusters the wave has (what a percentage is of).
    pub size: usize,
    /// How many of them are done: upgraded to the desired release, with
    /// nothing left to do (they are not in `clusters`).
    pub done: usize,
    pub clusters: Vec<ClusterStanding>,
    /// Its clusters new in this plan: created at once, on the configured
    /// release (counted in `size`, not in the rollout).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new: Vec<String>,
}

/// A count as a JSON number, anything else (`50%`, `all`) as a string.
fn count_or_text<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    match v.parse::<u64>() {
        Ok(n) => s.serialize_u64(n),
        Err(_) => s.serialize_str(v),
    }
}

/// Why the rollout halted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Halt {
    pub cluster: String,
    pub reason: String,
    pub message: String,
}

/// The rollout's standing, and the changes that wait.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Standing {
    pub waves: Vec<WaveStanding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub halted: Vec<Halt>,
    /// `--until-wave`: waves after it do not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// (target index, object) of every change that waits.
    #[serde(skip)]
    pub held: BTreeSet<(usize, ObjectId)>,
    /// Clusters with a step outside a limited apply (`--cluster`): shown
    /// for the waves' order, not written by it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outside: Vec<String>,
}

/// The name of the wave of clusters no wave's selector matched.
pub const REST: &str = "rest";

/// How the standing is computed: the clock, the no-progress limit, the
/// last wave to start, and the targets' names (for a fleet of several).
pub struct Options<'a> {
    pub now: i64,
    pub timeout_secs: i64,
    pub until: Option<&'a str>,
    pub targets: &'a [String],
}

/// The waves of `rollout` (or one wave of every cluster, unlimited, when
/// there is none), with clusters no wave matched in a last wave `rest`,
/// one at a time.
fn waves(rollout: Option<&Rollout>) -> Vec<(String, Option<Selector>, MaxParallel)> {
    let mut out: Vec<(String, Option<Selector>, MaxParallel)> = match rollout {
        None => vec![("all".to_string(), None, MaxParallel::All)],
        Some(r) => r.waves.iter().map(|w| (w.name.value.clone(), w.selector.clone(), w.max_parallel)).collect(),
    };
    if out.iter().all(|(_, s, _)| s.is_some()) {
        out.push((REST.to_string(), None, MaxParallel::Count(1)));
    }
    out
}

/// The standing of every cluster and the changes that wait.
pub fn standing(rollout: Option<&Rollout>, members: &[Member], opts: &Options<'_>) -> Standing {
    let waves = waves(rollout);
    // Each cluster in the first wave that matches it.
    let mut by_wave: Vec<Vec<&Member>> = vec![Vec::new(); waves.len()];
    for m in members {
        if let Some(i) = waves.iter().position(|(_, s, _)| s.as_ref().is_none_or(|s| s.matches(&m.labels))) {
            by_wave[i].push(m);
        }
    }
    let several = opts.targets.len() > 1;
    let mut out = Standing { until: opts.until.map(str::to_string), ..Standing::default() };
    let mut phases: Vec<Vec<(&Member, Phase)>> = Vec::new();
    let mut done: Vec<usize> = Vec::new();
    let mut created: Vec<Vec<String>> = Vec::new();
    for members in &mut by_wave {
        members.sort_by(|a, b| (&a.cluster, a.target).cmp(&(&b.cluster, b.target)));
        let mut wave = Vec::new();
        let mut finished = 0;
        let mut fresh = Vec::new();
        for m in members.iter() {
            match phase(m, opts) {
                Some(p) => wave.push((*m, p)),
                None if upgraded(m) => finished += 1,
                None if m.status.is_none() => fresh.push(m.cluster.clone()),
                None => {}
            }
        }
        phases.push(wave);
        done.push(finished);
        created.push(fresh);
    }
    let halted = phases.iter().flatten().any(|(_, p)| matches!(p, Phase::Failed { .. }));
    let mut open = !halted;
    for (i, (name, _, max)) in waves.iter().enumerate() {
        let limit = max.limit(by_wave[i].len());
        let mut active = phases[i].iter().filter(|(_, p)| *p != Phase::Waiting).count();
        if open {
            for (_, p) in phases[i].iter_mut().filter(|(_, p)| *p == Phase::Waiting) {
                if active >= limit {
                    break;
                }
                *p = Phase::Starting;
                active += 1;
            }
        }
        if !phases[i].is_empty() || opts.until == Some(name.as_str()) {
            open = false;
        }
        let mut clusters = Vec::new();
        for (m, p) in &phases[i] {
            hold(m, p, halted, &mut out.held);
            if m.outside && !m.steps.is_empty() {
                out.outside.push(m.cluster.clone());
            }
            if let Phase::Failed { reason, message } = p {
                out.halted.push(Halt { cluster: m.cluster.clone(), reason: reason.clone(), message: message.clone() });
            }
            let pools: Vec<&Step> = m.steps.iter().filter(|s| matches!(s.kind, StepKind::Pool { .. })).collect();
            clusters.push(ClusterStanding {
                cluster: m.cluster.clone(),
                target: several.then(|| opts.targets.get(m.target).cloned().unwrap_or_default()),
                phase: p.clone(),
                control_plane: m.steps.iter().any(|s| s.kind == StepKind::ControlPlane).then(|| m.release.clone()),
                node_pools: pools.len(),
                nodes: pools
                    .iter()
                    .map(|s| match &s.kind {
                        StepKind::Pool { nodes, .. } => nodes.unwrap_or(0),
                        StepKind::ControlPlane => 0,
                    })
                    .sum(),
                waiting_for: awaited(m).filter(|_| *p == Phase::NodePools).map(|u| u.waits_for(&m.cluster)),
            });
        }
        out.waves.push(WaveStanding {
            name: name.clone(),
            max_parallel: max.to_string(),
            size: by_wave[i].len(),
            done: done[i],
            clusters,
            new: std::mem::take(&mut created[i]),
        });
    }
    // Clusters of no wave (none: `rest` takes them) and NodePools new in
    // clusters whose control plane is still on its way wait all the same.
    for m in members {
        for s in &m.steps {
            if let StepKind::Pool { release, waved: false, .. } = &s.kind
                && !carries(m, release)
                && has_run_a_release(m)
            {
                out.held.insert((m.target, s.id.clone()));
            }
        }
    }
    out.waves.retain(|w| w.name != REST || w.size > 0);
    out
}

/// Whether the live control plane has reported a release at all. One that
/// has not is still being installed (or nothing reconciles it yet): a pool
/// created with it is part of that install, as `hcp create cluster` creates
/// both at once, and never newer than a control plane that runs.
fn has_run_a_release(m: &Member) -> bool {
    m.status.as_ref().is_some_and(|s| s.history > 0)
}

/// Whether the cluster runs the desired release after an upgrade (not
/// only its first install).
fn upgraded(m: &Member) -> bool {
    control_plane_done(m) && m.status.as_ref().is_some_and(|s| s.history >= 2)
}

/// Whether the live control plane runs the desired release, completed.
fn control_plane_done(m: &Member) -> bool {
    m.status
        .as_ref()
        .is_some_and(|s| s.release == m.release && s.head.as_ref().is_some_and(|h| h.image == m.release && h.completed))
}

/// Whether the live control plane may carry a NodePool on `release`: it
/// has completed a version not older (HyperShift refuses a NodePool newer
/// than its control plane, whatever the pool is pinned to). A release
/// whose version is unknown (a digest) waits for the cluster's own
/// release to complete when it is that one, and goes otherwise.
fn carries(m: &Member, release: &str) -> bool {
    let Some(st) = m.status.as_ref() else { return true };
    if *release == m.release {
        return control_plane_done(m);
    }
    not_newer(version_of(release), &st.completed).unwrap_or(true)
}

/// Whether a pool's move to `release` is the second step of an upgrade
/// whose first is done: the control plane's last upgrade is what let it
/// go (its version was newer than what the control plane ran before).
fn let_go_by_last_upgrade(m: &Member, release: &str) -> bool {
    let Some(st) = m.status.as_ref() else { return false };
    *release == m.release || (carries(m, release) && not_newer(version_of(release), &st.previous) == Some(false))
}

/// A cluster's phase before admission; `None` when it has nothing to do.
fn phase(m: &Member, opts: &Options<'_>) -> Option<Phase> {
    let st = m.status.as_ref()?;
    let waved: Vec<&Step> = m
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::ControlPlane | StepKind::Pool { waved: true, .. }))
        .collect();
    // An upgrade under way (not the first install): the live release not
    // yet completed, or a pool still moving to its control plane's version.
    let settled = st.head.as_ref().is_some_and(|h| h.image == st.release && h.completed);
    // A release written that the operator has not taken up yet (no entry
    // for it) is an upgrade too, even of a cluster installed once.
    let taken_up = st.head.as_ref().is_none_or(|h| h.image == st.release);
    let upgrading = !settled && (st.history >= 2 || !taken_up);
    let moving: Vec<&PoolStatus> = st
        .pools
        .iter()
        .filter(|p| {
            p.rolling.is_some()
                || (!p.version.is_empty()
                    && (p.updating.is_some() || (settled && p.release == st.release && p.version != st.version)))
        })
        .collect();
    let done = control_plane_done(m);
    // The second step of an upgrade whose first is done: a pool's release
    // catching up with its control plane's, which has moved since the
    // install. (A change that only rolls nodes is a first step: it waits
    // for its wave.)
    let catching_up = |s: &&Step| match &s.kind {
        StepKind::Pool { release, .. } => {
            let_go_by_last_upgrade(m, release) && st.pools.iter().any(|p| p.name == s.id.name && p.release != *release)
        }
        StepKind::ControlPlane => false,
    };
    let pools_due = done
        && st.history >= 2
        && waved.iter().any(catching_up)
        && !waved.iter().any(|s| s.kind == StepKind::ControlPlane);
    // A cluster whose pools all reached its version and rolled their
    // configuration is done only once their nodes are ready as desired.
    let unready = waved.iter().all(catching_up).then(|| awaited(m)).flatten();
    let in_progress = upgrading || !moving.is_empty() || pools_due || unready.is_some();
    if !in_progress {
        return (!waved.is_empty()).then_some(Phase::Waiting);
    }
    let failed = |reason: String, message: String| Some(Phase::Failed { reason, message });
    if let Some((ty, reason, message)) = &st.failure {
        return failed(format!("{ty}: {reason}"), message.clone());
    }
    if let Some(p) = st.pools.iter().find(|p| p.failure.is_some())
        && let Some((ty, reason, message)) = &p.failure
    {
        return failed(format!("NodePool {} {ty}: {reason}", p.name), message.clone());
    }
    let late = |since: Option<i64>| since.is_some_and(|t| opts.now - t > opts.timeout_secs);
    // This upgrade started when the operator wrote its entry, or, until
    // it has, when hcpc wrote the release: never the entry of an earlier
    // upgrade.
    let started = if taken_up { st.head.as_ref().and_then(|h| h.started) } else { st.written };
    if upgrading && late(started) {
        return failed(
            "RolloutTimeout".to_string(),
            format!("the control plane has not completed {} within --rollout-timeout", st.release),
        );
    }
    if let Some(p) = moving.iter().find(|p| late(p.updating.flatten())) {
        return failed(
            "RolloutTimeout".to_string(),
            format!("NodePool {} has not reached {} within --rollout-timeout", p.name, st.version),
        );
    }
    if let Some(p) = moving.iter().find(|p| p.updating.is_none() && late(p.rolling.flatten())) {
        return failed(
            "RolloutTimeout".to_string(),
            format!("NodePool {} has not finished rolling its nodes within --rollout-timeout", p.name),
        );
    }
    if let Some(p) = unready.filter(|p| late(p.unready.as_ref().and_then(|u| u.1))) {
        return failed(
            "RolloutTimeout".to_string(),
            format!("NodePool {} has not become ready within --rollout-timeout", p.name),
        );
    }
    Some(if upgrading || waved.iter().any(|s| s.kind == StepKind::ControlPlane) {
        Phase::ControlPlane
    } else {
        Phase::NodePools
    })
}

/// Once the control plane runs the desired release and no pool is rolling
/// (after an upgrade or a configuration roll-out, or the install): the
/// first pool whose nodes are not ready as desired. A roll-out that
/// finished with nodes missing is not done.
fn awaited(m: &Member) -> Option<&PoolStatus> {
    let st = m.status.as_ref()?;
    let reached = |p: &PoolStatus| !p.version.is_empty() && p.version == st.version;
    let all_there =
        st.pools.iter().all(|p| p.updating.is_none() && p.rolling.is_none() && (p.version.is_empty() || reached(p)));
    if !(control_plane_done(m) && all_there) {
        return None;
    }
    st.pools.iter().find(|p| reached(p) && !p.ready())
}

/// Records the changes of `m` that wait in phase `p`. Once the rollout
/// halted, no step of it is made, whether or not the apply follows it.
fn hold(m: &Member, p: &Phase, halted: bool, held: &mut BTreeSet<(usize, ObjectId)>) {
    for s in &m.steps {
        let waits = match &s.kind {
            // A cluster in flight (on another release, or rolling its
            // nodes) finishes that first: its new release starts with
            // its wave again, after the first waves took it.
            StepKind::ControlPlane => halted || *p != Phase::Starting,
            StepKind::Pool { release, waved, .. } => {
                (*waved && (halted || matches!(p, Phase::Waiting | Phase::Failed { .. })))
                    || (!carries(m, release) && (*waved || has_run_a_release(m)))
            }
        };
        if waits {
            held.insert((m.target, s.id.clone()));
        }
    }
}

impl Standing {
    /// Whether any cluster has anything to do or is under way.
    pub fn is_active(&self) -> bool {
        self.waves.iter().any(|w| !w.clusters.is_empty())
    }

    /// The standing once the steps that started were written: a cluster
    /// that started is under way (its control plane, or else its pools),
    /// not still "starting".
    pub fn after_written(&self) -> Standing {
        let mut out = self.clone();
        for c in out.waves.iter_mut().flat_map(|w| &mut w.clusters) {
            if c.phase == Phase::Starting {
                c.phase = if c.control_plane.is_some() { Phase::ControlPlane } else { Phase::NodePools };
            }
        }
        out
    }

    /// Nothing under way and nothing may start: what waits, waits for
    /// `--until-wave` to be lifted.
    pub fn stalled(&self) -> bool {
        self.waves.iter().flat_map(|w| &w.clusters).all(|c| c.phase == Phase::Waiting)
    }

    /// One line: per wave with clusters, how many start, are in progress
    /// (and at which step), failed and wait.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for w in self.waves.iter().filter(|w| !w.clusters.is_empty()) {
            let named = |f: &dyn Fn(&Phase) -> bool| -> Vec<&ClusterStanding> {
                w.clusters.iter().filter(|c| f(&c.phase)).collect()
            };
            let starting = named(&|p| *p == Phase::Starting);
            let running = named(&|p| matches!(p, Phase::ControlPlane | Phase::NodePools));
            let failed = named(&|p| matches!(p, Phase::Failed { .. }));
            let waiting = named(&|p| *p == Phase::Waiting);
            let mut bits = Vec::new();
            if !starting.is_empty() {
                let names: Vec<&str> = starting.iter().map(|c| c.cluster.as_str()).collect();
                bits.push(format!("{} starting ({})", starting.len(), names.join(", ")));
            }
            if !running.is_empty() {
                let what: Vec<String> = running
                    .iter()
                    .map(|c| {
                        let step = match (&c.phase, &c.waiting_for) {
                            (Phase::ControlPlane, _) => "control plane upgrading",
                            (_, Some(w)) => w.as_str(),
                            _ => "node pools rolling",
                        };
                        format!("{}: {step}", c.cluster)
                    })
                    .collect();
                bits.push(format!("{} of {} clusters in progress ({})", running.len(), w.size, what.join(", ")));
            }
            if !failed.is_empty() {
                let names: Vec<&str> = failed.iter().map(|c| c.cluster.as_str()).collect();
                bits.push(format!("{} failed ({})", failed.len(), names.join(", ")));
            }
            if !waiting.is_empty() {
                bits.push(format!("{} waiting", waiting.len()));
            }
            if w.done > 0 {
                bits.push(format!("{} done", w.done));
            }
            parts.push(format!("wave {}: {}", w.name, bits.join(", ")));
        }
        if parts.is_empty() {
            return "rollout: done".to_string();
        }
        format!("rollout: {}", parts.join("; "))
    }
}

/// The release's tag (`4.20.1-x86_64`), or the whole reference when it has none.
fn short(release: &str) -> &str {
    crate::release::short(release)
}

impl ClusterStanding {
    /// What the cluster does, in words: `control plane → 4.20.1-x86_64,
    /// then 2 NodePools rolling 6 nodes`.
    fn steps(&self) -> String {
        let pools = match (self.node_pools, self.nodes) {
            (0, _) => String::new(),
            (n, 0) => super::names::plural(n as u64, "NodePool"),
            (n, m) => {
                format!("{} rolling {}", super::names::plural(n as u64, "NodePool"), super::names::plural(m, "node"))
            }
        };
        match (&self.control_plane, pools.is_empty()) {
            (Some(r), true) => format!("control plane → {}", short(r)),
            (Some(r), false) => format!("control plane → {}, then {pools}", short(r)),
            (None, _) => pools,
        }
    }
}

impl Phase {
    fn words(&self) -> &'static str {
        match self {
            Phase::Waiting => "waits",
            Phase::Starting => "starts now",
            Phase::ControlPlane => "control plane upgrading",
            Phase::NodePools => "node pools rolling",
            Phase::Failed { .. } => "failed",
        }
    }
}

impl WaveStanding {
    /// The wave's clusters grouped by phase and steps, names compacted:
    /// (phase words, names, steps, failure or what it waits for).
    fn groups(&self) -> Vec<(&'static str, Vec<&str>, String, Option<String>)> {
        let mut out: Vec<(&'static str, Vec<&str>, String, Option<String>)> = Vec::new();
        for c in &self.clusters {
            let failure = match &c.phase {
                Phase::Failed { reason, message } => Some(format!("{reason}: {message}")),
                _ => c.waiting_for.clone(),
            };
            let words = if c.waiting_for.is_some() { "waits for ready nodes" } else { c.phase.words() };
            let name = c.cluster.as_str();
            let steps = c.steps();
            match out.iter_mut().find(|g| g.0 == words && g.2 == steps && g.3.is_none() && failure.is_none()) {
                Some(g) => g.1.push(name),
                None => out.push((words, vec![name], steps, failure)),
            }
        }
        out
    }

    fn head(&self, i: usize) -> String {
        let limit = if self.max_parallel == "all" {
            "no limit".to_string()
        } else {
            format!("max-parallel {}", self.max_parallel)
        };
        format!("{}. wave {} ({limit}, {})", i + 1, self.name, super::names::plural(self.size as u64, "cluster"))
    }
}

fn names_text(names: &[&str]) -> String {
    super::names::compact(names.iter().copied()).iter().map(super::view::run_text).collect::<Vec<_>>().join(", ")
}

impl Standing {
    /// The rollout in the text plan: waves in order, their clusters by
    /// phase with their two steps.
    pub fn text(&self) -> String {
        if !self.is_active() {
            return String::new();
        }
        let mut out = String::from("\nRollout (control plane first, then its NodePools; wave by wave):\n");
        for (i, w) in self.waves.iter().enumerate() {
            out.push_str(&format!("  {}\n", w.head(i)));
            if w.clusters.is_empty() && w.new.is_empty() {
                out.push_str("       nothing to do\n");
            }
            if !w.new.is_empty() {
                let names: Vec<&str> = w.new.iter().map(String::as_str).collect();
                out.push_str(&format!("       created at once {}\n", names_text(&names)));
            }
            for (phase, names, steps, failure) in w.groups() {
                let tail = if steps.is_empty() { String::new() } else { format!(": {steps}") };
                out.push_str(&format!("       {phase} {}{tail}\n", names_text(&names)));
                if let Some(f) = failure {
                    out.push_str(&format!("         {f}\n"));
                }
            }
            if self.until.as_deref() == Some(w.name.as_str()) {
                out.push_str("       (--until-wave: no later wave starts)\n");
            }
        }
        if !self.outside.is_empty() {
            let names: Vec<&str> = self.outside.iter().map(String::as_str).collect();
            out.push_str(&format!(
                "  outside --cluster, in the waves' order but not written by this apply: {}\n",
                names_text(&names)
            ));
        }
        out.push_str(&format!("{}\n", self.summary()));
        out
    }

    /// The rollout in the markdown plan.
    pub fn markdown(&self) -> String {
        if !self.is_active() {
            return String::new();
        }
        let mut out = String::from("\n### Rollout\n\nControl plane first, then its NodePools; wave by wave.\n\n");
        for (i, w) in self.waves.iter().enumerate() {
            out.push_str(&format!("{}\n", w.head(i)));
            if w.clusters.is_empty() && w.new.is_empty() {
                out.push_str("   - nothing to do\n");
            }
            if !w.new.is_empty() {
                let names: Vec<&str> = w.new.iter().map(String::as_str).collect();
                out.push_str(&format!("   - created at once `{}`\n", names_text(&names)));
            }
            for (phase, names, steps, failure) in w.groups() {
                let tail = if steps.is_empty() { String::new() } else { format!(": {steps}") };
                out.push_str(&format!("   - {phase} `{}`{tail}\n", names_text(&names)));
                if let Some(f) = failure {
                    out.push_str(&format!("     - {f}\n"));
                }
            }
        }
        out.push_str(&format!("\n{}\n", self.summary()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Wave;
    use crate::object::Kind;
    use crate::source::Spanned;

    const OLD: &str = "quay.io/openshift-release-dev/ocp-release:4.19.3-x86_64";
    const NEW: &str = "quay.io/openshift-release-dev/ocp-release:4.20.1-x86_64";

    fn hc(name: &str) -> ObjectId {
        ObjectId::new(Kind::HostedCluster, "ns", name)
    }
    fn np(name: &str) -> ObjectId {
        ObjectId::new(Kind::NodePool, "ns", &format!("{name}-workers"))
    }

    /// A cluster on OLD (settled, pools at 4.19.3) whose configuration asks for NEW.
    fn bumped(name: &str, env: &str) -> Member {
        Member {
            cluster: name.to_string(),
            target: 0,
            labels: [("env".to_string(), env.to_string())].into(),
            release: NEW.to_string(),
            status: Some(ClusterStatus {
                release: OLD.to_string(),
                head: Some(Head { image: OLD.to_string(), completed: true, started: Some(0) }),
                history: 2,
                version: "4.19.3".to_string(),
                failure: None,
                pools: vec![PoolStatus {
                    name: format!("{name}-workers"),
                    release: OLD.to_string(),
                    version: "4.19.3".to_string(),
                    ..PoolStatus::default()
                }],
                completed: "4.19.3".to_string(),
                previous: "4.19.1".to_string(),
                written: Some(0),
            }),
            steps: vec![
                Step { id: hc(name), kind: StepKind::ControlPlane },
                Step { id: np(name), kind: StepKind::Pool { release: NEW.to_string(), nodes: Some(2), waved: true } },
            ],
            outside: false,
        }
    }

    /// The same cluster after its HostedCluster was written: upgrading, or completed.
    fn written(mut m: Member, completed: bool) -> Member {
        m.steps.retain(|s| s.kind != StepKind::ControlPlane);
        let st = m.status.as_mut().unwrap();
        st.release = NEW.to_string();
        st.head = Some(Head { image: NEW.to_string(), completed, started: Some(1_000) });
        st.history = 3;
        st.written = Some(1_000);
        if completed {
            st.version = "4.20.1".to_string();
            st.completed = "4.20.1".to_string();
            st.previous = "4.19.3".to_string();
        }
        m
    }

    fn opts() -> Options<'static> {
        Options { now: 2_000, timeout_secs: 5_400, until: None, targets: &[] }
    }

    fn rollout(waves: &[(&str, Option<&str>, MaxParallel)]) -> Rollout {
        Rollout {
            waves: waves
                .iter()
                .map(|(n, s, m)| Wave {
                    name: Spanned::new(
                        n.to_string(),
                        crate::source::Span { file: crate::source::FileId(0), offset: 0, len: 0 },
                    ),
                    selector: s.map(|s| Selector::parse(s).unwrap()),
                    max_parallel: *m,
                })
                .collect(),
        }
    }

    fn phases(s: &Standing) -> Vec<(String, String)> {
        s.waves
            .iter()
            .flat_map(|w| w.clusters.iter().map(move |c| (w.name.clone(), format!("{}:{:?}", c.cluster, c.phase))))
            .collect()
    }

    #[test]
    fn without_a_rollout_every_control_plane_goes_first_and_pools_wait() {
        let members = [bumped("a", "prod"), bumped("b", "prod")];
        let s = standing(None, &members, &opts());
        let held: Vec<&ObjectId> = s.held.iter().map(|(_, id)| id).collect();
        assert_eq!(held, [&np("a"), &np("b")], "only the pools wait");
        assert_eq!(s.summary(), "rollout: wave all: 2 starting (a, b)");
    }

    #[test]
    fn pools_go_once_their_control_plane_completed() {
        let members = [written(bumped("a", "prod"), false), written(bumped("b", "prod"), true)];
        let s = standing(None, &members, &opts());
        let held: Vec<&ObjectId> = s.held.iter().map(|(_, id)| id).collect();
        assert_eq!(held, [&np("a")]);
        assert_eq!(
            s.summary(),
            "rollout: wave all: 2 of 2 clusters in progress (a: control plane upgrading, b: node pools rolling)"
        );
    }

    #[test]
    fn waves_in_order_with_max_parallel_count_and_percentage() {
        let r =
            rollout(&[("canary", Some("env=canary"), MaxParallel::Count(1)), ("prod", None, MaxParallel::Percent(50))]);
        let members: Vec<Member> = [("c1", "canary"), ("c2", "canary"), ("p1", "prod"), ("p2", "prod"), ("p3", "prod")]
            .iter()
            .map(|(n, e)| bumped(n, e))
            .collect();
        let s = standing(Some(&r), &members, &opts());
        assert_eq!(
            phases(&s),
            [
                ("canary".into(), "c1:Starting".into()),
                ("canary".into(), "c2:Waiting".into()),
                ("prod".into(), "p1:Waiting".into()),
                ("prod".into(), "p2:Waiting".into()),
                ("prod".into(), "p3:Waiting".into()),
            ]
        );
        // Canary done: prod starts 50% of 3, rounded up.
        let members: Vec<Member> =
            [("p1", "prod"), ("p2", "prod"), ("p3", "prod")].iter().map(|(n, e)| bumped(n, e)).collect();
        let s = standing(Some(&r), &members, &opts());
        let starting = s.waves[1].clusters.iter().filter(|c| c.phase == Phase::Starting).count();
        assert_eq!(starting, 2, "{:?}", phases(&s));
        assert_eq!(s.waves[1].max_parallel, "50%");
    }

    #[test]
    fn in_progress_clusters_take_their_room_and_until_wave_stops_later_waves() {
        let r = rollout(&[("canary", Some("env=canary"), MaxParallel::Count(1)), ("prod", None, MaxParallel::All)]);
        let members = [written(bumped("c2", "canary"), false), bumped("c1", "canary"), bumped("p1", "prod")];
        let s = standing(Some(&r), &members, &opts());
        assert_eq!(
            s.summary(),
            "rollout: wave canary: 1 of 2 clusters in progress (c2: control plane upgrading), 1 waiting; wave prod: 1 waiting"
        );
        let until = Options { until: Some("canary"), ..opts() };
        let s = standing(Some(&r), &[bumped("p1", "prod")], &until);
        assert_eq!(phases(&s), [("prod".into(), "p1:Waiting".into())], "--until-wave canary: prod does not start");
    }

    #[test]
    fn a_change_that_only_rolls_nodes_waits_for_its_wave() {
        let r = rollout(&[("canary", Some("env=canary"), MaxParallel::Count(1)), ("prod", None, MaxParallel::All)]);
        // Both upgraded long ago (history of 3), now a memory change rolls their nodes.
        let settled_roll = |name: &str, env: &str| {
            let mut m = written(bumped(name, env), true);
            for p in &mut m.status.as_mut().unwrap().pools {
                p.release = NEW.to_string();
                p.version = "4.20.1".to_string();
            }
            m.steps = vec![Step {
                id: np(name),
                kind: StepKind::Pool { release: NEW.to_string(), nodes: Some(2), waved: true },
            }];
            m
        };
        let s = standing(Some(&r), &[settled_roll("c1", "canary"), settled_roll("p1", "prod")], &opts());
        assert_eq!(phases(&s), [("canary".into(), "c1:Starting".into()), ("prod".into(), "p1:Waiting".into())]);
        assert!(s.held.contains(&(0, np("p1"))) && !s.held.contains(&(0, np("c1"))));
    }

    #[test]
    fn a_failed_cluster_halts_every_start_and_says_why() {
        let mut failing = written(bumped("a", "prod"), false);
        failing.status.as_mut().unwrap().failure =
            Some(("Degraded".into(), "EtcdUnhealthy".into(), "etcd lost quorum".into()));
        let s = standing(None, &[failing, bumped("b", "prod")], &opts());
        assert_eq!(
            s.halted,
            [Halt {
                cluster: "a".into(),
                reason: "Degraded: EtcdUnhealthy".into(),
                message: "etcd lost quorum".into()
            }]
        );
        assert!(s.held.contains(&(0, hc("b"))), "no new cluster starts");
        // No progress within the timeout is a failure too.
        let slow = written(bumped("c", "prod"), false);
        let late = Options { now: 1_000 + 5_401, ..opts() };
        let s = standing(None, &[slow], &late);
        assert_eq!(s.halted[0].reason, "RolloutTimeout");
    }

    /// A cluster upgraded to NEW whose pool reached 4.20.1 with `nodes` of
    /// 2 nodes reported: nothing left to write.
    fn upgraded_with(name: &str, env: &str, nodes: u64) -> Member {
        let mut m = written(bumped(name, env), true);
        m.steps.clear();
        for p in &mut m.status.as_mut().unwrap().pools {
            p.release = NEW.to_string();
            p.version = "4.20.1".to_string();
            p.nodes = nodes;
            p.desired = 2;
        }
        m
    }

    #[test]
    fn a_pool_not_ready_as_desired_keeps_the_next_wave_waiting() {
        let r = rollout(&[("canary", Some("env=canary"), MaxParallel::Count(1)), ("prod", None, MaxParallel::All)]);
        let members = [upgraded_with("c1", "canary", 1), bumped("p1", "prod")];
        let s = standing(Some(&r), &members, &opts());
        assert_eq!(phases(&s), [("canary".into(), "c1:NodePools".into()), ("prod".into(), "p1:Waiting".into())]);
        assert!(s.held.contains(&(0, hc("p1"))), "prod's control plane waits");
        assert_eq!(
            s.summary(),
            "rollout: wave canary: 1 of 1 clusters in progress (c1: 1 of 2 nodes ready in pool workers); wave prod: 1 waiting"
        );
        assert!(
            s.text().contains("       waits for ready nodes c1\n         1 of 2 nodes ready in pool workers\n"),
            "{}",
            s.text()
        );
        assert_eq!(s.waves[0].done, 0);

        // Its nodes are ready: canary is done, prod starts.
        let members = [upgraded_with("c1", "canary", 2), bumped("p1", "prod")];
        let s = standing(Some(&r), &members, &opts());
        assert_eq!(phases(&s), [("prod".into(), "p1:Starting".into())]);
        assert_eq!((s.waves[0].done, s.waves[0].clusters.len()), (1, 0));
        assert!(!s.held.contains(&(0, hc("p1"))));
    }

    #[test]
    fn a_ready_false_pool_is_not_done_and_times_out() {
        let mut m = upgraded_with("a", "prod", 2);
        let since = Some(1_500);
        m.status.as_mut().unwrap().pools[0].unready = Some(("WaitingForAvailableMachines".into(), since));
        let s = standing(None, std::slice::from_ref(&m), &opts());
        assert_eq!(
            s.summary(),
            "rollout: wave all: 1 of 1 clusters in progress (a: pool workers not ready (WaitingForAvailableMachines))"
        );
        let late = Options { now: 1_500 + 5_401, ..opts() };
        let s = standing(None, &[m], &late);
        assert_eq!(s.halted[0].reason, "RolloutTimeout");
        assert_eq!(s.halted[0].message, "NodePool a-workers has not become ready within --rollout-timeout");
    }

    #[test]
    fn an_unready_pool_of_a_cluster_not_yet_upgraded_does_not_start_it_early() {
        // Still on OLD with a node missing: it waits for its wave like any other.
        let r = rollout(&[("canary", Some("env=canary"), MaxParallel::Count(1)), ("prod", None, MaxParallel::All)]);
        let mut p1 = bumped("p1", "prod");
        p1.status.as_mut().unwrap().pools[0].desired = 2;
        let s = standing(Some(&r), &[bumped("c1", "canary"), p1], &opts());
        assert_eq!(phases(&s), [("canary".into(), "c1:Starting".into()), ("prod".into(), "p1:Waiting".into())]);
    }

    #[test]
    fn readiness_is_read_from_replicas_autoscaling_and_the_ready_condition() {
        let hc = serde_json::json!({"spec": {"release": {"image": NEW}}, "status": {"version": {"history": [
            {"image": NEW, "version": "4.20.1", "state": "Completed", "startedTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T01:00:00Z", "verified": true}]}}});
        let pool = |spec: Value, status: Value| {
            let p = serde_json::json!({"metadata": {"name": "a-workers"}, "spec": spec, "status": status});
            ClusterStatus::from_live(&hc, &[&p]).pools.remove(0)
        };
        let scaled = pool(serde_json::json!({"autoScaling": {"min": 3, "max": 5}}), serde_json::json!({"replicas": 2}));
        assert_eq!((scaled.nodes, scaled.desired, scaled.ready()), (2, 3, false), "autoscaling: its minimum");
        let scaled = pool(serde_json::json!({"autoScaling": {"min": 3, "max": 5}}), serde_json::json!({"replicas": 3}));
        assert!(scaled.ready());
        let fixed = pool(
            serde_json::json!({"replicas": 2}),
            serde_json::json!({"replicas": 2, "conditions": [
            {"type": "Ready", "status": "False", "reason": "WaitingForAvailableMachines", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
        assert_eq!(fixed.unready, Some(("WaitingForAvailableMachines".into(), Some(1_767_225_600))));
        assert!(!fixed.ready(), "Ready=False is not ready, whatever the count");
        let empty = pool(serde_json::json!({"replicas": 0}), serde_json::json!({}));
        assert!(empty.ready(), "no node desired, none reported");
    }

    #[test]
    fn status_is_read_from_what_the_operator_writes() {
        let hc = serde_json::json!({"spec": {"release": {"image": NEW}}, "status": {
            "version": {"desired": {"image": NEW, "version": "4.20.1"}, "history": [
                {"image": NEW, "version": "4.20.1", "state": "Partial", "startedTime": "2026-01-01T00:00:00Z", "completionTime": null, "verified": false},
                {"image": OLD, "version": "4.19.3", "state": "Completed", "startedTime": "2025-01-01T00:00:00Z", "completionTime": "2026-01-01T00:00:00Z", "verified": true}]},
            "conditions": [{"type": "ClusterVersionFailing", "status": "True", "reason": "UpdatePayloadFailed", "message": "could not apply", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        let pool = serde_json::json!({"metadata": {"name": "a-workers"}, "spec": {"release": {"image": OLD}},
            "status": {"version": "4.19.3", "conditions": [{"type": "ValidMachineConfig", "status": "False", "reason": "ValidationFailed", "message": "bad", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        let st = ClusterStatus::from_live(&hc, &[&pool]);
        assert_eq!(st.head, Some(Head { image: NEW.into(), completed: false, started: Some(1_767_225_600) }));
        assert_eq!(st.history, 2);
        assert_eq!(
            st.failure,
            Some(("ClusterVersionFailing".into(), "UpdatePayloadFailed".into(), "could not apply".into()))
        );
        assert_eq!(st.pools[0].failure.as_ref().map(|f| f.0.as_str()), Some("ValidMachineConfig"));
    }

    #[test]
    fn an_upgrade_is_timed_from_its_own_start_not_the_last_ones() {
        // Upgraded long ago (its head started at 0); NEW written at 5_998,
        // not yet taken up by the operator: the upgrade is 2 s old.
        let mut m = bumped("a", "prod");
        m.steps.retain(|s| s.kind != StepKind::ControlPlane);
        let st = m.status.as_mut().unwrap();
        st.release = NEW.to_string();
        st.written = Some(5_998);
        let now = Options { now: 6_000, ..opts() };
        let s = standing(None, std::slice::from_ref(&m), &now);
        assert!(s.halted.is_empty(), "{:?}", s.halted);
        assert_eq!(s.summary(), "rollout: wave all: 1 of 1 clusters in progress (a: control plane upgrading)");
        assert!(s.held.contains(&(0, np("a"))), "its pool waits for the control plane");
        // Still not taken up after --rollout-timeout: that is no progress.
        let late = Options { now: 5_998 + 5_401, ..opts() };
        let s = standing(None, &[m], &late);
        assert_eq!(s.halted[0].reason, "RolloutTimeout");
        assert_eq!(s.halted[0].message, format!("the control plane has not completed {NEW} within --rollout-timeout"));
    }

    #[test]
    fn a_pool_pinned_newer_than_its_control_plane_waits_for_it() {
        const CP_NOW: &str = "quay.io/openshift-release-dev/ocp-release:4.20.5-x86_64";
        const PIN: &str = "quay.io/openshift-release-dev/ocp-release:4.20.6-x86_64";
        const CP_NEW: &str = "quay.io/openshift-release-dev/ocp-release:4.20.7-x86_64";
        let mut m = bumped("a", "prod");
        m.release = CP_NEW.to_string();
        let st = m.status.as_mut().unwrap();
        st.release = CP_NOW.to_string();
        st.head = Some(Head { image: CP_NOW.to_string(), completed: true, started: Some(0) });
        st.version = "4.20.5".to_string();
        st.completed = "4.20.5".to_string();
        st.pools[0].release = CP_NOW.to_string();
        st.pools[0].version = "4.20.5".to_string();
        m.steps[1].kind = StepKind::Pool { release: PIN.to_string(), nodes: Some(2), waved: true };
        let s = standing(None, std::slice::from_ref(&m), &opts());
        assert!(s.held.contains(&(0, np("a"))), "4.20.6 waits for a control plane on 4.20.7");
        assert!(!s.held.contains(&(0, hc("a"))));

        // The control plane completed 4.20.7: the pinned pool goes, as the
        // second step of this upgrade.
        m.steps.retain(|s| s.kind != StepKind::ControlPlane);
        let st = m.status.as_mut().unwrap();
        st.release = CP_NEW.to_string();
        st.head = Some(Head { image: CP_NEW.to_string(), completed: true, started: Some(1_000) });
        st.version = "4.20.7".to_string();
        st.previous = "4.20.5".to_string();
        st.completed = "4.20.7".to_string();
        let s = standing(None, &[m], &opts());
        assert!(s.held.is_empty(), "{:?}", s.held);
        assert_eq!(phases(&s), [("all".into(), "a:NodePools".into())]);
    }

    #[test]
    fn a_config_roll_out_keeps_its_wave_in_progress_until_the_pool_reports_it_done() {
        let r = rollout(&[("canary", Some("env=canary"), MaxParallel::Count(1)), ("prod", None, MaxParallel::All)]);
        // c1's memory change was written; the operator rolls its nodes.
        let mut c1 = upgraded_with("c1", "canary", 2);
        c1.status.as_mut().unwrap().pools[0].rolling = Some(Some(1_900));
        let mut p1 = upgraded_with("p1", "prod", 2);
        p1.steps =
            vec![Step { id: np("p1"), kind: StepKind::Pool { release: NEW.to_string(), nodes: Some(2), waved: true } }];
        let s = standing(Some(&r), &[c1.clone(), p1.clone()], &opts());
        assert_eq!(phases(&s), [("canary".into(), "c1:NodePools".into()), ("prod".into(), "p1:Waiting".into())]);
        assert!(s.held.contains(&(0, np("p1"))));
        // Rolling for longer than --rollout-timeout fails it.
        let late = Options { now: 1_900 + 5_401, ..opts() };
        let s = standing(Some(&r), &[c1.clone(), p1.clone()], &late);
        assert_eq!(
            s.halted[0].message,
            "NodePool c1-workers has not finished rolling its nodes within --rollout-timeout"
        );
        // Done: prod starts.
        c1.status.as_mut().unwrap().pools[0].rolling = None;
        let s = standing(Some(&r), &[c1, p1], &opts());
        assert_eq!(phases(&s), [("prod".into(), "p1:Starting".into())]);
    }

    #[test]
    fn a_config_roll_out_is_read_from_the_conditions_and_the_observed_generation() {
        let hc = serde_json::json!({"spec": {"release": {"image": NEW}}, "status": {"version": {"history": [
            {"image": NEW, "version": "4.20.1", "state": "Completed", "startedTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T01:00:00Z", "verified": true}]}}});
        let pool = |generation: i64, conditions: Value| {
            let p = serde_json::json!({"metadata": {"name": "a-workers", "generation": generation,
                "managedFields": [{"manager": "hcpc", "operation": "Apply", "time": "2026-01-02T00:00:00Z"}]},
                "spec": {"replicas": 2}, "status": {"replicas": 2, "version": "4.20.1", "conditions": conditions}});
            ClusterStatus::from_live(&hc, &[&p]).pools.remove(0)
        };
        let cond = |ty: &str, status: &str, generation: i64| {
            serde_json::json!({"type": ty, "status": status, "reason": "AsExpected", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation})
        };
        assert_eq!(pool(2, serde_json::json!([cond("UpdatingConfig", "True", 2)])).rolling, Some(Some(1_767_225_600)));
        assert_eq!(
            pool(2, serde_json::json!([cond("UpdatingPlatformMachineTemplate", "True", 2)])).rolling,
            Some(Some(1_767_225_600))
        );
        assert_eq!(
            pool(3, serde_json::json!([cond("UpdatingConfig", "False", 2)])).rolling,
            Some(Some(1_767_312_000)),
            "not yet observed: rolling since hcpc wrote it"
        );
        assert_eq!(pool(2, serde_json::json!([cond("UpdatingConfig", "False", 2)])).rolling, None);
    }

    #[test]
    fn once_halted_no_step_of_the_rollout_is_made() {
        // b's control plane completed, its pool is due; a failed.
        let mut failing = written(bumped("a", "prod"), false);
        failing.status.as_mut().unwrap().failure =
            Some(("Degraded".into(), "EtcdUnhealthy".into(), "etcd lost quorum".into()));
        let b = written(bumped("b", "prod"), true);
        let s = standing(None, std::slice::from_ref(&b), &opts());
        assert!(!s.held.contains(&(0, np("b"))), "without a halt, b's pool goes");
        let s = standing(None, &[failing, b], &opts());
        assert!(s.held.contains(&(0, np("b"))), "halted: b's pool waits too");
    }

    #[test]
    fn a_new_release_mid_rollout_starts_again_from_the_first_wave() {
        const NEWER: &str = "quay.io/openshift-release-dev/ocp-release:4.20.2-x86_64";
        let r = rollout(&[("canary", Some("env=canary"), MaxParallel::Count(1)), ("prod", None, MaxParallel::All)]);
        // p1 is upgrading to NEW when the configuration moves to NEWER.
        let mut p1 = written(bumped("p1", "prod"), false);
        p1.release = NEWER.to_string();
        p1.steps = vec![
            Step { id: hc("p1"), kind: StepKind::ControlPlane },
            Step { id: np("p1"), kind: StepKind::Pool { release: NEWER.to_string(), nodes: Some(2), waved: true } },
        ];
        let mut c1 = bumped("c1", "canary");
        c1.release = NEWER.to_string();
        let s = standing(Some(&r), &[c1, p1.clone()], &opts());
        assert_eq!(phases(&s), [("canary".into(), "c1:Starting".into()), ("prod".into(), "p1:ControlPlane".into())]);
        assert!(s.held.contains(&(0, hc("p1"))), "p1 finishes NEW before it moves on");
        // p1 completed NEW; canary not done with NEWER: p1 waits for it.
        let st = p1.status.as_mut().unwrap();
        st.head = Some(Head { image: NEW.to_string(), completed: true, started: Some(1_000) });
        st.completed = "4.20.1".to_string();
        let s = standing(Some(&r), &[written(bumped("c1", "canary"), false), p1], &opts());
        assert_eq!(phases(&s)[1], ("prod".into(), "p1:Waiting".into()));
        assert!(s.held.contains(&(0, hc("p1"))));
    }

    #[test]
    fn a_new_cluster_is_listed_in_its_wave_as_created_at_once() {
        let mut fresh = bumped("p2", "prod");
        fresh.status = None;
        fresh.steps.clear();
        let s = standing(None, &[bumped("p1", "prod"), fresh], &opts());
        assert_eq!((s.waves[0].size, s.waves[0].clusters.len()), (2, 1));
        let text = s.text();
        assert!(text.contains("  1. wave all (no limit, 2 clusters)\n"), "{text}");
        assert!(text.contains("       created at once p2\n"), "{text}");
        assert!(s.markdown().contains("   - created at once `p2`\n"), "{}", s.markdown());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["waves"][0]["new"], serde_json::json!(["p2"]));
        assert_eq!(json["waves"][0]["max_parallel"], "all");
    }

    #[test]
    fn the_summary_counts_a_wave_against_its_size_with_those_done() {
        let r = rollout(&[("prod", None, MaxParallel::Count(1))]);
        let members = [written(bumped("a", "prod"), false), upgraded_with("b", "prod", 2), bumped("c", "prod")];
        let s = standing(Some(&r), &members, &opts());
        assert_eq!(
            s.summary(),
            "rollout: wave prod: 1 of 3 clusters in progress (a: control plane upgrading), 1 waiting, 1 done"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["waves"][0]["max_parallel"], 1, "a count is a number");
    }

    #[test]
    fn after_a_write_the_clusters_that_started_are_under_way() {
        let r = rollout(&[("canary", Some("env=canary"), MaxParallel::Count(1)), ("prod", None, MaxParallel::All)]);
        let s = standing(Some(&r), &[bumped("c1", "canary"), bumped("p1", "prod")], &opts());
        assert_eq!(s.summary(), "rollout: wave canary: 1 starting (c1); wave prod: 1 waiting");
        assert_eq!(
            s.after_written().summary(),
            "rollout: wave canary: 1 of 1 clusters in progress (c1: control plane upgrading); wave prod: 1 waiting"
        );
    }
}
