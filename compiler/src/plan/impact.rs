//! The impact totals a reviewer weighs before approving a plan: nodes that
//! roll, control planes that change release, replacements and destroys.
//!
//! The capacity delta per infrastructure (before → after) is reported next
//! to these totals by the capacity tables, not here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Action, Change};
use crate::object::{Kind, ObjectId};

/// The path of a HostedCluster's (and a NodePool's) release.
pub const RELEASE_PATH: &str = "spec.release.image";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// Nodes replaced by NodePool roll-outs, in all.
    pub nodes_rolling: u64,
    /// The same, per cluster (cluster name → nodes).
    pub nodes_rolling_by_cluster: BTreeMap<String, u64>,
    /// HostedClusters whose control plane changes release.
    pub release_changes: Vec<ReleaseChange>,
    /// Objects deleted and created again (immutable fields changed).
    pub replacements: Vec<ObjectId>,
    /// Objects deleted.
    pub destroys: Vec<ObjectId>,
    /// VMs deleted for good: of destroyed NodePools, and of the NodePools
    /// of destroyed HostedClusters (from `Plan::destruction`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vms_destroyed: u64,
    /// VMs deleted and created anew: of replaced NodePools, and of the
    /// NodePools of replaced HostedClusters.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vms_replaced: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseChange {
    pub cluster: String,
    pub before: String,
    pub after: String,
}

/// Totals the impact of `changes`.
pub fn impact(changes: &[Change]) -> Impact {
    let mut out = Impact::default();
    for c in changes {
        if let Some(n) = c.rolls_nodes {
            out.nodes_rolling += n;
            *out.nodes_rolling_by_cluster.entry(c.cluster.clone().unwrap_or_default()).or_default() += n;
        }
        match c.action {
            Action::Replace => out.replacements.push(c.id.clone()),
            Action::Delete => out.destroys.push(c.id.clone()),
            _ => {}
        }
        if c.id.kind == Kind::HostedCluster && matches!(c.action, Action::Update | Action::Replace) {
            let release = c.fields.iter().find(|f| f.path == RELEASE_PATH);
            if let Some((Some(Value::String(before)), Some(Value::String(after)))) =
                release.map(|f| (&f.before, &f.after))
            {
                out.release_changes.push(ReleaseChange {
                    cluster: c.cluster.clone().unwrap_or_else(|| c.id.name.clone()),
                    before: before.clone(),
                    after: after.clone(),
                });
            }
        }
    }
    out
}

impl Impact {
    /// Clusters grouped by how many nodes roll in each, most nodes first.
    pub fn clusters_by_nodes(&self) -> Vec<(u64, Vec<&str>)> {
        let mut by: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for (cluster, n) in &self.nodes_rolling_by_cluster {
            by.entry(*n).or_default().push(cluster);
        }
        by.into_iter().rev().collect()
    }

    /// Release changes grouped by (from, to), most clusters first.
    pub fn release_moves(&self) -> Vec<((&str, &str), Vec<&str>)> {
        let mut by: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for r in &self.release_changes {
            by.entry((&r.before, &r.after)).or_default().push(&r.cluster);
        }
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort_by_key(|(_, clusters)| std::cmp::Reverse(clusters.len()));
        v
    }
}
