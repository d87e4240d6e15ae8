//! HostedCluster rendering (HYPERSHIFT.md B.2).

use std::collections::BTreeMap;

use hcpc_schema::hypershift::*;

use crate::ir::{Cluster, InfraCredentials, SecretSource, Storage};
use crate::resolve::names;

pub fn render(c: &Cluster, mut labels: BTreeMap<String, String>) -> HostedCluster {
    let name = c.name.value.clone();
    for (k, v) in &c.labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if c.prevent_destroy {
        labels.insert(hcpc_schema::labels::PREVENT_DESTROY.to_string(), "true".to_string());
    }
    let secret_name = |s: &SecretSource, managed: String| match s {
        SecretSource::Secret(n) => n.clone(),
        _ => managed,
    };
    let route = |service: &str, kind: &str| ServicePublishing {
        service: service.to_string(),
        service_publishing_strategy: PublishingStrategy { type_: kind.to_string() },
    };
    HostedCluster {
        api_version: API_VERSION.to_string(),
        kind: "HostedCluster".to_string(),
        metadata: ObjectMeta {
            name: name.clone(),
            namespace: Some(c.namespace.value.clone()),
            labels,
            annotations: c.annotations.clone(),
        },
        spec: HostedClusterSpec {
            controller_availability_policy: c.control_plane_availability.api().to_string(),
            dns: c.base_domain.as_ref().map(|d| Dns { base_domain: d.clone() }),
            etcd: Etcd {
                managed: ManagedEtcd {
                    storage: EtcdStorage {
                        persistent_volume: EtcdPersistentVolume {
                            size: c.etcd.size.to_string(),
                            storage_class_name: c.etcd.storage_class.as_ref().map(|s| s.value.clone()),
                        },
                        type_: "PersistentVolume".to_string(),
                    },
                },
                management_type: "Managed".to_string(),
            },
            fips: c.fips,
            infra_id: super::infra_id(c),
            infrastructure_availability_policy: c.infrastructure_availability.map(|a| a.api().to_string()),
            networking: Networking {
                cluster_network: vec![Cidr { cidr: c.network.cluster_cidr.clone() }],
                machine_network: c.network.machine_cidr.iter().map(|m| Cidr { cidr: m.clone() }).collect(),
                network_type: c.network.network_type.clone(),
                service_network: vec![Cidr { cidr: c.network.service_cidr.clone() }],
            },
            node_selector: c.control_plane_node_selector.clone(),
            olm_catalog_placement: "management".to_string(),
            platform: HostedClusterPlatform {
                kubevirt: KubevirtPlatform {
                    base_domain_passthrough: c.base_domain.is_none(),
                    credentials: c.infra_cluster.as_ref().map(|i| KubevirtCredentials {
                        infra_kube_config_secret: KubeconfigSecretRef {
                            key: "kubeconfig".to_string(),
                            name: match &i.credentials {
                                InfraCredentials::KubeconfigFile(_) => names::infra_credentials(c),
                                InfraCredentials::KubeconfigSecret(s) => s.value.clone(),
                            },
                        },
                        infra_namespace: i.namespace.clone(),
                    }),
                    storage_driver: storage_driver(&c.storage),
                },
                type_: "KubeVirt".to_string(),
            },
            pull_secret: LocalObjectReference { name: secret_name(&c.pull_secret.value, names::pull_secret(c)) },
            release: Release { image: c.release.as_str().to_string() },
            secret_encryption: SecretEncryption {
                aescbc: AescbcSpec { active_key: LocalObjectReference { name: names::etcd_encryption_key(c) } },
                type_: "aescbc".to_string(),
            },
            services: vec![
                route("APIServer", "LoadBalancer"),
                route("Ignition", "Route"),
                route("Konnectivity", "Route"),
                route("OAuthServer", "Route"),
            ],
            ssh_key: c
                .ssh_key
                .as_ref()
                .map(|k| LocalObjectReference { name: secret_name(&k.value, names::ssh_key(c)) }),
            tolerations: c
                .tolerations
                .iter()
                .map(|t| Toleration {
                    effect: t.effect.clone(),
                    key: t.key.clone(),
                    operator: t.operator.clone(),
                    toleration_seconds: t.seconds,
                    value: t.value.clone(),
                })
                .collect(),
        },
    }
}

fn storage_driver(s: &Storage) -> Option<StorageDriver> {
    match s {
        Storage::Default => None,
        Storage::None => Some(StorageDriver { manual: None, type_: "None".to_string() }),
        Storage::Manual { classes, snapshot_classes } => Some(StorageDriver {
            manual: Some(ManualStorage {
                storage_class_mapping: classes
                    .iter()
                    .map(|m| StorageClassMapping {
                        group: m.group.as_ref().map(|g| g.value.clone()),
                        guest_storage_class_name: m.hosted.value.clone(),
                        infra_storage_class_name: m.infra.value.clone(),
                    })
                    .collect(),
                volume_snapshot_class_mapping: snapshot_classes
                    .iter()
                    .map(|m| VolumeSnapshotClassMapping {
                        group: m.group.as_ref().map(|g| g.value.clone()),
                        guest_volume_snapshot_class_name: m.hosted.value.clone(),
                        infra_volume_snapshot_class_name: m.infra.value.clone(),
                    })
                    .collect(),
            }),
            type_: "Manual".to_string(),
        }),
    }
}
