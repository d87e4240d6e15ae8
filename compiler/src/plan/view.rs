//! Views of a [`Plan`]: text for terminals, markdown for pull requests,
//! JSON for tools, unified diffs. All read the same plan.

use std::fmt::Write;

use serde_json::Value;

use super::model::{Action, Change, Plan};
use crate::render::yaml;

struct Paint {
    on: bool,
}

impl Paint {
    fn action(&self, a: Action, s: &str) -> String {
        if !self.on {
            return s.to_string();
        }
        let code = match a {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace => "35",
            Action::Delete => "31",
            Action::NoOp => "0",
        };
        format!("\x1b[{code}m{s}\x1b[0m")
    }
    fn bold(&self, s: &str) -> String {
        if self.on { format!("\x1b[1m{s}\x1b[0m") } else { s.to_string() }
    }
}

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(none)".to_string(),
        Some(Value::String(s)) if s == "(sensitive)" => s.clone(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

fn field_lines(c: &Change, out: &mut String, paint: &Paint, indent: &str) {
    for f in &c.fields {
        let line = match (c.action, &f.before, &f.after) {
            (Action::Create, _, after) => format!("+ {} = {}", f.path, show(after)),
            (_, Some(_), None) => format!("- {} = {}", f.path, show(&f.before)),
            (_, None, after) => format!("+ {} = {}", f.path, show(after)),
            (_, before, after) if f.sensitive => format!("~ {} = {} → {} (changed)", f.path, show(before), show(after)),
            (_, before, after) => format!("~ {}: {} → {}", f.path, show(before), show(after)),
        };
        let tail = if f.forces_replacement { "  # forces replacement" } else { "" };
        let sym = if c.action == Action::Create { Action::Create } else { c.action };
        let _ = writeln!(out, "{indent}{}{tail}", paint.action(sym, &line));
    }
}

/// Terraform-like text. Colour only when `color` is true.
pub fn text(plan: &Plan, color: bool, verbose: bool) -> String {
    let paint = Paint { on: color };
    let mut out = String::new();
    if plan.has_changes() {
        let _ = writeln!(out, "hcpc will perform these actions on {}:\n", plan.target);
    }
    for c in &plan.changes {
        if c.action == Action::NoOp {
            if verbose {
                let _ = writeln!(out, "    {} (unchanged)", c.id);
            }
            continue;
        }
        let mut head = format!("{} {}", c.action.symbol(), paint.bold(&c.id.to_string()));
        if c.action == Action::Replace {
            head.push_str("  (forces replacement)");
        }
        for n in c.notes.iter().filter(|n| n.starts_with("rolls ")) {
            let _ = write!(head, "  ({n})");
        }
        let _ = writeln!(out, "  {}", paint.action(c.action, &head));
        if c.action != Action::Delete {
            field_lines(c, &mut out, &paint, "      ");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", plan.summary_line());
    if let Some(c) = &plan.capacity {
        out.push('\n');
        out.push_str(&super::capacity::text(c));
    }
    out
}

/// A pull-request comment: summary table and a collapsible diff per object.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### hcpc plan for `{}`\n", plan.target);
    let _ = writeln!(out, "**{}**\n", plan.summary_line());
    if let Some(c) = &plan.capacity {
        out.push_str(&super::capacity::markdown(c));
    }
    if !plan.has_changes() {
        return out;
    }
    out.push_str("| Action | Object | Notes |\n|---|---|---|\n");
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        let word = match c.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "**replace**",
            Action::Delete => "**destroy**",
            Action::NoOp => "",
        };
        let _ = writeln!(
            out,
            "| `{}` {word} | `{}` | {} |",
            c.action.symbol(),
            c.id,
            c.notes.join("; ").replace('|', "\\|")
        );
    }
    out.push('\n');
    let paint = Paint { on: false };
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        let _ = writeln!(out, "<details><summary><code>{} {}</code></summary>\n", c.action.symbol(), c.id);
        out.push_str("```diff\n");
        if c.action == Action::Delete {
            let _ = writeln!(out, "- {}", c.id);
        } else {
            field_lines(c, &mut out, &paint, "");
        }
        out.push_str("```\n\n</details>\n\n");
    }
    let _ = writeln!(out, "Unchanged: {} objects.", plan.summary.unchanged);
    out
}

/// The versioned JSON plan (documented in the README).
pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).unwrap_or_default();
    s.push('\n');
    s
}

/// Gives the (live, desired) printable bodies of a change.
pub type BodiesOf<'a> = dyn Fn(&Change) -> (Option<Value>, Option<Value>) + 'a;

/// Unified YAML diffs, one per changed object (`before` and `after` are the
/// printable, masked bodies restricted to the fields hcpc sets).
pub fn unified(plan: &Plan, bodies: &BodiesOf<'_>) -> String {
    let mut out = String::new();
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        let (before, after) = bodies(c);
        let a = before.map(|v| yaml::to_yaml(&v)).unwrap_or_default();
        let b = after.map(|v| yaml::to_yaml(&v)).unwrap_or_default();
        let diff = similar::TextDiff::from_lines(&a, &b);
        let name = c.id.to_string();
        let _ = write!(
            out,
            "{}",
            diff.unified_diff().context_radius(3).header(&format!("live/{name}"), &format!("desired/{name}"))
        );
    }
    let _ = writeln!(out, "# {}", plan.summary_line());
    out
}
