//! Reading settings through layers: a cluster's own block over `defaults`,
//! a pool's own block over `defaults { node-pool { … } }`.
//!
//! A property is looked up layer by layer, so `defaults { etcd size="16Gi" }`
//! and `cluster { etcd storage-class=lvm }` combine; a repeatable node
//! (`host-device`, `toleration`) comes whole from the most specific layer
//! that has any.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};

use crate::quantity::{Duration, Quantity};
use crate::source::{FileId, Span, Spanned};

/// One block of settings and where it was written.
#[derive(Clone, Copy)]
pub struct Block<'a> {
    pub doc: &'a KdlDocument,
    pub file: FileId,
    pub dir: &'a Path,
}

/// One node and where it was written.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    pub node: &'a KdlNode,
    pub file: FileId,
    pub dir: &'a Path,
}

impl<'a> NodeRef<'a> {
    pub fn name_span(&self) -> Span {
        Span::new(self.file, self.node.name().span())
    }

    pub fn span(&self) -> Span {
        Span::new(self.file, self.node.span())
    }

    pub fn arg(&self, i: usize) -> Option<ValueRef<'a>> {
        self.node.entries().iter().filter(|e| e.name().is_none()).nth(i).map(|entry| ValueRef {
            entry,
            file: self.file,
            dir: self.dir,
        })
    }

    pub fn prop(&self, key: &str) -> Option<ValueRef<'a>> {
        self.node.entries().iter().find(|e| e.name().is_some_and(|n| n.value() == key)).map(|entry| ValueRef {
            entry,
            file: self.file,
            dir: self.dir,
        })
    }

    /// All `KEY=VALUE` properties, for labels and selectors.
    pub fn free_props(&self) -> impl Iterator<Item = (String, String)> + 'a {
        self.node.entries().iter().filter_map(|e| {
            let key = e.name()?.value().to_string();
            Some((key, e.value().as_string()?.to_string()))
        })
    }

    pub fn children(&self) -> Option<Block<'a>> {
        self.node.children().map(|doc| Block { doc, file: self.file, dir: self.dir })
    }
}

/// One argument or property value and where it was written. The checks in
/// `check.rs` have already reported values of the wrong kind, so these
/// accessors just return `None` for them.
#[derive(Clone, Copy)]
pub struct ValueRef<'a> {
    pub entry: &'a KdlEntry,
    pub file: FileId,
    pub dir: &'a Path,
}

impl<'a> ValueRef<'a> {
    pub fn span(&self) -> Span {
        Span::new(self.file, self.entry.span())
    }

    pub fn string(&self) -> Option<Spanned<String>> {
        self.entry.value().as_string().map(|s| Spanned::new(s.to_string(), self.span()))
    }

    pub fn str(&self) -> Option<&'a str> {
        self.entry.value().as_string()
    }

    pub fn count(&self) -> Option<u32> {
        self.entry.value().as_integer().and_then(|n| u32::try_from(n).ok())
    }

    pub fn bool(&self) -> Option<bool> {
        self.entry.value().as_bool()
    }

    /// A quantity; a bare integer means Gi. A quoted number without a unit
    /// is not taken as bytes: `check` reported it.
    pub fn quantity(&self) -> Option<Quantity> {
        match self.entry.value() {
            KdlValue::String(s) if Quantity::is_unitless(s) => None,
            KdlValue::String(s) => Quantity::parse(s).ok(),
            KdlValue::Integer(n) => u64::try_from(*n).ok().map(Quantity::gibibytes),
            _ => None,
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        self.entry.value().as_string().and_then(|s| Duration::parse(s).ok())
    }

    /// A path relative to the declaring file; `~/` is the home directory.
    pub fn path(&self, home: Option<&Path>) -> Option<PathBuf> {
        let s = self.entry.value().as_string()?;
        Some(resolve_path(s, self.dir, home))
    }
}

pub fn resolve_path(s: &str, dir: &Path, home: Option<&Path>) -> PathBuf {
    if let (Some(rest), Some(home)) = (s.strip_prefix("~/"), home) {
        return home.join(rest);
    }
    let p = Path::new(s);
    if p.is_absolute() { p.to_path_buf() } else { dir.join(p) }
}

/// Settings looked up through layers, most specific first.
#[derive(Clone, Default)]
pub struct Layers<'a> {
    pub blocks: Vec<Block<'a>>,
}

impl<'a> Layers<'a> {
    pub fn new(blocks: impl IntoIterator<Item = Option<Block<'a>>>) -> Layers<'a> {
        Layers { blocks: blocks.into_iter().flatten().collect() }
    }

    /// The most specific node called `name`.
    pub fn node(&self, name: &str) -> Option<NodeRef<'a>> {
        self.blocks.iter().find_map(|b| {
            b.doc.nodes().iter().find(|n| n.name().value() == name).map(|node| NodeRef {
                node,
                file: b.file,
                dir: b.dir,
            })
        })
    }

    /// Every node called `name` in the most specific layer that has any.
    pub fn nodes(&self, name: &str) -> Vec<NodeRef<'a>> {
        for b in &self.blocks {
            let found: Vec<NodeRef<'a>> = b
                .doc
                .nodes()
                .iter()
                .filter(|n| n.name().value() == name)
                .map(|node| NodeRef { node, file: b.file, dir: b.dir })
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    /// Every node called `name` across all layers, most specific first.
    pub fn all_nodes(&self, name: &str) -> Vec<NodeRef<'a>> {
        self.blocks
            .iter()
            .flat_map(|b| {
                b.doc.nodes().iter().filter(move |n| n.name().value() == name).map(move |node| NodeRef {
                    node,
                    file: b.file,
                    dir: b.dir,
                })
            })
            .collect()
    }

    /// The first argument of the most specific `name` node.
    pub fn arg(&self, name: &str) -> Option<ValueRef<'a>> {
        self.node(name).and_then(|n| n.arg(0))
    }

    /// Property `key` of node `name`, from the most specific layer that sets it.
    pub fn prop(&self, name: &str, key: &str) -> Option<ValueRef<'a>> {
        self.all_nodes(name).into_iter().find_map(|n| n.prop(key))
    }

    /// `KEY=VALUE` properties of `name` merged across layers; the most specific wins per key.
    pub fn map(&self, name: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for n in self.all_nodes(name).into_iter().rev() {
            out.extend(n.free_props());
        }
        out
    }
}
