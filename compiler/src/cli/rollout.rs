//! The rollout in `apply`: read what the operator reports on the fleet's
//! HostedClusters and NodePools, work out where the upgrade stands
//! (`plan::rollout`), and hold back the changes that must wait. Nothing is
//! stored between runs: each apply starts again from the live state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::commands::plan::FleetPlanned;
use super::target::Opened;
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

/// The rollout's standing for the planned fleet, from the status the
/// operator wrote: one LIST of HostedClusters and one of NodePools per
/// management cluster, by the fleet's ApplySet label. A directory target
/// has no status: its clusters count as new (nothing waits there).
pub fn read(planned: &FleetPlanned, flags: &RolloutFlags) -> Result<Standing, String> {
    let mut members = Vec::new();
    let mut targets = Vec::new();
    let mut rollout = None;
    for (i, part) in planned.parts.iter().enumerate() {
        targets.push(part.plan.target.clone());
        let Some(resolved) = part.compiled.resolved.as_ref() else { continue };
        let fleet = &resolved.fleet;
        rollout = rollout.or(fleet.rollout.as_ref());
        let live: BTreeMap<(Kind, String), Value> = match &part.target {
            Opened::Kube(k) => {
                let selector = format!("{}={}", labels::APPLYSET_PART_OF, applyset_id(fleet));
                let mut out = BTreeMap::new();
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
                        let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
                        out.insert((kind, name), o);
                    }
                }
                out
            }
            Opened::Dir(_) => BTreeMap::new(),
        };
        for cluster in &fleet.clusters {
            let name = &cluster.name.value;
            let ns = &cluster.namespace.value;
            let status = live.get(&(Kind::HostedCluster, name.clone())).map(|hc| {
                let pools: Vec<&Value> = live
                    .iter()
                    .filter(|((k, _), v)| {
                        *k == Kind::NodePool
                            && v.pointer("/spec/clusterName").and_then(Value::as_str) == Some(name.as_str())
                            && v.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns.as_str())
                    })
                    .map(|(_, v)| v)
                    .collect();
                ClusterStatus::from_live(hc, &pools)
            });
            let steps = part
                .plan
                .changes
                .iter()
                .filter(|c| c.cluster.as_deref() == Some(name.as_str()))
                .filter_map(|c| step(c, part, status.is_some()))
                .collect();
            members.push(Member {
                cluster: name.clone(),
                target: i,
                labels: cluster.labels.clone(),
                release: cluster.release.value.clone(),
                status,
                steps,
            });
        }
    }
    if let Some(until) = &flags.until {
        let waves: Vec<&str> =
            rollout.map(|r| r.waves.iter().map(|w| w.name.value.as_str()).collect()).unwrap_or_default();
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
        targets: &targets,
    };
    Ok(standing(rollout, &members, &opts))
}

/// The rollout step a change is, if any.
fn step(c: &Change, part: &super::commands::plan::Planned, cluster_live: bool) -> Option<Step> {
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
pub fn standing_of(planned: &FleetPlanned, flags: &RolloutFlags) -> Result<Option<Standing>, String> {
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
