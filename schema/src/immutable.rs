//! Fields HyperShift makes immutable, from the CRDs' CEL transition rules
//! (`self == oldSelf`, and `oldSelf == "" || self == oldSelf` where the
//! server may fill an empty value once).
//!
//! This table is checked against the CRDs in `shared/conformance/crds/` by
//! a test (`tests/plan.rs`), so it cannot silently drift from them.

/// One immutable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImmutableField {
    /// `HostedCluster` or `NodePool`.
    pub kind: &'static str,
    /// Dotted path from the object root, e.g. `spec.fips`.
    pub path: &'static str,
    /// The CRD rule's message.
    pub message: &'static str,
    /// The rule allows changing an empty value once (`oldSelf == ""`).
    pub settable_once: bool,
}

const fn f(kind: &'static str, path: &'static str, message: &'static str) -> ImmutableField {
    ImmutableField { kind, path, message, settable_once: false }
}
const fn once(kind: &'static str, path: &'static str, message: &'static str) -> ImmutableField {
    ImmutableField { kind, path, message, settable_once: true }
}

pub const IMMUTABLE_FIELDS: &[ImmutableField] = &[
    f(
        "HostedCluster",
        "spec.services",
        "Services is immutable. Changes might result in unpredictable and disruptive behavior.",
    ),
    f(
        "HostedCluster",
        "spec.capabilities",
        "Capabilities is immutable. Changes might result in unpredictable and disruptive behavior.",
    ),
    once("HostedCluster", "spec.clusterID", "clusterID is immutable"),
    f("HostedCluster", "spec.controllerAvailabilityPolicy", "ControllerAvailabilityPolicy is immutable"),
    once("HostedCluster", "spec.dns.baseDomain", "baseDomain is immutable"),
    f("HostedCluster", "spec.dns.baseDomainPrefix", "baseDomainPrefix is immutable"),
    f("HostedCluster", "spec.etcd.managed.storage.persistentVolume.size", "Etcd PV storage size is immutable"),
    f("HostedCluster", "spec.etcd.managed.storage.persistentVolume.storageClassName", "storageClassName is immutable"),
    f("HostedCluster", "spec.etcd.managed.storage.restoreSnapshotURL", "restoreSnapshotURL is immutable"),
    f("HostedCluster", "spec.etcd.managementType", "managementType is immutable"),
    f("HostedCluster", "spec.fips", "fips is immutable"),
    once("HostedCluster", "spec.infraID", "infraID is immutable"),
    f("HostedCluster", "spec.issuerURL", "issuerURL is immutable"),
    f(
        "HostedCluster",
        "spec.networking.allocateNodeCIDRs",
        "allocateNodeCIDRs is immutable and cannot be modified once set.",
    ),
    f(
        "HostedCluster",
        "spec.networking.clusterNetwork",
        "clusterNetwork is immutable and cannot be modified once set.",
    ),
    f(
        "HostedCluster",
        "spec.networking.machineNetwork",
        "machineNetwork is immutable and cannot be modified once set.",
    ),
    f(
        "HostedCluster",
        "spec.networking.serviceNetwork",
        "serviceNetwork is immutable and cannot be modified once set.",
    ),
    f("HostedCluster", "spec.olmCatalogPlacement", "OLMCatalogPlacement is immutable"),
    f("HostedCluster", "spec.platform.kubevirt.baseDomainPassthrough", "baseDomainPassthrough is immutable"),
    f(
        "HostedCluster",
        "spec.platform.kubevirt.credentials.infraKubeConfigSecret",
        "infraKubeConfigSecret is immutable",
    ),
    f("HostedCluster", "spec.platform.kubevirt.credentials.infraNamespace", "infraNamespace is immutable"),
    // After its fields, so their own messages win. No CEL rule guards the `credentials` object itself (adding or removing
    // it passes the API server), but HyperShift documents it as immutable
    // and the CSI driver would keep using the old infrastructure.
    f(
        "HostedCluster",
        "spec.platform.kubevirt.credentials",
        "credentials are immutable (external infrastructure cannot be added or removed)",
    ),
    f("HostedCluster", "spec.platform.kubevirt.generateID", "Kubevirt GenerateID is immutable once set"),
    f("HostedCluster", "spec.platform.kubevirt.storageDriver", "storageDriver is immutable"),
    f("HostedCluster", "spec.platform.type", "Type is immutable"),
    f("NodePool", "spec.arch", "Arch is immutable"),
    f("NodePool", "spec.clusterName", "ClusterName is immutable"),
    f("NodePool", "spec.management.upgradeType", "UpgradeType is immutable"),
    f("NodePool", "spec.platform.type", "Type is immutable"),
];
