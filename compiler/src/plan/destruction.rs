//! What a plan destroys, in words a reviewer cannot misread.
//!
//! Replacing or destroying a HostedCluster deletes the hosted cluster: its
//! NodePools' VMs, its etcd volumes and every workload running in it go
//! with it, though the plan's own lines only name the HostedCluster. This
//! module works that out from the live objects (the NodePools that name
//! the cluster, the etcd size and availability of the live HostedCluster),
//! and counts the VMs destroyed and replaced; views only print it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Action, Change};
use super::names::plural;
use crate::object::{Kind, LiveObject, ObjectId};

/// Everything a plan destroys, and the VM totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Destruction {
    /// Each HostedCluster replaced or destroyed, with what goes with it.
    pub clusters: Vec<ClusterLoss>,
    /// NodePools replaced or destroyed while their cluster stays.
    pub node_pools: Vec<PoolLoss>,
    /// VMs deleted for good (pools and clusters destroyed).
    pub vms_destroyed: u64,
    /// VMs deleted and created anew (pools and clusters replaced).
    pub vms_replaced: u64,
}

/// A HostedCluster that is replaced (`replace`) or destroyed (`delete`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterLoss {
    pub id: ObjectId,
    pub action: Action,
    /// Its NodePools on the management cluster (those whose
    /// `spec.clusterName` names it), with their VMs.
    pub node_pools: Vec<PoolLoss>,
    /// Its etcd volumes: 3 for a highly available control plane, 1 otherwise.
    pub etcd_volumes: u64,
    /// Their size (`spec.etcd.managed.storage.persistentVolume.size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_size: Option<String>,
}

/// A NodePool's VMs that go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolLoss {
    pub id: ObjectId,
    pub action: Action,
    /// `spec.replicas`, or the autoscaler's maximum.
    pub vms: u64,
    /// The pool is autoscaled: `vms` is its maximum.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub autoscaled: bool,
}

/// What the replaced and destroyed objects of `changes` take with them,
/// read from `live`.
pub fn destruction(changes: &[Change], live: &[LiveObject]) -> Destruction {
    let live: BTreeMap<&ObjectId, &LiveObject> = live.iter().map(|l| (&l.id, l)).collect();
    let goes = |c: &&Change| matches!(c.action, Action::Replace | Action::Delete);
    let mut out = Destruction::default();
    for c in changes.iter().filter(goes).filter(|c| c.id.kind == Kind::HostedCluster) {
        let body = live.get(&c.id).map(|l| &l.body);
        let node_pools: Vec<PoolLoss> = live
            .values()
            .filter(|l| l.id.kind == Kind::NodePool && l.id.namespace == c.id.namespace)
            .filter(|l| l.body.pointer("/spec/clusterName").and_then(Value::as_str) == Some(c.id.name.as_str()))
            .map(|l| pool_loss(&l.id, c.action, &l.body))
            .collect();
        let single = body.and_then(|b| b.pointer("/spec/controllerAvailabilityPolicy")).and_then(Value::as_str)
            == Some("SingleReplica");
        out.clusters.push(ClusterLoss {
            id: c.id.clone(),
            action: c.action,
            node_pools,
            etcd_volumes: if single { 1 } else { 3 },
            etcd_size: body
                .and_then(|b| b.pointer("/spec/etcd/managed/storage/persistentVolume/size"))
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    let gone_with_cluster: Vec<ObjectId> =
        out.clusters.iter().flat_map(|c| c.node_pools.iter().map(|p| p.id.clone())).collect();
    for c in changes.iter().filter(goes).filter(|c| c.id.kind == Kind::NodePool) {
        if gone_with_cluster.contains(&c.id) {
            continue;
        }
        if let Some(l) = live.get(&c.id) {
            out.node_pools.push(pool_loss(&c.id, c.action, &l.body));
        }
    }
    for p in out.clusters.iter().flat_map(|c| &c.node_pools).chain(&out.node_pools) {
        match p.action {
            Action::Delete => out.vms_destroyed += p.vms,
            _ => out.vms_replaced += p.vms,
        }
    }
    out
}

fn pool_loss(id: &ObjectId, action: Action, body: &Value) -> PoolLoss {
    let replicas = body.pointer("/spec/replicas").and_then(Value::as_u64);
    let max = body.pointer("/spec/autoScaling/max").and_then(Value::as_u64);
    PoolLoss {
        id: id.clone(),
        action,
        vms: replicas.or(max).unwrap_or(0),
        autoscaled: replicas.is_none() && max.is_some(),
    }
}

impl PoolLoss {
    /// `3 VMs`, or `VMs (autoscaled, up to 5)`.
    pub fn vms_text(&self) -> String {
        if self.autoscaled { format!("VMs (autoscaled, up to {})", self.vms) } else { plural(self.vms, "VM") }
    }
}

impl ClusterLoss {
    /// The sentence listed under the HostedCluster, before [`Self::items`].
    pub fn head(&self) -> &'static str {
        match self.action {
            Action::Delete => "This destroys the hosted cluster. With it go:",
            _ => "This destroys the hosted cluster and creates an empty one. With it go:",
        }
    }

    /// What goes with the cluster, one item each.
    pub fn items(&self) -> Vec<String> {
        let mut items: Vec<String> =
            self.node_pools.iter().map(|p| format!("{} and its {}", p.id, p.vms_text())).collect();
        let volumes = plural(self.etcd_volumes, "etcd volume");
        items.push(match &self.etcd_size {
            Some(size) => format!("{volumes} of {size} (the cluster's state)"),
            None => format!("{volumes} (the cluster's state)"),
        });
        items.push("every workload of the hosted cluster".to_string());
        items
    }
}

impl PoolLoss {
    /// The note after a pool replaced or destroyed on its own.
    pub fn note(&self) -> String {
        match self.action {
            Action::Delete => format!("destroys {}", self.vms_text()),
            _ => format!("replaces {}", self.vms_text()),
        }
    }
}

/// What goes with several clusters, in totals: `This destroys these hosted
/// clusters. With them go 30 NodePools and their 60 VMs, 30 etcd volumes
/// and every workload of these hosted clusters.`
pub fn clusters_sentence(losses: &[&ClusterLoss], action: Action) -> String {
    let pools: u64 = losses.iter().map(|l| l.node_pools.len() as u64).sum();
    let vms: u64 = losses.iter().flat_map(|l| &l.node_pools).map(|p| p.vms).sum();
    let autoscaled = losses.iter().flat_map(|l| &l.node_pools).any(|p| p.autoscaled);
    let volumes: u64 = losses.iter().map(|l| l.etcd_volumes).sum();
    let what = if action == Action::Delete {
        "This destroys these hosted clusters"
    } else {
        "This destroys these hosted clusters and creates empty ones"
    };
    format!(
        "{what}. With them go {} and their {}{}, {} and every workload of these hosted clusters.",
        plural(pools, "NodePool"),
        if autoscaled { "VMs (up to " } else { "" },
        if autoscaled { format!("{vms})") } else { plural(vms, "VM") },
        plural(volumes, "etcd volume")
    )
}

impl Destruction {
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty() && self.node_pools.is_empty()
    }

    /// What goes with the HostedCluster `id`, if it goes.
    pub fn of(&self, id: &ObjectId) -> Option<&ClusterLoss> {
        self.clusters.iter().find(|c| &c.id == id)
    }

    /// A pool replaced or destroyed on its own.
    pub fn pool(&self, id: &ObjectId) -> Option<&PoolLoss> {
        self.node_pools.iter().find(|p| &p.id == id)
    }
}
