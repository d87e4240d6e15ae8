//! `hcpc plan`: compile, read live state, diff, print.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::args::{DiagFormat, PlanFormat};
use crate::cli::exit;
use crate::cli::load::{Compiled, back, front, read_sources};
use crate::cli::printer::{Style, print_diagnostics};
use crate::cli::target::{Opened, TargetFlags, choose};
use crate::diagnostic::{Code, Diagnostic};
use crate::live::kube::Freshness;
use crate::object::{Kind, LiveObject, ObjectId};
use crate::plan::{Plan, PlanInput, plan, view};
use crate::render::{DesiredObject, applyset_id, map_data, masked, masked_live};
use hcpc_schema::labels;

/// A plan saved with `--out`: the plan (secrets only as digests), the
/// configuration it was made from, and the live versions it was made against.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: String,
    pub config: PathBuf,
    pub plan: Plan,
    /// The desired objects, Secret data replaced by digests.
    pub desired: Vec<Value>,
}

/// Everything a plan was made of, for printing and applying.
pub struct Planned {
    pub compiled: Compiled,
    pub target: Opened,
    pub live: Vec<LiveObject>,
    pub plan: Plan,
}

/// Compiles and plans; prints diagnostics; `None` on any error.
///
/// On a cluster, the live reads start as soon as the fleet's name is known
/// and run while the configuration resolves and renders; `freshness` says
/// whether they may come from the API server's watch cache (a plan only
/// shown) or must be consistent (the plan apply writes from).
pub fn make(path: &Path, flags: &TargetFlags, style: Style, freshness: Freshness) -> Option<Planned> {
    let sources = match read_sources(path) {
        Ok(s) => s,
        Err(d) => {
            print_diagnostics(d.into(), &Default::default(), DiagFormat::Human, style);
            return None;
        }
    };
    let (mut fleet, mut diags) = front(&sources);
    let chosen = match choose(flags, &fleet, &sources) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    let target = match Opened::open(chosen) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error[hcpc::target]: {e}");
            return None;
        }
    };
    if let (Opened::Kube(_), false) = (&target, fleet.named) {
        let mut d = Diagnostic::warning(Code::UnnamedFleet, "this fleet has no name, so it shares the ApplySet `default`")
            .help("add `fleet NAME` (unique per configuration): objects of another unnamed configuration on the same cluster would otherwise be pruned by this one");
        if let Some(t) = &fleet.target {
            d = d.label(t.span, "applied to a cluster here");
        }
        diags.push(d);
    }
    let applyset = applyset_id(&fleet);
    let wanted = |c: &Compiled| -> Vec<ObjectId> { c.objects.iter().map(|o| o.id.clone()).collect() };
    let read = match &target {
        Opened::Kube(kube) if !diags.has_errors() => {
            // With a cluster at hand, what it offers feeds the resolution
            // rules; the fleet's objects are read meanwhile.
            kube.read_while(&applyset, freshness, |discovered| {
                let found = match discovered {
                    Ok(found) => found,
                    Err(e) => {
                        eprintln!("error[hcpc::api]: cannot discover the infrastructure: {e}");
                        return None;
                    }
                };
                let at = fleet.target.as_ref().map(|t| t.span).unwrap_or(crate::source::Span {
                    file: crate::source::FileId(0),
                    offset: 0,
                    len: 0,
                });
                diags.extend(found.merge_into(&mut fleet.inventory, at));
                let compiled = super::report(back(sources, fleet, diags), style)?;
                compiled.resolved.as_ref()?;
                let ids = wanted(&compiled);
                Some((compiled, ids))
            })
        }
        _ => match super::report(back(sources, fleet, diags), style) {
            Some(compiled) if compiled.resolved.is_some() => {
                target.live().read(&applyset, &wanted(&compiled)).map(|live| Some((compiled, live)))
            }
            _ => Ok(None),
        },
    };
    let (compiled, live) = match read {
        Ok(read) => read?,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", target.live().describe());
            return None;
        }
    };
    let resolved = compiled.resolved.as_ref()?;
    let wanted = wanted(&compiled);
    let neighbours = match neighbours(target.live(), &live, &wanted, &applyset) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", target.live().describe());
            return None;
        }
    };
    let protected: BTreeSet<String> =
        resolved.fleet.clusters.iter().filter(|c| c.prevent_destroy).map(|c| c.name.value.clone()).collect();
    let (mut plan, diags) = plan(&PlanInput {
        desired: &compiled.objects,
        live: &live,
        applyset: &applyset,
        protected: &protected,
        target: target.live().describe(),
        input_digest: compiled.input_digest.clone(),
        live_is_whole: matches!(target, Opened::Dir(_)),
        neighbours: &neighbours,
    });
    plan.capacity = Some(crate::plan::capacity::report(&resolved.fleet, Some(&live)));
    let has_errors = diags.has_errors();
    print_diagnostics(diags, &compiled.sources, DiagFormat::Human, style);
    if has_errors {
        eprintln!("error: the plan cannot be applied");
        return None;
    }
    Some(Planned { compiled, target, live, plan })
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

pub fn run(
    path: &Path,
    flags: &TargetFlags,
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
    let Some(planned) = make(path, flags, style, Freshness::Cached) else { return exit::ERROR };
    let color = style.color && std::io::stdout().is_terminal();
    // 0 means no limit.
    let budget = match max_bytes {
        None => Some(view::DEFAULT_MAX_BYTES),
        Some(0) => None,
        Some(n) => Some(n),
    };
    let text = render(&planned, format, color, style.verbose, budget);
    // A reader that stops early (`| head`) is not an error.
    let _ = std::io::stdout().write_all(text.as_bytes()).and_then(|()| std::io::stdout().flush());
    if let Some(out) = out {
        let saved = SavedPlan {
            format_version: crate::plan::model::FORMAT_VERSION.to_string(),
            config: path.to_path_buf(),
            plan: planned.plan.clone(),
            desired: planned.compiled.objects.iter().map(digested).collect(),
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
    let code = if detailed && planned.plan.has_changes() { exit::CHANGES } else { exit::OK };
    // The process ends next: freeing a large fleet's desired and live
    // objects one allocation at a time would only cost time (a tenth of a
    // 1,000-cluster plan's CPU). Everything was written and flushed above.
    std::mem::forget(planned);
    code
}

/// The plan in `format`; `max_bytes` limits markdown (`None`: no limit).
pub fn render(planned: &Planned, format: PlanFormat, color: bool, verbose: bool, max_bytes: Option<usize>) -> String {
    match format {
        PlanFormat::Text => view::text(&planned.plan, color, verbose),
        PlanFormat::Markdown => {
            view::markdown(&planned.plan, &crate::plan::markdown::Options { grouped: !verbose, max_bytes })
        }
        PlanFormat::Json => view::json(&planned.plan),
        PlanFormat::Diff => {
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
    }
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
        None => live.clone(),
    }
}

/// An object with Secret data replaced by digests, for saved plans.
pub fn digested(o: &DesiredObject) -> Value {
    let mut body = o.body().clone();
    if o.sensitive {
        map_data(&mut body, |v| Value::String(crate::plan::diff::digest_value(v)));
    }
    body
}
