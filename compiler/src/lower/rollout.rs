//! `rollout { wave … }`: the waves release changes go through.

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::{MaxParallel, Rollout, Wave};
use crate::quantity::IntOrPercent;
use crate::selector::Selector;

use super::layers::NodeRef;

/// Lowers the fleet's `rollout` block. Values of the wrong kind were
/// reported by `check`; here: selectors, repeated names, unreachable waves.
pub fn lower_rollout(node: &NodeRef<'_>, diags: &mut Diagnostics) -> Option<Rollout> {
    let block = node.children();
    let waves_nodes: Vec<NodeRef<'_>> = block
        .map(|b| {
            b.doc
                .nodes()
                .iter()
                .filter(|n| n.name().value() == "wave")
                .map(|n| NodeRef { node: n, file: b.file, dir: b.dir })
                .collect()
        })
        .unwrap_or_default();
    if waves_nodes.is_empty() {
        diags.push(
            Diagnostic::error(Code::RolloutWaves, "`rollout` has no wave")
                .label(node.name_span(), "no `wave` inside")
                .help("add `wave NAME selector=\"…\" max-parallel=N`, one per step, in order"),
        );
        return None;
    }
    let mut waves: Vec<Wave> = Vec::new();
    let mut catch_all: Option<String> = None;
    let mut ok = true;
    for n in &waves_nodes {
        let Some(name) = n.arg(0).and_then(|v| v.string()) else {
            ok = false;
            continue;
        };
        if let Some(first) = waves.iter().find(|w| w.name.value == name.value) {
            diags.push(
                Diagnostic::error(Code::RolloutWaves, format!("two waves are called `{}`", name.value))
                    .label(name.span, "declared again here")
                    .label(first.name.span, "first declared here")
                    .help("give each wave its own name: `--until-wave` and the plan name them"),
            );
            ok = false;
        }
        if let Some(all) = &catch_all {
            diags.push(
                Diagnostic::error(Code::RolloutWaves, format!("wave `{}` can have no clusters", name.value))
                    .label(name.span, "after a wave without a selector")
                    .help(format!(
                        "wave `{all}` has no selector, so it takes every cluster no earlier wave took; move it last"
                    )),
            );
            ok = false;
        }
        let selector = match n.prop("selector") {
            Some(v) => match v.str().map(Selector::parse) {
                Some(Ok(s)) => Some(s),
                Some(Err(why)) => {
                    diags.push(
                        Diagnostic::error(Code::RolloutSelector, format!("`selector` is not a label selector: {why}"))
                            .label(v.span(), "invalid selector")
                            .help("write it as for `kubectl get -l`: `env=canary`, `env in (dev,qa)`, `!canary`, joined by commas"),
                    );
                    ok = false;
                    None
                }
                None => None,
            },
            None => {
                catch_all.get_or_insert_with(|| name.value.clone());
                None
            }
        };
        let max_parallel = match n.prop("max-parallel") {
            None => MaxParallel::All,
            Some(v) => match (v.count(), v.str().and_then(IntOrPercent::percent).and_then(|p| u32::try_from(p).ok())) {
                (Some(c), _) => MaxParallel::Count(c),
                (None, Some(p)) => MaxParallel::Percent(p),
                _ => {
                    ok = false;
                    MaxParallel::All
                }
            },
        };
        waves.push(Wave { name, selector, max_parallel });
    }
    ok.then_some(Rollout { waves })
}
