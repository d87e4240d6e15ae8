//! What discovery read from the management cluster, and how it replaces the
//! declared inventory: discovered facts win; a declared fact that
//! contradicts one is a `mismatch` warning naming both sources; `infra`
//! still serves `dir` targets and infrastructures that cannot be read.

use serde_json::Value;

use super::kube::{Discovered, DiscoveredNodes};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::{
    AccessMode, Discovery, InfraHostDevice, InfraNodes, InfraSnapshotClass, InfraStorageClass, Inventory,
    PermittedDevice, VolumeMode,
};
use crate::resolve::capacity::{show, sizing};
use crate::source::{Span, Spanned};

/// The KubeVirt resource's settings that decide what VMs may use and request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiscoveredKubevirt {
    /// `namespace/name`.
    pub name: String,
    /// `developerConfiguration.cpuAllocationRatio`, where set.
    pub cpu_allocation_ratio: Option<u32>,
    /// `developerConfiguration.memoryOvercommit`, where set.
    pub memory_overcommit: Option<u32>,
    /// `permittedHostDevices`: PCI and mediated devices, in that order.
    pub permitted: Vec<PermittedDevice>,
}

/// The first KubeVirt resource of a list (a cluster has one), read.
pub fn kubevirt(list: &[Value]) -> Option<DiscoveredKubevirt> {
    let kv = list.iter().min_by_key(|kv| name_of(kv))?;
    let setting = |key: &str| {
        kv.pointer(&format!("/spec/configuration/developerConfiguration/{key}"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
    };
    let mut permitted = Vec::new();
    for (list, mediated) in [("pciHostDevices", false), ("mediatedDevices", true)] {
        let entries = kv.pointer(&format!("/spec/configuration/permittedHostDevices/{list}")).and_then(Value::as_array);
        for e in entries.into_iter().flatten() {
            let Some(resource) = e.get("resourceName").and_then(Value::as_str) else { continue };
            let external = e.get("externalResourceProvider").and_then(Value::as_bool) == Some(true);
            permitted.push(PermittedDevice { resource: resource.to_string(), mediated, external });
        }
    }
    let namespace = kv.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    Some(DiscoveredKubevirt {
        name: format!("{namespace}/{}", name_of(kv)),
        cpu_allocation_ratio: setting("cpuAllocationRatio"),
        memory_overcommit: setting("memoryOvercommit"),
        permitted,
    })
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

/// Whether a StorageClass is marked default (the annotation, or its beta
/// spelling, which Kubernetes still honours).
pub fn marked_default(sc: &Value) -> bool {
    let annotations = sc.pointer("/metadata/annotations");
    ["storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"]
        .iter()
        .any(|k| annotations.and_then(|a| a.get(*k)).and_then(Value::as_str) == Some("true"))
}

/// The default StorageClass a claim without a class gets when several are
/// marked: since Kubernetes 1.26 the DefaultStorageClass admission plugin
/// takes the newest by creationTimestamp, then the first by name.
pub fn chosen_default<'a>(marked: &[(&'a str, &'a str)]) -> Option<&'a str> {
    // (name, creationTimestamp): RFC 3339 in UTC, so text order is time order.
    marked.iter().min_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0))).map(|(name, _)| *name)
}

/// Per device, the Nodes whose allocatable has it, in name order.
pub fn device_nodes(nodes: &[Value], devices: impl Fn(&Value) -> Vec<(String, u64)>) -> Vec<(String, Vec<String>)> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for node in nodes {
        for (d, _) in devices(node) {
            out.entry(d).or_default().push(name_of(node).to_string());
        }
    }
    out.into_iter()
        .map(|(d, mut names)| {
            names.sort();
            (d, names)
        })
        .collect()
}

impl Discovered {
    /// Replaces the declared inventory with what the cluster has. Facts
    /// discovery cannot establish (no CDI StorageProfile) are taken as
    /// permissive, so they never cause a false error.
    /// What discovery read replaces the declared inventory. What the
    /// identity may not list is taken from the declaration, unchecked,
    /// and a note names the permission and what it leaves unchecked.
    pub fn merge_into(&self, inv: &mut Inventory, at: Span) -> Diagnostics {
        if self.denied.is_empty() {
            return self.merge(inv, at);
        }
        let mut notes = Diagnostics::default();
        let denied = |resource: &str| self.denied.iter().any(|d| d.resource == resource);
        let lines: Vec<String> = self
            .denied
            .iter()
            .map(|d| {
                let unchecked = match d.resource.as_str() {
                    "storageclasses.storage.k8s.io" => "storage classes, taken from `infra`",
                    "storageprofiles.cdi.kubevirt.io" => {
                        "the storage classes' access and volume modes and clone strategies"
                    }
                    "volumesnapshotclasses.snapshot.storage.k8s.io" => "snapshot classes, taken from `infra`",
                    "nodes" => "capacity, node shapes and host devices, taken from `infra`",
                    "kubevirts.kubevirt.io" => "KubeVirt's permitted host devices and overcommit",
                    _ => "what it would show",
                };
                format!("{d}: {unchecked}")
            })
            .collect();
        notes.push(
            Diagnostic::note(
                Code::DiscoveryForbidden,
                format!(
                    "discovery was refused {} permission{}; what {} would show is not checked against the management cluster",
                    lines.len(),
                    if lines.len() == 1 { "" } else { "s" },
                    if lines.len() == 1 { "it" } else { "they" }
                ),
            )
            .label(at, "this target")
            .help(format!("grant them to check it:\n{}", lines.join("\n"))),
        );
        let known = inv.known;
        let mut filled = self.clone();
        if denied("storageclasses.storage.k8s.io") {
            filled.storage_classes = inv
                .storage_classes
                .iter()
                .map(|c| super::kube::DiscoveredClass {
                    name: c.name.value.clone(),
                    rwx: Some(c.access == AccessMode::ReadWriteMany),
                    block: Some(c.volume_mode == VolumeMode::Block),
                    default: c.default,
                    clone: c.clone,
                    created: String::new(),
                })
                .collect();
        }
        if denied("volumesnapshotclasses.snapshot.storage.k8s.io") {
            filled.snapshot_classes =
                Some(inv.snapshot_classes.iter().map(|c| (c.name.value.clone(), c.default)).collect());
        }
        let nodes_denied = denied("nodes");
        if nodes_denied {
            filled.host_devices =
                inv.host_devices.iter().map(|h| (h.name.value.clone(), u64::from(h.capacity))).collect();
        }
        let diags = filled.merge(inv, at);
        if denied("storageclasses.storage.k8s.io") {
            inv.known.storage = known.storage;
        }
        if nodes_denied {
            inv.known.devices = known.devices;
            inv.known.nodes = known.nodes;
        }
        notes.extend(diags);
        notes
    }

    fn merge(&self, inv: &mut Inventory, at: Span) -> Diagnostics {
        let mut diags = Diagnostics::default();
        let mismatch = |what: String, span: Span| {
            Diagnostic::warning(Code::InventoryMismatch, what)
                .label(span, "declared here")
                .help("what the cluster reports is used: fix the `infra` block to match it, or remove the declaration")
        };
        for declared in &inv.storage_classes {
            if !self.storage_classes.iter().any(|c| c.name == declared.name.value) {
                diags.push(mismatch(
                    format!(
                        "storage class `{0}` is declared in `infra`, but the management cluster has no StorageClass `{0}`",
                        declared.name.value
                    ),
                    declared.name.span,
                ));
            }
        }
        let mut classes = Vec::new();
        for found in &self.storage_classes {
            let name = &found.name;
            let declared = inv.storage_classes.iter().find(|s| s.name.value == *name);
            let access = if found.rwx.unwrap_or(true) { AccessMode::ReadWriteMany } else { AccessMode::ReadWriteOnce };
            let mode = if found.block.unwrap_or(true) { VolumeMode::Block } else { VolumeMode::Filesystem };
            if let Some(d) = declared
                && found.rwx.is_some()
                && d.access != access
            {
                diags.push(mismatch(
                    format!(
                        "storage class `{name}` is declared {} in `infra`, but StorageProfile `{name}` offers {}",
                        d.access.word(),
                        access.word()
                    ),
                    d.name.span,
                ));
            }
            if let Some(d) = declared
                && found.block.is_some()
                && d.volume_mode != mode
            {
                diags.push(mismatch(
                    format!(
                        "storage class `{name}` is declared volume-mode={} in `infra`, but StorageProfile `{name}` offers {}",
                        d.volume_mode.api(),
                        mode.api()
                    ),
                    d.name.span,
                ));
            }
            if let Some(d) = declared
                && let (Some(said), Some(is)) = (d.clone, found.clone)
                && said != is
            {
                diags.push(mismatch(
                    format!(
                        "storage class `{name}` is declared clone={} in `infra`, but StorageProfile `{name}` says {}",
                        said.word(),
                        is.word()
                    ),
                    d.name.span,
                ));
            }
            classes.push(InfraStorageClass {
                name: Spanned::new(name.clone(), at),
                access,
                volume_mode: mode,
                default: false,
                clone: found.clone,
            });
        }
        // Kubernetes uses one default; the others marked default are named.
        let marked: Vec<(&str, &str)> =
            self.storage_classes.iter().filter(|c| c.default).map(|c| (c.name.as_str(), c.created.as_str())).collect();
        let chosen = chosen_default(&marked);
        for c in classes.iter_mut() {
            c.default = Some(c.name.value.as_str()) == chosen;
        }
        for d in inv.storage_classes.iter().filter(|d| d.default) {
            if Some(d.name.value.as_str()) != chosen && self.storage_classes.iter().any(|c| c.name == d.name.value) {
                let actual = match chosen {
                    Some(c) => format!("the management cluster's default StorageClass is `{c}`"),
                    None => "no StorageClass of the management cluster is marked default".to_string(),
                };
                diags.push(mismatch(
                    format!("storage class `{}` is declared default=#true in `infra`, but {actual}", d.name.value),
                    d.name.span,
                ));
            }
        }
        let chosen_created = marked.iter().find(|(n, _)| Some(*n) == chosen).map(|(_, t)| *t);
        let default_by_name = marked.iter().filter(|(_, t)| Some(*t) == chosen_created).count() > 1;
        let mut ignored: Vec<String> =
            marked.iter().map(|(n, _)| n.to_string()).filter(|n| Some(n.as_str()) != chosen).collect();
        ignored.sort();
        inv.storage_classes = classes;

        let snaps = self.snapshot_classes.clone().unwrap_or_default();
        for declared in &inv.snapshot_classes {
            if !snaps.iter().any(|(n, _)| *n == declared.name.value) {
                let has = match self.snapshot_classes {
                    Some(_) => format!("has no VolumeSnapshotClass `{}`", declared.name.value),
                    None => "does not serve the snapshot API (snapshot.storage.k8s.io)".to_string(),
                };
                diags.push(mismatch(
                    format!(
                        "snapshot class `{}` is declared in `infra`, but the management cluster {has}",
                        declared.name.value
                    ),
                    declared.name.span,
                ));
            }
        }
        inv.snapshot_classes = snaps
            .iter()
            .map(|(n, default)| InfraSnapshotClass { name: Spanned::new(n.clone(), at), default: *default })
            .collect();

        let discovery = Discovery {
            kubevirt: self.kubevirt.as_ref().map(|k| k.name.clone()),
            permitted_devices: self.kubevirt.as_ref().map(|k| k.permitted.clone()),
            snapshot_api: self.snapshot_classes.is_some(),
            ignored_default_classes: ignored,
            default_by_name,
            device_nodes: self.device_nodes.clone(),
        };
        for h in &inv.host_devices {
            match self.host_devices.iter().find(|(n, _)| *n == h.name.value) {
                None => diags.push(mismatch(
                    format!(
                        "host device `{}` is declared in `infra` with capacity {}, but no Node of the management cluster has it in its allocatable",
                        h.name.value, h.capacity
                    ),
                    h.name.span,
                )),
                Some((_, n)) if u64::from(h.capacity) != *n => diags.push(mismatch(
                    format!(
                        "host device `{}` is declared in `infra` with capacity {}, but the allocatable of {} has {n}",
                        h.name.value,
                        h.capacity,
                        discovery.nodes_with(&h.name.value).unwrap_or_default()
                    ),
                    h.name.span,
                )),
                Some(_) => {}
            }
        }
        inv.host_devices = self
            .host_devices
            .iter()
            .map(|(name, n)| InfraHostDevice {
                name: Spanned::new(name.clone(), at),
                capacity: u32::try_from(*n).unwrap_or(u32::MAX),
            })
            .collect();
        if let Some(found) = &self.nodes {
            diags.extend(merge_nodes(found, inv, at));
        }
        if let Some(kv) = &self.kubevirt {
            diags.extend(merge_kubevirt(kv, inv));
        }
        inv.known.storage = true;
        inv.known.devices = true;
        inv.management_only = true;
        inv.discovery = Some(Box::new(discovery));
        diags
    }
}

/// KubeVirt's own configuration wins over `infra { kubevirt … }`: a value
/// it does not set is KubeVirt's default.
fn merge_kubevirt(kv: &DiscoveredKubevirt, inv: &mut Inventory) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let ratio = kv.cpu_allocation_ratio.unwrap_or(sizing::DEFAULT_CPU_ALLOCATION_RATIO);
    let overcommit = kv.memory_overcommit.unwrap_or(sizing::DEFAULT_MEMORY_OVERCOMMIT);
    if let Some(span) = inv.kubevirt_declared {
        let unset = |set: Option<u32>| if set.is_none() { " (KubeVirt's default: it is not set)" } else { "" };
        let mut differ = Vec::new();
        if inv.kubevirt.cpu_allocation_ratio != ratio {
            differ.push(format!(
                "cpu-allocation-ratio={} is declared, KubeVirt `{}` has cpuAllocationRatio {ratio}{}",
                inv.kubevirt.cpu_allocation_ratio,
                kv.name,
                unset(kv.cpu_allocation_ratio)
            ));
        }
        if inv.kubevirt.memory_overcommit != overcommit {
            differ.push(format!(
                "memory-overcommit={} is declared, KubeVirt `{}` has memoryOvercommit {overcommit}{}",
                inv.kubevirt.memory_overcommit,
                kv.name,
                unset(kv.memory_overcommit)
            ));
        }
        if !differ.is_empty() {
            diags.push(
                Diagnostic::warning(Code::InventoryMismatch, format!("`infra {{ kubevirt … }}` contradicts the cluster: {}", differ.join("; ")))
                    .label(span, "declared here")
                    .help("the KubeVirt resource's values are used: remove `kubevirt` from `infra`, or change spec.configuration.developerConfiguration of the KubeVirt resource"),
            );
        }
    }
    inv.kubevirt.cpu_allocation_ratio = ratio;
    inv.kubevirt.memory_overcommit = overcommit;
    diags
}

/// Discovered node shapes replace the declared `nodes` groups. A declared
/// group that matches no discovered shape (count and devices equal, cores
/// and memory within a tenth: allocatable is a little below the hardware)
/// is a warning.
fn merge_nodes(found: &[DiscoveredNodes], inv: &mut Inventory, at: Span) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let near = |a: u128, b: u128| a.abs_diff(b) * 10 <= a.max(b);
    let shape = |count: u32, cpu: u64, memory: u128, devices: &[(String, u32)]| {
        let mut parts = vec![format!("{count} × {} vCPU", show::cpu(u128::from(cpu))), show::bytes(memory)];
        parts.extend(devices.iter().map(|(d, n)| format!("{n} {d}")));
        parts.join(", ")
    };
    let found_list = found.iter().map(|f| shape(f.count, f.cpu_millis, f.memory, &f.devices)).collect::<Vec<_>>();
    for d in &inv.nodes {
        let matched = found.iter().any(|f| {
            f.count == d.count
                && f.devices == d.devices
                && near(u128::from(f.cpu_millis), u128::from(d.cpu_millis))
                && near(f.memory, d.memory)
        });
        if !matched {
            diags.push(
                Diagnostic::warning(
                    Code::InventoryMismatch,
                    format!(
                        "nodes `{}` ({}) are declared, but the cluster's schedulable Nodes' allocatable is: {}",
                        d.name.value,
                        shape(d.count, d.cpu_millis, d.memory, &d.devices),
                        if found_list.is_empty() { "none".to_string() } else { found_list.join("; ") }
                    ),
                )
                .label(d.name.span, "declared here")
                .help("the discovered nodes are used; fix the `nodes` groups to match them (allocatable, not hardware, figures), or remove them"),
            );
        }
    }
    inv.nodes = found
        .iter()
        .map(|f| InfraNodes {
            name: Spanned::new(f.first.clone(), at),
            count: f.count,
            cpu_millis: f.cpu_millis,
            memory: f.memory,
            devices: f.devices.clone(),
        })
        .collect();
    inv.known.nodes = true;
    diags
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_newest_default_class_wins_then_the_first_by_name() {
        let marked = [("b", "2026-01-01T00:00:00Z"), ("a", "2026-02-01T00:00:00Z"), ("c", "2026-02-01T00:00:00Z")];
        assert_eq!(chosen_default(&marked), Some("a"));
        assert_eq!(chosen_default(&marked[..1]), Some("b"));
        assert_eq!(chosen_default(&[]), None);
    }

    #[test]
    fn permitted_devices_are_read_from_both_lists() {
        let kv = json!({"metadata": {"name": "kv", "namespace": "openshift-cnv"}, "spec": {"configuration": {
            "permittedHostDevices": {
                "pciHostDevices": [{"pciVendorSelector": "10DE:1EB8", "resourceName": "nvidia.com/TU104GL_Tesla_T4", "externalResourceProvider": true}],
                "mediatedDevices": [{"mdevNameSelector": "GRID T4-1Q", "resourceName": "nvidia.com/GRID_T4-1Q"}]}}}});
        let found = kubevirt(&[kv]).unwrap();
        assert_eq!(found.name, "openshift-cnv/kv");
        assert_eq!(
            found.permitted,
            vec![
                PermittedDevice { resource: "nvidia.com/TU104GL_Tesla_T4".into(), mediated: false, external: true },
                PermittedDevice { resource: "nvidia.com/GRID_T4-1Q".into(), mediated: true, external: false },
            ]
        );
        assert_eq!(found.cpu_allocation_ratio, None);
    }
}
