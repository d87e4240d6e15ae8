//! The rules `check` cannot decide offline: those that need facts about the
//! infrastructure (storage classes, host devices, node shapes) that neither
//! `infra` declares nor, without a target, discovery has found. `check`
//! names them so that an `ok` is not read as more than it is; `plan` on a
//! cluster target discovers the facts and runs them.

use std::collections::BTreeSet;

use crate::diagnostic::Code;
use crate::ir::{CacheStrategy, Fleet, Storage};

/// The codes of the rules that apply to this fleet but could not be run for
/// want of infrastructure facts, in table order.
pub fn needs_target(fleet: &Fleet) -> Vec<Code> {
    let inv = &fleet.inventory;
    let mut out = BTreeSet::new();
    for c in &fleet.clusters {
        let pools = &c.node_pools;
        let known = |part: bool| part && inv.describes(c);
        if !known(inv.known.storage) {
            let (classes, snapshots) = match &c.storage {
                Storage::Manual { classes, snapshot_classes } => (classes.len(), snapshot_classes.len()),
                _ => (0, 0),
            };
            let named = classes > 0
                || c.etcd.storage_class.is_some()
                || pools.iter().any(|p| p.root_volume.storage_class.is_some());
            if named {
                out.insert(Code::UnknownStorageClass);
            }
            if classes > 0 {
                out.insert(Code::ClassNotRwx);
            }
            if snapshots > 0 {
                out.insert(Code::UnknownSnapshotClass);
            }
            if c.etcd.storage_class.is_none()
                || matches!(c.storage, Storage::Default)
                || pools.iter().any(|p| p.root_volume.storage_class.is_none())
            {
                out.insert(Code::NoDefaultStorageClass);
            }
            if snapshots == 0 && !matches!(c.storage, Storage::None) {
                out.insert(Code::NoDefaultSnapshotClass);
            }
            if !pools.is_empty() {
                out.insert(Code::NotLiveMigratable);
            }
            if pools.iter().any(|p| p.root_volume.cache == Some(CacheStrategy::Pvc)) {
                out.insert(Code::CacheCannotClone);
            }
        }
        if !known(inv.known.devices) && pools.iter().any(|p| !p.host_devices.is_empty()) {
            out.insert(Code::UnknownHostDevice);
            out.insert(Code::HostDeviceCapacity);
        }
        if !known(inv.known.nodes) && !pools.is_empty() {
            out.insert(Code::PoolDoesNotFit);
            out.insert(Code::OverCapacity);
            out.insert(Code::NearCapacity);
        }
    }
    out.into_iter().collect()
}
