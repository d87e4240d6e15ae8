//! Plan benchmark: `cargo bench -p hcpc --bench plan`.
//!
//! Starts the tests' in-process Kubernetes API endpoint on loopback, applies
//! a generated fleet of N clusters × 3 node pools to it with the release
//! `hcpc` binary, then measures whole-process `hcpc plan` of the same fleet
//! (which must report "No changes") and counts the requests one plan makes.
//! The target (issue: live state and plan) is ≤ 2 s for N = 1,000 on two
//! cores, with a number of requests that does not grow with N.
//!
//! Environment: `HCPC_BENCH_QUICK=1` measures N = 100 and 1,000 only, with
//! fewer runs; `HCPC_BENCH_BIN=PATH` picks the `hcpc` binary.

#[allow(dead_code, unused_imports)]
#[path = "../tests/support/apiserver/mod.rs"]
mod apiserver;
#[allow(dead_code)]
#[path = "fleet_gen.rs"]
mod fleet_gen;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

fn hcpc_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HCPC_BENCH_BIN") {
        return PathBuf::from(p);
    }
    // The bench executable lives in <target>/release/deps/.
    let exe = std::env::current_exe().expect("current exe");
    let release = exe.parent().and_then(Path::parent).expect("target/release");
    let bin = release.join("hcpc");
    if !bin.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "hcpc", "--bin", "hcpc"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the release hcpc failed");
    }
    bin
}

/// The infrastructure the generated fleet declares, as the cluster would offer it.
fn seed_inventory(server: &apiserver::ApiServer) {
    for (name, rwx, block) in
        [("ocs-storagecluster-ceph-rbd", true, true), ("lvm-storageclass", false, false), ("nfs-rwx", true, false)]
    {
        let default = if name == "ocs-storagecluster-ceph-rbd" { "true" } else { "false" };
        server.insert(json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": default}}, "provisioner": "bench"}));
        let modes = if rwx { vec!["ReadWriteMany", "ReadWriteOnce"] } else { vec!["ReadWriteOnce"] };
        server.insert(json!({
            "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile", "metadata": {"name": name},
            "status": {"claimPropertySets": [{"accessModes": modes, "volumeMode": if block { "Block" } else { "Filesystem" }}]},
        }));
    }
    server.insert(json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass", "metadata": {"name": "ocs-storagecluster-rbdplugin-snapclass"}, "driver": "bench", "deletionPolicy": "Delete"}));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing else of use.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("HCPC_BENCH_QUICK").is_some();
    let sizes: &[usize] = if quick { &[100, 1000] } else { &[10, 100, 1000] };
    let runs = if quick { 3 } else { 5 };
    let bin = hcpc_binary();
    println!(
        "plan against the in-process API endpoint ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{:>8} {:>8} {:>12} {:>12} {:>10}", "clusters", "objects", "apply", "plan (med)", "requests");
    for &n in sizes {
        let server = apiserver::ApiServer::start();
        seed_inventory(&server);
        let dir = tempfile::tempdir().expect("temp dir");
        fleet_gen::write_fleet(dir.path(), n, 100).expect("write fleet");
        let kubeconfig = server.write_kubeconfig(dir.path());
        let run = |args: &[&str]| {
            Command::new(&bin)
                .current_dir(dir.path())
                .env("KUBECONFIG", &kubeconfig)
                .env("NO_COLOR", "1")
                .args(args)
                .args(["--target", "kube"])
                .output()
                .expect("hcpc runs")
        };
        let start = Instant::now();
        let apply = run(&["apply", "--auto-approve", "-q", "."]);
        let apply_time = start.elapsed();
        assert!(apply.status.success(), "apply failed: {}", String::from_utf8_lossy(&apply.stderr));
        let mut times = Vec::new();
        let mut requests = 0;
        for _ in 0..runs {
            server.clear_requests();
            let start = Instant::now();
            let plan = run(&["plan", "--detailed-exitcode", "."]);
            times.push(start.elapsed());
            assert_eq!(
                plan.status.code(),
                Some(0),
                "an applied fleet plans as no changes: {}",
                String::from_utf8_lossy(&plan.stdout)
            );
            requests = server.requests().len();
        }
        let objects = fleet_gen::expected_objects(n);
        println!(
            "{n:>8} {objects:>8} {:>11.2}s {:>10.0}ms {requests:>10}",
            apply_time.as_secs_f64(),
            median(times).as_secs_f64() * 1000.0
        );
    }
    println!("target: plan of 1,000 clusters × 3 pools ≤ 2 s; requests constant in N");
}
