//! Storage rules (SPEC §4 rules 1–3): groups, hosted names, the inventory.

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Diagnostic, Diagnostics, closest};
use crate::ir::{AccessMode, Cluster, Inventory, Storage, StorageMapping, VolumeMode};

/// The CRD's `maxItems` for each mapping list.
const MAX_MAPPINGS: usize = 50;

pub fn check_cluster(c: &Cluster, inv: &Inventory, diags: &mut Diagnostics) {
    let known = inv.known.storage && inv.describes(c);
    if let Storage::Manual { classes, snapshot_classes } = &c.storage {
        check_groups(classes, snapshot_classes, diags);
        check_unique(c, classes, "storage class", diags);
        check_unique(c, snapshot_classes, "snapshot class", diags);
        for (list, what) in [(classes, "storage class"), (snapshot_classes, "snapshot class")] {
            if list.len() > MAX_MAPPINGS {
                diags.push(
                    Diagnostic::error(
                        Code::TooManyMappings,
                        format!(
                            "cluster `{}` has {} {what} mappings; at most {MAX_MAPPINGS} are allowed",
                            c.name.value,
                            list.len()
                        ),
                    )
                    .label(list[MAX_MAPPINGS].infra.span, "the 51st")
                    .help("the HostedCluster CRD allows 50 entries per mapping list"),
                );
            }
        }
        if known {
            for m in classes {
                match inv.storage_classes.iter().find(|s| s.name.value == m.infra.value) {
                    None => diags.push(unknown_class(&m.infra.value, m.infra.span, inv, "mapped", None)),
                    Some(s) if s.access != AccessMode::ReadWriteMany => diags.push(match inv.discovery {
                        Some(_) => Diagnostic::error(
                            Code::ClassNotRwx,
                            format!(
                                "storage class `{0}` is not ReadWriteMany: StorageProfile `{0}` offers {1} only",
                                m.infra.value,
                                s.access.word()
                            ),
                        )
                        .label(m.infra.span, "mapped here")
                        .help("KubeVirt CSI can only map RWX storage classes into a hosted cluster; map an RWX class, or, if the storage supports it, add an RWX entry to the StorageProfile's claimPropertySets"),
                        None => Diagnostic::error(Code::ClassNotRwx, format!("storage class `{}` is not ReadWriteMany", m.infra.value))
                            .label(m.infra.span, "mapped here")
                            .label(s.name.span, format!("declared {} here", s.access.word()))
                            .help("KubeVirt CSI can only map RWX storage classes into a hosted cluster; map an RWX class instead"),
                    }),
                    Some(_) => {}
                }
            }
            for m in snapshot_classes {
                if !inv.snapshot_classes.iter().any(|s| s.name.value == m.infra.value) {
                    let (message, label) = match inv.discovery.as_deref() {
                        Some(dis) if !dis.snapshot_api => (
                            format!(
                                "the management cluster does not serve the snapshot API (snapshot.storage.k8s.io VolumeSnapshotClass), so it has no snapshot class `{}`",
                                m.infra.value
                            ),
                            "no snapshot API",
                        ),
                        Some(_) => (
                            format!("the management cluster has no VolumeSnapshotClass `{}`", m.infra.value),
                            "no such VolumeSnapshotClass",
                        ),
                        None => {
                            (format!("the infrastructure has no snapshot class `{}`", m.infra.value), "not in `infra`")
                        }
                    };
                    let mut d = Diagnostic::error(Code::UnknownSnapshotClass, message).label(m.infra.span, label);
                    d = match closest(&m.infra.value, inv.snapshot_classes.iter().map(|s| s.name.value.as_str())) {
                        Some(near) => {
                            d.help(format!("did you mean `{near}`?")).suggest(m.infra.span, crate::fmt::quote(near))
                        }
                        None => match inv.discovery.as_deref() {
                            Some(dis) if !dis.snapshot_api => d.help("install the CSI snapshot CRDs and snapshot controller on the management cluster, or remove the snapshot-class mapping"),
                            Some(_) => d.help("create the VolumeSnapshotClass on the management cluster, or map one it has"),
                            None => d.help("declare it in `infra { snapshot-class NAME }` or fix the name"),
                        },
                    };
                    diags.push(d);
                }
            }
        }
    }
    if !known {
        return;
    }
    // etcd runs on the management cluster: only the same cluster's inventory applies.
    if c.infra_cluster.is_none()
        && let Some(sc) = &c.etcd.storage_class
        && !inv.storage_classes.iter().any(|s| s.name.value == sc.value)
    {
        diags.push(unknown_class(&sc.value, sc.span, inv, "used for etcd", Some("storage-class")));
    }
    for p in &c.node_pools {
        let rv = &p.root_volume;
        let class = match &rv.storage_class {
            Some(sc) => match inv.storage_classes.iter().find(|s| s.name.value == sc.value) {
                Some(s) => Some(s),
                None => {
                    diags.push(unknown_class(&sc.value, sc.span, inv, "used for root volumes", Some("storage-class")));
                    continue;
                }
            },
            None => inv.storage_classes.iter().find(|s| s.default),
        };
        let access = rv.access_mode.or(class.map(|s| s.access));
        let mode = rv.volume_mode.or(class.map(|s| s.volume_mode));
        if let (Some(access), Some(mode)) = (access, mode)
            && (access != AccessMode::ReadWriteMany || mode != VolumeMode::Block)
        {
            let span = rv.span.or(rv.storage_class.as_ref().map(|s| s.span)).unwrap_or(p.name.span);
            diags.push(
                Diagnostic::warning(
                    Code::NotLiveMigratable,
                    format!(
                        "VMs of node pool `{}/{}` cannot live-migrate: root volume is {} {}",
                        c.name.value,
                        p.name.value,
                        access.word(),
                        mode.api()
                    ),
                )
                .label(span, "root volume")
                .help("use an RWX storage class with volume-mode=Block so VMs survive infrastructure node drains"),
            );
        }
    }
}

/// `key` is the property the name was written in (its span covers `key=value`),
/// or `None` for an argument.
fn unknown_class(name: &str, span: crate::source::Span, inv: &Inventory, role: &str, key: Option<&str>) -> Diagnostic {
    let d = match inv.discovery {
        Some(_) => Diagnostic::error(
            Code::UnknownStorageClass,
            format!("the management cluster has no StorageClass `{name}` ({role})"),
        )
        .label(span, "no such StorageClass"),
        None => Diagnostic::error(
            Code::UnknownStorageClass,
            format!("the infrastructure has no storage class `{name}` ({role})"),
        )
        .label(span, "not in `infra`"),
    };
    match closest(name, inv.storage_classes.iter().map(|s| s.name.value.as_str())) {
        Some(near) => {
            let fixed = crate::fmt::quote(near);
            let written = key.map_or_else(|| fixed.clone(), |k| format!("{k}={fixed}"));
            d.help(format!("did you mean `{near}`?")).suggest(span, written)
        }
        None if inv.discovery.is_some() => d.help(format!(
            "create the StorageClass on the management cluster, or name one it has: {}",
            inv.storage_classes.iter().map(|s| s.name.value.as_str()).collect::<Vec<_>>().join(", ")
        )),
        None => d.help("declare it in `infra { storage-class NAME access=RWX }` or fix the name"),
    }
}

/// Rule 1: a snapshot class needs a storage class in its group (or, when
/// ungrouped, an ungrouped storage class), or the guest gets a snapshot
/// class that serves no volume.
fn check_groups(classes: &[StorageMapping], snapshots: &[StorageMapping], diags: &mut Diagnostics) {
    let group_of = |m: &StorageMapping| m.group.as_ref().map(|g| g.value.clone());
    for s in snapshots {
        let g = group_of(s);
        if classes.iter().any(|m| group_of(m) == g) {
            continue;
        }
        let (message, help) = match &g {
            Some(name) => (
                format!("snapshot class `{}` is in group `{name}`, which has no storage class", s.infra.value),
                format!(
                    "add `class INFRA hosted=NAME` to group `{name}`, or move the snapshot class into the group of the storage classes it can snapshot"
                ),
            ),
            None if classes.is_empty() => (
                format!("snapshot class `{}` is mapped but no storage class is", s.infra.value),
                "a snapshot-class mapping alone switches the driver to Manual with no usable storage class: map at least one `class INFRA hosted=NAME` too".to_string(),
            ),
            None => (
                format!("ungrouped snapshot class `{}` has no ungrouped storage class to serve", s.infra.value),
                "move it into the `group` of the storage classes it can snapshot, or map an ungrouped `class`".to_string(),
            ),
        };
        let mut d = Diagnostic::error(Code::SnapshotWithoutClass, message).label(s.infra.span, "this snapshot class");
        if let Some(gs) = &s.group {
            d = d.label(gs.span, "its group");
        }
        diags.push(d.help(help));
    }
}

/// Rule 2: hosted names are unique; an infra class is mapped once per group.
fn check_unique(c: &Cluster, list: &[StorageMapping], what: &str, diags: &mut Diagnostics) {
    let mut hosted: BTreeMap<&str, &StorageMapping> = BTreeMap::new();
    let mut infra: BTreeMap<(Option<&str>, &str), &StorageMapping> = BTreeMap::new();
    for m in list {
        if let Some(first) = hosted.insert(&m.hosted.value, m) {
            diags.push(
                Diagnostic::error(
                    Code::DuplicateHostedName,
                    format!(
                        "two {what} mappings of cluster `{}` are named `{}` in the hosted cluster",
                        c.name.value, m.hosted.value
                    ),
                )
                .label(m.hosted.span, "second")
                .label(first.hosted.span, "first")
                .help("give each hosted class its own name; inside the guest one would silently replace the other"),
            );
        }
        let key = (m.group.as_ref().map(|g| g.value.as_str()), m.infra.value.as_str());
        if let Some(first) = infra.insert(key, m) {
            let place = key.0.map_or("the ungrouped set".to_string(), |g| format!("group `{g}`"));
            diags.push(
                Diagnostic::error(
                    Code::DuplicateMapping,
                    format!("{what} `{}` is mapped twice into {place}", m.infra.value),
                )
                .label(m.infra.span, "mapped again")
                .label(first.infra.span, "first mapped")
                .help("remove one mapping"),
            );
        }
    }
}
