//! What a fleet asks of its infrastructures: one record per node pool and
//! per hosted control plane, made from the configuration (with spans, for
//! diagnostics) or from live objects (for the "before" of a plan), so both
//! sides of a plan's capacity table are counted by the same rules.

use std::collections::BTreeMap;

use serde_json::Value;

use super::sizing::{self, VmShape};
use crate::ir::{Availability, CacheStrategy, Cluster, Fleet, InfraCredentials, Inventory, KubevirtSettings};
use crate::quantity::Quantity;
use crate::source::Span;

/// Where a cluster's VMs run. Control planes and etcd always run on the
/// management cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placement {
    Management,
    /// Another infrastructure cluster, told apart by its credentials.
    External(String),
}

impl Placement {
    pub fn of(c: &Cluster) -> Placement {
        match c.infra_cluster.as_ref().map(|i| &i.credentials) {
            None => Placement::Management,
            Some(InfraCredentials::KubeconfigFile(f)) => Placement::External(format!("file:{}", f.value.display())),
            Some(InfraCredentials::KubeconfigSecret(s)) => {
                Placement::External(format!("secret:{}/{}", c.namespace.value, s.value))
            }
        }
    }
}

/// One node pool: how many VMs at most and what each one requests.
#[derive(Debug, Clone)]
pub struct PoolDemand {
    /// `cluster/pool`, as diagnostics and tables name it.
    pub name: String,
    pub cluster: String,
    /// The pool's name in the configuration; `None` for live objects.
    pub span: Option<Span>,
    pub placement: Placement,
    /// Replicas, or the autoscaling maximum.
    pub vms: u32,
    pub shape: VmShape,
    /// What each VM's launcher pod requests.
    pub cpu_millis: u64,
    pub memory: u128,
    /// Host devices per VM, by name.
    pub devices: Vec<(String, u32)>,
    /// The root volume's class (`None`: the infrastructure's default) and size.
    pub root_class: Option<String>,
    pub root_size: u128,
    /// `cache=pvc`: one more volume of the root volume's size and class.
    pub cache: bool,
}

/// One hosted control plane on the management cluster.
#[derive(Debug, Clone)]
pub struct ControlPlaneDemand {
    pub cluster: String,
    pub span: Option<Span>,
    pub availability: Availability,
    pub etcd_class: Option<String>,
    pub etcd_size: u128,
}

#[derive(Debug, Clone, Default)]
pub struct Demand {
    pub pools: Vec<PoolDemand>,
    pub control_planes: Vec<ControlPlaneDemand>,
}

fn requests(shape: VmShape, kubevirt: &KubevirtSettings) -> (u64, u128) {
    (sizing::cpu_request_millis(&shape, kubevirt), sizing::memory_request(&shape, kubevirt))
}

impl Demand {
    /// The demand of the configuration.
    pub fn of_fleet(fleet: &Fleet) -> Demand {
        let kubevirt = &fleet.inventory.kubevirt;
        // Per cluster on all cores for large fleets (each record allocates
        // its names), then put together in declaration order.
        let clusters: Vec<&Cluster> = fleet.clusters.iter().collect();
        let per_cluster = crate::parallel::map(clusters, fleet.clusters.len() * crate::resolve::CLUSTER_BYTES, |c| {
            let placement = Placement::of(c);
            let control_plane = ControlPlaneDemand {
                cluster: c.name.value.clone(),
                span: Some(c.name.span),
                availability: c.control_plane_availability,
                etcd_class: c.etcd.storage_class.as_ref().map(|s| s.value.clone()),
                etcd_size: c.etcd.size.whole(),
            };
            let pools: Vec<PoolDemand> = c
                .node_pools
                .iter()
                .map(|p| {
                    let shape = VmShape {
                        cores: *p.cores,
                        memory: p.memory.whole(),
                        guaranteed: p.qos_class == crate::ir::QosClass::Guaranteed,
                        host_devices: !p.host_devices.is_empty(),
                    };
                    let (cpu_millis, memory) = requests(shape, kubevirt);
                    PoolDemand {
                        name: format!("{}/{}", c.name.value, p.name.value),
                        cluster: c.name.value.clone(),
                        span: Some(p.name.span),
                        placement: placement.clone(),
                        vms: p.scaling.value.max(),
                        shape,
                        cpu_millis,
                        memory,
                        devices: merge_devices(p.host_devices.iter().map(|d| (d.name.value.clone(), d.count.value))),
                        root_class: p.root_volume.storage_class.as_ref().map(|s| s.value.clone()),
                        root_size: p.root_volume.size.whole(),
                        cache: p.root_volume.cache == Some(CacheStrategy::Pvc),
                    }
                })
                .collect();
            (control_plane, pools)
        });
        let mut out = Demand {
            pools: Vec::with_capacity(per_cluster.iter().map(|(_, pools)| pools.len()).sum()),
            control_planes: Vec::with_capacity(per_cluster.len()),
        };
        for (control_plane, pools) in per_cluster {
            out.control_planes.push(control_plane);
            out.pools.extend(pools);
        }
        out
    }

    /// The demand of live HostedClusters and NodePools, read with the same
    /// defaults the API server applies. Clusters the configuration also
    /// declares keep its placement, so before and after line up.
    pub fn of_objects(objects: &[&Value], fleet: &Fleet) -> Demand {
        let kubevirt = &fleet.inventory.kubevirt;
        let declared: BTreeMap<(&str, &str), Placement> = fleet
            .clusters
            .iter()
            .map(|c| ((c.namespace.value.as_str(), c.name.value.as_str()), Placement::of(c)))
            .collect();
        let text = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let size = |v: &Value, p: &str, default: u128| {
            v.pointer(p).and_then(Value::as_str).and_then(|s| Quantity::parse(s).ok()).map_or(default, |q| q.whole())
        };
        let mut out = Demand::default();
        let mut placements: BTreeMap<(String, String), Placement> = BTreeMap::new();
        for o in objects.iter().filter(|o| o.get("kind").and_then(Value::as_str) == Some("HostedCluster")) {
            let (Some(ns), Some(name)) = (text(o, "/metadata/namespace"), text(o, "/metadata/name")) else { continue };
            let creds = o.pointer("/spec/platform/kubevirt/credentials");
            let placement = match (creds, declared.get(&(ns.as_str(), name.as_str()))) {
                (None, _) => Placement::Management,
                (Some(_), Some(p @ Placement::External(_))) => p.clone(),
                (Some(c), _) => Placement::External(format!(
                    "secret:{ns}/{}",
                    c.pointer("/infraKubeConfigSecret/name").and_then(Value::as_str).unwrap_or_default()
                )),
            };
            let availability = match text(o, "/spec/controllerAvailabilityPolicy").as_deref() {
                Some("SingleReplica") => Availability::SingleReplica,
                _ => Availability::HighlyAvailable,
            };
            out.control_planes.push(ControlPlaneDemand {
                cluster: name.clone(),
                span: None,
                availability,
                etcd_class: text(o, "/spec/etcd/managed/storage/persistentVolume/storageClassName"),
                etcd_size: size(o, "/spec/etcd/managed/storage/persistentVolume/size", 8 * sizing::GIB),
            });
            placements.insert((ns, name), placement);
        }
        for o in objects.iter().filter(|o| o.get("kind").and_then(Value::as_str) == Some("NodePool")) {
            let (Some(ns), Some(name)) = (text(o, "/metadata/namespace"), text(o, "/metadata/name")) else { continue };
            let cluster = text(o, "/spec/clusterName").unwrap_or_default();
            let kv = o.pointer("/spec/platform/kubevirt").cloned().unwrap_or(Value::Null);
            let vms = o
                .pointer("/spec/autoScaling/max")
                .or_else(|| o.pointer("/spec/replicas"))
                .and_then(Value::as_u64)
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
            let devices =
                merge_devices(kv.get("hostDevices").and_then(Value::as_array).into_iter().flatten().filter_map(|d| {
                    let name = d.get("deviceName")?.as_str()?.to_string();
                    let count = d.get("count").and_then(Value::as_u64).unwrap_or(1);
                    Some((name, u32::try_from(count).unwrap_or(u32::MAX)))
                }));
            let shape = VmShape {
                cores: kv
                    .pointer("/compute/cores")
                    .and_then(Value::as_u64)
                    .map_or(2, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                memory: size(&kv, "/compute/memory", 8 * sizing::GIB),
                guaranteed: text(&kv, "/compute/qosClass").as_deref() == Some("Guaranteed"),
                host_devices: !devices.is_empty(),
            };
            let (cpu_millis, memory) = requests(shape, kubevirt);
            let pool = name.strip_prefix(&format!("{cluster}-")).unwrap_or(&name).to_string();
            out.pools.push(PoolDemand {
                name: format!("{cluster}/{pool}"),
                placement: placements.get(&(ns, cluster.clone())).cloned().unwrap_or(Placement::Management),
                cluster,
                span: None,
                vms,
                shape,
                cpu_millis,
                memory,
                devices,
                root_class: text(&kv, "/rootVolume/persistent/storageClass"),
                root_size: size(&kv, "/rootVolume/persistent/size", 32 * sizing::GIB),
                cache: text(&kv, "/rootVolume/cacheStrategy/type").as_deref() == Some("PVC"),
            });
        }
        out
    }
}

/// Devices per VM by name, in name order, repeats added up.
fn merge_devices(devices: impl Iterator<Item = (String, u32)>) -> Vec<(String, u32)> {
    let mut by_name: BTreeMap<String, u32> = BTreeMap::new();
    for (name, count) in devices {
        let e = by_name.entry(name).or_default();
        *e = e.saturating_add(count);
    }
    by_name.into_iter().collect()
}

/// One line of a capacity table, in the order tables list them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    /// CPU requested, in millicores.
    Cpu,
    /// Of which hosted control planes.
    CpuControlPlanes,
    /// Memory requested, in bytes.
    Memory,
    MemoryControlPlanes,
    /// Host devices of this name.
    Device(String),
    /// Storage requested, in bytes, by kind and class.
    RootVolumes(String),
    ImageCaches(String),
    EtcdVolumes {
        class: String,
        availability: Availability,
    },
}

impl Row {
    /// How a table names the row.
    pub fn label(&self) -> String {
        match self {
            Row::Cpu => "vCPU requested".into(),
            Row::CpuControlPlanes | Row::MemoryControlPlanes => "of which control planes".into(),
            Row::Memory => "memory requested".into(),
            Row::Device(d) => format!("host device {d}"),
            Row::RootVolumes(c) => format!("root volumes on {c}"),
            Row::ImageCaches(c) => format!("boot image caches on {c}"),
            Row::EtcdVolumes { class, availability } => format!(
                "etcd volumes on {class} ({})",
                match availability {
                    Availability::HighlyAvailable => "highly available, 3 each",
                    Availability::SingleReplica => "single replica, 1 each",
                }
            ),
        }
    }

    /// A stable key for JSON.
    pub fn key(&self) -> String {
        match self {
            Row::Cpu => "cpu".into(),
            Row::CpuControlPlanes => "cpu/control-planes".into(),
            Row::Memory => "memory".into(),
            Row::MemoryControlPlanes => "memory/control-planes".into(),
            Row::Device(d) => format!("device/{d}"),
            Row::RootVolumes(c) => format!("storage/root-volumes/{c}"),
            Row::ImageCaches(c) => format!("storage/image-caches/{c}"),
            Row::EtcdVolumes { class, availability } => format!(
                "storage/etcd/{class}/{}",
                match availability {
                    Availability::HighlyAvailable => "highly-available",
                    Availability::SingleReplica => "single-replica",
                }
            ),
        }
    }

    /// A part of the row above it (shown indented).
    pub fn is_detail(&self) -> bool {
        matches!(self, Row::CpuControlPlanes | Row::MemoryControlPlanes)
    }

    pub fn unit(&self) -> Unit {
        match self {
            Row::Cpu | Row::CpuControlPlanes => Unit::Millicores,
            Row::Device(_) => Unit::Devices,
            _ => Unit::Bytes,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    Millicores,
    Bytes,
    Devices,
}

/// The amounts of each row, per infrastructure.
pub type Usage = BTreeMap<Placement, BTreeMap<Row, u128>>;

/// Adds up a demand per infrastructure. A volume without a class is
/// counted on the infrastructure's default class, by name when the
/// inventory knows it.
pub fn usage(demand: &Demand, inv: &Inventory) -> Usage {
    let default = |p: &Placement| -> String {
        let describes = !inv.management_only || *p == Placement::Management;
        inv.storage_classes
            .iter()
            .find(|s| s.default && describes && inv.known.storage)
            .map_or_else(|| "the default class".to_string(), |s| s.name.value.clone())
    };
    let mut out = Usage::new();
    let mut add = |p: &Placement, row: Row, n: u128| {
        if n > 0 {
            *out.entry(p.clone()).or_default().entry(row).or_default() += n;
        }
    };
    for cp in &demand.control_planes {
        let r = sizing::control_plane(cp.availability);
        let m = Placement::Management;
        add(&m, Row::Cpu, u128::from(r.cpu_millis));
        add(&m, Row::CpuControlPlanes, u128::from(r.cpu_millis));
        add(&m, Row::Memory, r.memory);
        add(&m, Row::MemoryControlPlanes, r.memory);
        let class = cp.etcd_class.clone().unwrap_or_else(|| default(&m));
        add(&m, Row::EtcdVolumes { class, availability: cp.availability }, u128::from(r.etcd_members) * cp.etcd_size);
    }
    for p in &demand.pools {
        let vms = u128::from(p.vms);
        add(&p.placement, Row::Cpu, vms * u128::from(p.cpu_millis));
        add(&p.placement, Row::Memory, vms * p.memory);
        for (d, count) in &p.devices {
            add(&p.placement, Row::Device(d.clone()), vms * u128::from(*count));
        }
        let class = p.root_class.clone().unwrap_or_else(|| default(&p.placement));
        add(&p.placement, Row::RootVolumes(class.clone()), vms * p.root_size);
        if p.cache {
            add(&p.placement, Row::ImageCaches(class), p.root_size);
        }
    }
    out
}
