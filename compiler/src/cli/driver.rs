//! The one apply driver, over [`Target`] (a directory or a management
//! cluster alike), for every target of a fleet: take each target's lock in
//! target order, re-plan under them, then per target (the targets
//! concurrently) record the ApplySet parent and make the plan's changes
//! level by level of the dependency graph (Namespaces, then Secrets, then
//! HostedClusters, then NodePools), the objects of one level concurrently,
//! at most `parallelism` at a time, a level starting once the previous one
//! finished; deletes come last, children first. The first failure on any
//! target stops new work on all of them; the report says per target what
//! was and was not applied, and a re-run converges. Each lock is renewed by
//! its own keeper thread (`live::lease`) whatever the apply is doing
//! (waiting for another target's lock, re-planning, waiting for a deletion);
//! every write is preceded by a check that the lock is still held, so an
//! apply that lost its lock makes no further write and says so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::commands::plan::{FleetPlanned, Planned};
use super::output;
use super::printer::Style;
use crate::interrupt;
use crate::live::{Lock, Target, WriteError};
use crate::object::{Kind, ObjectId};
use crate::plan::{Action, Change, secret_refs};
use crate::render::{DesiredObject, applyset_parent_object, fleet_namespace};

/// What the command line says about how to apply.
#[derive(Debug, Clone, Copy)]
pub struct DriveOptions {
    pub force_conflicts: bool,
    pub lock_timeout: Duration,
    /// The most objects written at the same time on one target, and the
    /// most targets applied at the same time.
    pub parallelism: usize,
    /// How long to wait for deleted HostedClusters to be gone before
    /// deleting the Secrets they name (`--timeout`).
    pub wait_timeout: Duration,
}

/// How often the driver's thread looks at the lock while objects are written.
const TICK: Duration = Duration::from_millis(500);

/// Applies the plan that was shown, to every target of the fleet. Returns
/// the plans actually applied (re-made under the locks), or `None` after
/// reporting, per target, why nothing or not everything was applied.
///
/// The locks are taken one target at a time in target order (the order
/// of `shown.parts`), so two applies of fleets sharing targets never hold
/// one each and wait for the other's. Then targets are applied
/// concurrently, at most `parallelism` at once; the first failure on any
/// target stops new work on all of them.
///
/// From the first lock to the last release, SIGINT or SIGTERM asks the
/// apply to stop (`crate::interrupt`): no write starts after it, those in
/// flight get a few seconds to finish, the locks are released and the
/// report says what was and was not applied; the caller exits 130 or 143.
pub fn drive(
    shown: &FleetPlanned,
    replan: &dyn Fn() -> Option<FleetPlanned>,
    opts: DriveOptions,
    style: Style,
) -> Option<FleetPlanned> {
    let mut locks = Locks::take(shown, opts, style)?;
    let result = drive_locked(&mut locks, shown, replan, opts, style);
    locks.release();
    result
}

/// The fleet's lock on every target, held from [`Locks::take`] to
/// [`Locks::release`]: one apply pass, or every pass of a rollout that
/// `apply --wait` follows (no other apply interleaves with it). While they
/// are held, SIGINT and SIGTERM ask the apply to stop (`crate::interrupt`).
pub struct Locks<'a> {
    held: Vec<Box<dyn Lock + Send + 'a>>,
    /// The fleet's Namespace on each target, where its lock lives.
    homes: Vec<ObjectId>,
    /// The ApplySet parent last recorded on each target while the locks are
    /// held: a rollout's later passes do not write it again unchanged.
    recorded: Vec<Option<serde_json::Value>>,
}

impl<'a> Locks<'a> {
    /// Takes the lock of every target of `shown`, one at a time in target
    /// order; `None` after saying why nothing was applied.
    pub fn take(shown: &'a FleetPlanned, opts: DriveOptions, style: Style) -> Option<Locks<'a>> {
        interrupt::arm();
        let several = shown.parts.len() > 1;
        // Waiting is progress (stdout); taking over a dead holder's lock is
        // a warning (stderr), even when quiet.
        let say = |line: &str| {
            if line.starts_with("warning:") {
                eprintln!("{line}");
            } else if !style.quiet {
                output::say(line);
            }
        };
        let mut locks = Locks { held: Vec::new(), homes: Vec::new(), recorded: vec![None; shown.parts.len()] };
        for part in &shown.parts {
            let Some(resolved) = part.compiled.resolved.as_ref() else {
                locks.release();
                return None;
            };
            let fleet = &resolved.fleet;
            let home = part
                .compiled
                .objects
                .iter()
                .find(|o| o.id.kind == Kind::Namespace && o.id.name == fleet.namespace)
                .cloned()
                .unwrap_or_else(|| fleet_namespace(fleet));
            let taken = match interrupt::requested() {
                Some(stop) => Err(format!("interrupted by {} before taking the fleet lock", stop.name())),
                None => part.target.target().lock(&fleet.name, &home, opts.lock_timeout, &say),
            };
            match taken {
                Ok(l) => locks.held.push(l),
                Err(e) => {
                    locks.release();
                    if let Some(stop) = interrupt::requested() {
                        eprintln!("interrupted by {}: nothing was applied", stop.name());
                    } else if several {
                        eprintln!("error[hcpc::apply::locked]: {}: {e}", part.plan.target);
                        eprintln!("nothing was applied, on any target");
                    } else {
                        eprintln!("error[hcpc::apply::locked]: {e}");
                        eprintln!("nothing was applied");
                    }
                    return None;
                }
            }
            locks.homes.push(home.id);
        }
        Some(locks)
    }

    /// An error, saying why, once any lock is lost (their keepers renew
    /// them; nothing is written after one is lost).
    pub fn check(&self) -> Result<(), String> {
        self.held.iter().try_for_each(|l| l.check())
    }

    /// Gives up every lock, last taken first; signals end the process again.
    pub fn release(mut self) {
        release(&mut self.held);
        interrupt::disarm();
    }
}

/// One pass of writes under locks already held: re-plan (what is applied
/// is what was shown, or nothing), then apply every target's changes.
/// `None` after reporting, per target, why nothing or not everything was
/// applied.
pub fn drive_locked(
    locks: &mut Locks<'_>,
    shown: &FleetPlanned,
    replan: &dyn Fn() -> Option<FleetPlanned>,
    opts: DriveOptions,
    style: Style,
) -> Option<FleetPlanned> {
    let several = shown.parts.len() > 1;
    let fresh = replan_under_lock(shown, replan, &locks.homes)?;
    if let Some(stop) = interrupt::requested() {
        eprintln!("interrupted by {}: nothing was applied", stop.name());
        return None;
    }
    let reports = apply_targets(shown, &fresh, &locks.homes, &locks.held, &mut locks.recorded, opts, style);
    let stopped = reports.iter().any(Report::stopped);
    let interrupted = interrupt::requested();
    if let Some(stop) = interrupted {
        eprintln!(
            "interrupted by {}: no write started after it; writes in flight were given {}s to finish",
            stop.name(),
            interrupt::GRACE.as_secs()
        );
    }
    if stopped || interrupted.is_some() {
        for (part, report) in fresh.parts.iter().zip(&reports) {
            report.print(part, several.then_some(part.plan.target.as_str()));
        }
        let only_waiting =
            reports.iter().all(|r| r.failed.is_empty() && r.possibly.is_empty() && r.lost_lock.is_none());
        if only_waiting && reports.iter().any(|r| !r.still_deleting.is_empty()) {
            eprintln!(
                "  help: run apply again once they are gone (or with a longer --timeout); it continues from here"
            );
        } else if interrupted.is_some() && !stopped {
            eprintln!("  help: run apply again; it continues from the current state");
        } else {
            eprintln!("  help: fix the cause and run apply again; it continues from the current state");
        }
        return None;
    }
    Some(fresh)
}

/// Gives up every lock, last taken first.
fn release(locks: &mut Vec<Box<dyn Lock + Send + '_>>) {
    while let Some(mut lock) = locks.pop() {
        if let Err(e) = lock.release() {
            eprintln!("warning: {e}");
        }
    }
}

/// Applies every target's plan, each on its own thread, at most
/// `parallelism` targets at once; a thread waiting for its turn stops if
/// its lock is lost. Writes go through the targets the locks were taken on.
fn apply_targets(
    shown: &FleetPlanned,
    fresh: &FleetPlanned,
    homes: &[ObjectId],
    locks: &[Box<dyn Lock + Send + '_>],
    recorded: &mut [Option<serde_json::Value>],
    opts: DriveOptions,
    style: Style,
) -> Vec<Report> {
    let halt = AtomicBool::new(false);
    let free = (Mutex::new(opts.parallelism.max(1)), Condvar::new());
    let several = fresh.parts.len() > 1;
    std::thread::scope(|scope| {
        let handles: Vec<_> = shown
            .parts
            .iter()
            .zip(&fresh.parts)
            .zip(homes)
            .zip(locks.iter())
            .zip(recorded.iter_mut())
            .map(|((((shown, fresh), home), lock), recorded)| {
                let (halt, free) = (&halt, &free);
                scope.spawn(move || {
                    let mut report = Report::default();
                    // Wait for a turn (the lock's keeper renews it meanwhile).
                    {
                        let (count, turn) = free;
                        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
                        while *n == 0 {
                            n = turn.wait_timeout(n, TICK).unwrap_or_else(|e| e.into_inner()).0;
                            if let Err(e) = lock.check() {
                                report.lost_lock = Some(e);
                                halt.store(true, Ordering::SeqCst);
                                return report;
                            }
                        }
                        *n -= 1;
                    }
                    let prefix = several.then(|| fresh.plan.target.clone());
                    if !halt.load(Ordering::SeqCst) {
                        let run = TargetRun { target: shown.target.target(), shown, fresh, home, prefix, recorded };
                        apply_target(run, lock.as_ref(), halt, opts, style, &mut report);
                    }
                    let (count, turn) = free;
                    *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    turn.notify_one();
                    report
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| Report {
                    lost_lock: Some("the apply thread failed".into()),
                    ..Report::default()
                })
            })
            .collect()
    })
}

/// One target's apply: where it writes, the plan shown and the one made
/// under the lock, the fleet's Namespace (which holds the lock), and the
/// target's name before each line in a fleet of several.
struct TargetRun<'a> {
    target: &'a dyn Target,
    shown: &'a Planned,
    fresh: &'a Planned,
    home: &'a ObjectId,
    prefix: Option<String>,
    /// The ApplySet parent this apply last recorded there.
    recorded: &'a mut Option<serde_json::Value>,
}

/// One target: record its ApplySet parent, then its changes level by level.
fn apply_target(
    run: TargetRun<'_>,
    lock: &dyn Lock,
    halt: &AtomicBool,
    opts: DriveOptions,
    style: Style,
    report: &mut Report,
) {
    let TargetRun { target, shown, fresh, home, prefix, recorded } = run;
    let Some(fleet) = fresh.compiled.resolved.as_ref().map(|r| &r.fleet) else { return };
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
    if let Err(e) = lock.check() {
        report.lost_lock = Some(e);
        halt.store(true, Ordering::SeqCst);
        return;
    }
    if recorded.as_ref() != Some(parent.body()) {
        if let Err(e) = target.record_applyset(&parent) {
            report.failed.push((parent.id.clone(), e));
            halt.store(true, Ordering::SeqCst);
            return;
        }
        *recorded = Some(parent.body().clone());
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
        lock,
        force_conflicts: opts.force_conflicts,
        halt,
        prefix,
        wait_timeout: opts.wait_timeout,
    };
    // Taking the lock created the fleet's Namespace if the plan showed it
    // as a create: it was applied by this run, and is reported as such.
    let created_by_lock = shown.plan.changes.iter().any(|c| &c.id == home && c.action == Action::Create)
        && !fresh.plan.changes.iter().any(|c| &c.id == home && c.action == Action::Create);
    if created_by_lock {
        if !style.quiet {
            match &work.prefix {
                Some(t) => output::say(&format!("{t}: {} {home}", Action::Create.symbol())),
                None => output::say(&format!("{} {home}", Action::Create.symbol())),
            }
        }
        report.applied.push(home.clone());
    }
    // Objects in namespaces this apply creates: judged by the server's
    // dry run once their Namespaces exist, before any other write.
    let (_, later) = crate::live::dry_run::to_check(&fresh.plan.changes, &fresh.compiled.objects);
    let mut later = Some(later).filter(|l| !l.is_empty());
    for level in levels(fresh) {
        if halt.load(Ordering::SeqCst) || interrupt::requested().is_some() {
            break;
        }
        let level = match hold_secrets(&work, level, opts, style, report) {
            Some(level) => level,
            None => {
                halt.store(true, Ordering::SeqCst);
                break;
            }
        };
        if let Err(e) = lock.check() {
            report.lost_lock = Some(e);
            halt.store(true, Ordering::SeqCst);
            break;
        }
        if level.is_empty() {
            continue;
        }
        if let Some(objects) = later.take_if(|_| level.iter().any(|c| c.id.kind != Kind::Namespace)) {
            let refused = target.dry_run(&objects, opts.parallelism, opts.force_conflicts);
            if !refused.is_empty() {
                for r in refused {
                    report.failed.push((r.id, format!("refused by the management cluster (dry run): {}", r.message)));
                }
                halt.store(true, Ordering::SeqCst);
                break;
            }
        }
        run_level(&work, &level, opts, style, report);
        if report.stopped() {
            halt.store(true, Ordering::SeqCst);
            break;
        }
    }
}

impl Report {
    /// What was and was not applied on one target (`on`: its name, in a
    /// fleet of several).
    fn print(&self, planned: &Planned, on: Option<&str>) {
        let head = on.map(|t| format!("{t}: ")).unwrap_or_default();
        for (id, e) in self.failed.iter().chain(&self.possibly) {
            eprintln!("error: {head}{id}: {e}");
        }
        if let Some(e) = &self.lost_lock {
            eprintln!("error: {head}{e}");
        }
        for line in &self.still_deleting {
            eprintln!("{head}{line}");
        }
        let settled: BTreeSet<&ObjectId> =
            self.applied.iter().chain(self.failed.iter().chain(&self.possibly).map(|(id, _)| id)).collect();
        let pending: Vec<String> = planned
            .plan
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp && !settled.contains(&c.id))
            .map(|c| c.id.to_string())
            .collect();
        let applied: Vec<String> = self.applied.iter().map(ToString::to_string).collect();
        eprintln!("{head}applied: {}", if applied.is_empty() { "nothing".to_string() } else { applied.join(", ") });
        if !self.possibly.is_empty() {
            let possibly: Vec<String> = self.possibly.iter().map(|(id, _)| id.to_string()).collect();
            eprintln!("{head}possibly applied (no answer came; the next plan shows which): {}", possibly.join(", "));
        }
        let failed: Vec<String> = self.failed.iter().map(|(id, _)| id.to_string()).collect();
        let not_applied: Vec<String> = failed.into_iter().chain(pending).collect();
        eprintln!(
            "{head}not applied: {}",
            if not_applied.is_empty() { "nothing".to_string() } else { not_applied.join(", ") }
        );
    }
}

/// Re-plans under the locks; `None` (after saying why) when the plan of
/// any target changed. `bookkeeping` holds, per target, an object the
/// apply itself wrote before locking (the fleet's Namespace, which holds
/// the Lease); it is left out of the comparison.
pub fn replan_under_lock(
    shown: &FleetPlanned,
    replan: &dyn Fn() -> Option<FleetPlanned>,
    bookkeeping: &[ObjectId],
) -> Option<FleetPlanned> {
    let fresh = replan()?;
    let key = |p: &Planned, skip: Option<&ObjectId>| -> Vec<(String, Action, Option<String>)> {
        p.plan
            .changes
            .iter()
            .filter(|c| Some(&c.id) != skip)
            .map(|c| (c.id.to_string(), c.action, c.live_version.clone()))
            .collect()
    };
    let same = fresh.parts.len() == shown.parts.len()
        && fresh.parts.iter().zip(&shown.parts).enumerate().all(|(i, (f, s))| {
            f.plan.target == s.plan.target
                && key(f, bookkeeping.get(i)) == key(s, bookkeeping.get(i))
                && f.plan.input_digest == s.plan.input_digest
                && f.compiled.secrets_digest == s.compiled.secrets_digest
        });
    if !same {
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
    /// Writes that got no answer (connection lost, server down, timeout):
    /// they may have been carried out.
    possibly: Vec<(ObjectId, String)>,
    /// Why the fleet lock was lost, if it was.
    lost_lock: Option<String>,
    /// HostedClusters still being deleted when `--timeout` ran out: the
    /// Secrets they name were kept.
    still_deleting: Vec<String>,
}

impl Report {
    fn stopped(&self) -> bool {
        !self.failed.is_empty()
            || !self.possibly.is_empty()
            || self.lost_lock.is_some()
            || !self.still_deleting.is_empty()
    }
}

/// Before deleting Secrets: waits for the HostedClusters this apply
/// deleted to be gone (`cli::deletion`), and keeps the Secrets of those
/// still there when the wait ends. The level without them; `None` when
/// the wait itself failed.
fn hold_secrets<'c>(
    work: &Work<'_>,
    level: Vec<&'c Change>,
    opts: DriveOptions,
    style: Style,
    report: &mut Report,
) -> Option<Vec<&'c Change>> {
    let deletes_secrets = level.iter().any(|c| c.action == Action::Delete && c.id.kind == Kind::Secret);
    if !deletes_secrets || work.leaving.is_empty() {
        return Some(level);
    }
    let say = |line: &str| {
        if !style.quiet {
            match &work.prefix {
                Some(t) => output::say(&format!("{t}: {line}")),
                None => output::say(line),
            }
        }
    };
    let leaving: Vec<&ObjectId> = work.leaving.iter().copied().collect();
    let held = || work.lock.check().is_ok();
    let waited = super::deletion::wait_for_clusters(work.target, &leaving, opts.wait_timeout, &held, &say);
    // The wait may be long: the lock may have been lost meanwhile.
    if let Err(e) = work.lock.check() {
        report.lost_lock = Some(e);
        return None;
    }
    let still = match waited {
        Ok(s) => s,
        Err(e) => {
            report.lost_lock = Some(format!("cannot tell whether the deleted HostedClusters are gone: {e}"));
            return None;
        }
    };
    let held: BTreeSet<&ObjectId> = still.iter().flat_map(|s| &s.secrets).collect();
    for s in &still {
        report.still_deleting.push(format!(
            "{} is still being deleted ({}) after --timeout {}s: the Secrets it names were kept",
            s.cluster,
            super::deletion::waiting_for(&s.finalizers),
            opts.wait_timeout.as_secs()
        ));
    }
    Some(level.into_iter().filter(|c| !(c.id.kind == Kind::Secret && held.contains(&c.id))).collect())
}

/// What the workers share while making changes.
struct Work<'a> {
    target: &'a dyn Target,
    desired: BTreeMap<&'a ObjectId, &'a DesiredObject>,
    /// HostedClusters this apply deletes: their references do not count.
    leaving: BTreeSet<&'a ObjectId>,
    /// HostedClusters by namespace, read before the first Secret delete there.
    neighbours: Mutex<BTreeMap<String, Vec<serde_json::Value>>>,
    /// The target's fleet lock: checked before every write.
    lock: &'a dyn Lock,
    force_conflicts: bool,
    /// Set when any target failed: no new work starts anywhere.
    halt: &'a AtomicBool,
    /// The target's name before each line, in a fleet of several.
    prefix: Option<String>,
    /// How long a replacement waits for the old object to be gone.
    wait_timeout: Duration,
}

impl Work<'_> {
    /// Makes one change on the target.
    fn make(&self, change: &Change) -> Result<(), WriteError> {
        let object =
            || self.desired.get(&change.id).copied().ok_or_else(|| format!("{} is not a desired object", change.id));
        match change.action {
            Action::NoOp => Ok(()),
            Action::Delete if change.id.kind == Kind::Secret => {
                if let Some(hc) = self.named_by(&change.id)? {
                    return Err(format!(
                        "not deleted: HostedCluster {hc} names it (it appeared after the plan was made)"
                    )
                    .into());
                }
                self.target.delete_one(&change.id)
            }
            Action::Delete => self.target.delete_one(&change.id),
            Action::Replace => {
                self.target.delete_one(&change.id)?;
                let progress = |line: &str| match &self.prefix {
                    Some(t) => output::say(&format!("{t}: {line}")),
                    None => output::say(line),
                };
                self.target.wait_gone(&change.id, self.wait_timeout, &progress)?;
                self.lock.check().map_err(|e| format!("deleted, not created again: {e}"))?;
                let object = object()?;
                self.target.apply_one(object, self.force_conflicts)
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

/// Runs one level: workers take the changes in order, each checking the
/// lock before a write; the driver's thread watches the lock and prints
/// results in plan order as they complete.
fn run_level(work: &Work<'_>, level: &[&Change], opts: DriveOptions, style: Style, report: &mut Report) {
    let next = AtomicUsize::new(0);
    // Shared by every target: a failure anywhere stops new work everywhere.
    let stop = work.halt;
    let (done, results) = channel::<(usize, Result<(), WriteError>)>();
    let mut outcome: Vec<Option<Result<(), WriteError>>> = vec![None; level.len()];
    let mut printed = 0;
    std::thread::scope(|scope| {
        for _ in 0..opts.parallelism.clamp(1, level.len().max(1)) {
            let done = done.clone();
            let next = &next;
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) && interrupt::requested().is_none() {
                    if work.lock.check().is_err() {
                        stop.store(true, Ordering::SeqCst);
                        break;
                    }
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
                                    match &work.prefix {
                                        Some(t) => output::say(&format!("{t}: {} {}", c.action.symbol(), c.id)),
                                        None => output::say(&format!("{} {}", c.action.symbol(), c.id)),
                                    }
                                }
                                report.applied.push(c.id.clone());
                            }
                            Err(e) if e.possibly_applied => report.possibly.push((c.id.clone(), e.message.clone())),
                            Err(e) => report.failed.push((c.id.clone(), e.message.clone())),
                        }
                        printed += 1;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if interrupt::requested().is_some() {
                stop.store(true, Ordering::SeqCst);
            }
            if report.lost_lock.is_none()
                && let Err(e) = work.lock.check()
            {
                stop.store(true, Ordering::SeqCst);
                report.lost_lock = Some(e);
            }
        }
    });
}
