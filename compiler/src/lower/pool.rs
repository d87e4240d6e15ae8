//! One node pool of a cluster → [`NodePool`]: its size (replicas or
//! autoscaling, from the most specific block that sizes it), VM shape,
//! root volume, devices, networks and release, read through the cluster's
//! layers. The API's rules for these settings are in `api_rules.rs`.

use super::api_rules;
use super::cluster::Layer;
use super::layers::{Layers, NodeRef};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::*;
use crate::quantity::{Duration, Quantity};
use crate::source::Spanned;
use hcpc_schema::lang::defaults;

/// Lowers pool `pool_name` of a cluster whose `layers` are the cluster,
/// its profiles and `defaults`, most specific first. `own` is the
/// cluster's own block for the pool, if it writes one.
///
/// Settings come from the pool's blocks of that name (the cluster's, then
/// each profile's), then from the unnamed `node-pool` of each layer: a pool
/// that says something wins over what every pool inherits. The release
/// goes layer by layer instead (see [`release`]).
pub fn lower_pool(
    pool_name: &str,
    own: Option<NodeRef<'_>>,
    layers: &[Layer<'_>],
    cluster_release: &Spanned<String>,
    diags: &mut Diagnostics,
) -> Option<NodePool> {
    let named: Vec<Option<NodeRef<'_>>> =
        layers.iter().enumerate().map(|(i, l)| if i == 0 { own } else { l.pool(pool_name) }).collect();
    let blocks: Vec<NodeRef<'_>> =
        named.iter().flatten().copied().chain(layers.iter().filter_map(|l| l.pool_defaults)).collect();
    let node = blocks.first()?;
    let name = node.arg(0)?.string()?;
    let s = Layers::new(blocks.iter().map(|b| b.children()));
    let scaling = scaling(&blocks, &name, diags)?;

    api_rules::pool(&name.value, &s, diags);
    let root_volume = RootVolume {
        size: s
            .prop("root-volume", "size")
            .and_then(|v| v.quantity())
            .unwrap_or_else(|| Quantity::gibibytes(defaults::ROOT_VOLUME_GIB)),
        storage_class: s.prop("root-volume", "storage-class").and_then(|v| v.string()),
        access_mode: s.prop("root-volume", "access-mode").and_then(|v| v.str()).and_then(AccessMode::from_word),
        volume_mode: s.prop("root-volume", "volume-mode").and_then(|v| v.str()).and_then(VolumeMode::from_word),
        cache: s
            .prop("root-volume", "cache")
            .and_then(|v| v.str())
            .map(|c| if c == "pvc" { CacheStrategy::Pvc } else { CacheStrategy::None }),
        span: s.node("root-volume").map(|n| n.span()),
    };

    let host_devices = s
        .nodes("host-device")
        .iter()
        .filter_map(|d| {
            let dname = d.arg(0)?.string()?;
            let count = match d.prop("count") {
                Some(c) => Spanned::new(c.count()?, c.span()),
                None => Spanned::new(1, d.name_span()),
            };
            Some(HostDevice { name: dname, count })
        })
        .collect();

    let additional_networks: Vec<Spanned<String>> =
        s.nodes("additional-network").iter().filter_map(|n| n.arg(0).and_then(|v| v.string())).collect();

    let release = release(layers, &named, cluster_release, diags);
    Some(NodePool {
        scaling,
        cores: match s.arg("cores") {
            Some(v) => match v.count()? {
                0 => {
                    diags.push(
                        Diagnostic::error(Code::InvalidValue, "a VM needs at least 1 core")
                            .label(v.span(), "zero cores")
                            .help("use `cores 1` or more"),
                    );
                    return None;
                }
                n => Spanned::new(n, v.span()),
            },
            None => Spanned::new(defaults::POOL_CORES, name.span),
        },
        // Sizes too small to boot are checked with the other sizing rules
        // in `resolve::capacity`.
        // A value `check` rejected falls back to the default, so that the
        // pool's other settings are still checked.
        memory: match s.arg("memory") {
            Some(v) => {
                Spanned::new(v.quantity().unwrap_or_else(|| Quantity::gibibytes(defaults::POOL_MEMORY_GIB)), v.span())
            }
            None => Spanned::new(Quantity::gibibytes(defaults::POOL_MEMORY_GIB), name.span),
        },
        qos_class: match s.arg("qos-class").and_then(|v| v.str()) {
            Some("guaranteed") => QosClass::Guaranteed,
            _ => QosClass::Burstable,
        },
        root_volume,
        host_devices,
        network_multiqueue: s.arg("network-multiqueue").and_then(|v| v.bool()).unwrap_or(true),
        attach_default_network: s.arg("attach-default-network").and_then(|v| v.bool()).unwrap_or(true),
        additional_networks,
        node_selector: s.map("node-selector"),
        arch: s.arg("arch").and_then(|v| v.str()).unwrap_or("amd64").to_string(),
        auto_repair: s.arg("auto-repair").and_then(|v| v.bool()).unwrap_or(false),
        upgrade_type: match s.arg("upgrade-type").and_then(|v| v.str()) {
            Some("in-place") => UpgradeType::InPlace,
            _ => UpgradeType::Replace,
        },
        node_drain_timeout: s.arg("node-drain-timeout").and_then(|v| v.duration()).unwrap_or(Duration(0)),
        node_volume_detach_timeout: s
            .arg("node-volume-detach-timeout")
            .and_then(|v| v.duration())
            .unwrap_or(Duration(0)),
        release,
        object_name: own.and_then(|o| o.prop("object-name")).and_then(|v| v.str()).map(str::to_string),
        name,
    })
}

/// How the pool is sized: `replicas=` or `autoscaling`, from the most
/// specific block (`blocks`, most specific first) that sizes it. `None`,
/// reported, when no block sizes it or the size cannot be made.
fn scaling(blocks: &[NodeRef<'_>], name: &Spanned<String>, diags: &mut Diagnostics) -> Option<Spanned<Scaling>> {
    // The most specific block that sizes the pool wins; within one block,
    // `replicas=` and `autoscaling` exclude each other.
    let chosen = blocks
        .iter()
        .map(|b| (b.prop("replicas"), b.children().and_then(|c| Layers::new([Some(c)]).node("autoscaling"))))
        .find(|(r, a)| r.is_some() || a.is_some())
        .unwrap_or((None, None));
    match chosen {
        (Some(r), Some(a)) => {
            diags.push(
                Diagnostic::error(
                    Code::ConflictingSettings,
                    format!("node pool `{}` sets both replicas= and autoscaling", name.value),
                )
                .label(r.span(), "fixed size")
                .label(a.name_span(), "autoscaled")
                .help("keep `replicas=` for a fixed size or `autoscaling min=… max=…`, not both"),
            );
            None
        }
        (_, Some(a)) => {
            let min = a.prop("min").and_then(|v| v.count())?;
            let max = a.prop("max").and_then(|v| v.count())?;
            if min < 1 || min > max {
                diags.push(
                    Diagnostic::error(
                        Code::AutoscalingRange,
                        format!("autoscaling of `{}` needs 1 <= min <= max (got min={min} max={max})", name.value),
                    )
                    .label(a.span(), "invalid range")
                    .help("the NodePool API needs min of at least 1 and max of at least min"),
                );
                return None;
            }
            Some(Spanned::new(Scaling::Autoscaling { min, max }, a.span()))
        }
        (Some(r), None) => Some(Spanned::new(Scaling::Replicas(r.count()?), r.span())),
        (None, None) => {
            diags.push(
                Diagnostic::error(Code::MissingSetting, format!("node pool `{}` has no size", name.value))
                    .label(name.span, "no replicas")
                    .help(format!(
                        "write `node-pool {} replicas=2`, or add `autoscaling min=1 max=3` inside it",
                        name.value
                    )),
            );
            None
        }
    }
}

/// The pool's release, layer by layer (`named` holds the pool's own block
/// in each layer): in each, the pool's own release, then that of the
/// layer's unnamed `node-pool`, then the layer's cluster release. So
/// upgrading a cluster (or its profile) upgrades its pools unless a pool
/// says otherwise at that layer or a more specific one.
fn release(
    layers: &[Layer<'_>],
    named: &[Option<NodeRef<'_>>],
    cluster_release: &Spanned<String>,
    diags: &mut Diagnostics,
) -> Spanned<ReleaseImage> {
    let block_release = |n: Option<NodeRef<'_>>| {
        n.and_then(|n| n.children()).and_then(|b| Layers::new([Some(b)]).arg("release")).and_then(|v| v.string())
    };
    let release = layers
        .iter()
        .zip(named)
        .find_map(|(l, pool)| {
            block_release(*pool)
                .or_else(|| block_release(l.pool_defaults))
                .or_else(|| l.release().and_then(|v| v.string()))
        })
        .unwrap_or_else(|| cluster_release.clone());
    if release.span == cluster_release.span {
        // The cluster's own line: reported with the cluster.
        crate::release::lower(release, &mut Diagnostics::default())
    } else {
        crate::release::lower(release, diags)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::lower_text;
    use crate::diagnostic::Code;
    use crate::ir::*;
    use crate::quantity::{Duration, Quantity};
    use hcpc_schema::lang::defaults;

    const REL: &str = "quay.io/openshift-release-dev/ocp-release:4.17.3-multi";

    /// A cluster `a` on `REL` holding `pools`, after `before` (top-level nodes).
    fn fleet(before: &str, pools: &str) -> String {
        format!("{before}\ncluster a {{\n    release \"{REL}\"\n    pull-secret secret=ps\n{pools}\n}}\n")
    }

    #[test]
    fn a_pool_that_only_says_its_size_gets_every_default() {
        let l = lower_text(&fleet("", "    node-pool w replicas=2"));
        let p = l.clean().pool("a", "w");
        assert_eq!(p.scaling.value, Scaling::Replicas(2));
        assert_eq!(p.cores.value, defaults::POOL_CORES);
        assert_eq!(p.memory.value, Quantity::gibibytes(defaults::POOL_MEMORY_GIB));
        assert_eq!(p.root_volume.size, Quantity::gibibytes(defaults::ROOT_VOLUME_GIB));
        assert_eq!(p.root_volume.span, None);
        assert_eq!(p.qos_class, QosClass::Burstable);
        assert_eq!(p.arch, "amd64");
        assert!(p.network_multiqueue);
        assert!(p.attach_default_network);
        assert!(!p.auto_repair);
        assert_eq!(p.upgrade_type, UpgradeType::Replace);
        assert_eq!(p.node_drain_timeout, Duration(0));
        assert!(p.host_devices.is_empty() && p.additional_networks.is_empty());
        assert_eq!(p.release.value, l.cluster("a").release.value, "a pool follows its cluster's release");
        assert_eq!(p.object_name, None);
    }

    #[test]
    fn a_pool_reads_its_own_block_over_every_pools_defaults() {
        let l = lower_text(&fleet(
            "defaults {\n    node-pool {\n        cores 4\n        memory \"16Gi\"\n        autoscaling min=1 max=3\n    }\n}",
            "    node-pool w replicas=2 {\n        cores 8\n    }\n    node-pool v",
        ));
        let w = l.clean().pool("a", "w");
        assert_eq!((w.scaling.value, w.cores.value), (Scaling::Replicas(2), 8), "the pool's own size and cores win");
        assert_eq!(w.memory.value, Quantity::gibibytes(16), "what it does not say comes from `defaults`");
        let v = l.pool("a", "v");
        assert_eq!(v.scaling.value, Scaling::Autoscaling { min: 1, max: 3 }, "a pool without a size inherits one");
        assert_eq!(v.cores.value, 4);
    }

    #[test]
    fn a_pool_pinned_to_a_release_keeps_it_and_the_others_follow_the_cluster() {
        let pinned = "quay.io/openshift-release-dev/ocp-release:4.17.2-multi";
        let l = lower_text(&fleet(
            "",
            &format!(
                "    node-pool old replicas=1 {{\n        release \"{pinned}\"\n    }}\n    node-pool new replicas=1"
            ),
        ));
        l.clean();
        assert_eq!(l.pool("a", "old").release.value.to_string(), pinned);
        assert_eq!(l.pool("a", "new").release.value, l.cluster("a").release.value);
    }

    #[test]
    fn replicas_and_autoscaling_in_one_block_conflict_and_drop_the_pool() {
        let l = lower_text(&fleet("", "    node-pool w replicas=2 {\n        autoscaling min=1 max=3\n    }"));
        let (message, at) = l.only(Code::ConflictingSettings);
        assert_eq!(message, "node pool `w` sets both replicas= and autoscaling");
        assert_eq!(at, "replicas=2");
        assert!(l.cluster("a").node_pools.is_empty());
    }

    #[test]
    fn autoscaling_needs_one_to_max() {
        for (range, shown) in [("min=3 max=1", "min=3 max=1"), ("min=0 max=2", "min=0 max=2")] {
            let l = lower_text(&fleet("", &format!("    node-pool w {{\n        autoscaling {range}\n    }}")));
            let (message, at) = l.only(Code::AutoscalingRange);
            assert_eq!(message, format!("autoscaling of `w` needs 1 <= min <= max (got {shown})"));
            assert_eq!(at, format!("autoscaling {range}"));
            assert!(l.cluster("a").node_pools.is_empty());
        }
    }

    #[test]
    fn a_pool_without_a_size_is_reported_at_its_name() {
        let l = lower_text(&fleet("", "    node-pool w"));
        let (message, at) = l.only(Code::MissingSetting);
        assert_eq!((message.as_str(), at), ("node pool `w` has no size", "w"));
    }

    #[test]
    fn a_vm_needs_a_core() {
        let l = lower_text(&fleet("", "    node-pool w replicas=1 {\n        cores 0\n    }"));
        let (message, at) = l.only(Code::InvalidValue);
        assert_eq!((message.as_str(), at), ("a VM needs at least 1 core", "0"));
        assert!(l.cluster("a").node_pools.is_empty());
    }
}
