//! The typed IR that `lower` produces: what the configuration says, with
//! every default filled in and every value checked for its own validity.
//! Cross-references (storage classes, devices, names) are still plain
//! names with spans; `resolve` checks them against each other.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::quantity::{Duration, Quantity};
pub use crate::release::ReleaseImage;
use crate::source::{Span, Spanned};

/// Everything declared in one file or directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// Name of the fleet's ApplySet (`fleet NAME`, default `default`).
    pub name: String,
    /// Whether `fleet NAME` was written.
    pub named: bool,
    /// Namespace of the ApplySet parent Secret.
    pub namespace: String,
    pub target: Option<Spanned<Target>>,
    pub inventory: Inventory,
    pub clusters: Vec<Cluster>,
    /// `rollout { … }`: the order release changes reach the clusters in.
    pub rollout: Option<Rollout>,
    /// `allow-paths-outside`: secret files may lie outside the fleet's tree.
    pub allow_paths_outside: Option<Span>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// The management cluster, through kubeconfig.
    Kube { context: Option<String> },
    /// A GitOps directory (already resolved against the declaring file).
    Dir { path: PathBuf },
}

impl Target {
    /// One spelling per target: a directory without `.` and `dir/..`.
    pub fn identity(&self) -> Target {
        match self {
            Target::Dir { path } => Target::Dir { path: crate::source::normalize(path) },
            kube => kube.clone(),
        }
    }
}

impl Fleet {
    /// The fleet's settings with none of its clusters.
    pub fn without_clusters(&self) -> Fleet {
        Fleet {
            name: self.name.clone(),
            named: self.named,
            namespace: self.namespace.clone(),
            target: self.target.clone(),
            inventory: self.inventory.clone(),
            clusters: Vec::new(),
            rollout: self.rollout.clone(),
            allow_paths_outside: self.allow_paths_outside,
        }
    }
}

/// What the infrastructure offers, as declared in `infra { … }` and found
/// by discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// Which parts are known; checks that need a part skip it otherwise.
    pub known: Known,
    /// Found by discovery on the management cluster: it then describes only
    /// clusters whose VMs run there (no `infra-cluster`).
    pub management_only: bool,
    pub storage_classes: Vec<InfraStorageClass>,
    pub snapshot_classes: Vec<InfraSnapshotClass>,
    /// Devices in total, declared with `host-device NAME capacity=N` or
    /// summed over `nodes`.
    pub host_devices: Vec<InfraHostDevice>,
    /// Node shapes, for per-VM fit and packing.
    pub nodes: Vec<InfraNodes>,
    pub kubevirt: KubevirtSettings,
    /// Warn above this percentage of a resource (`capacity-warning`).
    pub capacity_warning: u32,
    /// The `kubevirt` node of `infra`, when declared (a discovered KubeVirt
    /// resource that disagrees with it is a mismatch).
    pub kubevirt_declared: Option<crate::source::Span>,
    /// What discovery read, when it did: diagnostics built on a discovered
    /// fact name the object it came from.
    pub discovery: Option<Box<Discovery>>,
}

impl Default for Inventory {
    fn default() -> Inventory {
        Inventory {
            known: Known::default(),
            management_only: false,
            storage_classes: Vec::new(),
            snapshot_classes: Vec::new(),
            host_devices: Vec::new(),
            nodes: Vec::new(),
            kubevirt: KubevirtSettings::default(),
            capacity_warning: 85,
            kubevirt_declared: None,
            discovery: None,
        }
    }
}

impl Inventory {
    /// Whether this inventory describes the infrastructure of `c`: a
    /// discovered one describes only the management cluster.
    pub fn describes(&self, c: &Cluster) -> bool {
        !(self.management_only && c.infra_cluster.is_some())
    }
}

/// The parts of the inventory that are known. Each part is known when the
/// `infra` block declares anything of it, or discovery found it; an unknown
/// part is never taken to be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Known {
    /// Storage and snapshot classes (`storage-class`, `snapshot-class`).
    pub storage: bool,
    /// Host devices (`host-device`, or devices of `nodes`).
    pub devices: bool,
    /// Node shapes (`nodes`).
    pub nodes: bool,
}

/// Where discovered facts came from, beyond the facts themselves (which
/// replace the declared ones in [`Inventory`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Discovery {
    /// `namespace/name` of the KubeVirt resource; `None` when there is none.
    pub kubevirt: Option<String>,
    /// The host devices that KubeVirt resource permits
    /// (`spec.configuration.permittedHostDevices`); `None` without one.
    pub permitted_devices: Option<Vec<PermittedDevice>>,
    /// Whether the snapshot API (`snapshot.storage.k8s.io`
    /// VolumeSnapshotClass) is served at all.
    pub snapshot_api: bool,
    /// StorageClasses marked default besides the one Kubernetes uses, which
    /// is the one marked default in [`Inventory::storage_classes`].
    pub ignored_default_classes: Vec<String>,
    /// The default used is as new as another marked default: Kubernetes
    /// took the first by name.
    pub default_by_name: bool,
    /// Per host device, the schedulable Nodes whose allocatable has it,
    /// in name order.
    pub device_nodes: Vec<(String, Vec<String>)>,
}

impl Discovery {
    /// The Nodes that advertise `device`, for messages: "Node `a`", "Nodes
    /// `a`, `b`", "Nodes `a`, `b` and 3 more".
    pub fn nodes_with(&self, device: &str) -> Option<String> {
        let (_, nodes) = self.device_nodes.iter().find(|(d, _)| d == device)?;
        let shown: Vec<String> = nodes.iter().take(3).map(|n| format!("`{n}`")).collect();
        let more = nodes.len().saturating_sub(3);
        Some(match (nodes.len(), more) {
            (1, _) => format!("Node {}", shown[0]),
            (_, 0) => format!("Nodes {}", shown.join(", ")),
            (_, m) => format!("Nodes {} and {m} more", shown.join(", ")),
        })
    }

    /// The KubeVirt resource, as messages name it.
    pub fn kubevirt_name(&self) -> String {
        match &self.kubevirt {
            Some(n) => format!("KubeVirt `{n}`"),
            None => "the KubeVirt resource".to_string(),
        }
    }
}

/// One entry of KubeVirt's `permittedHostDevices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermittedDevice {
    /// `resourceName`: what a VM's `hostDevices[].deviceName` must be.
    pub resource: String,
    /// `pciHostDevices` or `mediatedDevices`.
    pub mediated: bool,
    /// `externalResourceProvider`: a device plugin other than KubeVirt's
    /// (e.g. the NVIDIA GPU Operator) advertises the resource.
    pub external: bool,
}

/// KubeVirt settings that change what a VM requests of its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubevirtSettings {
    /// vCPUs per requested CPU of a burstable VM (`cpuAllocationRatio`).
    pub cpu_allocation_ratio: u32,
    /// Guest memory as a percentage of the memory request (`memoryOvercommit`).
    pub memory_overcommit: u32,
}

impl Default for KubevirtSettings {
    fn default() -> KubevirtSettings {
        KubevirtSettings {
            cpu_allocation_ratio: crate::resolve::capacity::sizing::DEFAULT_CPU_ALLOCATION_RATIO,
            memory_overcommit: crate::resolve::capacity::sizing::DEFAULT_MEMORY_OVERCOMMIT,
        }
    }
}

/// A group of identical nodes (`nodes NAME count= cores= memory=`), or
/// nodes of one allocatable shape found by discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct InfraNodes {
    /// The declared name, or the first node's name when discovered.
    pub name: Spanned<String>,
    pub count: u32,
    /// Allocatable CPU per node, in millicores.
    pub cpu_millis: u64,
    /// Allocatable memory per node, in bytes.
    pub memory: u128,
    /// Host devices per node, by resource name.
    pub devices: Vec<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InfraStorageClass {
    pub name: Spanned<String>,
    pub access: AccessMode,
    pub volume_mode: VolumeMode,
    pub default: bool,
    /// How CDI clones its volumes; `None` when not known.
    pub clone: Option<CloneStrategy>,
}

/// CDI's clone strategy of a storage class (StorageProfile `cloneStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneStrategy {
    /// The CSI driver clones volumes itself.
    CsiClone,
    /// Through a VolumeSnapshot of the source.
    Snapshot,
    /// Host-assisted: CDI copies the data through a pod. Not a smart clone.
    Copy,
}

impl CloneStrategy {
    /// The word in KDL, which is also CDI's spelling in a StorageProfile.
    pub fn from_word(w: &str) -> Option<CloneStrategy> {
        match w {
            "csi-clone" => Some(CloneStrategy::CsiClone),
            "snapshot" => Some(CloneStrategy::Snapshot),
            "copy" => Some(CloneStrategy::Copy),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            CloneStrategy::CsiClone => "csi-clone",
            CloneStrategy::Snapshot => "snapshot",
            CloneStrategy::Copy => "copy",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InfraSnapshotClass {
    pub name: Spanned<String>,
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InfraHostDevice {
    pub name: Spanned<String>,
    pub capacity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    ReadWriteOnce,
    ReadWriteMany,
    ReadOnlyMany,
    ReadWriteOncePod,
}

impl AccessMode {
    pub fn from_word(w: &str) -> Option<AccessMode> {
        Some(match w {
            "RWO" => AccessMode::ReadWriteOnce,
            "RWX" => AccessMode::ReadWriteMany,
            "ROX" => AccessMode::ReadOnlyMany,
            "RWOP" => AccessMode::ReadWriteOncePod,
            _ => return None,
        })
    }
    /// The Kubernetes spelling.
    pub fn api(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadWriteMany => "ReadWriteMany",
            AccessMode::ReadOnlyMany => "ReadOnly",
            AccessMode::ReadWriteOncePod => "ReadWriteOncePod",
        }
    }
    /// The short spelling used in KDL.
    pub fn word(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "RWO",
            AccessMode::ReadWriteMany => "RWX",
            AccessMode::ReadOnlyMany => "ROX",
            AccessMode::ReadWriteOncePod => "RWOP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeMode {
    Filesystem,
    Block,
}

impl VolumeMode {
    pub fn from_word(w: &str) -> Option<VolumeMode> {
        match w {
            "Filesystem" => Some(VolumeMode::Filesystem),
            "Block" => Some(VolumeMode::Block),
            _ => None,
        }
    }
    pub fn api(self) -> &'static str {
        match self {
            VolumeMode::Filesystem => "Filesystem",
            VolumeMode::Block => "Block",
        }
    }
}

/// Where a secret value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretSource {
    /// A file, resolved against the declaring file's directory.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// An existing Secret that hcpc references but does not manage.
    Secret(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Availability {
    HighlyAvailable,
    SingleReplica,
}

impl Availability {
    pub fn api(self) -> &'static str {
        match self {
            Availability::HighlyAvailable => "HighlyAvailable",
            Availability::SingleReplica => "SingleReplica",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub cluster_cidr: String,
    pub service_cidr: String,
    pub machine_cidr: Option<String>,
    pub network_type: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Toleration {
    pub key: Option<String>,
    pub value: Option<String>,
    pub operator: Option<String>,
    pub effect: Option<String>,
    pub seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Etcd {
    pub storage_class: Option<Spanned<String>>,
    /// Where it was written, or the cluster's name for the default.
    pub size: Spanned<Quantity>,
    /// `key-secret=NAME`: an existing encryption key Secret, referenced
    /// (a GitOps directory then holds no key); `None`: hcpc creates one.
    pub key_secret: Option<Spanned<String>>,
}

/// The KubeVirt CSI storage driver of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// The infrastructure's default storage and snapshot classes pass through.
    Default,
    /// No KubeVirt CSI driver in the guest.
    None,
    /// Only the mapped classes are usable by the guest.
    Manual { classes: Vec<StorageMapping>, snapshot_classes: Vec<StorageMapping> },
}

/// One `class` or `snapshot-class` mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageMapping {
    pub infra: Spanned<String>,
    pub hosted: Spanned<String>,
    /// The storage group, or `None` for the ungrouped set.
    pub group: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InfraCredentials {
    /// hcpc manages Secret `<cluster>-infra-credentials` from this kubeconfig.
    KubeconfigFile(Spanned<PathBuf>),
    /// An existing Secret with key `kubeconfig`.
    KubeconfigSecret(Spanned<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InfraCluster {
    pub namespace: String,
    pub credentials: InfraCredentials,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: Spanned<String>,
    pub namespace: Spanned<String>,
    pub release: Spanned<ReleaseImage>,
    pub pull_secret: Spanned<SecretSource>,
    pub ssh_key: Option<Spanned<SecretSource>>,
    /// `None` means base-domain passthrough.
    pub base_domain: Option<String>,
    pub network: Network,
    pub control_plane_availability: Availability,
    pub infrastructure_availability: Option<Availability>,
    pub fips: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub control_plane_node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub etcd: Etcd,
    pub storage: Storage,
    pub infra_cluster: Option<InfraCluster>,
    pub node_pools: Vec<NodePool>,
    pub prevent_destroy: bool,
    /// `allow-minor-skip #true`: the control plane may move more than one
    /// minor version in one change (release::rules).
    pub allow_minor_skip: bool,
    pub infra_id: Option<Spanned<String>>,
    /// The cluster's own `target` (or that of `defaults`); `None`: the
    /// fleet's top-level target.
    pub target: Option<Spanned<Target>>,
    /// The profile the cluster names, then those it extends, most specific
    /// first; empty for a cluster without `profile=`.
    pub profiles: Vec<Spanned<String>>,
}

/// How many VMs a pool has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    Replicas(u32),
    Autoscaling { min: u32, max: u32 },
}

impl Scaling {
    /// The most VMs the pool can have: what host-device demand counts.
    pub fn max(self) -> u32 {
        match self {
            Scaling::Replicas(n) => n,
            Scaling::Autoscaling { max, .. } => max,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    Burstable,
    Guaranteed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStrategy {
    None,
    Pvc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeType {
    Replace,
    InPlace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RootVolume {
    pub size: Quantity,
    pub storage_class: Option<Spanned<String>>,
    pub access_mode: Option<AccessMode>,
    pub volume_mode: Option<VolumeMode>,
    pub cache: Option<CacheStrategy>,
    /// Where `root-volume` was written, if it was.
    pub span: Option<Span>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostDevice {
    pub name: Spanned<String>,
    pub count: Spanned<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodePool {
    pub name: Spanned<String>,
    /// The NodePool's metadata.name when it is not `<cluster>-<pool>`.
    pub object_name: Option<String>,
    pub scaling: Spanned<Scaling>,
    /// Where it was written, or the pool's name for the default (also for
    /// `memory`).
    pub cores: Spanned<u32>,
    pub memory: Spanned<Quantity>,
    pub qos_class: QosClass,
    pub root_volume: RootVolume,
    pub host_devices: Vec<HostDevice>,
    pub network_multiqueue: bool,
    pub attach_default_network: bool,
    pub additional_networks: Vec<Spanned<String>>,
    pub node_selector: BTreeMap<String, String>,
    pub arch: String,
    pub auto_repair: bool,
    pub upgrade_type: UpgradeType,
    pub node_drain_timeout: Duration,
    pub node_volume_detach_timeout: Duration,
    /// The pool's own, else the cluster's (see `lower`).
    pub release: Spanned<ReleaseImage>,
}

/// `rollout { wave … }`: the waves release changes go through, in order.
/// One per fleet, over every target.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub waves: Vec<Wave>,
}

/// One wave: the clusters its selector matches (that no earlier wave took),
/// at most `max_parallel` of them upgrading at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Wave {
    pub name: Spanned<String>,
    /// `None`: every cluster no earlier wave took.
    pub selector: Option<crate::selector::Selector>,
    pub max_parallel: MaxParallel,
}

/// How many clusters of a wave may upgrade at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxParallel {
    /// No limit (no `max-parallel`).
    All,
    Count(u32),
    /// A percentage of the wave's clusters, rounded up, at least one.
    Percent(u32),
}

impl MaxParallel {
    /// The limit for a wave of `size` clusters.
    pub fn limit(self, size: usize) -> usize {
        match self {
            MaxParallel::All => usize::MAX,
            MaxParallel::Count(n) => n as usize,
            MaxParallel::Percent(p) => {
                let n = crate::quantity::IntOrPercent::Percent(u64::from(p)).of(size as u64).max(1);
                usize::try_from(n).unwrap_or(usize::MAX)
            }
        }
    }
}

impl std::fmt::Display for MaxParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxParallel::All => write!(f, "all"),
            MaxParallel::Count(n) => write!(f, "{n}"),
            MaxParallel::Percent(p) => write!(f, "{p}%"),
        }
    }
}
