//! `hcpc check`: parse, lower and resolve; print diagnostics only.

use std::path::Path;

use crate::cli::args::DiagFormat;
use crate::cli::exit;
use crate::cli::load::compile;
use crate::cli::printer::{Style, print_diagnostics_with};

pub fn run(path: &Path, format: DiagFormat, deny_warnings: bool, style: Style) -> u8 {
    let mut compiled = compile(path);
    let clusters = compiled.resolved.as_ref().map_or(0, |r| r.fleet.clusters.len());
    // `-v`: what the fleet requests of its infrastructure (no live state, so no "before").
    let capacity = compiled
        .resolved
        .as_ref()
        .filter(|_| style.verbose && format == DiagFormat::Human)
        .map(|r| crate::plan::capacity::text(&crate::plan::capacity::report(&r.fleet, None)));
    let objects = compiled.objects.len();
    let needs_target = compiled.resolved.as_ref().map(|r| crate::resolve::needs_target(&r.fleet)).unwrap_or_default();
    let deferred = compiled.resolved.as_ref().map(|r| deferred_line(&r.fleet, &needs_target, style.verbose));
    let (errors, warnings) =
        print_diagnostics_with(std::mem::take(&mut compiled.diags), &compiled.sources, format, style, &needs_target);
    // The process ends next: freeing the fleet object by object would only cost time.
    std::mem::forget(compiled);
    let failed = errors > 0 || (deny_warnings && warnings > 0);
    if let Some(table) = capacity {
        crate::cli::output::print(&table);
    }
    if format == DiagFormat::Human && !style.quiet {
        if failed {
            eprintln!("{}", summary("check failed", errors, warnings));
        } else {
            let tail = deferred.flatten().map(|t| format!(", checked offline; {t}")).unwrap_or_default();
            eprintln!(
                "{}: {clusters} cluster{}, {objects} objects{tail}",
                summary("ok", errors, warnings),
                if clusters == 1 { "" } else { "s" }
            );
        }
    }
    if failed { exit::ERROR } else { exit::OK }
}

/// `3 rules need the management cluster: run plan`, when some rules could
/// not run offline (`-v` names them).
fn deferred_line(fleet: &crate::ir::Fleet, codes: &[crate::diagnostic::Code], verbose: bool) -> Option<String> {
    if codes.is_empty() {
        return None;
    }
    let on_cluster = fleet
        .target
        .iter()
        .chain(fleet.clusters.iter().filter_map(|c| c.target.as_ref()))
        .any(|t| matches!(t.value, crate::ir::Target::Kube { .. }));
    let rules = if codes.len() == 1 { "1 rule needs".to_string() } else { format!("{} rules need", codes.len()) };
    let mut line = if on_cluster {
        format!("{rules} the management cluster: run plan")
    } else {
        format!("{rules} facts about the infrastructure: declare them in `infra`, or plan against a cluster")
    };
    if verbose {
        let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        line.push_str(&format!(" ({})", names.join(", ")));
    }
    Some(line)
}

fn summary(head: &str, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!("{head} ({}, {})", plural(errors, "error"), plural(warnings, "warning"))
}
