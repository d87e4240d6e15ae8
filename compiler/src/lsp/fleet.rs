//! The fleet an open document belongs to, as the editor sees it now: every
//! `*.kdl` file of its directory, unsaved buffers over the text on disk,
//! each with its outline. Names that cross files (storage and snapshot
//! classes and host devices declared in `infra`, storage groups, settings
//! in `defaults`) are looked up here.

use std::path::PathBuf;
use std::sync::Arc;

use super::syntax::{Node, Word, outline};
use super::text::Text;

/// One file: its text and outline.
#[derive(Debug)]
pub struct File {
    /// The URI replies name it by (the editor's own for open documents).
    pub uri: String,
    pub path: Option<PathBuf>,
    pub text: Text,
    pub nodes: Vec<Node>,
}

impl File {
    pub fn new(uri: String, path: Option<PathBuf>, text: Arc<String>) -> File {
        let nodes = outline(&text);
        File { uri, path, text: Text::new(text), nodes }
    }
}

/// The files of one fleet, in name order.
pub struct Fleet {
    pub files: Vec<Arc<File>>,
}

/// What a name written in one place refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    StorageClass,
    SnapshotClass,
    HostDevice,
    Group,
    Profile,
}

/// Where a name is written: in the first argument or in a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Arg,
    Prop(&'static str),
}

/// Every place a cross-file name is written: the node's schema path
/// (`defaults` reads as `cluster`), where in the node, what it names, and
/// whether it is the declaration.
#[rustfmt::skip]
const REFERENCES: &[(&str, Slot, RefKind, bool)] = &[
    ("infra storage-class", Slot::Arg, RefKind::StorageClass, true),
    ("infra snapshot-class", Slot::Arg, RefKind::SnapshotClass, true),
    ("infra host-device", Slot::Arg, RefKind::HostDevice, true),
    ("cluster storage class", Slot::Arg, RefKind::StorageClass, false),
    ("cluster storage group class", Slot::Arg, RefKind::StorageClass, false),
    ("cluster etcd", Slot::Prop("storage-class"), RefKind::StorageClass, false),
    ("cluster node-pool root-volume", Slot::Prop("storage-class"), RefKind::StorageClass, false),
    ("cluster storage snapshot-class", Slot::Arg, RefKind::SnapshotClass, false),
    ("cluster storage group snapshot-class", Slot::Arg, RefKind::SnapshotClass, false),
    ("cluster node-pool host-device", Slot::Arg, RefKind::HostDevice, false),
    ("cluster storage group", Slot::Arg, RefKind::Group, false),
    ("profile", Slot::Arg, RefKind::Profile, true),
    ("cluster", Slot::Prop("profile"), RefKind::Profile, false),
    ("profile", Slot::Prop("extends"), RefKind::Profile, false),
];

/// The schema path of `node` under `path`, `defaults` and a profile's
/// settings read as `cluster`.
pub fn pattern(path: &[&Node], node: &Node) -> String {
    let mut names: Vec<&str> = path.iter().map(|n| n.name.text.as_str()).collect();
    names.push(&node.name.text);
    if names.first() == Some(&"defaults") || (names.len() > 1 && names.first() == Some(&"profile")) {
        names[0] = "cluster";
    }
    names.join(" ")
}

/// The word in `slot` of `node`.
fn word_in(node: &Node, slot: Slot) -> Option<&Word> {
    match slot {
        Slot::Arg => node.arg(0),
        Slot::Prop(key) => node.prop(key).and_then(|e| e.value.as_ref()),
    }
}

/// An occurrence of a name.
pub struct Occurrence<'a> {
    pub file: &'a File,
    pub word: &'a Word,
    pub declaration: bool,
}

impl Fleet {
    /// Calls `f` with every live node, its file and its enclosing nodes.
    pub fn walk<'a>(&'a self, mut f: impl FnMut(&'a File, &[&'a Node], &'a Node)) {
        fn go<'a>(
            file: &'a File,
            path: &mut Vec<&'a Node>,
            nodes: &'a [Node],
            f: &mut impl FnMut(&'a File, &[&'a Node], &'a Node),
        ) {
            for n in nodes.iter().filter(|n| !n.commented) {
                f(file, path, n);
                path.push(n);
                go(file, path, n.child_nodes(), f);
                path.pop();
            }
        }
        for file in &self.files {
            go(file, &mut Vec::new(), &file.nodes, &mut f);
        }
    }

    /// The cross-file name written in `slot` of `node` (under `path`), if it is one.
    pub fn reference(path: &[&Node], node: &Node, slot: Slot) -> Option<RefKind> {
        let p = pattern(path, node);
        REFERENCES.iter().find(|(pat, s, _, _)| *pat == p && *s == slot).map(|(_, _, k, _)| *k)
    }

    /// Every place `name` of `kind` is written, declarations first, in file order.
    pub fn occurrences(&self, kind: RefKind, name: &str) -> Vec<Occurrence<'_>> {
        let mut out = Vec::new();
        self.walk(|file, path, node| {
            let p = pattern(path, node);
            for (pat, slot, k, declaration) in REFERENCES {
                if *k == kind
                    && *pat == p
                    && let Some(word) = word_in(node, *slot).filter(|w| w.text == name)
                {
                    out.push(Occurrence { file, word, declaration: *declaration });
                }
            }
        });
        out.sort_by_key(|o| !o.declaration);
        out
    }

    /// The declarations of `kind` in `infra` (or, for groups, every group
    /// name used), each name once, in file order, with its node.
    pub fn declared(&self, kind: RefKind) -> Vec<(&Word, &Node)> {
        let mut out: Vec<(&Word, &Node)> = Vec::new();
        self.walk(|_, path, node| {
            let p = pattern(path, node);
            let wanted = REFERENCES.iter().any(|(pat, slot, k, declaration)| {
                *k == kind && *pat == p && *slot == Slot::Arg && (*declaration || kind == RefKind::Group)
            });
            if let Some(w) = node.arg(0).filter(|_| wanted)
                && !out.iter().any(|(seen, _)| seen.text == w.text)
            {
                out.push((w, node));
            }
        });
        out
    }

    /// The values every `namespace` setting and `fleet namespace=` uses.
    pub fn namespaces(&self) -> Vec<&Word> {
        let mut out: Vec<&Word> = Vec::new();
        self.walk(|_, path, node| {
            let w = match pattern(path, node).as_str() {
                "cluster namespace" => node.arg(0),
                "fleet" | "cluster infra-cluster" => node.prop("namespace").and_then(|e| e.value.as_ref()),
                _ => None,
            };
            if let Some(w) = w.filter(|w| !out.iter().any(|o| o.text == w.text)) {
                out.push(w);
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(files: &[&str]) -> Fleet {
        Fleet {
            files: files
                .iter()
                .enumerate()
                .map(|(i, t)| Arc::new(File::new(format!("file:///f{i}.kdl"), None, Arc::new((*t).to_owned()))))
                .collect(),
        }
    }

    #[test]
    fn finds_names_across_files() {
        let f = fleet(&[
            "infra {\n    storage-class rbd access=RWX\n    host-device a100 capacity=4\n}\n",
            "cluster a {\n    storage {\n        group g { class rbd hosted=x }\n    }\n    node-pool p { host-device a100; root-volume storage-class=rbd }\n}\n",
        ]);
        let occ = f.occurrences(RefKind::StorageClass, "rbd");
        assert_eq!(occ.len(), 3);
        assert!(occ[0].declaration && occ[0].file.uri.ends_with("f0.kdl"));
        assert_eq!(f.declared(RefKind::HostDevice).iter().map(|(w, _)| w.text.as_str()).collect::<Vec<_>>(), ["a100"]);
        assert_eq!(f.declared(RefKind::Group).len(), 1);
    }
}
