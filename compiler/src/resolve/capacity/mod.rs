//! Capacity and fit: will the fleet run on its infrastructure, and what
//! will it cost it?
//!
//! - `sizing`: every figure taken from KubeVirt, OpenShift and HyperShift
//!   (VM requests, KubeVirt's overhead, control plane requests, minimums);
//! - `demand`: what each pool and control plane asks, from the
//!   configuration or from live objects, and the totals per infrastructure;
//! - `fit`: per-VM fit on node shapes, first-fit-decreasing packing, and the
//!   warning threshold;
//! - `prerequisites`: default classes, cache cloning, sizes, notes.
//!
//! The plan's capacity table (`plan::capacity`) reads `demand` too, so the
//! numbers in diagnostics and tables are counted once, the same way.

pub mod demand;
mod fit;
mod prerequisites;
pub mod show;
pub mod sizing;
pub mod surge;

pub use demand::{Demand, Placement, Row, Unit, Usage, usage};
pub use fit::{described_placement, nodes_placement};

use crate::diagnostic::Diagnostics;
use crate::ir::{Cluster, Fleet};

/// The rules that need one cluster only.
pub fn check_cluster(c: &Cluster, fleet: &Fleet, diags: &mut Diagnostics) {
    prerequisites::check_sizes(c, diags);
    prerequisites::check_storage(c, &fleet.inventory, diags);
}

/// The rules over the whole fleet: fit, packing, thresholds, notes.
pub fn check_fleet(fleet: &Fleet, diags: &mut Diagnostics) {
    let demand = Demand::of_fleet(fleet);
    fit::check(fleet, &demand, diags);
    prerequisites::note_technology_preview(fleet, diags);
    prerequisites::note_no_snapshot_mapping(fleet, diags);
}
