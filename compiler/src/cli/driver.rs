//! The one apply driver, over [`Target`] (a directory or a management
//! cluster alike): take the fleet lock, re-plan under it, record the
//! ApplySet parent, then make the plan's changes level by level of the
//! dependency graph (Namespaces, then Secrets, then HostedClusters, then
//! NodePools), the objects of one level concurrently, at most
//! `parallelism` at a time, a level starting once the previous one
//! finished; deletes come last, children first. The first failure stops new
//! work; the report says what was and was not applied, and a re-run
//! converges. The lock is renewed by the driver's own thread, so no slow
//! request can let it expire.
//!
//! Everything it needs comes in as arguments and it keeps no global state,
//! so a fleet spread over several targets can run one driver per target at
//! the same time, each with its own lock and ApplySet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use super::commands::plan::Planned;
use super::printer::Style;
use crate::live::{Lock, Target};
use crate::object::{Kind, ObjectId};
use crate::plan::{Action, Change, secret_refs};
use crate::render::{DesiredObject, applyset_parent_object, fleet_namespace};

/// What the command line says about how to apply.
#[derive(Debug, Clone, Copy)]
pub struct DriveOptions {
    pub force_conflicts: bool,
    pub lock_timeout: Duration,
    /// The most objects written at the same time.
    pub parallelism: usize,
}

/// How often the driver's thread looks at the lock while objects are written.
const TICK: Duration = Duration::from_millis(500);

/// Applies the plan that was shown to `target`. Returns the plan actually
/// applied (re-made under the lock), or `None` after reporting why nothing,
/// or not everything, was applied.
pub fn drive(
    target: &dyn Target,
    shown: &Planned,
    replan: &dyn Fn() -> Option<Planned>,
    opts: DriveOptions,
    style: Style,
) -> Option<Planned> {
    let fleet = &shown.compiled.resolved.as_ref()?.fleet;
    let home = shown
        .compiled
        .objects
        .iter()
        .find(|o| o.id.kind == Kind::Namespace && o.id.name == fleet.namespace)
        .cloned()
        .unwrap_or_else(|| fleet_namespace(fleet));
    let say = |line: &str| {
        if !style.quiet {
            eprintln!("{line}");
        }
    };
    let mut lock = match target.lock(&fleet.name, &home, opts.lock_timeout, &say) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error[hcpc::apply::locked]: {e}");
            eprintln!("nothing was applied");
            return None;
        }
    };
    let result = under_lock(target, shown, replan, &home.id, lock.as_mut(), opts, style);
    if let Err(e) = lock.release() {
        eprintln!("warning: {e}");
    }
    result
}

fn under_lock(
    target: &dyn Target,
    shown: &Planned,
    replan: &dyn Fn() -> Option<Planned>,
    home: &ObjectId,
    lock: &mut dyn Lock,
    opts: DriveOptions,
    style: Style,
) -> Option<Planned> {
    // The lock's namespace may have been created just now: not a change.
    let fresh = replan_under_lock(shown, replan, Some(home))?;
    let fleet = &fresh.compiled.resolved.as_ref()?.fleet;
    // KEP-3659: the parent lists every namespace members are in, or will
    // be in, before any member is written.
    let namespaces: Vec<&str> = fresh
        .compiled
        .objects
        .iter()
        .map(|o| o.id.namespace.as_str())
        .chain(fresh.live.iter().map(|l| l.id.namespace.as_str()))
        .collect();
    let parent = applyset_parent_object(fleet, &namespaces);
    if let Err(e) = target.record_applyset(&parent) {
        eprintln!("error: {}: {e}", parent.id);
        eprintln!("nothing was applied");
        return None;
    }
    let work = Work {
        target,
        desired: fresh.compiled.objects.iter().map(|o| (&o.id, o)).collect(),
        leaving: fresh
            .plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete && c.id.kind == Kind::HostedCluster)
            .map(|c| &c.id)
            .collect(),
        neighbours: Mutex::new(BTreeMap::new()),
        force_conflicts: opts.force_conflicts,
    };
    let mut report = Report::default();
    // Taking the lock created the fleet's Namespace if the plan showed it
    // as a create: it was applied by this run, and is reported as such.
    let created_by_lock = shown.plan.changes.iter().any(|c| &c.id == home && c.action == Action::Create)
        && !fresh.plan.changes.iter().any(|c| &c.id == home && c.action == Action::Create);
    if created_by_lock {
        if !style.quiet {
            eprintln!("{} {home}", Action::Create.symbol());
        }
        report.applied.push(home.clone());
    }
    for level in levels(&fresh) {
        run_level(&work, &level, lock, opts, style, &mut report);
        if report.stopped() {
            break;
        }
    }
    if !report.stopped() {
        return Some(fresh);
    }
    for (id, e) in &report.failed {
        eprintln!("error: {id}: {e}");
    }
    if let Some(e) = &report.lost_lock {
        eprintln!("error: {e}");
    }
    let settled: BTreeSet<&ObjectId> = report.applied.iter().chain(report.failed.iter().map(|(id, _)| id)).collect();
    let pending: Vec<String> = fresh
        .plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp && !settled.contains(&c.id))
        .map(|c| c.id.to_string())
        .collect();
    let applied: Vec<String> = report.applied.iter().map(ToString::to_string).collect();
    eprintln!("applied: {}", if applied.is_empty() { "nothing".to_string() } else { applied.join(", ") });
    let failed: Vec<String> = report.failed.iter().map(|(id, _)| id.to_string()).collect();
    let not_applied: Vec<String> = failed.into_iter().chain(pending).collect();
    eprintln!("not applied: {}", not_applied.join(", "));
    eprintln!("  help: fix the cause and run apply again; it continues from the current state");
    None
}

/// Re-plans under the lock; `None` (after saying why) when the plan changed.
/// `bookkeeping` is an object the apply itself wrote before locking (the
/// fleet's Namespace, which holds the Lease); it is left out of the comparison.
pub fn replan_under_lock(
    shown: &Planned,
    replan: &dyn Fn() -> Option<Planned>,
    bookkeeping: Option<&ObjectId>,
) -> Option<Planned> {
    let fresh = replan()?;
    let key = |p: &Planned| -> Vec<(String, Action, Option<String>)> {
        p.plan
            .changes
            .iter()
            .filter(|c| Some(&c.id) != bookkeeping)
            .map(|c| (c.id.to_string(), c.action, c.live_version.clone()))
            .collect()
    };
    if key(&fresh) != key(shown) || fresh.plan.input_digest != shown.plan.input_digest {
        eprintln!(
            "error[hcpc::plan::stale]: the target changed while this apply waited for the lock (another apply ran); nothing was applied\n  help: run `hcpc plan` again and review the new plan"
        );
        return None;
    }
    Some(fresh)
}

/// The plan's changes in the order they may run: creates, updates and
/// replaces by dependency level, then deletes by kind, children first.
fn levels(planned: &Planned) -> Vec<Vec<&Change>> {
    let by_id: BTreeMap<&ObjectId, &Change> =
        planned.plan.changes.iter().filter(|c| c.action != Action::NoOp).map(|c| (&c.id, c)).collect();
    let graph_levels = planned.compiled.resolved.as_ref().map(|r| r.graph.apply_levels()).unwrap_or_default();
    let mut out: Vec<Vec<&Change>> = graph_levels
        .iter()
        .map(|level| {
            level.iter().filter_map(|id| by_id.get(id).copied()).filter(|c| c.action != Action::Delete).collect()
        })
        .collect();
    // Anything the graph does not order (it orders every desired object)
    // runs after the levels it does, before deletes.
    let placed: BTreeSet<&ObjectId> = graph_levels.iter().flatten().collect();
    out.push(
        planned
            .plan
            .changes
            .iter()
            .filter(|c| !matches!(c.action, Action::NoOp | Action::Delete) && !placed.contains(&c.id))
            .collect(),
    );
    for kind in Kind::ALL.into_iter().rev() {
        out.push(planned.plan.changes.iter().filter(|c| c.action == Action::Delete && c.id.kind == kind).collect());
    }
    out.retain(|level| !level.is_empty());
    out
}

#[derive(Default)]
struct Report {
    applied: Vec<ObjectId>,
    failed: Vec<(ObjectId, String)>,
    /// Why the fleet lock was lost, if it was.
    lost_lock: Option<String>,
}

impl Report {
    fn stopped(&self) -> bool {
        !self.failed.is_empty() || self.lost_lock.is_some()
    }
}

/// What the workers share while making changes.
struct Work<'a> {
    target: &'a dyn Target,
    desired: BTreeMap<&'a ObjectId, &'a DesiredObject>,
    /// HostedClusters this apply deletes: their references do not count.
    leaving: BTreeSet<&'a ObjectId>,
    /// HostedClusters by namespace, read before the first Secret delete there.
    neighbours: Mutex<BTreeMap<String, Vec<serde_json::Value>>>,
    force_conflicts: bool,
}

impl Work<'_> {
    /// Makes one change on the target.
    fn make(&self, change: &Change) -> Result<(), String> {
        let object =
            || self.desired.get(&change.id).copied().ok_or_else(|| format!("{} is not a desired object", change.id));
        match change.action {
            Action::NoOp => Ok(()),
            Action::Delete if change.id.kind == Kind::Secret => {
                if let Some(hc) = self.named_by(&change.id)? {
                    return Err(format!(
                        "not deleted: HostedCluster {hc} names it (it appeared after the plan was made)"
                    ));
                }
                self.target.delete_one(&change.id)
            }
            Action::Delete => self.target.delete_one(&change.id),
            Action::Replace => {
                self.target.delete_one(&change.id)?;
                self.target.wait_gone(&change.id)?;
                self.target.apply_one(object()?, self.force_conflicts)
            }
            Action::Create | Action::Update => self.target.apply_one(object()?, self.force_conflicts),
        }
    }

    /// A live HostedCluster, other than those this apply deletes, that
    /// names the Secret: checked again right before deleting it.
    fn named_by(&self, secret: &ObjectId) -> Result<Option<String>, String> {
        let ns = &secret.namespace;
        let mut cache = self.neighbours.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.contains_key(ns) {
            cache.insert(ns.clone(), self.target.hosted_clusters(ns)?);
        }
        let found = cache[ns].iter().find_map(|hc| {
            let name = hc.pointer("/metadata/name").and_then(serde_json::Value::as_str)?;
            let id = ObjectId::new(Kind::HostedCluster, ns, name);
            (!self.leaving.contains(&id) && secret_refs(hc, ns).contains(secret)).then(|| format!("{ns}/{name}"))
        });
        Ok(found)
    }
}

/// Runs one level: workers take the changes in order, the driver's thread
/// renews the lock and prints results in plan order as they complete.
fn run_level(
    work: &Work<'_>,
    level: &[&Change],
    lock: &mut dyn Lock,
    opts: DriveOptions,
    style: Style,
    report: &mut Report,
) {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (done, results) = channel::<(usize, Result<(), String>)>();
    let mut outcome: Vec<Option<Result<(), String>>> = vec![None; level.len()];
    let mut printed = 0;
    std::thread::scope(|scope| {
        for _ in 0..opts.parallelism.clamp(1, level.len().max(1)) {
            let done = done.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(change) = level.get(i) else { break };
                    let result = work.make(change);
                    // Stop the others before anyone takes more work.
                    if result.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if done.send((i, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        loop {
            match results.recv_timeout(TICK) {
                Ok((i, result)) => {
                    if result.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    outcome[i] = Some(result);
                    // In plan order, as soon as every earlier change is done.
                    while let Some(Some(result)) = outcome.get(printed) {
                        let c = level[printed];
                        match result {
                            Ok(()) => {
                                if !style.quiet {
                                    eprintln!("{} {}", c.action.symbol(), c.id);
                                }
                                report.applied.push(c.id.clone());
                            }
                            Err(e) => report.failed.push((c.id.clone(), e.clone())),
                        }
                        printed += 1;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if report.lost_lock.is_none()
                && let Err(e) = lock.renew_if_due()
            {
                stop.store(true, Ordering::SeqCst);
                report.lost_lock = Some(e);
            }
        }
    });
}
