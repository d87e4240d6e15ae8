//! The plan: a small closed set of actions over objects, with the field
//! changes behind each, the groups of changes shared across the fleet and
//! the impact totals. Text, markdown, JSON and diff views all read this one
//! structure, so they cannot disagree.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::group::{Group, Varying};
pub use super::impact::{Impact, ReleaseChange};
use crate::object::ObjectId;

/// Version of the JSON plan format (`hcpc plan --format json`, `--out`).
/// 2: `rolls_nodes`, `cluster`, `groups` and `impact` added; roll-outs are
/// no longer a note.
pub const FORMAT_VERSION: &str = "2";

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
