//! Settings through profiles, for navigation: a cluster's (or profile's)
//! setting and the values it overrides in its profile, the profiles that
//! one extends and `defaults`; and back, from a profile's value to the
//! clusters and profiles that override it.

use lsp_types::Location;

use super::fleet::{File, Fleet};
use super::syntax::{Cursor, Node, Spot, Word};
use super::text::Encoding;

/// One layer a setting may come from.
#[derive(Clone, Copy)]
pub struct Layer<'a> {
    pub file: &'a File,
    /// The `cluster`, `profile` or `defaults` node.
    pub root: &'a Node,
}

/// ``cluster `a` ``, ``profile `gpu` ``, `` `defaults` ``.
fn describe(root: &Node) -> String {
    match (root.name.text.as_str(), root.arg(0)) {
        ("profile", Some(w)) => format!("profile `{}`", w.text),
        ("cluster", Some(w)) => format!("cluster `{}`", w.text),
        (other, _) => format!("`{other}`"),
    }
}

fn top_level(fleet: &Fleet) -> impl Iterator<Item = (&File, &Node)> {
    fleet.files.iter().flat_map(|f| f.nodes.iter().filter(|n| !n.commented).map(move |n| (&**f, n)))
}

fn profile<'a>(fleet: &'a Fleet, name: &str) -> Option<Layer<'a>> {
    top_level(fleet)
        .find(|(_, n)| n.name.text == "profile" && n.arg(0).is_some_and(|w| w.text == name))
        .map(|(file, root)| Layer { file, root })
}

fn word_of<'a>(node: &'a Node, key: &str) -> Option<&'a Word> {
    node.prop(key).filter(|e| !e.commented).and_then(|e| e.value.as_ref())
}

/// The layers below `root` (a cluster or profile), most specific first:
/// its profile chain, then `defaults`. Stops at an unknown name or a cycle.
pub fn below<'a>(fleet: &'a Fleet, root: &'a Node) -> Vec<Layer<'a>> {
    let mut out: Vec<Layer<'a>> = Vec::new();
    let key = if root.name.text == "cluster" { "profile" } else { "extends" };
    let mut next = word_of(root, key).map(|w| w.text.as_str());
    while let Some(name) = next {
        let Some(p) = profile(fleet, name) else { break };
        if std::ptr::eq(p.root, root) || out.iter().any(|l| std::ptr::eq(l.root, p.root)) {
            break;
        }
        out.push(p);
        next = word_of(p.root, "extends").map(|w| w.text.as_str());
    }
    if let Some((file, root)) = top_level(fleet).find(|(_, n)| n.name.text == "defaults") {
        out.push(Layer { file, root });
    }
    out
}

/// Whether `layers` of a cluster or profile pass through `profile`.
fn takes(fleet: &Fleet, root: &Node, profile: &Node) -> bool {
    below(fleet, root).iter().any(|l| std::ptr::eq(l.root, profile))
}

/// The node at `steps` (names below the root, each with the pool name for
/// `node-pool`) in `root`: a pool of the same name, else, in a profile or
/// `defaults`, the unnamed `node-pool` every pool inherits.
fn find<'a>(root: &'a Node, steps: &[(&str, Option<&str>)]) -> Option<&'a Node> {
    let mut node = root;
    for (name, pool) in steps {
        let kids = || node.child_nodes().iter().filter(|n| !n.commented && n.name.text == *name);
        node = match pool {
            Some(p) => kids()
                .find(|n| n.arg(0).is_some_and(|w| w.text == *p))
                .or_else(|| (root.name.text != "cluster").then(|| kids().find(|n| n.arg(0).is_none())).flatten())?,
            None => kids().next()?,
        };
    }
    Some(node)
}

/// The steps from the root to `node` under `path` (`path[0]` is the root).
fn steps<'a>(path: &[&'a Node], node: &'a Node) -> Vec<(&'a str, Option<&'a str>)> {
    path.iter()
        .skip(1)
        .copied()
        .chain(std::iter::once(node))
        .map(|n| {
            (n.name.text.as_str(), (n.name.text == "node-pool").then(|| n.arg(0).map(|w| w.text.as_str())).flatten())
        })
        .collect()
}

/// Where the setting is written in `layer`, if it is: the property, or
/// the node's head.
fn located(layer: &Layer<'_>, steps: &[(&str, Option<&str>)], prop: Option<&str>, enc: Encoding) -> Option<Location> {
    let n = find(layer.root, steps)?;
    let (start, end) = match prop {
        Some(p) => {
            let e = n.prop(p).filter(|e| !e.commented)?;
            (e.key.as_ref()?.start, e.end())
        }
        None => (n.name.start, n.head_end()),
    };
    Some(Location { uri: layer.file.uri.parse().ok()?, range: layer.file.text.range(start, end, enc) })
}

/// Whether navigation through profiles applies: the cursor is in a
/// profile, or in a cluster that names one.
pub fn applies(path: &[&Node]) -> bool {
    match path.first() {
        Some(root) if root.name.text == "profile" => true,
        Some(root) if root.name.text == "cluster" => word_of(root, "profile").is_some(),
        _ => false,
    }
}

/// The values the setting under the cursor overrides, nearest layer first.
pub fn definition(fleet: &Fleet, path: &[&Node], node: &Node, prop: Option<&str>, enc: Encoding) -> Vec<Location> {
    let Some(root) = path.first() else { return Vec::new() };
    let steps = steps(path, node);
    below(fleet, root).iter().filter_map(|l| located(l, &steps, prop, enc)).take(1).collect()
}

/// For a setting in a profile: the clusters and profiles taking it that
/// set it too (overriding it), and with `with_decl` the value itself.
pub fn references(
    fleet: &Fleet,
    file: &File,
    path: &[&Node],
    node: &Node,
    prop: Option<&str>,
    enc: Encoding,
    with_decl: bool,
) -> Vec<Location> {
    let Some(root) = path.first().copied() else { return Vec::new() };
    let steps = steps(path, node);
    let mut out = Vec::new();
    if with_decl && let Some(l) = located(&Layer { file, root }, &steps, prop, enc) {
        out.push(l);
    }
    for (f, n) in top_level(fleet) {
        if !std::ptr::eq(n, root) && matches!(n.name.text.as_str(), "cluster" | "profile") && takes(fleet, n, root) {
            out.extend(located(&Layer { file: f, root: n }, &steps, prop, enc));
        }
    }
    out
}

/// The setting node and property under the cursor, for navigation.
pub fn setting<'a>(cur: &Cursor<'a>) -> Option<(&'a Node, Option<&'a str>)> {
    match &cur.spot {
        Spot::PropValue { node, entry } | Spot::Key { node, entry } => {
            Some((*node, Some(entry.key.as_ref()?.text.as_str())))
        }
        Spot::NodeName { node: Some(node) } | Spot::Arg { node, .. } => Some((*node, None)),
        _ => None,
    }
}

/// Hover text for a cluster itself: every setting it ends up with and the
/// layer each comes from, nearest first. Maps and settings with properties
/// combine across layers, so each layer that has one is listed; anything
/// else comes from the nearest layer alone.
pub fn effective(fleet: &Fleet, file: &File, root: &Node) -> Option<String> {
    let mut layers = vec![Layer { file, root }];
    layers.extend(below(fleet, root));
    let mut seen: Vec<(&str, Option<&str>)> = Vec::new();
    let mut lines = Vec::new();
    for layer in &layers {
        for n in layer.root.child_nodes().iter().filter(|n| !n.commented) {
            let name = n.name.text.as_str();
            let pool = (name == "node-pool").then(|| n.arg(0).map(|w| w.text.as_str())).flatten();
            let combines = matches!(
                name,
                "labels" | "annotations" | "control-plane-node-selector" | "network" | "availability" | "etcd"
            ) || (name == "node-pool" && pool.is_none());
            let first = !seen.contains(&(name, pool));
            if !first && !combines {
                continue;
            }
            if first {
                seen.push((name, pool));
            }
            let head: String =
                layer.file.text.as_str()[n.name.start..n.head_end()].split_whitespace().collect::<Vec<_>>().join(" ");
            let also = if first { "" } else { ", combined with the nearer ones" };
            lines.push(format!("- `{head}` ({}{also})", describe(layer.root)));
        }
    }
    if lines.is_empty() {
        return None;
    }
    let chain: Vec<String> = layers.iter().map(|l| describe(l.root)).collect();
    Some(format!("Effective settings, nearest layer first ({}):\n\n{}", chain.join(" › "), lines.join("\n")))
}

/// Hover text for a setting's name in a profile or in a cluster with one:
/// its layers, and which lower layers it overrides.
pub fn hover_note(fleet: &Fleet, cur: &Cursor<'_>) -> Option<String> {
    if !matches!(cur.spot, Spot::NodeName { .. } | Spot::Key { .. }) || cur.path.is_empty() || !applies(&cur.path) {
        return None;
    }
    let (node, prop) = setting(cur)?;
    layers_note(fleet, &cur.path, node, prop)
}

/// Where the setting is also set below this layer, nearest first, saying
/// which value wins.
fn layers_note(fleet: &Fleet, path: &[&Node], node: &Node, prop: Option<&str>) -> Option<String> {
    let root = path.first()?;
    let steps = steps(path, node);
    let here = describe(root);
    let layers = below(fleet, root);
    let under: Vec<String> = layers
        .iter()
        .filter(|l| find(l.root, &steps).is_some_and(|n| prop.is_none_or(|p| n.prop(p).is_some())))
        .map(|l| describe(l.root))
        .collect();
    let chain: Vec<String> = std::iter::once(here.clone()).chain(layers.iter().map(|l| describe(l.root))).collect();
    let mut s = format!("Layers: {}.", chain.join(" › "));
    if under.is_empty() {
        s.push_str(&format!(" Set only in {here}."));
    } else {
        let under = under.join(", ");
        // How the layers combine depends on the kind of setting
        // (docs/language.md, "How layers combine").
        let how = match (node.name.text.as_str(), prop) {
            ("labels" | "annotations" | "control-plane-node-selector" | "node-selector", _) => format!(
                " Merged key by key with {under}: every key of each layer applies, and for a key set in more than one, the value of {here} wins."
            ),
            ("network" | "availability" | "etcd" | "root-volume", None) => format!(
                " Each property is looked up on its own: a property {here} sets wins over {under}, the others come from there."
            ),
            ("toleration" | "host-device" | "additional-network", _) => {
                format!(" The whole list of {here} replaces the one of {under}; the lists do not combine.")
            }
            _ => format!(" The value of {here} wins over {under}."),
        };
        s.push_str(&how);
    }
    Some(s)
}
