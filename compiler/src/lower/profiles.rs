//! Profiles: named shapes of cluster (`profile gpu extends=base { … }`).
//!
//! A cluster that says `profile=gpu` reads its settings through the layers
//! cluster, `gpu`, `base`, `defaults` (most specific first), and gets the
//! named pools of `gpu` and `base`. Here each profile's chain of `extends=`
//! is worked out once for the fleet, so that an unknown name or a cycle is
//! reported once, at the profile that causes it, and each cluster only
//! looks its chain up.

use std::collections::HashMap;

use crate::diagnostic::{Code, Diagnostic, Diagnostics, closest};

use super::layers::{NodeRef, ValueRef};

/// Every profile of the fleet and its chain of `extends=`.
#[derive(Default)]
pub struct Profiles<'a> {
    /// Profiles in declaration order (the first of each name).
    declared: Vec<NodeRef<'a>>,
    /// For each name, the profile and those it extends, most specific
    /// first; `None` when the chain is broken (already reported).
    chains: HashMap<&'a str, Option<Vec<NodeRef<'a>>>>,
}

fn name_of<'a>(p: &NodeRef<'a>) -> Option<&'a str> {
    p.arg(0).and_then(|v| v.str())
}

impl<'a> Profiles<'a> {
    /// Collects the top-level `profile` nodes and reports duplicate names,
    /// unknown `extends=` names and cycles.
    pub fn collect(tops: &[NodeRef<'a>], diags: &mut Diagnostics) -> Profiles<'a> {
        let mut declared: Vec<NodeRef<'a>> = Vec::new();
        let mut by_name: HashMap<&'a str, NodeRef<'a>> = HashMap::new();
        for p in tops.iter().filter(|n| n.node.name().value() == "profile") {
            let Some(name) = name_of(p) else { continue };
            if let Some(first) = by_name.get(name) {
                diags.push(
                    Diagnostic::error(Code::NameCollision, format!("profile `{name}` is declared twice"))
                        .label(p.arg(0).map_or(p.name_span(), |v| v.span()), "declared again here")
                        .label(first.arg(0).map_or(first.name_span(), |v| v.span()), "first declared here")
                        .help("give each profile its own name, or merge the two"),
                );
                continue;
            }
            by_name.insert(name, *p);
            declared.push(*p);
            check_pools(p, diags);
        }
        let mut chains = HashMap::new();
        for p in &declared {
            let Some(name) = name_of(p) else { continue };
            let chain = chain_of(*p, &by_name, &declared, diags);
            chains.insert(name, chain);
        }
        Profiles { declared, chains }
    }

    /// The chain of the profile a cluster names: the profile, then those it
    /// extends. `None` (reported here, or at the profile) when it is
    /// unknown or broken.
    pub fn chain(&self, named: &ValueRef<'a>, diags: &mut Diagnostics) -> Option<&[NodeRef<'a>]> {
        let name = named.str()?;
        match self.chains.get(name) {
            Some(chain) => chain.as_deref(),
            None => {
                diags.push(unknown(name, named, &self.declared, "cluster"));
                None
            }
        }
    }
}

/// `profile=NAME` or `extends=NAME` naming no profile, with the closest name.
fn unknown(name: &str, at: &ValueRef<'_>, declared: &[NodeRef<'_>], what: &str) -> Diagnostic {
    let names: Vec<&str> = declared.iter().filter_map(name_of).collect();
    let d = Diagnostic::error(Code::UnknownProfile, format!("no profile is called `{name}`"))
        .label(at.span(), format!("named by this {what}"));
    match closest(name, names.iter().copied()) {
        Some(c) => {
            let key = at.entry.name().map_or("", |k| k.value());
            d.help(format!("did you mean `{c}`?")).suggest(at.span(), format!("{key}={}", crate::fmt::quote(c)))
        }
        None if names.is_empty() => d.help(format!("declare it: `profile {name} {{ … }}` at the top level")),
        None => d.help(format!("declared profiles: {}", names.join(", "))),
    }
}

/// Follows `extends=` from `start`. Reports an unknown name at the profile
/// that writes it, and a cycle once, at the first-declared profile on it.
fn chain_of<'a>(
    start: NodeRef<'a>,
    by_name: &HashMap<&'a str, NodeRef<'a>>,
    declared: &[NodeRef<'a>],
    diags: &mut Diagnostics,
) -> Option<Vec<NodeRef<'a>>> {
    let mut chain = vec![start];
    loop {
        let last = *chain.last()?;
        let Some(ext) = last.prop("extends") else { return Some(chain) };
        let Some(parent_name) = ext.str() else { return Some(chain) };
        let Some(parent) = by_name.get(parent_name) else {
            if std::ptr::eq(last.node, start.node) {
                diags.push(unknown(parent_name, &ext, declared, "profile"));
            }
            return None;
        };
        if let Some(at) = chain.iter().position(|p| std::ptr::eq(p.node, parent.node)) {
            let cycle = &chain[at..];
            let first_declared =
                declared.iter().find(|d| cycle.iter().any(|c| std::ptr::eq(c.node, d.node))).map(|d| d.node);
            if at == 0 && first_declared.is_some_and(|f| std::ptr::eq(f, start.node)) {
                let names: Vec<&str> = cycle.iter().filter_map(name_of).collect();
                let mut d = Diagnostic::error(
                    Code::ProfileCycle,
                    format!("profiles extend each other in a circle: {} → {}", names.join(" → "), names[0]),
                );
                for p in cycle {
                    if let Some(e) = p.prop("extends") {
                        d = d.label(
                            e.span(),
                            format!("`{}` extends `{}`", name_of(p).unwrap_or(""), e.str().unwrap_or("")),
                        );
                    }
                }
                diags.push(d.help("remove one `extends=` so that the chain ends at a profile that extends none"));
            }
            return None;
        }
        chain.push(*parent);
    }
}

/// Within one profile, a pool name is declared once, and so is the
/// unnamed `node-pool` of settings every pool inherits.
fn check_pools(p: &NodeRef<'_>, diags: &mut Diagnostics) {
    let Some(block) = p.children() else { return };
    let mut seen: HashMap<Option<&str>, NodeRef<'_>> = HashMap::new();
    for n in block.doc.nodes().iter().filter(|n| n.name().value() == "node-pool") {
        let n = NodeRef { node: n, file: block.file, dir: block.dir };
        let name = n.arg(0).and_then(|v| v.str());
        if let Some(first) = seen.get(&name) {
            let what = match name {
                Some(name) => format!("node pool `{name}` is declared twice in profile"),
                None => "`node-pool` without a name is set twice in profile".to_string(),
            };
            diags.push(
                Diagnostic::error(Code::NameCollision, format!("{what} `{}`", name_of(p).unwrap_or("")))
                    .label(n.name_span(), "declared again here")
                    .label(first.name_span(), "first declared here")
                    .help("merge the two blocks"),
            );
            continue;
        }
        seen.insert(name, n);
    }
}
