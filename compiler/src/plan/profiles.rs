//! Naming the profile behind a shared change.
//!
//! An edit to a profile changes every cluster that takes it the same way,
//! so grouping (`group.rs`) already shows it once. This says which profile
//! those clusters have in common, so that a reviewer reads "profile gpu:
//! 20 clusters" instead of working it out from 20 names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::model::{Change, Plan};
use crate::ir::Fleet;
use crate::object::ObjectId;

/// The most specific profile every cluster of a group takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileScope {
    pub name: String,
    /// Clusters of the group (all of them take the profile).
    pub clusters: usize,
    /// Clusters of this target that take the profile.
    pub of: usize,
}

impl ProfileScope {
    /// `profile gpu: 20 clusters`, or `profile gpu: 18 of 20 clusters`
    /// when some of its clusters are not in the group.
    pub fn note(&self) -> String {
        let noun = if self.of == 1 { "cluster" } else { "clusters" };
        if self.clusters == self.of {
            format!("profile {}: {} {noun}", self.name, self.of)
        } else {
            format!("profile {}: {} of {} {noun}", self.name, self.clusters, self.of)
        }
    }
}

/// Sets `profile` on each group of several objects whose clusters all take
/// one profile (directly or through `extends=`): the most specific one
/// they share. Groups with an object of a cluster without a profile, or of
/// no cluster, get none.
pub fn name_profiles(plan: &mut Plan, fleet: &Fleet) {
    let chains: BTreeMap<&str, Vec<&str>> = fleet
        .clusters
        .iter()
        .filter(|c| !c.profiles.is_empty())
        .map(|c| (c.name.value.as_str(), c.profiles.iter().map(|p| p.value.as_str()).collect()))
        .collect();
    if chains.is_empty() {
        return;
    }
    let cluster_of: BTreeMap<&ObjectId, Option<&str>> =
        plan.changes.iter().map(|c: &Change| (&c.id, c.cluster.as_deref())).collect();
    for g in plan.groups.iter_mut().filter(|g| !g.is_single()) {
        let clusters: Option<BTreeSet<&str>> =
            g.objects.iter().map(|id| cluster_of.get(id).copied().flatten()).collect();
        let Some(clusters) = clusters else { continue };
        let Some(members): Option<Vec<&Vec<&str>>> = clusters.iter().map(|c| chains.get(c)).collect() else {
            continue;
        };
        let Some(first) = members.first() else { continue };
        let Some(shared) = first.iter().find(|p| members.iter().all(|m| m.contains(p))) else { continue };
        let of = chains.values().filter(|chain| chain.contains(shared)).count();
        g.profile = Some(ProfileScope { name: (*shared).to_string(), clusters: clusters.len(), of });
    }
}
