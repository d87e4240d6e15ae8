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

#[cfg(test)]
mod tests {
    use super::super::test_support::lower_text;
    use crate::diagnostic::Code;
    use crate::ir::*;

    #[test]
    fn an_inventory_reads_classes_devices_and_node_groups() {
        let l = lower_text(
            "infra {\n    storage-class fast access=RWX default=#true\n    snapshot-class snap\n    nodes big count=2 cores=16 memory=\"64Gi\" {\n        host-device gpu count=2\n    }\n    capacity-warning 90\n}\n",
        );
        let inv = &l.clean().fleet.inventory;
        let sc = &inv.storage_classes[0];
        assert_eq!(
            (sc.name.value.as_str(), sc.access, sc.volume_mode, sc.default),
            ("fast", AccessMode::ReadWriteMany, VolumeMode::Filesystem, true)
        );
        assert_eq!(inv.snapshot_classes[0].name.value, "snap");
        let g = &inv.nodes[0];
        assert_eq!((g.count, g.cpu_millis, g.memory), (2, 16_000, 64 << 30));
        assert_eq!(inv.host_devices.len(), 1);
        assert_eq!(
            (inv.host_devices[0].name.value.as_str(), inv.host_devices[0].capacity),
            ("gpu", 4),
            "the nodes' devices are the totals"
        );
        assert_eq!(inv.capacity_warning, 90);
        assert!(inv.known.storage && inv.known.devices && inv.known.nodes);
    }

    #[test]
    fn without_infra_nothing_is_known() {
        let l = lower_text("");
        assert_eq!(l.fleet.inventory, Inventory::default());
    }

    #[test]
    fn a_declared_device_capacity_that_disagrees_with_the_nodes_is_a_warning_and_the_nodes_win() {
        let l = lower_text(
            "infra {\n    host-device gpu capacity=3\n    nodes big count=2 cores=8 memory=\"64Gi\" {\n        host-device gpu count=2\n    }\n}\n",
        );
        let (message, at) = l.only(Code::InventoryMismatch);
        assert_eq!(message, "host device `gpu` is declared with capacity 3 but the `nodes` groups hold 4");
        assert_eq!(at, "gpu");
        assert_eq!(l.fleet.inventory.host_devices[0].capacity, 4);
    }

    #[test]
    fn capacity_warning_is_a_percentage() {
        let l = lower_text("infra {\n    capacity-warning 101\n}\n");
        let (message, at) = l.only(Code::InvalidValue);
        assert_eq!((message.as_str(), at), ("`capacity-warning` is a percentage, not 101", "101"));
    }

    #[test]
    fn node_groups_are_checked_one_fact_at_a_time() {
        let cases = [
            ("nodes g count=0 cores=4 memory=\"64Gi\"", Code::InvalidValue, "node group `g` has 0 nodes", "count=0"),
            ("nodes g count=2 cores=0 memory=\"64Gi\"", Code::InvalidValue, "node group `g` has 0 cores", "cores=0"),
            (
                "nodes g count=9000 cores=4 memory=\"64Gi\"",
                Code::InvalidValue,
                "node group `g` has 9000 nodes",
                "count=9000",
            ),
            (
                "nodes g count=2 cores=4 memory=\"0Gi\"",
                Code::InvalidQuantity,
                "node group `g` has no memory",
                "memory=\"0Gi\"",
            ),
            (
                "nodes g count=2 cores=4 memory=\"64Gi\" {\n        host-device gpu count=0\n    }",
                Code::HostDeviceCount,
                "host device `gpu` has count 0",
                "count=0",
            ),
        ];
        for (group, code, expected, pointed) in cases {
            let l = lower_text(&format!("infra {{\n    {group}\n}}\n"));
            let (message, at) = l.only(code);
            assert_eq!((message.as_str(), at), (expected, pointed), "{group}");
        }
    }

    #[test]
    fn a_node_group_declared_twice_keeps_the_first() {
        let l = lower_text(
            "infra {\n    nodes g count=2 cores=4 memory=\"64Gi\"\n    nodes g count=3 cores=4 memory=\"64Gi\"\n}\n",
        );
        let (message, _) = l.only(Code::NameCollision);
        assert_eq!(message, "node group `g` is declared twice");
        assert_eq!(l.fleet.inventory.nodes.iter().map(|g| g.count).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn kubevirt_ratios_are_at_least_one() {
        let l = lower_text("infra {\n    kubevirt cpu-allocation-ratio=0\n}\n");
        let (message, at) = l.only(Code::InvalidValue);
        assert_eq!((message.as_str(), at), ("`cpu-allocation-ratio` must be at least 1", "cpu-allocation-ratio=0"));
        let l = lower_text("infra {\n    kubevirt memory-overcommit=150\n}\n");
        assert_eq!(l.clean().fleet.inventory.kubevirt.memory_overcommit, 150);
    }

    #[test]
    fn a_target_takes_only_its_own_settings() {
        let l = lower_text("target kube \"rendered\"\n");
        let (message, at) = l.only(Code::InvalidValue);
        assert_eq!((message.as_str(), at), ("`target kube` takes no a path", "\"rendered\""));

        let l = lower_text("target dir\n");
        let target = l.fleet.target.as_ref().map(|t| &t.value);
        assert_eq!(
            target,
            Some(&Target::Dir { path: "/fleet/rendered".into() }),
            "a dir target defaults beside the fleet"
        );
    }
}
