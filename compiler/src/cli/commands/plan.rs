//! `hcpc plan`: compile, read live state, diff, print.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::args::{DiagFormat, PlanFormat};
use crate::cli::exit;
use crate::cli::load::{Compiled, back, front, read_sources};
use crate::cli::printer::{Style, print_diagnostics};
use crate::cli::target::{Opened, choose};
use crate::diagnostic::{Code, Diagnostic};
use crate::live::LiveObject;
use crate::plan::{Plan, PlanInput, plan, view};
use crate::render::{DesiredObject, applyset_id, map_data, masked};

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
pub fn make(path: &Path, target_flag: Option<&str>, style: Style) -> Option<Planned> {
    let sources = match read_sources(path) {
        Ok(s) => s,
        Err(d) => {
            print_diagnostics(d.into(), &Default::default(), DiagFormat::Human, style);
            return None;
        }
    };
    let (mut fleet, mut diags) = front(&sources);
    let chosen = match choose(target_flag, &fleet, &sources) {
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
    // With a cluster at hand, what it offers feeds the resolution rules.
    if let (Opened::Kube(_), false) = (&target, fleet.named) {
        let mut d = Diagnostic::warning(Code::UnnamedFleet, "this fleet has no name, so it shares the ApplySet `default`")
            .help("add `fleet NAME` (unique per configuration): objects of another unnamed configuration on the same cluster would otherwise be pruned by this one");
        if let Some(t) = &fleet.target {
            d = d.label(t.span, "applied to a cluster here");
        }
        diags.push(d);
    }
    if let (Opened::Kube(kube), false) = (&target, diags.has_errors()) {
        match kube.discover() {
            Ok(found) => {
                let at = fleet.target.as_ref().map(|t| t.span).unwrap_or(crate::source::Span {
                    file: crate::source::FileId(0),
                    offset: 0,
                    len: 0,
                });
                diags.extend(found.merge_into(&mut fleet.inventory, at));
            }
            Err(e) => {
                eprintln!("error[hcpc::api]: cannot discover the infrastructure: {e}");
                return None;
            }
        }
    }
    let compiled = super::report(back(sources, fleet, diags), style)?;
    let resolved = compiled.resolved.as_ref()?;
    let applyset = applyset_id(&resolved.fleet);
    let wanted: Vec<_> = compiled.objects.iter().map(|o| o.id.clone()).collect();
    let live = match target.live().read(&applyset, &wanted) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", target.live().describe());
            return None;
        }
    };
    let protected: BTreeSet<String> =
        resolved.fleet.clusters.iter().filter(|c| c.prevent_destroy).map(|c| c.name.value.clone()).collect();
    let (plan, diags) = plan(&PlanInput {
        desired: &compiled.objects,
        live: &live,
        applyset: &applyset,
        protected: &protected,
        target: target.live().describe(),
        input_digest: compiled.input_digest.clone(),
        live_is_whole: matches!(target, Opened::Dir(_)),
    });
    let has_errors = diags.has_errors();
    print_diagnostics(diags, &compiled.sources, DiagFormat::Human, style);
    if has_errors {
        eprintln!("error: the plan cannot be applied");
        return None;
    }
    Some(Planned { compiled, target, live, plan })
}

pub fn run(
    path: &Path,
    target_flag: Option<&str>,
    format: PlanFormat,
    out: Option<&Path>,
    detailed: bool,
    style: Style,
) -> u8 {
    let Some(planned) = make(path, target_flag, style) else { return exit::ERROR };
    let color = style.color && std::io::stdout().is_terminal();
    let text = render(&planned, format, color, style.verbose);
    print!("{text}");
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
    if detailed && planned.plan.has_changes() { exit::CHANGES } else { exit::OK }
}

pub fn render(planned: &Planned, format: PlanFormat, color: bool, verbose: bool) -> String {
    match format {
        PlanFormat::Text => view::text(&planned.plan, color, verbose),
        PlanFormat::Markdown => view::markdown(&planned.plan),
        PlanFormat::Json => view::json(&planned.plan),
        PlanFormat::Diff => {
            let bodies = |c: &crate::plan::Change| {
                let desired = planned.compiled.objects.iter().find(|o| o.id == c.id);
                let live = planned.live.iter().find(|l| l.id == c.id);
                let after = desired.filter(|_| c.action != crate::plan::Action::Delete).map(masked);
                let before = live.map(|l| restrict(&l.body, desired));
                (before, after)
            };
            view::unified(&planned.plan, &bodies)
        }
    }
}

/// The live body limited to the fields the desired object sets (and with
/// Secret data masked), so a diff shows only what hcpc manages.
fn restrict(live: &Value, desired: Option<&DesiredObject>) -> Value {
    fn keep(l: &Value, d: &Value) -> Value {
        match (l, d) {
            (Value::Object(lm), Value::Object(dm)) => {
                Value::Object(lm.iter().filter_map(|(k, v)| dm.get(k).map(|dv| (k.clone(), keep(v, dv)))).collect())
            }
            _ => l.clone(),
        }
    }
    let mut v = match desired {
        Some(d) => keep(live, d.body()),
        None => live.clone(),
    };
    // Masked by kind, not by what is desired: a deleted Secret is a Secret too.
    if v.get("kind").and_then(Value::as_str) == Some("Secret") {
        map_data(&mut v, |_| Value::String("(sensitive)".into()));
        if let Some(Value::Object(data)) = v.get_mut("stringData") {
            data.values_mut().for_each(|x| *x = Value::String("(sensitive)".into()));
        }
    }
    v
}

/// An object with Secret data replaced by digests, for saved plans.
pub fn digested(o: &DesiredObject) -> Value {
    let mut body = o.body().clone();
    if o.sensitive {
        map_data(&mut body, |v| Value::String(crate::plan::diff::digest_value(v)));
    }
    body
}
