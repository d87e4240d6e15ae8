//! `hcpc check`: parse, lower and resolve; print diagnostics only.

use std::path::Path;

use crate::cli::args::DiagFormat;
use crate::cli::exit;
use crate::cli::load::compile;
use crate::cli::printer::{Style, print_diagnostics};

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
    let (errors, warnings) = print_diagnostics(std::mem::take(&mut compiled.diags), &compiled.sources, format, style);
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
            eprintln!(
                "{}: {clusters} cluster{}, {objects} objects",
                summary("ok", errors, warnings),
                if clusters == 1 { "" } else { "s" }
            );
        }
    }
    if failed { exit::ERROR } else { exit::OK }
}

fn summary(head: &str, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!("{head} ({}, {})", plural(errors, "error"), plural(warnings, "warning"))
}
