//! What the management cluster really has wins over `infra`: permitted host
//! devices of the KubeVirt resource, devices in the Nodes' allocatable,
//! default StorageClasses and their StorageProfiles, the snapshot API. Each
//! test creates the cluster-scoped objects it needs (Nodes with status as
//! the kubelet writes it, a KubeVirt resource, StorageProfiles as CDI
//! writes them) on a server of its own, and pins the diagnostics in golden
//! files. Regenerate them with
//! `HCPC_UPDATE_GOLDEN=1 cargo test -p hcpc --test e2e discovery` and read
//! the diff.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::examples::assert_golden;
use crate::support::envtest::{DEFAULT_STORAGE_CLASS, Envtest};
use crate::support::{hcpc, stderr, stdout};

const HEAD: &str = "target kube\nfleet discovery\ndefaults {\n    namespace clusters\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n}\n";

const A100: &str = "nvidia.com/GA100_A100_PCIE_40GB";
const T4: &str = "nvidia.com/TU104GL_Tesla_T4";

/// A server of its own, a kubeconfig for it, and a fleet directory.
struct Cluster {
    k: Envtest,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let k = Envtest::start()?;
        let dir = tempfile::tempdir().unwrap();
        k.write_kubeconfig(dir.path());
        // What the HyperShift operator publishes on install, so that these
        // plans are judged as on a management cluster that runs it.
        k.ensure_namespace("hypershift");
        k.apply_as(
            "hypershift-operator",
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "supported-versions", "namespace": "hypershift",
                                 "labels": {"hypershift.openshift.io/supported-versions": "true"}},
                    "data": {"supported-versions": "{\"versions\":[\"4.20\",\"4.19\",\"4.18\"]}"}}),
        );
        Some(Cluster { k, dir })
    }

    /// A schedulable Node with `allocatable` as the kubelet reports it.
    fn node(&self, name: &str, allocatable: Value) {
        self.k.apply_as("test", &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}));
        let mut all = json!({"cpu": "32", "memory": "128Gi", "pods": "250", "devices.kubevirt.io/kvm": "1k"});
        all.as_object_mut().unwrap().extend(allocatable.as_object().unwrap().clone());
        self.k.set_status_as("kubelet", "nodes", None, name, json!({"allocatable": all, "capacity": all}));
    }

    /// A StorageClass and its CDI StorageProfile (`access`, Block).
    fn class(&self, name: &str, default: bool, access: &str) {
        let mut sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name}, "provisioner": "csi.example.com"});
        if default {
            sc["metadata"]["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
        }
        self.k.apply_as("test", &sc);
        self.profile(name, access);
    }

    fn profile(&self, name: &str, access: &str) {
        self.k.apply_as(
            "cdi",
            &json!({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile", "metadata": {"name": name},
                    "status": {"claimPropertySets": [{"accessModes": [access], "volumeMode": "Block"}]}}),
        );
    }

    /// The KubeVirt resource as HyperConverged writes it, permitting `pci`.
    fn kubevirt(&self, pci: Value) {
        self.k.ensure_namespace("openshift-cnv");
        self.k.apply_as(
            "hco",
            &json!({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
                    "metadata": {"name": "kubevirt-kubevirt-hyperconverged", "namespace": "openshift-cnv"},
                    "spec": {"configuration": {"permittedHostDevices": {"pciHostDevices": pci}}}}),
        );
    }

    fn write(&self, body: &str) {
        let secret = crate::support::pull_secret_in(self.dir.path());
        let head = HEAD.replace("}\n", &format!("    pull-secret file=\"{}\"\n}}\n", secret.display()));
        std::fs::write(self.dir.path().join("fleet.kdl"), format!("{head}{body}")).unwrap();
    }

    fn plan(&self) -> std::process::Output {
        self.run(&["plan"])
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut c = hcpc();
        c.current_dir(self.dir.path()).env("KUBECONFIG", self.dir.path().join("kubeconfig")).args(args);
        c.output().unwrap()
    }

    /// `hcpc plan` of `body`: exit code as expected, diagnostics pinned.
    fn golden(&self, name: &str, body: &str, exit: i32) -> String {
        self.write(body);
        let o = self.plan();
        assert_eq!(o.status.code(), Some(exit), "{}{}", stdout(&o), stderr(&o));
        let err = stderr(&o);
        assert_golden(&format!("discovery__{name}.txt"), &err);
        // Messages without miette's line wrapping.
        err.replace("\n  │ ", " ")
    }
}

/// The KubeVirt resource decides which host devices VMs may use; the
/// Nodes' allocatable, not `infra`, how many there are. A bare device name
/// is checked against both.
#[test]
fn permitted_and_advertised_host_devices_win_over_infra() {
    let Some(c) = Cluster::start() else { return };
    for n in 0..2 {
        c.node(&format!("worker-{n}"), json!({A100: "2", T4: "1"}));
    }
    c.kubevirt(json!([{"pciVendorSelector": "10DE:1EB8", "resourceName": T4, "externalResourceProvider": true}]));

    // Advertised by the Nodes, not permitted by KubeVirt.
    let err = c.golden(
        "not_permitted",
        &format!("cluster a {{\n    node-pool gpu replicas=2 {{\n        host-device \"{A100}\"\n    }}\n}}\n"),
        1,
    );
    assert!(err.contains("hcpc::device::not_permitted"), "{err}");
    assert!(err.contains(T4) && err.contains("openshift-cnv/kubevirt-kubevirt-hyperconverged"), "{err}");

    // `infra` cannot make a device appear: the declaration is a mismatch,
    // and the pool's device is neither advertised nor permitted.
    let err = c.golden(
        "declared_device_absent",
        "infra {\n    host-device nvidia-a100 capacity=8\n}\ncluster a {\n    node-pool gpu replicas=2 {\n        host-device nvidia-a100 count=2\n    }\n}\n",
        1,
    );
    assert!(err.contains("hcpc::infra::mismatch") && err.contains("hcpc::device::unknown"), "{err}");
    assert!(!err.contains("hcpc::device::invalid_name"), "a bare name is a valid resource name: {err}");
    assert!(!err.contains("declare it in `infra"), "{err}");

    // The Nodes offer 2 T4 in all: a declared capacity of 8 is a mismatch
    // and 3 VMs need more than the Nodes have.
    let err = c.golden(
        "device_capacity_from_nodes",
        &format!(
            "infra {{\n    host-device \"{T4}\" capacity=8\n}}\ncluster a {{\n    node-pool gpu replicas=3 {{\n        host-device \"{T4}\"\n    }}\n}}\n"
        ),
        1,
    );
    assert!(err.contains("the allocatable of Nodes `worker-0`, `worker-1` has 2"), "{err}");

    // A permitted, advertised device that fits plans cleanly.
    c.write(&format!("cluster a {{\n    node-pool gpu replicas=2 {{\n        host-device \"{T4}\"\n    }}\n}}\n"));
    let o = c.plan();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Default classes as Kubernetes applies them: several marked default,
/// an RWO default under the Default driver, mappings without a snapshot
/// class, and a cluster without the snapshot API.
#[test]
fn default_classes_and_the_snapshot_api_come_from_the_cluster() {
    let Some(c) = Cluster::start() else { return };
    c.node("worker-0", json!({}));
    c.profile(DEFAULT_STORAGE_CLASS, "ReadWriteMany");
    // Created a second after `standard` (timestamps have seconds), so the
    // newest: Kubernetes uses it for claims without a class.
    std::thread::sleep(Duration::from_millis(1100));
    c.class("aaa-ceph", true, "ReadWriteOnce");
    let err = c.golden("several_defaults", "cluster a {\n    node-pool w replicas=1\n}\n", 0);
    assert!(
        err.contains("hcpc::storage::several_default_classes") && err.contains("Kubernetes uses `aaa-ceph`"),
        "{err}"
    );
    assert!(err.contains("hcpc::storage::default_class_not_rwx") && err.contains("StorageProfile `aaa-ceph`"), "{err}");

    // Mappings without a snapshot class: a note; then the snapshot API is
    // removed.
    let body = format!(
        "cluster a {{\n    storage {{\n        class {DEFAULT_STORAGE_CLASS} hosted=standard\n    }}\n    node-pool w replicas=1\n}}\n"
    );
    c.write(&body);
    let o = c.plan();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("hcpc::storage::no_snapshot_mapping"), "{}", stderr(&o));

    assert!(c.k.delete("customresourcedefinitions", None, "volumesnapshotclasses.snapshot.storage.k8s.io"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        c.write("cluster a {\n    node-pool w replicas=1\n}\n");
        let o = c.plan();
        let err = stderr(&o);
        if err.contains("does not serve the snapshot API") || Instant::now() > deadline {
            break err;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_golden("discovery__no_snapshot_api.txt", &err);
    assert!(err.contains("hcpc::storage::no_default_snapshot_class"), "{err}");
}

/// A release bump on a pool with `upgrade-type replace` starts one new VM
/// (the NodePool's max surge, 1 by default) before removing an old one:
/// with every device in use it cannot start (an error), with no node's
/// memory left it may stall (a warning); the capacity table shows the peak.
#[test]
fn a_rollout_by_replacement_needs_room_for_its_surge_vm() {
    let Some(c) = Cluster::start() else { return };
    for n in 0..2 {
        c.node(&format!("worker-{n}"), json!({T4: "1"}));
    }
    c.kubevirt(json!([{"pciVendorSelector": "10DE:1EB8", "resourceName": T4, "externalResourceProvider": true}]));
    c.profile(DEFAULT_STORAGE_CLASS, "ReadWriteMany");
    let fleet = |release: &str| {
        format!(
            "cluster a {{\n    release \"quay.io/openshift-release-dev/ocp-release:{release}-x86_64\"\n    node-pool gpu replicas=2 {{\n        host-device \"{T4}\"\n    }}\n    node-pool big replicas=2 {{\n        memory \"100Gi\"\n    }}\n}}\n"
        )
    };
    c.write(&fleet("4.20.0"));
    let o = c.run(&["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let live = c.k.get("nodepools", Some("clusters"), "a-gpu").unwrap();
    assert_eq!(live["spec"]["management"]["replace"]["rollingUpdate"]["maxSurge"], 1, "the CRD's default: {live:#}");

    // The release bump rolls both pools.
    let err = c.golden("no_rollout_room", &fleet("4.20.1"), 1);
    assert!(err.contains("hcpc::capacity::no_rollout_room") && err.contains("`a/gpu`"), "{err}");

    // Without devices, only memory is short: a warning, and the plan shows the peak.
    let small = fleet("4.20.1").replace(&format!("        host-device \"{T4}\"\n"), "");
    c.write(&fleet("4.20.0").replace(&format!("        host-device \"{T4}\"\n"), ""));
    let o = c.run(&["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    c.write(&small);
    let o = c.plan();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o).replace("\n  │ ", " ");
    assert!(err.contains("hcpc::capacity::no_rollout_room") && err.contains("`a/big`"), "{err}");
    assert!(err.contains("⚠"), "CPU and memory are a warning: {err}");
    let text = stdout(&o);
    assert!(
        text.contains("roll-out peak, the fleet and the largest surge VM of a pool this plan replaces: vCPU requested"),
        "{text}"
    );
}
