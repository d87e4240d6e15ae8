//! What the infrastructure must offer before anything can run, from the
//! HyperShift KubeVirt documentation: a default storage class for volumes
//! that name none, a default snapshot class for clusters that pass it
//! through, and smart cloning with ReadWriteMany for boot image caches.
//! Also the sizes nothing can boot in, and the Technology Preview status of
//! host devices.

use super::show;
use super::sizing;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::{AccessMode, CacheStrategy, CloneStrategy, Cluster, Fleet, Inventory, Storage};

/// Per-cluster sizes: too small to boot is an error, below OpenShift's
/// minimum for a worker a warning.
pub fn check_sizes(c: &Cluster, diags: &mut Diagnostics) {
    let etcd = &c.etcd.size;
    if etcd.whole() < sizing::MIN_ETCD_SIZE {
        diags.push(
            Diagnostic::error(Code::EtcdTooSmall, format!("etcd volumes of `{}` would be {}", c.name.value, etcd.as_str()))
                .label(etcd.span, "below 1Gi")
                .help("etcd needs at least size=\"1Gi\"; HyperShift's default is \"8Gi\" and the size cannot change once the cluster exists"),
        );
    }
    for p in &c.node_pools {
        let name = format!("{}/{}", c.name.value, p.name.value);
        let memory = p.memory.whole();
        if memory < sizing::MIN_VM_MEMORY {
            diags.push(
                Diagnostic::error(Code::MemoryTooSmall, format!("VMs of `{name}` would have {} of memory", p.memory.as_str()))
                    .label(p.memory.span, "below 1Gi")
                    .help("RHCOS does not boot in less than 1Gi; OpenShift asks 8 GB of a worker and the API default is \"8Gi\""),
            );
        }
        let small_memory = (sizing::MIN_VM_MEMORY..sizing::WORKER_MIN_MEMORY).contains(&memory);
        let small_cores = *p.cores < sizing::WORKER_MIN_CORES;
        if small_memory || small_cores {
            let mut what = Vec::new();
            let mut d = Diagnostic::warning(Code::BelowWorkerMinimum, String::new());
            if small_cores {
                what.push(format!("{} vCPU", *p.cores));
                d = d.label(p.cores.span, "fewer than 2 cores");
            }
            if small_memory {
                what.push(format!("{} of memory", show::bytes(memory)));
                d = d.label(p.memory.span, "less than 8 GB");
            }
            d.message = format!(
                "VMs of `{name}` have {}, below OpenShift's minimum for a worker (2 vCPU, 8 GB)",
                what.join(" and ")
            );
            diags.push(d.help(
                "such nodes may fail to join or run the cluster's own pods; use `cores 2` and `memory \"8Gi\"` or more",
            ));
        }
    }
}

/// Default classes and cache cloning, when the storage inventory applies.
pub fn check_storage(c: &Cluster, inv: &Inventory, diags: &mut Diagnostics) {
    if !inv.known.storage || !inv.describes(c) {
        return;
    }
    let default_class = inv.storage_classes.iter().find(|s| s.default);
    let discovery = inv.discovery.as_deref();
    let mut relying = Vec::new();
    for p in c.node_pools.iter().filter(|p| p.root_volume.storage_class.is_none()) {
        let span = p.root_volume.span.unwrap_or(p.name.span);
        relying.push((span, format!("root volumes of pool `{}`", p.name.value)));
    }
    // etcd runs on the management cluster; the inventory describes it
    // only when the VMs run there too.
    if c.etcd.storage_class.is_none() && c.infra_cluster.is_none() {
        relying.push((c.etcd.size.span, "etcd volumes".to_string()));
    }
    if c.storage == Storage::Default {
        relying.push((c.name.span, "the guest's storage class (no `storage` mappings)".to_string()));
    }
    // One label per place: etcd's default size and the storage driver
    // both point at the cluster's name.
    let mut labels: Vec<(crate::source::Span, String)> = Vec::new();
    for (span, what) in relying {
        match labels.iter_mut().find(|(s, _)| *s == span) {
            Some((_, text)) => *text = format!("{text} and {what}"),
            None => labels.push((span, what)),
        }
    }
    if default_class.is_none() && !labels.is_empty() {
        let mut d = Diagnostic::error(
            Code::NoDefaultStorageClass,
            match discovery {
                Some(_) => format!(
                    "cluster `{}` relies on the default StorageClass, but no StorageClass of the management cluster is marked default",
                    c.name.value
                ),
                None => format!(
                    "cluster `{}` relies on the infrastructure's default storage class, but it has none",
                    c.name.value
                ),
            },
        );
        for (span, what) in labels {
            d = d.label(span, what);
        }
        diags.push(d.help(if discovery.is_some() {
            "mark a StorageClass as the default (annotation storageclass.kubernetes.io/is-default-class: \"true\"), or name a class: `root-volume storage-class=…`, `etcd storage-class=…`, `storage { class … }`"
        } else {
            "mark a class `default=#true` in `infra`, or name a class: `root-volume storage-class=…`, `etcd storage-class=…`, `storage { class … }`"
        }));
    } else if let (Some(used), Some(dis)) = (default_class, discovery)
        && !dis.ignored_default_classes.is_empty()
        && !labels.is_empty()
    {
        let others = dis.ignored_default_classes.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let mut d = Diagnostic::warning(
            Code::SeveralDefaultClasses,
            format!(
                "cluster `{}` relies on the default StorageClass, but several are marked default: `{}` and {others}; Kubernetes uses `{}`, {}",
                c.name.value,
                used.name.value,
                used.name.value,
                if dis.default_by_name {
                    "the first by name of the newest (created in the same second)"
                } else {
                    "the newest"
                }
            ),
        );
        for (span, what) in labels {
            d = d.label(span, what);
        }
        diags.push(d.help(format!(
            "keep one default: remove the annotation storageclass.kubernetes.io/is-default-class from {others} (or from `{}`) on the management cluster; or name a class here",
            used.name.value
        )));
    }
    if c.storage == Storage::Default
        && let Some(class) = default_class
        && class.access != AccessMode::ReadWriteMany
    {
        let source = match discovery {
            Some(_) => format!("StorageClass `{0}` (StorageProfile `{0}`)", class.name.value),
            None => format!("storage class `{}`", class.name.value),
        };
        diags.push(
            Diagnostic::warning(
                Code::DefaultClassNotRwx,
                format!(
                    "cluster `{}` hands the default class to KubeVirt CSI, but {source} is {}, not RWX",
                    c.name.value,
                    class.access.word()
                ),
            )
            .label(c.name.span, "no `storage` mappings: the Default driver")
            .help("KubeVirt CSI needs ReadWriteMany for live migration of the VMs and for hot-plugging the guest's volumes: make an RWX class the default, or map one: `storage { class NAME hosted=NAME }`"),
        );
    }
    if c.storage == Storage::Default && !inv.snapshot_classes.iter().any(|s| s.default) {
        diags.push(
            Diagnostic::error(
                Code::NoDefaultSnapshotClass,
                match discovery {
                    Some(dis) if !dis.snapshot_api => format!(
                        "cluster `{}` passes the default snapshot class through, but the management cluster does not serve the snapshot API (snapshot.storage.k8s.io VolumeSnapshotClass)",
                        c.name.value
                    ),
                    Some(_) => format!(
                        "cluster `{}` passes the default snapshot class through, but no VolumeSnapshotClass of the management cluster is marked default",
                        c.name.value
                    ),
                    None => format!(
                        "cluster `{}` passes the infrastructure's default snapshot class through, but it has none",
                        c.name.value
                    ),
                },
            )
            .label(c.name.span, "no `storage` mappings: the Default driver")
            .help(if discovery.is_some_and(|d| !d.snapshot_api) {
                "install the CSI snapshot CRDs and snapshot controller on the management cluster, or map classes explicitly in `storage { … }`"
            } else if inv.management_only {
                "mark a VolumeSnapshotClass as the default (annotation snapshot.storage.kubernetes.io/is-default-class: \"true\"), or map classes explicitly in `storage { … }`"
            } else {
                "declare the default in `infra`: `snapshot-class NAME default=#true`, or map classes explicitly in `storage { … }`"
            }),
        );
    }
    for p in c.node_pools.iter().filter(|p| p.root_volume.cache == Some(CacheStrategy::Pvc)) {
        let class = match &p.root_volume.storage_class {
            Some(sc) => inv.storage_classes.iter().find(|s| s.name.value == sc.value),
            None => default_class,
        };
        let Some(class) = class else { continue };
        let mut problems = Vec::new();
        if class.access != AccessMode::ReadWriteMany {
            problems.push(format!("offers {}, not RWX", class.access.word()));
        }
        if class.clone == Some(CloneStrategy::Copy) {
            problems.push("clones by copying (clone strategy `copy`)".to_string());
        }
        if problems.is_empty() {
            continue;
        }
        let span = p.root_volume.span.unwrap_or(p.name.span);
        let source = match discovery {
            Some(_) => format!("StorageProfile `{}`", class.name.value),
            None => format!("`{}`", class.name.value),
        };
        let mut d = Diagnostic::error(
            Code::CacheCannotClone,
            format!(
                "the boot image cache of `{}/{}` needs a class that clones smartly with ReadWriteMany, but {source} {}",
                c.name.value,
                p.name.value,
                problems.join(" and ")
            ),
        )
        .label(span, "cache=pvc");
        if discovery.is_none() {
            d = d.label(class.name.span, format!("class `{}`", class.name.value));
        }
        diags.push(d.help(
            "use an RWX class whose CDI StorageProfile clones with `csi-clone` or `snapshot`, or drop `cache=pvc`",
        ));
    }
}

/// Storage mappings without a snapshot mapping leave the guest without a
/// VolumeSnapshotClass: said once per fleet, naming the clusters.
pub fn note_no_snapshot_mapping(fleet: &Fleet, diags: &mut Diagnostics) {
    let without: Vec<&Cluster> = fleet
        .clusters
        .iter()
        .filter(|c| matches!(&c.storage, Storage::Manual { classes, snapshot_classes } if !classes.is_empty() && snapshot_classes.is_empty()))
        .collect();
    let Some(first) = without.first() else { return };
    let who = match without.len() {
        1 => format!("cluster `{}` maps", first.name.value),
        n => format!("{n} clusters (`{}`, …) map", first.name.value),
    };
    diags.push(
        Diagnostic::note(
            Code::NoSnapshotMapping,
            format!("{who} storage classes but no snapshot class: the hosted cluster gets no VolumeSnapshotClass"),
        )
        .label(first.name.span, "no `snapshot-class` in `storage`")
        .help("volume snapshots in the hosted cluster need one: `storage { snapshot-class NAME hosted=NAME }`"),
    );
}

/// Host devices are a Technology Preview: said once per fleet.
pub fn note_technology_preview(fleet: &Fleet, diags: &mut Diagnostics) {
    let first = fleet.clusters.iter().flat_map(|c| &c.node_pools).flat_map(|p| &p.host_devices).next();
    if let Some(d) = first {
        diags.push(
            Diagnostic::note(
                Code::HostDeviceTechPreview,
                "host devices in node pools are a Technology Preview feature of hosted control planes on OpenShift Virtualization",
            )
            .label(d.name.span, "a host device")
            .help("Technology Preview features are not supported with Red Hat production service level agreements"),
        );
    }
}
