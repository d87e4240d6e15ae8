//! The typed IR that `lower` produces: what the configuration says, with
//! every default filled in and every value checked for its own validity.
//! Cross-references (storage classes, devices, names) are still plain
//! names with spans; `resolve` checks them against each other.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::quantity::{Duration, Quantity};
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
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The management cluster, through kubeconfig.
    Kube { context: Option<String> },
    /// A GitOps directory (already resolved against the declaring file).
    Dir { path: PathBuf },
}

/// What the infrastructure offers, as declared in `infra { … }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    /// False when there is no `infra` block: checks that need it are skipped.
    pub declared: bool,
    /// Found by discovery on the management cluster: it then describes only
    /// clusters whose VMs run there (no `infra-cluster`).
    pub management_only: bool,
    pub storage_classes: Vec<InfraStorageClass>,
    pub snapshot_classes: Vec<InfraSnapshotClass>,
    pub host_devices: Vec<InfraHostDevice>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InfraStorageClass {
    pub name: Spanned<String>,
    pub access: AccessMode,
    pub volume_mode: VolumeMode,
    pub default: bool,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub size: Quantity,
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
    pub release: Spanned<String>,
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
    pub infra_id: Option<Spanned<String>>,
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
    pub cores: u32,
    pub memory: Quantity,
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
    pub release: Spanned<String>,
}
