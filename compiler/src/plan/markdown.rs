//! The plan as a pull-request comment, within a size budget.
//!
//! GitHub refuses comments over 65,536 characters, so the comment is built
//! from whole pieces in order of importance (the summary and impact totals,
//! the shared changes, each object's own changes, the values of created
//! objects) and a piece that does not fit is left out whole: nothing is cut
//! inside a code block, a table or a `<details>` element. The last line says
//! what was left out and how to see everything. The budget is in bytes,
//! which are never fewer than characters.
//!
//! Everything taken from the configuration or the target (names, paths,
//! values) is printed inside code blocks or code spans with fences longer
//! than any backtick run it holds, escaped for tables (`|`) and HTML (`<`).

use std::fmt::Write;

use super::group::{CLUSTER_PLACEHOLDER, Group};
use super::model::{Action, Change, FleetPlan, Plan};
use super::names::{self, KindMembers, Run, thousands};
use super::view::{
    Index, field_line, group_lines, group_notes, impact_lines, object_notes, per_object_paths, short_id, show, value_at,
};

/// `--max-bytes` when not given: under GitHub's comment limit with room for
/// a workflow's own lines around the plan.
pub const DEFAULT_MAX_BYTES: usize = 65_000;
/// The smallest budget that always holds the summary and the closing lines.
pub const MIN_MAX_BYTES: usize = 2_000;
/// Held back for the closing lines (unchanged count and what was left out).
const RESERVE: usize = 800;
/// With a budget, at most this many runs of names per kind are listed inline.
const RUNS_INLINE: usize = 10;
/// Code blocks longer than this are folded into `<details>`.
const OPEN_LINES: usize = 15;
/// Up to this many objects' own changes are shown open, more are folded.
const OPEN_OBJECTS: usize = 20;

/// How to print the comment.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Groups as computed in the plan (false: every object on its own, `-v`).
    pub grouped: bool,
    /// The size budget in bytes; `None` for no limit.
    pub max_bytes: Option<usize>,
}

/// The pull-request comment: the whole plan if it fits the budget, else
/// the most important pieces that fit and a line saying what was left out.
pub fn markdown(plan: &Plan, opts: &Options) -> String {
    let limit = opts.max_bytes.map(|m| m.max(MIN_MAX_BYTES));
    let cap = limit.map(|_| RUNS_INLINE);
    let whole = build(plan, opts.grouped, cap, None);
    match limit {
        Some(limit) if whole.len() > limit => build(plan, opts.grouped, cap, Some(limit)),
        _ => whole,
    }
}

/// The comment for a fleet: one target's plan as it always was; several
/// targets under one heading with a row per target and the fleet total,
/// the moves between them in words, then each target's plan (`####`
/// headings inside it), the budget shared evenly between targets.
pub fn fleet_markdown(fleet: &FleetPlan<'_>, opts: &Options) -> String {
    if let ([one], []) = (fleet.targets.as_slice(), fleet.moves.as_slice()) {
        return markdown(one, opts);
    }
    let mut out = String::new();
    let _ = writeln!(out, "## hcpc plan for {} targets\n", fleet.targets.len());
    let _ = writeln!(out, "**{}**\n", fleet.summary_line());
    out.push_str("| Target | Add | Change | Replace | Destroy | Unchanged |\n|---|--:|--:|--:|--:|--:|\n");
    for p in &fleet.targets {
        let s = &p.summary;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&code(&p.target)),
            s.add,
            s.change,
            s.replace,
            s.destroy,
            s.unchanged
        );
    }
    let s = &fleet.summary;
    let _ = writeln!(
        out,
        "| **fleet** | **{}** | **{}** | **{}** | **{}** | **{}** |\n",
        s.add, s.change, s.replace, s.destroy, s.unchanged
    );
    if !fleet.moves.is_empty() {
        out.push_str("#### Moves between management clusters\n\n");
        for m in &fleet.moves {
            let _ = writeln!(out, "- {}", escape(&m.sentence()).replace(&m.id.to_string(), &code(&m.id.to_string())));
        }
        out.push('\n');
    }
    let share = opts.max_bytes.map(|limit| {
        let left = limit.saturating_sub(out.len());
        (left / fleet.targets.len().max(1)).max(MIN_MAX_BYTES)
    });
    for p in &fleet.targets {
        out.push_str(&markdown(p, &Options { max_bytes: share, ..*opts }));
        out.push('\n');
    }
    out
}

fn build(plan: &Plan, by_group: bool, cap: Option<usize>, limit: Option<usize>) -> String {
    let mut doc =
        Doc { out: String::new(), limit: limit.unwrap_or(usize::MAX), pending: None, left: LeftOut::default() };
    let _ = writeln!(doc.out, "### hcpc plan for {}\n", code(&plan.target));
    let _ = writeln!(doc.out, "**{}**\n", plan.summary_line());
    if !plan.has_changes() {
        if let Some(c) = &plan.capacity {
            doc.out.push_str(&super::capacity::markdown(c));
        }
        return doc.out;
    }
    // What the plan destroys comes first, above the fold.
    destruction(plan, &mut doc);
    impact(plan, cap, &mut doc);
    destruction_details(plan, &mut doc);
    // The capacity delta per infrastructure goes here, after the totals.
    if let Some(c) = &plan.capacity
        && !doc.push(&super::capacity::markdown(c))
    {
        doc.left.capacity = true;
    }
    if by_group {
        grouped(plan, cap, &mut doc);
    } else {
        every_object(plan, &mut doc);
    }
    doc.finish(plan, limit)
}

fn grouped(plan: &Plan, cap: Option<usize>, doc: &mut Doc) {
    let index = Index::new(plan);
    let (shared, single): (Vec<&Group>, Vec<&Group>) = plan.groups.iter().partition(|g| !g.is_single());
    doc.heading("#### Shared changes\n\n");
    for g in &shared {
        if !doc.push(&shared_chunk(g, &index, cap)) {
            doc.left.groups += 1;
        }
    }
    if index.templated {
        doc.push(&format!("{} stands for each object's cluster name.\n\n", code(CLUSTER_PLACEHOLDER)));
    }
    doc.heading(if shared.is_empty() { "#### Changes\n\n" } else { "#### Changes to single objects\n\n" });
    let open = single.len() <= OPEN_OBJECTS;
    for g in &single {
        let Some(c) = g.objects.first().and_then(|id| index.changes.get(id)) else { continue };
        let fields: Vec<String> = if c.action == Action::Delete {
            vec![format!("- {}", c.id)]
        } else {
            g.fields.iter().map(|f| field_line(c.action, f)).collect()
        };
        if !doc.push(&object_chunk(c, fields, &index.also(plan, &c.id), open)) {
            doc.left.objects += 1;
        }
    }
    doc.heading("#### Values of created objects\n\n");
    for g in shared.iter().filter(|g| g.action == Action::Create) {
        let paths = per_object_paths(g);
        if paths.is_empty() {
            continue;
        }
        let members = names::by_kind(&g.objects, Some(0));
        let mut open = format!(
            "<details><summary>{} ({})</summary>\n\n| Object |",
            html(&names::kinds_phrase(&members)),
            html(&paths.join(", "))
        );
        for p in &paths {
            let _ = write!(open, " {} |", cell(&code(p)));
        }
        open.push_str("\n|---|");
        open.push_str(&"---|".repeat(paths.len()));
        open.push('\n');
        let rows: Vec<String> = g
            .objects
            .iter()
            .filter_map(|id| index.changes.get(id))
            .map(|c| {
                let mut row = format!("| {} |", cell(&code(&short_id(&c.id))));
                for p in &paths {
                    let v = value_at(c, p).map(|f| show(&f.after)).unwrap_or_default();
                    let _ = write!(row, " {} |", cell(&code(&v)));
                }
                row.push('\n');
                row
            })
            .collect();
        let written = doc.push_rows(&open, &rows, "\n</details>\n\n");
        doc.left.values += rows.len() - written;
    }
}

/// `-v`: a table of every changed object, then each object's changes.
fn every_object(plan: &Plan, doc: &mut Doc) {
    let changed: Vec<&Change> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    let rows: Vec<String> = changed
        .iter()
        .map(|c| {
            let word = match c.action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Replace => "**replace**",
                Action::Delete => "**destroy**",
                Action::NoOp => "",
            };
            let mut notes: Vec<String> = object_notes(c);
            notes.extend(c.notes.iter().filter(|n| !notes.contains(n)).cloned().collect::<Vec<_>>());
            format!(
                "| {} {word} | {} | {} |\n",
                code(c.action.symbol()),
                cell(&code(&c.id.to_string())),
                cell(&escape(&notes.join("; ")))
            )
        })
        .collect();
    let written = doc.push_rows("| Action | Object | Notes |\n|---|---|---|\n", &rows, "\n");
    doc.left.rows += rows.len() - written;
    let fold = changed.len() > 1;
    for c in changed {
        let fields = if c.action == Action::Delete {
            vec![format!("- {}", c.id)]
        } else {
            c.fields.iter().map(|f| field_line(c.action, f)).collect()
        };
        if !doc.push(&object_chunk(c, fields, &[], !fold)) {
            doc.left.objects += 1;
        }
    }
}

/// Clusters (and pools) listed one by one above the impact totals; more
/// are summed up there and listed after the totals, as far as the budget goes.
const DESTRUCTION_INLINE: usize = 3;

/// What the plan destroys, first: each HostedCluster replaced or destroyed
/// with what goes with it, and each NodePool replaced or destroyed on its
/// own with its VMs; many of them in totals (listed by
/// [`destruction_details`]).
fn destruction(plan: &Plan, doc: &mut Doc) {
    let d = &plan.destruction;
    if d.is_empty() {
        return;
    }
    doc.heading("#### Destroyed by this plan\n\n");
    if d.clusters.len() <= DESTRUCTION_INLINE {
        for c in &d.clusters {
            if !doc.push(&cluster_loss_md(c)) {
                doc.left.destruction += 1;
            }
        }
    } else {
        for action in [Action::Delete, Action::Replace] {
            let losses: Vec<_> = d.clusters.iter().filter(|c| c.action == action).collect();
            if losses.is_empty() {
                continue;
            }
            let what = if action == Action::Delete { "destroyed" } else { "replaced" };
            let line = format!(
                "- **{} {}**: {}\n",
                names::kind_count(crate::object::Kind::HostedCluster, losses.len()),
                what,
                super::destruction::clusters_sentence(&losses, action)
            );
            if !doc.push(&line) {
                doc.left.destruction += 1;
            }
        }
    }
    if d.node_pools.len() <= DESTRUCTION_INLINE {
        for p in &d.node_pools {
            if !doc.push(&format!("- **{}**: {}.\n", code(&format!("{} {}", p.action.symbol(), p.id)), p.note())) {
                doc.left.destruction += 1;
            }
        }
    } else {
        let vms: u64 = d.node_pools.iter().map(|p| p.vms).sum();
        let line = format!(
            "- **{} replaced or destroyed on their own**: {}.\n",
            names::kind_count(crate::object::Kind::NodePool, d.node_pools.len()),
            names::plural(vms, "VM")
        );
        if !doc.push(&line) {
            doc.left.destruction += 1;
        }
    }
    if doc.pending.is_none() {
        doc.out.push('\n');
    }
    doc.pending = None;
}

/// The clusters and pools summed up by [`destruction`], one by one, folded.
fn destruction_details(plan: &Plan, doc: &mut Doc) {
    let d = &plan.destruction;
    let clusters = if d.clusters.len() > DESTRUCTION_INLINE { d.clusters.as_slice() } else { &[] };
    let pools = if d.node_pools.len() > DESTRUCTION_INLINE { d.node_pools.as_slice() } else { &[] };
    let rows: Vec<String> = clusters
        .iter()
        .map(cluster_loss_md)
        .chain(
            pools
                .iter()
                .map(|p| format!("- **{}**: {}.\n", code(&format!("{} {}", p.action.symbol(), p.id)), p.note())),
        )
        .collect();
    if rows.is_empty() {
        return;
    }
    let open = "<details><summary>What each destroyed or replaced object takes with it</summary>\n\n";
    let written = doc.push_rows(open, &rows, "\n</details>\n\n");
    doc.left.destruction += rows.len() - written;
}

/// `- **`-/+ HostedCluster/ns/name`**: This destroys … With it go: …`.
fn cluster_loss_md(c: &super::destruction::ClusterLoss) -> String {
    let pools = c.node_pools.len();
    let items: Vec<String> = c
        .node_pools
        .iter()
        .map(|p| format!("{} and its {}", code(&p.id.to_string()), p.vms_text()))
        .chain(c.items().into_iter().skip(pools).map(|i| escape(&i)))
        .collect();
    let title = format!("{} {}", c.action.symbol(), c.id);
    format!("- **{}**: {} {}.\n", code(&title), c.head(), items.join("; "))
}

/// Nodes that roll, releases that change, replacements and destroys: in
/// full, or as numbers only when the names do not fit.
fn impact(plan: &Plan, cap: Option<usize>, doc: &mut Doc) {
    let list = |names: &[&str]| runs_md(&names::compact(names.iter().copied()), cap);
    let lines = impact_lines(plan, &list, &|v| code(v), cap.is_some());
    let count = lines.len();
    for (n, line) in lines.into_iter().enumerate() {
        let end = if n + 1 == count { "\n" } else { "" };
        let full = format!("- **{}:** {}\n{end}", line.label, line.full);
        let short = format!("- **{}:** {}\n{end}", line.label, line.short);
        if doc.push(&full) {
            continue;
        }
        if line.full != line.short && doc.push(&short) {
            doc.left.impact_names = true;
        } else {
            doc.left.impact = true;
        }
    }
}

/// A group of several objects: who, what they roll, and the changes.
fn shared_chunk(g: &Group, index: &Index<'_>, cap: Option<usize>) -> String {
    let members = names::by_kind(&g.objects, cap);
    let mut s = format!("**{} {}**", code(g.action.symbol()), names::kinds_phrase(&members));
    let notes = group_notes(g, index);
    if !notes.is_empty() {
        let _ = write!(s, " ({})", notes.join("; "));
    }
    s.push_str("\n\n");
    for m in &members {
        let _ = writeln!(s, "- {}", members_md(m));
    }
    s.push('\n');
    let lines = group_lines(g);
    if lines.is_empty() {
        return s;
    }
    let block = code_block(&lines);
    if lines.len() > OPEN_LINES {
        let what = if g.action == Action::Create {
            format!("{} fields, {} the same on all", lines.len(), g.fields.len())
        } else {
            format!("{} changed fields", lines.len())
        };
        let _ = write!(s, "<details><summary>{what}</summary>\n\n{block}\n</details>\n\n");
    } else {
        let _ = writeln!(s, "{block}");
    }
    s
}

/// One object's own changes, open or folded.
fn object_chunk(c: &Change, mut lines: Vec<String>, also: &[String], open: bool) -> String {
    lines.extend(c.notes.iter().map(|n| format!("# {n}")));
    if !also.is_empty() {
        lines.push(format!("# and the shared changes above to {}", also.join(", ")));
    }
    let title = format!("{} {}", c.action.symbol(), c.id);
    let notes = object_notes(c);
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
    let block = code_block(&lines);
    if open {
        format!("**{}**{notes}\n\n{block}\n", code(&title))
    } else {
        format!("<details><summary><code>{}</code>{}</summary>\n\n{block}\n</details>\n\n", html(&title), html(&notes))
    }
}

/// `- NodePool `c00000-gpu` … `c00199-gpu` (in 21 namespaces)`.
fn members_md(m: &KindMembers) -> String {
    let mut s = format!("{} {}", m.kind, runs_md(&m.runs, None));
    if m.more_objects > 0 {
        let _ = write!(s, " and {} more", thousands(m.more_objects as u64));
    }
    if let Some(note) = names::namespace_note(m, code) {
        let _ = write!(s, " ({note})");
    }
    s
}

fn runs_md(runs: &[Run], cap: Option<usize>) -> String {
    let shown = cap.unwrap_or(usize::MAX).min(runs.len());
    let mut s: Vec<String> = runs[..shown]
        .iter()
        .map(|r| match r {
            Run::One(n) => code(n),
            Run::Range { first, last, .. } => format!("{} … {}", code(first), code(last)),
        })
        .collect();
    let more: usize = runs[shown..].iter().map(Run::count).sum();
    if more > 0 {
        s.push(format!("and {} more", thousands(more as u64)));
    }
    s.join(", ")
}

/// What was left out for the budget.
#[derive(Default)]
struct LeftOut {
    /// Lines of "Destroyed by this plan" (the impact totals still count them).
    destruction: usize,
    impact: bool,
    capacity: bool,
    impact_names: bool,
    groups: usize,
    objects: usize,
    values: usize,
    rows: usize,
}

/// The comment being built, within its budget.
struct Doc {
    out: String,
    limit: usize,
    /// A section heading, written with the section's first piece that fits.
    pending: Option<&'static str>,
    left: LeftOut,
}

impl Doc {
    fn room(&self) -> usize {
        self.limit.saturating_sub(self.out.len() + RESERVE)
    }

    fn heading(&mut self, h: &'static str) {
        self.pending = Some(h);
    }

    /// Appends a whole piece if it fits; false if it was left out.
    fn push(&mut self, piece: &str) -> bool {
        if piece.len() + self.pending.map_or(0, str::len) > self.room() {
            return false;
        }
        if let Some(h) = self.pending.take() {
            self.out.push_str(h);
        }
        self.out.push_str(piece);
        true
    }

    /// A table: its opening, as many rows as fit, its closing. Returns the
    /// number of rows written (none, and no table, if not even one fits).
    fn push_rows(&mut self, open: &str, rows: &[String], close: &str) -> usize {
        let Some(first) = rows.first() else { return 0 };
        let heading = self.pending.map_or(0, str::len);
        if heading + open.len() + first.len() + close.len() > self.room() {
            return 0;
        }
        if let Some(h) = self.pending.take() {
            self.out.push_str(h);
        }
        self.out.push_str(open);
        let mut written = 0;
        for row in rows {
            if row.len() + close.len() > self.room() {
                break;
            }
            self.out.push_str(row);
            written += 1;
        }
        self.out.push_str(close);
        written
    }

    fn finish(mut self, plan: &Plan, limit: Option<usize>) -> String {
        let _ = writeln!(self.out, "Unchanged: {} objects.", thousands(plan.summary.unchanged as u64));
        let l = &self.left;
        let mut what = Vec::new();
        if l.destruction > 0 {
            what.push(format!("{} of what is destroyed", names::plural(l.destruction as u64, "line")));
        }
        if l.impact {
            what.push("impact totals".to_string());
        } else if l.impact_names {
            what.push("names in the impact totals".to_string());
        }
        if l.capacity {
            what.push("the capacity tables".to_string());
        }
        if l.groups > 0 {
            what.push(format!(
                "{} shared {}",
                thousands(l.groups as u64),
                if l.groups == 1 { "change" } else { "changes" }
            ));
        }
        if l.objects > 0 {
            what.push(format!("the changes of {}", names::plural(l.objects as u64, "object")));
        }
        if l.rows > 0 {
            what.push(format!("{} of the table", names::plural(l.rows as u64, "row")));
        }
        if l.values > 0 {
            what.push(format!("the values of {}", names::plural(l.values as u64, "created object")));
        }
        if let (false, Some(limit)) = (what.is_empty(), limit) {
            let _ = writeln!(
                self.out,
                "\n**Left out to stay under {} bytes:** {}. The whole plan: `hcpc plan --format markdown --max-bytes 0`, or the plan saved with `hcpc plan --out` (kept as a CI artifact).",
                thousands(limit as u64),
                what.join(", ")
            );
        }
        self.out
    }
}

/// An inline code span that holds `s` whatever backticks it contains.
pub fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let ticks = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') { " " } else { "" };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A fenced `diff` block whose fence no line can close early.
fn code_block(lines: &[String]) -> String {
    let longest = lines.iter().map(|l| longest_run(l, '`')).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let mut s = format!("{fence}diff\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    let _ = writeln!(s, "{fence}");
    s
}

fn longest_run(s: &str, c: char) -> usize {
    s.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

/// Text for a table cell: `|` would end the cell, even inside code.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Text inside an HTML element.
fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Free text in markdown: every punctuation mark that could start markup is escaped.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '&' | '~' | '!') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_and_blocks_hold_any_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        let block = code_block(&["~ x: \"```\" → \"````\"".to_string()]);
        assert!(block.starts_with("`````diff\n") && block.ends_with("\n`````\n"), "{block}");
    }

    #[test]
    fn escapes() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(html("<a&b>"), "&lt;a&amp;b&gt;");
        assert_eq!(escape("a_b <c>"), "a\\_b \\<c\\>");
    }
}
