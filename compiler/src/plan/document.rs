//! The plan documents for tools and pull requests (`plan --format json` and
//! `--format markdown`) with the run's diagnostics in them: the warnings of
//! a plan that succeeds (`near_capacity`, …), and, when planning fails, a
//! document that says so with the errors, so a CI job that posts the output
//! never posts nothing.

use std::fmt::Write;

use serde::Serialize;

use super::markdown::{self, MIN_MAX_BYTES, Options, code, escape};
use super::model::{FORMAT_VERSION, FleetPlan};
use crate::diagnostic::Located;

/// At most this many diagnostics are listed in a markdown plan.
const MARKDOWN_DIAGNOSTICS: usize = 20;

#[derive(Serialize)]
struct WithDiagnostics<'a, T: Serialize> {
    #[serde(flatten)]
    plan: &'a T,
    diagnostics: &'a [Located],
}

/// The JSON plan ([`super::view::fleet_json`]'s document) with `diagnostics`.
pub fn json(fleet: &FleetPlan<'_>, diagnostics: &[Located]) -> String {
    let doc = match (fleet.targets.as_slice(), fleet.moves.as_slice()) {
        ([one], []) => serde_json::to_string_pretty(&WithDiagnostics { plan: *one, diagnostics }),
        _ => serde_json::to_string_pretty(&WithDiagnostics { plan: fleet, diagnostics }),
    };
    doc.unwrap_or_default() + "\n"
}

/// The JSON of a plan that could not be made: `failed` and why.
pub fn failed_json(diagnostics: &[Located]) -> String {
    #[derive(Serialize)]
    struct Failed<'a> {
        format_version: &'static str,
        failed: bool,
        diagnostics: &'a [Located],
    }
    let doc = Failed { format_version: FORMAT_VERSION, failed: true, diagnostics };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// The markdown plan with a section of diagnostics after its summary; the
/// plan's budget is what the section leaves.
pub fn markdown(fleet: &FleetPlan<'_>, opts: &Options, diagnostics: &[Located]) -> String {
    let section = section(diagnostics);
    let max_bytes = opts.max_bytes.map(|m| m.saturating_sub(section.len()).max(MIN_MAX_BYTES));
    let body = markdown::fleet_markdown(fleet, &Options { max_bytes, ..*opts });
    if section.is_empty() {
        return body;
    }
    // After the heading and the summary line.
    let at = body.match_indices("\n\n").nth(1).map_or(body.len(), |(i, _)| i + 2);
    format!("{}{section}{}", &body[..at], &body[at..])
}

/// The markdown of a plan that could not be made.
pub fn failed_markdown(diagnostics: &[Located]) -> String {
    let errors = diagnostics.iter().filter(|d| d.severity == "error").count();
    let mut out = String::from("### hcpc plan failed\n\n");
    let _ = writeln!(
        out,
        "**No plan: {}.** Nothing can be applied until {} fixed.\n",
        match errors {
            0 => "the targets could not be read (see the job's log)".to_string(),
            1 => "1 error".to_string(),
            n => format!("{n} errors"),
        },
        if errors == 1 { "it is" } else { "they are" }
    );
    out.push_str(&section(diagnostics));
    out
}

/// `#### Diagnostics` and one line each for errors and warnings, errors
/// first (notes stay in the JSON: a comment on every pull request would
/// only repeat them).
fn section(diagnostics: &[Located]) -> String {
    let mut sorted: Vec<&Located> = diagnostics.iter().filter(|d| d.severity != "note").collect();
    if sorted.is_empty() {
        return String::new();
    }
    sorted.sort_by_key(|d| d.severity != "error");
    let mut out = String::from("#### Diagnostics\n\n");
    for d in sorted.iter().take(MARKDOWN_DIAGNOSTICS) {
        let at = match (&d.file, d.line, d.column) {
            (Some(f), Some(l), Some(c)) => format!(" at {}", code(&format!("{f}:{l}:{c}"))),
            _ => String::new(),
        };
        let _ = write!(out, "- **{}** {}{at}: {}", d.severity, code(d.code), escape(&d.message));
        if let Some(h) = &d.help {
            let _ = write!(out, " (help: {})", escape(h));
        }
        out.push('\n');
    }
    if sorted.len() > MARKDOWN_DIAGNOSTICS {
        let _ = writeln!(
            out,
            "- and {} more: `hcpc check --format json` lists them all",
            sorted.len() - MARKDOWN_DIAGNOSTICS
        );
    }
    out.push('\n');
    out
}
