//! NodePool rendering (HYPERSHIFT.md B.3 and A.4).

use std::collections::BTreeMap;

use hcpc_schema::hypershift::*;

use crate::ir::{CacheStrategy as Cache, Cluster, QosClass, Scaling, UpgradeType};
use crate::resolve::names;

/// Annotation that lets KubeVirt pools boot unsupported RHCOS variants.
const RHCOS_VARIANTS: &str = "hypershift.openshift.io/allow-unsupported-kubevirt-rhcos-variants";

pub fn render(c: &Cluster, p: &crate::ir::NodePool, labels: BTreeMap<String, String>) -> NodePool {
    let (replicas, auto_scaling) = match p.scaling.value {
        Scaling::Replicas(n) => (Some(n), None),
        Scaling::Autoscaling { min, max } => (None, Some(AutoScaling { max, min })),
    };
    let rv = &p.root_volume;
    NodePool {
        api_version: API_VERSION.to_string(),
        kind: "NodePool".to_string(),
        metadata: ObjectMeta {
            name: names::node_pool(c, p),
            namespace: Some(c.namespace.value.clone()),
            labels,
            // As hcp does: this HostedCluster annotation also governs the pool's VMs.
            annotations: c
                .annotations
                .iter()
                .filter(|(k, _)| k.as_str() == RHCOS_VARIANTS)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        spec: NodePoolSpec {
            arch: p.arch.clone(),
            auto_scaling,
            cluster_name: c.name.value.clone(),
            management: Management {
                auto_repair: p.auto_repair,
                upgrade_type: match p.upgrade_type {
                    UpgradeType::Replace => "Replace",
                    UpgradeType::InPlace => "InPlace",
                }
                .to_string(),
            },
            node_drain_timeout: p.node_drain_timeout.to_string(),
            node_volume_detach_timeout: p.node_volume_detach_timeout.to_string(),
            platform: NodePoolPlatform {
                kubevirt: KubevirtNodePool {
                    additional_networks: p
                        .additional_networks
                        .iter()
                        .map(|n| AdditionalNetwork { name: n.value.clone() })
                        .collect(),
                    attach_default_network: p.attach_default_network,
                    compute: Compute {
                        cores: *p.cores,
                        memory: p.memory.to_string(),
                        // Burstable is the API default; hcp writes only Guaranteed.
                        qos_class: (p.qos_class == QosClass::Guaranteed).then(|| "Guaranteed".to_string()),
                    },
                    host_devices: p
                        .host_devices
                        .iter()
                        .map(|d| HostDevice { count: d.count.value, device_name: d.name.value.clone() })
                        .collect(),
                    network_interface_multiqueue: if p.network_multiqueue { "Enable" } else { "Disable" }.to_string(),
                    node_selector: p.node_selector.clone(),
                    root_volume: RootVolume {
                        cache_strategy: rv.cache.map(|c| CacheStrategy {
                            type_: match c {
                                Cache::None => "None",
                                Cache::Pvc => "PVC",
                            }
                            .to_string(),
                        }),
                        persistent: PersistentVolume {
                            access_modes: rv.access_mode.iter().map(|a| a.api().to_string()).collect(),
                            size: rv.size.to_string(),
                            storage_class: rv.storage_class.as_ref().map(|s| s.value.clone()),
                            volume_mode: rv.volume_mode.map(|m| m.api().to_string()),
                        },
                        type_: "Persistent".to_string(),
                    },
                },
                type_: "KubeVirt".to_string(),
            },
            release: Release { image: p.release.as_str().to_string() },
            replicas,
        },
    }
}
