//! The fleet's dependency graph (petgraph): objects hcpc manages plus the
//! infrastructure facts they depend on (storage classes, snapshot classes,
//! storage groups, host devices).
//!
//! Edges point from what must exist first to what depends on it. The apply
//! order is a topological order that prefers declaration order, so output
//! reads cluster by cluster; the destroy order is its reverse.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fmt::Write;

use foldhash::fast::FixedState;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::object::ObjectId;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GraphNode {
    /// An object hcpc renders and applies.
    Object(ObjectId),
    /// An infrastructure storage class that mappings or volumes use.
    StorageClass(String),
    /// An infrastructure volume snapshot class.
    SnapshotClass(String),
    /// A storage group of one cluster (`None` is the ungrouped set).
    StorageGroup { cluster: String, group: Option<String> },
    /// A host device type (e.g. a GPU model) that pools pass through.
    HostDevice(String),
}

impl GraphNode {
    fn label(&self) -> String {
        match self {
            GraphNode::Object(id) => id.to_string(),
            GraphNode::StorageClass(n) => format!("StorageClass/{n}"),
            GraphNode::SnapshotClass(n) => format!("VolumeSnapshotClass/{n}"),
            GraphNode::StorageGroup { cluster, group: Some(g) } => format!("storage group {cluster}/{g}"),
            GraphNode::StorageGroup { cluster, group: None } => format!("ungrouped storage {cluster}"),
            GraphNode::HostDevice(n) => format!("host device {n}"),
        }
    }
}

/// The dependency graph of one fleet.
#[derive(Debug, Default)]
pub struct FleetGraph {
    graph: DiGraph<GraphNode, ()>,
    /// Only looked up, never iterated: output order comes from the graph.
    index: HashMap<GraphNode, NodeIndex, FixedState>,
    /// Edges already added: petgraph's `contains_edge` walks every edge of a
    /// node, which is quadratic for shared nodes such as a Namespace.
    edges: HashSet<(NodeIndex, NodeIndex), FixedState>,
}

impl FleetGraph {
    /// Adds a node once; returns its index.
    pub fn node(&mut self, n: &GraphNode) -> NodeIndex {
        if let Some(i) = self.index.get(n) {
            return *i;
        }
        let i = self.graph.add_node(n.clone());
        self.index.insert(n.clone(), i);
        i
    }

    /// `before` must exist before `after`.
    pub fn edge(&mut self, before: &GraphNode, after: &GraphNode) {
        let a = self.node(before);
        let b = self.node(after);
        if self.edges.insert((a, b)) {
            self.graph.add_edge(a, b, ());
        }
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// A topological order preferring insertion order (Kahn's algorithm
    /// with a min-heap), or the nodes left on a cycle.
    pub fn topological(&self) -> Result<Vec<&GraphNode>, Vec<&GraphNode>> {
        let g = &self.graph;
        let mut indegree: Vec<usize> =
            g.node_indices().map(|i| g.neighbors_directed(i, Direction::Incoming).count()).collect();
        let mut ready: BinaryHeap<Reverse<usize>> =
            indegree.iter().enumerate().filter(|(_, d)| **d == 0).map(|(i, _)| Reverse(i)).collect();
        let mut out = Vec::with_capacity(g.node_count());
        while let Some(Reverse(i)) = ready.pop() {
            out.push(&g[NodeIndex::new(i)]);
            for n in g.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
                let d = &mut indegree[n.index()];
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(n.index()));
                }
            }
        }
        if out.len() == g.node_count() {
            Ok(out)
        } else {
            Err(g.node_indices().filter(|i| indegree[i.index()] > 0).map(|i| &g[i]).collect())
        }
    }

    /// Objects in the order they must be applied.
    pub fn apply_order(&self) -> Vec<ObjectId> {
        self.topological()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| match n {
                GraphNode::Object(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Each object's place in apply order, for putting rendered objects in
    /// that order without sorting them.
    pub fn apply_positions(&self) -> HashMap<&ObjectId, usize, FixedState> {
        let order = self.topological().unwrap_or_default();
        let objects = order.into_iter().filter_map(|n| match n {
            GraphNode::Object(id) => Some(id),
            _ => None,
        });
        objects.enumerate().map(|(i, id)| (id, i)).collect()
    }

    /// Objects in dependency levels: an object's level is one more than
    /// that of the deepest object it depends on (infrastructure nodes add
    /// none), so the objects of one level can be applied at the same time
    /// once every earlier level exists. Each level keeps apply order.
    pub fn apply_levels(&self) -> Vec<Vec<ObjectId>> {
        let g = &self.graph;
        let Ok(order) = self.topological() else { return vec![self.apply_order()] };
        // `above[i]`: the level just after the deepest object node i depends
        // on (or is, for an object node).
        let mut above = vec![0usize; g.node_count()];
        let mut levels: Vec<Vec<ObjectId>> = Vec::new();
        for node in order {
            let i = self.index[node];
            let level = g.neighbors_directed(i, Direction::Incoming).map(|p| above[p.index()]).max().unwrap_or(0);
            above[i.index()] = level;
            if let GraphNode::Object(id) = node {
                above[i.index()] = level + 1;
                if levels.len() <= level {
                    levels.resize_with(level + 1, Vec::new);
                }
                levels[level].push(id.clone());
            }
        }
        levels
    }

    /// Objects in the order they must be deleted.
    pub fn destroy_order(&self) -> Vec<ObjectId> {
        let mut order = self.apply_order();
        order.reverse();
        order
    }

    /// Graphviz DOT, nodes in topological order, deterministic.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph hcpc {\n    rankdir=LR;\n    node [fontname=\"Helvetica\"];\n");
        let order: Vec<&GraphNode> = match self.topological() {
            Ok(o) => o,
            Err(_) => self.graph.node_weights().collect(),
        };
        let pos: BTreeMap<&GraphNode, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        for (i, n) in order.iter().enumerate() {
            let shape = match n {
                GraphNode::Object(_) => "box",
                GraphNode::StorageGroup { .. } => "folder",
                _ => "ellipse",
            };
            let _ = writeln!(out, "    n{i} [label=\"{}\", shape={shape}];", n.label().replace('"', "\\\""));
        }
        let mut edges: Vec<(usize, usize)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (pos[&self.graph[a]], pos[&self.graph[b]]))
            .collect();
        edges.sort_unstable();
        for (a, b) in edges {
            let _ = writeln!(out, "    n{a} -> n{b};");
        }
        out.push_str("}\n");
        out
    }
}
