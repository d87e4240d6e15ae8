//! The rollout in `apply`: read what the operator reports on the fleet's
//! HostedClusters and NodePools, work out where the upgrade stands
//! (`plan::rollout`), and hold back the changes that must wait. Nothing is
//! stored between runs: each apply starts again from the live state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::commands::plan::{FleetPlanned, Planned};
use super::target::Opened;
use crate::ir::Rollout;
use crate::live::kube::{Seen, WatchFailure};
use crate::object::{Kind, ObjectId};
use crate::plan::impact::RELEASE_PATH;
use crate::plan::rollout::{ClusterStatus, Member, Options, Phase, Standing, Step, StepKind, standing};
use crate::plan::{Action, Change, Summary};
use crate::render::applyset_id;
use hcpc_schema::labels;

/// What the command line says about the rollout.
#[derive(Debug, Clone, Default)]
pub struct RolloutFlags {
    /// `--until-wave`: the last wave to start.
    pub until: Option<String>,
    /// `--rollout-timeout`: no progress for this long fails a cluster.
    pub timeout: Duration,
}

impl RolloutFlags {
    /// What `plan` shows: the default no-progress limit, every wave.
    pub fn for_plan() -> RolloutFlags {
        RolloutFlags { until: None, timeout: Duration::from_secs(90 * 60) }
    }
}

/// A change the rollout governs: a release change or a node roll-out.
fn governed(c: &Change) -> bool {
    matches!(c.action, Action::Update | Action::Replace)
        && matches!(c.id.kind, Kind::HostedCluster | Kind::NodePool)
        && (c.fields.iter().any(|f| f.path == RELEASE_PATH) || c.rolls_nodes.is_some())
}

/// Whether any target's plan has a change the rollout governs, or a
/// NodePool created in a cluster that exists (it waits for its control
/// plane). Without one there is nothing to hold and nothing is read.
pub fn needed(planned: &FleetPlanned) -> bool {
    planned.parts.iter().any(|p| {
        p.plan.changes.iter().any(|c| {
            governed(c)
                || (c.id.kind == Kind::NodePool
                    && c.action == Action::Create
                    && p.live
                        .iter()
                        .any(|l| l.id.kind == Kind::HostedCluster && Some(&l.id.name) == c.cluster.as_ref()))
        })
    })
}

/// The clusters of a plan without changes that the live objects (as the
/// plan listed them, `status.version` included) show still moving: a
/// control plane whose newest history entry is not `Completed`, or a pool
/// on its control plane's release whose version is not that release's
/// yet. Read from what planning listed: no further request. A roll-out of
/// a pool's configuration alone is not visible there.
pub fn under_way(planned: &FleetPlanned) -> Vec<String> {
    fn s<'a>(v: &'a Value, p: &str) -> &'a str {
        v.pointer(p).and_then(Value::as_str).unwrap_or_default()
    }
    let mut out = BTreeSet::new();
    let several = planned.parts.len() > 1;
    for part in &planned.parts {
        let named = |cluster: &str, what: &str| {
            if several { format!("{cluster} on {} ({what})", part.plan.target) } else { format!("{cluster} ({what})") }
        };
        let mut pools: BTreeMap<(&str, &str), Vec<&Value>> = BTreeMap::new();
        for np in part.live.iter().filter(|l| l.id.kind == Kind::NodePool) {
            pools.entry((np.id.namespace.as_str(), s(&np.body, "/spec/clusterName"))).or_default().push(&np.body);
        }
        for hc in part.live.iter().filter(|l| l.id.kind == Kind::HostedCluster) {
            let Some(head) = hc.body.pointer("/status/version/history/0") else { continue };
            if s(head, "/state") != "Completed" {
                out.insert(named(&hc.id.name, "control plane upgrading"));
                continue;
            }
            let behind = |np: &&Value| {
                let version = s(np, "/status/version");
                s(np, "/spec/release/image") == s(head, "/image")
                    && !version.is_empty()
                    && version != s(head, "/version")
            };
            let key = (hc.id.namespace.as_str(), hc.id.name.as_str());
            if pools.get(&key).is_some_and(|p| p.iter().any(behind)) {
                out.insert(named(&hc.id.name, "node pools rolling"));
            }
        }
    }
    out.into_iter().collect()
}

/// The live HostedClusters and NodePools of one target, status included,
/// by (kind, namespace, name).
pub type LiveStatus = BTreeMap<(Kind, String, String), Value>;

/// The NodePools of each hosted cluster: (target, namespace, cluster) to
/// the pools' names.
type PoolIndex = BTreeMap<(usize, String, String), BTreeSet<String>>;

/// The (target, namespace, cluster) a live HostedCluster or NodePool
/// belongs to.
fn owner(i: usize, kind: Kind, o: &Value) -> (usize, String, String) {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    let cluster = match kind {
        Kind::NodePool => s("/spec/clusterName"),
        _ => s("/metadata/name"),
    };
    (i, s("/metadata/namespace"), cluster)
}

fn pool_index(live: &[LiveStatus]) -> PoolIndex {
    let mut out = PoolIndex::new();
    for (i, live) in live.iter().enumerate() {
        for ((kind, _, name), v) in live.iter().filter(|((k, _, _), _)| *k == Kind::NodePool) {
            out.entry(owner(i, *kind, v)).or_default().insert(name.clone());
        }
    }
    out
}

fn key(kind: Kind, o: &Value) -> (Kind, String, String) {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    (kind, s("/metadata/namespace"), s("/metadata/name"))
}

/// The label every object of the fleet on this target carries.
fn selector(part: &Planned) -> Option<String> {
    let fleet = &part.compiled.resolved.as_ref()?.fleet;
    Some(format!("{}={}", labels::APPLYSET_PART_OF, applyset_id(fleet)))
}

/// What the operator wrote, per target: one LIST of HostedClusters and
/// one of NodePools per management cluster, by the fleet's ApplySet
/// label. A directory target has no status: its clusters count as new
/// (nothing waits there).
fn fetch(planned: &FleetPlanned) -> Result<Vec<LiveStatus>, String> {
    let mut out = Vec::new();
    for part in &planned.parts {
        let mut live = LiveStatus::new();
        if let (Opened::Kube(k), Some(selector)) = (&part.target, selector(part)) {
            for kind in [Kind::HostedCluster, Kind::NodePool] {
                let items = k.list_kind(kind, Some(&selector)).map_err(|e| {
                    format!(
                        "{}: cannot read {} status: {}",
                        part.plan.target,
                        kind.plural(),
                        crate::live::kube::describe(&e)
                    )
                })?;
                for o in items {
                    live.insert(key(kind, &o), o);
                }
            }
        }
        out.push(live);
    }
    Ok(out)
}

/// The clusters of a fleet with their steps, as the rollout sees them;
/// the statuses are refreshed as the operator writes them.
pub struct Skeleton {
    members: Vec<Member>,
    /// Each member's namespace, for looking its status up.
    namespaces: Vec<String>,
    rollout: Option<Rollout>,
    targets: Vec<String>,
    clock: Clock,
}

/// The clock `--rollout-timeout` is judged by: this process's monotonic
/// clock, counted in seconds from the wall clock when it started. A step
/// this process saw begin (a server timestamp it first saw while
/// following) is timed from that moment, so a management cluster whose
/// clock is off does not make it late or early; only what was under way
/// before the apply looked is placed by the server's timestamp.
pub struct Clock {
    origin: std::time::Instant,
    /// The wall clock at `origin`, seconds since the epoch.
    wall: i64,
    /// Each point in time seen, by (target, cluster, what it is of, the
    /// server's timestamp), and where it was placed on this clock.
    placed: BTreeMap<(usize, String, String, i64), i64>,
    /// Whether times first seen from now on began while this process looked.
    following: bool,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
            wall: k8s_openapi::jiff::Timestamp::now().as_second(),
            placed: BTreeMap::new(),
            following: false,
        }
    }

    /// Now, on this clock.
    fn now(&self) -> i64 {
        self.wall.saturating_add(i64::try_from(self.origin.elapsed().as_secs()).unwrap_or(i64::MAX))
    }

    /// Puts the times of `status` (cluster `cluster` on `target`) on this clock.
    fn place(&mut self, target: usize, cluster: &str, status: &mut ClusterStatus) {
        let now = self.now();
        let following = self.following;
        let placed = &mut self.placed;
        status.retime(&mut |what, server| {
            *placed.entry((target, cluster.to_string(), what.to_string(), server)).or_insert(if following {
                now
            } else {
                server
            })
        });
    }
}

/// A rollout being advanced: the skeleton and where it stands now.
pub struct Run {
    pub skeleton: Skeleton,
    pub standing: Standing,
}

/// The members of the planned fleet with statuses from `live`.
fn skeleton(planned: &FleetPlanned, live: &[LiveStatus]) -> Skeleton {
    let mut out = Skeleton {
        members: Vec::new(),
        namespaces: Vec::new(),
        rollout: None,
        targets: Vec::new(),
        clock: Clock::new(),
    };
    let empty = LiveStatus::new();
    for (i, part) in planned.parts.iter().enumerate() {
        out.targets.push(part.plan.target.clone());
        let Some(resolved) = part.compiled.resolved.as_ref() else { continue };
        let fleet = &resolved.fleet;
        out.rollout = out.rollout.take().or_else(|| fleet.rollout.clone());
        let live = live.get(i).unwrap_or(&empty);
        let mut steps_of: BTreeMap<&str, Vec<Step>> = BTreeMap::new();
        for c in &part.plan.changes {
            let Some(cluster) = c.cluster.as_deref() else { continue };
            let live_hc = live.contains_key(&(Kind::HostedCluster, c.id.namespace.clone(), cluster.to_string()));
            if let Some(s) = step(c, part, live_hc) {
                steps_of.entry(cluster).or_default().push(s);
            }
        }
        // A limited apply (`--cluster`) plans some clusters; the others
        // keep their place in the waves: a release the configuration asks
        // for and the live object lacks is their step, never made here.
        let planned: BTreeSet<&ObjectId> = part.plan.changes.iter().map(|c| &c.id).collect();
        let mut outside: BTreeSet<&str> = BTreeSet::new();
        for o in &part.compiled.objects {
            if !matches!(o.id.kind, Kind::HostedCluster | Kind::NodePool) || planned.contains(&o.id) {
                continue;
            }
            let (Some(cluster), Some(have)) =
                (o.cluster.as_deref(), live.get(&(o.id.kind, o.id.namespace.clone(), o.id.name.clone())))
            else {
                continue;
            };
            let release = |v: &Value| v.pointer("/spec/release/image").and_then(Value::as_str).map(str::to_string);
            let want = release(o.body());
            if want.is_none() || want == release(have) {
                continue;
            }
            let kind = match o.id.kind {
                Kind::HostedCluster => StepKind::ControlPlane,
                _ => StepKind::Pool { release: want.unwrap_or_default(), nodes: None, waved: true },
            };
            steps_of.entry(cluster).or_default().push(Step { id: o.id.clone(), kind });
            outside.insert(cluster);
        }
        for cluster in &fleet.clusters {
            out.members.push(Member {
                cluster: cluster.name.value.clone(),
                target: i,
                labels: cluster.labels.clone(),
                release: cluster.release.value.as_str().to_string(),
                status: None,
                steps: steps_of.remove(cluster.name.value.as_str()).unwrap_or_default(),
                outside: outside.contains(cluster.name.value.as_str()),
            });
            out.namespaces.push(cluster.namespace.value.clone());
        }
    }
    out.refresh(live, &pool_index(live), None);
    out
}

impl Skeleton {
    /// Statuses from `live` (per target), of the clusters in `only` (every
    /// cluster when `None`): a watch event changes one cluster, and a
    /// 200-cluster fleet's statuses are not read again for each.
    fn refresh(&mut self, live: &[LiveStatus], pools: &PoolIndex, only: Option<&BTreeSet<(usize, String, String)>>) {
        for (m, ns) in self.members.iter_mut().zip(&self.namespaces) {
            let me = (m.target, ns.clone(), m.cluster.clone());
            if only.is_some_and(|o| !o.contains(&me)) {
                continue;
            }
            let Some(live) = live.get(m.target) else {
                m.status = None;
                continue;
            };
            m.status = live.get(&(Kind::HostedCluster, ns.clone(), m.cluster.clone())).map(|hc| {
                let mine: Vec<&Value> = pools
                    .get(&me)
                    .into_iter()
                    .flatten()
                    .filter_map(|name| live.get(&(Kind::NodePool, ns.clone(), name.clone())))
                    .collect();
                let mut status = ClusterStatus::from_live(hc, &mine);
                self.clock.place(m.target, &m.cluster, &mut status);
                status
            });
        }
    }

    /// Keeps only the steps still to make (those held back by the last
    /// pass), and those outside a limited apply (they keep their place).
    fn pending(&mut self, held: &BTreeSet<(usize, ObjectId)>) {
        for m in self.members.iter_mut().filter(|m| !m.outside) {
            let target = m.target;
            m.steps.retain(|s| held.contains(&(target, s.id.clone())));
        }
    }

    /// The steps this apply may make, per target.
    fn own_steps(&self) -> impl Iterator<Item = (usize, ObjectId)> + '_ {
        self.members.iter().filter(|m| !m.outside).flat_map(|m| m.steps.iter().map(move |s| (m.target, s.id.clone())))
    }

    /// Whether a cluster this apply plans is under way or starts now.
    fn own_busy(&self, now: &Standing) -> bool {
        let several = self.targets.len() > 1;
        now.waves.iter().flat_map(|w| &w.clusters).any(|c| {
            c.phase != Phase::Waiting
                && self.members.iter().any(|m| {
                    !m.outside
                        && m.cluster == c.cluster
                        && (!several || c.target.as_ref() == self.targets.get(m.target))
                })
        })
    }

    fn evaluate(&self, flags: &RolloutFlags) -> Result<Standing, String> {
        check_until(self.rollout.as_ref(), flags)?;
        let opts = Options {
            now: self.clock.now(),
            timeout_secs: i64::try_from(flags.timeout.as_secs()).unwrap_or(i64::MAX),
            until: flags.until.as_deref(),
            targets: &self.targets,
        };
        Ok(standing(self.rollout.as_ref(), &self.members, &opts))
    }
}

/// `--until-wave` names a wave of the fleet's `rollout` block.
fn check_until(rollout: Option<&Rollout>, flags: &RolloutFlags) -> Result<(), String> {
    let Some(until) = &flags.until else { return Ok(()) };
    let waves: Vec<&str> = rollout.iter().flat_map(|r| r.waves.iter().map(|w| w.name.value.as_str())).collect();
    if waves.contains(&until.as_str()) {
        return Ok(());
    }
    Err(if waves.is_empty() {
        format!("--until-wave {until}: the fleet has no `rollout` block")
    } else {
        format!("--until-wave {until}: there is no such wave; the waves are {}", waves.join(", "))
    })
}

/// Checks `--until-wave` against the planned fleet before anything is
/// shown: a mistyped wave is said first, not after the whole plan.
pub fn check_flags(planned: &FleetPlanned, flags: &RolloutFlags) -> Result<(), String> {
    let rollout = planned.parts.iter().find_map(|p| p.compiled.resolved.as_ref()?.fleet.rollout.as_ref());
    check_until(rollout, flags)
}

/// The rollout's standing for the planned fleet, from the status the
/// operator wrote (see [`fetch`]).
pub fn read(planned: &FleetPlanned, flags: &RolloutFlags) -> Result<Run, String> {
    let live = fetch(planned)?;
    let skeleton = skeleton(planned, &live);
    let standing = skeleton.evaluate(flags)?;
    Ok(Run { skeleton, standing })
}

/// How following a rollout ended.
pub enum Followed {
    /// Held changes may go now: the standing that releases them.
    Step(Standing),
    /// Nothing is left to start (done, or stopped by `--until-wave`).
    Done(Standing),
    Halted(Standing),
    TimedOut(Standing),
    /// SIGINT or SIGTERM: nothing more is started.
    Interrupted(crate::interrupt::Stop),
}

/// The fleet's HostedClusters and NodePools as the watches report them
/// (one WATCH per kind per management cluster, by the fleet's label, kept
/// open across the passes of a rollout and re-established on expiry).
pub struct Watches {
    rx: std::sync::mpsc::Receiver<(usize, Seen)>,
    live: Vec<LiveStatus>,
    /// The (target, kind) pairs listed at least once.
    listed: BTreeSet<(usize, Kind)>,
    /// The targets watched (the kube ones).
    watched: Vec<usize>,
    /// Objects this apply wrote that the watches have not yet shown
    /// written, with their generation and uid before: until they have,
    /// the standing would be judged on a view without this apply's own
    /// writes.
    unseen: BTreeMap<(usize, Kind, String, String), (i64, String)>,
    /// When `unseen` last gained an entry.
    since: std::time::Instant,
    pools: PoolIndex,
    /// The clusters whose objects changed since the standing was last
    /// judged (`None`: all of them, after a LIST).
    dirty: Option<BTreeSet<(usize, String, String)>>,
    /// The targets' names, for what is said about their watches.
    targets: Vec<String>,
    /// The targets whose watch is failing: their view may be stale, so
    /// the standing is not judged until it works again.
    failing: BTreeMap<usize, (WatchFailure, std::time::Instant)>,
    /// A watch that gave up: the rollout cannot be followed.
    lost: Option<(usize, WatchFailure)>,
    /// Lines about the watches not yet printed.
    said: Vec<String>,
}

/// How long the watches may lag behind this apply's own writes before the
/// standing is judged without them (a write that changed nothing is never
/// seen: its generation does not move).
const UNSEEN_LIMIT: Duration = Duration::from_secs(5);

/// How long events that follow one another are gathered before the
/// standing is judged again.
const COALESCE: Duration = Duration::from_millis(20);

/// How often the standing is judged again without an event: a cluster
/// that is stuck says nothing, and `--rollout-timeout` must still fire.
const REJUDGE: Duration = Duration::from_secs(1);

fn generation_and_uid(o: &Value) -> (i64, String) {
    (
        o.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0),
        o.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string(),
    )
}

/// Runs `f` while watches follow every kube target of `planned`; they
/// stop when it returns.
pub fn watching<R>(planned: &FleetPlanned, deadline: std::time::Instant, f: impl FnOnce(&mut Watches) -> R) -> R {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Seen)>();
    let watched: Vec<usize> =
        planned.parts.iter().enumerate().filter(|(_, p)| matches!(p.target, Opened::Kube(_))).map(|(i, _)| i).collect();
    std::thread::scope(|scope| {
        for &i in &watched {
            let part = &planned.parts[i];
            let (Opened::Kube(k), Some(selector)) = (&part.target, selector(part)) else { continue };
            let (tx, stop) = (tx.clone(), &stop);
            scope.spawn(move || {
                // A watch that gives up says why with `Seen::Lost`.
                let _ = k.follow(&[Kind::HostedCluster, Kind::NodePool], &selector, deadline, stop, &mut |seen| {
                    let _ = tx.send((i, seen));
                });
            });
        }
        drop(tx);
        let mut watches = Watches {
            rx,
            live: vec![LiveStatus::new(); planned.parts.len()],
            listed: BTreeSet::new(),
            watched,
            unseen: BTreeMap::new(),
            since: std::time::Instant::now(),
            pools: PoolIndex::new(),
            dirty: None,
            targets: planned.parts.iter().map(|p| p.plan.target.clone()).collect(),
            failing: BTreeMap::new(),
            lost: None,
            said: Vec::new(),
        };
        let result = f(&mut watches);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        result
    })
}

impl Watches {
    /// The live HostedClusters and NodePools per target, as last reported.
    pub fn live(&self) -> &[LiveStatus] {
        &self.live
    }

    /// Records the objects `pass` wrote: the standing waits for the
    /// watches to show them (see `unseen`).
    pub fn expect(&mut self, pass: &FleetPlanned) {
        for (i, part) in pass.parts.iter().enumerate() {
            if !self.watched.contains(&i) {
                continue;
            }
            for c in part.plan.changes.iter().filter(|c| c.action != Action::Delete) {
                let k = (c.id.kind, c.id.namespace.clone(), c.id.name.clone());
                let before = self.live.get(i).and_then(|l| l.get(&k)).map(generation_and_uid).unwrap_or_default();
                self.unseen.insert((i, k.0, k.1, k.2), before);
                self.since = std::time::Instant::now();
            }
        }
    }

    fn take(&mut self, (i, seen): (usize, Seen)) {
        let target = self.targets.get(i).cloned().unwrap_or_default();
        let seen = match seen {
            Seen::Failing(failure) => {
                self.said.push(format!(
                    "warning: {target}: {failure}; retrying, the rollout is judged again once the watch works"
                ));
                self.failing.insert(i, (failure, std::time::Instant::now()));
                return;
            }
            Seen::Resumed => {
                if self.failing.remove(&i).is_some() {
                    self.said.push(format!("{target}: the watch works again"));
                }
                return;
            }
            Seen::Lost(failure) => {
                self.failing.remove(&i);
                self.lost.get_or_insert((i, failure));
                return;
            }
            seen => seen,
        };
        let Some(live) = self.live.get_mut(i) else { return };
        let unseen = &mut self.unseen;
        let mut saw = |kind: Kind, o: &Value| {
            let k = key(kind, o);
            let full = (i, k.0, k.1, k.2);
            if let Some((generation, uid)) = unseen.get(&full) {
                let (g, u) = generation_and_uid(o);
                if g > *generation || u != *uid {
                    unseen.remove(&full);
                }
            }
        };
        let touched = |kind: Kind, o: &Value, dirty: &mut Option<BTreeSet<_>>, pools: &mut PoolIndex| {
            let at = owner(i, kind, o);
            if kind == Kind::NodePool {
                let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                pools.entry(at.clone()).or_default().insert(name.to_string());
            }
            if let Some(d) = dirty {
                d.insert(at);
            }
        };
        match seen {
            Seen::Listed(kind, items) => {
                self.listed.insert((i, kind));
                self.dirty = None;
                live.retain(|(k, _, _), _| *k != kind);
                if kind == Kind::NodePool {
                    self.pools.retain(|(t, _, _), _| *t != i);
                }
                for o in items {
                    saw(kind, &o);
                    touched(kind, &o, &mut self.dirty, &mut self.pools);
                    live.insert(key(kind, &o), o);
                }
            }
            Seen::Changed(kind, o) => {
                saw(kind, &o);
                touched(kind, &o, &mut self.dirty, &mut self.pools);
                live.insert(key(kind, &o), o);
            }
            Seen::Failing(_) | Seen::Resumed | Seen::Lost(_) => {}
            Seen::Deleted(kind, o) => {
                let at = owner(i, kind, &o);
                if kind == Kind::NodePool
                    && let Some(names) = self.pools.get_mut(&at)
                {
                    names.remove(o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default());
                }
                if let Some(d) = &mut self.dirty {
                    d.insert(at);
                }
                live.remove(&key(kind, &o));
            }
        }
    }

    /// Why the rollout cannot be followed, if a watch gave up.
    fn lost(&self) -> Option<String> {
        let (i, failure) = self.lost.as_ref()?;
        Some(format!("cannot follow the rollout on {}: {failure}", self.targets.get(*i).map_or("", String::as_str)))
    }

    /// The end at `--timeout`: the watch's failure when one is what kept
    /// the rollout from being seen to finish.
    fn timed_out(&self, run: &Run) -> Result<Followed, String> {
        match self.failing.iter().next() {
            Some((i, (failure, since))) => Err(format!(
                "cannot follow the rollout on {}: {}",
                self.targets.get(*i).map_or("", String::as_str),
                WatchFailure { failing_for: since.elapsed(), ..failure.clone() }
            )),
            None => Ok(Followed::TimedOut(run.standing.clone())),
        }
    }

    /// Follows the rollout after a pass until a change it held back may
    /// go, nothing is left to start, a cluster fails, a signal, or
    /// `deadline`; renews the fleet's locks meanwhile. Shows the standing
    /// as it changes (`cli::progress`).
    pub fn next(
        &mut self,
        run: &mut Run,
        flags: &RolloutFlags,
        deadline: std::time::Instant,
        locks: &mut super::driver::Locks<'_>,
        style: super::printer::Style,
    ) -> Result<Followed, String> {
        use std::sync::mpsc::RecvTimeoutError;
        let held = run.standing.held.clone();
        run.skeleton.pending(&held);
        // Bars on a terminal, timestamped lines otherwise; the bars are
        // cleared when this returns, before a pass prints what it writes.
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let mut progress = super::progress::RolloutProgress::new(style, terminal, &run.standing);
        // From here on, a step first seen began while this apply looked.
        run.skeleton.clock.following = true;
        // What the watches already hold is judged at once.
        let mut changed = true;
        let mut judged = std::time::Instant::now();
        loop {
            if let Some(stop) = crate::interrupt::requested() {
                return Ok(Followed::Interrupted(stop));
            }
            locks.check().map_err(|e| format!("the rollout stopped: {e}"))?;
            for line in self.said.drain(..) {
                progress.warn(&line);
            }
            if let Some(lost) = self.lost() {
                return Err(lost);
            }
            // A target whose watch fails is not judged on what it last saw.
            let complete = self.failing.is_empty()
                && self.watched.iter().all(|i| {
                    self.listed.contains(&(*i, Kind::HostedCluster)) && self.listed.contains(&(*i, Kind::NodePool))
                });
            if !self.unseen.is_empty() && self.since.elapsed() >= UNSEEN_LIMIT {
                self.unseen.clear();
                changed = true;
            }
            if judged.elapsed() >= REJUDGE {
                changed = true;
            }
            if changed && complete && self.unseen.is_empty() {
                judged = std::time::Instant::now();
                run.skeleton.refresh(&self.live, &self.pools, self.dirty.as_ref());
                self.dirty = Some(BTreeSet::new());
                let now = run.skeleton.evaluate(flags)?;
                progress.update(&now);
                if !now.halted.is_empty() {
                    return Ok(Followed::Halted(now));
                }
                if run.skeleton.own_steps().any(|p| !now.held.contains(&p)) {
                    return Ok(Followed::Step(now));
                }
                // Nothing of this apply's is under way or may start (what
                // waits, waits for `--until-wave` to be lifted, or for the
                // clusters outside `--cluster`).
                if !now.is_active() || now.stalled() || !run.skeleton.own_busy(&now) {
                    return Ok(Followed::Done(now));
                }
                run.standing = now;
            }
            if self.unseen.is_empty() {
                changed = false;
            }
            if std::time::Instant::now() >= deadline {
                return self.timed_out(run);
            }
            match self.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(first) => {
                    self.take(first);
                    // What follows closely is judged with it: the operator
                    // writes a wave's statuses in bursts.
                    let until = std::time::Instant::now() + COALESCE;
                    loop {
                        let left = until.saturating_duration_since(std::time::Instant::now());
                        match self.rx.recv_timeout(left) {
                            Ok(more) if !left.is_zero() => self.take(more),
                            Ok(more) => {
                                self.take(more);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    changed = true;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if let Some(lost) = self.lost() {
                        return Err(lost);
                    }
                    return self.timed_out(run);
                }
            }
        }
    }
}

/// The steps `now` releases (held before, not any more), per target.
pub fn released(run: &Run, now: &Standing) -> BTreeSet<(usize, ObjectId)> {
    run.skeleton.own_steps().filter(|p| !now.held.contains(p)).collect()
}

/// The changes a first pass held back, per target, for the later passes
/// of the same apply: they are made as that plan showed them.
pub fn held_changes(planned: &FleetPlanned, held: &BTreeSet<(usize, ObjectId)>) -> Vec<Vec<Change>> {
    planned
        .parts
        .iter()
        .enumerate()
        .map(|(i, p)| p.plan.changes.iter().filter(|c| held.contains(&(i, c.id.clone()))).cloned().collect())
        .collect()
}

/// A later pass of a rollout: `base` (what the first pass applied, its
/// inputs compiled once) with, as its changes, the held changes `released`
/// now. A change to an object the watches no longer see is left out, with
/// a warning: it was deleted meanwhile, and the next apply plans it again.
pub fn step_plan(
    base: &FleetPlanned,
    held: &[Vec<Change>],
    released: &BTreeSet<(usize, ObjectId)>,
    live: &[LiveStatus],
) -> FleetPlanned {
    let empty = LiveStatus::new();
    let parts = base
        .parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let live = live.get(i).unwrap_or(&empty);
            let watched = matches!(part.target, Opened::Kube(_));
            let changes: Vec<Change> = held
                .get(i)
                .into_iter()
                .flatten()
                .filter(|c| released.contains(&(i, c.id.clone())))
                .filter(|c| {
                    let gone = watched
                        && c.action != Action::Create
                        && !live.contains_key(&(c.id.kind, c.id.namespace.clone(), c.id.name.clone()));
                    // A NodePool step of a cluster deleted meanwhile: the
                    // pool is on its way out with it.
                    let cluster_gone = watched
                        && c.id.kind == Kind::NodePool
                        && c.cluster.as_ref().is_some_and(|cluster| {
                            !live.contains_key(&(Kind::HostedCluster, c.id.namespace.clone(), cluster.clone()))
                        });
                    if gone {
                        eprintln!("warning: {} was deleted during the rollout; it is left for the next apply", c.id);
                    } else if cluster_gone {
                        eprintln!(
                            "warning: cluster {} was deleted during the rollout: {} is not written; the next plan creates the cluster again",
                            c.cluster.as_deref().unwrap_or_default(),
                            c.id
                        );
                    }
                    !gone && !cluster_gone
                })
                .cloned()
                .collect();
            let mut plan = part.plan.clone();
            plan.changes = changes;
            plan.summary = recount(&plan.changes);
            Planned { plan, ..part.clone() }
        })
        .collect();
    FleetPlanned { parts }
}

/// The part of a rollout pass that must be judged before it is written:
/// the changes of each cluster's step that has several writes (its
/// NodePools), per target. A control plane step is one write.
pub fn steps_of_several_writes(pass: &FleetPlanned) -> FleetPlanned {
    // A step: a cluster's NodePools, or one object.
    let step_of = |c: &Change| match c.id.kind {
        Kind::NodePool => (Kind::NodePool, c.id.namespace.clone(), c.cluster.clone()),
        kind => (kind, c.id.namespace.clone(), Some(c.id.name.clone())),
    };
    let mut single = BTreeSet::new();
    for (i, part) in pass.parts.iter().enumerate() {
        let mut writes: BTreeMap<_, usize> = BTreeMap::new();
        for c in &part.plan.changes {
            *writes.entry(step_of(c)).or_default() += 1;
        }
        let alone = part.plan.changes.iter().filter(|c| writes[&step_of(c)] == 1);
        single.extend(alone.map(|c| (i, c.id.clone())));
    }
    restrict(pass.clone(), &single)
}

fn recount(changes: &[Change]) -> Summary {
    let count = |a: Action| changes.iter().filter(|c| c.action == a).count();
    Summary {
        add: count(Action::Create),
        change: count(Action::Update),
        replace: count(Action::Replace),
        destroy: count(Action::Delete),
        unchanged: count(Action::NoOp),
    }
}

/// The rollout step a change is, if any.
fn step(c: &Change, part: &Planned, cluster_live: bool) -> Option<Step> {
    let desired_release = || {
        part.compiled
            .objects
            .iter()
            .find(|o| o.id == c.id)
            .and_then(|o| o.body().pointer("/spec/release/image").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default()
    };
    match c.id.kind {
        Kind::HostedCluster if governed(c) => Some(Step { id: c.id.clone(), kind: StepKind::ControlPlane }),
        Kind::NodePool if governed(c) => Some(Step {
            id: c.id.clone(),
            kind: StepKind::Pool { release: desired_release(), nodes: c.rolls_nodes, waved: true },
        }),
        Kind::NodePool if c.action == Action::Create && cluster_live => Some(Step {
            id: c.id.clone(),
            kind: StepKind::Pool { release: desired_release(), nodes: None, waved: false },
        }),
        _ => None,
    }
}

/// The plans without the changes that wait (their summaries recounted).
pub fn restrict(mut planned: FleetPlanned, held: &BTreeSet<(usize, ObjectId)>) -> FleetPlanned {
    if held.is_empty() {
        return planned;
    }
    for (i, part) in planned.parts.iter_mut().enumerate() {
        part.plan.changes.retain(|c| !held.contains(&(i, c.id.clone())));
        part.plan.summary = recount(&part.plan.changes);
    }
    planned
}

/// The rollout's standing when any change is governed (see [`needed`]).
pub fn standing_of(planned: &FleetPlanned, flags: &RolloutFlags) -> Result<Option<Run>, String> {
    if !needed(planned) {
        return Ok(None);
    }
    read(planned, flags).map(Some)
}

/// After an apply pass: the rollout's summary line, why it halted (exit
/// code 1), else `code`.
pub fn finish(standing: Option<&Standing>, code: u8, style: super::printer::Style) -> u8 {
    let Some(s) = standing.filter(|s| s.is_active()) else { return code };
    if !style.quiet {
        super::output::say(&s.after_written().summary());
    }
    if s.halted.is_empty() {
        return code;
    }
    report_halt(s);
    super::exit::ERROR
}

/// When every change of the plan waits for the rollout: says that
/// nothing was applied (the standing was shown with the plan), and why
/// the rollout halted (exit 1), else `code`.
pub fn nothing_applied(waiting: usize, standing: &Standing, code: u8, style: super::printer::Style) -> u8 {
    if !style.quiet {
        eprintln!(
            "Nothing was applied: {} wait for the rollout.",
            crate::plan::names::plural(waiting as u64, "change")
        );
    }
    if standing.halted.is_empty() {
        return code;
    }
    report_halt(standing);
    super::exit::ERROR
}

/// Says why the rollout halted, per failed cluster.
pub fn report_halt(s: &Standing) {
    for h in &s.halted {
        eprintln!(
            "error[{}]: the rollout halted: cluster {} failed: {}: {}",
            crate::diagnostic::Code::RolloutHalted.as_str(),
            h.cluster,
            h.reason,
            if h.message.is_empty() { "(no message)" } else { &h.message }
        );
    }
    if !s.halted.is_empty() {
        eprintln!(
            "  help: no further cluster starts until this is fixed; then run apply again: it continues from the live state"
        );
    }
}

/// The plan as `format` prints it, with the rollout (when a change is
/// governed): after the text and markdown plans, and under `rollout` in
/// the JSON plan.
pub fn with_rollout(text: String, format: crate::cli::args::PlanFormat, standing: Option<&Standing>) -> String {
    use crate::cli::args::PlanFormat;
    let Some(s) = standing.filter(|s| s.is_active()) else { return text };
    match format {
        PlanFormat::Text => text + &s.text(),
        PlanFormat::Markdown => text + &s.markdown(),
        PlanFormat::Json => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(mut map)) => {
                map.insert("rollout".to_string(), serde_json::to_value(s).unwrap_or_default());
                serde_json::to_string_pretty(&Value::Object(map)).unwrap_or(text) + "\n"
            }
            _ => text,
        },
        PlanFormat::Diff => text,
    }
}

/// The rollout's standing from statuses already read (one entry per
/// target): `status` reads them once and shows health from the same read.
pub fn read_from(planned: &FleetPlanned, live: &[LiveStatus], flags: &RolloutFlags) -> Result<Run, String> {
    let skeleton = skeleton(planned, live);
    let standing = skeleton.evaluate(flags)?;
    Ok(Run { skeleton, standing })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(started: i64) -> ClusterStatus {
        ClusterStatus {
            release: "r:4.20.1".into(),
            head: Some(crate::plan::rollout::Head {
                image: "r:4.20.1".into(),
                completed: false,
                started: Some(started),
            }),
            ..ClusterStatus::default()
        }
    }

    fn started(s: &ClusterStatus) -> Option<i64> {
        s.head.as_ref().and_then(|h| h.started)
    }

    #[test]
    fn a_step_seen_starting_is_timed_on_this_clock_whatever_the_servers_says() {
        let mut clock = Clock::new();
        // Under way before the apply looked: placed by the server's time.
        let mut before = status(clock.wall - 600);
        clock.place(0, "a", &mut before);
        assert_eq!(started(&before), Some(clock.wall - 600));
        // Seen starting while following, on a server whose clock is an
        // hour behind: it started now, not an hour ago.
        clock.following = true;
        let mut skewed = status(clock.wall - 3_600);
        clock.place(0, "b", &mut skewed);
        let now = clock.now();
        assert!(started(&skewed).is_some_and(|t| now - t <= 1), "{:?} vs {now}", started(&skewed));
        // Seen again later: the same place, not a new start.
        let mut again = status(clock.wall - 3_600);
        clock.place(0, "b", &mut again);
        assert_eq!(started(&again), started(&skewed));
        // What was placed before following keeps its place.
        let mut before_again = status(clock.wall - 600);
        clock.place(0, "a", &mut before_again);
        assert_eq!(started(&before_again), Some(clock.wall - 600));
    }
}
