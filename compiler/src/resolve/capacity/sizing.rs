//! Every figure hcpc takes from KubeVirt, OpenShift and HyperShift to size
//! what a fleet asks of its infrastructure, each with its source. Nothing
//! else in hcpc hard-codes a resource figure; `docs/language.md` section 8
//! cites the same sources.

use crate::ir::{Availability, KubevirtSettings};

pub const MIB: u128 = 1 << 20;
pub const GIB: u128 = 1 << 30;

/// KubeVirt's default `cpuAllocationRatio`: a burstable VM requests one CPU
/// per 10 vCPUs. `DefaultCPUAllocationRatio` in `pkg/virt-config/virt-config.go`
/// of KubeVirt v1.9.0.
pub const DEFAULT_CPU_ALLOCATION_RATIO: u32 = 10;

/// KubeVirt's default `memoryOvercommit` (percent): the memory request is
/// the guest memory. `DefaultMemoryOvercommit`, same file.
pub const DEFAULT_MEMORY_OVERCOMMIT: u32 = 100;

/// What a NodePool's VM is, as far as its requests are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmShape {
    pub cores: u32,
    /// Guest memory in bytes (`compute.memory`).
    pub memory: u128,
    /// `qosClass: Guaranteed`.
    pub guaranteed: bool,
    /// Any `hostDevices`: KubeVirt passes them through with VFIO.
    pub host_devices: bool,
}

/// The CPU the VM's launcher pod requests, in millicores.
///
/// HyperShift renders a burstable VM with `domain.cpu.cores` and no CPU
/// request, so KubeVirt requests vCPUs ÷ `cpuAllocationRatio`
/// (`WithoutDedicatedCPU` in `pkg/virt-controller/services/renderresources.go`,
/// KubeVirt v1.9.0; the scheduler rounds a fraction of a millicore up). A
/// guaranteed VM gets `requests.cpu = cores` from HyperShift
/// (`hypershift-operator/controllers/nodepool/kubevirt/kubevirt.go`), so it
/// requests whole cores.
pub fn cpu_request_millis(vm: &VmShape, kubevirt: &KubevirtSettings) -> u64 {
    let vcpus = u64::from(vm.cores);
    if vm.guaranteed { vcpus * 1000 } else { (vcpus * 1000).div_ceil(u64::from(kubevirt.cpu_allocation_ratio.max(1))) }
}

/// KubeVirt's per-VM memory overhead, in bytes: what the launcher pod
/// requests beyond the guest memory. `GetMemoryOverhead` in
/// `pkg/hypervisor/kvm/hypervisorbackend.go`, KubeVirt v1.9.0, for the
/// VMs HyperShift renders (amd64, no probes, no TPM, no SEV, graphics
/// device not disabled):
///
/// - page tables: one byte per 512 bytes of guest memory (the request is
///   first rounded up to whole kB);
/// - the processes of the launcher pod: virt-launcher-monitor 25Mi,
///   virt-launcher 100Mi, virtlogd 25Mi, virtqemud 40Mi, QEMU 30Mi;
/// - 8Mi per vCPU, and 8Mi for the IOThread;
/// - 32Mi of video RAM;
/// - 1Gi when host devices are passed through (VFIO locks guest memory and
///   needs MMIO space);
/// - 100Mi for a guaranteed VM.
pub fn memory_overhead(vm: &VmShape, kubevirt: &KubevirtSettings) -> u128 {
    let request = guest_memory_request(vm, kubevirt);
    let page_tables = request.div_ceil(1000) * 1000 / 512;
    let processes = (25 + 100 + 25 + 40 + 30) * MIB;
    let vcpus = 8 * MIB * u128::from(vm.cores.max(1));
    let io_thread = 8 * MIB;
    let video = 32 * MIB;
    let vfio = if vm.host_devices { GIB } else { 0 };
    let guaranteed = if vm.guaranteed { 100 * MIB } else { 0 };
    page_tables + processes + vcpus + io_thread + video + vfio + guaranteed
}

/// The guest part of the memory request: the guest memory, scaled by
/// `memoryOvercommit` for a burstable VM (`WithMemoryRequests`,
/// renderresources.go); a guaranteed VM requests exactly its memory.
fn guest_memory_request(vm: &VmShape, kubevirt: &KubevirtSettings) -> u128 {
    if vm.guaranteed || kubevirt.memory_overcommit == 100 {
        vm.memory
    } else {
        vm.memory * 100 / u128::from(kubevirt.memory_overcommit.max(1))
    }
}

/// All the memory the VM's launcher pod requests, in bytes.
pub fn memory_request(vm: &VmShape, kubevirt: &KubevirtSettings) -> u128 {
    guest_memory_request(vm, kubevirt) + memory_overhead(vm, kubevirt)
}

/// What one hosted control plane requests of the management cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPlaneRequests {
    pub cpu_millis: u64,
    pub memory: u128,
    /// etcd members, each with a volume of the cluster's etcd size.
    pub etcd_members: u32,
}

/// The requests of one hosted control plane, by availability policy.
///
/// Highly available: "78 pods that request 5 vCPUs and 18 GiB memory"
/// (OpenShift Container Platform 4.22, Hosted control planes, "Sizing
/// guidance for hosted control planes", request-based resource limit), with
/// three etcd volumes. Single replica: the OpenShift guidance gives no
/// figure; HyperShift's own sizing guide
/// (`docs/content/how-to/cluster-sizing-guidance.md`, "Per-HostedCluster
/// footprint", small size) gives about 3 vCPU and 10 GiB, with one etcd
/// member (`DefaultReplicas` in `support/controlplane-component/defaults.go`).
pub fn control_plane(availability: Availability) -> ControlPlaneRequests {
    match availability {
        Availability::HighlyAvailable => ControlPlaneRequests { cpu_millis: 5000, memory: 18 * GIB, etcd_members: 3 },
        Availability::SingleReplica => ControlPlaneRequests { cpu_millis: 3000, memory: 10 * GIB, etcd_members: 1 },
    }
}

/// Below this a VM cannot boot RHCOS at all: an error.
pub const MIN_VM_MEMORY: u128 = GIB;

/// An etcd volume below this cannot hold a cluster's state: an error.
pub const MIN_ETCD_SIZE: u128 = GIB;

/// OpenShift's documented minimum for a compute machine: 2 vCPU and 8 GB
/// of RAM (OpenShift Container Platform, "Minimum resource requirements for
/// cluster installation"). Smaller VMs are a warning.
pub const WORKER_MIN_CORES: u32 = 2;
pub const WORKER_MIN_MEMORY: u128 = 8_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(cores: u32, memory_gib: u128, guaranteed: bool, host_devices: bool) -> VmShape {
        VmShape { cores, memory: memory_gib * GIB, guaranteed, host_devices }
    }

    #[test]
    fn burstable_vms_request_a_tenth_of_their_vcpus() {
        let k = KubevirtSettings::default();
        assert_eq!(cpu_request_millis(&vm(2, 8, false, false), &k), 200);
        assert_eq!(cpu_request_millis(&vm(16, 8, false, false), &k), 1600);
        assert_eq!(cpu_request_millis(&vm(4, 8, true, false), &k), 4000);
        let ratio_3 = KubevirtSettings { cpu_allocation_ratio: 3, ..k };
        assert_eq!(cpu_request_millis(&vm(1, 8, false, false), &ratio_3), 334);
    }

    #[test]
    fn memory_overhead_follows_kubevirt() {
        let k = KubevirtSettings::default();
        // 8Gi: page tables 16Mi (8589935000 / 512 = 16777216.8 → 16Mi),
        // processes 220Mi, 2 vCPUs 16Mi, IOThread 8Mi, video 32Mi.
        assert_eq!(memory_overhead(&vm(2, 8, false, false), &k), 292 * MIB);
        assert_eq!(memory_request(&vm(2, 8, false, false), &k), 8 * GIB + 292 * MIB);
        // Host devices add 1Gi, guaranteed 100Mi.
        assert_eq!(memory_overhead(&vm(2, 8, true, true), &k), 292 * MIB + GIB + 100 * MIB);
        // Overcommit shrinks the guest request, and with it the page tables.
        let over = KubevirtSettings { memory_overcommit: 200, ..k };
        // 4Gi rounded up to whole kB and divided by 512 is one byte over 8Mi.
        assert_eq!(memory_request(&vm(2, 8, false, false), &over), 4 * GIB + 284 * MIB + 1);
    }

    #[test]
    fn control_planes_by_availability() {
        assert_eq!(control_plane(Availability::HighlyAvailable).cpu_millis, 5000);
        assert_eq!(control_plane(Availability::SingleReplica).etcd_members, 1);
    }
}
