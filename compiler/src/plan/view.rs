//! Views of a [`Plan`]: text for terminals, markdown for pull requests
//! (`markdown.rs`), JSON for tools, unified diffs. All read the same plan,
//! and the text and markdown views read its groups (`group.rs`) unless
//! asked for every object (`-v`).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::destruction::Destruction;
use super::group::{CLUSTER_PLACEHOLDER, Group};
use super::model::{Action, Change, FieldChange, FleetPlan, Plan};
use super::names::{self, KindMembers, Run, plural, thousands};
use crate::object::{Kind, ObjectId};
use crate::render::yaml;

pub use super::markdown::{DEFAULT_MAX_BYTES, fleet_markdown, markdown};

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

pub(super) fn show(v: &Option<Value>) -> String {
    match v {
        None => "(none)".to_string(),
        // `(sensitive)`, or `(sensitive, from file PATH)`: words, not a value.
        Some(Value::String(s)) if s.starts_with("(sensitive") && s.ends_with(')') => s.clone(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// One field change as a line: `~ path: old → new`, `+ path = value`, …
pub(super) fn field_line(action: Action, f: &FieldChange) -> String {
    let line = change_text(action, f);
    if f.forces_replacement { format!("{line}{FORCES}") } else { line }
}

const FORCES: &str = "  # forces replacement";

fn change_text(action: Action, f: &FieldChange) -> String {
    match (action, &f.before, &f.after) {
        (Action::Create, _, after) => format!("+ {} = {}", f.path, show(after)),
        (_, Some(_), None) => format!("- {} = {}", f.path, show(&f.before)),
        (_, None, after) => format!("+ {} = {}", f.path, show(after)),
        (_, before, after) if f.sensitive => format!("~ {} = {} → {} (changed)", f.path, show(before), show(after)),
        (_, before, after) => format!("~ {}: {} → {}", f.path, show(before), show(after)),
    }
}

fn field_lines(action: Action, fields: &[FieldChange], out: &mut String, paint: &Paint, indent: &str) {
    for f in fields {
        let tail = if f.forces_replacement { FORCES } else { "" };
        let _ = writeln!(out, "{indent}{}{tail}", paint.action(action, &change_text(action, f)));
    }
}

/// What the views need to know about a plan's groups.
pub(super) struct Index<'a> {
    pub changes: BTreeMap<&'a ObjectId, &'a Change>,
    /// For each object, the shared groups (by position in `plan.groups`) it is in.
    pub shared_of: BTreeMap<&'a ObjectId, Vec<usize>>,
    pub templated: bool,
}

impl<'a> Index<'a> {
    pub fn new(plan: &'a Plan) -> Index<'a> {
        let changes = plan.changes.iter().map(|c| (&c.id, c)).collect();
        let mut shared_of: BTreeMap<&ObjectId, Vec<usize>> = BTreeMap::new();
        for (n, g) in plan.groups.iter().enumerate().filter(|(_, g)| !g.is_single()) {
            for id in &g.objects {
                shared_of.entry(id).or_default().push(n);
            }
        }
        let templated = plan.groups.iter().filter(|g| !g.is_single()).any(|g| {
            g.fields.iter().any(|f| {
                [&f.before, &f.after].into_iter().flatten().any(|v| v.to_string().contains(CLUSTER_PLACEHOLDER))
            })
        });
        Index { changes, shared_of, templated }
    }

    /// Nodes the group's objects roll.
    pub fn rolls(&self, g: &Group) -> u64 {
        g.objects.iter().filter_map(|id| self.changes.get(id)).filter_map(|c| c.rolls_nodes).sum()
    }

    /// The paths of the shared changes an object also has.
    pub fn also(&self, plan: &Plan, id: &ObjectId) -> Vec<String> {
        let groups = self.shared_of.get(id).map(Vec::as_slice).unwrap_or_default();
        groups.iter().flat_map(|&n| plan.groups[n].fields.iter().map(|f| f.path.clone())).collect()
    }
}

/// A group's field lines in path order: the shared changes, and for
/// creates the fields whose values differ.
pub(super) fn group_lines(g: &Group) -> Vec<String> {
    let mut lines: Vec<(&str, String)> = g.fields.iter().map(|f| (f.path.as_str(), field_line(g.action, f))).collect();
    if !g.varying.is_empty() {
        lines.extend(
            g.varying.iter().map(|v| {
                (v.path.as_str(), format!("+ {} = ({} different values)", v.path, thousands(v.values as u64)))
            }),
        );
        lines.sort_by(|a, b| a.0.cmp(b.0));
    }
    lines.into_iter().map(|(_, l)| l).collect()
}

/// The headline of a group of several objects: `~ 200 HostedClusters and
/// 600 NodePools` with what the reviewer must not miss.
pub(super) fn group_notes(g: &Group, index: &Index<'_>) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(p) = &g.profile {
        notes.push(p.note());
    }
    if g.action == Action::Replace {
        notes.push("forces replacement".to_string());
    }
    let rolls = index.rolls(g);
    if rolls > 0 {
        notes.push(format!("rolls {}", plural(rolls, "node")));
    }
    // A control plane skipping a minor on purpose is said where it changes;
    // a fleet-wide bump says each distinct jump once.
    let changes = g.objects.iter().filter_map(|id| index.changes.get(id));
    let skipping: Vec<String> = changes.flat_map(|c| minor_skips(c)).collect();
    let distinct: std::collections::BTreeSet<&String> = skipping.iter().collect();
    if distinct.len() > 3 {
        notes.push(format!("{} on {} clusters", crate::release::rules::MINOR_SKIP_NOTE, skipping.len()));
    } else {
        notes.extend(distinct.into_iter().cloned());
    }
    notes
}

/// The `allow-minor-skip` notes of a change (`release::rules`).
fn minor_skips(c: &Change) -> impl Iterator<Item = String> + '_ {
    c.notes.iter().filter(|n| n.starts_with(crate::release::rules::MINOR_SKIP_NOTE)).cloned()
}

/// The notes after an object's name: replacement and roll-out.
pub(super) fn object_notes(c: &Change) -> Vec<String> {
    let mut notes = Vec::new();
    if c.action == Action::Replace {
        notes.push("forces replacement".to_string());
    }
    if let Some(n) = c.rolls_nodes {
        notes.push(format!("rolls {}", plural(n, "node")));
    }
    if let Some(to) = &c.moved_to {
        notes.push(format!("moves to {to}"));
    }
    if let Some(from) = &c.moved_from {
        notes.push(format!("moves from {from}"));
    }
    notes.extend(minor_skips(c));
    notes
}

pub(super) fn run_text(r: &Run) -> String {
    match r {
        Run::One(n) => n.clone(),
        Run::Range { first, last, .. } => format!("{first} … {last}"),
    }
}

/// `HostedCluster: c00000 … c00199 (in 21 namespaces)`.
fn members_line(m: &KindMembers) -> String {
    let mut line = format!("{}: {}", m.kind, m.runs.iter().map(run_text).collect::<Vec<_>>().join(", "));
    if m.more_objects > 0 {
        let _ = write!(line, " and {} more", thousands(m.more_objects as u64));
    }
    if let Some(note) = names::namespace_note(m, str::to_string) {
        let _ = write!(line, " ({note})");
    }
    line
}

/// `clusters/c00001`, or the name alone for Namespaces.
pub(super) fn short_id(id: &ObjectId) -> String {
    if id.namespace.is_empty() { id.name.clone() } else { format!("{}/{}", id.namespace, id.name) }
}

/// Paths of varying values worth showing per object (name and namespace
/// are in the object's identity already).
pub(super) fn per_object_paths(g: &Group) -> Vec<&str> {
    g.varying.iter().map(|v| v.path.as_str()).filter(|p| *p != "metadata.name" && *p != "metadata.namespace").collect()
}

/// An object's value at `path` (its created fields).
pub(super) fn value_at<'a>(c: &'a Change, path: &str) -> Option<&'a FieldChange> {
    c.fields.iter().find(|f| f.path == path)
}

/// One impact total: its label, the full text (with names), and a short
/// text (numbers only) for when the full one does not fit.
pub(super) struct ImpactLine {
    pub label: &'static str,
    pub full: String,
    pub short: String,
}

/// With a budget, at most this many node counts or release moves are listed.
const IMPACT_ITEMS: usize = 5;

/// The impact totals; `list` prints a list of names, `lit` a value (a
/// release image); `capped` lists at most [`IMPACT_ITEMS`] items per line.
pub(super) fn impact_lines(
    plan: &Plan,
    list: &dyn Fn(&[&str]) -> String,
    lit: &dyn Fn(&str) -> String,
    capped: bool,
) -> Vec<ImpactLine> {
    let i = &plan.impact;
    let most = if capped { IMPACT_ITEMS } else { usize::MAX };
    let none = |label| ImpactLine { label, full: "none".into(), short: "none".into() };
    let mut lines = Vec::new();
    if i.nodes_rolling == 0 {
        lines.push(none("Nodes that will roll"));
    } else {
        let buckets = i.clusters_by_nodes();
        let mut per: Vec<String> = buckets
            .iter()
            .take(most)
            .map(|(n, clusters)| match clusters.as_slice() {
                [one] => format!("{n} in {}", list(&[one])),
                many => format!("{n} in each of {}", list(many)),
            })
            .collect();
        let rest: usize = buckets.iter().skip(most).map(|(_, c)| c.len()).sum();
        if rest > 0 {
            per.push(format!("other numbers in {}", plural(rest as u64, "cluster")));
        }
        let short =
            format!("{} in {}", thousands(i.nodes_rolling), plural(i.nodes_rolling_by_cluster.len() as u64, "cluster"));
        lines.push(ImpactLine { label: "Nodes that will roll", full: format!("{short} ({})", per.join("; ")), short });
    }
    if i.release_changes.is_empty() {
        lines.push(none("Control planes changing release"));
    } else {
        let all = i.release_moves();
        let mut moves: Vec<String> = all
            .iter()
            .take(most)
            .map(|((from, to), clusters)| format!("{} → {} on {}", lit(from), lit(to), list(clusters)))
            .collect();
        let rest: usize = all.iter().skip(most).map(|(_, c)| c.len()).sum();
        if rest > 0 {
            moves.push(format!("other releases on {}", plural(rest as u64, "cluster")));
        }
        let short = thousands(i.release_changes.len() as u64);
        lines.push(ImpactLine {
            label: "Control planes changing release",
            full: format!("{short} ({})", moves.join("; ")),
            short,
        });
    }
    let ids = |label: &'static str, ids: &[ObjectId]| -> ImpactLine {
        if ids.is_empty() {
            return none(label);
        }
        // What matters most first: clusters, their nodes, then the rest.
        let mut members = names::by_kind(ids, None);
        members.sort_by_key(|m| match m.kind {
            Kind::HostedCluster => 0,
            Kind::NodePool => 1,
            Kind::Secret => 2,
            Kind::Namespace => 3,
        });
        let full: Vec<String> = members
            .iter()
            .map(|m| {
                let of_kind: Vec<&str> = ids.iter().filter(|id| id.kind == m.kind).map(|id| id.name.as_str()).collect();
                format!("{} ({})", names::kind_count(m.kind, m.count), list(&of_kind))
            })
            .collect();
        let short: Vec<String> = members.iter().map(|m| names::kind_count(m.kind, m.count)).collect();
        ImpactLine { label, full: full.join(", "), short: short.join(", ") }
    };
    lines.push(ids("Replacements", &i.replacements));
    lines.push(ids("Destroys", &i.destroys));
    // Shown only when there are any: most plans destroy nothing.
    for (label, n) in [("VMs destroyed", i.vms_destroyed), ("VMs replaced", i.vms_replaced)] {
        if n > 0 {
            let text = thousands(n);
            lines.push(ImpactLine { label, full: text.clone(), short: text });
        }
    }
    lines
}

/// Terraform-like text. Colour only when `color` is true; `verbose` lists
/// every object on its own (and the unchanged ones) instead of groups.
pub fn text(plan: &Plan, color: bool, verbose: bool) -> String {
    let paint = Paint { on: color };
    let mut out = String::new();
    if plan.has_changes() {
        let _ = writeln!(out, "hcpc will perform these actions on {}:\n", plan.target);
    }
    if verbose {
        for c in &plan.changes {
            if c.action == Action::NoOp {
                let _ = writeln!(out, "    {} (unchanged)", c.id);
                continue;
            }
            let fields = if c.action == Action::Delete { &[] } else { c.fields.as_slice() };
            object_block(c, fields, &[], &plan.destruction, &mut out, &paint);
        }
    } else {
        let index = Index::new(plan);
        for g in &plan.groups {
            match g.objects.as_slice() {
                [id] => {
                    let Some(c) = index.changes.get(id) else { continue };
                    object_block(c, &g.fields, &index.also(plan, id), &plan.destruction, &mut out, &paint);
                }
                _ => {
                    group_block(g, &index, &mut out, &paint);
                    group_loss(g, &plan.destruction, &mut out, &paint);
                }
            }
        }
        if index.templated {
            let _ = writeln!(out, "{CLUSTER_PLACEHOLDER} stands for each object's cluster name.\n");
        }
    }
    if plan.has_changes() {
        let names = |list: &[&str]| runs_text(list);
        for line in impact_lines(plan, &names, &|s| s.to_string(), false).into_iter().filter(|l| l.full != "none") {
            let _ = writeln!(out, "{}: {}", line.label, line.full);
        }
        // The capacity delta per infrastructure goes here, after the totals.
    }
    let _ = writeln!(out, "{}", plan.summary_line());
    if let Some(c) = &plan.capacity {
        out.push('\n');
        out.push_str(&super::capacity::text(c));
    }
    out
}

fn runs_text(list: &[&str]) -> String {
    names::compact(list.iter().copied()).iter().map(run_text).collect::<Vec<_>>().join(", ")
}

/// One object: its action, name and notes, then its field changes, then
/// what goes with it when it is replaced or destroyed.
fn object_block(
    c: &Change,
    fields: &[FieldChange],
    also: &[String],
    loss: &Destruction,
    out: &mut String,
    paint: &Paint,
) {
    let mut head = format!("{} {}", c.action.symbol(), paint.bold(&c.id.to_string()));
    for n in object_notes(c).into_iter().chain(loss.pool(&c.id).map(|p| p.note())) {
        let _ = write!(head, "  ({n})");
    }
    let _ = writeln!(out, "  {}", paint.action(c.action, &head));
    field_lines(c.action, fields, out, paint, "      ");
    if !also.is_empty() {
        let _ = writeln!(out, "      (and the shared changes above to {})", also.join(", "));
    }
    if let Some(l) = loss.of(&c.id) {
        let _ = writeln!(out, "      {}", paint.action(c.action, l.head()));
        for item in l.items() {
            let _ = writeln!(out, "        {}", paint.action(c.action, &format!("- {item}")));
        }
    }
    out.push('\n');
}

/// Under a group of HostedClusters replaced or destroyed: what goes with
/// them, in totals (each cluster's own list is in `--format json`).
fn group_loss(g: &Group, loss: &Destruction, out: &mut String, paint: &Paint) {
    let Some(line) = group_loss_line(g, loss) else { return };
    // Before the blank line that ends the group.
    out.pop();
    let _ = writeln!(out, "      {}\n", paint.action(g.action, &line));
}

/// What goes with a group's HostedClusters, in totals.
pub(super) fn group_loss_line(g: &Group, loss: &Destruction) -> Option<String> {
    let losses: Vec<_> = g.objects.iter().filter_map(|id| loss.of(id)).collect();
    if !losses.is_empty() {
        return Some(super::destruction::clusters_sentence(&losses, g.action));
    }
    // NodePools replaced or destroyed on their own: their VMs.
    let pools: Vec<_> = g.objects.iter().filter_map(|id| loss.pool(id)).collect();
    let vms: u64 = pools.iter().map(|p| p.vms).sum();
    let verb = if g.action == Action::Delete { "destroys" } else { "replaces" };
    let most = if pools.iter().any(|p| p.autoscaled) { "up to " } else { "" };
    (!pools.is_empty()).then(|| format!("This {verb} {most}{}.", plural(vms, "VM")))
}

/// Several objects: who they are, then what changes on all of them.
fn group_block(g: &Group, index: &Index<'_>, out: &mut String, paint: &Paint) {
    let members = names::by_kind(&g.objects, None);
    let mut head = format!("{} {}", g.action.symbol(), paint.bold(&names::kinds_phrase(&members)));
    for n in group_notes(g, index) {
        let _ = write!(head, "  ({n})");
    }
    let _ = writeln!(out, "  {}", paint.action(g.action, &head));
    for m in &members {
        let _ = writeln!(out, "      {}", members_line(m));
    }
    for line in group_lines(g) {
        let (change, tail) = match line.strip_suffix(FORCES) {
            Some(change) => (change, FORCES),
            None => (line.as_str(), ""),
        };
        let _ = writeln!(out, "      {}{tail}", paint.action(g.action, change));
    }
    let paths = per_object_paths(g);
    if !paths.is_empty() {
        for id in &g.objects {
            let Some(c) = index.changes.get(id) else { continue };
            let values: Vec<String> = paths
                .iter()
                .filter_map(|p| value_at(c, p))
                .map(|f| format!("{} = {}", f.path, show(&f.after)))
                .collect();
            let _ = writeln!(out, "        {}: {}", short_id(id), values.join(", "));
        }
    }
    out.push('\n');
}

/// A fleet over several targets: each target's plan under its own
/// heading, then the moves between targets, then the fleet's totals with a
/// line per target. One target prints exactly its own plan.
pub fn fleet_text(fleet: &FleetPlan<'_>, color: bool, verbose: bool) -> String {
    if let ([one], []) = (fleet.targets.as_slice(), fleet.moves.as_slice()) {
        return text(one, color, verbose);
    }
    let paint = Paint { on: color };
    let mut out = String::new();
    for p in &fleet.targets {
        let _ = writeln!(
            out,
            "{}
",
            paint.bold(&format!("── Target {} ──", p.target))
        );
        out.push_str(&text(p, color, verbose));
        out.push('\n');
    }
    if !fleet.moves.is_empty() {
        let _ = writeln!(out, "{}", paint.bold("Moves between management clusters:"));
        for m in &fleet.moves {
            let _ = writeln!(out, "  {}", paint.action(Action::Replace, &format!("-/+ {}", m.id)));
            let _ = writeln!(out, "      {}", m.sentence());
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", paint.bold(&format!("Fleet over {} targets:", fleet.targets.len())));
    for p in &fleet.targets {
        let _ = writeln!(out, "  {}: {}", p.target, p.summary_line());
    }
    let _ = writeln!(out, "{}", fleet.summary_line());
    out
}

/// The JSON of a fleet: one target's plan as it always was (format 2);
/// several targets as format 3 ([`FleetPlan`]), each target a format-2 plan.
pub fn fleet_json(fleet: &FleetPlan<'_>) -> String {
    if let ([one], []) = (fleet.targets.as_slice(), fleet.moves.as_slice()) {
        return json(one);
    }
    let mut s = serde_json::to_string_pretty(fleet).unwrap_or_default();
    s.push('\n');
    s
}

/// The versioned JSON plan (documented in docs/plans.md): every object's
/// change, plus the groups and the impact totals.
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
