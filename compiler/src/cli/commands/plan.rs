//! `hcpc plan`: compile, read the live state of every target at once,
//! diff per target, print the fleet's plan.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::args::{DiagFormat, PlanFormat};
use crate::cli::exit;
use crate::cli::load::{Compiled, back, front, read_sources};
use crate::cli::printer::{Style, print_diagnostics};
use crate::cli::target::{Opened, TargetFlags, TargetFleet, spelled, split};
use crate::diagnostic::{Code, Diagnostic};
use crate::ir::Target;
use crate::live::kube::Freshness;
use crate::object::{Kind, LiveObject, ObjectId};
use crate::plan::{Elsewhere, FleetPlan, Plan, PlanInput, plan, view};
use crate::render::{DesiredObject, applyset_id, map_data, masked, masked_live};
use hcpc_schema::labels;

/// A plan saved with `--out`: the plan of each target (secrets only as
/// digests), the configuration it was made from, and the desired objects
/// it was made of. Format 3: one entry per target, in target order.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: String,
    /// This plan's random key (hex) for its digests: see [`DigestKey`].
    pub digest_key: String,
    pub config: PathBuf,
    /// `--cluster` patterns the plan was limited by: applying it re-plans
    /// with the same limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    pub targets: Vec<SavedTarget>,
}

/// One target of a saved plan.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedTarget {
    pub plan: Plan,
    /// The desired objects, Secret data replaced by digests.
    pub desired: Vec<Value>,
    /// The secret values read, as a keyed digest.
    pub secrets_digest: String,
}

/// Everything the plan of one target was made of, for printing and applying.
/// What was compiled and read is shared, so a rollout's later passes are
/// plans of the same inputs (`cli::rollout`) without compiling again.
#[derive(Clone)]
pub struct Planned {
    pub compiled: std::sync::Arc<Compiled>,
    pub target: Opened,
    pub live: std::sync::Arc<Vec<LiveObject>>,
    pub plan: Plan,
}

/// The plans of every target of the fleet, in target order.
#[derive(Clone)]
pub struct FleetPlanned {
    pub parts: Vec<Planned>,
}

impl FleetPlanned {
    /// The fleet's plan as the views read it.
    pub fn view(&self) -> FleetPlan<'_> {
        FleetPlan::new(self.parts.iter().map(|p| &p.plan).collect())
    }

    pub fn has_changes(&self) -> bool {
        self.parts.iter().any(|p| p.plan.has_changes())
    }
}

/// What one target's thread gathered: the target, its compiled part of
/// the fleet and, when that compiled cleanly, its live objects.
struct Gathered {
    target: Opened,
    compiled: Compiled,
    live: Vec<LiveObject>,
    neighbours: Vec<LiveObject>,
}

/// Compiles and plans every target; prints diagnostics; `None` on any error.
///
/// On a cluster, the live reads start as soon as the fleet's name is known
/// and run while the configuration resolves and renders; `freshness` says
/// whether they may come from the API server's watch cache (a plan only
/// shown) or must be consistent (the plan apply writes from).
///
/// `patterns` (`--cluster`; none: the whole fleet) limit the plan to the
/// clusters they select. Only the diff is limited: the fleet still
/// compiles, reads and locks whole, so the resolution rules see every
/// cluster.
pub fn make_limited(
    path: &Path,
    flags: &TargetFlags,
    patterns: &[String],
    style: Style,
    freshness: Freshness,
) -> Option<FleetPlanned> {
    make_scoped(path, flags, patterns, style, freshness, false)
}

/// [`make_limited`], or with `destroy` the plan of the fleet without the
/// clusters `patterns` select (every cluster, without patterns): each is
/// planned as if its declaration were removed, so what it owns is deleted
/// and prevent-destroy is judged from the live objects as for any removal.
pub fn make_scoped(
    path: &Path,
    flags: &TargetFlags,
    patterns: &[String],
    style: Style,
    freshness: Freshness,
    destroy: bool,
) -> Option<FleetPlanned> {
    let sources = match read_sources(path) {
        Ok(s) => s,
        Err(d) => {
            print_diagnostics(d.into(), &Default::default(), DiagFormat::Human, style);
            return None;
        }
    };
    let (fleet, mut diags) = front(&sources);
    if diags.has_errors() {
        return super::report(back(sources, fleet, diags), style).and(None);
    }
    let named = fleet.named;
    let mut parts = match split(flags, fleet, &sources) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    // After the split, so a cluster on a target of its own still finds it.
    if destroy {
        for part in &mut parts {
            part.fleet.clusters.retain(|c| {
                !patterns.is_empty() && !patterns.iter().any(|p| crate::cli::scope::matches(p, &c.name.value))
            });
        }
    }
    if let (Some(kube), false) = (parts.iter().find(|p| matches!(p.target, Target::Kube { .. })), named) {
        let mut d = Diagnostic::warning(Code::UnnamedFleet, "this fleet has no name, so it shares the ApplySet `default`")
            .help("add `fleet NAME` (unique per configuration): objects of another unnamed configuration on the same cluster would otherwise be pruned by this one");
        if let Some(at) = kube.at {
            d = d.label(at, "applied to a cluster here");
        }
        diags.push(d);
    }
    // Every target at once: connect, discover, resolve and render its part,
    // read its live state. One connection and one set of LISTs each.
    let request_timeout = flags.request_timeout;
    let gathered: Vec<Result<Gathered, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let sources = sources.clone();
                scope.spawn(move || gather(part, sources, request_timeout, freshness))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("the target's reader failed".to_string())))
            .collect()
    });
    let mut ok = Vec::new();
    let mut unreachable = false;
    for g in gathered {
        match g {
            Ok(g) => ok.push(g),
            Err(e) => {
                eprintln!("{e}");
                unreachable = true;
            }
        }
    }
    for g in &mut ok {
        diags.extend(std::mem::take(&mut g.compiled.diags));
    }
    let diags = diags.deduped();
    if diags.has_errors() {
        super::report(
            Compiled {
                sources,
                diags,
                resolved: None,
                objects: Vec::new(),
                input_digest: String::new(),
                secrets_digest: String::new(),
            },
            style,
        );
        return None;
    }
    if unreachable {
        eprintln!("error: the plan needs every target of the fleet; nothing was planned");
        return None;
    }
    print_diagnostics(diags, &sources, DiagFormat::Human, style);
    let described: Vec<String> = ok.iter().map(|g| g.target.live().describe()).collect();
    // Two names for one management cluster would each prune the other's
    // clusters (one ApplySet, two plans).
    let places: Vec<String> = ok
        .iter()
        .zip(&described)
        .map(|(g, d)| match &g.target {
            Opened::Kube(k) => k.server().to_string(),
            Opened::Dir(_) => d.clone(),
        })
        .collect();
    if let Some((i, j)) =
        (0..places.len()).find_map(|j| places[..j].iter().position(|p| *p == places[j]).map(|i| (i, j)))
    {
        eprintln!(
            "error[hcpc::target]: {} and {} are the same management cluster; nothing was planned\n  help: name each management cluster one way (one kubeconfig context, or one directory) in every `target`",
            described[i], described[j]
        );
        return None;
    }
    let selected = if patterns.is_empty() {
        None
    } else {
        let known = ok.iter().flat_map(|g| crate::cli::scope::known(&g.compiled.objects, &g.live));
        match crate::cli::scope::select(patterns, &known.map(str::to_string).collect()) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("{e}");
                return None;
            }
        }
    };
    let mut out = Vec::new();
    let mut failed = false;
    for (i, g) in ok.iter().enumerate() {
        let limited = selected.as_ref().map(|s| crate::cli::scope::restrict(&g.compiled.objects, &g.live, s));
        let (desired, live) = match &limited {
            Some((d, l)) => (d.as_slice(), l.as_slice()),
            None => (g.compiled.objects.as_slice(), g.live.as_slice()),
        };
        let elsewhere = elsewhere(&ok, &described, i);
        let resolved = g.compiled.resolved.as_ref()?;
        let applyset = applyset_id(&resolved.fleet);
        let protected: BTreeSet<String> =
            resolved.fleet.clusters.iter().filter(|c| c.prevent_destroy).map(|c| c.name.value.clone()).collect();
        let fleet_dir = g.compiled.sources.iter().next().map(|(_, f)| f.dir().to_path_buf()).unwrap_or_default();
        let (mut plan, diags) = plan(&PlanInput {
            desired,
            live,
            applyset: &applyset,
            protected: &protected,
            target: described[i].clone(),
            input_digest: g.compiled.input_digest.clone(),
            live_is_whole: matches!(g.target, Opened::Dir(_)),
            neighbours: &g.neighbours,
            elsewhere: &elsewhere,
            fleet_dir: &fleet_dir,
        });
        let mut diags = diags;
        count_every_pool(g.target.live(), &mut plan, live);
        let mut capacity = match (&selected, &limited) {
            (Some(s), Some((_, kept))) => {
                let after = crate::cli::scope::demand_after(&resolved.fleet, &g.live, kept, s);
                crate::plan::capacity::report_after(&resolved.fleet, &after, Some(&g.live))
            }
            _ => crate::plan::capacity::report(&resolved.fleet, Some(&g.live)),
        };
        let peak = crate::resolve::capacity::surge::check(&resolved.fleet, &rollouts(&plan, &g.live), &mut diags);
        crate::plan::capacity::add_peak(&mut capacity, &peak);
        plan.capacity = Some(capacity);
        plan.limited_to = selected.iter().flatten().cloned().collect();
        crate::plan::profiles::name_profiles(&mut plan, &resolved.fleet);
        // Versions against the live HostedClusters (downgrades, minor skips).
        let (versions, notes) =
            crate::release::rules::check_live_fleet(&resolved.fleet.clusters, &g.live, &described[i]);
        diags.extend(versions);
        for (id, note) in notes {
            plan.changes.iter_mut().filter(|c| c.id == id).for_each(|c| c.notes.push(note.clone()));
        }
        failed |= diags.has_errors();
        print_diagnostics(diags, &sources, DiagFormat::Human, style);
        out.push(plan);
    }
    if failed {
        eprintln!("error: the plan cannot be applied");
        return None;
    }
    let parts = ok
        .into_iter()
        .zip(out)
        .map(|(g, plan)| {
            let Gathered { target, mut compiled, live, .. } = g;
            compiled.sources = sources.clone();
            Planned { compiled: compiled.into(), target, live: live.into(), plan }
        })
        .collect();
    Some(FleetPlanned { parts })
}

/// The pools this plan rolls by replacement, with their live `maxSurge`.
fn rollouts(
    plan: &crate::plan::Plan,
    live: &[crate::live::LiveObject],
) -> Vec<crate::resolve::capacity::surge::Rollout> {
    plan.changes
        .iter()
        .filter_map(|c| {
            let nodes = c.rolls_nodes?;
            let cluster = c.cluster.clone()?;
            let body = live.iter().find(|l| l.id == c.id).map(|l| &l.body);
            let surge = body.map_or(1, |b| crate::resolve::capacity::surge::max_surge(b, nodes));
            Some(crate::resolve::capacity::surge::Rollout { cluster, node_pool: c.id.name.clone(), surge })
        })
        .collect()
}

/// The management cluster's verdict on every object the plan would create
/// or change (server-side dry run, `live::dry_run`): an error per refusal,
/// and a note for objects that can only be judged once apply has created
/// their namespace. A plan without changes sends nothing.
fn dry_run(
    k: &crate::live::kube::KubeTarget,
    plan: &Plan,
    objects: &[DesiredObject],
    fleet: &crate::ir::Fleet,
    force_conflicts: bool,
) -> Vec<Diagnostic> {
    use crate::live::Target;
    let (now, later) = crate::live::dry_run::to_check(&plan.changes, objects);
    let mut out: Vec<Diagnostic> = k
        .dry_run(&now, DRY_RUN_PARALLELISM, force_conflicts)
        .into_iter()
        .map(|r| {
            let cluster = objects.iter().find(|o| o.id == r.id).and_then(|o| o.cluster.as_deref());
            if r.conflict {
                crate::plan::rejected::conflict(fleet, &r.id, cluster, &r.message)
            } else {
                crate::plan::rejected::diagnostic(fleet, &r.id, cluster, &r.message, r.field.as_deref())
            }
        })
        .collect();
    if !later.is_empty() {
        out.push(Diagnostic::note(
            Code::DryRunAtApply,
            format!(
                "{} object{} in namespaces this plan creates can be checked by the management cluster only once they exist: apply checks {} right after creating the Namespaces, before any other write",
                later.len(),
                if later.len() == 1 { "" } else { "s" },
                if later.len() == 1 { "it" } else { "them" }
            ),
        ));
    }
    out
}

/// The management cluster's verdict (server-side dry run) on what
/// `planned` would create or change, printed as diagnostics; `None` when it
/// refused anything. Called on what is about to be shown or written: in
/// apply, after a rollout has held back the changes that must wait, so each
/// pass judges only its own writes.
/// `force_conflicts`: as the write will be sent (`apply --force-conflicts`);
/// otherwise a field another manager owns is refused, naming it.
pub fn judge(planned: FleetPlanned, style: Style, force_conflicts: bool) -> Option<FleetPlanned> {
    judge_as(planned, style, false, force_conflicts)
}

/// [`judge`] for a plan that is only shown: an identity that may read but
/// not write (a pull request's) cannot dry-run, and that is a note naming
/// the permission, not a failed plan; apply judges again before writing.
fn judge_as(planned: FleetPlanned, style: Style, shown_only: bool, force_conflicts: bool) -> Option<FleetPlanned> {
    let mut refused = false;
    for part in &planned.parts {
        let (Opened::Kube(k), Some(resolved)) = (&part.target, part.compiled.resolved.as_ref()) else { continue };
        let mut diags = crate::diagnostic::Diagnostics::default();
        for mut d in dry_run(k, &part.plan, &part.compiled.objects, &resolved.fleet, force_conflicts) {
            if shown_only && d.code == Code::Forbidden {
                d.severity = crate::diagnostic::Severity::Note;
                d.help = Some(format!(
                    "{}; the management cluster's admission is not checked by this plan: apply checks it before writing",
                    d.help.unwrap_or_default().trim_end_matches(". Nothing was written")
                ));
            }
            diags.push(d);
        }
        refused |= diags.has_errors();
        print_diagnostics(diags, &part.compiled.sources, DiagFormat::Human, style);
    }
    (!refused).then_some(planned)
}

/// How many dry-run requests a plan has in flight at once.
const DRY_RUN_PARALLELISM: usize = 32;

/// One target: open it, discover what it offers (kube), resolve and render
/// its clusters, and read its live state (on a cluster, while the rest
/// runs). An error names the target.
fn gather(
    part: TargetFleet,
    sources: crate::source::SourceMap,
    request_timeout: Duration,
    freshness: Freshness,
) -> Result<Gathered, String> {
    let TargetFleet { target, mut fleet, at } = part;
    let name = spelled(&target);
    // Where the configuration names the target, so a wrong context written
    // in a file is found there.
    let written = at
        .as_ref()
        .filter(|s| (s.file.0 as usize) < sources.len())
        .map(|s| {
            let f = sources.get(s.file);
            let (line, col) = f.line_col(s.offset);
            format!("\n  --> {}:{line}:{col}: the `target` naming it", f.path.display())
        })
        .unwrap_or_default();
    let opened =
        Opened::open(&target, request_timeout).map_err(|e| format!("error[hcpc::target]: {name}: {e}{written}"))?;
    let applyset = applyset_id(&fleet);
    let wanted = |c: &Compiled| -> Vec<ObjectId> { c.objects.iter().map(|o| o.id.clone()).collect() };
    let cannot = |e: String| format!("error: cannot read {}: {e}", opened.live().describe());
    // A part that does not compile is returned for its diagnostics, unread.
    let mut unread: Option<Compiled> = None;
    let read = match &opened {
        Opened::Kube(kube) => {
            let mut failed: Option<String> = None;
            // What the cluster offers feeds the resolution rules; the
            // fleet's objects are read meanwhile.
            let read = kube.read_while(&applyset, freshness, |discovered| {
                let mut found = match discovered {
                    Ok(found) => found,
                    Err(e) => {
                        failed = Some(format!(
                            "error[hcpc::api]: cannot discover the infrastructure of {}: {e}",
                            opened.live().describe()
                        ));
                        return None;
                    }
                };
                let at = at.unwrap_or(crate::source::Span { file: crate::source::FileId(0), offset: 0, len: 0 });
                let supported = std::mem::take(&mut found.supported_versions);
                let diags = found.merge_into(&mut fleet.inventory, at);
                let mut compiled = back(sources, fleet, diags);
                if let Some(r) = &compiled.resolved {
                    let target = opened.live().describe();
                    crate::release::rules::check_supported(&r.fleet.clusters, &supported, &target, &mut compiled.diags);
                }
                if compiled.diags.has_errors() || compiled.resolved.is_none() {
                    unread = Some(compiled);
                    return None;
                }
                let ids = wanted(&compiled);
                Some((compiled, ids))
            });
            if let Some(f) = failed {
                return Err(f);
            }
            read.map_err(cannot)?
        }
        Opened::Dir(_) => {
            let compiled = back(sources, fleet, Default::default());
            if compiled.diags.has_errors() || compiled.resolved.is_none() {
                unread = Some(compiled);
                None
            } else {
                let live = opened.live().read(&applyset, &wanted(&compiled)).map_err(cannot)?;
                Some((compiled, live))
            }
        }
    };
    let Some((compiled, live)) = read else {
        let compiled = unread.ok_or_else(|| format!("error: {name}: nothing was compiled"))?;
        return Ok(Gathered { target: opened, compiled, live: Vec::new(), neighbours: Vec::new() });
    };
    let neighbours = neighbours(opened.live(), &live, &wanted(&compiled), &applyset).map_err(cannot)?;
    Ok(Gathered { target: opened, compiled, live, neighbours })
}

/// The HostedClusters of every target but `i`: declared there, or live
/// there in the fleet's ApplySet and no longer declared there.
fn elsewhere(all: &[Gathered], described: &[String], i: usize) -> Elsewhere {
    let mut out = Elsewhere::default();
    for (j, g) in all.iter().enumerate().filter(|(j, _)| *j != i) {
        let declared: BTreeSet<&ObjectId> =
            g.compiled.objects.iter().filter(|o| o.id.kind == Kind::HostedCluster).map(|o| &o.id).collect();
        let applyset = g.compiled.resolved.as_ref().map(|r| applyset_id(&r.fleet)).unwrap_or_default();
        for id in &declared {
            out.declared.entry((*id).clone()).or_insert_with(|| described[j].clone());
        }
        for l in g.live.iter().filter(|l| l.id.kind == Kind::HostedCluster && !declared.contains(&l.id)) {
            let part_of = l.body.pointer("/metadata/labels").and_then(|m| m.get(labels::APPLYSET_PART_OF));
            if part_of == Some(&Value::String(applyset.clone())) {
                out.live.entry(l.id.clone()).or_insert_with(|| described[j].clone());
            }
        }
    }
    out
}

/// Every HostedCluster in the namespaces where this fleet has Secrets it
/// no longer declares: one of them (another fleet's, or made by hand) may
/// still name such a Secret. One LIST per such namespace, none when
/// nothing is pruned.
fn neighbours(
    live_state: &dyn crate::live::LiveState,
    live: &[LiveObject],
    wanted: &[ObjectId],
    applyset: &str,
) -> Result<Vec<LiveObject>, String> {
    let wanted: BTreeSet<&ObjectId> = wanted.iter().collect();
    let namespaces: BTreeSet<&str> = live
        .iter()
        .filter(|l| l.id.kind == Kind::Secret && !wanted.contains(&l.id))
        .filter(|l| {
            l.body.pointer("/metadata/labels").and_then(|m| m.get(labels::APPLYSET_PART_OF))
                == Some(&Value::String(applyset.to_string()))
        })
        .map(|l| l.id.namespace.as_str())
        .collect();
    let mut out = Vec::new();
    for ns in namespaces {
        for body in live_state.hosted_clusters(ns)? {
            let name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
            out.push(LiveObject { id: ObjectId::new(Kind::HostedCluster, ns, &name), body, version: None });
        }
    }
    Ok(out)
}

/// Destroying a HostedCluster destroys every NodePool naming it, this
/// fleet's or not (one made by hand with its `clusterName`): the plan's
/// destruction counts them all. One LIST per namespace, only when a
/// cluster goes.
fn count_every_pool(live_state: &dyn crate::live::LiveState, plan: &mut crate::plan::Plan, live: &[LiveObject]) {
    let namespaces: BTreeSet<&str> = plan.destruction.clusters.iter().map(|c| c.id.namespace.as_str()).collect();
    if namespaces.is_empty() {
        return;
    }
    let known: BTreeSet<&ObjectId> = live.iter().map(|l| &l.id).collect();
    let mut others = Vec::new();
    for ns in namespaces {
        match live_state.node_pools(ns) {
            Ok(pools) => others.extend(pools.into_iter().filter_map(|body| {
                let name = body.pointer("/metadata/name").and_then(Value::as_str)?.to_string();
                let id = ObjectId::new(Kind::NodePool, ns, &name);
                (!known.contains(&id)).then_some(LiveObject { id, body, version: None })
            })),
            Err(e) => {
                eprintln!("warning: {e}; the destruction shown counts only this fleet's NodePools there");
            }
        }
    }
    if others.is_empty() {
        return;
    }
    let all: Vec<LiveObject> = live.iter().cloned().chain(others).collect();
    plan.destruction = crate::plan::destruction::destruction(&plan.changes, &all);
    plan.impact.vms_destroyed = plan.destruction.vms_destroyed;
    plan.impact.vms_replaced = plan.destruction.vms_replaced;
}

#[allow(clippy::too_many_arguments, reason = "one per command-line option")]
pub fn run(
    path: &Path,
    flags: &TargetFlags,
    clusters: &[String],
    format: PlanFormat,
    max_bytes: Option<usize>,
    out: Option<&Path>,
    detailed: bool,
    style: Style,
) -> u8 {
    if max_bytes.is_some() && format != PlanFormat::Markdown {
        eprintln!("error: --max-bytes applies to --format markdown only");
        return exit::ERROR;
    }
    // JSON and markdown are documents for tools and pull requests: always
    // printed, with the diagnostics, also when there is no plan.
    let document = matches!(format, PlanFormat::Json | PlanFormat::Markdown);
    if document {
        crate::cli::printer::keep_diagnostics();
    }
    let Some(planned) =
        make_limited(path, flags, clusters, style, Freshness::Cached).and_then(|p| judge_as(p, style, true, false))
    else {
        if document {
            let kept = crate::cli::printer::kept_diagnostics();
            let doc = match format {
                PlanFormat::Json => crate::plan::document::failed_json(&kept),
                _ => crate::plan::document::failed_markdown(&kept),
            };
            crate::cli::output::print(&doc);
        }
        return exit::ERROR;
    };
    let color = style.color && std::io::stdout().is_terminal();
    // 0 means no limit.
    let budget = match max_bytes {
        None => Some(view::DEFAULT_MAX_BYTES),
        Some(0) => None,
        Some(n) => Some(n),
    };
    let text = render(&planned, format, color, style.verbose, budget);
    // Where an upgrade stands (read only when a change is governed).
    let rollout = match crate::cli::rollout::standing_of(&planned, &crate::cli::rollout::RolloutFlags::for_plan()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let text = crate::cli::rollout::with_rollout(text, format, rollout.as_ref().map(|r| &r.standing));
    // A reader that stops early (`| head`) is not an error.
    crate::cli::output::print(&text);
    if let Some(out) = out {
        let key = match DigestKey::random() {
            Ok(k) => k,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::ERROR;
            }
        };
        let saved = SavedPlan {
            format_version: crate::plan::model::FLEET_FORMAT_VERSION.to_string(),
            digest_key: key.to_hex(),
            config: path.to_path_buf(),
            clusters: clusters.to_vec(),
            targets: planned
                .parts
                .iter()
                .map(|p| SavedTarget {
                    plan: key.seal(&p.plan),
                    desired: p.compiled.objects.iter().map(|o| key.digested(o)).collect(),
                    secrets_digest: key.mac(&p.compiled.secrets_digest),
                })
                .collect(),
        };
        let json = serde_json::to_string_pretty(&saved).unwrap_or_default();
        if let Err(e) = crate::live::dir::write_atomic(out, &json) {
            eprintln!("error: cannot write {}: {e}", out.display());
            return exit::ERROR;
        }
        if !style.quiet {
            eprintln!(
                "Saved the plan to {}. Apply exactly this plan with: hcpc apply {}",
                out.display(),
                out.display()
            );
        }
    }
    if detailed && planned.has_changes() { exit::CHANGES } else { exit::OK }
}

/// The fleet's plan in `format`; `max_bytes` limits markdown (`None`: no limit).
pub fn render(
    planned: &FleetPlanned,
    format: PlanFormat,
    color: bool,
    verbose: bool,
    max_bytes: Option<usize>,
) -> String {
    let fleet = planned.view();
    // A limited plan says so first (JSON: `limited_to` in each target's plan).
    let limited = planned.parts.first().map(|p| p.plan.limited_to.as_slice()).unwrap_or_default();
    let banner = |markdown| crate::cli::scope::banner(limited, markdown);
    match format {
        PlanFormat::Text => banner(false) + &view::fleet_text(&fleet, color, verbose) + &still_rolling(planned),
        // The documents for tools and pull requests carry the diagnostics
        // printed while planning (`printer::keep_diagnostics`).
        PlanFormat::Markdown => {
            let banner = banner(true);
            let max_bytes = max_bytes.map(|n| n.saturating_sub(banner.len()).max(crate::plan::markdown::MIN_MAX_BYTES));
            let opts = crate::plan::markdown::Options { grouped: !verbose, max_bytes };
            banner + &crate::plan::document::markdown(&fleet, &opts, &crate::cli::printer::kept_diagnostics())
        }
        PlanFormat::Json => crate::plan::document::json(&fleet, &crate::cli::printer::kept_diagnostics()),
        PlanFormat::Diff => {
            let head: String = banner(false).lines().filter(|l| !l.is_empty()).map(|l| format!("# {l}\n")).collect();
            let body: String = if planned.parts.len() == 1 {
                planned.parts.iter().map(unified).collect()
            } else {
                planned.parts.iter().map(|p| format!("# target {}\n{}", p.plan.target, unified(p))).collect()
            };
            head + &body
        }
    }
}

/// After "No changes.": a roll-out the live status shows still under way,
/// which no change of this plan is about but which is not finished.
fn still_rolling(planned: &FleetPlanned) -> String {
    if planned.has_changes() {
        return String::new();
    }
    let moving = crate::cli::rollout::under_way(planned);
    if moving.is_empty() {
        return String::new();
    }
    format!("The roll-out is still under way: {}. `hcpc apply --wait` follows it to the end.\n", moving.join(", "))
}

/// One target's changes as unified diffs of masked YAML.
fn unified(planned: &Planned) -> String {
    let bodies = |c: &crate::plan::Change| {
        let desired = planned.compiled.objects.iter().find(|o| o.id == c.id);
        let live = planned.live.iter().find(|l| l.id == c.id);
        let mut after = desired.filter(|_| c.action != crate::plan::Action::Delete).map(masked);
        let before = live.map(|l| restrict(&masked_live(l), desired));
        // Both sides of a Secret's data print `(sensitive)`: mark the
        // values that differ, or the change would not show at all.
        if let (Some(after), Some(d), Some(l)) = (after.as_mut(), desired, live) {
            mark_changed_data(after, d.body(), &l.body);
        }
        (before, after)
    };
    view::unified(&planned.plan, &bodies)
}

/// In a masked Secret, `(sensitive, changed)` for each data value that
/// differs from the live one.
fn mark_changed_data(masked: &mut Value, desired: &Value, live: &Value) {
    let Some(Value::Object(data)) = masked.get_mut("data") else { return };
    for (key, value) in data.iter_mut() {
        if desired.pointer("/data").and_then(|d| d.get(key)) != live.pointer("/data").and_then(|d| d.get(key)) {
            *value = Value::String("(sensitive, changed)".into());
        }
    }
}

/// The (masked) live body limited to the fields the desired object sets,
/// so a diff shows only what hcpc manages.
fn restrict(live: &Value, desired: Option<&DesiredObject>) -> Value {
    fn keep(l: &Value, d: &Value) -> Value {
        match (l, d) {
            (Value::Object(lm), Value::Object(dm)) => {
                Value::Object(lm.iter().filter_map(|(k, v)| dm.get(k).map(|dv| (k.clone(), keep(v, dv)))).collect())
            }
            _ => l.clone(),
        }
    }
    match desired {
        Some(d) => keep(live, d.body()),
        // A destroyed object, whole; its status (the version the rules
        // read, when listed) is the operator's, not a field hcpc set.
        None => {
            let mut whole = live.clone();
            if let Value::Object(m) = &mut whole {
                m.remove("status");
            }
            whole
        }
    }
}

/// The key of a saved plan's digests, random per plan. Every digest the
/// plan records that covers Secret data (the desired Secrets, the live
/// versions, the inputs) is an HMAC-SHA256 under it, so a digest cannot be
/// looked up in a table made in advance nor matched across plans; apply
/// recomputes them with the key the plan records.
pub struct DigestKey([u8; 32]);

impl DigestKey {
    pub fn random() -> Result<DigestKey, String> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("cannot generate the plan's digest key: {e}"))?;
        Ok(DigestKey(key))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(hex: &str) -> Option<DigestKey> {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect::<Option<_>>()?;
        Some(DigestKey(bytes.try_into().ok()?))
    }

    /// `hmac-sha256:HEX` of `text` (RFC 2104 over SHA-256).
    pub fn mac(&self, text: &str) -> String {
        use sha2::{Digest, Sha256};
        const BLOCK: usize = 64;
        let (mut inner_pad, mut outer_pad) = ([0x36u8; BLOCK], [0x5cu8; BLOCK]);
        for (i, b) in self.0.iter().enumerate() {
            inner_pad[i] ^= b;
            outer_pad[i] ^= b;
        }
        let inner = Sha256::new().chain_update(inner_pad).chain_update(text.as_bytes()).finalize();
        let outer = Sha256::new().chain_update(outer_pad).chain_update(inner).finalize();
        format!("hmac-sha256:{outer:x}")
    }

    /// An object with Secret data replaced by keyed digests.
    pub fn digested(&self, o: &DesiredObject) -> Value {
        let mut body = o.body().clone();
        if o.sensitive {
            map_data(&mut body, |v| Value::String(self.mac(&crate::plan::diff::digest_value(v))));
        }
        body
    }

    /// The plan as saved: its input digest and live versions keyed.
    pub fn seal(&self, plan: &Plan) -> Plan {
        let mut sealed = plan.clone();
        sealed.input_digest = self.mac(&plan.input_digest);
        for c in &mut sealed.changes {
            c.live_version = c.live_version.as_deref().map(|v| self.mac(v));
        }
        sealed
    }
}
