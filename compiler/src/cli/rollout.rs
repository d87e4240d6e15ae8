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
    out.refresh(live);
    out
}

impl Skeleton {
    /// Statuses from `live` (per target).
    fn refresh(&mut self, live: &[LiveStatus]) {
        let mut pools: Vec<BTreeMap<(&str, &str), Vec<&Value>>> = vec![BTreeMap::new(); live.len()];
        for (i, live) in live.iter().enumerate() {
            for ((kind, ns, _), v) in live {
                if *kind == Kind::NodePool {
                    let cluster = v.pointer("/spec/clusterName").and_then(Value::as_str).unwrap_or_default();
                    pools[i].entry((ns.as_str(), cluster)).or_default().push(v);
                }
            }
        }
        for (m, ns) in self.members.iter_mut().zip(&self.namespaces) {
            m.status = live
                .get(m.target)
                .and_then(|l| l.get(&(Kind::HostedCluster, ns.clone(), m.cluster.clone())))
                .map(|hc| {
                    let mine = pools.get(m.target).and_then(|p| p.get(&(ns.as_str(), m.cluster.as_str())));
                    ClusterStatus::from_live(hc, mine.map_or(&[][..], Vec::as_slice))
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
    /// A held change may go now: run the next pass.
    Step,
    /// Nothing is left to start (done, or stopped by `--until-wave`).
    Done(Standing),
    Halted(Standing),
    TimedOut(Standing),
}

/// Follows the fleet's HostedClusters and NodePools by watches (one per
/// kind per management cluster, by the fleet's label) after a pass, until
/// a change the pass held back may go, nothing is left to start, a
/// cluster fails, or `deadline`. Prints the standing, timestamped, each
/// time it changes.
pub fn follow(
    planned: &FleetPlanned,
    mut run: Run,
    flags: &RolloutFlags,
    deadline: std::time::Instant,
    style: super::printer::Style,
) -> Result<Followed, String> {
    let held = run.standing.held.clone();
    run.skeleton.pending(&held);
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
        let result = watch_loop(&rx, &mut run, &watched, planned.parts.len(), flags, deadline, style);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        result
    })
}

fn watch_loop(
    rx: &std::sync::mpsc::Receiver<(usize, Seen)>,
    run: &mut Run,
    watched: &[usize],
    targets: usize,
    flags: &RolloutFlags,
    deadline: std::time::Instant,
    style: super::printer::Style,
) -> Result<Followed, String> {
    use std::sync::mpsc::RecvTimeoutError;
    let mut live: Vec<LiveStatus> = vec![LiveStatus::new(); targets];
    let mut listed: BTreeSet<(usize, Kind)> = BTreeSet::new();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut progress = super::progress::RolloutProgress::new(style, terminal, &run.standing);
    loop {
        let mut changed = false;
        let mut take = |(i, seen): (usize, Seen)| {
            changed = true;
            match seen {
                Seen::Listed(kind, items) => {
                    listed.insert((i, kind));
                    live[i].retain(|(k, _, _), _| *k != kind);
                    for o in items {
                        live[i].insert(key(kind, &o), o);
                    }
                }
                Seen::Changed(kind, o) => {
                    live[i].insert(key(kind, &o), o);
                }
                Seen::Deleted(kind, o) => {
                    live[i].remove(&key(kind, &o));
                }
            }
        };
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(first) => {
                take(first);
                // Everything already waiting, at once.
                while let Ok(more) = rx.try_recv() {
                    take(more);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(Followed::TimedOut(run.standing.clone())),
        }
        if std::time::Instant::now() >= deadline {
            return Ok(Followed::TimedOut(run.standing.clone()));
        }
        let complete = watched
            .iter()
            .all(|i| listed.contains(&(*i, Kind::HostedCluster)) && listed.contains(&(*i, Kind::NodePool)));
        if !changed || !complete {
            continue;
        }
        run.skeleton.refresh(&live);
        let now = run.skeleton.evaluate(flags)?;
        progress.update(&now);
        if !now.halted.is_empty() {
            return Ok(Followed::Halted(now));
        }
        let pending = run.skeleton.members.iter().flat_map(|m| m.steps.iter().map(move |s| (m.target, s.id.clone())));
        if pending.into_iter().any(|p| !now.held.contains(&p)) {
            return Ok(Followed::Step);
        }
        if !now.is_active() || now.stalled() {
            return Ok(Followed::Done(now));
        }
        run.standing = now;
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
        let count = |a: Action| part.plan.changes.iter().filter(|c| c.action == a).count();
        part.plan.summary = Summary {
            add: count(Action::Create),
            change: count(Action::Update),
            replace: count(Action::Replace),
            destroy: count(Action::Delete),
            unchanged: count(Action::NoOp),
        };
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
