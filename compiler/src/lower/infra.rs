//! `infra { … }` and `target`: what the management cluster offers (storage
//! and snapshot classes, host devices, node groups, KubeVirt's ratios) and
//! where the fleet is written. The inventory is what `resolve` checks
//! clusters against; without it, those checks are skipped.

use std::path::Path;

use super::layers::{Layers, NodeRef};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::*;
use crate::source::{Span, Spanned};

/// `target dir PATH` or `target kube context=NAME`, for the fleet or one cluster.
pub fn lower_target(t: &NodeRef<'_>, home: Option<&Path>, diags: &mut Diagnostics) -> Option<Spanned<Target>> {
    let kind = t.arg(0)?.str()?;
    let misplaced = match kind {
        "kube" => t.arg(1).map(|v| (v.span(), "a path", "`target kube` reads the kubeconfig; remove the path")),
        _ => t.prop("context").map(|v| (v.span(), "a context", "`context=` belongs to `target kube`; remove it")),
    };
    if let Some((span, what, help)) = misplaced {
        diags.push(
            Diagnostic::error(Code::InvalidValue, format!("`target {kind}` takes no {what}"))
                .label(span, "not used by this target")
                .help(help),
        );
    }
    let target = match kind {
        "kube" => Target::Kube { context: t.prop("context").and_then(|v| v.str().map(str::to_string)) },
        _ => Target::Dir { path: t.arg(1).and_then(|v| v.path(home)).unwrap_or_else(|| t.dir.join("rendered")) },
    };
    Some(Spanned::new(target, t.name_span()))
}

/// The `infra` block; an absent block leaves every fact unknown.
pub fn lower_inventory(infra: &NodeRef<'_>, diags: &mut Diagnostics) -> Inventory {
    let mut inv = Inventory::default();
    let Some(block) = infra.children() else { return inv };
    let layers = Layers::new([Some(block)]);
    for n in layers.nodes("storage-class") {
        let Some(name) = n.arg(0).and_then(|v| v.string()) else { continue };
        inv.storage_classes.push(InfraStorageClass {
            name,
            access: n
                .prop("access")
                .and_then(|v| v.str())
                .and_then(AccessMode::from_word)
                .unwrap_or(AccessMode::ReadWriteOnce),
            volume_mode: n
                .prop("volume-mode")
                .and_then(|v| v.str())
                .and_then(VolumeMode::from_word)
                .unwrap_or(VolumeMode::Filesystem),
            default: n.prop("default").and_then(|v| v.bool()).unwrap_or(false),
            clone: n.prop("clone").and_then(|v| v.str()).and_then(CloneStrategy::from_word),
        });
    }
    for n in layers.nodes("snapshot-class") {
        let Some(name) = n.arg(0).and_then(|v| v.string()) else { continue };
        inv.snapshot_classes
            .push(InfraSnapshotClass { name, default: n.prop("default").and_then(|v| v.bool()).unwrap_or(false) });
    }
    for n in layers.nodes("host-device") {
        let Some(name) = n.arg(0).and_then(|v| v.string()) else { continue };
        inv.host_devices
            .push(InfraHostDevice { name, capacity: n.prop("capacity").and_then(|v| v.count()).unwrap_or(0) });
    }
    let node_groups = layers.nodes("nodes");
    for n in &node_groups {
        if let Some(group) = lower_nodes(n, &inv.nodes, diags) {
            inv.nodes.push(group);
        }
    }
    device_totals_from_nodes(&mut inv, diags);
    inv.known = Known {
        storage: !layers.nodes("storage-class").is_empty() || !layers.nodes("snapshot-class").is_empty(),
        devices: !inv.host_devices.is_empty() || !node_groups.is_empty(),
        nodes: !node_groups.is_empty(),
    };
    if let Some(v) = layers.arg("capacity-warning")
        && let Some(p) = v.count()
    {
        if (1..=100).contains(&p) {
            inv.capacity_warning = p;
        } else {
            diags.push(
                Diagnostic::error(Code::InvalidValue, format!("`capacity-warning` is a percentage, not {p}"))
                    .label(v.span(), "not between 1 and 100")
                    .help("write a percentage from 1 to 100, e.g. `capacity-warning 85`"),
            );
        }
    }
    if let Some(k) = layers.node("kubevirt") {
        inv.kubevirt_declared = Some(k.name_span());
        for (key, slot) in [
            ("cpu-allocation-ratio", &mut inv.kubevirt.cpu_allocation_ratio),
            ("memory-overcommit", &mut inv.kubevirt.memory_overcommit),
        ] {
            let Some(v) = k.prop(key) else { continue };
            match v.count() {
                Some(0) => diags.push(
                    Diagnostic::error(Code::InvalidValue, format!("`{key}` must be at least 1"))
                        .label(v.span(), "zero")
                        .help(format!("KubeVirt rejects 0; its default is {}", *slot)),
                ),
                Some(n) => *slot = n,
                None => {}
            }
        }
    }
    inv
}

/// The most nodes a cluster can have (Kubernetes' documented limit).
const MAX_NODES: u32 = 5000;

/// One `nodes NAME count= cores= memory= { host-device NAME count=N }` group.
fn lower_nodes(n: &NodeRef<'_>, earlier: &[InfraNodes], diags: &mut Diagnostics) -> Option<InfraNodes> {
    let name = n.arg(0)?.string()?;
    if let Some(first) = earlier.iter().find(|g| g.name.value == name.value) {
        diags.push(
            Diagnostic::error(Code::NameCollision, format!("node group `{}` is declared twice", name.value))
                .label(name.span, "declared again here")
                .label(first.name.span, "first declared here")
                .help("give each `nodes` group its own name"),
        );
        return None;
    }
    let mut positive = |key: &str, what: &str| -> Option<u32> {
        let v = n.prop(key)?;
        match v.count()? {
            0 => {
                diags.push(
                    Diagnostic::error(Code::InvalidValue, format!("node group `{}` has 0 {what}", name.value))
                        .label(v.span(), "zero")
                        .help(format!("give `{key}=` a number of at least 1, or remove the group")),
                );
                None
            }
            c => Some(c),
        }
    };
    let count = positive("count", "nodes");
    let cores = positive("cores", "cores");
    // Kubernetes supports clusters of up to 5,000 nodes; more is a typo,
    // and would make packing the fleet onto them slow.
    let count = match (count, n.prop("count")) {
        (Some(c), Some(v)) if c > MAX_NODES => {
            diags.push(
                Diagnostic::error(Code::InvalidValue, format!("node group `{}` has {c} nodes", name.value))
                    .label(v.span(), format!("more than {MAX_NODES}"))
                    .help(format!("Kubernetes supports clusters of up to {MAX_NODES} nodes; give the number of nodes of this shape")),
            );
            None
        }
        (c, _) => c,
    };
    let memory = n.prop("memory").and_then(|v| {
        let q = v.quantity()?;
        if q.whole() == 0 {
            diags.push(
                Diagnostic::error(Code::InvalidQuantity, format!("node group `{}` has no memory", name.value))
                    .label(v.span(), "zero")
                    .help("give the allocatable memory of one node, e.g. memory=\"256Gi\""),
            );
            return None;
        }
        Some(q.whole())
    });
    let mut devices: Vec<(String, u32)> = Vec::new();
    if let Some(block) = n.children() {
        for d in Layers::new([Some(block)]).nodes("host-device") {
            let Some(dname) = d.arg(0).and_then(|v| v.string()) else { continue };
            let Some(c) = d.prop("count") else { continue };
            match c.count() {
                Some(0) => diags.push(
                    Diagnostic::error(Code::HostDeviceCount, format!("host device `{}` has count 0", dname.value))
                        .label(c.span(), "zero")
                        .help("give the number of such devices on each node, or remove the line"),
                ),
                Some(k) => match devices.iter_mut().find(|(d, _)| *d == dname.value) {
                    Some((_, total)) => *total = total.saturating_add(k),
                    None => devices.push((dname.value, k)),
                },
                None => {}
            }
        }
    }
    devices.sort();
    Some(InfraNodes { name, count: count?, cpu_millis: u64::from(cores?) * 1000, memory: memory?, devices })
}

/// Devices the `nodes` groups hold are the infrastructure's totals; a
/// `host-device NAME capacity=N` that disagrees with them is a warning and
/// the nodes' total wins, as the more precise fact.
fn device_totals_from_nodes(inv: &mut Inventory, diags: &mut Diagnostics) {
    let mut totals: std::collections::BTreeMap<String, (u64, Span)> = std::collections::BTreeMap::new();
    for g in &inv.nodes {
        for (d, per_node) in &g.devices {
            let e = totals.entry(d.clone()).or_insert((0, g.name.span));
            e.0 = e.0.saturating_add(u64::from(g.count) * u64::from(*per_node));
        }
    }
    for h in &mut inv.host_devices {
        let Some((total, span)) = totals.remove(&h.name.value) else { continue };
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        if h.capacity != total {
            diags.push(
                Diagnostic::warning(
                    Code::InventoryMismatch,
                    format!(
                        "host device `{}` is declared with capacity {} but the `nodes` groups hold {total}",
                        h.name.value, h.capacity
                    ),
                )
                .label(h.name.span, format!("capacity {}", h.capacity))
                .label(span, "nodes with this device")
                .help("make the total match the nodes, or remove the `host-device` line: the nodes' total is used"),
            );
            h.capacity = total;
        }
    }
    for (name, (total, span)) in totals {
        let capacity = u32::try_from(total).unwrap_or(u32::MAX);
        inv.host_devices.push(InfraHostDevice { name: Spanned::new(name, span), capacity });
    }
}
