//! The requests: completion, hover, go to definition, references,
//! formatting and code actions. Each reads the fleet as the editor has it
//! now (`fleet::Fleet`) and answers from the schema.

use std::collections::HashMap;

use hcpc_schema::lang::{NodeSpec, ValueKind};
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionResponse, CompletionItem, CompletionItemKind,
    CompletionList, CompletionResponse, CompletionTextEdit, Documentation, GotoDefinitionResponse, Hover,
    HoverContents, Location, MarkupContent, MarkupKind, NumberOrString, Position, Range, TextEdit, Uri, WorkspaceEdit,
};

use super::check::Fix;
use super::fleet::{File, Fleet, RefKind, Slot, pattern};
use super::lang::{self, block_specs, node_spec};
use super::syntax::{Cursor, Entry, Node, Spot, Word, cursor};
use super::text::{Encoding, Text};
use crate::ir;
use crate::quantity::{Duration, Quantity};

fn markdown(value: String) -> MarkupContent {
    MarkupContent { kind: MarkupKind::Markdown, value }
}

fn names<'a>(path: &[&'a Node], node: Option<&'a Node>) -> Vec<&'a str> {
    path.iter().copied().chain(node).map(|n| n.name.text.as_str()).collect()
}

fn location(file: &File, start: usize, end: usize, enc: Encoding) -> Option<Location> {
    Some(Location { uri: file.uri.parse::<Uri>().ok()?, range: file.text.range(start, end, enc) })
}

// ---------------------------------------------------------------------------
// Completion

/// Items for the position: node names valid in the enclosing block,
/// properties not yet given, and values (enumerated words, booleans, names
/// declared elsewhere in the fleet), each with its documentation.
pub fn complete(fleet: &Fleet, file: &File, pos: Position, enc: Encoding) -> Option<CompletionResponse> {
    let offset = file.text.offset(pos, enc);
    let cur = cursor(&file.nodes, file.text.as_str(), offset);
    // Where the word being completed starts: the replacement range runs
    // from there to the cursor, and what is typed there filters the items.
    let mut start = offset;
    let at = |start: usize| file.text.range(start.min(offset), offset, enc);
    let mut items = Vec::new();
    match cur.spot {
        Spot::NodeName { node } => {
            let specs = block_specs(&cur.path)?;
            start = node.map_or(offset, |n| n.name.start);
            let range = at(start);
            let siblings: Vec<&Node> = match cur.path.last() {
                Some(parent) => parent.child_nodes().iter().collect(),
                None => fleet.files.iter().flat_map(|f| f.nodes.iter()).collect(),
            };
            for spec in specs {
                let taken = !spec.repeatable
                    && siblings
                        .iter()
                        .any(|s| !s.commented && s.name.text == spec.name && node.is_none_or(|n| !std::ptr::eq(*s, n)));
                if !taken {
                    let doc = lang::node_doc(&[names(&cur.path, None), vec![spec.name]].concat(), spec);
                    items.push(item(
                        spec.name,
                        CompletionItemKind::KEYWORD,
                        lang::signature(spec),
                        doc,
                        range,
                        spec.name,
                    ));
                }
            }
        }
        Spot::Key { node, entry } => {
            let spec = node_spec(&cur.path, node)?;
            let key = entry.key.as_ref()?;
            start = key.start;
            props(&mut items, &cur, spec, node, Some(entry), at(start));
        }
        Spot::PropValue { node, entry } => {
            let spec = node_spec(&cur.path, node)?;
            let key = entry.key.as_ref()?;
            let prop = spec.props.iter().find(|p| p.name == key.text)?;
            start = entry.value.as_ref().map_or(offset, |v| v.start);
            values(&mut items, fleet, &cur, node, Slot::Prop(prop.name), prop.value, prop.doc, at(start));
        }
        Spot::Arg { node, word, index } => {
            let spec = node_spec(&cur.path, node)?;
            start = word.start;
            let range = at(start);
            if let Some(a) = spec.args.get(index) {
                values(&mut items, fleet, &cur, node, Slot::Arg, a.value, spec.doc, range);
            }
            props(&mut items, &cur, spec, node, None, range);
        }
        Spot::NewEntry { node, index } => {
            let spec = node_spec(&cur.path, node)?;
            let range = at(offset);
            if let Some(a) = spec.args.get(index) {
                values(&mut items, fleet, &cur, node, Slot::Arg, a.value, spec.doc, range);
            }
            props(&mut items, &cur, spec, node, None, range);
        }
    }
    let typed = file.text.as_str().get(start.min(offset)..offset).unwrap_or("");
    let mut items = filter_by_prefix(items, typed);
    for (i, it) in items.iter_mut().enumerate() {
        it.sort_text = Some(format!("{i:04}"));
    }
    Some(CompletionResponse::List(CompletionList { is_incomplete: false, items }))
}

/// How well `candidate` matches what is typed: 0 when it starts with it,
/// 1 when one of its `-`-separated parts does (`pool` finds `node-pool`),
/// 2 when it starts with the same letter and holds the typed letters in
/// order (`relase` finds `release`), `None` otherwise; ignoring case and
/// an opening quote.
fn prefix_rank(candidate: &str, typed: &str) -> Option<u8> {
    let typed = typed.strip_prefix('"').unwrap_or(typed).to_lowercase();
    let candidate = candidate.strip_prefix('"').unwrap_or(candidate).to_lowercase();
    if candidate.starts_with(&typed) {
        return Some(0);
    }
    if candidate.split('-').skip(1).any(|part| part.starts_with(&typed)) {
        return Some(1);
    }
    let mut rest = candidate.chars();
    let in_order = typed.chars().all(|t| rest.any(|c| c == t));
    (in_order && candidate.chars().next() == typed.chars().next()).then_some(2)
}

/// The items that match the word typed so far, those it begins first.
/// Clients that filter for themselves get `filterText` (the text the item
/// inserts, quotes included), which is what they compare the typed word to.
fn filter_by_prefix(items: Vec<CompletionItem>, typed: &str) -> Vec<CompletionItem> {
    let mut ranked: Vec<(u8, CompletionItem)> = items
        .into_iter()
        .filter_map(|mut it| {
            let inserted = match &it.text_edit {
                Some(CompletionTextEdit::Edit(e)) => e.new_text.clone(),
                _ => it.label.clone(),
            };
            let rank = prefix_rank(&it.label, typed).or_else(|| prefix_rank(&inserted, typed))?;
            it.filter_text = Some(inserted);
            Some((rank, it))
        })
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, it)| it).collect()
}

fn item(
    label: &str,
    kind: CompletionItemKind,
    detail: String,
    doc: String,
    range: Range,
    insert: &str,
) -> CompletionItem {
    CompletionItem {
        label: label.to_owned(),
        kind: Some(kind),
        detail: Some(detail),
        documentation: Some(Documentation::MarkupContent(markdown(doc))),
        text_edit: Some(CompletionTextEdit::Edit(TextEdit { range, new_text: insert.to_owned() })),
        ..CompletionItem::default()
    }
}

/// The properties of `node` it does not have yet (`current` is the one
/// being typed).
fn props(
    items: &mut Vec<CompletionItem>,
    cur: &Cursor<'_>,
    spec: &NodeSpec,
    node: &Node,
    current: Option<&Entry>,
    range: Range,
) {
    let path = names(&cur.path, Some(node));
    for p in spec.props {
        let given = node.entries.iter().any(|e| {
            !e.commented
                && e.key.as_ref().is_some_and(|k| k.text == p.name)
                && current.is_none_or(|c| !std::ptr::eq(c, e))
        });
        if !given {
            let label = format!("{}=", p.name);
            let detail = format!("{} {}", spec.name, label);
            items.push(item(
                &label,
                CompletionItemKind::PROPERTY,
                detail,
                lang::prop_doc(&path, spec, p),
                range,
                &label,
            ));
        }
    }
}

/// The values a slot takes: names declared in the fleet, enumerated words,
/// booleans.
#[allow(clippy::too_many_arguments)]
fn values(
    items: &mut Vec<CompletionItem>,
    fleet: &Fleet,
    cur: &Cursor<'_>,
    node: &Node,
    slot: Slot,
    kind: ValueKind,
    doc: &str,
    range: Range,
) {
    if let Some(r) = Fleet::reference(&cur.path, node, slot) {
        // A profile cannot extend itself: its own name is not offered.
        let own = matches!(slot, Slot::Prop("extends")).then(|| node.arg(0)).flatten();
        for (word, decl) in fleet.declared(r) {
            if !mappable(&cur.path, node, r, word, decl) || own.is_some_and(|o| o.text == word.text) {
                continue;
            }
            let (what, detail) = describe_declaration(r, decl);
            let doc = format!("{what} `{}`\n\n```kdl\n{detail}\n```", word.text);
            items.push(item(
                &word.text,
                CompletionItemKind::REFERENCE,
                detail,
                doc,
                range,
                &crate::fmt::quote(&word.text),
            ));
        }
        return;
    }
    let namespace_slot = matches!(
        (pattern(&cur.path, node).as_str(), slot),
        ("cluster namespace", Slot::Arg) | ("fleet" | "cluster infra-cluster", Slot::Prop("namespace"))
    );
    if namespace_slot {
        for w in fleet.namespaces() {
            let doc = format!("namespace `{}`, used in this fleet", w.text);
            items.push(item(
                &w.text,
                CompletionItemKind::REFERENCE,
                "namespace".into(),
                doc,
                range,
                &crate::fmt::quote(&w.text),
            ));
        }
    }
    match kind {
        ValueKind::OneOf(words) => {
            for w in words {
                items.push(item(w, CompletionItemKind::ENUM_MEMBER, lang::kind_text(kind), doc.to_owned(), range, w));
            }
        }
        ValueKind::Bool => {
            for w in ["#true", "#false"] {
                items.push(item(w, CompletionItemKind::VALUE, "boolean".into(), doc.to_owned(), range, w));
            }
        }
        _ => {}
    }
}

/// Whether naming `word` (declared by `decl`) in `node` would pass: a
/// storage class mapped into a hosted cluster must be ReadWriteMany
/// (KubeVirt CSI maps nothing else), and a class is mapped once per group,
/// so the classes the same block already maps are not offered again.
fn mappable(path: &[&Node], node: &Node, kind: RefKind, word: &Word, decl: &Node) -> bool {
    let mapping = matches!(
        pattern(path, node).as_str(),
        "cluster storage class"
            | "cluster storage group class"
            | "cluster storage snapshot-class"
            | "cluster storage group snapshot-class"
    );
    if !mapping {
        return true;
    }
    if kind == RefKind::StorageClass
        && decl.prop("access").and_then(|e| e.value.as_ref()).is_none_or(|v| v.text != "RWX")
    {
        return false;
    }
    let siblings = path.last().map_or(&[][..], |p| p.child_nodes());
    !siblings.iter().any(|s| {
        !s.commented
            && !std::ptr::eq(s, node)
            && s.name.text == node.name.text
            && s.arg(0).is_some_and(|a| a.text == word.text)
    })
}

fn what(kind: RefKind) -> &'static str {
    match kind {
        RefKind::StorageClass => "storage class",
        RefKind::SnapshotClass => "snapshot class",
        RefKind::HostDevice => "host device",
        RefKind::Group => "storage group",
        RefKind::Profile => "profile",
    }
}

/// A declaration's kind in words and its line, e.g. `storage-class rbd access=RWX`.
fn describe_declaration(kind: RefKind, decl: &Node) -> (&'static str, String) {
    let what = what(kind);
    let mut line = decl.name.text.clone();
    for e in decl.entries.iter().filter(|e| !e.commented) {
        line.push(' ');
        if let Some(k) = &e.key {
            line.push_str(&k.text);
            line.push('=');
        }
        if let Some(v) = &e.value {
            if v.quoted { line.push_str(&crate::fmt::quote(&v.text)) } else { line.push_str(&v.text) }
        }
    }
    (what, line)
}

// ---------------------------------------------------------------------------
// Hover

/// The documentation of what is under the cursor and the HyperShift field
/// it sets; for a quantity or duration its canonical form; for a host
/// device the fleet's demand and capacity; for a class its declaration.
pub fn hover(fleet: &Fleet, file: &File, pos: Position, enc: Encoding, lowered: Option<&ir::Fleet>) -> Option<Hover> {
    let offset = file.text.offset(pos, enc);
    let cur = cursor(&file.nodes, file.text.as_str(), offset);
    let layers = super::profiles::hover_note(fleet, &cur);
    let cluster = match &cur.spot {
        Spot::NodeName { node: Some(node) } | Spot::Arg { node, .. } => Some(*node),
        Spot::Key { node, .. } | Spot::PropValue { node, .. } => Some(*node),
        _ => None,
    }
    .filter(|n| cur.path.is_empty() && n.name.text == "cluster");
    let layers = match (layers, cluster.and_then(|c| super::profiles::effective(fleet, file, c))) {
        (Some(a), Some(b)) => Some(format!("{a}\n\n{b}")),
        (a, b) => a.or(b),
    };
    let (text, start, end) = match cur.spot {
        Spot::NodeName { node: Some(node) } => {
            let spec = node_spec(&cur.path, node)?;
            (lang::node_doc(&names(&cur.path, Some(node)), spec), node.name.start, node.name.end)
        }
        Spot::Key { node, entry } => {
            let spec = node_spec(&cur.path, node)?;
            let key = entry.key.as_ref()?;
            let prop = spec.props.iter().find(|p| p.name == key.text)?;
            (lang::prop_doc(&names(&cur.path, Some(node)), spec, prop), key.start, key.end)
        }
        Spot::PropValue { node, entry } => {
            let spec = node_spec(&cur.path, node)?;
            let prop = spec.props.iter().find(|p| entry.key.as_ref().is_some_and(|k| k.text == p.name))?;
            let value = entry.value.as_ref()?;
            let about = value_facts(fleet, &cur, node, Slot::Prop(prop.name), prop.value, value, lowered);
            let doc = lang::prop_doc(&names(&cur.path, Some(node)), spec, prop);
            (join(about, doc), value.start, value.end)
        }
        Spot::Arg { node, word, index } => {
            let spec = node_spec(&cur.path, node)?;
            let arg = spec.args.get(index)?;
            let about = value_facts(fleet, &cur, node, Slot::Arg, arg.value, word, lowered);
            (join(about, lang::node_doc(&names(&cur.path, Some(node)), spec)), word.start, word.end)
        }
        _ => return None,
    };
    let text = match layers {
        Some(note) => format!("{text}\n\n---\n\n{note}"),
        None => text,
    };
    Some(Hover { contents: HoverContents::Markup(markdown(text)), range: Some(file.text.range(start, end, enc)) })
}

fn join(first: Option<String>, rest: String) -> String {
    match first {
        Some(f) => format!("{f}\n\n---\n\n{rest}"),
        None => rest,
    }
}

/// What the value itself means.
fn value_facts(
    fleet: &Fleet,
    cur: &Cursor<'_>,
    node: &Node,
    slot: Slot,
    kind: ValueKind,
    value: &Word,
    lowered: Option<&ir::Fleet>,
) -> Option<String> {
    if let Some(r) = Fleet::reference(&cur.path, node, slot) {
        return Some(reference_facts(fleet, r, &value.text, lowered));
    }
    match kind {
        ValueKind::Quantity => {
            let q = if value.quoted {
                Quantity::parse(&value.text)
            } else {
                value.text.parse::<u64>().map(Quantity::gibibytes).map_err(|e| e.to_string())
            };
            Some(match q {
                Ok(q) => format!(
                    "`{}` is **{q}**{}",
                    if value.quoted { format!("\"{}\"", value.text) } else { value.text.clone() },
                    if value.quoted { "" } else { " (a bare number means Gi)" }
                ),
                Err(e) => format!("not a quantity: {e}"),
            })
        }
        ValueKind::Duration if value.quoted => Some(match Duration::parse(&value.text) {
            Ok(d) => format!("`\"{}\"` is **{d}**", value.text),
            Err(e) => format!("not a duration: {e}"),
        }),
        _ => None,
    }
}

/// A class's declaration, or a host device's demand and capacity.
fn reference_facts(fleet: &Fleet, kind: RefKind, name: &str, lowered: Option<&ir::Fleet>) -> String {
    let declared = match kind {
        RefKind::Group => None,
        _ => {
            fleet.declared(kind).into_iter().find(|(w, _)| w.text == name).map(|(_, n)| describe_declaration(kind, n).1)
        }
    };
    let mut s = format!("**{} `{name}`**", what(kind));
    match (&declared, kind) {
        (Some(line), RefKind::Profile) => s.push_str(&format!("\n\nDeclared:\n```kdl\n{line}\n```")),
        (Some(line), _) => s.push_str(&format!("\n\nDeclared in `infra`:\n```kdl\n{line}\n```")),
        (None, RefKind::Profile) => s.push_str("\n\nNo profile of this name is declared."),
        (None, RefKind::Group) => {}
        (None, _) => s.push_str("\n\nNot declared in `infra`."),
    }
    if kind == RefKind::HostDevice {
        s.push_str(&device_demand(name, lowered));
    }
    s
}

/// Demand for a host device summed over every pool of every cluster, as
/// the capacity rule counts it (replicas, or the autoscaling maximum, times
/// the count), against the capacity `infra` declares.
fn device_demand(name: &str, lowered: Option<&ir::Fleet>) -> String {
    let Some(fleet) = lowered else {
        return "\n\nDemand: not known until the fleet has been checked.".into();
    };
    let mut total: u64 = 0;
    let mut parts = Vec::new();
    for c in &fleet.clusters {
        for p in &c.node_pools {
            for d in p.host_devices.iter().filter(|d| d.name.value == name) {
                let vms = u64::from(p.scaling.value.max());
                let n = vms.saturating_mul(u64::from(d.count.value));
                total = total.saturating_add(n);
                parts.push(format!("- `{}/{}`: {vms} × {} = {n}", c.name.value, p.name.value, d.count.value));
            }
        }
    }
    let capacity = fleet.inventory.host_devices.iter().find(|h| h.name.value == name).map(|h| h.capacity);
    let mut s = match capacity {
        Some(cap) if total > u64::from(cap) => format!("\n\nFleet demand: **{total}** of {cap}: over capacity"),
        Some(cap) => format!("\n\nFleet demand: **{total}** of {cap}"),
        None => format!("\n\nFleet demand: **{total}** (capacity unknown)"),
    };
    if !parts.is_empty() {
        s.push_str("\n\n");
        s.push_str(&parts.join("\n"));
    }
    s
}

// ---------------------------------------------------------------------------
// Definition and references

/// What the cursor names for navigation.
enum Target<'a> {
    /// A name that crosses files (class, device, group).
    Name(RefKind, &'a Word),
    /// A setting in a cluster or in `defaults`: its schema path
    /// (`defaults` read as `cluster`) and property, if on one.
    Setting { pattern: String, prop: Option<&'a str>, in_defaults: bool },
}

fn target<'a>(cur: &Cursor<'a>) -> Option<Target<'a>> {
    let reference = |node: &'a Node, slot: Slot, word: &'a Word| {
        Fleet::reference(&cur.path, node, slot).map(|k| Target::Name(k, word))
    };
    let (node, prop) = match &cur.spot {
        Spot::Arg { node, word, index: 0 } => {
            if let Some(t) = reference(node, Slot::Arg, word) {
                return Some(t);
            }
            (*node, None)
        }
        Spot::PropValue { node, entry } | Spot::Key { node, entry } => {
            let key = entry.key.as_ref()?;
            let slot = ["storage-class", "profile", "extends"].into_iter().find(|k| *k == key.text).map(Slot::Prop);
            if let (Some(slot), Some(v)) = (slot, &entry.value)
                && let Some(t) = reference(node, slot, v)
            {
                return Some(t);
            }
            (*node, Some(key.text.as_str()))
        }
        Spot::NodeName { node: Some(node) } => (*node, None),
        Spot::Arg { node, .. } => (*node, None),
        _ => return None,
    };
    let root = cur.path.first()?.name.text.as_str();
    if root != "cluster" && root != "defaults" && root != "profile" {
        return None;
    }
    Some(Target::Setting { pattern: pattern(&cur.path, node), prop, in_defaults: root == "defaults" })
}

/// Every node with this setting (pattern and, if given, property), with
/// whether it is in `defaults`.
fn settings<'a>(fleet: &'a Fleet, pat: &str, prop: Option<&str>) -> Vec<(&'a File, &'a Node, bool)> {
    let mut out = Vec::new();
    fleet.walk(|file, path, node| {
        let Some(root) = path.first() else { return };
        if pattern(path, node) == pat && prop.is_none_or(|p| node.prop(p).is_some()) {
            out.push((file, node, root.name.text == "defaults"));
        }
    });
    out
}

/// Where a setting is written: a property's key and value, or a node's head.
fn setting_location(file: &File, node: &Node, prop: Option<&str>, enc: Encoding) -> Option<Location> {
    match prop.and_then(|p| node.prop(p)) {
        Some(e) => location(file, e.key.as_ref()?.start, e.end(), enc),
        None => location(file, node.name.start, node.head_end(), enc),
    }
}

/// From a class or device to its `infra` declaration; from a storage group
/// to its other blocks; from a cluster setting to the `defaults` value it
/// overrides.
pub fn definition(fleet: &Fleet, file: &File, pos: Position, enc: Encoding) -> Option<GotoDefinitionResponse> {
    let offset = file.text.offset(pos, enc);
    let cur = cursor(&file.nodes, file.text.as_str(), offset);
    let locations: Vec<Location> = match target(&cur)? {
        Target::Name(RefKind::Group, word) => fleet
            .occurrences(RefKind::Group, &word.text)
            .into_iter()
            .filter(|o| !std::ptr::eq(o.word, word))
            .filter_map(|o| location(o.file, o.word.start, o.word.end, enc))
            .collect(),
        Target::Name(kind, word) => fleet
            .occurrences(kind, &word.text)
            .into_iter()
            .filter(|o| o.declaration)
            .filter_map(|o| location(o.file, o.word.start, o.word.end, enc))
            .collect(),
        Target::Setting { .. } if super::profiles::applies(&cur.path) => {
            let (node, prop) = super::profiles::setting(&cur)?;
            super::profiles::definition(fleet, &cur.path, node, prop, enc)
        }
        Target::Setting { in_defaults: true, .. } => return None,
        Target::Setting { pattern, prop, in_defaults: false } => settings(fleet, &pattern, prop)
            .into_iter()
            .filter(|(_, _, d)| *d)
            .filter_map(|(f, n, _)| setting_location(f, n, prop, enc))
            .collect(),
    };
    (!locations.is_empty()).then_some(GotoDefinitionResponse::Array(locations))
}

/// Every use of a class, device or group across the fleet; for a setting,
/// every cluster that overrides the `defaults` value (and that value).
pub fn references(fleet: &Fleet, file: &File, pos: Position, enc: Encoding, with_decl: bool) -> Option<Vec<Location>> {
    let offset = file.text.offset(pos, enc);
    let cur = cursor(&file.nodes, file.text.as_str(), offset);
    let locations: Vec<Location> = match target(&cur)? {
        Target::Name(kind, word) => fleet
            .occurrences(kind, &word.text)
            .into_iter()
            .filter(|o| with_decl || !o.declaration)
            .filter_map(|o| location(o.file, o.word.start, o.word.end, enc))
            .collect(),
        Target::Setting { .. } if cur.path.first().is_some_and(|r| r.name.text == "profile") => {
            let (node, prop) = super::profiles::setting(&cur)?;
            super::profiles::references(fleet, file, &cur.path, node, prop, enc, with_decl)
        }
        Target::Setting { pattern, prop, .. } => settings(fleet, &pattern, prop)
            .into_iter()
            .filter(|(_, _, d)| with_decl || !*d)
            .filter_map(|(f, n, _)| setting_location(f, n, prop, enc))
            .collect(),
    };
    Some(locations)
}

// ---------------------------------------------------------------------------
// Formatting and code actions

/// The edit that turns the document into `hcpc fmt`'s canonical form, so
/// that format + save writes what `hcpc fmt` writes; `None` when it does
/// not parse (formatting never guesses).
///
/// Only the lines between the first and the last that change are
/// replaced, so the cursor outside them stays where it was. The edit is
/// whole lines, from the start of its first line to the start of the line
/// after its last: for a document without a final newline that is one
/// line past its end, which editors read as "up to the end, final newline
/// included" (Neovim then keeps its buffer free of an extra empty line, and
/// its `fixeol` write adds the newline once).
pub fn format(text: &Text) -> Option<Vec<TextEdit>> {
    if crate::parse::too_deep(text.as_str()).is_some() {
        return None;
    }
    let formatted = crate::fmt::format_source(text.as_str()).ok()?;
    Some(line_edit(text.as_str(), &formatted).into_iter().collect())
}

/// Lines with their breaks, broken where the server's `Text` breaks them
/// (`\r\n`, `\n` or a lone `\r`), so line numbers agree.
fn lines_inclusive(s: &str) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            out.push(&s[start..=i]);
            start = i + 1;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// One edit replacing the lines where `old` and `new` differ.
fn line_edit(old: &str, new: &str) -> Option<TextEdit> {
    if old == new {
        return None;
    }
    let (a, b) = (lines_inclusive(old), lines_inclusive(new));
    let same_start = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let same_end = a[same_start..].iter().rev().zip(b[same_start..].iter().rev()).take_while(|(x, y)| x == y).count();
    let line = |n: usize| Position { line: n as u32, character: 0 };
    Some(TextEdit {
        range: Range { start: line(same_start), end: line(a.len() - same_end) },
        new_text: b[same_start..b.len() - same_end].concat(),
    })
}

fn fix_of(d: &lsp_types::Diagnostic) -> Option<Fix> {
    serde_json::from_value(d.data.as_ref()?.get("fix")?.clone()).ok()
}

/// A code action request, read leniently: clients send back diagnostics in
/// many shapes (some only with `code` and `data`), so they stay JSON here.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeActionRequest {
    pub text_document: lsp_types::TextDocumentIdentifier,
    pub range: Range,
    #[serde(default)]
    pub context: CodeActionRequestContext,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CodeActionRequestContext {
    #[serde(default)]
    pub diagnostics: Vec<serde_json::Value>,
    #[serde(default)]
    pub only: Option<Vec<CodeActionKind>>,
}

fn overlaps(a: &Range, b: &Range) -> bool {
    (a.start.line, a.start.character) <= (b.end.line, b.end.character)
        && (b.start.line, b.start.character) <= (a.end.line, a.end.character)
}

/// A quick fix for every diagnostic in the request whose help names one
/// fix. The fix travels in the diagnostic's `data`; for clients that do
/// not send it back, the diagnostics shown for the document are matched by
/// range and code, or by the requested range when none are sent.
pub fn code_actions(p: &CodeActionRequest, shown: &[lsp_types::Diagnostic]) -> CodeActionResponse {
    if p.context.only.as_ref().is_some_and(|only| {
        !only.iter().any(|k| CodeActionKind::QUICKFIX.as_str().starts_with(k.as_str()) && !k.as_str().is_empty())
    }) {
        return Vec::new();
    }
    let mut found: Vec<(Fix, lsp_types::Diagnostic)> = Vec::new();
    let in_range = |d: &&lsp_types::Diagnostic| overlaps(&d.range, &p.range);
    for sent in &p.context.diagnostics {
        let fix =
            sent.get("data").and_then(|d| d.get("fix")).and_then(|f| serde_json::from_value::<Fix>(f.clone()).ok());
        let range = sent.get("range").and_then(|r| serde_json::from_value::<Range>(r.clone()).ok());
        let code = sent.get("code").and_then(serde_json::Value::as_str);
        // The diagnostic as shown: the same range and code, else the same
        // code in the requested range.
        let same = |d: &&lsp_types::Diagnostic| {
            matches!(&d.code, Some(NumberOrString::String(c)) if Some(c.as_str()) == code)
                && range.is_none_or(|r| r == d.range)
        };
        let shown_as = shown.iter().filter(in_range).find(same).or_else(|| shown.iter().find(same));
        match (fix, shown_as) {
            (Some(fix), Some(d)) => found.push((fix, d.clone())),
            (None, Some(d)) => found.extend(fix_of(d).map(|f| (f, d.clone()))),
            (Some(fix), None) => {
                if let Ok(d) = serde_json::from_value::<lsp_types::Diagnostic>(sent.clone()) {
                    found.push((fix, d));
                }
            }
            (None, None) => {}
        }
    }
    if p.context.diagnostics.is_empty() {
        found.extend(shown.iter().filter(in_range).filter_map(|d| Some((fix_of(d)?, d.clone()))));
    }
    let mut out = Vec::new();
    for (fix, diagnostic) in found {
        let Ok(uri) = fix.uri.parse::<Uri>() else { continue };
        if out
            .iter()
            .any(|a: &CodeActionOrCommand| matches!(a, CodeActionOrCommand::CodeAction(c) if c.title == fix.title))
        {
            continue;
        }
        out.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: fix.title,
            kind: Some(CodeActionKind::QUICKFIX),
            diagnostics: Some(vec![diagnostic]),
            edit: Some(WorkspaceEdit {
                changes: Some(HashMap::from([(uri, vec![fix.edit])])),
                ..WorkspaceEdit::default()
            }),
            is_preferred: Some(true),
            ..CodeAction::default()
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The document after the formatting edits, as an editor applies them.
    fn formatted(doc: &str) -> (String, Vec<TextEdit>) {
        let text = Text::new(Arc::new(doc.to_owned()));
        let edits = format(&text).expect("parses");
        let mut out = doc.to_owned();
        for e in edits.iter().rev() {
            out = super::super::text::apply_change(&Text::new(Arc::new(out)), e.range, &e.new_text, Encoding::Utf16);
        }
        (out, edits)
    }

    #[test]
    fn formatting_equals_hcpc_fmt_byte_for_byte() {
        for doc in [
            "cluster a {\n  node-pool w replicas=1\n}",
            "cluster a {\r\n  node-pool w replicas=1\r\n}\r\n",
            "cluster a {\r  release \"x\"\r}",
            "cluster a {\n    node-pool w replicas=1\n}\n\n\n",
            "cluster a {\n    node-pool w replicas=1\n}\n",
            "",
        ] {
            let (out, _) = formatted(doc);
            assert_eq!(out, crate::fmt::format_source(doc).unwrap(), "{doc:?}");
        }
    }

    #[test]
    fn only_changed_lines_are_replaced() {
        let doc = "cluster a {\n    labels x=y\n      node-pool w replicas=1\n    release \"r\"\n}\n";
        let (_, edits) = formatted(doc);
        assert_eq!(edits.len(), 1);
        let r = edits[0].range;
        assert_eq!((r.start, r.end), (Position::new(2, 0), Position::new(3, 0)), "{edits:?}");
        assert_eq!(edits[0].new_text, "    node-pool w replicas=1\n");
        assert!(formatted("cluster a\n").1.is_empty());
    }

    #[test]
    fn a_missing_final_newline_is_added_by_an_edit_reaching_past_the_last_line() {
        // Editors read a range ending one line past the text as reaching
        // its end with the final newline (Neovim then drops the empty line
        // it would otherwise keep, and writes `}\n`, not `}\n\n`).
        let (_, edits) = formatted("cluster a {\n    release \"x\"\n}");
        assert_eq!(edits.len(), 1);
        assert_eq!((edits[0].range.start, edits[0].range.end), (Position::new(2, 0), Position::new(3, 0)));
        assert_eq!(edits[0].new_text, "}\n");
    }
}
