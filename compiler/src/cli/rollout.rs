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
use crate::live::kube::Seen;
use crate::object::{Kind, ObjectId};
use crate::plan::impact::RELEASE_PATH;
use crate::plan::rollout::{ClusterStatus, Member, Options, Standing, Step, StepKind, standing};
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
}

/// A rollout being advanced: the skeleton and where it stands now.
pub struct Run {
    pub skeleton: Skeleton,
    pub standing: Standing,
}

/// The members of the planned fleet with statuses from `live`.
fn skeleton(planned: &FleetPlanned, live: &[LiveStatus]) -> Skeleton {
    let mut out = Skeleton { members: Vec::new(), namespaces: Vec::new(), rollout: None, targets: Vec::new() };
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
        for cluster in &fleet.clusters {
            out.members.push(Member {
                cluster: cluster.name.value.clone(),
                target: i,
                labels: cluster.labels.clone(),
                release: cluster.release.value.as_str().to_string(),
                status: None,
                steps: steps_of.remove(cluster.name.value.as_str()).unwrap_or_default(),
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
                ClusterStatus::from_live(hc, &mine)
            });
        }
    }

    /// Keeps only the steps still to make (those held back by the last pass).
    fn pending(&mut self, held: &BTreeSet<(usize, ObjectId)>) {
        for m in &mut self.members {
            let target = m.target;
            m.steps.retain(|s| held.contains(&(target, s.id.clone())));
        }
    }

    fn evaluate(&self, flags: &RolloutFlags) -> Result<Standing, String> {
        if let Some(until) = &flags.until {
            let waves: Vec<&str> =
                self.rollout.iter().flat_map(|r| r.waves.iter().map(|w| w.name.value.as_str())).collect();
            if !waves.contains(&until.as_str()) {
                return Err(if waves.is_empty() {
                    format!("--until-wave {until}: the fleet has no `rollout` block")
                } else {
                    format!("--until-wave {until}: there is no such wave; the waves are {}", waves.join(", "))
                });
            }
        }
        let opts = Options {
            now: k8s_openapi::jiff::Timestamp::now().as_second(),
            timeout_secs: i64::try_from(flags.timeout.as_secs()).unwrap_or(i64::MAX),
            until: flags.until.as_deref(),
            targets: &self.targets,
        };
        Ok(standing(self.rollout.as_ref(), &self.members, &opts))
    }
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
}

/// How long the watches may lag behind this apply's own writes before the
/// standing is judged without them (a write that changed nothing is never
/// seen: its generation does not move).
const UNSEEN_LIMIT: Duration = Duration::from_secs(5);

/// How long events that follow one another are gathered before the
/// standing is judged again.
const COALESCE: Duration = Duration::from_millis(20);

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
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut progress = super::progress::RolloutProgress::new(style, terminal, &run.standing);
        // What the watches already hold is judged at once.
        let mut changed = true;
        loop {
            if let Some(stop) = crate::interrupt::requested() {
                return Ok(Followed::Interrupted(stop));
            }
            locks.check().map_err(|e| format!("the rollout stopped: {e}"))?;
            let complete = self.watched.iter().all(|i| {
                self.listed.contains(&(*i, Kind::HostedCluster)) && self.listed.contains(&(*i, Kind::NodePool))
            });
            if !self.unseen.is_empty() && self.since.elapsed() >= UNSEEN_LIMIT {
                self.unseen.clear();
                changed = true;
            }
            if changed && complete && self.unseen.is_empty() {
                run.skeleton.refresh(&self.live, &self.pools, self.dirty.as_ref());
                self.dirty = Some(BTreeSet::new());
                let now = run.skeleton.evaluate(flags)?;
                progress.update(&now);
                if !now.halted.is_empty() {
                    return Ok(Followed::Halted(now));
                }
                let pending =
                    run.skeleton.members.iter().flat_map(|m| m.steps.iter().map(move |s| (m.target, s.id.clone())));
                if pending.into_iter().any(|p| !now.held.contains(&p)) {
                    return Ok(Followed::Step(now));
                }
                if !now.is_active() || now.stalled() {
                    return Ok(Followed::Done(now));
                }
                run.standing = now;
            }
            if self.unseen.is_empty() {
                changed = false;
            }
            if std::time::Instant::now() >= deadline {
                return Ok(Followed::TimedOut(run.standing.clone()));
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
                Err(RecvTimeoutError::Disconnected) => return Ok(Followed::TimedOut(run.standing.clone())),
            }
        }
    }
}

/// The steps `now` releases (held before, not any more), per target.
pub fn released(run: &Run, now: &Standing) -> BTreeSet<(usize, ObjectId)> {
    run.skeleton
        .members
        .iter()
        .flat_map(|m| m.steps.iter().map(move |s| (m.target, s.id.clone())))
        .filter(|p| !now.held.contains(p))
        .collect()
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
                    if gone {
                        eprintln!("warning: {} was deleted during the rollout; it is left for the next apply", c.id);
                    }
                    !gone
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
        eprintln!("{}", s.summary());
    }
    if s.halted.is_empty() {
        return code;
    }
    report_halt(s);
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
