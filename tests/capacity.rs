//! Capacity and fit (docs/language.md, section 8): every rule with a golden
//! diagnostic, and the capacity table of plans, golden too, as a reviewer
//! reads it on a pull request. Regenerate the golden files with
//! `HCPC_UPDATE_GOLDEN=1 cargo test -p hcpc --test e2e capacity` and read
//! the diff.

use std::path::Path;

use serde_json::Value;

use crate::examples::assert_golden;
use crate::support::{repo, run_in, stderr, stdout};

const DEFAULTS: &str = "defaults {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"pull-secret.json\"\n}\n";

/// A temporary directory with `pull-secret.json` and `fleet.kdl`, whose
/// clusters inherit release and pull secret from `defaults`.
fn workspace(body: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    std::fs::write(tmp.path().join("pull-secret.json"), "{\"auths\":{}}\n").expect("write");
    std::fs::write(tmp.path().join("fleet.kdl"), format!("{DEFAULTS}{body}")).expect("write");
    tmp
}

/// `hcpc check` of `body`: exit code as expected, human report pinned.
fn golden_check(name: &str, body: &str, exit: i32) {
    let tmp = workspace(body);
    let out = run_in(tmp.path(), &["check", "fleet.kdl"]);
    assert_eq!(out.status.code(), Some(exit), "{}", stderr(&out));
    assert_golden(&format!("capacity__{name}.txt"), &stderr(&out));
}

/// `hcpc check --format json`: the codes of the diagnostics, in order.
fn codes(dir: &Path) -> Vec<(String, String)> {
    let out = run_in(dir, &["check", "fleet.kdl", "--format", "json"]);
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    report["diagnostics"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| (d["code"].as_str().unwrap_or("").to_string(), d["severity"].as_str().unwrap_or("").to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Fit of one VM
// ---------------------------------------------------------------------------

/// VMs asking for 2 GPUs each cannot run on nodes with one GPU each, even
/// though the infrastructure has 2 GPUs in all.
#[test]
fn golden_vm_larger_than_every_node() {
    golden_check(
        "pool_does_not_fit",
        "infra {\n    nodes gpu count=2 cores=32 memory=\"128Gi\" {\n        host-device \"nvidia.com/A100\" count=1\n    }\n    nodes cpu count=4 cores=16 memory=\"64Gi\"\n}\n\ncluster a {\n    node-pool gpu replicas=1 {\n        host-device \"nvidia.com/A100\" count=2\n    }\n}\n",
        1,
    );
}

/// KubeVirt's overhead counts: 126Gi of guest memory needs more than a
/// 126.5Gi node, and guaranteed VMs request whole cores.
#[test]
fn overhead_and_qos_decide_fit() {
    let fits = |pool: &str| {
        let tmp = workspace(&format!(
            "infra {{\n    nodes n count=1 cores=8 memory=\"129536Mi\"\n}}\ncluster a {{\n    availability control-plane=single-replica\n    node-pool p replicas=1 {{\n{pool}\n    }}\n}}\n"
        ));
        !codes(tmp.path()).iter().any(|(c, _)| c == "hcpc::capacity::pool_does_not_fit")
    };
    assert!(fits("        memory \"125Gi\""));
    assert!(!fits("        memory \"126Gi\""), "126Gi + KubeVirt's overhead exceeds 126.5Gi");
    assert!(fits("        cores 80"), "80 burstable vCPU request 8 CPUs");
    assert!(!fits("        cores 9\n        qos-class guaranteed"), "9 guaranteed vCPU request 9 CPUs");
}

// ---------------------------------------------------------------------------
// The fleet on the nodes
// ---------------------------------------------------------------------------

const TWO_CLUSTERS: &str = "cluster a {\n    node-pool workers replicas=6 {\n        cores 4\n        memory \"16Gi\"\n    }\n}\n\ncluster b {\n    node-pool workers replicas=6 {\n        cores 4\n        memory \"16Gi\"\n    }\n}\n";

/// Over 100% of the memory: the error names memory as what runs out first
/// and the pools and control planes that take most of it.
#[test]
fn golden_fleet_over_capacity() {
    golden_check(
        "over_capacity",
        &format!("infra {{\n    nodes worker count=3 cores=16 memory=\"64Gi\"\n}}\n\n{TWO_CLUSTERS}"),
        1,
    );
}

/// 85% of the memory in total, yet the VMs cannot be packed: one 30Gi VM
/// per 48Gi node leaves 18Gi scattered on each.
#[test]
fn golden_vms_that_cannot_be_packed() {
    golden_check(
        "cannot_pack",
        "infra {\n    nodes worker count=4 cores=16 memory=\"48Gi\"\n}\n\ncluster a {\n    availability control-plane=single-replica\n    node-pool workers replicas=5 {\n        cores 4\n        memory \"30Gi\"\n    }\n}\n",
        1,
    );
}

/// Above the threshold is a warning; the threshold is the user's.
#[test]
fn golden_near_capacity_and_its_threshold() {
    let body = "infra {\n    nodes worker count=4 cores=16 memory=\"64Gi\"\n}\n\ncluster a {\n    node-pool workers replicas=7 {\n        cores 4\n        memory \"31Gi\"\n    }\n}\n";
    golden_check("near_capacity", body, 0);
    let raised = workspace(&body.replace("memory=\"64Gi\"\n", "memory=\"64Gi\"\n    capacity-warning 95\n"));
    assert_eq!(codes(raised.path()), []);
    let lowered = workspace(&body.replace("memory=\"64Gi\"\n", "memory=\"64Gi\"\n    capacity-warning 50\n"));
    assert_eq!(codes(lowered.path()), [("hcpc::capacity::near_capacity".to_string(), "warning".to_string())]);
}

/// Devices declared only as totals warn too, and over the total is the
/// device rule's error, not a second capacity error.
#[test]
fn device_totals_warn_and_fail_once() {
    let body = |replicas: u32| {
        format!(
            "infra {{\n    host-device \"nvidia.com/A100\" capacity=8\n}}\ncluster a {{\n    node-pool gpu replicas={replicas} {{\n        host-device \"nvidia.com/A100\"\n    }}\n}}\n"
        )
    };
    let note = ("hcpc::device::technology_preview".to_string(), "note".to_string());
    assert_eq!(codes(workspace(&body(6)).path()), std::slice::from_ref(&note));
    assert_eq!(
        codes(workspace(&body(7)).path()),
        [("hcpc::capacity::near_capacity".to_string(), "warning".to_string()), note.clone()]
    );
    assert_eq!(
        codes(workspace(&body(9)).path()),
        [("hcpc::device::over_capacity".to_string(), "error".to_string()), note]
    );
}

// ---------------------------------------------------------------------------
// Prerequisites
// ---------------------------------------------------------------------------

#[test]
fn golden_missing_default_classes() {
    golden_check(
        "missing_default_classes",
        "infra {\n    storage-class lvm access=RWO\n}\n\ncluster a {\n    node-pool workers replicas=2\n}\n",
        1,
    );
}

#[test]
fn golden_cache_needs_smart_clone_and_rwx() {
    golden_check(
        "cache_cannot_clone",
        "infra {\n    storage-class ceph access=RWX volume-mode=Block default=#true clone=copy\n    storage-class lvm access=RWO clone=csi-clone\n    snapshot-class ceph-snap default=#true\n}\n\ncluster a {\n    node-pool copied replicas=2 {\n        root-volume cache=pvc\n    }\n    node-pool local replicas=2 {\n        root-volume storage-class=lvm cache=pvc\n    }\n}\n",
        1,
    );
}

/// Nothing relies on a default class when every volume names its class and
/// the storage is mapped; a cache on a class that clones smartly is fine.
#[test]
fn explicit_classes_need_no_defaults() {
    let tmp = workspace(
        "infra {\n    storage-class ceph access=RWX volume-mode=Block clone=snapshot\n    snapshot-class ceph-snap\n}\n\ncluster a {\n    etcd storage-class=ceph\n    storage {\n        class ceph hosted=ceph\n        snapshot-class ceph-snap hosted=ceph-snap\n    }\n    node-pool workers replicas=2 {\n        root-volume storage-class=ceph cache=pvc\n    }\n}\n",
    );
    assert_eq!(codes(tmp.path()), []);
}

/// An `infra` block with only nodes says nothing about storage: no storage
/// rule fires for want of classes.
#[test]
fn nodes_alone_leave_storage_unknown() {
    let tmp = workspace(
        "infra {\n    nodes worker count=4 cores=32 memory=\"256Gi\"\n}\n\ncluster a {\n    storage {\n        class anything hosted=x\n        snapshot-class any-snap hosted=y\n    }\n    node-pool workers replicas=2\n}\n",
    );
    assert_eq!(codes(tmp.path()), []);
}

// ---------------------------------------------------------------------------
// No absurd values
// ---------------------------------------------------------------------------

#[test]
fn golden_hcp_style_devices_and_sizes() {
    golden_check(
        "absurd_values",
        "cluster a {\n    etcd size=\"1\"\n    node-pool workers replicas=2 {\n        memory \"16\"\n        host-device \"nvidia-a100,count:2\"\n    }\n    node-pool tiny replicas=1 {\n        memory \"512Mi\"\n        cores 1\n    }\n    node-pool small replicas=1 {\n        memory \"4Gi\"\n        host-device nvidia-t4\n    }\n}\n",
        1,
    );
}

/// The Technology Preview note comes once per fleet, and notes never fail
/// `--deny-warnings`.
#[test]
fn technology_preview_is_noted_once() {
    let tmp = workspace(
        "cluster a {\n    node-pool one replicas=1 {\n        host-device \"nvidia.com/A100\"\n    }\n    node-pool two replicas=1 {\n        host-device \"nvidia.com/T4\"\n    }\n}\n",
    );
    let notes: Vec<_> = codes(tmp.path()).into_iter().filter(|(_, s)| s == "note").collect();
    assert_eq!(notes, [("hcpc::device::technology_preview".to_string(), "note".to_string())]);
    let strict = run_in(tmp.path(), &["check", "fleet.kdl", "--deny-warnings"]);
    assert_eq!(strict.status.code(), Some(0), "{}", stderr(&strict));
    let github = run_in(tmp.path(), &["check", "fleet.kdl", "--format", "github"]);
    assert!(stdout(&github).starts_with("::notice file=fleet.kdl,line=7,col=21"), "{}", stdout(&github));
}

// ---------------------------------------------------------------------------
// The capacity table
// ---------------------------------------------------------------------------

/// `examples/capacity` in a temporary directory, with its own target.
fn capacity_example() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let examples = tmp.path().join("examples");
    // A checkout of the repository: `../secrets` is inside its tree.
    std::fs::create_dir(tmp.path().join(".git")).expect("mkdir .git");
    for dir in ["secrets", "capacity"] {
        std::fs::create_dir_all(examples.join(dir)).expect("mkdir");
    }
    std::fs::copy(repo().join("examples/secrets/pull-secret.json"), examples.join("secrets/pull-secret.json"))
        .expect("copy");
    std::fs::copy(repo().join("examples/capacity/fleet.kdl"), examples.join("capacity/fleet.kdl")).expect("copy");
    tmp
}

fn hcpc_in(dir: &Path, args: &[&str]) -> String {
    let out = run_in(dir, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// What a reviewer sees: the first plan adds everything; after an apply,
/// the next plan's table shows the change a pull request makes.
#[test]
fn golden_capacity_tables() {
    let tmp = capacity_example();
    let dir = tmp.path();
    let file = "examples/capacity";
    assert_golden("capacity__check_verbose.txt", &hcpc_in(dir, &["check", "-v", file]));
    assert_golden("capacity__plan_create.txt", &hcpc_in(dir, &["plan", file]));
    hcpc_in(dir, &["apply", file, "--auto-approve", "-q"]);

    // Applied: before equals after on every row, counted from the live
    // objects by the same rules as from the configuration.
    let json: Value = serde_json::from_str(&hcpc_in(dir, &["plan", file, "--format", "json"])).expect("JSON");
    for infra in json["capacity"]["infrastructures"].as_array().expect("infrastructures") {
        for row in infra["rows"].as_array().expect("rows") {
            assert_eq!(row["before"], row["after"], "{row:#}");
        }
    }

    // A pull request: one more GPU VM, a smaller sandbox.
    let path = dir.join(file).join("fleet.kdl");
    let text = std::fs::read_to_string(&path).expect("read");
    let edited =
        text.replace("node-pool gpu replicas=2", "node-pool gpu replicas=3").replace("min=1 max=4", "min=1 max=2");
    assert_ne!(text, edited);
    std::fs::write(&path, edited).expect("write");
    assert_golden("capacity__plan_change.txt", &hcpc_in(dir, &["plan", file]));
    assert_golden("capacity__plan_change.md", &hcpc_in(dir, &["plan", file, "--format", "markdown"]));
    let json: Value = serde_json::from_str(&hcpc_in(dir, &["plan", file, "--format", "json"])).expect("JSON");
    assert_golden(
        "capacity__plan_change.json",
        &format!("{}\n", serde_json::to_string_pretty(&json["capacity"]).expect("JSON")),
    );
}

/// With devices known only as totals (a `dir` target), a release bump on
/// pools that use every device cannot start its roll-outs: one error for
/// every pool short of the same thing.
#[test]
fn golden_rollout_without_a_spare_device() {
    let fleet = |release: &str| {
        format!(
            "target dir \"out\"\nfleet surge\ndefaults {{\n    release \"quay.io/openshift-release-dev/ocp-release:{release}-x86_64\"\n    pull-secret file=\"pull-secret.json\"\n}}\ninfra {{\n    host-device \"nvidia.com/A100\" capacity=4\n}}\ncluster a {{\n    node-pool gpu replicas=1 {{\n        host-device \"nvidia.com/A100\" count=2\n    }}\n}}\ncluster b {{\n    node-pool gpu replicas=1 {{\n        host-device \"nvidia.com/A100\" count=2\n    }}\n}}\n"
        )
    };
    let tmp = workspace("");
    std::fs::write(tmp.path().join("fleet.kdl"), fleet("4.20.0")).unwrap();
    let out = run_in(tmp.path(), &["apply", "--auto-approve", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::write(tmp.path().join("fleet.kdl"), fleet("4.20.1")).unwrap();
    let out = run_in(tmp.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_golden("capacity__rollout_without_a_spare_device.txt", &stderr(&out));
}

/// A pull request sees what `check` sees: the JSON and markdown plans carry
/// the diagnostics (here near_capacity), and a plan that fails still prints
/// its document, with the errors, and exits 1.
#[test]
fn plan_documents_carry_the_diagnostics() {
    let body = "infra {\n    nodes worker count=4 cores=16 memory=\"64Gi\"\n}\n\ncluster a {\n    node-pool workers replicas=7 {\n        cores 4\n        memory \"31Gi\"\n    }\n}\n";
    let tmp = workspace(&format!("target dir \"out\"\n{body}"));
    let json = run_in(tmp.path(), &["plan", "fleet.kdl", "--format", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let doc: Value = serde_json::from_str(&stdout(&json)).expect("JSON plan");
    assert_eq!(doc["format_version"], "2");
    let diags = doc["diagnostics"].as_array().expect("diagnostics");
    assert!(
        diags.iter().any(|d| d["code"] == "hcpc::capacity::near_capacity" && d["severity"] == "warning"),
        "{doc:#}"
    );
    let md = stdout(&run_in(tmp.path(), &["plan", "fleet.kdl", "--format", "markdown"]));
    let (head, rest) = md.split_once("#### Diagnostics\n\n").expect("a diagnostics section");
    assert!(head.contains("**Plan: "), "after the summary: {md}");
    assert!(rest.starts_with("- **warning** `hcpc::capacity::near_capacity` at `fleet.kdl:"), "{md}");

    // Over capacity: no plan, but a document saying why.
    let over = workspace(&format!("target dir \"out\"\n{}", body.replace("replicas=7", "replicas=9")));
    let json = run_in(over.path(), &["plan", "fleet.kdl", "--format", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let doc: Value = serde_json::from_str(&stdout(&json)).expect("a JSON document on failure");
    assert_eq!(doc["failed"], true, "{doc:#}");
    assert!(
        doc["diagnostics"].as_array().unwrap().iter().any(|d| d["code"] == "hcpc::capacity::over_capacity"),
        "{doc:#}"
    );
    let md = run_in(over.path(), &["plan", "fleet.kdl", "--format", "markdown"]);
    assert_eq!(md.status.code(), Some(1));
    assert!(stdout(&md).starts_with("### hcpc plan failed\n\n**No plan: 1 error.**"), "{}", stdout(&md));
    assert!(stdout(&md).contains("`hcpc::capacity::over_capacity`"), "{}", stdout(&md));
}
