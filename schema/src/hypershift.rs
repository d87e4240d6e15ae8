//! The subset of the HyperShift API (`hypershift.openshift.io/v1beta1`) that
//! hcpc renders for the KubeVirt platform.
//!
//! Field names follow the CRDs in `shared/conformance/crds/`. Every optional
//! field is skipped when unset so that hcpc only sends, and therefore only
//! owns under server-side apply, what the configuration says. Maps are
//! `BTreeMap` so that output is sorted and deterministic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `apiVersion` of both HostedCluster and NodePool.
pub const API_VERSION: &str = "hypershift.openshift.io/v1beta1";
/// API group of both kinds.
pub const GROUP: &str = "hypershift.openshift.io";

fn is_false(b: &bool) -> bool {
    !*b
}

/// Object metadata as hcpc sets it (never server-populated fields).
///
/// Fields here and in every type below are declared in the order of their
/// serialised names, so that writing the typed object gives the same bytes
/// as writing it through a sorted map (a test in `render` checks it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to a Secret in the HostedCluster's namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalObjectReference {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedCluster {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: HostedClusterSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedClusterSpec {
    pub controller_availability_policy: String,
    /// Absent under base-domain passthrough: the operator fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    pub etcd: Etcd,
    pub fips: bool,
    #[serde(rename = "infraID")]
    pub infra_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_availability_policy: Option<String>,
    pub networking: Networking,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    pub olm_catalog_placement: String,
    pub platform: HostedClusterPlatform,
    pub pull_secret: LocalObjectReference,
    pub release: Release,
    pub secret_encryption: SecretEncryption,
    pub services: Vec<ServicePublishing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dns {
    pub base_domain: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Etcd {
    pub managed: ManagedEtcd,
    pub management_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedEtcd {
    pub storage: EtcdStorage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdStorage {
    pub persistent_volume: EtcdPersistentVolume,
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdPersistentVolume {
    pub size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Networking {
    pub cluster_network: Vec<Cidr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machine_network: Vec<Cidr>,
    pub network_type: String,
    pub service_network: Vec<Cidr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cidr {
    pub cidr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostedClusterPlatform {
    pub kubevirt: KubevirtPlatform,
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubevirtPlatform {
    #[serde(default, skip_serializing_if = "is_false")]
    pub base_domain_passthrough: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<KubevirtCredentials>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_driver: Option<StorageDriver>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubevirtCredentials {
    pub infra_kube_config_secret: KubeconfigSecretRef,
    pub infra_namespace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigSecretRef {
    pub key: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageDriver {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManualStorage>,
    /// `None`, `Default` or `Manual`.
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManualStorage {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_class_mapping: Vec<StorageClassMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_snapshot_class_mapping: Vec<VolumeSnapshotClassMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageClassMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub guest_storage_class_name: String,
    pub infra_storage_class_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotClassMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub guest_volume_snapshot_class_name: String,
    pub infra_volume_snapshot_class_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretEncryption {
    pub aescbc: AescbcSpec,
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AescbcSpec {
    pub active_key: LocalObjectReference,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePublishing {
    pub service: String,
    pub service_publishing_strategy: PublishingStrategy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishingStrategy {
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: NodePoolSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolSpec {
    pub arch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling: Option<AutoScaling>,
    pub cluster_name: String,
    pub management: Management,
    pub node_drain_timeout: String,
    pub node_volume_detach_timeout: String,
    pub platform: NodePoolPlatform,
    pub release: Release,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoScaling {
    pub max: u32,
    pub min: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Management {
    pub auto_repair: bool,
    /// `Replace` or `InPlace`.
    pub upgrade_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodePoolPlatform {
    pub kubevirt: KubevirtNodePool,
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubevirtNodePool {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_networks: Vec<AdditionalNetwork>,
    pub attach_default_network: bool,
    pub compute: Compute,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_devices: Vec<HostDevice>,
    /// `Enable` or `Disable`.
    pub network_interface_multiqueue: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    pub root_volume: RootVolume,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdditionalNetwork {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compute {
    pub cores: u32,
    pub memory: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostDevice {
    pub count: u32,
    pub device_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootVolume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_strategy: Option<CacheStrategy>,
    pub persistent: PersistentVolume,
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheStrategy {
    /// `None` or `PVC`.
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolume {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
    pub size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
}
