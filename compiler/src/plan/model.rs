//! The plan: a small closed set of actions over objects, with the field
//! changes behind each, the groups of changes shared across the fleet and
//! the impact totals. Text, markdown, JSON and diff views all read this one
//! structure, so they cannot disagree.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::group::{Group, Varying};
pub use super::impact::{Impact, ReleaseChange};
use crate::object::ObjectId;

/// Version of the JSON plan format of one target (`hcpc plan --format
/// json` of a fleet with one target).
/// 2: `rolls_nodes`, `cluster`, `groups` and `impact` added; roll-outs are
/// no longer a note.
pub const FORMAT_VERSION: &str = "2";

/// Version of the JSON plan of a fleet over several targets (and of saved
/// plans): [`FleetPlan`], whose `targets` are each a version-2 plan.
/// 3: per-target plans, fleet totals, `moves`.
pub const FLEET_FORMAT_VERSION: &str = "3";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One changed field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Dotted path, e.g. `spec.replicas` or `data[".dockerconfigjson"]`.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Secret data: `before`/`after` are `(sensitive)`; only `changed` says anything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// This field is immutable; changing it forces replacement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

/// The planned change to one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub id: ObjectId,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// Why a replacement is forced: the immutable fields and their rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The hosted cluster the object belongs to (`None` for shared Namespaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// NodePools HyperShift rolls out by replacing VMs: how many nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolls_nodes: Option<u64>,
    /// The live version the diff was made against (resourceVersion, or a
    /// content digest for `dir`); `None` when the object does not exist.
    pub live_version: Option<String>,
    /// A HostedCluster destroyed here because the fleet now declares it on
    /// this other target (a move: HyperShift cannot migrate one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// A HostedCluster created here that still exists on this other target,
    /// where this plan or the next destroys it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
    pub unchanged: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// `dir:PATH` or `kube:CONTEXT`.
    pub target: String,
    /// Digest of every input byte (configuration and secret values).
    pub input_digest: String,
    /// The clusters a plan made with `--cluster` is limited to; empty for
    /// the whole fleet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limited_to: Vec<String>,
    pub summary: Summary,
    /// In apply order; deletes last, in destroy order. Unchanged objects included.
    pub changes: Vec<Change>,
    /// The changes grouped for reading (see [`super::group`]): every changed
    /// object is in at least one group. Derived from `changes`.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// What a reviewer weighs, totalled from `changes`.
    #[serde(default)]
    pub impact: Impact,
    /// What each replaced or destroyed HostedCluster and NodePool takes
    /// with it (see [`super::destruction`]).
    #[serde(default, skip_serializing_if = "super::destruction::Destruction::is_empty")]
    pub destruction: super::destruction::Destruction,
    /// What the fleet requests of each infrastructure, before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<super::capacity::CapacityReport>,
}

impl Summary {
    /// The line printed after a successful apply.
    pub fn applied_line(&self) -> String {
        format!(
            "Apply complete! {} added, {} changed, {} replaced, {} destroyed.",
            self.add, self.change, self.replace, self.destroy
        )
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    pub fn summary_line(&self) -> String {
        if !self.has_changes() {
            return "No changes. The target matches the configuration.".to_string();
        }
        let s = &self.summary;
        format!("Plan: {} to add, {} to change, {} to replace, {} to destroy.", s.add, s.change, s.replace, s.destroy)
    }
}

/// A hosted cluster the fleet moves from one target to another: destroyed
/// on one management cluster and created, empty, on the other.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Move {
    /// The HostedCluster.
    pub id: ObjectId,
    pub from: String,
    pub to: String,
}

impl Move {
    /// The move in words, for every view.
    pub fn sentence(&self) -> String {
        format!(
            "HyperShift cannot migrate a hosted cluster between management clusters: {} is destroyed on {} and created on {}, \
             with new nodes and a new etcd encryption key (the old one is never copied); its workloads and data do not move",
            self.id, self.from, self.to
        )
    }
}

/// A plan over every target of a fleet, in target order. Borrowed: the
/// per-target plans stay with what they were made from.
#[derive(Debug, Clone, Serialize)]
pub struct FleetPlan<'a> {
    pub format_version: &'static str,
    /// The one target's digest, or a digest of every target's.
    pub input_digest: String,
    /// Totals over every target.
    pub summary: Summary,
    pub targets: Vec<&'a Plan>,
    pub moves: Vec<Move>,
}

impl<'a> FleetPlan<'a> {
    pub fn new(targets: Vec<&'a Plan>) -> FleetPlan<'a> {
        let mut summary = Summary { add: 0, change: 0, replace: 0, destroy: 0, unchanged: 0 };
        for p in &targets {
            summary.add += p.summary.add;
            summary.change += p.summary.change;
            summary.replace += p.summary.replace;
            summary.destroy += p.summary.destroy;
            summary.unchanged += p.summary.unchanged;
        }
        let mut moves = std::collections::BTreeSet::new();
        for p in &targets {
            for c in p.changes.iter().filter(|c| c.id.kind == crate::object::Kind::HostedCluster) {
                match (c.action, &c.moved_to, &c.moved_from) {
                    (Action::Delete, Some(to), _) => {
                        moves.insert(Move { id: c.id.clone(), from: p.target.clone(), to: to.clone() });
                    }
                    (Action::Create, _, Some(from)) => {
                        moves.insert(Move { id: c.id.clone(), from: from.clone(), to: p.target.clone() });
                    }
                    _ => {}
                }
            }
        }
        FleetPlan {
            format_version: FLEET_FORMAT_VERSION,
            input_digest: match targets.as_slice() {
                [one] => one.input_digest.clone(),
                all => {
                    use sha2::Digest;
                    let mut h = sha2::Sha256::new();
                    for p in all {
                        h.update(p.input_digest.as_bytes());
                        h.update(b"\n");
                    }
                    format!("sha256:{:x}", h.finalize())
                }
            },
            summary,
            targets,
            moves: moves.into_iter().collect(),
        }
    }

    pub fn has_changes(&self) -> bool {
        self.targets.iter().any(|p| p.has_changes())
    }

    /// The fleet's summary line: the same words as one target's.
    pub fn summary_line(&self) -> String {
        if !self.has_changes() {
            return format!("No changes. All {} targets match the configuration.", self.targets.len());
        }
        let s = &self.summary;
        format!(
            "Plan: {} to add, {} to change, {} to replace, {} to destroy, over {} targets.",
            s.add,
            s.change,
            s.replace,
            s.destroy,
            self.targets.len()
        )
    }
}
